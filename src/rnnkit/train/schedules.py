"""Schedules as pure functions of the step: the learning rate and the teacher-forcing ratio.

Scheduled sampling: Bengio et al. 2015, "Scheduled Sampling for Sequence Prediction with
Recurrent Neural Networks", section 2.4 (linear, exponential and inverse-sigmoid decay of
the probability of feeding the ground truth).
"""

from __future__ import annotations

import math

from rnnkit.train.config import TrainConfig


def lr_at(step: int, progress: float, cfg: TrainConfig) -> float:
    """The learning rate for optimizer step ``step`` (0-based).

    Warm-up is linear over the first ``cfg.warmup_steps`` steps. The decay (cosine or
    linear, from ``lr`` to ``lr * min_lr_ratio``) follows ``progress`` in [0, 1]: the loop
    gives the fraction of the steps after the warm-up taken before this one (Hugging Face's
    ``get_cosine_schedule_with_warmup``), or of a time budget used, so that a time budget
    and a step budget decay the same way.
    ``plateau`` is constant here: torch's ReduceLROnPlateau scales it on evaluations.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    floor = cfg.lr * cfg.min_lr_ratio
    p = min(max(progress, 0.0), 1.0)
    if cfg.schedule == "cosine":
        return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * p))
    if cfg.schedule == "linear":
        return cfg.lr + (floor - cfg.lr) * p
    return cfg.lr


def teacher_forcing_at(step: int, cfg: TrainConfig) -> float:
    """Probability of feeding the ground truth (rather than the model's own prediction) at
    ``step``, going from ``teacher_forcing_start`` towards ``teacher_forcing_end``.

        linear:          start + (end - start) * min(step / k, 1)
        exponential:     end + (start - end) * exp(-step / k)
        inverse_sigmoid: end + (start - end) * k / (k + exp(step / k))

    with k = ``teacher_forcing_steps``.
    """
    start, end, k = cfg.teacher_forcing_start, cfg.teacher_forcing_end, cfg.teacher_forcing_steps
    if cfg.teacher_forcing == "linear":
        return start + (end - start) * min(step / k, 1.0)
    if cfg.teacher_forcing == "exponential":
        return end + (start - end) * math.exp(-step / k)
    if cfg.teacher_forcing == "inverse_sigmoid":
        # exp overflows near step/k = 710; by then the ratio is `end` to float precision
        return end + (start - end) * k / (k + math.exp(min(step / k, 700.0)))
    return start
