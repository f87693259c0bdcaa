"""The compiled time loop of the LSTM/GRU variants (kernels/loop.py, csrc/rnn_loop.cpp)
beyond the shared equivalence test: the regularisers in training mode (same masks as the
reference loop under one seed), gradcheck of the custom op per kind, float32 on a long
sequence, torch.compile(fullgraph=True), bad input to the op, and the fallback."""

from types import SimpleNamespace

import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.cells import LayerNormLSTMCell, LSTMCell, core_cell
from rnnkit.kernels import _ext, loop
from tests.harness import (
    assert_all_close,
    compiles_like_eager,
    grads,
    random_loss,
    same_on_threads,
    training_step,
)

pytestmark = pytest.mark.skipif(_ext.load("rnn_loop") is None, reason="the extension could not be built")
B, T = 5, 7
TRAINING = {  # every regulariser at once, on every kind of core
    "lstm-peephole": lambda **kw: rnnkit.LSTM(3, 5, peephole=True, recurrent_dropout=0.3, zoneout=(0.2, 0.3),
                                              weight_drop=0.3, **kw),
    "lstm-layer-norm": lambda **kw: rnnkit.LSTM(3, 5, layer_norm=True, recurrent_dropout=0.3, zoneout=0.2,
                                                weight_drop=0.3, **kw),
    "gru": lambda **kw: rnnkit.GRU(3, 5, recurrent_dropout=0.3, zoneout=0.2, weight_drop=0.2, **kw),
    "gru-layer-norm": lambda **kw: rnnkit.GRU(3, 5, layer_norm=True, recurrent_dropout=0.3, zoneout=0.2,
                                              **kw),
    "gru-reset-before": lambda **kw: rnnkit.GRU(3, 5, reset_after=False, recurrent_dropout=0.3, zoneout=0.2,
                                                bias=False, **kw),
}


@pytest.mark.parametrize("name", TRAINING)
def test_regularisers_in_training_draw_the_same_masks(name):
    kw = dict(num_layers=2, bidirectional=True, batch_first=True)
    reference = TRAINING[name](backend="reference", **kw).train()
    fast = TRAINING[name](backend="loop", **kw).train()
    fast.load_state_dict(reference.state_dict())
    x = torch.randn(B, T, 3, requires_grad=True)
    h0 = [torch.randn(4, B, 5, requires_grad=True)]
    if "lstm" in name:
        h0.append(torch.randn(4, B, 5, requires_grad=True))
    lengths = torch.tensor([T, 1, 4, 6, 3])
    results = []
    for model in (reference, fast):
        for t in (x, *h0):
            t.grad = None
        torch.manual_seed(7)
        out = model(x, h0 if len(h0) == 2 else h0[0], lengths=lengths)
        random_loss(out).backward()
        results.append((out, grads([x, *h0, *model.parameters()])))
    (want, want_grads), (got, got_grads) = results
    assert_all_close(got, want)
    assert_all_close(got_grads, want_grads)
    torch.manual_seed(8)
    assert not torch.allclose(fast(x, lengths=lengths)[0], want[0])  # the masks really are random


def _op_inputs(kind: int, *, layer_norm: bool, peephole: bool, masks: bool):
    H = 3
    G = (4 if kind == loop._LSTM else 3) * H
    g = torch.Generator().manual_seed(kind)

    def rand(*shape, grad=True):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(grad)

    keep = (torch.rand(4, 2, H, generator=g, dtype=torch.float64) < 0.3).double()
    lstm = kind == loop._LSTM
    return dict(
        xg=rand(2, 4, G), h0=rand(2, H), c0=rand(2, H) if lstm else None, w_hh=rand(G, H), b_hh=rand(G),
        ln_w=rand(G) if layer_norm else None, lnc_w=rand(H) if layer_norm and lstm else None,
        lnc_b=rand(H) if layer_norm and lstm else None, peep=rand(3, H) if peephole else None,
        mask=(torch.rand(2, H, generator=g, dtype=torch.float64) < 0.7).double() * 1.4 if masks else None,
        keep_h=keep if masks else None, keep_c=keep.flip(0) if masks and lstm else None,
        lni_w=rand(G) if layer_norm else None, b_ih=rand(G) if layer_norm else None)


OP_CASES = {
    "lstm": (loop._LSTM, dict(layer_norm=False, peephole=True, masks=True)),
    "lstm-layer-norm": (loop._LSTM, dict(layer_norm=True, peephole=False, masks=True)),
    "gru": (loop._GRU, dict(layer_norm=False, peephole=False, masks=True)),
    "gru-layer-norm": (loop._GRU, dict(layer_norm=True, peephole=False, masks=False)),
    "gru-reset-before": (loop._GRU_RESET_BEFORE, dict(layer_norm=False, peephole=False, masks=True)),
}


