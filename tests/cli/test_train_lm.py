"""``rnnkit train lm``: a tiny run, --print-config, and clear errors on bad input."""

import json

import pytest
from click.testing import CliRunner

from rnnkit._io import read_run_file
from rnnkit.cli import cli
from rnnkit.demo.corpus import load_text
from tests.harness import assert_same_weights, interrupt_after

TINY = ["--set", "train.max_steps=6", "--set", "train.bptt=16", "--set", "data.batch_size=4",
        "--set", "model.hidden_size=16", "--set", "model.embed_size=8", "--set", "data.val_fraction=0.1",
        "--set", "train.eval_every=3"]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "genesis.txt"
    path.write_text("".join(load_text().splitlines(keepends=True)[:40]), encoding="utf-8")
    return path


def invoke(*args):
    return CliRunner().invoke(cli, ["train", "lm", *map(str, args)])


@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
def test_trains_and_writes_the_run(data, tmp_path, tokenizer):
    out = tmp_path / "run"
    result = invoke("--data", data, "--out", out, "--tokenizer", tokenizer, "--set", "ngram_max_order=2",
                    "--set", "data.bpe_vocab_size=300", *TINY)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert json.loads(result.stdout) == results  # printed as the other train commands print theirs
    assert results["lm"]["val_bpc"] > 0 and results["best_ngram_order"] in (1, 2)
    assert results["data"]["tokenizer"] == tokenizer and results["lm"]["steps"] == 6
    assert json.loads((out / "tokenizer.json").read_text())["type"] == tokenizer
    assert json.loads((out / "config.json").read_text())["data"]["path"] == str(data)


def test_print_config_needs_no_data(tmp_path):
    result = invoke("--tokenizer", "bpe", "--set", "model.cell=gru", "--print-config")
    assert result.exit_code == 0, result.output
    assert 'tokenizer = "bpe"' in result.output and 'cell = "gru"' in result.output
    assert "[train]" in result.output and "bptt = 64" in result.output


