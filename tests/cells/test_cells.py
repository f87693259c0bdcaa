"""Each cell: the shared harness, then its equations against torch.nn or a hand computation."""

import math

import pytest
import torch
import torch.nn.functional as F

from rnnkit.cells import (
    CELLS,
    ElmanCell,
    GRUCell,
    HiddenState,
    IndRNNCell,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    LSTMState,
    MinGRUCell,
    MinLSTMCell,
)
from rnnkit.cells.mingru import g, log_g
from tests.harness import check_cell

# Factories, not instances: cells are built inside the test, after float64 is the default.
ALL_CELLS = {
    "elman": lambda: ElmanCell(4, 5),
    "elman-relu-nobias": lambda: ElmanCell(4, 5, nonlinearity="relu", bias=False),
    "lstm": lambda: LSTMCell(4, 5),
    "lstm-proj": lambda: LSTMCell(4, 5, proj_size=3),
    "lstm-peephole": lambda: LSTMCell(4, 5, peephole=True),
    "gru": lambda: GRUCell(4, 5),
    "gru-reset-before": lambda: GRUCell(4, 5, reset_after=False),
    "layernorm-lstm": lambda: LayerNormLSTMCell(4, 5),
    "layernorm-gru": lambda: LayerNormGRUCell(4, 5),
    "indrnn": lambda: IndRNNCell(4, 5),
    "mingru": lambda: MinGRUCell(4, 5),
    "minlstm": lambda: MinLSTMCell(4, 5),
}


@pytest.mark.parametrize("make", ALL_CELLS.values(), ids=ALL_CELLS.keys())
def test_harness(make):
    check_cell(make())


def test_registry_is_closed_and_complete():
    assert set(CELLS) == {"rnn", "lstm", "gru", "layernorm_lstm", "layernorm_gru", "indrnn",
                          "mingru", "minlstm"}


def _copy_torch_cell(ours, theirs):
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(theirs, name).data.copy_(getattr(ours, name))


@pytest.mark.parametrize("make", [
    lambda: (ElmanCell(4, 5), torch.nn.RNNCell(4, 5)),
    lambda: (ElmanCell(4, 5, nonlinearity="relu"), torch.nn.RNNCell(4, 5, nonlinearity="relu")),
    lambda: (LSTMCell(4, 5), torch.nn.LSTMCell(4, 5)),
    lambda: (GRUCell(4, 5), torch.nn.GRUCell(4, 5)),
], ids=["rnn-tanh", "rnn-relu", "lstm", "gru"])
def test_matches_torch_cells(make):
    ours, theirs = make()
    _copy_torch_cell(ours, theirs)
    x, h, c = torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 5)
    if isinstance(ours, LSTMCell):
        h_t, c_t = theirs(x, (h, c))
        torch.testing.assert_close(tuple(ours(x, LSTMState(h, c))), (h_t, c_t))
    else:
        torch.testing.assert_close(ours(x, HiddenState(h)).h, theirs(x, h))


def test_lstm_projection_matches_torch_lstm():
    cell, lstm = LSTMCell(4, 5, proj_size=3), torch.nn.LSTM(4, 5, proj_size=3, batch_first=True)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
        getattr(lstm, name + "_l0").data.copy_(getattr(cell, name))
    x, h, c = torch.randn(2, 4), torch.randn(2, 3), torch.randn(2, 5)
    _, (h_t, c_t) = lstm(x[:, None], (h[None], c[None]))
    state = cell(x, LSTMState(h, c))
    torch.testing.assert_close((state.h, state.c), (h_t[0], c_t[0]))


def test_peephole_by_hand():
    # H = I = 1 so each gate is a scalar; weights are distinct so gate order matters.
    cell = LSTMCell(1, 1, peephole=True)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor([[0.1], [0.2], [0.3], [0.4]]))  # i, f, g, o
        cell.weight_hh.copy_(torch.tensor([[-0.5], [0.6], [-0.7], [0.8]]))
        cell.bias_ih.copy_(torch.tensor([0.05, -0.05, 0.1, -0.1]))
        cell.bias_hh.zero_()
        cell.weight_ci.fill_(0.9)
        cell.weight_cf.fill_(-0.3)
        cell.weight_co.fill_(0.7)
    x, h, c = 2.0, 0.5, -1.0
    sig = lambda v: 1 / (1 + math.exp(-v))
    i = sig(0.1 * x - 0.5 * h + 0.05 + 0.9 * c)
    f = sig(0.2 * x + 0.6 * h - 0.05 - 0.3 * c)
    gg = math.tanh(0.3 * x - 0.7 * h + 0.1)
    c_new = f * c + i * gg
    o = sig(0.4 * x + 0.8 * h - 0.1 + 0.7 * c_new)  # output gate sees the new c
    state = cell(torch.tensor([[x]]), LSTMState(torch.tensor([[h]]), torch.tensor([[c]])))
    torch.testing.assert_close(state.c.item(), c_new)
    torch.testing.assert_close(state.h.item(), o * math.tanh(c_new))


