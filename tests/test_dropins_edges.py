"""The drop-ins against torch.nn at the edges: an empty batch, dropout=1, the message of a
size mismatch, and the replicas nn.DataParallel makes. Weights copied, float64, random data."""

import pytest
import torch

import rnnkit
from tests.harness import assert_all_close, flatten, random_loss

PAIRS = {
    "rnn": (rnnkit.RNN, torch.nn.RNN, {}),
    "lstm": (rnnkit.LSTM, torch.nn.LSTM, {}),
    "lstm-proj": (rnnkit.LSTM, torch.nn.LSTM, {"proj_size": 2}),
    "gru": (rnnkit.GRU, torch.nn.GRU, {}),
}
B, T, I, H = 4, 6, 3, 5


def make_pair(name, backend="auto", **layout):
    ours_cls, theirs_cls, kw = PAIRS[name]
    theirs = theirs_cls(I, H, **kw, **layout)
    ours = ours_cls(I, H, **kw, **layout, backend=backend)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def random_hx(name, batch, layers):
    h = torch.randn(layers, batch, 2 if name == "lstm-proj" else H, requires_grad=True)
    return (h, torch.randn(layers, batch, H, requires_grad=True)) if "lstm" in name else h


def run_and_backward(model, x, hx, **kw):
    """(result, gradients of x, hx and the parameters): None where none reached a tensor."""
    result = model(x, hx, **kw)
    random_loss(result).backward()
    leaves = [x, *([] if hx is None else flatten(hx)), *model.parameters()]
    grads = [t.grad for t in leaves]
    for t in leaves:
        t.grad = None
    return result, grads


def assert_same_grads(got, want):
    assert [g is None for g in got] == [w is None for w in want]
    assert_all_close([g for g in got if g is not None], [w for w in want if w is not None])


# -- an empty batch ------------------------------------------------------------------------

