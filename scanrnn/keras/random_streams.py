"""The layers' dropout streams: one ``uint32 [seed, counter]`` shared state per layer.

The draws are :mod:`scanrnn.random`'s counter-based hash, computed in the graph, so
they run on every backend (JAX included) and the same seed gives the same masks
everywhere.  A training function adds ``{state: advanced(state)}`` to its updates,
so every step draws new masks; prediction and evaluation draw nothing.
"""

from __future__ import annotations

import numpy as np
import pytensor

from .. import random as core_random
from .engine import weight_rng


def new_stream(seed: int | None, name: str):
    """The shared ``uint32 [seed, 0]`` state of a layer's stream (``seed`` ``None``: one
    drawn from the weight generator, so :func:`set_random_seed` fixes it)."""
    if seed is None:
        seed = int(weight_rng().integers(2**31))
    return pytensor.shared(np.array([int(seed) % 2**32, 0], dtype=np.uint32), name=name)


def dropped(x, rate: float, stream, ctx, layer):
    """Inverted dropout of ``x`` (any shape) from ``stream``; registers the stream's step."""
    ctx.add_update(stream, core_random.advanced(stream), layer)
    return core_random.dropout(x, rate, core_random.stream_key(stream, 0))
