"""Drop-in replacements for torch.nn.RNN, LSTM and GRU, plus MinGRU and MinLSTM.

See ``rnnkit.dropins.base`` for what they share and add to torch.nn.
"""

from __future__ import annotations

from copy import deepcopy

import torch
from torch import nn

from rnnkit.cells import (
    ElmanCell,
    GRUCell,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    LSTMState,
    MinGRUCell,
    MinLSTMCell,
    core_cell,
)
from rnnkit.cells.base import Cell, computed_weights, plain_int
from rnnkit.dropins.base import DropIn
from rnnkit.kernels import native

__all__ = ["GRU", "LSTM", "RNN", "DropIn", "MinGRU", "MinLSTM", "quantize_dynamic"]


class RNN(DropIn):
    """Elman RNN, a drop-in for ``torch.nn.RNN`` (see the module docstring).

    Extra keyword arguments: ``recurrent_dropout``, ``zoneout``, ``weight_drop``, ``backend``.
    """

    _torch_class = nn.RNN

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, **kwargs):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, **kwargs)

    def _make_cell(self, input_size: int, **factory) -> Cell:
        return ElmanCell(input_size, self.hidden_size, nonlinearity=self.nonlinearity,
                         bias=self.bias, **factory)

    def _torch_kwargs(self) -> dict:
        return super()._torch_kwargs() | dict(nonlinearity=self.nonlinearity)

    @classmethod
    def _torch_extra_kwargs(cls, module: nn.Module) -> dict:
        return dict(nonlinearity=module.nonlinearity)


class LSTM(DropIn):
    """LSTM, a drop-in for ``torch.nn.LSTM`` (see the module docstring).

    Extra keyword arguments: ``layer_norm`` (Ba et al. 2016), ``peephole`` (Gers &
    Schmidhuber 2000), ``recurrent_dropout``, ``zoneout`` (p, or (p_h, p_c)),
    ``weight_drop``, ``backend``.
    """

    _torch_class = nn.LSTM

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, *, layer_norm: bool = False, peephole: bool = False,
                 **kwargs):
        if layer_norm and (peephole or proj_size):
            raise ValueError("layer_norm=True cannot be combined with peephole or proj_size, "
                             f"got peephole={peephole}, proj_size={proj_size}")
        self.proj_size, self.layer_norm, self.peephole = plain_int(proj_size), layer_norm, peephole
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, **kwargs)

    def _make_cell(self, input_size: int, **factory) -> Cell:
        if self.layer_norm:
            return LayerNormLSTMCell(input_size, self.hidden_size, bias=self.bias, **factory)
        return LSTMCell(input_size, self.hidden_size, bias=self.bias, proj_size=self.proj_size,
                        peephole=self.peephole, **factory)

    def _output_size(self) -> int:
        return self.proj_size or self.hidden_size

    def _state_type(self):
        return LSTMState

    def _extras(self) -> dict:
        flags = {k: True for k in ("layer_norm", "peephole") if getattr(self, k)}
        return super()._extras() | flags

    def _torch_kwargs(self) -> dict:
        return super()._torch_kwargs() | dict(proj_size=self.proj_size)

    @classmethod
    def _torch_extra_kwargs(cls, module: nn.Module) -> dict:
        return dict(proj_size=module.proj_size)


class GRU(DropIn):
    """GRU, a drop-in for ``torch.nn.GRU`` (see the module docstring).

    Extra keyword arguments: ``reset_after`` (False: reset gate before the product, as Cho
    et al. 2014 and Keras ``reset_after=False``), ``layer_norm``, ``recurrent_dropout``,
    ``zoneout``, ``weight_drop``, ``backend``.
    """

    _torch_class = nn.GRU

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 *, reset_after: bool = True, layer_norm: bool = False, **kwargs):
        if layer_norm and not reset_after:
            raise ValueError("layer_norm=True supports only reset_after=True, got reset_after=False")
        self.reset_after, self.layer_norm = reset_after, layer_norm
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, **kwargs)

    def _make_cell(self, input_size: int, **factory) -> Cell:
        if self.layer_norm:
            return LayerNormGRUCell(input_size, self.hidden_size, bias=self.bias, **factory)
        return GRUCell(input_size, self.hidden_size, bias=self.bias, reset_after=self.reset_after, **factory)

    def _extras(self) -> dict:
        flags = {"layer_norm": True} if self.layer_norm else {}
        return super()._extras() | flags | ({} if self.reset_after else {"reset_after": False})


