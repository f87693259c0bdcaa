"""rnnkit.keras losses and metrics: Keras's mask on per-step outputs (padded steps skipped in
fit, evaluate and validation), user callables aligned and reduced as Keras's
LossFunctionWrapper does, unique metric names."""

import numpy as np
import pytest
import torch

from rnnkit.keras import LSTM, Dense, Dropout, Embedding, Sequential, losses

# rows of 3, 6 and 1 real steps, padded at the end: 10 real steps of 18
TOKENS = np.array([[1, 2, 3, 0, 0, 0], [4, 5, 6, 7, 8, 9], [2, 0, 0, 0, 0, 0]])
MASK = TOKENS != 0


def binary_targets(seed=0):
    return np.random.default_rng(seed).integers(0, 2, size=(*TOKENS.shape, 1)).astype(float)


def tagger(return_sequences=True):
    torch.manual_seed(0)
    return Sequential([Embedding(10, 4, mask_zero=True), LSTM(5, return_sequences=return_sequences),
                       Dropout(0.2), Dense(1, activation="sigmoid")])


def bce_steps(y, p):
    """Keras's binary cross-entropy at each step, (N, T, 1) -> (N, T)."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))[..., 0]


def test_evaluate_skips_masked_steps_in_loss_and_metrics():
    y = binary_targets()
    model = tagger()
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=["binary_accuracy", "mse", lambda yt, yp: (yt - yp).abs()])
    loss, acc, mse, mae = model.evaluate(TOKENS, y)
    p = model.predict(TOKENS)
    want = bce_steps(y, p)[MASK].mean()  # the mean over the 10 real steps, as Keras reports
    assert want != pytest.approx(bce_steps(y, p).mean())  # the data can tell the two apart
    assert loss == pytest.approx(want)
    assert acc == pytest.approx(((p > 0.5) == y)[..., 0][MASK].mean())
    assert mse == pytest.approx(((p - y) ** 2)[..., 0][MASK].mean())
    assert mae == pytest.approx(np.abs(p - y)[..., 0][MASK].mean())


def test_fit_does_not_learn_from_padded_targets():
    """Targets that differ only at padded steps train the same weights."""
    y = binary_targets(seed=1)
    y_other = np.where(MASK[..., None], y, 1.0 - y)
    weights = []
    for targets in (y, y_other):
        model = tagger()
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(TOKENS, targets, epochs=3, batch_size=2, seed=0, verbose=0)
        weights.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*weights, strict=True):
        torch.testing.assert_close(a, b)


def test_validation_skips_masked_steps():
    y, y_val = binary_targets(seed=2), binary_targets(seed=3)
    model = tagger()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(TOKENS, y, epochs=1, validation_data=(TOKENS, y_val), verbose=0)
    p = model.predict(TOKENS)  # the model the last validation saw
    assert history.history["val_loss"][-1] == pytest.approx(bce_steps(y_val, p)[MASK].mean())
    assert history.history["val_accuracy"][-1] == pytest.approx(((p > 0.5) == y_val)[..., 0][MASK].mean())


def test_no_mask_on_the_last_step_output():
    """return_sequences=False: Keras's output has no mask, so the loss is the plain mean."""
    y = np.random.default_rng(4).integers(0, 2, size=(len(TOKENS), 1)).astype(float)
    model = tagger(return_sequences=False)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    assert losses.get_mask(model(TOKENS)) is None
    p = model.predict(TOKENS)
    assert model.evaluate(TOKENS, y) == pytest.approx(bce_steps(y[:, None], p[:, None]).mean())


def test_user_loss_and_metric_get_aligned_targets():
    """(N,) targets for a (N, 1) output meet it as (N, 1), not broadcast to (N, N)."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(7, 4, 2)), rng.normal(size=7)
    torch.manual_seed(0)
    model = Sequential([LSTM(3, input_shape=(4, 2)), Dense(1)])
    model.compile("adam", lambda yt, yp: (yt - yp) ** 2, metrics=[lambda yt, yp: (yt - yp).abs()])
    loss, mae = model.evaluate(x, y)
    p = model.predict(x)[:, 0]
    assert loss == pytest.approx(np.mean((p - y) ** 2))
    assert mae == pytest.approx(np.mean(np.abs(p - y)))


@pytest.mark.parametrize("true_shape, pred_shape, seen", [
    ((5,), (5, 1), ((5, 1), (5, 1))),  # rank 1 gains the axis
    ((5, 3), (5, 3, 1), ((5, 3), (5, 3))),  # otherwise the longer loses it
    ((5, 3, 1), (5, 3), ((5, 3), (5, 3))),
    ((5, 2), (5, 2), ((5, 2), (5, 2))),
], ids=["expand-true", "squeeze-pred", "squeeze-true", "same"])
def test_user_loss_sees_keras_shapes_and_float_targets(true_shape, pred_shape, seen):
    calls = []

    def loss(y_true, y_pred):
        calls.append((tuple(y_true.shape), tuple(y_pred.shape), y_true.dtype))
        return (y_true - y_pred).abs()  # per element: reduced to its mean

    y_true = torch.randint(0, 3, true_shape)  # integers, cast as Keras casts them
    y_pred = torch.randn(pred_shape)
    value = losses.get_loss(loss)(y_true, y_pred)
    assert calls == [(*seen, torch.float64)]
    want = (y_true.double().reshape(seen[0]) - y_pred.reshape(seen[1])).abs().mean()
    torch.testing.assert_close(value, want)


def test_unnamed_metrics_get_keras_unique_names():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(8, 4, 2)), rng.normal(size=(8, 1))
    torch.manual_seed(0)
    model = Sequential([LSTM(3, input_shape=(4, 2)), Dense(1)])
    model.compile("adam", "mse", metrics=[lambda yt, yp: (yt - yp).abs(), lambda yt, yp: (yt - yp) ** 3,
                                          "mae", "mae"])
    history = model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y))
    assert list(history.history) == ["loss", "<lambda>", "<lambda>_1", "mae", "mae_1",
                                     "val_loss", "val_<lambda>", "val_<lambda>_1", "val_mae", "val_mae_1"]
    _, first, second, mae, mae_1 = model.evaluate(x, y)
    d = y - model.predict(x)  # y_true - y_pred, as the lambdas take them
    assert first == pytest.approx(np.abs(d).mean()) == mae == mae_1
    assert second == pytest.approx((d ** 3).mean())
