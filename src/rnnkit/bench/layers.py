"""The ``layers`` suite: rnnkit's LSTM/GRU drop-ins against torch.nn, same weights.

Anchor: ``torch.nn.LSTM``/``GRU``. Candidate: ``rnnkit.LSTM``/``GRU`` built with
``from_torch(anchor)`` on ``backend="auto"``. Modes (BENCH.md reference shapes):

- ``train``: forward + backward of a loss on the output and the final state (a bare layer
  has nothing for an optimizer step to add but the same cost on both sides);
- ``infer``: forward under ``torch.inference_mode()`` at the reference shape;
- ``step``: the same at B=1, T=1 (one streaming step);
- ``ragged``: training step on rows with lengths uniform in [1, T] (fixed seed): rnnkit's
  ``lengths=`` against ``pack_padded_sequence(enforce_sorted=False)`` + torch.nn +
  ``pad_packed_sequence``.

Before timing, every case checks that both sides give the same output, final state and
(in training) parameter gradients, and reports the case as failed otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit.bench import DTYPE, EquivalenceError, checked_comparison, run_each

MODELS = {"lstm": (nn.LSTM, rnnkit.LSTM), "gru": (nn.GRU, rnnkit.GRU)}
SEED = 0


@dataclass(frozen=True)
class Shape:
    batch: int
    time: int
    input_size: int
    hidden_size: int

    def __str__(self) -> str:
        return f"B={self.batch} T={self.time} I={self.input_size} H={self.hidden_size}"


REFERENCE = Shape(batch=32, time=128, input_size=128, hidden_size=256)


@dataclass(frozen=True)
class NamedCase:
    """A case named by what it compares, at one shape (the variants, stream and export suites)."""

    name: str
    shape: Shape


@dataclass(frozen=True)
class Case:
    cell: str  # "lstm" | "gru"
    mode: str  # "train" | "infer" | "step" (inference at B=1, T=1) | "ragged"
    shape: Shape
    num_layers: int = 1
    bidirectional: bool = False

    @property
    def name(self) -> str:
        return f"{self.cell} {self.mode} L{self.num_layers} {'bi' if self.bidirectional else 'uni'}"


def cases(shape: Shape | None = None, *, quick: bool = False) -> list[Case]:
    """All cases at ``shape`` (default: REFERENCE) and at B=1, T=1 for streaming inference;
    ``quick`` keeps the one-layer unidirectional training, streaming and ragged cases."""
    shape = shape or REFERENCE
    step = replace(shape, batch=1, time=1)
    stacks = [(1, False)] if quick else [(L, bi) for L in (1, 2) for bi in (False, True)]
    modes = [("train", shape), ("step", step)] if quick else [
        ("train", shape), ("infer", shape), ("step", step)]
    grid = [Case(cell, mode, at, L, bi) for mode, at in modes for cell in MODELS
            for L, bi in stacks]
    return grid + [Case(cell, "ragged", shape) for cell in MODELS]


def _build(case: Case) -> tuple[nn.Module, nn.Module, Tensor, Tensor | None]:
    """-> (anchor, candidate with the anchor's weights, x_BTI, lengths_B or None)."""
    theirs, ours = MODELS[case.cell]
    s = case.shape
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's RNG is untouched
        torch.manual_seed(SEED)
        anchor = theirs(s.input_size, s.hidden_size, num_layers=case.num_layers,
                        batch_first=True, bidirectional=case.bidirectional, dtype=DTYPE)
        candidate = ours.from_torch(anchor)
    g = torch.Generator().manual_seed(SEED)
    x_BTI = torch.randn(s.batch, s.time, s.input_size, generator=g, dtype=DTYPE)
    lengths_B = None
    if case.mode == "ragged":
        lengths_B = torch.randint(1, s.time + 1, (s.batch,), generator=g)
    return anchor, candidate, x_BTI, lengths_B


def _flat(result) -> list[Tensor]:
    """(output, h_n) or (output, (h_n, c_n)) -> [output, h_n, (c_n)]."""
    out, state = result
    return [out, *((state,) if isinstance(state, Tensor) else state)]


def _forwards(anchor, candidate, x_BTI, lengths_B) -> tuple[Callable, Callable]:
    if lengths_B is None:
        return (lambda: _flat(anchor(x_BTI))), (lambda: _flat(candidate(x_BTI)))
    T = x_BTI.shape[1]

    def packed():
        seq = pack_padded_sequence(x_BTI, lengths_B, batch_first=True, enforce_sorted=False)
        out, state = anchor(seq)
        return _flat((pad_packed_sequence(out, batch_first=True, total_length=T)[0], state))

    return packed, (lambda: _flat(candidate(x_BTI, lengths=lengths_B)))


def _training(module: nn.Module, forward: Callable, probes: list[Tensor]) -> Callable:
    """Forward + backward of sum(probe * tensor) over the output and the final state."""

    def step():
        module.zero_grad(set_to_none=True)
        tensors = forward()
        loss = sum((t * p).sum() for t, p in zip(tensors, probes, strict=True))
        loss.backward()
        return tensors

    return step


def _inference(forward: Callable) -> Callable:
    def step():
        with torch.inference_mode():
            return forward()

    return step


def _steps(case: Case) -> tuple[Callable, Callable, Callable[[], None]]:
    """-> (anchor step, candidate step, check that raises EquivalenceError)."""
    anchor, candidate, x_BTI, lengths_B = _build(case)
    fwd_a, fwd_c = _forwards(anchor, candidate, x_BTI, lengths_B)
    inference = case.mode in ("infer", "step")
    if inference:
        anchor.eval()
        candidate.eval()
        step_a, step_c = _inference(fwd_a), _inference(fwd_c)
    else:
        g = torch.Generator().manual_seed(SEED + 1)
        with torch.no_grad():  # random probes, so a permuted row or gate cannot cancel out
            probes = [torch.randn(t.shape, generator=g, dtype=DTYPE) for t in fwd_a()]
        step_a, step_c = _training(anchor, fwd_a, probes), _training(candidate, fwd_c, probes)

    def check() -> None:
        ours, theirs = step_c(), step_a()
        pairs = list(zip(("output", "h_n", "c_n")[: len(theirs)], ours, theirs, strict=True))
        if not inference:
            pairs += [(f"grad {n}", getattr(candidate, n).grad, p.grad)
                      for n, p in anchor.named_parameters()]
        for what, got, want in pairs:
            # gradients sum over B*T steps in an order that differs between kernels: float32
            # round-off grows with their size, so the absolute tolerance does too
            atol = 1e-5 * max(1.0, want.abs().max().item())
            try:
                torch.testing.assert_close(got, want, atol=atol, rtol=1.3e-6)
            except AssertionError as e:
                raise EquivalenceError(f"{case.name} {case.shape}: rnnkit and torch.nn differ "
                                       f"in {what}: {e}") from None

    return step_a, step_c, check


def measure(case: Case, repeats: int) -> dict:
    """Check equivalence, then time the case; a mismatch gives ``status: "mismatch"``."""
    result = {"suite": "layers", "case": case.name, "shape": str(case.shape),
              "cell": case.cell, "mode": case.mode, "num_layers": case.num_layers,
              "bidirectional": case.bidirectional, "dims": asdict(case.shape),
              "backend": "auto"}
    return checked_comparison(result, _steps(case), repeats)


def run(*, quick: bool = False, repeats: int = 9, shape: Shape | None = None,
        on_result: Callable[[dict], object] | None = None) -> list[dict]:
    """Measure every case (see ``cases``) at ``shape`` (default: REFERENCE)."""
    return run_each(cases(shape or REFERENCE, quick=quick), measure, repeats, on_result)
