"""Forecasting one series from a CSV file, scored against seasonal naive on held-out data.

    cfg = load(ForecastConfig, None, ["data.path=airline.csv", "data.horizon=12"])
    results = train_forecaster(cfg, "runs/airline")      # MASE, sMAPE, 80% coverage vs naive
    rows = forecast("runs/airline")                      # the next H steps after the data

The series is cut in time order into a fitting part, a validation part (``val_size``
steps, for early stopping) and a test part (the last ``test_size`` steps, default one
horizon). Scaling is fitted on the fitting part only. The test part is forecast from
origins H apart, each from the ``context`` steps before it (observed data, never earlier
forecasts), and scored by:

- MASE (Hyndman & Koehler 2006): mean |y - ŷ| over the mean in-sample seasonal-naive error
  |y_t - y_{t-m}| of everything before the test part;
- sMAPE: mean 200 |y - ŷ| / (|y| + |ŷ|), in percent;
- coverage: the fraction of test values inside the central 80% interval.

The seasonal-naive forecast ŷ_{o+h} = y_{o+h-m⌈h/m⌉} is scored on the same origins.

The 80% intervals are calibrated after training by split conformal prediction on windows
the model was not fitted on (``calibrate``): by default each test origin is calibrated on
the newest windows whose truth is known at that origin (the validation part's windows at
the first origin, then sliding forward), and the model saves the scale of the newest
windows for forecasts past the end of the series.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from rnnkit import config as _config
from rnnkit._io import write_atomic
from rnnkit.data.series import DataError
from rnnkit.data.timeseries import TimeSeries, bundled_airline, check_regular_times, read_series_csv
from rnnkit.models import architecture_config, load_model
from rnnkit.models.forecaster import Forecaster, ForecasterConfig, conformal_scale
from rnnkit.tasks._resume import check_out, check_resumed_config
from rnnkit.train import TensorLoader, TrainConfig, fit, read_config, seed_everything
from rnnkit.train.checkpoint import WEIGHTS, save_weights

RESULTS = "results.json"
INTERVAL = (0.1, 0.5, 0.9)  # the central 80% interval and the median


@dataclass(frozen=True, kw_only=True)
class DataSection:
    path: str = ""  # a CSV with a header row; "": the bundled airline series
    time_col: str | None = None  # "" path: "month"
    target: str | None = None  # None: the only column that is not time or a covariate ("" path: "passengers")
    covariates: tuple[str, ...] = ()
    horizon: int = 12  # H, steps forecast from one origin
    context: int = 24  # L, steps the model reads before each origin
    season: int | None = None  # m for seasonal naive and MASE; None: from the time step, else 1
    test_size: int | None = None  # held-out steps at the end; None: one horizon
    val_size: int | None = None  # steps before the test part for validation; None: one horizon; 0: none
    stride: int = 1  # steps between training windows
    batch_size: int = 32

    def __post_init__(self):
        for name in ("horizon", "context", "stride", "batch_size"):
            _check_int(name, getattr(self, name), 1)
        for name, low in (("season", 1), ("test_size", 1), ("val_size", 0)):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), low)
        # the origins are a horizon apart: steps past the last whole horizon would go unscored
        if self.test_size is not None and self.test_size % self.horizon:
            raise ValueError(f"data.test_size must be a multiple of data.horizon ({self.horizon}): the test "
                             f"origins are a horizon apart, got {self.test_size}")
        if self.val_size and self.val_size < self.horizon:  # no validation window would fit
            raise ValueError(f"data.val_size must be 0 (no validation) or >= data.horizon ({self.horizon}), "
                             f"got {self.val_size}")


@dataclass(frozen=True, kw_only=True)
class ModelSection:
    """``ForecasterConfig`` less what the data section decides (horizon, context, inputs)."""

    cell: Literal["lstm", "gru", "rnn"] = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    decoder: Literal["direct", "autoregressive"] = "direct"
    output: Literal["gaussian", "quantile", "point"] = "gaussian"
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    log_transform: bool = False
    # k > 0: model y_t - y_(t-k); with k the season it learns corrections to seasonal naive
    difference: int = 0
    window_norm: Literal["none", "last", "mean"] = "mean"

    def __post_init__(self):
        # its checks, before any data is read; the horizon is the data section's, so the
        # difference/horizon check waits for ForecastConfig (horizon=1 here is a placeholder)
        _check_int("difference", self.difference, 0, section="model.")
        ForecasterConfig(horizon=1, **{**_config.to_dict(self), "difference": 0})
        if self.output == "quantile" and not {0.1, 0.9} <= set(self.quantiles):
            raise ValueError(f"model.quantiles must include 0.1 and 0.9 (the 80% interval the task scores, "
                             f"calibrates and plots) with output='quantile', got {self.quantiles!r}")


@dataclass(frozen=True, kw_only=True)
class ForecastConfig:
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=200, lr=3e-3, clip_norm=1.0))
    # after training, rescale the 80% intervals so that they hold 80% of windows the model was
    # not fitted on (split conformal, Forecaster.calibrate_intervals; needs val_size >= horizon
    # + 3): "rolling" recalibrates at every test origin on the most recent windows whose truth
    # is known by then (as Darts' conformal models do); "validation" keeps the scale fitted on
    # the validation windows; "off" keeps the model's own intervals
    calibrate: Literal["rolling", "validation", "off"] = "rolling"
    # how many of the most recent windows a rolling calibration uses; None: as many as the
    # validation part holds (val_size - horizon + 1), so the calibration set slides forward
    calibration_windows: int | None = None

    def __post_init__(self):
        if self.calibration_windows is not None:
            _check_int("calibration_windows", self.calibration_windows, 4, section="")
        k, decoder, H = self.model.difference, self.model.decoder, self.data.horizon
        if k and (decoder != "direct" or H > k):
            raise ValueError(f"model.difference={k} needs model.decoder='direct' and data.horizon <= "
                             f"model.difference (each forecast adds a known value k steps back), got "
                             f"model.decoder={decoder!r}, data.horizon={H}")
        if decoder == "autoregressive" and self.data.covariates:  # before any data is read
            raise ValueError(f"model.decoder='autoregressive' takes no covariates (their future values are "
                             f"unknown): data.covariates must be empty, got {list(self.data.covariates)}")


@dataclass(frozen=True)
class Split:
    """Where the parts begin: ``[0, val_start)`` fits, ``[val_start, test_start)`` validates."""

    val_start: int
    test_start: int

    @staticmethod
    def of(n: int, data: DataSection, difference: int = 0) -> Split:
        test = data.test_size or data.horizon
        val = data.horizon if data.val_size is None else data.val_size
        split = Split(n - test - val, n - test)
        if split.val_start - data.context - data.horizon - difference < 0:
            raise ValueError(f"the series has {n} steps: too short for context {data.context} + horizon "
                             f"{data.horizon} before validation ({val}) and test ({test}) steps")
        return split


def read_data(data: DataSection, path: str | Path | None = None) -> TimeSeries:
    """The series ``data`` names (or the file at ``path`` with the same columns). Without
    ``data.path`` that is the bundled airline series, whose columns a run trained on it
    then also reads from ``path`` (unless ``data`` names others)."""
    bundled = not data.path
    series = read_series_csv(path or data.path or bundled_airline(),
                             target=data.target or ("passengers" if bundled else None),
                             time_col=data.time_col or ("month" if bundled else None),
                             covariates=data.covariates)
    check_regular_times(series)
    return series


def train_forecaster(cfg: ForecastConfig, out: str | Path, *, overwrite: bool = False,
                     resume: bool = False) -> dict[str, Any]:
    """Fit on the series' fitting part, stop early on the validation part, score the test part.
    ``resume`` continues the interrupted run in ``out``, with the settings it was started
    with but for its length (``rnnkit.tasks._resume``).

    Returns:
        the results written to ``out/results.json``: the model's and seasonal naive's MASE,
        sMAPE and MAE on the test origins, the model's 80% interval coverage, the split.
    """
    out = Path(out)
    check_out(out, resume=resume, overwrite=overwrite, device=cfg.train.device)
    series = read_data(cfg.data)
    split = Split.of(len(series), cfg.data, cfg.model.difference)
    season = cfg.data.season or series.season
    _check_before_training(series, split, season, cfg)
    seed_everything(cfg.train.seed)
    model = Forecaster(ForecasterConfig(horizon=cfg.data.horizon, context=cfg.data.context,
                                        input_size=series.values_NF.shape[1], **_config.to_dict(cfg.model)))
    values_NF = torch.as_tensor(series.values_NF, dtype=torch.get_default_dtype())
    model.fit_scaling(values_NF[: split.val_start])
    train_origins = range(model.config.window, split.val_start - cfg.data.horizon + 1, cfg.data.stride)
    train = _loader(model, values_NF, train_origins, cfg.data.batch_size, cfg.train.seed)
    val_origins = range(split.val_start, split.test_start - cfg.data.horizon + 1)
    val = _loader(model, values_NF, val_origins, 256, shuffle=False) if len(val_origins) else None
    config = {**architecture_config(model), "task": "forecast", "data": _config.to_dict(cfg.data)}
    if resume:
        check_resumed_config(out, config, cfg.train, data=train, val=val)
    result = fit(model, train, cfg.train, loss_fn=model.loss, val=val, run_dir=out, overwrite=overwrite,
                 resume=resume, config=config)
    # scored before the calibration, which fits the intervals to these windows
    val_scores = None if split.val_start == split.test_start else score(
        model, series, split.val_start, season, end=split.test_start)
    # too few validation windows (4 for 80%): the conformal rank is out of reach, keep the model's
    calibrating = cfg.calibrate != "off" and len(val_origins) >= 4 and model.config.output != "point"
    if calibrating:
        # conformity scores of every window after the fitting part, validation and test
        needed_NH = _interval_factors(model, values_NF, split.val_start, cfg.train.seed)
        model.interval_scale_H.copy_(conformal_scale(needed_NH[: len(val_origins)]))
    scales = None
    if calibrating and cfg.calibrate == "rolling":
        count, H = cfg.calibration_windows or len(val_origins), cfg.data.horizon
        # at origin o the windows o' <= o - H are known: the newest `count` of them calibrate
        ends = [o - H + 1 - split.val_start for o in test_origins(len(series), split.test_start, H)]
        scales = [conformal_scale(needed_NH[max(0, end - count): end]) for end in ends]
        model.interval_scale_H.copy_(conformal_scale(needed_NH[-count:]))  # for forecasts past the end
    scores = score(model, series, split.test_start, season, scales=scales)
    calibration = model.interval_scale_H.tolist() if calibrating else None
    if calibrating:
        save_weights(out / WEIGHTS, model)  # fit saved them before the calibration
    results = {**scores, "val": None if val_scores is None else {
                   k: val_scores[k] for k in ("mase", "smape", "coverage_80", "seasonal_naive")
                   if k in val_scores},
               "season": season, "horizon": cfg.data.horizon, "n": len(series),
               "val_start": split.val_start, "test_start": split.test_start, "n_windows": len(train_origins),
               "interval_scale": calibration, "calibration": _calibration_note(cfg, len(val_origins), model),
               "path": _absolute(series.path), "steps": result.steps,
               "seconds": round(result.seconds, 3), "stopped": result.stopped}
    write_atomic(out / RESULTS, (json.dumps(results, indent=2) + "\n").encode())
    return results


def score(model: Forecaster, series: TimeSeries, start: int, season: int, end: int | None = None,
          scales: list[Tensor] | None = None) -> dict[str, Any]:
    """The model against seasonal naive on the origins ``test_origins(end, start, H)`` (see
    the module docstring), MASE scaled by the data before ``start``; ``forecast_BHQ`` and
    ``naive_BH`` hold the forecasts, ``actual_BH`` the truth. ``scales``: one
    ``interval_scale_H`` per origin (a rolling calibration) instead of the model's."""
    H = model.config.horizon
    origins = test_origins(len(series) if end is None else end, start, H)
    weight = next(model.parameters())  # after fit, the model is on train.device
    values_NF = torch.as_tensor(series.values_NF, dtype=weight.dtype, device=weight.device)
    levels = (0.5,) if model.config.output == "point" else INTERVAL
    windows_BLF = torch.stack([values_NF[o - model.config.window: o] for o in origins])
    generator = torch.Generator().manual_seed(0)
    if scales is None:
        q_BHQ = model.forecast(windows_BLF, quantiles=levels, generator=generator)
    else:
        kept_H = model.interval_scale_H.clone()
        q_BHQ = []
        try:
            for window_1LF, scale_H in zip(windows_BLF.split(1), scales, strict=True):
                model.interval_scale_H.copy_(scale_H)
                q_BHQ.append(model.forecast(window_1LF, quantiles=levels, generator=generator))
        finally:
            model.interval_scale_H.copy_(kept_H)
        q_BHQ = torch.cat(q_BHQ)
    q_BHQ = q_BHQ.to(torch.float64).cpu().numpy()
    y_N = series.target_N
    actual_BH = np.stack([y_N[o: o + H] for o in origins])
    naive_BH = np.stack([seasonal_naive(y_N[:o], H, season) for o in origins])
    scale = mase_scale(y_N[:start], season)
    median_BH = q_BHQ[..., levels.index(0.5)]
    ours = point_metrics(actual_BH, median_BH, scale)
    if len(levels) == 3:
        ours["coverage_80"] = float(np.mean((q_BHQ[..., 0] <= actual_BH) & (actual_BH <= q_BHQ[..., 2])))
    return {**ours, "seasonal_naive": point_metrics(actual_BH, naive_BH, scale), "origins": origins,
            "forecast_BHQ": q_BHQ.tolist(), "naive_BH": naive_BH.tolist(), "actual_BH": actual_BH.tolist()}


