"""Forecasting: rnnkit's Forecaster against seasonal naive, ETS and ARIMA (statsmodels) on
the same held-out origins.

    python benchmarks/forecast_series.py [--series airline sunspots taylor] [--seeds 3]

Series: the Box-Jenkins airline passengers (embedded in rnnkit), monthly sunspots
1749-1983 and the half-hourly England & Wales electricity demand of Taylor (2003), both
read from the pmdarima 2.1.1 wheel (MIT), fetched once with ``pip download --no-deps`` into
~/.cache/rnnkit/wheels and read with zipfile (pmdarima itself is never installed).

Protocol (``rnnkit.tasks.forecast``): the last ``test_size`` steps are held out and forecast
from origins one horizon apart, each from observed data only. MASE is scaled by the
in-sample seasonal-naive error before the test part. ETS and ARIMA are fitted on all data
before the test part; ARIMA keeps those parameters and is re-filtered up to each origin,
ETS is refitted at each origin (cheap). The rnnkit settings (SETTINGS) were picked on the
validation part (the ``val_size`` steps before the test part) and run over ``--seeds`` seeds.
Results go to benchmarks/results/forecast_series.json.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from rnnkit import config
from rnnkit.data.timeseries import bundled_airline
from rnnkit.tasks.forecast import ForecastConfig, mase_scale, point_metrics, train_forecaster

CACHE = Path.home() / ".cache" / "rnnkit"
WHEEL = "pmdarima-2.1.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl"
RESULTS = Path(__file__).parent / "results" / "forecast_series.json"

# per series: the data section (split, season) and the model/train settings
DATA = {
    "airline": ["data.time_col=month", "data.target=passengers", "data.horizon=12", "data.context=24"],
    # no yearly season in sunspots: m = 1, the naive forecast (harder to beat here than m = 12)
    "sunspots": ["data.target=sunspots", "data.horizon=12", "data.context=144", "data.season=1",
                 "data.test_size=276", "data.val_size=276", "data.stride=3"],
    # day-ahead (48 half-hours) over the last two weeks; m = 336, the same half-hour last week
    "taylor": ["data.target=demand", "data.horizon=48", "data.season=336",
               "data.test_size=672", "data.val_size=336", "data.stride=4"],
}
# candidates compared on the validation part (2 seeds each; /tmp logs of 2026-11-27): airline
# log vs raw, window_norm last/mean, quantile/autoregressive outputs, GRU; sunspots 15/30/60
# epochs, window_norm last, H=128, quantile; taylor context 96/192, stride 1/4, 15/40 epochs, H=64/128
SETTINGS = {
    "airline": ["model.log_transform=true", "train.epochs=200"],
    "sunspots": ["train.epochs=30"],
    # seasonal differencing at one week: the network forecasts corrections to seasonal naive
    "taylor": ["data.context=96", "model.difference=336", "model.window_norm=none",
               "model.log_transform=true", "model.hidden_size=128", "train.epochs=15"],
}


def series_csv(name: str) -> Path:
    """A ``<name>.csv`` (header + one value per row) in the cache, from the pmdarima wheel."""
    if name == "airline":
        return bundled_airline()
    path = CACHE / "forecast" / f"{name}.csv"
    if not path.is_file():
        wheel = CACHE / "wheels" / WHEEL
        if not wheel.is_file():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "--python-version", "3.11", "pmdarima==2.1.1", "-d", str(wheel.parent)],
                           check=True)
        with zipfile.ZipFile(wheel) as zf:
            if name == "sunspots":
                text = gzip.decompress(zf.read("pmdarima/datasets/data/sunspots.txt.gz")).decode()
                values = [float(v) for v in text.split()]
                header = "sunspots"
            else:
                source = zf.read("pmdarima/datasets/taylor.py").decode()
                literal = source[source.index("np.array(") + len("np.array("): source.index(").astype")]
                values = [float(v) for v in ast.literal_eval(literal)]
                header = "demand"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + "\n" + "\n".join(f"{v:g}" for v in values) + "\n")
    return path


def statistical(y_N: np.ndarray, origins: list[int], horizon: int, season: int, name: str) -> dict:
    """ETS and ARIMA forecasts on the origins, scored like rnnkit's (see the module docstring)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    test_start = origins[0]
    actual = np.stack([y_N[o: o + horizon] for o in origins])
    scale = mase_scale(y_N[:test_start], season)
    ets_kw = {"airline": dict(trend="add", damped_trend=True, seasonal="mul", seasonal_periods=12),
              "sunspots": dict(trend=None, seasonal=None),
              "taylor": dict(trend=None, seasonal="add", seasonal_periods=336,
                             initialization_method="heuristic")}[name]
    ets = np.stack([ExponentialSmoothing(y_N[:o], **ets_kw).fit().forecast(horizon) for o in origins])
    # ARIMA: the airline model for airline (Box & Jenkins); otherwise the order with the
    # lowest AIC over p <= 3, q <= 2 on the data before the test part (taylor: on the
    # week-differenced series, i.e. SARIMA(p,0,q)(0,1,0)_336 without its 336 states)
    if name == "airline":
        fitted = SARIMAX(np.log(y_N[:test_start]), order=(0, 1, 1),
                         seasonal_order=(0, 1, 1, 12)).fit(disp=False)
        arima = np.stack([np.exp(fitted.apply(np.log(y_N[:o])).forecast(horizon)) for o in origins])
        order = "(0,1,1)(0,1,1)12 on log"
    else:
        lag = 336 if name == "taylor" else 0
        z_N = y_N[lag:] - y_N[:-lag] if lag else y_N
        best = min(((p, q) for p in range(4) for q in range(3) if p + q),
                   key=lambda pq: SARIMAX(z_N[: test_start - lag], order=(pq[0], 0, pq[1]), trend="c")
                   .fit(disp=False).aic)
        fitted = SARIMAX(z_N[: test_start - lag], order=(best[0], 0, best[1]), trend="c").fit(disp=False)
        forecasts = []
        for o in origins:
            z_forecast = fitted.apply(z_N[: o - lag]).forecast(horizon)
            forecasts.append(z_forecast + (y_N[o - lag: o - lag + horizon] if lag else 0))
        arima = np.stack(forecasts)
        order = f"({best[0]},0,{best[1]})" + (" on y_t - y_(t-336)" if lag else "")
    return {"ets": {**point_metrics(actual, ets, scale), "settings": {k: str(v) for k, v in ets_kw.items()}},
            "arima": {**point_metrics(actual, arima, scale), "order": order}}


