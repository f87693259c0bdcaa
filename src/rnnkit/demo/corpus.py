"""Text in, ids out: the embedded corpus, a positional split and a character tokenizer.

The stream batching of truncated BPTT is ``rnnkit.train.StreamLoader``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

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

    def to_json(self) -> str:
        return json.dumps({"type": "char", "chars": list(self.chars)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CharTokenizer:
        data = json.loads(text)
        ok = isinstance(data, dict) and data.get("type") == "char"
        if not ok or not isinstance(data.get("chars"), list):
            raise ValueError('a char tokenizer file must hold {"type": "char", "chars": [...]}')
        return cls(tuple(data["chars"]))
