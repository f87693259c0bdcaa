"""``fit`` and ``evaluate`` (of ``Sequential`` and ``Model``) on rnnkit's loop, reporting the
values Keras reports.

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

With several outputs, the loss is the sum of each output's loss times its ``loss_weights``
entry, and each output's unweighted loss is reported as ``<output>_loss`` where more than one
output has a loss (Keras 3's ``CompileLoss``), its metrics as ``<output>_<metric>``; the
order of the values is Keras 3's ``evaluate`` list (``EpochMeans.names``).

``fit_epochs`` calls the callbacks where Keras's fit does (``rnnkit.keras._callback``): the
loader says where each batch begins, the loop's ``on_step`` where it ends. ``evaluate_means``
runs its own loop over the batches (forward, loss, metrics), so that it can call the
``on_test_batch_*`` hooks around each, as Keras's ``evaluate`` does.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnkit import train
from rnnkit.keras._base import plain, training_mode
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


class Head(NamedTuple):
    """One output's part of what ``compile`` asked for: the name its values are reported
    under (None: the model's only output, whose values carry no prefix), its loss (None: the
    output is not trained), the loss's weight in the total (None: 1), and its metrics by
    the names they are reported under."""

    name: str | None
    loss: LossFn | None
    weight: float | None
    metrics: dict[str, LossFn]


class EpochMeans:
    """Keras's running (total, count) of the loss and of each metric over one epoch.

    ``loss_fn`` and ``metric_fns`` take the loop's ``(outputs, targets)`` order, call Keras's
    ``(y_true, y_pred)`` functions, record what they return and hand it back. With several
    outputs (``heads``) the loss is the weighted sum of theirs, and each output's own loss,
    unweighted, is reported as ``<output>_loss``, as Keras 3's ``CompileLoss`` does.
    """

    def __init__(self, heads: list[Head], *, targets: str = "y", packed: Packed | None = None):
        self._heads, self._targets, self._packed = heads, targets, packed
        self._multi = len(heads) > 1
        # Keras 3's CompileLoss tracks each output's loss only where more than one output has one
        self._per_output = sum(head.loss is not None for head in heads) > 1
        self.metric_fns = {name: self._recorded(k, name)
                           for k, head in enumerate(heads) for name in head.metrics}
        self.reset()

    def names(self) -> list[str]:
        """What ``results`` reports, in the order of Keras 3's ``evaluate`` list
        (``Trainer._flatten_metrics_in_order``): first the names of ``model.metrics`` that
        the logs hold, in its order (the loss, the compiled metrics by their own names, such
        as ``accuracy``, then each output's ``<output>_loss``), then every other log key
        sorted. With several outputs the metrics are logged as ``<output>_<metric>``, which
        are not their own names, so they come last, sorted: ``[loss, r_loss, c_loss,
        c_accuracy]``."""
        logged = ["loss", *self.metric_fns,
                  *(f"{h.name}_loss" for h in self._heads if self._per_output and h.loss is not None)]
        own = ["loss", *(_own_name(h, name) for h in self._heads for name in h.metrics),
               *(f"{h.name}_loss" for h in self._heads if self._per_output and h.loss is not None)]
        first = [name for name in own if name in logged]
        return list(dict.fromkeys(first + sorted(name for name in logged if name not in own)))

    def reset(self) -> None:
        self._sums = {name: [0.0, 0.0] for name in self.names()}

    def _split(self, outputs, targets: Tensor) -> tuple[list[Tensor], list[Tensor], list[Tensor | None]]:
        preds = list(outputs) if isinstance(outputs, list | tuple) else [outputs]
        ys, weights = ([targets], [None]) if self._packed is None else self._packed.unpack(targets)
        assert len(preds) == len(ys) == len(self._heads)
        return preds, ys, weights

    def loss_fn(self, outputs, targets: Tensor) -> Tensor:
        preds, ys, weights = self._split(outputs, targets)
        B, total = preds[0].shape[0], None
        for k, (head, pred, y, weight) in enumerate(zip(self._heads, preds, ys, weights, strict=True)):
            if head.loss is None:
                continue
            value = self._call(head.loss, pred, y, k, *(() if weight is None else (weight,)))
            if self._per_output:  # unweighted, once per sample, as Keras's per-output trackers
                self._add(f"{head.name}_loss", float(value.detach()), B)
            value = value if head.weight is None else value * head.weight
            total = value if total is None else total + value
        self._add("loss", float(total.detach()), B)  # once per sample
        return total

    def _recorded(self, k: int, name: str):
        def metric(outputs, targets: Tensor) -> Tensor:
            preds, ys, _ = self._split(outputs, targets)
            value = self._call(self._heads[k].metrics[name], preds[k], ys[k], k)  # unweighted, as Keras's
            self._add(name, float(value), batch_weight(value))  # once per real step
            return value
        return metric

    def _call(self, fn: LossFn, outputs: Tensor, targets: Tensor, k: int, *weight: Tensor) -> Tensor:
        try:
            return fn(targets, outputs, *weight)
        except TargetError as err:  # the targets by the name they were given
            which = f"[{k}] (for output '{self._heads[k].name}')" if self._multi else ""
            raise ValueError(f"{self._targets}{which} {err.expected}") from None

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
               val_targets: str = "validation_data y", initial_epoch: int = 0, validation_freq=1,
               run: bool = True, log: Callable[[int, dict[str, float]], None] | None = None
               ) -> list[dict[str, float]]:
    """Train with ``rnnkit.train.fit`` for ``cfg.epochs`` epochs, numbered from
    ``initial_epoch`` (Keras's: epochs ``initial_epoch`` to ``epochs - 1``). Returns one row
    per epoch: the epoch's loss and metrics, then ``val_*`` from evaluating ``val`` with the
    weights the epoch ended with, after the epochs ``validation_freq`` picks (Keras's
    ``_should_eval``: an int k, every k-th epoch counted from 1; a list, those epochs).
    ``callbacks`` are called as Keras calls them (``rnnkit.keras._callback``); one may stop
    training. ``log`` (``epoch_log``) reports each row. ``run=False`` (``initial_epoch >=
    epochs``): the train hooks only, as Keras's ``fit`` then trains nothing."""
    assert cfg.bptt is None  # one step per batch
    means = EpochMeans(compiled["heads"], packed=loader.packed)
    rows: list[dict[str, float]] = []
    at = [0, 0]  # the loop's epoch and the batch being trained

    def before_batch(epoch: int, batch: int) -> None:
        at[:] = epoch, batch
        if batch == 0:
            callbacks.on_epoch_begin(initial_epoch + epoch)
        callbacks.on_train_batch_begin(batch)
        # the loop sets each group's lr from its base_lr before the step (its schedule, constant
        # here): a rate changed since (a callback, a torch scheduler, param_groups) becomes the base
        for group in optimizer.param_groups:
            group["base_lr"] = group["lr"]

    def end_epoch(epoch: int) -> None:
        row = means.results()
        means.reset()
        if val is not None and should_validate(initial_epoch + epoch, validation_freq):
            with training_mode(model, False):
                values = evaluate_means(model, val, compiled, cfg.device, targets=val_targets,
                                        callbacks=callbacks)
            row |= {f"val_{k}": v for k, v in values.items()}
        rows.append(row)
        # one dict for all: what a callback adds, History keeps
        callbacks.on_epoch_end(initial_epoch + epoch, row)
        if log is not None:  # after the callbacks, with what they added, as Keras's progress bar
            log(initial_epoch + epoch, row)

    def after_step(_step: int, _values: dict[str, float]) -> bool:
        epoch, batch = at
        callbacks.on_train_batch_end(batch, means.results())  # the epoch's running values, as Keras's
        if batch == loader.epoch_length(epoch) - 1 or model.stop_training:
            end_epoch(epoch)
        return model.stop_training  # fit stops here, and closes its progress bar as at any stop

    model.stop_training = False
    loader.before_batch = before_batch
    callbacks.on_train_begin()
    try:
        if run:
            train.fit(model, loader, cfg, loss_fn=means.loss_fn, metrics=_loop_names(means.metric_fns),
                      optimizer=optimizer, on_step=after_step)
    except FloatingPointError:  # the loop refuses a non-finite loss before its step
        epoch, batch = at
        loss = means.results()["loss"]
        if math.isfinite(loss):  # a gradient, which Keras's callbacks never see
            raise FloatingPointError(_advice("the gradient norm is not finite", initial_epoch + epoch,
                                             batch)) from None
        callbacks.on_train_batch_end(batch, means.results())  # TerminateOnNaN stops here
        if not model.stop_training:
            raise FloatingPointError(_advice(f"loss is {loss}", initial_epoch + epoch, batch)) from None
        end_epoch(epoch)
    finally:
        loader.before_batch = None
    callbacks.on_train_end(dict(rows[-1]) if rows else None)
    return rows


def should_validate(epoch: int, validation_freq) -> bool:
    """Keras's ``_should_eval`` for the 0-based ``epoch``."""
    return (epoch + 1) % validation_freq == 0 if isinstance(validation_freq, int) else (
        epoch + 1 in validation_freq)


def check_validation_freq(validation_freq):
    """A positive int or a list of 1-based epochs, as Keras takes it."""
    value = plain(validation_freq)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, list | tuple) and all(
            isinstance(plain(e), int) and not isinstance(plain(e), bool) for e in value):
        return [plain(e) for e in value]
    raise ValueError(f"validation_freq must be a positive int (validate every k-th epoch) or a list of "
                     f"epochs counted from 1, got {validation_freq!r}")


def _advice(what: str, epoch: int, batch: int) -> str:
    """A non-finite loss or gradient at ``epoch``'s ``batch`` (0-based), with what a Keras user
    can change (the loop's own message names TrainConfig's settings, which Keras's API cannot reach)."""
    return (f"{what} at epoch {epoch + 1}, batch {batch + 1}; training stopped before this step changed "
            f"the weights. Lower the learning rate "
            f"(optimizer=rnnkit.keras.optimizers.Adam(learning_rate=1e-4)), clip the gradients "
            f"(Adam(clipnorm=1.0), or clipvalue=), check x and y for NaN/inf, or pass "
            f"callbacks=[TerminateOnNaN()] to end training at such a batch without an error")


@torch.no_grad()
def evaluate_means(model: nn.Module, loader: SampleLoader, compiled: dict, device: str, *,
                   targets: str = "y", callbacks: CallbackList | None = None) -> dict[str, float]:
    """The loss and metrics over ``loader`` as Keras's ``evaluate`` sums them, calling the
    ``on_test_*`` hooks of ``callbacks`` as Keras does; the caller sets evaluation mode.
    Setting ``model.stop_evaluating`` in a hook ends it after that batch."""
    means = EpochMeans(compiled["heads"], targets=targets, packed=loader.packed)
    callbacks = callbacks if callbacks is not None else CallbackList([], model=model)
    model.stop_evaluating = False
    callbacks.call("on_test_begin", {})
    for index, batch in enumerate(loader.batches(0)):
        callbacks.call("on_test_batch_begin", index, {})
        batch = batch.to(device)
        outputs = model(batch.inputs)
        means.loss_fn(outputs, batch.targets)
        for fn in means.metric_fns.values():
            fn(outputs, batch.targets)
        callbacks.call("on_test_batch_end", index, means.results())
        if model.stop_evaluating:
            break
    results = means.results()
    callbacks.call("on_test_end", dict(results))
    return results


def _own_name(head: Head, name: str) -> str:
    """A metric's own name (Keras's ``metric.name``): its reported name without the output's
    prefix."""
    return name if head.name is None else name.removeprefix(f"{head.name}_")


def _loop_names(metric_fns: dict) -> dict:
    """The metrics under names of the loop's own: EpochMeans reports them by the user's, and
    a Keras metric may be called ``lr`` or ``loss``, which the loop's rows already hold."""
    return {f"keras_metric_{i}": fn for i, fn in enumerate(metric_fns.values())}
