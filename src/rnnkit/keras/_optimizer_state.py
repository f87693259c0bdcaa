"""A torch optimizer's state for ``Sequential.save``: tensors for safetensors, the rest as JSON.

Keras's ``.keras`` file keeps the optimizer's variables beside the weights (the model's
``optimizer`` attribute, written under ``optimizer/vars/<i>`` by ``_save_state`` in
keras/src/saving/saving_lib.py), so ``load_model`` returns a compiled model whose next
``fit`` resumes training where the saved one stopped. This front end's optimizers are
torch's, so what is kept is torch's ``state_dict``:

- every tensor (Adam's ``step``, ``exp_avg`` and ``exp_avg_sq`` per parameter) goes into the
  model's safetensors file as ``optimizer/state/<index>/<name>``;
- everything else (each parameter group's hyperparameters and parameter indices) is JSON in
  the file's metadata, with ``{"tensor": key}`` in place of each tensor, and ``params``: the
  position in ``model.parameters()`` of each parameter the optimizer holds, in its order
  (a frozen layer's are not held, or were frozen after the optimizer took them; a layer
  added or unfrozen after ``fit`` joins as a later group).

Nothing is pickled, and reading the state runs no code from the file: the optimizer is made
from the compile settings (a name, or an ``rnnkit.keras.optimizers`` class and its config)
and then given the saved state.
"""

from __future__ import annotations

import json

import torch
from torch import Tensor, nn

from rnnkit.keras.optimizers import Optimizer

PREFIX = "optimizer/"  # the tensors' keys, as Keras's optimizer/vars/<i>


def dump(optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> tuple[dict[str, Tensor], str]:
    """The tensors of ``optimizer.state_dict()`` by key, and the rest as JSON text;
    ``params``: the model's parameters, in ``model.parameters()`` order."""
    saved, tensors = optimizer.state_dict(), {}
    position = {id(p): k for k, p in enumerate(params)}
    held = [position[id(p)] for group in optimizer.param_groups for p in group["params"]]
    state = {str(index): {name: _encode(value, f"{PREFIX}state/{index}/{name}", tensors)
                          for name, value in slots.items()}
             for index, slots in saved["state"].items()}
    groups = [{name: _encode(value, f"{PREFIX}param_groups/{g}/{name}", tensors)
               for name, value in group.items()}
              for g, group in enumerate(saved["param_groups"])]
    text = json.dumps({"class": _torch_name(optimizer), "params": held, "state": state,
                       "param_groups": groups})
    return tensors, text


def restore(optimizer: Optimizer, params: list[nn.Parameter], tensors: dict[str, Tensor], text: str,
            path) -> Optimizer:
    """``optimizer`` (unbuilt, made from the compile settings) built over the model's
    ``params`` (all of them, in ``model.parameters()`` order) with ``dump``'s state."""
    try:
        saved = json.loads(text)
        groups = [{k: _decode(v, tensors) for k, v in group.items()} for group in saved["param_groups"]]
        state = {int(index): {k: _decode(v, tensors) for k, v in slots.items()}
                 for index, slots in saved["state"].items()}
        kind, sizes = saved["class"], [len(group["params"]) for group in groups]
        # files before "params" held the trainable parameters in model order
        held = saved.get("params") or [k for k, p in enumerate(params) if p.requires_grad]
        if not all(isinstance(k, int) and 0 <= k < len(params) for k in held):
            raise ValueError(f"params must be positions among the model's {len(params)} parameters")
        held = [params[k] for k in held]
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"the optimizer state in {path} is malformed "
                         f"({type(err).__name__}: {err})") from None
    params, name = held, _torch_name(optimizer)
    if kind != name or sum(sizes) != len(params):
        raise ValueError(f"the optimizer state in {path} is for a {kind} over {sum(sizes)} "
                         f"parameters; the model's optimizer is a {name} over {len(params)}")
    for index, slots in state.items():
        shape = tuple(params[index].shape) if 0 <= index < len(params) else None
        for slot, value in slots.items():
            if shape is None or (isinstance(value, Tensor) and value.dim() and tuple(value.shape) != shape):
                raise ValueError(f"the optimizer state in {path} has '{slot}' of parameter {index} "
                                 f"with shape {tuple(getattr(value, 'shape', ()))}; the model's "
                                 f"parameter {index} has shape {shape}")
    # a layer added after fit has its own group: keep the saved groups
    starts = [sum(sizes[:k]) for k in range(len(sizes))]
    optimizer.build([{"params": params[s:s + n]} for s, n in zip(starts, sizes, strict=True)])
    for group in groups:  # JSON has lists where the optimizer has tuples (Adam's betas)
        group.update({k: tuple(v) for k, v in group.items()
                      if isinstance(optimizer.defaults.get(k), tuple) and isinstance(v, list)})
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    return optimizer


def _torch_name(optimizer) -> str:
    """The torch class's name (``NAdam`` for ``Nadam``), as files have always said."""
    return optimizer.torch_class().__name__ if isinstance(optimizer, Optimizer) else type(optimizer).__name__


def _encode(value, key: str, tensors: dict[str, Tensor]):
    if isinstance(value, Tensor):
        tensors[key] = value.detach().contiguous().cpu()
        return {"tensor": key}
    if isinstance(value, tuple | list):
        return [_encode(v, f"{key}/{k}", tensors) for k, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"the optimizer's state '{key}' must be tensors, numbers, strings or None "
                    f"to be saved, got {type(value).__name__}")


def _decode(value, tensors: dict[str, Tensor]):
    if isinstance(value, dict):
        key = value["tensor"]
        if key not in tensors:
            raise ValueError(f"tensor '{key}' is missing")
        return tensors[key]
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value