def run(name: str, seeds: int) -> dict:
    path = series_csv(name)
    runs = []
    for seed in range(seeds):
        cfg = config.load(ForecastConfig, None, [f"data.path={path}", *DATA[name], *SETTINGS[name],
                                                 f"train.seed={seed}", "train.progress=false"])
        with tempfile.TemporaryDirectory() as out:
            result = train_forecaster(cfg, out)
        runs.append(result)
        print(f"{name} seed {seed}: MASE {result['mase']:.3f} (val {result['val']['mase']:.3f}), "
              f"coverage {result.get('coverage_80')}, {result['seconds']:.0f} s", flush=True)
    first = runs[0]
    y_N = np.loadtxt(path, delimiter=",", skiprows=1, usecols=-1)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter
        stats = statistical(y_N, first["origins"], first["horizon"], first["season"], name)
    mase = [r["mase"] for r in runs]
    return {
        "rnnkit": {"mase_mean": statistics.mean(mase),
                   "mase_sd": statistics.stdev(mase) if seeds > 1 else 0.0,
                   "smape_mean": statistics.mean(r["smape"] for r in runs),
                   "coverage_80_mean": statistics.mean(r.get("coverage_80", float("nan")) for r in runs),
                   "val_mase_mean": statistics.mean(r["val"]["mase"] for r in runs),
                   "seconds_mean": statistics.mean(r["seconds"] for r in runs),
                   "per_seed": [{k: r.get(k) for k in ("mase", "smape", "coverage_80", "steps", "seconds")}
                                for r in runs],
                   "settings": DATA[name] + SETTINGS[name]},
        "seasonal_naive": first["seasonal_naive"], **stats, "stats_seconds": time.perf_counter() - started,
        "n": first["n"], "season": first["season"], "horizon": first["horizon"],
        "origins": len(first["origins"]), "test_start": first["test_start"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", nargs="+", default=list(DATA), choices=list(DATA))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name in args.series:
        results[name] = run(name, args.seeds)
        results[name]["date"] = time.strftime("%Y-%m-%d")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        r = results[name]
        print(f"{name}: rnnkit MASE {r['rnnkit']['mase_mean']:.3f} ± {r['rnnkit']['mase_sd']:.3f} | "
              f"seasonal naive {r['seasonal_naive']['mase']:.3f} | ETS {r['ets']['mase']:.3f} | "
              f"ARIMA {r['arima']['mase']:.3f} | 80% coverage {r['rnnkit']['coverage_80_mean']:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
