"""Keras's ``RepeatVector(n)`` and ``TimeDistributed(layer)``: the two layers between an
encoder and a decoder in Keras's classic sequence-to-sequence recipe,

    Sequential([LSTM(64, input_shape=(T, F)), RepeatVector(T_out),
                LSTM(64, return_sequences=True), TimeDistributed(Dense(F_out))])

``RepeatVector`` copies the encoder's last output to every decoder step
(keras/src/layers/reshaping/repeat_vector.py); ``TimeDistributed`` applies one layer, with
one set of weights, to every step (keras/src/layers/rnn/time_distributed.py). Keras 3 loops
over the steps; here the steps are folded into the batch, (B, T, ...) -> (B·T, ...), which
is the same function for a layer that treats samples independently (the accepted ones do).
"""

from __future__ import annotations

from torch import Tensor

from rnnkit.keras._base import Layer, Shape, check_positive_int
from rnnkit.keras._bidirectional import Bidirectional
from rnnkit.keras._core import Dense, Dropout, Embedding
from rnnkit.keras._recurrent import RNNLayer
from rnnkit.keras._weights import KerasWeight


class RepeatVector(Layer):
    """Keras ``RepeatVector(n)``: each sample's feature vector repeated ``n`` times along a
    new time axis. No weights; the output has no mask (Keras's ``compute_mask`` is None).

    Shapes:
        (B, F) -> (B, n, F).
    """

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = check_positive_int("n", n)

    def _check_shape(self, shape: Shape, built: Shape | None) -> None:
        if len(shape) != 2:  # Keras's input_spec: ndim=2, any feature size
            raise ValueError(f"inputs of {self.describe()} must be 2-D (batch, features), got shape {shape}")

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], self.n, input_shape[1])

    def output_mask(self, inputs: Tensor, mask: Tensor | None) -> Tensor | None:
        return None

    def get_config(self) -> dict:
        return {**super().get_config(), "n": self.n}

    def forward(self, inputs, *, mask: Tensor | None = None) -> Tensor:
        x_BF = self._input(inputs)
        return x_BF.unsqueeze(1).repeat(1, self.n, 1)  # a copy, as Keras's: not a view of x


STEP_LAYERS = (Dense, Dropout, Embedding, RepeatVector)  # layers of one step: no time axis of their own


class TimeDistributed(Layer):
    """Keras ``TimeDistributed(layer)``: ``layer`` applied to every time step, with the same
    weights at each. The weights are the inner layer's (``get_weights`` gives its arrays;
    in a saved file they sit under ``layer/``, as Keras 3's attribute path). A (B, T) mask
    passes through unchanged, as Keras's; the inner layer does not see it.

    Arguments:
        layer: a ``Dense``, ``Dropout``, ``Embedding`` or ``RepeatVector``; recurrent layers
            are refused (they run over time themselves: use ``return_sequences=True``).

    Shapes:
        (B, T, ...) -> (B, T, ...'), where the inner layer maps (B, ...) -> (B, ...').
    """

    def __init__(self, layer: Layer, **kwargs):
        if not isinstance(layer, STEP_LAYERS):
            names = ", ".join(cls.__name__ for cls in STEP_LAYERS)
            why = (" (a recurrent layer runs over the time axis itself: give it return_sequences=True "
                   "instead)" if isinstance(layer, RNNLayer | Bidirectional) else "")
            raise TypeError(f"layer of TimeDistributed must be one of {names}, got "
                            f"{type(layer).__name__}{why}")
        super().__init__(**kwargs)
        self.layer = layer
        if not self.trainable:  # TimeDistributed(..., trainable=False) freezes the inner layer too
            self.trainable = False

    def _check_shape(self, shape: Shape, built: Shape | None) -> None:
        if len(shape) < 3:
            raise ValueError(f"inputs of {self.describe()} must be at least 3-D (batch, timesteps, ...), "
                             f"got shape {shape}")
        self.layer._check_shape(_step_shape(shape), None if built is None else _step_shape(built))

    def _build(self, input_shape: Shape) -> None:
        if not self.layer.built:
            self.layer.build(_step_shape(input_shape))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        step_out = self.layer.compute_output_shape(_step_shape(input_shape))
        return (step_out[0], input_shape[1], *step_out[1:])

    def keras_weights(self) -> dict[str, KerasWeight]:
        return self.layer.keras_weights()

    def get_config(self) -> dict:
        inner = {"class_name": type(self.layer).__name__, "config": self.layer.get_config()}
        return {**super().get_config(), "layer": inner}

    def forward(self, inputs, *, mask: Tensor | None = None) -> Tensor:
        x = self._input(inputs, kind="any")  # the inner layer casts (token ids stay ints)
        B, T = x.shape[:2]
        if mask is not None and tuple(mask.shape[:2]) != (B, T):
            raise ValueError(f"mask of {self.describe()} must be (batch, timesteps) = ({B}, {T}), got "
                             f"shape {tuple(mask.shape)}")
        y = self.layer(x.reshape(B * T, *x.shape[2:]))  # steps folded into the batch
        assert y.shape[0] == B * T
        return y.reshape(B, T, *y.shape[1:])


def _step_shape(shape: Shape) -> Shape:
    """The inner layer's input shape: the time axis dropped, (B, T, ...) -> (B, ...)."""
    return (shape[0], *shape[2:])
