"""Keras's recurrent layers as front ends over ``rnnkit.Recurrent`` and rnnkit's cells, so
every rnnkit executor (the fused torch ops, the reference loop) runs them.

Keras's conventions, and how they map:

- Parameters: Keras's ``SimpleRNN`` and ``LSTM`` have one bias, torch and rnnkit cells two
  (``bias_ih``, ``bias_hh``). The cell is built without biases on the input plus a constant
  1 feature: the last column of ``weight_ih`` is Keras's bias, so the function and the
  parameter count are Keras's, e.g. ``SimpleRNN(50)`` on 1 feature: 50 * (1 + 50 + 1) = 2600.
  ``GRU`` (Keras's default ``reset_after=True``) has two biases in Keras too, laid out as
  torch's ``bias_ih``/``bias_hh``; ``GRU(reset_after=False)`` has one, added as above.
- Initialisation: Glorot-uniform input kernel, orthogonal recurrent kernel, zero bias, and
  ``LSTM``'s forget-gate bias 1 (Keras's ``unit_forget_bias``).
- ``dropout``: one mask per sequence on the inputs (``LockedDropout``); ``recurrent_dropout``:
  one mask per sequence on h (``RecurrentDropout``). Keras draws one mask per gate; rnnkit
  draws one for all gates.
- ``go_backwards``: ``Recurrent(reverse=True)``; with ``return_sequences`` the outputs come
  in processing order (last step first) over the whole padded row, as in Keras: a masked row
  [x1, x2, x3, pad, pad] gives [0, 0, o3, o2, o1] (Keras 3's own test expects this layout),
  and the mask handed on is the input's, not reversed, as Keras hands it on.
- Masked steps output zeros, as in Keras's ``Bidirectional`` and its cuDNN path; Keras's
  generic loop (``zero_output_for_mask=False``) repeats the last output there instead. The
  states and the real steps' outputs are the same either way.
- ``stateful``: Keras keeps the final state in the layer. This front end does too (rnnkit's
  layers keep none): each call starts from the previous call's final state (detached), for
  a batch size fixed by ``batch_input_shape`` or the first call; ``reset_states()`` zeroes it.
- ``get_weights``: Keras's ``kernel`` (I, G), ``recurrent_kernel`` (H, G) and ``bias`` (G,)
  ((2, 3H) for ``GRU(reset_after=True)``), read from the cell's parameters: transposed, the
  bias column split off, GRU's rows r, z, n reordered as Keras's z, r, h. A
  ``Bidirectional``'s are the forward layer's, then the backward layer's, as in Keras 3
  (keras/src/layers/rnn/bidirectional.py sets ``forward_layer`` before ``backward_layer``,
  and ``Layer.weights`` lists sub-layers in the order they were set).
- ``return_state``: ``[output, h]`` (``[output, h, c]`` for LSTM; Bidirectional adds the
  backward layer's states after the forward ones), as Keras returns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import ElmanCell, GRUCell, HiddenState, LSTMCell, LSTMState
from rnnkit.cells.base import Cell, core_cell
from rnnkit.cells.wrappers import RecurrentDropout
from rnnkit.keras._base import (
    Layer,
    Shape,
    as_tensor,
    check_features,
    check_mask,
    check_positive_int,
    check_rate,
)
from rnnkit.keras._core import get_activation
from rnnkit.keras._weights import KerasWeight, swap_first_blocks
from rnnkit.layers import Bidirectional as _Bidirectional
from rnnkit.layers import LockedDropout, Recurrent, lengths_to_mask
from rnnkit.train.tbptt import detach_state, map_state


class RNNLayer(Layer):
    """The shared machinery of ``SimpleRNN``, ``LSTM`` and ``GRU``; see the module docstring.

    Shapes:
        inputs (B, T, I); output (B, T, O) with ``return_sequences`` else (B, O), where O is
        ``units`` (2 * units for a concatenating ``Bidirectional``); states (B, units) each.
    """

    _gates = 1  # weight rows per unit: 1, 4 (LSTM) or 3 (GRU)

    def __init__(self, units: int, *, use_bias: bool = True, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, backend: str = "auto",
                 **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.use_bias, self.return_sequences, self.return_state = use_bias, return_sequences, return_state
        self.go_backwards, self.stateful, self.backend = go_backwards, stateful, backend
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.merge_mode: str | None = None  # set by Bidirectional
        self._states = None  # stateful only: the last call's final state, detached
        self._batch_size = self.batch_input_shape[0] if self.batch_input_shape else None

    # -- the cell: one per layer and direction -----------------------------------------------
    def _make_cell(self, input_size: int) -> Cell:
        raise NotImplementedError

    def _one_bias(self) -> bool:
        """Keras has one bias here: it becomes the weight of a constant-1 input feature."""
        return self.use_bias

    def _state_type(self):
        return HiddenState

    def _recurrent(self, features: int, *, reverse: bool) -> Recurrent:
        ones = int(self._one_bias())
        cell = self._make_cell(features + ones)
        with torch.no_grad():
            nn.init.xavier_uniform_(cell.weight_ih[:, :features])
            cell.weight_ih[:, features:].zero_()
            nn.init.orthogonal_(cell.weight_hh)
            for bias in (cell.bias_ih, cell.bias_hh):
                if bias is not None:
                    bias.zero_()
            if ones and self._gates == 4:  # LSTM gates i, f, g, o: forget-gate bias 1
                cell.weight_ih[self.units:2 * self.units, features:] = 1.0
        if self.recurrent_dropout:
            cell = RecurrentDropout(cell, self.recurrent_dropout)
        return Recurrent(cell, reverse=reverse, backend=self.backend)

    # -- build -----------------------------------------------------------------------------
    def _check_shape(self, shape: Shape, built: Shape | None) -> None:
        check_features(self, shape, built, rank="3-D (batch, timesteps, features)", ndim=3)
        if shape[1] == 0:  # here, before forward adds the bias column to the shape
            raise ValueError(f"inputs of {self.describe()} must have at least one time step, "
                             f"got shape {shape}")

    def _build(self, input_shape: Shape) -> None:
        if self._batch_size is None:  # a batch size the model was built for (batch_input_shape
            self._batch_size = input_shape[0]  # on its first layer) is a stateful layer's, as in Keras
        features = input_shape[-1]
        if self.merge_mode is None:
            self.rnn = self._recurrent(features, reverse=self.go_backwards)
        else:
            self.rnn = _Bidirectional(self._recurrent(features, reverse=False),
                                      self._recurrent(features, reverse=True), merge=self.merge_mode)
        self.input_dropout = LockedDropout(self.dropout)

    def compute_output_shape(self, input_shape: Shape) -> Shape | list[Shape]:
        B, T = input_shape[0], input_shape[1]
        out = self.units * (2 if self.merge_mode == "concat" else 1)
        shape = (B, T, out) if self.return_sequences else (B, out)
        if not self.return_state:
            return shape
        directions = 1 if self.merge_mode is None else 2
        return [shape] + [(B, self.units)] * (len(self._state_type()._fields) * directions)

    def output_mask(self, inputs: Tensor, mask: Tensor | None) -> Tensor | None:
        return mask if self.return_sequences else None

    def check_initial_state(self, shapes: list[Shape]) -> None:
        n = len(self._state_type()._fields) * (1 if self.merge_mode is None else 2)
        if len(shapes) != n or any(len(s) != 2 or s[1] != self.units for s in shapes):
            raise ValueError(f"initial_state of {self.describe()} must be a list of {n} tensors of shape "
                             f"(batch, {self.units}), got shapes {shapes}")

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias,
                **{k: getattr(self, k) for k in ("return_sequences", "return_state", "go_backwards",
                                                 "stateful", "dropout", "recurrent_dropout", "backend")}}

    # -- weights ---------------------------------------------------------------------------
    def _keras_rows(self) -> Tensor | None:
        """Keras's gate order as rows of the cell's (None: the cell's own order)."""
        return None

    def keras_weights(self) -> dict[str, KerasWeight]:
        if self.merge_mode is None:
            return self._cell_weights(self.rnn)
        return {f"{side}/{name}": weight
                for side, rnn in (("forward", self.rnn.fwd), ("backward", self.rnn.bwd))
                for name, weight in self._cell_weights(rnn).items()}

    def _cell_weights(self, rnn: Recurrent) -> dict[str, KerasWeight]:
        cell, features, rows = core_cell(rnn.cell), self.input_shape[-1], self._keras_rows()
        weights = {"kernel": KerasWeight((cell.weight_ih[:, :features],), rows=rows),
                   "recurrent_kernel": KerasWeight((cell.weight_hh,), rows=rows)}
        if self._one_bias():  # the weights of the constant-1 input column
            weights["bias"] = KerasWeight((cell.weight_ih[:, features],), rows=rows)
        elif self.use_bias:  # GRU(reset_after=True): Keras stacks the two as (2, 3H)
            weights["bias"] = KerasWeight((cell.bias_ih, cell.bias_hh), rows=rows)
        return weights

    # -- call ------------------------------------------------------------------------------
    def forward(self, inputs, *, initial_state=None, mask: Tensor | None = None,
                lengths: Tensor | None = None):
        """Run over ``inputs`` (B, T, I); ``initial_state`` is a list of (B, units) tensors
        (``[h]``, ``[h, c]`` for LSTM, the forward's then the backward's for Bidirectional);
        ``mask`` (B, T) bool is Keras's, True at the steps to read (any pattern); ``lengths``
        (B,), rnnkit's, are the real lengths of rows padded at the end (one or the other)."""
        x_BTI = self._input(inputs)
        B, T, _ = x_BTI.shape
        mask_BT = check_mask(mask, lengths, B, T, device=x_BTI.device, where=self.describe())
        state = self._start_state(B, initial_state, like=x_BTI)
        x_BTI = self.input_dropout(x_BTI)
        if self._one_bias():
            x_BTI = torch.cat([x_BTI, x_BTI.new_ones(B, T, 1)], dim=-1)
        out_BTO, state = self._run(x_BTI, state, mask_BT)
        if self.stateful:
            self._states = detach_state(state)
        if self.return_sequences:
            # Keras reverses the padded rows whole: padding first, then the last real step's output
            output = out_BTO.flip(1) if self.go_backwards else out_BTO
        else:
            output = self._last_output(state)
        return [output, *self._state_list(state)] if self.return_state else output

    def _run(self, x_BTI: Tensor, state, mask_BT: Tensor | None):
        """The recurrence over the steps ``mask_BT`` keeps; outputs at the others are 0."""
        if mask_BT is None:
            return self.rnn(x_BTI, state)
        lengths_B = mask_BT.sum(dim=1)
        if bool((lengths_B > 0).all()) and torch.equal(mask_BT, lengths_to_mask(lengths_B, mask_BT.shape[1])):
            return self.rnn(x_BTI, state, lengths=lengths_B)  # padding at the ends: rnnkit's lengths
        # Keras carries the state over a masked step, so running each row's real steps moved to
        # its front, in order, is exact; the outputs are then put back in place
        order_BT = torch.argsort((~mask_BT).to(torch.int8), dim=1, stable=True)
        out_BTO, final = self.rnn(x_BTI.gather(1, order_BT[..., None].expand_as(x_BTI)), state,
                                  lengths=lengths_B.clamp(min=1))
        out_BTO = out_BTO.new_zeros(out_BTO.shape).scatter(1, order_BT[..., None].expand_as(out_BTO), out_BTO)
        out_BTO = torch.where(mask_BT[..., None], out_BTO, 0.0)  # a row of only padding ran a step
        empty_B = lengths_B == 0
        if bool(empty_B.any()):  # ... and keeps the state it started from
            start = state if state is not None else map_state(torch.zeros_like, final)
            final = _keep(final, start, empty_B)
        return out_BTO, final

    def reset_states(self) -> None:
        """Forget the carried state (stateful layers): the next call starts from zeros."""
        self._states = None

    def _start_state(self, B: int, initial_state, *, like: Tensor):
        if self.stateful:
            if self._batch_size is None:
                self._batch_size = B
            if B != self._batch_size:
                raise ValueError(
                    f"{self.describe()} is stateful with batch_size {self._batch_size} (from "
                    f"batch_input_shape or its first call), got a batch of {B}; the number of "
                    f"samples must be a multiple of batch_size, or call with batch_size="
                    f"{self._batch_size}")
        if initial_state is not None:
            return self._state_from_list(initial_state, like)
        return self._states if self.stateful else None

    def _state_from_list(self, states, like: Tensor):
        kind = self._state_type()
        n = len(kind._fields) * (1 if self.merge_mode is None else 2)
        if not isinstance(states, list | tuple) or len(states) != n:
            got = f"{len(states)} items" if isinstance(states, list | tuple) else type(states).__name__
            raise ValueError(f"initial_state of {self.describe()} must be a list of {n} (batch, "
                             f"{self.units}) tensors, got {got}")
        tensors = [as_tensor(s, name="initial_state", like=like, kind="float") for s in states]
        per = len(kind._fields)
        parts = [kind(*tensors[k:k + per]) for k in range(0, n, per)]
        return parts[0] if self.merge_mode is None else tuple(parts)

    def _last_output(self, state) -> Tensor:
        if self.merge_mode is None:
            return state.h
        return _merge(self.merge_mode, state[0].h, state[1].h)

    def _state_list(self, state) -> list[Tensor]:
        return list(state) if self.merge_mode is None else [*state[0], *state[1]]

    def extra_repr(self) -> str:
        flags = [k for k in ("return_sequences", "return_state", "go_backwards", "stateful")
                 if getattr(self, k)]
        return ", ".join([f"units={self.units}", *(f"{k}=True" for k in flags)])


class SimpleRNN(RNNLayer):
    """Keras ``SimpleRNN``: ``h' = activation(x W + h U + b)`` (rnnkit's ``ElmanCell``).

    Arguments: ``units``, ``activation`` (a Keras activation's name; "tanh" and "relu" run
    rnnkit's fused kernels, the others its reference loop), and those of ``RNNLayer``:
    ``use_bias``, ``return_sequences``, ``return_state``, ``go_backwards``, ``stateful``,
    ``dropout``, ``recurrent_dropout``, ``backend``, ``input_shape``, ``batch_input_shape``,
    ``name``.
    """

    def __init__(self, units: int, activation: str | None = "tanh", **kwargs):
        self.activation = _activation_name("activation", activation)
        super().__init__(units, **kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation}

    def _make_cell(self, input_size: int) -> Cell:
        if self.activation in ("tanh", "relu"):
            return ElmanCell(input_size, self.units, nonlinearity=self.activation, bias=False)
        return _KerasElmanCell(input_size, self.units, activation=self.activation)


class LSTM(RNNLayer):
    """Keras ``LSTM`` (rnnkit's ``LSTMCell``; gates i, f, g, o in both). ``activation`` (of g
    and of c in the output) and ``recurrent_activation`` (of the gates i, f, o) take Keras's
    activation names: with Keras's defaults (tanh, sigmoid) the layer runs rnnkit's fused
    kernels, with others its reference loop (Keras too leaves cuDNN then). ``unroll`` must be
    False. Other arguments as ``RNNLayer``."""

    _gates = 4

    def __init__(self, units: int, activation: str | None = "tanh",
                 recurrent_activation: str | None = "sigmoid", *, unroll: bool = False, **kwargs):
        _check_unroll("LSTM", unroll)
        self.activation = _activation_name("activation", activation)
        self.recurrent_activation = _activation_name("recurrent_activation", recurrent_activation)
        super().__init__(units, **kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation,
                "recurrent_activation": self.recurrent_activation}

    def _make_cell(self, input_size: int) -> Cell:
        if (self.activation, self.recurrent_activation) == ("tanh", "sigmoid"):
            return LSTMCell(input_size, self.units, bias=False)
        return _KerasLSTMCell(input_size, self.units, activation=self.activation,
                              recurrent_activation=self.recurrent_activation)

    def _state_type(self):
        return LSTMState


class GRU(RNNLayer):
    """Keras ``GRU`` (rnnkit's ``GRUCell``). ``reset_after=True`` (Keras's default) has two
    biases, as torch; ``reset_after=False`` applies the reset gate before the product (Cho et
    al. 2014) and has one. ``activation`` (of the candidate) and ``recurrent_activation`` (of
    the gates z, r) as ``LSTM``'s; ``unroll`` must be False; other arguments as ``RNNLayer``."""

    _gates = 3

    def __init__(self, units: int, activation: str | None = "tanh",
                 recurrent_activation: str | None = "sigmoid", *, reset_after: bool = True,
                 unroll: bool = False, **kwargs):
        _check_unroll("GRU", unroll)
        self.activation = _activation_name("activation", activation)
        self.recurrent_activation = _activation_name("recurrent_activation", recurrent_activation)
        super().__init__(units, **kwargs)
        self.reset_after = reset_after

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation,
                "recurrent_activation": self.recurrent_activation, "reset_after": self.reset_after}

    def _one_bias(self) -> bool:
        return self.use_bias and not self.reset_after

    def _keras_rows(self) -> Tensor | None:
        return swap_first_blocks(self.units)  # Keras: z, r, h; the cell: r, z, n

    def _make_cell(self, input_size: int) -> Cell:
        two_biases = self.use_bias and self.reset_after
        if (self.activation, self.recurrent_activation) == ("tanh", "sigmoid"):
            return GRUCell(input_size, self.units, bias=two_biases, reset_after=self.reset_after)
        return _KerasGRUCell(input_size, self.units, bias=two_biases, reset_after=self.reset_after,
                             activation=self.activation, recurrent_activation=self.recurrent_activation)


