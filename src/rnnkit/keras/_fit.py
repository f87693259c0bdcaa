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

``fit_epochs`` calls the callbacks where Keras's fit does (``rnnkit.keras._callback``): the
loader says where each batch begins, the loop's ``on_step`` where it ends.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

from torch import Tensor, nn

from rnnkit import train
from rnnkit.keras._callback import CallbackList
from rnnkit.keras._data import Packed, SampleLoader
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
        values = " - ".join(f"{k}: {_keras_number(v)}" for k, v in row.items())
        tqdm.write(f"Epoch {epoch + 1}/{epochs}\n{steps}/{steps} - {seconds:.0f}s - "
                   f"{1000 * seconds / steps:.0f}ms/step - {values}", file=sys.stdout)

    return log


def _keras_number(value) -> str:
    """Keras's progress-bar format: 4 decimals, or 4 significant digits below 1e-3."""
    if isinstance(value, bool) or not isinstance(value, int | float):  # a callback's own value
        return str(value)
    return f"{value:.4f}" if abs(value) >= 1e-3 else f"{value:.4e}"


def fit_epochs(model: nn.Module, loader: SampleLoader, val: SampleLoader | None,
               cfg: train.TrainConfig, compiled: dict, optimizer, *, callbacks: CallbackList,
               val_targets: str = "validation_data y",
               log: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """Train with ``rnnkit.train.fit``. Returns one row per epoch: the epoch's loss and
    metrics, then ``val_*`` from evaluating ``val`` with the weights the epoch ended with.
    ``callbacks`` are called as Keras calls them (``rnnkit.keras._callback``); one may stop
    training. ``log`` (``epoch_log``) reports each row."""
    assert cfg.bptt is None  # one step per batch
    means = EpochMeans(compiled["loss"], compiled["metrics"], packed=loader.packed)
    rows: list[dict[str, float]] = []
    at = [0, 0]  # the epoch and batch being trained

    def before_batch(epoch: int, batch: int) -> None:
        at[:] = epoch, batch
        if batch == 0:
            callbacks.on_epoch_begin(epoch)
        callbacks.on_train_batch_begin(batch)
        # the loop sets each group's lr from its base_lr before the step (its schedule, constant
        # here): a rate changed since (a callback, a torch scheduler, param_groups) becomes the base
        for group in optimizer.param_groups:
            group["base_lr"] = group["lr"]

    def end_epoch(epoch: int) -> None:
        row = means.results()
        means.reset()
        if val is not None:
            row |= {f"val_{k}": v for k, v in
                    evaluate_means(model, val, compiled, cfg.device, targets=val_targets).items()}
        rows.append(row)
        callbacks.on_epoch_end(epoch, row)  # one dict for all: what a callback adds, History keeps
        if log is not None:  # after the callbacks, with what they added, as Keras's progress bar
            log(epoch, row)

    def after_step(_step: int, _values: dict[str, float]) -> bool:
        epoch, batch = at
        callbacks.on_train_batch_end(batch, means.results())  # the epoch's running values, as Keras's
        if batch == len(loader) - 1 or model.stop_training:
            end_epoch(epoch)
        return model.stop_training  # fit stops here, and closes its progress bar as at any stop

    model.stop_training = False
    loader.before_batch = before_batch
    callbacks.on_train_begin()
    try:
        train.fit(model, loader, cfg, loss_fn=means.loss_fn, metrics=_loop_names(means.metric_fns),
                  optimizer=optimizer, on_step=after_step)
    except FloatingPointError:  # the loop refuses a non-finite loss before its step
        epoch, batch = at
        loss = means.results()["loss"]
        if math.isfinite(loss):  # a gradient, which Keras's callbacks never see
            raise FloatingPointError(_advice("the gradient norm is not finite", epoch, batch)) from None
        callbacks.on_train_batch_end(batch, means.results())  # TerminateOnNaN stops here
        if not model.stop_training:
            raise FloatingPointError(_advice(f"loss is {loss}", epoch, batch)) from None
        end_epoch(epoch)
    finally:
        loader.before_batch = None
    callbacks.on_train_end(dict(rows[-1]) if rows else None)
    return rows


def _advice(what: str, epoch: int, batch: int) -> str:
    """A non-finite loss or gradient at ``epoch``'s ``batch`` (0-based), with what a Keras user
    can change (the loop's own message names TrainConfig's settings, which Keras's API cannot reach)."""
    return (f"{what} at epoch {epoch + 1}, batch {batch + 1}; training stopped before this step changed "
            f"the weights. Lower the learning rate "
            f"(optimizer=rnnkit.keras.optimizers.Adam(learning_rate=1e-4)), clip the gradients "
            f"(Adam(clipnorm=1.0), or clipvalue=), check x and y for NaN/inf, or pass "
            f"callbacks=[TerminateOnNaN()] to end training at such a batch without an error")


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
