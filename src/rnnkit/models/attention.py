"""Global attention over an encoder's outputs: Luong, Pham & Manning 2015, "Effective
Approaches to Attention-based Neural Machine Translation", sec. 3.1, with the scores of eq. 8:

    score(h_t, h̄_s) = h_tᵀ h̄_s                      dot
    score(h_t, h̄_s) = h_tᵀ W_a h̄_s                  general
    score(h_t, h̄_s) = v_aᵀ tanh(W_q h_t + W_k h̄_s)   additive: Luong's concat, v_aᵀ tanh(W_a[h_t; h̄_s])
                                                     with W_a = [W_q W_k]; Bahdanau et al. 2015, A.1.2
    a_t(s) = exp score(h_t, h̄_s) / Σ_s' exp score(h_t, h̄_s')   over the source's real steps (eq. 7)
    c_t    = Σ_s a_t(s) h̄_s

The part of a score that depends on the source alone (W_a h̄_s, W_k h̄_s) is computed once
per sentence by ``keys``, not at every target step.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

Score = Literal["dot", "general", "additive"]


class GlobalAttention(nn.Module):
    """Luong's global attention; see the module docstring.

    Arguments:
        score: "dot", "general" or "additive".
        size: H, the size of both the query h_t and the memory h̄_s.
        attention_size: A, the hidden size of the additive score (unused by the others).

    Shapes:
        query_BH: (B, H); memory_BSH: (B, S, H); keys_BSA: (B, S, A), A = H except for
        additive; mask_BS: (B, S) bool, True on real source steps -> context_BH (B, H),
        weights_BS (B, S).
    """

    def __init__(self, score: Score, size: int, *, attention_size: int | None = None):
        super().__init__()
        if score not in ("dot", "general", "additive"):
            raise ValueError(f"score must be one of ['additive', 'dot', 'general'], got {score!r}")
        self.score = score
        A = attention_size or size
        if score == "general":
            self.W_a = nn.Linear(size, size, bias=False)
        if score == "additive":
            self.W_q = nn.Linear(size, A, bias=False)
            self.W_k = nn.Linear(size, A, bias=False)
            self.v_a = nn.Linear(A, 1, bias=False)

    def keys(self, memory_BSH: Tensor) -> Tensor:
        """The source-only part of the score: h̄_s, W_a h̄_s or W_k h̄_s."""
        if self.score == "general":
            return self.W_a(memory_BSH)
        if self.score == "additive":
            return self.W_k(memory_BSH)
        return memory_BSH

    def forward(self, query_BH: Tensor, keys_BSA: Tensor, memory_BSH: Tensor,
                mask_BS: Tensor) -> tuple[Tensor, Tensor]:
        if self.score == "additive":
            score_BS = self.v_a(torch.tanh(self.W_q(query_BH)[:, None] + keys_BSA)).squeeze(-1)
        else:  # dot, general: h_tᵀ (W_a) h̄_s
            score_BS = torch.bmm(keys_BSA, query_BH[:, :, None]).squeeze(-1)
        score_BS = score_BS.masked_fill(~mask_BS, float("-inf"))  # padding gets weight 0
        a_BS = torch.softmax(score_BS, dim=-1)
        context_BH = torch.bmm(a_BS[:, None], memory_BSH).squeeze(1)
        return context_BH, a_BS
