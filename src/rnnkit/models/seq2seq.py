"""An attentional encoder-decoder for translation (Luong, Pham & Manning 2015, "Effective
Approaches to Attention-based Neural Machine Translation"; Bahdanau, Cho & Bengio 2015).

- Encoder: a bidirectional LSTM/GRU over the source (``rnnkit.LSTM``/``rnnkit.GRU`` with
  ``lengths``), H/2 per direction, so that each h̄_s = [h→_s; h←_s] is H wide.
- Bridge: each decoder layer starts from its encoder layer's final states,
  s_0 = tanh(W_b [h→_S; h←_1] + b_b), one W_b per state tensor (h, and c for an LSTM), as
  Bahdanau et al. (appendix A.2.2) start from tanh(W_s h←_1).
- Decoder: LSTM/GRU cells stepped over the target. At step t (Luong sec. 3):
      x_t = [E y_{t-1}; h̃_{t-1}]              input feeding (sec. 3.3; x_t = E y_{t-1} without it)
      h_t = cell(x_t, h_{t-1})                 (stacked: each layer feeds the next)
      c_t = Σ_s a_t(s) h̄_s                     global attention (sec. 3.1, ``GlobalAttention``)
      h̃_t = tanh(W_c [c_t; h_t])               eq. 5
      p(y_t | y_<t, x) = softmax(W_s h̃_t + b_s)  eq. 6 (with a bias, which Luong leaves out)
  ``attention="none"`` is the same model without c_t: h̃_t = tanh(W_c h_t).
- Scheduled sampling (Bengio et al. 2015, "Scheduled Sampling for Sequence Prediction with
  Recurrent Neural Networks", sec. 2.4): with ``teacher_forcing=p`` < 1, each row feeds the
  true y_{t-1} with probability p and otherwise a token drawn from its own prediction at
  t - 1 (``sampled_input``: "sample" as in the paper, or "argmax"); no gradient flows through
  that choice.

Target ids: the tokenizer's V - 2, then BOS = V - 2 and EOS = V - 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

import rnnkit
from rnnkit.cells import GRUCell, HiddenState, LSTMCell, LSTMState
from rnnkit.models.attention import GlobalAttention

Attention = Literal["dot", "general", "additive", "none"]
_ENCODERS = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU}
_CELLS = {"lstm": (LSTMCell, LSTMState), "gru": (GRUCell, HiddenState)}


@dataclass(frozen=True, kw_only=True)
class Seq2SeqConfig:
    source_vocab_size: int
    target_vocab_size: int  # the target tokenizer's ids, then BOS and EOS
    cell: Literal["lstm", "gru"] = "lstm"
    embed_size: int = 256
    hidden_size: int = 256  # H: the decoder's size; the encoder has H/2 per direction
    num_layers: int = 1  # in the encoder and in the decoder
    attention: Attention = "general"
    attention_size: int = 256  # additive only
    input_feeding: bool = True
    dropout: float = 0.0  # on embeddings, between layers and before W_s
    sampled_input: Literal["sample", "argmax"] = "sample"  # scheduled sampling's own token

    def __post_init__(self):
        for name, low in (("source_vocab_size", 1), ("target_vocab_size", 3), ("embed_size", 1),
                          ("hidden_size", 2), ("num_layers", 1), ("attention_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if self.hidden_size % 2:
            raise ValueError(f"hidden_size must be even (the bidirectional encoder has hidden_size / 2 "
                             f"per direction), got {self.hidden_size}")
        for name, allowed in (("cell", ("gru", "lstm")), ("sampled_input", ("argmax", "sample")),
                              ("attention", ("additive", "dot", "general", "none"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        if isinstance(self.dropout, bool) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def bos_id(self) -> int:
        return self.target_vocab_size - 2

    @property
    def eos_id(self) -> int:
        return self.target_vocab_size - 1


class Seq2SeqInputs(NamedTuple):
    """A seq2seq batch's ``Batch.inputs``.

    Shapes:
        source_BS: (B, S) int64, padded at the end; source_lengths_B: (B,) int64 in [1, S];
        target_BT: (B, T) int64, the decoder's inputs: BOS, then the target ids, padded.
    """

    source_BS: Tensor
    source_lengths_B: Tensor
    target_BT: Tensor


class DecoderState(NamedTuple):
    """The decoder's recurrent state; every tensor has the batch on dim -2, so that beam
    search reorders it with ``map_state``."""

    cells: tuple[LSTMState | HiddenState, ...]  # one per decoder layer, (B, H)
    ht_BH: Tensor  # h̃_t, the attentional hidden state, fed to the next step; zeros at first


class Memory(NamedTuple):
    """What the encoder leaves for every decoder step; it does not change over the steps."""

    memory_BSH: Tensor  # the encoder's outputs h̄_s
    keys_BSA: Tensor  # the attention's source-only part of the score (GlobalAttention.keys)
    mask_BS: Tensor  # True on real source steps

    def expand(self, rows: int) -> Memory:
        """One source's memory for ``rows`` rows (the beams), without copying."""
        return Memory(*(t.expand(rows, *t.shape[1:]) for t in self))


