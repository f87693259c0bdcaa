"""Variable-length batches without PackedSequence: padding always stays at the end.

Shapes:
    lengths_B: (B,) integer, each in [1, T]; mask_BT: (B, T) bool, True on real steps.
"""

from __future__ import annotations

import torch
from torch import Tensor


def lengths_to_mask(lengths_B: Tensor, time: int) -> Tensor:
    """``mask_BT[b, t] = t < lengths_B[b]``."""
    t_T = torch.arange(time, device=lengths_B.device)
    return t_T < lengths_B[:, None]


def flip_padded(x_BT: Tensor, lengths_B: Tensor | None) -> Tensor:
    """Reverse each row of ``x_BT...`` within its own length; padding stays where it is.

    ``flip_padded(flip_padded(x, l), l) == x``. With ``lengths_B=None`` it is ``x.flip(1)``.
    """
    if lengths_B is None:
        return x_BT.flip(1)
    B, T = x_BT.shape[:2]
    t_T = torch.arange(T, device=x_BT.device)
    src_BT = torch.where(t_T < lengths_B[:, None], lengths_B[:, None] - 1 - t_T, t_T)
    index = src_BT.view(B, T, *([1] * (x_BT.dim() - 2))).expand_as(x_BT)
    return x_BT.gather(1, index)


def gather_last(x_BTF: Tensor, lengths_B: Tensor | None) -> Tensor:
    """``x_BTF[b, lengths_B[b] - 1]``: each sequence's last real step, shape (B, F)."""
    if lengths_B is None:
        return x_BTF[:, -1]
    index_B1F = (lengths_B - 1).view(-1, 1, 1).expand(-1, 1, x_BTF.shape[-1])
    return x_BTF.gather(1, index_B1F).squeeze(1)
