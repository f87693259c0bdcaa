"""rnnkit.keras.callbacks against Keras's rules (keras/src/callbacks/early_stopping.py,
model_checkpoint.py, csv_logger.py, lambda_callback.py, monitor_callback.py), by hand on a
sequence of values and through Sequential.fit."""

import numpy as np
import pytest
import torch

from rnnkit.keras import LSTM, Dense, Sequential, load_model, losses, optimizers
from rnnkit.keras.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    ModelCheckpoint,
    ReduceLROnPlateau,
)


class _Model:
    """What a callback reads of the model: weights and the stop flag."""

    def __init__(self):
        self.stop_training, self.weights = False, [np.zeros(1)]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = weights


def _run(callback, values, monitor="val_loss"):
    model = _Model()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.weights = [np.full(1, float(epoch))]  # the weights "after" this epoch
        callback.on_epoch_end(epoch, {monitor: value})
        if model.stop_training:
            break
    callback.on_train_end()
    return model, epoch


def test_patience_counts_epochs_without_improvement():
    # best at epoch 1 (0.8); 0.9 and 0.85 do not beat it: with patience 2, stop at epoch 3
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    model, last = _run(stop, [1.0, 0.8, 0.9, 0.85, 0.1])
    assert (last, stop.stopped_epoch, stop.best_epoch, stop.best) == (3, 3, 1, 0.8)
    assert model.weights[0][0] == 1.0  # restored from the end of epoch 1


def test_min_delta_baseline_mode_and_warm_up():
    # a gain of 0.05 is not more than min_delta=0.1: no improvement after epoch 0
    assert _run(EarlyStopping(patience=1, min_delta=0.1), [1.0, 0.95, 0.9])[1] == 1
    # accuracy goes up (mode from the name); 0.6 never beats the baseline 0.7
    stop = EarlyStopping(monitor="val_accuracy", patience=2, baseline=0.7)
    assert _run(stop, [0.5, 0.6, 0.6, 0.6], "val_accuracy")[1] == 2 and stop.best == 0.6
    # epochs before start_from_epoch are not watched
    assert _run(EarlyStopping(patience=1, start_from_epoch=3), [1, 2, 3, 4, 5, 6])[1] == 4


