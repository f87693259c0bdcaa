"""Recurrent, Bidirectional and Stacked: lengths, reversal, merges, explicit state."""

import pytest
import torch

from rnnkit.cells import GRUCell, LayerNormLSTMCell, LSTMCell, MinGRUCell
from rnnkit.layers import (
    Bidirectional,
    Recurrent,
    Stacked,
    flip_padded,
    gather_last,
    lengths_to_mask,
)
from tests.harness import assert_all_close

B, T, I, H = 4, 6, 3, 5
LENGTHS = torch.tensor([6, 1, 4, 2])


def test_masking_helpers():
    x = torch.arange(B * T).view(B, T, 1).double()
    mask = lengths_to_mask(LENGTHS, T)
    assert mask.sum(1).tolist() == LENGTHS.tolist()
    flipped = flip_padded(x, LENGTHS)
    assert flipped[2, :, 0].tolist() == [15, 14, 13, 12, 16, 17]  # row 2: length 4
    assert flipped[1, :, 0].tolist() == x[1, :, 0].tolist()  # length 1: unchanged
    assert torch.equal(flip_padded(flipped, LENGTHS), x)
    assert torch.equal(flip_padded(x, None), x.flip(1))
    assert gather_last(x, LENGTHS)[:, 0].tolist() == [5, 6, 15, 19]


@pytest.mark.parametrize("make", [lambda: LSTMCell(I, H), lambda: GRUCell(I, H, reset_after=False),
                                  lambda: LayerNormLSTMCell(I, H), lambda: MinGRUCell(I, H)],
                         ids=["lstm", "gru-reset-before", "layernorm-lstm", "mingru"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_each_row_as_if_run_alone(make, reverse):
    """A padded batch gives, row by row, what the row gives alone at its own length."""
    layer = Recurrent(make(), reverse=reverse, backend="auto")
    x = torch.randn(B, T, I, requires_grad=True)
    state0 = layer.cell.init_state(B)
    state0 = type(state0)(*(torch.randn_like(t) for t in state0))
    out, final = layer(x, state0, lengths=LENGTHS)
    for b, n in enumerate(LENGTHS.tolist()):
        row_state = type(state0)(*(t[b:b + 1] for t in state0))
        out_b, final_b = layer(x[b:b + 1, :n], row_state)
        torch.testing.assert_close(out[b:b + 1, :n], out_b)
        assert torch.all(out[b, n:] == 0)  # padded steps emit zeros
        assert_all_close(type(final)(*(t[b:b + 1] for t in final)), final_b)
    out.sum().backward()
    pad_mask = ~lengths_to_mask(LENGTHS, T)
    assert torch.all(x.grad[pad_mask] == 0)  # padding gets no gradient
    assert torch.all(x.grad[~pad_mask].abs().sum(-1) > 0)


def test_reverse_reads_each_row_backwards():
    fwd = Recurrent(GRUCell(I, H))
    bwd = Recurrent(GRUCell(I, H), reverse=True)
    bwd.load_state_dict(fwd.state_dict())
    x = torch.randn(B, T, I)
    out_b, final_b = bwd(x, lengths=LENGTHS)
    out_f, final_f = fwd(flip_padded(x, LENGTHS), lengths=LENGTHS)
    torch.testing.assert_close(out_b, flip_padded(out_f, LENGTHS))
    assert_all_close(final_b, final_f)


@pytest.mark.parametrize("merge", ["concat", "sum", "mul", "ave"])
def test_bidirectional_merges(merge):
    fwd, bwd = Recurrent(LSTMCell(I, H)), Recurrent(LSTMCell(I, H), reverse=True)
    bi = Bidirectional(fwd, bwd, merge=merge)
    x = torch.randn(B, T, I)
    out, (sf, sb) = bi(x, lengths=LENGTHS)
    of, sf_want = fwd(x, lengths=LENGTHS)
    ob, sb_want = bwd(x, lengths=LENGTHS)
    want = {"concat": torch.cat([of, ob], -1), "sum": of + ob, "mul": of * ob,
            "ave": (of + ob) / 2}[merge]
    torch.testing.assert_close(out, want)
    assert out.shape[-1] == bi.output_size
    assert_all_close((sf, sb), (sf_want, sb_want))


def test_stacked_feeds_layers_and_carries_state():
    layers = [Recurrent(LSTMCell(I, H)), Recurrent(GRUCell(H, 2))]
    stack = Stacked(layers)
    x = torch.randn(B, T, I)
    out, (s1, s2) = stack(x, lengths=LENGTHS)
    mid, s1_want = layers[0](x, lengths=LENGTHS)
    want, s2_want = layers[1](mid, lengths=LENGTHS)
    torch.testing.assert_close(out, want)
    assert_all_close((s1, s2), (s1_want, s2_want))
    # carrying the state over two halves equals one pass over the whole
    first, state = stack(x[:, :3])
    second, state = stack(x[:, 3:], state)
    whole, whole_state = stack(x)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    assert_all_close(state, whole_state)


def test_stacked_dropout_only_between_layers_and_only_in_training():
    stack = Stacked([Recurrent(GRUCell(I, H)), Recurrent(GRUCell(H, H))], dropout=0.5)
    x = torch.randn(B, T, I)
    stack.eval()
    a, b = stack(x)[0], stack(x)[0]
    assert torch.equal(a, b)
    stack.train()
    torch.manual_seed(1)
    c = stack(x)[0]
    assert not torch.allclose(c, a)


def test_layer_construction_errors():
    with pytest.raises(ValueError, match="layer 1 must take input_size 5 .*got 3"):
        Stacked([Recurrent(GRUCell(I, H)), Recurrent(GRUCell(I, H))])
    with pytest.raises(ValueError, match="layers must hold at least one layer"):
        Stacked([])
    with pytest.raises(ValueError, match="merge must be one of"):
        Bidirectional(Recurrent(GRUCell(I, H)), Recurrent(GRUCell(I, H), reverse=True),
                      merge="max")
    with pytest.raises(ValueError, match="bwd reverse=True"):
        Bidirectional(Recurrent(GRUCell(I, H)), Recurrent(GRUCell(I, H)))
    with pytest.raises(ValueError, match="backend 'native' cannot run"):
        Recurrent(MinGRUCell(I, H), backend="native")


@pytest.mark.parametrize("backend", ["reference", "native"])
def test_plain_tuple_state_is_accepted(backend):
    layer = Recurrent(LSTMCell(I, H), backend=backend)
    x, h, c = torch.randn(B, T, I), torch.randn(B, H), torch.randn(B, H)
    out, state = layer(x, (h, c))
    want_out, want_state = layer(x, layer.cell.init_state(B)._replace(h=h, c=c))
    torch.testing.assert_close(out, want_out)
    assert type(state).__name__ == "LSTMState"
    assert_all_close(state, want_state)


@pytest.mark.parametrize("make", [lambda: LSTMCell(I, H), lambda: MinGRUCell(I, H)], ids=["lstm", "mingru"])
@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_nan_padding_does_not_reach_gradients(make, backend):
    layer = Recurrent(make(), backend=backend)
    x = torch.randn(B, T, I)
    x[1, 1:] = float("nan")  # row 1 has length 1: the rest is padding
    x.requires_grad_(True)
    out, state = layer(x, lengths=LENGTHS)
    (out.sum() + state.h.sum()).backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
    assert torch.isfinite(x.grad).all()
