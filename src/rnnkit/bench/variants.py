"""The ``variants`` suite: the LSTM/GRU variants torch.nn lacks against plain torch.nn.

Anchor: ``torch.nn.LSTM`` (or ``GRU``) of the same size, the fast layer a user would have
to give up for the variant. Candidate: ``rnnkit.LSTM``/``GRU`` with layer norm, peepholes,
recurrent dropout, zoneout or the reset gate before the product, on ``backend="auto"``
(the compiled ``loop`` executor where it could be built). Training step (forward +
backward of a random-probe loss on the output and final state) at BENCH.md's reference
shape, the module in training mode, so that the regularisers draw their masks.

The two sides are different models, so there is no equal-numbers check between them;
instead the candidate's executor is checked against the reference loop on the same weights,
data and seed (masks included) in float64 before timing, and the case fails otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import torch

from rnnkit.bench import DTYPE, EquivalenceError, checked_comparison, executor_of, run_each
from rnnkit.bench.layers import MODELS, REFERENCE
from rnnkit.bench.layers import NamedCase as Case

SEED = 0
VARIANTS: dict[str, tuple[str, dict]] = {  # case -> (cell, rnnkit keyword arguments)
    "lstm layer_norm": ("lstm", dict(layer_norm=True)),
    "lstm peephole": ("lstm", dict(peephole=True)),
    "lstm recurrent_dropout": ("lstm", dict(recurrent_dropout=0.25)),
    "lstm zoneout": ("lstm", dict(zoneout=0.1)),
    "lstm ln+rd+zoneout": ("lstm", dict(layer_norm=True, recurrent_dropout=0.25, zoneout=0.1)),
    "gru layer_norm": ("gru", dict(layer_norm=True)),
    "gru reset_before": ("gru", dict(reset_after=False)),
    "gru recurrent_dropout": ("gru", dict(recurrent_dropout=0.25)),
}


def cases(*, quick: bool = False) -> list[Case]:
    names = ["lstm layer_norm", "gru layer_norm"] if quick else list(VARIANTS)
    return [Case(name, REFERENCE) for name in names]


def _build(case: Case, backend: str = "auto"):
    cell, kwargs = VARIANTS[case.name]
    theirs, ours = MODELS[cell]
    s = case.shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        anchor = theirs(s.input_size, s.hidden_size, batch_first=True, dtype=DTYPE)
        candidate = ours(s.input_size, s.hidden_size, batch_first=True, dtype=DTYPE, backend=backend,
                         **kwargs)
    return anchor, candidate


def _steps(case: Case) -> tuple[Callable, Callable, Callable[[], None]]:
    s = case.shape
    anchor, candidate = _build(case)
    g = torch.Generator().manual_seed(SEED)
    x_BTI = torch.randn(s.batch, s.time, s.input_size, generator=g, dtype=DTYPE)
    probe_BTH = torch.randn(s.batch, s.time, s.hidden_size, generator=g, dtype=DTYPE)
    probe_BH = torch.randn(s.batch, s.hidden_size, generator=g, dtype=DTYPE)

    def train(module):
        def step():
            module.zero_grad(set_to_none=True)
            out_BTH, state = module(x_BTI)
            h_n = state[0] if isinstance(state, tuple) else state
            ((out_BTH * probe_BTH).sum() + (h_n[-1] * probe_BH).sum()).backward()
            return out_BTH
        return step

    def check() -> None:  # in float64: a layer-normalised LSTM amplifies float32 round-off
        fast, twin = _build(case)[1].double(), _build(case, backend="reference")[1].double()
        twin.load_state_dict(fast.state_dict())
        got, want = [], []
        for module, into in ((fast, got), (twin, want)):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(SEED + 1)
                module.zero_grad(set_to_none=True)
                out_BTH, state = module(x_BTI.double())
                h_n = state[0] if isinstance(state, tuple) else state
                ((out_BTH * probe_BTH.double()).sum() + (h_n[-1] * probe_BH.double()).sum()).backward()
            into += [out_BTH, *(p.grad for p in module.parameters())]
        try:
            for a, b in zip(got, want, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9 * max(1.0, b.abs().max().item()))
        except AssertionError as e:
            raise EquivalenceError(f"{case.name} {s}: the fast executor and the reference loop "
                                   f"differ: {e}") from None

    return train(anchor), train(candidate), check


def measure(case: Case, repeats: int) -> dict:
    cell, kwargs = VARIANTS[case.name]
    _, candidate = _build(case)
    executor = executor_of(candidate)
    result = {"suite": "variants", "case": case.name, "shape": str(case.shape), "cell": cell,
              "options": kwargs, "dims": asdict(case.shape), "mode": "train",
              "anchor_module": f"torch.nn.{cell.upper()}", "executor": executor}
    return checked_comparison(result, _steps(case), repeats)


def run(*, quick: bool = False, repeats: int = 9,
        on_result: Callable[[dict], object] | None = None) -> list[dict]:
    return run_each(cases(quick=quick), measure, repeats, on_result)