def test_missing_file(tmp_path):
    result = invoke("--data", tmp_path / "nope.txt", "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert f"--data must be an existing UTF-8 text file, got '{tmp_path / 'nope.txt'}': not found" \
        in result.output


def test_empty_file(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    result = invoke("--data", tmp_path / "empty.txt", "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert "--data must be a non-empty UTF-8 text file, got" in result.output
    assert "empty.txt': 0 bytes" in result.output


def test_undecodable_bytes(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"In the beginning\n\xff\xfe")
    result = invoke("--data", tmp_path / "bad.txt", "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert "--data must be UTF-8 text, got" in result.output
    assert "the undecodable byte 0xff at byte offset 17 (line 2)" in result.output


def test_unknown_set_key(data, tmp_path):
    result = invoke("--data", data, "--out", tmp_path / "run", "--set", "model.hiden_size=8")
    assert result.exit_code == 1
    assert "unknown key 'model.hiden_size': LMModelConfig has no field 'hiden_size'" in result.output
    assert "hidden_size" in result.output


def test_too_few_lines(tmp_path):
    (tmp_path / "one.txt").write_text("a single line\n")
    result = invoke("--data", tmp_path / "one.txt", "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert "the text must have more lines than the 1 held out by val_fraction=0.05, got 1 line(s)" \
        in result.output


def test_out_and_data_are_required(data):
    result = invoke("--data", data)
    assert result.exit_code == 1
    assert "--out and --data (or data.path) are required, got --out=None" in result.output


def test_existing_run_needs_overwrite(data, tmp_path):
    out = tmp_path / "run"
    assert invoke("--data", data, "--out", out, *TINY).exit_code == 0
    result = invoke("--data", data, "--out", out, *TINY)
    assert result.exit_code == 1 and "out must be a new run directory" in result.output
    assert invoke("--data", data, "--out", out, "--overwrite", *TINY).exit_code == 0


def test_interrupted_run_exits_130_and_resumes_to_the_straight_run(data, tmp_path, monkeypatch):
    straight, out = tmp_path / "straight", tmp_path / "run"
    assert invoke("--data", data, "--out", straight, *TINY).exit_code == 0
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2)
        result = invoke("--data", data, "--out", out, *TINY)
    assert result.exit_code == 130, result.output
    shown = json.loads(result.stdout)  # the results it has
    assert shown["lm"]["stopped"] == "SIGINT" and shown["lm"]["steps"] == 2
    assert result.stderr == (f"rnnkit: training was interrupted (SIGINT) after 2 steps; the run in {out} "
                             f"is saved: add --resume to continue\n")
    resumed = invoke("--data", data, "--out", out, "--resume", *TINY)
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "results.json").read_text())["lm"]["steps"] == 6
    assert_same_weights(straight, out)  # the cosine schedule, dropout RNG and streams come back exactly
    # the length of training may change: resuming a finished run with more steps extends it
    longer = invoke("--data", data, "--out", out, "--resume", *TINY, "--set", "train.max_steps=8")
    assert longer.exit_code == 0, longer.output
    assert json.loads((out / "results.json").read_text())["lm"]["steps"] == 8
    assert json.loads((out / "config.json").read_text())["train"]["max_steps"] == 8
    # and the device (here another name of the CPU; a GPU on a machine with one)
    moved = invoke("--data", data, "--out", out, "--resume", *TINY, "--set", "train.max_steps=9",
                   "--set", "train.device=cpu:0")
    assert moved.exit_code == 0, moved.output
    assert json.loads((out / "config.json").read_text())["train"]["device"] == "cpu:0"


def test_resume_refuses_other_settings_and_an_empty_directory(data, tmp_path):
    out = tmp_path / "run"
    assert invoke("--data", data, "--out", out, *TINY).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = invoke("--data", data, "--out", out, "--resume", *TINY, "--set", "model.hidden_size=8",
                    "--set", "train.lr=0.01")
    assert result.exit_code == 1
    assert "resume must use the settings the run in" in result.output
    assert "model.hidden_size: saved 16, given 8; train.lr: saved 0.003, given 0.01" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # tokenizer.json included
    result = invoke("--data", data, "--out", tmp_path / "empty", "--resume", *TINY)
    assert result.exit_code == 1 and "resume needs a saved run in out" in result.output
    result = invoke("--data", data, "--out", out, "--resume", "--overwrite", *TINY)
    assert result.exit_code == 2 and "--resume continues the run in --out and --overwrite replaces it" \
        in result.output


def test_resume_refuses_edited_data_before_touching_the_run(data, tmp_path):
    """Same settings, but the text changed (here one character): the run would go on with
    other batches, and the tokenizer retrained on the new text would replace the run's."""
    out = tmp_path / "run"
    assert invoke("--data", data, "--out", out, *TINY).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    text = data.read_text()
    data.write_text(text.replace("e", "E", 1))
    result = invoke("--data", data, "--out", out, "--resume", *TINY)
    assert result.exit_code == 1 and "resume must train on the data the run in" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    lines = text.splitlines(keepends=True)  # the held-out part: the last lines
    data.write_text("".join(lines[:-1]) + lines[-1].replace("e", "E", 1))
    result = invoke("--data", data, "--out", out, "--resume", *TINY)
    assert result.exit_code == 1 and "resume must validate on the data the run in" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    data.write_text(text)
    assert invoke("--data", data, "--out", out, "--resume", *TINY).exit_code == 0


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "model.safetensors"])
def test_generate_names_a_run_file_it_cannot_read(data, tmp_path, name):
    """A directory (or an unreadable file) in a run file's place gave a traceback."""
    out = tmp_path / "run"
    assert invoke("--data", data, "--out", out, *TINY).exit_code == 0
    (out / name).unlink()
    (out / name).mkdir()
    result = CliRunner().invoke(cli, ["generate", str(out)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "Error:" in result.output and name in result.output, result.output


def test_read_run_file_names_the_file(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text("{")
    with pytest.raises(ValueError, match=r"labels.json must hold the labels, got a corrupt file \(JSON"):
        read_run_file(path, json.loads, what="the labels")
    with pytest.raises(ValueError, match=r"nothing.json must exist \(the labels\)"):
        read_run_file(tmp_path / "nothing.json", json.loads, what="the labels")
    path.write_text('{"words": []}')
    with pytest.raises(ValueError, match=r"got a corrupt file \(KeyError: 'tokens'\)"):
        read_run_file(path, lambda text: json.loads(text)["tokens"], what="the labels")


def test_a_device_this_machine_lacks_is_refused_before_any_file(data, tmp_path):
    out = tmp_path / "run"
    result = invoke("--data", data, "--out", out, *TINY, "--set", "train.device=cuda:99")
    assert result.exit_code == 1
    assert "train.device must be a device this machine has, got 'cuda:99'" in result.output
    assert not out.exists()  # the tokenizer was written before fit refused the device