def _check_unroll(layer: str, unroll) -> None:
    """Keras's default, which users often pass explicitly, is accepted; the executors never unroll."""
    if unroll is not False:
        raise ValueError(f"unroll must be False (this {layer} runs a loop or a fused kernel, never "
                         f"unrolled), got {unroll!r}")


def _activation_name(name: str, value) -> str | None:
    """A Keras activation's name (or None: linear), checked; a name is what get_config saves."""
    if callable(value):
        raise ValueError(f"{name} of a recurrent layer must be a Keras activation's name, which the saved "
                         f"model keeps, got the callable {value!r}")
    get_activation(value)  # raises for an unknown name
    return value


class _KerasElmanCell(ElmanCell):
    """``ElmanCell`` with any Keras activation: h' = activation(x W + h U) (biases in W). A
    subclass, so the executors run it on the reference loop (their kernels are tanh/relu's)."""

    def __init__(self, input_size: int, hidden_size: int, *, activation: str | None):
        super().__init__(input_size, hidden_size, bias=False)
        self.activation = activation

    def forward(self, x_BI: Tensor, state: HiddenState, *, recurrent_h: Tensor | None = None) -> HiddenState:
        h_BH = state.h if recurrent_h is None else recurrent_h
        return HiddenState(get_activation(self.activation)(F.linear(x_BI, self.weight_ih)
                                                           + F.linear(h_BH, self.weight_hh)))


