"""Keras's optimizer names as torch optimizers, with Keras's default hyperparameters
(``epsilon=1e-7``; RMSprop's ``rho=0.9``; AdamW's ``weight_decay=0.004``; Adagrad's
``initial_accumulator_value=0.1``; Adadelta's ``rho=0.95``). Names are read as Keras reads
them, in any case: ``"adam"`` or ``"Adam"``."""

from __future__ import annotations

import torch
from torch import nn

KERAS_DEFAULTS: dict[str, tuple[type[torch.optim.Optimizer], dict]] = {
    "adam": (torch.optim.Adam, dict(lr=1e-3, eps=1e-7)),
    "adamw": (torch.optim.AdamW, dict(lr=1e-3, eps=1e-7, weight_decay=0.004)),
    "rmsprop": (torch.optim.RMSprop, dict(lr=1e-3, alpha=0.9, eps=1e-7)),
    "sgd": (torch.optim.SGD, dict(lr=0.01)),
    "nadam": (torch.optim.NAdam, dict(lr=1e-3, eps=1e-7)),
    "adamax": (torch.optim.Adamax, dict(lr=1e-3, eps=1e-7)),
    "adagrad": (torch.optim.Adagrad, dict(lr=1e-3, initial_accumulator_value=0.1, eps=1e-7)),
    "adadelta": (torch.optim.Adadelta, dict(lr=1e-3, rho=0.95, eps=1e-7)),
}


def defaults(name: str) -> tuple[type[torch.optim.Optimizer], dict]:
    """The torch class and Keras's defaults for an optimizer name, in any case."""
    return KERAS_DEFAULTS[name.lower()]


def check_optimizer(optimizer) -> None:
    """A name, a ``torch.optim.Optimizer`` subclass or an instance; raises otherwise."""
    if isinstance(optimizer, str):
        if optimizer.lower() not in KERAS_DEFAULTS:
            raise ValueError(f"optimizer must be one of {sorted(KERAS_DEFAULTS)}, a torch.optim."
                             f"Optimizer class or an instance, got {optimizer!r}")
    elif not (isinstance(optimizer, torch.optim.Optimizer)
              or (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer))):
        raise TypeError(f"optimizer must be a name, a torch.optim.Optimizer class or an instance, "
                        f"got {optimizer!r}")


def make_optimizer(optimizer, model: nn.Module) -> torch.optim.Optimizer:
    """The torch optimizer over ``model``'s trainable parameters (an instance is checked to
    hold only ``model``'s parameters and returned as is)."""
    check_optimizer(optimizer)
    params = [p for p in model.parameters() if p.requires_grad]
    if isinstance(optimizer, torch.optim.Optimizer):
        ours = {id(p) for p in model.parameters()}
        if any(id(p) not in ours for group in optimizer.param_groups for p in group["params"]):
            raise ValueError("optimizer must hold the model's parameters: build the model (give "
                             "the first layer input_shape) before making the optimizer from "
                             "model.parameters(), got one with other parameters")
        return optimizer
    if not params:
        raise ValueError("the model has no trainable parameters")
    if isinstance(optimizer, str):
        cls, kwargs = defaults(optimizer)
        return cls(params, **kwargs)
    return optimizer(params)


def add_parameters(optimizer: torch.optim.Optimizer, module: nn.Module) -> None:
    """Give ``optimizer`` the trainable parameters of ``module`` (a layer added after ``fit``)
    that it lacks, as a new group with the first group's hyperparameters (compile's). Their
    state starts empty and the others' is kept, as tf.keras's optimizers made slots for new
    weights on their first update; Keras 3 instead refuses weights it was not built with."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    new = [p for p in module.parameters() if p.requires_grad and id(p) not in held]
    if new:
        hyper = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
        optimizer.add_param_group({**hyper, "params": new})
