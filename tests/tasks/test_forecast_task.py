"""train_forecaster, score and forecast end to end, and the metrics against hand-computed values."""

import json
import math

import numpy as np
import pytest
import torch

from rnnkit import config
from rnnkit.data.series import DataError
from rnnkit.data.timeseries import bundled_airline
from rnnkit.models import load_model
from rnnkit.tasks.forecast import (
    ForecastConfig,
    Split,
    forecast,
    mase_scale,
    point_metrics,
    seasonal_naive,
    train_forecaster,
)
from rnnkit.tasks.forecast import (
    test_origins as origins_of,
)


def write_seasonal_csv(path, n=120, seed=0):
    """A noisy 12-step season on a trend, with one covariate; monthly dates from 2000-01."""
    g = np.random.default_rng(seed)
    t = np.arange(n)
    y = 50 + 0.3 * t + 10 * np.sin(2 * np.pi * t / 12) + g.normal(0, 1, n)
    months = np.arange(np.datetime64("2000-01"), np.datetime64("2000-01") + n)
    rows = "".join(f"{m},{v:.4f},{c:.4f}\n" for m, v, c in zip(months, y, g.normal(0, 1, n), strict=True))
    path.write_text("month,sales,promo\n" + rows)
    return path


def cfg_for(path, *sets):
    return config.load(ForecastConfig, None, [f"data.path={path}", "data.time_col=month", "data.target=sales",
                                              "data.context=24", "model.hidden_size=8", "train.epochs=3",
                                              "train.progress=false", *sets])


def test_seasonal_naive_repeats_the_last_season():
    history = np.arange(10.0)  # last season of 4: 6, 7, 8, 9
    np.testing.assert_array_equal(seasonal_naive(history, 6, 4), [6, 7, 8, 9, 6, 7])
    np.testing.assert_array_equal(seasonal_naive(history, 2, 1), [9, 9])


def test_mase_and_smape_golden_values():
    # in-sample |y_t - y_(t-2)| of [1, 2, 4, 8]: |4-1|, |8-2| -> mean 4.5
    assert mase_scale(np.array([1.0, 2.0, 4.0, 8.0]), 2) == 4.5
    metrics = point_metrics(np.array([[10.0, 20.0]]), np.array([[12.0, 20.0]]), scale=4.0)
    # errors 2, 0 -> MAE 1, MASE 0.25; sMAPE mean(200*2/22, 0) = 9.0909...
    assert metrics["mae"] == 1.0 and metrics["mase"] == 0.25
    assert math.isclose(metrics["smape"], 100 * 2 / 22)
    with pytest.raises(ValueError, match="more than season=4"):
        mase_scale(np.arange(4.0), 4)
    # a constant history: no seasonal-naive error to scale by, so no MASE (null in JSON, not Infinity)
    assert point_metrics(np.array([[5.0, 6.0]]), np.array([[5.0, 5.0]]), scale=0.0)["mase"] is None


def test_split_and_origins():
    data = ForecastConfig().data  # horizon 12, context 24
    assert Split.of(144, data) == Split(120, 132)
    assert origins_of(144, 120, 12) == [120, 132]
    assert origins_of(140, 120, 12) == [120]
    with pytest.raises(ValueError, match="too short"):
        Split.of(50, data)


def test_trains_scores_and_forecasts_with_covariates(tmp_path):
    path = write_seasonal_csv(tmp_path / "sales.csv")
    cfg = cfg_for(path, "data.covariates=promo", "data.test_size=24", "data.val_size=20")
    results = train_forecaster(cfg, tmp_path / "run")
    assert results["origins"] == [96, 108] and results["season"] == 12
    assert results["val_start"] == 76 and results["n_windows"] == 76 - 12 - 24 + 1
    for key in ("mase", "smape", "coverage_80"):
        assert math.isfinite(results[key])
    assert len(results["interval_scale"]) == 12  # calibrated on the 9 validation windows
    assert json.loads((tmp_path / "run" / "results.json").read_text())["mase"] == results["mase"]
    # the naive figures are the formula's, on the same origins
    y = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1)
    naive = np.stack([seasonal_naive(y[:o], 12, 12) for o in (96, 108)])
    actual = np.stack([y[o:o + 12] for o in (96, 108)])
    assert results["seasonal_naive"]["mae"] == pytest.approx(np.abs(naive - actual).mean())
    out = forecast(tmp_path / "run")
    assert [str(t) for t in out["times"][:2]] == ["2010-01", "2010-02"]
    assert out["forecast_HQ"].shape == (12, 3) and out["quantiles"] == (0.1, 0.5, 0.9)
    assert bool(np.all(np.diff(out["forecast_HQ"], axis=1) >= 0))


