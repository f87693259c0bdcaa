"""``rnnkit plot``: the command around rnnkit.plot.plot_run.

(Not test_plot.py: without __init__.py files, test basenames must be unique across folders.)
"""

from click.testing import CliRunner

from rnnkit.cli import cli
from rnnkit.train.metrics import MetricsLog


def write_run(run_dir):
    with MetricsLog(run_dir) as log:
        for step in range(0, 201, 10):
            log.log(step, "train", {"loss": 3.0 / (1 + step / 50), "grad_norm": 5.0 / (1 + step)})
            if step % 50 == 0:
                log.log(step, "val", {"loss": 3.2 / (1 + step / 60)})
    return run_dir


def test_plot_writes_the_png(tmp_path):
    run = write_run(tmp_path / "run")
    result = CliRunner().invoke(cli, ["plot", str(run)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == f"wrote {run / 'curves.png'}\n"  # a status line
    data = (run / "curves.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_plot_out(tmp_path):
    run = write_run(tmp_path / "run")
    result = CliRunner().invoke(cli, ["plot", str(run), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG") and not (run / "curves.png").exists()


def test_plot_errors_are_click_exceptions(tmp_path):
    result = CliRunner().invoke(cli, ["plot", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "Error: run_dir must be an existing directory" in result.output
    result = CliRunner().invoke(cli, ["plot", str(tmp_path)])
    assert result.exit_code == 1
    assert "Error: run_dir must hold metrics.jsonl or metrics.csv" in result.output
    (tmp_path / "metrics.jsonl").write_text("")
    result = CliRunner().invoke(cli, ["plot", str(tmp_path)])
    assert result.exit_code == 1
    assert "Error: run_dir must hold logged metrics" in result.output


def test_plot_help():
    result = CliRunner().invoke(cli, ["plot", "-h"])
    assert result.exit_code == 0
    assert "Usage: cli plot [OPTIONS] RUN_DIR" in result.output
    assert "--out" in result.output


def test_plot_out_must_name_an_image_format(tmp_path):
    run = write_run(tmp_path / "run")
    result = CliRunner().invoke(cli, ["plot", str(run), "--out", str(tmp_path / "c.txt")])
    assert result.exit_code == 2 and "must end in .png, .pdf or .svg" in result.stderr
    assert not (tmp_path / "c.txt").exists()
    result = CliRunner().invoke(cli, ["plot", str(run), "--out", str(tmp_path / "c.svg")])
    assert result.exit_code == 0 and (tmp_path / "c.svg").read_bytes().startswith(b"<?xml")
