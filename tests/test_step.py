"""DropIn.step: one streaming step at a time gives what forward gives on the whole sequence,
on the compiled one-call path (eval, no autograd) and on the cell-by-cell path (autograd)."""

import pickle
from copy import deepcopy

import pytest
import torch

import rnnkit
from rnnkit.dropins import DropIn
from rnnkit.kernels import _ext
from tests.harness import assert_all_close

B, T, I, H = 3, 5, 4, 6
MODELS = {
    "lstm": lambda: rnnkit.LSTM(I, H),
    "lstm-2-nobias": lambda: rnnkit.LSTM(I, H, num_layers=2, bias=False),
    "lstm-proj": lambda: rnnkit.LSTM(I, H, proj_size=3),
    "gru-2": lambda: rnnkit.GRU(I, H, num_layers=2),
    "rnn-relu": lambda: rnnkit.RNN(I, H, nonlinearity="relu"),
    "rnn-tanh": lambda: rnnkit.RNN(I, H),
    "lstm-layernorm": lambda: rnnkit.LSTM(I, H, layer_norm=True),
    "gru-weight-drop": lambda: rnnkit.GRU(I, H, weight_drop=0.3),
    "mingru": lambda: rnnkit.MinGRU(I, H),
}


def stepped(model, x_TBI, hx=None):
    outs = []
    for x_BI in x_TBI:
        out, hx = model.step(x_BI, hx)
        outs.append(out)
    return torch.stack(outs), hx


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "autograd"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", MODELS)
def test_steps_match_forward(name, dtype, grad):
    """float32 without autograd is the compiled one-call path; the rest step the cells."""
    model = MODELS[name]().to(dtype).eval()
    x_TBI = torch.randn(T, B, I, dtype=dtype)
    with torch.no_grad():
        want = model(x_TBI)
    with torch.set_grad_enabled(grad):
        got = stepped(model, x_TBI)
    tol = {} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    assert_all_close(got, want, **tol)
    if grad:
        assert got[0].requires_grad  # the cell-by-cell path keeps the graph


@pytest.mark.parametrize("make", [lambda: rnnkit.LSTM(I, H, num_layers=2),
                                  lambda: rnnkit.GRU(I, H, num_layers=2),
                                  lambda: rnnkit.RNN(I, H, bias=False)],
                         ids=["lstm-2", "gru-2", "rnn-nobias"])
def test_the_compiled_path_runs_in_inference_mode_and_matches_the_cells(make):
    model = make().float().eval()
    x_BI, h = torch.randn(B, I, dtype=torch.float32), torch.randn(model.num_layers, B, H, dtype=torch.float32)
    hx = (h, torch.randn_like(h)) if isinstance(model, rnnkit.LSTM) else h
    with torch.inference_mode():
        fast = model.step(x_BI, hx)
    assert (model._stepper is not None) == (_ext.load("step") is not None)
    # autograd on: the cells, one by one
    assert_all_close(fast, model.step(x_BI, hx), rtol=1e-5, atol=1e-6)


def test_unbatched_step_and_changed_weights():
    model = rnnkit.LSTM(I, H).float().eval()
    x_I = torch.randn(I, dtype=torch.float32)
    with torch.inference_mode():
        out, (h, c) = model.step(x_I)
        assert out.shape == (H,) and h.shape == (1, H) and c.shape == (1, H)
        assert_all_close(out, model(x_I[None])[0][0], rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        model.weight_hh_l0.mul_(2.0)  # in place: the concatenated copy must be rebuilt
        out2, _ = model.step(x_I, (h, c))
        want = model(torch.stack([x_I, x_I]), None)[0][1]
        assert_all_close(out2, want, rtol=1e-5, atol=1e-6)


def test_step_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="step needs a unidirectional layer"):
        rnnkit.GRU(I, H, bidirectional=True).step(torch.randn(B, I))
    model = rnnkit.GRU(I, H)
    with pytest.raises(ValueError, match=r"input must be \(batch, 4\) or \(4,\), got \(3, 5\)"):
        model.step(torch.randn(B, 5))
    with pytest.raises(ValueError, match=r"hx h_0 must have shape \(1, 3, 6\)"):
        model.step(torch.randn(B, I), torch.randn(1, 2, H))
    with pytest.raises(TypeError, match="input must have the parameters' dtype"):
        model.step(torch.randn(B, I, dtype=torch.float32))


