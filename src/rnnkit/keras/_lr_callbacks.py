"""Keras's learning-rate callbacks: ``ReduceLROnPlateau`` (keras/src/callbacks/
reduce_lr_on_plateau.py) and ``LearningRateScheduler`` (learning_rate_scheduler.py).

Both read and set the rate as Keras's do, through ``model.optimizer.learning_rate``; any
torch optimizer works (``optimizers.get_learning_rate`` / ``set_learning_rate``: every
parameter group's ``lr``). Both add the epoch's rate to its logs as ``learning_rate``, so
that it reaches the History, as in Keras.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from rnnkit.keras._base import check_count, check_finite, plain
from rnnkit.keras._callback import Callback, improves, monitor_mode, resolve_mode
from rnnkit.keras.optimizers import get_learning_rate, set_learning_rate


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by more
    than ``min_delta`` for ``patience`` epochs, then wait ``cooldown`` epochs; never below
    ``min_lr``. Keras's ``ReduceLROnPlateau`` with its arguments and defaults.

    Arguments:
        monitor: a History key, e.g. ``"val_loss"``.
        factor: new_lr = lr * factor, below 1.
        patience: epochs without improvement before the rate is reduced.
        verbose: 1 prints each reduction.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (losses down, accuracies up).
        min_delta: the smallest change that counts as an improvement.
        cooldown: epochs after a reduction during which no epoch counts against patience.
        min_lr: the lowest rate.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0):
        factor = plain(factor)
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 <= factor < 1:
            raise ValueError(f"factor must be a number in [0, 1) (ReduceLROnPlateau reduces the rate), "
                             f"got {factor!r}")
        self.mode = monitor_mode("ReduceLROnPlateau", monitor, mode)
        self.monitor, self.factor, self.verbose = monitor, float(factor), verbose
        self.patience, self.cooldown = check_count("patience", patience), check_count("cooldown", cooldown)
        self.min_delta, self.min_lr = check_finite("min_delta", min_delta), check_finite("min_lr", min_lr)
        self.on_train_begin()

    def set_model(self, model) -> None:
        super().set_model(model)
        self.mode = resolve_mode("ReduceLROnPlateau", self.monitor, self.mode, model)

    def on_train_begin(self, logs=None) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait, self.cooldown_counter = 0, 0

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs if logs is not None else {}
        logs["learning_rate"] = get_learning_rate(self.model.optimizer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` which is "
                          f"not available. Available metrics are: {','.join(logs)}.", stacklevel=2)
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if improves(self.mode, current, self.best, self.min_delta):
            self.best, self.wait = current, 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = get_learning_rate(self.model.optimizer)
                if old > np.float32(self.min_lr):  # Keras's comparison
                    new = max(old * self.factor, self.min_lr)
                    set_learning_rate(self.model.optimizer, new)
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch to ``schedule(epoch, lr)`` (epoch
    0-based, lr the current rate), or ``schedule(epoch)`` for a one-argument function;
    Keras's ``LearningRateScheduler``. The schedule must return a float, as in Keras.

    Arguments:
        schedule: ``(epoch, lr) -> new lr``.
        verbose: 1 prints each new rate.
    """

    def __init__(self, schedule, verbose: int = 0):
        if not callable(schedule):
            raise TypeError(f"schedule must be a function (epoch, lr) -> lr, got {type(schedule).__name__}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        optimizer = self.model.optimizer
        try:
            lr = self.schedule(epoch, get_learning_rate(optimizer))
        except TypeError:  # Keras's fallback for the old one-argument form
            lr = self.schedule(epoch)
        if not isinstance(lr, float | np.float32 | np.float64):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {lr!r}")
        set_learning_rate(optimizer, lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if logs is not None:
            logs["learning_rate"] = get_learning_rate(self.model.optimizer)
