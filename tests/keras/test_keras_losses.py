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


def _np_losses(y, p):
    """Keras 3's formulas (keras/src/losses/losses.py), per sample (mean or sum over the last
    axis), eps = 1e-7."""
    eps, e = 1e-7, p - y
    return {
        "huber": np.where(np.abs(e) <= 1, 0.5 * e**2, np.abs(e) - 0.5).mean(-1),
        "mape": (100 * np.abs(e) / np.maximum(np.abs(y), eps)).mean(-1),
        "msle": ((np.log1p(np.maximum(p, eps)) - np.log1p(np.maximum(y, eps))) ** 2).mean(-1),
        "kld": (np.clip(y, eps, 1) * np.log(np.clip(y, eps, 1) / np.clip(p, eps, 1))).sum(-1),
        "log_cosh": np.log(np.cosh(e)).mean(-1),
    }


@pytest.mark.parametrize("name", ["huber", "mape", "msle", "kld", "log_cosh"])
def test_more_keras_losses_follow_keras_formulas(name):
    rng = np.random.default_rng(1)
    y = rng.uniform(0.05, 1, size=(6, 3))
    p = np.abs(y + rng.normal(0, 1.2, size=y.shape)) + 0.01  # errors both sides of Huber's delta
    got = losses.get_loss(name)(torch.tensor(y), torch.tensor(p))
    assert float(got) == pytest.approx(_np_losses(y, p)[name].mean(), rel=1e-12)


def test_more_keras_activations_follow_keras_formulas():
    from rnnkit.keras._core import get_activation

    x = torch.linspace(-5, 5, 41, dtype=torch.float64)
    want = {"elu": torch.where(x > 0, x, x.exp() - 1), "gelu": 0.5 * x * (1 + torch.erf(x / 2**0.5)),
            "softplus": (1 + x.exp()).log(), "softsign": x / (1 + x.abs()), "swish": x * x.sigmoid(),
            "leaky_relu": torch.where(x > 0, x, 0.2 * x), "hard_sigmoid": ((x + 3).clamp(0, 6)) / 6,
            "relu6": x.clamp(0, 6), "exponential": x.exp()}
    for name, value in want.items():
        torch.testing.assert_close(get_activation(name)(x), value, msg=name)
