"""The fused executor for minGRU and minLSTM: one GEMM in PyTorch for the gate inputs of
every step, then a compiled scan (``csrc/min_scan.cpp``) that computes the gates and
h_t = a_t * h_{t-1} + b_t in one pass over time, with a hand-written backward.

The log-space ``scan`` executor does several elementwise passes over (B, T, H) with
transcendental functions in each; on a CPU that costs more than the sequential loop it
replaces. This one reads k once forward and once backward, and stores only the output
(the backward pass recomputes the gates and reads h_{t-1} from it).

The scan is a ``torch.library`` custom op with a fake (shape) implementation and a
registered backward, so ``torch.compile(fullgraph=True)`` traces through it. CPU, float32
and float64 only; anything else runs the ``scan`` executor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import Cell, HiddenState, cell_class
from rnnkit.cells.mingru import MinGRUCell, MinLSTMCell
from rnnkit.kernels import _ext, scan

name = "fused"
_KIND = {MinGRUCell: 0, MinLSTMCell: 1}  # the kernel's switch: gates [z, h~] or [f, i, h~]


def supports(cell: Cell) -> bool:
    return cell_class(cell) in _KIND and _ext.load("min_scan") is not None


@torch.library.custom_op("rnnkit::min_scan", mutates_args=())
def min_scan(k_BTG: Tensor, h0_BH: Tensor, lengths_B: Tensor, kind: int) -> tuple[Tensor, Tensor]:
    """(out_BTH, final_BH) of the minGRU (kind 0) or minLSTM (kind 1) recurrence."""
    out_BTH, final_BH = _ext.load("min_scan").min_scan_forward(k_BTG, h0_BH, lengths_B, kind)
    return out_BTH, final_BH


@min_scan.register_fake
def _(k_BTG, h0_BH, lengths_B, kind):
    B, T, _ = k_BTG.shape
    return k_BTG.new_empty(B, T, h0_BH.shape[1]), h0_BH.new_empty(h0_BH.shape)


@torch.library.custom_op("rnnkit::min_scan_backward", mutates_args=())
def min_scan_backward(grad_out_BTH: Tensor, grad_final_BH: Tensor, k_BTG: Tensor, h0_BH: Tensor,
                      out_BTH: Tensor, lengths_B: Tensor, kind: int) -> tuple[Tensor, Tensor]:
    """(grad_k_BTG, grad_h0_BH)."""
    grad_k, grad_h0 = _ext.load("min_scan").min_scan_backward(
        grad_out_BTH, grad_final_BH, k_BTG, h0_BH, out_BTH, lengths_B, kind)
    return grad_k, grad_h0


@min_scan_backward.register_fake
def _(grad_out_BTH, grad_final_BH, k_BTG, h0_BH, out_BTH, lengths_B, kind):
    return k_BTG.new_empty(k_BTG.shape), h0_BH.new_empty(h0_BH.shape)


def _setup_context(ctx, inputs, output):
    k_BTG, h0_BH, lengths_B, kind = inputs
    ctx.save_for_backward(k_BTG, h0_BH, output[0], lengths_B)
    ctx.kind = kind


def _backward(ctx, grad_out_BTH, grad_final_BH):
    k_BTG, h0_BH, out_BTH, lengths_B = ctx.saved_tensors
    grad_k, grad_h0 = min_scan_backward(grad_out_BTH.contiguous(), grad_final_BH.contiguous(), k_BTG, h0_BH,
                                        out_BTH, lengths_B, ctx.kind)
    return grad_k, grad_h0, None, None


min_scan.register_autograd(_backward, setup_context=_setup_context)


def run(cell: Cell, x_BTI: Tensor, state: HiddenState, lengths_B: Tensor | None):
    # torch.export (ONNX) takes the PyTorch ops, which exporters translate; the custom op has no translation
    if not x_BTI.is_cpu or x_BTI.dtype not in (torch.float32, torch.float64) or torch.compiler.is_exporting():
        return scan.run(cell, x_BTI, state, lengths_B)
    B, T, _ = x_BTI.shape
    k_BTG = F.linear(x_BTI, cell.weight_ih, cell.bias_ih).contiguous()
    if k_BTG.dtype not in (torch.float32, torch.float64):  # autocast made it bf16/fp16
        return scan.run(cell, x_BTI, state, lengths_B)
    lengths_B = (torch.full((B,), T, dtype=torch.long) if lengths_B is None
                 else lengths_B.to(device="cpu", dtype=torch.long).contiguous())
    h_BH = state.h.to(k_BTG.dtype).contiguous()
    out_BTH, final_BH = min_scan(k_BTG, h_BH, lengths_B, _KIND[cell_class(cell)])
    return out_BTH, HiddenState(final_BH)
