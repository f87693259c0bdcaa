"""Elman RNN cell (Elman 1990, "Finding structure in time"), as torch.nn.RNNCell."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import HiddenCell, HiddenState, add_biases, uniform_init_

_ACTIVATIONS = {"tanh": F.tanh, "relu": F.relu}


class ElmanCell(HiddenCell):
    r"""Elman (simple) recurrent cell.

    .. math::
        h' = \phi(W_{ih} x + b_{ih} + W_{hh} h + b_{hh}),\quad \phi \in \{\tanh, \mathrm{relu}\}

    Parameters are named and shaped as in ``torch.nn.RNNCell``.

    Shapes:
        x_BI: (B, I); state.h: (B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "tanh",
                 bias: bool = True,
                 device=None, dtype=None):
        if nonlinearity not in _ACTIVATIONS:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size)
        self.nonlinearity = nonlinearity
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size, device=device, dtype=dtype))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size, device=device, dtype=dtype))
        add_biases(self, hidden_size, bias, device=device, dtype=dtype)
        uniform_init_(self, hidden_size)

    def forward(self, x_BI: Tensor, state: HiddenState, *, recurrent_h: Tensor | None = None) -> HiddenState:
        phi = _ACTIVATIONS[self.nonlinearity]
        h_BH = state.h if recurrent_h is None else recurrent_h  # as the product reads it (recurrent dropout)
        h_BH = phi(F.linear(x_BI, self.weight_ih, self.bias_ih)
                   + F.linear(h_BH, self.weight_hh, self.bias_hh))
        return HiddenState(h_BH)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"
