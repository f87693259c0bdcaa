"""Input regularisers for sequences: locked dropout (one mask per sequence), embedding
dropout (whole words) and additive Gaussian noise.

Merity et al. (2018), AWD-LSTM, Section 4: ``LockedDropout`` applies the same mask at every
time step (Gal & Ghahramani 2016); ``EmbeddingDropout`` drops whole rows of the embedding
matrix, so a word is dropped everywhere it occurs in the batch. ``GaussianNoise`` is Keras's
layer of that name: x + N(0, std²) in training, the identity in evaluation; on standardised
series it is the "jitter" augmentation of time-series classification (Iwana & Uchida 2021).
The cell-level regularisers (recurrent dropout, zoneout, weight drop) are wrappers in
``rnnkit.cells.wrappers``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.wrappers import _check_scaled_p


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence, shared over time. Shapes: (B, T, F) -> (B, T, F)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = _check_scaled_p("p", p)

    def forward(self, x_BTF: Tensor) -> Tensor:
        if x_BTF.dim() != 3:
            raise ValueError(f"x_BTF must be 3-D (batch, time, features), got shape {tuple(x_BTF.shape)}")
        if not self.training or self.p == 0.0:
            return x_BTF
        keep_B1F = x_BTF.new_full((x_BTF.shape[0], 1, x_BTF.shape[2]), 1.0 - self.p)
        return x_BTF * (keep_B1F.bernoulli() / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class EmbeddingDropout(nn.Module):
    """An ``nn.Embedding`` whose rows (whole words) are dropped with probability ``p``.

    Shapes: tokens (B, T) integer -> (B, T, E).
    """

    def __init__(self, embedding: nn.Embedding, p: float):
        super().__init__()
        if not isinstance(embedding, nn.Embedding):
            raise TypeError(f"embedding must be an nn.Embedding, got {type(embedding).__name__}")
        self.embedding, self.p = embedding, _check_scaled_p("p", p)

    def forward(self, tokens_BT: Tensor) -> Tensor:
        weight_VE = self.embedding.weight
        if self.training and self.p > 0.0:
            keep_V1 = weight_VE.new_full((weight_VE.shape[0], 1), 1.0 - self.p)
            weight_VE = weight_VE * (keep_V1.bernoulli() / (1.0 - self.p))
        e = self.embedding
        return F.embedding(tokens_BT, weight_VE, e.padding_idx, e.max_norm, e.norm_type,
                           e.scale_grad_by_freq, e.sparse)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianNoise(nn.Module):
    """x + std * N(0, 1) in training mode, x in evaluation mode. Shapes: any -> same."""

    def __init__(self, std: float):
        super().__init__()
        if isinstance(std, bool) or not isinstance(std, (int, float)) or not 0.0 <= std < float("inf"):
            raise ValueError(f"std must be a finite float >= 0, got {std!r}")
        self.std = float(std)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.std == 0.0:
            return x
        return x + self.std * torch.randn_like(x)

    def extra_repr(self) -> str:
        return f"std={self.std}"