def test_fit_stops_and_restores_the_best_epoch():
    """Targets that are noise: validation stops improving within a few epochs."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5, 3)), rng.normal(size=(64, 1))
    model = Sequential([LSTM(8, input_shape=(5, 3)), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=100, validation_split=0.5, callbacks=[stop], verbose=0, seed=0)
    epochs = len(history.history["loss"])
    assert epochs < 100 and stop.stopped_epoch == epochs - 1 and model.stop_training
    best = int(np.argmin(history.history["val_loss"]))
    assert stop.best_epoch == best and epochs - 1 - best == 2
    assert model.evaluate(x[32:], y[32:]) == pytest.approx(history.history["val_loss"][best], rel=1e-6)


def test_a_callback_sees_every_epochs_row():
    seen = []

    class Record(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, sorted(logs)))

    model = Sequential([Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x = np.random.default_rng(1).normal(size=(8, 3))
    model.fit(x, x[:, :1], epochs=3, validation_data=(x, x[:, :1]), callbacks=[Record()], verbose=0)
    assert seen == [(k, ["loss", "mae", "val_loss", "val_mae"]) for k in range(3)]


@pytest.mark.parametrize("make, message", [
    (lambda: EarlyStopping(mode="down"), r"mode must be 'auto', 'min' or 'max', got 'down'"),
    (lambda: EarlyStopping(monitor="val_f1"), r"cannot tell whether monitor='val_f1' .* mode='min'"),
    (lambda: EarlyStopping(patience=-1), r"patience must be an int >= 0, got -1"),
    (lambda: EarlyStopping(min_delta=float("nan")), r"min_delta must be a finite number"),
], ids=["mode", "direction", "patience", "min-delta"])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_fit_refuses_what_is_not_a_callback():
    model = Sequential([Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(TypeError, match="callbacks must be rnnkit.keras.callbacks.Callback .*got str"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 1)), callbacks=["early"], verbose=0)


def test_hooks_logs_and_the_stop_as_in_keras():
    """One logs dict for every callback (what one adds, History keeps); on_epoch_begin before
    each epoch; a stop ends fit as its own stops do (stopped "on_step", the bar closed)."""
    calls = []

    class Extra(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            calls.append(("begin", epoch))

        def on_epoch_end(self, epoch, logs=None):
            logs["double_loss"] = 2 * logs["loss"]
            self.model.stop_training = epoch == 1

    class Reader(Callback):
        def on_epoch_end(self, epoch, logs=None):
            calls.append(("end", epoch, "double_loss" in logs))

    model = Sequential([Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(5).normal(size=(8, 3))
    history = model.fit(x, x[:, :1], epochs=5, batch_size=4, callbacks=[Extra(), Reader()], verbose=0)
    assert calls == [("begin", 0), ("end", 0, True), ("begin", 1), ("end", 1, True)]
    assert history.history["double_loss"] == pytest.approx([2 * v for v in history.history["loss"]])


def test_numpy_scalars_and_a_bfloat16_model():
    stop = EarlyStopping(monitor="loss", min_delta=np.float32(0.5), patience=np.int64(1),
                         restore_best_weights=True)
    assert (type(stop.min_delta), type(stop.patience)) == (float, int)
    model = Sequential([Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    model.to(torch.bfloat16)
    x = np.random.default_rng(6).normal(size=(8, 3))
    model.fit(x, x[:, :2], epochs=4, callbacks=[stop], verbose=0)  # get_weights of bf16 weights
    assert [w.dtype for w in model.get_weights()] == [np.float32, np.float32]


# -- ModelCheckpoint, CSVLogger, LambdaCallback, the monitors' directions ---------------------

def _noisy_fit(callbacks, epochs=6, verbose=0):
    """Noise targets and a large rate: val_loss goes down, then up as the model learns the
    noise. Returns the model, its History, each epoch's end weights, and x."""
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(24, 5, 3)), rng.normal(size=(24, 1))
    model = Sequential([LSTM(6, input_shape=(5, 3)), Dense(1)])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.05), loss="mse", metrics=["mae"])
    ends = []
    keep = LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(model.get_weights()))
    history = model.fit(x, y, epochs=epochs, batch_size=8, validation_split=0.5, verbose=verbose, seed=1,
                        callbacks=[keep, *callbacks])
    return model, history, ends, x