@pytest.mark.parametrize("with_hx", [False, True], ids=["zero-hx", "hx"])
@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
@pytest.mark.parametrize("name", PAIRS)
def test_empty_batch_gives_torch_nns_empty_results_and_zero_grads(name, batch_first, backend, with_hx):
    ours, theirs = make_pair(name, backend, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = torch.randn((0, T, I) if batch_first else (T, 0, I), requires_grad=True)
    hx = random_hx(name, 0, 4) if with_hx else None
    want, want_grads = run_and_backward(theirs, x, hx)
    for lengths in (None, torch.zeros(0, dtype=torch.long)):
        got, got_grads = run_and_backward(ours, x, hx, lengths=lengths)
        assert [(t.shape, t.dtype) for t in flatten(got)] == [(t.shape, t.dtype) for t in flatten(want)]
        assert_same_grads(got_grads, want_grads)  # zeros for the weights, as torch.nn's


@pytest.mark.parametrize("make", [
    lambda: rnnkit.LSTM(I, H, num_layers=2, layer_norm=True),
    lambda: rnnkit.LSTM(I, H, num_layers=2, peephole=True, bidirectional=True),
    lambda: rnnkit.LSTM(I, H, num_layers=2, zoneout=0.2, recurrent_dropout=0.3, weight_drop=0.4),
    lambda: rnnkit.GRU(I, H, num_layers=2, layer_norm=True, bidirectional=True),
    lambda: rnnkit.GRU(I, H, num_layers=2, reset_after=False),
], ids=["layer-norm-lstm", "peephole", "regularised", "layer-norm-gru", "reset-before"])
def test_empty_batch_runs_the_variants_as_torch_nn_runs_the_plain_layer(make):
    """Their compiled loops need a row; with none they give what torch.nn's plain layer gives."""
    ours = make()
    kind = torch.nn.LSTM if isinstance(ours, rnnkit.LSTM) else torch.nn.GRU
    theirs = kind(I, H, num_layers=2, bidirectional=ours.bidirectional)
    x = torch.randn(T, 0, I, requires_grad=True)
    want, _ = run_and_backward(theirs, x, None)
    for lengths in (None, torch.zeros(0, dtype=torch.long)):
        got, got_grads = run_and_backward(ours.train(), x, None, lengths=lengths)
        assert [(t.shape, t.dtype) for t in flatten(got)] == [(t.shape, t.dtype) for t in flatten(want)]
        assert all(g is not None and not g.any() for g in got_grads[1:])


@pytest.mark.parametrize("compiled", [False, True], ids=["cells", "compiled"])
@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_step_on_an_empty_batch_is_torch_nns_forward_on_one_step(name, compiled):
    ours, theirs = make_pair(name, num_layers=2)
    if compiled:  # the compiled step: eval, no grad, float32
        ours, theirs = ours.float().eval(), theirs.float().eval()
    x = torch.randn(0, I, dtype=ours.weight_ih_l0.dtype)
    hx = random_hx(name, 0, 2)
    hx = tuple(t.to(x.dtype) for t in hx) if isinstance(hx, tuple) else hx.to(x.dtype)
    with torch.set_grad_enabled(not compiled):
        want_out, want_hx = theirs(x[None], hx)
        for state in (None, hx):
            got = ours.step(x, state)
            want = (want_out[0], want_hx)
            assert [(t.shape, t.dtype) for t in flatten(got)] == [(t.shape, t.dtype) for t in flatten(want)]


@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
@pytest.mark.parametrize("shape", [(0, B, I), (0, 0, I), (0, I)], ids=["batched", "empty-batch", "unbatched"])
def test_no_time_steps_is_refused_as_torch_nn_refuses_it(shape, batch_first):
    ours, theirs = make_pair("lstm", batch_first=batch_first)
    x = torch.randn(*shape)
    if batch_first and x.dim() == 3:
        x = x.transpose(0, 1)
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
        theirs(x)
    with pytest.raises(ValueError, match=r"input must have at least one time step .*got shape"):
        ours(x)


# -- dropout=1 -----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("name", PAIRS)
def test_dropout_one_zeroes_the_upper_layers_inputs_as_torch_nn(name, bidirectional, backend):
    ours, theirs = make_pair(name, backend, num_layers=3, dropout=1.0, bidirectional=bidirectional,
                             batch_first=True)
    assert ours.dropout == theirs.dropout == 1.0
    x = torch.randn(B, T, I, requires_grad=True)
    hx = random_hx(name, B, 6 if bidirectional else 3)
    want, want_grads = run_and_backward(theirs.train(), x, hx)
    got, got_grads = run_and_backward(ours.train(), x, hx)
    assert_all_close(got, want)
    assert_same_grads(got_grads, want_grads)
    # the layers above the first see zeros: the top layer's output does not depend on x
    other_x = torch.randn(B, T, I)
    assert_all_close(ours(other_x, hx)[0], got[0])
    assert_all_close(theirs(other_x, hx)[0], want[0])
    assert_all_close(ours.eval()(x, hx), theirs.eval()(x, hx))  # and no dropout at evaluation


def test_zoneout_and_weight_drop_take_one_recurrent_dropout_does_not():
    """p = 1 is defined where nothing is scaled by 1 / (1 - p): zoneout keeps h_0 (and c_0),
    weight drop zeroes W_hh (torch.nn with W_hh = 0); recurrent dropout's mask is undefined."""
    theirs = torch.nn.LSTM(I, H, batch_first=True)
    x, hx = torch.randn(B, T, I), random_hx("lstm", B, 1)
    for backend in ("auto", "reference"):
        dropped = rnnkit.LSTM.from_torch(theirs, weight_drop=1.0, backend=backend).train()
        with torch.no_grad():
            theirs.weight_hh_l0.zero_()
            assert_all_close(dropped(x, hx), theirs(x, hx))
        frozen = rnnkit.LSTM.from_torch(theirs, zoneout=1.0, backend=backend)
        for mode in (frozen.train(), frozen.eval()):
            _, final = mode(x, hx)
            assert_all_close(final, hx)
    with pytest.raises(ValueError, match=r"recurrent_dropout must be a probability in \[0, 1\), got 1.0 "
                                         r"\(its mask scales the kept units by 1 / \(1 - p\)"):
        rnnkit.LSTM(I, H, recurrent_dropout=1.0)
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\], got 1.5"):
        rnnkit.LSTM(I, H, num_layers=2, dropout=1.5)


# -- load_state_dict: a size mismatch ----------------------------------------------------

