"""Keras's core layers: ``Dense``, ``Dropout`` and ``Embedding``, with Keras's initialisers
(Glorot-uniform kernels and zero biases; embeddings uniform in [-0.05, 0.05]), and
``Input``/``InputLayer``, which give a ``Sequential`` its input shape."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.keras import _graph
from rnnkit.keras._base import (
    Layer,
    Shape,
    _shape,
    as_tensor,
    check_features,
    check_positive_int,
    check_rate,
)
from rnnkit.keras._naming import auto_name
from rnnkit.keras._weights import KerasWeight

ACTIVATIONS: dict[str | None, Callable[[Tensor], Tensor]] = {
    None: lambda x: x,
    "linear": lambda x: x,
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softmax": lambda x: F.softmax(x, dim=-1),
    "log_softmax": lambda x: F.log_softmax(x, dim=-1),
    "elu": F.elu,
    "selu": F.selu,
    "gelu": F.gelu,  # Keras's default: approximate=False
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "silu": F.silu,
    "relu6": F.relu6,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),  # Keras 3's negative_slope
    "hard_sigmoid": F.hardsigmoid,  # Keras 3's: relu6(x + 3) / 6
    "exponential": torch.exp,
}


def get_activation(activation) -> Callable[[Tensor], Tensor]:
    """A Keras activation name (or a callable) as a function."""
    if callable(activation):
        return activation
    if not isinstance(activation, str | None) or activation not in ACTIVATIONS:
        names = [k for k in ACTIVATIONS if k is not None]
        raise ValueError(f"activation must be None, a callable or one of {names}, got {activation!r}")
    return ACTIVATIONS[activation]


class Dense(Layer):
    """``y = activation(x W + b)`` on the last axis; on a 3-D input, at every time step.

    Shapes:
        (B, ..., I) -> (B, ..., units).
    """

    def __init__(self, units: int, activation: str | Callable | None = None, *, use_bias: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        get_activation(activation)  # checked here, looked up per call: a name pickles
        self.activation, self.use_bias = activation, use_bias

    def _check_shape(self, shape: Shape, built: Shape | None) -> None:
        check_features(self, shape, built, rank="at least 2-D (batch, ..., features)", ndim=None)

    def _build(self, input_shape: Shape) -> None:
        self.linear = nn.Linear(input_shape[-1], self.units, bias=self.use_bias)
        nn.init.xavier_uniform_(self.linear.weight)
        if self.use_bias:
            nn.init.zeros_(self.linear.bias)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict:
        if not isinstance(self.activation, str | None):
            raise ValueError(f"activation of {self.describe()} must be a name to be saved, got "
                             f"the callable {self.activation!r}")
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias}

    def keras_weights(self) -> dict[str, KerasWeight]:
        weights = {"kernel": KerasWeight((self.linear.weight,))}  # Keras's (I, units)
        if self.use_bias:
            weights["bias"] = KerasWeight((self.linear.bias,))
        return weights

    def forward(self, inputs, *, mask: Tensor | None = None) -> Tensor:
        x = self._input(inputs)  # builds self.linear on the first call
        return get_activation(self.activation)(self.linear(x))


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of the inputs in training and scales the rest by
    1 / (1 - rate); the identity at inference."""

    def __init__(self, rate: float, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate}

    def forward(self, inputs, *, mask: Tensor | None = None) -> Tensor:
        return F.dropout(self._input(inputs), self.rate, self.training)


