"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?", arXiv:2410.01201).

The gates depend on x_t only, so h_t = a_t * h_{t-1} + b_t is a linear recurrence that a
parallel scan can evaluate over all t at once (``rnnkit.kernels.scan``). These cells are
the step-by-step reference for that scan.

We use the paper's log-space variant (Section 3 and Appendix B.3): the candidate state
passes through g(x) = x + 0.5 (x >= 0), sigmoid(x) (x < 0), which keeps it positive so the
scan can run on logarithms. minLSTM uses the length-independent normalisation of
Section 3.2.3: f' = f / (f + i), i' = i / (f + i).

The initial state h_0 enters as it is, as in the paper's sequential equations (zeros by
default). The paper's log-space listing starts from log g(h_0) instead, so a zero h_0 acts
there as g(0) = 0.5; its numbers differ from these over the first steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import HiddenCell, HiddenState, uniform_init_


def g(x: Tensor) -> Tensor:
    """The paper's positive activation: x + 0.5 for x >= 0, sigmoid(x) below (continuous at 0)."""
    return torch.where(x >= 0, x + 0.5, x.sigmoid())


def log_g(x: Tensor) -> Tensor:
    """log g(x), computed without forming g(x) (log-sigmoid for x < 0)."""
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


class MinGRUCell(HiddenCell):
    r"""Minimal GRU. ``weight_ih`` stacks the rows of z and the candidate h̃, in that order.

    .. math::
        z = \sigma(W_{iz} x + b_{iz})

        \tilde h = g(W_{ih} x + b_{ih})

        h' = (1 - z) \odot h + z \odot \tilde h

    Shapes:
        x_BI: (B, I); state.h: (B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True,
                 device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(2 * H, input_size, device=device, dtype=dtype))
        self.bias_ih = nn.Parameter(torch.empty(2 * H, device=device, dtype=dtype)) if bias else None
        uniform_init_(self, H)

    def forward(self, x_BI: Tensor, state: HiddenState) -> HiddenState:
        k_z, k_h = F.linear(x_BI, self.weight_ih, self.bias_ih).chunk(2, dim=-1)
        z_BH = k_z.sigmoid()
        h_tilde_BH = g(k_h)
        h_BH = (1 - z_BH) * state.h + z_BH * h_tilde_BH
        return HiddenState(h_BH)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class MinLSTMCell(HiddenCell):
    r"""Minimal LSTM. ``weight_ih`` stacks the rows of f, i and the candidate h̃, in that order.

    .. math::
        f = \sigma(W_{if} x + b_{if}), \quad i = \sigma(W_{ii} x + b_{ii})

        \tilde h = g(W_{ih} x + b_{ih})

        f', i' = f / (f + i), \; i / (f + i)

        h' = f' \odot h + i' \odot \tilde h

    Shapes:
        x_BI: (B, I); state.h: (B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True,
                 device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size, device=device, dtype=dtype))
        self.bias_ih = nn.Parameter(torch.empty(3 * H, device=device, dtype=dtype)) if bias else None
        uniform_init_(self, H)

    def forward(self, x_BI: Tensor, state: HiddenState) -> HiddenState:
        k_f, k_i, k_h = F.linear(x_BI, self.weight_ih, self.bias_ih).chunk(3, dim=-1)
        f_BH, i_BH = k_f.sigmoid(), k_i.sigmoid()
        h_tilde_BH = g(k_h)
        f_BH, i_BH = f_BH / (f_BH + i_BH), i_BH / (f_BH + i_BH)
        h_BH = f_BH * state.h + i_BH * h_tilde_BH
        return HiddenState(h_BH)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"
