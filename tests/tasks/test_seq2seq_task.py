"""The translation task: config round trip and checks, a tiny end-to-end run (files, scores,
translate), held-out splits, scheduled sampling through fit, and errors raised before
anything is written."""

import dataclasses
import json
import sys

import pytest

from rnnkit import config
from rnnkit.data.series import DataError
from rnnkit.tasks.seq2seq import Seq2SeqTaskConfig, format_results, train_seq2seq, translate
from rnnkit.train import TrainConfig

WORDS = ["sol", "luna", "mar", "rio", "casa", "perro", "gato", "pan", "agua", "fuego"]
FAST = ["model.embed_size=8", "model.hidden_size=8", "model.attention_size=4", "data.batch_size=4",
        "train.max_steps=3", "train.progress=false", "decode.beam_width=2", "decode.max_len=6"]


def pairs_file(tmp_path, groups=True, n=24):
    """Reversed word pairs 'a b' -> 'b a', in groups A, B, C (every third line)."""
    lines = []
    for i in range(n):
        a, b = WORDS[i % 10], WORDS[(3 * i + 1) % 10]
        lines.append(f"{a} {b}\t{b} {a}" + (f"\t{'ABC'[i % 3]}" if groups else ""))
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load(path, *sets):
    return config.load(Seq2SeqTaskConfig, None, [f"data.path={path}", "data.tokenizer=char", *FAST, *sets])


def test_config_round_trips_through_toml_and_json(tmp_path):
    cfg = load("p.tsv", "data.val_groups=Ruth,Jonah", "data.test_groups=Acts", "model.attention=additive",
               "train.teacher_forcing=linear", "train.teacher_forcing_end=0.5")
    assert cfg.data.val_groups == ("Ruth", "Jonah")
    (tmp_path / "run.toml").write_text(config.to_toml(cfg))
    assert config.load(Seq2SeqTaskConfig, tmp_path / "run.toml") == cfg
    assert config.from_dict(Seq2SeqTaskConfig, json.loads(json.dumps(config.to_dict(cfg)))) == cfg


@pytest.mark.parametrize("sets, message", [
    (["train.bptt=8"], "train.bptt must be None for seq2seq"),
    (["data.test_path=t.tsv", "data.test_groups=A"], "data.test_path and data.test_groups are two ways"),
    (["data.val_fraction=1.0"], r"data.val_fraction must be in \[0, 1\), got 1.0"),
    (["data.target_vocab_size=100"], "data.target_vocab_size must be an int >= 256, got 100"),
    (["model.attention=concat"], "attention must be one of"),
    (["model.hidden_size=9"], "hidden_size must be even"),
    (["decode.alpha=inf"], r"decode.alpha \(the length penalty exponent\) must be a finite number >= 0"),
    (["decode.length_ratio=-1"], r"decode.length_ratio \(target tokens per source token\) must be a finite"),
])
def test_config_checks(sets, message):
    with pytest.raises(ValueError, match=message):
        load("p.tsv", *sets)


def test_trains_scores_and_translates(tmp_path):
    cfg = load(pairs_file(tmp_path), "data.val_groups=B", "data.test_groups=C")
    out = tmp_path / "run"
    results = train_seq2seq(cfg, out)
    assert json.loads((out / "results.json").read_text()) == results
    assert (results["data"]["n_train"], results["val"]["n"], results["test"]["n"]) == (8, 8, 8)
    assert results["train"]["steps"] == 3 and 0 <= results["test"]["chrf"] <= 100
    assert results["test"]["copy_chrf"] > 0 and "copy the source" in format_results(results)
    for name in ("source_tokenizer.json", "target_tokenizer.json", "config.json", "model.safetensors"):
        assert (out / name).is_file()
    assert len((out / "test_translations.txt").read_text().splitlines()) == 8
    assert json.loads((out / "config.json").read_text())["task"] == "seq2seq"
    texts = ["sol luna", "unseen ÿ chars", "ÿ"]
    translations = translate(out, texts, beam_width=1)
    assert len(translations) == 3 and translations[2] == ""  # nothing the source tokenizer knows
    assert translations == translate(out, texts, beam_width=1)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_seq2seq(cfg, out)
    again = train_seq2seq(cfg, out, overwrite=True)
    assert (again["val"], again["test"]) == (results["val"], results["test"])  # fixed steps and seed


def test_bpe_tail_split_and_a_test_file(tmp_path):
    path = pairs_file(tmp_path, groups=False)
    test = tmp_path / "test.tsv"
    test.write_text("sol mar\tmar sol\n", encoding="utf-8")
    cfg = load(path, "data.tokenizer=bpe", "data.val_fraction=0.25", f"data.test_path={test}")
    results = train_seq2seq(cfg, tmp_path / "run")
    assert (results["data"]["n_train"], results["val"]["n"], results["test"]["n"]) == (18, 6, 1)
    assert results["data"]["target_vocab_size"] > 256


def test_scheduled_sampling_reaches_the_model(tmp_path):
    cfg = load(pairs_file(tmp_path), "train.teacher_forcing=linear", "train.teacher_forcing_end=0.0",
               "train.teacher_forcing_steps=2", "train.log_every=1", "data.val_fraction=0")
    results = train_seq2seq(cfg, tmp_path / "run")
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[-1] for r in rows if ",teacher_forcing," in r] == ["1.0", "0.5", "0.0"]
    assert results["val"] is None and results["test"] is None


