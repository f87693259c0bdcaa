"""The loop executor: the LSTM and GRU variants' time loop in compiled code (CPU).

torch's fused ops run only the plain cells. Layer norm, peepholes, recurrent dropout,
zoneout and the reset-before GRU otherwise fall to the reference loop, whose per-step
Python and autograd overhead makes training 3-4x slower than ``torch.nn.LSTM``. Here
PyTorch computes x W_ih^T for every step in one GEMM, and ``csrc/rnn_loop.cpp`` does the
rest: the input side's LayerNorm and bias (layer-norm cells), and per step one product with
W_hh and one fused pass over the gates, each thread running its own block of rows through
every step, with a hand-written backward. What it stores per step: the gate activations,
c before and after (LSTM), the recurrent product's normalised values and the LayerNorms' row
statistics (the input side's is normalised again in the backward, from x W_ih^T, which is
kept), and h_{t-1} (as the product reads it, or a GRU's own: its carry reads it unmasked),
except for the layer-norm cells without recurrent dropout, whose backward reads h_{t-1}
from the (then saved) output; see the C++ file.

Cells: ``LSTMCell`` (peepholes allowed, no projection), ``LayerNormLSTMCell``, ``GRUCell``
(either reset placement), ``LayerNormGRUCell``; wrapped as the drop-ins wrap them, from the
outside in: ``Zoneout``, ``RecurrentDropout``, ``WeightDrop``. The random masks are drawn
in the reference loop's order (weight mask, dropout mask, then zoneout's draws for every
step in one call, by ``Zoneout.draw_uniform``), so under one seed both executors use the
same masks, on any device.

CPU, float32 and float64: the loop is a ``torch.library`` custom op, so
``torch.compile(fullgraph=True)`` traces through it. On a CUDA GPU with Triton the same
loop runs as Triton kernels (``loop_triton``; the reset-before GRU in its persistent plan
only, so not with ``RNNKIT_TRITON_LOOP=steps``). Anything else runs the reference loop.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import Cell, HiddenState, LSTMState, cell_class
from rnnkit.cells.gru import GRUCell
from rnnkit.cells.lstm import LSTMCell
from rnnkit.cells.variants import LayerNormGRUCell, LayerNormLSTMCell
from rnnkit.cells.wrappers import RecurrentDropout, WeightDrop, Zoneout
from rnnkit.kernels import _ext, reference

name = "loop"
_LSTM, _GRU, _GRU_RESET_BEFORE = 0, 1, 2  # the kernel's kinds


def _unwrap(cell: Cell) -> tuple[Zoneout | None, RecurrentDropout | None, WeightDrop | None, Cell]:
    """(zoneout, recurrent dropout, weight drop, core cell): the drop-ins' order of wrappers."""
    parts: list = []
    for kind in (Zoneout, RecurrentDropout, WeightDrop):
        parts.append(cell if isinstance(cell, kind) else None)
        cell = cell.cell if isinstance(cell, kind) else cell
    return parts[0], parts[1], parts[2], cell


def _kind(core: Cell) -> int | None:
    if cell_class(core) is LayerNormLSTMCell or (cell_class(core) is LSTMCell and not core.proj_size):
        return _LSTM
    if cell_class(core) is LayerNormGRUCell or (cell_class(core) is GRUCell and core.reset_after):
        return _GRU
    return _GRU_RESET_BEFORE if cell_class(core) is GRUCell else None


@functools.cache
def _triton():
    """``loop_triton`` where a CUDA GPU and Triton are at hand, else None."""
    if not torch.cuda.is_available():
        return None
    try:
        from rnnkit.kernels import loop_triton
    except ImportError:
        return None
    return loop_triton


def _constant_for_dynamo(fn):
    """``torch.compiler.assume_constant_result`` (Dynamo calls ``fn`` once instead of tracing
    it) without importing torch._dynamo at import time, which costs every CLI command about
    1.2 s: the decorator only sets this mark, which Dynamo reads when it traces."""
    fn._dynamo_marked_constant = True
    return fn


@_constant_for_dynamo
def _cpu_built() -> bool:
    return _ext.load("rnn_loop") is not None


def supports(cell: Cell) -> bool:
    return _kind(_unwrap(cell)[3]) is not None and (_cpu_built() or _triton() is not None)


