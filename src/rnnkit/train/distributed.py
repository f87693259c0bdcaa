"""Data-parallel training with torch.distributed, as launched by ``torchrun``.

When a process group is up (``init_process_group``; gloo on CPU, NCCL on GPU), ``fit``
wraps the model in DistributedDataParallel, gives each process its part of every global
batch (``Loader.shard``: contiguous TBPTT slots, or a slice of each shuffled batch), lets
rank 0 alone write, and stops every process at the same step. Gradients are averaged
across processes, so with equal parts a step equals the single-process step on the whole
global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from rnnkit.train.data import Loader

_REASONS = ("early_stopping", "max_steps", "max_minutes", "SIGINT", "SIGTERM")


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.world_size == 1:
            return model
        device_ids = [torch.cuda.current_device()] if next(model.parameters()).is_cuda else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def shard(self, loader: Loader) -> Loader:
        return loader if self.world_size == 1 else loader.shard(self.rank, self.world_size)

    def loss_scale(self, items: int) -> tuple[float, int]:
        """(scale, items over all processes). DDP averages gradients over processes; when
        their batches hold different numbers of items (ignored tokens, padding), scaling each
        loss by world_size * local / global items makes that average the global mean."""
        if self.world_size == 1:
            return 1.0, items
        total = int(self.sum([float(items)])[0])
        return (self.world_size * items / total if total else 0.0), total

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over the processes."""
        if self.world_size == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def gather(self, obj):
        """Every process's ``obj``, in rank order, on rank 0 (None elsewhere)."""
        if self.world_size == 1:
            return [obj]
        out = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def agree(self, reason: str | None) -> str | None:
        """The first stop reason any process has (a signal may reach one process only)."""
        if self.world_size == 1:
            return reason
        code = torch.tensor([_REASONS.index(reason) + 1 if reason else 0])
        if dist.get_backend() == "nccl":
            code = code.cuda()
        dist.all_reduce(code, op=dist.ReduceOp.MAX)
        return _REASONS[int(code) - 1] if int(code) else None


def context() -> Context:
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size())
    return Context()


def init_from_env() -> Context:
    """Start the process group from torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR…);
    NCCL when CUDA is there, gloo otherwise. A no-op outside torchrun."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return Context()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return context()