def test_size_mismatch_is_reported_by_torch_names_as_torch_nn_reports_it():
    state = torch.nn.LSTM(I, 8, num_layers=2).state_dict()
    errors = []
    for model in (rnnkit.LSTM(I, 9, num_layers=2), torch.nn.LSTM(I, 9, num_layers=2)):
        with pytest.raises(RuntimeError) as caught:
            model.load_state_dict(state)
        errors.append(str(caught.value))
    ours, theirs = errors
    assert "size mismatch for weight_ih_l0: copying a param with shape torch.Size([32, 3])" in ours
    assert "stack.layers" not in ours and "cell.weight" not in ours
    assert ours == theirs  # both are named LSTM: the whole message is torch.nn's
    nested = torch.nn.Sequential(torch.nn.Linear(2, I), rnnkit.GRU(I, 9))
    with pytest.raises(RuntimeError, match=r"size mismatch for 1\.weight_hh_l0: copying a param with "
                                           r"shape torch.Size\(\[24, 8\]\) from checkpoint, the shape "
                                           r"in current model is torch.Size\(\[27, 9\]\)"):
        nested.load_state_dict(torch.nn.Sequential(torch.nn.Linear(2, I), torch.nn.GRU(I, 8)).state_dict())


# -- nn.DataParallel replicas ------------------------------------------------------------

def replicate_on_cpu(network):
    """What ``torch.nn.parallel.replicate`` does for one device, without the broadcast that
    needs CUDA: each module copied by ``_replicate_for_data_parallel``, the copies' children
    linked, and the parameters set as plain attributes, as differentiable (non-leaf) copies."""
    modules = list(network.modules())
    index = {module: k for k, module in enumerate(modules)}
    copies = [module._replicate_for_data_parallel() for module in modules]
    for module, replica in zip(modules, copies, strict=True):
        for key, child in module._modules.items():
            if child is None:
                replica._modules[key] = None
            else:
                setattr(replica, key, copies[index[child]])
        for key, param in module._parameters.items():
            if param is None:
                replica._parameters[key] = None
            else:
                setattr(replica, key, param.clone() * 1)
        for key, buffer in module._buffers.items():
            setattr(replica, key, buffer)
    return copies[0]


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("name", PAIRS)
def test_a_data_parallel_replica_runs_on_its_own_weights_as_torch_nns(name, backend):
    ours, theirs = make_pair(name, backend, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I)
    want_before = ours(x)
    replicas = replicate_on_cpu(ours), replicate_on_cpu(theirs)
    names = list(theirs.state_dict())
    copies = [[getattr(replica, n) for n in names] for replica in replicas]
    for tensors in copies:
        assert not any(isinstance(t, torch.nn.Parameter) or t.is_leaf for t in tensors)
        for t in tensors:
            t.retain_grad()
    (got, want) = (replica(x) for replica in replicas)
    assert_all_close(got, want)
    random_loss(got).backward()
    random_loss(want).backward()
    assert_all_close([t.grad for t in copies[0]], [t.grad for t in copies[1]])  # they reach the copies
    with torch.no_grad():  # a change to the replica's weights only
        for tensors in copies:
            tensors[names.index("weight_hh_l1_reverse")].mul_(2)
            tensors[names.index("weight_ih_l0")].mul_(-1)
    got, want = (replica(x) for replica in replicas)
    assert_all_close(got, want)
    assert not torch.allclose(got[0], want_before[0])
    assert_all_close(ours(x), want_before)  # the original is untouched


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_cpu_autocast_runs_the_lstm_where_onednn_has_no_low_precision_lstm(low):
    """torch.nn.LSTM fails under CPU autocast where the CPU has no bf16/fp16 instructions
    (oneDNN: "could not create a primitive descriptor"); the drop-in runs there in float32,
    and elsewhere in the low precision, as torch.nn. The input comes lowered from a Linear."""
    torch.set_default_dtype(torch.float32)
    proj, lstm = torch.nn.Linear(5, 6), rnnkit.LSTM(6, 7, num_layers=2, batch_first=True)
    x = torch.randn(3, 4, 5)
    want, (want_h, _) = lstm(proj(x))
    with torch.autocast("cpu", dtype=low):
        got, (got_h, got_c) = lstm(proj(x))
        random_loss((got, got_h, got_c)).backward()
    assert got.dtype in (torch.float32, low) and got_c.shape == (2, 3, 7)
    torch.testing.assert_close(got.float(), want, atol=0.05, rtol=0.05)
    torch.testing.assert_close(got_h.float(), want_h, atol=0.05, rtol=0.05)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in lstm.parameters())


