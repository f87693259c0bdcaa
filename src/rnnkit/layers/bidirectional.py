"""``Bidirectional(forward, backward, merge=...)``: two recurrent layers over the same input.

As in Flax and Keras, the backward layer reads each row from its own last real step back
to its first (``flip_padded``), so padding never leaks into the start of its pass.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.layers.recurrent import Recurrent

MERGES = ("concat", "sum", "mul", "ave")


class Bidirectional(nn.Module):
    """Runs ``fwd`` forward and ``bwd`` backward in time and merges their outputs.

    Arguments:
        fwd: a ``Recurrent`` with ``reverse=False``.
        bwd: a ``Recurrent`` with ``reverse=True``.
        merge: ``"concat"`` (O = 2H, forward first, as torch.nn), ``"sum"``, ``"mul"`` or
            ``"ave"`` (O = H, as Keras ``merge_mode``).

    Shapes:
        x_BTI: (B, T, I) -> out_BTO: (B, T, O); state: ``(fwd_state, bwd_state)``.
    """

    def __init__(self, fwd: Recurrent, bwd: Recurrent, *, merge: str = "concat"):
        super().__init__()
        if merge not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}, got {merge!r}")
        if not (isinstance(fwd, Recurrent) and isinstance(bwd, Recurrent)):
            raise TypeError("fwd and bwd must be Recurrent layers, got "
                            f"{type(fwd).__name__} and {type(bwd).__name__}")
        if fwd.reverse or not bwd.reverse:
            raise ValueError("fwd must have reverse=False and bwd reverse=True, got "
                             f"{fwd.reverse} and {bwd.reverse}")
        if fwd.input_size != bwd.input_size:
            raise ValueError(f"fwd and bwd must have the same input_size, got "
                             f"{fwd.input_size} and {bwd.input_size}")
        if merge != "concat" and fwd.output_size != bwd.output_size:
            raise ValueError(f"merge={merge!r} needs equal output sizes, got "
                             f"{fwd.output_size} and {bwd.output_size}")
        self.fwd, self.bwd, self.merge = fwd, bwd, merge
        self.input_size = fwd.input_size
        both = fwd.output_size + bwd.output_size
        self.output_size = both if merge == "concat" else fwd.output_size

    def forward(self, x_BTI: Tensor, state: tuple | None = None, *,
                lengths: Tensor | None = None) -> tuple[Tensor, tuple]:
        if state is not None and (not isinstance(state, tuple) or len(state) != 2):
            raise TypeError("state must be a (fwd_state, bwd_state) pair, got "
                            f"{type(state).__name__}")
        fwd_state, bwd_state = state if state is not None else (None, None)
        out_f, fwd_state = self.fwd(x_BTI, fwd_state, lengths=lengths)
        out_b, bwd_state = self.bwd(x_BTI, bwd_state, lengths=lengths)
        if self.merge == "concat":
            out = torch.cat([out_f, out_b], dim=-1)
        elif self.merge == "sum":
            out = out_f + out_b
        elif self.merge == "mul":
            out = out_f * out_b
        else:
            out = (out_f + out_b) / 2
        return out, (fwd_state, bwd_state)

    def extra_repr(self) -> str:
        return f"merge={self.merge!r}"