@pytest.mark.parametrize("kind, options", OP_CASES.values(), ids=OP_CASES.keys())
def test_gradcheck_of_the_custom_op(kind, options):
    inputs = _op_inputs(kind, **options)
    names = [n for n, t in inputs.items() if t is not None and t.requires_grad]
    lengths = torch.tensor([4, 2])

    def f(*tensors):
        given = inputs | dict(zip(names, tensors, strict=True))
        out = loop.rnn_loop(kind, given["xg"], given["h0"], given["c0"], given["w_hh"], given["b_hh"],
                            given["ln_w"], given["lnc_w"], given["lnc_b"], given["peep"], given["mask"],
                            given["keep_h"], given["keep_c"], given["lni_w"], given["b_ih"], lengths, 1e-5)
        return out[0], out[1], *(out[2:3] if kind == loop._LSTM else ())

    assert torch.autograd.gradcheck(f, [inputs[n] for n in names])


def test_float32_stays_close_on_a_long_sequence():
    torch.manual_seed(0)
    cell = LayerNormLSTMCell(8, 16).double()
    x = torch.randn(2, 600, 8, dtype=torch.float64)
    want, _ = rnnkit.Recurrent(cell, backend="reference")(x)
    got, _ = rnnkit.Recurrent(cell.float(), backend="loop")(x.float())
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=2e-5)


def test_auto_picks_the_loop_for_variants_and_native_for_plain_cells():
    assert kernels.select("auto", LayerNormLSTMCell(3, 4)).name == "loop"
    assert kernels.select("auto", LSTMCell(3, 4, peephole=True)).name == "loop"
    assert kernels.select("auto", LSTMCell(3, 4)).name == "native"
    assert kernels.select("auto", LSTMCell(3, 4, proj_size=2)).name == "native"


def test_compiles_without_graph_breaks():
    model = rnnkit.LSTM(3, 6, num_layers=2, batch_first=True, layer_norm=True, zoneout=0.1).eval()
    assert {m.executor for m in model.modules() if isinstance(m, rnnkit.Recurrent)} == {"loop"}
    compiles_like_eager(model, torch.randn(2, 5, 3), lengths=torch.tensor([5, 3]))


def test_the_op_refuses_bad_lengths_and_shapes():
    inputs = _op_inputs(loop._GRU, layer_norm=False, peephole=False, masks=False)
    args = list(inputs.values())
    with pytest.raises(RuntimeError, match=r"length 5 outside \[0, 4\]"):
        loop.rnn_loop(loop._GRU, *args, torch.tensor([5, 2]), 1e-5)
    with pytest.raises(RuntimeError, match=r"xg has 9 gate columns for H = 4"):
        loop.rnn_loop(loop._GRU, args[0], torch.randn(2, 4, dtype=torch.float64), *args[2:],
                      torch.tensor([4, 2]), 1e-5)


NO_LN = dict(ln_w=None, lni_w=None, b_ih=None, lnc_w=None, lnc_b=None)


@pytest.mark.parametrize("change, message", [
    (dict(lnc_b=None), r"lnc_w and lnc_b come together"),
    (dict(c0=torch.zeros(1, 3, dtype=torch.float64)), r"c0 must be \[2, 3\], got \[1, 3\]"),
    (dict(mask=torch.ones(1, 1, dtype=torch.float64)), r"mask must be \[2, 3\], got \[1, 1\]"),
    (dict(keep_h=torch.ones(4, 2, 2, dtype=torch.float64)), r"keep_h must be \[4, 2, 3\]"),
    (dict(lni_w=None), r"the layer norms of both products come together"),
    (dict(NO_LN, peep=torch.ones(2, 3, dtype=torch.float64)), r"peep must be \[3, 3\]"),
    (dict(peep=torch.ones(3, 3, dtype=torch.float64)), r"peepholes need the LSTM without N"),
    (dict(NO_LN, lnc_w=torch.ones(3, dtype=torch.float64), lnc_b=torch.ones(3, dtype=torch.float64)),
     r"N_c needs the LSTM with N"),
], ids=["lnc_b-missing", "c0-shape", "mask-shape", "keep_h-shape", "lni_w-missing", "peep-shape",
        "peep-with-ln", "lnc-without-ln"])
def test_the_op_checks_every_option(change, message):
    """The kernels trust these shapes: each wrong one is refused before any is read."""
    inputs = _op_inputs(loop._LSTM, layer_norm=True, peephole=False, masks=True) | change
    with pytest.raises(RuntimeError, match=message):
        loop.rnn_loop(loop._LSTM, *inputs.values(), torch.tensor([4, 2]), 1e-5)


def test_the_output_may_change_in_place_where_it_is_not_saved():
    """Only the layer-norm cells without dropout read h_{t-1} back from the output."""
    model = rnnkit.LSTM(3, 4, peephole=True, batch_first=True)
    out, _ = model(torch.randn(2, 5, 3))
    out.relu_().sum().backward()
    assert model.weight_hh_l0.grad.abs().sum() > 0


