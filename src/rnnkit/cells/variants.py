"""Variant cells: layer-normalised LSTM and GRU, and IndRNN.

- Ba, Kiros & Hinton (2016), "Layer Normalization", Section 3.1 and Appendix (LN-LSTM):
  the input and recurrent products are normalised separately, and so is c before the
  output tanh. The paper's LayerNorms of the products have a gain and a shift; the shift
  adds to the cell's ordinary bias, so here they carry only a gain and the bias is the
  shift. Each product is normalised over all its gates together (4H for the LSTM, 3H for
  the GRU), as haste and Keras-contrib do; the paper authors' GRU code normalises (r, z)
  and n separately, which gives other numbers with the same parameters.
- Li et al. (2018), "Independently Recurrent Neural Network (IndRNN)", eq. 2: the
  recurrent weight is a vector, so each unit only sees its own past.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import Cell, HiddenCell, HiddenState, LSTMState, add_biases, uniform_init_, zeros


class LayerNormLSTMCell(Cell):
    r"""LSTM with layer normalisation (Ba et al. 2016). Gates i, f, g, o as in torch.nn.LSTM.

    .. math::
        (i, f, g, o) = \mathrm{LN}_{ih}(W_{ih} x) + \mathrm{LN}_{hh}(W_{hh} h) + b_{ih} + b_{hh}

        c' = \sigma(f) \odot c + \sigma(i) \odot \tanh(g)

        h' = \sigma(o) \odot \tanh(\mathrm{LN}_c(c'))

    Shapes:
        x_BI: (B, I); state.h, state.c: (B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True,
                 eps: float = 1e-5,
                 device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size, device=device, dtype=dtype))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H, device=device, dtype=dtype))
        add_biases(self, 4 * H, bias, device=device, dtype=dtype)
        uniform_init_(self, H)
        self.ln_ih = nn.LayerNorm(4 * H, eps=eps, bias=False, device=device, dtype=dtype)
        self.ln_hh = nn.LayerNorm(4 * H, eps=eps, bias=False, device=device, dtype=dtype)
        self.ln_c = nn.LayerNorm(H, eps=eps, device=device, dtype=dtype)

    def init_state(self, batch: int, *, device=None, dtype=None) -> LSTMState:
        return LSTMState(zeros(batch, self.hidden_size, device, dtype),
                         zeros(batch, self.hidden_size, device, dtype))

    def forward(self, x_BI: Tensor, state: LSTMState, *, recurrent_h: Tensor | None = None) -> LSTMState:
        h_BH, c_BH = state
        h_BH = h_BH if recurrent_h is None else recurrent_h  # the h the product reads (recurrent dropout)
        gates_BG = (self.ln_ih(F.linear(x_BI, self.weight_ih)) + _bias(self.bias_ih)
                    + self.ln_hh(F.linear(h_BH, self.weight_hh)) + _bias(self.bias_hh))
        i_BH, f_BH, g_BH, o_BH = gates_BG.chunk(4, dim=-1)
        c_BH = f_BH.sigmoid() * c_BH + i_BH.sigmoid() * g_BH.tanh()
        h_BH = o_BH.sigmoid() * self.ln_c(c_BH).tanh()
        return LSTMState(h_BH, c_BH)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class LayerNormGRUCell(HiddenCell):
    r"""GRU with layer normalisation of both products; reset gate after the product.

    .. math::
        (a_r, a_z, a_n) = \mathrm{LN}_{ih}(W_{ih} x) + b_{ih}, \quad
        (u_r, u_z, u_n) = \mathrm{LN}_{hh}(W_{hh} h) + b_{hh}

        r = \sigma(a_r + u_r), \quad z = \sigma(a_z + u_z)

        n = \tanh(a_n + r \odot u_n)

        h' = (1 - z) \odot n + z \odot h

    Shapes:
        x_BI: (B, I); state.h: (B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True,
                 eps: float = 1e-5,
                 device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size, device=device, dtype=dtype))
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H, device=device, dtype=dtype))
        add_biases(self, 3 * H, bias, device=device, dtype=dtype)
        uniform_init_(self, H)
        self.ln_ih = nn.LayerNorm(3 * H, eps=eps, bias=False, device=device, dtype=dtype)
        self.ln_hh = nn.LayerNorm(3 * H, eps=eps, bias=False, device=device, dtype=dtype)

    def forward(self, x_BI: Tensor, state: HiddenState, *, recurrent_h: Tensor | None = None) -> HiddenState:
        h_BH = state.h if recurrent_h is None else recurrent_h  # see GRUCell
        a_r, a_z, a_n = (self.ln_ih(F.linear(x_BI, self.weight_ih)) + _bias(self.bias_ih)).chunk(3, -1)
        u_r, u_z, u_n = (self.ln_hh(F.linear(h_BH, self.weight_hh)) + _bias(self.bias_hh)).chunk(3, -1)
        r_BH = (a_r + u_r).sigmoid()
        z_BH = (a_z + u_z).sigmoid()
        n_BH = (a_n + r_BH * u_n).tanh()
        h_BH = (1 - z_BH) * n_BH + z_BH * state.h
        return HiddenState(h_BH)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class IndRNNCell(HiddenCell):
    r"""Independently recurrent cell (Li et al. 2018, eq. 2).

    .. math::
        h' = \phi(W_{ih} x + b_{ih} + u \odot h), \quad u = \texttt{weight\_hh} \in \mathbb{R}^H

    ``weight_hh`` starts in U(0, 1), so relu units neither explode nor die at the start. The
    paper also bounds |u| during training; clamp ``weight_hh`` after each optimiser step for that.

    Shapes:
        x_BI: (B, I); state.h: (B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "relu",
                 bias: bool = True,
                 device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.nonlinearity = nonlinearity
        self.weight_ih = nn.Parameter(torch.empty(H, input_size, device=device, dtype=dtype))
        self.weight_hh = nn.Parameter(torch.empty(H, device=device, dtype=dtype))
        self.bias_ih = nn.Parameter(torch.empty(H, device=device, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init_(self, self.hidden_size)
        nn.init.uniform_(self.weight_hh, 0.0, 1.0)  # see the docstring

    def forward(self, x_BI: Tensor, state: HiddenState, *, recurrent_h: Tensor | None = None) -> HiddenState:
        phi = F.relu if self.nonlinearity == "relu" else F.tanh
        h_BH = state.h if recurrent_h is None else recurrent_h  # the h u reads (recurrent dropout)
        h_BH = phi(F.linear(x_BI, self.weight_ih, self.bias_ih) + self.weight_hh * h_BH)
        return HiddenState(h_BH)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"


def _bias(b: Tensor | None) -> Tensor | float:
    return 0.0 if b is None else b