def test_a_small_file_still_gets_a_validation_pair(tmp_path):
    # 9 pairs at the default 0.05: round(0.45) held out none and training ran unvalidated
    cfg = load(pairs_file(tmp_path, groups=False, n=9))  # 2 steps an epoch: validated at step 2
    assert cfg.data.val_fraction == 0.05
    results = train_seq2seq(cfg, tmp_path / "run")
    assert (results["data"]["n_train"], results["data"]["n_val"], results["val"]["n"]) == (8, 1, 1)
    assert results["train"]["last_val_loss"] > 0
    assert (tmp_path / "run" / "val_translations.txt").read_text().count("\n") == 1


def test_errors_come_before_anything_is_written(tmp_path, monkeypatch):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nonly one column\n")
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"bad.tsv:2: expected 2 or 3 tab-separated columns"):
        train_seq2seq(load(bad), out)
    with pytest.raises(ValueError,
                       match=r"val_groups \(--set data.val_groups=...\) must be groups of .*, got \['Z'\]"):
        train_seq2seq(load(pairs_file(tmp_path), "data.val_groups=Z"), out)
    with pytest.raises(ValueError, match=r"val_fraction=0.05 of 1 pairs holds out ceil\(1 \* 0.05\) = 1 and "
                                         r"leaves 0 to train on"):
        train_seq2seq(load(pairs_file(tmp_path, n=1)), out)
    with pytest.raises(ValueError, match="data.path must name a TSV"):
        train_seq2seq(dataclasses.replace(load("x"), data=dataclasses.replace(load("x").data, path="")), out)
    monkeypatch.setitem(sys.modules, "sacrebleu", None)
    with pytest.raises(ModuleNotFoundError, match="pip install sacrebleu"):
        train_seq2seq(load(pairs_file(tmp_path)), out)
    assert not out.exists()


def test_translate_refuses_other_runs(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"task": "lm", "train": config.to_dict(TrainConfig())}))
    with pytest.raises(ValueError, match="run_dir must hold a seq2seq run"):
        translate(tmp_path, ["x"])


def test_validation_pairs_without_a_known_token_warn(tmp_path):
    """Held-out pairs whose characters training never saw encode to nothing: training then has
    no validation loss, which it says, and the pairs are still translated and scored."""
    path = pairs_file(tmp_path, groups=False)
    lines = [f"{line}\tA" for line in path.read_text(encoding="utf-8").splitlines()]
    unseen = ["vyzk\tkwvy\tB", "hjx\tjxh\tB"]  # letters absent from WORDS, no space
    path.write_text("\n".join(lines + unseen) + "\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="no validation loss"):
        results = train_seq2seq(load(path, "data.val_groups=B"), tmp_path / "run")
    assert results["data"]["n_val"] == 2 and results["data"]["n_val_left_out_of_loss"] == 2
    assert results["train"]["last_val_loss"] is None and results["val"]["n"] == 2


def test_translate_reads_a_text_as_the_training_pairs_were_read(tmp_path):
    """Stripped, as pairs and --data lines are (a line's newline was a token the model never
    saw: three translations of one sentence); a str is refused, not taken as one text per
    character; a length limit measured on the training pairs, saved for translate."""
    out = tmp_path / "run"
    results = train_seq2seq(load(pairs_file(tmp_path), "data.val_groups=B", "data.test_groups=C"), out)
    ratio = json.loads((out / "config.json").read_text())["decode"]["length_ratio"]
    assert ratio == results["decode"]["length_ratio"] == 2.0  # reversed words: as many characters
    texts = ["sol luna", "sol luna\n", "  sol luna ", "   ", "\n"]
    got = translate(out, texts, beam_width=1)
    assert got[0] == got[1] == got[2] and got[3] == got[4] == ""
    with pytest.raises(TypeError, match="texts must be a sequence of strings, got the string 'sol luna'"):
        translate(out, "sol luna")


def test_the_length_limit_follows_the_two_tokenizers():
    """A char target against a BPE source needs several target tokens per source token: the
    limit 2 x source + 10 cut nearly every translation of such a run (1685 of 1689)."""
    import torch

    from rnnkit.decode.seq2seq import max_new_tokens_for
    from rnnkit.tasks._translation import DecodeConfig, length_ratio

    sources = [torch.zeros(n, dtype=torch.long) for n in range(1, 101)]
    targets = [torch.zeros(3 * n + 1, dtype=torch.long) for n in range(1, 101)]
    ratio = length_ratio(sources, targets)
    # (3n + 1) / n sorted: ..., 3.5 (n = 2), 4.0 (n = 1); the 99th percentile sits 0.01 of the
    # way from the 99th to the 100th of them (position 0.99 * 99 = 98.01): 3.505, twice: 7.01
    assert ratio == 7.01
    assert DecodeConfig(max_len=400, length_ratio=ratio).max_new_tokens(40) == 281 + 10  # ceil(280.4)
    assert DecodeConfig().max_new_tokens(40) == max_new_tokens_for(40, 200) == 90  # runs from before
    assert DecodeConfig(max_len=50, length_ratio=ratio).max_new_tokens(40) == 50
