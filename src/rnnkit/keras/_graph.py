"""The symbolic side of Keras's functional API: ``Input(shape=...)`` gives a ``KerasTensor``,
calling a layer on KerasTensors records a ``Node`` (the call: the layer, its inputs, its
``initial_state``) and returns the outputs' KerasTensors, with shapes from the layer's
``compute_output_shape``. ``Model(inputs, outputs)`` (``rnnkit.keras._functional``) walks
the nodes back from its outputs (``map_graph``) and runs them in order on real tensors.

As in Keras (keras/src/ops/function.py, ``map_graph``): a layer is built by its first
symbolic call; a layer called again (a shared layer) records another node with the same
weights; the model's layers are ordered by depth from the outputs (inputs first), ties in
the order a depth-first walk from the outputs meets them.
"""

from __future__ import annotations

from typing import Any


class KerasTensor:
    """A symbolic tensor: the shape of a value in a functional graph (batch dimension first,
    None where not fixed) and the call that makes it (``node``, output ``index``)."""

    def __init__(self, shape: tuple, node: Node, index: int):
        self.shape, self.node, self.index = tuple(shape), node, index

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def name(self) -> str:
        return self.node.layer.name

    def input_layer(self, what: str):
        """The ``InputLayer`` this tensor is the output of, or a ValueError naming ``what``."""
        if not self.node.is_input:
            raise ValueError(f"{what} must be a tensor made by Input(...), got the output of layer "
                             f"'{self.node.layer.name}' ({self!r})")
        return self.node.layer

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, name={self.name}>"

    def __iter__(self):  # a clear error where Keras code unpacks a layer's one output as several
        raise TypeError(f"{self!r} is one symbolic tensor, not a list: a recurrent layer returns "
                        "[output, *states] only with return_state=True")

    def _no_ops(self, *_args):
        """Slicing or arithmetic, which Keras records as ``keras.ops`` calls: rnnkit.keras has
        neither those nor ``Lambda``, so a layer must do it."""
        raise TypeError(f"slicing or arithmetic on a symbolic tensor ({self!r}) is not supported: "
                        "rnnkit.keras has no Lambda layer or keras.ops; use a layer, e.g. Add()([a, b]), "
                        "Multiply(), Average() or Concatenate()")

    __getitem__ = __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _no_ops
    __truediv__ = __rtruediv__ = __matmul__ = __rmatmul__ = __pow__ = __neg__ = _no_ops


class Node:
    """One call of a layer in a graph: ``args`` (a KerasTensor or a list of them),
    ``initial_state`` (a list, for recurrent layers, or None), ``training`` (the call's
    ``training=``, None where not given), and ``outputs`` (the KerasTensors it returns, flat;
    ``single``: the call returned one, not a list). An input node (``is_input``) is an
    ``InputLayer``'s: it has no inputs and is never run."""

    def __init__(self, layer, args, initial_state: list[KerasTensor] | None, output_shapes, *, single: bool,
                 training: bool | None = None):
        self.layer, self.args, self.initial_state, self.single = layer, args, initial_state, single
        self.training = training
        self.outputs = [KerasTensor(shape, self, k) for k, shape in enumerate(output_shapes)]

    @property
    def is_input(self) -> bool:
        return self.args is None

    @property
    def inputs(self) -> list[KerasTensor]:
        """Every KerasTensor the call reads, in Keras's order: the arguments, then the states."""
        args = [] if self.args is None else (self.args if isinstance(self.args, list) else [self.args])
        return [*args, *(self.initial_state or [])]

    @property
    def output(self) -> KerasTensor | list[KerasTensor]:
        """What the call returned: one KerasTensor, or the list."""
        return self.outputs[0] if self.single else list(self.outputs)


def is_symbolic(args: tuple, kwargs: dict) -> bool:
    """A layer call on KerasTensors (the first argument, or ``initial_state``)."""
    given = (*flatten(args[:1]), *flatten(kwargs.get("initial_state")))
    return any(isinstance(t, KerasTensor) for t in given)


def flatten(value) -> list[Any]:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [item for part in value for item in flatten(part)]
    return [] if value is None else [value]


