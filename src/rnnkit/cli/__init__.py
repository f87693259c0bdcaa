"""The ``rnnkit`` command line: one Click group, one command per module."""

from __future__ import annotations

import click

from rnnkit import __version__

CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="rnnkit")
def cli() -> None:
    """rnnkit: recurrent neural networks for PyTorch."""


def _register() -> None:
    from rnnkit.cli.bench import bench
    from rnnkit.cli.demo import demo
    from rnnkit.cli.diagnose import diagnose
    from rnnkit.cli.export import export
    from rnnkit.cli.forecast import forecast
    from rnnkit.cli.generate import generate
    from rnnkit.cli.plot import plot
    from rnnkit.cli.predict import predict
    from rnnkit.cli.tag import tag
    from rnnkit.cli.train import train
    from rnnkit.cli.train_classify import classify
    from rnnkit.cli.train_forecast import forecast as train_forecast
    from rnnkit.cli.train_lm import lm
    from rnnkit.cli.train_seq2seq import seq2seq
    from rnnkit.cli.train_tag import tag as train_tag
    from rnnkit.cli.translate import translate

    train.add_command(classify)
    train.add_command(lm)
    train.add_command(seq2seq)
    train.add_command(train_forecast)
    train.add_command(train_tag)
    for command in (bench, demo, diagnose, export, forecast, generate, plot, predict, tag, train, translate):
        # on the command itself too, so that `-h` works however the command is invoked
        command.context_settings = {**CONTEXT, **command.context_settings}
        cli.add_command(command)


_register()