def forecast(run_dir: str | Path, data_path: str | Path | None = None, *,
             horizon: int | None = None, samples: int = 200, seed: int = 0) -> dict[str, Any]:
    """The next ``horizon`` steps after the end of the series (the training file, or
    ``data_path`` with the same columns), with the 80% interval.

    Returns:
        ``{"history": TimeSeries, "times": future times, "quantiles": (0.1, 0.5, 0.9) or
        (0.5,), "forecast_HQ": values}``; the times are integers where the series' are
        whole numbers.
    """
    run_dir = Path(run_dir)
    model = load_model(run_dir)
    if not isinstance(model, Forecaster):
        raise ValueError(f"RUN_DIR must hold a forecasting run (rnnkit train forecast), got a "
                         f"{type(model).__name__} in {run_dir}")
    data = _config.from_dict(DataSection, read_config(run_dir).get("data") or {})
    series = read_data(data, data_path or _training_file(run_dir, data))
    if len(series) < model.config.window:
        raise DataError(series.path or "", None, f"expected at least {model.config.window} rows to "
                                                 f"forecast from (context + difference), got {len(series)}")
    levels = (0.5,) if model.config.output == "point" else INTERVAL
    x_1LF = torch.as_tensor(series.values_NF[-model.config.window:], dtype=model.mean_F.dtype)[None]
    q_HQ = model.forecast(x_1LF, quantiles=levels, horizon=horizon, samples=samples,
                          generator=torch.Generator().manual_seed(seed))[0]
    H = q_HQ.shape[0]
    return {"history": series, "times": _integer_times(series.times, series.future_times(H)),
            "quantiles": levels, "forecast_HQ": q_HQ.to(torch.float64).numpy()}


