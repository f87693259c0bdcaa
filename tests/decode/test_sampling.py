"""Greedy decoding and sampling: hand-computed masks, an argmax rollout, explicit generators."""

import math
import re

import pytest
import torch

from rnnkit.decode import greedy, mask_top_k, mask_top_p, sample, sampling_pick, stream
from rnnkit.models import LanguageModel, LMConfig

INF = float("inf")


def tiny_lm(vocab_size=7, dropout=0.0):
    torch.manual_seed(3)
    return LanguageModel(LMConfig(vocab_size=vocab_size, embed_size=5, hidden_size=6, num_layers=2,
                                  dropout=dropout))


def test_top_k_keeps_the_k_largest_of_each_row():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.5],
                           [-1.0, -2.0, 4.0, 0.0]])
    # row 0: the two largest are 3.0 (id 1) and 2.0 (id 2); row 1: 4.0 (id 2) and 0.0 (id 3)
    expected = torch.tensor([[-INF, 3.0, 2.0, -INF],
                             [-INF, -INF, 4.0, 0.0]])
    torch.testing.assert_close(mask_top_k(logits, 2), expected)


def test_top_k_keeps_ties_with_the_kth_and_all_when_k_is_large():
    logits = torch.tensor([[2.0, 1.0, 2.0, 0.0]])
    torch.testing.assert_close(mask_top_k(logits, 1), torch.tensor([[2.0, -INF, 2.0, -INF]]))
    torch.testing.assert_close(mask_top_k(logits, 9), logits)


@pytest.mark.parametrize(("p", "kept"), [
    # probabilities 0.5, 0.3, 0.15, 0.05 at ids 2, 0, 3, 1; the mass before each in that
    # order is 0, 0.5, 0.8, 0.95, and a token is kept while the mass before it is < p
    (0.3, [2]),  # 0.5 alone already reaches 0.3
    (0.7, [2, 0]),  # 0.5 < 0.7, then 0.8 >= 0.7
    (0.9, [2, 0, 3]),
    (0.99, [2, 0, 3, 1]),
    (1.0, [2, 0, 3, 1]),
])
def test_top_p_keeps_the_smallest_nucleus_reaching_p(p, kept):
    probs = torch.tensor([0.3, 0.05, 0.5, 0.15])
    logits = probs.log().unsqueeze(0)
    masked = mask_top_p(logits, p)[0]
    assert sorted(torch.isfinite(masked).nonzero().flatten().tolist()) == sorted(kept)
    torch.testing.assert_close(masked[kept], logits[0, kept])


def test_top_p_of_one_keeps_a_large_vocabulary_whole():
    """float32 sums of 50,000 probabilities reach 1 before the end: p = 1 must still keep
    every token, and p just below 1 only the tail that the float64 sum leaves out."""
    logits = torch.randn(2, 50_000, generator=torch.Generator().manual_seed(0)) * 3
    assert torch.isfinite(mask_top_p(logits, 1.0)).all()
    kept = torch.isfinite(mask_top_p(logits, 1 - 1e-6))
    probs = logits.double().softmax(-1)
    assert ((probs * ~kept).sum(-1) <= 1.000001e-6).all() and kept.sum() > 0.9 * kept.numel()


def test_top_p_works_row_by_row():
    logits = torch.tensor([[0.9, 0.1], [0.4, 0.6]]).log()
    masked = mask_top_p(logits, 0.5)  # row 0 keeps id 0 (0.9); row 1 keeps id 1 (0.6)
    assert torch.isfinite(masked).tolist() == [[True, False], [False, True]]


