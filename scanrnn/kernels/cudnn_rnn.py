"""cuDNN's LSTM through ``jax.experimental.rnn``, in scanrnn's layout (GPU only).

The same interface as :mod:`.jax_rnn` (LSTM only): :func:`forward` returns
``[hs, hT, cT, reserve_space]`` and :func:`backward` reads that reserve space
(cuDNN's workspace) instead of recomputing the forward.  Inside, scanrnn's
``W_x (I, 4H)``, ``W_h (H, 4H)``, ``b (4H,)`` (gates i, f, g, o, PyTorch's order
too) are packed into cuDNN's flat vector ``[W_ihᵀ, W_hhᵀ, b_ih = b, b_hh = 0]``,
and time-major ``(T, B, ·)`` is turned batch-first.  Float32 with
``Precision.HIGHEST`` (no TF32), so the results agree with the scan path.

cuDNN itself runs only on a GPU (the lowering exists for CUDA/ROCm only):
``benchmarks/gpu_check.sh`` runs the agreement tests and ``benchmarks/cudnn_diagnose.py``
there.  Until those pass this path is held back (:func:`available`): the first GPU run
found token-id inputs disagreeing with the scan and training stalled on it.  On the CPU,
``tests/test_kernels.py`` runs everything else of this path -- the rewrite, the Ops, the
packing above, the layouts, the reserve space -- against JAX's reference LSTM
(``rnn.lstm_ref``) put behind ``lstm_fwd`` / ``lstm_bwd``'s contract.
"""

from __future__ import annotations


HELD_BACK = (
    "cuDNN's LSTM is held back until its answers are checked on a GPU: on an H200 "
    "(2026-12-04) it disagreed with the scan for token-id inputs, and `scanrnn train` on it "
    "stalled at loss 2.6 in 2 minutes where the scan on a CPU reaches 1.1; SCANRNN_CUDNN=1 "
    "uses it anyway (benchmarks/cudnn_diagnose.py studies it)")


def available() -> str | None:
    """None when cuDNN's RNN is usable from JAX here, else the reason.

    Held back (:data:`HELD_BACK`) unless ``SCANRNN_CUDNN`` is on (1/on/true/yes, as
    ``SCANRNN_KERNELS``); the fused scan runs instead.
    """
    from .build import env_setting
    try:
        from jax.experimental import rnn
    except ImportError as exc:
        return f"jax.experimental.rnn is missing ({exc})"
    if getattr(rnn, "gpu_rnn", None) is None:
        return "this jaxlib has no cuDNN RNN (jax.experimental.rnn.gpu_rnn)"
    if env_setting("SCANRNN_CUDNN") is not True:
        return HELD_BACK
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
    from jax.experimental import rnn
    T, B, I = src.shape
    H = h0.shape[1]
    (y, h_n, c_n), residuals = rnn.lstm_fwd(
        jnp.swapaxes(src, 0, 1), h0[None], c0[None], _pack(W_x, W_h, b), _lengths(B, T),
        I, H, 1, 0.0, False, _precision())
    return [jnp.swapaxes(y, 0, 1), h_n[0], c_n[0], residuals[-1]]


def backward(src, W_x, W_h, b, h0, c0, hs, hT, cT, reserve, dhs, dhT, dcT):
    """``[dsrc, dW_x, dW_h, db, dh0, dc0]`` from cuDNN's backward (LSTM)."""
    import jax.numpy as jnp
    from jax.experimental import rnn
    T, B, I = src.shape
    H = h0.shape[1]
    w = _pack(W_x, W_h, b)
    residuals = (jnp.swapaxes(src, 0, 1), h0[None], c0[None], w, _lengths(B, T),
                 jnp.swapaxes(hs, 0, 1), reserve)
    dx, dh0, dc0, dw, _ = rnn.lstm_bwd(I, H, 1, 0.0, False, _precision(), residuals,
                                       (jnp.swapaxes(dhs, 0, 1), dhT[None], dcT[None]))
    n_ih, n_hh = 4 * H * I, 4 * H * H
    dW_x = dw[:n_ih].reshape(4 * H, I).T
    dW_h = dw[n_ih:n_ih + n_hh].reshape(4 * H, H).T
    db = dw[n_ih + n_hh:n_ih + n_hh + 4 * H]
    return [jnp.swapaxes(dx, 0, 1), dW_x, dW_h, db, dh0[0], dc0[0]]