needs_step_kernel = pytest.mark.skipif(_ext.load("step") is None, reason="the step kernel could not be built")


@needs_step_kernel
@pytest.mark.parametrize("make", [lambda: rnnkit.LSTM(I, H, num_layers=2, batch_first=True),
                                  lambda: rnnkit.GRU(I, H, batch_first=True),
                                  lambda: rnnkit.RNN(I, H, nonlinearity="relu", batch_first=True)],
                         ids=["lstm-2", "gru", "rnn-relu"])
def test_int8_layers_stay_close_to_float32(make):
    model = make().float()
    quantized = rnnkit.quantize_dynamic(model)
    assert not model.int8 and all(m.int8 for m in quantized.modules() if isinstance(m, DropIn))
    x = torch.randn(B, T, I, dtype=torch.float32)
    lengths = torch.tensor([T, 1, 3])
    with torch.inference_mode():
        want, want_hx = model(x, lengths=lengths)
        got, got_hx = quantized(x, lengths=lengths)
        # per-row int8: each product is off by about 1% of its size, compounding over steps
        assert float((got - want).norm() / want.norm()) < 0.03
        assert torch.equal(got[1, 1:], torch.zeros_like(got[1, 1:]))  # finished rows emit zeros
        step_out, _ = quantized.step(x[:, 0])
        torch.testing.assert_close(step_out, got[:, 0])  # forward is one step per time step


@needs_step_kernel
def test_weight_drop_quantizes_as_the_plain_layer():
    """Weight drop does nothing in eval mode, where an int8 layer runs."""
    plain = rnnkit.LSTM(I, H, batch_first=True).float()
    dropped = rnnkit.LSTM(I, H, batch_first=True, weight_drop=0.3).float()
    dropped.load_state_dict(plain.state_dict())
    x = torch.randn(B, T, I, dtype=torch.float32)
    with torch.inference_mode():
        want, got = (rnnkit.quantize_dynamic(m)(x)[0] for m in (plain, dropped))
    torch.testing.assert_close(got, want)


@needs_step_kernel
def test_quantize_dynamic_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match=r"cannot quantize LSTM\(4, 6\): only LSTM, GRU and Elman RNN"):
        rnnkit.quantize_dynamic(torch.nn.Sequential(rnnkit.LSTM(I, H, layer_norm=True).float()))
    with pytest.raises(ValueError, match=r"native executor's place, which backend='reference' does not use"):
        rnnkit.quantize_dynamic(rnnkit.GRU(I, H, backend="reference").float())
    with pytest.raises(ValueError, match="a bidirectional layer cannot step"):
        rnnkit.quantize_dynamic(rnnkit.LSTM(I, H, bidirectional=True).float())
    with pytest.raises(ValueError, match="weights must be float32, got torch.float64"):
        rnnkit.quantize_dynamic(rnnkit.LSTM(I, H))
    with pytest.raises(ValueError, match="no rnnkit LSTM, GRU or RNN layer to quantize"):
        rnnkit.quantize_dynamic(torch.nn.Linear(2, 2))
    quantized = rnnkit.quantize_dynamic(rnnkit.LSTM(I, H).float())
    with pytest.raises(RuntimeError, match="int8 layer runs in eval mode under torch.no_grad"):
        quantized.step(torch.randn(B, I, dtype=torch.float32))


def test_the_streaming_fast_path_still_names_bad_input():
    model = rnnkit.LSTM(I, H).float().eval()
    x = torch.randn(B, I, dtype=torch.float32)
    with torch.inference_mode():
        _, (h, c) = model.step(x)  # fills the concatenated weights: later calls take the fast path
        with pytest.raises(ValueError, match=r"hx h_0 must have shape \(1, 3, 6\)"):
            model.step(x, (h[:, :, :5], c[:, :, :5]))
        with pytest.raises(ValueError, match=r"hx c_0 must have shape \(1, 3, 6\)"):
            model.step(x, (h, c[:, :2]))
        with pytest.raises(ValueError, match=r"input must be \(batch, 4\) or \(4,\), got \(3, 5\)"):
            model.step(torch.randn(B, 5, dtype=torch.float32), (h, c))
        with pytest.raises(TypeError, match="input must have the parameters' dtype"):
            model.step(x.double(), (h, c))


