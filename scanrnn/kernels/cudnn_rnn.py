"""cuDNN's LSTM through ``jax.experimental.rnn``, in scanrnn's layout (GPU only).

The same interface as :mod:`.jax_rnn` (LSTM only): :func:`forward` returns
``[hs, hT, cT, reserve_space]`` and :func:`backward` reads that reserve space
(cuDNN's workspace) instead of recomputing the forward.  Inside, scanrnn's
``W_x (I, 4H)``, ``W_h (H, 4H)``, ``b (4H,)`` (gates i, f, g, o, PyTorch's order
too) are packed into cuDNN's flat vector ``[W_ihᵀ, W_hhᵀ, b_ih = b, b_hh = 0]``,
and time-major ``(T, B, ·)`` is turned batch-first.  Float32 with
``Precision.HIGHEST`` (no TF32), so the results agree with the scan path.

cuDNN itself runs only on a GPU (the lowering exists for CUDA/ROCm only), and scanrnn
calls it through its own pair of primitives (:func:`lstm_fwd`, :func:`lstm_bwd`) whose
custom calls declare row-major layouts, which jaxlib's do not (see below).  On an H200
(jax 0.11.2, cuDNN 9.19) ``benchmarks/cudnn_diagnose.py`` found it equal to a ``lax.scan``
LSTM to 1.3e-6 in every output and gradient over 18 shapes, and a small LM's Adam losses
identical; ``kernels=True`` uses it on a GPU, ``"auto"`` keeps the fused scan there (it
trained the LSTMs faster).  On the CPU,
``tests/test_kernels.py`` runs everything else of this path -- the rewrite, the Ops, the
packing above, the layouts, the reserve space -- against JAX's reference LSTM
(``rnn.lstm_ref``) put behind ``lstm_fwd`` / ``lstm_bwd``'s contract, and lowers the real
jaxlib custom calls for CUDA to check the declared layouts.
"""

from __future__ import annotations

import functools


TURNED_OFF = "SCANRNN_CUDNN=0 turns cuDNN's LSTM off (the fused scan runs instead)"
# what this module uses of jax.experimental.rnn beyond its public functions
_RNN_INTERNALS = ("rnn_abstract_eval", "rnn_bwd_abstract_eval", "_lstm_cudnn_allow_tf32")


def available() -> str | None:
    """None when cuDNN's RNN is usable from JAX here, else the reason
    (``SCANRNN_CUDNN=0``, words as ``SCANRNN_KERNELS``, turns it off: :data:`TURNED_OFF`)."""
    from .build import env_setting
    try:
        from jax.experimental import rnn
    except ImportError as exc:
        return f"jax.experimental.rnn is missing ({exc})"
    if getattr(rnn, "gpu_rnn", None) is None:
        return "this jaxlib has no cuDNN RNN (jax.experimental.rnn.gpu_rnn)"
    lacking = [name for name in _RNN_INTERNALS if not hasattr(rnn, name)]
    if lacking:
        return f"this jax's experimental.rnn lacks {', '.join(lacking)}"
    if env_setting("SCANRNN_CUDNN") is False:
        return TURNED_OFF
    return None


def _precision():
    from jax import lax
    return lax.Precision.HIGHEST


def _pack(W_x, W_h, b):
    import jax.numpy as jnp
    return jnp.concatenate([W_x.T.ravel(), W_h.T.ravel(), b, jnp.zeros_like(b)])


def _lengths(B, T):
    import jax.numpy as jnp
    return jnp.full((B,), T, jnp.int32)


def forward(src, W_x, W_h, b, h0, c0):
    """``[hs (T, B, H), hT, cT, reserve_space]`` of cuDNN's LSTM over time-major ``src``."""
    import jax.numpy as jnp
    T, B, I = src.shape
    H = h0.shape[1]
    (y, h_n, c_n), residuals = lstm_fwd(
        jnp.swapaxes(src, 0, 1), h0[None], c0[None], _pack(W_x, W_h, b), _lengths(B, T),
        I, H, 1, 0.0, False, _precision())
    return [jnp.swapaxes(y, 0, 1), h_n[0], c_n[0], residuals[-1]]


def backward(src, W_x, W_h, b, h0, c0, hs, hT, cT, reserve, dhs, dhT, dcT):
    """``[dsrc, dW_x, dW_h, db, dh0, dc0]`` from cuDNN's backward (LSTM)."""
    import jax.numpy as jnp
    T, B, I = src.shape
    H = h0.shape[1]
    w = _pack(W_x, W_h, b)
    residuals = (jnp.swapaxes(src, 0, 1), h0[None], c0[None], w, _lengths(B, T),
                 jnp.swapaxes(hs, 0, 1), reserve)
    dx, dh0, dc0, dw, _ = lstm_bwd(I, H, 1, 0.0, False, _precision(), residuals,
                                   (jnp.swapaxes(dhs, 0, 1), dhT[None], dcT[None]))
    n_ih, n_hh = 4 * H * I, 4 * H * H
    dW_x = dw[:n_ih].reshape(4 * H, I).T
    dW_h = dw[n_ih:n_ih + n_hh].reshape(4 * H, H).T
    db = dw[n_ih + n_hh:n_ih + n_hh + 4 * H]
    return [jnp.swapaxes(dx, 0, 1), dW_x, dW_h, db, dh0[0], dc0[0]]


