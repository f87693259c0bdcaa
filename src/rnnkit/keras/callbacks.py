"""Keras's ``callbacks=`` for ``Sequential.fit``, with Keras 3's arguments and rules
(keras/src/callbacks/*.py): ``EarlyStopping``, ``ModelCheckpoint``, ``ReduceLROnPlateau``,
``LearningRateScheduler``, ``CSVLogger``, ``TerminateOnNaN``, ``LambdaCallback``, and the
``Callback`` base class (hooks and their order: ``rnnkit.keras._callback``).

    stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    best = ModelCheckpoint("ckpt/{epoch:02d}-{val_loss:.3f}.keras", save_best_only=True)
    model.fit(x, y, validation_split=0.2, epochs=100, callbacks=[stop, best])

Deviations: an unknown ``mode``, or a monitored value whose direction cannot be told from
its name, is a ValueError at once (Keras warns, or fails at the first epoch's end);
``ModelCheckpoint`` writes rnnkit's safetensors files (``Sequential.save`` /
``save_weights``) whatever the file's extension, where Keras asks for ``.keras`` or
``.weights.h5``.
"""

from __future__ import annotations

import csv
import math
import pathlib
import warnings

import numpy as np

from rnnkit.keras._base import check_count, check_finite, plain
from rnnkit.keras._callback import Callback, check_callbacks, improves, monitor_mode, resolve_mode
from rnnkit.keras._lr_callbacks import LearningRateScheduler, ReduceLROnPlateau

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "LambdaCallback", "LearningRateScheduler",
           "ModelCheckpoint", "ReduceLROnPlateau", "TerminateOnNaN", "check_callbacks"]


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved (by more than ``min_delta``) for ``patience``
    epochs, Keras's ``EarlyStopping`` with its arguments and defaults.

    Arguments:
        monitor: a History key, e.g. ``"val_loss"``, ``"loss"``, ``"val_accuracy"``.
        min_delta: the smallest change that counts as an improvement.
        patience: epochs without improvement before training stops.
        verbose: 1 prints when it stops and when it restores weights.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from the name: losses down, accuracies up;
            for a functional model's per-output value, such as ``"val_cls_accuracy"``, from
            the metric compiled for that output, looked up when ``fit`` starts).
        baseline: training also stops when the value does not beat this.
        restore_best_weights: end with the weights of the best epoch, not the last one.
        start_from_epoch: epochs of warm-up before the value is watched.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        self.mode = monitor_mode("EarlyStopping", monitor, mode)
        min_delta = check_finite("min_delta", min_delta)
        self.monitor, self.verbose, self.baseline = monitor, verbose, baseline
        self.patience = check_count("patience", patience)
        self.start_from_epoch = check_count("start_from_epoch", start_from_epoch)
        self.min_delta, self.restore_best_weights = abs(min_delta), restore_best_weights
        self.on_train_begin()

    def set_model(self, model) -> None:
        super().set_model(model)
        self.mode = resolve_mode("EarlyStopping", self.monitor, self.mode, model)

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
        if improves(self.mode, current, self.best, self.min_delta):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or improves(self.mode, current, self.baseline, self.min_delta):
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


