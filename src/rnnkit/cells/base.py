"""The cell contract and the typed recurrent states.

Every cell maps ``(x_BI, state) -> state`` and exposes its per-step output as
``state.h``. States are NamedTuples, so they pass through ``torch.compile``,
``torch.func`` and autograd as plain tuples of tensors.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn


def _detach(state):
    return type(state)(*(t.detach() for t in state))


def _where(state, mask_B: Tensor, other):
    """Rows where ``mask_B`` is True come from ``state``, the others from ``other``."""
    m_B1 = mask_B.unsqueeze(-1)
    return type(state)(*(torch.where(m_B1, a, b) for a, b in zip(state, other, strict=True)))


def _reset(state, reset_B: Tensor):
    """Zero the rows where ``reset_B`` is True (a new sequence starts there)."""
    m_B1 = reset_B.unsqueeze(-1)
    return type(state)(*(t.masked_fill(m_B1, 0.0) for t in state))


class HiddenState(NamedTuple):
    """State of cells that carry only ``h`` (Elman, GRU, IndRNN, minGRU, minLSTM)."""

    h: Tensor

    detach = _detach
    where = _where
    reset = _reset


class LSTMState(NamedTuple):
    """State of LSTM cells: output ``h`` (size ``proj_size`` when projected) and cell ``c``."""

    h: Tensor
    c: Tensor

    detach = _detach
    where = _where
    reset = _reset


State = HiddenState | LSTMState
Step = Callable[[Tensor, State], State]


class Cell(nn.Module, ABC):
    """One recurrent step. Subclasses write their paper's equations in ``forward``.

    The cells here take ``device=`` and ``dtype=`` as torch.nn's modules do: their parameters
    are made and drawn there (``device="meta"`` allocates nothing; float64 draws as torch.nn's
    float64 layers do, not float32 values cast).

    Attributes:
        input_size: size I of ``x_BI``.
        hidden_size: size H of the recurrent state.
        output_size: size of ``state.h`` (H, or ``proj_size`` for a projected LSTM).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int | None = None):
        super().__init__()
        check_sizes(input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.output_size = hidden_size if output_size is None else output_size

    @abstractmethod
    def init_state(self, batch: int, *, device=None, dtype=None) -> State:
        """The zero state for ``batch`` sequences."""

    def reset_parameters(self) -> None:
        """Draw the parameters again as a new cell does: torch.nn's U(-1/sqrt(H), 1/sqrt(H))
        for the weights and biases, and each child module's own reset (LayerNorm: 1 and 0)."""
        uniform_init_(self, self.hidden_size)
        for child in self.children():
            if hasattr(child, "reset_parameters"):
                child.reset_parameters()

    @abstractmethod
    def forward(self, x_BI: Tensor, state: State) -> State:
        """One step: the next state, whose ``.h`` is the step's output.

        The cells here also take ``recurrent_h=``, the h their recurrent products read, which
        ``RecurrentDropout`` masks there only (a GRU's carry reads ``state.h``)."""

    def for_sequence(self, batch: int, *, steps: int | None = None, device=None, dtype=None) -> Step:
        """The step function for one pass over a batch of sequences (``steps`` long, if known).

        Wrappers that draw one random mask per sequence (variational dropout,
        weight drop) draw it here, so the cell itself keeps no hidden state; zoneout,
        which draws at every step, draws all ``steps`` steps' masks in one call.
        """
        return self


def sequence_step(cell: Cell, batch: int, *, steps: int | None, device=None, dtype=None) -> Step:
    """``cell.for_sequence(batch, steps=steps, ...)``, also for a cell written before
    ``for_sequence`` took ``steps``: its override is called without it (and warned about once
    when there was a length to give it)."""
    if _takes_steps(type(cell)):
        return cell.for_sequence(batch, steps=steps, device=device, dtype=dtype)
    if steps is not None:
        _warn_without_steps(type(cell))
    return cell.for_sequence(batch, device=device, dtype=dtype)


@functools.cache
def _takes_steps(cls: type) -> bool:
    params = inspect.signature(cls.for_sequence).parameters
    return "steps" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


@functools.cache
def _warn_without_steps(cls: type) -> None:
    warnings.warn(f"{cls.__name__}.for_sequence should take steps=None (the sequence's length, "
                  "when known): it is called without it", FutureWarning, stacklevel=4)


class HiddenCell(Cell):
    """A cell whose whole state is ``h`` (B, H)."""

    def init_state(self, batch: int, *, device=None, dtype=None) -> HiddenState:
        return HiddenState(zeros(batch, self.hidden_size, device, dtype))


class CellWrapper(Cell):
    """A cell that adds behaviour around another cell (``self.cell``).

    ``passes_recurrent_h``: whether its forward and step functions pass keyword arguments
    (``recurrent_h``, see ``RecurrentDropout``) on to the wrapped cell's."""

    passes_recurrent_h = False

    def __init__(self, cell: Cell):
        if not isinstance(cell, Cell):
            raise TypeError(f"cell must be an rnnkit Cell, got {type(cell).__name__}")
        super().__init__(cell.input_size, cell.hidden_size, cell.output_size)
        self.cell = cell

    def init_state(self, batch: int, *, device=None, dtype=None) -> State:
        return self.cell.init_state(batch, device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        self.cell.reset_parameters()  # a wrapper has none of its own

    @property
    def core(self) -> Cell:
        """The innermost, unwrapped cell (it owns the parameters)."""
        cell = self.cell
        while isinstance(cell, CellWrapper):
            cell = cell.cell
        return cell


def core_cell(cell: Cell) -> Cell:
    return cell.core if isinstance(cell, CellWrapper) else cell


def cell_class(cell: Cell) -> type:
    """The cell's own class: ``torch.nn.utils.parametrize`` (weight_norm, spectral_norm,
    orthogonal) swaps a module's class for a subclass of it, which executors must see through."""
    cls = type(cell)
    return cls.__bases__[0] if getattr(cell, "parametrizations", None) is not None else cls


def weights_by_hook(cell: Cell) -> bool:
    """Whether forward hooks may rewrite the cell's weights (``torch.nn.utils.prune`` and the
    older ``weight_norm``/``spectral_norm`` compute them in a pre-hook): they run only when the
    cell is called, as the reference loop calls it, so the fast executors step aside."""
    return bool(cell._forward_pre_hooks or cell._forward_hooks)


def computed_weights(cell: Cell) -> bool:
    """Whether torch's utilities compute the cell's weights: parametrize at each access (its
    class swapped), prune and the older weight_norm in a forward pre-hook. A copy of them
    (weight drop's, the int8 step's) could not follow."""
    return cell_class(cell) is not type(cell) or weights_by_hook(cell)


def uniform_init_(module: nn.Module, hidden_size: int) -> None:
    """torch.nn's RNN initialisation: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters(recurse=False):
        nn.init.uniform_(p, -bound, bound)


def add_biases(module: nn.Module, size: int, bias: bool, *, device=None, dtype=None) -> None:
    """Register ``bias_ih`` and ``bias_hh`` of ``size`` (or None, as torch.nn does for bias=False)."""
    for name in ("bias_ih", "bias_hh"):
        bias_param = nn.Parameter(torch.empty(size, device=device, dtype=dtype)) if bias else None
        module.register_parameter(name, bias_param)


def zeros(batch: int, size: int, device, dtype) -> Tensor:
    return torch.zeros(batch, size, device=device, dtype=dtype)


def plain_int(value):
    """An integral scalar (numpy's too, as torch.nn takes them) as a Python int; anything
    else unchanged, for the caller's check to refuse."""
    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value


def check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
