"""Keras loss and metric names over :mod:`scanrnn.losses`.

A :class:`Loss` maps ``(targets, predictions)`` to per-position values of
shape ``predictions.shape[:-1]`` (``(B,)`` or ``(B, T)``); the model
averages them (leaving out masked positions).  Targets:

==============================  ===========================================
``sparse_categorical_crossentropy``  int class ids ``(B, ...)`` (or ``(B, ..., 1)``)
``categorical_crossentropy``         one-hot / probabilities ``(B, ..., V)``
``mse``, ``mae``, ``binary_crossentropy``  floats of the prediction's shape
==============================  ===========================================

The cross-entropies use the stable ``log_softmax`` of the logits when the
output is a softmax layer, and the clipped probabilities otherwise (Keras).
"""

from __future__ import annotations

import pytensor.tensor as pt

from .. import losses as core
from .._config import floatx


class Loss:
    """A named loss: ``loss(y_true, y_pred, logits=None, num_classes=None)`` -> values."""

    def __init__(self, name, fn, sparse=False, one_hot=False):
        self.name, self.fn, self.sparse, self.one_hot = name, fn, sparse, one_hot

    def __call__(self, y_true, y_pred, logits=None, num_classes=None):
        return self.fn(y_true, y_pred, logits, num_classes)

    def __repr__(self):
        return f"<Loss {self.name}>"


def _crossentropy(y_true, y_pred, logits, num_classes):
    if logits is not None:
        return core.cross_entropy(logits, y_true, reduction="none", num_classes=num_classes)
    return core.categorical_crossentropy(y_pred, y_true, reduction="none",
                                         num_classes=num_classes)


def _mse(y_true, y_pred, logits, num_classes):
    return core.mean_squared_error(y_pred, y_true, reduction="none")


def _mae(y_true, y_pred, logits, num_classes):
    return pt.abs(y_pred - y_true).mean(axis=-1)


def _binary_crossentropy(y_true, y_pred, logits, num_classes):
    p = pt.clip(y_pred, core.EPSILON, 1.0 - core.EPSILON)
    return -(y_true * pt.log(p) + (1.0 - y_true) * pt.log(1.0 - p)).mean(axis=-1)


LOSSES = {
    "sparse_categorical_crossentropy": Loss("sparse_categorical_crossentropy", _crossentropy,
                                            sparse=True),
    "categorical_crossentropy": Loss("categorical_crossentropy", _crossentropy, one_hot=True),
    "mean_squared_error": Loss("mean_squared_error", _mse),
    "mean_absolute_error": Loss("mean_absolute_error", _mae),
    "binary_crossentropy": Loss("binary_crossentropy", _binary_crossentropy),
}
ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}


def get(identifier) -> Loss:
    """A :class:`Loss` from a name or a function ``f(y_true, y_pred) -> values``."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        key = ALIASES.get(identifier, identifier)
        if key in LOSSES:
            return LOSSES[key]
        raise ValueError(f"unknown loss {identifier!r}; known: "
                         f"{', '.join(sorted([*LOSSES, *ALIASES]))} (or pass a function "
                         f"f(y_true, y_pred) returning per-sample values)")
    if callable(identifier):
        name = getattr(identifier, "__name__", "custom_loss")
        return Loss(name, lambda y, p, logits, n: identifier(y, p))
    raise ValueError(f"a loss is a name or a function, got {identifier!r}")


# -- metrics ----------------------------------------------------------------------------------
def _argmax(x, num_classes):
    """Index of the first maximum along the last axis, as int32 (JAX runs without int64)."""
    if num_classes is None:
        return pt.argmax(x, axis=-1)
    classes = pt.arange(int(num_classes), dtype="int32")
    first = pt.switch(pt.eq(x, x.max(axis=-1, keepdims=True)), classes, int(num_classes))
    return first.min(axis=-1)


def _sparse_accuracy(y_true, y_pred, logits, num_classes):
    return pt.cast(pt.eq(_argmax(y_pred, num_classes), y_true), floatx())


def _categorical_accuracy(y_true, y_pred, logits, num_classes):
    return pt.cast(pt.eq(_argmax(y_pred, num_classes), _argmax(y_true, num_classes)), floatx())


def _binary_accuracy(y_true, y_pred, logits, num_classes):
    return pt.cast(pt.eq(pt.round(y_pred), y_true), floatx()).mean(axis=-1)


METRICS = {
    "sparse_categorical_accuracy": Loss("sparse_categorical_accuracy", _sparse_accuracy, True),
    "categorical_accuracy": Loss("categorical_accuracy", _categorical_accuracy),
    "binary_accuracy": Loss("binary_accuracy", _binary_accuracy),
}


def get_metric(identifier, loss: Loss) -> Loss:
    """A metric by name; ``'accuracy'``/``'acc'`` picks the kind that fits ``loss``."""
    if identifier in ("accuracy", "acc"):
        if loss.sparse:
            kind = "sparse_categorical_accuracy"
        elif loss.one_hot:
            kind = "categorical_accuracy"
        else:
            kind = "binary_accuracy"
        metric = METRICS[kind]
        return Loss(identifier, metric.fn, metric.sparse)
    if isinstance(identifier, str) and identifier in METRICS:
        return METRICS[identifier]
    if isinstance(identifier, str) and ALIASES.get(identifier, identifier) in LOSSES:
        metric = get(identifier)
        return Loss(identifier, metric.fn, metric.sparse, metric.one_hot)
    if callable(identifier):
        return get(identifier)
    raise ValueError(f"unknown metric {identifier!r}; known: accuracy (acc), "
                     f"{', '.join(sorted(METRICS))}, or any loss name")
