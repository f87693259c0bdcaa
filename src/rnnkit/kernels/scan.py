"""The scan executor for minGRU and minLSTM: all time steps at once.

Both cells reduce to h_t = a_t * h_{t-1} + b_t with a_t, b_t > 0 computed from x_t alone.
In log space (Heinsen 2023, "Efficient parallelization of a ubiquitous sequential
computation", as used by Feng et al. 2024, Appendix B):

    a*_t = sum_{k<=t} log a_k
    h_t  = exp(a*_t) * h_0 + exp(a*_t + logcumsumexp_{k<=t}(log b_k - a*_k))

h_0 is kept out of the logarithm, so any initial state (also negative) is allowed.
Padded steps get a = 1 and b = 0, which freezes each row's state at its own last step.

Under ``torch.export`` (ONNX) a_t and b_t are formed for every step at once as the cell
forms them, and h_t = a_t * h_{t-1} + b_t runs as one ``scan`` over time (ONNX's Scan), for
any T. The log-space form is not exported: onnxscript writes logcumsumexp as
log(cumsum(exp(x - max))) with one maximum over the whole sequence, whose early terms then
underflow (the file was wrong from about T = 300 on).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import Cell, HiddenState, cell_class
from rnnkit.cells.mingru import MinGRUCell, MinLSTMCell, g, log_g
from rnnkit.layers.masking import lengths_to_mask

name = "scan"


def supports(cell: Cell) -> bool:
    return cell_class(cell) in (MinGRUCell, MinLSTMCell)


def log_coefficients(cell: Cell, x_BTI: Tensor) -> tuple[Tensor, Tensor]:
    """log a_t and log b_t of the linear recurrence, from the cell's own parameters."""
    k_BTG = F.linear(x_BTI, cell.weight_ih, cell.bias_ih)
    if cell_class(cell) is MinGRUCell:
        k_z, k_h = k_BTG.chunk(2, dim=-1)
        return -F.softplus(k_z), -F.softplus(-k_z) + log_g(k_h)  # log(1-z), log z + log g
    k_f, k_i, k_h = k_BTG.chunk(3, dim=-1)
    log_f, log_i = -F.softplus(-k_f), -F.softplus(-k_i)
    log_norm = torch.logaddexp(log_f, log_i)  # log(f + i)
    return log_f - log_norm, log_i - log_norm + log_g(k_h)


def linear_scan_log(log_a_BTH: Tensor, log_b_BTH: Tensor, h0_BH: Tensor) -> Tensor:
    a_star_BTH = log_a_BTH.cumsum(dim=1)
    from_zero_BTH = (a_star_BTH + (log_b_BTH - a_star_BTH).logcumsumexp(dim=1)).exp()
    return from_zero_BTH + a_star_BTH.exp() * h0_BH[:, None]


def coefficients(cell: Cell, x_BTI: Tensor) -> tuple[Tensor, Tensor]:
    """a_t and b_t of the linear recurrence, as the cell's ``forward`` forms them."""
    k_BTG = F.linear(x_BTI, cell.weight_ih, cell.bias_ih)
    if cell_class(cell) is MinGRUCell:
        k_z, k_h = k_BTG.chunk(2, dim=-1)
        z = k_z.sigmoid()
        return 1 - z, z * g(k_h)
    k_f, k_i, k_h = k_BTG.chunk(3, dim=-1)
    f, i = k_f.sigmoid(), k_i.sigmoid()
    return f / (f + i), i / (f + i) * g(k_h)


def run(cell: Cell, x_BTI: Tensor, state: HiddenState, lengths_B: Tensor | None):
    if torch.compiler.is_exporting():
        return _scanned(cell, x_BTI, state, lengths_B)
    log_a_BTH, log_b_BTH = log_coefficients(cell, x_BTI)
    if lengths_B is not None:
        live_BT1 = lengths_to_mask(lengths_B, x_BTI.shape[1])[..., None]
        log_a_BTH = torch.where(live_BT1, log_a_BTH, 0.0)
        log_b_BTH = torch.where(live_BT1, log_b_BTH, float("-inf"))
    h_BTH = linear_scan_log(log_a_BTH, log_b_BTH, state.h)
    final = HiddenState(h_BTH[:, -1])
    if lengths_B is not None:
        h_BTH = torch.where(live_BT1, h_BTH, 0.0)
    return h_BTH, final


def _scanned(cell: Cell, x_BTI: Tensor, state: HiddenState, lengths_B: Tensor | None):
    """``run`` for torch.export: the coefficients at once, then one ``scan`` of h = a h + b."""
    from torch._higher_order_ops.scan import scan  # torch's scan has no public name yet

    a_BTH, b_BTH = coefficients(cell, x_BTI)
    if lengths_B is not None:
        live_BT1 = lengths_to_mask(lengths_B, x_BTI.shape[1])[..., None]
        a_BTH, b_BTH = torch.where(live_BT1, a_BTH, 1.0), torch.where(live_BT1, b_BTH, 0.0)

    def body(h_BH: Tensor, ab: tuple[Tensor, Tensor]):
        h_BH = ab[0] * h_BH + ab[1]
        return h_BH, h_BH.clone()  # the output may not alias the carry

    final_BH, h_TBH = scan(body, state.h, (a_BTH.transpose(0, 1), b_BTH.transpose(0, 1)))
    h_BTH = h_TBH.transpose(0, 1)
    if lengths_B is not None:
        h_BTH = torch.where(live_BT1, h_BTH, 0.0)
    return h_BTH, HiddenState(final_BH)
