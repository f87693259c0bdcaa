"""Keras's functional ``Model(inputs, outputs)``: a graph of layer calls on the symbolic
tensors of ``Input``s (``rnnkit.keras._graph``), run in order on real tensors.

    encoder_inputs = Input(shape=(None, num_encoder_tokens))
    _, state_h, state_c = LSTM(latent_dim, return_state=True)(encoder_inputs)
    decoder_inputs = Input(shape=(None, num_decoder_tokens))
    decoder_outputs, _, _ = LSTM(latent_dim, return_sequences=True, return_state=True)(
        decoder_inputs, initial_state=[state_h, state_c])
    decoder_outputs = Dense(num_decoder_tokens, activation="softmax")(decoder_outputs)
    model = Model([encoder_inputs, decoder_inputs], decoder_outputs)

Training, evaluation, weights and saving are ``Trainer``'s, shared with ``Sequential``. Data
for several inputs (outputs) is a list of arrays in the order of ``model.inputs``
(``model.outputs``) or a dict by the Inputs' (the output layers') names. An
``Embedding(mask_zero=True)``'s mask flows along the graph as in ``Sequential``: each layer
gets its input's mask and hands on ``output_mask``; merge layers combine theirs
(``rnnkit.keras._merge``); an output with the time axis keeps its mask for the loss.
"""

from __future__ import annotations

from torch import Tensor, nn

from rnnkit.keras import _data
from rnnkit.keras._base import Layer, as_tensor, training_mode
from rnnkit.keras._fit import Head
from rnnkit.keras._graph import KerasTensor, map_graph
from rnnkit.keras._graph_config import functional_config
from rnnkit.keras._summary import render_functional_summary
from rnnkit.keras._trainer import Trainer, one_head
from rnnkit.keras.losses import get_loss, get_metrics, with_mask


