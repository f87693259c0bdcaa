"""Every executor against the reference loop: outputs, final states and gradients (inputs,
initial state, parameters), in float64, with random inputs and ragged lengths including 1 and T.
"""

import re

import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.cells import (
    ElmanCell,
    GRUCell,
    IndRNNCell,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    MinGRUCell,
    MinLSTMCell,
)
from rnnkit.cells.wrappers import RecurrentDropout, WeightDrop, Zoneout
from rnnkit.kernels import _ext
from tests.harness import assert_all_close, grads, random_loss

MODELS = {
    "rnn-tanh": lambda **kw: rnnkit.RNN(3, 5, **kw),
    "rnn-relu": lambda **kw: rnnkit.RNN(3, 5, nonlinearity="relu", **kw),
    "lstm": lambda **kw: rnnkit.LSTM(3, 5, **kw),
    "lstm-proj": lambda **kw: rnnkit.LSTM(3, 5, proj_size=2, **kw),
    "lstm-nobias": lambda **kw: rnnkit.LSTM(3, 5, bias=False, **kw),
    "lstm-weight-drop": lambda **kw: rnnkit.LSTM(3, 5, weight_drop=0.4, **kw),
    "gru": lambda **kw: rnnkit.GRU(3, 5, **kw),
    "mingru": lambda **kw: rnnkit.MinGRU(3, 5, **kw),
    "minlstm": lambda **kw: rnnkit.MinLSTM(3, 5, **kw),
    # the variants that the compiled loop runs (regularisers in eval mode: their training
    # masks are compared in test_regularisers_in_training_draw_the_same_masks)
    "lstm-layer-norm": lambda **kw: rnnkit.LSTM(3, 5, layer_norm=True, **kw),
    "lstm-peephole-all": lambda **kw: rnnkit.LSTM(3, 5, peephole=True, recurrent_dropout=0.3,
                                                  zoneout=(0.2, 0.3), weight_drop=0.3, **kw),
    "lstm-layer-norm-zoneout": lambda **kw: rnnkit.LSTM(3, 5, layer_norm=True, zoneout=0.2, bias=False, **kw),
    "gru-layer-norm": lambda **kw: rnnkit.GRU(3, 5, layer_norm=True, recurrent_dropout=0.3, **kw),
    "gru-reset-before": lambda **kw: rnnkit.GRU(3, 5, reset_after=False, zoneout=0.2, **kw),
    "gru-zoneout-nobias": lambda **kw: rnnkit.GRU(3, 5, zoneout=0.2, bias=False, **kw),
    "gru-layer-norm-nobias": lambda **kw: rnnkit.GRU(3, 5, layer_norm=True, bias=False, **kw),
}
LOOP = ["lstm-layer-norm", "lstm-peephole-all", "lstm-layer-norm-zoneout", "gru-layer-norm",
        "gru-reset-before", "gru-zoneout-nobias", "gru-layer-norm-nobias"]
FAST = {"native": ["rnn-tanh", "rnn-relu", "lstm", "lstm-proj", "lstm-nobias",
                   "lstm-weight-drop", "gru"],
        "fused": ["mingru", "minlstm"], "scan": ["mingru", "minlstm"],
        "loop": [*LOOP, "lstm", "lstm-nobias", "lstm-weight-drop", "gru"]}
PAIRS = [(b, m) for b, ms in FAST.items() for m in ms] + [("auto", m) for m in MODELS]
LAYOUTS = [  # (num_layers, bidirectional, batch_first)
    (1, False, True), (2, False, False), (1, True, False), (2, True, True)]
B, T = 5, 7


def ragged_lengths():
    lengths = torch.randint(1, T + 1, (B,))
    lengths[0], lengths[1] = T, 1  # both ends always present
    return lengths


def run(model, x, h0, lengths, params):
    for t in [x, *h0, *params]:
        t.grad = None
    result = model(x, h0 if len(h0) == 2 else h0[0], lengths=lengths)
    random_loss(result).backward()
    return result, grads([x, *h0, *params])


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda t: "L{}-{}-{}".format(
    t[0], "bi" if t[1] else "uni", "bf" if t[2] else "tf"))
