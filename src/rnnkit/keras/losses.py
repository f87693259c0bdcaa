"""Keras's losses and metrics by name, as ``(y_true, y_pred) -> scalar`` means (Keras's
argument order; the training loop's is ``(outputs, targets)``).

The cross-entropies take probabilities (a ``sigmoid``/``softmax`` output, Keras's
``from_logits=False``) and clip them to [1e-7, 1 - 1e-7] before the log, as Keras does, so a
saturated softmax gives a large but finite loss instead of inf or NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

EPSILON = 1e-7  # Keras's backend.epsilon()

LossFn = Callable[[Tensor, Tensor], Tensor]


def _align(y_true: Tensor, y_pred: Tensor, what: str) -> Tensor:
    """``y_true`` with ``y_pred``'s shape and dtype; (B,) targets for a (B, 1) output gain the
    last axis, as Keras expands them."""
    if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.unsqueeze(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y must have the model output's shape {tuple(y_pred.shape)} for {what} "
                         f"(per batch), got {tuple(y_true.shape)}")
    return y_true.to(y_pred.dtype)


def _labels(y_true: Tensor, y_pred: Tensor, what: str) -> Tensor:
    """Integer class ids with ``y_pred``'s shape less the class axis ((B, 1) -> (B,))."""
    if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(f"y must hold class ids of shape {tuple(y_pred.shape[:-1])} for {what} "
                         f"(the output's shape less its class axis), got {tuple(y_true.shape)}")
    labels = y_true.long()
    C = y_pred.shape[-1]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= C):
        raise ValueError(f"y must hold class ids in [0, {C}) for {what}, got min "
                         f"{int(labels.min())} and max {int(labels.max())}")
    return labels


def mean_squared_error(y_true: Tensor, y_pred: Tensor) -> Tensor:
    return (y_pred - _align(y_true, y_pred, "mean_squared_error")).square().mean()


def mean_absolute_error(y_true: Tensor, y_pred: Tensor) -> Tensor:
    return (y_pred - _align(y_true, y_pred, "mean_absolute_error")).abs().mean()


def binary_crossentropy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """-(y log p + (1 - y) log(1 - p)), p clipped to [eps, 1 - eps]."""
    y = _align(y_true, y_pred, "binary_crossentropy")
    p = y_pred.clamp(EPSILON, 1.0 - EPSILON)
    return -(y * p.log() + (1.0 - y) * (-p).log1p()).mean()


def categorical_crossentropy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """-sum_c y_c log p_c over the last axis, p renormalised and clipped as Keras does."""
    y = _align(y_true, y_pred, "categorical_crossentropy")
    p = (y_pred / y_pred.sum(dim=-1, keepdim=True)).clamp(EPSILON, 1.0 - EPSILON)
    return -(y * p.log()).sum(dim=-1).mean()


def sparse_categorical_crossentropy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """-log p_y for integer class ids y."""
    labels = _labels(y_true, y_pred, "sparse_categorical_crossentropy")
    p = (y_pred / y_pred.sum(dim=-1, keepdim=True)).clamp(EPSILON, 1.0 - EPSILON)
    return -p.log().gather(-1, labels.unsqueeze(-1)).mean()


def binary_accuracy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    y = _align(y_true, y_pred, "binary_accuracy")
    return ((y_pred > 0.5).to(y.dtype) == y).to(y_pred.dtype).mean()


def categorical_accuracy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    y = _align(y_true, y_pred, "categorical_accuracy")
    return (y.argmax(dim=-1) == y_pred.argmax(dim=-1)).to(y_pred.dtype).mean()


def sparse_categorical_accuracy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    labels = _labels(y_true, y_pred, "sparse_categorical_accuracy")
    return (labels == y_pred.argmax(dim=-1)).to(y_pred.dtype).mean()


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
}

METRICS: dict[str, LossFn] = LOSSES | {
    "accuracy": accuracy,
    "acc": accuracy,
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
}


def get_loss(loss) -> LossFn:
    """A loss name, or a callable ``(y_true, y_pred) -> tensor`` (reduced by its mean)."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"loss must be a callable or one of {sorted(LOSSES)}, got {loss!r}")
        return LOSSES[loss]
    if not callable(loss):
        raise TypeError(f"loss must be a name or a callable (y_true, y_pred), got {type(loss).__name__}")
    return lambda y_true, y_pred: torch.as_tensor(loss(y_true, y_pred)).mean()


def get_metrics(metrics) -> dict[str, LossFn]:
    """Metric names (or callables, named by ``__name__``) -> functions, in order."""
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
            out[metric] = METRICS[metric]
        elif callable(metric):
            out[getattr(metric, "__name__", f"metric_{len(out)}")] = get_loss(metric)
        else:
            raise TypeError(f"metrics must hold names or callables, got {type(metric).__name__}")
    if "loss" in out:
        raise ValueError("metrics must not be named 'loss' (history['loss'] is the loss)")
    return out
