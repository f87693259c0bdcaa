"""``Sequential.save_weights`` / ``load_weights``: the Keras weights of every layer in one
safetensors file, written atomically; ``Sequential.save`` / ``load_model``: the same file
with the architecture (and plain-name compile settings) as JSON in its metadata.

Tensors are Keras's arrays (``get_weights``'s layouts), keyed ``<layer>/<weight>`` where
``<layer>`` is the snake-cased class name with a counter (``lstm``, ``lstm_1``, ``dense``), as
Keras 3 keys a Sequential's layers in its weight files: a file loads into any model of the
same architecture, whatever its layers were named. A Bidirectional's weights are
``bidirectional/forward/kernel`` and so on.

The architecture is each layer's ``get_config()`` (its constructor arguments) under its class
name; ``load_model`` makes layers only from the fixed registry ``LAYERS``, never from a class
path in the file, and nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

from rnnkit._io import write_atomic
from rnnkit.keras._base import Layer, _snake, write_weights
from rnnkit.keras._core import Dense, Dropout, Embedding
from rnnkit.keras._recurrent import GRU, LSTM, Bidirectional, SimpleRNN
from rnnkit.keras._weights import KerasWeight

FORMAT = "rnnkit.keras.weights/1"  # in the file's metadata
MODEL_FORMAT = "rnnkit.keras.model/1"
LAYERS: dict[str, type[Layer]] = {cls.__name__: cls for cls in (
    Bidirectional, Dense, Dropout, Embedding, GRU, LSTM, SimpleRNN)}


def file_keys(layers: list[Layer]) -> dict[str, tuple[Layer, str, KerasWeight]]:
    """``<layer>/<weight>`` -> (layer, Keras's weight name, the weight), in model order."""
    keys, used = {}, {}
    for layer in layers:
        base = _snake(type(layer).__name__)
        used[base] = used.get(base, -1) + 1
        prefix = base if used[base] == 0 else f"{base}_{used[base]}"
        for name, weight in layer.keras_weights().items():
            keys[f"{prefix}/{name}"] = (layer, name, weight)
    return keys


def save_weights(layers: list[Layer], path: str | Path, *, overwrite: bool = True,
                 metadata: dict[str, str] | None = None) -> None:
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists and overwrite=False")
    tensors = {key: weight.read().contiguous().cpu() for key, (_, _, weight) in file_keys(layers).items()}
    write_atomic(path, st_save(tensors, metadata=metadata or {"format": FORMAT}))


def load_weights(layers: list[Layer], path: str | Path) -> None:
    """Every weight from ``path``, checked against the model before any is written."""
    tensors, _ = _read(Path(path))
    _assign(layers, tensors, path)


def _assign(layers: list[Layer], tensors: dict[str, Tensor], path: str | Path) -> None:
    pairs = []
    for key, (layer, name, weight) in file_keys(layers).items():
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
    """``Sequential.get_config()``: the name, each layer's class and constructor arguments, the
    input shape it was built for, and the compile settings where they are plain names."""
    return {"name": model.name,
            "layers": [layer_config(layer) for layer in model.layers],
            "build_input_shape": list(model.layers[0].input_shape) if model.built else None,
            "compile": model._compile_config}


def layer_config(layer: Layer) -> dict:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def layer_from_config(entry) -> Layer:
    """A layer of the registry from ``layer_config``'s dict; a Bidirectional's inner layer too."""
    if not isinstance(entry, dict) or entry.get("class_name") not in LAYERS:
        got = entry.get("class_name") if isinstance(entry, dict) else type(entry).__name__
        raise ValueError(f"a layer entry must name one of {sorted(LAYERS)} as class_name, got {got!r}")
    config = dict(entry.get("config") or {})
    if entry["class_name"] == "Bidirectional":
        config["layer"] = layer_from_config(config.get("layer"))
    try:
        return LAYERS[entry["class_name"]](**config)
    except TypeError as err:  # an argument the class does not take
        raise ValueError(f"the config of a {entry['class_name']} does not fit it: {err}") from None


def save_model(model, path: str | Path, *, overwrite: bool = True) -> None:
    config = json.dumps(model_config(model))
    save_weights(list(model.layers), path, overwrite=overwrite,
                 metadata={"format": MODEL_FORMAT, "config": config})


def load_model(path: str | Path, *, compile: bool = True):
    """The model ``Sequential.save`` wrote: made from the registry, built, its weights loaded
    and, with ``compile`` and plain-name settings, compiled (the optimizer starts afresh)."""
    from rnnkit.keras.model import Sequential  # model.py imports this module

    tensors, metadata = _read(Path(path))
    if metadata.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} holds no model architecture (format {metadata.get('format')!r}, "
                         f"want {MODEL_FORMAT!r}): a save_weights file loads with load_weights")
    config = _architecture(metadata, path)
    model = Sequential([layer_from_config(entry) for entry in config["layers"]], name=config["name"])
    if not model.built and config["build_input_shape"] is not None:
        model.build(tuple(config["build_input_shape"]))
    _assign(list(model.layers), tensors, path)
    if compile and config["compile"] is not None:
        model.compile(**config["compile"])
    return model


def _architecture(metadata: dict[str, str], path: str | Path) -> dict:
    try:
        config = json.loads(metadata["config"])
        if not isinstance(config["layers"], list) or not isinstance(config["name"], str):
            raise ValueError("layers must be a list and name a str")
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
