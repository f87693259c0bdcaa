"""``rnnkit diagnose``: vanishing and exploding gradients, measured (see rnnkit.diagnostics)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rnnkit._io import write_atomic
from rnnkit.cli._config import FilePath, image_file, new_file
from rnnkit.diagnostics import (
    TASKS,
    ClippingConfig,
    GradientConfig,
    clipping_experiment,
    gradient_profile,
    plot_clipping,
    plot_gradient_profile,
)

G, C = GradientConfig(), ClippingConfig()
FILE = FilePath()
THREADS = click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
                       help="torch threads (one is fastest at these sizes).")
JSON = click.option("--json", "json_path", type=FILE, callback=new_file,
                    help="Also write the measurements here.")


@click.group()
def diagnose() -> None:
    """Measure how the gradient flows back through time: the vanishing and exploding
    gradient problems, on the adding and copy tasks. See docs/diagnostics.md."""


@diagnose.command()
@click.option("--task", type=click.Choice(tuple(TASKS)), default=G.task, show_default=True)
@click.option("--seq-len", type=int, default=G.seq_len, show_default=True, help="Steps T.")
@click.option("--hidden-size", type=int, default=G.hidden_size, show_default=True)
@click.option("--train-steps", type=int, default=G.train_steps, show_default=True,
              help="Adam steps before the second measurement (0: at initialisation only).")
@click.option("--seed", type=int, default=G.seed, show_default=True)
@THREADS
@click.option("--out", type=FILE, default="grad_norms.png", show_default=True, callback=image_file,
              help="Image to write: .png, .pdf or .svg.")
@JSON
def gradients(task, seq_len, hidden_size, train_steps, seed, threads, out, json_path):
    """Plot ||dLoss/dh_t|| against t (log scale) for an Elman RNN, an LSTM and a GRU of the
    same hidden size on the same sequences: at initialisation, and after --train-steps of
    Adam on the task. Prints ||dL/dh_1|| / ||dL/dh_T|| for each."""
    try:
        config = GradientConfig(task=task, seq_len=seq_len, hidden_size=hidden_size,
                                train_steps=train_steps, seed=seed)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    _check_dirs(out, json_path)
    _report(gradient_profile(config, threads=threads, log=_status), plot_gradient_profile,
            out, json_path)


@diagnose.command()
@click.option("--seq-len", type=int, default=C.seq_len, show_default=True, help="Steps T.")
@click.option("--spectral-radius", type=float, default=C.spectral_radius, show_default=True,
              help="Spectral radius of the recurrent matrix of the exploding net.")
@click.option("--lr", type=float, default=C.lr, show_default=True, help="SGD learning rate.")
@click.option("--steps", type=int, default=C.steps, show_default=True)
@click.option("--clip", type=float, default=C.clip, show_default=True, help="max_norm.")
@click.option("--seed", type=int, default=C.seed, show_default=True)
@THREADS
@click.option("--out", type=FILE, default="clipping.png", show_default=True, callback=image_file,
              help="Image to write: .png, .pdf or .svg.")
@JSON
def clipping(seq_len, spectral_radius, lr, steps, clip, seed, threads, out, json_path):
    """Train an Elman RNN on the adding problem, its recurrent matrix rescaled to
    --spectral-radius, by SGD with and without clip_grad_norm_ at the same learning rate,
    next to the same net at spectral radius 0.9; plot loss and pre-clip gradient norms."""
    try:
        config = ClippingConfig(seq_len=seq_len, spectral_radius=spectral_radius, lr=lr,
                                steps=steps, clip=clip, seed=seed)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    _check_dirs(out, json_path)
    _report(clipping_experiment(config, threads=threads, log=_status), plot_clipping,
            out, json_path)


def _status(message: str) -> None:
    """Progress and "wrote" lines go to stderr: stdout holds the measurements alone."""
    click.echo(message, err=True)


def _check_dirs(*paths: Path | None) -> None:
    """Fail before minutes of training, not after."""
    for path in paths:
        if path is not None and not path.parent.is_dir():
            raise click.ClickException(f"directory {str(path.parent)!r} (for {path}) does not exist")


def _report(result, plot, out: Path, json_path: Path | None) -> None:
    plot(result, out)
    click.echo(result.summary())
    _status(f"wrote {out}")
    if json_path is not None:
        write_atomic(json_path, (json.dumps(result.to_dict(), indent=2) + "\n").encode("utf-8"))
        _status(f"wrote {json_path}")
