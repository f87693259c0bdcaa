"""Keras's ``callbacks=`` for ``Sequential.fit``: the ``Callback`` hooks and ``EarlyStopping``
(keras/src/callbacks/early_stopping.py), which stops training when a monitored value has
stopped improving and can restore the best epoch's weights.

    stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    model.fit(x, y, validation_split=0.2, epochs=100, callbacks=[stop])

As in Keras, a callback stops training by setting ``model.stop_training = True`` in
``on_epoch_end``; ``logs`` holds the epoch's row of the History (``loss``, the metrics,
``val_*``), one dict for every callback, and what they add reaches the History. Deviations:
the hooks are those of the train and the epoch (no ``on_*_batch_*``), and ``stop_training``
is read at an epoch's end; an unknown ``mode``, or a monitored metric whose direction cannot
be told from its name, is a ValueError at once (Keras warns, or fails at the first epoch).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

# metrics that grow as the model gets better; every other loss or metric here shrinks
_UP = ("accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy")
_DOWN = ("loss", "mse", "mean_squared_error", "mae", "mean_absolute_error", "binary_crossentropy",
         "categorical_crossentropy", "sparse_categorical_crossentropy")


class Callback:
    """Keras's callback hooks that ``fit`` calls; ``self.model`` is the model being fit."""

    model: Any = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        pass

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved (by more than ``min_delta``) for ``patience``
    epochs, Keras's ``EarlyStopping`` with its arguments and defaults.

    Arguments:
        monitor: a History key, e.g. ``"val_loss"``, ``"loss"``, ``"val_accuracy"``.
        min_delta: the smallest change that counts as an improvement.
        patience: epochs without improvement before training stops.
        verbose: 1 prints when it stops and when it restores weights.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from the name: losses down, accuracies up).
        baseline: training also stops when the value does not beat this.
        restore_best_weights: end with the weights of the best epoch, not the last one.
        start_from_epoch: epochs of warm-up before the value is watched.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        number = isinstance(min_delta, numbers.Real) and not isinstance(min_delta, bool)  # numpy's too
        if not number or not math.isfinite(min_delta):
            raise ValueError(f"min_delta must be a finite number, got {min_delta!r}")
        for name, value in (("patience", patience), ("start_from_epoch", start_from_epoch)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        min_delta, patience, start_from_epoch = float(min_delta), int(patience), int(start_from_epoch)
        self.monitor, self.verbose, self.baseline = monitor, verbose, baseline
        self.patience, self.start_from_epoch = patience, start_from_epoch
        self.min_delta, self.restore_best_weights = abs(min_delta), restore_best_weights
        self.mode = mode if mode != "auto" else _direction(monitor)
        self.best_weights, self.best_epoch, self.wait, self.stopped_epoch = None, 0, 0, 0
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_train_begin(self, logs=None) -> None:
        # a callback may be passed to several fits
        self.best_weights, self.best_epoch, self.wait, self.stopped_epoch = None, 0, 0, 0
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"EarlyStopping monitors {self.monitor!r}, which this fit does not report; "
                          f"it reports {sorted(logs or {})}", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def _improves(self, value: float, reference: float) -> bool:
        if self.mode == "min":  # better by more than min_delta
            return value + self.min_delta < reference
        return value - self.min_delta > reference


def _direction(monitor: str) -> str:
    name = monitor.removeprefix("val_")
    if name in _UP:
        return "max"
    if name in _DOWN:
        return "min"
    raise ValueError(f"EarlyStopping cannot tell whether monitor={monitor!r} should go down or up; "
                     f"pass mode='min' or mode='max'")


def check_callbacks(callbacks) -> list[Callback]:
    """``callbacks`` as a list of ``Callback`` instances, or a TypeError naming the first other."""
    callbacks = list(callbacks or [])
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be rnnkit.keras.callbacks.Callback instances (EarlyStopping, "
                            f"or a subclass of Callback), got {type(callback).__name__}")
    return callbacks
