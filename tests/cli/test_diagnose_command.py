"""``rnnkit diagnose`` through CliRunner: the measurements on stdout, progress and "wrote"
lines on stderr (the experiments themselves: tests/test_diagnostics.py)."""

import json

from click.testing import CliRunner

from rnnkit.cli import cli


def test_stdout_holds_the_measurements_and_stderr_the_status(tmp_path):
    png, saved = tmp_path / "c.png", tmp_path / "c.json"
    result = CliRunner().invoke(cli, ["diagnose", "clipping", "--seq-len", "6", "--steps", "2", "--seed", "3",
                                      "--out", str(png), "--json", str(saved)])
    assert result.exit_code == 0, result.output
    assert "ρ=1.5, clip at 1" in result.stdout and "wrote" not in result.stdout
    assert "training" not in result.stdout
    status = result.stderr.splitlines()
    assert status[-2:] == [f"wrote {png}", f"wrote {saved}"]
    assert status[:-2] and all(line.startswith("training ") for line in status[:-2])
    assert png.read_bytes()[:4] == b"\x89PNG" and json.loads(saved.read_text())["config"]["seed"] == 3
