"""``save_weights`` / ``load_weights`` (of a ``Sequential`` or a functional ``Model``): the
Keras weights of every layer in one safetensors file, written atomically; ``save`` /
``load_model``: the same file
with the architecture and the compile settings (where they are plain names) as JSON in its
metadata, and the optimizer's state (``rnnkit.keras._optimizer_state``).

Tensors are Keras's arrays (``get_weights``'s layouts) under the paths where Keras 3 writes
them in ``model.weights.h5`` (``_save_state`` / ``_save_container_state`` and ``H5Entry`` in
keras/src/saving/saving_lib.py): a Sequential's layers under ``layers/``, each named by its
snake-cased class with a counter (``lstm``, ``lstm_1``, ``dense``) rather than by its name,
so a file loads into any model of the same architecture; then the attribute path to the
object that owns the variables (a recurrent layer's ``cell``; a Bidirectional's
``forward_layer/cell`` and ``backward_layer/cell``; a TimeDistributed's ``layer``, the
attribute Keras's ``Wrapper`` keeps it in); then ``vars/<i>``, the object's i-th
variable in build order (``Layer.save_own_variables``). So ``layers/lstm/cell/vars/0`` is
the first LSTM's kernel and ``layers/dense/vars/1`` the first Dense's bias. Files written
before these paths (format ``.../1``: ``lstm/kernel``, ``bidirectional/forward/kernel``)
still load.

The architecture is each layer's ``get_config()`` (its constructor arguments, ``trainable``
among them) under its class name; ``load_model`` makes layers only from the fixed registry
``LAYERS``, and optimizers only from ``optimizers.OPTIMIZERS``, never from a class path in
the file, and nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

from rnnkit._io import write_atomic
from rnnkit.keras import _optimizer_state as optimizer_state
from rnnkit.keras import optimizers
from rnnkit.keras._base import Layer, write_weights
from rnnkit.keras._bidirectional import Bidirectional
from rnnkit.keras._core import Dense, Dropout, Embedding
from rnnkit.keras._merge import Add, Average, Concatenate, Multiply
from rnnkit.keras._naming import snake
from rnnkit.keras._recurrent import GRU, LSTM, RNNLayer, SimpleRNN
from rnnkit.keras._time_distributed import RepeatVector, TimeDistributed
from rnnkit.keras._weights import KerasWeight

FORMAT = "rnnkit.keras.weights/2"  # in the file's metadata
# 3: trainable (the model's and each layer's) and an optimizer saved as its class and config,
# which the readers of 2 cannot take; 4: functional models (a graph: _graph_config) and
# compile's loss_weights, which the readers of 3 cannot take. A Sequential without
# loss_weights is still written as 3, which every reader since takes; 3, 2 and 1 are read
MODEL_FORMAT = "rnnkit.keras.model/4"
FORMAT_3 = "rnnkit.keras.model/3"
V1_FORMATS = {"rnnkit.keras.weights/1": FORMAT, "rnnkit.keras.model/1": MODEL_FORMAT}  # the old keys
OLD_FORMATS = {**V1_FORMATS, "rnnkit.keras.model/2": MODEL_FORMAT, FORMAT_3: MODEL_FORMAT}
LAYERS: dict[str, type[Layer]] = {cls.__name__: cls for cls in (
    Add, Average, Bidirectional, Concatenate, Dense, Dropout, Embedding, GRU, LSTM, Multiply, RepeatVector,
    SimpleRNN, TimeDistributed)}


def file_keys(layers: list[Layer], *, version: int = 2) -> dict[str, tuple[Layer, str, KerasWeight]]:
    """Keras 3's path of each weight -> (layer, Keras's weight name, the weight), in model
    order; ``version=1``: the keys of format 1, ``<layer>/<weight name>``."""
    keys, used = {}, {}
    for layer in layers:
        base = snake(type(layer).__name__)
        used[base] = used.get(base, -1) + 1
        prefix = base if used[base] == 0 else f"{base}_{used[base]}"
        paths = _variable_paths(layer)
        for name, weight in layer.keras_weights().items():
            key = f"layers/{prefix}/{paths[name]}" if version == 2 else f"{prefix}/{name}"
            keys[key] = (layer, name, weight)
    return keys


def _variable_paths(layer: Layer) -> dict[str, str]:
    """Each weight's path under its layer in Keras 3: the attribute path of the object that
    owns it, then ``vars/<i>`` in that object's build order (kernel, recurrent_kernel, bias)."""
    if isinstance(layer, TimeDistributed):  # the inner layer's own paths, under its attribute
        return {name: f"layer/{path}" for name, path in _variable_paths(layer.layer).items()}
    recurrent = isinstance(layer, RNNLayer | Bidirectional)
    paths, counts = {}, {}
    for name in layer.keras_weights():
        side = name.rpartition("/")[0]  # "forward"/"backward" in a Bidirectional, else ""
        owner = (f"{side}_layer/" if side else "") + ("cell/" if recurrent else "")
        counts[owner] = counts.get(owner, -1) + 1
        paths[name] = f"{owner}vars/{counts[owner]}"
    return paths


