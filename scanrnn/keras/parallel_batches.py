"""Batches for a data-parallel model: padded to a multiple of the device count.

A batch of ``n`` rows on ``N`` devices is padded to ``ceil(n / N) * N`` rows with
copies of its last row (valid ids, finite values, the same mask), and the compiled
train and test functions take one more input, ``valid`` ``(B,)`` float (1 for a real
row, 0 for a padded one), that masks the padded rows out of every loss and metric mean
(:meth:`~.step_functions.StepFunctions._loss_graph`).  ``predict`` drops them from its
outputs.  See :mod:`scanrnn.keras.distribution` for what cannot be padded.
"""

from __future__ import annotations

import numpy as np

from .._config import floatx
from ..parallel import ParallelError


def pad_rows(arrays, size: int) -> list:
    """Each array ``(n, ...)`` grown to ``(size, ...)`` with copies of its last row."""
    out = []
    for a in arrays:
        extra = size - len(a)
        out.append(a if extra == 0 else
                   np.concatenate([a, np.repeat(a[-1:], extra, axis=0)]))
    return out


def valid_rows(n: int, size: int) -> np.ndarray:
    """``(size,)`` floatX: 1 for the ``n`` real rows, 0 for the padding after them."""
    valid = np.zeros(size, dtype=floatx())
    valid[:n] = 1
    return valid


def check_stateful(model, dist) -> None:
    """A stateful model's carried state is split by rows: its batch must divide evenly."""
    fixed = model.stateful_batch_size()
    if fixed is not None and fixed % dist.num_devices:
        raise ParallelError(
            f"model {model.name!r} is stateful with batch size {fixed}, which is not "
            f"divisible by the {dist.num_devices} devices of the distribution; use a batch "
            f"size that is a multiple of {dist.num_devices} (model.reset_states(batch_size="
            f"k) resizes it), or fewer devices")


def check_padding(model, kind: str, n: int, size: int, dist) -> None:
    """Raise when a batch of ``n`` rows cannot be padded to ``size`` for ``kind``."""
    if kind != "train":
        return
    from .normalization import BatchNormalization
    norms = [layer.name for layer in _unwrapped(model.layers)
             if isinstance(layer, BatchNormalization)]
    if norms:
        raise ParallelError(
            f"training on {dist.num_devices} devices: a batch of {n} samples would be padded "
            f"to {size}, but BatchNormalization {norms[0]!r} takes its statistics over the "
            f"whole batch; use a batch_size and a sample count that are multiples of "
            f"{dist.num_devices}")


def _unwrapped(layers) -> list:
    """``layers`` and the layers inside wrappers (``TimeDistributed(...)``)."""
    out = []
    for layer in layers:
        while layer is not None:
            out.append(layer)
            layer = getattr(layer, "layer", None)
    return out
