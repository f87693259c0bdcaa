"""The ``rnnkit`` group: help and version."""

import re

import pytest
from click.testing import CliRunner

import rnnkit
from rnnkit.cli import cli


def test_help_lists_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "rnnkit: recurrent neural networks for PyTorch." in result.output
    for command in ("bench", "demo"):
        assert command in result.output


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"rnnkit, version {rnnkit.__version__}"
    assert rnnkit.__version__ == "0.1.0"


def test_unknown_command_is_an_error():
    result = CliRunner().invoke(cli, ["trian"])
    assert result.exit_code == 2
    assert "No such command 'trian'" in result.output


@pytest.mark.parametrize("args", [["demo"], ["train", "lm"], ["train", "classify"], ["train", "forecast"],
                                  ["train", "tag"], ["train", "seq2seq"]])
def test_the_set_example_in_the_help_is_a_key_of_the_commands_config(args):
    """The example once read model.hidden_size=512 everywhere; the demo has no model section."""
    help_text = " ".join(CliRunner().invoke(cli, [*args, "--help"]).output.split())
    example = re.search(r"e\.g\. --set (\S+)", help_text).group(1)
    result = CliRunner().invoke(cli, [*args, "--set", example, "--print-config"])
    assert result.exit_code == 0, result.output
    key, value = example.split("=")
    assert f"{key.rpartition('.')[2]} = {value}" in result.output


@pytest.mark.parametrize("args", [
    ["bench", "--json", "{tmp}/results/"],
    ["plot", "{tmp}", "--out", "{tmp}/pictures/"],
    ["predict", "{tmp}", "--data", "{tmp}/d.csv", "--out", "{tmp}/predictions/"],
    ["diagnose", "gradients", "--json", "{tmp}/norms/"],
], ids=["bench-json", "plot-out", "predict-out", "diagnose-json"])
def test_a_file_option_named_like_a_directory_is_refused(args, tmp_path):
    """pathlib reads ``out/`` as ``out``: the command would write a file named out."""
    (tmp_path / "d.csv").write_text("a,1\n")
    result = CliRunner().invoke(cli, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert "must name a file, got the directory name" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]
