"""Run directories: tied weights in safetensors, the architecture registry, damaged files,
and a signal that stops training at a step boundary with a checkpoint."""

import json
import os
import signal

import pytest
import torch

from rnnkit.models import LanguageModel, LMConfig, architecture_config, load_model
from rnnkit.train import CheckpointError, StreamLoader, TrainConfig, fit, load_weights, save_weights


def _lm(**kw):
    return LanguageModel(LMConfig(vocab_size=17, embed_size=8, hidden_size=8, **kw))


def test_tied_weights_are_stored_once_and_come_back_tied(tmp_path):
    model = _lm(tie_weights=True)
    save_weights(tmp_path / "model.safetensors", model)
    from safetensors.torch import load_file
    stored = load_file(tmp_path / "model.safetensors")
    assert "head.weight" not in stored and "embed.embedding.weight" in stored
    fresh = _lm(tie_weights=True)
    load_weights(tmp_path / "model.safetensors", fresh)
    assert fresh.head.weight is fresh.embed.embedding.weight
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("config", ["given", "filled in"])
def test_load_model_from_the_registry(tmp_path, config):
    model = _lm(num_layers=2, cell="gru")
    ids = torch.randint(0, 17, (300,))
    fit(model, StreamLoader(ids, batch_size=2, bptt=8), TrainConfig(max_steps=3, progress=False),
        run_dir=tmp_path, config=architecture_config(model) if config == "given" else None)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["architecture"] == "language_model" and saved["model"]["cell"] == "gru"
    loaded = load_model(tmp_path)
    x = torch.randint(0, 17, (2, 5))
    torch.testing.assert_close(loaded(x)[0], model.eval()(x)[0])


def test_unknown_architecture_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "os.system", "model": {}}))
    with pytest.raises(CheckpointError, match="names architecture 'os.system'; expected one of"):
        load_model(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing"])
def test_damaged_weights_are_a_clear_error(tmp_path, damage):
    model = _lm()
    (tmp_path / "config.json").write_text(json.dumps(architecture_config(model)))
    save_weights(tmp_path / "model.safetensors", model)
    path = tmp_path / "model.safetensors"
    if damage == "missing":
        path.unlink()
        with pytest.raises(CheckpointError, match="model.safetensors does not exist"):
            load_model(tmp_path)
        return
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 50] if damage == "truncate" else b"\x08" + b"\x00" * 7 + b"{nonsense")
    with pytest.raises(CheckpointError, match="not a readable safetensors file .* truncated or corrupt"):
        load_model(tmp_path)


def test_other_architecture_weights_are_refused(tmp_path):
    save_weights(tmp_path / "w.safetensors", _lm())
    with pytest.raises(CheckpointError, match=r"different architecture .* wrong shapes"):
        load_weights(tmp_path / "w.safetensors", LanguageModel(LMConfig(vocab_size=17, embed_size=8,
                                                                         hidden_size=9)))


def test_sigint_saves_at_the_step_boundary_and_returns(tmp_path):
    ids = torch.randint(0, 17, (400,))

    def interrupt(step, values):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    handler = signal.getsignal(signal.SIGINT)
    result = fit(_lm(), StreamLoader(ids, batch_size=2, bptt=8), TrainConfig(epochs=5, progress=False),
                 run_dir=tmp_path, on_step=interrupt)
    assert (result.stopped, result.steps) == ("SIGINT", 2)
    assert torch.load(tmp_path / "training_state.pt", weights_only=True)["step"] == 2
    assert signal.getsignal(signal.SIGINT) is handler  # restored after fit
