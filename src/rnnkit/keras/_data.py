"""The data of ``fit`` and ``evaluate``: x, y and loss weights as tensors (``Arrays`` of them
for a functional model's several inputs or outputs), ``validation_split``/``validation_data``,
class weights, and the loader that batches them for rnnkit's loop (``SampleLoader``, which
also tells ``fit`` where each batch begins, and takes Keras's ``steps_per_epoch``).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit import train
from rnnkit.keras._base import as_tensor, plain
from rnnkit.keras._recurrent import RNNLayer


class Arrays(tuple):
    """Several (N, ...) tensors taken together: a functional model's inputs, its targets, or
    their loss weights (None where an output has none). Indexing by rows (a slice or an
    index tensor) takes those rows of each; an int is one of them. The constructor takes the
    tensors as arguments, as the loop's ``Batch.to`` remakes a tuple of inputs."""

    def __new__(cls, *tensors: Tensor | None):
        return super().__new__(cls, tensors)

    def __getitem__(self, key):
        if isinstance(key, int):
            return super().__getitem__(key)
        return Arrays(*(None if t is None else t[key] for t in self))


def rows(data: Tensor | Arrays) -> int:
    """N, the number of samples of a tensor or of ``Arrays`` (checked equal by ``samples``)."""
    return (data if isinstance(data, Tensor) else data[0]).shape[0]


def _shapes(data: Tensor | Arrays):
    return tuple(data.shape) if isinstance(data, Tensor) else [tuple(t.shape) for t in data]


class Samples(NamedTuple):
    """What ``fit`` and ``evaluate`` train or score on: x, y and per-sample (or per-step)
    loss weights, or None; ``Arrays`` for a model of several inputs or outputs."""

    x: Tensor | Arrays
    y: Tensor | Arrays
    weight: Tensor | Arrays | None = None


def samples(x, y, *, like: Tensor | None, sample_weight=None, class_weight=None,
            names: tuple[str, str] = ("x", "y")) -> Samples:
    """``x`` and ``y`` as tensors like the model's parameters (``Arrays`` a functional model
    made are kept), checked to hold the same number of samples (at least one), with the
    loss weights from ``sample_weight`` (N,), (N, 1) or (N, T), or one such array per output.
    ``class_weight`` is only checked here: ``with_class_weights`` applies it to the training
    part, after any ``validation_split``, as Keras does."""
    x_name, y_name = names
    if y is None:
        raise TypeError(f"{x_name} and {y_name} must be arrays of samples (numpy arrays, torch tensors, "
                        f"lists, or array-likes with __array__ such as pandas DataFrames), got {x_name} "
                        f"of type {type(x).__name__} and {y_name}=None; generators, datasets and "
                        f"DataLoaders of (x, y) batches are not taken: concatenate the batches into two "
                        f"arrays first")
    x_N = x if isinstance(x, Arrays) else as_tensor(x, name=x_name, like=like)
    y_N = y if isinstance(y, Arrays) else as_tensor(y, name=y_name, like=like)
    every = [*(x_N if isinstance(x_N, Arrays) else [x_N]), *(y_N if isinstance(y_N, Arrays) else [y_N])]
    if any(t.dim() == 0 for t in every) or len({t.shape[0] for t in every}) > 1:
        raise ValueError(f"{x_name} and {y_name} must have the same number of samples (first "
                         f"dimension), got shapes {_shapes(x_N)} and {_shapes(y_N)}")
    N = rows(x_N)
    if N == 0:
        raise ValueError(f"{x_name} must hold at least one sample, got shape {_shapes(x_N)}")
    if sample_weight is not None and class_weight is not None:
        raise ValueError("class_weight and sample_weight cannot be given together (as in Keras): pass one")
    if class_weight is not None:
        if isinstance(y_N, Arrays):
            raise ValueError(f"class_weight is only supported for models with a single output (as in "
                             f"Keras), got {len(y_N)} outputs: pass sample_weight per output instead")
        _class_weights(y_N, class_weight)  # a bad class_weight fails before any split
    if sample_weight is None:
        return Samples(x_N, y_N)
    name = "sample_weight" if x_name == "x" else "validation_data sample_weight"
    if not isinstance(y_N, Arrays):
        return Samples(x_N, y_N, _weight(sample_weight, N, name))
    return Samples(x_N, y_N, _output_weights(sample_weight, len(y_N), N, name))


