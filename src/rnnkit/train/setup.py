"""What the loop is built from: the optimizer, the default losses, seeding, the model call."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.train.config import TrainConfig
from rnnkit.train.data import IGNORE, Batch

LossFn = Callable[[Any, Tensor], Tensor]


def seed_everything(seed: int) -> None:
    """Seed torch's global RNG (init, dropout) and Python's ``random``: with the same seed,
    data and thread count, a CPU run repeats bit for bit."""
    torch.manual_seed(seed)
    random.seed(seed)


def make_optimizer(model: nn.Module, cfg: TrainConfig, *, fused: bool = False) -> torch.optim.Optimizer:
    """The optimizer ``cfg`` names over the trainable parameters. ``fused``: Adam(W)'s fused
    kernel (much faster over large embeddings; it runs where the weights are, and its
    rounding differs slightly from the default)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"model ({type(model).__name__}) has no trainable parameters")
    kernel = {"fused": True} if fused else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **kernel)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **kernel)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def default_loss(out: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy for integer targets (logits on the last dim; -100 is ignored), mean
    squared error over the finite targets for float ones (NaN marks padding)."""
    if not targets.is_floating_point():
        if out.shape[:-1] != targets.shape:
            raise ValueError(f"outputs {tuple(out.shape)} and targets {tuple(targets.shape)} do not match: "
                             f"cross-entropy needs targets of shape {tuple(out.shape[:-1])}")
        try:
            return F.cross_entropy(_full(out).flatten(0, -2), targets.flatten(), ignore_index=IGNORE)
        except IndexError as err:  # raised on the CPU; CUDA reports it as a device-side assert
            raise ValueError(_bad_classes(targets, out.shape[-1])) from err
    if out.shape != targets.shape:
        raise ValueError(f"regression output and targets must have the same shape, got "
                         f"{tuple(out.shape)} and {tuple(targets.shape)}")
    keep = targets.isfinite()
    return F.mse_loss(_full(out[keep]), targets[keep].to(_full(out).dtype))


def _bad_classes(targets: Tensor, classes: int) -> str:
    bad = targets[(targets != IGNORE) & ((targets < 0) | (targets >= classes))]
    return (f"targets must be class indices in [0, {classes}) (the outputs' last dim) or {IGNORE} "
            f"(ignored), got {bad.numel()} outside, e.g. {bad[:5].tolist()}")


def _full(t: Tensor) -> Tensor:
    """Losses in at least float32: under autocast the outputs may be bfloat16/float16."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def call_model(model: nn.Module, batch: Batch, state: Any, extra: dict[str, Any]) -> tuple[Any, Any]:
    """The forward contract: ``model(inputs[, state][, lengths=...][, teacher_forcing=...])``
    returns ``(outputs, state)`` or just ``outputs`` (a model that carries no state).

    The state and lengths are passed only when there are some, so ``nn.LSTM``, rnnkit's
    models and plain feed-forward modules all fit.
    """
    args = (batch.inputs,) if state is None else (batch.inputs, state)
    kwargs = dict(extra)
    if batch.lengths_B is not None:
        kwargs["lengths"] = batch.lengths_B
    try:
        result = model(*args, **kwargs)
    except TypeError as err:
        if "teacher_forcing" in extra and "teacher_forcing" in str(err):
            raise TypeError(f"{type(model).__name__}.forward takes no teacher_forcing= argument; "
                            f"scheduled sampling (TrainConfig.teacher_forcing) needs a model that "
                            f"does") from err
        raise
    if isinstance(result, tuple) and len(result) == 2:
        return result
    return result, None


def clip_gradients(params: list[nn.Parameter], cfg: TrainConfig) -> Tensor:
    """Clip by norm, then by value; returns the total 2-norm measured before clipping."""
    norm = nn.utils.clip_grad_norm_(params, cfg.clip_norm if cfg.clip_norm is not None else float("inf"))
    if cfg.clip_value is not None:
        nn.utils.clip_grad_value_(params, cfg.clip_value)
    return norm


def autocast(cfg: TrainConfig) -> torch.autocast:
    """Mixed precision: bfloat16 (CPU or GPU) or float16 (GPU, with a gradient scaler)."""
    device_type = torch.device(cfg.device).type
    dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    return torch.autocast(device_type, dtype=dtype, enabled=cfg.amp != "off")
