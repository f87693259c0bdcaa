"""The ``scan`` suite: minGRU and minLSTM against ``torch.nn.GRU`` on long sequences.

BENCH.md's long-sequence shape: B=8, T in {256, 1024, 4096}, H=256 (I=128, the reference
input size). Anchor: ``torch.nn.GRU`` of the same hidden size, the recurrent layer a user
would otherwise train. Candidate: ``rnnkit.MinGRU`` / ``MinLSTM`` on ``backend="auto"``
(the compiled scan where it could be built). Modes:

- ``train``: forward + backward of a random-probe loss on the output and final state;
- ``ragged``: the same with lengths uniform in [1, T] (fixed seed): rnnkit's ``lengths=``
  against ``pack_padded_sequence`` + ``nn.GRU`` + ``pad_packed_sequence`` (T < 4096 only:
  the packed anchor alone would take minutes per case there).

The two sides are different models, so there is no equal-numbers check between them;
instead the candidate's executor is checked against the log-space ``scan`` executor on the
same weights and data before timing (float32, rtol 1e-3), and the case fails otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit.bench import DTYPE, EquivalenceError, checked_comparison, executor_of, run_each
from rnnkit.bench.layers import Shape

CELLS = {"mingru": rnnkit.MinGRU, "minlstm": rnnkit.MinLSTM}
LONG = Shape(batch=8, time=0, input_size=128, hidden_size=256)  # time: each of TIMES
TIMES = (256, 1024, 4096)
SEED = 0


@dataclass(frozen=True)
class Case:
    cell: str  # "mingru" | "minlstm"
    mode: str  # "train" | "ragged"
    shape: Shape

    @property
    def name(self) -> str:
        return f"{self.cell} {self.mode} vs gru"


def cases(*, quick: bool = False) -> list[Case]:
    times = TIMES[:1] if quick else TIMES
    cells = ["mingru"] if quick else list(CELLS)
    # no ragged case at the longest T: the packed anchor takes over 10 s a call there
    return [Case(cell, mode, replace(LONG, time=T))
            for T in times for cell in cells for mode in ("train", "ragged") if mode == "train" or T < 4096]


def _steps(case: Case) -> tuple[Callable, Callable, Callable[[], None]]:
    s = case.shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        anchor = nn.GRU(s.input_size, s.hidden_size, batch_first=True, dtype=DTYPE)
        candidate = CELLS[case.cell](s.input_size, s.hidden_size, batch_first=True, dtype=DTYPE)
    g = torch.Generator().manual_seed(SEED)
    x_BTI = torch.randn(s.batch, s.time, s.input_size, generator=g, dtype=DTYPE)
    lengths_B = torch.randint(1, s.time + 1, (s.batch,), generator=g) if case.mode == "ragged" else None
    probe_BTH = torch.randn(s.batch, s.time, s.hidden_size, generator=g, dtype=DTYPE)
    probe_BH = torch.randn(s.batch, s.hidden_size, generator=g, dtype=DTYPE)

    def anchor_forward():
        if lengths_B is None:
            return anchor(x_BTI)
        packed = pack_padded_sequence(x_BTI, lengths_B, batch_first=True, enforce_sorted=False)
        out, h_n = anchor(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=s.time)[0], h_n

    def train(module, forward):
        def step():
            module.zero_grad(set_to_none=True)
            out_BTH, h_n = forward()
            ((out_BTH * probe_BTH).sum() + (h_n[-1] * probe_BH).sum()).backward()
            return out_BTH, h_n
        return step

    step_a = train(anchor, anchor_forward)
    step_c = train(candidate, lambda: candidate(x_BTI, lengths=lengths_B))

    def check() -> None:
        twin = CELLS[case.cell](s.input_size, s.hidden_size, batch_first=True, dtype=DTYPE, backend="scan")
        twin.load_state_dict(candidate.state_dict())
        with torch.no_grad():
            got, want = candidate(x_BTI, lengths=lengths_B), twin(x_BTI, lengths=lengths_B)
        try:
            torch.testing.assert_close(got[0], want[0], rtol=1e-3, atol=1e-4)
        except AssertionError as e:
            raise EquivalenceError(f"{case.name} {s}: the {case.cell} executors differ: {e}") from None

    return step_a, step_c, check


def measure(case: Case, repeats: int) -> dict:
    result = {"suite": "scan", "case": case.name, "shape": str(case.shape), "cell": case.cell,
              "mode": case.mode, "dims": asdict(case.shape), "anchor_module": "torch.nn.GRU",
              "executor": executor_of(CELLS[case.cell](2, 2))}
    return checked_comparison(result, _steps(case), repeats)


def run(*, quick: bool = False, repeats: int = 9,
        on_result: Callable[[dict], object] | None = None) -> list[dict]:
    return run_each(cases(quick=quick), measure, repeats, on_result)
