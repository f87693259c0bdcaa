"""``pad_sequences``, as Keras's (``keras.utils.pad_sequences``): lists of ids to one array."""

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
