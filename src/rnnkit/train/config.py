"""``TrainConfig``: everything the one training loop reads, as a frozen, checked dataclass."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
Schedule = Literal["constant", "cosine", "linear", "plateau"]
TeacherForcing = Literal["constant", "linear", "exponential", "inverse_sigmoid"]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train. Budgets: training stops at the first of ``epochs``, ``max_steps`` and
    ``max_minutes`` (a time budget makes a run unrepeatable; steps and epochs do not).

    A step is one optimizer update: with truncated BPTT (``bptt=k``) each chunk of k time
    steps is one step, as in classic language-model training.
    """

    # -- budget --
    epochs: int = 1
    max_steps: int | None = None
    max_minutes: float | None = None
    # -- truncated BPTT: None is full BPTT over each batch's whole time axis --
    bptt: int | None = None
    # -- optimizer and learning rate --
    optimizer: Optimizer = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd and rmsprop
    betas: tuple[float, float] = (0.9, 0.999)  # adam and adamw
    schedule: Schedule = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0  # cosine/linear decay to lr * min_lr_ratio at the last step
    plateau_factor: float = 0.5  # plateau: lr *= factor after `plateau_patience` evaluations
    plateau_patience: int = 2  # without improvement of `monitor`
    # -- gradients --
    clip_norm: float | None = None  # clip_grad_norm_ to this total 2-norm
    clip_value: float | None = None  # clip_grad_value_ to [-v, v], after clip_norm
    # -- teacher forcing for autoregressive models (Bengio et al. 2015, scheduled sampling) --
    teacher_forcing: TeacherForcing = "constant"
    teacher_forcing_start: float = 1.0  # probability of feeding the ground truth
    teacher_forcing_end: float = 1.0
    teacher_forcing_steps: int = 1000  # linear: steps to reach `end`; others: the decay scale
    # -- evaluation and early stopping --
    eval_every: int | None = None  # steps between evaluations; None: at each epoch's end
    monitor: str = "val_loss"
    monitor_mode: Literal["min", "max"] = "min"
    patience: int | None = None  # evaluations without improvement before stopping
    # -- numerics and reproducibility --
    amp: Literal["off", "bf16", "fp16"] = "off"
    seed: int = 0
    device: str = "cpu"
    # -- bookkeeping --
    log_every: int = 10
    checkpoint_every: int | None = None  # steps; a checkpoint is also saved at the end
    progress: bool | None = None  # None: a tqdm bar when stderr is a terminal
    tensorboard: bool = False

    def __post_init__(self):
        for name in ("epochs", "log_every", "teacher_forcing_steps"):
            _check(name, getattr(self, name), "an int >= 1", lambda v: _int(v) and v >= 1)
        for name in ("max_steps", "bptt", "eval_every", "patience", "checkpoint_every"):
            _check(name, getattr(self, name), "None or an int >= 1",
                   lambda v: v is None or (_int(v) and v >= 1))
        for name in ("warmup_steps", "plateau_patience"):
            _check(name, getattr(self, name), "an int >= 0", lambda v: _int(v) and v >= 0)
        _check("lr", self.lr, "a finite number > 0", _positive)
        for name in ("max_minutes", "clip_norm", "clip_value"):
            _check(name, getattr(self, name), "None or a finite number > 0",
                   lambda v: v is None or _positive(v))
        for name in ("weight_decay", "momentum"):
            _check(name, getattr(self, name), "a finite number >= 0",
                   lambda v: _num(v) and math.isfinite(v) and v >= 0)
        for name in ("min_lr_ratio", "teacher_forcing_start", "teacher_forcing_end"):
            _check(name, getattr(self, name), "a number in [0, 1]", lambda v: _num(v) and 0 <= v <= 1)
        _check("plateau_factor", self.plateau_factor, "a number in (0, 1)",
               lambda v: _num(v) and 0 < v < 1)
        _check("betas", self.betas, "two numbers in [0, 1)",
               lambda v: len(v) == 2 and all(_num(b) and 0 <= b < 1 for b in v))
        _check("seed", self.seed, "an int >= 0", lambda v: _int(v) and v >= 0)
        _check("device", self.device, "a torch device name such as 'cpu', 'cuda' or 'cuda:1'", _device_name)
        for name, allowed in (("optimizer", Optimizer), ("schedule", Schedule),
                              ("teacher_forcing", TeacherForcing),
                              ("monitor_mode", Literal["min", "max"]),
                              ("amp", Literal["off", "bf16", "fp16"])):
            _check(name, getattr(self, name), f"one of {list(allowed.__args__)}",
                   allowed.__args__.__contains__)
        if not self.monitor:
            raise ValueError("monitor must name a metric such as 'val_loss', got ''")


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _positive(v: object) -> bool:
    return _num(v) and math.isfinite(v) and v > 0


def _device_name(v: object) -> bool:
    try:
        torch.device(v)
    except (RuntimeError, TypeError):
        return False
    return True


def _check(name: str, value: object, expected: str, ok) -> None:
    if not ok(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
