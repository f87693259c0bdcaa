"""Two synthetic long-dependency tasks: the adding problem and the copy problem.

- Adding problem: Hochreiter & Schmidhuber (1997), "Long short-term memory", §5.4, in the
  two-channel form of Le, Jaitly & Hinton (2015), "A simple way to initialize recurrent
  networks of rectified linear units", §4.1. Channel 0 holds values ~ U(0, 1), channel 1
  is a marker with exactly two 1s; the target is the sum of the two marked values. As in
  Arjovsky et al. (2016) §4.2, the first marker falls in the first half of the sequence and
  the second in the second half, so the answer always needs a value from ≥ T/2 steps back.
  Predicting the mean, 1, gives MSE Var(a + b) = 2/12 = 1/6: the bar to beat.
- Copy problem: Arjovsky, Shah & Bengio (2016), "Unitary evolution recurrent neural
  networks", §4.1. Symbols: 0 blank, 1..8 data, 9 delimiter. The input is 10 data symbols,
  then blanks, the delimiter 11 steps before the end, then 10 blanks; the target is blank
  everywhere but the last 10 steps, which repeat the 10 data symbols. The paper's T (the
  delay) is ``seq_len - 20`` here: ``seq_len`` counts every step the network runs.
  Deviation: the loss here is the cross-entropy on the last 10 steps only, the steps that
  depend on the distant past; the paper averages over all steps, whose blank targets add a
  direct gradient at every step that hides the one flowing back through time. Guessing a
  data symbol uniformly gives log 8 ≈ 2.08 nats.

Shapes:
    adding: x_BTI (B, T, 2) float, y_B (B,) float.
    copy: tokens_BT (B, T) long, targets_BT (B, T) long.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

COPY_LEN = 10  # symbols to remember, as in Arjovsky et al. (2016)
COPY_SYMBOLS = 8  # data symbols 1..8; 0 is blank and 9 the delimiter
BLANK, DELIMITER = 0, COPY_SYMBOLS + 1


def adding_problem(batch: int, seq_len: int, *, generator: torch.Generator,
                   dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    """A batch of the adding problem (see the module docstring).

    Arguments:
        batch: number of sequences B.
        seq_len: steps T per sequence, at least 2 (one marker in each half).
        generator: the source of randomness (the global RNG is never touched).
        dtype: floating dtype of both tensors (default: torch's default dtype).

    Returns:
        ``(x_BTI, y_B)``: values in channel 0, markers in channel 1, and the targets.
    """
    check_ints({"batch": batch}, lowest=1)
    check_ints({"seq_len": seq_len}, lowest=2)
    half = seq_len // 2
    values_BT = torch.rand(batch, seq_len, generator=generator, dtype=dtype)
    first_B = torch.randint(0, half, (batch,), generator=generator)
    second_B = torch.randint(half, seq_len, (batch,), generator=generator)
    marks_BT = torch.zeros_like(values_BT)
    rows_B = torch.arange(batch)
    marks_BT[rows_B, first_B] = 1.0
    marks_BT[rows_B, second_B] = 1.0
    y_B = (values_BT * marks_BT).sum(dim=1)
    return torch.stack([values_BT, marks_BT], dim=-1), y_B


def copy_problem(batch: int, seq_len: int, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A batch of the copy problem (see the module docstring).

    Arguments:
        batch: number of sequences B.
        seq_len: steps T per sequence, at least 21 (delay ``seq_len - 20`` ≥ 1).
        generator: the source of randomness (the global RNG is never touched).

    Returns:
        ``(tokens_BT, targets_BT)``: symbols in [0, 9].
    """
    check_ints({"batch": batch}, lowest=1)
    check_ints({"seq_len": seq_len}, lowest=2 * COPY_LEN + 1)
    data_BC = torch.randint(1, COPY_SYMBOLS + 1, (batch, COPY_LEN), generator=generator)
    tokens_BT = torch.full((batch, seq_len), BLANK, dtype=torch.long)
    tokens_BT[:, :COPY_LEN] = data_BC
    tokens_BT[:, seq_len - COPY_LEN - 1] = DELIMITER
    targets_BT = torch.full_like(tokens_BT, BLANK)
    targets_BT[:, -COPY_LEN:] = data_BC
    return tokens_BT, targets_BT


@dataclass(frozen=True)
class Task:
    """A task as the experiments use it: float inputs for the network, and a loss on the
    network's per-step outputs.

    Attributes:
        name: the task's key in ``TASKS``.
        input_size: I of ``x_BTI``.
        output_size: O of the per-step readout ``pred_BTO``.
        sample: ``(batch, seq_len, generator, dtype) -> (x_BTI, targets)``.
        loss: ``(pred_BTO, targets) -> scalar``.
        baseline: the loss of the best prediction that ignores the input.
        min_seq_len: the shortest sequence the task is defined for.
    """

    name: str
    input_size: int
    output_size: int
    sample: Callable[[int, int, torch.Generator, torch.dtype], tuple[Tensor, Tensor]]
    loss: Callable[[Tensor, Tensor], Tensor]
    baseline: float
    min_seq_len: int


def _adding_loss(pred_BT1: Tensor, y_B: Tensor) -> Tensor:
    return F.mse_loss(pred_BT1[:, -1, 0], y_B)  # read out at the last step only


def _copy_sample(batch: int, seq_len: int, generator: torch.Generator, dtype) -> tuple[Tensor, Tensor]:
    tokens_BT, targets_BT = copy_problem(batch, seq_len, generator=generator)
    return F.one_hot(tokens_BT, DELIMITER + 1).to(dtype or torch.get_default_dtype()), targets_BT


def _copy_loss(logits_BTV: Tensor, targets_BT: Tensor) -> Tensor:
    recall_BCV, want_BC = logits_BTV[:, -COPY_LEN:], targets_BT[:, -COPY_LEN:]
    return F.cross_entropy(recall_BCV.flatten(0, 1), want_BC.flatten())


TASKS: dict[str, Task] = {
    "adding": Task("adding", 2, 1,
                   lambda b, t, g, dtype: adding_problem(b, t, generator=g, dtype=dtype),
                   _adding_loss, baseline=1 / 6, min_seq_len=2),
    "copy": Task("copy", DELIMITER + 1, DELIMITER + 1, _copy_sample, _copy_loss,
                 baseline=math.log(COPY_SYMBOLS), min_seq_len=2 * COPY_LEN + 1),
}


def check_ints(values: dict, *, lowest: int) -> None:
    """Each value must be an int (not a bool) >= ``lowest``."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            raise ValueError(f"{name} must be an int >= {lowest}, got {value!r}")
