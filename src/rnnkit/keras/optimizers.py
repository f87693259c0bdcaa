"""Keras's optimizers as torch optimizers: ``Adam``, ``AdamW``, ``SGD``, ``RMSprop``, ``Nadam``,
``Adamax``, ``Adagrad`` and ``Adadelta``, with Keras 3's arguments and defaults
(keras/src/optimizers/*.py), also by name in ``compile`` (``"adam"`` or ``"Adam"``).

Each class is its torch optimizer (an ``Adam`` is a ``torch.optim.Adam``), made with one
empty parameter group that holds its hyperparameters, so torch's API (``state_dict``,
``param_groups``, lr schedulers) works from the start; ``fit`` builds it on the model's
trainable weights, as Keras builds its optimizers on first use, so
``compile(optimizer=Adam(learning_rate=1e-4))`` keeps the object as ``model.optimizer``
(``compile(optimizer=Adam)``, the class, makes one with Keras's defaults). The classes take
Keras's arguments only: ``Adam(model.parameters())`` or ``Adam(lr=...)`` is refused, naming
``learning_rate``.

``learning_rate`` is an attribute of this module's classes: it reads and sets the rate of
every parameter group, before and after the build, so ``model.optimizer.learning_rate =
1e-4`` works as in Keras. A plain torch optimizer has no such attribute (its rate is
``param_groups[i]["lr"]``): ``fit`` refuses one on which it was set, and
``get_learning_rate`` / ``set_learning_rate`` read and set any torch optimizer's rate, as
Keras's callbacks here do. A rate changed during ``fit`` in any of these ways, or by a torch
scheduler stepped from a callback, is the one the following steps use.

Keras's arguments on torch's update rules:

- ``Nadam``: torch's NAdam with ``momentum_decay=1``, which is Keras's momentum schedule
  u_t = β1 (1 - ½·0.96^t); torch's default 0.004 would be 0.96^(0.004 t).
- ``SGD(momentum=μ)``: torch's m = μ m + g, p -= lr m is Keras's m = μ m - lr g, p += m
  at a constant rate.
- ``weight_decay``: decoupled, as Keras applies it to every optimizer: p -= lr · wd · p
  before each update (``AdamW``: torch's AdamW, which does the same).
- ``clipnorm``: each torch parameter's gradient scaled to a norm of at most ``clipnorm``
  (Keras clips each variable: a recurrent layer's kernel and its one bias are one torch
  parameter here, so they are clipped together); ``global_clipnorm``: all gradients
  together; ``clipvalue``: each element to [-v, v]. At most one of them, as in Keras.
- ``epsilon`` is added where torch adds it (Adam: to sqrt(v̂); Keras: to sqrt(v) with the
  bias correction in the rate; RMSprop and Adagrad: outside the square root, Keras: inside),
  which differs from Keras by about epsilon.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from rnnkit.keras._base import check_bool, check_number, plain

_CLIPS = ("clipnorm", "clipvalue", "global_clipnorm")
_FRACTIONS = ("beta_1", "beta_2", "rho")  # in [0, 1)


class Optimizer:
    """The Keras side of this module's optimizers (a mixin before the torch class).

    An optimizer is a valid torch optimizer from its construction, with one empty parameter
    group that holds its hyperparameters; ``build`` (``fit`` calls it) replaces that group
    with the model's weights, as Keras's ``optimizer.build(variables)``.

    Arguments (every optimizer's, as Keras's base optimizer):
        learning_rate: a number >= 0 (Keras's schedule objects are not taken: use the
            ``LearningRateScheduler`` callback).
        weight_decay: decoupled weight decay, or None.
        clipnorm, clipvalue, global_clipnorm: gradient clipping (see the module docstring).
        name: the optimizer's name.
    """

    _decays_itself = False  # AdamW: torch's own decoupled decay

    def __init__(self, learning_rate, hyper: dict, *, name: str, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, **unknown):
        _refuse_torch_style(type(self).__name__, learning_rate, unknown)
        clips = {k: v for k, v in zip(_CLIPS, (clipnorm, clipvalue, global_clipnorm), strict=True)
                 if v is not None}
        if len(clips) > 1:
            raise ValueError(f"only one of clipnorm, clipvalue and global_clipnorm can be set, as in "
                             f"Keras, got {clips}")
        # the constructor's arguments; where a torch group holds one, get_config reads the group
        decay = None if weight_decay is None else check_number("weight_decay", weight_decay)
        config = {"weight_decay": decay}
        config |= {k: None if v is None else check_number(k, v, positive=True)
                   for k, v in zip(_CLIPS, (clipnorm, clipvalue, global_clipnorm), strict=True)}
        config |= {k: _hyper(k, v) for k, v in hyper.items()}
        self._config, self.name = config, name
        lr = check_number("learning_rate", learning_rate)
        self.torch_class().__init__(self, [{"params": []}], lr=lr, **self._torch_arguments(config))
        self._hook()

    def _torch_arguments(self, config: dict) -> dict:
        """torch's arguments other than ``lr`` from Keras's."""
        raise NotImplementedError

    def _keras_arguments(self, group: dict) -> dict:
        """Keras's arguments (other than ``learning_rate``) from a torch parameter group."""
        raise NotImplementedError

    @classmethod
    def torch_class(cls) -> type[torch.optim.Optimizer]:
        """The torch optimizer this class is (``torch.optim.NAdam`` for ``Nadam``)."""
        return next(c for c in cls.__mro__ if c.__module__.startswith("torch.optim"))

    @property
    def built(self) -> bool:
        """Whether the optimizer holds weights (``build``, or torch's ``add_param_group``)."""
        return is_built(self)

    def build(self, params) -> None:
        """Put ``params`` (parameters or parameter groups) in place of the empty group, with
        its hyperparameters (the current rate among them), as Keras's
        ``optimizer.build(variables)``; ``fit`` calls it."""
        if self.built:
            raise ValueError(f"optimizer '{self.name}' is already built on a model's weights; "
                             "make a new one for another model")
        params = list(params)
        groups = params if params and isinstance(params[0], dict) else [{"params": params}]
        hyper = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        self.param_groups = []
        for group in groups:
            self.add_param_group({**hyper, **group})

    def _hook(self) -> None:
        self.register_step_pre_hook(_clip_and_decay)

    @property
    def _decoupled_decay(self) -> float:
        """The decay the step hook applies (none where torch's update decays, AdamW)."""
        return 0.0 if self._decays_itself else self._config["weight_decay"] or 0.0

    def __getstate__(self) -> dict:
        # torch's keeps defaults, state and param_groups: the Keras side goes along (copy.deepcopy)
        return {**super().__getstate__(), "_config": self._config, "name": self.name}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)  # also load_state_dict's, with state and param_groups only
        if "_config" in state:  # a copy: torch's __setstate__ made the hooks afresh
            self._hook()

    @property
    def learning_rate(self) -> float:
        """The rate of the first parameter group (all groups share it unless a torch user
        changed one); assigning sets every group's, as ``model.optimizer.learning_rate =``
        does in Keras."""
        return get_learning_rate(self)

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        set_learning_rate(self, value)

    def get_config(self) -> dict:
        """Keras's ``get_config``: the constructor's arguments, as the first parameter group
        holds them now (the current rate, or what ``load_state_dict`` brought)."""
        group = self.param_groups[0]
        return {"name": self.name, "learning_rate": float(group["lr"]), **self._config,
                **self._keras_arguments(group)}

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({arguments})"