def save_weights(layers: list[Layer], path: str | Path, *, overwrite: bool = True,
                 metadata: dict[str, str] | None = None, extra: dict[str, Tensor] | None = None) -> None:
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists and overwrite=False")
    tensors = {key: weight.read().contiguous().cpu() for key, (_, _, weight) in file_keys(layers).items()}
    write_atomic(path, st_save(tensors | (extra or {}), metadata=metadata or {"format": FORMAT}))


def load_weights(layers: list[Layer], path: str | Path) -> None:
    """Every weight from ``path``, checked against the model before any is written; a model
    file's optimizer state is left alone."""
    tensors, metadata = _read(Path(path))
    weights, _ = _split(tensors)
    _assign(layers, weights, path, version=_version(metadata))


def _split(tensors: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The layers' tensors and the optimizer's."""
    state = {k: t for k, t in tensors.items() if k.startswith(optimizer_state.PREFIX)}
    return {k: t for k, t in tensors.items() if k not in state}, state


def _assign(layers: list[Layer], tensors: dict[str, Tensor], path: str | Path, *, version: int) -> None:
    pairs = []
    for key, (layer, name, weight) in file_keys(layers, version=version).items():
        if key not in tensors:
            raise ValueError(f"{path} holds another architecture: it has no tensor '{key}' "
                             f"(weight '{name}' of {layer.describe()}, shape {weight.shape}); "
                             f"it holds {_some(tensors)}")
        value = tensors.pop(key)
        if tuple(value.shape) != weight.shape:
            raise ValueError(f"{path} holds another architecture: tensor '{key}' has shape "
                             f"{tuple(value.shape)}, but weight '{name}' of {layer.describe()} "
                             f"has shape {weight.shape}")
        like = weight.views[0]
        pairs.append((weight, value.to(dtype=like.dtype, device=like.device)))
    if tensors:
        raise ValueError(f"{path} holds another architecture: tensors {_some(tensors)} have no "
                         "weight in the model")
    write_weights(pairs)


# -- the whole model -------------------------------------------------------------------------
def model_config(model) -> dict:
    """``Sequential.get_config()``: the name, ``trainable``, each layer's class and constructor
    arguments, the input shape it was built for, and the compile settings where they are
    plain names (an ``rnnkit.keras.optimizers`` optimizer as its class name and config)."""
    return {"name": model.name, "trainable": model.trainable,
            "layers": [layer_config(layer) for layer in model.layers],
            "build_input_shape": list(model.layers[0].input_shape) if model.built else None,
            "compile": compile_config(model)}


def compile_config(model) -> dict | None:
    """``compile``'s arguments where they are plain names, an ``rnnkit.keras.optimizers``
    optimizer as its class name and config; None otherwise."""
    compiled = model._compile_config
    if compiled is not None and isinstance(compiled["optimizer"], optimizers.Optimizer):
        compiled = {**compiled, "optimizer": optimizers.serialize(compiled["optimizer"])}
    return compiled


def layer_config(layer: Layer) -> dict:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def layer_from_config(entry) -> Layer:
    """A layer of the registry from ``layer_config``'s dict; a wrapper's inner layer too."""
    if not isinstance(entry, dict) or entry.get("class_name") not in LAYERS:
        got = entry.get("class_name") if isinstance(entry, dict) else type(entry).__name__
        raise ValueError(f"a layer entry must name one of {sorted(LAYERS)} as class_name, got {got!r}")
    config = dict(entry.get("config") or {})
    if entry["class_name"] in ("Bidirectional", "TimeDistributed"):
        config["layer"] = layer_from_config(config.get("layer"))
    try:
        return LAYERS[entry["class_name"]](**config)
    except TypeError as err:  # an argument the class does not take
        raise ValueError(f"the config of a {entry['class_name']} does not fit it: {err}") from None


def save_model(model, path: str | Path, *, overwrite: bool = True) -> None:
    """The weights, the architecture and, for a model compiled with names and trained (so
    that it has an optimizer), the optimizer's state."""
    config = model.get_config()
    new = config.get("class_name") == "Functional" or "loss_weights" in (config["compile"] or {})
    metadata = {"format": MODEL_FORMAT if new else FORMAT_3, "config": json.dumps(config)}
    extra = {}
    optimizer = model.optimizer
    if model._compile_config is not None and optimizer is not None and optimizers.is_built(optimizer):
        extra, metadata["optimizer"] = optimizer_state.dump(model.optimizer, list(model.parameters()))
    save_weights(model._weight_layers(), path, overwrite=overwrite, metadata=metadata, extra=extra)


def load_model(path: str | Path, *, compile: bool = True):
    """The model ``save`` wrote (a ``Sequential`` or a functional ``Model``): made from the
    registry, built, its weights loaded and, with ``compile`` and plain-name settings,
    compiled, with the optimizer's state where it was saved (so that ``fit`` resumes
    training as Keras's ``load_model`` does)."""
    from rnnkit.keras._graph_config import functional_from_config  # these import this module
    from rnnkit.keras.model import Sequential

    tensors, metadata = _read(Path(path))
    if _format(metadata) != MODEL_FORMAT:
        raise ValueError(f"{path} holds no model architecture (format {metadata.get('format')!r}, "
                         f"want {MODEL_FORMAT!r}): a save_weights file loads with load_weights")
    config = _architecture(metadata, path)
    if config.get("class_name") == "Functional":
        model = functional_from_config(config, path)
    else:
        model = Sequential([layer_from_config(entry) for entry in config["layers"]], name=config["name"])
        if not model.built and config["build_input_shape"] is not None:
            model.build(tuple(config["build_input_shape"]))
    model._trainable = config["trainable"]  # the layers' own flags came with their configs
    weights, state = _split(tensors)
    _assign(model._weight_layers(), weights, path, version=_version(metadata))
    if compile and config["compile"] is not None:
        model.compile(**config["compile"])
        if "optimizer" in metadata:
            model.optimizer = optimizer_state.restore(model._compiled["optimizer"], list(model.parameters()),
                                                      state, metadata["optimizer"], path)
    return model


def _format(metadata: dict[str, str]) -> str | None:
    return OLD_FORMATS.get(metadata.get("format"), metadata.get("format"))


def _version(metadata: dict[str, str]) -> int:
    return 1 if metadata.get("format") in V1_FORMATS else 2


def _architecture(metadata: dict[str, str], path: str | Path) -> dict:
    try:
        config = json.loads(metadata["config"])
        config.setdefault("trainable", True)
        if not isinstance(config["layers"], list) or not isinstance(config["name"], str) or not isinstance(
                config["trainable"], bool):
            raise ValueError("layers must be a list, name a str and trainable a bool")
        config.setdefault("build_input_shape", None)
        config.setdefault("compile", None)
        return config
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"the architecture in {path} is malformed ({type(err).__name__}: {err})") from None


def _read(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and the metadata of a safetensors file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"no weights file at {path}") from None
    try:
        header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
        return st_load(data), header.get("__metadata__") or {}
    except (SafetensorError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a readable safetensors file ({err}); it is truncated, "
                         "corrupt or not a weights file") from None


def _some(tensors: dict[str, Tensor]) -> str:
    names = sorted(tensors)
    return str(names[:6])[:-1] + (", ...]" if len(names) > 6 else "]")