@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("backend, name", PAIRS, ids=[f"{b}-{m}" for b, m in PAIRS])
def test_matches_reference(backend, name, layout, ragged):
    num_layers, bidirectional, batch_first = layout
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    reference = MODELS[name](backend="reference", **kw).eval()
    fast = MODELS[name](backend=backend, **kw).eval()
    fast.load_state_dict(reference.state_dict())
    x = torch.randn((B, T, 3) if batch_first else (T, B, 3), requires_grad=True)
    D = 2 if bidirectional else 1
    out_size = 2 if name == "lstm-proj" else 5
    h0 = [torch.randn(num_layers * D, B, out_size, requires_grad=True)]
    if "lstm" in name and "min" not in name:
        h0.append(torch.randn(num_layers * D, B, 5, requires_grad=True))
    lengths = ragged_lengths() if ragged else None
    want, want_grads = run(reference, x, h0, lengths, list(reference.parameters()))
    got, got_grads = run(fast, x, h0, lengths, list(fast.parameters()))
    assert_all_close(got, want)
    assert_all_close(got_grads, want_grads)
    assert all(g.abs().sum() > 0 for g in want_grads)  # every input really took part


def test_weight_drop_in_training_is_the_same_on_both_executors():
    """The fused op gets the same dropped weight_hh as the loop: nothing is patched."""
    kw = dict(num_layers=2, bidirectional=True, batch_first=True, weight_drop=0.5)
    reference = rnnkit.LSTM(3, 5, backend="reference", **kw).train()
    fast = rnnkit.LSTM(3, 5, backend="native", **kw).train()
    fast.load_state_dict(reference.state_dict())
    x = torch.randn(B, T, 3)
    torch.manual_seed(7)
    want = reference(x)
    torch.manual_seed(7)
    got = fast(x)
    assert_all_close(got, want)
    torch.manual_seed(8)
    assert not torch.allclose(fast(x)[0], want[0])  # and the mask really is random


# the compiled kernels claim their cells wherever they could be built (see kernels/_ext.py)
FUSED = {"fused"} if _ext.load("min_scan") is not None else set()
LOOPED = {"loop"} if _ext.load("rnn_loop") is not None else set()
SUPPORT = {  # cell -> executors that must claim it
    "elman": (lambda: ElmanCell(3, 4), {"reference", "native"}),
    "lstm": (lambda: LSTMCell(3, 4), {"reference", "native", *LOOPED}),
    "lstm-proj": (lambda: LSTMCell(3, 4, proj_size=2), {"reference", "native"}),
    "lstm-peephole": (lambda: LSTMCell(3, 4, peephole=True), {"reference", *LOOPED}),
    "gru": (lambda: GRUCell(3, 4), {"reference", "native", *LOOPED}),
    "gru-reset-before": (lambda: GRUCell(3, 4, reset_after=False), {"reference", *LOOPED}),
    "layernorm-lstm": (lambda: LayerNormLSTMCell(3, 4), {"reference", *LOOPED}),
    "layernorm-gru": (lambda: LayerNormGRUCell(3, 4), {"reference", *LOOPED}),
    "indrnn": (lambda: IndRNNCell(3, 4), {"reference"}),
    "mingru": (lambda: MinGRUCell(3, 4), {"reference", "scan", *FUSED}),
    "minlstm": (lambda: MinLSTMCell(3, 4), {"reference", "scan", *FUSED}),
    "weight-drop-lstm": (lambda: WeightDrop(LSTMCell(3, 4), 0.3), {"reference", "native", *LOOPED}),
    "zoneout-lstm": (lambda: Zoneout(LSTMCell(3, 4), 0.1, 0.1), {"reference", *LOOPED}),
    "recurrent-dropout-gru": (lambda: RecurrentDropout(GRUCell(3, 4), 0.2), {"reference", *LOOPED}),
    "all-wrappers-ln-lstm": (
        lambda: Zoneout(RecurrentDropout(WeightDrop(LayerNormLSTMCell(3, 4), 0.2), 0.2), 0.1),
        {"reference", *LOOPED}),
    "wrappers-out-of-order": (lambda: RecurrentDropout(Zoneout(LSTMCell(3, 4), 0.1), 0.2), {"reference"}),
    "wrapped-mingru": (lambda: Zoneout(MinGRUCell(3, 4), 0.1), {"reference"}),
}


