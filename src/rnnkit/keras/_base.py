"""The Keras layer contract on an ``nn.Module``: built lazily, from ``input_shape`` or the
first call, and data conversion at the boundary (numpy in, the layer's dtype and device).

Shapes here are Keras shapes: tuples with the batch dimension first, ``None`` where a size is
not fixed, e.g. ``(None, 10, 1)`` for batches of 10 steps of one feature.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit._checks import check_lengths
from rnnkit.keras import _graph
from rnnkit.keras._naming import auto_name
from rnnkit.keras._weights import KerasWeight
from rnnkit.layers import lengths_to_mask

Shape = tuple[int | None, ...]


class Layer(nn.Module):
    """A Keras-style layer: its parameters are created by ``build(input_shape)``, which runs
    at construction of a ``Sequential`` when the first layer has ``input_shape``, or on the
    first call.

    A layer starts in inference mode (``.eval()``), as a Keras layer runs outside ``fit``;
    ``layer(x, training=True)`` runs one call in training mode, and torch's ``.train()`` /
    ``.eval()`` set the mode that calls without ``training`` use.

    Arguments:
        input_shape: the shape of one sample, without the batch dimension, e.g. ``(10, 1)``.
        batch_input_shape: the same with a fixed batch size first, e.g. ``(32, 10, 1)``
            (stateful recurrent layers need the batch size).
        name: the name in ``summary()`` and in a model's settings by output name; by default
            the snake-cased class name with a counter for the session (``dense``,
            ``dense_1``; ``rnnkit.keras._naming``), given once, here, as Keras 3 does.
        trainable: False freezes the weights (see the ``trainable`` property).
    """

    def __init__(self, *, input_shape: Shape | None = None, batch_input_shape: Shape | None = None,
                 name: str | None = None, trainable: bool = True):
        super().__init__()
        self.eval()
        if input_shape is not None and batch_input_shape is not None:
            raise ValueError("pass input_shape or batch_input_shape, not both; got "
                             f"input_shape={input_shape} and batch_input_shape={batch_input_shape}")
        if input_shape is not None:
            batch_input_shape = (None, *_shape("input_shape", input_shape))
        elif batch_input_shape is not None:
            batch_input_shape = _shape("batch_input_shape", batch_input_shape)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}")
        self.batch_input_shape: Shape | None = batch_input_shape
        self.name = name or auto_name(type(self).__name__)  # fixed here, unique in the session
        self._trainable = check_bool("trainable", trainable)
        self.built = False
        self.input_shape: Shape | None = None
        self.output_shape: Shape | list[Shape] | None = None
        self._inbound_nodes: list[_graph.Node] = []  # its calls on symbolic tensors (Keras's)

    # -- to be provided by each layer ------------------------------------------------------
    def _build(self, input_shape: Shape) -> None:
        """Create the parameters (torch's default dtype, on the CPU)."""

    def _check_shape(self, shape: Shape, built: Shape | None) -> None:
        """Raise a ValueError if inputs of ``shape`` don't suit the layer (built for ``built``)."""

    def compute_output_shape(self, input_shape: Shape) -> Shape | list[Shape]:
        return input_shape

    def output_mask(self, inputs: Tensor, mask: Tensor | None) -> Tensor | None:
        """Keras's mask of this layer's output, (B, T) bool, True at real steps (Keras's
        ``compute_mask``): the input's by default."""
        return mask

    def keras_weights(self) -> dict[str, KerasWeight]:
        """Keras's weights of the built layer, by Keras's names, in Keras's order."""
        return {}

    def check_initial_state(self, shapes: list[Shape]) -> None:
        """Raise a ValueError if states of ``shapes`` cannot start this layer (a symbolic
        call's ``initial_state``); only recurrent layers take one."""
        raise TypeError(f"{self.describe()} takes no initial_state (only recurrent layers do), got "
                        f"{len(shapes)} states")

    def get_config(self) -> dict:
        """The constructor arguments that make this layer again, as plain JSON values
        (Keras's ``get_config``); each layer adds its own to these."""
        config: dict = {"name": self.name, "trainable": self.trainable}
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = list(self.batch_input_shape)
        return config

    # -- shared ----------------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        """Keras's ``trainable``. False freezes the layer's weights: they get
        ``requires_grad=False``, so ``fit`` leaves them as they are (the optimizer skips a
        weight without a gradient, also one it already holds) and ``summary()`` counts them
        as non-trainable. Setting it sets the layers inside (a ``Bidirectional``'s) too, as
        Keras does; before the build it applies when the weights are made."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        value = check_bool("trainable", value)
        for module in self.modules():
            if isinstance(module, Layer):
                module._trainable = value
        self.requires_grad_(value)

    def build(self, input_shape: Shape) -> None:
        """Create the parameters for inputs of ``input_shape`` (batch dimension first)."""
        input_shape = _shape("input_shape", input_shape)
        self._check_shape(input_shape, None)
        self._build(input_shape)
        self.train(self.training)  # the modules _build made take the layer's mode
        if not self._trainable:
            self.requires_grad_(False)
        self.input_shape = input_shape
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    def symbolic_build(self, input_shape: Shape) -> None:
        """Build for a symbolic call on inputs of ``input_shape`` (Keras builds there), or
        check that shape against the one the layer was built for."""
        if not self.built:
            self._check_shape(input_shape, None)
            self.build(input_shape)
        else:
            self._check_shape(input_shape, self.input_shape)

    @property
    def output(self):
        """Keras's ``layer.output``: the KerasTensor (or list) of the layer's first symbolic call."""
        return self._first_node("output").output

    @property
    def input(self):
        """Keras's ``layer.input``: the inputs of the layer's first symbolic call."""
        return self._first_node("input").args

    def _first_node(self, what: str) -> _graph.Node:
        if not self._inbound_nodes:
            raise AttributeError(f"{self.describe()} has no {what}: it has not been called on a symbolic "
                                 "tensor (from Input) yet")
        return self._inbound_nodes[0]

    def _input(self, inputs, *, kind: str = "float") -> Tensor:
        """``inputs`` as a tensor on the layer's device and dtype (see ``as_tensor``),
        building the layer first if needed."""
        x = as_tensor(inputs, name="inputs", like=_first_parameter(self), kind=kind)
        if not self.built:
            self._check_shape(tuple(x.shape), None)  # errors quote the shape as given
            given = self.batch_input_shape
            self.build(given if given is not None and given[-1] is not None else (None, *x.shape[1:]))
            self.to(device=x.device)
        self._check_shape(tuple(x.shape), self.input_shape)
        return x

    def __call__(self, *args, training: bool | None = None, **kwargs):
        """``training``: None runs in the layer's current mode; True or False runs this call
        in that mode, as Keras's ``training`` argument does. On symbolic tensors (from
        ``Input``) the call is recorded for a functional ``Model`` instead (``_graph``)."""
        if _graph.is_symbolic(args, kwargs):
            return _graph.symbolic_call(self, args, kwargs, plain(training))
        if training is None:
            return super().__call__(*args, **kwargs)
        with training_mode(self, training):
            return super().__call__(*args, **kwargs)

    def get_weights(self) -> list[np.ndarray]:
        """The weights as numpy arrays in Keras's order and layouts (kernels (in, out), LSTM
        gates i, f, c, o, GRU gates z, r, h); [] before the layer is built, as in Keras."""
        if not self.built:
            return []
        # copies, as Keras returns: a view of a parameter would follow later training
        return [to_numpy(w.read()).copy() for w in self.keras_weights().values()]

    def set_weights(self, weights: list) -> None:
        """Set the weights from numpy arrays in ``get_weights``'s order and shapes; checks
        every array before it writes any."""
        write_weights(check_weights(self, weights))

    def count_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def describe(self) -> str:
        return f"{self.name} ({type(self).__name__})"


@contextmanager
def training_mode(module: nn.Module, training: bool) -> Iterator[None]:
    """``module`` and every module in it in ``training`` mode inside the block; afterwards
    each module's mode as it was before (a module made inside, by a lazy build, takes its
    parent's)."""
    saved = {m: m.training for m in module.modules()}
    module.train(bool(training))
    try:
        yield
    finally:
        _restore_mode(module, saved, saved[module])


def _restore_mode(module: nn.Module, saved: dict[nn.Module, bool], parent: bool) -> None:
    module.training = saved.get(module, parent)
    for child in module.children():
        _restore_mode(child, saved, module.training)


def check_weights(layer: Layer, weights, *, source: str = "set_weights"
                  ) -> list[tuple[KerasWeight, Tensor]]:
    """``weights`` (numpy arrays) paired with ``layer``'s Keras weights, after checking the
    count and every shape; errors name the layer and the weight."""
    if not isinstance(weights, list | tuple):
        raise TypeError(f"{source} of {layer.describe()} takes a list of numpy arrays, got "
                        f"{type(weights).__name__}")
    targets = layer.keras_weights() if layer.built else {}
    if len(weights) != len(targets):
        unbuilt = "" if layer.built else " (it is not built yet: call it or build the model first)"
        raise ValueError(f"{source} of {layer.describe()} expects {len(targets)} arrays "
                         f"{list(targets)}{unbuilt}, got {len(weights)}")
    pairs = []
    for (name, target), array in zip(targets.items(), weights, strict=True):
        what = f"weight '{name}' of {layer.describe()}"
        value = as_tensor(array, name=what, like=target.views[0], kind="float")
        if tuple(value.shape) != target.shape:
            raise ValueError(f"{source} of {layer.describe()}: weight '{name}' must have shape "
                             f"{target.shape}, got {tuple(value.shape)}")
        pairs.append((target, value))
    return pairs


def check_model_weights(model: str, layers: list[Layer], weights) -> list[tuple[KerasWeight, Tensor]]:
    """``check_weights`` for a model's layers in turn: the count first, naming every weight,
    then each layer's arrays."""
    if not isinstance(weights, list | tuple):
        raise TypeError(f"set_weights takes a list of numpy arrays, got {type(weights).__name__}")
    counts = [len(layer.keras_weights()) if layer.built else 0 for layer in layers]
    if len(weights) != sum(counts):
        names = [f"{layer.name}/{w}" for layer in layers if layer.built for w in layer.keras_weights()]
        built = bool(layers) and all(layer.built for layer in layers)
        unbuilt = "" if built else " (it is not built yet: build it or call it first)"
        raise ValueError(f"set_weights of model '{model}' expects {sum(counts)} arrays "
                         f"{names}{unbuilt}, got {len(weights)}")
    pairs, start = [], 0
    for layer, n in zip(layers, counts, strict=True):
        pairs += check_weights(layer, list(weights[start:start + n])) if n else []
        start += n
    return pairs


def write_weights(pairs: list[tuple[KerasWeight, Tensor]]) -> None:
    with torch.no_grad():  # the views are of parameters that require grad
        for target, value in pairs:
            target.write(value)


def as_tensor(data, *, name: str, like: Tensor | None = None, kind: str = "any") -> Tensor:
    """numpy arrays, lists, tensors and array-likes (objects with ``__array__``, such as
    pandas DataFrames) as tensors on ``like``'s device.

    ``kind="float"``: cast to ``like``'s floating dtype (torch's default dtype without one),
    as Keras casts float64 arrays to its float type; ``"int"``: cast to int64 (token ids, as
    Keras casts an Embedding's input); ``"any"``: floating data as for ``"float"``, integer
    data kept as int64 (class labels), booleans as floats.
    """
    assert kind in ("float", "int", "any")
    if isinstance(data, Tensor):
        x = data
    elif isinstance(data, np.ndarray | list | tuple | int | float | np.number) or hasattr(data, "__array__"):
        try:
            x = torch.as_tensor(np.asarray(data))
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be numbers in a numpy array or tensor, got "
                            f"{type(data).__name__}: {err}") from err
    else:
        raise TypeError(f"{name} must be a numpy array, a torch.Tensor, a list or an array-like (with "
                        f"__array__, e.g. a pandas DataFrame), got {type(data).__name__}")
    if x.is_complex():
        raise TypeError(f"{name} must be real numbers, got dtype {x.dtype}")
    floating = like.dtype if like is not None and like.is_floating_point() else torch.get_default_dtype()
    if kind == "int":
        x = x.long()
    elif kind == "float" or x.is_floating_point() or x.dtype == torch.bool:
        x = x.to(floating)
    else:
        x = x.long()
    return x if like is None else x.to(like.device)


def _first_parameter(module: nn.Module) -> Tensor | None:
    return next(module.parameters(), None)


def _shape(name: str, shape) -> Shape:
    if isinstance(shape, tuple | list):
        shape = tuple(plain(s) for s in shape)
    if not isinstance(shape, tuple) or not all(
            s is None or (isinstance(s, int) and not isinstance(s, bool) and s > 0) for s in shape):
        raise ValueError(f"{name} must be a tuple of positive ints or None, got {shape!r}")
    return shape


def to_numpy(t: Tensor) -> np.ndarray:
    """``t`` as a numpy array; numpy has no bfloat16, so such tensors come back as float32,
    which holds them exactly."""
    return (t.float() if t.dtype == torch.bfloat16 else t).detach().cpu().numpy()


def plain(value):
    """A numpy scalar (``np.int64(8)``, ``np.float32(0.2)``, ``np.bool_``) as the Python number
    it holds, as Keras reads them; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def check_positive_int(name: str, value) -> int:
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_rate(name: str, value) -> float:
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}")
    return float(value)


def check_bool(name: str, value) -> bool:
    value = plain(value)
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_number(name: str, value, *, positive: bool = False) -> float:
    """A finite number >= 0 (> 0 with ``positive``), as a float."""
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or (
            value <= 0 if positive else value < 0):
        raise ValueError(f"{name} must be a finite number {'>' if positive else '>='} 0, got {value!r}")
    return float(value)


def check_finite(name: str, value) -> float:
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_count(name: str, value) -> int:
    """An int >= 0 (a patience, a number of epochs)."""
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)


def check_features(layer: Layer, shape: Shape, built: Shape | None, *, rank: str, ndim: int | None) -> None:
    """Rank ``ndim`` (or >= 2 when None) and, once built, the built feature size."""
    if (ndim is not None and len(shape) != ndim) or (ndim is None and len(shape) < 2):
        raise ValueError(f"inputs of {layer.describe()} must be {rank}, got shape {shape}")
    if built is not None and shape[-1] != built[-1]:
        raise ValueError(f"inputs of {layer.describe()} must have {built[-1]} features (the size "
                         f"it was built for, input_shape={built[1:]}), got {shape[-1]} (shape {shape})")


def check_mask(mask, lengths, B: int, T: int, *, device, where: str) -> Tensor | None:
    """Keras's ``mask`` (B, T) bool, or one made from rnnkit's ``lengths``, or None."""
    if mask is not None and lengths is not None:
        raise ValueError(f"pass mask or lengths to {where}, not both")
    if lengths is not None:
        return lengths_to_mask(check_lengths(lengths, batch=B, time=T, device=device), T)
    if mask is None:
        return None
    mask = torch.as_tensor(mask, device=device)
    if mask.shape != (B, T) or mask.dtype != torch.bool:
        raise ValueError(f"mask of {where} must be (batch, timesteps) = ({B}, {T}) bool, got "
                         f"{mask.dtype} of shape {tuple(mask.shape)}")
    return mask