def test_rolling_calibration_uses_only_windows_known_at_each_origin(tmp_path):
    """Changing the last horizon's values changes no test forecast (their windows are not yet
    known at any origin) but does change the scale saved for forecasts past the end."""
    path = write_seasonal_csv(tmp_path / "a.csv")
    rows = path.read_text().splitlines()
    changed = [f"{r.split(',')[0]},{float(r.split(',')[1]) + 30:.4f},{r.split(',')[2]}" for r in rows[-12:]]
    other = tmp_path / "b.csv"
    other.write_text("\n".join(rows[:-12] + changed) + "\n")
    sets = ("data.test_size=36", "data.val_size=20")
    a = train_forecaster(cfg_for(path, *sets), tmp_path / "a")
    b = train_forecaster(cfg_for(other, *sets), tmp_path / "b")
    assert a["origins"] == [84, 96, 108]
    np.testing.assert_array_equal(a["forecast_BHQ"], b["forecast_BHQ"])
    assert a["interval_scale"] != b["interval_scale"]


def test_rolling_calibration_slides_over_the_newest_windows(tmp_path):
    """Origin o is calibrated on the `calibration_windows` newest windows ending by o; the
    first test origin sees exactly the validation windows, as the fixed calibration does."""
    path = write_seasonal_csv(tmp_path / "s.csv")
    sets = ("data.test_size=36", "data.val_size=20")  # 9 validation windows
    fixed = train_forecaster(cfg_for(path, *sets, "calibrate=validation"), tmp_path / "fixed")
    rolling = train_forecaster(cfg_for(path, *sets, "calibration_windows=5"), tmp_path / "rolling")
    same = train_forecaster(cfg_for(path, *sets), tmp_path / "same")  # 9 windows, sliding
    q_fixed, q_rolling, q_same = (np.array(r["forecast_BHQ"]) for r in (fixed, rolling, same))
    np.testing.assert_array_equal(q_fixed[..., 1], q_rolling[..., 1])  # the medians never move
    np.testing.assert_allclose(q_same[0], q_fixed[0])
    assert not np.allclose(q_same[1:], q_fixed[1:]) and not np.allclose(q_rolling[0], q_fixed[0])
    # the saved scale: the 5 newest windows (origins 104-108), rank ⌈6·0.8⌉ = 5, their maximum
    model = load_model(tmp_path / "rolling")
    values_NF = torch.as_tensor(np.loadtxt(path, delimiter=",", skiprows=1, usecols=1),
                                dtype=model.mean_F.dtype)[:, None]
    x_NWF = torch.stack([values_NF[o - 24: o] for o in range(104, 109)])
    y_NH = torch.stack([values_NF[o: o + 12, 0] for o in range(104, 109)])
    model.interval_scale_H.fill_(7.0)  # ignored by interval_factors
    needed_NH = model.interval_factors(x_NWF, y_NH)
    torch.testing.assert_close(torch.tensor(rolling["interval_scale"], dtype=needed_NH.dtype),
                               needed_NH.max(dim=0).values)
    with pytest.raises(ValueError, match="calibration_windows must be an int >= 4, got 3"):
        cfg_for(path, "calibration_windows=3")
    with pytest.raises(ValueError, match="calibrate"):
        cfg_for(path, "calibrate=true")


def test_a_trained_model_beats_seasonal_naive_on_a_trending_series(tmp_path):
    path = write_seasonal_csv(tmp_path / "sales.csv", n=160)
    results = train_forecaster(cfg_for(path, "train.epochs=60", "model.hidden_size=16", "train.lr=0.01"),
                               tmp_path / "run")
    # seasonal naive misses a year of trend (3.6); the model should learn it
    assert results["mase"] < results["seasonal_naive"]["mase"]


def test_autoregressive_and_point_runs(tmp_path):
    path = write_seasonal_csv(tmp_path / "s.csv")
    ar = train_forecaster(cfg_for(path, "model.decoder=autoregressive"), tmp_path / "ar")
    assert 0.0 <= ar["coverage_80"] <= 1.0
    point = train_forecaster(cfg_for(path, "model.output=point"), tmp_path / "point")
    assert "coverage_80" not in point and point["interval_scale"] is None
    assert forecast(tmp_path / "ar", horizon=30)["forecast_HQ"].shape == (30, 3)  # beyond the trained H
    assert forecast(tmp_path / "point")["quantiles"] == (0.5,)


