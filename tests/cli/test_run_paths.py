"""Paths a user types to the train commands: the same file by another name on resume, a run
used from another directory, an empty --out, a byte-order mark, a classifier ensemble's
directory given to another task."""

import json
import os

import pytest
from click.testing import CliRunner

from rnnkit.cli import cli
from rnnkit.demo.corpus import load_text
from tests.harness import interrupt_after

LM = ["--set", "train.max_steps=4", "--set", "train.bptt=16", "--set", "data.batch_size=4",
      "--set", "model.hidden_size=8", "--set", "model.embed_size=8", "--set", "data.val_fraction=0.1",
      "--set", "ngram_max_order=1"]
FORECAST = ["--set", "train.epochs=1", "--set", "model.hidden_size=4", "--set", "train.progress=false"]


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "genesis.txt"
    path.write_text("".join(load_text().splitlines(keepends=True)[:40]), encoding="utf-8")
    return path


@pytest.fixture
def in_dir(monkeypatch):
    """Run from ``path``, as a user in a shell there."""
    return lambda path: monkeypatch.chdir(path)


def test_a_run_resumes_with_its_data_named_by_another_path(text, tmp_path, monkeypatch, in_dir):
    """The data's fingerprint says whether it is the same data; the path as typed does not
    (``./genesis.txt``, an absolute path, ``../genesis.txt`` from below were refused)."""
    in_dir(tmp_path)
    interrupt_after(monkeypatch, 2)
    first = CliRunner().invoke(cli, ["train", "lm", "--data", "genesis.txt", "--out", "run", *LM])
    assert first.exit_code == 130, first.output
    monkeypatch.undo()
    (tmp_path / "below").mkdir()
    in_dir(tmp_path / "below")
    resumed = CliRunner().invoke(cli, ["train", "lm", "--data", "../genesis.txt", "--out", "../run",
                                       "--resume", *LM])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((tmp_path / "run" / "results.json").read_text())["lm"]["steps"] == 4
    other = tmp_path / "other.txt"
    other.write_text(text.read_text(encoding="utf-8")[::-1], encoding="utf-8")
    refused = CliRunner().invoke(cli, ["train", "lm", "--data", str(other), "--out", "../run", "--resume",
                                       *LM])
    assert refused.exit_code == 1 and "fingerprint" in refused.output


def test_forecast_finds_the_training_file_from_another_directory(tmp_path, in_dir):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "load.csv").write_text(
        "t,load\n" + "".join(f"{i},{100 + (i % 7) * 3 + i * 0.1:.2f}\n" for i in range(60)))
    in_dir(tmp_path / "data")
    trained = CliRunner().invoke(cli, ["train", "forecast", "--data", "load.csv", "--time-col", "t",
                                       "--horizon", "4", "--set", "data.context=8", "--out", "../run",
                                       *FORECAST])
    assert trained.exit_code == 0, trained.output
    in_dir(tmp_path)
    printed = CliRunner().invoke(cli, ["forecast", "run"])
    assert printed.exit_code == 0, printed.output
    assert [line.split(",")[0] for line in printed.output.splitlines()][:2] == ["time", "60"]
    (tmp_path / "data" / "load.csv").rename(tmp_path / "data" / "moved.csv")
    missing = CliRunner().invoke(cli, ["forecast", "run"])
    assert missing.exit_code == 1
    assert "load.csv: file not found: the training file named by data.path" in missing.output
    assert "give the series with --data" in missing.output


@pytest.mark.parametrize("command", [["train", "lm"], ["train", "forecast"], ["demo"]])
def test_an_empty_out_is_refused(command, tmp_path, in_dir):
    """An unset variable (``--out "$RUN"``) wrote the run into the current directory."""
    in_dir(tmp_path)
    result = CliRunner().invoke(cli, [*command, "--out", ""])
    assert result.exit_code == 2 and "must name a directory, got ''" in result.output
    assert os.listdir(tmp_path) == []


def test_a_byte_order_mark_is_read_past_in_configs_and_texts(text, tmp_path):
    config = tmp_path / "run.toml"
    config.write_bytes(b"\xef\xbb\xbf[model]\r\nhidden_size = 3\r\n")  # as Notepad saves it
    printed = CliRunner().invoke(cli, ["train", "lm", "--config", str(config), "--print-config"])
    assert printed.exit_code == 0, printed.output
    assert "hidden_size = 3" in printed.output
    marked = tmp_path / "marked.txt"
    marked.write_bytes(b"\xef\xbb\xbf" + text.read_bytes())
    trained = CliRunner().invoke(cli, ["train", "lm", "--data", str(marked), "--out", str(tmp_path / "run"),
                                       *LM])
    assert trained.exit_code == 0, trained.output
    assert "\ufeff" not in (tmp_path / "run" / "tokenizer.json").read_text(encoding="utf-8")


def test_another_task_does_not_train_into_a_classifier_ensemble(text, tmp_path):
    ensemble = tmp_path / "ensemble"
    (ensemble / "member0").mkdir(parents=True)
    (ensemble / "ensemble.json").write_text('{"members": ["member0"], "size": 1}')
    for flags in ([], ["--overwrite"]):
        result = CliRunner().invoke(cli, ["train", "lm", "--data", str(text), "--out", str(ensemble), *flags,
                                          *LM])
        assert result.exit_code == 1, result.output
        assert "holds a classifier ensemble (ensemble.json, member*/)" in result.output
    assert sorted(p.name for p in ensemble.iterdir()) == ["ensemble.json", "member0"]
