"""Training or inference, as Keras decides it: ``model(x)`` is inference (no dropout) unless
``training=True``; ``fit`` trains inside itself only; torch's ``train()``/``eval()`` still
set the mode of plain calls."""

import numpy as np
import pytest
import torch

from rnnkit.keras import GRU, LSTM, Dense, Dropout, Sequential

B, T, I, H = 4, 6, 3, 5


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, T, I))
    return x, x[:, :, :1].mean(axis=1)


def dropout_model(**first):
    """Every kind of dropout: input and recurrent dropout in the LSTM, a Dropout layer."""
    return Sequential([LSTM(H, dropout=0.5, recurrent_dropout=0.5, return_sequences=True, **first),
                       GRU(H, recurrent_dropout=0.5), Dropout(0.5), Dense(1)])


def modes(model):
    return {m.training for m in model.modules()}


def test_calls_are_inference_after_construction_and_after_fit():
    x, y = data()
    model = dropout_model(input_shape=(T, I))
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
    assert not torch.equal(model(x, training=True), model(x, training=True))
    assert modes(model) == {False}  # training=True held for that call only
    model.compile(optimizer="adam", loss="mse")
    before = model.predict(x)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert modes(model) == {False}
    out = model(x)
    torch.testing.assert_close(out, model(x), rtol=0, atol=0)
    assert not np.allclose(model.predict(x), before)  # fit trained, so the check above means something
    np.testing.assert_array_equal(model.predict(x), out.detach().numpy())


def test_a_model_built_on_its_first_call_is_in_inference_mode():
    """Its layers make their dropout modules on that call; they take the model's mode."""
    x, _ = data(1)
    model = dropout_model()
    first = model(x)
    assert modes(model) == {False}
    torch.testing.assert_close(first, model(x), rtol=0, atol=0)


def test_a_first_call_with_training_true_leaves_lazily_built_modules_in_inference_mode():
    x, _ = data(2)
    model = dropout_model()
    model(x, training=True)
    assert modes(model) == {False}


def test_torch_train_mode_is_kept_across_fit_evaluate_and_predict():
    x, y = data(3)
    model = dropout_model(input_shape=(T, I))
    model.train()  # a torch user's own loop
    assert not torch.equal(model(x), model(x))
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.evaluate(x, y)
    np.testing.assert_array_equal(model.predict(x), model.predict(x))
    assert modes(model) == {True}
    torch.testing.assert_close(model(x, training=False), model(x, training=False), rtol=0, atol=0)
    assert modes(model) == {True}


def test_a_layer_added_takes_the_models_mode():
    model = Sequential([LSTM(H, input_shape=(T, I))])
    model.add(Dropout(0.5))
    assert modes(model) == {False}
    model.train()
    model.add(Dropout(0.5))
    assert modes(model) == {True}


@pytest.mark.parametrize("training", [None, False])
def test_a_layer_alone_is_in_inference_mode_unless_told(training):
    x = torch.randn(B, T, I)
    drop = Dropout(0.5)
    torch.testing.assert_close(drop(x, training=training), x)
    y = drop(x, training=True)
    assert ((y == 0) | torch.isclose(y, 2 * x)).all() and (y == 0).any()
    assert not drop.training
