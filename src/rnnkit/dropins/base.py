"""The machinery shared by the drop-ins: construction, forward, state layouts, torch names.

Same constructor, defaults, input/state layouts and return values as torch.nn; state
dicts use torch.nn's names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), so a torch.nn
module's state dict loads unchanged and gives the same numbers. On top of torch.nn:

- ``forward(input, hx=None, *, lengths=None)``: variable lengths without PackedSequence
  (a PackedSequence input still works and gives a PackedSequence back);
- variants as keyword arguments: ``layer_norm``, ``recurrent_dropout``, ``zoneout``,
  ``weight_drop``, ``peephole`` (LSTM), ``reset_after`` (GRU);
- ``backend``: ``"auto"`` or one executor of ``rnnkit.kernels.BACKENDS``.

Inside, a drop-in is ``Stacked([Recurrent(cell) or Bidirectional(...), ...])``; on the
``native`` executor the whole stack runs as torch's one fused call, exactly as torch.nn does.
"""

from __future__ import annotations

import numbers
import warnings

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit import kernels
from rnnkit._checks import check_lengths, check_sequence
from rnnkit.cells import HiddenState, MinGRUCell, MinLSTMCell, core_cell
from rnnkit.cells.base import Cell, plain_int, weights_by_hook
from rnnkit.cells.wrappers import RecurrentDropout, WeightDrop, Zoneout, _check_p, _check_scaled_p
from rnnkit.dropins import _names
from rnnkit.dropins._layout import TorchLayout
from rnnkit.dropins._stepping import Streaming
from rnnkit.kernels import native
from rnnkit.layers import Bidirectional, Recurrent, Stacked

_CELL_CACHES = ("_cells", "_weight_dicts")  # DropIn's lookups of its children (see _cache_cells)