def symbolic_call(layer, args: tuple, kwargs: dict, training: bool | None = None):
    """``layer(*args, **kwargs)`` on KerasTensors: builds the layer (its first call), checks
    the shapes and records the call as a ``Node``, with its ``training`` (the mode the layer
    runs in when the model is called without one, as Keras 3 keeps a call's arguments).
    Returns the output's KerasTensor (a list where the layer returns several)."""
    if training is not None and not isinstance(training, bool):
        raise TypeError(f"training of a symbolic call of {layer.describe()} must be True, False or None, "
                        f"got {training!r}")
    unknown = set(kwargs) - {"initial_state", "mask"}
    if len(args) != 1 or unknown or kwargs.get("mask") is not None:
        what = sorted(unknown) or ("mask" if kwargs.get("mask") is not None else f"{len(args)} positional")
        raise TypeError(f"a symbolic call of {layer.describe()} takes its inputs, initial_state= and "
                        f"training= only, got {what} (masks flow through the graph from "
                        "Embedding(mask_zero=True))")
    inputs, states = args[0], kwargs.get("initial_state")
    for name, value in (("inputs", inputs), ("initial_state", states)):
        others = [type(t).__name__ for t in flatten(value) if not isinstance(t, KerasTensor)]
        if others:
            raise TypeError(f"{name} of {layer.describe()} mixes symbolic tensors (from Input) with "
                            f"{others[0]}: in a functional model every input comes from an Input")
    if isinstance(inputs, tuple):
        inputs = list(inputs)
    shape = [t.shape for t in inputs] if isinstance(inputs, list) else inputs.shape
    layer.symbolic_build(shape)
    if states is not None:
        states = list(states) if isinstance(states, list | tuple) else [states]
        layer.check_initial_state([t.shape for t in states])
    out_shape = layer.compute_output_shape(shape)
    single = not isinstance(out_shape, list)
    node = Node(layer, inputs, states, [out_shape] if single else out_shape, single=single, training=training)
    layer._inbound_nodes.append(node)
    return node.output


def input_node(input_layer) -> Node:
    """The node of an ``InputLayer``: its one output is the ``Input``'s KerasTensor."""
    return Node(input_layer, None, None, [input_layer.batch_shape], single=True)


def map_graph(inputs: list[KerasTensor], outputs: list[KerasTensor]) -> tuple[list[Node], list]:
    """The nodes that make ``outputs`` from ``inputs``, in an order that runs them (each after
    the nodes it reads), and the layers (``InputLayer``s included), by depth as Keras orders
    ``model.layers``. Raises a ValueError where an output needs an input not in ``inputs``."""
    given = {id(t.node) for t in inputs}
    order: dict[Any, int] = {}  # layer -> when the walk first met it (Keras's operation_indices)
    done: set[int] = set()
    nodes: list[Node] = []  # post-order: every node after its parents

    def visit(node: Node, k: int) -> None:
        if id(node) in done:
            return
        order.setdefault(node.layer, len(order))
        if node.is_input and id(node) not in given:
            raise ValueError(f"outputs[{k}] is not derived from the model's inputs alone: it needs Input "
                             f"'{node.layer.name}' (shape {node.layer.batch_shape}), which is not in "
                             f"inputs={[t.name for t in inputs]}")
        if id(node) not in given:
            for tensor in node.inputs:
                visit(tensor.node, k)
        done.add(id(node))
        nodes.append(node)

    for k, tensor in enumerate(outputs):
        visit(tensor.node, k)
    for tensor in inputs:  # inputs no output reads still come first, as Keras lists them
        if id(tensor.node) not in done:
            order.setdefault(tensor.node.layer, len(order))
            done.add(id(tensor.node))
            nodes.insert(0, tensor.node)
    return nodes, _layers_by_depth(nodes, order)


def _layers_by_depth(nodes: list[Node], order: dict) -> list:
    """Keras's ``map_graph`` depths: an output's node is 0, a node's parents are one deeper
    (the deepest path wins), a layer is as deep as its deepest node; deepest first, ties by
    ``order``."""
    depth: dict[int, int] = {}
    layer_depth: dict[Any, int] = {}
    for node in reversed(nodes):
        d = max(depth.setdefault(id(node), 0), layer_depth.get(node.layer, 0))
        depth[id(node)] = layer_depth[node.layer] = d
        for tensor in node.inputs:
            depth[id(tensor.node)] = max(d + 1, depth.get(id(tensor.node), 0))
    return sorted(layer_depth, key=lambda layer: (-layer_depth[layer], order[layer]))
