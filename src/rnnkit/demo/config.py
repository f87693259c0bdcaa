"""The demo's one configuration: a frozen, keyword-only dataclass, checked once on creation.

``rnnkit.config.load(DemoConfig, "demo.toml", ["hidden_size=64"])`` reads it from TOML with
``--set`` overrides, each value type-checked against the field's annotation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Everything ``run_demo`` needs. Defaults give a ~3 minute run on 2 CPU cores."""

    # budget: training stops at whichever comes first. A step budget makes the result the
    # same on a busy machine as on an idle one (a 2.5-minute budget gave 1.40-1.55 bpc with
    # the load): 4,500 steps take ~2.5 minutes on 2 idle cores and reach 1.394 bpc on any
    # load; the time limit only guards a much slower machine.
    minutes: float = 10.0
    steps: int | None = 4500
    # data
    val_fraction: float = 0.1  # the last 10% of lines (Exodus 36-40) are held out
    # model: Embedding -> rnnkit.LSTM -> Linear
    embed_size: int = 64
    hidden_size: int = 256
    num_layers: int = 1
    # locked dropout on the embedding and the LSTM output (and between layers). Its masks cost
    # ~25% of the steps on CPU, but without it the model overfits in ~25 epochs: measured on
    # 2 cores, 2.5 minutes, held-out 1.459 bpc at 0.0 and 1.427 at 0.15.
    dropout: float = 0.15
    # optimisation: truncated BPTT over `batch_size` contiguous streams. On 2 CPU cores
    # throughput hardly depends on the batch, so small chunks buy more updates per minute.
    batch_size: int = 32
    bptt: int = 64
    lr: float = 3e-3
    lr_min_ratio: float = 0.1  # cosine decay to lr * lr_min_ratio at the end of the budget
    clip: float = 1.0
    eval_every: int = 500  # steps between held-out losses in metrics.csv (about 1 s each)
    # baseline, sampling, bookkeeping
    # Kneser-Ney orders 1..n. The issue-5 bar named orders 1-6, but here longer ones keep
    # improving (a review of 2026-12-05: 7-gram 1.366, 12-gram 1.253, 16-gram 1.234, 24-gram
    # 1.231): the held-out chapters (Exodus 36-40) retell 25-31 nearly word for word, which
    # long n-grams copy. 16 costs about 25 s and 1.3 GB.
    ngram_max_order: int = 16
    prompt: str = "And God said"
    sample_chars: int = 300
    temperature: float = 0.8
    forecast_epochs: int = 200  # the airline forecaster after the LM: ~600 steps, seconds
    seed: int = 0
    threads: int | None = None  # None: every core this process may run on
    out: str = "runs/demo"

    def __post_init__(self):
        _positive(self, "minutes", "hidden_size", "embed_size", "num_layers", "batch_size",
                  "bptt", "lr", "clip", "temperature", "ngram_max_order", "eval_every", "forecast_epochs")
        _positive_or_none(self, "steps", "threads")
        if not math.isfinite(self.minutes):
            raise ValueError(f"minutes must be finite, got {self.minutes}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.lr_min_ratio <= 1.0:
            raise ValueError(f"lr_min_ratio must be in [0, 1], got {self.lr_min_ratio}")
        if self.sample_chars < 0:
            raise ValueError(f"sample_chars must be >= 0, got {self.sample_chars}")
        if not self.prompt:
            raise ValueError("prompt must be a non-empty string, got ''")
        if not self.out:
            raise ValueError("out must be a non-empty path, got ''")


def _positive(cfg: DemoConfig, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


def _positive_or_none(cfg: DemoConfig, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value is not None and (isinstance(value, bool) or not value > 0):
            raise ValueError(f"{name} must be > 0 or None, got {value!r}")