def _refuse_torch_style(cls: str, learning_rate, unknown: dict) -> None:
    """torch's way of making an optimizer (parameters first, ``lr=``), refused naming Keras's."""
    if "lr" in unknown or "params" in unknown:
        got = "lr" if "lr" in unknown else "params"
        raise TypeError(f"{cls} takes Keras's arguments: learning_rate=, not torch's {got}=; fit builds it "
                        f"on the model's weights (e.g. {cls}(learning_rate=0.01)), got {got}=")
    if unknown:
        raise TypeError(f"{cls}() got an unexpected keyword argument {next(iter(unknown))!r}")
    if isinstance(learning_rate, Iterable) and not isinstance(learning_rate, str | np.ndarray):
        raise TypeError(f"{cls} takes Keras's arguments, learning_rate first, not parameters: compile("
                        f"optimizer={cls}()) and fit builds it on the model's weights; "
                        f"got learning_rate of type {type(learning_rate).__name__}")


def _clip_and_decay(optimizer: Optimizer, args, kwargs) -> None:
    """Keras's order (``BaseOptimizer.apply``): clip the gradients, decay the weights, then
    the update (torch's ``step``), for the weights that have a gradient."""
    if not optimizer.built:
        raise ValueError(f"optimizer '{optimizer.name}' holds no weights: build it on the model's "
                         "(optimizer.build(model.parameters()), as Sequential.fit does) before its step")
    config, decay = optimizer._config, optimizer._decoupled_decay
    if all(config[k] is None for k in _CLIPS) and not decay:
        return
    with torch.no_grad():
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        grads = [p.grad for p in params]
        if config["clipnorm"] is not None:  # Keras's clip_by_norm: g · c / max(|g|, c)
            for g in grads:
                g.mul_(config["clipnorm"] / g.norm().clamp(min=config["clipnorm"]))
        elif config["global_clipnorm"] is not None and grads:
            norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
            for g in grads:
                g.mul_(config["global_clipnorm"] / norm.clamp(min=config["global_clipnorm"]))
        elif config["clipvalue"] is not None:
            for g in grads:
                g.clamp_(-config["clipvalue"], config["clipvalue"])
        if decay:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.mul_(1.0 - group["lr"] * decay)


