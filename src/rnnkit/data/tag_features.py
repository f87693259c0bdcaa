"""Tagged sentences -> the int64 features a ``Tagger`` reads, and batches of them.

Every token becomes one row ``[word id, shape id, char id 1, ..., char id W]``:

- word id: the token lower-cased (``lowercase=True``) with every digit replaced by 0
  (``normalize``), looked up in the training vocabulary; 0 padding, 1 UNK;
- shape id (``word_shape``): 1 lower, 2 title (``Fulton``), 3 upper (``NATO``), 4 other
  mixed case (``McDonald``, ``iPhone``), 5 no letters but a digit (``1961``, ``3-1``),
  6 neither (punctuation); 0 padding. It keeps what lower-casing removes;
- char ids: the token as written, 0 padding, 1 for a character the training data lacks.
  A token longer than ``max_word_chars`` keeps its first and last halves: suffixes and
  prefixes carry the part of speech.

Tags are ids into the training data's sorted tag set.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnkit.data.series import DataError
from rnnkit.data.tagged import Tagged
from rnnkit.train.data import IGNORE, Batch, Loader, count_chunks, digest

PAD, UNK = 0, 1
SHAPES = ("<pad>", "lower", "title", "upper", "mixed", "digit", "other")
_DIGIT = re.compile(r"\d")


def normalize(word: str, *, lowercase: bool = True) -> str:
    """The form the word embedding sees: digits -> 0, and lower-cased if asked."""
    return _DIGIT.sub("0", word.lower() if lowercase else word)


def word_shape(word: str) -> int:
    """The shape class of ``word``: an index into ``SHAPES`` (module docstring)."""
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return 5 if any(c.isdigit() for c in word) else 6
    upper = [c.isupper() for c in letters]
    if not any(upper):
        return 1
    if all(upper):
        return 3 if len(letters) > 1 else 2  # one capital ("A", "J.") reads as a title
    return 2 if upper[0] and not any(upper[1:]) else 4


@dataclass(frozen=True)
class TagVocab:
    """Words, characters and tags of a training set, and the features made from them."""

    words: tuple[str, ...]  # normalised forms; 0 "<pad>", 1 "<unk>"
    chars: tuple[str, ...]  # 0 "<pad>", 1 "<unk>"
    tags: tuple[str, ...]
    lowercase: bool = True
    max_word_chars: int = 16

    @classmethod
    def build(cls, data: Tagged, *, max_words: int = 50_000, min_freq: int = 1, lowercase: bool = True,
              max_word_chars: int = 16) -> TagVocab:
        """From the training set only; the most frequent words first (ties by spelling)."""
        if data.tags is None:
            raise ValueError(f"data must be tagged to build a vocabulary, got untagged {data.source}")
        counts = Counter(normalize(w, lowercase=lowercase) for s in data.words for w in s)
        kept = [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_freq]
        chars = sorted({c for s in data.words for w in s for c in w})
        tags = sorted({t for s in data.tags for t in s})
        return cls(("<pad>", "<unk>", *kept[: max(0, max_words - 2)]), ("<pad>", "<unk>", *chars),
                   tuple(tags), lowercase, max_word_chars)

    def word_ids(self, words: Sequence[str]) -> list[int]:
        index = self._index("words")
        return [index.get(normalize(w, lowercase=self.lowercase), UNK) for w in words]

    def features(self, words: Sequence[str]) -> Tensor:
        """(T, 2 + W) int64 for one sentence; W its longest word, at most ``max_word_chars``."""
        chars = self._index("chars")
        cut = [_cut(w, self.max_word_chars) for w in words]
        W = max(len(w) for w in cut)
        rows = [[word, word_shape(w), *(chars.get(c, UNK) for c in short), *[PAD] * (W - len(short))]
                for word, w, short in zip(self.word_ids(words), words, cut, strict=True)]
        return torch.tensor(rows, dtype=torch.long)

    def tag_ids(self, data: Tagged, n: int, *, unknown: str = "error") -> Tensor:
        """(T,) int64 ids of sentence ``n``'s tags. A tag outside the training set is a
        ``DataError`` (``unknown="error"``) or IGNORE (``unknown="ignore"``)."""
        assert data.tags is not None
        index = self._index("tags")
        ids = []
        for tag, line in zip(data.tags[n], data.lines[n], strict=True):
            if tag not in index and unknown == "error":
                raise DataError(data.source, line, f"expected one of the {len(self.tags)} tags of the "
                                                   f"training data, got the unknown tag {tag!r}")
            ids.append(index.get(tag, IGNORE))
        return torch.tensor(ids, dtype=torch.long)

    def _index(self, name: str) -> dict[str, int]:
        cache = self.__dict__.setdefault("_cache", {})
        if name not in cache:
            cache[name] = {t: i for i, t in enumerate(getattr(self, name))}
        return cache[name]

    def to_json(self) -> str:
        return json.dumps({"words": list(self.words), "chars": list(self.chars), "tags": list(self.tags),
                           "lowercase": self.lowercase, "max_word_chars": self.max_word_chars},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TagVocab:
        d = json.loads(text)
        return cls(tuple(d["words"]), tuple(d["chars"]), tuple(d["tags"]), d["lowercase"],
                   d["max_word_chars"])


def _cut(word: str, limit: int) -> str:
    return word if len(word) <= limit else word[: (limit + 1) // 2] + word[len(word) - limit // 2:]


class SentenceLoader(Loader):
    """Batches of whole sentences, padded to the batch's longest sentence and word.

    With ``shuffle``, each epoch draws a permutation from ``seed`` and sorts pools of
    ``50 * batch_size`` sentences by length before cutting batches (less padding, same
    randomness from epoch to epoch), then shuffles the batch order.

    Shapes: features[n] (T_n, F_n) int64; targets[n] (T_n,) int64 -> Batch(inputs (B, T, F),
    targets (B, T) with IGNORE on padding, lengths_B).
    """

    def __init__(self, features: Sequence[Tensor], targets: Sequence[Tensor], *, batch_size: int,
                 shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1):
        if not features or len(features) != len(targets):
            raise ValueError(f"features and targets must be equally long and non-empty, got "
                             f"{len(features)} and {len(targets)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if batch_size % world_size:
            raise ValueError(f"batch_size ({batch_size}) must divide evenly over world_size={world_size}")
        self.features, self.targets = list(features), list(targets)
        self.batch_size, self.shuffle, self.seed = min(batch_size, len(features)), shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.lengths_N = torch.tensor([len(t) for t in targets], dtype=torch.long)

    def fingerprint(self) -> str:
        return digest(self.features, self.targets, self.batch_size, self.shuffle, self.seed)

    def __len__(self) -> int:
        n = len(self.features)
        return n // self.batch_size if self.world_size > 1 else math.ceil(n / self.batch_size)

    def shard(self, rank: int, world_size: int) -> SentenceLoader:
        return SentenceLoader(self.features, self.targets, batch_size=self.batch_size, shuffle=self.shuffle,
                              seed=self.seed, rank=rank, world_size=world_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        for rows in self._order(epoch)[start: len(self)]:
            yield self._pad(rows.tensor_split(self.world_size)[self.rank])

    def total_steps(self, epochs: int, bptt: int | None, *, limit: int | None = None) -> int:
        if bptt is None:
            return epochs * len(self)
        return count_chunks(lambda epoch: (self.lengths_N[rows.tensor_split(self.world_size)[self.rank]]
                                           for rows in self._order(epoch)[: len(self)]), epochs, bptt, limit)

    def _order(self, epoch: int) -> list[Tensor]:
        n, size = len(self.features), self.batch_size
        if not self.shuffle:
            return list(torch.arange(n).split(size))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=generator)
        pools = [pool[self.lengths_N[pool].argsort(descending=True, stable=True)]
                 for pool in order.split(50 * size)]
        batches = [b for pool in pools for b in pool.split(size)]
        if self.world_size > 1:
            batches = [b for b in batches if len(b) == size]  # equal parts for every process
        return [batches[i] for i in torch.randperm(len(batches), generator=generator)]

    def _pad(self, rows: Tensor) -> Batch:
        feats = [self.features[i] for i in rows.tolist()]
        T = max(f.shape[0] for f in feats)
        F = max(f.shape[1] for f in feats)
        x_BTF = torch.zeros(len(feats), T, F, dtype=torch.long)
        y_BT = torch.full((len(feats), T), IGNORE, dtype=torch.long)
        for b, (f, i) in enumerate(zip(feats, rows.tolist(), strict=True)):
            x_BTF[b, : f.shape[0], : f.shape[1]] = f
            y_BT[b, : f.shape[0]] = self.targets[i]
        return Batch(x_BTF, y_BT, self.lengths_N[rows])