def _saved_shapes(kind: int, T: int, B: int, H: int, G: int, *, ln: bool, lnc: bool, lni: bool,
                  masked: bool) -> list[tuple[int, ...]]:
    """Shapes of what the forward keeps for the backward (the C++ file's order)."""
    shapes = [(T, B, H) if masked or not ln else (0,), (T, B, G)]  # h_{t-1} (see the C++), gates
    shapes += [(T, B, H)] * (2 if kind == _LSTM else 0 if ln and kind == _GRU else 1)  # c, c' | u_n | r h
    shapes += [(T, B, G), (T, B)] if ln else []
    shapes += [(T, B, H), (T, B)] if lnc else []
    shapes += [(T, B), (T, B)] if lni else []  # N_i's row means and 1/std
    return shapes


@torch.library.custom_op("rnnkit::rnn_loop", mutates_args=())
def rnn_loop(kind: int, xg_BTG: Tensor, h0_BH: Tensor, c0_BH: Tensor | None, w_hh: Tensor, b_hh: Tensor,
             ln_w: Tensor | None, lnc_w: Tensor | None, lnc_b: Tensor | None, peep_3H: Tensor | None,
             mask_BH: Tensor | None, keep_h_TBH: Tensor | None, keep_c_TBH: Tensor | None,
             lni_w: Tensor | None, b_ih: Tensor | None, lengths_B: Tensor, eps: float) -> list[Tensor]:
    """[out_BTH, h_T, c_T (empty for the GRU), *saved for the backward]. With ``lni_w``, xg
    is x W_ih^T alone, and the input side's LayerNorm (gain ``lni_w``) and ``b_ih`` are
    applied here, a row at a time (cheaper than torch's LayerNorm over the whole tensor)."""
    return _ext.load("rnn_loop").rnn_loop_forward(kind, xg_BTG, h0_BH, c0_BH, w_hh, b_hh, ln_w, lnc_w, lnc_b,
                                                  peep_3H, mask_BH, keep_h_TBH, keep_c_TBH, lni_w, b_ih,
                                                  lengths_B, eps)


@rnn_loop.register_fake
def _(kind, xg_BTG, h0_BH, c0_BH, w_hh, b_hh, ln_w, lnc_w, lnc_b, peep_3H, mask_BH, keep_h_TBH, keep_c_TBH,
      lni_w, b_ih, lengths_B, eps):
    (B, T, G), H = xg_BTG.shape, h0_BH.shape[1]
    shapes = [(B, T, H), (B, H), (B, H) if kind == _LSTM else (0,)]
    shapes += _saved_shapes(kind, T, B, H, G, ln=ln_w is not None, lnc=lnc_w is not None,
                            lni=lni_w is not None, masked=mask_BH is not None)
    return [xg_BTG.new_empty(s) for s in shapes]


@torch.library.custom_op("rnnkit::rnn_loop_backward", mutates_args=())
def rnn_loop_backward(kind: int, grad_out_BTH: Tensor, grad_h_BH: Tensor, grad_c_BH: Tensor | None,
                      out_BTH: Tensor, h0_BH: Tensor, w_hh: Tensor, b_hh: Tensor, ln_w: Tensor | None,
                      lnc_w: Tensor | None, lnc_b: Tensor | None, peep_3H: Tensor | None,
                      mask_BH: Tensor | None, keep_h_TBH: Tensor | None, keep_c_TBH: Tensor | None,
                      lni_w: Tensor | None, xg_BTG: Tensor | None, lengths_B: Tensor,
                      saved: list[Tensor]) -> list[Tensor]:
    """[d xg (time-major; batch-major with ``lni_w``), d h0, d c0, d w_hh, d b_hh, d ln_w, d lnc_w,
    d lnc_b, d peep, d lni_w, d b_ih] (empty where absent). ``xg_BTG``, the forward's, with
    ``lni_w`` only."""
    ext = _ext.load("rnn_loop")
    return ext.rnn_loop_backward(kind, grad_out_BTH, grad_h_BH, grad_c_BH, out_BTH, h0_BH, w_hh, b_hh, ln_w,
                                 lnc_w, lnc_b, peep_3H, mask_BH, keep_h_TBH, keep_c_TBH, lni_w, xg_BTG,
                                 lengths_B, saved)


