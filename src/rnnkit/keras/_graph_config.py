"""A functional ``Model``'s architecture as plain JSON values, and the model made again from
it (``load_model``), after Keras's functional config (keras/src/models/functional.py,
``functional_from_config``): each layer's class and ``get_config()`` with its calls in the
model (``inbound_nodes``), each call's tensors named ``[layer name, node index, tensor
index]``, where the node index counts the layer's calls within this model; then the model's
input and output tensors the same way.

    {"class_name": "Functional", "name": ..., "trainable": ..., "compile": ...,
     "layers": [{"class_name": "LSTM", "config": {...},
                 "inbound_nodes": [{"args": {"list": false, "tensors": [["input_layer", 0, 0]]},
                                    "initial_state": [["lstm", 0, 1], ["lstm", 0, 2]]}]}, ...],
     (a call given ``training=`` also has ``"training": true`` or ``false``)
     "input_layers": [["input_layer", 0, 0], ...], "output_layers": [["dense", 0, 0]],
     "single_input": false, "single_output": true}
"""

from __future__ import annotations

from pathlib import Path

from rnnkit.keras._core import InputLayer
from rnnkit.keras._graph import KerasTensor, Node
from rnnkit.keras._saving import compile_config, layer_config, layer_from_config


def functional_config(model) -> dict:
    """``Model.get_config()``; see the module docstring."""
    in_model = {id(node) for node in model._nodes}

    def calls(layer) -> list[Node]:
        return [node for node in layer._inbound_nodes if id(node) in in_model]

    def ref(tensor: KerasTensor) -> list:
        index = next(k for k, node in enumerate(calls(tensor.node.layer)) if node is tensor.node)
        return [tensor.node.layer.name, index, tensor.index]

    layers = []
    for layer in model.layers:
        if isinstance(layer, InputLayer):
            layers.append({"class_name": "InputLayer", "config": layer.get_config(), "inbound_nodes": []})
            continue
        nodes = [{"args": {"list": isinstance(node.args, list),
                           "tensors": [ref(t) for t in _listed(node.args)]},
                  "initial_state": None if node.initial_state is None else [
                      ref(t) for t in node.initial_state],
                  **({} if node.training is None else {"training": node.training})}
                 for node in calls(layer)]
        layers.append({**layer_config(layer), "inbound_nodes": nodes})
    return {"class_name": "Functional", "name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": [ref(t) for t in model.inputs], "output_layers": [ref(t) for t in model.outputs],
            "single_input": model._single_input, "single_output": model._single_output,
            "compile": compile_config(model)}


def functional_from_config(config: dict, path: str | Path):
    """The ``Model`` of ``functional_config``'s dict: the layers made from the registry and
    called on each other's outputs in the saved order (a call waits for the tensors it reads)."""
    from rnnkit.keras._functional import Model  # it imports _saving, which imports this module

    try:
        tensors: dict[tuple, KerasTensor] = {}
        pending = []  # (layer, its name, node index, node entry)
        for entry in config["layers"]:
            if entry["class_name"] == "InputLayer":
                spec = entry["config"]
                layer = InputLayer(batch_shape=tuple(spec["batch_shape"]), name=spec["name"])
                tensors[(layer.name, 0, 0)] = layer.output
                continue
            layer = layer_from_config(entry)
            pending += [(layer, layer.name, k, node) for k, node in enumerate(entry["inbound_nodes"])]
        while pending:
            ready = [item for item in pending if _can_call(item, pending, tensors)]
            if not ready:
                raise ValueError(f"calls that read tensors no layer makes: {[item[1:3] for item in pending]}")
            layer, name, k, node = ready[0]
            pending.remove(ready[0])
            args = [tensors[tuple(r)] for r in node["args"]["tensors"]]
            kwargs = {} if node["initial_state"] is None else {
                "initial_state": [tensors[tuple(r)] for r in node["initial_state"]]}
            if node.get("training") is not None:  # a symbolic call's training=, kept as Keras keeps it
                kwargs["training"] = node["training"]
            out = layer(args if node["args"]["list"] else args[0], **kwargs)
            for i, tensor in enumerate(out if isinstance(out, list) else [out]):
                tensors[(name, k, i)] = tensor
        inputs = [tensors[tuple(r)] for r in config["input_layers"]]
        outputs = [tensors[tuple(r)] for r in config["output_layers"]]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"the functional architecture in {path} is malformed ({type(err).__name__}: "
                         f"{err})") from None
    return Model(inputs[0] if config["single_input"] else inputs,
                 outputs[0] if config["single_output"] else outputs, name=config["name"])


def _listed(args) -> list[KerasTensor]:
    return args if isinstance(args, list) else [args]


def _can_call(item, pending: list, tensors: dict) -> bool:
    """A call is ready when the tensors it reads exist and its layer's earlier calls are made
    (node indices count in order)."""
    layer, name, k, node = item
    earlier = any(other[1] == name and other[2] < k for other in pending)
    needed = [*node["args"]["tensors"], *(node["initial_state"] or [])]
    return not earlier and all(tuple(r) in tensors for r in needed)
