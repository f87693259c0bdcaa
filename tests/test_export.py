"""``rnnkit.export.export_onnx`` and ``rnnkit export``: the files onnxruntime runs, streaming
with explicit state, and the refusals (other models, a failed check, a missing extra)."""

import importlib.util
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import rnnkit
from rnnkit import export as export_module
from rnnkit.cli import cli
from rnnkit.export import export_onnx
from rnnkit.models import LanguageModel, LMConfig, load_model
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
    monkeypatch.setattr(export_module, "TOLERANCE", 1e-4)

    def failing(*args, **kwargs):  # as onnxruntime fails on an op it has no kernel for
        raise RuntimeError("[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Softplus(1)")

    monkeypatch.setattr(ort, "InferenceSession", failing)
    with pytest.raises(ValueError, match=r"onnxruntime could not run the exported file \(torch.float64 "
                                         r"model\): \[ONNXRuntimeError\].*; nothing was written"):
        export_onnx(model, tmp_path / "lm.onnx")
    assert list(tmp_path.iterdir()) == []


def test_other_models_and_a_missing_extra_are_refused(tmp_path, monkeypatch):
    mingru = LanguageModel(LMConfig(vocab_size=9, embed_size=4, hidden_size=4, num_layers=1, cell="mingru"))
    with pytest.raises(TypeError, match="a mingru language model cannot be exported"):
        export_onnx(mingru, tmp_path / "a.onnx")
    with pytest.raises(TypeError, match="SequenceClassifier, Forecaster, Tagger or Seq2Seq .* got Linear"):
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


def test_cli_exports_a_forecaster_whose_file_gives_the_runs_forecast(tmp_path):
    """The file, fed the series' last rows (or the whole series: it reads the last window),
    gives what rnnkit forecast prints for the run, intervals calibrated and log undone."""
    from rnnkit.tasks.forecast import forecast

    torch.set_default_dtype(torch.float32)  # as a run trains outside the tests (ORT's Softplus: float32)
    run = tmp_path / "run"
    trained = CliRunner().invoke(cli, ["train", "forecast", "--out", str(run), "--horizon", "6",
                                       "--set", "model.log_transform=true", *FORECAST_FAST])
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "forecaster.onnx"
    result = CliRunner().invoke(cli, ["export", str(run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["inputs"] == {"x": ["B", "T", 1]} and shown["outputs"] == ["quantiles"]
    assert shown["quantiles"] == [0.1, 0.5, 0.9]
    want = forecast(run)
    series = want["history"].values_NF.astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for x in (series[-shown["min_time"]:], series):
        (got,) = session.run(None, {"x": x[None]})
        assert got.shape == (1, 6, 3)
        np.testing.assert_allclose(got[0], want["forecast_HQ"], rtol=1e-5)


@pytest.mark.parametrize("config", [
    dict(decoder="autoregressive", output="point"),
    dict(output="quantile", quantiles=(0.05, 0.5, 0.95), difference=4, input_size=2),
    dict(window_norm="last", num_layers=2, cell="gru"),
], ids=["autoregressive-point", "quantile-differenced-covariates", "gru-2-layers"])
def test_forecasters_export_at_their_levels(config, tmp_path):
    from rnnkit.models.forecaster import Forecaster, ForecasterConfig

    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig(horizon=4, context=10, hidden_size=6, **config)).float()
    model.fit_scaling(torch.rand(40, model.config.input_size) * 50 + 1)  # another scale than z
    model.interval_scale_H.copy_(torch.tensor([0.8, 1.0, 1.3, 1.7]))
    result = export_onnx(model, tmp_path / "f.onnx")
    levels = {"point": [0.5], "quantile": [0.05, 0.5, 0.95]}.get(model.config.output, [0.1, 0.5, 0.9])
    assert result["quantiles"] == levels and result["min_time"] == model.config.window
    assert [c["time"] for c in result["checked"]] == [model.config.window, model.config.window + 8]


def test_an_autoregressive_gaussian_forecaster_is_refused(tmp_path):
    from rnnkit.models.forecaster import Forecaster, ForecasterConfig

    model = Forecaster(ForecasterConfig(horizon=3, context=5, hidden_size=4, decoder="autoregressive"))
    with pytest.raises(TypeError, match="an autoregressive Gaussian forecaster draws random sample paths"):
        export_onnx(model, tmp_path / "f.onnx")
    assert not (tmp_path / "f.onnx").exists()


def test_cli_refuses_ensembles_and_the_wrong_kind_of_out(tmp_path):
    from rnnkit.models import Seq2Seq, Seq2SeqConfig, architecture_config
    from rnnkit.train import checkpoint

    (tmp_path / "f").mkdir()  # a translation run: its --out is a directory
    model = Seq2Seq(Seq2SeqConfig(source_vocab_size=9, target_vocab_size=9, embed_size=4, hidden_size=4))
    checkpoint.save_config(tmp_path / "f", architecture_config(model))
    checkpoint.save_weights(tmp_path / "f" / checkpoint.WEIGHTS, model)
    (tmp_path / "f.onnx").write_text("old")
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "f"), "--out", str(tmp_path / "f.onnx")])
    assert result.exit_code == 2
    assert "'--out': must be a directory for a translator's encoder.onnx and decoder.onnx, got the file" \
        in result.output
    assert (tmp_path / "f.onnx").read_text() == "old"
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "f"), "--out", str(tmp_path / "new.onnx")])
    assert result.exit_code == 2 and "got a file name" in result.output
    assert not (tmp_path / "new.onnx").exists()
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "ensemble.json").write_text('{"members": ["member0"], "size": 1}')
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "e"), "--out", str(tmp_path / "e.onnx")])
    assert result.exit_code == 1 and "holds an ensemble of classifiers" in result.output
    missing_dir = tmp_path / "no" / "f.onnx"
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "f"), "--out", str(missing_dir)])
    assert result.exit_code == 2 and "its directory must exist" in result.output
    lm = LanguageModel(LMConfig(vocab_size=5, embed_size=2, hidden_size=2))
    with pytest.raises(ValueError, match="path must be a file, got the directory"):
        export_onnx(lm, tmp_path / "e")
    # pathlib reads "lm/" as "lm": a language model's file would have been named lm
    with pytest.raises(ValueError, match="path must be a file, got a directory name '.*lm/'"):
        export_onnx(lm, f"{tmp_path}/lm/")
    assert not (tmp_path / "lm").exists()
    checkpoint.save_config(tmp_path / "lmrun", architecture_config(lm))
    checkpoint.save_weights(tmp_path / "lmrun" / checkpoint.WEIGHTS, lm)
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "lmrun"), "--out", f"{tmp_path}/lm/"])
    assert result.exit_code == 2 and "must be a file, got a directory name" in result.output
    assert not (tmp_path / "lm").exists()
    assert not list(tmp_path.glob("*.onnx")) or [p.name for p in tmp_path.glob("*.onnx")] == ["f.onnx"]


