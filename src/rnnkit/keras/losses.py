"""Keras's losses and metrics by name, as ``(y_true, y_pred) -> scalar`` means (Keras's
argument order; the training loop's is ``(outputs, targets)``).

The cross-entropies take probabilities (a ``sigmoid``/``softmax`` output, Keras's
``from_logits=False``) and clip them to [1e-7, 1 - 1e-7] before the log, as Keras does, so a
saturated softmax gives a large but finite loss instead of inf or NaN.

Masks: a sequence output (B, T, ...) may carry Keras's mask (``set_mask``; an
``Embedding(mask_zero=True)`` makes one and ``Sequential`` attaches it), and every loss and
metric here is then the mean over the steps it keeps, as Keras reduces a masked loss. Over an
epoch, Keras weights each batch's metric by its real steps (``batch_weight``; see
``rnnkit.keras._fit``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.keras._naming import snake as _snake

EPSILON = 1e-7  # Keras's backend.epsilon()

LossFn = Callable[..., Tensor]  # (y_true, y_pred[, sample_weight]) -> mean

_MASK = "_keras_mask"  # the attribute where Keras keeps a tensor's mask
_COUNT = "_keras_count"  # on a mean from _mean: what it averaged, in steps or samples


def set_mask(y_pred: Tensor, mask_BT: Tensor) -> Tensor:
    """Attach ``mask_BT`` (True at real steps) to the sequence output ``y_pred`` (B, T, ...),
    as Keras's ``set_keras_mask`` does; returns ``y_pred``."""
    assert mask_BT.dtype == torch.bool and y_pred.shape[:2] == mask_BT.shape
    setattr(y_pred, _MASK, mask_BT)
    return y_pred


def with_mask(out, mask_BT: Tensor | None):
    """``out`` with Keras's mask when it is a per-step output (B, T, ...) of masked steps (an
    ``Embedding(mask_zero=True)``'s), for the loss and metrics; an output without the time
    axis (a recurrent layer's last step, a list with states) keeps none, as in Keras."""
    if mask_BT is None or not isinstance(out, Tensor) or out.dim() < 3 or tuple(out.shape[:2]) != tuple(
            mask_BT.shape):
        return out
    return set_mask(out, mask_BT)


def get_mask(y_pred: Tensor) -> Tensor | None:
    """The mask attached by ``set_mask``, or None."""
    return getattr(y_pred, _MASK, None)


