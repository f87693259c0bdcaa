"""The language-modelling task: its config, exact held-out bits per character, a tiny end-to-end
run for each tokenizer, and generation from the saved run."""

import dataclasses
import json
import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from rnnkit import config
from rnnkit.data.tokenizers import load_tokenizer
from rnnkit.demo.corpus import load_text
from rnnkit.models import LanguageModel, LMConfig, load_model
from rnnkit.tasks.lm import (
    GenerateConfig,
    LMDataConfig,
    LMModelConfig,
    LMTaskConfig,
    generate,
    heldout_nats,
    train_lm,
)
from rnnkit.train import TrainConfig

TEXT = "".join(load_text().splitlines(keepends=True)[:40])  # 40 verses of Genesis, 5,600 chars


def tiny(tokenizer="char", ngram=0, **train):
    return LMTaskConfig(
        data=LMDataConfig(tokenizer=tokenizer, bpe_vocab_size=300, val_fraction=0.1, batch_size=4,
                          eval_streams=3),
        model=LMModelConfig(embed_size=8, hidden_size=16),
        train=TrainConfig(bptt=16, max_steps=8, lr=1e-2, eval_every=4, **train),
        ngram_max_order=ngram)


def test_model_section_is_lmconfig_without_vocab_size():
    ours = {f.name: f.default for f in dataclasses.fields(LMModelConfig)}
    theirs = {f.name: f.default for f in dataclasses.fields(LMConfig) if f.name != "vocab_size"}
    assert ours == theirs
    assert LMModelConfig(hidden_size=8, embed_size=8, tie_weights=True).with_vocab(5) == \
        LMConfig(vocab_size=5, hidden_size=8, embed_size=8, tie_weights=True)


def test_config_round_trips_through_toml_and_json(tmp_path):
    cfg = config.load(LMTaskConfig, None, ["data.tokenizer=bpe", "model.cell=gru", "train.lr=0.01",
                                           "ngram_max_order=6"])
    assert cfg.train.bptt == 64 and cfg.train.schedule == "cosine"  # the task's own defaults
    path = tmp_path / "run.toml"
    path.write_text(config.to_toml(cfg))
    assert config.load(LMTaskConfig, path) == cfg
    assert config.from_dict(LMTaskConfig, json.loads(json.dumps(config.to_dict(cfg)))) == cfg


@pytest.mark.parametrize(("override", "message"), [
    ("train.bptt=none", "train.bptt must be an int >= 1 (the TBPTT chunk of the streams), got None"),
    ("data.bpe_vocab_size=100", "data: bpe_vocab_size must be an int >= 256, got 100"),
    ("model.hidden_size=0", "model: hidden_size must be an int >= 1, got 0"),
    ("data.val_fraction=1.5", "data: val_fraction must be in (0, 1), got 1.5"),
    ("ngram_max_order=-1", "ngram_max_order must be an int >= 0, got -1"),
])
def test_bad_configs_name_the_field(override, message):
    with pytest.raises(ValueError) as err:
        config.load(LMTaskConfig, None, [override])
    assert message in str(err.value)


@pytest.mark.parametrize(("N", "streams"), [(23, 1), (23, 3), (24, 3), (5, 8)])
def test_heldout_nats_scores_every_target_once(N, streams):
    torch.manual_seed(1)
    model = LanguageModel(LMConfig(vocab_size=6, embed_size=4, hidden_size=5, num_layers=2))
    ids_N = torch.randint(0, 6, (N,))
    # by hand: rows of L = (N-1)//n targets from a zero state, the leftover continues the last row
    n = min(streams, N - 1)
    L = (N - 1) // n
    expected = 0.0
    for r in range(n):
        last = r == n - 1
        x = ids_N[r * L:(N - 1 if last else (r + 1) * L)]
        y = ids_N[r * L + 1:(N if last else (r + 1) * L + 1)]
        with torch.no_grad():
            logits, _ = model(x.unsqueeze(0), None)
        expected += float(F.cross_entropy(logits[0], y, reduction="sum"))
    assert heldout_nats(model, ids_N, streams=streams, chunk=4) == pytest.approx(expected, rel=1e-12)


