"""A linear-chain CRF over per-token emission scores (Lafferty et al. 2001), as the output
layer of a BiLSTM tagger (Lample et al. 2016, sec. 2.2; Huang et al. 2015).

For emissions P (T, C) of one sentence of length L and a tag sequence y, with a learned
transition matrix A (A[i, j]: from tag i to tag j) and start/end scores:

    s(y)   = start[y_1] + Σ_{t=1..L} P[t, y_t] + Σ_{t=2..L} A[y_{t-1}, y_t] + end[y_L]
    log Z  = log Σ_{y'} exp s(y')                      (over all C^L sequences)
    −log p(y | P) = log Z − s(y)

log Z by the forward algorithm, in log space:

    α_1(j) = start[j] + P[1, j]
    α_t(j) = P[t, j] + logsumexp_i (α_{t-1}(i) + A[i, j])        t = 2..L
    log Z  = logsumexp_j (α_L(j) + end[j])

The logsumexp over i is computed as one matrix product per step, shifted by the row maximum
m = max_i α_{t-1}(i) and the column maxima s_j = max_i A[i, j] so that nothing overflows:

    α_t(j) = P[t, j] + m + s_j + log Σ_i exp(α_{t-1}(i) − m) · exp(A[i, j] − s_j)

which is (B, C) @ (C, C) instead of a (B, C, C) tensor: about 15x faster on CPU for C = 178
(forward and backward). Its terms are at most 1; those below the smallest normal number
(``tiny``: e^-87.3 in float32) are rounded to subnormals or 0, so the sum is off by less
than C·tiny. Where the sum is at least τ = C·tiny/ε (ε the dtype's machine epsilon; in
float32 e^-69.2 for C = 9, e^-66.2 for C = 178) that is less than one rounding step. A row
where some step's sum is smaller (every path into some tag lies about 66 nats or more below
m + s_j: constraint transitions of -1e4 beside allowed ones, or emissions of very different
scales) is computed again by the textbook recursion, logsumexp over a (C, C) tensor per
step. So log Z is exact up to rounding for any scores; the second pass costs time only for
the rows that need it, and the check costs one device sync per call.

Viterbi is the plain recursion with max for logsumexp, keeping the argmax i as a back-pointer.
Rows of a padded batch stop at their own length: past it, α (and the Viterbi score) is
carried unchanged and the back-pointer is the identity, so padding never changes a result;
its emissions are never read (replaced by 0 first: NaN or inf there changes nothing).

Deviation: Lample et al. add start and end as two extra tags of A; separate ``start_C`` and
``end_C`` vectors are the same model with C² + 2C instead of (C + 2)² parameters.

Shapes (dimension key of ``rnnkit``, plus C tags): emissions_BTC (B, T, C) float,
tags_BT (B, T) int64, lengths_B (B,) int64 in [1, T].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.kernels.reference import loop
from rnnkit.layers import lengths_to_mask


class LinearChainCRF(nn.Module):
    """Transition scores and the algorithms over them; the emissions come from outside.

    Arguments:
        num_tags: C.
    """

    def __init__(self, num_tags: int):
        super().__init__()
        if isinstance(num_tags, bool) or not isinstance(num_tags, int) or num_tags < 1:
            raise ValueError(f"num_tags must be an int >= 1, got {num_tags!r}")
        self.num_tags = num_tags
        # small random scores, so that no tag pair is favoured at the start (as pytorch-crf)
        self.transitions_CC = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))
        self.start_C = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end_C = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))

    def log_partition(self, emissions_BTC: Tensor, lengths_B: Tensor) -> Tensor:
        """log Z_B by the forward algorithm (module docstring)."""
        self._check(emissions_BTC, lengths_B)
        mask_BT = lengths_to_mask(lengths_B, emissions_BTC.shape[1])
        emissions_BTC = emissions_BTC.masked_fill(~mask_BT[..., None], 0.0)  # padding is never read
        logZ_B, small_B = self._forward_matmul(emissions_BTC, mask_BT)
        if not bool(small_B.any()):  # one sync per call, not per step
            return logZ_B
        rows_b = small_B.nonzero().squeeze(1)  # rare: those rows again, exactly
        return logZ_B.index_put((rows_b,), self._forward_logsumexp(emissions_BTC[rows_b], mask_BT[rows_b]))

    def _forward_matmul(self, emissions_BTC: Tensor, mask_BT: Tensor) -> tuple[Tensor, Tensor]:
        """log Z_B by the shifted matrix product, and whether a row's sum fell below τ at some
        step (where that log Z may be off by more than rounding; module docstring)."""
        s_C = self.transitions_CC.max(dim=0).values.detach()  # a shift: any constant is exact
        expA_CC = torch.exp(self.transitions_CC - s_C)  # [i, j]: from i to j, at most 1
        info = torch.finfo(emissions_BTC.dtype)
        tau = self.num_tags * info.tiny / info.eps
        alpha_BC = self.start_C + emissions_BTC[:, 0]
        small_B = torch.zeros_like(mask_BT[:, 0])
        for t in range(1, emissions_BTC.shape[1]):
            m_B1 = alpha_BC.max(dim=1, keepdim=True).values.detach()
            sum_BC = torch.exp(alpha_BC - m_B1) @ expA_CC
            small_B = small_B | ((sum_BC < tau).any(dim=1) & mask_BT[:, t])
            step_BC = emissions_BTC[:, t] + m_B1 + s_C + torch.log(sum_BC.clamp(min=info.tiny))
            alpha_BC = torch.where(mask_BT[:, t, None], step_BC, alpha_BC)  # padding: carry α
        return torch.logsumexp(alpha_BC + self.end_C, dim=1), small_B

    def _forward_logsumexp(self, emissions_BTC: Tensor, mask_BT: Tensor) -> Tensor:
        """log Z_B by the textbook recursion over a (B, C, C) tensor per step: exact, slower."""
        alpha_BC = self.start_C + emissions_BTC[:, 0]
        for t in range(1, emissions_BTC.shape[1]):
            step_BC = emissions_BTC[:, t] + torch.logsumexp(alpha_BC[:, :, None] + self.transitions_CC, dim=1)
            alpha_BC = torch.where(mask_BT[:, t, None], step_BC, alpha_BC)
        return torch.logsumexp(alpha_BC + self.end_C, dim=1)

    def score(self, emissions_BTC: Tensor, tags_BT: Tensor, lengths_B: Tensor) -> Tensor:
        """s_B(y): the unnormalised log score of ``tags_BT`` (padding positions are not read)."""
        self._check(emissions_BTC, lengths_B)
        if tags_BT.shape != emissions_BTC.shape[:2] or tags_BT.dtype != torch.long:
            raise ValueError(f"tags_BT must be int64 of shape {tuple(emissions_BTC.shape[:2])}, got "
                             f"{tags_BT.dtype} of shape {tuple(tags_BT.shape)}")
        mask_BT = lengths_to_mask(lengths_B, emissions_BTC.shape[1])
        tags_BT = tags_BT.masked_fill(~mask_BT, 0)  # any valid index; masked out below
        emit_BT = emissions_BTC.gather(2, tags_BT[..., None]).squeeze(2)
        trans_BT = self.transitions_CC[tags_BT[:, :-1], tags_BT[:, 1:]]  # (B, T - 1): y_{t-1} -> y_t
        last_B = tags_BT.gather(1, (lengths_B - 1)[:, None]).squeeze(1)
        return (self.start_C[tags_BT[:, 0]]
                + emit_BT.masked_fill(~mask_BT, 0.0).sum(dim=1)  # not `* mask`: NaN * 0 is NaN
                + trans_BT.masked_fill(~mask_BT[:, 1:], 0.0).sum(dim=1)
                + self.end_C[last_B])

    def nll(self, emissions_BTC: Tensor, tags_BT: Tensor, lengths_B: Tensor) -> Tensor:
        """−log p(y | P) per sentence, (B,): log Z − s(y)."""
        return self.log_partition(emissions_BTC, lengths_B) - self.score(emissions_BTC, tags_BT, lengths_B)

    @torch.no_grad()
    def viterbi(self, emissions_BTC: Tensor, lengths_B: Tensor) -> tuple[Tensor, Tensor]:
        """The highest-scoring tag sequence of each row and its score s(y*).

        Returns:
            ``(tags_BT, score_B)``; positions past a row's length hold its last tag.
        """
        self._check(emissions_BTC, lengths_B)
        B, T, C = emissions_BTC.shape
        steps_T1 = torch.arange(T, device=emissions_BTC.device)[:, None]
        live_TB = (steps_T1 < lengths_B) & (steps_T1 > 0)  # step 1 passed over (below)
        identity_BC = torch.arange(C, device=emissions_BTC.device).expand(B, C)
        # detached (a no-op under no_grad): exported, torch's scan would otherwise take these to
        # want gradients and fail on its integer output
        pad_BT1 = (steps_T1.T >= lengths_B[:, None])[..., None]
        P_BTC, A_CC = emissions_BTC.detach().masked_fill(pad_BT1, 0.0), self.transitions_CC.detach()

        def forward_step(delta_BC: Tensor, xs: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
            """δ_t(j) = P[t, j] + max_i (δ_{t-1}(i) + A[i, j]); ψ_t(j) = its argmax i."""
            emissions_BC, live_B = xs
            best_BC, psi_BC = (delta_BC[:, :, None] + A_CC).max(dim=1)
            delta_BC = torch.where(live_B[:, None], best_BC + emissions_BC, delta_BC)
            return delta_BC, torch.where(live_B[:, None], psi_BC, identity_BC)  # padding: identity

        def back_step(tag_B: Tensor, xs: tuple[Tensor]) -> tuple[Tensor, Tensor]:
            """y_t, and y_{t-1} = ψ_t(y_t) to carry."""
            (psi_BC,) = xs
            return psi_BC.gather(1, tag_B[:, None]).squeeze(1), tag_B.clone()  # scan's output may not alias

        # over every step, the first passed over (δ_1 = start + P[1], ψ_1 the identity): T - 1
        # steps would be a length torch.export cannot take to be 0
        delta_BC = self.start_C.detach() + P_BTC[:, 0]
        delta_BC, psi_TBC = loop(forward_step, delta_BC, (P_BTC.transpose(0, 1), live_TB))
        score_B, tag_B = (delta_BC + self.end_C).max(dim=1)
        _, tags_TB = loop(back_step, tag_B, (psi_TBC.flip(0),))  # walk back from the last step
        return tags_TB.flip(0).T, score_B

    def _check(self, emissions_BTC: Tensor, lengths_B: Tensor) -> None:
        if emissions_BTC.dim() != 3 or emissions_BTC.shape[2] != self.num_tags \
                or not emissions_BTC.is_floating_point():
            raise ValueError(f"emissions_BTC must be float (B, T, {self.num_tags}), got "
                             f"{emissions_BTC.dtype} of shape {tuple(emissions_BTC.shape)}")
        B, T, _ = emissions_BTC.shape
        if lengths_B.shape != (B,) or lengths_B.dtype != torch.long:
            raise ValueError(f"lengths_B must be int64 of shape ({B},), got {lengths_B.dtype} of "
                             f"shape {tuple(lengths_B.shape)}")
        if torch.compiler.is_compiling():  # reading the values would break the graph
            torch._assert_async(((lengths_B >= 1) & (lengths_B <= T)).all(), f"lengths_B must be in [1, {T}]")
        elif B and (int(lengths_B.min()) < 1 or int(lengths_B.max()) > T):
            raise ValueError(f"lengths_B must be in [1, {T}], got [{int(lengths_B.min())}, "
                             f"{int(lengths_B.max())}]")
