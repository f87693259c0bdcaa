"""A sequence classifier: [embedding] -> recurrent encoder -> pooling over valid steps -> logits,
with an optional convolutional branch beside the encoder (LSTM-FCN).

Pooling (each a module with ``forward(out_BTF, lengths_B) -> pooled_BF``):

- ``last``: each direction's final state; the forward direction's is read at ``lengths - 1``,
  the backward direction's at step 0 (it ran over the sequence reversed).
- ``mean``: the mean of the outputs over the valid steps.
- ``attention``: additive attention (Bahdanau et al. 2015, eq. 6; as used for classification
  by Yang et al. 2016, sec. 2.2), with a learned query ``v`` instead of a decoder state:
      e_t = vᵀ tanh(W h_t + b)
      α_t = softmax_t(e_t) over t < length  (padding gets weight 0)
      c   = Σ_t α_t h_t

``input_noise`` adds N(0, σ²) to the standardised series (or the embeddings) in training
only, Keras's ``GaussianNoise``: the jitter augmentation for small time-series sets.

``conv_channels`` adds the fully convolutional branch of LSTM-FCN (Karim et al. 2017,
sec. 3.1; ``rnnkit.models.fcn``) beside the recurrent encoder: both read the standardised
input, and the pooled features of the two are concatenated before the output layer
(dropout acts on the recurrent half only, as in the paper). Unlike the paper, the
recurrent branch reads the series one step at a time, not as one step of T features (its
"dimension shuffle").

Series input is standardised per feature inside the model, ``(x - mean_D) / std_D``, with
buffers that ``fit_standardization`` sets from the training set; they are saved with the
weights, so a loaded model takes raw data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

import rnnkit
from rnnkit._checks import check_lengths
from rnnkit.layers import GaussianNoise, gather_last, lengths_to_mask
from rnnkit.models.fcn import FullyConvolutional

Cell = Literal["lstm", "gru", "rnn"]
Pooling = Literal["last", "mean", "attention"]
_DROPINS = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}


@dataclass(frozen=True, kw_only=True)
class ClassifierConfig:
    num_classes: int
    input_size: int = 1  # features per step; ignored for token input
    vocab_size: int | None = None  # token input (B, T) int64 through an embedding
    embed_size: int = 64
    cell: Cell = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    pooling: Pooling = "last"
    attention_size: int = 64
    dropout: float = 0.0  # between layers and on the pooled features
    input_noise: float = 0.0  # std of Gaussian noise on the standardised series / embeddings, training only
    conv_channels: tuple[int, ...] = ()  # LSTM-FCN: filters per conv block, e.g. (128, 256, 128); (): none
    conv_kernels: tuple[int, ...] = (8, 5, 3)  # kernel size per conv block; ignored without conv_channels

    def __post_init__(self):
        for name in ("num_classes", "input_size", "embed_size", "hidden_size", "num_layers",
                     "attention_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.vocab_size is not None and (isinstance(self.vocab_size, bool) or self.vocab_size < 2):
            raise ValueError(f"vocab_size must be None or an int >= 2, got {self.vocab_size!r}")
        if self.cell not in _DROPINS:
            raise ValueError(f"cell must be one of {sorted(_DROPINS)}, got {self.cell!r}")
        if self.pooling not in ("last", "mean", "attention"):
            raise ValueError(f"pooling must be one of ['attention', 'last', 'mean'], got {self.pooling!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if isinstance(self.input_noise, bool) or not 0.0 <= self.input_noise < float("inf"):
            raise ValueError(f"input_noise must be a finite float >= 0, got {self.input_noise!r}")
        for name in ("conv_channels", "conv_kernels"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
                raise ValueError(f"{name} must be a tuple of ints >= 1, got {values!r}")
        if self.conv_channels and len(self.conv_kernels) != len(self.conv_channels):
            raise ValueError(f"conv_kernels must give one kernel size per conv block "
                             f"(conv_channels has {len(self.conv_channels)}), got {list(self.conv_kernels)}")


class LastPooling(nn.Module):
    """Forward half at ``lengths - 1``, backward half (if any) at step 0."""

    def __init__(self, directions: int):
        super().__init__()
        self.directions = directions

    def forward(self, out_BTF: Tensor, lengths_B: Tensor | None) -> Tensor:
        if self.directions == 1:
            return gather_last(out_BTF, lengths_B)
        fwd_BTH, bwd_BTH = out_BTF.chunk(2, dim=-1)
        return torch.cat([gather_last(fwd_BTH, lengths_B), bwd_BTH[:, 0]], dim=-1)


class MeanPooling(nn.Module):
    def forward(self, out_BTF: Tensor, lengths_B: Tensor | None) -> Tensor:
        if lengths_B is None:
            return out_BTF.mean(dim=1)
        mask_BT1 = lengths_to_mask(lengths_B, out_BTF.shape[1]).unsqueeze(-1)
        return (out_BTF * mask_BT1).sum(dim=1) / lengths_B[:, None].to(out_BTF.dtype)


class AttentionPooling(nn.Module):
    """Additive attention with a learned query; see the module docstring."""

    def __init__(self, features: int, attention_size: int):
        super().__init__()
        self.proj = nn.Linear(features, attention_size)  # W, b
        self.query = nn.Linear(attention_size, 1, bias=False)  # v

    def weights(self, out_BTF: Tensor, lengths_B: Tensor | None) -> Tensor:
        """α_BT: softmax over the valid steps of each row; 0 on padding."""
        e_BT = self.query(torch.tanh(self.proj(out_BTF))).squeeze(-1)
        if lengths_B is not None:
            e_BT = e_BT.masked_fill(~lengths_to_mask(lengths_B, out_BTF.shape[1]), float("-inf"))
        return torch.softmax(e_BT, dim=1)

    def forward(self, out_BTF: Tensor, lengths_B: Tensor | None) -> Tensor:
        alpha_BT = self.weights(out_BTF, lengths_B)
        return torch.einsum("bt,btf->bf", alpha_BT, out_BTF)


class SequenceClassifier(nn.Module):
    """Shapes: x (B, T, I) float, or (B, T) int64 ids with ``vocab_size``; lengths_B (B,)
    -> logits_BC (B, C). No state is returned: each sequence is classified on its own."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        tokens = config.vocab_size is not None
        self.embed = nn.Embedding(config.vocab_size, config.embed_size, padding_idx=0) if tokens else None
        size_in = config.embed_size if tokens else config.input_size
        if not tokens:  # identity until fit_standardization; saved with the weights
            self.register_buffer("feature_mean_I", torch.zeros(size_in))
            self.register_buffer("feature_std_I", torch.ones(size_in))
        self.noise = GaussianNoise(config.input_noise)
        self.encoder = _DROPINS[config.cell](size_in, config.hidden_size, config.num_layers, batch_first=True,
                                             bidirectional=config.bidirectional,
                                             dropout=config.dropout if config.num_layers > 1 else 0.0)
        D = 2 if config.bidirectional else 1
        features = D * config.hidden_size
        self.pool = {"last": lambda: LastPooling(D), "mean": MeanPooling,
                     "attention": lambda: AttentionPooling(features, config.attention_size)}[config.pooling]()
        self.drop = nn.Dropout(config.dropout)
        self.conv = (FullyConvolutional(size_in, config.conv_channels, config.conv_kernels)
                     if config.conv_channels else None)
        conv_features = 0 if self.conv is None else self.conv.out_features
        self.head = nn.Linear(features + conv_features, config.num_classes)

    @classmethod
    def from_config(cls, config: ClassifierConfig) -> SequenceClassifier:
        return cls(config)

    @torch.no_grad()
    def fit_standardization(self, x_NTI: Tensor, lengths_N: Tensor | None = None) -> None:
        """Set the per-feature mean and std from training series (valid steps only; a
        feature with std below 1e-8 is only centred)."""
        if self.embed is not None:
            raise ValueError("fit_standardization is for series input; this model takes token ids")
        self._check_input(x_NTI, lengths_N)
        valid = (torch.ones(x_NTI.shape[:2], dtype=torch.bool) if lengths_N is None
                 else lengths_to_mask(lengths_N, x_NTI.shape[1]))
        values_MI = x_NTI[valid].to(self.feature_mean_I.dtype)
        std_I = (values_MI.std(dim=0, correction=0) if values_MI.shape[0] > 1
                 else torch.ones_like(values_MI[0]))
        self.feature_mean_I.copy_(values_MI.mean(dim=0))
        self.feature_std_I.copy_(torch.where(std_I < 1e-8, torch.ones_like(std_I), std_I))

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        lengths = self._check_input(x, lengths)
        if self.embed is not None:
            x_BTI = self.embed(x)
        else:
            x_BTI = (x.to(self.feature_mean_I.dtype) - self.feature_mean_I) / self.feature_std_I
        x_BTI = self.noise(x_BTI)
        out_BTF, _ = self.encoder(x_BTI, lengths=lengths)
        pooled_BF = self.drop(self.pool(out_BTF, lengths))
        if self.conv is not None:
            pooled_BF = torch.cat([pooled_BF, self.conv(x_BTI, lengths)], dim=-1)
        return self.head(pooled_BF)

    def _check_input(self, x: Tensor, lengths: Tensor | None) -> Tensor | None:
        if self.embed is not None:
            if x.dim() != 2 or x.dtype != torch.long:
                raise ValueError(f"x must be (B, T) int64 token ids, got shape {tuple(x.shape)} "
                                 f"dtype {x.dtype}")
        elif x.dim() != 3 or not x.is_floating_point() or x.shape[-1] != self.config.input_size:
            raise ValueError(f"x must be (B, T, {self.config.input_size}) float, got shape "
                             f"{tuple(x.shape)} dtype {x.dtype}")
        return check_lengths(lengths, batch=x.shape[0], time=x.shape[1], device=x.device)
