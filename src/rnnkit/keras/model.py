"""``Sequential``: Keras's model of a stack of layers, trained by rnnkit's one loop.

``compile``, ``fit``, ``evaluate``, ``predict``, the weights and saving are ``Trainer``'s
(``_trainer``), shared with the functional ``Model`` (``_functional``, re-exported here as
``keras.models`` has both): ``fit`` hands the model to ``rnnkit.train.fit`` with a
``TensorLoader`` (the data: ``_data``), through ``_fit``, which also calls the callbacks as
Keras does. This module holds the stack itself. Keras's semantics kept: numpy in and
out, float64 arrays cast to the model's dtype, ``validation_split`` taken from the end of
the data before shuffling, a ``History`` of per-epoch values summed as Keras sums them
(``_fit``), optimizer state kept across ``fit`` calls (a layer added after ``fit`` joins the
kept optimizer), and an ``Embedding(mask_zero=True)``'s mask carried to a per-step output,
so that the loss and metrics skip the padded steps; inference mode outside ``fit`` (see
``Sequential``); ``get_weights``/``set_weights`` in Keras's layouts; ``save_weights`` /
``load_weights`` and ``save`` / ``load_model`` (with the optimizer's state) as safetensors
(``_saving``).
"""

from __future__ import annotations

from torch import Tensor, nn

from rnnkit.keras import _saving
from rnnkit.keras._base import Layer, Shape, as_tensor, check_mask, training_mode
from rnnkit.keras._bidirectional import Bidirectional
from rnnkit.keras._core import InputLayer
from rnnkit.keras._fit import History
from rnnkit.keras._functional import Model
from rnnkit.keras._graph import KerasTensor
from rnnkit.keras._recurrent import RNNLayer
from rnnkit.keras._summary import render_summary
from rnnkit.keras._trainer import Trainer, one_head
from rnnkit.keras.losses import with_mask
from rnnkit.keras.optimizers import add_parameters, is_built

__all__ = ["History", "Model", "Sequential"]


