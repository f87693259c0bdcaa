"""fit calls the callbacks as Keras 3's fit does (keras/src/callbacks/callback.py,
callback_list.py, backend/torch/trainer.py): the order of the hooks, the batch index, the
running loss and metrics in ``on_train_batch_end``'s logs, ``params``, the ``on_batch_*``
aliases, a stop inside an epoch, and a non-finite loss (TerminateOnNaN or an error)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.keras import LSTM, Dense, Sequential
from rnnkit.keras.callbacks import Callback, LambdaCallback, TerminateOnNaN

N, T, I = 10, 5, 3
RNG = np.random.default_rng(3)
X = RNG.normal(size=(N, T, I))
Y = X[:, :, :1].mean(axis=1) - X[:, -1, 1:2]  # learnable, never constant


def model():
    torch.manual_seed(4)
    net = Sequential([LSTM(4, input_shape=(T, I)), Dense(1)])
    net.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return net


def fit(net, callbacks, epochs=2, **options):
    # batches of 4, 4 and 2 samples, in order
    return net.fit(X, Y, epochs=epochs, batch_size=4, shuffle=False, verbose=0, callbacks=callbacks,
                   **options)


class Record(Callback):
    """Every hook call, and each batch's loss and error before its step, computed here."""

    def __init__(self):
        self.calls, self.batch_values = [], []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", logs))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))
        rows = slice(4 * batch, 4 * batch + 4)
        with torch.no_grad():
            out, y = self.model(X[rows]), torch.as_tensor(Y[rows])
        self.batch_values.append((len(y), float(F.mse_loss(out, y)), float((out - y).abs().mean())))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, dict(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", logs))


def test_hooks_in_keras_order_with_the_running_values():
    record = Record()
    net = model()
    history = fit(net, [record], validation_data=(X[:4], Y[:4]))
    kinds = [(c[0], c[1]) if c[0] in ("epoch_begin", "batch_begin", "batch_end", "epoch_end") else (c[0],)
             for c in record.calls]
    epoch = [("batch_begin", 0), ("batch_end", 0), ("batch_begin", 1), ("batch_end", 1),
             ("batch_begin", 2), ("batch_end", 2)]
    assert kinds == [("train_begin",), ("epoch_begin", 0), *epoch, ("epoch_end", 0),
                     ("epoch_begin", 1), *epoch, ("epoch_end", 1), ("train_end",)]
    assert record.params == {"verbose": 0, "epochs": 2, "steps": 3} == history.params
    assert record.model is net
    # a batch's logs: the epoch's loss and metric so far, each batch weighted by its samples
    ends = [c[2] for c in record.calls if c[0] == "batch_end"]
    for k, logs in enumerate(ends):
        done = record.batch_values[3 * (k // 3):k + 1]
        n = sum(v[0] for v in done)
        assert sorted(logs) == ["loss", "mae"]
        assert logs["loss"] == pytest.approx(sum(v[0] * v[1] for v in done) / n, rel=1e-9)
        assert logs["mae"] == pytest.approx(sum(v[0] * v[2] for v in done) / n, rel=1e-9)
    # an epoch's last batch holds its History values; epoch_end adds val_*
    assert [ends[2]["loss"], ends[5]["loss"]] == history.history["loss"]
    assert [c[2] for c in record.calls if c[0] == "epoch_end"] == [["loss", "mae", "val_loss", "val_mae"]] * 2
    assert record.calls[-1] == ("train_end", {k: v[-1] for k, v in history.history.items()})


def test_on_batch_aliases_as_keras_calls_them():
    class Old(Callback):  # Keras 2's names: the default on_train_batch_* call them
        def __init__(self):
            self.seen = []

        def on_batch_begin(self, batch, logs=None):
            self.seen.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            self.seen.append(("end", batch, sorted(logs)))

    class Both(Callback):  # on_train_batch_end overridden: on_batch_end is not called
        count = 0

        def on_train_batch_end(self, batch, logs=None):
            self.count += 1

        def on_batch_end(self, batch, logs=None):
            self.count += 100

    old, both = Old(), Both()
    fit(model(), [old, both])
    assert old.seen == [step for _ in range(2) for b in range(3)
                        for step in (("begin", b), ("end", b, ["loss", "mae"]))]
    assert both.count == 6


def test_a_stop_inside_an_epoch_ends_it_there():
    """Keras breaks out of the batches after the batch whose hook set stop_training, then
    evaluates and ends the epoch as usual."""
    record = Record()
    stop = LambdaCallback(on_train_batch_end=lambda batch, logs: setattr(net, "stop_training", batch == 1))
    net = model()
    history = fit(net, [stop, record], epochs=5, validation_data=(X[:4], Y[:4]))
    assert len(history.epoch) == 1 and [c[:2] for c in record.calls][-3:] == [
        ("batch_end", 1), ("epoch_end", 0), ("train_end", {k: v[0] for k, v in history.history.items()})]
    ends = [c[2] for c in record.calls if c[0] == "batch_end"]
    assert history.history["loss"] == [ends[-1]["loss"]]  # over the two batches run
    assert history.history["val_loss"] == [pytest.approx(net.evaluate(X[:4], Y[:4])[0])]


def test_callbacks_read_and_set_the_learning_rate():
    seen = []
    halve = LambdaCallback(on_epoch_end=lambda epoch, logs: (
        seen.append(float(net.optimizer.learning_rate)),
        setattr(net.optimizer, "learning_rate", net.optimizer.learning_rate / 2)))
    net = model()
    fit(net, [halve], epochs=3)
    assert seen == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert net.optimizer.param_groups[0]["lr"] == pytest.approx(1.25e-4)


def _nan_at_second_batch():
    x = X.copy()
    x[5, 2, 0] = np.nan  # sample 5: the second batch of 4
    return x


def test_a_nan_loss_raises_with_keras_advice():
    net = model()
    with pytest.raises(FloatingPointError) as error:
        net.fit(_nan_at_second_batch(), Y, batch_size=4, shuffle=False, verbose=0)
    message = str(error.value)
    assert message.startswith("loss is nan at epoch 1, batch 2; training stopped before this step")
    assert "learning_rate=" in message and "clipnorm" in message and "TerminateOnNaN()" in message
    assert "clip_norm" not in message  # TrainConfig's, which compile and fit cannot reach


def test_terminate_on_nan_stops_at_the_batch(capsys):
    record = Record()
    net = model()
    history = net.fit(_nan_at_second_batch(), Y, epochs=3, batch_size=4, shuffle=False, verbose=0,
                      callbacks=[TerminateOnNaN(), record])
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out
    assert len(history.epoch) == 1 and np.isnan(history.history["loss"][0])
    assert [c[0] for c in record.calls][-3:] == ["batch_end", "epoch_end", "train_end"]
    assert all(torch.isfinite(p).all() for p in net.parameters())  # the NaN batch changed nothing
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 1. Loss value: nan"):
        model().fit(_nan_at_second_batch(), Y, batch_size=4, shuffle=False, verbose=0,
                    callbacks=[TerminateOnNaN(raise_error=True)])


class Hooks(Callback):
    """Every test and predict hook, with its batch and a copy of its logs."""

    def __init__(self):
        self.calls = []

    def _add(self, name, *args):
        self.calls.append((name, *args))

    def on_epoch_end(self, epoch, logs=None):
        self._add("epoch_end", epoch)

    def on_train_batch_end(self, batch, logs=None):
        self._add("batch_end", batch)

    def on_test_begin(self, logs=None):
        self._add("test_begin", dict(logs))

    def on_test_batch_begin(self, batch, logs=None):
        self._add("test_batch_begin", batch)

    def on_test_batch_end(self, batch, logs=None):
        self._add("test_batch_end", batch, dict(logs))

    def on_test_end(self, logs=None):
        self._add("test_end", dict(logs))

    def on_predict_begin(self, logs=None):
        self._add("predict_begin", dict(logs))

    def on_predict_batch_begin(self, batch, logs=None):
        self._add("predict_batch_begin", batch)

    def on_predict_batch_end(self, batch, logs=None):
        self._add("predict_batch_end", batch, logs["outputs"])

    def on_predict_end(self, logs=None):
        self._add("predict_end", dict(logs))


def test_fit_validation_calls_the_test_hooks_before_epoch_end():
    hooks = Hooks()
    net = model()
    history = fit(net, [hooks], epochs=1, validation_data=(X[:6], Y[:6]))  # 2 validation batches of 4, 2
    names = [c[0] if c[0] not in ("batch_end", "test_batch_begin", "test_batch_end") else c[:2]
             for c in hooks.calls]
    assert names == [("batch_end", 0), ("batch_end", 1), ("batch_end", 2), "test_begin",
                     ("test_batch_begin", 0), ("test_batch_end", 0), ("test_batch_begin", 1),
                     ("test_batch_end", 1), "test_end", "epoch_end"]
    end = hooks.calls[-2][1]
    assert end == {"loss": history.history["val_loss"][0], "mae": history.history["val_mae"][0]}  # no val_
    assert hooks.calls[-3][2] == end  # the last batch's running values are the results
    first = hooks.calls[5][2]  # the first batch's: its own 4 samples
    assert first["loss"] == pytest.approx(net.evaluate(X[:4], Y[:4])[0], rel=1e-12)


def test_evaluate_and_predict_take_callbacks():
    hooks = Hooks()
    net = model()
    loss, mae = net.evaluate(X, Y, batch_size=4, callbacks=[hooks])
    assert [c[0] for c in hooks.calls] == ["test_begin", *["test_batch_begin", "test_batch_end"] * 3,
                                          "test_end"]
    assert hooks.calls[-1][1] == {"loss": loss, "mae": mae}
    assert hooks.params == {"verbose": 0, "epochs": 1, "steps": 3}
    hooks.calls.clear()
    out = net.predict(X, batch_size=4, callbacks=[hooks])
    assert [c[0] for c in hooks.calls] == ["predict_begin", *["predict_batch_begin", "predict_batch_end"] * 3,
                                          "predict_end"]
    batches = [c[2] for c in hooks.calls if c[0] == "predict_batch_end"]
    assert all(isinstance(b, torch.Tensor) for b in batches)  # as Keras's torch backend hands them
    np.testing.assert_array_equal(torch.cat(batches).numpy(), out)


def test_stop_evaluating_and_stop_predicting_end_after_the_batch():
    net = model()
    stop = LambdaCallback()
    stop.on_test_batch_end = lambda batch, logs=None: setattr(net, "stop_evaluating", True)
    stop.on_predict_batch_end = lambda batch, logs=None: setattr(net, "stop_predicting", True)
    assert net.evaluate(X, Y, batch_size=4, callbacks=[stop])[0] == pytest.approx(
        net.evaluate(X[:4], Y[:4])[0], rel=1e-12)
    assert net.predict(X, batch_size=4, callbacks=[stop]).shape == (4, 1)


def test_steps_of_evaluate_and_predict_take_the_first_batches():
    net = model()
    assert net.evaluate(X, Y, batch_size=4, steps=1) == pytest.approx(net.evaluate(X[:4], Y[:4]), rel=1e-12)
    np.testing.assert_array_equal(net.predict(X, batch_size=4, steps=2), net.predict(X[:8]))
