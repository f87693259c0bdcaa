"""Bad input at the public boundary: each error names the argument, expectation and value."""

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.cells import LSTMCell
from rnnkit.layers import Recurrent

B, T, I, H = 3, 5, 4, 6


@pytest.fixture(params=["dropin", "layer"])
def model(request):
    if request.param == "dropin":
        return lambda x, state=None, lengths=None: rnnkit.LSTM(I, H, batch_first=True)(
            x, state, lengths=lengths)
    layer = Recurrent(LSTMCell(I, H))
    return lambda x, state=None, lengths=None: layer(x, state, lengths=lengths)


@pytest.mark.parametrize("x, error, message", [
    (lambda: torch.randn(B, T, I, 1), ValueError, r"input must be 3-D .*got shape \(3, 5, 4, 1\)"),
    (lambda: torch.randn(B, T, I + 1), ValueError, r"input must have 4 features .*got 5"),
    (lambda: torch.randn(B, T, I).float(), TypeError, r"input must have the parameters' dtype "
                                                      r"torch.float64, got torch.float32"),
    (lambda: torch.randint(0, 3, (B, T, I)), TypeError, r"input must be a floating-point tensor"),
    (lambda: torch.randn(B, T, I, device="meta"), ValueError,
     r"input must be on the parameters' device cpu, got meta"),
    (lambda: torch.randn(B, 0, I), ValueError, r"input must have at least one time step"),
    (lambda: [[1.0] * I] * T, TypeError, r"must be a (torch\.)?Tensor"),
], ids=["rank", "features", "dtype", "integer", "device", "empty", "list"])
def test_bad_inputs(model, x, error, message):
    with pytest.raises(error, match=message):
        model(x())


@pytest.mark.parametrize("lengths, error, message", [
    (torch.tensor([1, 6, 2]), ValueError, r"lengths must be in \[1, 5\] .*got min 1 and max 6"),
    (torch.tensor([0, 5, 2]), ValueError, r"lengths must be in \[1, 5\] .*got min 0"),
    (torch.tensor([1, 2]), ValueError, r"lengths must have shape \(3,\) .*got \(2,\)"),
    (torch.tensor([1.0, 2.0, 3.0]), TypeError, r"lengths must be an integer tensor, got dtype"),
], ids=["too-long", "zero", "shape", "float"])
def test_bad_lengths(model, lengths, error, message):
    with pytest.raises(error, match=message):
        model(torch.randn(B, T, I), lengths=lengths)


def test_lengths_as_a_list_are_accepted(model):
    out, _ = model(torch.randn(B, T, I), lengths=[5, 1, 3])
    assert torch.all(out[1, 1:] == 0)


def test_bad_dropin_state():
    lstm = rnnkit.LSTM(I, H, num_layers=2, batch_first=True)
    x = torch.randn(B, T, I)
    with pytest.raises(ValueError, match=r"hx h_0 must have shape \(2, 3, 6\) .*got \(1, 3, 6\)"):
        lstm(x, (torch.randn(1, B, H), torch.randn(2, B, H)))
    with pytest.raises(TypeError, match=r"hx must be a \(h_0, c_0\) pair, got 1 items"):
        lstm(x, torch.randn(2, B, H))
    with pytest.raises(TypeError, match=r"hx c_0 must have the parameters' dtype"):
        lstm(x, (torch.randn(2, B, H), torch.randn(2, B, H).float()))
    gru = rnnkit.GRU(I, H, batch_first=True)
    with pytest.raises(ValueError, match=r"hx h_0 must have shape \(1, 3, 6\)"):
        gru(x, torch.randn(1, B, H + 1))


def test_bad_layer_state():
    layer = Recurrent(LSTMCell(I, H))
    x = torch.randn(B, T, I)
    with pytest.raises(ValueError, match=r"state.c must have shape \(3, 6\), got \(3, 5\)"):
        layer(x, rnnkit.LSTMState(torch.randn(B, H), torch.randn(B, H - 1)))
    with pytest.raises(TypeError, match="state must be a LSTMState of 2 tensors, got Tensor"):
        layer(x, torch.randn(B, H))


@pytest.mark.parametrize("make, error, message", [
    (lambda: rnnkit.LSTM(I, H, backend="cudnn"), ValueError,
     r"backend must be one of \('auto', 'reference', 'native', 'fused', 'loop', 'scan'\), got 'cudnn'"),
    (lambda: rnnkit.LSTM(I, H, backend="scan"), ValueError, r"backend 'scan' cannot run"),
    (lambda: rnnkit.LSTM(I, H, layer_norm=True, backend="native"), ValueError,
     r"backend 'native' cannot run LayerNormLSTMCell"),
    (lambda: rnnkit.GRU(I, H, reset_after=False, backend="native"), ValueError,
     r"backend 'native' cannot run"),
    (lambda: rnnkit.LSTM(I, H, num_layers=0), ValueError, r"num_layers must be an int >= 1, got 0"),
    (lambda: rnnkit.LSTM(I, H, dropout=1.5), ValueError, r"dropout must be a probability"),
    (lambda: rnnkit.LSTM(I, H, layer_norm=True, proj_size=2), ValueError,
     r"layer_norm=True cannot be combined with peephole or proj_size"),
    (lambda: rnnkit.RNN(I, H, nonlinearity="gelu"), ValueError, r"nonlinearity must be"),
    (lambda: rnnkit.LSTM(I, H, zoneout=(0.1, 0.1, 0.1)), ValueError,
     r"zoneout must be a probability or a \(p_h, p_c\) pair, got \(0.1, 0.1, 0.1\)"),
    (lambda: rnnkit.LSTM(I, H, num_layers=True), ValueError, r"num_layers must be an int >= 1, got True"),
    (lambda: rnnkit.LSTM(I, H, proj_size=True), ValueError, r"proj_size must be an int .*got True"),
    (lambda: rnnkit.LSTM(I, H, dropout=float("nan")), ValueError, r"dropout must be a probability .*got nan"),
], ids=["unknown-backend", "scan-lstm", "native-layernorm", "native-reset-before",
        "layers", "dropout", "layernorm-proj", "nonlinearity", "zoneout-triple", "layers-bool",
        "proj-bool", "dropout-nan"])
