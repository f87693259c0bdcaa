"""Keras's ``Bidirectional`` wrapper over a ``SimpleRNN``, ``LSTM`` or ``GRU`` of this front end
(``rnnkit.keras._recurrent``), which holds the parameters and runs both directions."""

from __future__ import annotations

from torch import Tensor

from rnnkit.keras._base import Layer, Shape
from rnnkit.keras._recurrent import RNNLayer
from rnnkit.keras._weights import KerasWeight
from rnnkit.layers.bidirectional import MERGES


class Bidirectional(Layer):
    """Keras ``Bidirectional(layer, merge_mode)``: the layer's recurrence run forward and
    backward over the same inputs (``rnnkit.Bidirectional``), outputs merged per step.

    Arguments:
        layer: a ``SimpleRNN``, ``LSTM`` or ``GRU``, not yet built; it holds the parameters.
        merge_mode: ``"concat"`` (forward first), ``"sum"``, ``"mul"`` or ``"ave"``.
    """

    def __init__(self, layer: RNNLayer, merge_mode: str = "concat", **kwargs):
        if not isinstance(layer, RNNLayer):
            raise TypeError(f"layer must be a SimpleRNN, LSTM or GRU, got {type(layer).__name__}")
        if merge_mode not in MERGES:
            raise ValueError(f"merge_mode must be one of {MERGES}, got {merge_mode!r}")
        if layer.built or layer.merge_mode is not None or layer.go_backwards:
            raise ValueError(f"layer must be a new, unbuilt layer with go_backwards=False, got "
                             f"{layer.describe()} (built={layer.built}, go_backwards={layer.go_backwards})")
        if not kwargs.get("input_shape") and not kwargs.get("batch_input_shape"):
            kwargs["batch_input_shape"] = layer.batch_input_shape
        super().__init__(**kwargs)
        layer.merge_mode = merge_mode
        self.layer, self.merge_mode = layer, merge_mode
        if not self.trainable:  # Bidirectional(..., trainable=False) freezes the wrapped layer too
            self.trainable = False

    def _check_shape(self, shape: Shape, built: Shape | None) -> None:
        self.layer._check_shape(shape, built)

    def _build(self, input_shape: Shape) -> None:
        self.layer.build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape | list[Shape]:
        return self.layer.compute_output_shape(input_shape)

    def output_mask(self, inputs: Tensor, mask: Tensor | None) -> Tensor | None:
        return self.layer.output_mask(inputs, mask)

    def check_initial_state(self, shapes: list[Shape]) -> None:
        self.layer.check_initial_state(shapes)

    def keras_weights(self) -> dict[str, KerasWeight]:
        return self.layer.keras_weights()

    def get_config(self) -> dict:
        inner = {"class_name": type(self.layer).__name__, "config": self.layer.get_config()}
        return {**super().get_config(), "layer": inner, "merge_mode": self.merge_mode}

    def forward(self, inputs, *, initial_state=None, mask: Tensor | None = None,
                lengths: Tensor | None = None):
        self._input(inputs)  # builds on the first call
        return self.layer(inputs, initial_state=initial_state, mask=mask, lengths=lengths)

    def reset_states(self) -> None:
        self.layer.reset_states()
