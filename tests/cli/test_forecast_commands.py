"""``rnnkit train forecast`` and ``rnnkit forecast`` through CliRunner."""

import csv
import json

from click.testing import CliRunner

from rnnkit.cli import cli
from tests.harness import assert_same_weights, interrupt_after

FAST = ["--set", "train.epochs=2", "--set", "model.hidden_size=4", "--set", "train.progress=false"]


def test_train_then_forecast_with_plot(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "forecast", "--out", str(out), "--horizon", "6",
                                      "--set", "model.log_transform=true", *FAST])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["horizon"] == 6 and shown["origins"] == [138]
    assert json.loads((out / "config.json").read_text())["data"]["horizon"] == 6
    csv_path, png = tmp_path / "f.csv", tmp_path / "f.png"
    result = CliRunner().invoke(cli, ["forecast", str(out), "--out", str(csv_path), "--plot", str(png),
                                      "--horizon", "4"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == f"wrote {png}\nwrote 4 steps to {csv_path}\n"
    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == ["time", "q10", "q50", "q90"] and [r[0] for r in rows[1:]] == [
        "1961-01", "1961-02", "1961-03", "1961-04"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = CliRunner().invoke(cli, ["forecast", str(out)])
    assert printed.exit_code == 0 and printed.stdout.count("\n") == 7  # header and 6 steps
    assert printed.stderr == ""  # the CSV alone on stdout


def test_user_csv_with_options(tmp_path):
    data = tmp_path / "load.csv"
    data.write_text("t,load,temp\n" + "".join(f"{i},{100 + (i % 7) * 3 + i * 0.1:.2f},{i % 5}\n"
                                               for i in range(90)))
    result = CliRunner().invoke(cli, ["train", "forecast", "--data", str(data), "--time-col", "t",
                                      "--target", "load", "--covariates", "temp", "--horizon", "7",
                                      "--set", "data.context=14", "--out", str(tmp_path / "run"), *FAST])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["season"] == 1
    # whole-number times are written as such: 90, not 90.0
    printed = CliRunner().invoke(cli, ["forecast", str(tmp_path / "run")])
    assert printed.exit_code == 0, printed.output
    assert [line.split(",")[0] for line in printed.output.splitlines()] == ["time", *map(str, range(90, 97))]


def test_bad_input_is_a_clear_error(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("t,load\n1,5\n2,\n3,7\n")
    result = CliRunner().invoke(cli, ["train", "forecast", "--data", str(data), "--time-col", "t",
                                      "--out", str(tmp_path / "run"), *FAST])
    assert result.exit_code == 1 and "bad.csv:3" in result.output and "column 'load'" in result.output
    result = CliRunner().invoke(cli, ["train", "forecast", "--target", "nope", "--out", str(tmp_path / "r2"),
                                      *FAST])
    assert result.exit_code == 1 and "column named 'nope'" in result.output
    assert CliRunner().invoke(cli, ["forecast", str(tmp_path)]).exit_code == 1


def test_fractional_times_stay_as_they_are(tmp_path):
    data = tmp_path / "half.csv"
    data.write_text("t,y\n" + "".join(f"{i / 2},{10 + (i % 4) + i * 0.05:.2f}\n" for i in range(60)))
    result = CliRunner().invoke(cli, ["train", "forecast", "--data", str(data), "--time-col", "t",
                                      "--horizon", "3", "--set", "data.context=8",
                                      "--out", str(tmp_path / "run"), *FAST])
    assert result.exit_code == 0, result.output
    printed = CliRunner().invoke(cli, ["forecast", str(tmp_path / "run")])
    assert [line.split(",")[0] for line in printed.output.splitlines()] == ["time", "30.0", "30.5", "31.0"]


def test_sigterm_exits_143_and_resumes_to_the_straight_run(tmp_path, monkeypatch):
    train = ["train", "forecast", "--horizon", "6", *FAST]
    straight, out = tmp_path / "straight", tmp_path / "run"
    assert CliRunner().invoke(cli, [*train, "--out", str(straight)]).exit_code == 0
    with monkeypatch.context() as patch:
        interrupt_after(patch, 3, "SIGTERM")
        result = CliRunner().invoke(cli, [*train, "--out", str(out)])
    assert result.exit_code == 143, result.output
    assert json.loads(result.stdout)["stopped"] == "SIGTERM"
    assert "interrupted (SIGTERM) after 3 steps" in result.stderr
    resumed = CliRunner().invoke(cli, [*train, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["steps"] == json.loads((straight / "results.json").read_text())["steps"]
    assert_same_weights(straight, out)  # the calibrated interval scale included
    other = CliRunner().invoke(cli, [*train[:2], "--horizon", "4", *FAST, "--out", str(out), "--resume"])
    assert other.exit_code == 1 and "data.horizon: saved 6, given 4" in other.output
