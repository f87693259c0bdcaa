"""``Stacked(layers, dropout=p)``: recurrent layers one on top of the other."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Stacked(nn.Module):
    """Feeds each layer's output to the next, with dropout between layers (as torch.nn.LSTM).

    Arguments:
        layers: ``Recurrent`` or ``Bidirectional`` layers (anything with the
            ``(x_BTI, state, *, lengths) -> (out_BTO, state)`` contract and
            ``input_size``/``output_size``).
        dropout: dropout probability on the outputs of every layer but the last, in training.

    Shapes:
        x_BTI: (B, T, I) -> out_BTO: (B, T, O of the last layer);
        state: a tuple with one state per layer.
    """

    def __init__(self, layers, *, dropout: float = 0.0):
        super().__init__()
        layers = list(layers)
        if not layers:
            raise ValueError("layers must hold at least one layer, got none")
        if not isinstance(dropout, int | float) or not 0.0 <= dropout <= 1.0:  # torch.nn's range
            raise ValueError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        for k, (below, above) in enumerate(zip(layers, layers[1:], strict=False)):
            if below.output_size != above.input_size:
                raise ValueError(f"layer {k + 1} must take input_size {below.output_size} "
                                 f"(layer {k}'s output), got {above.input_size}")
        self.layers = nn.ModuleList(layers)
        self.dropout = float(dropout)
        self.input_size, self.output_size = layers[0].input_size, layers[-1].output_size

    def forward(self, x_BTI: Tensor, state: tuple | None = None, *,
                lengths: Tensor | None = None) -> tuple[Tensor, tuple]:
        if state is not None and (not isinstance(state, tuple) or len(state) != len(self.layers)):
            raise TypeError(f"state must be a tuple of {len(self.layers)} layer states, "
                            f"got {type(state).__name__} {_length(state)}")
        states = state if state is not None else (None,) * len(self.layers)
        finals = []
        for k, (layer, layer_state) in enumerate(zip(self.layers, states, strict=True)):
            if k > 0 and self.dropout > 0.0:
                x_BTI = F.dropout(x_BTI, self.dropout, self.training)
            x_BTI, layer_state = layer(x_BTI, layer_state, lengths=lengths)
            finals.append(layer_state)
        return x_BTI, tuple(finals)

    def extra_repr(self) -> str:
        return f"dropout={self.dropout}"


def _length(state) -> str:
    return f"of length {len(state)}" if isinstance(state, tuple) else ""