@pytest.mark.parametrize(("fn", "arg", "message"), [
    (mask_top_k, 0, "top_k must be an int >= 1, got 0"),
    (mask_top_p, 0.0, "top_p must be a number in (0, 1], got 0.0"),
    (mask_top_p, 1.5, "top_p must be a number in (0, 1], got 1.5"),
])
def test_masks_reject_bad_arguments(fn, arg, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fn(torch.zeros(1, 3), arg)


def test_greedy_equals_an_argmax_rollout_without_carried_state():
    model = tiny_lm().eval()
    prompt = torch.tensor([3, 1, 4])
    ids = prompt.tolist()
    for _ in range(10):  # rerun the whole sequence every step: no state is carried
        logits_1TV, _ = model(torch.tensor([ids]), None)
        ids.append(int(logits_1TV[0, -1].argmax()))
    assert greedy(model, prompt, max_new_tokens=10).tolist() == ids[3:]


def test_sampling_is_repeatable_and_leaves_the_global_rng_alone():
    model = tiny_lm()
    prompt = torch.tensor([2])
    before = torch.get_rng_state()
    a = sample(model, prompt, max_new_tokens=30, generator=torch.Generator().manual_seed(5), top_p=0.9)
    b = sample(model, prompt, max_new_tokens=30, generator=torch.Generator().manual_seed(5), top_p=0.9)
    c = sample(model, prompt, max_new_tokens=30, generator=torch.Generator().manual_seed(6), top_p=0.9)
    assert torch.equal(torch.get_rng_state(), before)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


def test_top_k_1_sampling_is_greedy():
    model = tiny_lm()
    prompt = torch.tensor([0, 6])
    drawn = sample(model, prompt, max_new_tokens=12, top_k=1, temperature=2.0,
                   generator=torch.Generator().manual_seed(0))
    assert drawn.tolist() == greedy(model, prompt, max_new_tokens=12).tolist()


def test_a_vanishing_temperature_is_greedy_not_nan():
    """logits / 1e-40 overflow to inf (and softmax to NaN) unless the largest is moved to 0 first."""
    logits = torch.randn(64, 50, generator=torch.Generator().manual_seed(3)) * 5
    for temperature in (1e-40, 1e-46, 5e-324):  # the last two are 0 in float32: the largest's 0/0
        ids = sampling_pick(temperature=temperature, generator=torch.Generator().manual_seed(4))(logits)
        assert ids.tolist() == logits.argmax(-1).tolist()


def test_sampling_frequencies_follow_the_renormalised_nucleus():
    # probs 0.5, 0.3, 0.15, 0.05; top_p=0.7 keeps ids 0 and 1 with 0.5/0.8 and 0.3/0.8
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log().expand(4000, 4)
    pick = sampling_pick(top_p=0.7, generator=torch.Generator().manual_seed(1))
    ids = pick(logits)
    counts = torch.bincount(ids, minlength=4).tolist()
    assert counts[2] == counts[3] == 0
    sd = math.sqrt(0.625 * 0.375 / 4000)  # binomial standard error, about 0.0077
    assert abs(counts[0] / 4000 - 0.625) < 4 * sd


def test_temperature_sharpens():
    # at tau = 0.25 the probabilities are proportional to p^4: 0.6^4 / (0.6^4 + 0.4^4) = 0.835
    logits = torch.tensor([0.6, 0.4]).log().expand(4000, 2)
    ids = sampling_pick(temperature=0.25, generator=torch.Generator().manual_seed(2))(logits)
    share = float((ids == 0).double().mean())
    assert abs(share - 0.6**4 / (0.6**4 + 0.4**4)) < 4 * math.sqrt(0.835 * 0.165 / 4000)


def test_stream_yields_ints_in_eval_mode_and_restores_the_mode():
    model = tiny_lm(dropout=0.5).train()
    pieces = stream(model, torch.tensor([1]), max_new_tokens=3)
    first = next(pieces)
    assert isinstance(first, int) and not model.training
    rest = list(pieces)
    assert len(rest) == 2 and model.training
    # dropout is off while decoding: greedy is the same in either mode
    assert greedy(model, torch.tensor([1]), max_new_tokens=5).tolist() == \
        greedy(model.eval(), torch.tensor([1]), max_new_tokens=5).tolist()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"temperature": 0.0}, "temperature must be a finite number > 0"),
    ({"temperature": float("inf")}, "temperature must be a finite number > 0"),  # uniform, NaN from -inf
    ({"top_k": -1}, "top_k must be an int >= 1, got -1"),
    ({"top_p": 2.0}, r"top_p must be a number in \(0, 1\], got 2.0"),
])
def test_sampling_pick_rejects_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sampling_pick(**kwargs)


def test_stream_rejects_an_empty_prompt():
    with pytest.raises(ValueError, match=r"prompt_ids_T must be a non-empty 1-D int64 tensor, "
                                         r"got shape \(0,\)"):
        list(stream(tiny_lm(), torch.tensor([], dtype=torch.long), max_new_tokens=2))