class ModelCheckpoint(Callback):
    """Save the model (``model.save``) or its weights (``save_weights``) after every epoch,
    or every ``save_freq`` batches, Keras's ``ModelCheckpoint``.

    Arguments:
        filepath: where to save; ``str.format`` fields are filled with ``epoch`` (1-based),
            ``batch`` (1-based, with an int ``save_freq``) and the values of ``logs``, e.g.
            ``"ckpt/{epoch:02d}-{val_loss:.2f}.keras"``.
        monitor: the History key ``save_best_only`` compares.
        verbose: 1 prints a line for every save or skip.
        save_best_only: save only when ``monitor`` improves on the best so far (strictly).
        save_weights_only: ``save_weights`` (the weights) instead of ``save`` (the
            architecture, the weights and the optimizer's state).
        mode: ``"auto"``, ``"min"`` or ``"max"``, as ``EarlyStopping``.
        save_freq: ``"epoch"`` or a number of batches.
        initial_value_threshold: the best value to beat at first (``save_best_only``).
    """

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0, save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto", save_freq="epoch",
                 initial_value_threshold: float | None = None):
        save_freq = plain(save_freq)
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq < 1):
            raise ValueError(f"save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        # the direction matters only when comparing (Keras tells it at the first epoch's end)
        self.mode = monitor_mode("ModelCheckpoint", monitor, mode) if save_best_only else None
        self.filepath, self.monitor, self.verbose = str(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.save_freq = save_freq
        self.initial_value_threshold = initial_value_threshold
        if initial_value_threshold is not None:
            self.best = check_finite("initial_value_threshold", initial_value_threshold)
        else:  # Keras's: anything beats it
            self.best = math.inf if self.mode == "min" else -math.inf
        self._epoch, self._batches = 0, 0

    def set_model(self, model) -> None:
        super().set_model(model)
        if self.save_best_only and self.mode is None:  # a per-output value: the model tells
            self.mode = resolve_mode("ModelCheckpoint", self.monitor, self.mode, model)
            if self.initial_value_threshold is None:
                self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches >= self.save_freq:
            self._batches = 0
            self._save(self._epoch, batch, logs or {})

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _save(self, epoch: int, batch: int | None, logs: dict) -> None:
        fields = {"epoch": epoch + 1, **({} if batch is None else {"batch": batch + 1}), **logs}
        try:
            path = self.filepath.format(**fields)
        except KeyError as err:
            raise KeyError(f"ModelCheckpoint cannot fill filepath {self.filepath!r}: no value {err} among "
                           f"{sorted(fields)}") from None
        if self.save_best_only and not self._improved(epoch, logs, path):
            return
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path, overwrite=True)
        else:
            self.model.save(path, overwrite=True)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {path}")

    def _improved(self, epoch: int, logs: dict, path: str) -> bool:
        current = logs.get(self.monitor)
        if current is None:  # Keras saves anyway
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        best = f"{self.best:.5f}"
        if improves(self.mode, current, self.best, 0.0):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False


class CSVLogger(Callback):
    """Write each epoch's History row to a CSV file, Keras's ``CSVLogger``: a header
    ``epoch`` and the row's keys (sorted, as Keras sorts them), then one line per epoch
    (``epoch`` 0-based, as Keras writes it).

    Arguments:
        filename: the CSV file.
        separator: the field separator.
        append: add to an existing file (without a second header) instead of replacing it.
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        self.filename, self.sep, self.append = str(filename), separator, append
        self._file, self._writer, self.keys = None, None, None

    def on_train_begin(self, logs=None) -> None:
        path = pathlib.Path(self.filename)
        self._header = not (self.append and path.exists() and _has_header(path))
        self.on_train_end()  # a file left open by an interrupted fit
        self._file = path.open("a" if self.append else "w", newline="")
        self._writer, self.keys = None, None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        if self._writer is None:
            self.keys = sorted(logs)
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *self.keys], delimiter=self.sep)
            if self._header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{k: _csv_value(logs.get(k, "NA")) for k in self.keys}})
        self._file.flush()

    def on_train_end(self, logs=None) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._writer = None


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose loss is NaN or inf, Keras's ``TerminateOnNaN``:
    ``model.stop_training`` (the epoch's row is reported, ``on_train_end`` runs), or with
    ``raise_error=True`` a RuntimeError at once. Without it, ``fit`` raises a
    FloatingPointError at such a batch; either way the batch does not change the weights."""

    def __init__(self, raise_error: bool = False):
        self.raise_error = raise_error

    def on_batch_end(self, batch: int, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                                   f"Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from functions, Keras's ``LambdaCallback``: ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``, and any other
    hook by its name in ``kwargs`` (``on_batch_end=...``)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in hooks.items():
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} of LambdaCallback must be a function, got {type(fn).__name__}")
        self.__dict__.update({name: fn for name, fn in hooks.items() if fn is not None})


def _csv_value(value):
    """Keras's ``handle_value``: a 1-D iterable as ``"[a, b]"``, anything else as it is."""
    if isinstance(value, str) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value
    if isinstance(value, np.ndarray | list | tuple):
        return f'"[{", ".join(map(str, value))}]"'
    return value


def _has_header(path: pathlib.Path) -> bool:
    """Keras's test: the file's first line is not empty (only that line is read)."""
    with path.open(newline="") as f:
        return bool(f.readline().strip())
