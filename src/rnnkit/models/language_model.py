"""A recurrent language model: embedding -> stacked recurrent layers -> output head.

With ``tie_weights`` the head reuses the embedding matrix (Press & Wolf 2017; Inan et al.
2017), which needs ``embed_size == hidden_size``. AWD-LSTM's regularizers (Merity et al.
2018) are available: ``weight_drop`` (DropConnect on the recurrent matrices),
``dropout`` (locked, one mask per sequence, on the embeddings and the output) and
``embed_dropout`` (whole words dropped from the embedding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor, nn

import rnnkit
from rnnkit.layers.regularize import EmbeddingDropout, LockedDropout

Cell = Literal["rnn", "lstm", "gru", "mingru", "minlstm"]
_DROPINS = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU,
            "mingru": rnnkit.MinGRU, "minlstm": rnnkit.MinLSTM}


@dataclass(frozen=True, kw_only=True)
class LMConfig:
    vocab_size: int
    cell: Cell = "lstm"
    embed_size: int = 256
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.0  # locked dropout on the embeddings, between layers and on the output
    embed_dropout: float = 0.0
    weight_drop: float = 0.0
    tie_weights: bool = False  # the head shares the embedding matrix

    def __post_init__(self):
        for name in ("vocab_size", "embed_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.cell not in _DROPINS:
            raise ValueError(f"cell must be one of {sorted(_DROPINS)}, got {self.cell!r}")
        for name in ("dropout", "embed_dropout", "weight_drop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.tie_weights and self.embed_size != self.hidden_size:
            raise ValueError(f"tie_weights needs embed_size == hidden_size, got "
                             f"{self.embed_size} and {self.hidden_size}")
        if self.weight_drop and self.cell in ("mingru", "minlstm"):
            raise ValueError(f"weight_drop acts on recurrent matrices, which cell={self.cell!r} lacks")


class LanguageModel(nn.Module):
    """Shapes: ids_BT (B, T) int64 -> logits_BTV (B, T, V); state as the drop-in's hx."""

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = config
        self.embed = EmbeddingDropout(nn.Embedding(config.vocab_size, config.embed_size),
                                      config.embed_dropout)
        self.drop = LockedDropout(config.dropout)
        extra: dict[str, Any] = {"weight_drop": config.weight_drop} if config.weight_drop else {}
        self.rnn = _DROPINS[config.cell](config.embed_size, config.hidden_size, config.num_layers,
                                         batch_first=True, dropout=config.dropout if config.num_layers > 1
                                         else 0.0, **extra)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)
        if config.tie_weights:
            self.head.weight = self.embed.embedding.weight

    @classmethod
    def from_config(cls, config: LMConfig) -> LanguageModel:
        return cls(config)

    def forward(self, ids_BT: Tensor, state: Any = None, *,
                lengths: Tensor | None = None) -> tuple[Tensor, Any]:
        x_BTE = self.drop(self.embed(ids_BT))
        out_BTH, state = self.rnn(x_BTE, state, lengths=lengths)
        logits_BTV = self.head(self.drop(out_BTH))
        return logits_BTV, state
