"""What ``Sequential`` and the functional ``Model`` share, as Keras 3's ``Trainer`` holds it:
``compile``, ``fit``, ``evaluate`` and ``predict`` on rnnkit's loop (``_fit``, ``_data``),
the weights in Keras's layouts, and saving (``_saving``).

A model class provides its structure: ``_weight_layers()`` (the layers that hold weights, in
Keras's order), ``_inputs_of(x, name)`` and ``_targets_of(y, name)`` (numpy in, tensors or
``_data.Arrays`` out), ``_ensure_built(x)``, ``_heads(loss, loss_weights, metrics)`` (one
``_fit.Head`` per output), ``_summary_text()``, ``_build_hint()``, ``layers`` and
``forward``; ``get_layer``, ``summary``, ``reset_states`` and ``count_params`` are written
once, here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit import train
from rnnkit.keras import _data, _fit, _graph, _saving
from rnnkit.keras._base import (
    Layer,
    check_bool,
    check_model_weights,
    plain,
    to_numpy,
    training_mode,
    write_weights,
)
from rnnkit.keras._callback import CallbackList, check_callbacks
from rnnkit.keras._fit import Head, History
from rnnkit.keras._recurrent import RNNLayer
from rnnkit.keras.losses import get_loss, get_metrics
from rnnkit.keras.optimizers import Optimizer, get, make_optimizer


class Trainer(nn.Module):
    """The training and weights API of ``Sequential`` and ``Model``; see the module docstring.

    Training or inference, as Keras decides it: ``model(x)`` runs in inference mode (no
    dropout) and ``model(x, training=True)`` in training mode. The rule, in torch's terms: a
    model is made in ``eval()`` mode; ``fit`` switches it to ``train()`` mode and ``fit``,
    ``evaluate`` and ``predict`` leave every layer in the mode they found it in; a call with
    ``training=None`` runs in the current mode, so torch users may still call ``model.train()``
    before their own loop (and ``model.eval()`` after it).
    """

    def __init__(self, *, name: str, trainable: bool):
        super().__init__()
        self.name = name
        # the mode fit, evaluate and predict run the model in (None outside them): a layer called
        # with training= in a functional graph keeps that mode only outside them, as in Keras
        self._trainable = check_bool("trainable", trainable)
        self.optimizer: torch.optim.Optimizer | Optimizer | None = None
        self.history: History | None = None
        self._compiled: dict | None = None
        self._compile_config: dict | None = None  # compile's arguments, when all are names
        self.eval()

    # -- to be provided by each model ------------------------------------------------------
    def _weight_layers(self) -> list[Layer]:
        raise NotImplementedError

    def _inputs_of(self, x, name: str):
        raise NotImplementedError

    def _targets_of(self, y, name: str):
        raise NotImplementedError

    def _ensure_built(self, x) -> None:
        raise NotImplementedError

    def _heads(self, loss, loss_weights, metrics) -> list[Head]:
        raise NotImplementedError

    def _check_trainable_output(self, what: str) -> None:
        """Raise where the model's outputs cannot take a loss."""

    def _summary_text(self) -> str:
        raise NotImplementedError

    def _build_hint(self) -> str:
        """How to build this model, for the errors of methods that need it built."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------
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
        for layer in self._weight_layers():
            layer.trainable = value

    @property
    def built(self) -> bool:
        layers = self._weight_layers()
        return bool(layers) and all(layer.built for layer in layers)

    def count_params(self) -> int:
        """The number of weights (trainable or not), as Keras's ``count_params``."""
        self._require_built("count_params")
        return sum(p.numel() for p in self.parameters())

    def __call__(self, *args, **kwargs):
        if _graph.is_symbolic(args, kwargs):
            raise TypeError(f"model '{self.name}' was called on a symbolic tensor (from Input): nesting a "
                            "model as a layer of a functional Model is not supported in rnnkit.keras; call "
                            "its layers on the tensor instead (they share their weights with this model)")
        return super().__call__(*args, **kwargs)

    # -- structure shared by both models ---------------------------------------------------
    def get_layer(self, name: str | None = None, index: int | None = None):
        """The layer called ``name``, or at ``index`` in ``model.layers`` (a functional
        model's InputLayers included, as Keras 3's), as Keras's."""
        layers = list(self.layers)
        if (name is None) == (index is None):
            raise ValueError(f"get_layer takes a layer name or an index (one of them), got name={name!r} "
                             f"and index={index!r}")
        if index is not None:
            index = plain(index)
            n = len(layers)
            if isinstance(index, bool) or not isinstance(index, int) or not -n <= index < n:
                raise ValueError(f"index must be an int in [{-len(layers)}, {len(layers)}) for a model of "
                                 f"{len(layers)} layers, got {index!r}")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name!r}. Existing layers are: {[layer.name for layer in layers]}")

    def reset_states(self) -> None:
        """Zero the carried state of every stateful recurrent layer."""
        for module in self.modules():
            if isinstance(module, RNNLayer):
                module.reset_states()

    def summary(self, print_fn: Callable[[str], None] | None = print) -> str:
        """Keras's table: each layer's name (type), output shape and parameter count (and, for a
        functional model, the layers it is connected to), then the totals. Printed with
        ``print_fn`` (None: not printed) and returned. A Sequential before it is built shows, as
        Keras 3 does, ``?`` for each shape and ``0 (unbuilt)`` parameters."""
        text = self._summary_text()
        if print_fn is not None:
            print_fn(text)
        return text

    def _like(self) -> Tensor | None:
        return next(self.parameters(), None)

    # -- training --------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None) -> None:
        """Choose the optimizer (a name such as ``"adam"``, an ``rnnkit.keras.optimizers``
        optimizer such as ``Adam(learning_rate=1e-4, clipnorm=1.0)``, or a torch optimizer
        class or instance), the loss (a name or ``(y_true, y_pred) -> tensor``; for a model
        of several outputs one for all, or a list or a dict by output name, None for an
        output not trained), ``loss_weights`` (a list or dict of each output's weight in the
        total loss) and the metrics (names or callables; per output as a list or dict) for
        ``fit`` and ``evaluate``."""
        spec, optimizer = optimizer, get(optimizer)  # a name or a saved config: a new optimizer
        self._compiled = dict(optimizer=optimizer, heads=self._heads(loss, loss_weights, metrics))
        names = isinstance(optimizer, Optimizer) and all(
            _plain_names(v) for v in (loss, metrics)) and _plain_names(loss_weights, numbers=True)
        saved = spec if isinstance(spec, str) else optimizer  # by its name, or its class and config
        config = dict(optimizer=saved, loss=loss, metrics=metrics)
        if loss_weights is not None:  # absent otherwise: files of format 3 have no such key
            config["loss_weights"] = loss_weights
        self._compile_config = config if names else None
        # as in Keras, model.optimizer is the optimizer from here on (built on the weights by
        # fit); a torch optimizer class is made by fit
        self.optimizer = optimizer if isinstance(optimizer, torch.optim.Optimizer) else None

    def fit(self, x, y=None, batch_size: int | None = None, epochs: int = 1, *, verbose: int | str = 1,
            validation_split: float = 0.0, validation_data: tuple | None = None,
            shuffle: bool = True, seed: int | None = None, callbacks: list | None = None,
            sample_weight=None, class_weight: dict | None = None, initial_epoch: int = 0,
            steps_per_epoch: int | None = None, validation_steps: int | None = None,
            validation_batch_size: int | None = None, validation_freq=1) -> History:
        """Train for ``epochs`` passes over ``(x, y)`` with ``rnnkit.train.fit``.

        Arguments:
            x, y: arrays of samples (numpy arrays, tensors, lists or array-likes such as
                pandas DataFrames); for a functional model of several inputs (outputs) a list
                of arrays in the order of ``model.inputs`` (``outputs``) or a dict by their
                names. Generators and datasets of batches are not taken.
            batch_size: samples per step; default 32, or a stateful layer's batch size, or
                with ``steps_per_epoch`` the size that makes a pass that many steps (Keras's).
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
                the train's, each epoch's, each batch's and the validation's begin and end);
                one may stop training.
            sample_weight: (N,) or, for a sequence output, (N, T) weights of each sample's
                (or step's) loss (one such array per output, or one (N,) array for all); the
                loss is still divided by the number of values, as in Keras. The metrics stay
                unweighted (Keras's ``metrics``; rnnkit has no ``weighted_metrics``).
            class_weight: ``{class id: weight}``: each sample's loss weighs as its class
                (from (N,) or (N, 1) class ids, or one-hot (N, C) targets); not with
                ``sample_weight``, and for one output only.
            initial_epoch: the epoch to start from (0-based), as Keras's: epochs
                ``initial_epoch`` to ``epochs - 1`` run, and the callbacks and
                ``History.epoch`` number them so.
            steps_per_epoch: batches per epoch, as Keras 3 takes it for arrays: each epoch
                goes on through the data where the last one stopped, and one that reaches the
                end of the data stops there (with Keras's warning); the next starts over.
            validation_steps: evaluate only the first this many batches of the validation data.
            validation_batch_size: the validation's batch size (default ``batch_size``).
            validation_freq: validate after every k-th epoch (an int) or after the epochs
                of a list, counted from 1, as Keras's.

        Returns:
            A ``History``; also kept as ``model.history``.
        """
        compiled = self._require_compiled("fit")
        self._check_trainable_output("fit")
        callbacks = check_callbacks(callbacks)
        verbose, seed = plain(verbose), plain(seed)
        epochs = _optional_count("epochs", epochs, positive=False)
        initial_epoch = _optional_count("initial_epoch", initial_epoch, positive=False)
        steps = _optional_count("steps_per_epoch", steps_per_epoch)
        validation_steps = _optional_count("validation_steps", validation_steps)
        validation_freq = _fit.check_validation_freq(validation_freq)
        data = self._samples(x, y, sample_weight, ("x", "y"), class_weight=class_weight)
        data, val = _data.hold_out(data, validation_split, validation_data, make=self._samples)
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
        cfg = train.TrainConfig(epochs=max(epochs - initial_epoch, 1), seed=seed,
                                progress=verbose in (1, "auto"), device=str(self._like().device))
        batch_size = _data.batch_size_for(self, _steps_batch(batch_size, steps, data.x))
        loader = _data.tensor_loader(self, data, batch_size, shuffle=shuffle, seed=seed, steps=steps)
        log = _fit.epoch_log(verbose, epochs, loader.keras_steps())
        val_loader = None if val is None else self._validation_loader(
            val, validation_batch_size or _steps_batch(batch_size, validation_steps, val.x), validation_steps)
        params = dict(verbose=verbose, epochs=epochs, steps=loader.keras_steps())
        with training_mode(self, True):
            rows = _fit.fit_epochs(self, loader, val_loader, cfg, compiled, self.optimizer,
                                   val_targets="y" if validation_data is None else "validation_data y",
                                   callbacks=CallbackList(callbacks, model=self, **params), log=log,
                                   initial_epoch=initial_epoch, validation_freq=validation_freq,
                                   run=epochs > initial_epoch)
        self.history = _history(rows, compiled, validated=val is not None, initial_epoch=initial_epoch,
                                params=params)
        return self.history

    def _validation_loader(self, val: _data.Samples, batch_size: int, steps: int | None
                           ) -> _data.SampleLoader:
        """``fit``'s validation batches: the first ``steps`` (``validation_steps``) of them."""
        loader = _data.tensor_loader(self, val, _data.batch_size_for(self, batch_size), shuffle=False,
                                     limit=steps)
        if steps and steps > len(loader):  # as Keras's EpochIterator warns
            warnings.warn(f"validation_steps={steps} is more than the validation data's {len(loader)} "
                          "batches: Your input ran out of data", stacklevel=3)
        return loader

    def evaluate(self, x, y, batch_size: int | None = None, *, verbose: int = 0, sample_weight=None,
                 steps: int | None = None, callbacks: list | None = None,
                 return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """The loss on ``(x, y)`` (a float), or ``[loss, *metrics]`` when compiled with metrics
        or several outputs (``{"loss": ..., name: ...}`` with ``return_dict=True``), in
        evaluation mode; summed over the batches as Keras sums them (see ``_fit``). The loss
        is weighted by ``sample_weight`` as in ``fit``. ``steps``: only the first this many
        batches. ``callbacks``: their ``on_test_*`` hooks are called, as Keras's."""
        compiled = self._require_compiled("evaluate")
        self._check_trainable_output("evaluate")
        callbacks = check_callbacks(callbacks)
        steps = _optional_count("steps", steps)
        data = self._samples(x, y, sample_weight, ("x", "y"))
        self._ensure_built(data.x)
        batch_size = _data.batch_size_for(self, _steps_batch(batch_size, steps, data.x))
        loader = _data.tensor_loader(self, data, batch_size, shuffle=False, limit=steps)
        params = dict(verbose=plain(verbose), epochs=1, steps=loader.keras_steps())
        with training_mode(self, False):
            values = _fit.evaluate_means(self, loader, compiled, str(self._like().device),
                                         callbacks=CallbackList(callbacks, model=self, **params))
        if return_dict:
            return values
        if len(values) == 1:
            return values["loss"]
        return list(values.values())

    @torch.no_grad()
    def predict(self, x, batch_size: int | None = None, *, verbose: int = 0, steps: int | None = None,
                callbacks: list | None = None):
        """The outputs for ``x`` in evaluation mode, as a numpy array (a list of arrays for
        several outputs, or a last layer with ``return_state=True``). ``steps``: only the
        first this many batches. ``callbacks``: their ``on_predict_*`` hooks are called, as
        Keras's."""
        callbacks = check_callbacks(callbacks)
        steps = _optional_count("steps", steps)
        x_N = self._inputs_of(x, "x")
        N = _data.rows(x_N)
        if N == 0:
            raise ValueError(f"x must hold at least one sample, got shape {_data._shapes(x_N)}")
        self._ensure_built(x_N)
        batch_size = _data.batch_size_for(self, _steps_batch(batch_size, steps, x_N))
        starts = list(range(0, N, batch_size))[:steps]
        calls = CallbackList(callbacks, model=self, verbose=plain(verbose), epochs=1, steps=len(starts))
        self.stop_predicting = False
        calls.call("on_predict_begin", {})
        outs = []
        with training_mode(self, False):
            for index, start in enumerate(starts):
                calls.call("on_predict_batch_begin", index, {})
                outs.append(self(x_N[start:start + batch_size]))
                calls.call("on_predict_batch_end", index, {"outputs": outs[-1]})
                if self.stop_predicting:
                    break
        calls.call("on_predict_end", {})
        if isinstance(outs[0], list):
            return [to_numpy(torch.cat(parts)) for parts in zip(*outs, strict=True)]
        return to_numpy(torch.cat(outs))

    def _samples(self, x, y, sample_weight, names: tuple[str, str], *, class_weight=None) -> _data.Samples:
        """``fit``/``evaluate``'s data as the model's tensors (``_data.samples``)."""
        x_name, y_name = names
        if y is None:  # a generator or a DataLoader of batches, most likely: samples() says so
            return _data.samples(x, y, like=self._like(), names=names)
        x, y = self._inputs_of(x, x_name), self._targets_of(y, y_name)
        if isinstance(sample_weight, dict):  # per output, by name
            sample_weight = self._by_output(sample_weight, "sample_weight")
        return _data.samples(x, y, like=self._like(), sample_weight=sample_weight, class_weight=class_weight,
                             names=names)

    def _by_output(self, values: dict, name: str) -> list:
        raise ValueError(f"{name} may be a dict by output name only for a functional Model, got {values!r}")

    # -- weights ---------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Every layer's ``get_weights()``, in layer order, as Keras's ``model.get_weights()``."""
        return [w for layer in self._weight_layers() for w in layer.get_weights()]

    def set_weights(self, weights: list) -> None:
        """Set every weight from numpy arrays in ``get_weights``'s order and shapes; every
        array is checked (count, then each shape, naming the layer and the weight) before any
        is written."""
        write_weights(check_model_weights(self.name, self._weight_layers(), weights))

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Write every weight to ``filepath`` as safetensors (Keras's layouts; see
        ``rnnkit.keras._saving``), atomically: a crash never leaves a half-written file."""
        self._require_built("save_weights")
        _saving.save_weights(self._weight_layers(), filepath, overwrite=overwrite)

    def load_weights(self, filepath) -> None:
        """Read ``save_weights``'s file into this model, which must have the same
        architecture; a missing file or a mismatch (the first tensor named) raises before
        any weight changes."""
        self._require_built("load_weights")
        _saving.load_weights(self._weight_layers(), filepath)

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
            raise ValueError(f"{what}() needs a built model, and '{self.name}' is not built: "
                             f"{self._build_hint()}")

    def _require_compiled(self, what: str) -> dict:
        if self._compiled is None or all(head.loss is None for head in self._compiled["heads"]):
            raise RuntimeError(f"{what}() needs a compiled model with a loss: call "
                               "model.compile(optimizer=..., loss=...) first")
        return self._compiled


def _history(rows: list[dict[str, float]], compiled: dict, *, validated: bool, initial_epoch: int,
             params: dict) -> History:
    """As Keras's ``History``: each key's values of the epochs that reported it (``val_*``
    only those ``validation_freq`` picked), the compiled values first, then what callbacks
    added; ``epoch`` counts from ``initial_epoch``."""
    keys = _fit.EpochMeans(compiled["heads"]).names()
    keys += [f"val_{k}" for k in keys] if validated else []
    keys += [k for k in dict.fromkeys(k for row in rows for k in row) if k not in keys]
    history = {k: [row[k] for row in rows if k in row] for k in keys}
    return History({k: v for k, v in history.items() if v},
                   list(range(initial_epoch, initial_epoch + len(rows))), params)


def one_head(loss, loss_weights, metrics, output: str | None) -> list[Head]:
    """The ``Head`` of a model of one output (named ``output``), whose values carry no prefix,
    from compile's settings as Keras 3 takes them for one output (``CompileLoss``,
    ``CompileMetrics``): ``loss`` a loss, a list of one or a dict by the output's name;
    ``loss_weights`` a number, a list of one or a dict of one; ``metrics`` a list, or a dict
    by the output's name."""
    if isinstance(loss, dict):
        if list(loss) != [output]:
            raise ValueError(f"Expected keys {[output]} in loss dict, but found loss.keys()={list(loss)}")
        loss = loss[output]
    elif isinstance(loss, list | tuple):
        if len(loss) != 1:
            raise ValueError(f"loss for a model of one output must be one loss (or a list of one), got a "
                             f"list of {len(loss)}")
        loss = loss[0]
    if loss_weights is not None:
        weights = list(loss_weights.values()) if isinstance(loss_weights, dict) else loss_weights
        weights = weights if isinstance(weights, list | tuple) else [weights]
        if len(weights) != 1 or isinstance(plain(weights[0]), bool) or not isinstance(
                plain(weights[0]), int | float):
            raise ValueError(f"loss_weights for a model of one output must be a number, a list of one or a "
                             f"dict of one, got {loss_weights!r}")
        loss_weights = float(plain(weights[0]))
    if isinstance(metrics, dict):
        unknown = [k for k in metrics if k != output]
        if unknown:
            raise ValueError(f"In the dict argument `metrics`, key '{unknown[0]}' does not correspond to any "
                             f"model output (the output is '{output}'), got metrics={metrics!r}")
        metrics = metrics.get(output)
        metrics = metrics if metrics is None or isinstance(metrics, list | tuple) else [metrics]
    return [Head(None, None if loss is None else get_loss(loss), loss_weights, get_metrics(metrics))]


def _plain_names(value, *, numbers: bool = False) -> bool:
    """A name (or, with ``numbers``, a number), None, or lists and dicts of them: what a
    saved model's compile settings may hold."""
    if value is None or isinstance(value, str) or (numbers and isinstance(plain(value), int | float)):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_names(v, numbers=numbers) for k, v in value.items())
    return isinstance(value, list | tuple) and all(_plain_names(v, numbers=numbers) for v in value)


def _optional_count(name: str, value, *, positive: bool = True) -> int | None:
    value = plain(value)
    if value is None and positive:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < (1 if positive else 0):
        want = "a positive int or None" if positive else "an int >= 0"
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return value


def _steps_batch(batch_size, steps: int | None, x) -> int | None:
    """Keras's batch size for arrays with ``steps`` and no ``batch_size``: what makes one pass
    over the data ``steps`` batches (ceil(N / steps))."""
    if batch_size is not None or steps is None:
        return batch_size
    return -(-_data.rows(x) // steps)


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