def _training_file(run_dir: Path, data: DataSection) -> Path | None:
    """The run's training file: the absolute path ``results.json`` keeps (a file of the same
    name in the current directory may be another series), else ``data.path`` as given,
    relative to here (a run moved with its data); None for the bundled series."""
    if not data.path:
        return None
    try:
        kept = json.loads((run_dir / RESULTS).read_text(encoding="utf-8")).get("path")
    except (OSError, ValueError):
        kept = None
    if kept and Path(kept).is_absolute() and Path(kept).is_file():
        return Path(kept)
    if Path(data.path).is_file():
        return Path(data.path)
    raise DataError(data.path, None, f"file not found: the training file named by data.path in "
                                     f"{run_dir / 'config.json'} (relative to the directory the run was "
                                     f"trained in{f', or {kept}' if kept else ''}); give the series "
                                     "with --data")


def _check_before_training(series: TimeSeries, split: Split, season: int, cfg: ForecastConfig) -> None:
    """What scoring would refuse only after training: a season MASE cannot scale by, a log
    transform of a value <= 0 in the parts after the fitting one."""
    if split.val_start <= season:  # the first scored part (validation, or test) starts there
        given = "data.season" if cfg.data.season else "inferred from the times"
        raise ValueError(f"season {season} ({given}) needs more than {season} steps before the first "
                         f"scored one (MASE's scale), got {split.val_start}: set data.season (1: the "
                         f"last value) or give a longer series")
    if cfg.model.log_transform:
        bad = np.flatnonzero(series.target_N <= 0)
        if len(bad):
            at = bad[0] if series.times is None else series.times[bad[0]]
            value = float(series.target_N[bad[0]])
            raise DataError(series.path or "", None, f"model.log_transform needs a positive target, got "
                                                     f"{value!r} at {at} ({len(bad)} such)")