@pytest.mark.parametrize("name", list(PAIRS))
def test_reset_parameters_draws_what_torch_nn_draws(name):
    """torch.nn draws every parameter from U(-1/sqrt(H), 1/sqrt(H)) in its parameter order;
    the cells hold them in that order, so one seed gives the same weights (the idiom
    ``for m in model.modules(): m.reset_parameters()`` skipped rnnkit layers)."""
    ours, theirs = make_pair(name, num_layers=2, bidirectional=True)
    torch.manual_seed(5)
    theirs.reset_parameters()
    torch.manual_seed(5)
    ours.reset_parameters()
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


def test_reset_parameters_resets_layer_norms_and_indrnn():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(I, H, layer_norm=True, zoneout=0.1)
    with torch.no_grad():
        for p in layer.parameters():
            p.fill_(3.0)
    layer.reset_parameters()
    for key, value in layer.named_parameters():
        if ".ln_" in key:  # LayerNorm: gain 1, shift 0
            want = torch.ones_like(value) if key.endswith("weight") else torch.zeros_like(value)
            assert torch.equal(value, want), key
        else:
            assert value.abs().max() <= H ** -0.5 and value.std() > 0, key
    cell = rnnkit.cells.IndRNNCell(I, H)
    with torch.no_grad():
        cell.weight_hh.fill_(-1.0)
    cell.reset_parameters()
    assert 0 <= cell.weight_hh.min() and cell.weight_hh.max() <= 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
@pytest.mark.parametrize("name", list(PAIRS))
def test_dtype_at_construction_draws_what_torch_nn_draws(name, dtype):
    """The weights are made in ``dtype`` and drawn there, as torch.nn's: float32 values
    drawn then cast would differ, and leave the RNG elsewhere."""
    ours_cls, theirs_cls, kw = PAIRS[name]
    torch.manual_seed(3)
    theirs, after_theirs = theirs_cls(I, H, 2, bidirectional=True, dtype=dtype, **kw), torch.rand(3)
    torch.manual_seed(3)
    ours, after_ours = ours_cls(I, H, 2, bidirectional=True, dtype=dtype, **kw), torch.rand(3)
    for key, value in theirs.state_dict().items():
        assert ours.state_dict()[key].dtype == dtype and torch.equal(ours.state_dict()[key], value), key
    assert torch.equal(after_ours, after_theirs)


@pytest.mark.parametrize("make", [
    lambda: rnnkit.LSTM(I, H, 3, proj_size=2, device="meta"),
    lambda: rnnkit.GRU(I, H, 2, layer_norm=True, bidirectional=True, device="meta"),
], ids=["lstm-proj", "gru-layer-norm"])
def test_the_meta_device_allocates_and_draws_nothing(make):
    torch.manual_seed(0)
    layer, drawn = make(), torch.rand(2)
    assert {p.device.type for p in layer.parameters()} == {"meta"}
    torch.manual_seed(0)
    assert torch.equal(drawn, torch.rand(2))  # the global RNG was not advanced


def test_bidirectional_takes_what_argparse_and_numpy_give_and_refuses_other_values():
    import numpy as np

    for value, want in ((1, True), (0, False), (np.bool_(True), True), (torch.tensor(False), False)):
        assert rnnkit.GRU(I, H, bidirectional=value).bidirectional is want
    for value in ("no", 2, 1.0):
        with pytest.raises(TypeError, match=r"bidirectional must be a bool \(or 0 or 1\), got"):
            rnnkit.GRU(I, H, bidirectional=value)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_dropout_set_after_construction_acts_on_every_path(name):
    """torch.nn reads ``dropout`` at each forward; the layer-by-layer path (here bidirectional
    with lengths) kept the value given to the constructor."""
    x = torch.randn(T, B, I, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 5, 1])
    ours, _ = make_pair(name, num_layers=3, bidirectional=True, dropout=0.5)
    ours.double().dropout = 0.0
    got, _ = ours.train()(x, lengths=lengths)
    torch.testing.assert_close(got, ours.eval()(x, lengths=lengths)[0], rtol=0, atol=0)
    ours.train().dropout = 0.5
    assert not torch.equal(ours(x, lengths=lengths)[0], ours(x, lengths=lengths)[0])
    with pytest.raises(ValueError, match="dropout must be a probability in"):
        ours.dropout = 1.5
