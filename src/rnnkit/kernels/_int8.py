"""Weights for fbgemm's dynamic int8 linear (``torch.fbgemm_linear_int8_weight_fp32_activation``),
which the step kernel calls: quantized once per tensor (asymmetric, with a zero point);
x and h are quantized to uint8 per call by fbgemm itself.

Where the CPU has no VNNI (AVX2, and AVX-512 without VNNI), fbgemm multiplies the uint8
inputs by the int8 weights with ``vpmaddubsw``, which sums each pair of products in int16
and saturates at 32767: 2 x 255 x 127 = 64770 overflows, and a product can come out halved
(on an AVX2 EPYC a layer's output was off by 6%, against 1% without overflow). PyTorch's
own x86 quantization avoids it with ``reduce_range`` (7-bit activations); here the inputs
are quantized by fbgemm, so the weights take 7 bits instead, [-64, 63]: 2 x 255 x 64 =
32640 fits. Whether the CPU saturates is found once, by a probe product at the extremes.
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch import Tensor


def quantize(w_GK: Tensor) -> list[Tensor]:
    """[q (G, K) int8, fbgemm's packed q, col_offsets (G,) int32, scale, zero_point]."""
    # torch.fbgemm_* warn that they are deprecated; they are also what the step kernel calls
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if saturates():
            q, col_offsets, scale, zero_point = _quantize_7bit(w_GK)
        else:
            q, col_offsets, scale, zero_point = torch.fbgemm_linear_quantize_weight(w_GK)
        packed = torch.fbgemm_pack_quantized_matrix(q)
    return [q, packed, col_offsets, torch.tensor(scale, dtype=torch.float64), torch.tensor(zero_point)]


def _quantize_7bit(w_GK: Tensor, qmin: int = -64, qmax: int = 63) -> tuple[Tensor, Tensor, float, int]:
    """``torch.fbgemm_linear_quantize_weight``'s outputs for the range [qmin, qmax]: the range
    holds 0 exactly, and col_offsets[g] = sum_k q[g, k] - zero_point * K, as fbgemm's."""
    w = w_GK.detach().float()
    lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
    scale = (hi - lo) / (qmax - qmin) or 1.0  # all-zero weights: any scale gives q = zero_point
    zero_point = max(qmin, min(qmax, round(qmin - lo / scale)))
    q = (torch.round(w / scale) + zero_point).clamp(qmin, qmax).to(torch.int8)
    col_offsets = (q.to(torch.int32).sum(1) - zero_point * w.shape[1]).to(torch.int32)
    return q.contiguous(), col_offsets, scale, zero_point


@functools.cache
def saturates() -> bool:
    """Whether fbgemm's int8 product overflows int16 pair sums on this CPU: 1 x 64 inputs of
    1 (uint8 255) times weights of 1 (int8 127, one -1 to fix the range) should give 62."""
    K, f32 = 64, torch.float32  # fbgemm takes float32 only, whatever the default dtype
    w = torch.ones(1, K, dtype=f32)
    w[0, 0] = -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        q, col_offsets, scale, zero_point = torch.fbgemm_linear_quantize_weight(w)
        got = torch.fbgemm_linear_int8_weight_fp32_activation(
            torch.ones(1, K, dtype=f32), q, torch.fbgemm_pack_quantized_matrix(q), col_offsets, scale,
            zero_point, torch.zeros(1, dtype=f32))
    return abs(float(got) - (K - 2)) > 0.5
