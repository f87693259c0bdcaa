"""The most-frequent-tag baseline: every known word gets the tag it had most often in training.

Lookup: the word as written, else its normalised form (lower-cased, digits -> 0, as the
tagger's word vocabulary). Words seen in neither form (unknown words) get, by ``fallback``:

- ``overall``: the most frequent tag of the training data;
- ``suffix``: the most frequent tag of rare training words (seen at most 10 times, after
  Brants 2000, TnT, sec. 2.3) with the same word shape (``word_shape``) that end in the
  same last 4, 3, 2 or 1 characters (the longest found), else of all rare words of the shape,
  else ``overall``.

Ties go to the tag that sorts first, so the baseline is deterministic.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Literal

from rnnkit.data.tag_features import normalize, word_shape
from rnnkit.data.tagged import Tagged

Fallback = Literal["overall", "suffix"]
RARE = 10
MAX_SUFFIX = 4


class MostFrequentTag:
    def __init__(self, train: Tagged, *, lowercase: bool = True):
        if train.tags is None:
            raise ValueError(f"train must be tagged, got untagged {train.source}")
        self.lowercase = lowercase
        exact: dict[str, Counter] = defaultdict(Counter)
        normal: dict[str, Counter] = defaultdict(Counter)
        overall: Counter = Counter()
        for words, tags in zip(train.words, train.tags, strict=True):
            for w, t in zip(words, tags, strict=True):
                exact[w][t] += 1
                normal[normalize(w, lowercase=lowercase)][t] += 1
                overall[t] += 1
        self.exact = {w: _top(c) for w, c in exact.items()}
        self.normal = {w: _top(c) for w, c in normal.items()}
        self.overall = _top(overall)
        suffixes: dict[tuple[int, str], Counter] = defaultdict(Counter)
        for w, counts in exact.items():
            if sum(counts.values()) <= RARE:
                shape = word_shape(w)
                for k in range(min(MAX_SUFFIX, len(w)) + 1):  # k = 0: the shape alone
                    suffixes[shape, w[len(w) - k:]].update(counts)
        self.suffix = {key: _top(c) for key, c in suffixes.items()}

    def known(self, word: str) -> bool:
        return normalize(word, lowercase=self.lowercase) in self.normal

    def predict(self, words: Sequence[str], fallback: Fallback = "suffix") -> list[str]:
        return [self._one(w, fallback) for w in words]

    def _one(self, word: str, fallback: Fallback) -> str:
        tag = self.exact.get(word) or self.normal.get(normalize(word, lowercase=self.lowercase))
        if tag is not None:
            return tag
        if fallback == "suffix":
            shape = word_shape(word)
            for k in range(min(MAX_SUFFIX, len(word)), -1, -1):
                tag = self.suffix.get((shape, word[len(word) - k:]))
                if tag is not None:
                    return tag
        return self.overall


def _top(counts: Counter) -> str:
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
