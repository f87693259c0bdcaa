"""LinearChainCRF against brute-force enumeration of every tag sequence (float64)."""

import copy
import itertools

import pytest
import torch

from rnnkit.models.crf import LinearChainCRF

LENGTHS = torch.tensor([4, 1, 3, 2])  # includes 1 and T


def make(C=3):
    crf = LinearChainCRF(C)
    with torch.no_grad():  # scores far from the init's ±0.1, so that a wrong index shows
        for p in crf.parameters():
            p.copy_(torch.randn_like(p))
    return crf


def brute_score(crf, e_TC, y):
    """s(y) written out from the definition in the module docstring."""
    s = crf.start_C[y[0]] + crf.end_C[y[-1]] + sum(e_TC[t, y[t]] for t in range(len(y)))
    return s + sum(crf.transitions_CC[y[t - 1], y[t]] for t in range(1, len(y)))


def all_paths(C, L):
    return [list(y) for y in itertools.product(range(C), repeat=L)]


@pytest.mark.parametrize("C", [1, 2, 3])
def test_log_partition_and_viterbi_equal_brute_force(C):
    crf = make(C)
    e_BTC = torch.randn(4, 4, C)
    logZ_B = crf.log_partition(e_BTC, LENGTHS)
    tags_BT, best_B = crf.viterbi(e_BTC, LENGTHS)
    for b, L in enumerate(LENGTHS.tolist()):
        scores = torch.stack([brute_score(crf, e_BTC[b], y) for y in all_paths(C, L)])
        torch.testing.assert_close(logZ_B[b], torch.logsumexp(scores, 0))
        best = all_paths(C, L)[int(scores.argmax())]
        assert tags_BT[b, :L].tolist() == best
        torch.testing.assert_close(best_B[b], scores.max())
        assert (tags_BT[b, L:] == best[-1]).all()  # padding holds the last tag (docstring)


def reference_log_partition(crf, e_BTC, lengths_B):
    """The textbook recursion, α_t(j) = P[t, j] + logsumexp_i(α_{t-1}(i) + A[i, j])."""
    alpha = crf.start_C + e_BTC[:, 0]
    for t in range(1, e_BTC.shape[1]):
        step = torch.logsumexp(alpha[:, :, None] + crf.transitions_CC, dim=1) + e_BTC[:, t]
        alpha = torch.where((t < lengths_B)[:, None], step, alpha)
    return torch.logsumexp(alpha + crf.end_C, dim=1)


def test_matrix_product_recursion_survives_large_scores_in_float32():
    """Scores of ±100s: the shifted matrix product stays finite and matches the textbook
    recursion run in float64; its gradient has no NaN."""
    crf = make(5)
    with torch.no_grad():
        crf.transitions_CC.mul_(60)
    crf = crf.float()
    e_BTC = (80 * torch.randn(4, 4, 5)).float().requires_grad_(True)
    logZ_B = crf.log_partition(e_BTC, LENGTHS)
    expected = reference_log_partition(copy.deepcopy(crf).double(), e_BTC.detach().double(), LENGTHS)
    torch.testing.assert_close(logZ_B.double(), expected, rtol=1e-5, atol=1e-3)
    logZ_B.sum().backward()
    assert torch.isfinite(e_BTC.grad).all()


def test_score_and_nll_equal_definition():
    crf = make()
    e_BTC = torch.randn(4, 4, 3)
    y_BT = torch.randint(0, 3, (4, 4))
    s_B = crf.score(e_BTC, y_BT, LENGTHS)
    for b, L in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(s_B[b], brute_score(crf, e_BTC[b], y_BT[b, :L].tolist()))
    # probabilities of all paths of one sentence sum to one
    L = 3
    paths = torch.tensor(all_paths(3, L))
    e = e_BTC[2:3, :L].expand(len(paths), L, 3)
    p = torch.exp(-crf.nll(e, paths, torch.full((len(paths),), L)))
    torch.testing.assert_close(p.sum(), torch.tensor(1.0))


def test_padding_changes_nothing():
    crf = make()
    e_BTC = torch.randn(4, 4, 3)
    y_BT = torch.randint(0, 3, (4, 4))
    pad_BT = torch.arange(4)[None, :] >= LENGTHS[:, None]
    other_e = torch.where(pad_BT[..., None], 50 * torch.randn(4, 4, 3), e_BTC)
    other_y = torch.where(pad_BT, torch.randint(0, 3, (4, 4)), y_BT)
    torch.testing.assert_close(crf.nll(e_BTC, y_BT, LENGTHS), crf.nll(other_e, other_y, LENGTHS))
    tags_BT, _ = crf.viterbi(e_BTC, LENGTHS)
    for b, L in enumerate(LENGTHS.tolist()):  # a padded batch equals each row alone
        one = torch.tensor([L])
        torch.testing.assert_close(crf.nll(e_BTC[b:b + 1, :L], y_BT[b:b + 1, :L], one),
                                   crf.nll(e_BTC, y_BT, LENGTHS)[b:b + 1])
        assert crf.viterbi(e_BTC[b:b + 1, :L], one)[0][0].tolist() == tags_BT[b, :L].tolist()


class _NLL(torch.nn.Module):
    """crf.nll as a forward, so that torch.func.functional_call can swap the parameters in."""

    def __init__(self, crf):
        super().__init__()
        self.crf = crf

    def forward(self, e_BTC, y_BT):
        return self.crf.nll(e_BTC, y_BT, LENGTHS)


def test_gradcheck_nll():
    module = _NLL(make())
    names = ["crf.transitions_CC", "crf.start_C", "crf.end_C"]
    params = [p.detach().clone().requires_grad_(True) for p in module.parameters()]
    e_BTC = torch.randn(4, 4, 3, requires_grad=True)
    y_BT = torch.randint(0, 3, (4, 4))

    def nll(e, *ps):
        return torch.func.functional_call(module, dict(zip(names, ps, strict=True)), (e, y_BT))

    assert torch.autograd.gradcheck(nll, (e_BTC, *params))


def test_bad_input_is_reported():
    crf = make()
    with pytest.raises(ValueError, match=r"emissions_BTC must be float \(B, T, 3\)"):
        crf.log_partition(torch.randn(2, 4, 5), torch.tensor([4, 4]))
    with pytest.raises(ValueError, match=r"lengths_B must be in \[1, 4\], got \[0, 4\]"):
        crf.log_partition(torch.randn(2, 4, 3), torch.tensor([4, 0]))
    with pytest.raises(ValueError, match="num_tags must be an int >= 1"):
        LinearChainCRF(0)
