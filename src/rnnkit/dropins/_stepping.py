"""Streaming: a drop-in's ``step``, one time step at a time, and the int8 path built on it.

A mixin of ``DropIn`` (``dropins/base.py``), which provides the cells, the state layout and
``_fused_kind``; kept apart because the streaming path has its own kernel
(``kernels/csrc/step.cpp``) and its own copy of the weights.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit._checks import check_like
from rnnkit.cells import core_cell
from rnnkit.cells.base import computed_weights
from rnnkit.kernels import native


class Streaming:
    """``step`` and the int8 path of a drop-in; see ``DropIn``."""

    def step(self, input: Tensor, hx=None):
        """One time step, for streaming inference: feed each new frame with the state the
        previous call returned.

        Arguments:
            input: (B, I), or (I,) unbatched.
            hx: the state in torch.nn's layout, (L, B, H_out) per tensor; zeros if None.

        Returns:
            ``(output, h_n)`` or ``(output, (h_n, c_n))``: output (B, H_out) is the last
            layer's new h, as ``forward`` on a length-1 sequence would give.

        Unidirectional layers only (a backward direction needs the whole sequence). In
        evaluation mode under ``torch.no_grad()`` or ``torch.inference_mode()`` on CPU
        (float32), a plain LSTM, GRU or RNN stack runs as one compiled call
        (``kernels/csrc/step.cpp``) on a copy of the weights ([W_ih | W_hh], or int8) made
        at the first step and again whenever a weight changes or is replaced (optimizer
        steps, ``load_state_dict``, ``.to``); a change made through ``.data`` (or to a model
        made under ``inference_mode``) is not seen: call ``forget_step_weights()`` after one.
        At batch 1 each layer's product goes straight to BLAS's gemv. Otherwise the cells
        step one by one, with autograd.
        """
        stepper = self._stepper
        if stepper is not None and not self.training:
            # the streaming loop: the kernel checks the mode, weights and arguments itself and
            # returns None for anything it cannot take, which the checks below then name
            stepped = stepper.stream(input, hx)
            if stepped is not None:
                return stepped
        if self.bidirectional:
            raise ValueError("step needs a unidirectional layer: a backward direction reads the whole "
                             "sequence first (use forward)")
        if not isinstance(input, Tensor):
            raise TypeError(f"input must be a Tensor (batch, {self.input_size}) or ({self.input_size},), "
                            f"got {type(input).__name__}")
        if input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"input must be (batch, {self.input_size}) or ({self.input_size},), "
                             f"got {tuple(input.shape)}")
        unbatched = input.dim() == 1
        x_BI = input.unsqueeze(0) if unbatched else input
        like = core_cell(self._cells[0]).weight_ih
        check_like(x_BI, name="input", like=like)
        B = x_BI.shape[0]
        if hx is None:
            hx = self._zero_hx(B, x_BI)
        else:
            hx = self._check_hx(hx, B, like, unbatched=unbatched)
        compiled = self._fused_kind is not None and not self.training and not torch.is_grad_enabled()
        if self.int8 and (like.dtype != torch.float32 or not like.is_cpu):
            raise RuntimeError(f"an int8 layer runs on the CPU in float32 (its float parts), got its weights "
                               f"in {like.dtype} on {like.device}: quantize the float32 CPU model instead")
        if self.int8 and not compiled:
            raise RuntimeError("an int8 layer runs in eval mode under torch.no_grad() or "
                               "torch.inference_mode() only (it has no backward)")
        stepped = self._step_native(x_BI, hx) if compiled else None
        if stepped is None and self.int8:
            raise RuntimeError("the int8 step kernel is not available here (see the warning "
                               "about building it); quantize_dynamic needs it")
        if stepped is None:
            new = self._step_cells(x_BI, hx)
            out = new[0][-1]
        else:
            out, new = stepped
        if unbatched:
            out, new = out.squeeze(0), tuple(t.squeeze(1) for t in new)
        return out, self._unpack_hx(new)

    def forget_step_weights(self) -> None:
        """Drop ``step``'s copy of the weights; the next step makes it again from the current ones."""
        self._stepper = None

    @property
    def int8(self) -> bool:
        # a layer pickled whole before int8 was a property keeps it as a plain attribute
        return self.__dict__.get("_int8", self.__dict__.get("int8", False))

    @int8.setter
    def int8(self, value: bool) -> None:
        self._int8 = value
        self._stepper = None  # its copy of the weights is float32 or int8

    def __getstate__(self):
        # the compiled stepper neither pickles nor deep-copies; it is made again at the next step
        return {**super().__getstate__(), "_stepper": None}

    def _step_native(self, x_BI: Tensor, hx: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]] | None:
        if self.proj_size or not x_BI.is_cpu or x_BI.dtype != torch.float32:
            return None  # the kernel: CPU, float32, no LSTM projection
        if any(computed_weights(native.owner(cell)) for cell in self._cells):
            return None  # computed weights (parametrize, prune): its copy could not follow them
        stepper = self._stepper
        if stepper is None or not stepper.fresh():
            layers = [native.flat_weights(cell) for cell in self._cells]
            stepper = native.stepper(self._fused_kind, layers, self._weight_dicts, int8=self.int8)
            self._stepper = stepper
            if stepper is None:
                return None
        lstm = self._fused_kind == "lstm"
        h, c, out = stepper.run(x_BI, hx[0], hx[1] if lstm else None)
        return out, ((h, c) if lstm else (h,))

    def _run_steps(self, x_BTI: Tensor, hx: tuple[Tensor, ...], lengths_B: Tensor | None):
        """A sequence as one ``step`` per time step (the int8 path); finished rows keep their
        state and emit zeros, as every executor does."""
        outs = []
        for t in range(x_BTI.shape[1]):
            out_BH, new = self.step(x_BTI[:, t], hx)
            new = (new,) if isinstance(new, Tensor) else new
            if lengths_B is not None:
                live_1B1 = (lengths_B > t)[None, :, None]
                new = tuple(torch.where(live_1B1, n, o) for n, o in zip(new, hx, strict=True))
                out_BH = torch.where(live_1B1[0], out_BH, 0.0)
            outs.append(out_BH)
            hx = new
        return torch.stack(outs, dim=1), hx

    def _step_cells(self, x_BI: Tensor, hx: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """One step through each layer's cell (any cell, wrappers and autograd included)."""
        states = []
        for k, cell in enumerate(self._cells):
            if k and self.dropout:
                x_BI = torch.nn.functional.dropout(x_BI, self.dropout, self.training)
            state = self._state_type()(*(t[k] for t in hx))
            state = cell.for_sequence(x_BI.shape[0], device=x_BI.device, dtype=x_BI.dtype)(x_BI, state)
            states.append(state)
            x_BI = state.h
        return tuple(torch.stack(parts) for parts in zip(*states, strict=True))
