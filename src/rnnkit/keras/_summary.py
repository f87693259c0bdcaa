"""``Sequential.summary()``: Keras's table of layers, output shapes and parameter counts."""

from __future__ import annotations

import itertools
import textwrap

from torch import nn

from rnnkit.keras._base import Layer, Shape

WIDTHS = (29, 26, 10)  # Keras's column widths: layer (type), output shape, param #
RULE = 65


def _shape(shape: Shape | list[Shape]) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_shape(s) for s in shape) + "]"
    return str(tuple(shape))  # "(None, 50)", as Keras prints it


def _row(cells: tuple[str, str, str]) -> str:
    """One table row; a layer's name and type wider than their column go on over the next
    lines, as tf.keras's ``print_summary`` wraps ``time_distributed (TimeDistributed)``."""
    first, *rest = cells
    parts = [textwrap.wrap(first, WIDTHS[0] - 1) or [""], *([c] for c in rest)]
    lines = itertools.zip_longest(*parts, fillvalue="")
    return "\n".join(" " + "".join((c + " ").ljust(w) for c, w in zip(line, WIDTHS, strict=True)).rstrip()
                     for line in lines)


def render_summary(name: str, layers: list[Layer], params: list[nn.Parameter], *,
                   trainable: bool = True) -> str:
    """The table; each layer's count is the numel of its parameters, trainable where they
    require grad in a ``trainable`` model. An unbuilt layer shows ``?`` and ``0 (unbuilt)``,
    as in Keras 3."""
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad) if trainable else 0
    lines = [f'Model: "{name}"', "_" * RULE, _row(("Layer (type)", "Output Shape", "Param #")),
             "=" * RULE]
    for layer in layers:
        if layer.built:
            lines.append(_row((layer.describe(), _shape(layer.output_shape), f"{layer.count_params():,}")))
        else:
            lines.append(_row((layer.describe(), "?", "0 (unbuilt)")))
    lines += ["=" * RULE, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", "_" * RULE]
    return "\n".join(lines)