def test_a_translator_s_files_replace_old_ones_together_or_not_at_all(tmp_path, monkeypatch):
    """A failure writing the decoder leaves the old encoder too: never a new encoder beside an
    old decoder, and no staged file left behind."""
    from rnnkit.models import Seq2Seq, Seq2SeqConfig

    config = Seq2SeqConfig(source_vocab_size=7, target_vocab_size=9, embed_size=4, hidden_size=4)
    model = Seq2Seq(config).float()
    out = tmp_path / "translator"
    out.mkdir()
    for name in ("encoder.onnx", "decoder.onnx", "notes.txt"):
        (out / name).write_text("old")
    real = export_module.write_atomic

    def failing(path, data):
        if "decoder" in path.name:
            raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(export_module, "write_atomic", failing)
    with pytest.raises(OSError, match="No space left"):
        export_onnx(model, out, check=False)
    assert {p.name: p.read_text() for p in out.iterdir()} == dict.fromkeys(
        ["encoder.onnx", "decoder.onnx", "notes.txt"], "old")
    monkeypatch.setattr(export_module, "write_atomic", real)
    export_onnx(model, out, check=False)
    assert (out / "notes.txt").read_text() == "old" and (out / "encoder.onnx").stat().st_size > 1000
    assert sorted(p.name for p in out.iterdir()) == ["decoder.onnx", "encoder.onnx", "notes.txt"]


@pytest.mark.parametrize("cell, attention, input_feeding",
                         [("lstm", "general", True), ("gru", "additive", False), ("gru", "none", True)])
