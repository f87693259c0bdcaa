"""The data of ``Sequential.fit`` and ``evaluate``: x, y and loss weights as tensors,
``validation_split``/``validation_data``, class weights, and the loader that batches them for
rnnkit's loop (``SampleLoader``, which also tells ``fit`` where each batch begins).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit import train
from rnnkit.keras._base import as_tensor, plain
from rnnkit.keras._recurrent import RNNLayer


class Samples(NamedTuple):
    """What ``fit`` and ``evaluate`` train or score on: x, y and per-sample (or per-step)
    loss weights, or None."""

    x: Tensor
    y: Tensor
    weight: Tensor | None = None


def samples(x, y, *, like: Tensor | None, sample_weight=None, class_weight=None,
            names: tuple[str, str] = ("x", "y")) -> Samples:
    """``x`` and ``y`` as tensors like the model's parameters, checked to hold the same
    number of samples (at least one), with the loss weights from ``sample_weight`` (N,),
    (N, 1) or (N, T). ``class_weight`` is only checked here: ``with_class_weights`` applies
    it to the training part, after any ``validation_split``, as Keras does."""
    x_name, y_name = names
    if y is None:
        raise TypeError(f"{x_name} and {y_name} must be arrays of samples (numpy arrays, torch tensors, "
                        f"lists, or array-likes with __array__ such as pandas DataFrames), got {x_name} "
                        f"of type {type(x).__name__} and {y_name}=None; generators, datasets and "
                        f"DataLoaders of (x, y) batches are not taken: concatenate the batches into two "
                        f"arrays first")
    x_N, y_N = as_tensor(x, name=x_name, like=like), as_tensor(y, name=y_name, like=like)
    if x_N.dim() == 0 or y_N.dim() == 0 or x_N.shape[0] != y_N.shape[0]:
        raise ValueError(f"{x_name} and {y_name} must have the same number of samples (first "
                         f"dimension), got shapes {tuple(x_N.shape)} and {tuple(y_N.shape)}")
    if x_N.shape[0] == 0:
        raise ValueError(f"{x_name} must hold at least one sample, got shape {tuple(x_N.shape)}")
    if sample_weight is not None and class_weight is not None:
        raise ValueError("class_weight and sample_weight cannot be given together (as in Keras): pass one")
    if class_weight is not None:
        _class_weights(y_N, class_weight)  # a bad class_weight fails before any split
    if sample_weight is None:
        return Samples(x_N, y_N)
    name = "sample_weight" if x_name == "x" else "validation_data sample_weight"
    weight_N = as_tensor(sample_weight, name=name, like=None).to(torch.float64)
    finite = bool(weight_N.isfinite().all())
    if weight_N.dim() not in (1, 2) or weight_N.shape[0] != x_N.shape[0] or not finite:
        N, bad = x_N.shape[0], "" if finite else " with NaN or inf"
        raise ValueError(f"{name} must be finite numbers of shape ({N},) or ({N}, T): one per sample "
                         f"or per step, got shape {tuple(weight_N.shape)}{bad}")
    return Samples(x_N, y_N, weight_N)


def with_class_weights(data: Samples, class_weight: dict | None) -> Samples:
    """``data`` with each sample weighing as its class (Keras's rule: a class id per sample
    from (N,) or (N, 1) targets, rounded, or the argmax of one-hot (N, C) ones; other
    classes weigh 1)."""
    return data if class_weight is None else data._replace(weight=_class_weights(data.y, class_weight))


def _class_weights(y_N: Tensor, class_weight) -> Tensor:
    def number(k, v) -> bool:
        return (isinstance(k, int | np.integer) and not isinstance(k, bool)
                and isinstance(v, int | float | np.number) and not isinstance(v, bool))

    if not isinstance(class_weight, dict) or not all(number(k, v) for k, v in class_weight.items()):
        raise ValueError(f"class_weight must be a dict {{class id: weight}}, got {class_weight!r}")
    classes_N = y_N
    if y_N.dim() > 1:
        classes_N = y_N.argmax(dim=-1) if y_N.shape[-1] != 1 else y_N.squeeze(-1)
    if classes_N.dim() != 1:
        raise ValueError(f"class_weight needs one class per sample: y of shape (N,), (N, 1) or one-hot "
                         f"(N, C), got {tuple(y_N.shape)}")
    ids, index_N = classes_N.double().round().long().unique(return_inverse=True)
    return torch.tensor([float(class_weight.get(int(c), 1.0)) for c in ids], dtype=torch.float64)[index_N]


def hold_out(data: Samples, validation_split, validation_data, *, like: Tensor | None
             ) -> tuple[Samples, Samples | None]:
    """The training samples and the validation ones (or None). A ``validation_split`` is
    taken from the end of the data (weights included), before any shuffling, as in Keras;
    ``validation_data`` is ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``, and
    overrides ``validation_split`` where both are given, as Keras's ``fit`` says."""
    validation_split = plain(validation_split)
    if isinstance(validation_split, bool) or not (isinstance(validation_split, int | float)
                                                  and 0.0 <= validation_split < 1.0):
        raise ValueError(f"validation_split must be a fraction in [0, 1), got {validation_split!r}")
    N = data.x.shape[0]
    if validation_split and validation_data is None:
        split = math.floor(N * (1.0 - validation_split))
        if split == 0 or split == N:
            raise ValueError(f"validation_split={validation_split} of {N} samples "
                             f"leaves {split} for training and {N - split} to validate")
        cut = [(t[:split], t[split:]) if t is not None else (None, None) for t in data]
        return Samples(*(c[0] for c in cut)), Samples(*(c[1] for c in cut))
    if validation_data is None:
        return data, None
    if not isinstance(validation_data, tuple | list) or len(validation_data) not in (2, 3):
        given = type(validation_data).__name__
        if isinstance(validation_data, tuple | list):
            given += f" of {len(validation_data)}"
        raise ValueError(f"validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight_val), "
                         f"got a {given}")
    x_val, y_val, *weight = validation_data
    return data, samples(x_val, y_val, like=like, sample_weight=weight[0] if weight else None,
                         names=("validation_data x", "validation_data y"))


