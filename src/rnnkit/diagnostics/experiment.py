"""Two measured experiments on the vanishing and exploding gradient story.

- ``gradient_profile``: ‖dL/dh_t‖ over t for an Elman RNN (tanh), an LSTM and a GRU of the
  same hidden size on the same task and sequences, at initialisation and after a short
  training run (Hochreiter 1991; Bengio, Simard & Frasconi 1994: the gradient reaching
  step t is a product of T - t Jacobians, so it shrinks or grows geometrically).
- ``clipping_experiment``: an Elman RNN whose recurrent matrix is scaled to a spectral
  radius above 1 (exploding) trained by SGD with and without ``clip_grad_norm_`` at the
  same learning rate, next to the same net scaled below 1 (Pascanu, Mikolov & Bengio
  2013, "On the difficulty of training recurrent neural networks", §3.2).

The probe runs on a float64 copy of each net: an Elman RNN's ‖dL/dh_1‖ at T = 150 is
about 1e-31 of ‖dL/dh_T‖ at initialisation and falls further in training, below float32's
smallest normal number (1.2e-38). Training runs in the default dtype.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils import clip_grad_norm_

from rnnkit.diagnostics.probe import hidden_grad_norms
from rnnkit.diagnostics.tasks import TASKS, Task, check_ints
from rnnkit.dropins import GRU, LSTM, RNN, DropIn

CELL_TYPES: dict[str, type[DropIn]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
Log = Callable[[str], None] | None


class TaskNet(nn.Module):
    """One recurrent layer and a linear readout at every step.

    Shapes:
        x_BTI: (B, T, I) -> pred_BTO: (B, T, O); the task's loss picks the steps it scores.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.rnn = CELL_TYPES[cell](input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x_BTI: Tensor) -> Tensor:
        out_BTH, _ = self.rnn(x_BTI)
        return self.head(out_BTH)


def build_net(cell: str, task: Task, hidden_size: int, *, seed: int) -> TaskNet:
    """A ``TaskNet`` with torch's default initialisation, drawn from ``seed``."""
    # the layers initialise from the global RNG: fork it so the caller's stream is untouched
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TaskNet(cell, task.input_size, hidden_size, task.output_size)


def mean_grad_norms(net: nn.Module, task: Task, batches: list[tuple[Tensor, Tensor]]) -> Tensor:
    """‖dL/dh_t‖ of the net's (single) recurrent layer, averaged over ``batches``: norm_T."""
    probe = copy.deepcopy(net).double().eval()  # float64: see the module docstring
    norms_NT = torch.stack([hidden_grad_norms(probe, x, y, task.loss)[0] for x, y in batches])
    return norms_NT.mean(dim=0)


def train(net: nn.Module, task: Task, optimizer: torch.optim.Optimizer, *, steps: int,
          batch_size: int, seq_len: int, generator: torch.Generator,
          clip: float | None) -> tuple[list[float], list[float], int | None]:
    """Train on fresh batches; stop at the first non-finite loss or gradient norm.

    Returns:
        ``(losses, grad_norms, diverged_at)``: per step, the loss and the gradient norm
        *before* clipping; ``diverged_at`` is the step that went non-finite, or None.
    """
    losses, norms = [], []
    for step in range(steps):
        # batch -> forward -> loss -> backward -> clip -> step
        x, y = task.sample(batch_size, seq_len, generator, None)
        loss = task.loss(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = clip_grad_norm_(net.parameters(), math.inf if clip is None else clip)
        if not (math.isfinite(loss.item()) and math.isfinite(norm.item())):
            return losses, norms, step
        optimizer.step()
        losses.append(loss.item())
        norms.append(norm.item())
    return losses, norms, None


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block on ``threads`` torch threads (None: as set), then restore the count.

    The experiments default to one thread: at these sizes (B=32, H=64) oneDNN's threading
    costs more than it saves, and on a shared 2-core machine a training step measured 15 ms
    on one thread against 110-690 ms on two.
    """
    if threads is None:
        yield
        return
    check_ints({"threads": threads}, lowest=1)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def final_loss(losses: list[float]) -> float:
    """The mean over the last tenth of a run (at least one step): single batches are noisy."""
    tail = losses[-max(1, len(losses) // 10):]
    return sum(tail) / len(tail) if tail else math.nan


def check_task(task: str, seq_len: int) -> None:
    """``task`` must name a task in ``TASKS`` and ``seq_len`` be long enough for it."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {task!r}")
    shortest = TASKS[task].min_seq_len
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < shortest:
        raise ValueError(f"seq_len must be an int >= {shortest} for the {task} task, got {seq_len!r}")


