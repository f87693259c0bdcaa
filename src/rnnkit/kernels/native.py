"""The native executor: torch's fused RNN/LSTM/GRU ops (oneDNN on CPU, cuDNN on GPU) fed
the cells' own parameters, in torch.nn's flat-weight order.

Variable lengths without PackedSequence: rows are sorted by length, and time is cut at
every distinct length. Each segment is one dense fused call over the rows still running,
so finished rows cost nothing and the dense (oneDNN) path is kept. On this machine this is
about 2x faster than ``pack_padded_sequence`` + ``nn.LSTM``, whose packed path is not fused.
"""

from __future__ import annotations

from bisect import bisect_right

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import Cell
from rnnkit.cells.elman import ElmanCell
from rnnkit.cells.gru import GRUCell
from rnnkit.cells.lstm import LSTMCell
from rnnkit.cells.wrappers import WeightDrop

name = "native"

_OPS = {"gru": torch.gru, "rnn_tanh": torch.rnn_tanh, "rnn_relu": torch.rnn_relu}
HX = tuple[Tensor, ...]  # (h,) or (h, c), each (layers * directions, B, size)


def _owner(cell: Cell) -> Cell:
    """The cell that owns the weights: weight drop is the one wrapper this executor runs."""
    return cell.cell if isinstance(cell, WeightDrop) else cell


def supports(cell: Cell) -> bool:
    core = _owner(cell)
    if type(core) is LSTMCell:
        return not core.peephole
    if type(core) is GRUCell:
        return core.reset_after
    return type(core) is ElmanCell


def op_kind(cell: Cell) -> str:
    core = _owner(cell)
    if isinstance(core, ElmanCell):
        return f"rnn_{core.nonlinearity}"
    return "lstm" if isinstance(core, LSTMCell) else "gru"


_FLAT_ORDER = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


def flat_weights(cell: Cell) -> list[Tensor]:
    """torch.nn's per-layer weight list: w_ih, w_hh, [b_ih, b_hh], [w_hr]."""
    if isinstance(cell, WeightDrop):
        weights = flat_weights(cell.cell)
        weights[1] = cell.dropped_weight_hh()
        return weights
    params = cell._parameters  # a dict lookup: Module.__getattr__ is slow on the streaming path
    return [params[n] for n in _FLAT_ORDER if params.get(n) is not None]


# Dynamo cannot trace torch's fused RNN ops (aten.mkldnn_rnn_layer); torch.nn.LSTM gets a
# graph break for the same reason (torch._dynamo.config.allow_rnn=False).
@torch.compiler.disable
def fused(kind: str, x: Tensor, hx: HX, weights: list[Tensor], *, bias: bool, num_layers: int,
          dropout: float, train: bool, bidirectional: bool, batch_first: bool):
    """One call of torch's fused op, exactly as torch.nn.RNN/LSTM/GRU.forward makes it."""
    args = (weights, bias, num_layers, dropout, train, bidirectional, batch_first)
    if kind == "lstm":
        out, h, c = torch.lstm(x, hx, *args)
        return out, (h, c)
    out, h = _OPS[kind](x, hx[0], *args)
    return out, (h,)


def segmented(kind: str, x_BTI: Tensor, hx: HX, weights: list[Tensor], lengths_B: Tensor | None,
              *, bias: bool, num_layers: int = 1, dropout: float = 0.0, train: bool = False):
    """A unidirectional stack over ragged rows: one fused call per distinct-length segment."""
    opts = dict(bias=bias, num_layers=num_layers, dropout=dropout, train=train,
                bidirectional=False, batch_first=True)
    B, T, _ = x_BTI.shape
    if lengths_B is None:
        return fused(kind, x_BTI, hx, weights, **opts)
    lengths, order_B = lengths_B.sort(descending=True)
    lengths = lengths.tolist()
    if lengths[-1] == T:  # nothing ragged: one dense call
        return fused(kind, x_BTI, hx, weights, **opts)
    x_BTI = x_BTI.index_select(0, order_B)
    hx = tuple(t.index_select(1, order_B) for t in hx)
    ascending = lengths[::-1]
    outs, finals, start, live = [], [], 0, B
    for end in sorted(set(lengths)):
        out_nSO, hx = fused(kind, x_BTI[:live, start:end], hx, weights, **opts)
        outs.append(F.pad(out_nSO, (0, 0, 0, 0, 0, B - live)))  # finished rows emit zeros
        still = B - bisect_right(ascending, end)  # rows longer than `end`
        finals.append(tuple(t[:, still:] for t in hx))  # rows that end here
        hx = tuple(t[:, :still] for t in hx)
        start, live = end, still
    out_BTO = F.pad(torch.cat(outs, dim=1), (0, 0, 0, T - start))
    final = tuple(torch.cat(parts, dim=1) for parts in zip(*reversed(finals), strict=True))
    unsort_B = torch.empty_like(order_B)
    unsort_B[order_B] = torch.arange(B, device=order_B.device)
    return out_BTO.index_select(0, unsort_B), tuple(t.index_select(1, unsort_B) for t in final)


def run(cell: Cell, x_BTI: Tensor, state, lengths_B: Tensor | None):
    hx = tuple(t.unsqueeze(0) for t in state)
    out_BTO, hx = segmented(op_kind(cell), x_BTI, hx, flat_weights(cell), lengths_B,
                            bias=_owner(cell).bias_ih is not None)
    return out_BTO, type(state)(*(t.squeeze(0) for t in hx))