class Model(Trainer):
    """Keras's functional model: the layers between ``inputs`` and ``outputs``, which share
    their weights with every other model built on the same layers (an inference model made
    from a trained one, as Keras's seq2seq example does).

    Arguments:
        inputs: an ``Input``'s tensor, or a list of them.
        outputs: a tensor made from ``inputs`` by calling layers, or a list of them; the model
            returns one tensor, or a list, as given.
        name: the model's name in ``summary()``.
        trainable: False freezes every layer (see ``trainable``).
    """

    def __init__(self, inputs, outputs, *, name: str = "functional", trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self._single_input = isinstance(inputs, KerasTensor)
        self._single_output = isinstance(outputs, KerasTensor)
        self.inputs = _tensors("inputs", inputs)
        self.outputs = _tensors("outputs", outputs)
        for k, tensor in enumerate(self.inputs):
            tensor.input_layer(f"inputs[{k}]" if not self._single_input else "inputs")
        self._nodes, layers = map_graph(self.inputs, self.outputs)
        _check_unique_names(layers)
        self.layers = layers  # Keras's model.layers: InputLayers first, by depth
        self._weighted = nn.ModuleList([layer for layer in layers if isinstance(layer, Layer)])
        self.eval()
        if not trainable:
            self.trainable = False

    # -- structure -------------------------------------------------------------------------
    @property
    def input(self):
        """Keras's ``model.input``: the input tensor, or the list of them."""
        return self.inputs[0] if self._single_input else list(self.inputs)

    @property
    def output(self):
        return self.outputs[0] if self._single_output else list(self.outputs)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        """Each output's name, for a dict of targets and the reported values: the name of the
        layer that makes it (``_1``, ``_2`` after a repeat, as several states of one layer)."""
        names: list[str] = []
        for tensor in self.outputs:
            base, k, name = tensor.name, 0, tensor.name
            while name in names:
                k += 1
                name = f"{base}_{k}"
            names.append(name)
        return names

    def _weight_layers(self) -> list[Layer]:
        return list(self._weighted)

    @property
    def built(self) -> bool:
        return all(layer.built for layer in self._weighted)  # built by the symbolic calls

    def _build_hint(self) -> str:
        return "a functional model is built by the calls of its layers on Input tensors"

    def _summary_text(self) -> str:
        return render_functional_summary(self.name, self.layers, self._nodes, list(self.parameters()),
                                         trainable=self.trainable)

    def get_config(self) -> dict:
        """The graph as plain JSON values (``_graph_config``), the compile settings if they are
        names."""
        return functional_config(self)

    # -- forward ---------------------------------------------------------------------------
    def forward(self, inputs, *, training: bool | None = None):
        """Run the graph on ``inputs``: one array for a model of one input, else a list in the
        order of ``model.inputs`` or a dict by the Inputs' names. ``training`` as in
        ``Sequential``, except that a layer called with ``training=`` in the graph
        (``Dropout(0.5)(x, training=True)``) always runs in that mode, in ``predict`` too (the
        Monte Carlo dropout idiom): Keras 3's layers take an argument given to their call
        over the call context's. Returns a tensor, or a list of them as the outputs were
        given."""
        values = self._bind(inputs)
        if training is None:
            return self._run(values)
        with training_mode(self, training):
            return self._run(values)

    def _run(self, values: list[Tensor]):
        known: dict[int, tuple[Tensor, Tensor | None]] = {
            id(t): (v, None) for t, v in zip(self.inputs, values, strict=True)}

        def get(arg, k: int):
            if isinstance(arg, list):
                return [known[id(t)][k] for t in arg]
            return known[id(arg)][k]

        for node in self._nodes:
            if node.is_input:
                continue
            x, mask = get(node.args, 0), get(node.args, 1)
            kwargs = {} if node.initial_state is None else {"initial_state": get(node.initial_state, 0)}
            if node.training is not None:  # the mode recorded by the symbolic call
                kwargs["training"] = node.training
            out = node.layer(x, mask=mask, **kwargs)
            outs = [out] if node.single else list(out)
            masks = [node.layer.output_mask(x, mask)] + [None] * (len(outs) - 1)  # states keep none
            known.update({id(t): (v, m) for t, v, m in zip(node.outputs, outs, masks, strict=True)})
        results = [with_mask(*known[id(t)]) for t in self.outputs]
        return results[0] if self._single_output else results

    def _bind(self, inputs) -> list[Tensor]:
        """``inputs`` as one tensor per Input, in order, checked against the Inputs' shapes."""
        return list(self._inputs_of(inputs, "inputs", keep_one=False))

    # -- what Trainer asks of a model -----------------------------------------------------
    def _inputs_of(self, x, name: str, *, keep_one: bool = True):
        """One tensor (a model of one input, for the loader) or ``_data.Arrays`` in input order."""
        arrays = _structure(x, name, self.input_names, what="input", one=self._single_input)
        like = self._like()
        tensors = [as_tensor(a, name=n, like=like) for a, n in arrays]
        for (_, label), tensor, spec in zip(arrays, tensors, self.inputs, strict=True):
            _check_input_shape(label, tuple(tensor.shape), spec)
        if len({t.shape[0] for t in tensors}) > 1:
            raise ValueError(f"{name} must hold as many samples in every input, got shapes "
                             f"{[tuple(t.shape) for t in tensors]}")
        if keep_one and len(tensors) == 1:
            return tensors[0]
        return _data.Arrays(*tensors)

    def _targets_of(self, y, name: str):
        arrays = _structure(y, name, self.output_names, what="output", one=len(self.outputs) == 1)
        tensors = [as_tensor(a, name=n, like=self._like()) for a, n in arrays]
        return tensors[0] if len(tensors) == 1 else _data.Arrays(*tensors)

    def _by_output(self, values: dict, name: str) -> list:
        return [value for value, _ in _structure(values, name, self.output_names, what="output", one=False)]

    def _ensure_built(self, x) -> None:
        pass  # built by the symbolic calls

    def _heads(self, loss, loss_weights, metrics) -> list[Head]:
        if len(self.outputs) == 1:
            return one_head(loss, loss_weights, metrics, self.output_names[0])
        names = self.output_names
        losses = _per_output("loss", loss, names)
        weights = _per_output("loss_weights", loss_weights, names)
        per_metrics = _per_output("metrics", metrics, names)
        heads = []
        for name, fn, weight, wanted in zip(names, losses, weights, per_metrics, strict=True):
            found = get_metrics(wanted if isinstance(wanted, list | tuple) or wanted is None else [wanted])
            heads.append(Head(name, None if fn is None else get_loss(fn),
                              None if weight is None else float(weight),
                              {f"{name}_{k}": f for k, f in found.items()}))
        return heads


def _tensors(what: str, value) -> list[KerasTensor]:
    items = [value] if isinstance(value, KerasTensor) else value
    if not isinstance(items, list | tuple) or not items or not all(isinstance(t, KerasTensor) for t in items):
        got = [type(t).__name__ for t in items] if isinstance(items, list | tuple) else type(value).__name__
        raise TypeError(f"{what} of a Model must be a symbolic tensor (from Input, or a layer called on "
                        f"one) or a non-empty list of them, got {got}")
    return list(items)


def _check_unique_names(layers: list) -> None:
    """A ValueError where two layers of the model share a name, as Keras 3's ``map_graph``
    raises (names are fixed when a layer is made; a model never renames one)."""
    seen: dict[str, object] = {}
    for layer in layers:
        other = seen.setdefault(layer.name, layer)
        if other is not layer:
            raise ValueError(f'The name "{layer.name}" is used by 2 layers in the model, {_which(other)} and '
                             f"{_which(layer)}: all layer names in a model must be unique, as in Keras 3 "
                             "(pass name= to one of them)")


def _which(layer) -> str:
    """A layer by its name, type and what it makes, to tell two of one name apart."""
    return f"{layer.describe()} of output shape {layer._inbound_nodes[0].outputs[0].shape}"


def _structure(data, name: str, names: list[str], *, what: str, one: bool) -> list[tuple[object, str]]:
    """``data`` as one (array, label) per input (output): a list in order, a dict by name, or
    for a model of one, the array itself."""
    n = len(names)
    if isinstance(data, dict):
        unknown, missing = set(data) - set(names), [k for k in names if k not in data]
        if unknown or missing:
            raise ValueError(f"{name} as a dict must have one array per {what}, keyed by name {names}, got "
                             f"keys {sorted(data, key=str)}")
        return [(data[k], f"{name}['{k}']") for k in names]
    if isinstance(data, list | tuple) and (not one or (len(data) == 1 and _is_array(data[0]))):
        if len(data) != n or not all(_is_array_like(a) for a in data):
            raise ValueError(f"{name} must be a list of {n} arrays (one per {what}: {names}), got "
                             f"{_describe(data)}")
        return [(a, f"{name}[{k}] ({what} '{names[k]}')") for k, a in enumerate(data)]
    if not one:
        raise ValueError(f"{name} must be a list of {n} arrays (one per {what}: {names}) or a dict by name, "
                         f"got {_describe(data)}")
    return [(data, name)]


def _is_array_like(value) -> bool:
    return isinstance(value, Tensor | list | tuple) or hasattr(value, "__array__")


def _is_array(value) -> bool:
    """An array, not a list: what tells ``[x]`` (a list of one input) from a list of samples."""
    return isinstance(value, Tensor) or hasattr(value, "__array__")


def _describe(data) -> str:
    if isinstance(data, list | tuple):
        return f"a {type(data).__name__} of {len(data)}: {[type(a).__name__ for a in data]}"
    shape = getattr(data, "shape", None)
    return f"{type(data).__name__}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def _check_input_shape(label: str, shape: tuple, spec: KerasTensor) -> None:
    want = spec.shape
    if len(shape) != len(want) or any(
            w is not None and w != s for w, s in zip(want[1:], shape[1:], strict=True)):
        raise ValueError(f"{label} must have shape {want} (batch first; None: any size), as its Input, "
                         f"got {shape}")


def _per_output(arg: str, value, names: list[str]) -> list:
    """``compile``'s ``arg`` as one entry per output: a dict by output name (absent: None),
    a list with one entry per output, or (``loss`` only, or None) one value for all."""
    n = len(names)
    if value is None:
        return [None] * n
    if isinstance(value, dict):
        # Keras 3's CompileLoss.build; a weight left out would silently weigh 1
        if arg in ("loss", "loss_weights") and set(value) != set(names):
            hint = "None for an output not trained" if arg == "loss" else "0 for an output not trained"
            raise ValueError(f"Expected keys {names} in {arg} dict, but found {arg}.keys()={list(value)} "
                             f"({hint})")
        unknown = set(value) - set(names)
        if unknown:
            raise ValueError(f"{arg} as a dict must be keyed by output names {names}, got unknown keys "
                             f"{sorted(unknown)}")
        return [value.get(k) for k in names]
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ValueError(f"{arg} for a model of {n} outputs {names} must be a list with one entry per "
                             f"output (or a dict by output name), got a list of {len(value)}")
        return list(value)
    if arg == "loss":  # one loss for every output, as Keras applies it
        return [value] * n
    raise ValueError(f"{arg} for a model of {n} outputs {names} must be a list with one entry per output or "
                     f"a dict by output name, got {value!r}")