def check_positive(values: dict) -> None:
    for name, value in values.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < math.inf:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class GradientConfig:
    """Settings of ``gradient_profile``."""

    task: str = "adding"
    seq_len: int = 150
    hidden_size: int = 64
    batch_size: int = 32
    batches: int = 4  # probe batches averaged per measurement
    train_steps: int = 400  # Adam steps between the two measurements (0: initialisation only)
    lr: float = 1e-2
    clip: float = 1.0  # gradient-norm clipping during training, as usual for RNNs
    seed: int = 0
    cells: tuple[str, ...] = ("rnn", "lstm", "gru")

    def __post_init__(self):
        check_task(self.task, self.seq_len)
        check_ints(dict(hidden_size=self.hidden_size, batch_size=self.batch_size,
                        batches=self.batches), lowest=1)
        check_ints(dict(train_steps=self.train_steps), lowest=0)
        check_positive(dict(lr=self.lr, clip=self.clip))
        if isinstance(self.cells, list):  # as read back from JSON
            object.__setattr__(self, "cells", tuple(self.cells))
        if not isinstance(self.cells, tuple) or not self.cells or not set(self.cells) <= set(CELL_TYPES):
            raise ValueError(f"cells must be a non-empty tuple of {tuple(CELL_TYPES)}, "
                             f"got {self.cells!r}")


@dataclass(frozen=True, kw_only=True)
class GradientProfile:
    """What ``gradient_profile`` measured; lists are indexed by step t = 1..T (or training step).

    Attributes:
        init: cell -> mean ‖dL/dh_t‖ at initialisation.
        trained: cell -> the same after ``config.train_steps`` (empty when 0).
        losses: cell -> training loss per step.
        baseline: the task's loss for the best input-blind prediction.
    """

    config: GradientConfig
    init: dict[str, list[float]]
    trained: dict[str, list[float]] = field(default_factory=dict)
    losses: dict[str, list[float]] = field(default_factory=dict)
    baseline: float = math.nan

    def ratio(self, cell: str, *, trained: bool = False) -> float:
        """‖dL/dh_1‖ / ‖dL/dh_T‖: how much of the last step's gradient reaches the first."""
        norms = (self.trained if trained else self.init)[cell]
        return norms[0] / norms[-1]

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        c = self.config
        lines = [f"{c.task} problem, T={c.seq_len}, H={c.hidden_size}: ||dL/dh_1|| / ||dL/dh_T||, "
                 f"mean of {c.batches} batches of {c.batch_size}"]
        for cell in c.cells:
            line = f"  {cell:5s} at init {self.ratio(cell):9.2e}"
            if self.trained:
                line += (f"   after {c.train_steps} steps {self.ratio(cell, trained=True):9.2e}"
                         f"   final loss {final_loss(self.losses[cell]):.4f}")
            lines.append(line)
        if self.trained:
            lines.append(f"  (input-blind baseline loss {self.baseline:.4f})")
        return "\n".join(lines)


def gradient_profile(config: GradientConfig, *, threads: int | None = 1,
                     log: Log = None) -> GradientProfile:
    """‖dL/dh_t‖ over t per cell type, at initialisation and after ``config.train_steps``.

    Every cell type gets the same seed, the same probe batches and the same training
    batches; training is Adam at ``config.lr`` with gradient clipping at ``config.clip``.
    Runs on ``threads`` torch threads (see ``torch_threads``); ``log`` gets progress lines.
    """
    with torch_threads(threads):
        return _gradient_profile(config, log)


def _gradient_profile(config: GradientConfig, log: Log) -> GradientProfile:
    task = TASKS[config.task]
    probe_gen = torch.Generator().manual_seed(config.seed)
    batches = [task.sample(config.batch_size, config.seq_len, probe_gen, torch.float64)
               for _ in range(config.batches)]
    init, trained, losses = {}, {}, {}
    for cell in config.cells:
        net = build_net(cell, task, config.hidden_size, seed=config.seed)
        init[cell] = mean_grad_norms(net, task, batches).tolist()
        if config.train_steps == 0:
            continue
        if log:
            log(f"training {cell} for {config.train_steps} steps")
        optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
        losses[cell], _, diverged = train(
            net, task, optimizer, steps=config.train_steps, batch_size=config.batch_size,
            seq_len=config.seq_len, generator=torch.Generator().manual_seed(config.seed + 1),
            clip=config.clip)
        if diverged is not None:
            raise FloatingPointError(f"{cell} diverged at step {diverged}: lower lr")
        trained[cell] = mean_grad_norms(net, task, batches).tolist()
    return GradientProfile(config=config, init=init, trained=trained, losses=losses,
                           baseline=task.baseline)
