"""``rnnkit train forecast``: a probabilistic forecaster on one CSV series (rnnkit.tasks.forecast)."""

from __future__ import annotations

from pathlib import Path

import click

from rnnkit.cli._config import DirPath, FilePath, config_options, require_out, resolve_config
from rnnkit.cli._run import echo_results, exit_if_interrupted, run_options, training
from rnnkit.tasks.forecast import ForecastConfig, train_forecaster

_PER_ORIGIN = ("forecast_BHQ", "naive_BH", "actual_BH")  # results.json keeps these; stdout does not


@click.command("forecast")
@click.option("--data", type=FilePath(),
              help="CSV with a header row (default: the bundled airline series). [data.path]")
@click.option("--time-col", help="Column of increasing times (ISO dates or numbers). [data.time_col]")
@click.option("--target", help="Column to forecast (default: the only other column). [data.target]")
@click.option("--covariates", help="Comma-separated input columns observed up to each origin. "
                                   "[data.covariates]")
@click.option("--horizon", type=int, help="Steps to forecast from each origin. [data.horizon]")
@click.option("--out", type=DirPath(path_type=Path), help="Run directory (required).")
@run_options
@config_options
def forecast(data, time_col, target, covariates, horizon, out, overwrite, resume, config, sets):
    """Train a forecaster on the series minus its last horizon (the test part), stopping on
    a validation part before it; writes the run and results.json (MASE, sMAPE and 80%
    interval coverage on the test part, next to seasonal naive) to --out."""
    cfg = resolve_config(ForecastConfig, config, sets, **{
        "data.path": None if data is None else str(data), "data.time_col": time_col,
        "data.target": target, "data.horizon": horizon,
        "data.covariates": None if covariates is None else [c.strip() for c in covariates.split(",")
                                                            if c.strip()]})
    require_out(out)  # after --print-config, which needs no run directory
    with training(out, resume=resume):
        results = train_forecaster(cfg, out, overwrite=overwrite, resume=resume)
    echo_results({k: v for k, v in results.items() if k not in _PER_ORIGIN})
    exit_if_interrupted(results, out)
