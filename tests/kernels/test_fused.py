"""The compiled minGRU/minLSTM scan (kernels/fused.py, csrc/min_scan.cpp) beyond the shared
equivalence test: several blocks of hidden units, float32 accuracy, gradcheck, the custom op
under torch.compile(fullgraph=True), and the fallback when the extension is off."""

import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.cells import HiddenState, MinGRUCell, MinLSTMCell
from rnnkit.kernels import _ext, fused
from tests.harness import assert_all_close, compiles_like_eager, grads, random_loss, same_on_threads

pytestmark = pytest.mark.skipif(_ext.load("min_scan") is None, reason="the extension could not be built")
CELLS = {"mingru": MinGRUCell, "minlstm": MinLSTMCell}


@pytest.mark.parametrize("name", CELLS)
def test_many_blocks_and_ragged_rows_match_the_reference(name):
    """H = 150 spans three 64-unit blocks, the last one partial."""
    cell = CELLS[name](4, 150)
    x = torch.randn(3, 9, 4, requires_grad=True)
    h0 = torch.randn(3, 150, requires_grad=True)
    lengths = torch.tensor([9, 1, 5])
    results = []
    for backend in ("reference", "fused"):
        layer = rnnkit.Recurrent(cell, backend=backend)
        for t in (x, h0, *cell.parameters()):
            t.grad = None
        out = layer(x, HiddenState(h0), lengths=lengths)
        random_loss(out).backward()
        results.append((out, grads([x, h0, *cell.parameters()])))
    (want, want_grads), (got, got_grads) = results
    assert_all_close(got, want)
    assert_all_close(got_grads, want_grads)
    assert torch.equal(got[0][1, 1:], torch.zeros_like(got[0][1, 1:]))  # finished rows emit zeros


@pytest.mark.parametrize("kind", [0, 1], ids=CELLS)
def test_gradcheck_of_the_custom_op(kind):
    G = (kind + 2) * 3
    k = torch.randn(2, 4, G, requires_grad=True)
    h0 = torch.randn(2, 3, requires_grad=True)
    lengths = torch.tensor([4, 2])
    assert torch.autograd.gradcheck(lambda k, h0: fused.min_scan(k, h0, lengths, kind), (k, h0))


@pytest.mark.parametrize("name", CELLS)
def test_float32_stays_close_on_long_sequences(name):
    """No logarithms: float32 keeps about 1e-6 of the float64 loop at T = 1024."""
    cell = CELLS[name](8, 16)
    x = torch.randn(2, 1024, 8)
    want, _ = rnnkit.Recurrent(cell, backend="reference")(x)
    got, _ = rnnkit.Recurrent(cell.float(), backend="fused")(x.float())
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


def test_compiles_without_graph_breaks():
    model = rnnkit.MinGRU(3, 6, num_layers=2, batch_first=True)
    assert {m.executor for m in model.modules() if isinstance(m, rnnkit.Recurrent)} == {"fused"}
    compiles_like_eager(model, torch.randn(2, 5, 3), lengths=torch.tensor([5, 3]))


def test_without_the_extension_auto_falls_back_to_the_log_space_scan(monkeypatch):
    monkeypatch.setattr(_ext, "load", lambda name: None)
    assert kernels.select("auto", MinGRUCell(3, 4)).name == "scan"
    with pytest.raises(ValueError, match=r"backend 'fused' cannot run .*that can: \['scan', 'reference'\]"):
        kernels.select("fused", MinGRUCell(3, 4))


def test_compiled_lengths_check_still_refuses_out_of_range_lengths():
    compiled = torch.compile(rnnkit.MinGRU(3, 6, batch_first=True), fullgraph=True, backend="aot_eager")
    with pytest.raises(RuntimeError, match=r"lengths must be in \[1, 5\]"):
        compiled(torch.randn(2, 5, 3), lengths=torch.tensor([6, 3]))


def test_two_threads_split_rows_and_blocks_and_give_the_same_numbers():
    """The suite runs on one thread; here the (row, block) tasks really run in parallel."""
    model = rnnkit.MinGRU(3, 70, batch_first=True, backend="fused")
    x = torch.randn(4, 9, 3, requires_grad=True)
    lengths = torch.tensor([9, 2, 5, 7])
    same_on_threads(model, x, lengths=lengths)
