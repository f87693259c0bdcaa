"""The ``rnnkit`` command line: one Click group, one command per module."""

from __future__ import annotations

import click

from rnnkit import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rnnkit")
def cli() -> None:
    """rnnkit: recurrent neural networks for PyTorch."""


def _register() -> None:
    from rnnkit.cli.bench import bench
    from rnnkit.cli.demo import demo

    cli.add_command(bench)
    cli.add_command(demo)


_register()
