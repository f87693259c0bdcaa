"""The ``rnnkit`` group: help and version."""

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
