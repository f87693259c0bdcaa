"""The native executor: torch's fused RNN/LSTM/GRU ops (oneDNN on CPU, cuDNN on GPU) fed
the cells' own parameters, in torch.nn's flat-weight order.

Variable lengths without PackedSequence: on the CPU, rows are sorted by length, and time is
cut at every distinct length. Each segment is one dense fused call over the rows still
running, so finished rows cost nothing and the dense (oneDNN) path is kept. On this machine
this is about 2x faster than ``pack_padded_sequence`` + ``nn.LSTM``, whose packed path is
not fused. On a GPU, cuDNN's packed op already skips finished rows in one call, and takes
both directions of a stack at once: the lengths are packed for it, as torch.nn does.
"""

from __future__ import annotations

from bisect import bisect_right

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.cells.base import Cell, cell_class
from rnnkit.cells.elman import ElmanCell
from rnnkit.cells.gru import GRUCell
from rnnkit.cells.lstm import LSTMCell
from rnnkit.cells.wrappers import WeightDrop
from rnnkit.kernels import _ext, _int8, reference

name = "native"

_OPS = {"gru": torch.gru, "rnn_tanh": torch.rnn_tanh, "rnn_relu": torch.rnn_relu}
HX = tuple[Tensor, ...]  # (h,) or (h, c), each (layers * directions, B, size)


def owner(cell: Cell) -> Cell:
    """The cell that owns the weights: weight drop is the one wrapper this executor runs."""
    return cell.cell if isinstance(cell, WeightDrop) else cell


def supports(cell: Cell) -> bool:
    core = owner(cell)
    if cell_class(core) is LSTMCell:
        return not core.peephole
    if cell_class(core) is GRUCell:
        return core.reset_after
    return cell_class(core) is ElmanCell


def op_kind(cell: Cell) -> str:
    core = owner(cell)
    if isinstance(core, ElmanCell):
        return f"rnn_{core.nonlinearity}"
    return "lstm" if isinstance(core, LSTMCell) else "gru"


_FLAT_ORDER = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


def weight_dict(cell: Cell) -> dict:
    """``cell``'s weights by name: its ``_parameters``, or on an ``nn.DataParallel`` replica,
    whose ``_parameters`` torch's ``replicate`` empties and whose weights it sets as plain
    attributes, its ``__dict__``."""
    return cell._parameters or cell.__dict__


def flat_weights(cell: Cell) -> list[Tensor]:
    """torch.nn's per-layer weight list: w_ih, w_hh, [b_ih, b_hh], [w_hr]."""
    if isinstance(cell, WeightDrop):
        weights = flat_weights(cell.cell)
        weights[1] = cell.dropped_weight_hh()
        return weights
    if cell_class(cell) is not type(cell):  # parametrized: the weights are computed at each access
        return [w for w in (getattr(cell, n, None) for n in _FLAT_ORDER) if w is not None]
    # weight_dict(cell), inlined: a dict lookup, as Module.__getattr__ is slow on the streaming path
    params = cell._parameters or cell.__dict__
    return [params[n] for n in _FLAT_ORDER if params.get(n) is not None]


def fused(kind: str, x: Tensor, hx: HX, weights: list[Tensor], *, bias: bool, num_layers: int,
          dropout: float, train: bool, bidirectional: bool, batch_first: bool):
    """One call of torch's fused op, exactly as torch.nn.RNN/LSTM/GRU.forward makes it."""
    args = (weights, bias, num_layers, dropout, _train_flag(train, x, dropout), bidirectional, batch_first)
    if kind == "lstm":
        if _cpu_autocast_supported(x):
            out, h, c = torch.lstm(x, hx, *args)
        else:  # in the weights' precision, from inputs that earlier autocast ops may have lowered
            with torch.autocast("cpu", enabled=False):
                dtype = weights[0].dtype
                out, h, c = torch.lstm(x.to(dtype), tuple(t.to(dtype) for t in hx), *args)
        return out, (h, c)
    out, h = _OPS[kind](x, hx[0], *args)
    return out, (h,)