def test_gru_reset_before_by_hand():
    # Cho et al. 2014: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn); differs from reset_after
    # exactly when b_hn != 0 or H > 1; with H = 1 and b_hn = 0.3 the two must differ.
    cell = GRUCell(1, 1, reset_after=False)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor([[0.5], [-0.4], [0.3]]))  # r, z, n
        cell.weight_hh.copy_(torch.tensor([[0.2], [0.7], [-0.6]]))
        cell.bias_ih.copy_(torch.tensor([0.1, 0.2, -0.3]))
        cell.bias_hh.copy_(torch.tensor([-0.1, 0.05, 0.3]))
    x, h = 1.5, -0.8
    sig = lambda v: 1 / (1 + math.exp(-v))
    r = sig(0.5 * x + 0.1 + 0.2 * h - 0.1)
    z = sig(-0.4 * x + 0.2 + 0.7 * h + 0.05)
    n = math.tanh(0.3 * x - 0.3 + (-0.6) * (r * h) + 0.3)
    want = (1 - z) * n + z * h
    got = cell(torch.tensor([[x]]), HiddenState(torch.tensor([[h]]))).h.item()
    torch.testing.assert_close(got, want)
    after = GRUCell(1, 1, reset_after=True)
    after.load_state_dict(cell.state_dict())
    n_after = math.tanh(0.3 * x - 0.3 + r * (-0.6 * h + 0.3))
    torch.testing.assert_close(after(torch.tensor([[x]]), HiddenState(torch.tensor([[h]]))).h.item(),
                               (1 - z) * n_after + z * h)


def test_layernorm_lstm_equations():
    cell = LayerNormLSTMCell(4, 5)
    with torch.no_grad():
        for ln in (cell.ln_ih, cell.ln_hh, cell.ln_c):
            torch.nn.init.normal_(ln.weight)
        torch.nn.init.normal_(cell.ln_c.bias)
    x, h, c = torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 5)
    gates = (F.layer_norm(x @ cell.weight_ih.T, (20,), cell.ln_ih.weight)
             + F.layer_norm(h @ cell.weight_hh.T, (20,), cell.ln_hh.weight)
             + cell.bias_ih + cell.bias_hh)
    i, f, gg, o = gates.sigmoid().chunk(4, 1)
    c_new = f * c + i * gates.chunk(4, 1)[2].tanh()
    h_new = o * F.layer_norm(c_new, (5,), cell.ln_c.weight, cell.ln_c.bias).tanh()
    state = cell(x, LSTMState(h, c))
    torch.testing.assert_close((state.h, state.c), (h_new, c_new))
    del gg


def test_layernorm_gru_equations():
    cell = LayerNormGRUCell(4, 5)
    x, h = torch.randn(3, 4), torch.randn(3, 5)
    a_r, a_z, a_n = (F.layer_norm(x @ cell.weight_ih.T, (15,)) + cell.bias_ih).chunk(3, 1)
    u_r, u_z, u_n = (F.layer_norm(h @ cell.weight_hh.T, (15,)) + cell.bias_hh).chunk(3, 1)
    r, z = (a_r + u_r).sigmoid(), (a_z + u_z).sigmoid()
    want = (1 - z) * (a_n + r * u_n).tanh() + z * h
    torch.testing.assert_close(cell(x, HiddenState(h)).h, want)


def test_indrnn_units_are_independent():
    cell = IndRNNCell(3, 4)
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    base = cell(x, HiddenState(h)).h
    h2 = h.clone()
    h2[:, 1] += 1.0  # changing unit 1's past may change only unit 1
    moved = cell(x, HiddenState(h2)).h
    assert torch.equal(moved[:, [0, 2, 3]], base[:, [0, 2, 3]])
    want = torch.relu(x @ cell.weight_ih.T + cell.bias_ih + cell.weight_hh * h)
    torch.testing.assert_close(base, want)


def test_g_is_positive_continuous_and_log_g_matches():
    x = torch.linspace(-30, 30, 601)
    assert torch.all(g(x) > 0)
    torch.testing.assert_close(g(torch.tensor(0.0)), torch.tensor(0.5))
    torch.testing.assert_close(log_g(x), g(x).log())


def test_mingru_by_hand():
    # H = I = 1: z = sigmoid(0.4 * 2 - 0.1) = sigmoid(0.7); h~ = g(-0.3 * 2 + 0.2) = sigmoid(-0.4)
    cell = MinGRUCell(1, 1)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor([[0.4], [-0.3]]))
        cell.bias_ih.copy_(torch.tensor([-0.1, 0.2]))
    z, h_tilde, h = 1 / (1 + math.exp(-0.7)), 1 / (1 + math.exp(0.4)), 1.25
    got = cell(torch.tensor([[2.0]]), HiddenState(torch.tensor([[h]]))).h.item()
    torch.testing.assert_close(got, (1 - z) * h + z * h_tilde)


def test_minlstm_by_hand():
    # f = sigmoid(1.0), i = sigmoid(-0.5), h~ = g(0.6) = 1.1; normalised by f + i
    cell = MinLSTMCell(1, 1)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor([[0.5], [-0.25], [0.3]]))
        cell.bias_ih.zero_()
    f, i = 1 / (1 + math.exp(-1.0)), 1 / (1 + math.exp(0.5))
    h = -0.7
    want = f / (f + i) * h + i / (f + i) * 1.1
    got = cell(torch.tensor([[2.0]]), HiddenState(torch.tensor([[h]]))).h.item()
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("make, message", [
    (lambda: LSTMCell(0, 5), "input_size must be a positive int"),
    (lambda: LSTMCell(4, 5, proj_size=5), "proj_size must be an int in"),
    (lambda: ElmanCell(4, 5, nonlinearity="sigmoid"), "nonlinearity must be 'tanh' or 'relu'"),
    (lambda: GRUCell(4, -1), "hidden_size must be a positive int, got -1"),
])
def test_bad_constructor_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()
