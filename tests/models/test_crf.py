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


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_padding_is_never_read(bad):
    """NaN or ±inf emissions past a row's length change no loss, gradient or path
    (``emissions * mask`` made NaN of them: NaN * 0 is NaN)."""
    crf = make()
    e_BTC = torch.randn(4, 4, 3)
    y_BT = torch.randint(0, 3, (4, 4))
    pad_BT = torch.arange(4)[None, :] >= LENGTHS[:, None]
    dirty = e_BTC.masked_fill(pad_BT[..., None], bad).requires_grad_(True)
    nll_B = crf.nll(dirty, y_BT, LENGTHS)
    torch.testing.assert_close(nll_B, crf.nll(e_BTC, y_BT, LENGTHS))
    nll_B.sum().backward()
    assert torch.isfinite(dirty.grad).all() and (dirty.grad[pad_BT] == 0).all()
    assert torch.equal(crf.viterbi(dirty.detach(), LENGTHS)[0], crf.viterbi(e_BTC, LENGTHS)[0])


def two_tag_crf(gap, dtype):
    """C = 2, start = end = 0, A = [[0, -gap], [-gap, 0]], and one sentence of 2 tokens with
    P = [[0, -gap], [-gap, 0]]. The four paths (y1, y2) score P[1, y1] + A[y1, y2] + P[2, y2]:
    (0, 0) = 0 + 0 - gap, (0, 1) = 0 - gap + 0, (1, 1) = -gap + 0 + 0, (1, 0) = -3 gap, so
    log Z = log(3 e^-gap + e^-3gap) = -gap + log(3 + e^-2gap)."""
    crf = LinearChainCRF(2).to(dtype)
    with torch.no_grad():
        crf.transitions_CC.copy_(torch.tensor([[0.0, -gap], [-gap, 0.0]]))
        crf.start_C.zero_()
        crf.end_C.zero_()
    e_BTC = torch.tensor([[[0.0, -gap], [-gap, 0.0]]], dtype=dtype)
    expected = -gap + torch.log(3 + torch.exp(torch.tensor(-2 * gap, dtype=torch.float64)))
    return crf, e_BTC, expected


@pytest.mark.parametrize("dtype, gap", [(torch.float32, 50.0), (torch.float32, 90.0),
                                        (torch.float32, 1e4), (torch.float64, 800.0)])
def test_log_partition_is_exact_where_every_path_into_a_tag_is_far_below_the_shift(dtype, gap):
    """Step 2 into tag 1 comes from α_1 = (0, -gap) through A[:, 1] = (-gap, 0): both terms are
    e^-gap below m + s_1 = 0, which underflowed (float32: below e^-87) and was clamped to the
    smallest normal number, so log Z was -87.3 for gap 90 (expected -88.9) and wrong by whole
    nats; float64 the same at gap 800 (below e^-708)."""
    crf, e_BTC, expected = two_tag_crf(gap, dtype)
    e_BTC.requires_grad_(True)
    logZ = crf.log_partition(e_BTC, torch.tensor([2]))
    torch.testing.assert_close(logZ.double(), expected[None], rtol=1e-6, atol=1e-6)
    logZ.sum().backward()
    assert torch.isfinite(e_BTC.grad).all()


def test_float32_with_constraint_transitions_matches_float64():
    """BIO constraints as users write them: -1e4 for I-X after O or after another type
    (tags O, B-PER, I-PER, B-LOC, I-LOC), emissions of scale 30, ragged lengths; float32
    log Z and its gradient equal the float64 textbook recursion."""
    torch.manual_seed(1)
    crf = make(5)
    forbidden = [(0, 2), (0, 4), (1, 4), (2, 4), (3, 2), (4, 2)]  # (from, to)
    with torch.no_grad():
        for i, j in forbidden:
            crf.transitions_CC[i, j] = -1e4
        crf.start_C[[2, 4]] = -1e4
    lengths_B = torch.tensor([7, 1, 5, 3, 7, 6])
    e_BTC = 30 * torch.randn(6, 7, 5)
    ref = copy.deepcopy(crf).double()
    e64 = e_BTC.double().clone().requires_grad_(True)
    expected = reference_log_partition(ref, e64, lengths_B)
    e32 = e_BTC.float().clone().requires_grad_(True)
    logZ = crf.float().log_partition(e32, lengths_B)
    torch.testing.assert_close(logZ.double(), expected, rtol=1e-6, atol=1e-3)
    logZ.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(e32.grad.double(), e64.grad, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(crf.double().log_partition(e64.detach(), lengths_B), expected.detach())