def test_forecast_from_new_history_and_its_errors(tmp_path):
    path = write_seasonal_csv(tmp_path / "s.csv")
    train_forecaster(cfg_for(path), tmp_path / "run")
    newer = write_seasonal_csv(tmp_path / "newer.csv", n=30, seed=1)
    assert str(forecast(tmp_path / "run", newer)["times"][0]) == "2002-07"
    short = tmp_path / "short.csv"
    short.write_text("month,sales,promo\n" + "".join(f"2000-{m:02d},1,0\n" for m in range(1, 10)))
    with pytest.raises(ValueError, match="at least 24 rows"):
        forecast(tmp_path / "run", short)
    with pytest.raises(ValueError, match="horizon must be <= 12"):
        forecast(tmp_path / "run", horizon=13)
    # 40 months missing from a new history (2000-03 to 2003-06): 60 rows, but not one month apart
    rows = write_seasonal_csv(tmp_path / "long.csv", n=100, seed=1).read_text().splitlines()
    gappy = tmp_path / "gappy.csv"
    gappy.write_text("\n".join(rows[:3] + rows[43:]) + "\n")
    with pytest.raises(DataError, match=r"gappy\.csv:4: expected evenly spaced times, 1 month apart .*"
                                        r"got 41 months from 2000-02 to 2003-07"):
        forecast(tmp_path / "run", gappy)


def test_training_on_a_series_with_a_missing_month_is_refused(tmp_path):
    # before: the most common gap of 28-31 days was 31 days, so season 1 and MASE against plain naive
    path = write_seasonal_csv(tmp_path / "s.csv")
    rows = path.read_text().splitlines()
    path.write_text("\n".join(rows[:50] + rows[51:]) + "\n")  # drop 2004-02 (line 51)
    expected = r"s\.csv:51: .* 1 month apart .* got 2 months from 2004-01 to 2004-03"
    with pytest.raises(DataError, match=expected):
        train_forecaster(cfg_for(path), tmp_path / "run")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_defaults_to_the_bundled_airline_series(tmp_path):
    cfg = config.load(ForecastConfig, None, ["model.hidden_size=4", "train.epochs=1", "train.progress=false"])
    results = train_forecaster(cfg, tmp_path / "air")
    assert results["n"] == 144 and results["origins"] == [132] and results["path"].endswith("airline.csv")
    # its columns (month, passengers) also name those of a file given later
    copy = tmp_path / "air.csv"
    copy.write_bytes(bundled_airline().read_bytes())
    got, want = forecast(tmp_path / "air", copy), forecast(tmp_path / "air")
    assert np.array_equal(got["times"], want["times"])
    assert np.array_equal(got["forecast_HQ"], want["forecast_HQ"])


def test_config_round_trips_and_checks():
    cfg = config.load(ForecastConfig, None, ["data.covariates=a,b", "model.quantiles=0.05,0.5,0.95"])
    assert config.from_dict(ForecastConfig, config.to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match=r"data.test_size must be a multiple of data.horizon \(12\): "
                                         r"the test origins are a horizon apart, got 20"):
        config.load(ForecastConfig, None, ["data.test_size=20"])  # steps 13-20 of it went unscored
    with pytest.raises(ValueError, match=r"data.val_size must be 0 \(no validation\) or >= data.horizon "
                                         r"\(12\), got 5"):
        config.load(ForecastConfig, None, ["data.val_size=5"])  # it crashed after training
    config.load(ForecastConfig, None, ["data.val_size=0", "data.test_size=24"])
    with pytest.raises(ValueError, match="data.context must be an int >= 1"):
        config.load(ForecastConfig, None, ["data.context=0"])
    with pytest.raises(ValueError, match="needs output 'gaussian' or 'point'"):
        config.load(ForecastConfig, None, ["model.decoder=autoregressive", "model.output=quantile"])
    with pytest.raises(ValueError, match=r"must include 0.1 and 0.9 .* got \(0.05, 0.5, 0.95\)"):
        config.load(ForecastConfig, None, ["model.output=quantile", "model.quantiles=0.05,0.5,0.95"])


@pytest.mark.parametrize("sets, k, got", [
    (["model.decoder=autoregressive", "model.difference=12"], 12, "'autoregressive', data.horizon=12"),
    (["model.difference=6"], 6, "'direct', data.horizon=12"),
    (["data.horizon=7", "data.test_size=7", "model.difference=5"], 5, "'direct', data.horizon=7"),
])
def test_difference_is_checked_against_the_data_horizon(sets, k, got):
    # the model section alone has no horizon: its check used a placeholder and printed horizon=1
    with pytest.raises(ValueError) as err:
        config.load(ForecastConfig, None, sets)
    assert str(err.value).startswith(f"model.difference={k} needs model.decoder='direct' and data.horizon "
                                     f"<= model.difference")
    assert str(err.value).endswith(f"got model.decoder={got}")
    cfg = config.load(ForecastConfig, None, ["data.horizon=6", "model.difference=12"])
    assert (cfg.data.horizon, cfg.model.difference) == (6, 12)
    with pytest.raises(ValueError, match="model.difference must be an int >= 0, got -1"):
        config.load(ForecastConfig, None, ["model.difference=-1"])


