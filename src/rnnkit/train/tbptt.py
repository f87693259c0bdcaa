"""Truncated BPTT: contiguous per-slot streams, chunking, and the carried state.

Stream batching (as in Karpathy's char-rnn and Zaremba et al. 2014). The documents are
dealt to B slots; row b of every batch continues slot b exactly where the previous batch
stopped, so the loop can carry the recurrent state from batch to batch and detach it at
each boundary. When a slot's document ends inside a chunk, the row is padded
(``lengths_B``, targets -100) and its next chunk starts the next document with
``reset_B[b] = True``: the loop zeroes that row's state and no other.

One long text is the special case of B documents, the text cut into B contiguous rows.

State trees: a state is None, a tensor, or a (named) tuple/list/dict of them, with the
batch on the second-to-last dimension. rnnkit's HiddenState/LSTMState ((B, H) tensors)
and torch.nn's hx ((L*D, B, H)) both follow that rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from rnnkit.train.data import IGNORE, Batch, Loader


class StreamLoader(Loader):
    """Chunks of ``bptt`` steps from B contiguous streams; the loop carries state across them.

    Arguments:
        documents: 1-D int64 tensors of token ids, or one tensor to cut into B rows.
        batch_size: B, the number of streams (slots) in a global batch.
        bptt: time steps per chunk.
    """

    carries_state = True

    def __init__(self, documents: Tensor | Sequence[Tensor], *, batch_size: int, bptt: int,
                 rank: int = 0, world_size: int = 1):
        for name, value in (("batch_size", batch_size), ("bptt", bptt)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if batch_size % world_size:
            raise ValueError(f"batch_size ({batch_size}) must divide evenly over "
                             f"world_size={world_size} processes")
        docs = _split_stream(documents, batch_size) if isinstance(documents, Tensor) else list(documents)
        for i, doc in enumerate(docs):
            if doc.dim() != 1 or doc.dtype != torch.long:
                raise ValueError(f"documents[{i}] must be a 1-D int64 tensor, got {doc.dim()}-D "
                                 f"{doc.dtype}")
        docs = [doc for doc in docs if doc.numel() >= 2]  # one token predicts nothing
        if len(docs) < batch_size:
            raise ValueError(f"batch_size ({batch_size}) is larger than the data: "
                             f"{len(docs)} document(s) with at least 2 tokens")
        self.documents, self.batch_size, self.bptt = docs, batch_size, bptt
        self.rank, self.world_size = rank, world_size
        self.slots = _deal(docs, batch_size, bptt)

    def __len__(self) -> int:
        return min(len(chunks) for chunks in self.slots)

    def shard(self, rank: int, world_size: int) -> StreamLoader:
        return StreamLoader(self.documents, batch_size=self.batch_size, bptt=self.bptt,
                            rank=rank, world_size=world_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        local = self.batch_size // self.world_size
        slots = self.slots[self.rank * local:(self.rank + 1) * local]
        for index in range(start, len(self)):
            yield self._batch([slot[index] for slot in slots], first=index == 0)

    def _batch(self, pieces: list[tuple[int, int, int]], *, first: bool) -> Batch:
        T = max(n for _, _, n in pieces)
        inputs_BT = torch.zeros(len(pieces), T, dtype=torch.long)
        targets_BT = torch.full((len(pieces), T), IGNORE, dtype=torch.long)
        for b, (doc, offset, n) in enumerate(pieces):
            ids = self.documents[doc][offset:offset + n + 1]
            inputs_BT[b, :n], targets_BT[b, :n] = ids[:-1], ids[1:]
        lengths_B = torch.tensor([n for _, _, n in pieces])
        reset_B = torch.tensor([first or offset == 0 for _, offset, _ in pieces])
        # equal rows need no lengths: the dense fused path stays available
        return Batch(inputs_BT, targets_BT, None if bool((lengths_B == T).all()) else lengths_B,
                     reset_B)


def _split_stream(ids_N: Tensor, batch_size: int) -> list[Tensor]:
    """B contiguous rows of L + 1 ids: row b predicts ids[b*L+1 : (b+1)*L+1]."""
    if ids_N.dim() != 1:
        raise ValueError(f"documents must be 1-D token ids, got shape {tuple(ids_N.shape)}")
    L = (ids_N.numel() - 1) // batch_size
    if L < 1:
        raise ValueError(f"batch_size ({batch_size}) is larger than the data: {ids_N.numel()} "
                         f"tokens give fewer than 1 prediction per stream")
    return [ids_N[b * L:(b + 1) * L + 1] for b in range(batch_size)]


def _deal(docs: list[Tensor], batch_size: int, bptt: int) -> list[list[tuple[int, int, int]]]:
    """Each slot's chunks as (document, offset, steps). Documents go, in order, to the slot
    with the fewest chunks so far, so that the slots run out at about the same time."""
    slots: list[list[tuple[int, int, int]]] = [[] for _ in range(batch_size)]
    for i, doc in enumerate(docs):
        slot = min(slots, key=len)
        steps = doc.numel() - 1
        slot.extend((i, k * bptt, min(bptt, steps - k * bptt)) for k in range(math.ceil(steps / bptt)))
    return slots


def tbptt_chunks(batch: Batch, bptt: int | None) -> Iterator[Batch]:
    """Cut a batch of sequences into chunks of ``bptt`` steps along time (dim 1).

    Per-step targets are cut with the inputs. A row whose sequence ended before a chunk
    runs one padded step there (layers take lengths >= 1) whose target is ignored.
    """
    T = batch.inputs.shape[1] if batch.inputs.dim() >= 2 else 1
    if bptt is None or bptt >= T:
        yield batch
        return
    per_step = batch.targets.dim() >= 2 and batch.targets.shape[1] == T
    if batch.lengths_B is not None and not per_step:
        raise ValueError(f"bptt={bptt} with lengths needs per-step targets of shape (B, T={T}, ...), "
                         f"got targets of shape {tuple(batch.targets.shape)}")
    for start in range(0, T, bptt):
        stop = min(start + bptt, T)
        lengths_B = None
        targets = batch.targets[:, start:stop] if per_step else batch.targets
        if batch.lengths_B is not None:
            lengths_B = (batch.lengths_B - start).clamp(1, stop - start)
            ended_B = batch.lengths_B <= start
            if bool(ended_B.any()):
                targets = targets.clone()
                targets[ended_B] = IGNORE if targets.dtype == torch.long else float("nan")
        yield Batch(batch.inputs[:, start:stop], targets, lengths_B,
                    batch.reset_B if start == 0 else None)


def map_state(fn: Callable[[Tensor], Tensor], state: Any) -> Any:
    """Apply ``fn`` to every tensor of a state tree, keeping its structure and types."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # a NamedTuple state
        return type(state)(*(map_state(fn, s) for s in state))
    if isinstance(state, tuple | list):
        return type(state)(map_state(fn, s) for s in state)
    if isinstance(state, dict):
        return {k: map_state(fn, v) for k, v in state.items()}
    raise TypeError(f"state must be None, a tensor, or a tuple/list/dict of tensors, "
                    f"got {type(state).__name__}")


def detach_state(state: Any) -> Any:
    """Cut the graph at a chunk boundary: gradients stop here, values carry on."""
    return map_state(Tensor.detach, state)


def reset_state(state: Any, reset_B: Tensor | None) -> Any:
    """Zero the rows of ``state`` where ``reset_B`` is True (every cell starts from zeros).

    All rows reset gives None, so the model builds its own initial state.
    """
    if state is None or reset_B is None or not bool(reset_B.any()):
        return state
    if bool(reset_B.all()):
        return None
    reset_B1 = reset_B.unsqueeze(-1)
    return map_state(lambda t: torch.where(reset_B1.to(t.device), torch.zeros((), dtype=t.dtype,
                                                                              device=t.device), t),
                     state)
