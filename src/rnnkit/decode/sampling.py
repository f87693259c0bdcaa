"""Greedy decoding and sampling with temperature, top-k (Fan et al. 2018) and top-p / nucleus
(Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration", section 3.1).

    p(w) ∝ exp(logit(w) / τ)                       temperature τ
    top-k:  keep the k largest logits              (ties with the k-th are kept too)
    top-p:  keep the smallest prefix of the tokens, by falling probability, whose mass is >= p

Every draw comes from an explicit ``torch.Generator``; the global RNG is never touched.
The model contract is ``model(ids_BT, state) -> (logits_BTV, state)`` with ``state=None`` at
the start, as ``rnnkit.models.LanguageModel`` and the training loop use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Pick = Callable[[Tensor], Tensor]  # logits_BV -> ids_B


def mask_top_k(logits_BV: Tensor, k: int) -> Tensor:
    """-inf everywhere but the k largest logits of each row."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k must be an int >= 1, got {k!r}")
    if k >= logits_BV.shape[-1]:
        return logits_BV
    kth_B1 = logits_BV.topk(k, dim=-1).values[..., -1:]
    return logits_BV.masked_fill(logits_BV < kth_B1, float("-inf"))


def mask_top_p(logits_BV: Tensor, p: float) -> Tensor:
    """-inf everywhere but the nucleus: the most probable tokens whose total probability first
    reaches ``p``. The most probable token is always kept."""
    if isinstance(p, bool) or not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be a number in (0, 1], got {p!r}")
    if p == 1.0:  # every token: a float cumsum can reach 1 before the last one and cut the tail
        return logits_BV
    sorted_BV, order_BV = logits_BV.sort(dim=-1, descending=True, stable=True)
    probs_BV = sorted_BV.double().softmax(dim=-1)  # float64: the mass of a 50k vocabulary's tail adds up
    mass_before_BV = probs_BV.cumsum(dim=-1) - probs_BV  # the mass of the tokens ranked above
    drop_sorted_BV = mass_before_BV >= p
    drop_BV = drop_sorted_BV.scatter(-1, order_BV, drop_sorted_BV)  # back to vocabulary order
    return logits_BV.masked_fill(drop_BV, float("-inf"))


def greedy_pick(logits_BV: Tensor) -> Tensor:
    """ids_B: the most probable token of each row (the first, on ties)."""
    return logits_BV.argmax(dim=-1)


def sampling_pick(*, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  generator: torch.Generator | None = None) -> Pick:
    """``logits_BV -> ids_B`` drawing from softmax(logits / τ) after the top-k, then the top-p
    mask. ``generator=None`` makes a fresh unseeded one, still not the global RNG."""
    if isinstance(temperature, bool) or not 0 < temperature < math.inf:  # inf: uniform, NaN from -inf logits
        raise ValueError(f"temperature must be a finite number > 0 (use greedy decoding for 0), got "
                         f"{temperature!r}")
    if top_k is not None:
        mask_top_k(torch.zeros(1, 1), top_k)  # validate once, up front
    if top_p is not None:
        mask_top_p(torch.zeros(1, 1), top_p)
    if generator is None:
        generator = torch.Generator()
        generator.seed()  # from the OS; torch.seed() would reseed the global RNG

    def pick(logits_BV: Tensor) -> Tensor:
        # the largest logit first moved to 0: a tiny τ then sends the others to -inf instead
        # of the largest to +inf (inf - inf in softmax is NaN), which leaves greedy's choice;
        # a τ below the dtype's smallest number becomes 0 there, and the largest's 0/0 is 0
        logits_BV = (logits_BV - logits_BV.amax(dim=-1, keepdim=True)) / temperature
        logits_BV = logits_BV.masked_fill(logits_BV.isnan(), 0.0)
        if top_k is not None:
            logits_BV = mask_top_k(logits_BV, top_k)
        if top_p is not None:
            logits_BV = mask_top_p(logits_BV, top_p)
        probs_BV = F.softmax(logits_BV, dim=-1)
        return torch.multinomial(probs_BV.cpu(), 1, generator=generator).squeeze(-1).to(logits_BV.device)

    return pick


@torch.no_grad()
def stream(model: nn.Module, prompt_ids_T: Tensor, *, max_new_tokens: int, pick: Pick = greedy_pick,
           state: Any = None) -> Iterator[int]:
    """Token ids one at a time after the prompt, as they are chosen; for printing as they come.

    The model runs in eval mode (no dropout) while the iterator is live, and goes back to its
    mode afterwards.

    Shapes:
        prompt_ids_T: (T,) int64, T >= 1 (without a state there is nothing to condition on).
    """
    if prompt_ids_T.dim() != 1 or prompt_ids_T.dtype != torch.long or prompt_ids_T.numel() < 1:
        raise ValueError(f"prompt_ids_T must be a non-empty 1-D int64 tensor, got shape "
                         f"{tuple(prompt_ids_T.shape)} {prompt_ids_T.dtype}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    was_training = model.training
    model.eval()
    try:
        logits_1TV, state = model(prompt_ids_T.unsqueeze(0), state)
        for _ in range(max_new_tokens):
            next_1 = pick(logits_1TV[:, -1])
            yield int(next_1)
            logits_1TV, state = model(next_1.unsqueeze(0), state)
    finally:
        model.train(was_training)


def greedy(model: nn.Module, prompt_ids_T: Tensor, *, max_new_tokens: int) -> Tensor:
    """(max_new_tokens,) ids: the most probable token at every step."""
    return torch.tensor(list(stream(model, prompt_ids_T, max_new_tokens=max_new_tokens)), dtype=torch.long)


def sample(model: nn.Module, prompt_ids_T: Tensor, *, max_new_tokens: int, generator: torch.Generator,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """(max_new_tokens,) ids drawn one by one; all randomness from ``generator``."""
    pick = sampling_pick(temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    return torch.tensor(list(stream(model, prompt_ids_T, max_new_tokens=max_new_tokens, pick=pick)),
                        dtype=torch.long)
