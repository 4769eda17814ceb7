"""Losses for integer or one-hot targets, from logits or probabilities.

All are numerically stable and differentiate on every backend: they use
``log_softmax`` (never ``logsumexp``, whose gradient is NaN for large logits
in PyTensor 3.0.7) and select the target class with a one-hot mask over a
constant ``arange`` (JAX rejects ``arange`` of symbolic lengths).

Shapes: ``logits``/``probs`` are ``(..., V)``; ``targets`` are ``(...)``
integer ids or ``(..., V)`` one-hot / soft labels; ``mask`` is ``(...)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytensor.tensor as pt
from pytensor.tensor.special import log_softmax, softmax

from . import id_ranges

__all__ = ["cross_entropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
           "mean_squared_error", "reduce", "perplexity", "bits_per_char", "softmax",
           "log_softmax"]

EPSILON = 1e-7


def _n_classes(z, num_classes):
    if num_classes is not None:
        return int(num_classes)
    static = z.type.shape[-1]
    if static is not None:
        return int(static)
    return z.shape[-1]


def _pick(logp, targets, num_classes, checked=True):
    """``logp[..., targets]`` for integer targets, as a one-hot mask product."""
    classes = pt.arange(_n_classes(logp, num_classes))
    picked = pt.eq(targets[..., None], classes)
    if checked:  # the targets' range is checked at each call (scanrnn.id_ranges)
        id_ranges.mark_classes(picked, targets, logp, num_classes)
    return (logp * picked).sum(axis=-1)


def _negative_log_likelihood(logp, targets, num_classes, checked=True):
    """``-log p(target)`` per example from log-probabilities ``(..., V)``.  Integer targets
    with a last axis of size 1 (Keras's ``(B, 1)``) are class ids, as Keras reads them."""
    targets = pt.as_tensor_variable(targets)
    ids = targets.dtype.startswith(("int", "uint"))
    if ids and targets.ndim == logp.ndim and targets.type.shape[-1] == 1:
        targets = targets[..., 0]
    if targets.ndim == logp.ndim - 1 and ids:
        return -_pick(logp, targets, num_classes, checked)
    if targets.ndim == logp.ndim:
        return -(targets * logp).sum(axis=-1)
    raise ValueError(
        f"targets must be integer ids of ndim {logp.ndim - 1} or one-hot of ndim "
        f"{logp.ndim}; got ndim={targets.ndim}, dtype={targets.dtype}")


def reduce(values, reduction: str = "mean", mask=None):
    """Reduce elementwise losses: ``"mean"``, ``"sum"`` or ``"none"``.

    With a ``mask`` (1 = counted), ``"mean"`` divides by the number of counted
    elements, so padding never dilutes the loss; a mask that broadcasts (a ``(B,)`` mask
    of ``(T, B)`` losses) counts every element it covers.
    """
    if mask is not None:
        mask = pt.as_tensor_variable(mask)
        counted = mask if mask.type.broadcastable == values.type.broadcastable \
            else pt.broadcast_to(mask, values.shape)
        values = values * mask
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean":
        if mask is None:
            return values.mean()
        return values.sum() / pt.maximum(counted.sum(), 1)
    raise ValueError(f"unknown reduction {reduction!r}; use 'mean', 'sum' or 'none'")


def cross_entropy(logits, targets, *, reduction: str = "mean", mask=None,
                  num_classes: int | None = None):
    """Softmax cross-entropy in nats, from unnormalised ``logits``.

    ``targets`` are integer class ids (``logits.ndim - 1`` dims) or
    probability vectors (same shape as ``logits``).
    """
    logp = log_softmax(pt.as_tensor_variable(logits), axis=-1)
    nll = _negative_log_likelihood(logp, targets, num_classes, checked=mask is None)
    return reduce(nll, reduction, mask)


def categorical_crossentropy(probs, targets, *, reduction: str = "none", mask=None,
                             num_classes: int | None = None, epsilon: float = EPSILON):
    """Cross-entropy from probabilities (the seed's ``nnet.categorical_crossentropy``).

    ``probs`` are clipped to ``[epsilon, 1]`` before the log, so a zero
    probability gives a large finite loss instead of ``inf``.  The default
    reduction is ``"none"``, as in Theano: per-example values of shape ``(...)``.
    """
    logp = pt.log(pt.clip(pt.as_tensor_variable(probs), epsilon, 1.0))
    nll = _negative_log_likelihood(logp, targets, num_classes, checked=mask is None)
    return reduce(nll, reduction, mask)


def sparse_categorical_crossentropy(probs, targets, **kwargs):
    """Keras name: :func:`categorical_crossentropy` with integer targets, which may have a
    last axis of size 1 as in Keras (``(B, 1)`` ids for ``(B, V)`` probabilities)."""
    probs, targets = pt.as_tensor_variable(probs), pt.as_tensor_variable(targets)
    if targets.ndim == probs.ndim:  # ids with a trailing axis, which must have size 1
        targets = _last_axis_one(targets)[..., 0]
    return categorical_crossentropy(probs, targets, **kwargs)


def mean_squared_error(predictions, targets, *, reduction: str = "mean", mask=None):
    """Squared error averaged over the last axis, then reduced.  As in Keras, ``(B, 1)``
    predictions and ``(B,)`` targets (or the other way round) are the same values: the
    size-1 axis is matched, not broadcast into ``(B, B)``."""
    predictions, targets = pt.as_tensor_variable(predictions), pt.as_tensor_variable(targets)
    if predictions.ndim == targets.ndim + 1:
        targets = pt.shape_padright(targets)
        predictions = _last_axis_one(predictions)
    elif targets.ndim == predictions.ndim + 1:
        targets = _last_axis_one(targets)[..., 0]
    elif targets.ndim != predictions.ndim:
        raise ValueError(f"predictions of ndim {predictions.ndim} and targets of ndim "
                         f"{targets.ndim}: give them the same shape")
    err = pt.sqr(predictions - targets)
    if err.ndim > 0:
        err = err.mean(axis=-1)
    return reduce(err, reduction, mask)


def _last_axis_one(x):
    """``x``, its last axis checked (when the call runs) to be of size 1."""
    return pt.specify_shape(x, (None,) * (x.ndim - 1) + (1,))


def perplexity(mean_nll):
    """``exp(mean cross-entropy in nats)``: a float for a number, symbolic otherwise.

    A float loss past ``log(float max)`` (about 709.8 nats) gives ``inf``, not an
    ``OverflowError`` or a capped number; NaN stays NaN.
    """
    if isinstance(mean_nll, pt.TensorVariable):
        return pt.exp(mean_nll)
    value = float(mean_nll)
    return math.exp(value) if value < _LOG_FLOAT_MAX or math.isnan(value) else math.inf


_LOG_FLOAT_MAX = math.log(np.finfo(np.float64).max)


def bits_per_char(mean_nll):
    """Mean cross-entropy in bits (``nats / ln 2``)."""
    if isinstance(mean_nll, pt.TensorVariable):
        return mean_nll / math.log(2.0)
    return float(mean_nll) / math.log(2.0)
