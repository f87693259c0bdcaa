"""Gradient clipping on an exploding Elman RNN (Pascanu, Mikolov & Bengio 2013, §3.2).

The recurrent matrix of a freshly initialised tanh Elman RNN is rescaled to spectral radius
ρ. With ρ > 1 the untrained net is in its chaotic regime, where the Jacobian products of
backpropagation through time grow with T - t (Sompolinsky et al. 1988 for random tanh
nets); with ρ < 1 they shrink. Three runs from the same initial weights, batches and
learning rate, plain SGD:

- ρ = ``spectral_radius``, no clipping;
- ρ = ``spectral_radius``, ``clip_grad_norm_(max_norm=clip)``;
- ρ = ``control_radius``, no clipping: the control showing that the learning rate alone is
  safe for a net whose gradients do not explode.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from rnnkit.diagnostics.experiment import (
    Log,
    build_net,
    check_positive,
    check_task,
    final_loss,
    mean_grad_norms,
    torch_threads,
    train,
)
from rnnkit.diagnostics.tasks import TASKS, check_ints


@dataclass(frozen=True, kw_only=True)
class ClippingConfig:
    """Settings of ``clipping_experiment``."""

    task: str = "adding"
    seq_len: int = 30
    hidden_size: int = 64
    batch_size: int = 32
    spectral_radius: float = 1.5
    control_radius: float = 0.9
    lr: float = 0.05
    steps: int = 1200
    clip: float = 1.0
    probe_batches: int = 4  # batches averaged for the ‖dL/dh_t‖ panel
    seed: int = 0

    def __post_init__(self):
        check_task(self.task, self.seq_len)
        check_ints(dict(hidden_size=self.hidden_size, batch_size=self.batch_size, steps=self.steps,
                        probe_batches=self.probe_batches), lowest=1)
        check_positive(dict(spectral_radius=self.spectral_radius,
                            control_radius=self.control_radius, lr=self.lr, clip=self.clip))


@dataclass(frozen=True, kw_only=True)
class ClippingRun:
    """One training run: per-step losses and pre-clip gradient norms, up to divergence."""

    label: str
    spectral_radius: float
    clip: float | None
    losses: list[float]
    grad_norms: list[float]
    diverged_at: int | None  # the step whose loss or gradient was no longer finite
    init_grad_norms: list[float]  # ‖dL/dh_t‖, t = 1..T, before training


@dataclass(frozen=True, kw_only=True)
class ClippingResult:
    config: ClippingConfig
    runs: list[ClippingRun]
    baseline: float

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        c = self.config
        lines = [f"{c.task} problem, T={c.seq_len}, H={c.hidden_size}, SGD lr={c.lr}, "
                 f"{c.steps} steps (input-blind baseline loss {self.baseline:.4f})"]
        for run in self.runs:
            g = run.init_grad_norms
            end = (f"diverged at step {run.diverged_at}" if run.diverged_at is not None
                   else f"final loss {final_loss(run.losses):.4f}")
            peak = max(run.grad_norms, default=math.nan)
            lines.append(f"  {run.label:22s} ||dL/dh_1||/||dL/dh_T|| {g[0] / g[-1]:9.2e}   "
                         f"max grad norm {peak:9.2e}   {end}")
        return "\n".join(lines)


def scale_spectral_radius_(weight: Tensor, radius: float) -> Tensor:
    """Rescale the square matrix ``weight`` in place so that max |eigenvalue| = ``radius``."""
    with torch.no_grad():
        current = torch.linalg.eigvals(weight).abs().max()
        return weight.mul_(radius / current.to(weight.dtype))


def clipping_experiment(config: ClippingConfig, *, threads: int | None = 1,
                        log: Log = None) -> ClippingResult:
    """Train the three runs described in the module docstring and measure each.

    Runs on ``threads`` torch threads (see ``torch_threads``); ``log`` gets progress lines.
    """
    with torch_threads(threads):
        return _clipping_experiment(config, log)


def _clipping_experiment(config: ClippingConfig, log: Log) -> ClippingResult:
    task = TASKS[config.task]
    probe_gen = torch.Generator().manual_seed(config.seed)
    batches = [task.sample(config.batch_size, config.seq_len, probe_gen, torch.float64)
               for _ in range(config.probe_batches)]
    plans = [(config.spectral_radius, None), (config.spectral_radius, config.clip),
             (config.control_radius, None)]
    runs = []
    for radius, clip in plans:
        label = f"ρ={radius:g}, " + ("no clipping" if clip is None else f"clip at {clip:g}")
        if log:
            log(f"training {label} for {config.steps} steps")
        net = build_net("rnn", task, config.hidden_size, seed=config.seed)
        scale_spectral_radius_(net.rnn.weight_hh_l0, radius)
        init_norms = mean_grad_norms(net, task, batches).tolist()
        optimizer = torch.optim.SGD(net.parameters(), lr=config.lr)
        losses, norms, diverged = train(
            net, task, optimizer, steps=config.steps, batch_size=config.batch_size,
            seq_len=config.seq_len, generator=torch.Generator().manual_seed(config.seed + 1),
            clip=clip)
        runs.append(ClippingRun(label=label, spectral_radius=radius, clip=clip, losses=losses,
                                grad_norms=norms, diverged_at=diverged, init_grad_norms=init_norms))
    return ClippingResult(config=config, runs=runs, baseline=task.baseline)
