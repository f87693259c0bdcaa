"""Text in, batches out: the embedded corpus, a positional split, a character tokenizer and
the stream batching of truncated BPTT (as in Karpathy's char-rnn).

Stream batching. The N ids are cut into B contiguous rows of L = (N - 1) // B characters;
row b reads ``ids[b*L : (b+1)*L]`` and predicts ``ids[b*L+1 : (b+1)*L+1]``. Chunk k is
the columns ``[k*T, (k+1)*T)`` of every row, so row b of chunk k+1 continues row b of
chunk k exactly where it stopped, and the LSTM state can be carried from one to the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import NamedTuple

import torch
from torch import Tensor

CORPUS = "kjv_genesis_exodus.txt"


def load_text(name: str = CORPUS) -> str:
    """A text embedded in ``rnnkit.data`` (see its README for sources and licences)."""
    return resources.files("rnnkit.data").joinpath(name).read_text(encoding="utf-8")


def split_by_lines(text: str, val_fraction: float) -> tuple[str, str]:
    """(train, val): the last ``val_fraction`` of the lines are held out, in order.

    Splitting by position rather than at random keeps near-duplicate neighbouring verses
    from sitting on both sides of the split.
    """
    lines = text.splitlines(keepends=True)
    n_val = round(len(lines) * val_fraction)
    if not 1 <= n_val < len(lines):
        raise ValueError(f"val_fraction={val_fraction} of {len(lines)} lines leaves "
                         f"{n_val} validation lines; need between 1 and {len(lines) - 1}")
    return "".join(lines[:-n_val]), "".join(lines[-n_val:])


@dataclass(frozen=True)
class CharTokenizer:
    """Characters <-> ids; id i is ``chars[i]``. The vocabulary is fixed at creation."""

    chars: tuple[str, ...]

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError(f"chars must be distinct single characters, got {self.chars!r}")
        object.__setattr__(self, "_ids", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(tuple(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str, *, name: str = "text") -> Tensor:
        """(N,) int64 ids. Raises ValueError naming the first character not in the vocabulary."""
        try:
            return torch.tensor([self._ids[c] for c in text], dtype=torch.long)
        except KeyError as err:
            ch = err.args[0]
            raise ValueError(f"{name} has character {ch!r} (U+{ord(ch):04X}) at index "
                             f"{text.index(ch)}, which is not in the vocabulary of "
                             f"{self.vocab_size} characters") from None

    def decode(self, ids: Tensor | list[int]) -> str:
        return "".join(self.chars[i] for i in torch.as_tensor(ids).tolist())


class Chunk(NamedTuple):
    """One TBPTT step: ``targets_BT`` is ``inputs_BT`` shifted left by one within each stream."""

    inputs_BT: Tensor
    targets_BT: Tensor


def tbptt_chunks(ids_N: Tensor, *, batch: int, bptt: int) -> Iterator[Chunk]:
    """One epoch of chunks over ``batch`` contiguous streams (see the module docstring).

    The last chunk is shorter when ``bptt`` does not divide the row length L; the
    ``N - 1 - B * L`` characters at the end are not used in this epoch.
    """
    N = ids_N.numel()
    L = (N - 1) // batch
    if L < 1:
        raise ValueError(f"batch={batch} streams need at least {batch + 1} ids, got {N}")
    inputs_BL = ids_N[: batch * L].view(batch, L)
    targets_BL = ids_N[1 : batch * L + 1].view(batch, L)
    for start in range(0, L, bptt):
        yield Chunk(inputs_BL[:, start : start + bptt], targets_BL[:, start : start + bptt])