def test_train_lm_char_end_to_end(tmp_path):
    out = tmp_path / "run"
    results = train_lm(tiny(ngram=3), out, text=TEXT)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "metrics.csv", "results.json"):
        assert (out / name).is_file()
    assert json.loads((out / "results.json").read_text()) == results
    d, lm = results["data"], results["lm"]
    assert d["val_lines"] == 4 and d["train_chars"] + d["val_chars"] == len(TEXT) == d["chars"]
    assert d["val_tokens"] == d["val_chars"] and lm["steps"] == 8
    # the saved run gives the same figure: bits over the val_chars - 1 predicted characters
    model, tokenizer = load_model(out), load_tokenizer(out)
    val_text = TEXT[d["train_chars"]:]
    nats = heldout_nats(model, tokenizer.encode(val_text), streams=3)
    assert lm["val_bpc"] == pytest.approx(nats / (len(val_text) - 1) / math.log(2), rel=1e-9)
    assert lm["val_bpc"] < math.log2(d["vocab_size"])  # it learned something in 8 steps
    assert set(results["ngram_bpc"]) == {"1", "2", "3"}
    assert results["best_ngram_bpc"] == min(results["ngram_bpc"].values())


def test_train_lm_bpe_reports_bits_per_character_not_per_token(tmp_path):
    results = train_lm(tiny("bpe"), tmp_path / "run", text=TEXT)
    d, lm = results["data"], results["lm"]
    assert 256 < d["vocab_size"] <= 300 and d["val_tokens"] < d["val_chars"] * 0.7
    first = len(load_tokenizer(tmp_path / "run").decode(
        load_tokenizer(tmp_path / "run").encode(TEXT[d["train_chars"]:])[:1]))
    per_char = lm["val_nats_per_token"] * (d["val_tokens"] - 1) / (d["val_chars"] - first) / math.log(2)
    assert lm["val_bpc"] == pytest.approx(per_char)


def test_train_lm_refuses_an_existing_run_and_keeps_its_files(tmp_path):
    out = tmp_path / "run"
    train_lm(tiny(), out, text=TEXT)
    before = (out / "tokenizer.json").read_bytes()
    with pytest.raises(FileExistsError, match="out must be a new run directory, got .*run'"):
        train_lm(tiny("bpe"), out, text=TEXT)
    assert (out / "tokenizer.json").read_bytes() == before


def test_char_tokenizer_rejects_held_out_characters_it_never_saw(tmp_path):
    text = "abc\n" * 30 + "abz\n"  # 31 lines: the last round(3.1) = 3 are held out, "abc\nabc\nabz\n"
    with pytest.raises(ValueError, match=r"the held-out text \(the last 0.1 of the lines\) must use only "
                                         r"the 4 characters of the training text, "
                                         r"got 'z' \(U\+007A\) at position 10"):
        train_lm(tiny(), tmp_path / "run", text=text)


def test_generate_strategies(tmp_path):
    out = tmp_path / "run"
    train_lm(tiny(), out, text=TEXT)
    pieces = generate(out, "And God", max_new_tokens=20, strategy="greedy")
    assert isinstance(pieces, Iterator)
    greedy_text = "".join(pieces)
    assert len(greedy_text) == 20 and greedy_text == "".join(generate(out, "And God", max_new_tokens=20,
                                                                       strategy="greedy"))
    a = "".join(generate(out, "And", max_new_tokens=30, seed=3, top_k=5, temperature=0.9))
    b = "".join(generate(out, "And", max_new_tokens=30, seed=3, top_k=5, temperature=0.9))
    c = "".join(generate(out, "And", max_new_tokens=30, seed=4, top_k=5, temperature=0.9))
    assert a == b != c
    beam = list(generate(out, "And God", max_new_tokens=20, strategy="beam", beam_width=1))
    assert beam == [greedy_text]


def test_generate_checks_the_prompt_before_returning(tmp_path):
    out = tmp_path / "run"
    train_lm(tiny(), out, text=TEXT)
    with pytest.raises(ValueError, match="prompt must use only the .* characters of the training text, "
                                         "got '€' \\(U\\+20AC\\) at position 4"):
        generate(out, "And €5")
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        GenerateConfig(prompt="")
    # sampling settings are checked where they are read: greedy decoding ignores a temperature of 0
    assert GenerateConfig(strategy="greedy", temperature=0.0).strategy == "greedy"
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        GenerateConfig(strategy="sample", temperature=0.0)
