"""The ``stream`` suite: one streaming step at batch 1 (``DropIn.step``), under
``torch.inference_mode()``, at BENCH.md's I=128, H=256.

- ``lstm step vs matvec``: anchor is the bare matrix-vector product the step must do,
  ``torch.mv`` of [W_ih | W_hh] (1024 x 384, torch.nn's row-major layout) with [x; h];
- ``lstm step vs mv(w^T)``: the same product on a column-major copy of the matrix,
  the layout the step itself keeps because MKL's gemv reads it faster: the real floor;
- ``lstm step vs LSTMCell`` / ``gru step vs GRUCell``: anchor ``torch.nn.LSTMCell`` /
  ``GRUCell`` with the same weights (what a user would write for a step);
- ``lstm int8 step vs fp32``: anchor is rnnkit's own float32 step, candidate the same layer
  after ``rnnkit.quantize_dynamic``.

Checks before timing: the step equals the torch.nn cell (float32 tolerance), and the int8
step stays within 3% (relative norm) of the float32 one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

import rnnkit
from rnnkit.bench import DTYPE, EquivalenceError, checked_comparison, run_each
from rnnkit.bench.layers import NamedCase as Case
from rnnkit.bench.layers import Shape

STEP = Shape(batch=1, time=1, input_size=128, hidden_size=256)
SEED = 0
CASES = ("lstm step vs matvec", "lstm step vs mv(w^T)", "lstm step vs LSTMCell", "gru step vs GRUCell",
         "lstm int8 step vs fp32")


def cases(*, quick: bool = False) -> list[Case]:
    return [Case(name, STEP) for name in (CASES[:3] if quick else CASES)]


def _steps(case: Case) -> tuple[Callable, Callable, Callable[[], None]]:
    s = case.shape
    cell_kind = "gru" if case.name.startswith("gru") else "lstm"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        make = rnnkit.GRU if cell_kind == "gru" else rnnkit.LSTM
        layer = make(s.input_size, s.hidden_size, dtype=DTYPE).eval()
    g = torch.Generator().manual_seed(SEED)
    x_BI = torch.randn(s.batch, s.input_size, generator=g, dtype=DTYPE)
    with torch.inference_mode():
        _, hx = layer.step(x_BI)  # a state that is not zero
    w_ih, w_hh = layer.weight_ih_l0.detach(), layer.weight_hh_l0.detach()
    b_ih, b_hh = layer.bias_ih_l0.detach(), layer.bias_hh_l0.detach()

    def inference(fn: Callable) -> Callable:
        def run():
            with torch.inference_mode():
                return fn()
        return run

    candidate = inference(lambda: layer.step(x_BI, hx))
    if "matvec" in case.name or "mv(" in case.name:
        w_cat = torch.cat([w_ih, w_hh], dim=1).contiguous()
        if case.name.endswith("(w^T)"):
            w_cat = w_cat.t().contiguous().t()
        v = torch.cat([x_BI[0], hx[0][0, 0]])
        anchor = inference(lambda: torch.mv(w_cat, v))
        return anchor, candidate, lambda: None
    if case.name.endswith("fp32"):
        quantized = rnnkit.quantize_dynamic(layer)
        anchor, candidate = candidate, inference(lambda: quantized.step(x_BI, hx))

        def check_int8() -> None:
            want, got = anchor()[1], candidate()[1]
            for w, q in zip(want, got, strict=True):
                err = float((q - w).norm() / w.norm())
                if err > 0.03:
                    raise EquivalenceError(f"{case.name}: int8 state off by {err:.1%} of its norm (> 3%)")
        return anchor, candidate, check_int8
    cell = (nn.GRUCell if cell_kind == "gru" else nn.LSTMCell)(s.input_size, s.hidden_size, dtype=DTYPE)
    with torch.no_grad():
        for name, value in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih), ("bias_hh", b_hh)):
            getattr(cell, name).copy_(value)
    state = hx[0] if cell_kind == "gru" else (hx[0][0], hx[1][0])  # h_n (1, B, H) or (h_n, c_n)
    anchor = inference(lambda: cell(x_BI, state))

    def check() -> None:
        want = anchor()
        got = candidate()[1]
        got = got[0] if cell_kind == "gru" else (got[0][0], got[1][0])
        try:
            torch.testing.assert_close(got, want, rtol=1.3e-6, atol=1e-5)
        except AssertionError as e:
            raise EquivalenceError(f"{case.name}: rnnkit's step and torch.nn's cell differ: {e}") from None

    return anchor, candidate, check


def measure(case: Case, repeats: int) -> dict:
    result = {"suite": "stream", "case": case.name, "shape": str(case.shape)}
    return checked_comparison(result, _steps(case), repeats)


def run(*, quick: bool = False, repeats: int = 9,
        on_result: Callable[[dict], object] | None = None) -> list[dict]:
    return run_each(cases(quick=quick), measure, repeats, on_result)
