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