def test_a_translator_is_an_encoder_and_a_decoder_that_steps(cell, attention, input_feeding, tmp_path):
    """encoder.onnx then decoder.onnx over the target ids give the model's logits; so does
    the decoder fed one token at a time with the state it returned, as a search runs it."""
    from rnnkit.models import Seq2Seq, Seq2SeqConfig
    from rnnkit.models.seq2seq import Seq2SeqInputs

    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(source_vocab_size=11, target_vocab_size=13, embed_size=6, hidden_size=8,
                                  num_layers=2, cell=cell, attention=attention, attention_size=5,
                                  input_feeding=input_feeding)).float()
    result = export_onnx(model, tmp_path / "translator")
    fields = ["h", "c"] if cell == "lstm" else ["h"]
    keys = ["keys"] if attention in ("general", "additive") else []
    assert result["encoder"]["outputs"] == [*fields, "h_tilde", "memory", *keys]
    assert list(result["decoder"]["inputs"]) == ["y", *fields, "h_tilde", "memory", *keys, "source_lengths"]
    assert result["decoder"]["outputs"] == ["logits", *(f"{n}_out" for n in fields), "h_tilde_out"]
    assert (result["bos_id"], result["eos_id"]) == (11, 12)
    assert sorted(p.name for p in (tmp_path / "translator").iterdir()) == ["decoder.onnx", "encoder.onnx"]
    encoder, decoder = (ort.InferenceSession(result[n]["path"], providers=["CPUExecutionProvider"])
                        for n in ("encoder", "decoder"))
    source, lengths = torch.randint(0, 11, (3, 7)), torch.tensor([7, 2, 5])
    target = torch.cat([torch.full((3, 1), 11), torch.randint(0, 11, (3, 5))], dim=1)
    outputs = encoder.run(None, {"source": source.numpy(), "source_lengths": lengths.numpy()})
    start = dict(zip(result["encoder"]["outputs"], outputs, strict=True))
    fixed = {n: start[n] for n in ("memory", *keys)} | {"source_lengths": lengths.numpy()}
    logits, *_ = decoder.run(None, {"y": target.numpy(), **start, **fixed})
    with torch.no_grad():
        want = model(Seq2SeqInputs(source, lengths, target)).numpy()
    np.testing.assert_allclose(logits, want, atol=1e-5, rtol=1e-5)
    state = {n: start[n] for n in (*fields, "h_tilde")}
    steps = []
    for t in range(target.shape[1]):
        one, *new = decoder.run(None, {"y": target[:, t:t + 1].numpy(), **state, **fixed})
        state = dict(zip(state, new, strict=True))
        steps.append(one)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), want, atol=1e-5, rtol=1e-5)
    assert model.training


def test_the_onnx_translate_example_translates_as_rnnkit_translate(tmp_path):
    """examples/onnx_translate.py runs rnnkit's beam search over the two files of
    ``rnnkit export``: the translations of rnnkit translate, beams and length penalty included."""
    import runpy

    from rnnkit.tasks.seq2seq import train_seq2seq, translate
    from tests.tasks.test_seq2seq_task import load, pairs_file

    torch.set_default_dtype(torch.float32)
    train_seq2seq(load(pairs_file(tmp_path), "train.max_steps=40", "decode.max_len=200"), tmp_path / "run")
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "onnx")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["decoder"]["outputs"] == ["logits", "h_out", "c_out", "h_tilde_out"]
    example = runpy.run_path("examples/onnx_translate.py")
    texts = ["sol luna", "gato perro agua", "ÿ", "mar casa rio pan", "  rio sol \n", "   "]
    want = translate(tmp_path / "run", texts)  # the run's settings, as the example reads them
    got = [example["translate"](tmp_path / "run", tmp_path / "onnx", t) for t in texts]
    assert got == want and want[2] == want[5] == "" and any(want)
    # where translations run to the length limit (a model that never ends them): the run's
    # length_ratio, not twice the source, decides where both stop
    short = {"length_ratio": 0.1, "beam_width": 2}  # 16 characters: at most 12 tokens
    want = translate(tmp_path / "run", texts, **short)
    assert len(want[3]) < len(translate(tmp_path / "run", texts[3:4], beam_width=2)[0])  # cut short
    assert [example["translate"](tmp_path / "run", tmp_path / "onnx", t, **short) for t in texts] == want