def test_log_transform_of_a_non_positive_series_is_refused(tmp_path):
    path = tmp_path / "z.csv"
    path.write_text("t,v\n" + "".join(f"{i},{math.sin(i)}\n" for i in range(80)))
    cfg = config.load(ForecastConfig, None, [f"data.path={path}", "data.time_col=t",
                                             "model.log_transform=true",
                                             "train.progress=false"])
    with pytest.raises(ValueError, match="positive target"):
        train_forecaster(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_forecast_refuses_a_run_of_another_task(tmp_path):
    from rnnkit.models import LanguageModel, LMConfig, architecture_config
    from rnnkit.train import TensorLoader, TrainConfig, fit
    model = LanguageModel(LMConfig(vocab_size=5, hidden_size=4, embed_size=4, num_layers=1))
    ids = torch.randint(0, 5, (4, 6))
    fit(model, TensorLoader(ids, ids, batch_size=2), TrainConfig(progress=False), run_dir=tmp_path / "lm",
        config=architecture_config(model))
    with pytest.raises(ValueError, match="forecasting run"):
        forecast(tmp_path / "lm")


def test_airline_forecast_beats_seasonal_naive(tmp_path, seed=0):
    """End to end on real data with the demo's settings (~600 steps, seconds): the held-out
    1960 against same-month-last-year (MASE 1.571)."""
    cfg = config.load(ForecastConfig, None, ["model.log_transform=true", "train.epochs=200",
                                             f"train.seed={seed}", "train.progress=false"])
    results = train_forecaster(cfg, tmp_path / "air")
    assert results["seasonal_naive"]["mase"] == pytest.approx(1.5709, abs=1e-4)
    assert results["mase"] < 0.8 * results["seasonal_naive"]["mase"]


def test_a_missing_time_column_is_named(tmp_path):
    """--time-col nope without --target said the column to forecast was ambiguous."""
    from rnnkit.data.timeseries import read_series_csv

    path = tmp_path / "s.csv"
    path.write_text("month,passengers\n1949-01,112\n1949-02,118\n1949-03,132\n")
    with pytest.raises(DataError, match=r"s\.csv:1: expected a column named 'nope'; the header has "
                                        r"\['month', 'passengers'\]"):
        read_series_csv(path, time_col="nope")


def test_an_autoregressive_decoder_with_covariates_is_refused_with_the_config():
    """It was refused only when the model was built, after the data was read, as input_size."""
    with pytest.raises(ValueError, match=r"model.decoder='autoregressive' takes no covariates .* "
                                         r"data.covariates must be empty, got \['temp'\]"):
        config.load(ForecastConfig, None, ["model.decoder=autoregressive", "data.covariates=temp"])


def test_what_scoring_needs_is_checked_before_training(tmp_path):
    """A season longer than the data before the scored part, or a log transform of a value
    <= 0 past the fitting part: refused before training, no run left (it trained, then
    failed)."""
    path = write_seasonal_csv(tmp_path / "s.csv", n=70)
    with pytest.raises(ValueError, match=r"season 52 \(data.season\) needs more than 52 steps before the "
                                         r"first scored one \(MASE's scale\), got 46"):
        train_forecaster(cfg_for(path, "data.season=52"), tmp_path / "run")
    lines = path.read_text().splitlines()
    lines[-3] = lines[-3].rsplit(",", 2)[0] + ",0.0," + lines[-3].rsplit(",", 1)[1]  # a 0 in the test part
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"model.log_transform needs a positive target, got 0.0 at 2005-08"):
        train_forecaster(cfg_for(path, "model.log_transform=true"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_validation_scores_come_before_the_calibration_and_the_results_say_how_it_went(tmp_path):
    """The validation windows calibrate the intervals: scored after it, their coverage was
    in-sample (1.0 against 0.78 on test)."""
    path = write_seasonal_csv(tmp_path / "s.csv")
    runs = {mode: train_forecaster(cfg_for(path, "data.val_size=24", f"calibrate={mode}"), tmp_path / mode)
            for mode in ("off", "validation")}
    assert runs["off"]["val"] == runs["validation"]["val"]
    assert runs["off"]["calibration"] == "off" and runs["validation"]["calibration"] == "validation"
    few = train_forecaster(cfg_for(path), tmp_path / "few")
    assert few["interval_scale"] is None
    assert few["calibration"].startswith("none: 1 validation window(s), 4 needed")