def test_other_devices_and_dtypes_run_the_reference_loop():
    model = rnnkit.GRU(3, 4, layer_norm=True, batch_first=True, dtype=torch.bfloat16)
    out, _ = model(torch.randn(2, 5, 3, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and out.shape == (2, 5, 4)


def test_autocast_runs_the_reference_loop():
    model = rnnkit.LSTM(3, 4, peephole=True, batch_first=True).float()  # its products turn bf16
    x = torch.randn(2, 5, 3, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = model(x)
    out.float().sum().backward()
    assert out.shape == (2, 5, 4) and model.weight_hh_l0.grad is not None


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU])
def test_layer_norms_given_different_eps_run_the_reference_loop(cls):
    """The kernels take one eps per cell; one changed after construction must still count."""
    models = [cls(3, 5, layer_norm=True, batch_first=True, backend=b).double() for b in ("reference", "loop")]
    models[1].load_state_dict(models[0].state_dict())
    plain = [model(x := torch.randn(B, T, 3, dtype=torch.float64))[0] for model in models]
    for model in models:
        core = core_cell(model._cells[0])
        core.ln_hh.eps = 0.5
        if hasattr(core, "ln_c"):
            core.ln_c.eps = 0.25
    want, got = (model(x)[0] for model in models)
    assert_all_close(got, want)
    assert not torch.allclose(got, plain[1], atol=1e-3)  # the eps matters at these values


@pytest.mark.parametrize("persistent", [False, True], ids=["steps", "persistent"])
def test_cuda_inputs_go_to_the_triton_loop_that_can_run_them(monkeypatch, persistent):
    """On a GPU: the Triton loop for every kind, except the reset-before GRU in the steps plan."""
    mode = "persistent" if persistent else "steps"
    monkeypatch.setattr(loop, "_triton", lambda: SimpleNamespace(plan=lambda H, kind: mode))
    x = SimpleNamespace(is_cpu=False, is_cuda=True)
    want = ["triton", "triton", "triton" if persistent else None]
    assert [loop._where(x, kind, 64) for kind in (0, 1, 2)] == want


def test_without_the_extension_auto_falls_back_to_the_reference_loop(monkeypatch):
    monkeypatch.setattr(_ext, "load", lambda name: None)
    assert kernels.select("auto", LayerNormLSTMCell(3, 4)).name == "reference"
    with pytest.raises(ValueError, match=r"(?s)backend 'loop' cannot run .*that can: \['reference'\]"):
        kernels.select("loop", LayerNormLSTMCell(3, 4))


@pytest.mark.parametrize("name", TRAINING)
def test_two_threads_split_the_rows_and_give_the_same_numbers(name):
    """The suite runs on one thread; here two blocks of rows really run in parallel (41
    rows: 21 and 20, so the second block is shorter than the rings are wide; 19 steps: two
    full rings of 8 steps for the layer-norm cells' dW_hh and a partial one), ragged rows
    included."""
    model = TRAINING[name](backend="loop", batch_first=True).train()
    x = torch.randn(41, 19, 3, requires_grad=True)
    lengths = torch.randint(1, 20, (41,))
    same_on_threads(model, x, lengths=lengths)


@pytest.mark.parametrize("rows, threads", [(5, 4), (7, 6)])
def test_more_threads_than_blocks_leave_no_block_empty(rows, threads):
    """5 rows on 4 threads are blocks of 2, 2 and 1 (not a fourth, empty one), 7 on 6 four
    blocks of 2, 2, 2 and 1."""
    for name in ("lstm-layer-norm", "gru-reset-before"):
        model = TRAINING[name](backend="loop", batch_first=True).train()
        x = torch.randn(rows, 10, 3, requires_grad=True)
        same_on_threads(model, x, threads=threads, lengths=torch.randint(1, 11, (rows,)))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_without_blas_the_aten_products_give_the_same_numbers(monkeypatch, dtype):
    """Where torch exports no BLAS (or with RNNKIT_NO_BLAS=1) the loop runs all rows as one
    block through ATen's products."""
    x = torch.randn(6, 11, 3, dtype=dtype, requires_grad=True)
    lengths = torch.tensor([11, 1, 4, 9, 11, 2])
    for name in ("lstm-layer-norm", "gru-reset-before", "lstm-peephole"):
        model = TRAINING[name](backend="loop", batch_first=True, dtype=dtype).train()
        results = []
        for no_blas in ("0", "1"):
            monkeypatch.setenv("RNNKIT_NO_BLAS", no_blas)
            # two threads: with BLAS the rows split in two blocks, without they cannot
            results.append(training_step(model, x, threads=2, lengths=lengths))
        assert_all_close(results[1], results[0])
