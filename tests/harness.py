"""Shared checks: every cell is checked the same way, and outputs are compared in one place."""

from __future__ import annotations

import copy
import io

import torch
from torch import Tensor

from rnnkit.cells.base import Cell


class WithLengths(torch.nn.Module):
    """``layer(x, lengths=lengths)``'s output alone, as tracers and exporters take a model."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, lengths):
        return self.layer(x, lengths=lengths)[0]


def flatten(result) -> list[Tensor]:
    """All tensors in a nested (output, state) result, in order."""
    if isinstance(result, Tensor):
        return [result]
    if hasattr(result, "data") and hasattr(result, "batch_sizes"):  # PackedSequence
        return [result.data]
    return [t for item in result for t in flatten(item)]


def assert_all_close(got, want, **tol) -> None:
    got, want = flatten(got), flatten(want)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        torch.testing.assert_close(g, w, msg=lambda m, k=k: f"tensor {k}: {m}", **tol)


def grads(tensors) -> list[Tensor]:
    return [t.grad.clone() if t.grad is not None else torch.zeros_like(t) for t in tensors]


def random_loss(result, seed: int = 1) -> Tensor:
    """A loss that weighs every element differently, so no gradient hides behind a sum."""
    g = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in flatten(result))


def compiles_like_eager(model, x: Tensor, **kw) -> None:
    """``torch.compile(fullgraph=True)`` traces ``model`` without a graph break, gives eager
    mode's numbers, and its backward traces too."""
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    got = compiled(x, **kw)
    assert_all_close(got, model(x, **kw))
    got[0].sum().backward()


def training_step(model, x: Tensor, threads: int = 1, **kw) -> tuple:
    """(output, gradients of x and of the parameters) of one training step of ``model`` on
    ``threads`` intra-op threads (back to the suite's one after), masks drawn from one seed."""
    torch.set_num_threads(threads)
    try:
        x.grad = None
        model.zero_grad()
        torch.manual_seed(3)  # the same masks where the model draws any
        out = model(x, **kw)
        random_loss(out).backward()
        return out, grads([x, *model.parameters()])
    finally:
        torch.set_num_threads(1)


def same_on_threads(model, x: Tensor, threads: int = 2, **kw) -> None:
    """A training step of ``model`` on 1 and on ``threads`` intra-op threads gives the same
    output and gradients (the suite itself runs on one thread, so parallel passes are tested
    here; more threads than cores are fine)."""
    assert_all_close(training_step(model, x, threads, **kw), training_step(model, x, 1, **kw))


def check_cell(cell: Cell, batch: int = 3) -> None:
    """Shapes, dtype propagation, state helpers and state_dict round trip for one cell."""
    x_BI = torch.randn(batch, cell.input_size)
    state = cell.init_state(batch)
    assert state.h.shape == (batch, cell.output_size)
    state = type(state)(*(torch.randn_like(t) for t in state))  # never start from zeros
    new = cell(x_BI, state)
    assert type(new) is type(state)
    for t, old in zip(new, state, strict=True):
        assert t.shape == old.shape and t.dtype == torch.float64
        assert not torch.equal(t, old)
    # the same cell in float32 gives float32 states close to the float64 ones
    cell32 = copy.deepcopy(cell).float()
    new32 = cell32(x_BI.float(), type(state)(*(t.float() for t in state)))
    for a, b in zip(new32, new, strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a.double(), b, atol=1e-5, rtol=1e-4)
    # detach, where, reset
    assert all(not t.requires_grad for t in new.detach())
    reset_B = torch.tensor([True] + [False] * (batch - 1))
    mixed = new.where(reset_B, state)
    for m, a, b in zip(mixed, new, state, strict=True):
        assert torch.equal(m[0], a[0]) and torch.equal(m[1:], b[1:])
    zeroed = new.reset(reset_B)
    for z, a in zip(zeroed, new, strict=True):
        assert torch.all(z[0] == 0) and torch.equal(z[1:], a[1:])
    # state_dict round trip through bytes
    buf = io.BytesIO()
    torch.save(cell.state_dict(), buf)
    other = copy.deepcopy(cell)
    for p in other.parameters():
        torch.nn.init.normal_(p)
    other.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    for a, b in zip(other(x_BI, state), new, strict=True):
        torch.testing.assert_close(a, b)


def interrupt_after(monkeypatch, steps: int, signal_name: str = "SIGINT") -> None:
    """Every ``fit`` started while ``monkeypatch`` holds stops as if ``signal_name`` had
    arrived during step ``steps``: fit reads its ``StopOnSignal.received`` once per step,
    after the step. Deterministic, unlike a real signal's arrival."""
    from rnnkit.train.run import StopOnSignal

    class Interrupted(StopOnSignal):
        def __init__(self, *, enabled: bool = True):
            super().__init__(enabled=enabled)
            self.reads = 0

        @property
        def received(self) -> str | None:
            if not self.enabled:  # fit's check whether a resumed run had already finished
                return None
            self.reads += 1
            return signal_name if self.reads >= steps else None

        @received.setter
        def received(self, value) -> None:  # a real signal: ignored here
            pass

    monkeypatch.setattr("rnnkit.train.loop.StopOnSignal", Interrupted)


def assert_same_weights(run_a, run_b) -> None:
    """The two run directories' model.safetensors hold equal tensors, bit for bit."""
    from safetensors.torch import load_file

    a, b = load_file(f"{run_a}/model.safetensors"), load_file(f"{run_b}/model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
