"""Parameter initializers: named float shared variables, seeded and reproducible.

Every initializer has the signature ``init(shape, name=None, rng=None, **kw)``
and returns a ``pytensor`` shared variable of dtype ``floatX`` (float32 by
default).  ``rng`` is a ``numpy.random.Generator`` or an int seed; ``None``
means seed 0, so two runs of the same program start from the same weights.

The same functions with an ``_array`` suffix in :data:`ARRAYS` return plain
numpy arrays (used by the Keras-like layers and by checkpoints).

>>> W = he_normal((86, 256), name="W_x", rng=42)
>>> W.get_value().dtype, W.name
(dtype('float32'), 'W_x')
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytensor

from ._config import floatx

RngLike = np.random.Generator | int | None


def as_rng(rng: RngLike) -> np.random.Generator:
    """A numpy Generator from a Generator, an int seed, or None (seed 0)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[0] * receptive, shape[1] * receptive


def zeros_array(shape, rng=None):
    return np.zeros(shape)


def ones_array(shape, rng=None):
    return np.ones(shape)


def normal_array(shape, rng=None, scale=0.01):
    return as_rng(rng).normal(0.0, scale, size=shape)


def standard_normal_array(shape, rng=None):
    """N(0, 1): PyTorch's ``nn.Embedding`` default (an embedding's rows feed the first
    layer's input projection; rows of about unit norm per feature train faster than
    Glorot's small ones -- ``benchmarks/RESULTS_lm.md``)."""
    return as_rng(rng).standard_normal(size=shape)


def uniform_array(shape, rng=None, scale=0.05):
    return as_rng(rng).uniform(-scale, scale, size=shape)


def he_normal_array(shape, rng=None):
    """Normal with std ``sqrt(2 / rows)``: the fast.ai seed's ``init_wgts``."""
    fan_in, _ = _fans(tuple(shape))
    return as_rng(rng).normal(0.0, math.sqrt(2.0 / fan_in), size=shape)


def glorot_uniform_array(shape, rng=None):
    fan_in, fan_out = _fans(tuple(shape))
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return as_rng(rng).uniform(-limit, limit, size=shape)


def orthogonal_array(shape, rng=None, gain=1.0):
    """A (semi-)orthogonal matrix (QR of a Gaussian matrix, sign-corrected).

    Fused gate matrices of shape ``(H, G*H)`` get one orthogonal block per gate.
    """
    shape = tuple(shape)
    if len(shape) != 2:
        raise ValueError(f"orthogonal needs a 2-D shape, got {shape}")
    rows, cols = shape
    gen = as_rng(rng)
    if cols > rows and cols % rows == 0:
        blocks = [orthogonal_array((rows, rows), gen, gain) for _ in range(cols // rows)]
        return np.concatenate(blocks, axis=1)
    flat = gen.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q[:rows, :cols]


def identity_array(shape, rng=None, gain=1.0):
    """The identity (the fast.ai seed's ``W_h``); fused gates get one block each."""
    shape = tuple(shape)
    if len(shape) != 2:
        raise ValueError(f"identity needs a 2-D shape, got {shape}")
    rows, cols = shape
    if cols % rows:
        raise ValueError(f"identity needs cols to be a multiple of rows, got {shape}")
    return gain * np.tile(np.eye(rows), (1, cols // rows))


ARRAYS: dict[str, Callable] = {
    "zeros": zeros_array,
    "ones": ones_array,
    "normal": normal_array,
    "standard_normal": standard_normal_array,
    "uniform": uniform_array,
    "he_normal": he_normal_array,
    "glorot_uniform": glorot_uniform_array,
    "orthogonal": orthogonal_array,
    "identity": identity_array,
}
# Keras 1 / Keras 3 spellings accepted by :func:`get`.
ALIASES = {"zero": "zeros", "one": "ones", "random_normal": "normal",
           "random_uniform": "uniform", "he": "he_normal", "glorot": "glorot_uniform",
           "xavier": "glorot_uniform"}


def get(name: str) -> Callable:
    """The array initializer called ``name`` (e.g. ``"glorot_uniform"``)."""
    key = ALIASES.get(name, name)
    if key not in ARRAYS:
        raise ValueError(
            f"unknown initializer {name!r}; known: {', '.join(sorted(ARRAYS))}"
        )
    return ARRAYS[key]


def shared(value, name: str | None = None, dtype: str | None = None):
    """A shared variable holding ``value`` cast to ``dtype`` (default floatX)."""
    return pytensor.shared(np.asarray(value, dtype=dtype or floatx()), name=name)


def _make(array_fn):
    def initializer(shape, name=None, rng=None, **kwargs):
        shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
        return shared(array_fn(shape, rng, **kwargs), name=name)

    initializer.__name__ = array_fn.__name__.removesuffix("_array")
    initializer.__doc__ = (
        f"Shared float variable initialized by ``{array_fn.__name__}``.\n\n"
        + (array_fn.__doc__ or "")
    )
    return initializer


zeros = _make(zeros_array)
ones = _make(ones_array)
normal = _make(normal_array)
standard_normal = _make(standard_normal_array)
uniform = _make(uniform_array)
he_normal = _make(he_normal_array)
glorot_uniform = _make(glorot_uniform_array)
orthogonal = _make(orthogonal_array)
identity = _make(identity_array)
