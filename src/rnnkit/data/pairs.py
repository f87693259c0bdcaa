"""Sentence pairs for translation: a TSV reader and held-out splits by group or by position.

    pairs = read_pairs("pairs.tsv")
    train, val, test = split_pairs(pairs, val_groups=("Ruth",), test_groups=("Mark",))
    loader = PairLoader(source_ids, target_ids, bos_id=V - 2, eos_id=V - 1, batch_size=32)

The file is UTF-8 (a BOM is allowed), one pair per line: ``source<TAB>target``, or
``source<TAB>target<TAB>group`` where the group (a book, a document, a speaker) lets whole
groups be held out. Every line has the same number of columns; blank lines are skipped;
leading and trailing spaces of a field are removed. Every error is a ``DataError`` naming
the file, the line, what was expected and what was found.

``PairLoader`` batches the pairs, once tokenized, for ``rnnkit.models.Seq2Seq`` and ``fit``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from rnnkit.data.series import DataError, read_utf8
from rnnkit.data.splits import held_out_count
from rnnkit.models.seq2seq import Seq2SeqInputs
from rnnkit.train.data import IGNORE, Batch, Loader, digest


@dataclass(frozen=True)
class Pairs:
    """Parallel sentences; ``groups`` is None for a two-column file."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    groups: tuple[str, ...] | None
    path: Path

    def __len__(self) -> int:
        return len(self.sources)

    def take(self, rows: Sequence[int]) -> Pairs:
        """The pairs at ``rows``, in that order."""
        return Pairs(tuple(self.sources[r] for r in rows), tuple(self.targets[r] for r in rows),
                     None if self.groups is None else tuple(self.groups[r] for r in rows), self.path)


def read_pairs(path: str | Path) -> Pairs:
    """Read a TSV of ``source<TAB>target[<TAB>group]`` lines; see the module docstring.

    Raises:
        DataError: a missing or empty file, undecodable bytes, a line with the wrong number
            of columns, or an empty field.
    """
    path = Path(path)
    columns: list[list[str]] = []
    width, first = None, 0
    for number, line in _lines(path):
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) not in (2, 3):
            hint = " (columns must be separated by a tab)" if len(fields) == 1 else ""
            raise DataError(path, number, f"expected 2 or 3 tab-separated columns, source<TAB>target"
                                          f"[<TAB>group], got {len(fields)}{hint}: {line[:60]!r}")
        if width is None:
            width, first = len(fields), number
        elif len(fields) != width:
            raise DataError(path, number, f"expected {width} columns like line {first}, got {len(fields)}: "
                                          f"{line[:60]!r}")
        for name, value in zip(("source", "target", "group"), fields, strict=False):
            if not value:
                raise DataError(path, number, f"expected a non-empty {name}, got an empty column")
        columns.append(fields)
    sources, targets, *groups = zip(*columns, strict=True)
    return Pairs(tuple(sources), tuple(targets), tuple(groups[0]) if groups else None, path)


def read_sources(path: str | Path) -> list[str]:
    """One text to translate per line of a UTF-8 file: the text before the first tab (so a
    pairs TSV gives its sources). A blank line gives '', so outputs line up with inputs.

    Raises:
        DataError: a missing, empty or undecodable file.
    """
    path = Path(path)
    lines = _lines(path, keep_blank=True)
    if lines and not lines[-1][1]:  # the newline that ends the last line starts no new one
        lines.pop()
    return [line.split("\t", 1)[0].strip() for _, line in lines]


def split_pairs(pairs: Pairs, *, val_groups: Sequence[str] = (), test_groups: Sequence[str] = (),
                val_fraction: float = 0.0) -> tuple[Pairs, Pairs | None, Pairs | None]:
    """(train, val, test). ``test_groups`` and ``val_groups`` hold out whole groups (the
    file's third column). Without ``val_groups``, the last ``ceil(n * val_fraction)`` of the
    n lines left after the test groups are the validation pairs (``held_out_count``: at least
    one when val_fraction > 0): a split by position, so that neighbouring near-duplicates
    (verses of one chapter) do not sit on both sides. None: no such split.

    Raises:
        ValueError: groups asked of a file without a group column, a group that is not in
            the file or is asked for twice, or a split that leaves no training pairs, or
            (val_fraction > 0) no validation pairs.
    """
    if isinstance(val_fraction, bool) or not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    for name, asked in (("val_groups", val_groups), ("test_groups", test_groups)):
        if asked and pairs.groups is None:
            raise ValueError(f"{name} needs a third (group) column in {pairs.path}, which has 2 columns; "
                             f"got {name}={list(asked)}")
        missing = sorted(set(asked) - set(pairs.groups or ()))
        if missing:
            known = list(dict.fromkeys(pairs.groups or ()))
            raise ValueError(f"{name} (--set data.{name}=...) must be groups of {pairs.path}, got "
                             f"{missing}, which are not; the file has {known[:80]}")
    both = sorted(set(val_groups) & set(test_groups))
    if both:
        raise ValueError(f"val_groups and test_groups (data.val_groups, data.test_groups) must not share "
                         f"a group, got {both} in both")
    rows = range(len(pairs))
    test = [r for r in rows if pairs.groups is not None and pairs.groups[r] in test_groups]
    rest = [r for r in rows if not (pairs.groups is not None and pairs.groups[r] in test_groups)]
    if val_groups:
        val = [r for r in rest if pairs.groups[r] in val_groups]
    elif rest:
        items = "pairs left after the test groups" if test else "pairs"
        val = rest[len(rest) - held_out_count(len(rest), val_fraction, items=items):]
    else:
        val = []
    train = sorted(set(rest) - set(val))
    if not train:
        raise ValueError(f"the split leaves no training pairs out of the {len(pairs)} in {pairs.path}; "
                         f"hold out fewer groups or a smaller val_fraction")
    return pairs.take(train), pairs.take(val) if val else None, pairs.take(test) if test else None