def batch_size_for(model: nn.Module, batch_size: int | None) -> int:
    """``batch_size`` checked; by default a stateful layer's batch size, else 32 (Keras's)."""
    if batch_size is None:
        return _stateful_batch(model) or 32
    batch_size = plain(batch_size)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    return batch_size


class Packed(NamedTuple):
    """Targets and their loss weights side by side in one (N, y size + weight size) float64
    tensor: rnnkit's loop batches, shuffles and moves one target tensor, and this keeps each
    sample's weights with its targets through all of it."""

    y_shape: tuple[int, ...]  # per sample
    weight_shape: tuple[int, ...]

    def pack(self, y_N: Tensor, weight_N: Tensor) -> Tensor:
        N = y_N.shape[0]
        return torch.cat([y_N.reshape(N, -1).to(torch.float64), weight_N.reshape(N, -1)], dim=1)

    def unpack(self, targets: Tensor) -> tuple[Tensor, Tensor]:
        n = math.prod(self.y_shape)
        B = targets.shape[0]
        return targets[:, :n].reshape(B, *self.y_shape), targets[:, n:].reshape(B, *self.weight_shape)


class SampleLoader(train.TensorLoader):
    """A ``TensorLoader`` whose targets hold the loss weights after y when ``packed`` says so.
    ``before_batch(epoch, index)``, when set, runs as the loop asks for each batch, before
    its forward pass: where Keras calls ``on_epoch_begin`` and ``on_train_batch_begin``."""

    def __init__(self, inputs: Tensor, targets: Tensor, *, packed: Packed | None, **options):
        super().__init__(inputs, targets, **options)
        self.packed = packed
        self.before_batch: Callable[[int, int], None] | None = None

    def batches(self, epoch: int, start: int = 0) -> Iterator[train.Batch]:
        for index, batch in enumerate(super().batches(epoch, start), start=start):
            if self.before_batch is not None:
                self.before_batch(epoch, index)
            yield batch


def tensor_loader(model: nn.Module, data: Samples, batch_size: int, *, shuffle: bool,
                  seed: int = 0) -> SampleLoader:
    x_N, y_N, weight_N = data
    stateful = _stateful_batch(model)
    if stateful is None:
        batch_size = min(batch_size, x_N.shape[0])  # Keras takes one short batch
    elif x_N.shape[0] % stateful:
        raise ValueError(f"stateful layers keep state for batch_size={stateful} sequences: "
                         f"the number of samples must be a multiple of it, got {x_N.shape[0]}")
    # as float64: rnnkit's loop skips integer per-step targets of -100 (its ignore index),
    # which Keras trains on like any other value; float64 holds any class id exactly (a
    # bfloat16 model's dtype would round 299 to 300), and the losses cast it to the output's
    if not y_N.is_floating_point():
        y_N = y_N.to(torch.float64)
    packed = None
    if weight_N is not None:
        packed = Packed(tuple(y_N.shape[1:]), tuple(weight_N.shape[1:]))
        y_N = packed.pack(y_N, weight_N)
    return SampleLoader(x_N, y_N, packed=packed, batch_size=batch_size, shuffle=shuffle, seed=seed)


def _stateful_batch(model: nn.Module) -> int | None:
    sizes = {m._batch_size for m in model.modules() if isinstance(m, RNNLayer) and m.stateful}
    sizes.discard(None)
    return sizes.pop() if len(sizes) == 1 else None
