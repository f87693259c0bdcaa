"""Temperature sampling from a language model, with its own random generator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@torch.no_grad()
def sample(model: nn.Module, prompt_ids: Tensor, *, length: int, temperature: float,
           generator: torch.Generator) -> Tensor:
    """(length,) ids drawn one by one from softmax(logits / temperature) after the prompt.

    ``model(ids_BT, state) -> (logits_BTV, state)``. All randomness comes from
    ``generator``; the global RNG is never touched.
    """
    if prompt_ids.numel() < 1:
        raise ValueError("prompt_ids must hold at least one id, got 0")
    model.eval()
    logits_1TV, state = model(prompt_ids.unsqueeze(0))
    out = []
    for _ in range(length):
        probs_1V = F.softmax(logits_1TV[:, -1] / temperature, dim=-1)
        next_11 = torch.multinomial(probs_1V, 1, generator=generator)
        out.append(next_11)
        logits_1TV, state = model(next_11, state)
    return torch.cat(out, dim=1)[0] if out else prompt_ids.new_empty(0)
