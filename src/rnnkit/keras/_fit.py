"""``Sequential.fit`` and ``evaluate`` on rnnkit's loop, reporting the values Keras reports.

Keras keeps a running (total, count) for the loss and for each metric through an epoch and
reports total / count (``Mean`` in keras/src/metrics/reduction_metrics.py):

- the loss: a batch's loss (its mean over the real steps, where the output has a mask)
  counts once per sample. ``TorchTrainer.train_step`` and ``test_step`` call
  ``_loss_tracker.update_state(loss, sample_weight=x.shape[0])``
  (keras/src/backend/torch/trainer.py).
- a metric: ``MeanMetricWrapper.update_state`` passes the output's mask as the sample weight,
  so a batch adds its values summed over the real steps, and the number of real steps.
  Without a mask, it adds the sum over its samples and their number (1 for a scalar).

With a mask, an epoch's metric is therefore the sum over all its real steps divided by their
number, however the batches split them. rnnkit's loop weights every batch by its items, so
this front end keeps Keras's sums itself (``EpochMeans``) and reads them at each epoch's end.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit import train
from rnnkit.keras._base import as_tensor
from rnnkit.keras._recurrent import RNNLayer
from rnnkit.keras.losses import LossFn, TargetError, batch_weight


class History:
    """What ``fit`` returns. ``history`` maps each name to one value per epoch: ``loss``, the
    metrics, and with validation data ``val_loss`` and ``val_<metric>``. ``epoch`` holds the
    0-based epoch indices."""

    def __init__(self, history: dict[str, list[float]], epoch: list[int], params: dict):
        self.history, self.epoch, self.params = history, epoch, params

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class EpochMeans:
    """Keras's running (total, count) of the loss and of each metric over one epoch.

    ``loss_fn`` and ``metric_fns`` take the loop's ``(outputs, targets)`` order, call Keras's
    ``(y_true, y_pred)`` functions, record what they return and hand it back.
    """

    def __init__(self, loss: LossFn, metrics: dict[str, LossFn], *, targets: str = "y",
                 packed: Packed | None = None):
        self._loss, self._metrics, self._targets, self._packed = loss, metrics, targets, packed
        self.metric_fns = {name: self._recorded(name) for name in metrics}
        self.reset()

    def reset(self) -> None:
        self._sums = {name: [0.0, 0.0] for name in ("loss", *self._metrics)}

    def loss_fn(self, outputs: Tensor, targets: Tensor) -> Tensor:
        y, weight = (targets, None) if self._packed is None else self._packed.unpack(targets)
        loss = self._call(self._loss, outputs, y, *(() if weight is None else (weight,)))
        self._add("loss", float(loss.detach()), outputs.shape[0])  # once per sample
        return loss

    def _recorded(self, name: str):
        def metric(outputs: Tensor, targets: Tensor) -> Tensor:
            y = targets if self._packed is None else self._packed.unpack(targets)[0]
            value = self._call(self._metrics[name], outputs, y)  # unweighted, as Keras's metrics
            self._add(name, float(value), batch_weight(value))  # once per real step
            return value
        return metric

    def _call(self, fn: LossFn, outputs: Tensor, targets: Tensor, *weight: Tensor) -> Tensor:
        try:
            return fn(targets, outputs, *weight)
        except TargetError as err:  # the targets by the name they were given
            raise ValueError(f"{self._targets} {err.expected}") from None

    def _add(self, name: str, mean: float, count: float) -> None:
        sums = self._sums[name]
        sums[0] += mean * count
        sums[1] += count

    def results(self) -> dict[str, float]:
        """total / count of each value (0 where nothing was counted, as Keras's divide_no_nan)."""
        return {name: total / count if count else 0.0 for name, (total, count) in self._sums.items()}


def epoch_log(verbose, epochs: int, steps: int) -> Callable[[int, dict[str, float]], None] | None:
    """Keras's lines for an epoch, on stdout: ``Epoch 2/5`` and ``8/8 - 0s - 12ms/step -
    loss: 0.1234 - val_loss: 0.2345`` (values as Keras formats them); None where ``verbose``
    is 0. Keras's ``verbose=1`` also draws a bar, which here is rnnkit's, on stderr."""
    if verbose not in (0, 1, 2, "auto"):  # True and False are 1 and 0, as Keras reads them
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    if not verbose:
        return None
    from tqdm import tqdm  # writes above an open progress bar

    started = [time.perf_counter()]

    def log(epoch: int, row: dict[str, float]) -> None:
        seconds, started[0] = time.perf_counter() - started[0], time.perf_counter()
        values = " - ".join(f"{k}: {v:.4f}" if abs(v) >= 1e-3 else f"{k}: {v:.4e}" for k, v in row.items())
        tqdm.write(f"Epoch {epoch + 1}/{epochs}\n{steps}/{steps} - {seconds:.0f}s - "
                   f"{1000 * seconds / steps:.0f}ms/step - {values}", file=sys.stdout)

    return log


def fit_epochs(model: nn.Module, loader: SampleLoader, val: SampleLoader | None,
               cfg: train.TrainConfig, compiled: dict, optimizer, *,
               val_targets: str = "validation_data y", callbacks: list = (),
               log: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """Train with ``rnnkit.train.fit``. Returns one row per epoch: the epoch's loss and
    metrics, then ``val_*`` from evaluating ``val`` with the weights the epoch ended with.
    ``callbacks`` (``rnnkit.keras.callbacks``) see each row; one may stop training. ``log``
    (``epoch_log``) reports each row."""
    assert cfg.bptt is None  # one step per batch, so the epoch ends every len(loader) steps
    means = EpochMeans(compiled["loss"], compiled["metrics"], packed=loader.packed)
    rows: list[dict[str, float]] = []

    def at_epoch_end(step: int, _values: dict[str, float]) -> bool:
        if step % len(loader):
            return False
        row = means.results()
        means.reset()
        if val is not None:
            row |= {f"val_{k}": v for k, v in
                    evaluate_means(model, val, compiled, cfg.device, targets=val_targets).items()}
        rows.append(row)
        if log is not None:
            log(len(rows) - 1, row)
        for callback in callbacks:  # one logs dict, as in Keras: what a callback adds, History keeps
            callback.on_epoch_end(len(rows) - 1, row)
        if model.stop_training:
            return True  # fit stops here, and closes its progress bar as at any stop
        for callback in callbacks:
            callback.on_epoch_begin(len(rows))
        return False

    model.stop_training = False
    for callback in callbacks:
        callback.set_model(model)
        callback.on_train_begin()
    for callback in callbacks:
        callback.on_epoch_begin(0)
    train.fit(model, loader, cfg, loss_fn=means.loss_fn, metrics=_loop_names(means.metric_fns),
              optimizer=optimizer, on_step=at_epoch_end)
    for callback in callbacks:
        callback.on_train_end(dict(rows[-1]) if rows else None)
    return rows


def evaluate_means(model: nn.Module, loader: SampleLoader, compiled: dict,
                   device: str, *, targets: str = "y") -> dict[str, float]:
    """The loss and metrics over ``loader`` in evaluation mode, as Keras's ``evaluate`` sums them."""
    means = EpochMeans(compiled["loss"], compiled["metrics"], targets=targets, packed=loader.packed)
    train.evaluate(model, loader, loss_fn=means.loss_fn, metrics=_loop_names(means.metric_fns),
                   cfg=train.TrainConfig(device=device))
    return means.results()


def _loop_names(metric_fns: dict) -> dict:
    """The metrics under names of the loop's own: EpochMeans reports them by the user's, and
    a Keras metric may be called ``lr`` or ``loss``, which the loop's rows already hold."""
    return {f"keras_metric_{i}": fn for i, fn in enumerate(metric_fns.values())}


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
    def plain(k, v) -> bool:
        return (isinstance(k, int | np.integer) and not isinstance(k, bool)
                and isinstance(v, int | float | np.number) and not isinstance(v, bool))

    if not isinstance(class_weight, dict) or not all(plain(k, v) for k, v in class_weight.items()):
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
    ``validation_data`` is ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``."""
    if not (isinstance(validation_split, int | float) and 0.0 <= validation_split < 1.0):
        raise ValueError(f"validation_split must be a fraction in [0, 1), got {validation_split!r}")
    if validation_data is not None and validation_split:
        raise ValueError("pass validation_split or validation_data, not both; got "
                         f"validation_split={validation_split}")
    N = data.x.shape[0]
    if validation_split:
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
    """A ``TensorLoader`` whose targets hold the loss weights after y when ``packed`` says so."""

    def __init__(self, inputs: Tensor, targets: Tensor, *, packed: Packed | None, **options):
        super().__init__(inputs, targets, **options)
        self.packed = packed


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
