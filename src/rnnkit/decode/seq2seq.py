"""Decoding a ``Seq2Seq`` model: greedy (a batch at a time) and beam search (one source at a
time, with GNMT's length penalty).

    hyps = beam_translate(model, source_ids_S, beam_width=5, alpha=0.6, max_new_tokens=80)
    ids_T = hyps[0].ids_T          # ends with EOS when finished

Beam search is ``rnnkit.decode.beam_search`` itself: the model and one source are wrapped
as a language model whose prompt is BOS and whose state is the ``DecoderState``, which the
search reorders to follow its beams. All beams read the same source, so its encoder memory
is encoded once and repeated over the beams (a view, not a copy).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.decode.beam import Hypothesis, beam_search
from rnnkit.models.seq2seq import DecoderState, Memory, Seq2Seq


def max_new_tokens_for(source_len: int, cap: int, ratio: float = 2.0) -> int:
    """A target length limit, fairseq's ``max_len_a * S + max_len_b``: ``ratio`` target
    tokens per source token plus 10, at most ``cap``. The two sides' tokenizers differ, so
    the task measures ``ratio`` on its training pairs (``DecodeConfig.length_ratio``)."""
    return min(cap, math.ceil(ratio * source_len) + 10)


@torch.no_grad()
def beam_translate(model: Seq2Seq, source_ids_S: Tensor, *, beam_width: int, max_new_tokens: int,
                   alpha: float = 0.0) -> list[Hypothesis]:
    """The ``beam_width`` best translations of one source, best first; see ``beam_search``.

    Shapes:
        source_ids_S: (S,) int64, S >= 1.
    """
    if source_ids_S.dim() != 1 or source_ids_S.dtype != torch.long or source_ids_S.numel() < 1:
        raise ValueError(f"source_ids_S must be a non-empty 1-D int64 tensor, got shape "
                         f"{tuple(source_ids_S.shape)} {source_ids_S.dtype}")
    device = next(model.parameters()).device
    bos_S = torch.tensor([model.config.bos_id], device=device)
    # the wrapper takes the model's mode, which beam_search restores (a new module is in
    # training mode: an eval-mode model came back training)
    one = _OneSource(model, source_ids_S.to(device)).train(model.training)
    return beam_search(one, bos_S, beam_width=beam_width, max_new_tokens=max_new_tokens, alpha=alpha,
                       eos_id=model.config.eos_id)


@torch.no_grad()
def greedy_translate(model: Seq2Seq, source_BS: Tensor, source_lengths_B: Tensor, *,
                     max_new_tokens: int) -> list[Tensor]:
    """Each row's most probable next token, step by step, until EOS or ``max_new_tokens``.

    Returns:
        one (T_b,) int64 tensor per row, without EOS.
    """
    was_training = model.training
    model.eval()
    try:
        state, memory = model.encode(source_BS, source_lengths_B)
        y_B = torch.full((source_BS.shape[0],), model.config.bos_id, device=source_BS.device)
        done_B = torch.zeros_like(y_B, dtype=torch.bool)
        out = []
        for _ in range(max_new_tokens):
            logits_BV, state = model.step(y_B, state, memory)
            y_B = logits_BV.argmax(dim=-1)
            out.append(y_B)
            done_B = done_B | (y_B == model.config.eos_id)
            if bool(done_B.all()):
                break
    finally:
        model.train(was_training)
    ids_BT = torch.stack(out, dim=1) if out else source_BS.new_zeros(source_BS.shape[0], 0)
    return [_until_eos(row_T, model.config.eos_id) for row_T in ids_BT.cpu()]


def strip_eos(hypothesis: Hypothesis, eos_id: int) -> Tensor:
    """The hypothesis's ids without its final EOS."""
    return _until_eos(hypothesis.ids_T.cpu(), eos_id)


def _until_eos(ids_T: Tensor, eos_id: int) -> Tensor:
    ends = (ids_T == eos_id).nonzero()
    return ids_T[: int(ends[0, 0])] if len(ends) else ids_T


class _OneSource(nn.Module):
    """``Seq2Seq`` on one source, as the language model ``beam_search`` expects:
    ``(ids_BT, state) -> (logits_BTV, state)``, encoding the source when the state is None."""

    def __init__(self, model: Seq2Seq, source_ids_S: Tensor):
        super().__init__()
        self.model, self.source_ids_S = model, source_ids_S
        self.memory: Memory | None = None  # the source's, for one row

    def forward(self, ids_BT: Tensor, state: DecoderState | None) -> tuple[Tensor, Any]:
        if state is None:
            lengths_B = torch.tensor([self.source_ids_S.numel()], device=self.source_ids_S.device)
            state, self.memory = self.model.encode(self.source_ids_S[None], lengths_B)
        assert self.memory is not None
        memory = self.memory.expand(ids_BT.shape[0])
        for t in range(ids_BT.shape[1]):
            logits_BV, state = self.model.step(ids_BT[:, t], state, memory)
        return logits_BV[:, None], state
