"""Regularisers that wrap a cell: each is a cell around a cell, active only in training.

- ``RecurrentDropout``: Gal & Ghahramani (2016), "A theoretically grounded application of
  dropout in recurrent neural networks": one dropout mask per sequence on the h that feeds
  the recurrent product, the same at every step. The cell gets it as ``recurrent_h``: the
  state itself is not dropped, so a GRU's carry z h and a zoneout inside keep the true h
  (Keras's GRU does the same). A cell whose forward takes no ``recurrent_h``, or one inside
  a wrapper that does not pass it on (``CellWrapper.passes_recurrent_h``), gets its state's
  h dropped instead, which is the same where h feeds nothing but its products. minGRU and
  minLSTM have no recurrent product, and are refused.
- ``Zoneout``: Krueger et al. (2017), "Zoneout: regularizing RNNs by randomly preserving
  hidden activations": each unit of h (and c) keeps its previous value with probability p;
  at evaluation the expectation, p * old + (1 - p) * new.
- ``WeightDrop``: Merity et al. (2018), "Regularizing and optimizing LSTM language models"
  (AWD-LSTM), DropConnect (Wan et al. 2013) on ``weight_hh``: one mask on the matrix per
  pass over a batch. The dropped matrix is passed to the cell for the call; the parameter
  itself is never patched, so the fused executor can use the same dropped matrix.
"""

from __future__ import annotations

import functools
import inspect
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from rnnkit.cells.base import Cell, CellWrapper, State, Step, cell_class, computed_weights, sequence_step
from rnnkit.cells.mingru import MinGRUCell, MinLSTMCell


def _check_p(name: str, p: float) -> float:
    """A probability in [0, 1], as torch.nn's ``dropout``: p = 1 is well defined where
    nothing is rescaled by 1 / (1 - p) (dropout and weight drop give zeros, zoneout
    keeps the old state)."""
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:  # numpy's too
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def _check_scaled_p(name: str, p: float) -> float:
    """A probability in [0, 1) for dropout whose kept units are scaled by 1 / (1 - p)."""
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p < 1.0:  # numpy's too
        raise ValueError(f"{name} must be a probability in [0, 1), got {p!r} (its mask scales "
                         "the kept units by 1 / (1 - p), undefined at p = 1)")
    return float(p)


class RecurrentDropout(CellWrapper):
    """Variational dropout on the recurrent input h_{t-1}; one mask per sequence.

    Arguments:
        cell: the cell to wrap.
        p: probability of dropping a unit of h.
    """

    passes_recurrent_h = True

    def __init__(self, cell: Cell, p: float):
        super().__init__(cell)
        if isinstance(self.core, MinGRUCell | MinLSTMCell):
            raise ValueError(f"a {type(self.core).__name__} has no recurrent product for recurrent dropout "
                             f"to mask (its h only carries over): use dropout on its inputs")
        self.p = _check_scaled_p("p", p)

    def forward(self, x_BI: Tensor, state: State, **kwargs) -> State:
        if self.training and self.p > 0.0:
            raise RuntimeError("RecurrentDropout draws one mask per sequence: run it through "
                               "Recurrent, or call for_sequence(batch) and use the step it returns")
        return self.cell(x_BI, state, **kwargs)

    def for_sequence(self, batch: int, *, steps: int | None = None, device=None, dtype=None) -> Step:
        step = sequence_step(self.cell, batch, steps=steps, device=device, dtype=dtype)
        if not self.training or self.p == 0.0:
            return step
        mask_BH = self.draw_mask(batch, device=device, dtype=dtype)
        given = reads_recurrent_h(self.cell)

        def dropped_step(x_BI: Tensor, state: State, recurrent_h: Tensor | None = None) -> State:
            h_BH = (state.h if recurrent_h is None else recurrent_h) * mask_BH
            if given:
                return step(x_BI, state, recurrent_h=h_BH)
            return step(x_BI, state._replace(h=h_BH))

        return dropped_step

    def draw_mask(self, batch: int, *, device=None, dtype=None) -> Tensor:
        """One sequence's mask (B, H): 0 or 1 / (1 - p), so that its mean is 1."""
        keep_BH = torch.full((batch, self.output_size), 1.0 - self.p, device=device, dtype=dtype)
        return keep_BH.bernoulli() / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Zoneout(CellWrapper):
    """Zoneout on h (probability ``h``) and, for LSTM states, on c (probability ``c``).

    Arguments:
        cell: the cell to wrap.
        h: probability that a unit of h keeps its previous value.
        c: the same for the LSTM cell state c (0 for states without c).
    """

    passes_recurrent_h = True

    def __init__(self, cell: Cell, h: float = 0.0, c: float = 0.0):
        super().__init__(cell)
        self.p_h, self.p_c = _check_p("h", h), _check_p("c", c)
        if self.p_c and "c" not in type(cell.init_state(1))._fields:
            raise ValueError(f"c must be 0: the state of a {type(self.core).__name__} has no c, got {c!r}")

    def forward(self, x_BI: Tensor, state: State, **kwargs) -> State:
        return self.zoneout(state, self.cell(x_BI, state, **kwargs))

    def for_sequence(self, batch: int, *, steps: int | None = None, device=None, dtype=None) -> Step:
        step = sequence_step(self.cell, batch, steps=steps, device=device, dtype=dtype)
        if steps is None or not self.training:
            return lambda x_BI, state, **kwargs: self.zoneout(state, step(x_BI, state, **kwargs))
        # every step's draws in one call at the first step, which brings the state's shapes:
        # 2T small random calls cost more than the step itself on a GPU
        draws: list[Tensor] = []
        taken = 0

        def zoned_step(x_BI: Tensor, state: State, **kwargs) -> State:
            nonlocal taken
            if taken == steps:
                raise RuntimeError(f"this step function was made for {steps} steps (for_sequence(steps="
                                   f"{steps})) and is called for step {steps + 1}")
            if taken == 0:
                draws[:] = self.draw_uniform(steps, state)  # none where no field of the state is zoned
            taken += 1
            return self.zoneout(state, step(x_BI, state, **kwargs), tuple(u[taken - 1] for u in draws))

        return zoned_step

    def zoned(self, state: State) -> list[tuple[str, float]]:
        """The state's fields that zoneout touches, in the state's order, with their p."""
        probs = {"h": self.p_h, "c": self.p_c}
        return [(f, probs[f]) for f in state._fields if probs.get(f, 0.0) > 0.0]

    def draw_uniform(self, steps: int, state: State) -> list[Tensor]:
        """U(0, 1) draws for ``steps`` steps of each zoned field, (steps, *field.shape) each,
        from one call laid out step by step (fields in order within a step): on the CPU the
        same numbers as a ``rand_like`` per field and step."""
        fields = [getattr(state, f) for f, _ in self.zoned(state)]
        like = state.h
        flat = torch.rand(steps, sum(t.numel() for t in fields), device=like.device, dtype=like.dtype)
        parts = flat.split([t.numel() for t in fields], dim=1)
        return [part.view(steps, *t.shape) for part, t in zip(parts, fields, strict=True)]

    def zoneout(self, old: State, new: State, uniforms: tuple[Tensor, ...] | None = None) -> State:
        """Mix ``old`` into ``new``; in training from ``uniforms`` (one per zoned field), or
        from fresh draws when none are given."""
        mixed, drawn = new._asdict(), iter(uniforms or ())
        for field, p in self.zoned(new):
            old_t, new_t = getattr(old, field), getattr(new, field)
            if self.training:
                uniform = next(drawn) if uniforms is not None else torch.rand_like(new_t)
                mixed[field] = torch.where(uniform < p, old_t, new_t)
            else:
                mixed[field] = p * old_t + (1.0 - p) * new_t
        return type(new)(**mixed)

    def extra_repr(self) -> str:
        return f"h={self.p_h}, c={self.p_c}"