def test_step_edge_cases_found_in_review():
    """A bias-free projected LSTM steps its cells; a float64 model refuses float32 input on
    the fast path too; an LSTM state of the wrong arity is named; .data edits need
    forget_step_weights."""
    proj = rnnkit.LSTM(I, H, proj_size=3, bias=False).float().eval()
    x = torch.randn(B, I, dtype=torch.float32)
    with torch.no_grad():
        out, _ = proj.step(x)
        assert_all_close(out, proj(x[None])[0][0], rtol=1e-5, atol=1e-6)
    model = rnnkit.LSTM(I, H).eval()  # float64
    with torch.inference_mode():
        _, hx = model.step(x.double())
        with pytest.raises(TypeError, match="input must have the parameters' dtype"):
            model.step(x, hx)
        with pytest.raises(TypeError, match=r"hx must be a \(h_0, c_0\) pair"):
            model.step(x.double(), hx[0])
    fp32 = rnnkit.LSTM(I, H).float().eval()
    with torch.inference_mode():
        _, hx = fp32.step(x)
        with torch.no_grad():
            fp32.weight_hh_l0.data.mul_(0.5)
        fp32.forget_step_weights()
        out, _ = fp32.step(x, hx)
        want = fp32._step_cells(x, hx)[0][-1]
        assert_all_close(out, want, rtol=1e-5, atol=1e-6)


def test_the_stepper_sees_replaced_weights_and_is_not_copied():
    """A parameter replaced (not changed in place) is seen too, and deepcopy / pickle of a
    layer that has stepped leave the compiled stepper behind and step the same."""
    model = rnnkit.GRU(I, H).float().eval()
    x = torch.randn(B, I, dtype=torch.float32)
    with torch.inference_mode():
        _, h = model.step(x)
    model.weight_hh_l0 = torch.nn.Parameter(torch.randn(3 * H, H, dtype=torch.float64))
    with torch.inference_mode(), pytest.raises(RuntimeError, match="weights must be float32, got Double"):
        model.step(x, h)
    model.weight_hh_l0 = torch.nn.Parameter(torch.randn(3 * H, H, dtype=torch.float32))
    with torch.inference_mode():
        out, _ = model.step(x, h)
        assert_all_close(out, model._step_cells(x, (h,))[0][-1], rtol=1e-5, atol=1e-6)
    for copy in (deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert copy._stepper is None
        with torch.inference_mode():
            assert_all_close(copy.step(x, h), model.step(x, h))
    with torch.inference_mode():  # a list state, not a tuple: the checked path takes it
        lstm = rnnkit.LSTM(I, H).float().eval()
        _, (h, c) = lstm.step(x)
        assert_all_close(lstm.step(x, [h, c]), lstm.step(x, (h, c)))


def test_minlstm_backward_stays_finite_when_both_gates_vanish():
    from rnnkit.kernels import fused

    if _ext.load("min_scan") is None:
        pytest.skip("the extension could not be built")
    k = torch.full((1, 2, 3), -60.0, requires_grad=True)  # f and i ~ 1e-26: s² underflows
    h0 = torch.randn(1, 1)
    out, _ = fused.min_scan(k.float(), h0.float(), torch.tensor([2]), 1)
    out.sum().backward()
    assert torch.isfinite(k.grad).all()
    with pytest.raises(RuntimeError, match=r"lengths must be in \[1, 2\], got -1"):
        fused.min_scan(k.detach(), h0, torch.tensor([-1]), 1)


@needs_step_kernel
def test_an_int8_layer_moved_to_another_dtype_says_so():
    """It used to say the kernel was not built."""
    quantized = rnnkit.quantize_dynamic(rnnkit.LSTM(I, H).float()).double()
    x = torch.randn(2, I, dtype=torch.float64)
    with torch.no_grad(), pytest.raises(RuntimeError, match=r"an int8 layer runs on the CPU in float32 "
                                                            r".*got its weights in torch.float64 on cpu"):
        quantized.step(x)
    with torch.no_grad(), pytest.raises(RuntimeError, match=r"an int8 layer runs on the CPU in float32"):
        quantized(x[None])


def test_quantize_dynamic_refuses_what_is_not_a_module():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        rnnkit.quantize_dynamic("abc")
