"""LSTM cell (Hochreiter & Schmidhuber 1997) with optional peepholes and projection.

Peepholes follow Gers & Schmidhuber (2000), "Recurrent nets that time and count":
the input and forget gates look at c_{t-1}, the output gate at c_t. The projection
follows Sak et al. (2014), "Long short-term memory recurrent neural network
architectures for large scale acoustic modeling", as torch.nn.LSTM(proj_size=...).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import Cell, LSTMState, add_biases, plain_int, uniform_init_, zeros


class LSTMCell(Cell):
    r"""Long short-term memory cell. Gates i, f, g, o stacked in that order, as in torch.nn.LSTM.

    .. math::
        i = \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi} [+ p_i \odot c])

        f = \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf} [+ p_f \odot c])

        g = \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg})

        c' = f \odot c + i \odot g

        o = \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho} [+ p_o \odot c'])

        h' = o \odot \tanh(c') \quad [h' = W_{hr} (o \odot \tanh(c')) \text{ with projection}]

    Arguments:
        input_size: I. hidden_size: H (size of c).
        bias: add ``bias_ih`` and ``bias_hh``.
        proj_size: if > 0, h is projected to this size by ``weight_hr`` (torch.nn.LSTM's layout).
        peephole: add diagonal peephole weights ``weight_ci``, ``weight_cf``, ``weight_co`` (H,).

    Shapes:
        x_BI: (B, I); state.h: (B, proj_size or H); state.c: (B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True,
                 proj_size: int = 0, peephole: bool = False,
                 device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        proj_size = plain_int(proj_size)
        if not isinstance(proj_size, int) or isinstance(proj_size, bool) or not 0 <= proj_size < hidden_size:
            raise ValueError(f"proj_size must be an int in [0, hidden_size={hidden_size}), "
                             f"got {proj_size!r}")
        H, out = hidden_size, proj_size or hidden_size
        self.output_size = out
        self.proj_size, self.peephole = proj_size, peephole
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size, device=device, dtype=dtype))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, out, device=device, dtype=dtype))
        add_biases(self, 4 * H, bias, device=device, dtype=dtype)
        if proj_size:
            self.weight_hr = nn.Parameter(torch.empty(proj_size, H, device=device, dtype=dtype))
        if peephole:
            self.weight_ci = nn.Parameter(torch.empty(H, device=device, dtype=dtype))
            self.weight_cf = nn.Parameter(torch.empty(H, device=device, dtype=dtype))
            self.weight_co = nn.Parameter(torch.empty(H, device=device, dtype=dtype))
        uniform_init_(self, H)

    def init_state(self, batch: int, *, device=None, dtype=None) -> LSTMState:
        return LSTMState(zeros(batch, self.output_size, device, dtype),
                         zeros(batch, self.hidden_size, device, dtype))

    def forward(self, x_BI: Tensor, state: LSTMState, *, recurrent_h: Tensor | None = None) -> LSTMState:
        h_BP, c_BH = state
        h_BP = h_BP if recurrent_h is None else recurrent_h  # the h the product reads (recurrent dropout)
        gates_BG = (F.linear(x_BI, self.weight_ih, self.bias_ih)
                    + F.linear(h_BP, self.weight_hh, self.bias_hh))
        i_BH, f_BH, g_BH, o_BH = gates_BG.chunk(4, dim=-1)
        if self.peephole:
            i_BH = i_BH + self.weight_ci * c_BH
            f_BH = f_BH + self.weight_cf * c_BH
        c_BH = f_BH.sigmoid() * c_BH + i_BH.sigmoid() * g_BH.tanh()
        if self.peephole:
            o_BH = o_BH + self.weight_co * c_BH
        h_BH = o_BH.sigmoid() * c_BH.tanh()
        h_BP = F.linear(h_BH, self.weight_hr) if self.proj_size else h_BH
        return LSTMState(h_BP, c_BH)

    def extra_repr(self) -> str:
        extra = f", proj_size={self.proj_size}" if self.proj_size else ""
        extra += ", peephole=True" if self.peephole else ""
        return f"{self.input_size}, {self.hidden_size}{extra}"