class WeightDrop(CellWrapper):
    """DropConnect on the wrapped cell's ``weight_hh``, one mask per pass (AWD-LSTM).

    It must wrap the cell that owns ``weight_hh`` directly; put other wrappers outside it.
    """

    passes_recurrent_h = True

    def __init__(self, cell: Cell, p: float):
        if isinstance(cell, CellWrapper) or not isinstance(getattr(cell, "weight_hh", None),
                                                                torch.nn.Parameter):
            raise TypeError("WeightDrop must wrap a cell that owns weight_hh directly "
                            f"(wrap the other regularisers around it), got {type(cell).__name__}")
        super().__init__(cell)
        self.p = _check_p("p", p)

    def dropped_weight_hh(self) -> Tensor:
        if self.training and self.p > 0 and computed_weights(self.cell):
            # on every executor alike: in the reference loop prune's pre-hook would write its
            # weight over the dropped one, and functional_call a parametrized one into its originals
            raise RuntimeError("weight drop cannot train a cell whose weights torch.nn.utils.parametrize "
                               "or prune compute: make them plain first (parametrize."
                               "remove_parametrizations, prune.remove), or set weight_drop=0")
        return F.dropout(self.cell.weight_hh, self.p, self.training)

    def forward(self, x_BI: Tensor, state: State, **kwargs) -> State:
        return self.for_sequence(x_BI.shape[0])(x_BI, state, **kwargs)

    def for_sequence(self, batch: int, *, steps: int | None = None, device=None, dtype=None) -> Step:
        if not self.training or self.p == 0.0:
            return self.cell
        weights = {"weight_hh": self.dropped_weight_hh()}
        return lambda x_BI, state, **kwargs: functional_call(self.cell, weights, (x_BI, state), kwargs)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def reads_recurrent_h(cell: Cell) -> bool:
    """Whether ``cell(x, state, recurrent_h=h)`` reads its recurrent products from ``h``: the
    wrappers that say so pass it on, and a cell takes it where its forward names it."""
    while isinstance(cell, CellWrapper) and cell.passes_recurrent_h:
        cell = cell.cell
    return not isinstance(cell, CellWrapper) and _names_recurrent_h(cell_class(cell))


@functools.cache
def _names_recurrent_h(cls: type) -> bool:
    return "recurrent_h" in inspect.signature(cls.forward).parameters
