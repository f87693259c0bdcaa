"""save/load_model keep the optimizer's state, as Keras's .keras file does: fit N epochs, save,
load, fit M more gives the weights of fitting N + M epochs in one go."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from rnnkit.keras import LSTM, Dense, Sequential, load_model

T, I, H = 5, 3, 4
RNG = np.random.default_rng(0)
X = RNG.normal(size=(10, T, I))
Y = X[:, :, :1].mean(axis=1) - X[:, -1, 1:2]  # learnable, never constant


def model():
    torch.manual_seed(1)  # the same initial weights every time
    net = Sequential([LSTM(H, input_shape=(T, I)), Dense(1)])
    net.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return net


def fit(net, epochs):
    # 10 samples in batches of 4: a short last batch; no shuffling, so the epochs repeat
    return net.fit(X, Y, epochs=epochs, batch_size=4, shuffle=False, seed=0, verbose=0)


def weights(net):
    return [p.detach().clone() for p in net.parameters()]


def assert_same(a, b):
    for pa, pb in zip(a, b, strict=True):
        assert torch.equal(pa, pb)


def test_fit_save_load_fit_equals_fitting_without_saving(tmp_path):
    whole = model()
    fit(whole, 5)
    parted = model()
    fit(parted, 2)
    parted.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    saved, restored = parted.optimizer.state_dict(), loaded.optimizer.state_dict()
    assert restored["param_groups"] == saved["param_groups"]  # betas a tuple again, base_lr kept
    for index, slots in saved["state"].items():
        assert slots.keys() == restored["state"][index].keys() == {"step", "exp_avg", "exp_avg_sq"}
        for name, value in slots.items():
            assert torch.equal(restored["state"][index][name], value)
    fit(loaded, 3)
    assert loaded.optimizer.state_dict()["state"][0]["step"] == 5 * 3  # 3 steps an epoch
    assert_same(weights(loaded), weights(whole))  # bit for bit, float64


def test_a_fresh_optimizer_would_train_other_weights(tmp_path):
    """What the test above rules out: Adam restarted (step 0, no moments) after loading."""
    whole = model()
    fit(whole, 5)
    parted = model()
    fit(parted, 2)
    parted.save(tmp_path / "m.safetensors")
    restarted = load_model(tmp_path / "m.safetensors")
    restarted.compile(optimizer="adam", loss="mse")  # compile drops the optimizer, as in Keras
    fit(restarted, 3)
    assert not all(torch.allclose(a, b) for a, b in zip(weights(restarted), weights(whole), strict=True))


def test_the_state_is_tensors_in_the_file_and_json_in_its_metadata(tmp_path):
    net = model()
    fit(net, 1)
    path = tmp_path / "m.safetensors"
    net.save(path)
    with safe_open(path, framework="pt") as f:
        keys, metadata = set(f.keys()), f.metadata()
    state = json.loads(metadata["optimizer"])
    assert state["class"] == "Adam" and state["param_groups"][0]["betas"] == [0.9, 0.999]
    assert state["param_groups"][0]["eps"] == 1e-7  # Keras's epsilon
    assert state["state"]["0"]["exp_avg"] == {"tensor": "optimizer/state/0/exp_avg"}
    n = len(list(net.parameters()))
    assert {k for k in keys if k.startswith("optimizer/")} == {
        f"optimizer/state/{k}/{name}" for k in range(n) for name in ("step", "exp_avg", "exp_avg_sq")}


def test_uncompiled_and_untrained_models_save_no_optimizer_state(tmp_path):
    bare = Sequential([LSTM(H, input_shape=(T, I)), Dense(1)])
    bare.save(tmp_path / "bare.safetensors")
    assert load_model(tmp_path / "bare.safetensors").optimizer is None
    compiled = model()  # compiled, never fit: its optimizer is built by the first fit
    compiled.save(tmp_path / "compiled.safetensors")
    loaded = load_model(tmp_path / "compiled.safetensors")
    assert not loaded.optimizer.built and not compiled.optimizer.built  # Keras's: made by compile
    fit(loaded, 1)
    fit(compiled, 1)
    assert_same(weights(loaded), weights(compiled))


def test_load_model_without_compile_leaves_the_state(tmp_path):
    net = model()
    fit(net, 1)
    net.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors", compile=False)
    assert loaded.optimizer is None and loaded._compiled is None
    other = Sequential([LSTM(H, input_shape=(T, I)), Dense(1)])
    other.load_weights(tmp_path / "m.safetensors")  # a model file's weights; its state ignored
    assert_same(weights(other), weights(net))


def test_a_layer_added_after_fit_keeps_its_own_parameter_group(tmp_path):
    torch.manual_seed(1)
    net = Sequential([LSTM(H, input_shape=(T, I)), Dense(2)])
    net.compile(optimizer="adam", loss="mse")
    net.fit(X, np.concatenate([Y, -Y], axis=1), epochs=1, batch_size=4, shuffle=False, verbose=0)
    net.add(Dense(1))  # joins the kept optimizer as a second group, with no state yet
    net.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert [len(g["params"]) for g in loaded.optimizer.param_groups] == [4, 2]
    fit(net, 2)
    fit(loaded, 2)
    assert_same(weights(loaded), weights(net))


def test_a_state_that_does_not_fit_the_model_is_refused(tmp_path):
    net = model()
    fit(net, 1)
    path = tmp_path / "m.safetensors"
    net.save(path)
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    tensors = st_load(path.read_bytes())
    state = json.loads(metadata["optimizer"])
    tensors["optimizer/state/0/exp_avg"] = torch.zeros(2, 2)
    path.write_bytes(st_save(tensors, metadata=metadata))
    with pytest.raises(ValueError, match=r"has 'exp_avg' of parameter 0 with shape \(2, 2\); the "
                                         r"model's parameter 0 has shape \(16, 4\)"):
        load_model(path)
    state["class"] = "SGD"
    path.write_bytes(st_save(tensors, metadata={**metadata, "optimizer": json.dumps(state)}))
    with pytest.raises(ValueError, match="is for a SGD over 4 parameters; the model's optimizer is a Adam"):
        load_model(path)
    path.write_bytes(st_save(tensors, metadata={**metadata, "optimizer": "{"}))
    with pytest.raises(ValueError, match="optimizer state in .* is malformed"):
        load_model(path)
