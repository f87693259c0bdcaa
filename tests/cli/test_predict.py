"""``rnnkit predict`` through CliRunner."""

import csv

import pytest
from click.testing import CliRunner

from rnnkit.cli import cli

CSV = "".join(f"neg,{i},{i + 1},{i + 2}\npos,{9 - i},{8 - i},{7 - i}\n" for i in range(5))


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "s_train.csv").write_text(CSV)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "classify", "--data", str(tmp_path / "s_train.csv"),
                                      "--out", str(out),
                                      "--set", "train.epochs=2", "--set", "model.hidden_size=4",
                                      "--set", "data.val_fraction=0", "--set", "train.progress=false"])
    assert result.exit_code == 0, result.output
    return out


def test_writes_one_row_per_sequence(tmp_path, run_dir):
    (tmp_path / "new.csv").write_text("pos,1,2,3\nneg,3,2,1\nneg,0,0,0\n")
    out = tmp_path / "predictions.csv"
    result = CliRunner().invoke(cli, ["predict", str(run_dir), "--data", str(tmp_path / "new.csv"),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == f"wrote 3 predictions to {out}\n"  # a status line
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["id", "label", "p_neg", "p_pos"]
    assert [r["id"] for r in rows] == ["0", "1", "2"]
    for r in rows:
        p = {"neg": float(r["p_neg"]), "pos": float(r["p_pos"])}
        assert sum(p.values()) == pytest.approx(1.0, abs=1e-5)
        assert r["label"] == max(p, key=p.get)


def test_bad_input(tmp_path, run_dir):
    runner = CliRunner()
    (tmp_path / "ragged.csv").write_text("pos,1,2,3\nneg,3,2\n")
    result = runner.invoke(cli, ["predict", str(run_dir), "--data", str(tmp_path / "ragged.csv"),
                                 "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 1 and "ragged.csv:2: expected 4 columns" in result.output
    (tmp_path / "other.csv").write_text("1,2,3\nmaybe,1,2\n")
    result = runner.invoke(cli, ["predict", str(run_dir), "--data", str(tmp_path / "other.csv"),
                                 "--no-labels", "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 1 and "other.csv:2: expected a number, got 'maybe'" in result.output
    result = runner.invoke(cli, ["predict", str(tmp_path), "--data", str(tmp_path / "other.csv"),
                                 "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 1 and "not a run directory" in result.output
    assert not (tmp_path / "p.csv").exists()
    result = runner.invoke(cli, ["predict", str(run_dir), "--data", str(tmp_path / "other.csv"),
                                 "--out", str(tmp_path / "nodir" / "p.csv")])
    assert result.exit_code == 2 and "Invalid value for '--out': its directory must exist" in result.output
    assert not (tmp_path / "nodir").exists()


def test_labels_are_not_used(tmp_path, run_dir):
    """A label the model never saw is no error, and a file without the label column (--no-labels)
    gets the same probabilities as the labelled one."""
    rows = ["maybe,1,2,3", "neg,3,2,1", "pos,0.5,0,2"]
    (tmp_path / "labelled.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "bare.csv").write_text("\n".join(r.split(",", 1)[1] for r in rows) + "\n")
    written = {}
    for name, flags in (("labelled", []), ("bare", ["--no-labels"])):
        out = tmp_path / f"{name}_p.csv"
        result = CliRunner().invoke(cli, ["predict", str(run_dir), "--data", str(tmp_path / f"{name}.csv"),
                                          *flags, "--out", str(out)])
        assert result.exit_code == 0, result.output
        written[name] = list(csv.DictReader(out.open()))
    assert written["labelled"] == written["bare"] and len(written["bare"]) == 3
    assert {r["label"] for r in written["bare"]} <= {"neg", "pos"}


PAIRS = [("great film", "dull film"), ("fine plot", "poor plot")] * 3
TEXTS = "".join(f"pos,{good}\nneg,{bad}\n" for good, bad in PAIRS)
TINY_TEXT = ["--set", "data.format=text", "--set", "train.epochs=1", "--set", "model.hidden_size=4",
             "--set", "model.embed_size=4", "--set", "data.val_fraction=0", "--set", "train.progress=false"]


def test_no_labels_reads_one_text_per_line(tmp_path):
    """--no-labels was refused for text runs, naming the Python argument labels=False."""
    (tmp_path / "t.csv").write_text(TEXTS)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "classify", "--data", str(tmp_path / "t.csv"),
                                      "--out", str(run),
                                      *TINY_TEXT])
    assert result.exit_code == 0, result.output
    (tmp_path / "new.txt").write_text("great plot, fine film\npoor film\n")
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(cli, ["predict", str(run), "--data", str(tmp_path / "new.txt"), "--no-labels",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in csv.DictReader(out.open())] == ["0", "1"]


def test_header_defaults_to_the_runs_data_header(tmp_path):
    """A run trained with data.header=true: predict skips --data's first row unless --no-header
    (it used to guess for --data, whatever the run had)."""
    (tmp_path / "s.csv").write_text("label,a,b,c\n" + CSV)
    (tmp_path / "new.csv").write_text("x,0,1,2\npos,1,2,3\nneg,3,2,1\n")
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "classify", "--data", str(tmp_path / "s.csv"),
                                      "--out", str(run),
                                      "--set", "data.header=true", "--set", "train.epochs=1",
                                      "--set", "model.hidden_size=4", "--set", "data.val_fraction=0",
                                      "--set", "train.progress=false"])
    assert result.exit_code == 0, result.output
    for flags, n in (([], 2), (["--no-header"], 3), (["--header"], 2)):
        out = tmp_path / f"p{len(flags)}{n}.csv"
        result = CliRunner().invoke(cli, ["predict", str(run), "--data", str(tmp_path / "new.csv"), *flags,
                                          "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert len(list(csv.DictReader(out.open()))) == n, flags