def _calibration_note(cfg: ForecastConfig, windows: int, model: Forecaster) -> str:
    """How the 80% intervals were calibrated, or why not (``interval_scale`` null)."""
    if model.config.output == "point":
        return "none: a point forecast has no interval"
    if cfg.calibrate == "off":
        return "off"
    if windows < 4:
        return (f"none: {windows} validation window(s), 4 needed (data.val_size >= data.horizon + 3); "
                f"the model's own intervals")
    return cfg.calibrate


def _absolute(path: str | Path | None) -> str | None:
    return None if path is None else str(Path(path).absolute())


# -- baselines and metrics ---------------------------------------------------------------------


def test_origins(n: int, test_start: int, horizon: int) -> list[int]:
    """Forecast origins in the test part, one horizon apart, each with a full horizon left."""
    return list(range(test_start, n - horizon + 1, horizon))


def seasonal_naive(history_N: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """ŷ_{T+h} = y_{T+h-m⌈h/m⌉}: the last observed season repeated."""
    h = np.arange(1, horizon + 1)
    return history_N[len(history_N) - season + (h - 1) % season]


def mase_scale(history_N: np.ndarray, season: int) -> float:
    """The in-sample mean absolute seasonal-naive error, MASE's denominator."""
    if len(history_N) <= season:
        raise ValueError(f"MASE needs more than season={season} in-sample steps, got {len(history_N)}")
    return float(np.mean(np.abs(history_N[season:] - history_N[:-season])))


def point_metrics(actual: np.ndarray, predicted: np.ndarray, scale: float) -> dict[str, float | None]:
    """MASE, sMAPE (%) and MAE; MASE is None (JSON null) where ``scale`` is 0: a history that
    repeats its season exactly (a constant series) leaves seasonal naive no error to scale by."""
    error = np.abs(actual - predicted)
    denominator = np.abs(actual) + np.abs(predicted)
    smape = np.divide(200 * error, denominator, out=np.zeros_like(error), where=denominator > 0)  # 0/0 -> 0
    mase = float(error.mean() / scale) if scale > 0 else None
    return {"mase": mase, "smape": float(smape.mean()), "mae": float(error.mean())}


# -- pieces ------------------------------------------------------------------------------------


def _loader(model: Forecaster, values_NF: Tensor, origins: range, batch_size: int, seed: int = 0, *,
            shuffle: bool = True) -> TensorLoader:
    """Windows ending at each origin, with their targets in the model's scaled space. The
    autoregressive decoder reads L + H - 1 steps and predicts each next one."""
    L, H, W = model.config.context, model.config.horizon, model.config.window
    if len(origins) == 0:
        raise ValueError(f"no training windows: the fitting part is shorter than context ({L}) + "
                         f"horizon ({H})")
    if model.config.decoder == "direct":
        x = torch.stack([values_NF[o - W: o] for o in origins])
        y = model.scale_target(torch.stack([values_NF[o: o + H, 0] for o in origins]), x)
    else:
        x = torch.stack([values_NF[o - L: o + H - 1] for o in origins])
        y = model.scale_target(torch.stack([values_NF[o - L + 1: o + H, 0] for o in origins]), x)
    return TensorLoader(x, y, batch_size=min(batch_size, len(origins)), shuffle=shuffle, seed=seed)


def _interval_factors(model: Forecaster, values_NF: Tensor, first: int, seed: int) -> Tensor:
    """``model.interval_factors`` of every window from origin ``first`` to the end of the series."""
    W, H = model.config.window, model.config.horizon
    origins = range(first, len(values_NF) - H + 1)
    values_NF = values_NF.to(model.mean_F.device)  # after fit, the model is on train.device
    x_NWF = torch.stack([values_NF[o - W: o] for o in origins])
    y_NH = torch.stack([values_NF[o: o + H, 0] for o in origins])
    return model.interval_factors(x_NWF, y_NH, generator=torch.Generator().manual_seed(seed))


def _integer_times(history_N: np.ndarray | None, future_H: np.ndarray) -> np.ndarray:
    """Numbered times stay whole numbers: ``int64`` when the series' times (or, without a
    time column, the step numbers) and the future ones all are, so that 96 is written "96",
    not "96.0"; other times as they are."""
    def whole(t_N: np.ndarray | None) -> bool:  # within float64's exact integers
        return t_N is None or bool(np.all((t_N == np.round(t_N)) & (np.abs(t_N) < 2.0**53)))

    if future_H.dtype.kind != "f" or not (whole(history_N) and whole(future_H)):
        return future_H
    return future_H.astype(np.int64)


def _check_int(name: str, value: Any, low: int, section: str = "data.") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{section}{name} must be an int >= {low}, got {value!r}")