def _adam_torch(c: dict) -> dict:
    """The Adam family's betas and epsilon as torch names them."""
    return dict(betas=(c["beta_1"], c["beta_2"]), eps=c["epsilon"])


def _adam_keras(g: dict) -> dict:
    """The Adam family's betas and epsilon from a torch group, as Keras names them."""
    return dict(beta_1=g["betas"][0], beta_2=g["betas"][1], epsilon=g["eps"])


class Adam(Optimizer, torch.optim.Adam):
    """Keras's ``Adam`` (keras/src/optimizers/adam.py) as ``torch.optim.Adam``."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, *,
                 name: str = "adam", **common):
        super().__init__(learning_rate, dict(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad),
                         name=name, **common)

    def _torch_arguments(self, c: dict) -> dict:
        return dict(_adam_torch(c), amsgrad=c["amsgrad"])

    def _keras_arguments(self, g: dict) -> dict:
        return dict(_adam_keras(g), amsgrad=g["amsgrad"])


class AdamW(Optimizer, torch.optim.AdamW):
    """Keras's ``AdamW`` (keras/src/optimizers/adamw.py) as ``torch.optim.AdamW``."""

    _decays_itself = True

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, *, name: str = "adamw", **common):
        if weight_decay is None:
            raise ValueError("weight_decay of AdamW must be a number >= 0, as in Keras, got None")
        super().__init__(learning_rate, dict(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad),
                         name=name, weight_decay=weight_decay, **common)

    def _torch_arguments(self, c: dict) -> dict:
        return dict(_adam_torch(c), amsgrad=c["amsgrad"], weight_decay=c["weight_decay"])

    def _keras_arguments(self, g: dict) -> dict:
        return dict(_adam_keras(g), amsgrad=g["amsgrad"], weight_decay=g["weight_decay"])


