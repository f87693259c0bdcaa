"""The reference executor: a Python loop over time that calls the cell once per step.

It runs every cell and every wrapper, and every other executor is tested against it.
Rows whose sequence has ended keep their state (so the final state is the one at each
row's own last step) and emit zeros; their inputs receive no gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.cells.base import Cell, State, sequence_step

name = "reference"


def supports(cell: Cell) -> bool:
    return isinstance(cell, Cell)


def run(cell: Cell, x_BTI: Tensor, state: State, lengths_B: Tensor | None):
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