def _lines(path: Path, *, keep_blank: bool = False) -> list[tuple[int, str]]:
    """The file's non-blank lines (every line with ``keep_blank``) as (1-based number, text
    without the line end)."""
    text = read_utf8(path)
    # split on \n only: str.splitlines would also break at U+2028, \x1c and the like inside a sentence
    lines = [(i, s.rstrip("\r")) for i, s in enumerate(text.split("\n"), 1) if keep_blank or s.strip()]
    if not any(s.strip() for _, s in lines):
        raise DataError(path, None, "expected at least one non-blank line, got an empty file")
    return lines


class PairLoader(Loader):
    """Batches of tokenized pairs for ``Seq2Seq``: ``Batch(Seq2SeqInputs(source_BS,
    source_lengths_B, target_BT), targets_BT)``, where the decoder reads BOS y_1 ... y_n and
    is scored on y_1 ... y_n EOS; padding is at the end, and padded targets are -100.

    Each epoch shuffles the pairs (from ``seed`` and the epoch), sorts each pool of ``pool``
    batches by target then source length and cuts it into batches, then shuffles the
    batches: a batch holds pairs of similar lengths, so little of it is padding. Without
    ``shuffle`` the pools are cut from the pairs in their order.

    Arguments:
        sources, targets: 1-D int64 id tensors, at least one id each, one per pair.
        bos_id, eos_id: the decoder's start and end ids (not in the id tensors).
        batch_size: pairs per global batch.
    """

    def __init__(self, sources: Sequence[Tensor], targets: Sequence[Tensor], *, bos_id: int, eos_id: int,
                 batch_size: int, shuffle: bool = True, seed: int = 0, pool: int = 50,
                 rank: int = 0, world_size: int = 1):
        if len(sources) != len(targets) or not sources:
            raise ValueError(f"sources and targets must hold the same number (>= 1) of sequences, got "
                             f"{len(sources)} and {len(targets)}")
        for name, seqs in (("sources", sources), ("targets", targets)):
            bad = next((i for i, t in enumerate(seqs) if t.dim() != 1 or t.dtype != torch.long
                        or t.numel() < 1), None)
            if bad is not None:
                raise ValueError(f"{name}[{bad}] must be a non-empty 1-D int64 tensor, got shape "
                                 f"{tuple(seqs[bad].shape)} {seqs[bad].dtype}")
        for name, value in (("batch_size", batch_size), ("pool", pool)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if batch_size % world_size:
            raise ValueError(f"batch_size ({batch_size}) must divide evenly over world_size={world_size} "
                             f"processes")
        self.sources, self.targets = list(sources), list(targets)
        self.bos_id, self.eos_id, self.batch_size = bos_id, eos_id, min(batch_size, len(sources))
        self.shuffle, self.seed, self.pool = shuffle, seed, pool
        self.rank, self.world_size = rank, world_size
        self._key_N = torch.tensor([t.numel() * 100_000 + s.numel() for s, t in zip(sources, targets,
                                                                                    strict=True)])

    def fingerprint(self) -> str:
        return digest(self.sources, self.targets, self.bos_id, self.eos_id, self.batch_size, self.shuffle,
                      self.seed, self.pool)

    def __len__(self) -> int:
        n = len(self.sources)
        # every process must get the same number of equal parts: full batches only
        return n // self.batch_size if self.world_size > 1 else math.ceil(n / self.batch_size)

    def shard(self, rank: int, world_size: int) -> PairLoader:
        return PairLoader(self.sources, self.targets, bos_id=self.bos_id, eos_id=self.eos_id,
                          batch_size=self.batch_size, shuffle=self.shuffle, seed=self.seed, pool=self.pool,
                          rank=rank, world_size=world_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        plan = self._plan(epoch)
        if self.world_size > 1:  # only the last pool's last batch can be short
            plan = [rows for rows in plan if len(rows) == self.batch_size]
        for rows in plan[start:len(self)]:
            yield self._batch(rows.tensor_split(self.world_size)[self.rank])

    def _plan(self, epoch: int) -> list[Tensor]:
        """The epoch's batches as row indices; the same on every call."""
        n, size = len(self.sources), self.batch_size
        # a generator of its own: the global RNG (dropout, init) is left alone
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order_N = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        plan: list[Tensor] = []
        for start in range(0, n, size * self.pool):
            rows = order_N[start:start + size * self.pool]
            rows = rows[self._key_N[rows].argsort(stable=True)]
            plan += list(rows.split(size))
        if self.shuffle:  # the short and the long batches take turns
            plan = [plan[i] for i in torch.randperm(len(plan), generator=generator).tolist()]
        return plan

    def _batch(self, rows: Tensor) -> Batch:
        sources = [self.sources[r] for r in rows.tolist()]
        targets = [self.targets[r] for r in rows.tolist()]
        source_BS = pad_sequence(sources, batch_first=True)
        lengths_B = torch.tensor([s.numel() for s in sources])
        bos, eos = torch.tensor([self.bos_id]), torch.tensor([self.eos_id])
        target_BT = pad_sequence([torch.cat([bos, t]) for t in targets], batch_first=True)
        gold_BT = pad_sequence([torch.cat([t, eos]) for t in targets], batch_first=True, padding_value=IGNORE)
        return Batch(Seq2SeqInputs(source_BS, lengths_B, target_BT), gold_BT)
