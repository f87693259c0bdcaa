"""The drop-ins against torch.nn with copied weights: lengths, PackedSequence, state dicts."""

import copy
import io

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from tests.harness import assert_all_close, grads, random_loss

PAIRS = {
    "rnn": (rnnkit.RNN, torch.nn.RNN, {}),
    "rnn-relu": (rnnkit.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (rnnkit.LSTM, torch.nn.LSTM, {}),
    "lstm-proj": (rnnkit.LSTM, torch.nn.LSTM, {"proj_size": 2}),
    "gru": (rnnkit.GRU, torch.nn.GRU, {}),
}
B, T, I, H = 5, 7, 3, 4


def make_pair(name, backend, **layout):
    ours_cls, theirs_cls, kw = PAIRS[name]
    theirs = theirs_cls(I, H, **kw, **layout)
    ours = ours_cls(I, H, **kw, **layout, backend=backend)
    ours.load_state_dict(theirs.state_dict())  # torch.nn's state dict, unchanged
    return ours, theirs


def lengths_with_ends():
    lengths = torch.randint(1, T + 1, (B,))
    lengths[2], lengths[4] = 1, T
    return lengths


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("name", PAIRS)
def test_lengths_match_torch_packed(name, bidirectional, backend):
    ours, theirs = make_pair(name, backend, num_layers=2, bidirectional=bidirectional,
                             batch_first=True)
    x = torch.randn(B, T, I, requires_grad=True)
    lengths = lengths_with_ends()

    def torch_run():
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = theirs(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=T)[0], state

    want = torch_run()
    random_loss(want).backward()
    want_grads = grads([x, *theirs.parameters()])
    x.grad = None
    got = ours(x, lengths=lengths)
    random_loss(got).backward()
    assert_all_close(got, want)
    assert_all_close(grads([x, *ours.parameters()]), want_grads)


@pytest.mark.parametrize("enforce_sorted", [False, True])
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_packed_sequence_in_packed_sequence_out(name, enforce_sorted):
    ours, theirs = make_pair(name, "auto", num_layers=2, bidirectional=True)
    lengths = lengths_with_ends()
    if enforce_sorted:
        lengths = lengths.sort(descending=True).values
    x = torch.randn(T, B, I)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
    D = 2
    h0 = torch.randn(2 * D, B, H)
    hx = (h0, torch.randn(2 * D, B, H)) if name == "lstm" else h0
    got, want = ours(packed, hx), theirs(packed, hx)
    assert type(got[0]) is type(want[0])
    assert torch.equal(got[0].batch_sizes, want[0].batch_sizes)
    assert_all_close(got, want)


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("name", PAIRS)
def test_time_major_with_initial_state(name, backend):
    ours, theirs = make_pair(name, backend, num_layers=2)
    x = torch.randn(T, B, I)
    out_size = 2 if name == "lstm-proj" else H
    hx = torch.randn(2, B, out_size)
    if "lstm" in name:
        hx = (hx, torch.randn(2, B, H))
    assert_all_close(ours(x, hx), theirs(x, hx))


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_unbatched_input(name):
    ours, theirs = make_pair(name, "auto", bidirectional=True)
    x = torch.randn(T, I)
    assert_all_close(ours(x), theirs(x))
    assert ours(x)[0].shape == (T, 2 * H)


def test_state_dict_keys_and_attributes_are_torch_names():
    theirs = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2)
    ours = rnnkit.LSTM.from_torch(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert torch.equal(ours.weight_hh_l1_reverse, theirs.weight_hh_l1_reverse)
    assert ours.weight_hr_l0 is ours.get_parameter("stack.layers.0.fwd.cell.weight_hr")
    assert len(ours.all_weights) == 4 and len(ours.all_weights[0]) == 5
    back = ours.to_torch()
    for (k, a), (k2, b) in zip(back.state_dict().items(), theirs.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)


def test_deepcopy_and_pickle_keep_weights_and_names():
    ours = rnnkit.LSTM(I, H, num_layers=2, bidirectional=True, zoneout=0.1).eval()
    buf = io.BytesIO()
    torch.save(ours, buf)
    for other in (copy.deepcopy(ours),
                  torch.load(io.BytesIO(buf.getvalue()), weights_only=False)):
        assert list(other.state_dict()) == list(ours.state_dict())
        x = torch.randn(T, B, I)
        assert_all_close(other(x), ours(x))


def test_missing_keys_are_reported_by_torch_names():
    state = torch.nn.LSTM(I, H, num_layers=2).state_dict()
    del state["bias_hh_l1"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "bias_hh_l1"'):
        rnnkit.LSTM(I, H, num_layers=2).load_state_dict(state)
    model = torch.nn.Sequential(rnnkit.GRU(I, H))
    result = model.load_state_dict({}, strict=False)
    assert result.missing_keys == ["0.weight_ih_l0", "0.weight_hh_l0", "0.bias_ih_l0", "0.bias_hh_l0"]


def test_nested_state_dict_prefix():
    model = torch.nn.Sequential(torch.nn.Linear(2, I), rnnkit.GRU(I, H, batch_first=True))
    keys = list(model.state_dict())
    assert keys == ["0.weight", "0.bias", "1.weight_ih_l0", "1.weight_hh_l0", "1.bias_ih_l0",
                    "1.bias_hh_l0"]
    other = torch.nn.Sequential(torch.nn.Linear(2, I), rnnkit.GRU(I, H, batch_first=True))
    other.load_state_dict(model.state_dict())
    assert torch.equal(other[1].weight_hh_l0, model[1].weight_hh_l0)


def test_from_torch_leaves_the_global_rng_alone():
    theirs = torch.nn.LSTM(I, H, num_layers=2)
    before = torch.get_rng_state()
    rnnkit.LSTM.from_torch(theirs)
    assert torch.equal(torch.get_rng_state(), before)


def test_from_torch_and_to_torch_errors():
    with pytest.raises(TypeError, match="module must be a torch.nn.LSTM, got GRU"):
        rnnkit.LSTM.from_torch(torch.nn.GRU(I, H))
    with pytest.raises(ValueError, match=r"no equivalent of \{'layer_norm': True\}"):
        rnnkit.LSTM(I, H, layer_norm=True).to_torch()
    with pytest.raises(TypeError, match="MinGRU has no torch.nn counterpart"):
        rnnkit.MinGRU(I, H).to_torch()
    with pytest.raises(TypeError, match="MinGRU has no torch.nn counterpart to build from, got GRU"):
        rnnkit.MinGRU.from_torch(torch.nn.GRU(I, H))


def test_variants_load_torch_weights():
    """Variant knobs keep torch.nn's parameter names, so torch weights load into them."""
    theirs = torch.nn.LSTM(I, H, num_layers=2)
    for extra in (dict(peephole=True), dict(zoneout=0.1), dict(recurrent_dropout=0.2),
                  dict(weight_drop=0.3), dict(layer_norm=True)):
        ours = rnnkit.LSTM(I, H, num_layers=2, **extra)
        result = ours.load_state_dict(theirs.state_dict(), strict=False)
        assert not result.unexpected_keys
        assert torch.equal(ours.weight_ih_l1, theirs.weight_ih_l1)


def test_eval_mode_regularisers_match_torch():
    """recurrent_dropout and weight_drop are off in eval: then the numbers are torch.nn's."""
    theirs = torch.nn.LSTM(I, H, num_layers=2, batch_first=True)
    ours = rnnkit.LSTM.from_torch(theirs, recurrent_dropout=0.3, weight_drop=0.5).eval()
    x = torch.randn(B, T, I)
    assert_all_close(ours(x), theirs(x))


def test_gru_reset_before_differs_from_torch():
    theirs = torch.nn.GRU(I, H, batch_first=True)
    ours = rnnkit.GRU.from_torch(theirs, reset_after=False)
    x = torch.randn(B, T, I)
    assert not torch.allclose(ours(x)[0], theirs(x)[0])


def test_assigning_a_torch_name_replaces_the_parameter():
    ours = rnnkit.LSTM(I, H)
    new = torch.nn.Parameter(torch.randn(4 * H, H))
    ours.weight_hh_l0 = new
    assert ours.weight_hh_l0 is new
    assert ours.state_dict()["weight_hh_l0"] is not None
    assert torch.equal(ours.state_dict()["weight_hh_l0"], new.detach())


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_torch_compile_runs_and_matches(name, ragged):
    ours, theirs = make_pair(name, "auto", num_layers=2, batch_first=True)
    compiled = torch.compile(ours, backend="eager")  # Dynamo's tracing, without codegen time
    x = torch.randn(B, T, I)
    lengths = lengths_with_ends() if ragged else None
    assert_all_close(compiled(x, lengths=lengths), ours(x, lengths=lengths))


@pytest.mark.parametrize("name, layout", [("lstm", {}), ("lstm-proj", dict(num_layers=2, bidirectional=True)),
                                          ("gru", dict(bias=False, batch_first=True)),
                                          ("rnn-relu", dict(num_layers=2))])
def test_flat_weight_buffer_arguments_are_torch_nns(name, layout):
    """What flatten_parameters hands cuDNN on a GPU (benchmarks/gpu.py checks the buffer
    there): torch.nn's weights in torch.nn's order, and the arguments torch.nn passes."""
    ours, theirs = make_pair(name, "auto", **layout)
    weights, *args = ours._flat_weight_args()
    assert len(weights) == len(theirs._flat_weights)
    assert all(torch.equal(a, b) for a, b in zip(weights, theirs._flat_weights, strict=True))
    per_layer = (4 if theirs.bias else 2) + (theirs.proj_size > 0)
    assert args == [per_layer, I, theirs.mode, H, theirs.proj_size, theirs.num_layers, theirs.batch_first,
                    theirs.bidirectional]
    assert rnnkit.LSTM(I, H, layer_norm=True)._flat_weight_args() is None  # no fused op
    assert rnnkit.LSTM(I, H, weight_drop=0.2)._flat_weight_args() is None  # a new w_hh per call


def test_flatten_parameters_runs_after_what_scatters_the_weights(monkeypatch):
    """It runs after .to() (as in torch.nn), a load and a replacement by name, and changes
    nothing on the CPU."""
    ours, theirs = make_pair("lstm", "auto", num_layers=2)
    before = [(p, p.data_ptr()) for p in ours.parameters()]
    ours.flatten_parameters()
    assert all(p is q and p.data_ptr() == ptr for p, (q, ptr) in zip(ours.parameters(), before, strict=True))
    calls = []
    monkeypatch.setattr(ours, "flatten_parameters", lambda: calls.append(1))
    ours.double()
    ours.load_state_dict({k: v.double() for k, v in theirs.state_dict().items()}, assign=True)
    x = torch.randn(T, B, I, dtype=torch.float64)
    assert_all_close(ours(x), theirs.double()(x))
    ours.weight_hh_l1 = torch.nn.Parameter(torch.randn(4 * H, H, dtype=torch.float64))
    assert len(calls) == 3


@pytest.mark.parametrize("extra", [dict(lengths=True), dict(backend="reference"), dict(layer_norm=True)],
                         ids=["lengths", "reference", "layer-norm"])
def test_time_major_output_is_contiguous_as_torch_nns(extra):
    """Code written for torch.nn calls output.view(T * B, H) on (T, B, H) output."""
    lengths = lengths_with_ends() if extra.pop("lengths", False) else None
    out, _ = rnnkit.LSTM(I, H, **extra)(torch.randn(T, B, I), lengths=lengths)
    assert out.is_contiguous() and out.view(T * B, H).shape == (T * B, H)


def test_torch_nn_conveniences():
    class Tagged(torch.nn.GRU):  # a subclass of torch.nn.GRU is still one
        pass

    theirs = Tagged(I, H)
    ours = rnnkit.GRU.from_torch(theirs)
    assert torch.equal(ours.weight_hh_l0, theirs.weight_hh_l0)
    assert rnnkit.GRU(I, H).proj_size == rnnkit.RNN(I, H).proj_size == torch.nn.GRU(I, H).proj_size == 0
