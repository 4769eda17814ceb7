"""Per-sample loss weights: ``sample_weight`` and ``class_weight`` of ``fit``,
``evaluate`` and ``train_on_batch``, as Keras 3 applies them.

Each output's loss is ``sum(loss_i * w_i) / n`` over its ``n`` per-sample (or
per-step) losses, ``w`` being 1 where no weight is given: weights scale samples,
they do not renormalise the mean (Keras 3's ``sum_over_batch_size``); masked
steps still count out of ``n`` as in scanrnn's masked mean.  Metrics are not
weighted.  The compiled train and test functions always take one weight array
per output, shaped like that output's per-sample losses: ``(B,)``, ``(B, T)``.
"""

from __future__ import annotations

import numpy as np

from .._config import floatx


def loss_shape(target: np.ndarray, sparse: bool) -> tuple:
    """The shape of the per-sample losses of a target array (one-hot drops the class axis)."""
    return target.shape if sparse else target.shape[:-1]


def _as_weights(value, shape, what) -> np.ndarray:
    value = np.asarray(value, dtype=floatx())
    if value.ndim == 0 or value.shape[0] != shape[0]:
        raise ValueError(f"{what} must have one weight per sample ({shape[0]}), got shape "
                         f"{value.shape}")
    if value.shape == shape:
        return value
    if value.ndim == 1:
        return np.broadcast_to(value.reshape(value.shape + (1,) * (len(shape) - 1)),
                               shape).copy()
    raise ValueError(f"{what} must have shape {(shape[0],)} or {shape}, got {value.shape}")


def _class_weights(class_weight, target, sparse) -> np.ndarray:
    ids = target if sparse else np.argmax(target, axis=-1)
    table = {int(k): float(v) for k, v in dict(class_weight).items()}
    lookup = np.ones(int(max(ids.max(initial=0), *table)) + 1, dtype=floatx())
    for cls, weight in table.items():
        if cls < 0:
            raise ValueError(f"class_weight keys must be class ids >= 0, got {cls}")
        lookup[cls] = weight
    return lookup[ids]


def per_output(model, ys, sample_weight=None, class_weight=None) -> list[np.ndarray]:
    """One weight array per output for targets ``ys`` (already standardised)."""
    setup = model._losses()
    shapes = [loss_shape(y, loss.sparse) for y, (loss, _, _) in zip(ys, setup)]
    weights = [np.ones(shape, dtype=floatx()) for shape in shapes]
    if sample_weight is not None:
        given = model._per_output(sample_weight, "sample_weight", None) \
            if isinstance(sample_weight, (list, tuple, dict)) else [sample_weight]
        if len(given) != len(ys):
            raise ValueError(f"sample_weight: {len(given)} array(s) for {len(ys)} outputs")
        for i, value in enumerate(given):
            if value is not None:
                weights[i] = _as_weights(value, shapes[i],
                                         f"sample_weight of output {model.output_names[i]!r}")
    if class_weight is not None:
        if len(ys) != 1:
            raise ValueError("class_weight needs a model with one output (as in Keras); give "
                             "sample_weight per output instead")
        weights[0] = weights[0] * _class_weights(class_weight, ys[0], setup[0][0].sparse)
    return weights
