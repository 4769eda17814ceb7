"""A stand-in for cuDNN's LSTM, so that scanrnn's cuDNN path runs on a CPU.

``jax.experimental.rnn.lstm_fwd / lstm_bwd`` (and scanrnn's own pair with row-major layouts,
``scanrnn.kernels.cudnn_rnn.lstm_fwd / lstm_bwd``) lower to cuDNN only on CUDA/ROCm.
:func:`install` replaces them by JAX's own reference LSTM (``rnn.lstm_ref``) behind the same
contract -- cuDNN's packed weight vector, batch-first arrays, residuals ending in a reserve
space, the weight gradient packed again -- (and ``rnn.lstm``, whose VJP is bound to the
real pair, by one built on them) and tells :mod:`scanrnn.kernels` it is on an NVIDIA GPU.
Everything of the cuDNN path but cuDNN itself then runs: the rewrite, the Ops, the weight
packing and unpacking, the layout changes, the reserve space's plumbing, the per-device
split.  Used by tests/test_kernels.py and tests/test_parallel_kernels.py.
"""

from __future__ import annotations

from functools import partial

RESERVE = 3  # the stand-in's reserve space: (3,) float32 per call (per device)


def missing() -> str | None:
    """Why the stand-in cannot be installed here (None: it can)."""
    try:
        from jax.experimental import rnn
    except ImportError as exc:
        return f"jax.experimental.rnn is missing ({exc})"
    lacking = [n for n in ("lstm_ref", "unpack_lstm_weights", "lstm_fwd", "lstm_bwd")
               if not hasattr(rnn, n)]
    return f"jax.experimental.rnn lacks {', '.join(lacking)}" if lacking else None


def install(set_attribute):
    """Put the stand-in in place with ``set_attribute(obj, name, value)`` (``setattr``, or
    pytest's ``monkeypatch.setattr`` to undo it after the test)."""
    import jax
    import jax.numpy as jnp
    from jax.experimental import rnn

    from scanrnn import kernels
    from scanrnn.kernels import cudnn_rnn

    def reference(x, h_0, c_0, w, seq_lengths, input_size, hidden_size):
        W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(w, input_size, hidden_size, 1, False)
        return rnn.lstm_ref(x, h_0, c_0, W_ih, W_hh, b_ih, b_hh, seq_lengths, input_size,
                            hidden_size, 1, 0.0, False)

    def lstm_fwd(x, h_0, c_0, w, seq_lengths, input_size, hidden_size, num_layers, dropout,
                 bidirectional, precision):
        assert (num_layers, dropout, bidirectional) == (1, 0.0, False)
        assert x.shape[0] == h_0.shape[1] == seq_lengths.shape[0]  # batch-first
        y, h_n, c_n = reference(x, h_0, c_0, w, seq_lengths, input_size, hidden_size)
        reserve = jnp.zeros((RESERVE,), jnp.float32)
        return (y, h_n, c_n), (x, h_0, c_0, w, seq_lengths, y, reserve)

    def lstm_bwd(input_size, hidden_size, num_layers, dropout, bidirectional, precision,
                 residuals, gradients):
        x, h_0, c_0, w, seq_lengths, y, reserve = residuals
        assert reserve.shape == (RESERVE,)  # this call's forward's reserve space came back
        _, vjp = jax.vjp(lambda *a: reference(*a, seq_lengths, input_size, hidden_size),
                         x, h_0, c_0, w)
        return (*vjp(tuple(gradients)), jnp.zeros_like(seq_lengths))

    @partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7, 8, 9, 10))
    def lstm(x, h_0, c_0, w, seq_lengths, input_size, hidden_size, num_layers, dropout,
             bidirectional, precision=None):  # rnn.lstm: its VJP is bound to the real pair
        return lstm_fwd(x, h_0, c_0, w, seq_lengths, input_size, hidden_size, num_layers,
                        dropout, bidirectional, precision)[0]

    lstm.defvjp(lstm_fwd, lstm_bwd)
    set_attribute(rnn, "lstm_fwd", lstm_fwd)
    set_attribute(rnn, "lstm_bwd", lstm_bwd)
    set_attribute(rnn, "lstm", lstm)
    set_attribute(cudnn_rnn, "lstm_fwd", lstm_fwd)  # scanrnn's row-major pair, same contract
    set_attribute(cudnn_rnn, "lstm_bwd", lstm_bwd)
    set_attribute(kernels, "vendor", lambda: "cudnn")
    set_attribute(kernels, "unavailable_reason", lambda: None)
