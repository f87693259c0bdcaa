"""A probabilistic forecaster: window of the past -> recurrent encoder -> the next H values.

Two decoders over the same encoder:

- ``direct`` (multi-horizon, as in MQ-RNN, Wen et al. 2017, sec. 3): the final hidden state
  predicts all H steps at once, ``out_BHK = W h_L + b``. Future covariates are not needed.
- ``autoregressive`` (DeepAR, Salinas et al. 2020, sec. 3): every step predicts the next
  value, ``out_BTK = W h_t + b``; training scores every one-step prediction of the window;
  forecasting feeds samples (Gaussian) or predictions (point) back in, and reads the
  intervals from ``samples`` sample paths. No covariates (their future is unknown).

Output per step (K values): ``gaussian`` (μ, σ), σ = softplus(·) + 1e-4, trained by the
negative log-likelihood; ``quantile`` (one value per level, trained by the pinball loss,
sorted at prediction so that levels never cross); ``point`` (trained by squared error).

Scaling lives in the model, so a saved model takes raw values: an optional log transform
of the target, per-feature standardisation ``z = (x - mean) / std`` fitted on the training
part only (``fit_scaling``), and per-window location ``loc`` (``window_norm``: the window's
last value or mean of the scaled target), subtracted from the inputs and added back to the
outputs, so the network sees shapes rather than levels (trends move the level out of the
range seen in training). The model's outputs and its training targets are in the scaled
space z; ``forecast`` maps quantiles back to data values (the transforms are monotone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import rnnkit

_DROPINS = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}
_NORMAL_80 = 1.2815515655446004  # Φ⁻¹(0.9)


@dataclass(frozen=True, kw_only=True)
class ForecasterConfig:
    horizon: int  # H, steps predicted from one window
    context: int = 24  # L, past steps the model reads
    input_size: int = 1  # the target plus covariates
    cell: Literal["lstm", "gru", "rnn"] = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    decoder: Literal["direct", "autoregressive"] = "direct"
    output: Literal["gaussian", "quantile", "point"] = "gaussian"
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)  # output="quantile"; must include 0.5
    log_transform: bool = False  # forecast log(y): for positive series whose swings grow with the level
    difference: int = 0  # k > 0: model y_t - y_(t-k) (k = the season: seasonal differencing)
    window_norm: Literal["none", "last", "mean"] = "mean"

    def __post_init__(self):
        for name in ("horizon", "context", "input_size", "hidden_size", "num_layers", "difference"):
            value = getattr(self, name)
            low = 0 if name == "difference" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if self.difference and (self.decoder != "direct" or self.horizon > self.difference):
            raise ValueError(f"difference={self.difference} needs decoder='direct' and horizon <= difference "
                             f"(each forecast adds a known value k steps back), got "
                             f"decoder={self.decoder!r}, "
                             f"horizon={self.horizon}")
        if self.cell not in _DROPINS:
            raise ValueError(f"cell must be one of {sorted(_DROPINS)}, got {self.cell!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.decoder not in ("direct", "autoregressive"):
            raise ValueError(f"decoder must be 'direct' or 'autoregressive', got {self.decoder!r}")
        if self.output not in ("gaussian", "quantile", "point"):
            raise ValueError(f"output must be one of ['gaussian', 'point', 'quantile'], got {self.output!r}")
        if self.window_norm not in ("none", "last", "mean"):
            raise ValueError(f"window_norm must be one of ['last', 'mean', 'none'], got {self.window_norm!r}")
        q = self.quantiles
        if not q or any(not 0 < v < 1 for v in q) or list(q) != sorted(set(q)) or 0.5 not in q:
            raise ValueError(f"quantiles must be increasing levels in (0, 1) including 0.5, got {q!r}")
        if self.decoder == "autoregressive" and self.output == "quantile":
            raise ValueError("decoder='autoregressive' needs output 'gaussian' or 'point' (one-step "
                             "quantiles do not compound into multi-step intervals), got 'quantile'")
        if self.decoder == "autoregressive" and self.input_size != 1:
            raise ValueError(f"decoder='autoregressive' takes no covariates (their future values are "
                             f"unknown): input_size must be 1, got {self.input_size}")

    @property
    def window(self) -> int:
        """Steps of raw input one forecast reads: the context plus the differencing lag."""
        return self.context + self.difference

    @property
    def outputs_per_step(self) -> int:
        return {"gaussian": 2, "quantile": len(self.quantiles), "point": 1}[self.output]


class Forecaster(nn.Module):
    """Shapes: x_BTF (B, T, F) raw values, target in feature 0, T >= context (the last
    ``context`` steps are read). Direct: -> out_BHK; autoregressive: -> out_BTK, the
    prediction for step t+1 at every step t (training), in the scaled space z."""

    def __init__(self, config: ForecasterConfig):
        super().__init__()
        self.config = config
        F_ = config.input_size
        self.register_buffer("mean_F", torch.zeros(F_))  # identity until fit_scaling
        self.register_buffer("std_F", torch.ones(F_))
        self.register_buffer("interval_scale_H", torch.ones(config.horizon))  # see calibrate_intervals
        self.encoder = _DROPINS[config.cell](F_, config.hidden_size, config.num_layers, batch_first=True,
                                             dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        steps = config.horizon if config.decoder == "direct" else 1
        self.head = nn.Linear(config.hidden_size, steps * config.outputs_per_step)

    @classmethod
    def from_config(cls, config: ForecasterConfig) -> Forecaster:
        return cls(config)

    # -- scaling -----------------------------------------------------------------------------

    @torch.no_grad()
    def fit_scaling(self, values_NF: Tensor) -> None:
        """Per-feature mean and std from the training part of the series (after the log
        transform and differencing of the target); a constant feature is only centred."""
        z_NF = self._features(values_NF.to(self.mean_F.dtype)[None])[0]
        std_F = z_NF.std(dim=0, correction=0)
        self.mean_F.copy_(z_NF.mean(dim=0))
        self.std_F.copy_(torch.where(std_F < 1e-8, torch.ones_like(std_F), std_F))

    def scale_target(self, y_BH: Tensor, x_BTF: Tensor) -> Tensor:
        """Raw target values after the window ``x_BTF`` -> the scaled space the outputs live in."""
        y_BH = self._log(y_BH.to(self.mean_F.dtype))
        return (y_BH - self._base(x_BTF, y_BH.shape[1]) - self.mean_F[0]) / self.std_F[0]

    def unscale_target(self, z_BH: Tensor, x_BTF: Tensor) -> Tensor:
        """The inverse of ``scale_target``; z_BH may have a trailing quantile axis."""
        base = self._base(x_BTF, z_BH.shape[1])
        y = z_BH * self.std_F[0] + self.mean_F[0] + (base[..., None] if z_BH.dim() == 3 else base)
        return torch.exp(y) if self.config.log_transform else y

    def _log(self, y: Tensor) -> Tensor:
        if not self.config.log_transform:
            return y
        if not torch.compiler.is_exporting() and bool((y <= 0).any()):  # an exported file gives NaN
            raise ValueError("log_transform needs a positive target, got values <= 0")
        return torch.log(y)

    def _base(self, x_BTF: Tensor, H: int) -> Tensor:
        """What differencing takes off each future step: the (log) target k steps earlier."""
        k = self.config.difference
        if not k:
            return x_BTF.new_zeros(x_BTF.shape[0], H, dtype=self.mean_F.dtype)
        return self._log(x_BTF[:, -k:, 0].to(self.mean_F.dtype))[:, :H]

    def _features(self, x_BTF: Tensor) -> Tensor:
        """(Log) target, differenced at lag k (k steps shorter), then the covariates."""
        k = self.config.difference
        y_BT = self._log(x_BTF[..., 0])
        if k:
            y_BT = y_BT[:, k:] - y_BT[:, :-k]
        return torch.cat([y_BT[..., None], x_BTF[:, k:, 1:]], dim=-1)

    def _scaled_inputs(self, x_BTF: Tensor) -> tuple[Tensor, Tensor]:
        """(z_BTF with the window location removed from the target, loc_B1)."""
        z_BTF = (self._features(x_BTF.to(self.mean_F.dtype)) - self.mean_F) / self.std_F
        seen_BL = z_BTF[:, : self.config.context, 0]  # the conditioning range only
        loc_B1 = {"none": lambda: torch.zeros_like(seen_BL[:, :1]), "last": lambda: seen_BL[:, -1:],
                  "mean": lambda: seen_BL.mean(dim=1, keepdim=True)}[self.config.window_norm]()
        target_BT1 = z_BTF[..., :1] - loc_B1[:, :, None]
        return torch.cat([target_BT1, z_BTF[..., 1:]], dim=-1), loc_B1

    # -- network -----------------------------------------------------------------------------

    def forward(self, x_BTF: Tensor) -> Tensor:
        self._check_input(x_BTF)
        cfg = self.config
        if cfg.decoder == "direct":
            x_BTF = x_BTF[:, -cfg.window:]
        z_BTF, loc_B1 = self._scaled_inputs(x_BTF)
        out_BTH, _ = self.encoder(z_BTF)
        if cfg.decoder == "direct":
            raw_BHK = self.head(self.drop(out_BTH[:, -1])).view(-1, cfg.horizon, cfg.outputs_per_step)
        else:
            raw_BHK = self.head(self.drop(out_BTH))
        return self._outputs(raw_BHK, loc_B1)

    def _outputs(self, raw_BHK: Tensor, loc_B1: Tensor) -> Tensor:
        """Put the window location back on the location outputs; σ > 0."""
        if self.config.output == "gaussian":
            mu_BH, sigma_BH = raw_BHK.unbind(-1)
            return torch.stack([mu_BH + loc_B1, F.softplus(sigma_BH) + 1e-4], dim=-1)
        return raw_BHK + loc_B1[:, :, None]

    def loss(self, out_BHK: Tensor, z_BH: Tensor) -> Tensor:
        """The training loss in the scaled space: Gaussian NLL, mean pinball loss over the
        levels, or squared error."""
        if out_BHK.shape[:-1] != z_BH.shape:
            raise ValueError(f"targets must have shape {tuple(out_BHK.shape[:-1])}, got {tuple(z_BH.shape)}")
        if self.config.output == "gaussian":
            mu, sigma = out_BHK.unbind(-1)
            return (torch.log(sigma) + 0.5 * ((z_BH - mu) / sigma) ** 2 + 0.5 * math.log(2 * math.pi)).mean()
        if self.config.output == "quantile":
            q_K = out_BHK.new_tensor(self.config.quantiles)
            error_BHK = z_BH[..., None] - out_BHK
            return torch.maximum(q_K * error_BHK, (q_K - 1) * error_BHK).mean()
        return ((out_BHK[..., 0] - z_BH) ** 2).mean()

    # -- forecasting -------------------------------------------------------------------------

    @torch.no_grad()
    def forecast(self, x_BTF: Tensor, *, quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
                 horizon: int | None = None, samples: int = 200,
                 generator: torch.Generator | None = None) -> Tensor:
        """Quantiles of the next ``horizon`` values in data units, from the last ``context``
        steps of each row of ``x_BTF``.

        Arguments:
            quantiles: levels to return; ``point`` output gives only (0.5,), ``quantile``
                output only its trained levels.
            horizon: steps ahead (default ``config.horizon``); the direct decoder cannot go
                further than it was trained for.
            samples: sample paths for the autoregressive Gaussian decoder.

        Returns:
            q_BHQ: (B, horizon, len(quantiles)).
        """
        cfg = self.config
        horizon = cfg.horizon if horizon is None else horizon
        self._check_forecast(quantiles, horizon, samples)
        x_BLF = x_BTF[:, -cfg.window:]
        z_BHQ = self._scaled_quantiles(x_BLF, quantiles, horizon, samples, generator)
        return self.unscale_target(z_BHQ, x_BLF)

    @torch.no_grad()
    def calibrate_intervals(self, x_NTF: Tensor, y_NH: Tensor, *, coverage: float = 0.8,
                            samples: int = 200, generator: torch.Generator | None = None) -> Tensor:
        """Widen or narrow the intervals so that the central ``coverage`` interval holds that
        share of held-out truth, per horizon step (split conformal prediction, Papadopoulos
        et al. 2002; the form of Romano et al. 2019, sec. 3, measured from the median).

        Sets ``interval_scale_H`` to ``conformal_scale(self.interval_factors(...))``: use
        windows the weights were not fitted on (the validation part); with fewer than
        coverage / (1 - coverage) of them (4 for 80%) the rank is out of reach and it refuses.

        Returns:
            interval_scale_H (the factors set).
        """
        needed_NH = self.interval_factors(x_NTF, y_NH, coverage=coverage, samples=samples,
                                          generator=generator)
        self.interval_scale_H.copy_(conformal_scale(needed_NH, coverage))
        return self.interval_scale_H.clone()

    @torch.no_grad()
    def interval_factors(self, x_NTF: Tensor, y_NH: Tensor, *, coverage: float = 0.8, samples: int = 200,
                         generator: torch.Generator | None = None) -> Tensor:
        """The conformity score of each window and step: the factor by which the model's own
        central ``coverage`` interval (``interval_scale_H`` ignored) must be stretched around
        the median to reach the truth, c = (median - y) / (median - q_low) below the median,
        (y - median) / (q_high - median) above it, in the scaled space (0 at the median).

        Returns:
            needed_NH.
        """
        if self.config.output == "point":
            raise ValueError("output='point' has no intervals to calibrate")
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be in (0, 1), got {coverage!r}")
        H = self.config.horizon
        if y_NH.shape != (x_NTF.shape[0], H):
            raise ValueError(f"y must have shape ({x_NTF.shape[0]}, {H}), got {tuple(y_NH.shape)}")
        x_NLF = x_NTF[:, -self.config.window:]
        # rounded: (1 - 0.8) / 2 is 0.09999999999999998, which is not the trained level 0.1
        low, high = round((1 - coverage) / 2, 12), round((1 + coverage) / 2, 12)
        if self.config.output == "quantile" and not {low, high} <= set(self.config.quantiles):
            raise ValueError(f"calibrating {coverage:.0%} intervals needs the levels {low:g} and {high:g} "
                             f"among the trained quantiles {self.config.quantiles}")
        kept_H = self.interval_scale_H.clone()
        self.interval_scale_H.fill_(1.0)
        try:
            z_NHQ = self._scaled_quantiles(x_NLF, (low, 0.5, high), H, samples, generator)
        finally:
            self.interval_scale_H.copy_(kept_H)
        low_NH, median_NH, high_NH = z_NHQ.unbind(-1)
        z_NH = self.scale_target(y_NH, x_NLF)
        below_NH = (median_NH - z_NH) / (median_NH - low_NH).clamp_min(1e-12)
        above_NH = (z_NH - median_NH) / (high_NH - median_NH).clamp_min(1e-12)
        return torch.where(z_NH < median_NH, below_NH, above_NH)

    def _scaled_quantiles(self, x_BLF: Tensor, quantiles: tuple[float, ...], horizon: int, samples: int,
                          generator: torch.Generator | None) -> Tensor:
        """Quantiles in the scaled space, their spread around the median scaled per step."""
        levels = tuple(sorted(set(quantiles) | {0.5}))
        was_training = self.training
        self.eval()
        try:
            if self.config.decoder == "autoregressive":
                z_BHQ = self._rollout(x_BLF, horizon, levels, samples, generator)
            else:
                z_BHQ = self._direct_quantiles(self(x_BLF)[:, :horizon], levels)
        finally:
            self.train(was_training)
        median_BH1 = z_BHQ[..., levels.index(0.5), None]
        steps = torch.arange(horizon).clamp_max(self.config.horizon - 1)  # beyond H: the last factor
        scale_1H1 = self.interval_scale_H[steps][None, :, None].to(z_BHQ.dtype)
        z_BHQ = median_BH1 + scale_1H1 * (z_BHQ - median_BH1)
        return z_BHQ[..., [levels.index(q) for q in quantiles]]

    def _direct_quantiles(self, out_BHK: Tensor, quantiles: tuple[float, ...]) -> Tensor:
        if self.config.output == "gaussian":
            mu_BH, sigma_BH = out_BHK.unbind(-1)
            # Φ⁻¹ in Python: exact in float64, and a constant in an exported graph (ONNX has no erfinv)
            normal_Q = out_BHK.new_tensor([NormalDist().inv_cdf(q) for q in quantiles])
            return mu_BH[..., None] + sigma_BH[..., None] * normal_Q
        if self.config.output == "point":
            return out_BHK
        levels = [self.config.quantiles.index(q) for q in quantiles]
        return out_BHK.sort(dim=-1).values[..., levels]  # sorted: quantiles never cross

    def _rollout(self, x_BLF: Tensor, horizon: int, quantiles: tuple[float, ...], samples: int,
                 generator: torch.Generator | None) -> Tensor:
        """Sample paths (Gaussian) or the one point path, each step fed back as the next input."""
        paths = samples if self.config.output == "gaussian" else 1
        B = x_BLF.shape[0]
        z_BLF, loc_B1 = self._scaled_inputs(x_BLF)
        out_BLH, state = self.encoder(z_BLF.repeat_interleave(paths, dim=0))
        loc_P1 = loc_B1.repeat_interleave(paths, dim=0)
        h_PH, steps = out_BLH[:, -1], []
        for _ in range(horizon):
            out_P1K = self._outputs(self.head(h_PH)[:, None], loc_P1)
            if self.config.output == "gaussian":
                mu_P, sigma_P = out_P1K[:, 0].unbind(-1)
                # drawn where the generator is (the CPU, for repeatable paths), then moved
                noise_P = torch.randn(mu_P.shape, generator=generator, dtype=mu_P.dtype,
                                      device=generator.device if generator is not None else mu_P.device)
                z_P = mu_P + sigma_P * noise_P.to(mu_P.device)
            else:
                z_P = out_P1K[:, 0, 0]
            steps.append(z_P)
            out_P1H, state = self.encoder((z_P[:, None] - loc_P1)[:, :, None], state)
            h_PH = out_P1H[:, -1]
        z_BSH = torch.stack(steps, dim=-1).view(B, paths, horizon)
        if paths == 1:
            return z_BSH.transpose(1, 2)
        return torch.quantile(z_BSH, z_BSH.new_tensor(quantiles), dim=1).permute(1, 2, 0)

    # -- checks ------------------------------------------------------------------------------

    def _check_input(self, x_BTF: Tensor) -> None:
        F_, L = self.config.input_size, self.config.window
        if x_BTF.dim() != 3 or not x_BTF.is_floating_point() or x_BTF.shape[-1] != F_ or x_BTF.shape[1] < L:
            raise ValueError(f"x must be (B, T >= {L}, {F_}) float, got shape {tuple(x_BTF.shape)} "
                             f"dtype {x_BTF.dtype}")

    def _check_forecast(self, quantiles: tuple[float, ...], horizon: int, samples: int) -> None:
        cfg = self.config
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be an int >= 1, got {horizon!r}")
        if cfg.decoder == "direct" and horizon > cfg.horizon:
            raise ValueError(f"horizon must be <= {cfg.horizon} (the direct decoder predicts that many "
                             f"steps), got {horizon}")
        if not quantiles or any(not 0 < q < 1 for q in quantiles):
            raise ValueError(f"quantiles must be levels in (0, 1), got {quantiles!r}")
        if cfg.output == "point" and tuple(quantiles) != (0.5,):
            raise ValueError(f"output='point' gives only the median: quantiles must be (0.5,), "
                             f"got {quantiles!r}")
        if cfg.output == "quantile" and not set(quantiles) <= set(cfg.quantiles):
            raise ValueError(f"quantiles must be among the trained levels {cfg.quantiles}, got {quantiles!r}")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
            raise ValueError(f"samples must be an int >= 2, got {samples!r}")


def conformal_scale(needed_NH: Tensor, coverage: float = 0.8) -> Tensor:
    """Per step, the ⌈(n + 1)·coverage⌉-th smallest of n conformity scores
    (``Forecaster.interval_factors``): the finite-sample split-conformal quantile, so that a
    new exchangeable window falls inside with probability >= coverage."""
    n = needed_NH.shape[0]
    rank = math.ceil((n + 1) * coverage - 1e-9)
    if rank > n:
        least = next(m for m in range(1, n + 10_000) if math.ceil((m + 1) * coverage - 1e-9) <= m)
        raise ValueError(f"calibrating {coverage:.0%} intervals needs at least {least} windows, got {n}")
    return needed_NH.sort(dim=0).values[rank - 1]