@rnn_loop_backward.register_fake
def _(kind, grad_out_BTH, grad_h_BH, grad_c_BH, out_BTH, h0_BH, w_hh, b_hh, ln_w, lnc_w, lnc_b, peep_3H,
      mask_BH, keep_h_TBH, keep_c_TBH, lni_w, xg_BTG, lengths_B, saved):
    (B, T, H), G = grad_out_BTH.shape, w_hh.shape[0]
    new = grad_out_BTH.new_empty
    absent = (0,)
    d_xg = new(B, T, G) if lni_w is not None else new(T, B, G)
    return [d_xg, new(B, H), new(B, H) if kind == _LSTM else new(absent), new(w_hh.shape), new(G),
            new(G if ln_w is not None else 0), *(new(H if lnc_w is not None else 0) for _ in range(2)),
            new((3, H) if peep_3H is not None else absent),
            *(new(G if lni_w is not None else 0) for _ in range(2))]


def _setup_context(ctx, inputs, output):
    (kind, xg, h0, c0, w_hh, b_hh, ln_w, lnc_w, lnc_b, peep, mask, keep_h, keep_c, lni_w, b_ih, lengths_B,
     _) = inputs
    ctx.kind, ctx.has_c0, ctx.has_b_ih = kind, c0 is not None, b_ih is not None
    ctx.set_materialize_grads(False)  # no zero-filled gradients for the saved outputs
    # out only where the forward did not store h_{t-1} (the backward reads it there): saved,
    # the output may not be changed in place before the backward
    out = output[0] if output[3].numel() == 0 else None
    # xg where N_i is done in the op: its backward normalises xg again
    ctx.save_for_backward(out, h0, w_hh, b_hh, ln_w, lnc_w, lnc_b, peep, mask, keep_h, keep_c, lni_w,
                          xg if lni_w is not None else None, lengths_B, *output[3:])


def _backward(ctx, grads):
    out, h0, w_hh, b_hh, ln_w, lnc_w, lnc_b, peep, mask, keep_h, keep_c, lni_w, xg, lengths_B, *kept = (
        ctx.saved_tensors)
    T, B, _ = kept[1].shape  # the gate activations
    H = h0.shape[1]
    out = h0.new_empty(0) if out is None else out
    grad_out, grad_h, grad_c = (torch.zeros(shape, dtype=w_hh.dtype) if g is None else g.contiguous()
                                for g, shape in zip(grads[:3], [(B, T, H), (B, H), (B, H)], strict=True))
    d = rnn_loop_backward(ctx.kind, grad_out, grad_h, grad_c if ctx.has_c0 else None, out, h0, w_hh, b_hh,
                          ln_w, lnc_w, lnc_b, peep, mask, keep_h, keep_c, lni_w, xg, lengths_B, kept)
    d_xg, d_h0, d_c0, d_w, d_b, d_ln, d_lnc_w, d_lnc_b, d_peep, d_lni, d_b_ih = d

    def given(grad, input_):
        return None if input_ is None else grad

    d_xg = d_xg if lni_w is not None else d_xg.transpose(0, 1)  # time-major without N_i
    return (None, d_xg, d_h0, d_c0 if ctx.has_c0 else None, d_w, d_b, given(d_ln, ln_w),
            given(d_lnc_w, lnc_w), given(d_lnc_b, lnc_b), given(d_peep, peep), None, None, None,
            given(d_lni, lni_w), d_b_ih if ctx.has_b_ih else None, None, None)


rnn_loop.register_autograd(_backward, setup_context=_setup_context)


def _input_side(core: Cell, x_BTI: Tensor) -> Tensor:
    """xg: the gate pre-activations that depend on x alone, for all steps at once."""
    if isinstance(core, LayerNormLSTMCell | LayerNormGRUCell):
        xg_BTG = core.ln_ih(F.linear(x_BTI, core.weight_ih))
        return xg_BTG if core.bias_ih is None else xg_BTG + core.bias_ih
    return F.linear(x_BTI, core.weight_ih, core.bias_ih)


def _keep_masks(zone: Zoneout, T: int, state) -> tuple[Tensor | None, Tensor | None]:
    """Zoneout's (keep_h, keep_c) for every step, (T, B, H) each, or None where p = 0: 0/1
    in training, from the wrapper's own one-call draw (so the reference loop, given the
    same seed, keeps the same units); p at evaluation."""
    zoned, like = dict(zone.zoned(state)), state.h
    if not zone.training:
        return tuple(like.new_full((T, *like.shape), zoned[f]) if f in zoned else None for f in ("h", "c"))
    keep = {f: (u < zoned[f]).to(like.dtype) for f, u in zip(zoned, zone.draw_uniform(T, state), strict=True)}
    return keep.get("h"), keep.get("c")


