"""Beam search over (state, tokens), with the length penalty of GNMT (Wu et al. 2016, "Google's
Neural Machine Translation System", section 7):

    s(Y) = log P(Y | prompt) / lp(Y)        lp(Y) = ((5 + |Y|) / 6)^α

The K beams are one batch of K rows: each step scores every (beam, token) extension by its
summed log-probability, keeps the K best, and reorders the recurrent state to follow its
beams with ``index_select`` on the batch dimension (dim -2, as in ``rnnkit.train.tbptt``).
A beam that emits ``eos_id`` is finished and leaves the batch; the search stops when no live
beam can still beat the K-th finished one, or after ``max_new_tokens``. The penalty ranks
finished hypotheses of different lengths; without ``eos_id`` all have the same length.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.train.tbptt import map_state


class Hypothesis(NamedTuple):
    ids_T: Tensor  # the new tokens, without the prompt; ends with eos_id when finished
    log_prob: float  # log P(ids | prompt)
    score: float  # log_prob / lp(len(ids))
    finished: bool  # ended with eos_id


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's lp = ((5 + length) / 6)^alpha; alpha = 0 ranks by log-probability alone."""
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(model: nn.Module, prompt_ids_T: Tensor, *, beam_width: int, max_new_tokens: int,
                alpha: float = 0.0, eos_id: int | None = None) -> list[Hypothesis]:
    """The ``beam_width`` best continuations of the prompt, best first (by ``score``).

    ``model(ids_BT, state) -> (logits_BTV, state)``, ``state=None`` at the start; every tensor
    of the state has the batch on dim -2. The model runs in eval mode and goes back to its mode.

    Shapes:
        prompt_ids_T: (T,) int64, T >= 1.
    """
    _check(prompt_ids_T, beam_width, max_new_tokens, alpha)
    was_training = model.training
    model.eval()
    try:
        return _search(model, prompt_ids_T, beam_width, max_new_tokens, alpha, eos_id)
    finally:
        model.train(was_training)


def _search(model: nn.Module, prompt_ids_T: Tensor, K: int, max_new_tokens: int, alpha: float,
            eos_id: int | None) -> list[Hypothesis]:
    tokens_KT = prompt_ids_T.new_empty(1, 0)
    if max_new_tokens == 0:
        return [Hypothesis(tokens_KT[0], 0.0, 0.0, False)]
    logits_KTV, state = model(prompt_ids_T.unsqueeze(0), None)  # one beam: the prompt
    scores_K = torch.zeros(1, dtype=torch.float64)
    finished: list[Hypothesis] = []
    for step in range(max_new_tokens):
        if step > 0:
            logits_KTV, state = model(tokens_KT[:, -1:], state)
        # -- score every extension; 2K candidates leave K live ones even if K of them finish --
        logp_KV = logits_KTV[:, -1].double().log_softmax(dim=-1).cpu()
        V = logp_KV.shape[-1]
        cand_scores, flat = (scores_K[:, None] + logp_KV).flatten().topk(min(2 * K, logp_KV.numel()))
        keep: list[int] = []
        for rank, (score, index) in enumerate(zip(cand_scores.tolist(), flat.tolist(), strict=True)):
            beam, token = divmod(index, V)
            if token == eos_id:
                ids_T = torch.cat([tokens_KT[beam], tokens_KT.new_tensor([token])])
                finished.append(Hypothesis(ids_T, score, score / length_penalty(step + 1, alpha), True))
            else:
                keep.append(rank)
            if len(keep) == K:
                break
        if not keep or _done(finished, cand_scores[keep], K, max_new_tokens, alpha):
            return _best(finished, K)
        # -- follow the kept beams: tokens and state --
        beam_K = (flat[keep] // V).to(tokens_KT.device)
        tokens_KT = torch.cat([tokens_KT[beam_K], (flat[keep] % V).to(tokens_KT.device)[:, None]], dim=1)
        state = map_state(lambda t, beam_K=beam_K: t.index_select(-2, beam_K.to(t.device)), state)
        scores_K = cand_scores[keep]
    # out of steps: the live beams compete with the finished ones
    lp = length_penalty(max_new_tokens, alpha)
    live = [Hypothesis(tokens_KT[k], s, s / lp, False) for k, s in enumerate(scores_K.tolist())]
    return _best(finished + live, K)


def _best(hypotheses: list[Hypothesis], K: int) -> list[Hypothesis]:
    return sorted(hypotheses, key=lambda h: h.score, reverse=True)[:K]


def _done(finished: list[Hypothesis], scores_K: Tensor, K: int, max_new_tokens: int, alpha: float) -> bool:
    """True when no live beam can end above the K-th best finished hypothesis: log-probs only
    fall, and for alpha >= 0 dividing a negative score by the largest lp gives its best value."""
    if len(finished) < K or alpha < 0:
        return False
    kth = sorted((h.score for h in finished), reverse=True)[K - 1]
    return float(scores_K.max()) / length_penalty(max_new_tokens, alpha) <= kth


def _check(prompt_ids_T: Tensor, beam_width: Any, max_new_tokens: Any, alpha: Any) -> None:
    if prompt_ids_T.dim() != 1 or prompt_ids_T.dtype != torch.long or prompt_ids_T.numel() < 1:
        raise ValueError(f"prompt_ids_T must be a non-empty 1-D int64 tensor, got shape "
                         f"{tuple(prompt_ids_T.shape)} {prompt_ids_T.dtype}")
    for name, value, low in (("beam_width", beam_width, 1), ("max_new_tokens", max_new_tokens, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha < math.inf:
        raise ValueError(f"alpha (the length penalty exponent) must be a finite number >= 0, got {alpha!r}")
