"""Forecaster: scaling round trips, losses against torch.distributions, the training path
against the forecasting path, and the seasonal-naive identity of a zero network."""

import math

import pytest
import torch

from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.tasks.forecast import seasonal_naive


def positive_series(n, features=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n, dtype=torch.float64)
    y = 100 + t + 20 * torch.sin(2 * math.pi * t / 12) + 5 * torch.rand(n, generator=g)
    covariates = torch.randn(n, features - 1, generator=g)
    return torch.cat([y[:, None], covariates], dim=1)


@pytest.mark.parametrize("log, k", [(False, 0), (True, 0), (True, 12), (False, 6)])
def test_scale_target_round_trips(log, k):
    model = Forecaster(ForecasterConfig(horizon=6, context=10, input_size=2, log_transform=log, difference=k))
    values_NF = positive_series(80, features=2)
    model.fit_scaling(values_NF[:60])
    x_BTF = torch.stack([values_NF[o - model.config.window: o] for o in (30, 40)])
    y_BH = torch.stack([values_NF[o: o + 6, 0] for o in (30, 40)])
    z_BH = model.scale_target(y_BH, x_BTF)
    torch.testing.assert_close(model.unscale_target(z_BH, x_BTF), y_BH)
    torch.testing.assert_close(model.unscale_target(z_BH[..., None], x_BTF)[..., 0], y_BH)


def test_scaling_is_fitted_on_the_transformed_differenced_target():
    model = Forecaster(ForecasterConfig(horizon=2, context=4, log_transform=True, difference=3))
    values_NF = positive_series(40)
    model.fit_scaling(values_NF)
    d_N = values_NF[3:, 0].log() - values_NF[:-3, 0].log()
    torch.testing.assert_close(model.mean_F[0], d_N.mean())
    torch.testing.assert_close(model.std_F[0], d_N.std(correction=0))


def test_gaussian_loss_is_the_normal_nll():
    model = Forecaster(ForecasterConfig(horizon=3))
    out_BHK = torch.stack([torch.randn(4, 3), torch.rand(4, 3) + 0.1], dim=-1)
    z_BH = torch.randn(4, 3)
    expected = -torch.distributions.Normal(out_BHK[..., 0], out_BHK[..., 1]).log_prob(z_BH).mean()
    torch.testing.assert_close(model.loss(out_BHK, z_BH), expected)


def test_pinball_loss_golden_value():
    # one step, levels 0.1/0.5/0.9 at 0, 1, 2; truth 1.5: errors 1.5, 0.5, -0.5
    # pinball = [0.1*1.5, 0.5*0.5, (0.9-1)*(-0.5)] = [0.15, 0.25, 0.05], mean 0.15
    model = Forecaster(ForecasterConfig(horizon=1, output="quantile"))
    loss = model.loss(torch.tensor([[[0.0, 1.0, 2.0]]]), torch.tensor([[1.5]]))
    torch.testing.assert_close(loss, torch.tensor(0.15))


def test_loss_refuses_misshapen_targets():
    model = Forecaster(ForecasterConfig(horizon=3))
    with pytest.raises(ValueError, match=r"targets must have shape \(4, 3\)"):
        model.loss(torch.randn(4, 3, 2), torch.randn(4, 2))


def test_direct_gaussian_quantiles_are_mu_plus_z_sigma():
    model = Forecaster(ForecasterConfig(horizon=4, context=12, log_transform=True))
    values_NF = positive_series(40)
    model.fit_scaling(values_NF)
    x_1TF = values_NF[None, :12]
    mu_BH, sigma_BH = model.eval()(x_1TF).unbind(-1)
    q_BHQ = model.forecast(x_1TF, quantiles=(0.1, 0.5, 0.9))
    z = 1.2815515655446004
    for j, shift in enumerate((-z, 0.0, z)):
        torch.testing.assert_close(q_BHQ[..., j], model.unscale_target(mu_BH + shift * sigma_BH, x_1TF))


def test_zero_network_with_seasonal_differencing_is_seasonal_naive():
    """With the output equal to the scaled-space zero difference, forecasts are y_{t-m}."""
    model = Forecaster(ForecasterConfig(horizon=12, context=6, difference=12, output="point",
                                        window_norm="none"))
    values_NF = positive_series(60)
    model.fit_scaling(values_NF)
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.constant_(model.head.bias, float(-model.mean_F[0] / model.std_F[0]))
    q_1H1 = model.forecast(values_NF[None, :40], quantiles=(0.5,))
    naive_H = torch.as_tensor(seasonal_naive(values_NF[:40, 0].numpy(), 12, 12))
    torch.testing.assert_close(q_1H1[0, :, 0], naive_H)


def test_autoregressive_forecast_follows_the_training_path():
    """Point rollout step 1 is the teacher-forced prediction after the context; feeding that
    prediction back in as data gives step 2."""
    model = Forecaster(ForecasterConfig(horizon=3, context=8, decoder="autoregressive", output="point",
                                        cell="gru", hidden_size=6)).eval()
    values_NF = positive_series(30)
    model.fit_scaling(values_NF)
    x_1LF = values_NF[None, :8]
    q_1H1 = model.forecast(x_1LF, quantiles=(0.5,))
    first = model.unscale_target(model(x_1LF)[:, -1:, 0], x_1LF)
    torch.testing.assert_close(q_1H1[:, :1, 0], first)
    extended = torch.cat([x_1LF, first[..., None]], dim=1)
    second = model.unscale_target(model(extended)[:, -1:, 0], x_1LF)
    torch.testing.assert_close(q_1H1[:, 1:2, 0], second)