def _cpu_autocast_supported(x: Tensor) -> bool:
    """Whether CPU autocast may run the LSTM in its low precision: torch sends a CPU LSTM to
    oneDNN, which has no bf16/fp16 LSTM where the CPU lacks those instructions (on an AVX2
    EPYC torch.nn.LSTM fails there: "could not create a primitive descriptor"). Elsewhere
    the LSTM runs in float32 under autocast, as an op autocast does not list would."""
    if not x.is_cpu or not torch.is_autocast_enabled("cpu"):
        return True
    low = torch.get_autocast_dtype("cpu")
    if low == torch.bfloat16:
        return torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return low != torch.float16 or torch.ops.mkldnn._is_mkldnn_fp16_supported()


def _train_flag(train: bool, x: Tensor, dropout: float) -> bool:
    """The fused op's ``train``: cuDNN keeps what its backward needs only in training mode;
    without dropout the flag changes nothing else, so a layer in eval mode can still be
    differentiated there."""
    return train or (x.is_cuda and dropout == 0 and torch.is_grad_enabled())


def call(kind: str, x: Tensor, hx: HX, weights: list[Tensor], lengths_B: Tensor | None, *, bias: bool,
         num_layers: int = 1, dropout: float = 0.0, train: bool = False, bidirectional: bool = False,
         batch_first: bool = True):
    """``fused`` (dense), or with lengths (batch-first ``x``) ``packed`` on a GPU and
    ``segmented`` (one direction) on the CPU -> (out, hx).

    Under ``torch.compile`` both go through the ``rnnkit::native_rnn`` custom op instead:
    Dynamo cannot trace torch's fused RNN ops (aten.mkldnn_rnn_layer; torch.nn.LSTM graph-
    breaks there) nor the data-dependent cut into segments, and an opaque op with a fake
    (shape) implementation keeps the graph whole. Its backward recomputes the forward with
    autograd, so a compiled training step pays about one extra forward; dropout between
    layers is not allowed inside it (a recomputation would draw other masks), so callers run
    such stacks layer by layer when compiling."""
    opts = dict(bias=bias, num_layers=num_layers, dropout=dropout, train=train)
    if torch.compiler.is_compiling() and not (lengths_B is None and torch.compiler.is_exporting()):
        if train and dropout > 0 and num_layers > 1:
            raise ValueError("dropout between layers cannot run in one native op under torch.compile; "
                             "run the stack layer by layer")
        # autocast does not reach into the op: an input it lowered runs in the weights' dtype
        dtype = weights[0].dtype
        out, *state = native_rnn(kind, x.to(dtype), [t.to(dtype) for t in hx], weights, lengths_B, bias,
                                 num_layers, bidirectional, batch_first)
        return out, tuple(state)
    if lengths_B is None:
        return fused(kind, x, hx, weights, bidirectional=bidirectional, batch_first=batch_first, **opts)
    if x.is_cuda:
        return packed(kind, x, hx, weights, lengths_B, bidirectional=bidirectional, **opts)
    if bidirectional:
        raise ValueError("segmented runs one direction: run a bidirectional stack layer by layer")
    return segmented(kind, x, hx, weights, lengths_B, **opts)


@torch.library.custom_op("rnnkit::native_rnn", mutates_args=())
def native_rnn(kind: str, x: Tensor, hx: list[Tensor], weights: list[Tensor], lengths_B: Tensor | None,
               bias: bool, num_layers: int, bidirectional: bool, batch_first: bool) -> list[Tensor]:
    """[out, *final state] of ``call`` without dropout; see ``call``."""
    out, state = call(kind, x, tuple(hx), weights, lengths_B, bias=bias, num_layers=num_layers,
                      bidirectional=bidirectional, batch_first=batch_first)
    # contiguous, as the fake implementation promises (batch_first output is a transpose)
    return [out.contiguous(), *(t.contiguous() for t in state)]


