"""torch.nn's state layout for the drop-ins: hx as (L*D, B, ·) tensors <-> one cell state
per layer and direction, and the checks a caller's hx gets.

A mixin of ``DropIn`` (``dropins/base.py``), which provides the sizes and ``_state_type``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit._checks import check_like


class TorchLayout:
    """hx in torch.nn's layout; see ``DropIn``."""

    def _hx_shapes(self, B: int) -> list[tuple[int, int, int]]:
        """torch.nn's state layout: (L*D, B, H_out) for h, (L*D, B, H) for c."""
        LD = self.num_layers * (2 if self.bidirectional else 1)
        sizes = (self._output_size(), self.hidden_size)[: len(self._state_type()._fields)]
        return [(LD, B, n) for n in sizes]

    def _zero_hx(self, B: int, like: Tensor) -> tuple[Tensor, ...]:
        return tuple(like.new_zeros(shape) for shape in self._hx_shapes(B))

    def _check_hx(self, hx, B: int, like: Tensor, *, unbatched: bool = False) -> tuple[Tensor, ...]:
        """hx as the caller gave it (2-D tensors with unbatched input) -> (L*D, B, ·) tensors."""
        fields = self._state_type()._fields
        if not isinstance(hx, Tensor | tuple | list):
            raise TypeError(f"hx must be a Tensor or a tuple of Tensors, got {type(hx).__name__}")
        hx = (hx,) if isinstance(hx, Tensor) else tuple(hx)
        if len(hx) != len(fields):
            what = "a (h_0, c_0) pair" if len(fields) == 2 else "one tensor h_0"
            raise TypeError(f"hx must be {what}, got {len(hx)} items")
        layout = "(num_layers * num_directions, size) for unbatched input" if unbatched else \
            "(num_layers * num_directions, batch, size)"
        for name, t, (LD, _, size) in zip(fields, hx, self._hx_shapes(B), strict=True):
            want = (LD, size) if unbatched else (LD, B, size)
            if not isinstance(t, Tensor) or t.shape != want:
                shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"hx {name}_0 must have shape {want} {layout}, got {shape}")
            check_like(t, name=f"hx {name}_0", like=like)
        return tuple(t.unsqueeze(1) for t in hx) if unbatched else hx

    def _nest(self, hx: tuple[Tensor, ...]) -> tuple:
        cell_states = [self._state_type()(*(t[k] for t in hx)) for k in range(hx[0].shape[0])]
        if not self.bidirectional:
            return tuple(cell_states)
        return tuple(zip(cell_states[0::2], cell_states[1::2], strict=True))

    def _flatten(self, state: tuple) -> tuple[Tensor, ...]:
        cell_states = [s for layer in state for s in (layer if self.bidirectional else (layer,))]
        return tuple(torch.stack(parts) for parts in zip(*cell_states, strict=True))

    def _unpack_hx(self, hx: tuple[Tensor, ...]):
        return hx[0] if len(hx) == 1 else hx
