"""Decoding from autoregressive models: greedy, sampling (temperature, top-k, top-p) and
beam search, for any ``model(ids_BT, state) -> (logits_BTV, state)``.

    ids = sample(model, prompt_ids_T, max_new_tokens=200, temperature=0.8, top_p=0.9,
                 generator=torch.Generator().manual_seed(0))
    best = beam_search(model, prompt_ids_T, beam_width=5, max_new_tokens=50)[0].ids_T
"""

from rnnkit.decode.beam import Hypothesis, beam_search, length_penalty
from rnnkit.decode.sampling import (
    Pick,
    greedy,
    greedy_pick,
    mask_top_k,
    mask_top_p,
    sample,
    sampling_pick,
    stream,
)

__all__ = [
    "Hypothesis",
    "Pick",
    "beam_search",
    "greedy",
    "greedy_pick",
    "length_penalty",
    "mask_top_k",
    "mask_top_p",
    "sample",
    "sampling_pick",
    "stream",
]
