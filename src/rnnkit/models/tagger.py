"""A sequence tagger: word features -> BiLSTM -> per-token emission scores [-> linear-chain CRF].

Each token t is represented by (Lample et al. 2016, secs. 2 and 4; Ma & Hovy 2016, sec. 2):

    w_t = E_word[word_t] ⊕ E_shape[shape_t] ⊕ chars(c_t,1 .. c_t,W)     (⊕: concatenation)
    h_t = [LSTM→(w_1..w_t) ; LSTM←(w_t..w_L)]                           (rnnkit.LSTM, lengths=)
    P_t = W_out h_t + b_out                                             (emissions, C scores)

and tagged by argmax_c P_t[c] (softmax output), or jointly by Viterbi over a
``LinearChainCRF`` (``crf=True``). The character encoder is optional:

- ``cnn`` (Ma & Hovy 2016, sec. 2.1): char embeddings, one convolution of width 3 over the
  word, max over its characters;
- ``lstm`` (Lample et al. 2016, sec. 4.1): a char BiLSTM, the final forward and backward
  states concatenated.

The shape feature is a 7-way capitalisation/digit class (``rnnkit.data.tag_features``),
after Collobert et al. 2011's capitalisation feature: the word embedding sees lower-cased
words. Word dropout replaces a training token's word id by UNK with probability
``word_dropout``, so that the UNK embedding is trained on words the model has seen in
other contexts (Lample et al. 2016 replace singletons this way, with p = 0.5).

Input: one int64 tensor x_BTF per batch, F = 2 + W: ``x[..., 0]`` word ids (0 padding,
1 UNK), ``x[..., 1]`` shape ids (0 padding), ``x[..., 2:]`` character ids of each word
(0 padding), as ``rnnkit.data.tag_features.TagVocab.features`` makes them.

Losses (``Tagger.loss``, the ``loss_fn`` for ``rnnkit.train.fit``), both a mean per token so
that one learning rate suits both: softmax: cross-entropy; CRF: Σ_sentences −log p(y | x)
divided by the number of tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import rnnkit
from rnnkit._checks import check_lengths
from rnnkit.data.tag_features import SHAPES, UNK
from rnnkit.models.crf import LinearChainCRF
from rnnkit.train.data import IGNORE

CharEncoder = Literal["none", "cnn", "lstm"]


@dataclass(frozen=True, kw_only=True)
class TaggerConfig:
    vocab_size: int  # words, padding and UNK included
    num_tags: int
    num_chars: int = 0  # characters, padding and UNK included; 0 with char_encoder "none"
    embed_size: int = 100
    shape_size: int = 8  # 0: no shape feature
    char_encoder: CharEncoder = "cnn"
    char_embed_size: int = 30
    char_features: int = 50  # cnn: filters; lstm: 2 x hidden size (forward ⊕ backward)
    hidden_size: int = 128  # per direction
    num_layers: int = 1
    dropout: float = 0.25  # on the word features and on the BiLSTM output (and between layers)
    word_dropout: float = 0.05
    crf: bool = False

    def __post_init__(self):
        for name in ("vocab_size", "num_tags", "embed_size", "char_embed_size", "char_features",
                     "hidden_size", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("num_chars", "shape_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (padding and UNK), got {self.vocab_size}")
        if self.char_encoder not in ("none", "cnn", "lstm"):
            raise ValueError(f"char_encoder must be one of ['cnn', 'lstm', 'none'], "
                             f"got {self.char_encoder!r}")
        if self.char_encoder != "none" and self.num_chars < 2:
            raise ValueError(f"num_chars must be >= 2 (padding and UNK) with char_encoder="
                             f"{self.char_encoder!r}, got {self.num_chars}")
        if self.char_encoder == "lstm" and self.char_features % 2:
            raise ValueError(f"char_features must be even with char_encoder='lstm' (two directions), "
                             f"got {self.char_features}")
        for name in ("dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not isinstance(self.crf, bool):
            raise ValueError(f"crf must be a bool, got {self.crf!r}")


class CharCNN(nn.Module):
    """Ma & Hovy 2016, sec. 2.1: f = max_k (W * [e_{k-1}; e_k; e_{k+1}] + b), over real chars.

    Shapes: chars_NW (N, W) int64, 0 padding, at least one char per row -> (N, F)."""

    def __init__(self, num_chars: int, embed_size: int, features: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(num_chars, embed_size, padding_idx=0)
        self.drop = nn.Dropout(dropout)
        self.conv = nn.Conv1d(embed_size, features, kernel_size=3, padding=1)

    def forward(self, chars_NW: Tensor) -> Tensor:
        e_NEW = self.drop(self.embed(chars_NW)).transpose(1, 2)
        f_NFW = self.conv(e_NEW)
        f_NFW = f_NFW.masked_fill((chars_NW == 0)[:, None, :], float("-inf"))  # padding never wins
        return f_NFW.max(dim=2).values


class CharBiLSTM(nn.Module):
    """Lample et al. 2016, sec. 4.1: [final forward state ; final backward state] over the chars.

    Shapes: chars_NW (N, W) int64, 0 padding, at least one char per row -> (N, F)."""

    def __init__(self, num_chars: int, embed_size: int, features: int):
        super().__init__()
        self.embed = nn.Embedding(num_chars, embed_size, padding_idx=0)
        self.lstm = rnnkit.LSTM(embed_size, features // 2, batch_first=True, bidirectional=True)

    def forward(self, chars_NW: Tensor) -> Tensor:
        lengths_N = (chars_NW != 0).sum(dim=1)
        _, (h_DNH, _) = self.lstm(self.embed(chars_NW), lengths=lengths_N)
        return torch.cat([h_DNH[0], h_DNH[1]], dim=-1)  # torch.nn's layout: forward, backward


class Tagger(nn.Module):
    """Shapes: x_BTF (B, T, 2 + W) int64 (module docstring), lengths (B,) -> emissions_BTC."""

    def __init__(self, config: TaggerConfig):
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.embed_size, padding_idx=0)
        self.shape_embed = nn.Embedding(len(SHAPES), c.shape_size, padding_idx=0) if c.shape_size else None
        self.chars = {"none": lambda: None,
                      "cnn": lambda: CharCNN(c.num_chars, c.char_embed_size, c.char_features, c.dropout),
                      "lstm": lambda: CharBiLSTM(c.num_chars, c.char_embed_size, c.char_features)}[
            c.char_encoder]()
        size_in = c.embed_size + c.shape_size + (c.char_features if self.chars is not None else 0)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = rnnkit.LSTM(size_in, c.hidden_size, c.num_layers, batch_first=True,
                                   bidirectional=True, dropout=c.dropout if c.num_layers > 1 else 0.0)
        self.emit = nn.Linear(2 * c.hidden_size, c.num_tags)
        self.crf = LinearChainCRF(c.num_tags) if c.crf else None

    @classmethod
    def from_config(cls, config: TaggerConfig) -> Tagger:
        return cls(config)

    def forward(self, x_BTF: Tensor, lengths: Tensor | None = None) -> Tensor:
        lengths_B = self._check_input(x_BTF, lengths)
        words_BT = x_BTF[..., 0]
        if self.training and self.config.word_dropout > 0:
            drop_BT = torch.rand(words_BT.shape, device=words_BT.device) < self.config.word_dropout
            words_BT = torch.where(drop_BT & (words_BT > 0), UNK, words_BT)
        parts = [self.embed(words_BT)]
        if self.shape_embed is not None:
            parts.append(self.shape_embed(x_BTF[..., 1]))
        if self.chars is not None:
            parts.append(self._char_features(x_BTF[..., 2:]))
        w_BTI = self.drop(torch.cat(parts, dim=-1))
        h_BTH, _ = self.encoder(w_BTI, lengths=lengths_B)
        return self.emit(self.drop(h_BTH))

    def _char_features(self, chars_BTW: Tensor) -> Tensor:
        """Encode the real tokens only; padding tokens get zeros."""
        B, T, _ = chars_BTW.shape
        real_BT = chars_BTW[..., 0] != 0
        if torch.compiler.is_exporting():
            # every token, padding as a one-char word, then zeroed: the real tokens' count
            # depends on the data, which an exported graph cannot (the same numbers: a word's
            # padding chars never count)
            words_NW = chars_BTW.flatten(0, 1).clone()
            words_NW[:, 0] = torch.where(real_BT.flatten(), words_NW[:, 0], 1)
            f_BTF = self.chars(words_NW).view(B, T, -1)
            return torch.where(real_BT[..., None], f_BTF, 0.0)
        words_NW = chars_BTW[real_BT]
        words_NW = words_NW[:, : max(int((words_NW != 0).sum(dim=1).max()), 1)]  # the batch's W
        f_NF = self.chars(words_NW)
        out_BTF = f_NF.new_zeros(B, T, f_NF.shape[-1])
        out_BTF[real_BT] = f_NF
        return out_BTF

    def decode(self, emissions_BTC: Tensor, lengths_B: Tensor) -> Tensor:
        """Tag ids (B, T): argmax per token, or the CRF's Viterbi path; padding positions 0."""
        mask_BT = torch.arange(emissions_BTC.shape[1], device=emissions_BTC.device) < lengths_B[:, None]
        tags_BT = (emissions_BTC.argmax(dim=-1) if self.crf is None
                   else self.crf.viterbi(emissions_BTC, lengths_B)[0])
        return tags_BT.masked_fill(~mask_BT, 0)

    def loss(self, emissions_BTC: Tensor, targets_BT: Tensor) -> Tensor:
        """Mean per token: cross-entropy, or the CRF's −log p(y | x) summed over sentences
        over the number of tokens. Targets are tag ids with IGNORE (-100) on padding; the
        softmax loss also skips IGNORE inside a sentence, the CRF (which scores whole
        sequences) refuses it."""
        if emissions_BTC.dtype in (torch.float16, torch.bfloat16):  # autocast: the loss in float32
            emissions_BTC = emissions_BTC.float()
        if self.crf is None:
            return F.cross_entropy(emissions_BTC.flatten(0, 1), targets_BT.flatten(), ignore_index=IGNORE)
        mask_BT = targets_BT != IGNORE
        lengths_B = _target_lengths(mask_BT)
        inside_BT = torch.arange(mask_BT.shape[1], device=mask_BT.device) < lengths_B[:, None]
        if bool((inside_BT & ~mask_BT).any()):
            b = int((inside_BT & ~mask_BT).any(dim=1).nonzero()[0])
            raise ValueError(f"targets_BT of a CRF tagger may hold IGNORE ({IGNORE}) only as padding "
                             f"after a row's last tag, got one inside row {b}")
        nll_B = self.crf.nll(emissions_BTC, targets_BT.clamp(min=0), lengths_B.clamp(min=1))
        return (nll_B * (lengths_B > 0)).sum() / lengths_B.sum().clamp(min=1)

    def accuracy(self, emissions_BTC: Tensor, targets_BT: Tensor) -> Tensor:
        """The fraction of target tokens whose decoded tag is right (a metric for ``fit``)."""
        mask_BT = targets_BT != IGNORE
        tags_BT = self.decode(emissions_BTC, _target_lengths(mask_BT).clamp(min=1))
        return ((tags_BT == targets_BT) & mask_BT).sum().to(torch.float64) / mask_BT.sum().clamp(min=1)

    def _check_input(self, x_BTF: Tensor, lengths: Tensor | None) -> Tensor:
        width = 3 if self.chars is not None else 2
        if x_BTF.dim() != 3 or x_BTF.dtype != torch.long or x_BTF.shape[2] < width:
            raise ValueError(f"x_BTF must be int64 (B, T, F) with F >= {width} (word id, shape id"
                             f"{', chars' if width == 3 else ''}), got {x_BTF.dtype} of shape "
                             f"{tuple(x_BTF.shape)}")
        B, T, _ = x_BTF.shape
        if lengths is None:
            return torch.full((B,), T, dtype=torch.long, device=x_BTF.device)
        return check_lengths(lengths, batch=B, time=T, device=x_BTF.device)


def _target_lengths(mask_BT: Tensor) -> Tensor:
    """Each row's length: one past its last target that is not IGNORE (0 for none)."""
    steps_BT = torch.arange(1, mask_BT.shape[1] + 1, device=mask_BT.device).expand_as(mask_BT)
    return (steps_BT * mask_BT).max(dim=1).values