class MinGRU(DropIn):
    """minGRU (Feng et al. 2024) with torch.nn.GRU's signature; runs on the
    compiled scan (or the log-space parallel scan)."""

    def _make_cell(self, input_size: int, **factory) -> Cell:
        return MinGRUCell(input_size, self.hidden_size, bias=self.bias, **factory)


class MinLSTM(DropIn):
    """minLSTM (Feng et al. 2024) with torch.nn.GRU's signature; runs on the
    compiled scan (or the log-space parallel scan)."""

    def _make_cell(self, input_size: int, **factory) -> Cell:
        return MinLSTMCell(input_size, self.hidden_size, bias=self.bias, **factory)


def quantize_dynamic(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) whose rnnkit LSTM, GRU and RNN layers run int8.

    Dynamic quantization, as ``torch.ao.quantization.quantize_dynamic`` does for
    ``nn.LSTM``: each layer's weight matrices are stored in int8 (one scale and zero point per
    matrix: fbgemm's int8-weight linear, which torch's first quantized LSTM used; 7 bits on
    CPUs without VNNI, see ``kernels/_int8.py``), the input and state are quantized at every
    step, the products accumulate in int32, and gates and state stay float32. ``step`` and
    ``forward`` (one step per time step) then run the compiled int8 kernel; CPU, float32,
    under ``torch.no_grad()`` or ``torch.inference_mode()``. Other modules are untouched
    (``torch.ao.quantization.quantize_dynamic`` can take the ``nn.Linear`` ones; it leaves
    rnnkit's layers in float, as they are not subclasses of ``nn.LSTM``). torch marks the
    fbgemm functions deprecated and prints that once, on the first int8 step.

    Raises:
        TypeError: ``model`` is not a torch.nn.Module.
        ValueError: a layer it cannot quantize (variant cells, a projection, two directions,
            not float32), or no rnnkit LSTM/GRU/RNN layer at all.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    copy = deepcopy(model).eval()
    layers = [m for m in copy.modules() if isinstance(m, DropIn)]
    for m in layers:
        dtype = core_cell(m._cells[0]).weight_ih.dtype
        plain = all(native.supports(cell) for cell in m._cells)
        computed = any(computed_weights(native.owner(cell)) for cell in m._cells)
        why = ("only LSTM, GRU and Elman RNN layers with plain cells quantize (not variants)"
               if not plain else
               "its weights are computed (parametrize or prune on a cell), which the int8 copy "
               "cannot follow: make them plain first (parametrize.remove_parametrizations, "
               "prune.remove)" if computed else
               f"the int8 kernel takes the native executor's place, which backend={m.backend!r} "
               f"does not use: build it with backend='auto' or 'native'" if m._fused_kind is None else
               "a bidirectional layer cannot step" if m.bidirectional else
               "an LSTM projection (proj_size) is not supported" if m.proj_size else
               f"the weights must be float32, got {dtype}" if dtype != torch.float32 else None)
        if why:
            name = f"{m.__class__.__name__}({m.input_size}, {m.hidden_size})"
            raise ValueError(f"cannot quantize {name}: {why}")
    if not layers:
        raise ValueError(f"model has no rnnkit LSTM, GRU or RNN layer to quantize ({type(model).__name__})")
    for m in layers:
        m.int8 = True
    return copy