@native_rnn.register_fake
def _(kind, x, hx, weights, lengths_B, bias, num_layers, bidirectional, batch_first):
    directions = 2 if bidirectional else 1
    return [x.new_empty(*x.shape[:-1], directions * hx[0].shape[-1]), *(t.new_empty(t.shape) for t in hx)]


@torch.library.custom_op("rnnkit::native_rnn_backward", mutates_args=())
def native_rnn_backward(grads: list[Tensor], kind: str, x: Tensor, hx: list[Tensor], weights: list[Tensor],
                        lengths_B: Tensor | None, bias: bool, num_layers: int, bidirectional: bool,
                        batch_first: bool) -> list[Tensor]:
    """Gradients for [x, *hx, *weights]: the forward again, with autograd, then its backward."""
    # a custom op runs with autograd's dispatch key excluded; this recomputation needs it back
    autograd_key = torch._C.DispatchKey.AutogradFunctionality
    with torch._C._SetExcludeDispatchKeyGuard(autograd_key, False), torch.enable_grad():
        inputs = [t.detach().requires_grad_() for t in (x, *hx, *weights)]
        h = 1 + len(hx)
        out, state = call(kind, inputs[0], tuple(inputs[1:h]), inputs[h:], lengths_B, bias=bias,
                          num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
        got = torch.autograd.grad([out, *state], inputs, grads, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(got, inputs, strict=True)]


@native_rnn_backward.register_fake
def _(grads, kind, x, hx, weights, lengths_B, bias, num_layers, bidirectional, batch_first):
    return [t.new_empty(t.shape) for t in (x, *hx, *weights)]


def _setup_context(ctx, inputs, output):
    kind, x, hx, weights, lengths_B, *flags = inputs
    ctx.save_for_backward(x, *hx, *weights, *(() if lengths_B is None else (lengths_B,)))
    ctx.meta = (kind, len(hx), len(weights), lengths_B is not None, flags)


def _backward(ctx, grads):
    kind, n_hx, n_w, ragged, flags = ctx.meta
    saved = ctx.saved_tensors
    x, hx, weights = saved[0], list(saved[1:1 + n_hx]), list(saved[1 + n_hx:1 + n_hx + n_w])
    lengths_B = saved[-1] if ragged else None
    got = native_rnn_backward(list(grads), kind, x, hx, weights, lengths_B, *flags)
    return None, got[0], got[1:1 + n_hx], got[1 + n_hx:], None, None, None, None, None


native_rnn.register_autograd(_backward, setup_context=_setup_context)


_STEP_KIND = {"lstm": 0, "gru": 1, "rnn_tanh": 2, "rnn_relu": 3}


def stepper(kind: str, layers: list[list[Tensor]], params: list[dict], *, int8: bool = False):
    """The compiled one-step kernel (``csrc/step.cpp``) with its own copy of a stack's
    weights (``step_weights``), or None where it is not built. ``params``: the weight owners'
    parameter dicts, which its ``fresh()`` compares with what the copy was made from.
    ``run(x_BI, h_LBH, c_LBH or None) -> (h, c, output)`` steps with checks;
    ``stream(x, hx)`` is the streaming call: ``(output, hx)`` as ``DropIn.step`` returns
    it, or None where it cannot run as given (the caller then takes its checked path)."""
    ext = _ext.load("step")
    if ext is None:
        return None
    return ext.Stepper(_STEP_KIND[kind], int8, step_weights(kind, layers, int8=int8), params)


def step_weights(kind: str, layers: list[list[Tensor]], *, int8: bool = False) -> list[Tensor]:
    """The projections ``step`` makes, per layer: [W_ih | W_hh] with b_ih + b_hh (LSTM,
    RNN: one pass over the weights per step), or W_ih with b_ih and W_hh with b_hh (GRU,
    and int8); float32 matrices transposed, (K, G). ``int8``: each matrix quantized for
    fbgemm's dynamic int8 linear (per tensor, ``_int8.quantize``; x and h are quantized per
    call, each with its own scale), as torch's first quantized LSTM did."""
    out = []
    for w_ih, w_hh, *biases in layers:
        b_ih, b_hh = biases if biases else (w_ih.new_zeros(w_ih.shape[0]),) * 2
        pairs = ([(w_ih, b_ih), (w_hh, b_hh)] if kind == "gru" or int8
                 else [(torch.cat([w_ih, w_hh], dim=1), b_ih + b_hh)])
        for w, b in pairs:  # the model's dtype: the kernel refuses all but float32
            w, b = w.detach().contiguous(), b.detach().contiguous()
            # float32 as w^T (K, G): MKL's gemv reads that layout faster (see step.cpp)
            out += [*_int8.quantize(w), b] if int8 else [w.t().contiguous(), b]
    return out


def packed(kind: str, x_BTI: Tensor, hx: HX, weights: list[Tensor], lengths_B: Tensor, *, bias: bool,
           num_layers: int = 1, dropout: float = 0.0, train: bool = False, bidirectional: bool = False):
    """A stack over ragged rows in one call of torch's packed op, as torch.nn.LSTM/GRU/RNN
    run a PackedSequence: the op skips finished rows, and on cuDNN a stack's weights stay
    the one flat buffer ``flatten_parameters`` made (a layer-by-layer run passes parts of
    it, which cuDNN copies at every call)."""
    B, T, _ = x_BTI.shape
    if B == 0:  # pack_padded_sequence takes no empty batch; the dense call returns empties
        return fused(kind, x_BTI, hx, weights, bias=bias, num_layers=num_layers, dropout=dropout,
                     train=train, bidirectional=bidirectional, batch_first=True)
    # the lengths go to the host, as with pack_padded_sequence in torch.nn code
    data = pack_padded_sequence(x_BTI, lengths_B.cpu(), batch_first=True, enforce_sorted=False)
    hx = tuple(t.index_select(1, data.sorted_indices) for t in hx)
    args = (data.data, data.batch_sizes)
    opts = (weights, bias, num_layers, dropout, _train_flag(train, x_BTI, dropout), bidirectional)
    if kind == "lstm":
        out, *state = torch.lstm(*args, hx, *opts)
    else:
        out, *state = _OPS[kind](*args, hx[0], *opts)
    out = PackedSequence(out, data.batch_sizes, data.sorted_indices, data.unsorted_indices)
    out_BTO = pad_packed_sequence(out, batch_first=True, total_length=T)[0]
    return out_BTO, tuple(t.index_select(1, data.unsorted_indices) for t in state)


def segmented(kind: str, x_BTI: Tensor, hx: HX, weights: list[Tensor], lengths_B: Tensor | None,
              *, bias: bool, num_layers: int = 1, dropout: float = 0.0, train: bool = False):
    """A unidirectional stack over ragged rows: one fused call per distinct-length segment."""
    opts = dict(bias=bias, num_layers=num_layers, dropout=dropout, train=train,
                bidirectional=False, batch_first=True)
    B, T, _ = x_BTI.shape
    if lengths_B is None or B == 0:  # no rows: nothing to cut, and the dense call returns empties
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


def exported_as_loop(lengths_B: Tensor | None, training: bool) -> bool:
    """Whether, under torch.export (ONNX), a native layer runs the reference loop instead of
    torch's fused op: the ragged call is a custom op no exporter translates, torch's packed
    op needs the lengths on the host, and its dense op fixes T, while in eval mode the loop
    is exported as one scan, for any T. In training mode, dense, the fused op stays (T
    fixed, as for torch.nn's layers)."""
    return torch.compiler.is_exporting() and (lengths_B is not None or not training)


def run(cell: Cell, x_BTI: Tensor, state, lengths_B: Tensor | None):
    if exported_as_loop(lengths_B, cell.training):
        return reference.run(cell, x_BTI, state, lengths_B)
    hx = tuple(t.unsqueeze(0) for t in state)
    out_BTO, hx = call(op_kind(cell), x_BTI, hx, flat_weights(cell), lengths_B,
                       bias=owner(cell).bias_ih is not None)
    return out_BTO, type(state)(*(t.squeeze(0) for t in hx))
