"""save_weights/load_weights and save/load_model: one safetensors file, written atomically;
the architecture as JSON in its metadata, read back through a fixed registry of layers."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load as st_load
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
    _saving,
    load_model,
    optimizers,
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
    with pytest.raises(ValueError, match=r"tensor 'layers/lstm/cell/vars/0' has shape \(4, 24\), but "
                                         r"weight 'kernel' of lstm_2 \(LSTM\) has shape \(4, 28\)"):
        wider.load_weights(path)
    for got, want in zip(wider.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)  # nothing written
    with pytest.raises(ValueError, match=r"no tensor 'layers/gru/cell/vars/0' \(weight 'kernel' of gru"):
        Sequential([GRU(H, input_shape=(T, I)), Dense(1)]).load_weights(path)
    with pytest.raises(ValueError, match=r"tensors \['layers/dense/vars/0', 'layers/dense/vars/1'\] have "
                                         r"no weight"):
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
    assert type(loaded.optimizer) is type(model.optimizer) is optimizers.Adam  # with the saved state (below)
    loaded.fit(x, y, epochs=1, batch_size=3, verbose=0)
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
    path.write_bytes(st_save({}, metadata={"format": "rnnkit.keras.model/2", "config": json.dumps(config)}))


def test_load_model_refuses_what_is_not_a_saved_model(tmp_path):
    path = tmp_path / "w.safetensors"
    Sequential([LSTM(H, input_shape=(T, I))]).save_weights(path)
    with pytest.raises(ValueError, match="holds no model architecture .*load_weights"):
        load_model(path)
    write_model_file(path, [{"class_name": "os.system", "config": {"command": "true"}}])
    with pytest.raises(ValueError, match=r"one of \[.*'Bidirectional', .*got 'os.system'"):
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


# -- the file's keys: Keras 3's paths in model.weights.h5 ------------------------------------
def test_keys_are_the_paths_keras_writes():
    """keras/src/saving/saving_lib.py: a Sequential's layers under ``layers/``, named by class
    with a counter; a recurrent layer's variables belong to its ``cell``, a Bidirectional's to
    ``forward_layer`` and ``backward_layer``; each object's variables are ``vars/<i>`` in build
    order (kernel, recurrent_kernel, bias; Dense: kernel, bias)."""
    model = Sequential([Embedding(V, 4, input_shape=(T,), name="tokens"),
                        Bidirectional(LSTM(H, return_sequences=True)), Dropout(0.1),
                        GRU(H, return_sequences=True), SimpleRNN(H), Dense(4), Dropout(0.1),
                        Dense(2, use_bias=False, name="head")])
    cell = [f"cell/vars/{k}" for k in range(3)]
    want = ["layers/embedding/vars/0",
            *(f"layers/bidirectional/{side}_layer/{v}" for side in ("forward", "backward") for v in cell),
            *(f"layers/gru/{v}" for v in cell), *(f"layers/simple_rnn/{v}" for v in cell),
            "layers/dense/vars/0", "layers/dense/vars/1", "layers/dense_1/vars/0"]
    assert list(_saving.file_keys(list(model.layers))) == want
    names = [name for _, name, _ in _saving.file_keys(list(model.layers)).values()]
    assert names[1:7] == [f"{side}/{w}" for side in ("forward", "backward")
                          for w in ("kernel", "recurrent_kernel", "bias")]
    assert [w.shape for w in model.get_weights()] == [
        tuple(w.shape) for _, _, w in _saving.file_keys(list(model.layers)).values()]


def test_files_of_format_1_still_load(tmp_path):
    """Format 1 keyed each weight ``<layer>/<weight name>``."""
    a, b = two_models()
    old = {f"{prefix}/{name}": torch.tensor(array).contiguous() for (prefix, name), array in zip(
        [("embedding", "embeddings"),
         *(("bidirectional", f"{side}/{w}") for side in ("forward", "backward")
           for w in ("kernel", "recurrent_kernel", "bias")),
         ("simple_rnn", "kernel"), ("simple_rnn", "recurrent_kernel"),
         ("dense", "kernel"), ("dense", "bias")], a.get_weights(), strict=True)}
    path = tmp_path / "old.safetensors"
    path.write_bytes(st_save(old, metadata={"format": "rnnkit.keras.weights/1"}))
    b.load_weights(path)
    x = tokens()
    np.testing.assert_array_equal(b.predict(x), a.predict(x))
    path.write_bytes(st_save(old, metadata={"format": "rnnkit.keras.model/1",
                                            "config": json.dumps(a.get_config())}))
    np.testing.assert_array_equal(load_model(path).predict(x), a.predict(x))


def test_models_are_written_as_format_3_and_format_2_still_loads(tmp_path):
    """Format 3 added trainable and optimizer objects, which the readers of 2 cannot take;
    a file of format 2 (the same layout otherwise) loads, compiled, with its optimizer's state."""
    torch.manual_seed(0)
    model = Sequential([LSTM(H, input_shape=(T, I)), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x, y = RNG.normal(size=(B, T, I)), RNG.normal(size=(B, 1))
    model.fit(x, y, batch_size=3, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    assert metadata["format"] == "rnnkit.keras.model/3"
    old = {**metadata, "format": "rnnkit.keras.model/2"}
    path.write_bytes(st_save(st_load(path.read_bytes()), metadata=old))
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer.state_dict()["state"][0]["step"] == 2
