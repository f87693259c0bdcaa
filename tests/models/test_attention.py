"""GlobalAttention: each score against a loop over source positions written from Luong et
al. 2015, eq. 7-8, on random inputs; padding gets weight 0 and cannot change the context."""

import pytest
import torch

from rnnkit.models.attention import GlobalAttention

B, S, H, A = 3, 5, 4, 6
LENGTHS = torch.tensor([5, 1, 3])  # includes 1 and S


def reference(att, query_BH, memory_BSH, lengths_B):
    """score(h_t, h̄_s) by the paper's formula, one (b, s) at a time; softmax over s < length."""
    context, weights = torch.zeros(B, H), torch.zeros(B, S)
    for b in range(B):
        h_t, n = query_BH[b], int(lengths_B[b])
        scores = []
        for s in range(n):
            hs = memory_BSH[b, s]
            if att.score == "dot":
                scores.append(h_t @ hs)
            elif att.score == "general":
                scores.append(h_t @ att.W_a.weight @ hs)
            else:  # v_aᵀ tanh(W_a [h_t; h̄_s]) with W_a = [W_q W_k]
                W_a = torch.cat([att.W_q.weight, att.W_k.weight], dim=1)
                scores.append(att.v_a.weight[0] @ torch.tanh(W_a @ torch.cat([h_t, hs])))
        a = torch.softmax(torch.stack(scores), dim=0)
        weights[b, :n] = a
        context[b] = (a[:, None] * memory_BSH[b, :n]).sum(dim=0)
    return context, weights


@pytest.mark.parametrize("score", ["dot", "general", "additive"])
def test_matches_the_paper_formula(score):
    att = GlobalAttention(score, H, attention_size=A)
    query_BH, memory_BSH = torch.randn(B, H), torch.randn(B, S, H)
    mask_BS = torch.arange(S) < LENGTHS[:, None]
    context_BH, weights_BS = att(query_BH, att.keys(memory_BSH), memory_BSH, mask_BS)
    want_context, want_weights = reference(att, query_BH, memory_BSH, LENGTHS)
    torch.testing.assert_close(weights_BS, want_weights)
    torch.testing.assert_close(context_BH, want_context)


@pytest.mark.parametrize("score", ["dot", "general", "additive"])
def test_padding_is_invisible(score):
    att = GlobalAttention(score, H, attention_size=A)
    query_BH, memory_BSH = torch.randn(B, H), torch.randn(B, S, H)
    mask_BS = torch.arange(S) < LENGTHS[:, None]
    noisy_BSH = torch.where(mask_BS[..., None], memory_BSH, 100 * torch.randn(B, S, H))
    context_BH, weights_BS = att(query_BH, att.keys(memory_BSH), memory_BSH, mask_BS)
    torch.testing.assert_close(att(query_BH, att.keys(noisy_BSH), noisy_BSH, mask_BS)[0], context_BH)
    assert weights_BS[~mask_BS].abs().max() == 0
    torch.testing.assert_close(weights_BS.sum(dim=1), torch.ones(B))


def test_parameters_per_score():
    assert not list(GlobalAttention("dot", H).parameters())
    assert [p.shape for p in GlobalAttention("general", H).parameters()] == [(H, H)]
    additive = GlobalAttention("additive", H, attention_size=A)
    assert {n: tuple(p.shape) for n, p in additive.named_parameters()} == {
        "W_q.weight": (A, H), "W_k.weight": (A, H), "v_a.weight": (1, A)}
    with pytest.raises(ValueError, match=r"score must be one of \['additive', 'dot', 'general'\], got 'conc"):
        GlobalAttention("concat", H)
