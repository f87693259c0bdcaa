"""Batches for the training loop: ``Batch``, the ``Loader`` contract and ``TensorLoader``.

A loader is a pure function of the epoch: ``batches(epoch, start)`` yields the same batches
every time it is asked, so the loop's data position is two integers (epoch, batch index)
and resuming needs no loader state. ``shard(rank, world_size)`` gives one process of a
data-parallel run its part of every global batch.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
from torch import Tensor

IGNORE = -100  # target id that the loss skips: torch's cross_entropy ignore_index


class Batch(NamedTuple):
    """One batch. ``reset_B`` marks rows whose carried state must restart (streams only).

    ``inputs`` is one tensor, or a NamedTuple of tensors for a model that reads several
    (a seq2seq model's source ids, source lengths and decoder inputs: ``Seq2SeqInputs``);
    the model receives it as it is. Such a batch is never cut into TBPTT chunks.

    Shapes:
        inputs: (B, T, ...) or (B, ...), or a NamedTuple of (B, ...) tensors; targets:
        (B, ...); lengths_B: (B,) int64.
    """

    inputs: Tensor | tuple[Tensor, ...]
    targets: Tensor
    lengths_B: Tensor | None = None
    reset_B: Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(_to(t, device) for t in self))

    @property
    def rows(self) -> int:
        """B, the number of rows."""
        return (self.inputs if isinstance(self.inputs, Tensor) else self.inputs[0]).shape[0]

    @property
    def per_token(self) -> bool:
        """Integer targets per step (language models, taggers): losses are per token."""
        return self.targets.dtype == torch.long and self.targets.dim() >= 2

    @property
    def items(self) -> int:
        """What a loss is averaged over, so that batches weigh by it: target tokens that
        count, finite float targets (NaN marks padding: the default loss's denominator), or
        samples (class ids)."""
        if self.per_token:
            return int(self.targets.ne(IGNORE).sum())
        if self.targets.is_floating_point():
            return int(self.targets.isfinite().sum())
        return self.targets.shape[0]

    @property
    def unit(self) -> str:
        """What ``items`` counts, for the rate shown (tokens/s, targets/s, samples/s)."""
        return "tokens" if self.per_token else "targets" if self.targets.is_floating_point() else "samples"


def _to(x: Tensor | tuple[Tensor, ...] | None, device: torch.device | str):
    if x is None or isinstance(x, Tensor):
        return None if x is None else x.to(device, non_blocking=True)
    return type(x)(*(t.to(device, non_blocking=True) for t in x))  # a NamedTuple of tensors


class Loader(ABC):
    """Batches for one epoch at a time. ``carries_state``: the loop carries the recurrent
    state from batch to batch (TBPTT streams) instead of starting each batch afresh."""

    carries_state: bool = False

    @abstractmethod
    def __len__(self) -> int:
        """Batches per epoch."""

    @abstractmethod
    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The batches of ``epoch`` from index ``start`` on; the same on every call."""

    @abstractmethod
    def shard(self, rank: int, world_size: int) -> Loader:
        """This process's part of every global batch."""

    def total_steps(self, epochs: int, bptt: int | None, *, limit: int | None = None) -> int:
        """Optimizer steps in ``epochs`` epochs: one a batch, or with ``bptt`` one a chunk; a
        count that reaches ``limit`` (``max_steps``) may stop there."""
        return epochs * len(self)

    def fingerprint(self) -> str | None:
        """A digest of the data and of how it is batched (``digest``), which ``fit`` keeps in
        its checkpoint so that a resumed run refuses other data; None (the default): not
        checked."""
        return None


def digest(*parts: Any) -> str:
    """SHA-256 (hex, 16 digits) of tensors (their dtype, shape and values), sequences of
    them, and plain numbers and strings: what a loader's batches are made from."""
    h = hashlib.sha256()

    def feed(part: Any) -> None:
        if isinstance(part, Tensor):
            t = part.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(part, list | tuple):
            h.update(f"L{len(part)}".encode())
            for p in part:
                feed(p)
        else:
            h.update(f"V{part!r}".encode())

    for part in parts:
        feed(part)
    return h.hexdigest()[:16]


class TensorLoader(Loader):
    """Mini-batches of samples held in tensors, reshuffled every epoch from ``seed``.

    With ``lengths`` (variable-length sequences padded at the end), each batch is cut to its
    longest sequence. Targets of shape (N, T, ...) are cut with it.

    Arguments:
        inputs: (N, T, ...) or (N, ...) samples.
        targets: (N, ...) targets; integer targets equal to -100 are ignored by the loss.
        batch_size: samples per global batch.
        lengths: (N,) valid steps of each sequence, or None when all are full.
        drop_last: leave out the last, partial batch. Always so with several processes
            (each must get an equal part of every batch): N % batch_size samples, a different
            few each epoch when shuffled, are left out of each epoch there.
    """

    def __init__(self, inputs: Tensor, targets: Tensor, *, batch_size: int, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False, lengths: Tensor | None = None,
                 rank: int = 0, world_size: int = 1):
        if not isinstance(inputs, Tensor) or not isinstance(targets, Tensor):
            raise TypeError(f"inputs and targets must be tensors, got {type(inputs).__name__} "
                            f"and {type(targets).__name__}")
        n = inputs.shape[0] if inputs.dim() else 0
        if n == 0:
            raise ValueError(f"inputs must hold at least one sample, got shape {tuple(inputs.shape)}")
        if targets.dim() == 0 or targets.shape[0] != n:
            raise ValueError(f"targets must have one row per input sample ({n}), got shape "
                             f"{tuple(targets.shape)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if batch_size > n:
            raise ValueError(f"batch_size ({batch_size}) is larger than the data ({n} samples)")
        if lengths is not None:
            if lengths.shape != (n,) or inputs.dim() < 2:
                raise ValueError(f"lengths must have shape ({n},) for inputs of shape (N, T, ...), "
                                 f"got {tuple(lengths.shape)} for {tuple(inputs.shape)}")
            if int(lengths.min()) < 1 or int(lengths.max()) > inputs.shape[1]:
                raise ValueError(f"lengths must be in [1, {inputs.shape[1]}], got "
                                 f"[{int(lengths.min())}, {int(lengths.max())}]")
        if batch_size % world_size:
            raise ValueError(f"batch_size ({batch_size}) must divide evenly over "
                             f"world_size={world_size} processes")
        self.inputs, self.targets, self.lengths = inputs, targets, lengths
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        # every process must get the same number of equal parts: keep full batches only
        self.drop_last = drop_last or world_size > 1
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        n = self.inputs.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def fingerprint(self) -> str:
        return digest(self.inputs, self.targets, self.lengths, self.batch_size, self.shuffle, self.seed,
                      self.drop_last)

    def total_steps(self, epochs: int, bptt: int | None, *, limit: int | None = None) -> int:
        if bptt is None or self.inputs.dim() < 2:
            return epochs * len(self)
        if self.lengths is None:
            return epochs * len(self) * math.ceil(self.inputs.shape[1] / bptt)
        # each batch is cut to its longest row, so its chunks depend on the epoch's order
        return count_chunks(lambda epoch: (self.lengths[rows] for rows in self._order(epoch)), epochs, bptt,
                            limit)

    def shard(self, rank: int, world_size: int) -> TensorLoader:
        return TensorLoader(self.inputs, self.targets, batch_size=self.batch_size,
                            shuffle=self.shuffle, seed=self.seed, drop_last=self.drop_last,
                            lengths=self.lengths, rank=rank, world_size=world_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        for rows in self._order(epoch)[start:]:
            # cut to the global batch's longest row, so that every process has as many chunks
            T = None if self.lengths is None else int(self.lengths[rows].max())
            yield self._take(rows.tensor_split(self.world_size)[self.rank], T)

    def _order(self, epoch: int) -> list[Tensor]:
        """Each global batch's rows in ``epoch``."""
        n = self.inputs.shape[0]
        if self.shuffle:
            # a generator of its own: the global RNG (dropout, init) is left alone
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order_N = torch.randperm(n, generator=generator)
        else:
            order_N = torch.arange(n)
        return list(order_N.split(self.batch_size))[:len(self)]

    def _take(self, rows: Tensor, T: int | None) -> Batch:
        inputs, targets = self.inputs[rows], self.targets[rows]
        if self.lengths is None:
            return Batch(inputs, targets)
        lengths_B = self.lengths[rows]
        if targets.dim() >= 2 and targets.shape[1] == inputs.shape[1]:
            targets = targets[:, :T]  # per-step targets are padded like the inputs
        return Batch(inputs[:, :T], targets, lengths_B)


def count_chunks(batch_lengths: Callable[[int], Iterator[Tensor]], epochs: int, bptt: int,
                 limit: int | None, *, exact_batches: int = 100_000) -> int:
    """Chunks of ``bptt`` steps in ``epochs`` epochs of batches cut to their longest row;
    ``batch_lengths(epoch)`` yields each batch's lengths. Every epoch reorders the rows, so
    each is counted, up to ``limit`` (``max_steps``) and about ``exact_batches`` batches
    (a fraction of a second); beyond those (an "until the time budget runs out" run) the
    remaining epochs are taken at the counted ones' mean."""
    total = batches = 0
    for epoch in range(epochs):
        if batches >= exact_batches:
            return total + round(total / epoch * (epochs - epoch))
        for lengths in batch_lengths(epoch):
            total += math.ceil(int(lengths.max()) / bptt)
            batches += 1
        if limit is not None and total >= limit:
            return total
    return total