def test_a_tagger_file_tags_as_rnnkit_tag_does(tmp_path):
    """A trained tagger's file, fed TagVocab.features padded into one batch (rows and
    characters), gives rnnkit tag's tags: the CRF's Viterbi path, as two scans over the length."""
    from rnnkit.data.tag_features import TagVocab
    from rnnkit.tasks.tag import VOCAB, predict_tags, train_tagger
    from tests.tasks.test_tag_task import make_cfg, toy

    torch.set_default_dtype(torch.float32)
    (tmp_path / "train.conll").write_text(toy(60, 0))
    (tmp_path / "test.conll").write_text(toy(10, 1))
    train_tagger(make_cfg(tmp_path, "model.crf=true", "model.char_encoder=lstm"), tmp_path / "run")
    result = export_onnx(load_model(tmp_path / "run"), tmp_path / "tagger.onnx")
    assert result["inputs"] == {"x": ["B", "T", "F"], "lengths": ["B"]}
    assert result["outputs"] == ["tags", "emissions"]
    (tmp_path / "new.txt").write_text("the cat run\nA dog saw the zebra\nparks\n")
    want = predict_tags(tmp_path / "run", tmp_path / "new.txt", format="text")
    vocab = TagVocab.from_json((tmp_path / "run" / VOCAB).read_text())
    rows = [vocab.features(words) for words in want.words]
    x = torch.zeros(len(rows), max(r.shape[0] for r in rows), max(r.shape[1] for r in rows), dtype=torch.long)
    for b, r in enumerate(rows):
        x[b, : r.shape[0], : r.shape[1]] = r
    lengths = np.array([r.shape[0] for r in rows])
    session = ort.InferenceSession(str(tmp_path / "tagger.onnx"), providers=["CPUExecutionProvider"])
    tags, _ = session.run(None, {"x": x.numpy(), "lengths": lengths})
    got = tuple(tuple(vocab.tags[i] for i in row[:n]) for row, n in zip(tags, lengths, strict=True))
    assert got == want.tags
    assert (tags[0, 3:] == 0).all()  # padding positions hold 0, as Tagger.decode gives


@pytest.mark.parametrize("char_encoder, crf", [("cnn", True), ("none", False)])
def test_taggers_export_with_any_word_width(char_encoder, crf, tmp_path):
    """Traced with 5 characters a word and checked with 3 and 6 (and one step at batch 1);
    the tag count equals the traced length, which duck shaping would have tied together.
    Without a CRF the file's tags are the argmax."""
    from rnnkit.models.tagger import Tagger, TaggerConfig

    torch.manual_seed(0)
    model = Tagger(TaggerConfig(vocab_size=30, num_tags=5, num_chars=12, embed_size=6, hidden_size=5,
                                char_features=4, char_encoder=char_encoder, crf=crf)).float()
    result = export_onnx(model, tmp_path / "t.onnx")
    assert [(c["batch"], c["time"]) for c in result["checked"]] == [(1, 1), (4, 9)]


def test_an_int8_model_is_refused_and_a_translator_s_directory_is_made_with_its_parents(tmp_path):
    """int8: the exporter failed deep in torch.export, with a coloured banner for a message."""
    from rnnkit.models import Seq2Seq, Seq2SeqConfig

    lm = rnnkit.quantize_dynamic(LanguageModel(LMConfig(vocab_size=5, embed_size=4, hidden_size=4)).float())
    with pytest.raises(ValueError, match=r"model must not be int8 \(rnnkit.quantize_dynamic\) to export"):
        export_onnx(lm, tmp_path / "lm.onnx")
    assert not (tmp_path / "lm.onnx").exists()
    config = Seq2SeqConfig(source_vocab_size=7, target_vocab_size=9, embed_size=4, hidden_size=4)
    out = tmp_path / "new" / "translator"
    result = export_onnx(Seq2Seq(config).float(), out, check=False)  # it failed after exporting
    assert sorted(p.name for p in out.iterdir()) == ["decoder.onnx", "encoder.onnx"]
    assert result["decoder"]["checked"] is None


def test_an_exporter_error_is_told_by_its_cause_not_torch_s_banner():
    err = RuntimeError("\x1b[96mThis is step 1/3\x1b[0m of exporting the model to ONNX. Next steps:\n"
                       "- Modify the model code\n\n## Exception summary\n\n"
                       "RuntimeError: data is not allocated\n\n(Refer to the full stack trace above)")
    assert export_module._cause(err) == "RuntimeError: data is not allocated"
    assert export_module._cause(ValueError("plain")) == "plain"