class Embedding(Layer):
    """Token ids to vectors.

    Arguments:
        input_dim: vocabulary size V; ids must be in [0, V).
        output_dim: embedding size E.
        mask_zero: id 0 is padding: the recurrent layers after it skip those steps, wherever
            they are (at the end of a row, at its start as Keras's ``pad_sequences`` puts
            them, or between real steps), and a row of only padding keeps its initial state.
        weights: the initial embedding matrix (V, E), or ``[matrix]`` as Keras takes it
            (pretrained vectors; with ``trainable=False`` they stay as they are). Checked
            here, written when the layer is built (Keras builds at once, so there
            ``get_weights()`` has it before the layer's first use).

    Shapes:
        tokens (B, T) -> (B, T, E).
    """

    def __init__(self, input_dim: int, output_dim: int, *, mask_zero: bool = False, weights=None,
                 **kwargs):
        if kwargs.pop("input_length", None) is not None:  # as Keras 3: accepted, unused
            warnings.warn("Argument `input_length` is deprecated. Just remove it.", stacklevel=2)
        super().__init__(**kwargs)
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.output_dim = check_positive_int("output_dim", output_dim)
        self.mask_zero = mask_zero
        self._initial = None if weights is None else self._initial_matrix(weights)

    def _initial_matrix(self, weights) -> Tensor:
        if isinstance(weights, list | tuple) and len(weights) == 1:  # Keras's [matrix]
            weights = weights[0]
        elif isinstance(weights, list | tuple) and any(isinstance(w, np.ndarray | Tensor) for w in weights):
            raise ValueError(f"weights of {self.describe()} must be [matrix]: one (input_dim, output_dim) "
                             f"array, got a list of {len(weights)} arrays")
        matrix_VE = as_tensor(weights, name=f"weights of {self.describe()}", kind="float")
        if tuple(matrix_VE.shape) != (self.input_dim, self.output_dim):
            raise ValueError(f"weights of {self.describe()} must be one matrix of shape (input_dim, "
                             f"output_dim) = ({self.input_dim}, {self.output_dim}), got shape "
                             f"{tuple(matrix_VE.shape)}")
        return matrix_VE

    def _check_shape(self, shape: Shape, built: Shape | None) -> None:
        if len(shape) < 1 or (self.mask_zero and len(shape) != 2):
            want = "2-D (batch, timesteps)" if self.mask_zero else "at least 1-D (batch, ...)"
            raise ValueError(f"inputs of {self.describe()} must be {want}, got shape {shape}")

    def _build(self, input_shape: Shape) -> None:
        self.embedding = nn.Embedding(self.input_dim, self.output_dim)
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        if self._initial is not None:
            with torch.no_grad():
                self.embedding.weight.copy_(self._initial)
            self._initial = None  # the parameter holds it now

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape, self.output_dim)

    def get_config(self) -> dict:
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "mask_zero": self.mask_zero}

    def keras_weights(self) -> dict[str, KerasWeight]:
        return {"embeddings": KerasWeight((self.embedding.weight,), transpose=False)}

    def forward(self, inputs, *, mask: Tensor | None = None) -> Tensor:
        tokens = self._input(inputs, kind="int")
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= self.input_dim:
            raise ValueError(f"token ids of {self.describe()} must be in [0, {self.input_dim}) "
                             f"(input_dim), got min {lo} and max {hi}")
        return self.embedding(tokens)

    def output_mask(self, inputs: Tensor, mask: Tensor | None) -> Tensor | None:
        return inputs.long() != 0 if self.mask_zero else mask


class InputLayer:
    """Keras's ``InputLayer``: the input shape of a ``Sequential``, given as its first element
    (it is not one of a Sequential's ``model.layers``, as in Keras 3), or an input of a
    functional ``Model``, whose ``layers`` list it. ``Input`` makes one and returns its
    symbolic tensor (``.output``).

    Arguments:
        shape: one sample's shape, without the batch dimension, e.g. ``(10, 1)``.
        batch_size: a fixed batch size (stateful layers need one), or None.
        batch_shape: the shape with the batch dimension first, instead of both.
        dtype: accepted and unused: the layers cast their inputs (token ids to int64,
            other inputs to the model's floating dtype).
        name: the input's name (a functional model's ``input_names``, the keys of a dict of
            inputs); by default ``input_layer``, ``input_layer_1``, ... as Keras 3 names them.
    """

    def __init__(self, shape=None, batch_size: int | None = None, dtype=None, batch_shape=None,
                 name: str | None = None):
        if (shape is None) == (batch_shape is None):
            raise ValueError(f"InputLayer takes shape or batch_shape (one of them), got shape={shape!r} "
                             f"and batch_shape={batch_shape!r}")
        if batch_shape is None:
            size = None if batch_size is None else check_positive_int("batch_size", batch_size)
            batch_shape = (size, *_shape("shape", shape))
        self.batch_shape: Shape = _shape("batch_shape", batch_shape)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}")
        self.name = name or auto_name("InputLayer")  # input_layer, input_layer_1, ...
        self.built, self.output_shape, self.trainable = True, self.batch_shape, True
        self._inbound_nodes = [_graph.input_node(self)]

    @property
    def output(self) -> _graph.KerasTensor:
        """The symbolic tensor a functional model's layers are called on."""
        return self._inbound_nodes[0].output

    def describe(self) -> str:
        return f"{self.name} (InputLayer)"

    def count_params(self) -> int:
        return 0

    def get_weights(self) -> list:
        return []

    def get_config(self) -> dict:
        return {"batch_shape": list(self.batch_shape), "name": self.name}


def Input(shape=None, batch_size: int | None = None, dtype=None, batch_shape=None,
          name: str | None = None) -> _graph.KerasTensor:
    """Keras's ``Input(shape=...)``: a symbolic tensor of that shape (batch dimension first,
    None), on which layers are called to build a functional ``Model``:
    ``x = Input(shape=(10,)); y = Dense(1)(Embedding(50, 8)(x)); Model(x, y)``. As the
    first element of a ``Sequential`` it gives the input shape:
    ``Sequential([Input(shape=(10, 1)), LSTM(8), Dense(1)])``."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape,
                      name=name).output
