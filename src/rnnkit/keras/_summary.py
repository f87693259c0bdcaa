"""``summary()``: Keras's table of layers, output shapes and parameter counts (and, for a
functional ``Model``, the layers each is connected to)."""

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
    lines = [f'Model: "{name}"', "_" * RULE, _row(("Layer (type)", "Output Shape", "Param #")),
             "=" * RULE]
    for layer in layers:
        if layer.built:
            lines.append(_row((layer.describe(), _shape(layer.output_shape), f"{layer.count_params():,}")))
        else:
            lines.append(_row((layer.describe(), "?", "0 (unbuilt)")))
    return "\n".join([*lines, *_totals(params, trainable, RULE)])


FUNCTIONAL_WIDTHS = (29, 26, 10, 24)  # and Keras's fourth column: Connected to


def render_functional_summary(name: str, layers: list, nodes: list, params: list[nn.Parameter], *,
                              trainable: bool = True) -> str:
    """The table of a functional model: each layer (``InputLayer``s first) with the shape of
    its first call's output in the model, its parameter count, and every tensor its calls in
    the model read, as Keras 3 writes them: ``<layer>[<node index>][<tensor index>]`` (the
    node's index among the producing layer's calls), ``-`` for an input."""
    rule = sum(FUNCTIONAL_WIDTHS) + 1
    lines = [f'Model: "{name}"', "_" * rule,
             _cells((["Layer (type)"], ["Output Shape"], ["Param #"], ["Connected to"])), "=" * rule]
    in_model = {id(node) for node in nodes}
    for layer in layers:
        mine = [node for node in layer._inbound_nodes if id(node) in in_model]
        shapes = [t.shape for t in mine[0].outputs]
        shape = _shape(shapes[0] if mine[0].single else shapes)
        sources = [f"{t.node.layer.name}[{t.node.layer._inbound_nodes.index(t.node)}][{t.index}]"
                   for node in mine for t in node.inputs] or ["-"]
        first = textwrap.wrap(layer.describe(), FUNCTIONAL_WIDTHS[0] - 1) or [""]
        lines.append(_cells((first, textwrap.wrap(shape, FUNCTIONAL_WIDTHS[1] - 1),
                             [f"{layer.count_params():,}"], sources)))
    return "\n".join([*lines, *_totals(params, trainable, rule)])


def _totals(params: list[nn.Parameter], trainable: bool, rule: int) -> list[str]:
    """The table's last lines: every weight counted, trainable where it requires grad in a
    ``trainable`` model."""
    total = sum(p.numel() for p in params)
    counted = sum(p.numel() for p in params if p.requires_grad) if trainable else 0
    return ["=" * rule, f"Total params: {total:,}", f"Trainable params: {counted:,}",
            f"Non-trainable params: {total - counted:,}", "_" * rule]


def _cells(columns: tuple[list[str], ...]) -> str:
    """One row of cells of several lines each, side by side."""
    lines = itertools.zip_longest(*columns, fillvalue="")
    return "\n".join(" " + "".join((c + " ").ljust(w) for c, w in zip(line, FUNCTIONAL_WIDTHS, strict=True))
                     .rstrip() for line in lines)
