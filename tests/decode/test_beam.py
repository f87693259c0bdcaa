"""Beam search: width 1 is greedy, a hand-built model where it beats greedy, exhaustive
search on tiny vocabularies, and GNMT's length penalty on hand-computed scores."""

import itertools
import math

import pytest
import torch
from torch import nn

from rnnkit.decode import beam_search, greedy, length_penalty
from rnnkit.models import LanguageModel, LMConfig


class Trigram(nn.Module):
    """P(next | previous token, current token) from a table ``probs[prev, cur]``. The state is
    the previous token, shaped (B, 1) with the batch on dim -2, so a beam search that fails to
    reorder the state scores the wrong rows."""

    def __init__(self, probs_VVV):
        super().__init__()
        self.logp_VVV = probs_VVV.log()

    def forward(self, ids_BT, state):
        B, T = ids_BT.shape
        prev_B = ids_BT.new_zeros(B) if state is None else state[0][:, 0].long()
        logits = []
        for t in range(T):
            cur_B = ids_BT[:, t]
            logits.append(self.logp_VVV[prev_B, cur_B])
            prev_B = cur_B
        return torch.stack(logits, dim=1), (prev_B[:, None].double(),)


def hand_built():
    """Prompt [0] (previous token 0 at the start). Greedy takes 1 (0.55) then 0 (0.4): 0.22.
    The best two tokens are 2 (0.4) then 0 (0.9): 0.36."""
    probs = torch.full((3, 3, 3), 1 / 3)
    probs[0, 0] = torch.tensor([0.05, 0.55, 0.40])
    probs[0, 1] = torch.tensor([0.40, 0.30, 0.30])
    probs[0, 2] = torch.tensor([0.90, 0.05, 0.05])
    return Trigram(probs)


@torch.no_grad()
def log_prob(model, prompt, ids):
    logits_1TV, _ = model(torch.tensor([prompt + ids]), None)
    logp_TV = logits_1TV[0].log_softmax(-1)
    return sum(float(logp_TV[len(prompt) - 1 + i, tok]) for i, tok in enumerate(ids))


def brute_force(model, prompt, vocab_size, length):
    return max(itertools.product(range(vocab_size), repeat=length),
               key=lambda ids: log_prob(model, prompt, list(ids)))


def random_lm(vocab_size):
    torch.manual_seed(11)
    return LanguageModel(LMConfig(vocab_size=vocab_size, embed_size=4, hidden_size=5, num_layers=2)).eval()


def test_beam_finds_the_best_sequence_where_greedy_does_not():
    model, prompt = hand_built(), torch.tensor([0])
    assert greedy(model, prompt, max_new_tokens=2).tolist() == [1, 0]
    best = beam_search(model, prompt, beam_width=2, max_new_tokens=2)[0]
    assert best.ids_T.tolist() == [2, 0]
    assert best.log_prob == pytest.approx(math.log(0.4 * 0.9))
    assert not best.finished


def test_width_1_is_greedy():
    model, prompt = random_lm(6), torch.tensor([1, 4, 2])
    best = beam_search(model, prompt, beam_width=1, max_new_tokens=12)[0]
    assert best.ids_T.tolist() == greedy(model, prompt, max_new_tokens=12).tolist()


@pytest.mark.parametrize("make", [lambda: random_lm(3), lambda: Trigram(torch.rand(4, 4, 4) + 0.05)],
                         ids=["lstm", "trigram"])
def test_a_beam_as_wide_as_the_tree_is_exhaustive(make):
    torch.manual_seed(2)
    model = make()
    V = model.logp_VVV.shape[0] if isinstance(model, Trigram) else 3
    prompt, length = [1, 0], 3
    hyps = beam_search(model, torch.tensor(prompt), beam_width=V ** (length - 1), max_new_tokens=length)
    expected = brute_force(model, prompt, V, length)
    assert hyps[0].ids_T.tolist() == list(expected)
    assert hyps[0].log_prob == pytest.approx(log_prob(model, prompt, list(expected)))
    # every returned hypothesis carries its own score: the state followed its beam
    for h in hyps:
        assert h.log_prob == pytest.approx(log_prob(model, prompt, h.ids_T.tolist()))
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def eos_model():
    """eos = 2. From the prompt: P = 0.02, 0.58, 0.40; after token 1: 0.02, 0.36, 0.62.
    [eos] has log 0.40 = -0.916; [1, eos] has log(0.58 * 0.62) = log 0.3596 = -1.023."""
    probs = torch.full((3, 3, 3), 1 / 3)
    probs[0, 0] = torch.tensor([0.02, 0.58, 0.40])
    probs[0, 1] = torch.tensor([0.02, 0.36, 0.62])
    return Trigram(probs)


def test_length_penalty_formula():
    assert length_penalty(1, 1.0) == 1.0  # (5 + 1) / 6
    assert length_penalty(7, 0.5) == pytest.approx(math.sqrt(2.0))  # (5 + 7) / 6 = 2
    assert length_penalty(30, 0.0) == 1.0


def test_without_penalty_the_shorter_more_probable_hypothesis_wins():
    best = beam_search(eos_model(), torch.tensor([0]), beam_width=2, max_new_tokens=3, eos_id=2)[0]
    assert best.ids_T.tolist() == [2] and best.finished
    assert best.score == pytest.approx(math.log(0.40))


def test_the_gnmt_penalty_favours_the_longer_hypothesis():
    # alpha = 1: [eos] scores -0.916 / 1; [1, eos] scores -1.023 / (7/6) = -0.877, which wins
    best = beam_search(eos_model(), torch.tensor([0]), beam_width=2, max_new_tokens=3, eos_id=2,
                       alpha=1.0)[0]
    assert best.ids_T.tolist() == [1, 2] and best.finished
    assert best.score == pytest.approx(math.log(0.58 * 0.62) / (7 / 6))


def test_state_is_reordered_for_a_two_layer_lstm():
    # (L, B, H) states: the batch sits on dim -2; a wrong reorder would break this equality
    model, prompt = random_lm(4), [3]
    hyps = beam_search(model, torch.tensor(prompt), beam_width=3, max_new_tokens=5)
    assert len(hyps) == 3
    for h in hyps:
        assert h.log_prob == pytest.approx(log_prob(model, prompt, h.ids_T.tolist()))


def test_zero_new_tokens_and_bad_arguments():
    model = random_lm(3)
    assert beam_search(model, torch.tensor([0]), beam_width=2, max_new_tokens=0)[0].ids_T.tolist() == []
    with pytest.raises(ValueError, match="beam_width must be an int >= 1, got 0"):
        beam_search(model, torch.tensor([0]), beam_width=0, max_new_tokens=2)
    for alpha in (-1, float("inf")):  # inf scored every longer hypothesis -0.0
        with pytest.raises(ValueError, match=r"alpha \(the length penalty exponent\) must be a finite number "
                                             rf">= 0, got {alpha}"):
            beam_search(model, torch.tensor([0]), beam_width=2, max_new_tokens=2, alpha=alpha)
