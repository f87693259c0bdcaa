"""Executors: one set of parameters, several ways to run a cell over time.

Each executor module has ``name``, ``supports(cell) -> bool`` and
``run(cell, x_BTI, state, lengths_B) -> (out_BTO, final_state)`` (forward in time; the
layer handles reversal). ``select`` maps a ``backend`` name to one of them; ``auto`` takes
the first executor in ``AUTO_ORDER`` that supports the cell.
"""

from __future__ import annotations

from types import ModuleType

from rnnkit.cells.base import Cell
from rnnkit.kernels import fused, loop, native, reference, scan

KERNELS: dict[str, ModuleType] = {k.name: k for k in (reference, native, fused, loop, scan)}
BACKENDS = ("auto", *KERNELS)
AUTO_ORDER = (native, fused, loop, scan, reference)


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def select(backend: str, cell: Cell) -> ModuleType:
    """The executor that runs ``cell`` for ``backend``, or a ValueError saying why none can."""
    check_backend(backend)
    if not isinstance(cell, Cell):
        raise TypeError(f"cell must be an rnnkit Cell, got {type(cell).__name__}")
    if backend == "auto":
        return next(k for k in AUTO_ORDER if k.supports(cell))
    kernel = KERNELS[backend]
    if not kernel.supports(cell):
        able = [k.name for k in AUTO_ORDER if k.supports(cell)]
        raise ValueError(f"backend {backend!r} cannot run {cell!r}; backends that can: {able}")
    return kernel


__all__ = ["AUTO_ORDER", "BACKENDS", "KERNELS", "check_backend", "select"]
