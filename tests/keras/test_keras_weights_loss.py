"""``sample_weight`` and ``class_weight`` in ``fit``/``evaluate``, with Keras 3's arithmetic
(keras/src/losses/loss.py, reduce_weighted_values): the loss values times their weights,
summed, divided by the number of values (or of real steps under a mask), never by the sum
of the weights; the metrics stay unweighted; ``class_weight`` gives each sample its class's
weight (keras/src/trainers/data_adapters/data_adapter_utils.py, class_weight_to_sample_weights)
and cannot be combined with ``sample_weight``."""

import numpy as np
import pytest
import torch

from rnnkit.keras import LSTM, Dense, Embedding, Sequential
from tests.keras.test_keras_fit import MASK, TOKENS, Y, bce_steps, tagger

RNG = np.random.default_rng(7)
X = RNG.normal(size=(10, 3))
Y_REG = RNG.normal(size=(10, 1))
W = RNG.uniform(0.0, 3.0, size=10)


def regressor(metrics=("mae",)):
    torch.manual_seed(0)
    model = Sequential([Dense(1, input_shape=(3,))])
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.0), loss="mse", metrics=list(metrics))
    return model


@pytest.mark.parametrize("batch_size", [10, 3])
def test_the_weighted_loss_is_divided_by_the_number_of_samples(batch_size):
    model = regressor()
    p = model.predict(X)
    loss, mae = model.evaluate(X, Y_REG, batch_size=batch_size, sample_weight=W)
    # every batch's sum(w l) / B counted B times: the epoch's sum(w l) / N whatever the batches
    np.testing.assert_allclose(loss, (W * (p - Y_REG)[:, 0] ** 2).sum() / 10, rtol=1e-6)
    np.testing.assert_allclose(mae, np.abs(p - Y_REG).mean(), rtol=1e-6)  # the metric: unweighted
    assert model.evaluate(X, Y_REG, sample_weight=np.ones(10))[0] == model.evaluate(X, Y_REG)[0]


def test_masked_sequences_take_weights_per_step_or_per_sample():
    """Per step (N, T): sum over real steps of w l, over the real steps; per sample (N,): each
    sample's weight on all its steps (Keras 3 would broadcast (N,) against T instead)."""
    model = tagger()
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.0), loss="binary_crossentropy")
    p = model.predict(TOKENS)
    bce = bce_steps(p)
    w_steps = np.random.default_rng(1).uniform(0, 2, size=TOKENS.shape)
    loss = model.evaluate(TOKENS, Y, batch_size=3, sample_weight=w_steps)
    np.testing.assert_allclose(loss, (w_steps * bce)[MASK].sum() / MASK.sum(), rtol=1e-6)
    w_rows = np.array([0.5, 2.0, 1.0])
    loss = model.evaluate(TOKENS, Y, batch_size=3, sample_weight=w_rows)
    np.testing.assert_allclose(loss, (w_rows[:, None] * bce)[MASK].sum() / MASK.sum(), rtol=1e-6)


