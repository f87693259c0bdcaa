"""GRU cell (Cho et al. 2014, "Learning phrase representations using RNN encoder-decoder").

Two placements of the reset gate exist in the wild, and both are here:

- ``reset_after=True`` (torch.nn.GRU, cuDNN, Keras default): r scales ``W_hn h + b_hn``,
  after the matrix product.
- ``reset_after=False`` (the paper, Keras ``reset_after=False``): r scales h before the
  product, ``W_hn (r * h) + b_hn``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import HiddenCell, HiddenState, add_biases, uniform_init_


class GRUCell(HiddenCell):
    r"""Gated recurrent unit. Gates r, z, n stacked in that order, as in torch.nn.GRU.

    .. math::
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr})

        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz})

        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn}))
        \quad [\text{reset\_after=False: } W_{hn} (r \odot h) + b_{hn}]

        h' = (1 - z) \odot n + z \odot h

    ``recurrent_h``: h as the products W_h h read it, where recurrent dropout masks it; the
    carry z h reads the state's own h (Gal & Ghahramani 2016, as Keras). None: state.h.

    Shapes:
        x_BI: (B, I); state.h, recurrent_h: (B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True,
                 reset_after: bool = True,
                 device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.reset_after = reset_after
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size, device=device, dtype=dtype))
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H, device=device, dtype=dtype))
        add_biases(self, 3 * H, bias, device=device, dtype=dtype)
        uniform_init_(self, H)

    def forward(self, x_BI: Tensor, state: HiddenState, *, recurrent_h: Tensor | None = None) -> HiddenState:
        h_BH = state.h if recurrent_h is None else recurrent_h
        xr_BH, xz_BH, xn_BH = F.linear(x_BI, self.weight_ih, self.bias_ih).chunk(3, dim=-1)
        w_hr, w_hz, w_hn = self.weight_hh.chunk(3, dim=0)
        b_hr, b_hz, b_hn = self.bias_hh.chunk(3) if self.bias_hh is not None else (None,) * 3
        r_BH = (xr_BH + F.linear(h_BH, w_hr, b_hr)).sigmoid()
        z_BH = (xz_BH + F.linear(h_BH, w_hz, b_hz)).sigmoid()
        if self.reset_after:
            n_BH = (xn_BH + r_BH * F.linear(h_BH, w_hn, b_hn)).tanh()
        else:
            n_BH = (xn_BH + F.linear(r_BH * h_BH, w_hn, b_hn)).tanh()
        h_BH = (1 - z_BH) * n_BH + z_BH * state.h
        return HiddenState(h_BH)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, reset_after={self.reset_after}"
