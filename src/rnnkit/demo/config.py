"""The demo's one configuration: a frozen, keyword-only dataclass, checked once on creation.

``DemoConfig.from_overrides(["hidden_size=64", ...])`` applies nanoGPT-style ``--set``
overrides, each value parsed and type-checked against the field's annotation.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Everything ``run_demo`` needs. Defaults give a ~3 minute run on 2 CPU cores."""

    # budget: training stops at whichever comes first
    minutes: float = 2.5
    steps: int | None = None
    # data
    val_fraction: float = 0.1  # the last 10% of lines (Exodus 36-40) are held out
    # model: Embedding -> rnnkit.LSTM -> Linear
    embed_size: int = 64
    hidden_size: int = 256
    num_layers: int = 1
    # on the embedding and the LSTM output (and between layers). Off by default: on CPU its
    # masks cost ~30% of the steps, and in a 2.5 minute budget the steps are worth more.
    dropout: float = 0.0
    # optimisation: truncated BPTT over `batch_size` contiguous streams. On 2 CPU cores
    # throughput hardly depends on the batch, so small chunks buy more updates per minute.
    batch_size: int = 32
    bptt: int = 64
    lr: float = 3e-3
    lr_min_ratio: float = 0.1  # cosine decay to lr * lr_min_ratio at the end of the budget
    clip: float = 1.0
    # baseline, sampling, bookkeeping
    ngram_max_order: int = 6  # the issue-5 bar compares against orders 1-6
    prompt: str = "And God said"
    sample_chars: int = 300
    temperature: float = 0.8
    seed: int = 0
    threads: int | None = None  # None: every core this process may run on
    out: str = "runs/demo"

    def __post_init__(self):
        _positive(self, "minutes", "hidden_size", "embed_size", "num_layers", "batch_size",
                  "bptt", "lr", "clip", "temperature", "ngram_max_order")
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DemoConfig:
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown DemoConfig field(s) {unknown}; "
                             f"expected some of {[f.name for f in dataclasses.fields(cls)]}")
        return cls(**values)

    @classmethod
    def from_overrides(cls, overrides: Iterable[str], **values: Any) -> DemoConfig:
        """Build from keyword ``values``, then ``FIELD=VALUE`` strings on top of them."""
        hints = typing.get_type_hints(cls)
        for item in overrides:
            name, sep, raw = item.partition("=")
            if not sep or name not in hints:
                raise ValueError(f"override must be FIELD=VALUE with FIELD one of "
                                 f"{sorted(hints)}, got {item!r}")
            values[name] = _parse(name, raw, hints[name])
        return cls.from_dict(values)


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


def _parse(name: str, raw: str, hint: Any) -> Any:
    """Parse ``raw`` as ``hint`` (str, int, float, or one of those | None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if type(None) in options and raw.lower() in ("none", "null", ""):
        return None
    kind = next(t for t in options if t is not type(None))
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be {kind.__name__}, got {raw!r}") from None