class DropIn(Streaming, TorchLayout, nn.Module):
    """Shared machinery of the drop-ins; see the module docstring."""

    _torch_class: type[nn.Module] | None = None
    proj_size = 0  # as every torch.nn RNN has; the LSTM sets its own

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 *, backend: str = "auto", recurrent_dropout: float = 0.0,
                 zoneout: float | tuple[float, float] = 0.0, weight_drop: float = 0.0,
                 device=None, dtype=None):
        super().__init__()
        num_layers = plain_int(num_layers)
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 1:
            raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
        for name, flag in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(flag, bool):  # torch.nn's check of these two
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        bidirectional = _flag("bidirectional", bidirectional)
        dropout = _check_p("dropout", dropout)
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"dropout={dropout} acts between layers and has no effect with "
                          "num_layers=1", stacklevel=3)
        kernels.check_backend(backend)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.bidirectional, self.backend = bidirectional, backend
        self.recurrent_dropout = _check_scaled_p("recurrent_dropout", recurrent_dropout)
        if isinstance(zoneout, tuple) and len(zoneout) != 2:
            raise ValueError(f"zoneout must be a probability or a (p_h, p_c) pair, got {zoneout!r}")
        has_c = "c" in self._state_type()._fields
        zh, zc = zoneout if isinstance(zoneout, tuple) else (zoneout, zoneout if has_c else 0.0)
        self.zoneout = (_check_p("zoneout", zh), _check_p("zoneout", zc))
        if self.zoneout[1] and not has_c:
            raise ValueError(f"zoneout: a {type(self).__name__}'s state has no c, so the pair's second "
                             f"probability (for c) must be 0, got {zoneout!r}; give one probability, for h")
        self.weight_drop = _check_p("weight_drop", weight_drop)
        D = 2 if bidirectional else 1
        factory = dict(device=device, dtype=dtype)  # made and drawn there, as torch.nn's layers
        layers = []
        for k in range(num_layers):
            size_in = input_size if k == 0 else D * self._output_size()
            runs = [Recurrent(self._wrap(self._make_cell(size_in, **factory)), reverse=bool(d),
                              backend=backend)
                    for d in range(D)]
            layers.append(Bidirectional(*runs) if bidirectional else runs[0])
        self.stack = Stacked(layers, dropout=dropout)
        self._cache_cells()
        self._arity = len(self._state_type()._fields)
        self._fused_kind = native.op_kind(self._cells[0]) if backend in ("auto", "native") and all(
            native.supports(cell) for cell in self._cells) else None
        self._torch_names = self._name_map()
        self._stepper = None  # step's compiled kernel with its copy of the weights
        self.int8 = False  # set by rnnkit.quantize_dynamic: step and forward use int8 weights
        _names.register_hooks(self)
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)  # the cells' parameters are there; anything else

    @property
    def dropout(self) -> float:
        """Dropout between layers; set it at any time, as torch.nn's layers read theirs at
        each forward (the layer-by-layer path keeps it in ``self.stack``)."""
        return self.stack.dropout

    @dropout.setter
    def dropout(self, p: float) -> None:
        self.stack.dropout = _check_p("dropout", p)

    def reset_parameters(self) -> None:
        """Draw every parameter again, as torch.nn's ``reset_parameters`` does: weights and
        biases from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)); LayerNorm gains 1, shifts 0."""
        for cell in self._cells:
            cell.reset_parameters()

    # -- construction ----------------------------------------------------------------------
    def _make_cell(self, input_size: int, *, device=None, dtype=None) -> Cell:
        raise NotImplementedError

    def _output_size(self) -> int:
        return self.hidden_size

    def _state_type(self):
        return HiddenState

    def _wrap(self, cell: Cell) -> Cell:
        """Regularisers as wrappers; weight drop innermost, as it needs the cell's weight_hh."""
        if isinstance(cell, MinGRUCell | MinLSTMCell) and (self.weight_drop or self.recurrent_dropout):
            raise ValueError(f"{type(self).__name__} has no recurrent weights: weight_drop and "
                             f"recurrent_dropout must be 0, got {self.weight_drop} and "
                             f"{self.recurrent_dropout}")
        if self.weight_drop:
            cell = WeightDrop(cell, self.weight_drop)
        if self.recurrent_dropout:
            cell = RecurrentDropout(cell, self.recurrent_dropout)
        if any(self.zoneout):
            cell = Zoneout(cell, *self.zoneout)
        return cell

    def _cache_cells(self) -> None:
        """The cells (torch.nn's (layer, direction) order) and their weights' dicts, looked up
        once: forward runs per step in streaming use, where Module.__getattr__ chains would
        cost more than torch.nn's whole Python overhead."""
        self._cells = [run.cell for run in self._runs()]
        self._weight_dicts = [native.weight_dict(native.owner(cell)) for cell in self._cells]

    def _replicate_for_data_parallel(self):
        """A replica for ``nn.DataParallel``. torch's ``replicate`` copies ``__dict__``
        shallowly, then links the replica's own children and weights (plain tensors): the
        cached cells would still be this module's. They are dropped here and looked up again
        at first use (``__getattr__``), once ``replicate`` has linked the children."""
        replica = super()._replicate_for_data_parallel()
        for name in _CELL_CACHES:
            del replica.__dict__[name]
        replica._stepper = None  # its copy of the weights is this module's
        return replica

    def _runs(self) -> list[Recurrent]:
        """The Recurrent layers in torch.nn's order: layer by layer, forward then backward."""
        runs = []
        for layer in self.stack.layers:
            runs += [layer.fwd, layer.bwd] if isinstance(layer, Bidirectional) else [layer]
        return runs

    def _name_map(self) -> dict[str, str]:
        """torch.nn parameter name -> our parameter name, e.g. weight_hh_l0_reverse ->
        stack.layers.0.bwd.cell.weight_hh."""
        module_names = {id(m): n for n, m in self.named_modules()}
        D = 2 if self.bidirectional else 1
        names = {}
        for k, cell in enumerate(self._cells):
            core = core_cell(cell)
            suffix = f"_l{k // D}" + ("_reverse" if k % D else "")
            for pname, _ in core.named_parameters():
                names[pname.replace(".", "_") + suffix] = f"{module_names[id(core)]}.{pname}"
        return names

    def __getattr__(self, name: str):
        # only where normal lookup fails: a cache dropped on a replica, or a torch.nn name
        if name in _CELL_CACHES and "stack" in self.__dict__.get("_modules", ()):
            self._cache_cells()
            return self.__dict__[name]
        names = self.__dict__.get("_torch_names")
        if names is not None and name in names:
            # getattr, not get_parameter: on a DataParallel replica the weights are plain tensors
            owner, _, attr = names[name].rpartition(".")
            return getattr(self.get_submodule(owner), attr)
        return super().__getattr__(name)

    def __setattr__(self, name: str, value) -> None:
        names = self.__dict__.get("_torch_names")
        if names is not None and name in names:  # lstm.weight_hh_l0 = nn.Parameter(...)
            owner, _, attr = names[name].rpartition(".")
            setattr(self.get_submodule(owner), attr, value)
            self.flatten_parameters()
            return
        super().__setattr__(name, value)

    @property
    def all_weights(self) -> list[list[Tensor]]:
        return [list(core_cell(cell).parameters()) for cell in self._cells]

    def flatten_parameters(self) -> None:
        """Keep the fused op's weights in one buffer in cuDNN's layout, as torch.nn does.

        Only on CUDA with cuDNN; elsewhere there is no such layout and nothing changes.
        cuDNN otherwise copies scattered weights into one buffer at every call (and warns).
        Called at construction and after ``.to()``/``.cuda()`` (as in torch.nn), and after a
        load or a replacement by name, where it does something only if that brought new,
        scattered tensors: weights already in one buffer keep their addresses (a CUDA graph
        captured before a ``load_state_dict`` keeps reading the loaded values).
        """
        args = self._flat_weight_args()
        if args is None:
            return
        weights, first = args[0], args[0][0]
        if not all(w.is_cuda and w.dtype == first.dtype and torch.backends.cudnn.is_acceptable(w)
                   for w in weights):
            return
        if len({w.untyped_storage().data_ptr() for w in weights}) == 1:
            return  # flat already
        if len({w.data_ptr() for w in weights}) != len(weights) or not torch._use_cudnn_rnn_flatten_weight():
            return  # tied weights keep cuDNN's copying path, as in torch.nn
        from torch.backends.cudnn import rnn as cudnn_rnn

        with torch.cuda.device_of(first), torch.no_grad():  # no_grad: it re-points the parameters
            torch._cudnn_rnn_flatten_weight(weights, args[1], args[2], cudnn_rnn.get_cudnn_mode(args[3]),
                                            *args[4:])

    def _flat_weight_args(self) -> tuple | None:
        """``torch._cudnn_rnn_flatten_weight``'s arguments as torch.nn makes them (the mode by
        name), or None where no fused op runs or a cell lacks a weight."""
        if self._fused_kind is None or self.weight_drop:  # no fused op, or a fresh w_hh per call
            return None
        per_cell = [native.flat_weights(cell) for cell in self._cells]
        if len({len(w) for w in per_cell}) != 1:  # pruned, or a bias set to None
            return None
        weights = [w for ws in per_cell for w in ws]
        return (weights, len(per_cell[0]), self.input_size, self._fused_kind.upper(), self.hidden_size,
                self.proj_size, self.num_layers, self.batch_first, self.bidirectional)

    def _apply(self, fn, recurse=True):
        module = super()._apply(fn, recurse)  # .to(), .cuda(), .half(): new tensors, scattered
        self.flatten_parameters()
        return module

    # -- forward -----------------------------------------------------------------------------
    def forward(self, input, hx=None, *, lengths=None):
        """Run the stack. See torch.nn.LSTM for ``input`` and ``hx`` layouts.

        Arguments:
            input: (T, B, I), or (B, T, I) with ``batch_first``, or (T, I) unbatched, or a
                PackedSequence. T >= 1; B = 0 gives empty results, as torch.nn.
            hx: the initial state in torch.nn's layout, (L*D, B, H_out) per tensor; zeros if None.
            lengths: (B,) ints in [1, T]: each row's real length; padding must be at the end.

        Returns:
            ``(output, h_n)``, or ``(output, (h_n, c_n))`` for LSTM, as torch.nn; padded steps
            of ``output`` are zero and the final state is read at each row's last real step.
        """
        packed = isinstance(input, PackedSequence)
        if packed:
            if lengths is not None:
                raise ValueError("lengths must be None when input is a PackedSequence "
                                 "(the lengths are in the PackedSequence)")
            x, lengths = pad_packed_sequence(input, batch_first=self.batch_first)
        else:
            x = input
        if not isinstance(x, Tensor):
            raise TypeError(f"input must be a Tensor or PackedSequence, got {type(x).__name__}")
        self._check_layout(x)
        unbatched = x.dim() == 2
        if unbatched:
            if lengths is not None:
                raise ValueError("lengths must be None for unbatched (2-D) input")
            x = x.unsqueeze(0 if self.batch_first else 1)
        x_BTI = x if self.batch_first else x.transpose(0, 1)
        like = core_cell(self._cells[0]).weight_ih
        check_sequence(x_BTI, name="input", input_size=self.input_size, like=like)
        B, T, _ = x_BTI.shape
        lengths_B = check_lengths(lengths, batch=B, time=T, device=x.device)
        hx = self._check_hx(hx, B, like, unbatched=unbatched) if hx is not None else None
        out_BTO, hx = self._run(x, x_BTI, hx, lengths_B)
        if packed:
            return _repack(out_BTO, input, lengths_B), self._unpack_hx(hx)
        out = out_BTO if self.batch_first else out_BTO.transpose(0, 1).contiguous()  # torch.nn's is
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
            hx = tuple(t.squeeze(1) for t in hx)
        return out, self._unpack_hx(hx)

    def _check_layout(self, x: Tensor) -> None:
        """Rank and feature size, reported in the caller's own layout."""
        layout = "(batch, time, features)" if self.batch_first else "(time, batch, features)"
        if x.dim() not in (2, 3):
            raise ValueError(f"input must be 3-D {layout} or 2-D (time, features), "
                             f"got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input must have {self.input_size} features (input_size), "
                             f"got {x.shape[-1]} (shape {tuple(x.shape)})")
        if x.shape[1 if self.batch_first and x.dim() == 3 else 0] == 0:
            # torch.nn refuses it too; an empty batch (B = 0) runs, as there
            layout = layout if x.dim() == 3 else "(time, features)"
            raise ValueError(f"input must have at least one time step {layout}, "
                             f"got shape {tuple(x.shape)}")

    def _run(self, x: Tensor, x_BTI: Tensor, hx, lengths_B):
        """-> (out_BTO, hx as a tuple of (L*D, B, ·) tensors)."""
        B = x_BTI.shape[0]
        if self.int8:
            return self._run_steps(x_BTI, self._zero_hx(B, x_BTI) if hx is None else hx, lengths_B)
        kind = self._fused_kind
        # compiled, the native op is recomputed in backward: dropout masks would differ, so
        # a stack with dropout between layers runs layer by layer (self.stack) instead
        masks = self.training and self.dropout > 0 and self.num_layers > 1
        # ragged rows in both directions: one packed call on a GPU (native.call), layer by
        # layer on the CPU, where each direction's segmented run skips finished rows
        one_call = lengths_B is None or not self.bidirectional or x.is_cuda
        # traced, the native op would bake the lengths in as constants (see Recurrent.forward);
        # exported, the layers may run the reference loop one by one (native.exported_as_loop)
        traced_ragged = lengths_B is not None and torch.jit.is_tracing()
        one_call = one_call and not traced_ragged and not native.exported_as_loop(lengths_B, self.training)
        one_call = one_call and not any(weights_by_hook(native.owner(cell)) for cell in self._cells)
        if kind is not None and one_call and not (masks and torch.compiler.is_compiling()):
            if hx is None:
                hx = self._zero_hx(B, x_BTI)
            weights = [w for cell in self._cells for w in native.flat_weights(cell)]
            opts = dict(bias=self.bias, num_layers=self.num_layers, dropout=self.dropout,
                        train=self.training)
            if lengths_B is None:
                out, hx = native.call(kind, x, hx, weights, None, bidirectional=self.bidirectional,
                                      batch_first=self.batch_first, **opts)
                return (out if self.batch_first else out.transpose(0, 1)), hx
            return native.call(kind, x_BTI, hx, weights, lengths_B, bidirectional=self.bidirectional, **opts)
        state = None if hx is None else self._nest(hx)
        out_BTO, state = self.stack(x_BTI, state, lengths=lengths_B)
        return out_BTO, self._flatten(state)

    # -- torch.nn interop ------------------------------------------------------------------
    def _torch_kwargs(self) -> dict:
        return dict(input_size=self.input_size, hidden_size=self.hidden_size,
                    num_layers=self.num_layers, bias=self.bias, batch_first=self.batch_first,
                    dropout=self.dropout, bidirectional=self.bidirectional)

    def _extras(self) -> dict:
        """Settings torch.nn has no equivalent for, with their values."""
        return {k: v for k, v in dict(recurrent_dropout=self.recurrent_dropout,
                                      zoneout=self.zoneout if any(self.zoneout) else 0.0,
                                      weight_drop=self.weight_drop).items() if v}

    @classmethod
    def from_torch(cls, module: nn.Module, **extras):
        """Build the drop-in with ``module``'s configuration and a copy of its weights."""
        if cls._torch_class is None:
            raise TypeError(f"{cls.__name__} has no torch.nn counterpart to build from, got "
                            f"{type(module).__name__}")
        if not isinstance(module, cls._torch_class):
            raise TypeError(f"module must be a torch.nn.{cls._torch_class.__name__}, "
                            f"got {type(module).__name__}")
        kwargs = dict(input_size=module.input_size, hidden_size=module.hidden_size,
                      num_layers=module.num_layers, bias=module.bias,
                      batch_first=module.batch_first, dropout=module.dropout,
                      bidirectional=module.bidirectional)
        kwargs.update(cls._torch_extra_kwargs(module))
        p = next(module.parameters())
        with torch.random.fork_rng(devices=[]):  # the random init is overwritten at once
            ours = cls(**kwargs, **extras, device=p.device, dtype=p.dtype)
        ours.load_state_dict(module.state_dict())
        return ours.train(module.training)

    @classmethod
    def _torch_extra_kwargs(cls, module: nn.Module) -> dict:
        return {}

    def to_torch(self) -> nn.Module:
        """The equivalent torch.nn module with a copy of the weights (where torch.nn has one)."""
        if self._torch_class is None:
            raise TypeError(f"{type(self).__name__} has no torch.nn counterpart")
        if self._extras():
            raise ValueError(f"to_torch: torch.nn.{self._torch_class.__name__} has no "
                             f"equivalent of {self._extras()}")
        w = core_cell(self._cells[0]).weight_ih
        theirs = self._torch_class(**self._torch_kwargs(), device=w.device, dtype=w.dtype)
        theirs.load_state_dict(self.state_dict())
        return theirs.train(self.training)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        s += f", batch_first={self.batch_first}, bidirectional={self.bidirectional}"
        return s + f", dropout={self.dropout}, backend={self.backend!r}"


def _repack(out_BTO: Tensor, like: PackedSequence, lengths_B: Tensor) -> PackedSequence:
    """Pack the output in the input's own order, as torch.nn returns it."""
    order = like.sorted_indices
    if order is not None:
        out_BTO, lengths_B = out_BTO.index_select(0, order), lengths_B.index_select(0, order)
    data = pack_padded_sequence(out_BTO, lengths_B.cpu(), batch_first=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def _flag(name: str, value) -> bool:
    """A bool from a bool, an int 0 or 1 (argparse's ``type=int``) or a numpy or torch bool
    scalar, which torch.nn takes for ``bidirectional``; anything else is refused, not read as
    truthy (torch.nn would take "no" as True)."""
    if isinstance(value, numbers.Integral) and value in (0, 1):  # bool is one too
        return bool(value)
    if getattr(value, "dtype", None) in (bool, torch.bool) and getattr(value, "ndim", None) == 0:
        return bool(value)
    raise TypeError(f"{name} must be a bool (or 0 or 1), got {value!r}")
