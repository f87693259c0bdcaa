"""The total derivative dLoss/dh_t at every step, measured through the recurrence.

``GradProbe(cell)`` adds a zero tensor ε_t (with ``requires_grad``) to the ``h`` of every
state the cell returns and keeps it. Since everything downstream (the output head, the next
step, the layer above) reads h_t + ε_t, and ε_t = 0,

    ∂L/∂ε_t = dL/dh_t,

the *total* derivative at h_t: the direct path to the loss plus every path through later
steps, exactly what backpropagation through time carries back (Bengio et al. 1994;
Pascanu et al. 2013, "On the difficulty of training recurrent neural networks", §2).
For an LSTM this is the derivative with respect to h_t with c_t held fixed; the memory
path through c reaches h_t only through earlier steps.

``hidden_grad_norms`` installs a probe in every rnnkit ``Recurrent`` layer of a model,
runs it on the reference (Python loop) executor, and puts the model back as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from rnnkit.cells.base import Cell, CellWrapper, State, Step, sequence_step
from rnnkit.dropins.base import DropIn
from rnnkit.layers.masking import flip_padded
from rnnkit.layers.recurrent import Recurrent


class GradProbe(CellWrapper):
    """Adds a zero ε_t with ``requires_grad`` to each new h_t and records it.

    ``passes`` holds one ``(taps, lengths)`` pair per pass over a sequence (one
    ``for_sequence`` call): the (B, O) ε_t of every step in the order the steps ran, and the
    ``lengths`` of the layer call that ran them (kept in ``self.lengths`` by
    ``hidden_grad_norms``), so that a reversed layer's steps can be put back in time order.
    The probe is a measuring instrument, installed for one forward pass; it is the one cell
    that keeps what it saw.
    """

    def __init__(self, cell: Cell):
        super().__init__(cell)
        self.passes: list[tuple[list[Tensor], Tensor | None]] = []
        self.lengths: Tensor | None = None

    passes_recurrent_h = True

    def forward(self, x_BI: Tensor, state: State, **kwargs) -> State:
        self.passes.append(([], None))  # a lone step is a pass of length one
        return self._tap(self.cell(x_BI, state, **kwargs), self.passes[-1][0])

    def for_sequence(self, batch: int, *, steps: int | None = None, device=None, dtype=None) -> Step:
        step = sequence_step(self.cell, batch, steps=steps, device=device, dtype=dtype)
        taps: list[Tensor] = []
        self.passes.append((taps, self.lengths))
        return lambda x_BI, state, **kwargs: self._tap(step(x_BI, state, **kwargs), taps)

    @staticmethod
    def _tap(state: State, taps: list[Tensor]) -> State:
        eps_BO = torch.zeros_like(state.h, requires_grad=True)
        taps.append(eps_BO)
        return state._replace(h=state.h + eps_BO)


def recurrent_layers(model: nn.Module) -> list[Recurrent]:
    """Every rnnkit ``Recurrent`` layer in ``model``, in ``model.modules()`` order (for a
    drop-in: layer by layer, forward direction before backward, as torch.nn orders them)."""
    return [m for m in model.modules() if isinstance(m, Recurrent)]


@contextmanager
def probed(model: nn.Module) -> Iterator[list[tuple[Recurrent, GradProbe]]]:
    """Wrap the cell of every ``Recurrent`` in ``model`` in a ``GradProbe`` and force the
    reference executor; on exit, put back the very same cells, executors and fused flags.

    Yields the ``(layer, probe)`` pairs, in ``recurrent_layers`` order.
    """
    layers = recurrent_layers(model)
    if not layers:
        raise TypeError(f"model must contain an rnnkit recurrent layer (rnnkit.Recurrent, or a "
                        f"drop-in such as rnnkit.LSTM), got {type(model).__name__} with none; "
                        "a torch.nn RNN converts with rnnkit.LSTM.from_torch(module) and the like")
    saved = [(layer, layer.cell, layer.executor) for layer in layers]
    # drop-ins run a whole stack as one fused torch op when they can, bypassing the cells
    dropins = [(m, m._fused_kind) for m in model.modules() if isinstance(m, DropIn)]
    probes, hooks = [], []
    try:
        for m, _ in dropins:
            m._fused_kind = None
        for layer in layers:
            probe = GradProbe(layer.cell)
            hooks.append(layer.register_forward_pre_hook(_lengths_keeper(probe), with_kwargs=True))
            layer.cell, layer.executor = probe, "reference"
            probes.append((layer, probe))
        yield probes
    finally:
        for hook in hooks:
            hook.remove()
        for layer, cell, executor in saved:
            layer.cell, layer.executor = cell, executor
        for m, kind in dropins:
            m._fused_kind = kind


def _lengths_keeper(probe: GradProbe) -> Callable:
    def keep(layer, args, kwargs):
        probe.lengths = kwargs.get("lengths")  # Recurrent.forward takes lengths by keyword only
    return keep


def hidden_grad_norms(model: nn.Module, inputs: Tensor, targets, loss_fn: Callable, *,
                      lengths: Tensor | None = None) -> Tensor:
    """‖dLoss/dh_t‖ at every step t of every recurrent layer of ``model``.

    Runs ``loss_fn(model(inputs[, lengths=lengths]), targets)`` once with every rnnkit
    ``Recurrent`` layer probed (see ``GradProbe``) on the reference executor, and takes the
    gradient of that scalar with respect to the probes only: parameter ``.grad`` fields are
    not touched, and the model comes back unchanged. The model runs in the mode it is in
    (call ``model.eval()`` first to measure without dropout).

    Arguments:
        model: any module built from rnnkit layers (``Recurrent``, ``Bidirectional``,
            ``Stacked``, the drop-ins ``rnnkit.RNN/LSTM/GRU/...``).
        inputs: the model's first argument.
        targets: passed to ``loss_fn`` as its second argument.
        loss_fn: ``(model_output, targets) -> scalar loss``.
        lengths: if given, passed to the model as ``lengths=``.

    Returns:
        norms_LT: (L, T), row l for the l-th ``Recurrent`` layer in ``model.modules()``
        order (each direction of a bidirectional layer is its own row), column t for time
        step t of the input, also for reversed layers; the Frobenius norm of dL/dh_t over
        the batch and features (B, O). Padded steps have norm 0. A layer called several
        times in one forward (step by step) has its calls' steps concatenated.

    Raises:
        TypeError: ``model`` has no rnnkit ``Recurrent`` layer.
        ValueError: the loss is not a scalar, or the layers ran different numbers of steps.
    """
    with torch.enable_grad(), probed(model) as probes:
        output = model(inputs) if lengths is None else model(inputs, lengths=lengths)
        loss = loss_fn(output, targets)
        if not isinstance(loss, Tensor) or loss.dim() != 0:
            shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
            raise ValueError(f"loss_fn must return a scalar tensor, got {shape}")
        eps = [e for _, probe in probes for taps, _ in probe.passes for e in taps]
        if not eps:
            raise ValueError(f"model ({type(model).__name__}) ran none of its recurrent layers")
        grads = torch.autograd.grad(loss, eps, allow_unused=True)
    grads = iter(torch.zeros_like(e) if g is None else g for e, g in zip(eps, grads, strict=True))
    rows = [_layer_norms_T(layer, probe.passes, grads) for layer, probe in probes]
    steps = {len(row) for row in rows}
    if len(steps) != 1:
        raise ValueError("the recurrent layers must all run the same number of steps to be "
                         f"stacked, got {[len(row) for row in rows]} steps per layer")
    return torch.stack(rows)


def _layer_norms_T(layer: Recurrent, passes: list[tuple[list[Tensor], Tensor | None]],
                   grads: Iterator[Tensor]) -> Tensor:
    """One layer's norms in input time order: each pass's gradients (B, T, O), flipped back
    for a reversed layer, then the norm over (B, O)."""
    norms = []
    for taps, lengths in passes:
        g_BTO = torch.stack([next(grads) for _ in taps], dim=1)
        if layer.reverse:
            lengths_B = None if lengths is None else torch.as_tensor(lengths, device=g_BTO.device)
            g_BTO = flip_padded(g_BTO, lengths_B)
        norms.append(g_BTO.norm(dim=(0, 2)))
    return torch.cat(norms) if norms else torch.zeros(0)  # a layer that never ran has no steps