def _weight(sample_weight, N: int, name: str) -> Tensor:
    weight_N = as_tensor(sample_weight, name=name, like=None).to(torch.float64)
    finite = bool(weight_N.isfinite().all())
    if weight_N.dim() not in (1, 2) or weight_N.shape[0] != N or not finite:
        bad = "" if finite else " with NaN or inf"
        raise ValueError(f"{name} must be finite numbers of shape ({N},) or ({N}, T): one per sample "
                         f"or per step, got shape {tuple(weight_N.shape)}{bad}")
    return weight_N


def _output_weights(sample_weight, outputs: int, N: int, name: str) -> Arrays:
    """One weight array (or None) per output: a list of them, or one per-sample array that
    every output takes, as Keras replicates it."""
    if isinstance(sample_weight, list | tuple):
        if len(sample_weight) != outputs:
            raise ValueError(f"{name} must be one array (or None) per output, {outputs} in all, got a "
                             f"list of {len(sample_weight)}")
        return Arrays(*(None if w is None else _weight(w, N, f"{name}[{k}]")
                        for k, w in enumerate(sample_weight)))
    weight_N = _weight(sample_weight, N, name)
    if weight_N.dim() == 2 and weight_N.shape[1] != 1:
        raise ValueError(f"{name} for a model of {outputs} outputs must be one weight per sample, shape "
                         f"({N},), or one array per output, got shape {tuple(weight_N.shape)}")
    return Arrays(*(weight_N,) * outputs)


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


def hold_out(data: Samples, validation_split, validation_data, *, make: Callable[..., Samples]
             ) -> tuple[Samples, Samples | None]:
    """The training samples and the validation ones (or None). A ``validation_split`` is
    taken from the end of the data (weights included), before any shuffling, as in Keras;
    ``validation_data`` is ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``, and
    overrides ``validation_split`` where both are given, as Keras's ``fit`` says. ``make(x, y,
    sample_weight, names)`` converts it as the model converts ``fit``'s data."""
    validation_split = plain(validation_split)
    if isinstance(validation_split, bool) or not (isinstance(validation_split, int | float)
                                                  and 0.0 <= validation_split < 1.0):
        raise ValueError(f"validation_split must be a fraction in [0, 1), got {validation_split!r}")
    N = rows(data.x)
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
    return data, make(x_val, y_val, weight[0] if weight else None, ("validation_data x", "validation_data y"))


def batch_size_for(model: nn.Module, batch_size: int | None) -> int:
    """``batch_size`` checked; by default a stateful layer's batch size, else 32 (Keras's)."""
    if batch_size is None:
        return _stateful_batch(model) or 32
    batch_size = plain(batch_size)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    return batch_size


class Packed(NamedTuple):
    """Targets and their loss weights side by side in one (N, sizes...) float64 tensor: each
    output's y, then each weight (None: that output has none). rnnkit's loop batches,
    shuffles and moves one target tensor, and this keeps each sample's targets and weights
    together through all of it."""

    y_shapes: tuple[tuple[int, ...], ...]  # per sample, one per output
    weight_shapes: tuple[tuple[int, ...] | None, ...]

    @staticmethod
    def of(ys: Arrays, weights: Arrays) -> Packed:
        return Packed(tuple(tuple(y.shape[1:]) for y in ys),
                      tuple(None if w is None else tuple(w.shape[1:]) for w in weights))

    def pack(self, ys: Arrays, weights: Arrays) -> Tensor:
        N = ys[0].shape[0]
        parts = [t.reshape(N, -1).to(torch.float64) for t in (*ys, *weights) if t is not None]
        return torch.cat(parts, dim=1)

    def unpack(self, targets: Tensor) -> tuple[list[Tensor], list[Tensor | None]]:
        """Each output's y and weight (or None), per batch."""
        B, parts, at = targets.shape[0], [], 0
        for shape in (*self.y_shapes, *self.weight_shapes):
            if shape is None:
                parts.append(None)
                continue
            n = math.prod(shape)
            parts.append(targets[:, at:at + n].reshape(B, *shape))
            at += n
        assert at == targets.shape[1]
        k = len(self.y_shapes)
        return parts[:k], parts[k:]


