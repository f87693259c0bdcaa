"""fit's initial_epoch, steps_per_epoch, validation_steps, validation_batch_size and
validation_freq on arrays, as Keras 3 treats them (keras/src/backend/torch/trainer.py fit,
keras/src/trainers/epoch_iterator.py, array_data_adapter.py)."""

import numpy as np
import pytest
import torch

from rnnkit.keras import LSTM, Dense, Sequential
from rnnkit.keras.callbacks import Callback

N, T, I = 10, 4, 3
RNG = np.random.default_rng(7)
X = RNG.normal(size=(N, T, I))
Y = np.arange(N, dtype=float)[:, None] / N  # each target names its sample


def model():
    torch.manual_seed(1)
    net = Sequential([LSTM(3, input_shape=(T, I)), Dense(1)])
    seen = []

    def rows(y_true, y_pred):  # records which samples each training step saw
        seen.append(sorted(round(float(v) * N) for v in y_true[:, 0]))
        return (y_true - y_pred).abs().mean()

    net.compile(optimizer="sgd", loss="mse", metrics=[rows])
    return net, seen


class Epochs(Callback):
    def __init__(self):
        self.calls = []

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("end", epoch, sorted(logs)))

    def on_test_begin(self, logs=None):
        self.calls.append(("test",))

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end",))


def test_initial_epoch_numbers_epochs_as_keras(capsys):
    net, _ = model()
    record = Epochs()
    history = net.fit(X, Y, epochs=5, initial_epoch=2, batch_size=4, verbose=2, callbacks=[record])
    assert history.epoch == [2, 3, 4] and len(history.history["loss"]) == 3
    assert [c[:2] for c in record.calls if c[0] in ("begin", "end")] == [
        ("begin", 2), ("end", 2), ("begin", 3), ("end", 3), ("begin", 4), ("end", 4)]
    assert history.params["epochs"] == 5
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("Epoch")] == ["Epoch 3/5", "Epoch 4/5", "Epoch 5/5"]


def test_initial_epoch_at_or_past_epochs_trains_nothing():
    net, _ = model()
    before = net.get_weights() if net.built else None
    record = Epochs()
    history = net.fit(X, Y, epochs=2, initial_epoch=2, verbose=0, callbacks=[record])
    assert history.epoch == [] and history.history == {}
    assert record.calls == [("train_begin",), ("train_end",)]
    for a, b in zip(before, net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_steps_per_epoch_goes_on_through_the_data_and_stops_where_it_runs_out():
    """Keras 3 keeps one pass over the arrays across epochs: 3 batches of 4, 4, 2 samples
    and 2 steps per epoch give epochs of 2, 1 (the pass runs out, with Keras's warning) and
    2 batches (a new pass)."""
    net, seen = model()
    with pytest.warns(UserWarning, match="Your input ran out of data"):
        history = net.fit(X, Y, epochs=3, batch_size=4, steps_per_epoch=2, shuffle=False, verbose=0)
    first, second, third = list(range(4)), list(range(4, 8)), [8, 9]
    assert seen == [first, second, third, first, second]
    assert history.epoch == [0, 1, 2] and history.params["steps"] == 2


def test_steps_per_epoch_without_batch_size_sets_it_as_keras():
    """ceil(10 / 3) = 4 samples a batch: every epoch a whole pass, no warning."""
    net, seen = model()
    net.fit(X, Y, epochs=2, steps_per_epoch=3, shuffle=False, verbose=0)
    assert seen == [list(range(4)), list(range(4, 8)), [8, 9]] * 2


def test_steps_per_epoch_longer_than_the_data_ends_each_epoch_with_the_pass():
    net, seen = model()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = net.fit(X, Y, epochs=2, batch_size=4, steps_per_epoch=5, seed=3, verbose=0)
    assert len(seen) == 6 and history.params["steps"] == 5
    assert sorted(sum(seen[:3], [])) == list(range(N)) == sorted(sum(seen[3:], []))  # two passes
    assert seen[:3] != seen[3:]  # each reshuffled


@pytest.mark.parametrize("options, first", [(dict(validation_steps=1), 4),
                                            (dict(validation_steps=1, validation_batch_size=2), 2),
                                            (dict(validation_steps=2, validation_batch_size=3), 6)])
def test_validation_steps_scores_the_first_batches(options, first):
    net, _ = model()
    history = net.fit(X, Y, epochs=1, batch_size=4, verbose=0, validation_data=(X[:8], Y[:8]), **options)
    assert history.history["val_loss"][0] == pytest.approx(net.evaluate(X[:first], Y[:first])[0], rel=1e-12)


def test_validation_freq_as_an_int_and_a_list():
    net, _ = model()
    record = Epochs()
    history = net.fit(X, Y, epochs=4, batch_size=4, verbose=0, validation_split=0.2, validation_freq=2,
                      callbacks=[record])
    assert len(history.history["loss"]) == 4 and len(history.history["val_loss"]) == 2
    ends = [c for c in record.calls if c[0] in ("end", "test")]
    assert [c[0] for c in ends] == ["end", "test", "end", "end", "test", "end"]
    assert "val_loss" not in ends[0][2] and "val_loss" in ends[2][2]
    history = net.fit(X, Y, epochs=4, batch_size=4, verbose=0, validation_split=0.2, validation_freq=[1, 4])
    assert len(history.history["val_loss"]) == 2
    assert history.history["val_loss"][-1] == pytest.approx(net.evaluate(X[8:], Y[8:])[0], rel=1e-12)


@pytest.mark.parametrize("options, message", [
    (dict(steps_per_epoch=0), r"steps_per_epoch must be a positive int or None, got 0"),
    (dict(validation_steps=1.5), r"validation_steps must be a positive int or None, got 1.5"),
    (dict(initial_epoch=-1), r"initial_epoch must be an int >= 0, got -1"),
    (dict(validation_freq=0),
     r"validation_freq must be a positive int .* or a list of epochs counted from 1, got 0"),
    (dict(validation_freq="2"), r"validation_freq must be .*got '2'"),
])
def test_bad_options_name_the_argument(options, message):
    net, _ = model()
    with pytest.raises(ValueError, match=message):
        net.fit(X, Y, verbose=0, **options)
