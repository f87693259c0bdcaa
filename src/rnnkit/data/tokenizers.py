"""Tokenizers: text <-> 1-D int64 ids, saved as ``tokenizer.json`` in a run directory.

Two kinds, one contract (``Tokenizer``):

- ``CharTokenizer``: one id per character of the training text. A character it has never
  seen is an error that names the character and its position.
- ``BPETokenizer``: byte-level BPE (Sennrich et al. 2016, "Neural Machine Translation of Rare
  Words with Subword Units"; the byte alphabet of GPT-2, Radford et al. 2019) trained with
  HuggingFace ``tokenizers`` on the training text only. Every string encodes: unseen
  characters fall back to their UTF-8 bytes.

``tokenizer.json`` holds ``{"type": "char" | "bpe", ...}``; ``load_tokenizer`` looks the type up
in ``TOKENIZERS`` and never imports a class path from the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from rnnkit._io import write_atomic

FILENAME = "tokenizer.json"
Kind = Literal["char", "bpe"]


@runtime_checkable
class Tokenizer(Protocol):
    """What a language-model task needs from a tokenizer."""

    kind: str  # the "type" written to tokenizer.json

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str, *, name: str = "text") -> Tensor:
        """(N,) int64 ids; ``name`` is the argument named in errors."""

    def decode(self, ids: Tensor | Iterable[int]) -> str: ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, with ``"type": kind``; ``from_dict`` reads it back."""


@dataclass(frozen=True)
class CharTokenizer:
    """Characters <-> ids; id i is ``chars[i]``. The vocabulary is fixed at creation."""

    chars: tuple[str, ...]
    kind = "char"

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError(f"chars must be distinct single characters, got {self.chars!r}")
        if not self.chars:
            raise ValueError("chars must hold at least one character, got ()")
        object.__setattr__(self, "_ids", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """The sorted distinct characters of ``text``."""
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
            raise ValueError(f"{name} must use only the {self.vocab_size} characters of the training "
                             f"text, got {ch!r} (U+{ord(ch):04X}) at position {text.index(ch)}; "
                             f"a byte-level BPE tokenizer (tokenizer 'bpe') encodes any text") from None

    def decode(self, ids: Tensor | Iterable[int]) -> str:
        ids = ids.tolist() if isinstance(ids, Tensor) else [int(i) for i in ids]
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "chars": list(self.chars)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        chars = data.get("chars")
        if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars):
            raise ValueError(f'a char tokenizer must hold "chars": a list of strings, got {chars!r}')
        return cls(tuple(chars))


class BPETokenizer:
    """Byte-level BPE over HuggingFace ``tokenizers``: ids 0-255 start as the byte alphabet,
    then one id per merge learned from the training text, up to ``vocab_size``."""

    kind = "bpe"

    def __init__(self, hf: Any):
        self._hf = hf  # a tokenizers.Tokenizer

    @classmethod
    def train(cls, text: str, *, vocab_size: int) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 256:
            raise ValueError(f"vocab_size must be an int >= 256 (the byte alphabet), got {vocab_size!r}")
        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        hf.train_from_iterator([text], trainer=trainer)
        return cls(hf)

    @property
    def vocab_size(self) -> int:
        return self._hf.get_vocab_size()

    def encode(self, text: str, *, name: str = "text") -> Tensor:
        return torch.tensor(self._hf.encode(text).ids, dtype=torch.long)

    def decode(self, ids: Tensor | Iterable[int]) -> str:
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        return self._hf.decode(ids)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "tokenizer": json.loads(self._hf.to_str())}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        inner = data.get("tokenizer")
        if not isinstance(inner, dict):
            raise ValueError(f'a bpe tokenizer must hold "tokenizer": a HuggingFace tokenizer object, '
                             f"got {type(inner).__name__}")
        try:
            return cls(HFTokenizer.from_str(json.dumps(inner)))
        except Exception as err:  # the Rust side raises its own exception type
            raise ValueError(f"the HuggingFace tokenizer in a bpe tokenizer cannot be read: {err}") from None


TOKENIZERS: dict[str, type] = {"char": CharTokenizer, "bpe": BPETokenizer}


def train_tokenizer(kind: Kind, text: str, *, vocab_size: int = 1024) -> Tokenizer:
    """A tokenizer of ``kind`` learned from ``text`` (the training text only); ``vocab_size``
    is for BPE (a char tokenizer's is the number of distinct characters)."""
    if kind == "char":
        return CharTokenizer.train(text)
    if kind == "bpe":
        return BPETokenizer.train(text, vocab_size=vocab_size)
    raise ValueError(f"tokenizer must be one of {sorted(TOKENIZERS)}, got {kind!r}")


def save_tokenizer(tokenizer: Tokenizer, run_dir: str | Path, name: str = FILENAME) -> Path:
    """Write ``run_dir/name`` (default ``tokenizer.json``) atomically; returns its path."""
    path = Path(run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(tokenizer.to_dict(), ensure_ascii=False) + "\n").encode("utf-8"))
    return path


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The tokenizer in a run directory (its ``tokenizer.json``) or in a tokenizer file."""
    path = Path(path)
    file = path / FILENAME if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"tokenizer file must exist, got {str(file)!r}: not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"tokenizer file {file} must be UTF-8 JSON, got an error: {err}") from None
    except OSError as err:  # a directory in its place, no permission
        raise ValueError(f"tokenizer file {file} must be a readable file, "
                         f"got {err.strerror or err}") from None
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in TOKENIZERS:
        raise ValueError(f'tokenizer file {file} must hold {{"type": one of {sorted(TOKENIZERS)}, ...}}, '
                         f"got type {kind!r}")
    try:
        return TOKENIZERS[kind].from_dict(data)
    except ValueError as err:
        raise ValueError(f"tokenizer file {file}: {err}") from None


def decode_stream(tokenizer: Tokenizer, ids: Iterable[int], *, max_pending: int = 8) -> Iterator[str]:
    """Text pieces as ids arrive, for printing while generating.

    A byte-level token can end inside a multi-byte character, which decodes to U+FFFD; such
    ids are held back until the character completes (or ``max_pending`` ids are waiting).
    """
    pending: list[int] = []
    for i in ids:
        pending.append(int(i))
        text = tokenizer.decode(pending)
        if text.endswith("\ufffd") and len(pending) < max_pending:
            continue
        pending = []
        if text:
            yield text
    if pending:
        yield tokenizer.decode(pending)