# jaxlib's custom calls for cuDNN's RNN declare no operand or result layouts, so XLA may
# pick any: on an H200 (2026-12-04) it compiled the batch-first ``swapaxes`` above into a
# ``bitcast`` operand with a permuted layout, which cuDNN read as row-major -- wrong answers
# whenever T > 1 and B > 1 (benchmarks/cudnn_layout_probe.py).  scanrnn binds the same two
# custom calls through its own primitives whose lowering declares every operand and result
# row-major; XLA then hands cuDNN real row-major buffers (copying where it must).

def lstm_fwd(x, h_0, c_0, w, seq_lengths, input_size, hidden_size, num_layers, dropout,
             bidirectional, precision):
    """``jax.experimental.rnn.lstm_fwd`` (same arguments, batch-first ``x (B, T, I)``, same
    ``((y, h_n, c_n), residuals)``) through custom calls with row-major layouts."""
    from jax.experimental import rnn
    fwd, _ = _row_major_primitives()
    y, h_n, c_n, reserve_space = fwd.bind(
        x, h_0, c_0, w, seq_lengths, input_size=input_size, hidden_size=hidden_size,
        num_layers=num_layers, dropout=dropout, bidirectional=bidirectional,
        cudnn_allow_tf32=rnn._lstm_cudnn_allow_tf32(precision))
    return (y, h_n, c_n), (x, h_0, c_0, w, seq_lengths, y, reserve_space)


def lstm_bwd(input_size, hidden_size, num_layers, dropout, bidirectional, precision,
             residuals, gradients):
    """``jax.experimental.rnn.lstm_bwd`` (same arguments and results) through custom calls
    with row-major layouts."""
    import jax.numpy as jnp
    from jax.experimental import rnn
    _, bwd = _row_major_primitives()
    x, h_0, c_0, w, seq_lengths, y, reserve_space = residuals
    dy, dh_n, dc_n = gradients
    dx, dh_0, dc_0, dw = bwd.bind(
        dy, dh_n, dc_n, x, h_0, c_0, w, y, reserve_space, seq_lengths,
        input_size=input_size, hidden_size=hidden_size, num_layers=num_layers,
        dropout=dropout, bidirectional=bidirectional,
        cudnn_allow_tf32=rnn._lstm_cudnn_allow_tf32(precision))
    return dx, dh_0, dc_0, dw, jnp.zeros_like(seq_lengths)


@functools.cache
def _row_major_primitives():
    """``(forward, backward)``: ``jax.experimental.rnn``'s two primitives again (same
    parameters, shapes and custom-call targets), lowered with row-major layouts."""
    from jax.experimental import rnn
    from jax.extend.core import Primitive
    from jax.interpreters import mlir
    from jaxlib import gpu_rnn

    made = []
    for name, abstract_eval, lowerings in (
            ("scanrnn_cudnn_rnn_fwd", rnn.rnn_abstract_eval,
             {"cuda": "cudnn_rnn_lowering", "rocm": "miopen_rnn_lowering"}),
            ("scanrnn_cudnn_rnn_bwd", rnn.rnn_bwd_abstract_eval,
             {"cuda": "cudnn_rnn_bwd_lowering", "rocm": "miopen_rnn_bwd_lowering"})):
        primitive = Primitive(name)
        primitive.multiple_results = True
        primitive.def_abstract_eval(abstract_eval)
        primitive.def_impl(functools.partial(_run_jitted, primitive))
        for platform, attribute in lowerings.items():
            if hasattr(gpu_rnn, attribute):
                mlir.register_lowering(primitive, _row_major(getattr(gpu_rnn, attribute)),
                                       platform=platform)
        made.append(primitive)
    return tuple(made)


def _run_jitted(primitive, *args, **params):
    """A primitive's eager call: the same bind, compiled."""
    import jax
    return jax.jit(lambda *a: primitive.bind(*a, **params))(*args)


def _row_major(lowering):
    """``lowering`` (one custom call), with every operand and result declared row-major."""
    def rule(ctx, *args, **params):
        results = lowering(ctx, *args, **params)
        declare_row_major(results[0].owner)
        return results
    return rule


def declare_row_major(op):
    """Set a stablehlo custom call's ``operand_layouts`` and ``result_layouts`` to row-major
    (minor-to-major ``rank-1 .. 0``), which makes XLA honour them."""
    import numpy as np
    from jax.interpreters.mlir import ir

    def layouts(values):
        return ir.ArrayAttr.get([
            ir.DenseIntElementsAttr.get(
                np.arange(ir.RankedTensorType(v.type).rank - 1, -1, -1, dtype=np.int64),
                type=ir.IndexType.get())
            for v in values])
    op.attributes["operand_layouts"] = layouts(op.operands)
    op.attributes["result_layouts"] = layouts(op.results)
