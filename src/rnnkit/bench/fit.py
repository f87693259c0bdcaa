"""The ``fit`` suite: training a character LSTM language model through ``rnnkit.train.fit``
against the plain PyTorch loop a user would write, on the same data and weights.

BENCH.md's char-LM shape: embedding 64, 2-layer LSTM H=512, B=64, T=128, on the embedded
King James text (its ~60 characters). Anchor: ``nn.Embedding`` + ``nn.LSTM`` + ``nn.Linear``
and a loop over (B, T) chunks of B contiguous streams with the state detached between
chunks, cross-entropy, ``clip_grad_norm_(1.0)`` and Adam. Candidate: ``LanguageModel``
with the same weights, trained by ``fit`` on a ``StreamLoader`` (truncated BPTT with the
carried state, the same clipping and optimizer), progress bar off. Each sample is
``STEPS`` optimizer steps on the same number of tokens, so ``ratio = anchor time / rnnkit
time`` is fit's tokens/s over the hand loop's (the target is at least 0.95).

The check before timing: both sides' first-step losses agree (float32, 1e-5 relative).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.bench import DTYPE, EquivalenceError, checked_comparison, run_each
from rnnkit.data.tokenizers import CharTokenizer
from rnnkit.demo.corpus import load_text
from rnnkit.models import LanguageModel, LMConfig
from rnnkit.train import StreamLoader, TrainConfig, fit

STEPS = 2  # optimizer steps per timed sample
SEED = 0


@dataclass(frozen=True)
class Shape:
    batch: int = 64
    time: int = 128
    embed: int = 64
    hidden: int = 512
    layers: int = 2

    def __str__(self) -> str:
        return f"B={self.batch} T={self.time} E={self.embed} H={self.hidden} L={self.layers}"


CHAR_LM = Shape()


@dataclass(frozen=True)
class Case:
    name: str
    shape: Shape


def cases(*, quick: bool = False) -> list[Case]:
    return [Case("char lm train vs hand loop", CHAR_LM)]


class _Plain(nn.Module):
    """What a user writes: the same three layers from torch.nn, the same parameter names."""

    def __init__(self, vocab: int, s: Shape):
        super().__init__()
        self.embed = nn.Module()
        self.embed.embedding = nn.Embedding(vocab, s.embed)
        self.rnn = nn.LSTM(s.embed, s.hidden, s.layers, batch_first=True)
        self.head = nn.Linear(s.hidden, vocab)

    def forward(self, ids_BT, state):
        out, state = self.rnn(self.embed.embedding(ids_BT), state)
        return self.head(out), state


def _steps(case: Case) -> tuple[Callable, Callable, Callable[[], None]]:
    s = case.shape
    text = load_text()
    tokenizer = CharTokenizer.train(text)
    ids_N = tokenizer.encode(text, name="text")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = LanguageModel(LMConfig(vocab_size=tokenizer.vocab_size, embed_size=s.embed,
                                       hidden_size=s.hidden, num_layers=s.layers)).to(DTYPE)
    plain = _Plain(tokenizer.vocab_size, s).to(DTYPE)
    plain.load_state_dict(model.state_dict())
    cfg = TrainConfig(epochs=1_000_000, max_steps=STEPS, clip_norm=1.0, progress=False, log_every=1_000_000)
    opt_fit = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    opt_plain = torch.optim.Adam(plain.parameters(), lr=cfg.lr)
    loader = StreamLoader(ids_N, batch_size=s.batch, bptt=s.time)
    L = (ids_N.numel() - 1) // s.batch
    inputs_BL = ids_N[: s.batch * L].view(s.batch, L)
    targets_BL = ids_N[1: s.batch * L + 1].view(s.batch, L)
    losses: dict[str, list[float]] = {"fit": [], "plain": []}

    def hand_loop():
        state = None
        for k in range(STEPS):
            start = k * s.time
            if state is not None:
                state = tuple(t.detach() for t in state)
            logits, state = plain(inputs_BL[:, start:start + s.time], state)
            loss = F.cross_entropy(logits.flatten(0, 1), targets_BL[:, start:start + s.time].flatten())
            opt_plain.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(plain.parameters(), 1.0)
            opt_plain.step()
            losses["plain"].append(loss.item())

    def with_fit():
        fit(model, loader, cfg, optimizer=opt_fit, on_step=lambda step, v: losses["fit"].append(v["loss"]))

    def check() -> None:  # the first calls: both start from the same weights
        with torch.random.fork_rng(devices=[]):
            hand_loop()
            with_fit()
        got, want = losses["fit"][0], losses["plain"][0]
        if abs(got - want) > 1e-5 * abs(want):
            raise EquivalenceError(f"{case.name}: first-step losses differ: fit {got} against {want}")

    return hand_loop, with_fit, check


def measure(case: Case, repeats: int) -> dict:
    result = {"suite": "fit", "case": case.name, "shape": str(case.shape), "steps_per_sample": STEPS,
              "tokens_per_sample": STEPS * case.shape.batch * case.shape.time}
    return checked_comparison(result, _steps(case), repeats)


def run(*, quick: bool = False, repeats: int = 9,
        on_result: Callable[[dict], object] | None = None) -> list[dict]:
    return run_each(cases(quick=quick), measure, repeats, on_result)
