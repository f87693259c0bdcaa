"""Keras's ``trainable`` (keras/src/layers/layer.py: the setter sets the layer's weights and
its sub-layers) and ``Embedding(weights=[matrix])``: frozen weights do not move in ``fit``,
whenever they were frozen, ``summary()`` counts them as non-trainable, and save/load keeps
the flags and the optimizer's state."""

import numpy as np
import pytest
import torch

from rnnkit.keras import LSTM, Bidirectional, Dense, Embedding, Sequential, load_model

T, V, E, H = 6, 20, 4, 5
RNG = np.random.default_rng(0)
X = RNG.integers(1, V, size=(24, T))
Y = (X[:, 0] > 10).astype("float64")  # learnable from the tokens, never constant


def classifier(**embedding):
    torch.manual_seed(2)
    model = Sequential([Embedding(V, E, input_shape=(T,), **embedding), LSTM(H),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def fit(model, epochs=2):
    return model.fit(X, Y, epochs=epochs, batch_size=8, shuffle=False, seed=0, verbose=0)


def moved(model):
    """For each layer, whether fit changed any of its weights."""
    before = [layer.get_weights() for layer in model.layers]
    fit(model)
    return [any(not np.array_equal(a, b) for a, b in zip(w, layer.get_weights(), strict=True))
            for w, layer in zip(before, model.layers, strict=True)]


def test_a_frozen_layer_keeps_its_weights_and_counts_as_non_trainable():
    model = classifier()
    model.layers[0].trainable = False  # the Keras idiom, after the model is built
    assert not model.layers[0].trainable and all(not p.requires_grad for p in model.layers[0].parameters())
    text = model.summary(print_fn=None)
    # Keras's counts: 20 * 4, 4 * 5 * (4 + 5 + 1) and 5 + 1
    assert "Total params: 286" in text and "Trainable params: 206" in text
    assert "Non-trainable params: 80" in text
    assert moved(model) == [False, True, True]


def test_trainable_as_a_constructor_argument_and_before_the_build():
    model = classifier(trainable=False)
    assert model.layers[0].get_config()["trainable"] is False
    assert moved(model) == [False, True, True]
    lazy = LSTM(H, trainable=False)  # applied when the weights are made
    net = Sequential([Embedding(V, E), lazy, Dense(1)])
    net(X[:2])
    assert all(not p.requires_grad for p in lazy.parameters())
    assert all(p.requires_grad for p in net.layers[0].parameters())


def test_freezing_or_unfreezing_after_compile_and_fit_takes_effect():
    model = classifier()
    fit(model)  # the optimizer now holds every weight
    model.layers[1].trainable = False
    assert moved(model) == [True, False, True]  # no gradient: the kept Adam skips it
    model.layers[1].trainable = True
    assert moved(model) == [True, True, True]
    frozen = classifier(trainable=False)
    fit(frozen)  # the optimizer was built without the embedding
    frozen.layers[0].trainable = True  # joins it as a new group, as a layer added after fit
    assert moved(frozen) == [True, True, True]
    assert [len(g["params"]) for g in frozen.optimizer.param_groups] == [4, 1]


def test_model_trainable_sets_every_layer_and_a_frozen_model_does_not_fit():
    model = classifier()
    model.trainable = False
    assert not model.trainable and not any(layer.trainable for layer in model.layers)
    assert "Trainable params: 0" in model.summary(print_fn=None)
    with pytest.raises(ValueError, match=r"fit\(\) needs a trainable weight, but the model has trainable="):
        fit(model)
    model.layers[2].trainable = True  # Keras: a frozen model still trains nothing
    assert "Trainable params: 0" in model.summary(print_fn=None)
    with pytest.raises(ValueError, match="the model has trainable=False"):
        fit(model)
    model.add(Dense(1))  # a layer added to a frozen model is frozen too
    assert not model.layers[-1].trainable
    model.trainable = True
    assert all(layer.trainable for layer in model.layers)
    assert moved(model) == [True, True, True, True]


def test_bidirectional_sets_its_layer():
    wrapped = Bidirectional(LSTM(H, return_sequences=True), trainable=False)
    assert not wrapped.layer.trainable
    model = Sequential([Embedding(V, E, input_shape=(T,)), wrapped, LSTM(H), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    assert moved(model) == [True, False, True, True]
    model.layers[1].trainable = True
    assert wrapped.layer.trainable and moved(model) == [True, True, True, True]


def test_embedding_weights_is_the_initial_matrix_and_frozen_stays_it():
    matrix = RNG.normal(size=(V, E))
    model = classifier(weights=[matrix], trainable=False)  # pretrained vectors, frozen
    np.testing.assert_allclose(model.layers[0].get_weights()[0], matrix)
    tokens = np.array([[3, 7, 1, 19, 0, 5]])
    assert moved(model) == [False, True, True]
    np.testing.assert_allclose(model.layers[0].get_weights()[0], matrix)
    np.testing.assert_allclose(model.layers[0](tokens).detach().numpy(), matrix[tokens])
    tuned = classifier(weights=matrix)  # a bare matrix too; trainable: fine-tuned from it
    assert moved(tuned) == [True, True, True]
    lazy = Embedding(V, E, weights=[matrix])  # written when the layer is built
    np.testing.assert_allclose(lazy(tokens).detach().numpy(), matrix[tokens])


@pytest.mark.parametrize("weights, message", [
    ([np.zeros((V, E + 1))], r"weights of embedding \(Embedding\) must be one matrix of shape \(input_dim, "
                             r"output_dim\) = \(20, 4\), got shape \(20, 5\)"),
    ([np.zeros((V, E)), np.zeros(E)], r"weights of embedding \(Embedding\) must be \[matrix\]: one "
                                      r"\(input_dim, output_dim\) array, got a list of 2 arrays"),
])
def test_embedding_weights_of_another_shape_are_refused(weights, message):
    with pytest.raises(ValueError, match=message):
        Embedding(V, E, weights=weights)


def test_trainable_must_be_a_bool():
    with pytest.raises(TypeError, match="trainable must be True or False, got 'no'"):
        Dense(2, trainable="no")
    layer = Dense(2)
    layer.trainable = np.bool_(False)  # numpy's bool is read as Keras reads it
    assert layer.trainable is False


def test_save_and_load_keep_the_flags_and_the_optimizer_state(tmp_path):
    """Frozen, fit, unfrozen (a second parameter group), fit, saved: the loaded model goes on
    as the saved one does, bit for bit."""
    model = classifier(trainable=False)
    model.layers[1].trainable = False
    fit(model)  # the optimizer holds the Dense only
    model.layers[0].trainable = True  # then the embedding joins; the LSTM stays frozen
    fit(model)
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert [layer.trainable for layer in loaded.layers] == [True, False, True]
    assert loaded.get_config() == model.get_config()
    assert loaded.summary(print_fn=None) == model.summary(print_fn=None)
    assert [len(g["params"]) for g in loaded.optimizer.param_groups] == [2, 1]
    fit(model)
    fit(loaded)
    for a, b in zip(model.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(a, b)
    frozen = classifier()
    frozen.trainable = False
    frozen.save(tmp_path / "f.safetensors")
    assert not load_model(tmp_path / "f.safetensors").trainable
