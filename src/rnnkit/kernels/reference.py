"""The reference executor: a Python loop over time that calls the cell once per step.

It runs every cell and every wrapper, and every other executor is tested against it.
Rows whose sequence has ended keep their state (so the final state is the one at each
row's own last step) and emit zeros; their inputs receive no gradient.

Under ``torch.export`` (and so ``torch.onnx.export``) a layer in eval mode runs the same loop
as one ``scan`` (ONNX's Scan op), which keeps the sequence length symbolic: the exported
program takes any T. A Python loop would be unrolled into T copies of the cell, fixing T.
In training mode the masks are drawn per sequence in the loop's order, so the loop stays.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.cells.base import Cell, State, sequence_step

name = "reference"


def supports(cell: Cell) -> bool:
    return isinstance(cell, Cell)


def run(cell: Cell, x_BTI: Tensor, state: State, lengths_B: Tensor | None):
    if torch.compiler.is_exporting() and not cell.training:
        return scanned(cell, x_BTI, state, lengths_B)
    B, T, _ = x_BTI.shape
    step = sequence_step(cell, B, steps=T, device=x_BTI.device, dtype=x_BTI.dtype)
    outs = []
    for t in range(T):
        new = step(x_BTI[:, t], state)
        if lengths_B is None:
            outs.append(new.h)
        else:
            live_B = lengths_B > t
            new = new.where(live_B, state)  # finished rows keep their last state
            outs.append(torch.where(live_B[:, None], new.h, 0.0))
        state = new
    return torch.stack(outs, dim=1), state


def loop(step, carry, xs: tuple[Tensor, ...]):
    """``step(carry, (x[t] for x in xs)) -> (carry, out)`` over the first axis of ``xs``:
    (final carry, the outputs stacked). A Python loop, or under ``torch.export`` one ``scan``
    (ONNX Scan), which keeps T symbolic. ``carry``: a tensor or a tuple of them."""
    if torch.compiler.is_exporting():
        from torch._higher_order_ops.scan import scan  # torch's scan has no public name yet

        return scan(step, carry, xs)
    outs = []
    for t in range(xs[0].shape[0]):
        carry, out = step(carry, tuple(x[t] for x in xs))
        outs.append(out)
    return carry, torch.stack(outs)


def scanned(cell: Cell, x_BTI: Tensor, state: State, lengths_B: Tensor | None):
    """``run`` as one ``scan`` over time (a cell in eval mode: no masks to draw)."""
    from torch._higher_order_ops.scan import scan  # torch's scan has no public name yet

    B, T, _ = x_BTI.shape
    step = sequence_step(cell, B, steps=None, device=x_BTI.device, dtype=x_BTI.dtype)
    kind = type(state)  # scan carries tensors: the state travels as a plain tuple

    def body(carry: tuple, xs: tuple):
        old = kind(*carry)
        new = step(xs[0], old)
        if lengths_B is None:
            return tuple(new), new.h.clone()  # the output may not alias the carry
        live_B = xs[1]
        new = new.where(live_B, old)  # finished rows keep their last state
        return tuple(new), torch.where(live_B[:, None], new.h, 0.0)

    xs = (x_BTI.transpose(0, 1),)
    if lengths_B is not None:
        xs += (torch.arange(T, device=x_BTI.device)[:, None] < lengths_B,)  # live_TB
    final, out_TBO = scan(body, tuple(state), xs)
    return out_TBO.transpose(0, 1), kind(*final)