@pytest.mark.parametrize("make, expected", SUPPORT.values(), ids=SUPPORT.keys())
def test_supports_predicate(make, expected):
    cell = make()
    assert {name for name, k in kernels.KERNELS.items() if k.supports(cell)} == expected
    auto = kernels.select("auto", cell)
    assert auto is next(k for k in kernels.AUTO_ORDER if k.name in expected)


def test_select_rejects_unknown_and_unsupported_backends():
    with pytest.raises(ValueError, match=r"backend must be one of .*got 'cuda'"):
        kernels.select("cuda", LSTMCell(3, 4))
    able = ["native", *LOOPED, "reference"]
    with pytest.raises(ValueError, match=r"backend 'scan' cannot run .*that can: " + re.escape(str(able))):
        kernels.select("scan", LSTMCell(3, 4))


@pytest.mark.parametrize("cell_type", [MinGRUCell, MinLSTMCell], ids=["mingru", "minlstm"])
def test_scan_float32_accuracy_on_long_sequences(cell_type):
    """The log-space scan loses about |sum log a| * eps in float32; at T = 1024 that stays
    below 5e-4 relative to the float64 loop (measured 1.6e-4 at T = 2048)."""
    cell = cell_type(8, 16)
    x = torch.randn(2, 1024, 8)
    want, _ = rnnkit.Recurrent(cell, backend="reference")(x)
    got, _ = rnnkit.Recurrent(cell.float(), backend="scan")(x.float())
    torch.testing.assert_close(got.double(), want, rtol=5e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_packed_native_call_matches_the_reference_loop(kind):
    """native.packed, what the drop-ins run on a GPU for ragged rows (both directions of the
    stack in one call), here on the CPU: outputs, final states and gradients in float64."""
    from rnnkit.kernels import native

    make = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn_tanh": rnnkit.RNN}[kind]
    model = make(3, 5, num_layers=2, bidirectional=True, batch_first=True, backend="reference").double()
    x = torch.randn(4, 6, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 2, 4, 1])
    hx = tuple(torch.randn(4, 4, 5, dtype=torch.float64, requires_grad=True) for _ in model._hx_shapes(4))
    weights = [w for cell in model._cells for w in native.flat_weights(cell)]
    want = model(x, hx if kind == "lstm" else hx[0], lengths=lengths)
    want = (want[0], *(want[1] if kind == "lstm" else (want[1],)))
    out, state = native.packed(kind, x, hx, weights, lengths, bias=True, num_layers=2, bidirectional=True)
    got = (out, *state)
    assert_all_close(got, want)
    probes = [torch.randn_like(t) for t in want]
    inputs = [x, *hx, *weights]
    want_grads = torch.autograd.grad(sum((t * p).sum() for t, p in zip(want, probes, strict=True)), inputs)
    got_grads = torch.autograd.grad(sum((t * p).sum() for t, p in zip(got, probes, strict=True)), inputs)
    assert_all_close(got_grads, want_grads)
    assert out[1, 2:].abs().sum() == 0  # padding stays zero


@pytest.mark.parametrize("name", ["lstm-proj", "lstm-peephole-all", "lstm-layer-norm-zoneout",
                                  "gru-reset-before", "gru-layer-norm"])  # each scan compiles: seconds
def test_the_exported_scan_matches_the_loop(name, monkeypatch):
    """Under torch.export a layer in eval mode runs the reference loop as one ``scan`` (so the
    exported program takes any T; tests/test_compile.py and test_onnx.py export every kind):
    run here eagerly, it gives the loop's outputs, final state and gradients."""
    from rnnkit.kernels import reference

    kw = dict(num_layers=1, bidirectional=True, batch_first=True)
    model = MODELS[name](backend="reference", **kw).eval()
    x = torch.randn(B, T, 3, requires_grad=True)
    out_size = 2 if name == "lstm-proj" else 5
    h0 = [torch.randn(2, B, out_size, requires_grad=True)]
    if "lstm" in name:
        h0.append(torch.randn(2, B, 5, requires_grad=True))
    params = list(model.parameters())
    lengths = ragged_lengths()
    want, want_grads = run(model, x, h0, lengths, params)
    scans = []
    monkeypatch.setattr(reference, "scanned", lambda *a, f=reference.scanned: scans.append(1) or f(*a))
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
    got, got_grads = run(model, x, h0, lengths, params)
    assert len(scans) == 2  # two directions
    assert_all_close(got, want)
    assert_all_close(got_grads, want_grads)