def _where(x_BTI: Tensor, kind: int, H: int) -> str | None:
    """Which loop runs this input: "cpu" (the C++ op), "triton" (a CUDA tensor), or None."""
    if x_BTI.is_cpu and _cpu_built():
        return "cpu"
    # the reset-before GRU has no steps plan: RNNKIT_TRITON_LOOP=steps leaves it to the reference
    if x_BTI.is_cuda and _triton() is not None and (
            kind != _GRU_RESET_BEFORE or _triton().plan(H, kind) == "persistent"):
        return "triton"
    return None


def _mixed_eps(core: Cell) -> bool:
    """The kernels take one eps for all of a cell's LayerNorms, as the cells are built; one
    changed afterwards (``cell.ln_c.eps = ...``) sends the cell to the reference loop."""
    norms = [getattr(core, name, None) for name in ("ln_ih", "ln_hh", "ln_c")]
    return len({norm.eps for norm in norms if norm is not None}) > 1


def run(cell: Cell, x_BTI: Tensor, state, lengths_B: Tensor | None):
    zone, dropout, weight_drop, core = _unwrap(cell)
    kind = _kind(core)
    where = _where(x_BTI, kind, core.hidden_size)
    # under autocast the products come out in bf16/fp16, which the kernels do not take
    autocast = torch.is_autocast_enabled(x_BTI.device.type)
    unsupported = autocast or x_BTI.dtype not in (torch.float32, torch.float64) or _mixed_eps(core)
    # the compiled loops need at least one row; with none the reference loop costs nothing.
    # torch.export (ONNX) takes the reference loop, whose ops exporters translate (one scan in eval mode)
    if where is None or unsupported or x_BTI.shape[0] == 0 or torch.compiler.is_exporting():
        return reference.run(cell, x_BTI, state, lengths_B)
    B, T, _ = x_BTI.shape
    h0_BH = state.h
    # masks in the reference loop's order: the weight mask, the dropout mask, then zoneout's
    w_hh = core.weight_hh if weight_drop is None else weight_drop.dropped_weight_hh()
    mask_BH = None
    if dropout is not None and dropout.training and dropout.p > 0:
        mask_BH = dropout.draw_mask(B, device=x_BTI.device, dtype=x_BTI.dtype)
    keep_h, keep_c = (None, None) if zone is None else _keep_masks(zone, T, state)
    layer_norm = isinstance(core, LayerNormLSTMCell | LayerNormGRUCell)
    if layer_norm and where == "cpu":  # the C++ loop applies the input side's LayerNorm itself
        xg_BTG, fused = F.linear(x_BTI, core.weight_ih).contiguous(), (core.ln_ih.weight, core.bias_ih)
    else:
        xg_BTG, fused = _input_side(core, x_BTI).contiguous(), ()
    b_hh = core.bias_hh if core.bias_hh is not None else xg_BTG.new_zeros(xg_BTG.shape[-1])
    ln_w, eps = (core.ln_hh.weight, core.ln_hh.eps) if layer_norm else (None, 1e-5)
    lnc_w, lnc_b = (core.ln_c.weight, core.ln_c.bias) if isinstance(core, LayerNormLSTMCell) else (None, None)
    peep = (torch.stack([core.weight_ci, core.weight_cf, core.weight_co])
            if isinstance(core, LSTMCell) and core.peephole else None)
    lengths_B = (torch.full((B,), T, dtype=torch.long, device=x_BTI.device) if lengths_B is None
                 else lengths_B.to(device=x_BTI.device, dtype=torch.long).contiguous())
    c0_BH = state.c.contiguous() if kind == _LSTM else None
    args = (kind, xg_BTG, h0_BH.contiguous(), c0_BH, w_hh.contiguous(), b_hh, ln_w, lnc_w, lnc_b, peep,
            mask_BH, keep_h, keep_c)
    if where == "cpu":
        out_BTH, h_BH, c_BH, *_ = rnn_loop(*args, *(fused or (None, None)), lengths_B, float(eps))
    else:
        out_BTH, h_BH, c_BH = _triton().rnn_loop(*args, lengths_B, float(eps))
    final = LSTMState(h_BH, c_BH) if kind == _LSTM else HiddenState(h_BH)
    return out_BTH, final
