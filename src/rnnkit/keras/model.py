"""``Sequential``: Keras's model of a stack of layers, trained by rnnkit's one loop.

``fit`` hands the model to ``rnnkit.train.fit`` with a ``TensorLoader`` (the data: ``_data``);
``evaluate`` uses ``rnnkit.train.evaluate`` (both through ``_fit``, which also calls the
callbacks as Keras does). Keras's semantics kept here: numpy in and
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

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit import train
from rnnkit.keras import _data, _fit, _saving
from rnnkit.keras._base import (
    Layer,
    Shape,
    as_tensor,
    check_bool,
    check_mask,
    check_model_weights,
    plain,
    to_numpy,
    training_mode,
    write_weights,
)
from rnnkit.keras._bidirectional import Bidirectional
from rnnkit.keras._callback import CallbackList, check_callbacks
from rnnkit.keras._core import InputLayer
from rnnkit.keras._fit import History
from rnnkit.keras._recurrent import RNNLayer
from rnnkit.keras._summary import render_summary
from rnnkit.keras.losses import get_loss, get_metrics, set_mask
from rnnkit.keras.optimizers import Optimizer, add_parameters, get, is_built, make_optimizer


class Sequential(nn.Module):
    """Layers applied one after the other.

    Training or inference, as Keras decides it: ``model(x)`` runs in inference mode (no
    dropout) and ``model(x, training=True)`` in training mode. The rule, in torch's terms: a
    model is made in ``eval()`` mode; ``fit`` switches it to ``train()`` mode and ``fit``,
    ``evaluate`` and ``predict`` leave every layer in the mode they found it in; a call with
    ``training=None`` runs in the current mode, so torch users may still call ``model.train()``
    before their own loop (and ``model.eval()`` after it).

    Arguments:
        layers: ``rnnkit.keras`` layers, optionally after an ``Input(shape=...)``; if that or
            the first layer's ``input_shape`` (or ``batch_input_shape``) gives the input
            shape, the model is built at once, else on first use.
        name: the model's name in ``summary()``.
        trainable: False freezes every layer (see the ``trainable`` property).
    """

    def __init__(self, layers: list[Layer] | None = None, *, name: str = "sequential",
                 trainable: bool = True):
        super().__init__()
        self.name = name
        self._trainable = check_bool("trainable", trainable)
        self._input_shape: Shape | None = None  # from an Input, with the batch dimension
        self.layers = nn.ModuleList()
        self.optimizer: torch.optim.Optimizer | Optimizer | None = None
        self.history: History | None = None
        self._compiled: dict | None = None
        self._compile_config: dict | None = None  # compile's arguments, when all are names
        self.eval()
        for layer in layers or []:
            self.add(layer)

    # -- structure -------------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def trainable(self) -> bool:
        """Keras's ``model.trainable``: setting it sets every layer's ``trainable``. While it
        is False the model trains nothing, as in Keras, even a layer unfrozen afterwards
        (``fit`` refuses to run; ``summary()`` counts every weight as non-trainable).
        ``fit`` trains the weights that are trainable when it starts, also after
        ``compile`` or an earlier ``fit`` (Keras asks for a new ``compile``)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = check_bool("trainable", value)
        for layer in self.layers:
            layer.trainable = value

    def add(self, layer: Layer | InputLayer) -> None:
        """Append ``layer``; it is built at once if the model is. An ``Input`` (or
        ``InputLayer``) may come first, to give the input shape."""
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
        names = {other.name for other in self.layers}
        base, k = layer.name, 0
        while layer.name in names:
            k += 1
            layer.name = f"{base}_{k}"
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

    def reset_states(self) -> None:
        """Zero the carried state of every stateful recurrent layer."""
        for module in self.modules():
            if isinstance(module, RNNLayer):
                module.reset_states()

    def summary(self, print_fn: Callable[[str], None] | None = print) -> str:
        """Keras's table: each layer's name (type), output shape and parameter count, then the
        totals. Printed with ``print_fn`` (None: not printed) and returned. Before the model
        is built, as Keras 3 shows it: ``?`` for each shape and ``0 (unbuilt)`` parameters."""
        text = render_summary(self.name, self.layers, list(self.parameters()), trainable=self.trainable)
        if print_fn is not None:
            print_fn(text)
        return text

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
        return _with_mask(x, mask, T)

    def count_params(self) -> int:
        """The number of weights (trainable or not), as Keras's ``count_params``."""
        if not self.built:
            raise ValueError(f"count_params() needs a built model, and '{self.name}' is not built: give "
                             "it an Input or the first layer input_shape, or call build() or the model first")
        return sum(p.numel() for p in self.parameters())

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called ``name``, or at ``index`` in ``model.layers``, as Keras's."""
        if (name is None) == (index is None):
            raise ValueError(f"get_layer takes a layer name or an index (one of them), got name={name!r} "
                             f"and index={index!r}")
        if index is not None:
            index = plain(index)
            if isinstance(index, bool) or not isinstance(index, int) or not -len(self.layers) <= index < len(
                    self.layers):
                raise ValueError(f"index must be an int in [{-len(self.layers)}, {len(self.layers)}) for "
                                 f"a model of {len(self.layers)} layers, got {index!r}")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name!r}. Existing layers are: "
                         f"{[layer.name for layer in self.layers]}")

    def _like(self) -> Tensor | None:
        return next(self.parameters(), None)

    def _ensure_built(self, x: Tensor) -> None:
        if not self.built:
            self.layers[0]._check_shape(tuple(x.shape), None)  # errors quote the shape as given
            self.build((None, *x.shape[1:]))

    # -- training --------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        """Choose the optimizer (a name such as ``"adam"``, an ``rnnkit.keras.optimizers``
        optimizer such as ``Adam(learning_rate=1e-4, clipnorm=1.0)``, or a torch optimizer
        class or instance), the loss (a name or ``(y_true, y_pred) -> tensor``) and the
        metrics (names or callables) for ``fit`` and ``evaluate``."""
        spec, optimizer = optimizer, get(optimizer)  # a name or a saved config: a new optimizer
        self._compiled = dict(optimizer=optimizer, loss=None if loss is None else get_loss(loss),
                              metrics=get_metrics(metrics))
        names = isinstance(optimizer, Optimizer) and isinstance(loss, str | None) and all(
            isinstance(m, str) for m in metrics or [])
        saved = spec if isinstance(spec, str) else optimizer  # by its name, or its class and config
        self._compile_config = dict(optimizer=saved, loss=loss, metrics=metrics) if names else None
        # as in Keras, model.optimizer is the optimizer from here on (built on the weights by
        # fit); a torch optimizer class is made by fit
        self.optimizer = optimizer if isinstance(optimizer, torch.optim.Optimizer) else None

    def fit(self, x, y=None, batch_size: int | None = None, epochs: int = 1, *, verbose: int | str = 1,
            validation_split: float = 0.0, validation_data: tuple | None = None,
            shuffle: bool = True, seed: int | None = None, callbacks: list | None = None,
            sample_weight=None, class_weight: dict | None = None) -> History:
        """Train for ``epochs`` passes over ``(x, y)`` with ``rnnkit.train.fit``.

        Arguments:
            x, y: arrays of samples (numpy arrays, tensors, lists or array-likes such as
                pandas DataFrames); generators and datasets of batches are not taken.
            batch_size: samples per step; default 32, or a stateful layer's batch size.
            verbose: 0 is silent; 1 (or "auto") a progress bar on stderr and Keras's lines per
                epoch (``Epoch 1/5``, then the loss, metrics and validation values) on
                stdout; 2 the lines only.
            validation_split: the fraction of the data, taken from its end before shuffling,
                held out and evaluated after every epoch.
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``,
                evaluated after every epoch; it overrides ``validation_split``, as in Keras.
            shuffle: reshuffle the training samples every epoch.
            seed: seeds the shuffling and the loop's RNG; by default drawn from torch's
                global RNG, so ``torch.manual_seed`` makes ``fit`` repeatable.
            callbacks: ``rnnkit.keras.callbacks`` instances, called as Keras calls them (at
                the train's, each epoch's and each batch's begin and end); one may stop
                training.
            sample_weight: (N,) or, for a sequence output, (N, T) weights of each sample's
                (or step's) loss; the loss is still divided by the number of values, as in
                Keras. The metrics stay unweighted (Keras's ``metrics``; rnnkit has no
                ``weighted_metrics``).
            class_weight: ``{class id: weight}``: each sample's loss weighs as its class
                (from (N,) or (N, 1) class ids, or one-hot (N, C) targets); not with
                ``sample_weight``.

        Returns:
            A ``History``; also kept as ``model.history``.
        """
        compiled = self._require_compiled("fit")
        self._require_one_output("fit")
        callbacks = check_callbacks(callbacks)
        epochs, verbose, seed = plain(epochs), plain(verbose), plain(seed)
        data = _data.samples(x, y, like=self._like(), sample_weight=sample_weight, class_weight=class_weight)
        data, val = _data.hold_out(data, validation_split, validation_data, like=self._like())
        data = _data.with_class_weights(data, class_weight)  # the training part only, as in Keras
        self._ensure_built(data.x)
        if not self.trainable or not any(p.requires_grad for p in self.parameters()):
            frozen = "every layer has trainable=False" if self.trainable else "the model has trainable=False"
            raise ValueError(f"fit() needs a trainable weight, but {frozen} (Keras would run the epochs and "
                             "change nothing): set trainable=True, or use evaluate()")
        # compile's optimizer, built here on the trainable weights (a torch class: made here);
        # one built already also takes the weights made trainable since
        spec = compiled["optimizer"] if self.optimizer is None else self.optimizer
        _check_no_stray_rate(spec)
        self.optimizer = make_optimizer(spec, self)
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()))
        # the loop runs each parameter group at its own rate (a constant schedule; _fit keeps
        # a rate changed during training, by a callback or a torch scheduler)
        cfg = train.TrainConfig(epochs=epochs, seed=seed, progress=verbose in (1, "auto"),
                                device=str(self._like().device))
        batch_size = _data.batch_size_for(self, batch_size)
        loader = _data.tensor_loader(self, data, batch_size, shuffle=shuffle, seed=seed)
        log = _fit.epoch_log(verbose, epochs, len(loader))
        val_loader = None if val is None else _data.tensor_loader(self, val, batch_size, shuffle=False)
        params = dict(verbose=verbose, epochs=epochs, steps=len(loader))
        with training_mode(self, True):
            rows = _fit.fit_epochs(self, loader, val_loader, cfg, compiled, self.optimizer,
                                   val_targets="y" if validation_data is None else "validation_data y",
                                   callbacks=CallbackList(callbacks, model=self, **params), log=log)
        keys = ["loss", *compiled["metrics"]]
        keys += [f"val_{k}" for k in keys] if val is not None else []
        keys += [k for k in dict.fromkeys(k for row in rows for k in row) if k not in keys]  # callbacks
        self.history = History({k: [row.get(k) for row in rows] for k in keys}, list(range(len(rows))),
                               params)
        return self.history

    def evaluate(self, x, y, batch_size: int | None = None, *, verbose: int = 0,
                 sample_weight=None, return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """The loss on ``(x, y)`` (a float), or ``[loss, *metrics]`` when compiled with metrics
        (``{"loss": ..., metric: ...}`` with ``return_dict=True``), in evaluation mode; summed
        over the batches as Keras sums them (see ``_fit``). The loss is weighted by
        ``sample_weight`` as in ``fit``."""
        compiled = self._require_compiled("evaluate")
        self._require_one_output("evaluate")
        data = _data.samples(x, y, like=self._like(), sample_weight=sample_weight)
        self._ensure_built(data.x)
        loader = _data.tensor_loader(self, data, _data.batch_size_for(self, batch_size), shuffle=False)
        with training_mode(self, False):
            values = _fit.evaluate_means(self, loader, compiled, str(self._like().device))
        if return_dict:
            return {"loss": values["loss"], **{k: values[k] for k in compiled["metrics"]}}
        if not compiled["metrics"]:
            return values["loss"]
        return [values["loss"], *(values[k] for k in compiled["metrics"])]

    @torch.no_grad()
    def predict(self, x, batch_size: int | None = None, *, verbose: int = 0):
        """The outputs for ``x`` in evaluation mode, as a numpy array (a list of arrays for a
        last layer with ``return_state=True``)."""
        x_N = as_tensor(x, name="x", like=self._like())
        if x_N.dim() == 0 or x_N.shape[0] == 0:
            raise ValueError(f"x must hold at least one sample, got shape {tuple(x_N.shape)}")
        self._ensure_built(x_N)
        x_N = x_N.to(self._like().device)
        batch_size = _data.batch_size_for(self, batch_size)
        with training_mode(self, False):
            outs = [self(x_N[k:k + batch_size]) for k in range(0, x_N.shape[0], batch_size)]
        if isinstance(outs[0], list):
            return [to_numpy(torch.cat(parts)) for parts in zip(*outs, strict=True)]
        return to_numpy(torch.cat(outs))

    # -- weights ---------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Every layer's ``get_weights()``, in layer order, as Keras's ``model.get_weights()``."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: list) -> None:
        """Set every weight from numpy arrays in ``get_weights``'s order and shapes; every
        array is checked (count, then each shape, naming the layer and the weight) before any
        is written."""
        write_weights(check_model_weights(self.name, list(self.layers), weights))

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Write every weight to ``filepath`` as safetensors (Keras's layouts; see
        ``rnnkit.keras._saving``), atomically: a crash never leaves a half-written file."""
        self._require_built("save_weights")
        _saving.save_weights(list(self.layers), filepath, overwrite=overwrite)

    def load_weights(self, filepath) -> None:
        """Read ``save_weights``'s file into this model, which must have the same
        architecture; a missing file or a mismatch (the first tensor named) raises before
        any weight changes."""
        self._require_built("load_weights")
        _saving.load_weights(list(self.layers), filepath)

    def get_config(self) -> dict:
        """The architecture as plain JSON values: the name, each layer's class name and
        ``get_config()``, the built input shape, and the compile settings if they are names."""
        return _saving.model_config(self)

    def save(self, filepath, overwrite: bool = True) -> None:
        """Write the architecture (``get_config()``), the weights and, for a model compiled
        with names, the optimizer's state to one safetensors file (the JSON parts in its
        metadata), atomically. ``rnnkit.keras.load_model`` reads it back as a compiled model
        whose ``fit`` goes on from the saved optimizer state, as Keras's does."""
        self._require_built("save")
        _saving.save_model(self, filepath, overwrite=overwrite)

    # -- helpers ---------------------------------------------------------------------------
    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(f"{what}() needs a built model: give the first layer input_shape, "
                             "call build((None, timesteps, features)), or call it on data first")

    def _require_compiled(self, what: str) -> dict:
        if self._compiled is None or self._compiled["loss"] is None:
            raise RuntimeError(f"{what}() needs a compiled model with a loss: call "
                               "model.compile(optimizer=..., loss=...) first")
        return self._compiled

    def _require_one_output(self, what: str) -> None:
        if self.layers and _returns_state(self.layers[-1]):
            last = self.layers[-1]
            raise ValueError(f"{what}() needs a model whose output is one tensor, got a list "
                             f"[output, *states]: its last layer {last.describe()} has "
                             "return_state=True; build the model for training without it "
                             "(predict() returns the list)")


def _with_mask(out, mask_BT: Tensor | None, T: int | None):
    """``out`` with Keras's mask when it is a per-step output (B, T, ...) of masked inputs
    (an ``Embedding(mask_zero=True)``'s); an output without the time axis (a recurrent
    layer's last step, a list with states) keeps none, as in Keras."""
    if mask_BT is None or not isinstance(out, Tensor) or out.dim() < 3 or out.shape[1] != T:
        return out
    return set_mask(out, mask_BT)


def _returns_state(layer: Layer) -> bool:
    inner = layer.layer if isinstance(layer, Bidirectional) else layer
    return isinstance(inner, RNNLayer) and inner.return_state


def _check_no_stray_rate(optimizer) -> None:
    """``model.optimizer.learning_rate = x`` on a plain torch optimizer sets an attribute torch
    never reads: refused, rather than training at the old rate."""
    if isinstance(optimizer, torch.optim.Optimizer) and not isinstance(optimizer, Optimizer) and (
            "learning_rate" in vars(optimizer)):
        name = type(optimizer).__name__
        raise ValueError(f"model.optimizer is a torch.optim.{name}, whose rate is param_groups[i]['lr']: "
                         f"its learning_rate attribute ({optimizer.learning_rate!r}) is not read. Set the "
                         f"rate with rnnkit.keras.optimizers.set_learning_rate(model.optimizer, x), or "
                         f"compile with an rnnkit.keras.optimizers class, whose learning_rate is Keras's")
