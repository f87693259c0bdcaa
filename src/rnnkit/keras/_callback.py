"""Keras's ``Callback`` (keras/src/callbacks/callback.py) and the list that ``fit`` calls
(``CallbackList``, keras/src/callbacks/callback_list.py); the callbacks themselves are in
``rnnkit.keras.callbacks``.

``fit`` calls, as Keras 3's does: ``on_train_begin``; for each epoch ``on_epoch_begin``,
then for each batch ``on_train_batch_begin(batch)`` before its step and
``on_train_batch_end(batch, logs)`` after it, with the epoch's running loss and metrics so
far; ``on_epoch_end(epoch, logs)`` with the History row (``val_*`` included); at the end
``on_train_end`` with the last row. ``on_batch_begin``/``on_batch_end`` are Keras's aliases:
the default ``on_train_batch_*`` call them. A callback that sets ``model.stop_training``
(in any hook) ends training after the current batch, with a row for its epoch (over the
batches run), as Keras does. ``params`` is ``{"epochs", "steps", "verbose"}``.

``evaluate`` calls ``on_test_begin``, then ``on_test_batch_begin(batch)`` and
``on_test_batch_end(batch, logs)`` (the running loss and metrics) per batch, and
``on_test_end(logs)`` with its results; ``fit``'s validation does the same on fit's
callbacks, after the epoch's last ``on_train_batch_end`` and before its ``on_epoch_end``
(the logs without the ``val_`` prefix, as Keras's ``evaluate`` gives them). ``predict``
calls ``on_predict_begin``, ``on_predict_batch_begin(batch)``,
``on_predict_batch_end(batch, {"outputs": ...})`` (the batch's output tensors, as Keras's
torch backend hands them) and ``on_predict_end``. Setting ``model.stop_evaluating`` or
``model.stop_predicting`` ends those loops after the current batch, as in Keras.
"""

from __future__ import annotations

from typing import Any

from rnnkit.keras.losses import LOSSES

# metrics that grow as the model gets better; the loss and every loss used as a metric shrink
_UP = ("accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy")
_SUFFIXES = tuple(f"_{name}" for name in (*_UP, "loss", *LOSSES))  # of per-output values: cls_accuracy


class Callback:
    """Keras's callback: override the hooks you need. ``self.model`` is the model being fit
    and ``self.params`` ``fit``'s ``{"epochs", "steps", "verbose"}``."""

    model: Any = None  # class attributes: a subclass need not call __init__
    params: dict | None = None

    def set_params(self, params: dict) -> None:
        self.params = params

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None:
        pass

    def on_train_end(self, logs: dict | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_begin(batch, logs=logs)  # Keras's alias, for older callbacks

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_end(batch, logs=logs)

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        pass

    def on_test_begin(self, logs: dict | None = None) -> None:
        pass

    def on_test_end(self, logs: dict | None = None) -> None:
        pass

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        pass  # no alias: Keras's on_batch_* are the training batches'

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        pass

    def on_predict_begin(self, logs: dict | None = None) -> None:
        pass

    def on_predict_end(self, logs: dict | None = None) -> None:
        pass

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        pass

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        pass


class CallbackList:
    """Every callback's hook in turn, with one ``logs`` dict for all (what one adds, the
    next sees and History keeps), after ``set_model`` and ``set_params`` on each."""

    def __init__(self, callbacks: list[Callback], *, model, **params):
        self.callbacks = callbacks
        for callback in callbacks:
            callback.set_model(model)
            callback.set_params(params)

    def on_train_begin(self) -> None:
        for callback in self.callbacks:
            callback.on_train_begin({})

    def on_train_end(self, logs: dict | None) -> None:
        for callback in self.callbacks:
            callback.on_train_end(logs)

    def on_epoch_begin(self, epoch: int) -> None:
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, {})

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch: int) -> None:
        for callback in self.callbacks:
            callback.on_train_batch_begin(batch, logs={})

    def on_train_batch_end(self, batch: int, logs: dict) -> None:
        for callback in self.callbacks:
            callback.on_train_batch_end(batch, logs=logs)

    def call(self, hook: str, *args) -> None:
        """``hook`` (an ``on_test_*`` or ``on_predict_*`` name) of every callback, with
        ``args`` (the batch index and/or logs; {} where a begin hook has none, as Keras's)."""
        assert hook.startswith(("on_test_", "on_predict_")), hook
        for callback in self.callbacks:
            getattr(callback, hook)(*args)


def monitor_mode(who: str, monitor: str, mode: str) -> str | None:
    """``"min"`` or ``"max"``: ``mode``, or for ``"auto"`` the monitored value's direction, as
    Keras's ``_set_monitor_op`` reads it from the metric: the loss and every loss offered as a
    metric (``losses.LOSSES``) go down, the accuracies up. None where only the model can
    tell: a functional model's per-output value (``val_cls_accuracy``, ``cls_loss``), which
    ``resolve_mode`` looks up once the callback has its model. Any other name (a callable
    metric) is a ValueError at once, where Keras fails at the first epoch's end."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_") if isinstance(monitor, str) else monitor
    found = _direction(name)
    if found is None and not (isinstance(name, str) and name.endswith(_SUFFIXES)):
        raise ValueError(f"{who} cannot tell whether monitor={monitor!r} should go down or up; "
                         f"pass mode='min' or mode='max'")
    return found


def resolve_mode(who: str, monitor: str, mode: str | None, model) -> str:
    """``mode``, or where ``monitor_mode`` left it to the model, the direction of the compiled
    value ``monitor`` names (without ``val_``): an output's ``<output>_loss`` goes down, an
    output's ``<output>_<metric>`` as its metric. Keras 3 looks the compiled metric up by its
    own name (``accuracy``), so it refuses these names in ``mode="auto"``; rnnkit knows the
    output each belongs to."""
    if mode is not None:
        return mode
    name = monitor.removeprefix("val_")
    for head in (getattr(model, "_compiled", None) or {}).get("heads", []):
        if head.name is not None and head.loss is not None and name == f"{head.name}_loss":
            return "min"
        if name in head.metrics:
            found = _direction(name if head.name is None else name.removeprefix(f"{head.name}_"))
            if found is not None:
                return found
    raise ValueError(f"{who} cannot tell whether monitor={monitor!r} should go down or up (the model "
                     f"compiled no such loss or metric); pass mode='min' or mode='max'")


def _direction(name) -> str | None:
    if name in _UP:
        return "max"
    if name == "loss" or name in LOSSES:
        return "min"
    return None


def improves(mode: str, value: float, reference: float, min_delta: float) -> bool:
    """Better than ``reference`` by more than ``min_delta`` in ``mode``'s direction (Keras's
    ``monitor_op(value - min_delta, reference)`` with the delta's sign set by the mode)."""
    if mode == "min":
        return value + min_delta < reference
    return value - min_delta > reference


def check_callbacks(callbacks) -> list[Callback]:
    """``callbacks`` as a list of ``Callback`` instances, or a TypeError naming the first other."""
    callbacks = list(callbacks or [])
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be rnnkit.keras.callbacks.Callback instances (EarlyStopping, "
                            f"or a subclass of Callback), got {type(callback).__name__}")
    return callbacks