class Seq2Seq(nn.Module):
    """See the module docstring. ``forward(inputs) -> logits_BTV`` trains; ``encode`` then
    ``step`` after ``step`` decode one token at a time."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        E, H, L = config.embed_size, config.hidden_size, config.num_layers
        cell_cls, self._state_cls = _CELLS[config.cell]
        self.source_embed = nn.Embedding(config.source_vocab_size, E)
        self.target_embed = nn.Embedding(config.target_vocab_size, E)
        self.encoder = _ENCODERS[config.cell](E, H // 2, L, batch_first=True, bidirectional=True,
                                              dropout=config.dropout if L > 1 else 0.0)
        self.bridge = nn.ModuleList(nn.Linear(H, H) for _ in self._state_cls._fields)  # W_b per state tensor
        feed = H if config.input_feeding else 0
        self.cells = nn.ModuleList(cell_cls(E + feed if k == 0 else H, H) for k in range(L))
        self.attention = (None if config.attention == "none" else
                          GlobalAttention(config.attention, H, attention_size=config.attention_size))
        self.W_c = nn.Linear(H if self.attention is None else 2 * H, H, bias=False)
        self.W_s = nn.Linear(H, config.target_vocab_size)
        self.drop = nn.Dropout(config.dropout)

    @classmethod
    def from_config(cls, config: Seq2SeqConfig) -> Seq2Seq:
        return cls(config)

    def forward(self, inputs: Seq2SeqInputs, *, teacher_forcing: float = 1.0,
                generator: torch.Generator | None = None) -> Tensor:
        """Next-token logits_BTV at every target step; the loss compares them with the target
        ids shifted by one (EOS last). ``teacher_forcing``: the probability of feeding the
        true previous token (scheduled sampling below 1); ``generator`` draws those choices.

        The true tokens are embedded all at once and W_s runs once over all steps (per step,
        their gradients would cost a (V, ·) buffer each); scheduled sampling swaps in the
        embeddings of the model's own tokens, chosen from a gradient-free W_s h̃_t."""
        source_BS, source_lengths_B, target_BT = _check_inputs(inputs, self.config, teacher_forcing)
        state, memory = self.encode(source_BS, source_lengths_B)
        x_BTE = self.drop(self.target_embed(target_BT))
        outputs = []
        for t in range(target_BT.shape[1]):
            x_BE = x_BTE[:, t]
            if t > 0:  # the first input is always BOS
                x_BE = self._sampled(x_BE, state.ht_BH, teacher_forcing, generator)
            state = self.decode(x_BE, state, memory)
            outputs.append(state.ht_BH)
        return self.W_s(self.drop(torch.stack(outputs, dim=1)))  # eq. 6

    def encode(self, source_BS: Tensor, source_lengths_B: Tensor) -> tuple[DecoderState, Memory]:
        """The decoder's first state (the bridged encoder states) and the attention memory."""
        x_BSE = self.drop(self.source_embed(source_BS))
        memory_BSH, final = self.encoder(x_BSE, lengths=source_lengths_B)
        finals = final if isinstance(final, tuple) else (final,)  # (h_n, c_n) or h_n: (L*2, B, H/2)
        cells = tuple(self._state_cls(*(torch.tanh(W_b(torch.cat([f[2 * k], f[2 * k + 1]], dim=-1)))
                                        for W_b, f in zip(self.bridge, finals, strict=True)))
                      for k in range(self.config.num_layers))
        keys_BSA = memory_BSH if self.attention is None else self.attention.keys(memory_BSH)
        mask_BS = torch.arange(source_BS.shape[1], device=source_BS.device) < source_lengths_B[:, None]
        ht_BH = memory_BSH.new_zeros(memory_BSH.shape[0], memory_BSH.shape[2])
        return DecoderState(cells, ht_BH), Memory(memory_BSH, keys_BSA, mask_BS)

    def decode(self, x_BE: Tensor, state: DecoderState, memory: Memory) -> DecoderState:
        """One target step from the embedded previous token x_BE; the new state's ``ht_BH``
        is h̃_t, whose W_s h̃_t are the logits."""
        x_BI = torch.cat([x_BE, state.ht_BH], dim=-1) if self.config.input_feeding else x_BE  # sec. 3.3
        cells = self._cells_step(x_BI, state.cells)
        h_BH = cells[-1].h
        if self.attention is None:
            ht_BH = torch.tanh(self.W_c(h_BH))
        else:
            c_BH, _ = self.attention(h_BH, memory.keys_BSA, memory.memory_BSH, memory.mask_BS)
            ht_BH = torch.tanh(self.W_c(torch.cat([c_BH, h_BH], dim=-1)))  # eq. 5
        return DecoderState(cells, ht_BH)

    def step(self, y_B: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        """One step of decoding from the previous token ids: (logits_BV, next state)."""
        state = self.decode(self.drop(self.target_embed(y_B)), state, memory)
        return self.W_s(self.drop(state.ht_BH)), state

    def _cells_step(self, x_BI: Tensor, states: tuple) -> tuple:
        out = []
        for k, (cell, s) in enumerate(zip(self.cells, states, strict=True)):
            s = cell(x_BI, s)
            out.append(s)
            x_BI = self.drop(s.h) if k + 1 < len(self.cells) else s.h
        return tuple(out)

    def _sampled(self, gold_BE: Tensor, ht_BH: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
        """Scheduled sampling: per row, the true token's embedding with probability p, else
        the embedding of the model's own token, drawn from its last prediction W_s h̃."""
        if p >= 1.0:
            return gold_BE
        with torch.no_grad():
            logits_BV = self.W_s(ht_BH)
            if self.config.sampled_input == "argmax":
                own_B = logits_BV.argmax(dim=-1)
            else:
                probs_BV = logits_BV.float().softmax(dim=-1)
                own_B = torch.multinomial(probs_BV, 1, generator=generator).squeeze(1)
            coin_B1 = torch.rand(own_B.shape, generator=generator, device=own_B.device)[:, None] < p
        return torch.where(coin_B1, gold_BE, self.drop(self.target_embed(own_B)))


def _check_inputs(inputs: Seq2SeqInputs, config: Seq2SeqConfig, p: float) -> tuple[Tensor, Tensor, Tensor]:
    if not isinstance(inputs, Seq2SeqInputs):
        raise TypeError(f"inputs must be Seq2SeqInputs(source_BS, source_lengths_B, target_BT), "
                        f"got {type(inputs).__name__}")
    source_BS, lengths_B, target_BT = inputs
    for name, t in (("source_BS", source_BS), ("target_BT", target_BT)):
        if t.dim() != 2 or t.dtype != torch.long or t.shape[1] < 1:
            raise ValueError(f"{name} must be (B, >=1) int64 ids, got shape {tuple(t.shape)} {t.dtype}")
    B, S = source_BS.shape
    if target_BT.shape[0] != B or lengths_B.shape != (B,):
        raise ValueError(f"source_BS, source_lengths_B and target_BT must have B={B} rows, got shapes "
                         f"{tuple(source_BS.shape)}, {tuple(lengths_B.shape)}, {tuple(target_BT.shape)}")
    if int(lengths_B.min()) < 1 or int(lengths_B.max()) > S:
        raise ValueError(f"source_lengths_B must be in [1, {S}], got [{int(lengths_B.min())}, "
                         f"{int(lengths_B.max())}]")
    for name, t, V in (("source_BS", source_BS, config.source_vocab_size),
                       ("target_BT", target_BT, config.target_vocab_size)):
        if int(t.min()) < 0 or int(t.max()) >= V:
            raise ValueError(f"{name} ids must be in [0, {V}), got [{int(t.min())}, {int(t.max())}]")
    if isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"teacher_forcing must be a probability in [0, 1], got {p!r}")
    return source_BS, lengths_B, target_BT
