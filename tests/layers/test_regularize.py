"""Recurrent dropout, zoneout, weight drop, locked and embedding dropout."""

import pytest
import torch

import rnnkit
from rnnkit.cells import GRUCell, HiddenState, LSTMCell, LSTMState
from rnnkit.cells.wrappers import RecurrentDropout, WeightDrop, Zoneout
from rnnkit.layers import EmbeddingDropout, GaussianNoise, LockedDropout, Recurrent

B, T, I, H = 6, 5, 3, 8


class Spy(GRUCell):
    """A GRU cell that records the h it is given at every step."""

    def __init__(self):
        super().__init__(I, H)
        self.seen = []

    def forward(self, x_BI, state):
        self.seen.append(state.h.detach().clone())
        return super().forward(x_BI, state)


def test_recurrent_dropout_uses_one_mask_per_sequence():
    spy = Spy()
    layer = Recurrent(RecurrentDropout(spy, 0.5)).train()
    h0 = HiddenState(torch.rand(B, H) + 0.5)  # nonzero everywhere
    layer(torch.randn(B, T, I), h0)
    dropped = [h == 0 for h in spy.seen[1:]]  # step 0 sees h0 itself masked too
    assert spy.seen[0].eq(0).any() and spy.seen[0].ne(0).any()
    for d in dropped:
        assert torch.equal(d, spy.seen[0] == 0)  # same units at every step
    kept = spy.seen[0] != 0
    torch.testing.assert_close(spy.seen[0][kept], (h0.h * 2)[kept])  # inverted-dropout scale
    spy.seen.clear()
    layer.eval()
    layer(torch.randn(B, T, I), h0)
    assert torch.equal(spy.seen[0], h0.h)


def test_zoneout_training_keeps_old_or_new_and_eval_mixes():
    inner = LSTMCell(I, H)
    cell = Zoneout(inner, h=0.3, c=0.6)
    x = torch.randn(B, I)
    old = LSTMState(torch.randn(B, H), torch.randn(B, H))
    new = inner(x, old)
    cell.train()
    got = cell(x, old)
    for g, o, n in zip(got, old, new, strict=True):
        from_old, from_new = g == o, g == n
        assert torch.all(from_old | from_new)
        assert from_old.any() and from_new.any()
    cell.eval()
    got = cell(x, old)
    torch.testing.assert_close(got.h, 0.3 * old.h + 0.7 * new.h)
    torch.testing.assert_close(got.c, 0.6 * old.c + 0.4 * new.c)


@pytest.mark.parametrize("cell", [
    lambda: Zoneout(LSTMCell(I, H, proj_size=3), h=0.3, c=0.6),  # h and c of different sizes
    lambda: Zoneout(GRUCell(I, H), h=0.4),
], ids=["lstm-proj", "gru"])
def test_zoneout_draws_a_whole_sequence_in_one_call_with_the_per_step_numbers(cell, monkeypatch):
    """A known length draws every step's uniforms in one call (2T small calls cost more than
    the step on a GPU); on the CPU they are the numbers the per-step draws give."""
    cell = cell().train()
    x_TBI, state = torch.randn(T, B, I), cell.init_state(B)

    def run(steps):
        torch.manual_seed(5)
        step, s, hs = cell.for_sequence(B, steps=steps), state, []
        for x_BI in x_TBI:
            s = step(x_BI, s)
            hs.append(s)
        return hs

    calls = []
    rand = torch.rand
    monkeypatch.setattr(torch, "rand", lambda *a, **k: calls.append(a) or rand(*a, **k))
    whole = run(T)
    assert len(calls) == 1
    for got, want in zip(whole, run(None), strict=True):
        for g, w in zip(got, want, strict=True):
            assert torch.equal(g, w)


def test_weight_drop_masks_weight_hh_per_pass_without_patching():
    cell = WeightDrop(GRUCell(I, H), 0.5).train()
    before = cell.cell.weight_hh.detach().clone()
    torch.manual_seed(3)
    w = cell.dropped_weight_hh()
    zero = w == 0
    assert 0.3 < zero.double().mean() < 0.7
    torch.testing.assert_close(w[~zero], 2 * before[~zero])
    layer = Recurrent(cell)
    layer(torch.randn(B, T, I))
    assert torch.equal(cell.cell.weight_hh, before)  # the parameter itself is untouched
    assert isinstance(cell.cell.weight_hh, torch.nn.Parameter)
    cell.eval()
    assert torch.equal(cell.dropped_weight_hh(), before)


def test_weight_drop_gradient_reaches_the_parameter():
    model = rnnkit.LSTM(I, H, weight_drop=0.5, batch_first=True).train()
    model(torch.randn(B, T, I))[0].sum().backward()
    grad = model.weight_hh_l0.grad
    assert grad is not None and grad.abs().sum() > 0
    assert (grad == 0).any()  # dropped connections get no gradient


def test_weight_drop_must_wrap_the_owner_of_weight_hh():
    with pytest.raises(TypeError, match="WeightDrop must wrap a cell that owns weight_hh"):
        WeightDrop(Zoneout(LSTMCell(I, H), 0.1), 0.5)


