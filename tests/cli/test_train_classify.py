"""``rnnkit train classify`` through CliRunner."""

import json

from click.testing import CliRunner

from rnnkit.cli import cli
from tests.harness import assert_same_weights, interrupt_after

TS = ("@problemName T\n@univariate true\n@equalLength false\n@classLabel true lo hi\n@data\n"
      + "".join(f"{0.1 * i},{0.2 * i},{0.3 * i}:lo\n{9 - 0.1 * i},{8 + 0.2 * i}:hi\n" for i in range(6)))
FAST = ["--set", "train.epochs=2", "--set", "model.hidden_size=4", "--set", "train.progress=false"]


def test_trains_and_writes_results(tmp_path):
    (tmp_path / "T_TRAIN.ts").write_text(TS)
    (tmp_path / "T_TEST.ts").write_text(TS)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "classify", "--data", str(tmp_path / "T_TRAIN.ts"),
                                      "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert json.loads(result.output) == results
    assert results["n_test"] == 12 and results["classes"] == ["lo", "hi"]
    again = CliRunner().invoke(cli, ["train", "classify", "--data", str(tmp_path / "T_TRAIN.ts"),
                                     "--out", str(out), *FAST])
    assert again.exit_code == 1 and "already holds" in again.output
    assert CliRunner().invoke(cli, ["train", "classify", "--data", str(tmp_path / "T_TRAIN.ts"),
                                    "--out", str(out), "--overwrite", *FAST]).exit_code == 0


def test_print_config_merges_toml_and_set(tmp_path):
    (tmp_path / "run.toml").write_text('[model]\ncell = "gru"\n[data]\nbatch_size = 4\n')
    result = CliRunner().invoke(cli, ["train", "classify", "--data", "x.ts", "--out", str(tmp_path / "r"),
                                      "--config", str(tmp_path / "run.toml"), "--set", "data.batch_size=8",
                                      "--print-config"])
    assert result.exit_code == 0, result.output
    assert 'path = "x.ts"' in result.output and 'cell = "gru"' in result.output
    assert "batch_size = 8" in result.output
    for task in ("classify", "forecast", "tag"):  # --print-config needs no run directory
        result = CliRunner().invoke(cli, ["train", task, "--print-config"])
        assert result.exit_code == 0 and "[train]" in result.output, (task, result.output)
        result = CliRunner().invoke(cli, ["train", task, "--data", "x"])
        assert result.exit_code == 2 and "Missing option '--out'" in result.output, (task, result.output)


def test_bad_input_is_a_click_error(tmp_path):
    (tmp_path / "bad.ts").write_text("@univariate true\n@classLabel true a b\n@data\n1,2:a\n3,oops:b\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "classify", "--data", str(tmp_path / "bad.ts"),
                                 "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    expected = f"Error: {tmp_path / 'bad.ts'}:5: expected a number or '?' in dimension 0, got 'oops'"
    assert expected in result.output
    result = runner.invoke(cli, ["train", "classify", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "data.path must name the training file" in result.output
    result = runner.invoke(cli, ["train", "classify", "--data", "x.ts", "--out", str(tmp_path / "r"),
                                 "--set", "model.pooling=max"])
    assert result.exit_code == 1 and "pooling must be one of" in result.output
    result = runner.invoke(cli, ["train", "classify", "--data", str(tmp_path / "none.ts"),
                                 "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "file not found" in result.output


def test_interrupted_run_exits_130_and_resumes_to_the_straight_run(tmp_path, monkeypatch):
    (tmp_path / "T_TRAIN.ts").write_text(TS)
    train = ["train", "classify", "--data", str(tmp_path / "T_TRAIN.ts"), *FAST, "--set", "train.epochs=3"]
    straight, out = tmp_path / "straight", tmp_path / "run"
    assert CliRunner().invoke(cli, [*train, "--out", str(straight)]).exit_code == 0
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        result = CliRunner().invoke(cli, [*train, "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert json.loads(result.stdout)["stopped"] == "SIGINT"
    assert f"interrupted (SIGINT) after 1 step; the run in {out} is saved: add --resume" in result.stderr
    again = CliRunner().invoke(cli, [*train, "--out", str(out)])
    assert again.exit_code == 1 and "--resume" in again.output  # a new run would not replace it
    resumed = CliRunner().invoke(cli, [*train, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["steps"] == 3
    assert_same_weights(straight, out)
    other = CliRunner().invoke(cli, [*train, "--out", str(out), "--resume", "--set", "model.cell=gru"])
    assert other.exit_code == 1 and "model.cell: saved 'lstm', given 'gru'" in other.output


def test_ucr_2018_tsv_and_its_test_file(tmp_path):
    """The UCR 2018 archive's X_TRAIN.tsv (tab-separated, label first, NaN-padded) with
    X_TEST.tsv beside it; it was refused with a message about commas."""
    rows = "".join(f"1\t{i}\t{i + 1}\t{i + 2}\n2\t{9 - i}\t{8 - i}\tNaN\n" for i in range(5))
    (tmp_path / "X_TRAIN.tsv").write_text(rows)
    (tmp_path / "X_TEST.tsv").write_text(rows)
    result = CliRunner().invoke(cli, ["train", "classify", "--data", str(tmp_path / "X_TRAIN.tsv"),
                                      "--out", str(tmp_path / "run"), *FAST, "--set", "data.val_fraction=0"])
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert results["n_train"] == 10 and results["n_test"] == 10 and results["classes"] == ["1", "2"]


def test_data_errors_name_files_and_settings(tmp_path):
    """A text CSV without data.format=text hints at it; a test file with other dimensions is
    named before training, and no run is left behind."""
    (tmp_path / "t.csv").write_text('sentiment,review\nneg,"ugly, sad"\npos,lovely nice\n')
    result = CliRunner().invoke(cli, ["train", "classify", "--data", str(tmp_path / "t.csv"),
                                      "--out", str(tmp_path / "r"), *FAST])
    assert result.exit_code == 1
    assert "t.csv:2: expected a number, got 'ugly, sad' in column 2 ('review'); a CSV of label,text rows " \
           "is read with data.format=text (--set data.format=text)" in result.output
    (tmp_path / "M_TRAIN.ts").write_text("@univariate false\n@classLabel true a b\n@data\n"
                                         + "1,2:3,4:a\n5,6:7,8:b\n" * 4)
    (tmp_path / "M_TEST.ts").write_text("@univariate false\n@classLabel true a b\n@data\n1,2:a\n3,4:b\n")
    result = CliRunner().invoke(cli, ["train", "classify", "--data", str(tmp_path / "M_TRAIN.ts"),
                                      "--out", str(tmp_path / "r"), *FAST, "--set", "data.val_fraction=0"])
    assert result.exit_code == 1
    assert (f"Error: {tmp_path / 'M_TEST.ts'}: expected 2 dimension(s) per step like the training file "
            f"{tmp_path / 'M_TRAIN.ts'}, got 1") in result.output
    assert not (tmp_path / "r").exists()