def test_a_zero_weight_sample_takes_no_part_in_training():
    """SGD: with weights 1 on the first five samples and 0 on the rest, a step moves the
    weights as a step on the first five alone at half the rate (the loss is divided by 10)."""
    def trained(x, y, lr, **weights):
        torch.manual_seed(0)
        model = Sequential([Dense(1, input_shape=(3,))])
        model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=lr), loss="mse")
        model.fit(x, y, batch_size=len(x), epochs=3, verbose=0, shuffle=False, **weights)
        return model.get_weights()

    w = np.r_[np.ones(5), np.zeros(5)]
    weighted, alone = trained(X, Y_REG, 0.1, sample_weight=w), trained(X[:5], Y_REG[:5], 0.05)
    for got, want in zip(weighted, alone, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_class_weight_is_each_samples_class_weight():
    torch.manual_seed(0)
    x = RNG.normal(size=(12, 4, 2))
    labels = np.arange(12) % 3
    weights = {0: 0.5, 2: 4.0}  # class 1: 1

    def run(y, loss, **kw):
        torch.manual_seed(0)
        model = Sequential([LSTM(3, input_shape=(4, 2)), Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
        history = model.fit(x, y, batch_size=4, epochs=2, verbose=0, seed=5, **kw)
        return history.history["loss"], model.get_weights()

    by_class = run(labels, "sparse_categorical_crossentropy", class_weight=weights)
    by_sample = run(labels, "sparse_categorical_crossentropy",
                    sample_weight=np.array([weights.get(c, 1.0) for c in labels]))
    one_hot = run(np.eye(3)[labels], "categorical_crossentropy", class_weight=weights)  # argmax
    column = run(labels[:, None], "sparse_categorical_crossentropy", class_weight=weights)  # (N, 1)
    for other in (by_sample, one_hot, column):
        np.testing.assert_allclose(other[0], by_class[0], rtol=1e-6)
        for a, b in zip(other[1], by_class[1], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert run(labels, "sparse_categorical_crossentropy")[0] != by_class[0]


def test_validation_takes_its_own_weights():
    model = regressor(metrics=())
    p = model.predict(X)
    sq = (p - Y_REG)[:, 0] ** 2
    history = model.fit(X[:6], Y_REG[:6], epochs=1, verbose=0, validation_data=(X[6:], Y_REG[6:], W[6:]))
    np.testing.assert_allclose(history.history["val_loss"][0], (W[6:] * sq[6:]).sum() / 4, rtol=1e-6)
    history = model.fit(X, Y_REG, epochs=1, verbose=0, sample_weight=W, validation_split=0.4)  # last 4
    np.testing.assert_allclose(history.history["val_loss"][0], (W[6:] * sq[6:]).sum() / 4, rtol=1e-6)
    np.testing.assert_allclose(history.history["loss"][0], (W[:6] * sq[:6]).sum() / 6, rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sample_weight=W, class_weight={0: 1.0}), "class_weight and sample_weight cannot be given together"),
    (dict(sample_weight=W[:4]), r"sample_weight must be finite numbers of shape \(10,\) or \(10, T\)"),
    (dict(sample_weight=np.r_[W[:9], np.nan]), r"got shape \(10,\) with NaN or inf"),
    (dict(sample_weight=W[:, None, None].repeat(2, 1)), r"got shape \(10, 2, 1\)"),
    (dict(sample_weight=np.ones((10, 2))), r"sample_weight of shape \(10, 2\) \(per batch\) must match"),
    (dict(class_weight=[1.0, 2.0]), r"class_weight must be a dict \{class id: weight\}, got \[1.0, 2.0\]"),
    (dict(class_weight={"a": 1.0}), "class_weight must be a dict"),
    (dict(validation_data=(X, Y_REG, W, W)), r"validation_data must be .* got a tuple of 4"),
    (dict(validation_data=(X, Y_REG, W[:3])), r"validation_data sample_weight must be finite .*\(3,\)"),
])
def test_bad_weights_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        regressor().fit(X, Y_REG, epochs=1, verbose=0, **kwargs)


def test_class_weight_needs_one_class_per_sample():
    model = Sequential([Embedding(10, 4, input_shape=(6,)), LSTM(3, return_sequences=True),
                        Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match=r"class_weight needs one class per sample: .* got \(3, 6, 2\)"):
        model.fit(TOKENS, np.eye(2)[Y[..., 0].astype(int)], class_weight={0: 2.0}, verbose=0)


def test_class_weight_weighs_training_not_a_validation_split():
    """Keras splits (x, y) first and weighs classes in the training epochs only: val_loss
    is the plain loss on the held-out samples (found by a review, against Keras 3.15)."""
    torch.manual_seed(0)
    x, labels = RNG.normal(size=(10, 3, 2)), np.arange(10) % 2
    model = Sequential([LSTM(3, input_shape=(3, 2)), Dense(2, activation="softmax")])
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                  loss="sparse_categorical_crossentropy")
    history = model.fit(x, labels, epochs=1, verbose=0, validation_split=0.4, class_weight={0: 5.0})
    np.testing.assert_allclose(history.history["val_loss"][0], model.evaluate(x[6:], labels[6:]), rtol=1e-6)
    p = model.predict(x[:6])[np.arange(6), labels[:6]]
    w = np.where(labels[:6] == 0, 5.0, 1.0)
    np.testing.assert_allclose(history.history["loss"][0], (w * -np.log(p)).sum() / 6, rtol=1e-5)


def test_one_weight_per_sample_as_a_column():
    """(N, 1) weights are (N,) weights, for a loss that reduces the class axis too."""
    torch.manual_seed(0)
    x, y = RNG.normal(size=(8, 3, 2)), np.eye(3)[np.arange(8) % 3]
    model = Sequential([LSTM(3, input_shape=(3, 2)), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    w = RNG.uniform(0, 2, size=8)
    assert model.evaluate(x, y, sample_weight=w[:, None]) == model.evaluate(x, y, sample_weight=w)


def test_a_user_loss_that_returns_a_scalar_weighs_only_real_steps():
    """s * sum(w * mask) / real steps, as Keras broadcasts a scalar over the masked weights."""
    model = tagger()
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                  loss=lambda y_true, y_pred: ((y_true - y_pred) ** 2).mean())
    p = model.predict(TOKENS)
    w = np.random.default_rng(2).uniform(0, 2, size=TOKENS.shape)
    loss = model.evaluate(TOKENS, Y, batch_size=3, sample_weight=w)
    s = ((Y - p) ** 2).mean()  # the user's mean over every step, padding included
    np.testing.assert_allclose(loss, s * w[MASK].sum() / MASK.sum(), rtol=1e-6)