def test_autoregressive_gaussian_samples_are_seeded_and_ordered():
    model = Forecaster(ForecasterConfig(horizon=5, context=8, decoder="autoregressive", hidden_size=6))
    values_NF = positive_series(30)
    model.fit_scaling(values_NF)
    run = lambda: model.forecast(values_NF[None, :8], horizon=7, samples=50,
                                 generator=torch.Generator().manual_seed(3))
    q_1HQ = run()
    assert q_1HQ.shape == (1, 7, 3)
    torch.testing.assert_close(q_1HQ, run())
    assert bool((q_1HQ[..., 0] <= q_1HQ[..., 1]).all() and (q_1HQ[..., 1] <= q_1HQ[..., 2]).all())


def test_quantile_output_never_crosses():
    model = Forecaster(ForecasterConfig(horizon=4, context=6, output="quantile", quantiles=(0.1, 0.5, 0.9)))
    with torch.no_grad():
        model.head.bias.copy_(torch.randn(12) * 3)  # crossing levels before sorting
    q_1HQ = model.forecast(positive_series(20)[None, :6])
    assert bool((q_1HQ.diff(dim=-1) >= 0).all())


@pytest.mark.parametrize("kwargs, message", [
    (dict(horizon=0), "horizon must be an int >= 1"),
    (dict(horizon=2, quantiles=(0.1, 0.9)), "including 0.5"),
    (dict(horizon=2, quantiles=(0.9, 0.5)), "increasing"),
    (dict(horizon=2, decoder="autoregressive", output="quantile"), "needs output 'gaussian' or 'point'"),
    (dict(horizon=2, decoder="autoregressive", input_size=2), "takes no covariates"),
    (dict(horizon=13, difference=12), "horizon <= difference"),
    (dict(horizon=2, window_norm="median"), "window_norm must be"),
    (dict(horizon=2, dropout=1.0), "dropout must be in"),
])
def test_config_errors_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ForecasterConfig(**kwargs)


def test_forecast_errors():
    model = Forecaster(ForecasterConfig(horizon=4, context=6))
    x = positive_series(10)[None]
    with pytest.raises(ValueError, match=r"horizon must be <= 4"):
        model.forecast(x, horizon=5)
    with pytest.raises(ValueError, match=r"x must be \(B, T >= 6, 1\)"):
        model.forecast(x[:, :5])
    with pytest.raises(ValueError, match="gives only the median"):
        Forecaster(ForecasterConfig(horizon=4, context=6, output="point")).forecast(x)
    with pytest.raises(ValueError, match="positive target"):
        Forecaster(ForecasterConfig(horizon=4, context=6, log_transform=True)).forecast(-x)


@pytest.mark.parametrize("output", ["gaussian", "quantile"])
def test_calibrated_intervals_cover_the_calibration_windows(output):
    """Split conformal: per step, ⌈(n + 1)·0.8⌉ of the n calibration points fall inside."""
    model = Forecaster(ForecasterConfig(horizon=3, context=12, hidden_size=5, output=output))
    values_NF = positive_series(120)
    model.fit_scaling(values_NF)
    origins = range(12, 117)
    x_NLF = torch.stack([values_NF[o - 12: o] for o in origins])
    y_NH = torch.stack([values_NF[o: o + 3, 0] for o in origins])
    before_NHQ = model.forecast(x_NLF)
    scale_H = model.calibrate_intervals(x_NLF, y_NH)
    after_NHQ = model.forecast(x_NLF)
    inside_H = ((after_NHQ[..., 0] <= y_NH) & (y_NH <= after_NHQ[..., 2])).sum(dim=0)
    assert inside_H.tolist() == [math.ceil(106 * 0.8)] * 3
    torch.testing.assert_close(after_NHQ[..., 1], before_NHQ[..., 1])  # the median stays
    torch.testing.assert_close(model.interval_scale_H, scale_H)
    # each level moves away from the median by the step's factor (in the scaled space)
    z_before = model.scale_target(before_NHQ[..., 2], x_NLF) - model.scale_target(before_NHQ[..., 1], x_NLF)
    z_after = model.scale_target(after_NHQ[..., 2], x_NLF) - model.scale_target(after_NHQ[..., 1], x_NLF)
    torch.testing.assert_close(z_after, z_before * scale_H)


def test_calibration_errors():
    model = Forecaster(ForecasterConfig(horizon=3, context=4))
    x = positive_series(20)[None, :4]
    with pytest.raises(ValueError, match=r"y must have shape \(1, 3\)"):
        model.calibrate_intervals(x, torch.ones(1, 2))
    with pytest.raises(ValueError, match="coverage must be in"):
        model.calibrate_intervals(x, torch.ones(1, 3), coverage=1.0)
    with pytest.raises(ValueError, match="no intervals"):
        point = Forecaster(ForecasterConfig(horizon=3, context=4, output="point"))
        point.calibrate_intervals(x, torch.ones(1, 3))
    wide = Forecaster(ForecasterConfig(horizon=3, context=4, output="quantile", quantiles=(0.05, 0.5, 0.95)))
    with pytest.raises(ValueError, match=r"needs the levels 0.1 and 0.9 among the trained quantiles"):
        wide.calibrate_intervals(x, torch.ones(1, 3))


def test_calibration_needs_enough_windows_for_its_rank():
    model = Forecaster(ForecasterConfig(horizon=2, context=4))
    values_NF = positive_series(20)
    x_NLF = torch.stack([values_NF[o - 4: o] for o in (4, 5, 6)])
    y_NH = torch.stack([values_NF[o: o + 2, 0] for o in (4, 5, 6)])
    with pytest.raises(ValueError, match="needs at least 4 windows, got 3"):
        model.calibrate_intervals(x_NLF, y_NH)
