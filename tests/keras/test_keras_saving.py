"""save_weights/load_weights and save/load_model: one safetensors file, written atomically;
the architecture as JSON in its metadata, read back through a fixed registry of layers."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save as st_save

from rnnkit.keras import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Sequential,
    SimpleRNN,
    load_model,
)

B, T, I, H, V = 6, 5, 4, 6, 9
RNG = np.random.default_rng(0)


def two_models():
    """Two models of one architecture with different initial weights; the second's layers
    named otherwise (names do not matter, positions and classes do)."""
    def make(prefix):
        return Sequential([Embedding(V, 4, input_shape=(T,), name=f"{prefix}emb"),
                           Bidirectional(GRU(H, return_sequences=True)), SimpleRNN(H, use_bias=False),
                           Dense(3, activation="softmax")])
    return make(""), make("other_")


def tokens():
    return RNG.integers(1, V, size=(B, T))


# -- save_weights / load_weights -----------------------------------------------------------
def test_save_and_load_weights(tmp_path):
    a, b = two_models()
    path = tmp_path / "model.weights.safetensors"
    a.save_weights(path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    x = tokens()
    assert not np.allclose(b.predict(x), a.predict(x))
    b.load_weights(path)
    np.testing.assert_array_equal(b.predict(x), a.predict(x))
    with pytest.raises(FileExistsError, match="overwrite=False"):
        a.save_weights(path, overwrite=False)


def test_load_weights_errors_name_the_problem(tmp_path):
    path = tmp_path / "w.safetensors"
    with pytest.raises(FileNotFoundError, match="no weights file at .*w.safetensors"):
        Sequential([LSTM(H, input_shape=(T, I))]).load_weights(path)
    Sequential([LSTM(H, input_shape=(T, I)), Dense(1)]).save_weights(path)
    wider = Sequential([LSTM(H + 1, input_shape=(T, I)), Dense(1)])
    before = wider.get_weights()
    with pytest.raises(ValueError, match=r"tensor 'lstm/kernel' has shape \(4, 24\), but weight "
                                         r"'kernel' of lstm \(LSTM\) has shape \(4, 28\)"):
        wider.load_weights(path)
    for got, want in zip(wider.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)  # nothing written
    with pytest.raises(ValueError, match=r"no tensor 'gru/kernel' \(weight 'kernel' of gru \(GRU\)"):
        Sequential([GRU(H, input_shape=(T, I)), Dense(1)]).load_weights(path)
    with pytest.raises(ValueError, match=r"tensors \['dense/bias', 'dense/kernel'\] have no weight"):
        Sequential([LSTM(H, input_shape=(T, I))]).load_weights(path)
    with pytest.raises(ValueError, match=r"load_weights\(\) needs a built model"):
        Sequential([LSTM(H)]).load_weights(path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        wider.load_weights(path)


# -- save / load_model ---------------------------------------------------------------------
def every_layer():
    """Each registered class, with arguments away from their defaults."""
    return Sequential([
        Embedding(V, 4, mask_zero=True, input_shape=(T,)),
        Bidirectional(GRU(H, reset_after=False, return_sequences=True, recurrent_dropout=0.1),
                      merge_mode="sum"),
        SimpleRNN(H, activation="relu", return_sequences=True, name="relu_rnn"),
        LSTM(H, dropout=0.2, go_backwards=True, backend="reference"),
        Dropout(0.3),
        Dense(3, activation="softmax", use_bias=False),
    ], name="classifier")


def test_save_and_load_model(tmp_path):
    model = every_layer()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = tokens(), RNG.integers(0, 3, size=B)
    x[0, 3:] = 0  # padding, for mask_zero
    model.fit(x, y, epochs=1, batch_size=3, verbose=0)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = load_model(path)
    assert loaded.get_config() == model.get_config()
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.layers[1].layer.reset_after is False and loaded.layers[3].go_backwards
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y) == pytest.approx(model.evaluate(x, y))  # compiled as saved
    loaded.fit(x, y, epochs=1, batch_size=3, verbose=0)  # with a fresh optimizer
    assert type(loaded.optimizer) is torch.optim.Adam
    assert json.loads(json.dumps(model.get_config())) == model.get_config()  # plain JSON


def test_a_model_built_on_first_use_is_saved_with_its_input_shape(tmp_path):
    model = Sequential([LSTM(H), Dense(2)])
    x = RNG.normal(size=(B, T, I))
    model.predict(x)
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors", compile=False)
    assert loaded.built and loaded.layers[0].input_shape == (None, T, I)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_compile_settings_other_than_names_are_not_saved(tmp_path):
    model = Sequential([LSTM(H, input_shape=(T, I)), Dense(1)])
    model.compile(optimizer="sgd", loss=lambda y_true, y_pred: (y_true - y_pred).abs())
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    with pytest.raises(RuntimeError, match="needs a compiled model"):
        loaded.evaluate(RNG.normal(size=(B, T, I)), RNG.normal(size=(B, 1)))


def write_model_file(path, layers):
    config = {"name": "m", "layers": layers, "build_input_shape": None, "compile": None}
    path.write_bytes(st_save({}, metadata={"format": "rnnkit.keras.model/1", "config": json.dumps(config)}))


def test_load_model_refuses_what_is_not_a_saved_model(tmp_path):
    path = tmp_path / "w.safetensors"
    Sequential([LSTM(H, input_shape=(T, I))]).save_weights(path)
    with pytest.raises(ValueError, match="holds no model architecture .*load_weights"):
        load_model(path)
    write_model_file(path, [{"class_name": "os.system", "config": {"command": "true"}}])
    with pytest.raises(ValueError, match=r"one of \['Bidirectional', .*got 'os.system'"):
        load_model(path)
    write_model_file(path, [{"class_name": "Dense", "config": {"units": 2, "kernel_size": 3}}])
    with pytest.raises(ValueError, match="config of a Dense does not fit it: .*kernel_size"):
        load_model(path)
    write_model_file(path, "Dense")
    with pytest.raises(ValueError, match="architecture in .* is malformed"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="no weights file"):
        load_model(tmp_path / "missing.safetensors")


def test_a_callable_activation_cannot_be_saved(tmp_path):
    model = Sequential([Dense(2, activation=torch.tanh, input_shape=(I,))])
    with pytest.raises(ValueError, match=r"activation of dense \(Dense\) must be a name to be saved"):
        model.save(tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []
