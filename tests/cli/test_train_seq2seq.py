"""``rnnkit train seq2seq`` and ``rnnkit translate`` through CliRunner, in isolated directories."""

import json
import os
import random
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

import rnnkit.tasks.seq2seq as task
from rnnkit.cli import cli
from tests.harness import assert_same_weights, interrupt_after

PAIRS = "".join(f"{a} {b}\t{b} {a}\t{'ABC'[i % 3]}\n" for i, (a, b) in
                enumerate(zip(["sol", "mar", "luna", "pan", "rio", "gato"] * 3, ["agua", "casa", "fuego"] * 6,
                              strict=True)))
FAST = ["--set", "data.tokenizer=char", "--set", "model.hidden_size=8", "--set", "model.embed_size=8",
        "--set", "data.batch_size=4", "--set", "train.max_steps=2", "--set", "train.progress=false",
        "--set", "decode.beam_width=2", "--set", "decode.max_len=5", "--set", "data.test_groups=C"]


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # an isolated home: nothing read from or cached in ~
    monkeypatch.chdir(tmp_path)
    Path("pairs.tsv").write_text(PAIRS, encoding="utf-8")
    return CliRunner()


def test_train_then_translate(runner):
    result = runner.invoke(cli, ["train", "seq2seq", "--data", "pairs.tsv", "--out", "run", *FAST])
    assert result.exit_code == 0, result.output
    results = json.loads(Path("run/results.json").read_text())
    assert json.loads(result.stdout) == results and results["test"]["n"] == 6  # JSON, as every train prints
    assert results["test"]["copy_chrf"] > 0
    result = runner.invoke(cli, ["translate", "run", "sol agua", "--beam", "1", "--max-len", "4"])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 1
    Path("in.txt").write_text("sol agua\n\nmar casa\tcasa mar\n", encoding="utf-8")
    result = runner.invoke(cli, ["translate", "run", "--data", "in.txt", "--out", "out.txt"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == "wrote 3 translations to out.txt\n"  # status: stderr
    assert len(Path("out.txt").read_text(encoding="utf-8").split("\n")) == 4  # 3 lines, the middle one blank
    result = runner.invoke(cli, ["translate", "run", "--data", "in.txt", "--set", "beam_width=1"])
    assert result.exit_code == 0 and len(result.output.split("\n")) == 4
    again = runner.invoke(cli, ["train", "seq2seq", "--data", "pairs.tsv", "--out", "run", *FAST])
    assert again.exit_code == 1 and "already holds a run" in again.output


def test_beam_width_is_another_name_of_beam(runner):
    """`generate` calls it --beam-width: both names set the one option, as in `generate`; and
    --max-len counts the whole translation (there is no prompt), which the help says."""
    trained = runner.invoke(cli, ["train", "seq2seq", "--data", "pairs.tsv", "--out", "run", *FAST])
    assert trained.exit_code == 0, trained.output
    rng = random.Random(0)
    words = sorted({w for line in PAIRS.splitlines() for w in line.split("\t")[0].split()})
    for _ in range(3):
        source, width = " ".join(rng.sample(words, rng.randint(1, 3))), rng.randint(1, 4)
        args = ["translate", "run", source, "--max-len", str(rng.randint(2, 6))]
        short = runner.invoke(cli, [*args, "--beam", str(width)])
        assert short.exit_code == 0, short.output
        assert runner.invoke(cli, [*args, "--beam-width", str(width)]).output == short.output == \
            runner.invoke(cli, [*args, "--set", f"beam_width={width}"]).output
    help_text = runner.invoke(cli, ["translate", "--help"]).output
    assert "--beam-width, --beam INTEGER" in help_text
    assert "Longest translation, in target tokens (the whole translation)" in " ".join(help_text.split())


@pytest.mark.parametrize("content, message", [
    ("a\tb\nno tab\n", "pairs.tsv:2: expected 2 or 3 tab-separated columns"),
    ("", "pairs.tsv: expected at least one non-blank line, got an empty file"),
    (b"a\tb\n\xc3\x28\tc\n", "pairs.tsv:2: expected UTF-8 text, got undecodable byte(s) b'\\xc3'"),
    ("a\tb\tA\nc\td\n", "pairs.tsv:2: expected 3 columns like line 1, got 2"),
])
def test_malformed_data_is_a_clear_error_and_writes_nothing(runner, content, message):
    Path("pairs.tsv").write_bytes(content if isinstance(content, bytes) else content.encode())
    result = runner.invoke(cli, ["train", "seq2seq", "--data", "pairs.tsv", "--out", "run", *FAST[:-2]])
    assert result.exit_code == 1 and f"Error: {message}" in result.output, result.output
    assert not Path("run").exists()


def test_usage_errors(runner):
    result = runner.invoke(cli, ["train", "seq2seq", "--out", "run"])
    assert result.exit_code == 1 and "--out and --data (or data.path) are required" in result.output
    result = runner.invoke(cli, ["train", "seq2seq", "--data", "none.tsv", "--out", "run"])
    assert result.exit_code == 1 and "none.tsv: file not found" in result.output
    result = runner.invoke(cli, ["train", "seq2seq", "--data", "pairs.tsv", "--out", "run",
                                 "--set", "data.test_groups=Q"])
    assert result.exit_code == 1
    assert "test_groups (--set data.test_groups=...) must be groups of pairs.tsv, got ['Q']" in result.output
    Path("run").mkdir()
    result = runner.invoke(cli, ["translate", "run", "text"])
    assert result.exit_code == 1 and "has no config.json" in result.output
    result = runner.invoke(cli, ["translate", "run"])
    assert result.exit_code == 1 and "give TEXT or --data FILE" in result.output


def test_print_config_merges_toml_and_set(runner):
    Path("run.toml").write_text('[model]\nattention = "additive"\n[data]\nval_groups = ["A"]\n')
    result = runner.invoke(cli, ["train", "seq2seq", "--data", "pairs.tsv", "--config", "run.toml",
                                 "--set", "decode.alpha=0", "--print-config"])
    assert result.exit_code == 0, result.output
    for line in ('path = "pairs.tsv"', 'attention = "additive"', 'val_groups = ["A"]', "alpha = 0.0"):
        assert line in result.output


def test_interrupted_training_exits_130_and_resumes_to_the_straight_run(runner, monkeypatch):
    train = ["train", "seq2seq", "--data", "pairs.tsv", *FAST, "--set", "train.max_steps=3"]
    assert runner.invoke(cli, [*train, "--out", "straight"]).exit_code == 0
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        result = runner.invoke(cli, [*train, "--out", "run"])
    assert result.exit_code == 130 and json.loads(result.stdout)["train"]["stopped"] == "SIGINT"
    assert "interrupted (SIGINT) after 1 step; the run in run is saved" in result.stderr
    resumed = runner.invoke(cli, [*train, "--out", "run", "--resume"])
    assert resumed.exit_code == 0 and json.loads(resumed.stdout)["train"]["steps"] == 3, resumed.output
    assert_same_weights("straight", "run")
    assert Path("run/test_translations.txt").read_text() == Path("straight/test_translations.txt").read_text()


@pytest.mark.parametrize("name, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_after_training_exits_as_one_during_it(runner, monkeypatch, name, status):
    """Decoding the held-out pairs runs after fit, outside its signal handling: Ctrl-C there
    printed Click's "Aborted!" (status 1) and SIGTERM killed the process silently."""
    def interrupted(*args, **kwargs):
        if name == "SIGINT":
            raise KeyboardInterrupt  # what Python's own SIGINT handler raises
        os.kill(os.getpid(), signal.SIGTERM)

    train = ["train", "seq2seq", "--data", "pairs.tsv", *FAST]
    with monkeypatch.context() as patch:
        patch.setattr(task, "_held_out", interrupted)
        result = runner.invoke(cli, [*train, "--out", "run"])
    assert result.exit_code == status, result.output
    assert result.stderr.strip() == (f"rnnkit: interrupted ({name}) before the results were written; "
                                     f"the run in run is saved: add --resume to finish it")
    assert not Path("run/results.json").exists()
    resumed = runner.invoke(cli, [*train, "--out", "run", "--resume"])
    assert resumed.exit_code == 0 and json.loads(resumed.stdout)["test"]["n"] > 0, resumed.output


def test_a_signal_before_training_does_not_offer_an_old_run(runner, monkeypatch):
    """Interrupted while reading the data with --overwrite: the checkpoint in --out is the old
    run's, which --resume would not finish."""
    train = ["train", "seq2seq", "--data", "pairs.tsv", *FAST]
    assert runner.invoke(cli, [*train, "--out", "run"]).exit_code == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(task, "_splits", interrupted)
        result = runner.invoke(cli, [*train, "--out", "run", "--overwrite"])
    assert result.exit_code == 130 and result.stderr.strip().endswith("nothing was saved"), result.output


def test_a_signal_while_resuming_offers_the_run(runner, monkeypatch):
    """With --resume, the checkpoint in --out is the run being continued, however old."""
    train = ["train", "seq2seq", "--data", "pairs.tsv", *FAST]
    assert runner.invoke(cli, [*train, "--out", "run"]).exit_code == 0
    Path("run/results.json").unlink()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(task, "_splits", interrupted)
        result = runner.invoke(cli, [*train, "--out", "run", "--resume"])
    assert result.exit_code == 130 and "the run in run is saved: add --resume" in result.stderr, result.output
