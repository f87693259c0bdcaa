"""Truncated BPTT: contiguous per-slot streams, chunking, and the carried state.

Stream batching (as in Karpathy's char-rnn and Zaremba et al. 2014). The documents, in
order, fill B slots of equal size (S // B predictions each, S the total); row b of every
batch continues slot b exactly where the previous batch stopped, so the loop can carry the
recurrent state from batch to batch and detach it at each boundary. When a document ends
inside a chunk, the row is padded (``lengths_B``, targets -100) and its next chunk starts
the next document with ``reset_B[b] = True``: the loop zeroes that row's state and no
other. A document that crosses a slot boundary goes on in the next slot, from a fresh
state. One long text is the classic case: B contiguous rows of (N - 1) // B predictions.

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

from rnnkit.train.data import IGNORE, Batch, Loader, digest


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
        docs = [documents] if isinstance(documents, Tensor) else list(documents)
        for i, doc in enumerate(docs):
            if not isinstance(doc, Tensor) or doc.dim() != 1 or doc.dtype != torch.long:
                kind = f"{doc.dim()}-D {doc.dtype}" if isinstance(doc, Tensor) else type(doc).__name__
                raise ValueError(f"documents[{i}] must be a 1-D int64 tensor of token ids, got {kind}")
        steps = sum(max(doc.numel() - 1, 0) for doc in docs)  # a document of n ids predicts n - 1
        if steps < batch_size:
            raise ValueError(f"batch_size ({batch_size}) is larger than the data: {len(docs)} "
                             f"document(s) give {steps} predictions, fewer than 1 per stream")
        self.documents, self.batch_size, self.bptt = docs, batch_size, bptt
        self.rank, self.world_size = rank, world_size
        self.slots = _fill(docs, batch_size, bptt)

    def fingerprint(self) -> str:
        return digest(self.documents, self.batch_size, self.bptt)

    def __len__(self) -> int:
        # slots hold equal numbers of steps, but a slot cut into more pieces has more
        # (padded) chunks: its last few are left out, so that every row of a batch has data
        return min(len(chunks) for chunks in self.slots)

    def total_steps(self, epochs: int, bptt: int | None, *, limit: int | None = None) -> int:
        """A chunk of this loader is cut again where ``bptt`` (``TrainConfig.bptt``) is
        shorter than its own: the schedule must count those steps too."""
        if bptt is None or bptt >= self.bptt:
            return epochs * len(self)
        return epochs * sum(math.ceil(self._width(index) / bptt) for index in range(len(self)))

    def shard(self, rank: int, world_size: int) -> StreamLoader:
        return StreamLoader(self.documents, batch_size=self.batch_size, bptt=self.bptt,
                            rank=rank, world_size=world_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        local = self.batch_size // self.world_size
        slots = self.slots[self.rank * local:(self.rank + 1) * local]
        for index in range(start, len(self)):
            yield self._batch([slot[index] for slot in slots], first=index == 0, T=self._width(index))

    def _width(self, index: int) -> int:
        """Batch ``index``'s steps: its longest chunk over the global batch, so that every
        process cuts it into as many TBPTT chunks (their gradients are averaged step by step)."""
        return max(slot[index][2] for slot in self.slots)

    def _batch(self, chunks: list[tuple[int, int, int, bool]], *, first: bool, T: int) -> Batch:
        inputs_BT = torch.zeros(len(chunks), T, dtype=torch.long)
        targets_BT = torch.full((len(chunks), T), IGNORE, dtype=torch.long)
        for b, (doc, offset, n, _) in enumerate(chunks):
            ids = self.documents[doc][offset:offset + n + 1]
            inputs_BT[b, :n], targets_BT[b, :n] = ids[:-1], ids[1:]
        lengths_B = torch.tensor([n for _, _, n, _ in chunks])
        reset_B = torch.tensor([first or reset for _, _, _, reset in chunks])
        # equal rows need no lengths: the dense fused path stays available
        return Batch(inputs_BT, targets_BT, None if bool((lengths_B == T).all()) else lengths_B,
                     reset_B)


def _fill(docs: list[Tensor], batch_size: int, bptt: int) -> list[list[tuple[int, int, int, bool]]]:
    """Each slot's chunks as (document, offset, steps, starts a piece). The documents fill
    the slots in order, S // B steps each; the remainder (< B steps) is left out."""
    quota = sum(max(doc.numel() - 1, 0) for doc in docs) // batch_size
    slots: list[list[tuple[int, int, int, bool]]] = [[]]
    room = quota
    for i, doc in enumerate(docs):
        start, end = 0, doc.numel() - 1
        while start < end and len(slots) <= batch_size:
            take = min(room, end - start)
            slots[-1].extend((i, offset, min(bptt, start + take - offset), offset == start)
                             for offset in range(start, start + take, bptt))
            start, room = start + take, room - take
            if room == 0:
                slots.append([])
                room = quota
    return slots[:batch_size]


def tbptt_chunks(batch: Batch, bptt: int | None) -> Iterator[Batch]:
    """Cut a batch of sequences into chunks of ``bptt`` steps along time (dim 1).

    Per-step targets are cut with the inputs. A row whose sequence ended before a chunk
    runs one padded step there (layers take lengths >= 1) whose target is ignored.
    """
    if bptt is None:
        yield batch
        return
    if not isinstance(batch.inputs, Tensor):
        raise ValueError(f"bptt must be None for a batch whose inputs are several tensors "
                         f"({type(batch.inputs).__name__}: the model reads them whole), got bptt={bptt}")
    T = batch.inputs.shape[1] if batch.inputs.dim() >= 2 else 1
    if bptt >= T:
        yield batch
        return
    per_step = batch.targets.dim() >= 2 and batch.targets.shape[1] == T
    if not per_step:  # one label per sequence would be trained against every chunk
        raise ValueError(f"bptt={bptt} needs per-step targets of shape (B, T={T}, ...), got targets "
                         f"of shape {tuple(batch.targets.shape)}; leave bptt None for one label per sequence")
    for start in range(0, T, bptt):
        stop = min(start + bptt, T)
        lengths_B = None
        targets = batch.targets[:, start:stop] if per_step else batch.targets
        inputs = batch.inputs[:, start:stop]
        if batch.lengths_B is not None:
            lengths_B = (batch.lengths_B - start).clamp(1, stop - start)
            ended_B = batch.lengths_B <= start
            if bool(ended_B.any()):
                targets = targets.clone()
                targets[ended_B] = IGNORE if targets.dtype == torch.long else float("nan")
                if inputs.is_floating_point():  # its one padded step: NaN padding would reach the grads
                    inputs = inputs.masked_fill(ended_B.view(-1, *(1,) * (inputs.dim() - 1)), 0.0)
        yield Batch(inputs, targets, lengths_B, batch.reset_B if start == 0 else None)


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
