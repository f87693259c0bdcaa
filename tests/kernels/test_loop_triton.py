"""The GPU path of the loop executor (kernels/loop_triton.py) under Triton's CPU interpreter:
the same training-mode comparison with the reference loop as tests/kernels/test_rnn_loop.py,
with the Triton kernels standing in for the compiled C++ loop, in both launch plans (a
launch per step, and the persistent one: a program per row over all steps). Skipped where
Triton is not installed (CPU builds of torch do not bring it; CUDA builds do). The
interpreter runs programs one after another and tl.debug_barrier does nothing, so races
between a program's threads show only on a GPU (benchmarks/gpu.py's float64 check)."""

import os

import pytest
import torch

pytest.importorskip("triton")

import rnnkit
from rnnkit.kernels import loop, loop_triton
from tests.harness import assert_all_close, grads, random_loss
from tests.kernels.test_rnn_loop import TRAINING

if os.environ.get("TRITON_INTERPRET") != "1":  # tests/conftest.py sets it unless told otherwise
    pytest.skip("the Triton kernels run on CPU tensors only in Triton's interpreter", allow_module_level=True)
B, T = 4, 5


@pytest.fixture
def triton_loop(monkeypatch):  # CPU tensors through the Triton kernels (interpreted)
    monkeypatch.setattr(loop, "_where", lambda x, kind, H: "triton")
    monkeypatch.setattr(loop, "_triton", lambda: loop_triton)


PLANS = [(mode, name) for mode in ("steps", "persistent") for name in TRAINING
         if mode == "persistent" or name != "gru-reset-before"]  # steps: reset-after GRUs only


@pytest.mark.parametrize("mode, name", PLANS)
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_triton_loop_matches_the_reference(triton_loop, monkeypatch, name, training, mode):
    monkeypatch.setenv("RNNKIT_TRITON_LOOP", mode)
    reference = TRAINING[name](backend="reference", batch_first=True).double().train(training)
    fast = TRAINING[name](backend="loop", batch_first=True).double().train(training)
    fast.load_state_dict(reference.state_dict())
    x = torch.randn(B, T, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([T, 1, 3, 4])
    results = []
    for model in (reference, fast):
        x.grad = None
        torch.manual_seed(7)
        out = model(x, lengths=lengths)
        random_loss(out).backward()
        results.append((out, grads([x, *model.parameters()])))
    (want, want_grads), (got, got_grads) = results
    assert_all_close(got, want)
    assert_all_close(got_grads, want_grads)


def test_the_step_plan_refuses_the_reset_before_gru(monkeypatch):
    monkeypatch.setenv("RNNKIT_TRITON_LOOP", "steps")
    with pytest.raises(ValueError, match="kind must be 0 .* or 1 .*or 2 .*persistent, got 2"):
        loop_triton.rnn_loop(2, None, torch.zeros(1, 8), *([None] * 12))


def test_row_times_over_uneven_tiles():
    """The persistent loop's in-kernel product: several tiles each way, the last ones partial."""
    N, K = 37, 20
    w = torch.randn(N, K, dtype=torch.float64)
    v = torch.randn(N, dtype=torch.float64)
    out = torch.full((K,), float("nan"), dtype=torch.float64)
    loop_triton._row_times[(1,)](v, w, out, N, K, BN=8, BK=16)
    assert_all_close(out, v @ w)


@pytest.mark.parametrize("make", [
    lambda **kw: rnnkit.LSTM(3, 130, layer_norm=True, **kw),
    lambda **kw: rnnkit.GRU(3, 130, reset_after=False, recurrent_dropout=0.3, zoneout=0.2, **kw)],
    ids=["lstm-layer-norm", "gru-reset-before"])
def test_persistent_loop_at_the_default_tiles(triton_loop, monkeypatch, make):
    """H = 130: _tiles gives (32, 256) tiles, so every product spans several, the last ones
    partial."""
    monkeypatch.setenv("RNNKIT_TRITON_LOOP", "persistent")
    reference = make(batch_first=True, backend="reference").double().train()
    fast = make(batch_first=True, backend="loop").double().train()
    fast.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    results = []
    for model in (reference, fast):
        x.grad = None
        torch.manual_seed(5)
        out = model(x, lengths=torch.tensor([3, 2]))
        random_loss(out).backward()
        results.append((out, grads([x, *model.parameters()])))
    assert_all_close(results[1], results[0])


def test_triton_loop_mode_is_checked(monkeypatch):
    monkeypatch.setenv("RNNKIT_TRITON_LOOP", "fast")
    with pytest.raises(ValueError, match="RNNKIT_TRITON_LOOP must be 'persistent' or 'steps', got 'fast'"):
        loop_triton.plan(8, 0)
    monkeypatch.delenv("RNNKIT_TRITON_LOOP")  # then the measured faster plan:
    assert [loop_triton.plan(H, kind) for H, kind in ((256, 0), (257, 1), (1024, 2))] == [
        "persistent", "steps", "persistent"]


@pytest.mark.parametrize("mode, kernel", [("persistent", "_forward_seq"), ("steps", "_forward_step")])
def test_layer_norm_eps_reaches_the_kernels_in_the_tensors_dtype(triton_loop, monkeypatch, mode, kernel):
    """Triton passes a Python float as float32: eps = 1e-5 rounded so moved float64 results by
    6e-9 on a GPU (benchmarks/gpu.py). The interpreter keeps the double, so this checks the
    argument itself: a float64 tensor holding exactly the cell's eps."""
    monkeypatch.setenv("RNNKIT_TRITON_LOOP", mode)
    seen, real = [], getattr(loop_triton, kernel)

    class Spy:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                seen.append(args[-1])
                return real[grid](*args, **kwargs)
            return launch

    monkeypatch.setattr(loop_triton, kernel, Spy())
    model = rnnkit.LSTM(3, 4, layer_norm=True, batch_first=True, backend="loop").double()
    model(torch.randn(2, 3, 3, dtype=torch.float64))
    eps = seen[0]
    assert isinstance(eps, torch.Tensor) and eps.dtype == torch.float64 and eps.item() == 1e-5