class Sequential(Trainer):
    """Layers applied one after the other. Training, evaluation, weights and saving are
    ``Trainer``'s (``rnnkit.keras._trainer``), shared with the functional ``Model``.

    Arguments:
        layers: ``rnnkit.keras`` layers, optionally after an ``Input(shape=...)``; if that or
            the first layer's ``input_shape`` (or ``batch_input_shape``) gives the input
            shape, the model is built at once, else on first use.
        name: the model's name in ``summary()``.
        trainable: False freezes every layer (see the ``trainable`` property).
    """

    def __init__(self, layers: list[Layer] | None = None, *, name: str = "sequential",
                 trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self._input_shape: Shape | None = None  # from an Input, with the batch dimension
        self.layers = nn.ModuleList()
        self.eval()  # the list too: a model is made in inference mode
        for layer in layers or []:
            self.add(layer)

    # -- structure -------------------------------------------------------------------------
    def _weight_layers(self) -> list[Layer]:
        return list(self.layers)

    def add(self, layer: Layer | InputLayer) -> None:
        """Append ``layer``; it is built at once if the model is. An ``Input`` (or
        ``InputLayer``) may come first, to give the input shape."""
        if isinstance(layer, KerasTensor):  # Keras 3's Input(shape=...) is a symbolic tensor
            layer = layer.input_layer("layer")
        if isinstance(layer, InputLayer):
            if self.layers or self._input_shape is not None:
                before = f"{len(self.layers)} layers" + (" and an Input" if self._input_shape else "")
                raise ValueError(f"an Input must be the model's first element, got one after {before}")
            self._input_shape = layer.batch_shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"layer must be an rnnkit.keras layer or an Input, got {type(layer).__name__}")
        if self.layers and _returns_state(self.layers[-1]):
            raise ValueError(f"only the last layer may return states (return_state=True); "
                             f"{self.layers[-1].describe()} does and cannot be followed by "
                             f"{layer.describe()}")
        same = next((other for other in self.layers if other.name == layer.name), None)
        if same is not None:  # Keras 3's Sequential.add refuses it too; names are fixed at creation
            raise ValueError(f"All layers added to a Sequential model should have unique names. Name "
                             f"'{layer.name}' of {layer.describe()} is already the name of "
                             f"{same.describe()} in this model. Update the `name` argument to pass a "
                             "unique name")
        self.layers.append(layer)
        layer.train(self.training)
        if not self._trainable:  # a frozen model trains none of its layers, as in Keras
            layer.trainable = False
        if len(self.layers) == 1 and (layer.batch_input_shape or self._input_shape) is not None:
            self.build()
        elif len(self.layers) > 1 and self.layers[-2].built and not layer.built:
            like = next(self.layers[0].parameters(), None)
            layer.build(self.layers[-2].output_shape)
            if like is not None:  # where the model already is
                layer.to(device=like.device, dtype=like.dtype)
        if self.optimizer is not None and is_built(self.optimizer):  # the next fit trains this layer too
            add_parameters(self.optimizer, layer)

    def build(self, input_shape: Shape | None = None) -> None:
        """Build every layer for inputs of ``input_shape`` (batch dimension first, e.g.
        ``(None, 10, 1)``); by default the first layer's ``batch_input_shape``, or the
        ``Input``'s shape."""
        if not self.layers:
            raise ValueError("the model has no layers: add some before build()")
        shape = input_shape if input_shape is not None else (self.layers[0].batch_input_shape
                                                             or self._input_shape)
        if shape is None:
            raise ValueError("build() needs input_shape (with the batch dimension, e.g. "
                             "(None, 10, 1)) when the first layer has no input_shape, got None")
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.output_shape

    @property
    def output_names(self) -> list[str]:
        """Keras 3's: the last layer's name, by which ``compile`` takes a dict of settings."""
        return [self.layers[-1].name] if self.layers else []

    def _summary_text(self) -> str:
        return render_summary(self.name, self.layers, list(self.parameters()), trainable=self.trainable)

    def _build_hint(self) -> str:
        return ("give it an Input(shape=...) first (or its first layer input_shape), call "
                "build((None, timesteps, features)), or call it on data first")

    # -- forward ---------------------------------------------------------------------------
    def forward(self, inputs, *, training: bool | None = None, mask: Tensor | None = None,
                lengths: Tensor | None = None):
        """The layers in turn. ``training``: None runs in the model's current mode (inference
        unless ``train()`` or inside ``fit``), True or False in that mode for this call only.
        ``mask`` (B, T) bool, True at the steps the recurrent layers read (Keras's), or
        ``lengths`` (B,), real lengths of rows padded at the end (rnnkit's); an
        ``Embedding(mask_zero=True)`` makes the mask itself."""
        if not self.layers:
            raise ValueError("the model has no layers: add some before calling it")
        if training is None:
            return self._forward(inputs, mask, lengths)
        with training_mode(self, training):
            return self._forward(inputs, mask, lengths)

    def _forward(self, inputs, mask: Tensor | None, lengths: Tensor | None):
        x = as_tensor(inputs, name="inputs", like=self._like())
        T = x.shape[1] if x.dim() >= 2 else None
        if mask is not None or lengths is not None:
            mask = check_mask(mask, lengths, x.shape[0], T, device=x.device, where="the model")
        for layer in self.layers:
            out = layer(x, mask=mask)
            mask = layer.output_mask(x, mask)
            x = out
        return with_mask(x, mask)

    def _ensure_built(self, x: Tensor) -> None:
        if not self.built:
            self.layers[0]._check_shape(tuple(x.shape), None)  # errors quote the shape as given
            self.build((None, *x.shape[1:]))

    # -- what Trainer asks of a model -----------------------------------------------------
    def _inputs_of(self, x, name: str) -> Tensor:
        return as_tensor(x, name=name, like=self._like())

    def _targets_of(self, y, name: str) -> Tensor:
        return as_tensor(y, name=name, like=self._like())

    def _heads(self, loss, loss_weights, metrics):
        return one_head(loss, loss_weights, metrics, self.output_names[0] if self.layers else None)

    def _check_trainable_output(self, what: str) -> None:
        if self.layers and _returns_state(self.layers[-1]):
            last = self.layers[-1]
            raise ValueError(f"{what}() needs a model whose output is one tensor, got a list "
                             f"[output, *states]: its last layer {last.describe()} has "
                             "return_state=True; build the model for training without it "
                             "(predict() returns the list)")

    def get_config(self) -> dict:
        """The architecture as plain JSON values: the name, each layer's class name and
        ``get_config()``, the built input shape, and the compile settings if they are names."""
        return _saving.model_config(self)


def _returns_state(layer: Layer) -> bool:
    inner = layer.layer if isinstance(layer, Bidirectional) else layer
    return isinstance(inner, RNNLayer) and inner.return_state
