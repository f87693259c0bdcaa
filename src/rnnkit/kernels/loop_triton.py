"""The ``loop`` executor on a GPU: the LSTM/GRU variants' time loop with Triton kernels.

Two launch plans (``plan``: the measured faster one for the hidden size, or
``RNNKIT_TRITON_LOOP``). *Persistent*, up to H = 256: the whole time loop is one launch each
way (``_forward_seq``, ``_backward_seq``), a program per batch row computing its own
product with W_hh (``_row_times``, W_hh read from L2 at every step) and then the step
kernel's gate math (layer norms, peepholes, zoneout, the dropout mask of the next step's
product). On an H200 at B=32 T=128 I=128 H=256 (docs/performance.md) it runs the variants
at 1.0-1.5x cuDNN eagerly (zoneout 0.55x), where the steps plan runs at 0.22-0.30x.

*Steps*, above H = 256, where every row re-reading W_hh costs more than the launches: the
structure is the CPU loop's (``csrc/rnn_loop.cpp``):
PyTorch computes the input side of every step in one GEMM, then per step one cuBLAS GEMM
with W_hh and one Triton kernel for every row's gate math, and the same two per step
backwards (the dh of a step folded into the next backward kernel). Launch-bound eagerly,
it matches cuDNN inside a CUDA graph. In both plans the weight and bias gradients are one
GEMM and a few reductions over all steps at the end.

Kinds 0 (LSTM: layer norm, peepholes) and 1 (GRU, reset gate after the product, layer
norm). Kind 2, the reset-before GRU, has two dependent products a step; only the persistent
plan runs it (``_gru_before_forward_seq``/``_backward_seq``): with ``steps`` it runs the
reference loop on a GPU. Needs ``triton``; with ``TRITON_INTERPRET=1`` the kernels also run
on CPU tensors (the tests use that).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

_LSTM, _GRU, _GRU_BEFORE = 0, 1, 2


@triton.jit
def _tanh(x):
    return 2.0 * tl.sigmoid(2.0 * x) - 1.0


@triton.jit
def _row_norm(v0, v1, v2, v3, m, n, eps, FOUR: tl.constexpr):
    """mean and 1/std over 3 or 4 blocks of one row (the gate columns)."""
    s = tl.sum(tl.where(m, v0 + v1 + v2, 0.0), axis=0)
    if FOUR:
        s += tl.sum(tl.where(m, v3, 0.0), axis=0)
    mean = s / n
    d0, d1, d2, d3 = v0 - mean, v1 - mean, v2 - mean, v3 - mean
    q = tl.sum(tl.where(m, d0 * d0 + d1 * d1 + d2 * d2, 0.0), axis=0)
    if FOUR:
        q += tl.sum(tl.where(m, d3 * d3, 0.0), axis=0)
    rs = 1.0 / tl.sqrt(q / n + eps)
    return mean, rs


@triton.jit
def _norm1(v, m, n, eps):
    """mean and 1/std of one block (N_c over c')."""
    mean = tl.sum(tl.where(m, v, 0.0), axis=0) / n
    d = tl.where(m, v - mean, 0.0)
    return mean, 1.0 / tl.sqrt(tl.sum(d * d, axis=0) / n + eps)


@triton.jit
def _ln_backward1(dy, xhat, w_ptr, j, m, n, rs):
    """d(input) of N_c from d(output), one block."""
    g = dy * tl.load(w_ptr + j, mask=m, other=0.0)
    a = tl.sum(tl.where(m, g, 0.0), axis=0) / n
    c = tl.sum(tl.where(m, g * xhat, 0.0), axis=0) / n
    return rs * (g - a - xhat * c)


@triton.jit
def _forward_step(xg, u, b_hh, ln_w, lnc_w, lnc_b, peep, mask, keep_h, keep_c, lengths,
                  h, c, out, act, hd, c_prev, c_new, uhat, rstd, chat, rstd_c, u_n,
                  t, T, B, H, eps_ptr,
                  LSTM: tl.constexpr, LN: tl.constexpr, LNC: tl.constexpr, PEEP: tl.constexpr,
                  MASK: tl.constexpr, ZH: tl.constexpr, ZC: tl.constexpr, BLOCK: tl.constexpr):
    b = tl.program_id(0)
    # read from memory, in the tensors' dtype: a float argument would arrive as float32 (its
    # rounding of 1e-5 moved float64 results by 6e-9 on a GPU)
    eps = tl.load(eps_ptr)
    t = t + tl.zeros([], tl.int64)  # 64-bit offsets: (t B + b) G passes 2^31 on large inputs
    j = tl.arange(0, BLOCK)
    m = j < H
    G = 4 * H if LSTM else 3 * H
    live = t < tl.load(lengths + b)
    row = t * B + b
    x_r = xg + (b * T + t) * G
    u_r = u + b * G
    u0 = tl.load(u_r + j, mask=m, other=0.0)
    u1 = tl.load(u_r + H + j, mask=m, other=0.0)
    u2 = tl.load(u_r + 2 * H + j, mask=m, other=0.0)
    u3 = u0
    if LSTM:
        u3 = tl.load(u_r + 3 * H + j, mask=m, other=0.0)
    if LN:
        mean, rs = _row_norm(u0, u1, u2, u3, m, G, eps, LSTM)
        u0, u1, u2, u3 = (u0 - mean) * rs, (u1 - mean) * rs, (u2 - mean) * rs, (u3 - mean) * rs
        uh_r = uhat + row * G
        tl.store(uh_r + j, u0, mask=m & live)
        tl.store(uh_r + H + j, u1, mask=m & live)
        tl.store(uh_r + 2 * H + j, u2, mask=m & live)
        if LSTM:
            tl.store(uh_r + 3 * H + j, u3, mask=m & live)
        tl.store(rstd + row, rs, mask=live)
        u0 *= tl.load(ln_w + j, mask=m, other=0.0)
        u1 *= tl.load(ln_w + H + j, mask=m, other=0.0)
        u2 *= tl.load(ln_w + 2 * H + j, mask=m, other=0.0)
        if LSTM:
            u3 *= tl.load(ln_w + 3 * H + j, mask=m, other=0.0)
    a0 = tl.load(x_r + j, mask=m, other=0.0) + u0 + tl.load(b_hh + j, mask=m, other=0.0)
    a1 = tl.load(x_r + H + j, mask=m, other=0.0) + u1 + tl.load(b_hh + H + j, mask=m, other=0.0)
    h_old = tl.load(h + b * H + j, mask=m, other=0.0)
    a_r = act + row * G
    if LSTM:
        a2 = tl.load(x_r + 2 * H + j, mask=m, other=0.0) + u2 + tl.load(b_hh + 2 * H + j, mask=m, other=0.0)
        a3 = tl.load(x_r + 3 * H + j, mask=m, other=0.0) + u3 + tl.load(b_hh + 3 * H + j, mask=m, other=0.0)
        c_old = tl.load(c + b * H + j, mask=m, other=0.0)
        if PEEP:
            a0 += tl.load(peep + j, mask=m, other=0.0) * c_old
            a1 += tl.load(peep + H + j, mask=m, other=0.0) * c_old
        gi, gf, gg = tl.sigmoid(a0), tl.sigmoid(a1), _tanh(a2)
        c1 = gf * c_old + gi * gg
        if PEEP:
            a3 += tl.load(peep + 2 * H + j, mask=m, other=0.0) * c1
        go = tl.sigmoid(a3)
        cn = c1
        if LNC:
            cm, crs = _norm1(c1, m, H, eps)
            ch = (c1 - cm) * crs
            tl.store(chat + row * H + j, ch, mask=m & live)
            tl.store(rstd_c + row, crs, mask=live)
            cn = ch * tl.load(lnc_w + j, mask=m, other=0.0) + tl.load(lnc_b + j, mask=m, other=0.0)
        h1 = go * _tanh(cn)
        c_state = c1
        if ZC:
            zc = tl.load(keep_c + row * H + j, mask=m, other=0.0)
            c_state = zc * c_old + (1.0 - zc) * c1
        tl.store(c + b * H + j, tl.where(live, c_state, c_old), mask=m)
        tl.store(c_prev + row * H + j, c_old, mask=m & live)
        tl.store(c_new + row * H + j, c1, mask=m & live)
        tl.store(a_r + j, gi, mask=m & live)
        tl.store(a_r + H + j, gf, mask=m & live)
        tl.store(a_r + 2 * H + j, gg, mask=m & live)
        tl.store(a_r + 3 * H + j, go, mask=m & live)
    else:
        un = u2 + tl.load(b_hh + 2 * H + j, mask=m, other=0.0)
        r, z = tl.sigmoid(a0), tl.sigmoid(a1)
        n = _tanh(tl.load(x_r + 2 * H + j, mask=m, other=0.0) + r * un)
        h1 = (1.0 - z) * n + z * h_old  # the carry reads h itself, the product h * mask
        tl.store(u_n + row * H + j, un, mask=m & live)
        tl.store(a_r + j, r, mask=m & live)
        tl.store(a_r + H + j, z, mask=m & live)
        tl.store(a_r + 2 * H + j, n, mask=m & live)
    h_new = h1
    if ZH:
        zh = tl.load(keep_h + row * H + j, mask=m, other=0.0)
        h_new = zh * h_old + (1.0 - zh) * h1
    h_new = tl.where(live, h_new, h_old)
    tl.store(h + b * H + j, h_new, mask=m)
    tl.store(out + (b * T + t) * H + j, tl.where(live, h_new, 0.0), mask=m)
    hd_next = h_new  # the next step's product input
    if MASK:
        hd_next = h_new * tl.load(mask + b * H + j, mask=m, other=0.0)
    tl.store(hd + (row + B) * H + j, hd_next, mask=m)


@triton.jit
def _ln_backward(d0, d1, d2, d3, x0, x1, x2, x3, w_ptr, j, m, H, n, rs, FOUR: tl.constexpr):
    """d(input) of a LayerNorm from d(output), over 3 or 4 blocks of H (gain at w_ptr)."""
    g0 = d0 * tl.load(w_ptr + j, mask=m, other=0.0)
    g1 = d1 * tl.load(w_ptr + H + j, mask=m, other=0.0)
    g2 = d2 * tl.load(w_ptr + 2 * H + j, mask=m, other=0.0)
    g3 = d3
    if FOUR:
        g3 = d3 * tl.load(w_ptr + 3 * H + j, mask=m, other=0.0)
    s1 = tl.sum(tl.where(m, g0 + g1 + g2, 0.0), axis=0)
    s2 = tl.sum(tl.where(m, g0 * x0 + g1 * x1 + g2 * x2, 0.0), axis=0)
    if FOUR:
        s1 += tl.sum(tl.where(m, g3, 0.0), axis=0)
        s2 += tl.sum(tl.where(m, g3 * x3, 0.0), axis=0)
    a = s1 / n
    c = s2 / n
    return rs * (g0 - a - x0 * c), rs * (g1 - a - x1 * c), rs * (g2 - a - x2 * c), rs * (g3 - a - x3 * c)


@triton.jit
def _backward_step(grad_out, dh, dc, carry, dhd, mask, keep_h, keep_c, lengths, act, hd, c_prev, c_new,
                   uhat, rstd, chat, rstd_c, u_n, ln_w, lnc_w, lnc_b, peep, da, dun, du, dcn,
                   t, T, B, H,
                   LSTM: tl.constexpr, LN: tl.constexpr, LNC: tl.constexpr, PEEP: tl.constexpr,
                   MASK: tl.constexpr, ZH: tl.constexpr, ZC: tl.constexpr, BLOCK: tl.constexpr):
    b = tl.program_id(0)
    t = t + tl.zeros([], tl.int64)  # 64-bit offsets: (t B + b) G passes 2^31 on large inputs
    j = tl.arange(0, BLOCK)
    m = j < H
    G = 4 * H if LSTM else 3 * H
    live = t < tl.load(lengths + b)
    lm = m & live
    row = t * B + b
    # d h_t: what skipped the cell last step, plus the GRU's carry, plus the product's through the mask
    d_prod = tl.load(dhd + b * H + j, mask=m, other=0.0)
    if MASK:
        d_prod *= tl.load(mask + b * H + j, mask=m, other=0.0)
    dh_t = tl.load(dh + b * H + j, mask=m, other=0.0) + tl.load(carry + b * H + j, mask=m, other=0.0) + d_prod
    dh_new = dh_t + tl.load(grad_out + (b * T + t) * H + j, mask=lm, other=0.0)
    zh = 0.0 * dh_new
    if ZH:
        zh = tl.load(keep_h + row * H + j, mask=m, other=0.0)
    dh1 = (1.0 - zh) * dh_new
    a_r = act + row * G
    carry_new = 0.0 * dh_new
    if LSTM:
        gi = tl.load(a_r + j, mask=m, other=0.0)
        gf = tl.load(a_r + H + j, mask=m, other=0.0)
        gg = tl.load(a_r + 2 * H + j, mask=m, other=0.0)
        go = tl.load(a_r + 3 * H + j, mask=m, other=0.0)
        c1 = tl.load(c_new + row * H + j, mask=m, other=0.0)
        cn = c1
        if LNC:
            ch = tl.load(chat + row * H + j, mask=m, other=0.0)
            cn = ch * tl.load(lnc_w + j, mask=m, other=0.0) + tl.load(lnc_b + j, mask=m, other=0.0)
        tc = _tanh(cn)
        d_o = dh1 * tc * go * (1.0 - go)
        d_cn = dh1 * go * (1.0 - tc * tc)
        dc1 = d_cn
        if LNC:
            tl.store(dcn + row * H + j, tl.where(live, d_cn, 0.0), mask=m)
            rs_c = tl.load(rstd_c + row)
            dc1 = _ln_backward1(d_cn, ch, lnc_w, j, m, H, rs_c)
        dc_state = tl.load(dc + b * H + j, mask=m, other=0.0)
        zc = 0.0 * dc_state
        if ZC:
            zc = tl.load(keep_c + row * H + j, mask=m, other=0.0)
        d = dc1 + (1.0 - zc) * dc_state
        if PEEP:
            d += d_o * tl.load(peep + 2 * H + j, mask=m, other=0.0)
        c_old = tl.load(c_prev + row * H + j, mask=m, other=0.0)
        d_i = d * gg * gi * (1.0 - gi)
        d_f = d * c_old * gf * (1.0 - gf)
        d_g = d * gi * (1.0 - gg * gg)
        dc_old = d * gf + zc * dc_state
        if PEEP:
            dc_old += d_i * tl.load(peep + j, mask=m, other=0.0)
            dc_old += d_f * tl.load(peep + H + j, mask=m, other=0.0)
        tl.store(dc + b * H + j, tl.where(live, dc_old, dc_state), mask=m)
        d0, d1, d2, d3 = d_i, d_f, d_g, d_o
        e0, e1, e2, e3 = d_i, d_f, d_g, d_o  # d(N(product) + b): the LSTM's is da
    else:
        r = tl.load(a_r + j, mask=m, other=0.0)
        z = tl.load(a_r + H + j, mask=m, other=0.0)
        n = tl.load(a_r + 2 * H + j, mask=m, other=0.0)
        h_prev = tl.load(hd + row * H + j, mask=m, other=0.0)  # the GRU's backward gets h_{t-1} here
        un = tl.load(u_n + row * H + j, mask=m, other=0.0)
        d_z = dh1 * (h_prev - n) * z * (1.0 - z)
        d_n = dh1 * (1.0 - z) * (1.0 - n * n)
        d_r = d_n * un * r * (1.0 - r)
        carry_new = dh1 * z
        d0, d1, d2, d3 = d_r, d_z, d_n, d_n
        e0, e1, e2, e3 = d_r, d_z, d_n * r, d_n
        un_r = dun + row * G
        tl.store(un_r + j, tl.where(live, e0, 0.0), mask=m)
        tl.store(un_r + H + j, tl.where(live, e1, 0.0), mask=m)
        tl.store(un_r + 2 * H + j, tl.where(live, e2, 0.0), mask=m)
    da_r = da + row * G
    tl.store(da_r + j, tl.where(live, d0, 0.0), mask=m)
    tl.store(da_r + H + j, tl.where(live, d1, 0.0), mask=m)
    tl.store(da_r + 2 * H + j, tl.where(live, d2, 0.0), mask=m)
    if LSTM:
        tl.store(da_r + 3 * H + j, tl.where(live, d3, 0.0), mask=m)
    if LN:
        uh_r = uhat + row * G
        x0 = tl.load(uh_r + j, mask=m, other=0.0)
        x1 = tl.load(uh_r + H + j, mask=m, other=0.0)
        x2 = tl.load(uh_r + 2 * H + j, mask=m, other=0.0)
        x3 = x0
        if LSTM:
            x3 = tl.load(uh_r + 3 * H + j, mask=m, other=0.0)
        e0, e1, e2, e3 = _ln_backward(e0, e1, e2, e3, x0, x1, x2, x3, ln_w, j, m, H, G, tl.load(rstd + row),
                                      LSTM)
    if LN or not LSTM:  # the LSTM without N multiplies da itself
        du_r = du + row * G
        tl.store(du_r + j, tl.where(live, e0, 0.0), mask=m)
        tl.store(du_r + H + j, tl.where(live, e1, 0.0), mask=m)
        tl.store(du_r + 2 * H + j, tl.where(live, e2, 0.0), mask=m)
        if LSTM:
            tl.store(du_r + 3 * H + j, tl.where(live, e3, 0.0), mask=m)
    tl.store(dh + b * H + j, tl.where(live, zh * dh_new, dh_t), mask=m)
    tl.store(carry + b * H + j, tl.where(live, carry_new, 0.0), mask=m)


@triton.jit
def _row_times(v_ptr, w_ptr, out_ptr, N: tl.constexpr, K: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    """out = v W for one row v (N) and W (N, K) row-major, in (BN, BK) tiles read along K,
    W's contiguous axis. Each thread adds up its own elements over the N tiles and the
    tile is summed across threads once per K tile. N and K are compile-time: constant trip
    counts, and Triton's interpreter can range() over them."""
    n_ = tl.arange(0, BN)
    k_ = tl.arange(0, BK)
    for k0 in range(0, K, BK):
        mk = k0 + k_ < K
        acc = tl.zeros([BN, BK], dtype=w_ptr.dtype.element_ty)
        for n0 in range(0, N, BN):
            mn = n0 + n_ < N
            w = tl.load(w_ptr + (n0 + n_)[:, None] * K + (k0 + k_)[None, :], mask=mn[:, None] & mk[None, :],
                        other=0.0)
            acc += w * tl.load(v_ptr + n0 + n_, mask=mn, other=0.0)[:, None]
        tl.store(out_ptr + k0 + k_, tl.sum(acc, axis=0), mask=mk)


@triton.jit
def _forward_seq(xg, u, b_hh, ln_w, lnc_w, lnc_b, peep, mask, keep_h, keep_c, lengths,
                 h, c, out, act, hd, c_prev, c_new, uhat, rstd, chat, rstd_c, u_n, w_hh_t,
                 T, B, H: tl.constexpr, G: tl.constexpr, eps_ptr,
                 LSTM: tl.constexpr, LN: tl.constexpr, LNC: tl.constexpr, PEEP: tl.constexpr,
                 MASK: tl.constexpr, ZH: tl.constexpr, ZC: tl.constexpr, BLOCK: tl.constexpr,
                 BN: tl.constexpr, BK: tl.constexpr):
    """All T steps of one row in one launch: the row's product with W_hh, then _forward_step.
    Rows never read each other, so programs need no synchronisation; the threads of one
    program do (the product reads all of h_{t-1}, the gate math all of the product). H and
    G (given: G computed here would be a tensor in the interpreter) are compile-time, one
    build per hidden size; T is not, and the time loop is a while loop, which Triton's
    interpreter can run with a runtime bound under NumPy 2."""
    b = tl.program_id(0)
    t = tl.full([], 0, tl.int64)
    while t < T:
        _row_times(hd + (t * B + b) * H, w_hh_t, u + b * G, H, G, BN, BK)
        tl.debug_barrier()
        _forward_step(xg, u, b_hh, ln_w, lnc_w, lnc_b, peep, mask, keep_h, keep_c, lengths, h, c, out, act,
                      hd, c_prev, c_new, uhat, rstd, chat, rstd_c, u_n, t, T, B, H, eps_ptr,
                      LSTM, LN, LNC, PEEP, MASK, ZH, ZC, BLOCK)
        tl.debug_barrier()
        t += 1


@triton.jit
def _backward_seq(grad_out, dh, dc, carry, dhd, mask, keep_h, keep_c, lengths, act, hd, c_prev, c_new,
                  uhat, rstd, chat, rstd_c, u_n, ln_w, lnc_w, lnc_b, peep, da, dun, du, dcn, w_hh,
                  T, B, H: tl.constexpr, G: tl.constexpr,
                  LSTM: tl.constexpr, LN: tl.constexpr, LNC: tl.constexpr, PEEP: tl.constexpr,
                  MASK: tl.constexpr, ZH: tl.constexpr, ZC: tl.constexpr, BLOCK: tl.constexpr,
                  BN: tl.constexpr, BK: tl.constexpr):
    """All T steps of one row's backward in one launch: _backward_step, then d(product) W_hh."""
    b = tl.program_id(0)
    t = tl.full([], 0, tl.int64) + T - 1
    while t >= 0:
        _backward_step(grad_out, dh, dc, carry, dhd, mask, keep_h, keep_c, lengths, act, hd, c_prev, c_new,
                       uhat, rstd, chat, rstd_c, u_n, ln_w, lnc_w, lnc_b, peep, da, dun, du, dcn,
                       t, T, B, H, LSTM, LN, LNC, PEEP, MASK, ZH, ZC, BLOCK)
        tl.debug_barrier()
        _row_times(du + (t * B + b) * G, w_hh, dhd + b * H, G, H, BN, BK)
        tl.debug_barrier()
        t -= 1


@triton.jit
def _gru_before_forward_seq(xg, u, b_hh, mask, keep_h, lengths, h, out, act, hd, rh, w_rz_t, w_n_t,
                            T, B, H: tl.constexpr, H2: tl.constexpr, MASK: tl.constexpr, ZH: tl.constexpr,
                            BLOCK: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    """The reset-before GRU (r scales h before its product), all steps of one row: two
    dependent products a step, u_rz = h W_rz^T, then u_n = (r h) W_n^T (h: the product's
    input, after recurrent dropout). Saves r, z, n (act), the products' inputs hd and rh.
    H2 = 2 H is given: arithmetic on a constexpr gives a tensor in Triton's interpreter."""
    b = tl.program_id(0)
    j = tl.arange(0, BLOCK)
    m = j < H
    length = tl.load(lengths + b)
    u_r = u + b * 3 * H
    t = tl.full([], 0, tl.int64)
    while t < T:
        live = t < length
        row = t * B + b
        x_r = xg + (b * T + t) * 3 * H
        _row_times(hd + row * H, w_rz_t, u_r, H, H2, BN, BK)
        tl.debug_barrier()
        hd_r = tl.load(hd + row * H + j, mask=m, other=0.0)
        r = tl.sigmoid(tl.load(x_r + j, mask=m, other=0.0) + tl.load(u_r + j, mask=m, other=0.0)
                       + tl.load(b_hh + j, mask=m, other=0.0))
        z = tl.sigmoid(tl.load(x_r + H + j, mask=m, other=0.0) + tl.load(u_r + H + j, mask=m, other=0.0)
                       + tl.load(b_hh + H + j, mask=m, other=0.0))
        tl.store(rh + row * H + j, r * hd_r, mask=m & live)  # zero past the length: dW_n reads it
        tl.debug_barrier()
        _row_times(rh + row * H, w_n_t, u_r + 2 * H, H, H, BN, BK)
        tl.debug_barrier()
        n = _tanh(tl.load(x_r + 2 * H + j, mask=m, other=0.0) + tl.load(u_r + 2 * H + j, mask=m, other=0.0)
                  + tl.load(b_hh + 2 * H + j, mask=m, other=0.0))
        h_old = tl.load(h + b * H + j, mask=m, other=0.0)
        h_new = (1.0 - z) * n + z * h_old  # the carry reads h itself, the products h * mask
        if ZH:
            zh = tl.load(keep_h + row * H + j, mask=m, other=0.0)
            h_new = zh * h_old + (1.0 - zh) * h_new
        h_new = tl.where(live, h_new, h_old)
        a_r = act + row * 3 * H
        tl.store(a_r + j, r, mask=m & live)
        tl.store(a_r + H + j, z, mask=m & live)
        tl.store(a_r + 2 * H + j, n, mask=m & live)
        tl.store(h + b * H + j, h_new, mask=m)
        tl.store(out + (b * T + t) * H + j, tl.where(live, h_new, 0.0), mask=m)
        hd_next = h_new
        if MASK:
            hd_next = h_new * tl.load(mask + b * H + j, mask=m, other=0.0)
        tl.store(hd + (row + B) * H + j, hd_next, mask=m)
        tl.debug_barrier()
        t += 1


@triton.jit
def _gru_before_backward_seq(grad_out, dh, carry, dhd, drh, mask, keep_h, lengths, act, hd, hp, da, w_rz, w_n,
                             T, B, H: tl.constexpr, H2: tl.constexpr, MASK: tl.constexpr,
                             ZH: tl.constexpr, BLOCK: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    """Its backward, all steps of one row: d n, then d(r h) = d n W_n, then d r, then the
    next step's d(product input) = [d r, d z] W_rz. da: d(r, z, n pre-activations); hp:
    h_{t-1} itself (hd is it times the mask); carry: d h_{t-1} through z h_{t-1}; drh, once
    a step is done: d hd through r hd."""
    b = tl.program_id(0)
    j = tl.arange(0, BLOCK)
    m = j < H
    length = tl.load(lengths + b)
    t = tl.full([], 0, tl.int64) + T - 1
    while t >= 0:
        live = t < length
        row = t * B + b
        d_prod = tl.load(dhd + b * H + j, mask=m, other=0.0) + tl.load(drh + b * H + j, mask=m, other=0.0)
        if MASK:
            d_prod *= tl.load(mask + b * H + j, mask=m, other=0.0)
        d_prod += tl.load(carry + b * H + j, mask=m, other=0.0)  # the carry z h_{t-1}: unmasked
        dh_t = tl.load(dh + b * H + j, mask=m, other=0.0) + d_prod
        dh_new = dh_t + tl.load(grad_out + (b * T + t) * H + j, mask=m & live, other=0.0)
        zh = 0.0 * dh_new
        if ZH:
            zh = tl.load(keep_h + row * H + j, mask=m, other=0.0)
        dh1 = (1.0 - zh) * dh_new
        a_r = act + row * 3 * H
        r = tl.load(a_r + j, mask=m, other=0.0)
        z = tl.load(a_r + H + j, mask=m, other=0.0)
        n = tl.load(a_r + 2 * H + j, mask=m, other=0.0)
        hd_r = tl.load(hd + row * H + j, mask=m, other=0.0)
        hp_r = tl.load(hp + row * H + j, mask=m, other=0.0)
        da_r = da + row * 3 * H
        tl.store(da_r + 2 * H + j, tl.where(live, dh1 * (1.0 - z) * (1.0 - n * n), 0.0), mask=m)
        tl.debug_barrier()  # every thread has read drh (the last step's) before it is written
        _row_times(da_r + 2 * H, w_n, drh + b * H, H, H, BN, BK)
        tl.debug_barrier()
        drh_r = tl.load(drh + b * H + j, mask=m, other=0.0)
        tl.store(da_r + j, tl.where(live, drh_r * hd_r * r * (1.0 - r), 0.0), mask=m)
        tl.store(da_r + H + j, tl.where(live, dh1 * (hp_r - n) * z * (1.0 - z), 0.0), mask=m)
        tl.store(dh + b * H + j, tl.where(live, zh * dh_new, dh_t), mask=m)
        tl.store(carry + b * H + j, tl.where(live, dh1 * z, 0.0), mask=m)
        tl.debug_barrier()  # every thread has read drh before it becomes d hd through r hd
        tl.store(drh + b * H + j, tl.where(live, drh_r * r, 0.0), mask=m)
        tl.debug_barrier()
        _row_times(da_r, w_rz, dhd + b * H, H2, H, BN, BK)
        tl.debug_barrier()
        t -= 1


PLANS = ("persistent", "steps")
# Measured on an H200 (layer-norm LSTM, T = 128, docs/performance.md): the persistent plan
# wins up to H = 256 (0.96-1.11x cuDNN at B = 8-256, against 0.27-0.29x), the steps plan
# above (0.31x against 0.26x at H = 512, 0.35x against 0.07x at 1024), where every row
# reading all of W_hh at every step costs more than the launches saved.
PERSISTENT_MAX_H = 256


def plan(H: int, kind: int) -> str:
    """The launch plan for hidden size ``H``: RNNKIT_TRITON_LOOP ("persistent" or "steps"),
    read per call, where it is set; otherwise the measured faster one, "persistent" up to
    ``PERSISTENT_MAX_H`` and for the reset-before GRU (which only it runs), "steps" above."""
    mode = os.environ.get("RNNKIT_TRITON_LOOP", "")
    if not mode:
        return PLANS[0] if H <= PERSISTENT_MAX_H or kind == _GRU_BEFORE else PLANS[1]
    if mode not in PLANS:
        raise ValueError(f"RNNKIT_TRITON_LOOP must be 'persistent' or 'steps', got {mode!r}")
    return mode


def _tiles(H: int, BK: int = 256, num_warps: int = 8) -> dict:
    """Tiles of the in-kernel product: BN of W's rows by BK of its contiguous columns, 32
    elements per thread (8192 at 8 warps). At H = 256 on an H200, (32, 256) tiles ran the
    layer-norm LSTM's training step in 6.1 ms, (64, 128) in 10.2 ms; benchmarks/gpu.py
    sweeps BK and num_warps."""
    BK = min(BK, triton.next_power_of_2(H))
    return dict(BN=32 * 32 * num_warps // BK, BK=BK, num_warps=num_warps)


class _Loop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kind, xg_BTG, h0_BH, c0_BH, w_hh, b_hh, ln_w, lnc_w, lnc_b, peep_3H, mask_BH, keep_h_TBH,
                keep_c_TBH, lengths_B, eps):
        B, T, G = xg_BTG.shape
        H = h0_BH.shape[1]
        lstm = kind == _LSTM
        new, zeros = xg_BTG.new_empty, xg_BTG.new_zeros
        stand_in = xg_BTG  # the pointer passed for absent tensors: their flags keep them unread
        given = (ln_w, lnc_w, lnc_b, peep_3H, mask_BH, keep_h_TBH, keep_c_TBH)
        flags = dict(LSTM=lstm, LN=ln_w is not None, LNC=lnc_w is not None, PEEP=peep_3H is not None,
                     MASK=mask_BH is not None, ZH=keep_h_TBH is not None, ZC=keep_c_TBH is not None,
                     BLOCK=triton.next_power_of_2(H))
        h, c = h0_BH.clone(), (c0_BH.clone() if lstm else stand_in)
        out, act, u = new(B, T, H), zeros(T, B, G), new(B, G)
        hd = new(T + 1, B, H)  # the product's input per step; the last row is never read
        hd[0] = h0_BH if mask_BH is None else h0_BH * mask_BH
        c_prev, c_new = (zeros(T, B, H), zeros(T, B, H)) if lstm else (stand_in, stand_in)
        uhat, rstd = (zeros(T, B, G), zeros(T, B)) if flags["LN"] else (stand_in, stand_in)
        chat, rstd_c = (zeros(T, B, H), zeros(T, B)) if flags["LNC"] else (stand_in, stand_in)
        u_n = stand_in if lstm else zeros(T, B, H)
        saved = [act, hd, c_prev, c_new, uhat, rstd, chat, rstd_c, u_n]
        w_t, options = w_hh.t(), [stand_in if x is None else x for x in given]
        eps_1 = torch.full((1,), eps, dtype=xg_BTG.dtype, device=xg_BTG.device)
        ctx.persistent = plan(H, kind) == "persistent"
        if ctx.persistent:
            _forward_seq[(B,)](xg_BTG, u, b_hh, *options, lengths_B, h, c, out, *saved, w_t.contiguous(),
                               T, B, H, G, eps_1, **flags, **_tiles(H))
        else:
            for t in range(T):
                torch.mm(hd[t], w_t, out=u)
                _forward_step[(B,)](xg_BTG, u, b_hh, *options, lengths_B, h, c, out, *saved, t, T, B, H,
                                    eps_1, **flags)
        ctx.flags, ctx.has_c0 = flags, lstm
        # the GRU's backward reads h_{t-1} where hd is: h itself, which the mask makes differ
        h_prev = hd if lstm or mask_BH is None else _previous(h0_BH, out)
        ctx.save_for_backward(w_hh, *given, lengths_B, h_prev, *saved)
        return out, h, (c if lstm else new(0))

    @staticmethod
    def backward(ctx, grad_out, grad_h, grad_c):
        w_hh, ln_w, lnc_w, lnc_b, peep, mask, keep_h, keep_c, lengths_B, h_prev, *saved = ctx.saved_tensors
        act, hd, c_prev, c_new, uhat, rstd, chat, rstd_c, u_n = saved
        kernel_saved = [act, h_prev, *saved[2:]]  # hd: read by the GRU's d z only
        flags, lstm = ctx.flags, ctx.flags["LSTM"]
        T, B, G = act.shape
        H = hd.shape[2]
        new, zeros, stand_in = act.new_empty, act.new_zeros, act

        def given(grad, *shape):  # autograd passes None for an output that was not used
            return zeros(*shape) if grad is None else grad.contiguous().clone()

        grad_out, dh = given(grad_out, B, T, H), given(grad_h, B, H)
        dc = given(grad_c, B, H) if lstm else stand_in
        carry, dhd = zeros(B, H), zeros(B, H)
        da = new(T, B, G)
        dun = stand_in if lstm else new(T, B, G)
        du = new(T, B, G) if flags["LN"] or not lstm else da
        dcn = new(T, B, H) if flags["LNC"] else stand_in
        masks = [stand_in if x is None else x for x in (mask, keep_h, keep_c)]
        params = [stand_in if x is None else x for x in (ln_w, lnc_w, lnc_b, peep)]
        if ctx.persistent:
            _backward_seq[(B,)](grad_out, dh, dc, carry, dhd, *masks, lengths_B, *kernel_saved, *params, da,
                                dun, du, dcn, w_hh, T, B, H, G, **flags, **_tiles(H))
        else:
            for t in reversed(range(T)):
                _backward_step[(B,)](grad_out, dh, dc, carry, dhd, *masks, lengths_B, *kernel_saved, *params,
                                     da, dun, du, dcn, t, T, B, H, **flags)
                torch.mm(du[t], w_hh, out=dhd)
        # the fold of the first step's backward, done here for h0
        dh0 = dh + carry + (dhd if mask is None else dhd * mask)

        def flat(x):
            return x.reshape(T * B, x.shape[-1])

        d_w = flat(du).t() @ flat(hd[:T])
        e = flat(da if lstm else dun)  # d(N(product) + b_hh)
        d_ln = (e * flat(uhat)).sum(0) if flags["LN"] else None
        d_lnc_w = (flat(dcn) * flat(chat)).sum(0) if flags["LNC"] else None
        d_lnc_b = flat(dcn).sum(0) if flags["LNC"] else None
        d_peep = None
        if flags["PEEP"]:
            a = flat(da)
            d_peep = torch.stack([(a[:, :H] * flat(c_prev)).sum(0), (a[:, H:2 * H] * flat(c_prev)).sum(0),
                                  (a[:, 3 * H:] * flat(c_new)).sum(0)])
        return (None, da.transpose(0, 1), dh0, dc if lstm else None, d_w, e.sum(0), d_ln, d_lnc_w, d_lnc_b,
                d_peep, None, None, None, None, None)


class _GRUBefore(torch.autograd.Function):
    """The reset-before GRU's loop (persistent plan only): recurrent dropout, zoneout, lengths."""

    @staticmethod
    def forward(ctx, xg_BTG, h0_BH, w_hh, b_hh, mask_BH, keep_h_TBH, lengths_B):
        B, T, G = xg_BTG.shape
        H = h0_BH.shape[1]
        new = xg_BTG.new_empty
        h, out, hd = h0_BH.clone(), new(B, T, H), new(T + 1, B, H)
        act, rh = xg_BTG.new_zeros(T, B, G), xg_BTG.new_zeros(T, B, H)  # r, z, n; r h: 0 past a length
        hd[0] = h0_BH if mask_BH is None else h0_BH * mask_BH
        masks = [xg_BTG if x is None else x for x in (mask_BH, keep_h_TBH)]  # absent: a stand-in, unread
        w_rz_t, w_n_t = w_hh[:2 * H].t().contiguous(), w_hh[2 * H:].t().contiguous()
        _gru_before_forward_seq[(B,)](xg_BTG, new(B, G), b_hh, *masks, lengths_B, h, out, act, hd, rh, w_rz_t,
                                      w_n_t, T, B, H, 2 * H, MASK=mask_BH is not None,
                                      ZH=keep_h_TBH is not None, BLOCK=triton.next_power_of_2(H), **_tiles(H))
        h_prev = hd if mask_BH is None else _previous(h0_BH, out)  # h_{t-1} itself, for the carry
        ctx.save_for_backward(w_hh, mask_BH, keep_h_TBH, lengths_B, act, hd, h_prev, rh)
        return out, h

    @staticmethod
    def backward(ctx, grad_out, grad_h):
        w_hh, mask, keep_h, lengths_B, act, hd, h_prev, rh = ctx.saved_tensors
        T, B, G = act.shape
        H = G // 3
        zeros = act.new_zeros
        grad_out = zeros(B, T, H) if grad_out is None else grad_out.contiguous()
        dh = zeros(B, H) if grad_h is None else grad_h.contiguous().clone()
        carry, dhd, drh, da = zeros(B, H), zeros(B, H), zeros(B, H), act.new_empty(T, B, G)
        masks = [act if x is None else x for x in (mask, keep_h)]
        _gru_before_backward_seq[(B,)](grad_out, dh, carry, dhd, drh, *masks, lengths_B, act, hd, h_prev, da,
                                       w_hh[:2 * H], w_hh[2 * H:], T, B, H, 2 * H, MASK=mask is not None,
                                       ZH=keep_h is not None, BLOCK=triton.next_power_of_2(H), **_tiles(H))
        d_prod = dhd + drh
        dh0 = dh + carry + (d_prod if mask is None else d_prod * mask)
        da_NG, hd_NH, rh_NH = da.reshape(T * B, G), hd[:T].reshape(T * B, H), rh.reshape(T * B, H)
        d_w = torch.cat([da_NG[:, :2 * H].t() @ hd_NH, da_NG[:, 2 * H:].t() @ rh_NH])
        return da.transpose(0, 1), dh0, d_w, da_NG.sum(0), None, None, None


def _previous(h0_BH: Tensor, out_BTH: Tensor) -> Tensor:
    """h_{t-1} at every step (T, B, H): h0, then the outputs (a row's, wherever it runs)."""
    return torch.cat([h0_BH[None], out_BTH.transpose(0, 1)[:-1]])


def rnn_loop(kind: int, xg_BTG: Tensor, h0_BH: Tensor, c0_BH: Tensor | None, w_hh: Tensor, b_hh: Tensor,
             ln_w: Tensor | None, lnc_w: Tensor | None, lnc_b: Tensor | None, peep_3H: Tensor | None,
             mask_BH: Tensor | None, keep_h_TBH: Tensor | None, keep_c_TBH: Tensor | None, lengths_B: Tensor,
             eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """(out_BTH, h_T, c_T (empty for the GRUs)), with autograd; kind 2 (the reset-before GRU)
    in the persistent plan only."""
    if kind == _GRU_BEFORE and plan(h0_BH.shape[1], kind) == "persistent":
        out_BTH, h_BH = _GRUBefore.apply(xg_BTG, h0_BH, w_hh, b_hh, mask_BH, keep_h_TBH, lengths_B)
        return out_BTH, h_BH, xg_BTG.new_empty(0)
    if kind not in (_LSTM, _GRU):
        raise ValueError(f"kind must be 0 (LSTM) or 1 (GRU), or 2 (reset-before GRU) with "
                         f"RNNKIT_TRITON_LOOP=persistent, got {kind}")
    return _Loop.apply(kind, xg_BTG, h0_BH, c0_BH, w_hh, b_hh, ln_w, lnc_w, lnc_b, peep_3H, mask_BH,
                       keep_h_TBH, keep_c_TBH, lengths_B, eps)
