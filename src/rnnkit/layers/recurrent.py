"""``Recurrent(cell)``: run any cell over time, with per-row lengths and explicit state."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit import kernels
from rnnkit._checks import check_lengths, check_sequence, check_state
from rnnkit.cells.base import Cell, State, core_cell, weights_by_hook
from rnnkit.layers.masking import flip_padded, lengths_to_mask


class Recurrent(nn.Module):
    """Runs ``cell`` over the time axis of a batch-first sequence.

    Arguments:
        cell: any rnnkit cell (wrapped or not).
        reverse: run from each row's last real step back to its first. Padding stays at
            the end, and outputs come back in the original time order.
        backend: ``"auto"`` (fastest executor that supports the cell) or one of
            ``rnnkit.kernels.BACKENDS`` (``"reference"``, ``"native"``, ``"fused"``,
            ``"loop"``, ``"scan"``).

    Shapes:
        x_BTI: (B, T, I); lengths: (B,) ints in [1, T] or None (all T);
        out_BTO: (B, T, O) with O = ``cell.output_size``, zero at padded steps;
        state: the cell's state, (B, ·) per field; the final one is read at each row's own
        last real step.
    """

    def __init__(self, cell: Cell, *, reverse: bool = False, backend: str = "auto"):
        super().__init__()
        self.cell, self.reverse, self.backend = cell, reverse, backend
        # the executor's name, not the module, so that layers deepcopy and pickle
        self.executor = kernels.select(backend, cell).name  # raises if backend can't run cell
        self.input_size, self.output_size = cell.input_size, cell.output_size

    def forward(self, x_BTI: Tensor, state: State | None = None, *,
                lengths: Tensor | None = None) -> tuple[Tensor, State]:
        like = core_cell(self.cell).weight_ih
        check_sequence(x_BTI, name="input", input_size=self.input_size, like=like)
        B, T, _ = x_BTI.shape
        lengths_B = check_lengths(lengths, batch=B, time=T, device=x_BTI.device)
        fresh = self.cell.init_state(B, device=x_BTI.device, dtype=x_BTI.dtype)
        if state is None:
            state = fresh
        else:
            state = check_state(state, fresh, name="state")
        if lengths_B is not None:
            # the loop and the scan do compute on padded steps (and discard the result):
            # zeros there keep NaN/inf padding out of the parameter gradients
            live_BT1 = lengths_to_mask(lengths_B, T)[..., None]
            x_BTI = x_BTI.masked_fill(~live_BT1, 0.0)
        if self.reverse:
            x_BTI = flip_padded(x_BTI, lengths_B)
        # traced (torch.jit.trace, torch.onnx.export(dynamo=False)), the fast executors' cut of
        # the rows by length would be baked in as constants; the reference loop's masks are not
        traced_ragged = lengths_B is not None and torch.jit.is_tracing()
        executor = "reference" if traced_ragged or weights_by_hook(core_cell(self.cell)) else self.executor
        out_BTO, state = kernels.KERNELS[executor].run(self.cell, x_BTI, state, lengths_B)
        if self.reverse:
            out_BTO = flip_padded(out_BTO, lengths_B)
        return out_BTO, state

    def extra_repr(self) -> str:
        return f"reverse={self.reverse}, backend={self.backend!r} -> {self.executor}"
