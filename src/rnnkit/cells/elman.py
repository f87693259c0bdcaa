"""Elman RNN cell (Elman 1990, "Finding structure in time"), as torch.nn.RNNCell."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import Cell, HiddenState, add_biases, check_sizes, uniform_init_, zeros

_ACTIVATIONS = {"tanh": F.tanh, "relu": F.relu}


class ElmanCell(Cell):
    r"""Elman (simple) recurrent cell.

    .. math::
        h' = \phi(W_{ih} x + b_{ih} + W_{hh} h + b_{hh}),\quad \phi \in \{\tanh, \mathrm{relu}\}

    Parameters are named and shaped as in ``torch.nn.RNNCell``.

    Shapes:
        x_BI: (B, I); state.h: (B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "tanh",
                 bias: bool = True):
        super().__init__()
        check_sizes(input_size=input_size, hidden_size=hidden_size)
        if nonlinearity not in _ACTIVATIONS:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.nonlinearity = nonlinearity
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        add_biases(self, hidden_size, bias)
        uniform_init_(self, hidden_size)

    def init_state(self, batch: int, *, device=None, dtype=None) -> HiddenState:
        return HiddenState(zeros(batch, self.hidden_size, device, dtype))

    def forward(self, x_BI: Tensor, state: HiddenState) -> HiddenState:
        phi = _ACTIVATIONS[self.nonlinearity]
        h_BH = phi(F.linear(x_BI, self.weight_ih, self.bias_ih)
                   + F.linear(state.h, self.weight_hh, self.bias_hh))
        return HiddenState(h_BH)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"
