"""The fully convolutional branch of LSTM-FCN, over the valid steps of ragged series.

Wang, Yan & Oates 2017, "Time Series Classification from Scratch with Deep Neural Networks:
A Strong Baseline", sec. 2.2 (FCN): blocks of

    y = Conv1d_k(x)            (stride 1, 'same' padding)
    s = BatchNorm(y)
    h = ReLU(s)

(128, 256, 128 filters with kernels 8, 5, 3), then global average pooling over time. Karim
et al. 2017, "LSTM Fully Convolutional Networks for Time Series Classification", sec. 3.1
(https://arxiv.org/abs/1709.05206), run this beside a recurrent branch and concatenate the
two pooled feature vectors before the softmax layer.

Deviations, for series of varying length padded at the end (``lengths_B``):

- each block's input is zeroed on padding, so a step near a row's end sees zeros past the
  end, exactly the 'same' padding of that row alone;
- batch normalisation takes its training statistics over the valid steps only;
- the global average is over the valid steps only.

So neither the padding's content nor its amount changes a row's features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnkit.layers import lengths_to_mask


class ConvBlock(nn.Module):
    """Conv1d ('same' padding) -> BatchNorm over valid steps -> ReLU; zeros on padding.

    Shapes: x_BTI (B, T, I), mask_BT (B, T) bool -> h_BTC (B, T, C).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size)
        # 'same' padding, the extra step of an even kernel at the end (as Keras pads)
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.norm = nn.BatchNorm1d(out_channels)

    def forward(self, x_BTI: Tensor, mask_BT: Tensor) -> Tensor:
        x_BTI = x_BTI * mask_BT.unsqueeze(-1)  # padding reads as the conv's zero padding
        y_BCT = self.conv(F.pad(x_BTI.transpose(1, 2), self.pad))
        if not self.training and self.norm.running_mean is not None:
            # the running statistics act step by step: every step goes through, then padding is
            # zeroed (no data-dependent shape, so the model exports); without running
            # statistics eval mode normalises with the batch's, of the valid steps only, below
            h_BTC = torch.relu(self.norm(y_BCT)).transpose(1, 2)
            return torch.where(mask_BT.unsqueeze(-1), h_BTC, 0.0)
        y_BTC = y_BCT.transpose(1, 2)
        s_MC = self.norm(y_BTC[mask_BT])  # statistics of the valid steps only
        h_MC = torch.relu(s_MC)
        return y_BTC.new_zeros(y_BTC.shape).masked_scatter(mask_BT.unsqueeze(-1), h_MC)


class FullyConvolutional(nn.Module):
    """Conv blocks, then the mean over each row's valid steps (see the module docstring).

    Arguments:
        input_size: I, features per step.
        channels: C_k, the filters of each block, e.g. ``(128, 256, 128)``.
        kernels: each block's kernel size, e.g. ``(8, 5, 3)``; as many as ``channels``.

    Shapes: x_BTI (B, T, I), lengths_B (B,) or None (all T) -> features_BC (B, C_last).
    """

    def __init__(self, input_size: int, channels: tuple[int, ...], kernels: tuple[int, ...]):
        super().__init__()
        if not channels or len(channels) != len(kernels):
            raise ValueError(f"kernels must give one size per block of channels {list(channels)}, "
                             f"got {list(kernels)}")
        sizes_in = (input_size, *channels[:-1])
        self.blocks = nn.ModuleList(ConvBlock(a, b, k)
                                    for a, b, k in zip(sizes_in, channels, kernels, strict=True))
        self.out_features = channels[-1]

    def forward(self, x_BTI: Tensor, lengths_B: Tensor | None) -> Tensor:
        B, T, _ = x_BTI.shape
        mask_BT = (torch.ones(B, T, dtype=torch.bool, device=x_BTI.device) if lengths_B is None
                   else lengths_to_mask(lengths_B, T))
        h_BTC = x_BTI
        for block in self.blocks:
            h_BTC = block(h_BTC, mask_BT)
        # padding is zero after every block, so the sum over T is the sum over valid steps
        count_B1 = mask_BT.sum(dim=1, keepdim=True).to(h_BTC.dtype)
        return h_BTC.sum(dim=1) / count_B1