def test_locked_dropout_shares_the_mask_over_time():
    drop = LockedDropout(0.5).train()
    x = torch.rand(B, T, H) + 0.5
    y = drop(x)
    zero = y == 0
    assert torch.equal(zero, zero[:, :1].expand_as(zero))
    assert zero.any() and (~zero).any()
    assert torch.equal(drop.eval()(x), x)


def test_embedding_dropout_drops_whole_words():
    emb = EmbeddingDropout(torch.nn.Embedding(10, 4), 0.5).train()
    tokens = torch.tensor([[1, 2, 1, 3], [2, 1, 3, 3]])
    out = emb(tokens)
    rows = {}
    for tok, vec in zip(tokens.flatten().tolist(), out.view(-1, 4), strict=True):
        rows.setdefault(tok, []).append(bool((vec == 0).all()))
    assert all(len(set(v)) == 1 for v in rows.values())  # a word is dropped everywhere or nowhere
    torch.manual_seed(0)
    assert torch.equal(emb.eval()(tokens), emb.embedding(tokens))


def test_gaussian_noise_adds_noise_of_the_asked_std_in_training_only():
    torch.manual_seed(0)
    noise = GaussianNoise(0.3).train()
    x = torch.randn(64, 50, 8, dtype=torch.float64)
    delta = noise(x) - x
    assert abs(float(delta.mean())) < 0.01  # 25,600 draws: sd of the mean 0.3 / 160
    assert float(delta.std()) == pytest.approx(0.3, rel=0.02)
    assert torch.equal(noise.eval()(x), x)
    assert torch.equal(GaussianNoise(0.0).train()(x), x)


