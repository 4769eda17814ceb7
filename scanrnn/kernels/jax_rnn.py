"""The oneDNN RNN kernels as JAX functions (``jax.ffi`` calls), in scanrnn's weight layout.

:func:`forward` and :func:`backward` take and return scanrnn's canonical
parameters (``W_x (I, G*H)``, ``W_h (H, G*H)``, ``b (G*H,)``, the GRU's
``b_h (3H,)``; gates ``i, f, g, o`` / ``z, r, n``), which are oneDNN's ``ldigo``
layout with the same gate order; only the GRU's two biases are folded into
oneDNN's four (``b_u, b_r, b_o, b_u'``) and back, inside these functions.

Shapes: ``src (T, B, I)``, states ``(B, H)``, ``hs (T, B, H)``; float32 only.
The forward in training mode also returns oneDNN's workspace (a ``uint8``
vector), which :func:`backward` reads instead of recomputing the forward.
"""

from __future__ import annotations

import ctypes

import numpy as np

from .build import KernelUnavailable, library

FORWARD_TARGET = "scanrnn_onednn_rnn_forward"
BACKWARD_TARGET = "scanrnn_onednn_rnn_backward"
KINDS = {"rnn": 0, "lstm": 1, "gru": 2}
ACTIVATIONS = {"tanh": 0, "relu": 1}
_REGISTERED: dict = {}


def ensure_ready():
    """Build/load the library and register the FFI targets once; returns the facts dict.

    Raises :class:`KernelUnavailable` (with the reason) when the kernels cannot run.
    """
    if "facts" in _REGISTERED:
        return _REGISTERED["facts"]
    lib, facts = library()
    if lib is None:
        raise KernelUnavailable(facts)
    import jax
    try:
        lib.scanrnn_workspace_bytes.restype = ctypes.c_int64
        lib.scanrnn_workspace_bytes.argtypes = [ctypes.c_int64] * 6
        jax.ffi.register_ffi_target(FORWARD_TARGET, jax.ffi.pycapsule(lib.ScanrnnRnnForward),
                                    platform="cpu")
        jax.ffi.register_ffi_target(BACKWARD_TARGET, jax.ffi.pycapsule(lib.ScanrnnRnnBackward),
                                    platform="cpu")
    except Exception as exc:  # a library without our symbols, an FFI that refuses them
        raise KernelUnavailable(f"the oneDNN kernel library {facts.get('path')} cannot be "
                                f"used: {type(exc).__name__}: {exc}") from exc
    _REGISTERED["lib"] = lib
    _REGISTERED["facts"] = facts
    return facts


def workspace_bytes(kind: str, activation: str, T: int, B: int, I: int, H: int) -> int:
    """Bytes of oneDNN's training workspace for one shape."""
    ensure_ready()
    n = _REGISTERED["lib"].scanrnn_workspace_bytes(KINDS[kind], ACTIVATIONS.get(activation, 0),
                                                   T, B, I, H)
    if n < 0:
        raise KernelUnavailable(f"oneDNN has no {kind} primitive for T={T} B={B} I={I} H={H}")
    return int(n)


def kernel_bias(kind, b, b_h=None):
    """scanrnn's bias(es) as oneDNN's: the GRU's ``[b_z+b_hz, b_r+b_hr, b_n, b_hn]``."""
    if kind != "gru":
        return b
    import jax.numpy as jnp
    H = b.shape[0] // 3
    return jnp.concatenate([b[:2 * H] + b_h[:2 * H], b[2 * H:], b_h[2 * H:]])


def scanrnn_bias_grads(kind, d_bias):
    """oneDNN's bias gradient as scanrnn's: ``[db]``, or the GRU's ``[db_h, db]``."""
    if kind != "gru":
        return [d_bias]
    import jax.numpy as jnp
    H = d_bias.shape[0] // 4
    return [jnp.concatenate([d_bias[:2 * H], d_bias[3 * H:]]), d_bias[:3 * H]]


def _attrs(kind, activation):
    return {"kind": np.int64(KINDS[kind]), "act": np.int64(ACTIVATIONS.get(activation, 0))}


def forward(kind, activation, training, src, W_x, W_h, bias, h0, c0=None):
    """``[hs, hT, (cT), (workspace)]``: oneDNN's forward over ``src`` (bias in oneDNN's form)."""
    import jax
    import jax.numpy as jnp
    ensure_ready()
    T, B, I = src.shape
    H = h0.shape[1]
    f32 = jnp.float32
    if T == 0 or B == 0:  # nothing to run (oneDNN refuses empty shapes): the states stay
        states = [jnp.asarray(h0, f32)] + ([jnp.asarray(c0, f32)] if kind == "lstm" else [])
        return [jnp.zeros((T, B, H), f32), *states] + \
            ([jnp.zeros((0,), jnp.uint8)] if training else [])
    outs = [jax.ShapeDtypeStruct((T, B, H), f32), jax.ShapeDtypeStruct((B, H), f32)]
    if kind == "lstm":
        outs.append(jax.ShapeDtypeStruct((B, H), f32))
    if training:
        outs.append(jax.ShapeDtypeStruct(
            (workspace_bytes(kind, activation, T, B, I, H),), jnp.uint8))
    args = [src, W_x, W_h, bias, h0] + ([c0] if kind == "lstm" else [])
    call = jax.ffi.ffi_call(FORWARD_TARGET, outs)
    return list(call(*[jnp.asarray(a, f32) for a in args], training=np.int64(bool(training)),
                     **_attrs(kind, activation)))


def backward(kind, activation, src, W_x, W_h, bias, h0, c0, hs, hT, cT, workspace,
             dhs, dhT, dcT):
    """``[dsrc, dW_x, dW_h, dbias, dh0, (dc0)]`` from oneDNN's backward primitive.

    ``dhs (T, B, H)`` is the gradient of every step's output, ``dhT`` / ``dcT``
    those of the final states (the LSTM's cell state enters only through ``cT``);
    ``dbias`` is in oneDNN's form (see :func:`scanrnn_bias_grads`).
    """
    import jax
    import jax.numpy as jnp
    ensure_ready()
    f32 = jnp.float32
    like = [src, W_x, W_h, bias, h0] + ([c0] if kind == "lstm" else [])
    if 0 in src.shape[:2]:  # no step ran: the final states' gradients reach the initial ones
        return [jnp.zeros(a.shape, f32) for a in like[:4]] + \
            [jnp.asarray(dhT, f32)] + ([jnp.asarray(dcT, f32)] if kind == "lstm" else [])
    outs = [jax.ShapeDtypeStruct(a.shape, f32) for a in like]
    args = [*like, hs, hT] + ([cT] if kind == "lstm" else []) + [workspace, dhs, dhT] + \
        ([dcT] if kind == "lstm" else [])
    call = jax.ffi.ffi_call(BACKWARD_TARGET, outs)
    args = [a if a is workspace else jnp.asarray(a, f32) for a in args]
    return list(call(*args, **_attrs(kind, activation)))
