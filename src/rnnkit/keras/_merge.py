"""Keras's merge layers (keras/src/layers/merging/): ``Concatenate(axis=-1)``, ``Add``,
``Multiply`` and ``Average``, each called on a list of tensors, as in a functional model
``Concatenate()([a, b])``. No weights.

Masks (Keras's (B, T) bool, True at the real steps), as Keras 3 computes them:

- ``Add``, ``Multiply``, ``Average`` (``Merge.compute_mask``): None where any input has no
  mask, else a step is kept where ANY input keeps it (the masks or-ed).
- ``Concatenate`` (``Concatenate.compute_mask``): None where no input has one; else each
  input's mask spread over its features (an input without one counting as all True), joined
  along the axis and any-ed over the last: on the feature axis a step is kept where any input
  keeps it; along the time axis (``axis=1``) the masks stand side by side.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.keras._base import Layer, Shape, _shape, as_tensor


class _Merge(Layer):
    """A layer of a list of at least two inputs of the same shape (``_same``) into one."""

    def build(self, input_shape: list[Shape]) -> None:
        if not isinstance(input_shape, list | tuple) or not all(
                isinstance(s, tuple | list) for s in input_shape):
            raise ValueError(f"{self.describe()} must be called on a list of tensors, got input shape "
                             f"{input_shape!r}")
        shapes = [_shape("input_shape", s) for s in input_shape]
        self._check_shape(shapes, None)
        self.input_shape, self.output_shape = shapes, self.compute_output_shape(shapes)
        self.built = True

    def symbolic_build(self, input_shape: list[Shape]) -> None:
        self.build(input_shape)  # a merge keeps no weights: any compatible shapes, every call

    def _check_shape(self, shapes: list[Shape], built) -> None:
        if len(shapes) < 2:
            raise ValueError(f"{self.describe()} must be called on a list of at least 2 tensors, got "
                             f"{len(shapes)}")
        self._check_compatible(shapes)

    def _check_compatible(self, shapes: list[Shape]) -> None:
        first = shapes[0]
        for k, shape in enumerate(shapes[1:], start=1):
            if len(shape) != len(first) or any(a is not None and b is not None and a != b
                                               for a, b in zip(first[1:], shape[1:], strict=True)):
                raise ValueError(f"inputs of {self.describe()} must all have the same shape, got "
                                 f"{first} for input 0 and {shape} for input {k}")

    def compute_output_shape(self, input_shape: list[Shape]) -> Shape:
        first = list(input_shape[0])
        for shape in input_shape[1:]:  # a size one input fixes is fixed for all
            first = [a if a is not None else b for a, b in zip(first, shape, strict=True)]
        return tuple(first)

    def output_mask(self, inputs: list[Tensor], mask: list[Tensor | None] | None) -> Tensor | None:
        if mask is None or any(m is None for m in mask):
            return None
        return torch.stack(list(mask)).any(dim=0)

    def forward(self, inputs, *, mask=None) -> Tensor:
        if not isinstance(inputs, list | tuple):
            raise TypeError(f"{self.describe()} must be called on a list of tensors, got "
                            f"{type(inputs).__name__}")
        tensors = [t if isinstance(t, Tensor) else as_tensor(t, name=f"inputs[{k}]", kind="float")
                   for k, t in enumerate(inputs)]
        self._check_shape([tuple(t.shape) for t in tensors], None)
        if not self.built:
            self.build([(None, *t.shape[1:]) for t in tensors])
        return self._merge(tensors)

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        raise NotImplementedError


class Add(_Merge):
    """Keras ``Add()``: the sum of the inputs."""

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        return torch.stack(tensors).sum(dim=0)


class Multiply(_Merge):
    """Keras ``Multiply()``: the element-wise product of the inputs."""

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        return torch.stack(tensors).prod(dim=0)


class Average(_Merge):
    """Keras ``Average()``: the element-wise mean of the inputs."""

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        return torch.stack(tensors).mean(dim=0)


class Concatenate(_Merge):
    """Keras ``Concatenate(axis=-1)``: the inputs joined along ``axis`` (of the full shape,
    batch first: -1 the features, 1 the time steps of (B, T, F) inputs); every other
    dimension must agree."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"axis must be an int, got {axis!r}")
        self.axis = axis

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}

    def _dim(self, rank: int) -> int:
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank:
            raise ValueError(f"axis of {self.describe()} must be a non-batch axis of its {rank}-D inputs, "
                             f"in [1, {rank}) or [{-rank + 1}, -1], got {self.axis}")
        return axis

    def _check_compatible(self, shapes: list[Shape]) -> None:
        first = shapes[0]
        axis = self._dim(len(first))
        for k, shape in enumerate(shapes[1:], start=1):
            sizes = [(a, b) for d, (a, b) in enumerate(zip(first, shape, strict=True)) if d not in (0, axis)]
            if any(a is not None and b is not None and a != b for a, b in sizes):
                raise ValueError(f"inputs of {self.describe()} must have the same shape except along axis "
                                 f"{self.axis}, got {first} for input 0 and {shape} for input {k}")

    def compute_output_shape(self, input_shape: list[Shape]) -> Shape:
        axis = self._dim(len(input_shape[0]))
        shape = list(super().compute_output_shape([(*s[:axis], 1, *s[axis + 1:]) for s in input_shape]))
        sizes = [s[axis] for s in input_shape]
        shape[axis] = None if None in sizes else sum(sizes)
        return tuple(shape)

    def output_mask(self, inputs: list[Tensor], mask: list[Tensor | None] | None) -> Tensor | None:
        if mask is None or all(m is None for m in mask) or inputs[0].dim() < 3:
            return None  # rnnkit's masks are (B, T): an input without the time axis carries none
        full = [torch.ones(t.shape, dtype=torch.bool, device=t.device) if m is None
                else m.reshape(*m.shape, *[1] * (t.dim() - 2)).expand(t.shape)
                for m, t in zip(mask, inputs, strict=True)]
        joined = torch.cat(full, dim=self._dim(inputs[0].dim()))
        return joined.flatten(2).any(dim=-1)  # Keras's any over the last axis, for (B, T, F)

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        return torch.cat(tensors, dim=self._dim(tensors[0].dim()))