@pytest.mark.parametrize("make, message", [
    (lambda: GaussianNoise(-0.1), r"std must be a finite float >= 0, got -0.1"),
    (lambda: GaussianNoise(float("inf")), r"std must be a finite float >= 0, got inf"),
    (lambda: RecurrentDropout(GRUCell(I, H), 1.0), r"p must be a probability in \[0, 1\), got 1.0"),
    (lambda: Zoneout(GRUCell(I, H), h=-0.1), r"h must be a probability"),
    (lambda: LockedDropout("0.5"), r"p must be a probability in \[0, 1\), got '0.5'"),
    (lambda: rnnkit.MinGRU(I, H, weight_drop=0.2), "MinGRU has no recurrent weights"),
])
def test_bad_probabilities(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_zoneout_that_touches_no_field_of_the_state_is_the_plain_cell():
    """Zoneout at 0 on a GRU zones nothing: the one-call draw is empty (the first step had
    raised StopIteration)."""
    gru = GRUCell(I, H)
    x = torch.randn(B, T, I)
    want, _ = Recurrent(gru, backend="reference")(x)
    for backend in ("reference", "auto"):
        got, _ = Recurrent(Zoneout(gru, h=0.0, c=0.0), backend=backend).train()(x)
        torch.testing.assert_close(got, want)  # auto: the compiled loop, summing in its own order


def test_zoneout_on_c_is_refused_where_the_state_has_no_c():
    """It used to be accepted and ignored: rnnkit.GRU(zoneout=(0, 0.9)) trained as a plain GRU."""
    with pytest.raises(ValueError, match="c must be 0: the state of a GRUCell has no c, got 0.3"):
        Zoneout(RecurrentDropout(GRUCell(I, H), 0.1), h=0.1, c=0.3)
    with pytest.raises(ValueError, match=r"zoneout: a GRU's state has no c, .* got \(0.0, 0.9\)"):
        rnnkit.GRU(I, H, zoneout=(0.0, 0.9))
    assert rnnkit.GRU(I, H, zoneout=0.2).zoneout == (0.2, 0.0)  # one probability: h's
    assert rnnkit.LSTM(I, H, zoneout=0.2).zoneout == (0.2, 0.2)


def _gru_by_hand(cell, x_BTI, h_BH, m_BH):
    """Gal & Ghahramani's recurrent dropout on a GRU, written from the equations (as Keras's
    GRUCell): the products read h m; the carry z h reads h itself."""
    w_ir, w_iz, w_in = cell.weight_ih.chunk(3)
    w_hr, w_hz, w_hn = cell.weight_hh.chunk(3)
    b_ir, b_iz, b_in = cell.bias_ih.chunk(3)
    b_hr, b_hz, b_hn = cell.bias_hh.chunk(3)
    out = []
    for t in range(x_BTI.shape[1]):
        x, hd = x_BTI[:, t], h_BH * m_BH
        r = torch.sigmoid(x @ w_ir.T + b_ir + hd @ w_hr.T + b_hr)
        z = torch.sigmoid(x @ w_iz.T + b_iz + hd @ w_hz.T + b_hz)
        if cell.reset_after:
            n = torch.tanh(x @ w_in.T + b_in + r * (hd @ w_hn.T + b_hn))
        else:
            n = torch.tanh(x @ w_in.T + b_in + (r * hd) @ w_hn.T + b_hn)
        h_BH = (1 - z) * n + z * h_BH
        out.append(h_BH)
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_gru_recurrent_dropout_masks_the_products_and_not_the_carry(reset_after, backend, monkeypatch):
    """The carry z h once read the dropped h too: a kept unit grew by z / (1 - p) a step, and
    in training the state reached 1e16 after 60 steps (p = 0.5, z near 1)."""
    torch.manual_seed(0)
    cell = GRUCell(I, H, reset_after=reset_after).double()
    with torch.no_grad():
        cell.bias_hh[H:2 * H] += 4.0  # z near 1: the carry dominates
    m_BH = torch.randint(0, 2, (B, H), dtype=torch.float64) * 2.0  # p = 0.5
    monkeypatch.setattr(RecurrentDropout, "draw_mask", lambda self, batch, **kw: m_BH)
    x, h0 = torch.randn(B, 60, I, dtype=torch.float64), torch.rand(B, H, dtype=torch.float64) * 2 - 1
    layer = Recurrent(RecurrentDropout(cell, 0.5), backend=backend).train()
    got, _ = layer(x, HiddenState(h0))
    torch.testing.assert_close(got, _gru_by_hand(cell, x, h0, m_BH))
    assert got.abs().max() < 1  # a mix of n and the last h, both in (-1, 1)


def test_recurrent_dropout_reaches_the_cell_through_wrappers_that_pass_it_on():
    """A wrapper of one's own that says it passes recurrent_h on (the gradient probe does) keeps
    the GRU's carry whole; minGRU, whose h only carries over, is refused."""
    from rnnkit.cells import MinGRUCell
    from rnnkit.diagnostics.probe import GradProbe

    torch.manual_seed(2)
    gru = GRUCell(I, H)
    with torch.no_grad():
        gru.bias_hh[H:2 * H] += 4.0  # z near 1: a dropped carry would compound
    layer = Recurrent(RecurrentDropout(GradProbe(gru), 0.5), backend="reference").train()
    out, _ = layer(torch.randn(B, 60, I))
    assert out.abs().max() < 1
    with pytest.raises(ValueError, match="a MinGRUCell has no recurrent product for recurrent dropout"):
        RecurrentDropout(MinGRUCell(I, H), 0.2)


def test_recurrent_dropout_outside_zoneout_keeps_the_true_state():
    """RecurrentDropout(Zoneout(...)): zoneout's kept units are the state's, not the dropped h
    the product reads (the dropped h compounded to 4.9e9 in 60 steps)."""
    torch.manual_seed(1)
    cell = RecurrentDropout(Zoneout(LSTMCell(I, H), h=0.9), 0.5)
    out, (h, c) = Recurrent(cell, backend="reference").train()(torch.randn(B, 60, I))
    assert out.abs().max() < 1 and h.abs().max() < 1


def test_a_sequence_step_function_refuses_more_steps_than_it_was_made_for():
    cell = Zoneout(GRUCell(I, H), h=0.5).train()
    step, state = cell.for_sequence(B, steps=2), cell.init_state(B)
    for _ in range(2):
        state = step(torch.randn(B, I), state)
    with pytest.raises(RuntimeError, match=r"made for 2 steps .* called for step 3"):
        step(torch.randn(B, I), state)


class OldStyleWrapper(rnnkit.cells.CellWrapper):
    """A user's wrapper written before for_sequence took steps: it doubles h's input."""

    def init_state(self, batch, *, device=None, dtype=None):
        return self.cell.init_state(batch, device=device, dtype=dtype)

    def forward(self, x_BI, state):
        return self.cell(x_BI, state._replace(h=2 * state.h))

    def for_sequence(self, batch, *, device=None, dtype=None):
        step = self.cell.for_sequence(batch, device=device, dtype=dtype)
        return lambda x_BI, state: step(x_BI, state._replace(h=2 * state.h))


def test_a_for_sequence_override_without_steps_still_runs_with_a_warning():
    cell = OldStyleWrapper(GRUCell(I, H))
    x = torch.randn(B, T, I)
    with pytest.warns(FutureWarning, match="OldStyleWrapper.for_sequence should take steps=None"):
        got, _ = Recurrent(Zoneout(cell, h=0.0), backend="reference")(x)
    state, outs = cell.init_state(B), []
    for t in range(T):
        state = cell(x[:, t], state)
        outs.append(state.h)
    torch.testing.assert_close(got, torch.stack(outs, 1))


def test_a_for_sequence_override_without_steps_exports():
    """Exported, the loop is one scan that asks for no length (T is symbolic): an override
    without ``steps`` is called without it, and nothing is warned."""
    import warnings

    layer = Recurrent(OldStyleWrapper(GRUCell(I, H)), backend="reference").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        program = torch.export.export(layer, (torch.randn(B, T, I),),
                                      dynamic_shapes=({1: torch.export.Dim("T", min=2, max=64)},))
    x = torch.randn(B, T + 4, I)
    torch.testing.assert_close(program.module()(x)[0], layer(x)[0])