class SGD(Optimizer, torch.optim.SGD):
    """Keras's ``SGD`` (keras/src/optimizers/sgd.py) as ``torch.optim.SGD``."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, *, name: str = "SGD", **common):
        super().__init__(learning_rate, dict(momentum=momentum, nesterov=nesterov), name=name, **common)

    def _torch_arguments(self, c: dict) -> dict:
        # Nesterov without momentum is plain SGD in Keras; torch refuses the combination
        return dict(momentum=c["momentum"], nesterov=c["nesterov"] and c["momentum"] > 0)

    def _keras_arguments(self, g: dict) -> dict:
        # torch's nesterov is off without momentum; Keras keeps the flag
        nesterov = g["nesterov"] if g["momentum"] else self._config["nesterov"]
        return dict(momentum=g["momentum"], nesterov=nesterov)


class RMSprop(Optimizer, torch.optim.RMSprop):
    """Keras's ``RMSprop`` (keras/src/optimizers/rmsprop.py) as ``torch.optim.RMSprop``."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, *,
                 name: str = "rmsprop", **common):
        super().__init__(learning_rate, dict(rho=rho, momentum=momentum, epsilon=epsilon, centered=centered),
                         name=name, **common)

    def _torch_arguments(self, c: dict) -> dict:
        return dict(alpha=c["rho"], momentum=c["momentum"], eps=c["epsilon"], centered=c["centered"])

    def _keras_arguments(self, g: dict) -> dict:
        return dict(rho=g["alpha"], momentum=g["momentum"], epsilon=g["eps"], centered=g["centered"])


class Nadam(Optimizer, torch.optim.NAdam):
    """Keras's ``Nadam`` (keras/src/optimizers/nadam.py) as ``torch.optim.NAdam`` with
    ``momentum_decay=1``: Keras's u_t = β1 (1 - ½·0.96^t)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, *, name: str = "nadam",
                 **common):
        super().__init__(learning_rate, dict(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon), name=name,
                         **common)

    def _torch_arguments(self, c: dict) -> dict:
        return dict(_adam_torch(c), momentum_decay=1.0)

    def _keras_arguments(self, g: dict) -> dict:
        return _adam_keras(g)


class Adamax(Optimizer, torch.optim.Adamax):
    """Keras's ``Adamax`` (keras/src/optimizers/adamax.py) as ``torch.optim.Adamax``."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, *, name: str = "adamax",
                 **common):
        super().__init__(learning_rate, dict(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon), name=name,
                         **common)

    def _torch_arguments(self, c: dict) -> dict:
        return _adam_torch(c)

    def _keras_arguments(self, g: dict) -> dict:
        return _adam_keras(g)


class Adagrad(Optimizer, torch.optim.Adagrad):
    """Keras's ``Adagrad`` (keras/src/optimizers/adagrad.py) as ``torch.optim.Adagrad``."""

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, *,
                 name: str = "adagrad", **common):
        hyper = dict(initial_accumulator_value=initial_accumulator_value, epsilon=epsilon)
        super().__init__(learning_rate, hyper, name=name, **common)

    def _torch_arguments(self, c: dict) -> dict:
        return dict(initial_accumulator_value=c["initial_accumulator_value"], eps=c["epsilon"])

    def _keras_arguments(self, g: dict) -> dict:
        return dict(initial_accumulator_value=g["initial_accumulator_value"], epsilon=g["eps"])


class Adadelta(Optimizer, torch.optim.Adadelta):
    """Keras's ``Adadelta`` (keras/src/optimizers/adadelta.py) as ``torch.optim.Adadelta``."""

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, *, name: str = "adadelta", **common):
        super().__init__(learning_rate, dict(rho=rho, epsilon=epsilon), name=name, **common)

    def _torch_arguments(self, c: dict) -> dict:
        return dict(rho=c["rho"], eps=c["epsilon"])

    def _keras_arguments(self, g: dict) -> dict:
        return dict(rho=g["rho"], epsilon=g["eps"])


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "adam": Adam, "adamw": AdamW, "sgd": SGD, "rmsprop": RMSprop, "nadam": Nadam, "adamax": Adamax,
    "adagrad": Adagrad, "adadelta": Adadelta,
}


