"""``rnnkit plot``: a run's training curves as an image (see rnnkit.plot)."""

from __future__ import annotations

from pathlib import Path

import click

from rnnkit.cli._config import FilePath, image_file
from rnnkit.plot import plot_run


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=FilePath(), callback=image_file,
              help=".png, .pdf or .svg to write [default: RUN_DIR/curves.png].")
def plot(run_dir, out):
    """Draw the training curves of RUN_DIR (its metrics.jsonl or metrics.csv) to an image: one
    panel per metric with train and val as lines, and the gradient norm on a log scale."""
    try:
        path = plot_run(run_dir, out)
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {path}", err=True)
