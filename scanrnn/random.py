"""Counter-based random numbers computed in the graph: dropout masks and sampling draws.

Dropout masks (and the sampler's draws) come from a
*counter-based* generator computed in the graph: ``uniform = hash(key, element index)``
with a 32-bit integer hash (two rounds of the ``lowbias32`` finaliser), where the key
mixes a seed, a step counter and a "site" number (one per dropout layer).  Why not a
shared ``numpy.random.Generator`` (PYTENSOR.md section 5)?  The JAX backend replaces a
shared generator by a private copy in every compiled function, so it can be neither
reseeded nor read back for a checkpoint.  Here the generator state is an ordinary
``uint32`` shared tensor ``model.rng`` holding ``[seed, counter]``: the training function
advances the counter through ``updates=`` (:meth:`scanrnn.lm.CharLM.rng_updates`), the value is
saved and restored like any weight, ``model.reseed(seed)`` works without recompiling, and
the same seed gives the same masks on every backend (integer arithmetic is exact).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from ._config import floatx

__all__ = ["advanced", "dropout", "stream_key", "uniform_hash"]


def _u32(value):
    return pt.constant(np.uint32(value))


_MASK32 = 0xFFFFFFFF


def _wrap(x):
    # Numba evaluates fused uint32 products in 64 bits; masking keeps every backend at 32.
    return pt.bitwise_and(x, _u32(_MASK32))


def _fmix32(h):
    """``lowbias32`` (C. Wellons): a bijective 32-bit hash with strong avalanche."""
    h = pt.bitwise_xor(h, h // _u32(1 << 16))
    h = _wrap(h * _u32(0x7FEB352D))
    h = pt.bitwise_xor(h, h // _u32(1 << 15))
    h = _wrap(h * _u32(0x846CA68B))
    return pt.bitwise_xor(h, h // _u32(1 << 16))


def _as_u32(x):
    x = pt.as_tensor_variable(x)
    return x if x.dtype == "uint32" else x.astype("uint32")


def stream_key(rng_state, site):
    """A uint32 scalar key from ``rng_state = [seed, counter]`` (uint32, (2,)) and a site id."""
    rng_state = _as_u32(rng_state)
    seed, counter = rng_state[0], rng_state[1]
    k = _fmix32(_wrap(_as_u32(site) * _u32(0x9E3779B9) + _u32(0x632BE5AB)))
    k = _fmix32(pt.bitwise_xor(counter, k))
    return _fmix32(pt.bitwise_xor(_wrap(seed * _u32(0x85EBCA6B)), k))


def uniform_hash(key, shape):
    """Uniform float32 draws in ``(0, 1)`` of ``shape`` from a uint32 scalar ``key``.

    ``shape`` is a tuple of ints or symbolic scalars (e.g. ``x.shape[0]``); element
    ``i`` (row-major index) is ``hash(hash(i + key) ^ key)``: a pure function of the key
    and the index, so equal keys give equal draws on every backend.
    """
    key = _as_u32(key)
    index = None
    for n in shape:
        axis = pt.arange(n).astype("uint32")
        index = axis if index is None else _wrap(index[..., None] * _as_u32(n) + axis)
    h = _fmix32(_wrap(index + key))
    h = _fmix32(pt.bitwise_xor(h, key))
    # 24 random bits -> (0, 1): never exactly 0 or 1 (safe for log(-log(u))).
    return ((h // _u32(256)).astype(floatx()) + np.float32(0.5)) * np.float32(2.0 ** -24)


def dropout(x, rate: float, key, shape=None):
    """Inverted dropout: zero each element with probability ``rate``, scale the rest.

    ``key`` is a uint32 scalar (:func:`stream_key`); ``shape`` defaults to ``x.shape``
    given as a tuple of ints or symbolic scalars.
    """
    if rate <= 0:
        return x
    shape = tuple(x.shape[i] for i in range(x.ndim)) if shape is None else shape
    keep = uniform_hash(key, shape) >= np.float32(rate)
    return pt.switch(keep, x * np.float32(1.0 / (1.0 - rate)), pt.zeros_like(x))


def advanced(rng_state):
    """``rng_state = [seed, counter]`` (uint32, (2,)) with the counter moved one step on."""
    return _wrap(_as_u32(rng_state) + pt.constant(np.array([0, 1], dtype=np.uint32)))
