"""A character-level LSTM language model, its truncated-BPTT training loop, its held-out
bits per character and temperature sampling.

The loop is Karpathy's min-char-rnn loop on batches: the LSTM state is explicit, carried
by the loop from chunk to chunk and detached at each chunk boundary (``hprev``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

import rnnkit
from rnnkit.demo.config import DemoConfig
from rnnkit.demo.corpus import tbptt_chunks

State = tuple[Tensor, Tensor]  # (h_LBH, c_LBH), torch.nn.LSTM's layout


class CharLM(nn.Module):
    """Embedding -> rnnkit.LSTM (batch_first) -> Linear.

    Shapes:
        ids_BT: (B, T) int64; logits_BTV: (B, T, V); state: (h_LBH, c_LBH).
    """

    def __init__(self, *, vocab_size: int, embed_size: int, hidden_size: int,
                 num_layers: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.lstm = rnnkit.LSTM(embed_size, hidden_size, num_layers, batch_first=True,
                                dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids_BT: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        x_BTE = self.drop(self.embed(ids_BT))
        out_BTH, state = self.lstm(x_BTE, state)
        logits_BTV = self.head(self.drop(out_BTH))
        return logits_BTV, state


@dataclass(frozen=True)
class TrainStats:
    steps: int
    chars: int  # target characters seen
    seconds: float
    epochs: float
    final_loss_bpc: float  # exponential moving average of the training loss, in bits

    @property
    def chars_per_s(self) -> float:
        return self.chars / self.seconds if self.seconds > 0 else 0.0


def lr_at(progress: float, cfg: DemoConfig) -> float:
    """Cosine decay from ``lr`` to ``lr * lr_min_ratio`` as ``progress`` goes from 0 to 1."""
    floor = cfg.lr * cfg.lr_min_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _detach(state: State | None) -> State | None:
    return None if state is None else (state[0].detach(), state[1].detach())


def fit(model: CharLM, train_ids_N: Tensor, cfg: DemoConfig,
        *, on_step: Callable[[int, float], None] | None = None) -> TrainStats:
    """Train until ``cfg.minutes`` have passed or ``cfg.steps`` steps are done.

    Progress towards the first of the two limits drives the learning-rate schedule.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    budget_s = cfg.minutes * 60.0
    chunks_per_epoch = math.ceil(((train_ids_N.numel() - 1) // cfg.batch_size) / cfg.bptt)
    step, chars, ema, progress = 0, 0, float("nan"), 0.0
    bar = tqdm(total=100, desc="train", disable=None,  # disabled when stderr is not a TTY
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}")
    model.train()
    start = time.perf_counter()
    while progress < 1.0:
        state = None  # a new epoch: every stream starts again from its beginning
        for chunk in tbptt_chunks(train_ids_N, batch=cfg.batch_size, bptt=cfg.bptt):
            # -- schedule --
            for group in optimizer.param_groups:
                group["lr"] = lr_at(progress, cfg)
            # -- forward --
            state = _detach(state)  # truncate the graph at the chunk boundary
            logits_BTV, state = model(chunk.inputs_BT, state)
            loss = F.cross_entropy(logits_BTV.flatten(0, 1), chunk.targets_BT.flatten())
            # -- backward, clip, step --
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            optimizer.step()
            # -- log --
            step += 1
            chars += chunk.targets_BT.numel()
            bits = loss.item() / math.log(2)
            ema = bits if math.isnan(ema) else 0.95 * ema + 0.05 * bits
            elapsed = time.perf_counter() - start
            progress = max(elapsed / budget_s, step / cfg.steps if cfg.steps else 0.0)
            bar.set_postfix({"step": step, "bpc": f"{ema:.3f}",
                             "chars/s": f"{chars / elapsed:,.0f}"}, refresh=False)
            bar.update(min(100, int(progress * 100)) - bar.n)
            if on_step is not None:
                on_step(step, bits)
            if progress >= 1.0:
                break
    bar.close()
    return TrainStats(steps=step, chars=chars, seconds=elapsed,
                      epochs=step / chunks_per_epoch, final_loss_bpc=ema)


@torch.no_grad()
def bits_per_char(model: CharLM, ids_N: Tensor, *, chunk: int = 2048) -> float:
    """Mean -log2 P(ids[i] | ids[:i]) over i = 1..N-1, as one stream from a zero state."""
    if ids_N.numel() < 2:
        raise ValueError(f"ids_N must hold at least 2 ids, got {ids_N.numel()}")
    model.eval()
    inputs_1N, targets_1N = ids_N[:-1].unsqueeze(0), ids_N[1:].unsqueeze(0)
    state, nll = None, 0.0
    for start in range(0, inputs_1N.shape[1], chunk):
        logits_1TV, state = model(inputs_1N[:, start : start + chunk], state)
        nll += F.cross_entropy(logits_1TV.flatten(0, 1), targets_1N[0, start : start + chunk],
                               reduction="sum").item()
    return nll / targets_1N.numel() / math.log(2)


@torch.no_grad()
def sample(model: CharLM, prompt_ids: Tensor, *, length: int, temperature: float,
           generator: torch.Generator) -> Tensor:
    """(length,) ids drawn one by one from softmax(logits / temperature) after the prompt.

    All randomness comes from ``generator``; the global RNG is never touched.
    """
    if prompt_ids.numel() < 1:
        raise ValueError("prompt_ids must hold at least one id, got 0")
    model.eval()
    logits_1TV, state = model(prompt_ids.unsqueeze(0))
    out = []
    for _ in range(length):
        probs_1V = F.softmax(logits_1TV[:, -1] / temperature, dim=-1)
        next_11 = torch.multinomial(probs_1V, 1, generator=generator)
        out.append(next_11)
        logits_1TV, state = model(next_11, state)
    return torch.cat(out, dim=1)[0] if out else prompt_ids.new_empty(0)
