"""Weights computed by torch's utilities on a drop-in's cells: ``parametrize`` (weight_norm,
orthogonal, any parametrization: the cell's class is swapped for a subclass and the weight is
computed at each access) and ``prune`` (the weight is recomputed in a forward pre-hook, which
runs only when the cell is called). Each executor must give torch.nn's numbers with the same
utility on the same weights."""

import re

import pytest
import torch
import torch.nn.utils.parametrize as P
import torch.nn.utils.prune as prune
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

import rnnkit


class Scaled(nn.Module):
    def forward(self, w):
        return 0.5 * w + 0.1 * w.tanh()


def pair(kind, backend="auto", **kwargs):
    torch.manual_seed(0)
    theirs = getattr(nn, kind)(3, 5, **kwargs)
    ours = getattr(rnnkit, kind)(3, 5, backend=backend, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


def cells(layer):
    """(torch.nn name suffix, our cell) per layer and direction, in torch.nn's order."""
    out = []
    for k, runs in enumerate(layer.stack.layers):
        directions = (("", runs.fwd), ("_reverse", runs.bwd)) if hasattr(runs, "fwd") else (("", runs),)
        out += [(f"_l{k}{suffix}", run.cell) for suffix, run in directions]
    return out


def key(name):
    """One key for a parameter under either naming, utilities' renaming included:
    parametrizations.weight_hh_l1_reverse.original0 and
    stack.layers.1.bwd.cell.parametrizations.weight_hh.original0 both give the same."""
    ours = re.fullmatch(r"stack\.layers\.(\d+)(?:\.(fwd|bwd))?\.cell\.(.*)", name)
    if ours:
        k, direction, rest = ours.groups()
        suffix = f"_l{k}_reverse" if direction == "bwd" else f"_l{k}"
        return re.sub(r"(weight|bias)_(ih|hh)", rf"\1_\2{suffix}", rest)
    return name


def assert_same(theirs, ours, x):
    x = x.requires_grad_()
    want, want_h = theirs(x)
    got, got_h = ours(x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_h, want_h)
    theirs_names = ["x", *dict(theirs.named_parameters())]
    want_grads = torch.autograd.grad(want.square().sum(), [x, *theirs.parameters()])
    want_by_name = dict(zip(theirs_names, want_grads, strict=True))
    names = ["x", *(key(n) for n, _ in ours.named_parameters())]
    assert sorted(names) == sorted(theirs_names)
    for name, g in zip(names, torch.autograd.grad(got.square().sum(), [x, *ours.parameters()]), strict=True):
        torch.testing.assert_close(g, want_by_name[name])


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_parametrized_weights_give_torch_nn_numbers(kind, backend):
    theirs, ours = pair(kind, backend, num_layers=2, bidirectional=True, batch_first=True)
    for suffix, cell in cells(ours):
        weight_norm(theirs, f"weight_hh{suffix}")
        weight_norm(cell, "weight_hh")
        P.register_parametrization(theirs, f"bias_ih{suffix}", Scaled())
        P.register_parametrization(cell, "bias_ih", Scaled())
    assert_same(theirs, ours, torch.randn(4, 6, 3))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_pruned_weights_follow_their_originals(kind):
    """prune's pre-hook recomputes weight = orig * mask at each call: after an optimizer step
    on the original the layer must see the new weight, as torch.nn does."""
    theirs, ours = pair(kind, num_layers=2)
    for suffix, cell in cells(ours):
        mask = (torch.rand_like(cell.weight_hh) > 0.5).double()
        prune.custom_from_mask(theirs, f"weight_hh{suffix}", mask)
        prune.custom_from_mask(cell, "weight_hh", mask)
    x = torch.randn(7, 2, 3)
    assert_same(theirs, ours, x)
    with torch.no_grad():
        for p in (*theirs.parameters(), *ours.parameters()):
            p.mul_(1.5)  # both sides' originals, in the same way
    assert_same(theirs, ours, x)


def test_step_and_variants_with_a_parametrized_weight():
    """The streaming step's compiled copy cannot follow a computed weight: it steps the cells,
    and gives what forward gives; the layer-norm loop executor sees the computed weight too."""
    layer = rnnkit.GRU(3, 5, num_layers=2).eval()
    P.register_parametrization(layer.stack.layers[1].cell, "weight_hh", Scaled())
    x = torch.randn(4, 2, 3)
    with torch.no_grad():
        want, _ = layer(x)
        h, steps = None, []
        for t in range(4):
            out, h = layer.step(x[t], h)
            steps.append(out)
    torch.testing.assert_close(torch.stack(steps), want)
    ln = rnnkit.LSTM(3, 5, layer_norm=True)
    reference = rnnkit.LSTM(3, 5, layer_norm=True, backend="reference")
    reference.load_state_dict(ln.state_dict())
    for layer in (ln, reference):
        P.register_parametrization(layer.stack.layers[0].cell, "weight_hh", Scaled())
    assert ln.stack.layers[0].executor != "reference"
    x = torch.randn(6, 2, 3)
    torch.testing.assert_close(ln(x)[0], reference(x)[0])


def test_state_dicts_keep_torch_nn_names_of_computed_weights():
    """parametrize's parametrizations.<name>.original0 and prune's <name>_orig/_mask follow
    the weight's torch.nn name, so the two layers load each other's dicts (saving had failed
    with a KeyError, and so fit's first checkpoint)."""
    theirs, ours = pair("LSTM", num_layers=2, bidirectional=True)
    weight_norm(theirs, "weight_hh_l1_reverse")
    weight_norm(ours.stack.layers[1].bwd.cell, "weight_hh")
    prune.custom_from_mask(theirs, "weight_ih_l0", (torch.rand(20, 3) > 0.3).double())
    prune.custom_from_mask(ours.stack.layers[0].fwd.cell, "weight_ih", theirs.weight_ih_l0_mask)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    assert "parametrizations.weight_hh_l1_reverse.original0" in ours.state_dict()
    fresh = pair("LSTM", num_layers=2, bidirectional=True)[1]
    weight_norm(fresh.stack.layers[1].bwd.cell, "weight_hh")
    prune.identity(fresh.stack.layers[0].fwd.cell, "weight_ih")
    fresh.load_state_dict(theirs.state_dict())
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(fresh(x)[0], theirs(x)[0])


@pytest.mark.parametrize("how", ["parametrize", "prune"])
def test_weight_drop_refuses_computed_weights_on_every_executor(how):
    """prune's hook wrote its weight over the dropped one (no DropConnect at all) and
    functional_call wrote a parametrized one into its originals in place."""
    for backend in ("auto", "reference"):
        layer = rnnkit.LSTM(3, 5, weight_drop=0.5, backend=backend)
        cell = layer.stack.layers[0].cell.cell
        if how == "parametrize":
            P.register_parametrization(cell, "weight_hh", Scaled())
        else:
            prune.l1_unstructured(cell, "weight_hh", 0.3)
        with pytest.raises(RuntimeError, match="weight drop cannot train a cell whose weights"):
            layer.train()(torch.randn(4, 2, 3))
        layer.eval()(torch.randn(4, 2, 3))  # no weight drop at evaluation


def test_quantize_and_min_cells_with_computed_weights():
    layer = rnnkit.GRU(3, 5)
    weight_norm(layer.stack.layers[0].cell, "weight_hh")
    with pytest.raises(ValueError, match=r"cannot quantize GRU\(3, 5\): its weights are computed"):
        rnnkit.quantize_dynamic(layer.float())
    fast, slow = rnnkit.MinGRU(3, 5), rnnkit.MinGRU(3, 5, backend="reference")
    slow.load_state_dict(fast.state_dict())
    for layer in (fast, slow):
        weight_norm(layer.stack.layers[0].cell, "weight_ih")
    x = torch.randn(2, 6, 3)  # batch first? either way both see the same
    torch.testing.assert_close(fast(x)[0], slow(x)[0])
