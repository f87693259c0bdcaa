"""``pad_sequences`` and ``to_categorical``, as Keras's (``keras.utils``)."""

from __future__ import annotations

import numbers

import numpy as np


def pad_sequences(sequences, maxlen: int | None = None, dtype="int32", padding: str = "pre",
                  truncating: str = "pre", value=0.0) -> np.ndarray:
    """Pad (or cut) each sequence to ``maxlen`` (default: the longest) and stack them.

    Arguments:
        sequences: a list of sequences of numbers (or of equal-sized vectors).
        padding: ``"pre"`` (Keras's default: padding before each sequence) or ``"post"``.
        truncating: which end of a longer sequence is cut: ``"pre"`` (its start) or ``"post"``.
        value: the padding value; with ``Embedding(mask_zero=True)``, 0 marks padding, and
            the recurrent layers skip it wherever it is.

    Returns:
        (len(sequences), maxlen, *item shape) array of ``dtype``.
    """
    for name, side in (("padding", padding), ("truncating", truncating)):
        if side not in ("pre", "post"):
            raise ValueError(f"{name} must be 'pre' or 'post', got {side!r}")
    if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, numbers.Integral)
                               or maxlen < 1):
        raise ValueError(f"maxlen must be a positive int or None, got {maxlen!r}")
    if isinstance(sequences, str | bytes) or not hasattr(sequences, "__len__"):
        raise TypeError(f"sequences must be a list of sequences, got {type(sequences).__name__}")
    rows = [np.asarray(s) for s in sequences]
    for i, r in enumerate(rows):
        if r.ndim == 0:
            raise ValueError(f"sequences must be a list of sequences (lists or arrays), got the "
                             f"scalar {r.item()!r} at index {i}")
    items = {r.shape[1:] for r in rows if len(r)}
    if len(items) > 1:
        raise ValueError(f"the items of every sequence must have one shape, got {sorted(items)}")
    width = maxlen if maxlen is not None else max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width, *(items.pop() if items else ())), value, dtype=dtype)
    for i, r in enumerate(rows):
        r = r[len(r) - width:] if truncating == "pre" and len(r) > width else r[:width]
        if padding == "pre":
            out[i, width - len(r):] = r
        else:
            out[i, :len(r)] = r
    return out


def to_categorical(x, num_classes: int | None = None) -> np.ndarray:
    """Class ids as one-hot rows, Keras's ``to_categorical``: ids of shape (...) (or (..., 1))
    become (..., num_classes) float64 arrays; ``num_classes`` defaults to the largest id + 1.
    Ids must be whole numbers in [0, num_classes) (Keras would wrap a negative id)."""
    ids = np.asarray(x)
    if ids.size and not np.all(np.mod(ids, 1) == 0):
        raise ValueError(f"x must hold class ids (whole numbers), got {ids.dtype} values such as "
                         f"{ids[np.mod(ids, 1) != 0].flat[0].item()!r}")
    ids = ids.astype(np.int64)
    shape = ids.shape[:-1] if ids.ndim > 1 and ids.shape[-1] == 1 else ids.shape
    ids = ids.reshape(-1)
    if num_classes is None:
        num_classes = int(ids.max()) + 1 if ids.size else 0
    elif isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}")
    if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
        raise ValueError(f"x must hold class ids in [0, {num_classes}) (num_classes), got min {ids.min()} "
                         f"and max {ids.max()}")
    out = np.zeros((ids.size, int(num_classes)))
    out[np.arange(ids.size), ids] = 1
    return out.reshape(*shape, int(num_classes))