def _mean(values: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> Tensor:
    """The mean of ``values`` (per element or per step of ``y_pred``), over the steps that
    ``y_pred``'s mask keeps (Keras's masked ``sum_over_batch_size``); the plain mean without
    one, or for values without the (B, T) axes. The mean carries the count an epoch's mean
    weights it by (``batch_weight``).

    ``sample_weight`` (B,) or (B, T) multiplies the values before the sum, which is still
    divided by the number of values (or of real steps), as Keras's ``reduce_weighted_values``
    does: weights scale the loss, they are not normalised. (B,) weights apply to every step
    of their sample (Keras 3 would broadcast them against the time axis instead)."""
    mask_BT = get_mask(y_pred)
    if sample_weight is not None:
        weight = sample_weight.to(values.dtype)
        if values.dim() == 0:  # a user loss that reduced itself: its value at every weighted place
            values = values.expand(mask_BT.shape if mask_BT is not None else weight.shape)
        values = values * _broadcast_weight(weight, values)
    if mask_BT is None or values.dim() < 2 or values.shape[:2] != mask_BT.shape:
        mean, count = values.mean(), values.shape[0] if values.dim() else 1
    else:
        keep = mask_BT.reshape(*mask_BT.shape, *(1,) * (values.dim() - 2)).expand_as(values)
        # where, not a product: a padded step's inf or NaN must not reach the sum
        mean = torch.where(keep, values, values.new_zeros(())).sum() / keep.sum().clamp(min=1)
        count = int(mask_BT.sum())
    setattr(mean, _COUNT, count)
    return mean


def _broadcast_weight(weight: Tensor, values: Tensor) -> Tensor:
    """``weight`` (B,), (B, 1) or (B, T) shaped to multiply ``values`` (B, ...): (B, 1) is one
    weight per sample, as Keras reads it; each weight applies to everything under its axes."""
    if weight.dim() == 2 and weight.shape[1] == 1:
        weight = weight.squeeze(1)
    if values.shape[:weight.dim()] != weight.shape:
        raise ValueError(f"sample_weight of shape {tuple(weight.shape)} (per batch) must match the "
                          f"leading axes of the loss values, of shape {tuple(values.shape)}")
    return weight.reshape(*weight.shape, *(1,) * (values.dim() - weight.dim()))


def batch_weight(mean: Tensor) -> int:
    """The count that Keras's ``MeanMetricWrapper`` adds for a batch whose loss or metric (from
    this module) is ``mean``: its real steps where the output has a mask, else its samples (1
    for a user function's scalar). An epoch's metric is sum(mean * count) / sum(count)."""
    return getattr(mean, _COUNT, 1)


class TargetError(ValueError):
    """Targets that do not fit the output. ``fit``/``evaluate`` name the targets they were
    given (``y``, ``validation_data y``) in place of ``y_true``."""

    def __init__(self, expected: str):
        super().__init__(f"y_true {expected}")
        self.expected = expected


def _align(y_true: Tensor, y_pred: Tensor, what: str) -> Tensor:
    """``y_true`` with ``y_pred``'s shape and dtype; (B,) targets for a (B, 1) output gain the
    last axis, as Keras expands them."""
    given = tuple(y_true.shape)
    if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.unsqueeze(-1)
    if y_true.shape != y_pred.shape:
        raise TargetError(f"must have the model output's shape {tuple(y_pred.shape)} for {what} "
                          f"(per batch), got {given}")
    return y_true.to(y_pred.dtype)


def _labels(y_true: Tensor, y_pred: Tensor, what: str) -> Tensor:
    """Integer class ids with ``y_pred``'s shape less the class axis ((B, 1) -> (B,))."""
    given = tuple(y_true.shape)
    if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    if y_true.shape != y_pred.shape[:-1]:
        raise TargetError(f"must hold class ids of shape {tuple(y_pred.shape[:-1])} for {what} "
                          f"(the output's shape less its class axis), got {given}")
    labels = y_true.long()
    C = y_pred.shape[-1]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= C):
        raise TargetError(f"must hold class ids in [0, {C}) for {what}, got min "
                          f"{int(labels.min())} and max {int(labels.max())}")
    return labels


# the losses take Keras's sample_weight (see _mean); the metrics, as Keras's ``metrics``, do not


