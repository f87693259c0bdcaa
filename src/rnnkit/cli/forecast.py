"""``rnnkit forecast``: the next steps of a series from a trained forecaster, as CSV and a plot."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import click

from rnnkit._io import write_atomic
from rnnkit.cli._config import FilePath, image_file, new_file, not_input
from rnnkit.cli._task import require_task
from rnnkit.plot import plot_forecast
from rnnkit.tasks.forecast import forecast as forecast_series


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", type=FilePath(),
              help="History to forecast from, with the training file's columns (default: the training file).")
@click.option("--horizon", type=click.IntRange(min=1), help="Steps ahead (default: the trained horizon).")
@click.option("--out", type=FilePath(), callback=new_file,
              help="CSV to write: time, median and the 80% interval (default: print to stdout).")
@click.option("--plot", "plot_path", type=FilePath(), callback=image_file,
              help="Image of the history, forecast and interval (.png, .pdf or .svg).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample paths "
                                                                     "(autoregressive decoder).")
def forecast(run_dir, data, horizon, out, plot_path, seed):
    """Forecast the steps after the end of the series with the model in RUN_DIR (from
    rnnkit train forecast)."""
    require_task(run_dir, "forecast")
    try:
        result = forecast_series(run_dir, data, horizon=horizon, seed=seed)
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    levels, values_HQ, times = result["quantiles"], result["forecast_HQ"], result["times"]
    history = result["history"]  # --data, or the training file the run names
    not_input(out, history.path, data_name="series")
    not_input(plot_path, history.path, data_name="series", option="--plot")
    if plot_path is not None:  # first: a plot that fails leaves no CSV behind
        x = history.times if history.times is not None else range(1, len(history) + 1)
        try:
            plot_forecast(x, history.target_N, times, values_HQ, levels, plot_path,
                          title=f"{history.names[0]}: {len(times)}-step forecast",
                          show_last=max(8 * len(times), 100))
        except (OSError, ValueError) as err:
            raise click.ClickException(str(err)) from err
        click.echo(f"wrote {plot_path}", err=True)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["time", *(f"q{round(100 * q)}" for q in levels)])
    writer.writerows([str(t), *(f"{v:.6g}" for v in row)] for t, row in zip(times, values_HQ, strict=True))
    if out is None:
        click.echo(text.getvalue(), nl=False)
    else:
        write_atomic(out, text.getvalue().encode("utf-8"))
        click.echo(f"wrote {len(times)} steps to {out}", err=True)
