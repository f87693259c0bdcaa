"""Epoch values as Keras reports them (rnnkit.keras._fit): with a mask, a metric is the sum over
the epoch's real steps divided by their number, and the loss is each batch's mean over its real
steps counted once per sample (keras/src/metrics/reduction_metrics.py, MeanMetricWrapper;
keras/src/backend/torch/trainer.py, _loss_tracker.update_state(loss, sample_weight=B))."""

import numpy as np
import pytest
import torch

from rnnkit.keras import LSTM, Dense, Embedding, Sequential

# in batches of 2: rows 0-1 hold 3 + 6 = 9 real steps, row 2 holds 1
TOKENS = np.array([[1, 2, 3, 0, 0, 0], [4, 5, 6, 7, 8, 9], [2, 0, 0, 0, 0, 0]])
MASK = TOKENS != 0
BATCHES = [slice(0, 2), slice(2, 3)]
Y = np.random.default_rng(0).integers(0, 2, size=(*TOKENS.shape, 1)).astype(float)


def tagger():
    """No dropout: in training mode its outputs are predict's. Weights large enough for the
    outputs to spread over (0, 1), so that steps and batches differ."""
    model = Sequential([Embedding(10, 4, mask_zero=True, input_shape=(6,)),
                        LSTM(5, return_sequences=True), Dense(1, activation="sigmoid")])
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    return model


def compile_frozen(model):
    """SGD at rate 0: fit's outputs at every step are those of the weights it started with."""
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.0), loss="binary_crossentropy",
                  metrics=["mse", "binary_accuracy", lambda yt, yp: (yt - yp).abs()])


def bce_steps(p):
    q = np.clip(p, 1e-7, 1 - 1e-7)
    return -(Y * np.log(q) + (1 - Y) * np.log(1 - q))[..., 0]  # per step, (N, T)


def keras_values(p):
    """By hand, from the outputs p (N, T, 1): [loss, mse, binary_accuracy, mae]."""
    bce = bce_steps(p)
    # the loss: each batch's mean over its real steps, weighted by its rows (2 and 1)
    loss = sum((b.stop - b.start) * bce[b][MASK[b]].mean() for b in BATCHES) / len(TOKENS)
    # a metric: the sum over the 10 real steps of the epoch, divided by 10
    steps = [((p - Y) ** 2)[..., 0], ((p > 0.5) == Y)[..., 0], np.abs(p - Y)[..., 0]]
    return [loss, *(v[MASK].sum() / MASK.sum() for v in steps)]


def batch_means_by_rows(p):
    """What rnnkit reported before: each batch's mean weighted by its rows."""
    mse = ((p - Y) ** 2)[..., 0]
    return sum((b.stop - b.start) * mse[b][MASK[b]].mean() for b in BATCHES) / len(TOKENS)


def test_evaluate_counts_metrics_per_real_step_and_the_loss_per_sample():
    model = tagger()
    compile_frozen(model)
    p = model.predict(TOKENS)
    want = keras_values(p)
    assert want[1] != pytest.approx(batch_means_by_rows(p), rel=1e-3)  # the data tells them apart
    assert want[0] != pytest.approx(bce_steps(p)[MASK].mean(), rel=1e-3)  # the loss is not per step
    got = model.evaluate(TOKENS, Y, batch_size=2)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_fit_history_and_validation_count_as_keras_does():
    model = tagger()
    compile_frozen(model)
    want = keras_values(model.predict(TOKENS))
    history = model.fit(TOKENS, Y, epochs=2, batch_size=2, shuffle=False,
                        validation_data=(TOKENS, Y), verbose=0).history
    names = ["loss", "mse", "binary_accuracy", "<lambda>"]
    assert list(history) == [*names, *(f"val_{k}" for k in names)]
    for name, value in zip(names, want, strict=True):
        np.testing.assert_allclose(history[name], [value, value], rtol=1e-12)
        np.testing.assert_allclose(history[f"val_{name}"], [value, value], rtol=1e-12)


def test_a_shuffled_epoch_counts_the_same_steps():
    """The epoch's metric does not depend on how the batches split the real steps."""
    model = tagger()
    compile_frozen(model)
    want = keras_values(model.predict(TOKENS))
    history = model.fit(TOKENS, Y, epochs=3, batch_size=2, seed=5, verbose=0).history
    np.testing.assert_allclose(history["mse"], [want[1]] * 3, rtol=1e-12)


def test_without_a_mask_a_metric_counts_samples_and_a_scalar_once_per_batch():
    x = np.random.default_rng(1).normal(size=(5, 4, 2))
    y = np.random.default_rng(2).normal(size=(5, 1))
    torch.manual_seed(0)
    model = Sequential([LSTM(3, input_shape=(4, 2)), Dense(1)])

    def largest_error(y_true, y_pred):  # a scalar per batch, as a user may write
        return (y_true - y_pred).abs().max()

    model.compile(optimizer="adam", loss="mse", metrics=["mae", largest_error])
    p = model.predict(x)
    loss, mae, largest = model.evaluate(x, y, batch_size=3)  # batches of 3 and 2 samples
    assert loss == pytest.approx(((p - y) ** 2).mean(), rel=1e-12)
    assert mae == pytest.approx(np.abs(p - y).mean(), rel=1e-12)
    # Keras's Mean counts a scalar once: the mean of the two batches' largest errors
    assert largest == pytest.approx((np.abs(p - y)[:3].max() + np.abs(p - y)[3:].max()) / 2, rel=1e-12)


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_prints_keras_epoch_lines(verbose, capsys):
    """Keras's lines per epoch on stdout (``Epoch 1/2``, then the values); verbose=1 also
    draws the bar on stderr, verbose=2 does not, verbose=0 prints nothing."""
    torch.manual_seed(0)
    x, y = np.random.default_rng(0).normal(size=(12, 4, 2)), np.random.default_rng(1).normal(size=(12, 1))
    model = Sequential([LSTM(3), Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=2, batch_size=4, validation_split=0.25, verbose=verbose)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    loss, val_mae = history.history["loss"][1], history.history["val_mae"][1]
    assert lines[3].startswith("3/3 - ")  # 9 training samples in batches of 4
    assert f" - loss: {loss:.4f} - mae: " in lines[3]
    assert lines[3].endswith(f" - val_mae: {val_mae:.4f}")
    assert ("it/s" in err or "%" in err) == (verbose == 1)
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr() == ("", "")
    with pytest.raises(ValueError, match="verbose must be 0, 1, 2 or 'auto', got 3"):
        model.fit(x, y, epochs=1, verbose=3)
    model.fit(x, y, epochs=1, verbose=False)  # Keras reads bools as 0 and 1
    assert capsys.readouterr() == ("", "")