def test_bad_construction(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_numpy_scalars_are_taken_as_torch_nn_takes_them():
    """Configs and sweeps hand over numpy scalars, which torch.nn's constructors accept."""
    layer = rnnkit.LSTM(I, H, num_layers=np.int64(2), dropout=np.float32(0.25), proj_size=np.int64(2),
                        zoneout=np.float64(0.1), recurrent_dropout=np.float32(0.5))
    assert (type(layer.num_layers), type(layer.proj_size), type(layer.dropout)) == (int, int, float)
    assert (layer.num_layers, layer.proj_size, layer.dropout) == (2, 2, 0.25)


def test_packed_with_lengths_is_rejected():
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.randn(T, B, I), [5, 3, 1])
    with pytest.raises(ValueError, match="lengths must be None when input is a PackedSequence"):
        rnnkit.GRU(I, H)(packed, lengths=torch.tensor([5, 3, 1]))


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="dropout=0.2 acts between layers"):
        rnnkit.GRU(I, H, dropout=0.2)


@pytest.mark.parametrize("shape, batch_first, message", [
    ((5,), False, r"input must be 3-D \(time, batch, features\) or 2-D \(time, features\), got shape \(5,\)"),
    ((5, 2, 7), False, r"input must have 4 features \(input_size\), got 7 \(shape \(5, 2, 7\)\)"),
    ((5, 7), True, r"got 7 \(shape \(5, 7\)\)"),
    ((0, 2, 4), False, r"one time step \(time, batch, features\), got shape \(0, 2, 4\)"),
], ids=["1-D", "time-major-features", "unbatched-features", "no-steps"])
def test_dropin_errors_show_the_callers_shape(shape, batch_first, message):
    with pytest.raises(ValueError, match=message):
        rnnkit.LSTM(I, H, batch_first=batch_first)(torch.randn(*shape))


@pytest.mark.parametrize("hx_shape, message", [
    ((2, 1, H), r"hx h_0 must have shape \(2, 6\) \(num_layers \* num_directions, size\) for unbatched "
                r"input, got \(2, 1, 6\)"),
    ((1, H), r"hx h_0 must have shape \(2, 6\) .* got \(1, 6\)"),
], ids=["3-D", "layers"])
def test_unbatched_hx_errors_show_the_callers_shape(hx_shape, message):
    model = rnnkit.LSTM(I, H, num_layers=2)
    with pytest.raises(ValueError, match=message):
        model(torch.randn(T, I), (torch.zeros(hx_shape), torch.zeros(hx_shape)))
    with pytest.raises(ValueError, match=message):
        model.step(torch.randn(I), (torch.zeros(hx_shape), torch.zeros(hx_shape)))


@pytest.mark.parametrize("name, value, message", [
    ("bias", 1, "bias must be a bool, got 1"),
    ("batch_first", 1, "batch_first must be a bool, got 1"),
    ("bidirectional", 2, r"bidirectional must be a bool \(or 0 or 1\), got 2"),  # torch.nn takes 0 and 1
])
def test_dropin_flags_must_be_bools(name, value, message):
    with pytest.raises(TypeError, match=message):
        rnnkit.GRU(I, H, **{name: value})


@pytest.mark.parametrize("call, error, message", [
    (lambda: rnnkit.GRU(I, H)(torch.randn(T, B, I), 3), TypeError,
     r"hx must be a Tensor or a tuple of Tensors, got int"),
    (lambda: Recurrent(torch.nn.Linear(I, H)), TypeError, r"cell must be an rnnkit Cell, got Linear"),
    (lambda: rnnkit.LockedDropout(0.5)(torch.randn(B, I)), ValueError,
     r"x_BTF must be 3-D \(batch, time, features\), got shape \(3, 4\)"),
    (lambda: rnnkit.LSTM(I, 0), ValueError, r"hidden_size must be a positive int, got 0"),
    (lambda: rnnkit.GRU(I, H, batch_first=True)(torch.randn(B, T, I), lengths="ab"), TypeError,
     r"lengths must be a \(B,\) integer tensor or list of ints, got str"),
    (lambda: rnnkit.GRU(I, H).step(None), TypeError,
     r"input must be a Tensor \(batch, 4\) or \(4,\), got NoneType"),
    (lambda: rnnkit.GRU(I, H, batch_first=True)(torch.randn(0, I)), ValueError,
     r"at least one time step \(time, features\), got shape \(0, 4\)"),  # unbatched: its own layout
], ids=["hx-int", "not-a-cell", "locked-2d", "lstm-hidden-0", "lengths-str", "step-none", "unbatched-empty"])
def test_more_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()
