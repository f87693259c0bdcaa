"""Keras's view of a layer's weights: numpy arrays in Keras's order and layouts, read from
and written into the torch parameters they correspond to.

Keras stores ``x W`` kernels as (in, out); torch stores ``W x`` weights as (out, in), so most
weights are transposes. The recurrent layers keep Keras's single bias as the last column of
``weight_ih`` (see ``rnnkit.keras._recurrent``), and Keras's GRU orders its gates z, r, h
where torch orders them r, z, n. Each layer describes each weight once, as a
``KerasWeight`` (``Layer.keras_weights``); get, set and the shape check all read that.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class KerasWeight:
    """One Keras weight as views of torch parameters (torch layout, gate rows first).

    Arguments:
        views: one view, or several stacked on a new first axis (GRU's input and recurrent
            biases are Keras's one ``bias`` of shape (2, 3H)).
        transpose: Keras's array is the transpose of each view (kernels), not the view itself.
        rows: Keras's row order along the views' first axis (GRU's gates), or None.
    """

    views: tuple[Tensor, ...]
    transpose: bool = True
    rows: Tensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        one = tuple(self.views[0].shape)
        one = one[::-1] if self.transpose else one
        return one if len(self.views) == 1 else (len(self.views), *one)

    def read(self) -> Tensor:
        parts = [self._keras(v.detach()) for v in self.views]
        return parts[0] if len(parts) == 1 else torch.stack(parts)

    def write(self, value: Tensor) -> None:
        """Copy Keras's array ``value`` (of ``self.shape``) into the parameters; call under
        ``torch.no_grad()``."""
        parts = [value] if len(self.views) == 1 else list(value.unbind(0))
        for view, part in zip(self.views, parts, strict=True):
            part = part.t() if self.transpose else part
            if self.rows is not None:  # Keras's row k holds torch's row rows[k]
                part = part[torch.argsort(self.rows)]
            view.copy_(part)

    def _keras(self, view: Tensor) -> Tensor:
        view = view[self.rows] if self.rows is not None else view
        return view.t() if self.transpose else view


def swap_first_blocks(units: int) -> Tensor:
    """Rows [r, z, n] of torch's GRU as Keras's [z, r, h]: the first two blocks swapped."""
    blocks = torch.arange(3 * units).view(3, units)
    return blocks[[1, 0, 2]].flatten()