class _KerasLSTMCell(LSTMCell):
    """Keras's LSTMCell with its activations (keras/src/layers/rnn/lstm.py), gates i, f, g, o:
    c' = σ(f) c + σ(i) act(g), h' = σ(o) act(c'), σ the recurrent activation. Biases are in
    W_ih (the layer's column of ones)."""

    def __init__(self, input_size: int, hidden_size: int, *, activation: str | None,
                 recurrent_activation: str | None):
        super().__init__(input_size, hidden_size, bias=False)
        self.activation, self.recurrent_activation = activation, recurrent_activation

    def forward(self, x_BI: Tensor, state: LSTMState, *, recurrent_h: Tensor | None = None) -> LSTMState:
        act, gate = get_activation(self.activation), get_activation(self.recurrent_activation)
        h_BH, c_BH = state
        h_BH = h_BH if recurrent_h is None else recurrent_h
        gates_BG = F.linear(x_BI, self.weight_ih) + F.linear(h_BH, self.weight_hh)
        i_BH, f_BH, g_BH, o_BH = gates_BG.chunk(4, dim=-1)
        c_BH = gate(f_BH) * c_BH + gate(i_BH) * act(g_BH)
        return LSTMState(gate(o_BH) * act(c_BH), c_BH)


class _KerasGRUCell(GRUCell):
    """Keras's GRUCell with its activations (keras/src/layers/rnn/gru.py), in the cell's gate
    order r, z, n: h' = (1 - z) act(n) + z h, r and z through the recurrent activation."""

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool, reset_after: bool,
                 activation: str | None, recurrent_activation: str | None):
        super().__init__(input_size, hidden_size, bias=bias, reset_after=reset_after)
        self.activation, self.recurrent_activation = activation, recurrent_activation

    def forward(self, x_BI: Tensor, state: HiddenState, *, recurrent_h: Tensor | None = None) -> HiddenState:
        act, gate = get_activation(self.activation), get_activation(self.recurrent_activation)
        h_BH = state.h if recurrent_h is None else recurrent_h
        xr_BH, xz_BH, xn_BH = F.linear(x_BI, self.weight_ih, self.bias_ih).chunk(3, dim=-1)
        w_hr, w_hz, w_hn = self.weight_hh.chunk(3, dim=0)
        b_hr, b_hz, b_hn = self.bias_hh.chunk(3) if self.bias_hh is not None else (None,) * 3
        r_BH = gate(xr_BH + F.linear(h_BH, w_hr, b_hr))
        z_BH = gate(xz_BH + F.linear(h_BH, w_hz, b_hz))
        if self.reset_after:
            n_BH = act(xn_BH + r_BH * F.linear(h_BH, w_hn, b_hn))
        else:
            n_BH = act(xn_BH + F.linear(r_BH * h_BH, w_hn, b_hn))
        return HiddenState((1 - z_BH) * n_BH + z_BH * state.h)


def _merge(mode: str, a: Tensor, b: Tensor) -> Tensor:
    """Keras's merge modes, as ``rnnkit.Bidirectional`` applies them to the outputs."""
    if mode == "concat":
        return torch.cat([a, b], dim=-1)
    if mode == "sum":
        return a + b
    if mode == "mul":
        return a * b
    return (a + b) / 2


def _keep(new, old, keep_B: Tensor):
    """``new``, with ``old``'s rows where ``keep_B``; states or (forward, backward) pairs."""
    if not hasattr(new, "_fields"):
        return tuple(_keep(n, o, keep_B) for n, o in zip(new, old, strict=True))
    return new.where(~keep_B, old)