def test_model_checkpoint_names_each_epochs_file_from_its_logs(tmp_path):
    path = tmp_path / "ckpt" / "{epoch:02d}-{val_loss:.4f}.keras"
    _, history, ends, x = _noisy_fit([ModelCheckpoint(path)], epochs=3)
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == [f"{k + 1:02d}-{v:.4f}.keras" for k, v in enumerate(history.history["val_loss"])]
    second = load_model(tmp_path / "ckpt" / names[1])  # the whole model, compiled
    for a, b in zip(second.get_weights(), ends[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert second.optimizer is not None and second.optimizer.built


@pytest.mark.parametrize("mode, pick", [("auto", np.argmin), ("max", np.argmax)])
def test_model_checkpoint_save_best_only_keeps_the_best_epoch(tmp_path, mode, pick):
    best = ModelCheckpoint(tmp_path / "best.weights", save_best_only=True, save_weights_only=True, mode=mode)
    model, history, ends, _ = _noisy_fit([best])
    values = history.history["val_loss"]
    assert len(set(np.sign(np.diff(values)))) == 2  # it went both ways
    model.load_weights(tmp_path / "best.weights")
    for a, b in zip(model.get_weights(), ends[int(pick(values))], strict=True):
        np.testing.assert_array_equal(a, b)
    assert best.best == values[int(pick(values))]


def test_model_checkpoint_threshold_batches_and_missing_fields(tmp_path):
    never = ModelCheckpoint(tmp_path / "never.keras", save_best_only=True, initial_value_threshold=-1.0)
    _noisy_fit([never], epochs=2)
    assert not (tmp_path / "never.keras").exists()  # no val_loss is below -1
    _noisy_fit([ModelCheckpoint(tmp_path / "b{epoch}-{batch}.w", save_weights_only=True, save_freq=2)],
               epochs=2)  # 2 batches an epoch: every 2 batches is each epoch's end
    assert sorted(p.name for p in tmp_path.glob("b*.w")) == ["b1-2.w", "b2-2.w"]
    with pytest.raises(KeyError, match=r"ModelCheckpoint cannot fill filepath .*: no value 'acc' among"):
        _noisy_fit([ModelCheckpoint(tmp_path / "{acc}.keras")], epochs=1)
    with pytest.raises(ValueError, match="save_freq must be 'epoch' or a positive int, got 'batch'"):
        ModelCheckpoint(tmp_path / "m.keras", save_freq="batch")


def test_csv_logger_writes_the_history(tmp_path):
    path = tmp_path / "log.csv"
    _, history, _, _ = _noisy_fit([CSVLogger(path)], epochs=3)
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,mae,val_loss,val_mae"  # Keras sorts the keys
    rows = [[float(v) for v in line.split(",")] for line in lines[1:]]
    assert [r[0] for r in rows] == [0, 1, 2]
    for k, key in enumerate(["loss", "mae", "val_loss", "val_mae"], start=1):
        assert [r[k] for r in rows] == history.history[key]  # repr round-trips floats
    _noisy_fit([CSVLogger(path, separator=";", append=True)], epochs=2)
    lines = path.read_text().splitlines()
    assert len(lines) == 6 and lines[4].startswith("0;") and lines[5].startswith("1;")  # no second header


def test_lambda_callback_calls_its_functions():
    calls = []
    lam = LambdaCallback(on_train_begin=lambda logs: calls.append("begin"),
                         on_epoch_end=lambda epoch, logs: calls.append(("epoch", epoch, logs["loss"])),
                         on_train_batch_end=lambda batch, logs: calls.append(("batch", batch)),
                         on_train_end=lambda logs: calls.append("end"))
    _, history, _, _ = _noisy_fit([lam], epochs=2)
    batches = [("batch", 0), ("batch", 1)]
    assert calls == ["begin", *batches, ("epoch", 0, history.history["loss"][0]),
                     *batches, ("epoch", 1, history.history["loss"][1]), "end"]
    with pytest.raises(TypeError, match="on_epoch_end of LambdaCallback must be a function, got int"):
        LambdaCallback(on_epoch_end=3)


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_every_loss_offered_as_a_metric_goes_down(name):
    for monitor in (name, f"val_{name}"):
        assert EarlyStopping(monitor=monitor).mode == "min"
        assert ModelCheckpoint("m.keras", monitor=monitor, save_best_only=True).mode == "min"
        assert ReduceLROnPlateau(monitor=monitor).mode == "min"


@pytest.mark.parametrize("name", ["accuracy", "acc", "binary_accuracy", "categorical_accuracy",
                                  "sparse_categorical_accuracy"])
def test_accuracies_go_up(name):
    assert EarlyStopping(monitor=f"val_{name}").mode == "max" == ReduceLROnPlateau(monitor=name).mode


@pytest.mark.parametrize("mode, start", [("min", "inf"), ("max", "-inf")])
def test_model_checkpoint_verbose_starts_from_infinity_as_keras(tmp_path, mode, start, capsys):
    _noisy_fit([ModelCheckpoint(tmp_path / "m.keras", save_best_only=True, mode=mode, verbose=1)], epochs=1)
    assert f"Epoch 1: val_loss improved from {start} to " in capsys.readouterr().out


def test_the_epoch_line_shows_what_callbacks_add(capsys):
    """Keras prints the epoch's line after the callbacks: ReduceLROnPlateau's learning_rate."""
    _noisy_fit([ReduceLROnPlateau(monitor="loss")], epochs=1, verbose=2)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.endswith(" - learning_rate: 0.0500") and " - val_mae: " in line
