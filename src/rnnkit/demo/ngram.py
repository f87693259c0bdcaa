"""The baseline: interpolated Kneser-Ney character n-grams.

Kneser & Ney (1995), "Improved backing-off for M-gram language modeling"; interpolated
form as in Chen & Goodman (1999), "An empirical study of smoothing techniques for
language modeling". For an n-gram model and a context h of k - 1 characters:

    P_k(w | h) = (max(c_k(h w) - D_k, 0) + D_k · N_k(h •) · P_{k-1}(w | h')) / c_k(h •)
    P_0(w)     = 1 / V

- h' is h without its first character; N_k(h •) the number of distinct w with c_k(h w) > 0;
  c_k(h •) = Σ_w c_k(h w).
- c_n (the top order) is the raw count; c_k for k < n is the continuation count, the
  number of distinct characters seen just before h w (the text's start counts as one).
- D_k = n1 / (n1 + 2 n2), from the counts-of-counts of c_k (Ney et al. 1994), or 1/2
  when no count is 1.
- A context never seen in training (c_k(h •) = 0) falls back to P_{k-1}.

Deviation: a history shorter than n - 1 characters (the start of the evaluated text) is
scored by the highest order it fills, with that order's continuation counts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

_Row = tuple[dict[str, int], int, int]  # (counts of the next char, their sum, their number)


class NGramCounts:
    """Raw and continuation counts of every k-gram of ``text``, k = 1..max_order."""

    def __init__(self, text: str, *, max_order: int):
        if max_order < 1:
            raise ValueError(f"max_order must be >= 1, got {max_order}")
        if len(text) < max_order:
            raise ValueError(f"text must have at least max_order={max_order} characters, "
                             f"got {len(text)}")
        self.max_order = max_order
        n = len(text)
        self.raw = {k: Counter(text[i : i + k] for i in range(n - k + 1))
                    for k in range(1, max_order + 1)}
        self.continuation = {}
        for k in range(1, max_order):
            cont = Counter(g[1:] for g in self.raw[k + 1])  # distinct left neighbours
            cont[text[:k]] += 1  # the start of the text is a left neighbour of its first k-gram
            self.continuation[k] = cont


class KneserNey:
    """Interpolated Kneser-Ney model of one order over a fixed vocabulary."""

    def __init__(self, counts: NGramCounts, *, order: int, vocab: Sequence[str]):
        if not 1 <= order <= counts.max_order:
            raise ValueError(f"order must be in [1, {counts.max_order}], got {order}")
        unseen = sorted(set("".join(counts.raw[1])) - set(vocab))
        if unseen:
            raise ValueError(f"vocab must hold every character of the text, missing {unseen}")
        self.order, self.vocab = order, tuple(vocab)
        self.tables: dict[int, dict[str, _Row]] = {}
        self.discounts: dict[int, float] = {}
        for k in range(1, order + 1):
            grams = counts.raw[k] if k == order else counts.continuation[k]
            self.tables[k] = _by_context(grams)
            self.discounts[k] = _discount(grams)

    def prob(self, history: str, ch: str) -> float:
        """P(ch | the last order - 1 characters of history)."""
        context = history[len(history) - self.order + 1 :] if self.order > 1 else ""
        p = 1.0 / len(self.vocab)
        for k in range(1, len(context) + 2):  # lowest order first
            row = self.tables[k].get(context[len(context) - k + 1 :] if k > 1 else "")
            if row is None:  # unseen context: keep the lower-order estimate
                continue
            next_counts, total, types = row
            D = self.discounts[k]
            p = (max(next_counts.get(ch, 0) - D, 0.0) + D * types * p) / total
        return p

    def distribution(self, history: str) -> list[float]:
        """P(w | history) for every w in ``vocab``, in vocab order."""
        return [self.prob(history, w) for w in self.vocab]

    def bits_per_char(self, text: str) -> float:
        """Mean -log2 P(text[i] | text[:i]) over i = 1..len(text) - 1 (the first char is
        context only, as for the LSTM)."""
        if len(text) < 2:
            raise ValueError(f"text must have at least 2 characters, got {len(text)}")
        span = self.order - 1
        nll = 0.0
        for i in range(1, len(text)):
            nll -= math.log2(self.prob(text[max(0, i - span) : i], text[i]))
        return nll / (len(text) - 1)


def _by_context(grams: Counter[str]) -> dict[str, _Row]:
    rows: dict[str, dict[str, int]] = {}
    for gram, c in grams.items():
        rows.setdefault(gram[:-1], {})[gram[-1]] = c
    return {h: (nxt, sum(nxt.values()), len(nxt)) for h, nxt in rows.items()}


def _discount(grams: Counter[str]) -> float:
    n1 = sum(1 for c in grams.values() if c == 1)
    n2 = sum(1 for c in grams.values() if c == 2)
    return n1 / (n1 + 2 * n2) if n1 else 0.5


def ngram_baselines(train: str, val: str, *, max_order: int, vocab: Sequence[str]) -> dict[int, float]:
    """Validation bits per character of the order-1..max_order models fitted on ``train``."""
    counts = NGramCounts(train, max_order=max_order)
    return {n: KneserNey(counts, order=n, vocab=vocab).bits_per_char(val)
            for n in range(1, max_order + 1)}
