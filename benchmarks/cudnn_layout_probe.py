"""Is cuDNN's LSTM (jax.experimental.rnn) reading batch-major input as time-major?

The 2026-12-04 H200 diagnosis: JAX's own rnn.lstm disagrees with rnn.lstm_ref exactly when
T > 1 and B > 1 (T = 1 or B = 1 agree to 1e-7) -- the pattern of a (B, T) / (T, B) mix-up,
since swapping an axis of size 1 moves no data.  This compares cuDNN's answer with
lstm_ref's on the input as passed, and on the same memory read time-major.  The second H200
run found the cause (a transposed operand compiled into a permuted-layout bitcast, jaxlib's
custom call declaring no layout); the last rows check scanrnn's fix: the same custom call
bound through ``scanrnn.kernels.cudnn_rnn.lstm_fwd``, which declares every buffer row-major.
Run from the repository root: ``python3 benchmarks/cudnn_layout_probe.py`` (seconds).
"""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import rnn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from scanrnn.kernels import cudnn_rnn  # noqa: E402  (the working tree's scanrnn)

B, T, I, H = 3, 5, 7, 4
k = jax.random.split(jax.random.PRNGKey(0), 4)
x = jax.random.normal(k[0], (B, T, I), jnp.float32)
h0 = jax.random.normal(k[1], (1, B, H), jnp.float32)
c0 = jax.random.normal(k[2], (1, B, H), jnp.float32)
w = jax.random.normal(k[3], (rnn.get_num_params_in_lstm(I, H, 1, False),), jnp.float32) * 0.3
lengths = jnp.full((B,), T, jnp.int32)
with jax.default_matmul_precision("highest"):
    y, hT, cT = rnn.lstm(x, h0, c0, w, lengths, I, H, 1, 0.0, False)
    weights = rnn.unpack_lstm_weights(w, I, H, 1, False)
    y_ref, hT_ref, cT_ref = rnn.lstm_ref(x, h0, c0, *weights, lengths, I, H, 1, 0.0, False)
    # the same memory read as (T, B, I), i.e. x_tm[t, b] = x.reshape(-1)[(t * B + b) * I:]
    x_tm = x.reshape(T, B, I).transpose(1, 0, 2)
    y_alt, hT_alt, cT_alt = rnn.lstm_ref(x_tm, h0, c0, *weights, lengths, I, H, 1, 0.0,
                                         False)


def err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-6))


print("jax", jax.__version__, jax.devices()[0].device_kind)
print(f"cuDNN vs lstm_ref, as passed: y {err(y, y_ref):.1e} hT {err(hT, hT_ref):.1e} "
      f"cT {err(cT, cT_ref):.1e}")
y_tm = np.asarray(y).reshape(T, B, H).transpose(1, 0, 2)  # cuDNN's y memory read time-major
print(f"cuDNN (read time-major) vs lstm_ref of x read time-major: y {err(y_tm, y_alt):.1e} "
      f"hT {err(hT, hT_alt):.1e} cT {err(cT, cT_alt):.1e}")
print(f"cuDNN y vs lstm_ref of x read time-major, y as returned: {err(y, y_alt):.1e}")

# scanrnn's path: the input is time-major and swapped to batch-major inside one jit
x_time_major = jnp.swapaxes(x, 0, 1) + 0.0  # a real (T, B, I) array


@jax.jit
def swapped_inside(xt):
    return rnn.lstm(jnp.swapaxes(xt, 0, 1), h0, c0, w, lengths, I, H, 1, 0.0, False)


@jax.jit
def copied_inside(xt):
    xb = jnp.swapaxes(xt, 0, 1)
    xb = jax.lax.optimization_barrier(xb)
    return rnn.lstm(xb, h0, c0, w, lengths, I, H, 1, 0.0, False)


@jax.jit
def scanrnn_row_major(xt):
    (y, hn, cn), _ = cudnn_rnn.lstm_fwd(jnp.swapaxes(xt, 0, 1), h0, c0, w, lengths, I, H, 1,
                                        0.0, False, jax.lax.Precision.HIGHEST)
    return y, hn, cn


with jax.default_matmul_precision("highest"):
    for name, fn in (("swapaxes inside jit", swapped_inside),
                     ("swapaxes + optimization_barrier", copied_inside),
                     ("swapaxes inside jit, scanrnn's row-major custom call",
                      scanrnn_row_major)):
        ys, hs, cs = fn(x_time_major)
        print(f"cuDNN, {name}: y %.1e hT %.1e cT %.1e" % (
            err(ys, y_ref), err(hs, hT_ref), err(cs, cT_ref)))
    for name, fn in (("jax's", swapped_inside), ("scanrnn's", scanrnn_row_major)):
        text = fn.lower(x_time_major).compile().as_text()
        print(f"{name} custom call as compiled:")
        print("\n".join(ln.strip()[:300] for ln in text.splitlines()
                        if "custom-call" in ln)[:1500])