class SampleLoader(train.TensorLoader):
    """A ``TensorLoader`` of sample indices that hands the loop the samples' inputs (a tensor,
    or ``Arrays`` for several), with targets that hold several outputs and loss weights when
    ``packed`` says so. ``before_batch(epoch, index)``, when set, runs as the loop asks for
    each batch, before its forward pass: where Keras calls ``on_epoch_begin`` and
    ``on_train_batch_begin``.

    ``steps`` (Keras's ``steps_per_epoch`` on arrays): each epoch takes the next ``steps``
    batches of an ongoing pass over the data, and ends early where the pass runs out, as
    Keras 3's ``EpochIterator`` does (the next epoch starts a new pass, reshuffled).
    ``limit`` (``validation_steps``): only the first ``limit`` batches of each pass.
    """

    def __init__(self, inputs: Tensor | Arrays, targets: Tensor, *, packed: Packed | None,
                 steps: int | None = None, limit: int | None = None, **options):
        # the loop batches indices, which batches() turns into the samples' inputs
        super().__init__(torch.arange(rows(inputs)), targets, **options)
        self.samples, self.packed = inputs, packed
        self.steps, self.limit = steps, limit
        self.before_batch: Callable[[int, int], None] | None = None
        self._plan: list[list[tuple[int, int]]] = []  # per epoch: (pass, batch in it)

    def keras_steps(self) -> int:
        """Batches in a full epoch: Keras's ``steps`` in ``params`` and the progress line
        (``len`` stays the batches of a pass, which the parent's order is cut to)."""
        return min(len(self), self.limit) if self.limit else (self.steps or len(self))

    def epoch_length(self, epoch: int) -> int:
        return len(self._epoch(epoch))

    def total_steps(self, epochs: int, bptt: int | None, *, limit: int | None = None) -> int:
        return sum(self.epoch_length(e) for e in range(epochs))

    def _epoch(self, epoch: int) -> list[tuple[int, int]]:
        """(pass, batch) of each of ``epoch``'s batches: a pure function of the epoch, as the
        loop's loaders are."""
        passes = len(self)
        if self.steps is None:
            return [(epoch, k) for k in range(self.keras_steps())]
        while len(self._plan) <= epoch:
            last = self._plan[-1][-1] if self._plan else (-1, passes - 1)
            p, k = (last[0] + 1, 0) if last[1] == passes - 1 else (last[0], last[1] + 1)
            self._plan.append([(p, j) for j in range(k, min(k + self.steps, passes))])
        return self._plan[epoch]

    def batches(self, epoch: int, start: int = 0) -> Iterator[train.Batch]:
        if self.steps is None:
            batches = itertools.islice(super().batches(epoch, start), max(self.keras_steps() - start, 0))
        else:
            batches = self._planned(epoch, start)
        for index, batch in enumerate(batches, start=start):
            if self.before_batch is not None:
                self.before_batch(epoch, index)
            yield batch._replace(inputs=self.samples[batch.inputs])

    def _planned(self, epoch: int, start: int) -> Iterator[train.Batch]:
        plan = self._epoch(epoch)
        if len(plan) < self.steps and start == 0:  # Keras's warning, where its epoch is cut short
            warnings.warn("Your input ran out of data; interrupting training. Make sure that your dataset "
                          "or generator can generate at least `steps_per_epoch * epochs` batches.",
                          stacklevel=3)
        wanted = set(plan[start:])
        for p in dict.fromkeys(p for p, _ in plan[start:]):  # a pass's order is the parent's epoch p
            for k, batch in enumerate(super().batches(p)):
                if (p, k) in wanted:
                    yield batch


def tensor_loader(model: nn.Module, data: Samples, batch_size: int, *, shuffle: bool,
                  seed: int = 0, steps: int | None = None, limit: int | None = None) -> SampleLoader:
    x_N, y_N, weight_N = data
    N = rows(x_N)
    stateful = _stateful_batch(model)
    if stateful is None:
        batch_size = min(batch_size, N)  # Keras takes one short batch
    elif N % stateful:
        raise ValueError(f"stateful layers keep state for batch_size={stateful} sequences: "
                         f"the number of samples must be a multiple of it, got {N}")
    # as float64: rnnkit's loop skips integer per-step targets of -100 (its ignore index),
    # which Keras trains on like any other value; float64 holds any class id exactly (a
    # bfloat16 model's dtype would round 299 to 300), and the losses cast it to the output's
    packed = None
    if isinstance(y_N, Arrays) or weight_N is not None:
        ys = y_N if isinstance(y_N, Arrays) else Arrays(y_N)
        weights = weight_N if isinstance(weight_N, Arrays) else Arrays(*[weight_N] * len(ys))
        packed = Packed.of(ys, weights)
        y_N = packed.pack(ys, weights)
    elif not y_N.is_floating_point():
        y_N = y_N.to(torch.float64)
    return SampleLoader(x_N, y_N, packed=packed, batch_size=batch_size, shuffle=shuffle, seed=seed,
                        steps=steps, limit=limit)


def _stateful_batch(model: nn.Module) -> int | None:
    sizes = {m._batch_size for m in model.modules() if isinstance(m, RNNLayer) and m.stateful}
    sizes.discard(None)
    return sizes.pop() if len(sizes) == 1 else None
