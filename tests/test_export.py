"""``rnnkit.export.export_onnx`` and ``rnnkit export``: the files onnxruntime runs, streaming
with explicit state, and the refusals (other models, a failed check, a missing extra)."""

import importlib.util
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rnnkit import export as export_module
from rnnkit.cli import cli
from rnnkit.export import export_onnx
from rnnkit.models import LanguageModel, LMConfig
from tests.cli.test_forecast_commands import FAST as FORECAST_FAST
from tests.tasks.test_classify_task import cfg_for, write_trend_ts

pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")


def test_a_language_model_streams_token_by_token_through_its_state(tmp_path):
    """The file run one token at a time, its state fed back, gives the model's logits for the
    whole sequence at once: what a streaming caller of the file does."""
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(vocab_size=20, embed_size=6, hidden_size=8, num_layers=2, cell="lstm"))
    model = model.float()  # as trained runs are (the suite's default dtype is float64)
    result = export_onnx(model, tmp_path / "lm.onnx")
    assert result["inputs"] == {"ids": ["B", "T"], "h": [2, "B", 8], "c": [2, "B", 8]}
    assert result["outputs"] == ["logits", "h_out", "c_out"]
    assert [(c["batch"], c["time"]) for c in result["checked"]] == [(1, 1), (4, 9)]
    session = ort.InferenceSession(str(tmp_path / "lm.onnx"), providers=["CPUExecutionProvider"])
    ids = torch.randint(0, 20, (2, 11))
    h = c = np.zeros((2, 2, 8), np.float32)
    steps = []
    for t in range(ids.shape[1]):
        logits, h, c = session.run(None, {"ids": ids[:, t:t + 1].numpy(), "h": h, "c": c})
        steps.append(logits)
    with torch.no_grad():
        want, (h_n, c_n) = model(ids)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), want.numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(c, c_n.numpy(), atol=1e-5, rtol=1e-5)
    assert model.training  # the caller's mode is kept


def test_the_onnx_example_generates_what_rnnkit_generate_does(tmp_path):
    """examples/onnx_generate.py streams a trained run's file token by token, greedily: the
    same text as rnnkit's own greedy generation."""
    import runpy

    from rnnkit.data.tokenizers import load_tokenizer
    from rnnkit.models import load_model
    from rnnkit.tasks.lm import generate, train_lm
    from tests.tasks.test_lm_task import TEXT, tiny

    train_lm(tiny(), tmp_path / "run", text=TEXT)
    export_onnx(load_model(tmp_path / "run"), tmp_path / "lm.onnx")
    example = runpy.run_path("examples/onnx_generate.py")
    session = ort.InferenceSession(str(tmp_path / "lm.onnx"), providers=["CPUExecutionProvider"])
    tokenizer = load_tokenizer(tmp_path / "run")
    ids = example["greedy"](session, tokenizer.encode("In the").tolist(), 40)
    want = "".join(generate(tmp_path / "run", prompt="In the", strategy="greedy", max_new_tokens=40))
    assert tokenizer.decode(ids) == want and len(want) == 40


def test_a_file_that_fails_its_check_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "TOLERANCE", -1.0)  # nothing can pass
    model = LanguageModel(LMConfig(vocab_size=9, embed_size=4, hidden_size=4, num_layers=1, cell="gru"))
    with pytest.raises(ValueError, match=r"differs from the model by .* at batch 1, length 1; nothing was"):
        export_onnx(model, tmp_path / "lm.onnx")
    assert list(tmp_path.iterdir()) == []


def test_other_models_and_a_missing_extra_are_refused(tmp_path, monkeypatch):
    mingru = LanguageModel(LMConfig(vocab_size=9, embed_size=4, hidden_size=4, num_layers=1, cell="mingru"))
    with pytest.raises(TypeError, match="a mingru language model cannot be exported"):
        export_onnx(mingru, tmp_path / "a.onnx")
    with pytest.raises(TypeError, match="model must be a LanguageModel or SequenceClassifier .* got Linear"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "a.onnx")
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",  # as if onnxruntime were not installed
                        lambda name, *a: None if name == "onnxruntime" else found(name, *a))
    lm = LanguageModel(LMConfig(vocab_size=9, embed_size=4, hidden_size=4, num_layers=1, cell="rnn"))
    with pytest.raises(ImportError, match=r"needs onnxruntime: pip install 'rnnkit\[onnx\]'"):
        export_onnx(lm, tmp_path / "a.onnx")
    assert export_onnx(lm, tmp_path / "a.onnx", check=False)["checked"] is None
    assert (tmp_path / "a.onnx").is_file()


def test_an_lstm_fcn_classifier_exports_and_modes_come_back(tmp_path):
    """The conv branch normalised only the real steps through a boolean index, whose shape
    depends on the data, which torch.export refuses; in eval mode the running statistics
    act step by step, so every step goes through and padding is zeroed after."""
    from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier

    torch.manual_seed(0)
    model = SequenceClassifier(ClassifierConfig(num_classes=3, input_size=2, hidden_size=5,
                                                conv_channels=(4, 6), conv_kernels=(3, 2))).float()
    model.conv.blocks[0].norm.eval()  # one module in another mode than the model
    result = export_onnx(model, tmp_path / "fcn.onnx")
    assert all(c["max_abs_diff"] <= 1e-5 for c in result["checked"])
    assert model.training and not model.conv.blocks[0].norm.training and model.conv.blocks[1].norm.training
    with pytest.raises(ValueError, match="model must be float32 or float64 to export .* got torch.bfloat16"):
        export_onnx(model.bfloat16(), tmp_path / "bf16.onnx")


def test_cli_exports_a_trained_classifier(tmp_path):
    from rnnkit.tasks.classify import train_classifier

    train = write_trend_ts(tmp_path / "Trend_TRAIN.ts", 24, seed=1)
    write_trend_ts(tmp_path / "Trend_TEST.ts", 8, seed=2)
    train_classifier(cfg_for(train, "train.epochs=1", "model.bidirectional=true"), tmp_path / "run")
    out = tmp_path / "classifier.onnx"
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "run"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["inputs"] == {"x": ["B", "T", 1], "lengths": ["B"]} and shown["outputs"] == ["logits"]
    assert all(c["max_abs_diff"] <= 1e-4 for c in shown["checked"]) and out.is_file()


def test_cli_refuses_other_runs_and_ensembles(tmp_path):
    forecast = CliRunner().invoke(cli, ["train", "forecast", "--out", str(tmp_path / "f"), *FORECAST_FAST])
    assert forecast.exit_code == 0, forecast.output
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "f"), "--out", str(tmp_path / "f.onnx")])
    assert result.exit_code == 1 and "got Forecaster" in result.output
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "ensemble.json").write_text('{"members": ["member0"], "size": 1}')
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "e"), "--out", str(tmp_path / "e.onnx")])
    assert result.exit_code == 1 and "holds an ensemble of classifiers" in result.output
    missing_dir = tmp_path / "no" / "f.onnx"
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "f"), "--out", str(missing_dir)])
    assert result.exit_code == 2 and "its directory must exist" in result.output
    assert not list(tmp_path.glob("*.onnx"))
