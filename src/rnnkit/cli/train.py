"""``rnnkit train``: one subcommand per task, each in its own module (train_<task>.py)."""

from __future__ import annotations

import click


@click.group()
def train() -> None:
    """Train a model for a task on your data (the bundled sets are only defaults). Every task
    takes --data, --out RUN_DIR, --config run.toml, --set key=value and --print-config, and
    prints its results on stdout as the JSON of RUN_DIR/results.json (forecast without the
    per-origin forecasts). Ctrl-C (SIGINT) or SIGTERM saves the run at the next step and exits
    with 130 or 143; --resume continues it."""
