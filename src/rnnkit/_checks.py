"""Checks at the public boundary. Each error names the argument, the expectation and the value."""

from __future__ import annotations

import torch
from torch import Tensor


def check_sequence(x: Tensor, *, name: str, input_size: int, like: Tensor | None) -> None:
    """``x`` must be a (B, T, input_size) floating tensor on ``like``'s device and dtype,
    with T >= 1 (B = 0 is allowed)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"{name} must be 3-D (batch, time, features), got shape {tuple(x.shape)}")
    if x.shape[-1] != input_size:
        raise ValueError(f"{name} must have {input_size} features (input_size), "
                         f"got {x.shape[-1]} (shape {tuple(x.shape)})")
    if x.shape[1] == 0:
        # torch.nn's RNNs refuse T = 0 too; an empty batch (B = 0) runs there, and here
        raise ValueError(f"{name} must have at least one time step, got shape {tuple(x.shape)}")
    check_like(x, name=name, like=like)


def _autocast_lowered(x: Tensor) -> bool:
    """Whether autocast may have lowered ``x`` (an earlier op's output in its low precision):
    the ops that take it cast it again, as torch.nn's do."""
    try:
        return torch.is_autocast_enabled(x.device.type) and x.dtype == torch.get_autocast_dtype(x.device.type)
    except RuntimeError:  # a device type autocast does not know (meta)
        return False


def check_like(x: Tensor, *, name: str, like: Tensor | None) -> None:
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if like is None:
        return
    if x.dtype != like.dtype and not _autocast_lowered(x):
        raise TypeError(f"{name} must have the parameters' dtype {like.dtype}, got {x.dtype} "
                        f"(convert the input, or the module with .to({x.dtype}))")
    if x.device != like.device:
        raise ValueError(f"{name} must be on the parameters' device {like.device}, got {x.device}")


def check_lengths(lengths: Tensor | None, *, batch: int, time: int, device) -> Tensor | None:
    """``lengths`` must be a (B,) integer tensor with values in [1, T]; returned on ``device``."""
    if lengths is None:
        return None
    if not isinstance(lengths, Tensor):
        try:
            lengths = torch.as_tensor(lengths)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"lengths must be a (B,) integer tensor or list of ints, "
                            f"got {type(lengths).__name__}") from err
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.is_complex():
        raise TypeError(f"lengths must be an integer tensor, got dtype {lengths.dtype}")
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},) (one per sequence), "
                         f"got {tuple(lengths.shape)}")
    if torch.compiler.is_compiling():
        # reading the values would break the graph: the range check runs inside it instead
        torch._assert_async(((lengths >= 1) & (lengths <= time)).all(),
                            f"lengths must be in [1, {time}] (the padded time dimension)")
        return lengths.to(device=device, dtype=torch.long)
    if batch == 0:
        return lengths.to(device=device, dtype=torch.long)  # no values to check
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1 or hi > time:
        raise ValueError(f"lengths must be in [1, {time}] (the padded time dimension), "
                         f"got min {lo} and max {hi}")
    return lengths.to(device=device, dtype=torch.long)


def check_state(state, expected, *, name: str):
    """``state`` must have the structure and shapes of ``expected`` (from ``init_state``);
    returns it as ``expected``'s NamedTuple type (a plain tuple is accepted)."""
    if not isinstance(state, tuple) or len(state) != len(expected):
        raise TypeError(f"{name} must be a {type(expected).__name__} of {len(expected)} tensors, "
                        f"got {type(state).__name__}")
    for field, got, want in zip(expected._fields, state, expected, strict=True):
        if not isinstance(got, Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
            raise ValueError(f"{name}.{field} must have shape {tuple(want.shape)}, got {shape}")
        check_like(got, name=f"{name}.{field}", like=want)
    return type(expected)(*state)