def get(identifier) -> Optimizer | torch.optim.Optimizer | type[torch.optim.Optimizer]:
    """Keras's ``optimizers.get``: a name (any case), ``serialize``'s dict or a class of this
    module as a new optimizer (the class with its defaults, as its name gives it); a torch
    optimizer (this module's included) or a torch optimizer class as it is. Anything else is
    refused, naming ``optimizer``."""
    if isinstance(identifier, str | dict):
        name = identifier.get("class_name") if isinstance(identifier, dict) else identifier
        if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, an optimizer of rnnkit.keras."
                             f"optimizers, a torch.optim.Optimizer class or an instance, got {identifier!r}")
        cls = OPTIMIZERS[name.lower()]
        config = identifier.get("config") or {} if isinstance(identifier, dict) else {}
        try:
            return cls.from_config(config)
        except TypeError as err:  # an argument the class does not take
            raise ValueError(f"the config of optimizer {cls.__name__} does not fit it: {err}") from None
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, torch.optim.Optimizer) or (
            isinstance(identifier, type) and issubclass(identifier, torch.optim.Optimizer)):
        return identifier
    kind = f"the class {identifier.__name__}" if isinstance(identifier, type) else repr(identifier)
    raise TypeError(f"optimizer must be a name, an rnnkit.keras.optimizers optimizer (or its class), a "
                    f"torch.optim.Optimizer class or an instance, got {kind}")


def serialize(optimizer: Optimizer) -> dict:
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def make_optimizer(optimizer, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer over ``model``'s trainable parameters: a name or an unbuilt optimizer of
    this module is built on them; a built one of this module is given those it lacks
    (``add_parameters``); a torch optimizer instance is checked to hold only ``model``'s
    parameters and trains those it was given (its user chose them, as in torch)."""
    optimizer = get(optimizer)
    params = [p for p in model.parameters() if p.requires_grad]
    if isinstance(optimizer, torch.optim.Optimizer) and is_built(optimizer):
        ours = {id(p) for p in model.parameters()}
        others = any(id(p) not in ours for group in optimizer.param_groups for p in group["params"])
        if others and isinstance(optimizer, Optimizer):
            raise ValueError(f"optimizer '{optimizer.name}' is built on another model's weights; make a "
                             "new one for this model")
        if others:
            raise ValueError("optimizer must hold the model's parameters: build the model (give "
                             "the first layer input_shape) before making the optimizer from "
                             "model.parameters(), got one with other parameters")
        if isinstance(optimizer, Optimizer):
            add_parameters(optimizer, model)  # weights made trainable since it was built
        return optimizer
    if not params:
        raise ValueError("the model has no trainable parameters")
    if isinstance(optimizer, Optimizer):
        optimizer.build(params)
        return optimizer
    return optimizer(params)


def is_built(optimizer: torch.optim.Optimizer) -> bool:
    """Whether a torch optimizer (this module's too) holds weights: one of this module is
    made with none, and ``fit`` builds it."""
    return any(group["params"] for group in optimizer.param_groups)


def add_parameters(optimizer: torch.optim.Optimizer, module: nn.Module) -> None:
    """Give ``optimizer`` (any torch optimizer) the trainable parameters of ``module`` that it
    lacks (a layer added after ``fit``, or one made trainable again), as a new group with the
    first group's hyperparameters. Their state starts empty and the others' is kept, as
    tf.keras's optimizers made slots for new weights on their first update; Keras 3 instead
    refuses weights it was not built with."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    new = [p for p in module.parameters() if p.requires_grad and id(p) not in held]
    if new:
        hyper = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
        optimizer.add_param_group({**hyper, "params": new})


def get_learning_rate(optimizer: torch.optim.Optimizer) -> float:
    """The first parameter group's rate, of any torch optimizer."""
    return float(optimizer.param_groups[0]["lr"])


def set_learning_rate(optimizer: torch.optim.Optimizer, value) -> None:
    """Set every parameter group's rate, of any torch optimizer (as Keras's callbacks do);
    ``fit`` keeps a rate set during training from the next step on."""
    value = check_number("learning_rate", value)
    for group in optimizer.param_groups:
        group["lr"] = value


def _hyper(name: str, value):
    """A class's own argument: a flag (amsgrad, nesterov, centered) or a number >= 0, below 1
    for the decay rates (beta_1, beta_2, rho), at most 1 for momentum (Keras's checks)."""
    if name in ("amsgrad", "nesterov", "centered"):
        return check_bool(name, value)
    if name == "momentum":
        value = plain(value)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"momentum must be a float between [0, 1], as in Keras, got {value!r}")
        return float(value)
    value = check_number(name, value)
    if name in _FRACTIONS and value >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value