def mean_squared_error(y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> Tensor:
    return _mean((y_pred - _align(y_true, y_pred, "mean_squared_error")).square(), y_pred, sample_weight)


def mean_absolute_error(y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> Tensor:
    return _mean((y_pred - _align(y_true, y_pred, "mean_absolute_error")).abs(), y_pred, sample_weight)


def binary_crossentropy(y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> Tensor:
    """-(y log p + (1 - y) log(1 - p)), p clipped to [eps, 1 - eps]."""
    y = _align(y_true, y_pred, "binary_crossentropy")
    p = y_pred.clamp(EPSILON, 1.0 - EPSILON)
    return _mean(-(y * p.log() + (1.0 - y) * (-p).log1p()), y_pred, sample_weight)


def categorical_crossentropy(y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> Tensor:
    """-sum_c y_c log p_c over the last axis, p renormalised and clipped as Keras does."""
    y = _align(y_true, y_pred, "categorical_crossentropy")
    p = (y_pred / y_pred.sum(dim=-1, keepdim=True)).clamp(EPSILON, 1.0 - EPSILON)
    return _mean(-(y * p.log()).sum(dim=-1), y_pred, sample_weight)


def sparse_categorical_crossentropy(y_true: Tensor, y_pred: Tensor,
                                    sample_weight: Tensor | None = None) -> Tensor:
    """-log p_y for integer class ids y."""
    labels = _labels(y_true, y_pred, "sparse_categorical_crossentropy")
    p = (y_pred / y_pred.sum(dim=-1, keepdim=True)).clamp(EPSILON, 1.0 - EPSILON)
    return _mean(-p.log().gather(-1, labels.unsqueeze(-1)), y_pred, sample_weight)


def huber(y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> Tensor:
    """0.5 e² where |e| <= 1, else |e| - 0.5 (Keras's ``delta=1``), e = y_pred - y_true."""
    e = (y_pred - _align(y_true, y_pred, "huber")).abs()
    return _mean(torch.where(e <= 1.0, 0.5 * e.square(), e - 0.5), y_pred, sample_weight)


def mean_absolute_percentage_error(y_true: Tensor, y_pred: Tensor,
                                   sample_weight: Tensor | None = None) -> Tensor:
    """100 |y - p| / max(|y|, eps)."""
    y = _align(y_true, y_pred, "mean_absolute_percentage_error")
    return _mean(100.0 * (y - y_pred).abs() / y.abs().clamp(min=EPSILON), y_pred, sample_weight)


def mean_squared_logarithmic_error(y_true: Tensor, y_pred: Tensor,
                                   sample_weight: Tensor | None = None) -> Tensor:
    """(log(1 + max(p, eps)) - log(1 + max(y, eps)))²."""
    y = _align(y_true, y_pred, "mean_squared_logarithmic_error")
    diff = y_pred.clamp(min=EPSILON).log1p() - y.clamp(min=EPSILON).log1p()
    return _mean(diff.square(), y_pred, sample_weight)


def kl_divergence(y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> Tensor:
    """sum_c y_c log(y_c / p_c) over the last axis, both clipped to [eps, 1]."""
    y = _align(y_true, y_pred, "kl_divergence").clamp(EPSILON, 1.0)
    p = y_pred.clamp(EPSILON, 1.0)
    return _mean((y * (y / p).log()).sum(dim=-1), y_pred, sample_weight)


def log_cosh(y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> Tensor:
    """log(cosh(e)), computed as e + softplus(-2e) - log 2 so that it does not overflow."""
    e = y_pred - _align(y_true, y_pred, "log_cosh")
    return _mean(e + F.softplus(-2.0 * e) - math.log(2.0), y_pred, sample_weight)


def binary_accuracy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    y = _align(y_true, y_pred, "binary_accuracy")
    return _mean(((y_pred > 0.5).to(y.dtype) == y).to(y_pred.dtype), y_pred)


def categorical_accuracy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    y = _align(y_true, y_pred, "categorical_accuracy")
    return _mean((y.argmax(dim=-1) == y_pred.argmax(dim=-1)).to(y_pred.dtype), y_pred)


def sparse_categorical_accuracy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    labels = _labels(y_true, y_pred, "sparse_categorical_accuracy")
    return _mean((labels == y_pred.argmax(dim=-1)).to(y_pred.dtype), y_pred)


def accuracy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """Keras's ``"accuracy"``, resolved from the shapes as Keras 3 does: binary for one
    output unit, sparse for class-id targets, categorical for one-hot ones."""
    if y_pred.shape[-1] == 1:
        return binary_accuracy(y_true, y_pred)
    if y_true.dim() < y_pred.dim() or y_true.shape[-1] == 1:
        return sparse_categorical_accuracy(y_true, y_pred)
    return categorical_accuracy(y_true, y_pred)


LOSSES: dict[str, LossFn] = {
    "mse": mean_squared_error,
    "mean_squared_error": mean_squared_error,
    "mae": mean_absolute_error,
    "mean_absolute_error": mean_absolute_error,
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "huber": huber,
    "mape": mean_absolute_percentage_error,
    "mean_absolute_percentage_error": mean_absolute_percentage_error,
    "msle": mean_squared_logarithmic_error,
    "mean_squared_logarithmic_error": mean_squared_logarithmic_error,
    "kld": kl_divergence,
    "kl_divergence": kl_divergence,
    "log_cosh": log_cosh,
    "logcosh": log_cosh,
}

METRICS: dict[str, LossFn] = LOSSES | {
    "accuracy": accuracy,
    "acc": accuracy,
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
}


def get_loss(loss) -> LossFn:
    """A loss name, or a callable ``(y_true, y_pred) -> tensor``, called as ``_wrap`` says."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"loss must be a callable or one of {sorted(LOSSES)}, got {loss!r}")
        return LOSSES[loss]
    if not callable(loss):
        raise TypeError(f"loss must be a name or a callable (y_true, y_pred), got {type(loss).__name__}")
    return _wrap(loss)


def _wrap(fn: Callable) -> LossFn:
    """A user's ``(y_true, y_pred)`` callable as Keras's ``LossFunctionWrapper`` calls it:
    y_true cast to y_pred's float dtype, the ranks matched by ``squeeze_or_expand_to_same_rank``
    (so (B,) targets meet a (B, 1) output as (B, 1), not broadcast to (B, B)), and what it
    returns (a scalar, or per-sample or per-element values) reduced to its (masked) mean."""
    def call(y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> Tensor:
        y_t, y_p = squeeze_or_expand_to_same_rank(y_true.to(y_pred.dtype), y_pred)
        values = torch.as_tensor(fn(y_t, y_p))
        return _mean(values.to(device=y_pred.device, dtype=y_pred.dtype), y_pred, sample_weight)
    return call


def squeeze_or_expand_to_same_rank(x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
    """Keras's rule where the ranks differ by one and the longer's last axis is 1: a rank-1
    tensor gains that axis, otherwise the longer loses it."""
    if x1.dim() == x2.dim() + 1 and x1.shape[-1] == 1:
        return (x1, x2.unsqueeze(-1)) if x2.dim() == 1 else (x1.squeeze(-1), x2)
    if x2.dim() == x1.dim() + 1 and x2.shape[-1] == 1:
        return (x1.unsqueeze(-1), x2) if x1.dim() == 1 else (x1, x2.squeeze(-1))
    return x1, x2


def get_metrics(metrics) -> dict[str, LossFn]:
    """Metric names or callables -> functions, in order. A callable is named by its
    ``__name__`` (else its snake-cased class name); a repeated name gets ``_1``, ``_2``, ...,
    as Keras 3 names two ``lambda`` metrics ``<lambda>`` and ``<lambda>_1``."""
    if metrics is None:
        return {}
    if isinstance(metrics, str) or not isinstance(metrics, list | tuple):
        raise TypeError(f"metrics must be a list of names or callables, got {metrics!r}")
    out: dict[str, LossFn] = {}
    for metric in metrics:
        if isinstance(metric, str):
            if metric not in METRICS:
                raise ValueError(f"metrics must be callables or names in {sorted(METRICS)}, "
                                 f"got {metric!r}")
            name, fn = metric, METRICS[metric]
        elif callable(metric):
            name, fn = getattr(metric, "__name__", None) or _snake(type(metric).__name__), _wrap(metric)
        else:
            raise TypeError(f"metrics must hold names or callables, got {type(metric).__name__}")
        out[_unique(name, out)] = fn
    if "loss" in out:
        raise ValueError("metrics must not be named 'loss' (history['loss'] is the loss)")
    return out


def _unique(name: str, taken: dict) -> str:
    candidate, k = name, 0
    while candidate in taken:
        k += 1
        candidate = f"{name}_{k}"
    return candidate
