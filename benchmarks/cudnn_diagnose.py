"""Where cuDNN's LSTM and the scan disagree: one table per question, for one GPU call.

On an H200 (2026-12-04) the cuDNN path failed exactly the agreement tests whose LSTM reads
token ids (one-hot inside the Op, vocabulary 7 / 11, batch 3), and two minutes of the
default ``scanrnn train`` on it ended at a validation loss of 2.57 where the fused scan on a
2-core CPU reaches 1.11 on the same text; the float-fed agreement test that passed had batch
1 (the finite-difference test checks cuDNN only against itself).
This script separates the suspects in one run:

1. ``scanrnn.kernels.cudnn_rnn.forward / backward`` (our packing, layouts and reserve space
   around ``jax.experimental.rnn.lstm_fwd / lstm_bwd``) against a plain ``lax.scan`` LSTM in
   scanrnn's layout, over shapes that vary one thing at a time (T, B, input size, H) and
   over normal and one-hot inputs: every output and gradient, as max error / max |reference|,
   and "rerun": the same compiled call again on the same inputs (cuDNN's algorithms are
   deterministic, so a difference there means uninitialised memory is read).
2. JAX's own ``rnn.lstm`` (its custom VJP over cuDNN) against ``rnn.lstm_ref`` on the same
   shapes: if these disagree too, the fault is below scanrnn (jaxlib or cuDNN).
3. The default ``scanrnn train`` step (``bench_core``'s "lm" config) for a few Adam steps,
   on the fused scan and on cuDNN (both layers; the first reads token ids): losses.
4. The custom calls as XLA compiled table 1's ``(5, 3, 7, 4)`` case: each operand's and
   result's layout (cuDNN reads every buffer as row-major; a permuted layout is a suspect).

``kernels=True`` uses the cuDNN path on a GPU (``scanrnn.kernels.cudnn_rnn``; on an H200,
2026-12-04, table 1 agreed to 1.3e-6 everywhere once the layouts were declared).  Table 1
(scanrnn's wrapper, whose custom calls declare row-major layouts) and table 3 decide the
exit status; table 2 is JAX's own path, which the H200 found wrong whenever T > 1 and B > 1
(an undeclared layout), kept to show the contrast.

Run on the GPU machine (``benchmarks/gpu_check.sh`` does, as its first part)::

    python3 benchmarks/cudnn_diagnose.py            # about 1.5 minutes on a GPU (estimate)
    python3 benchmarks/cudnn_diagnose.py --standin  # on a CPU: JAX's reference LSTM as cuDNN

``--standin`` puts ``tests/cudnn_standin.py`` in cuDNN's place (then every error must be
float32 round-off: tests/test_kernels.py runs it so); ``--quick`` runs a smaller grid.
Matrix products run at ``Precision.HIGHEST`` (no TF32) on both sides.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# (T, B, I, H): the tests' failing shapes, then one change at a time, then a shape of JAX's
# own tests (tests/experimental_rnn_test.py: T 4, B 4, I 2, H 6), then the LM's layers
SHAPES = [(1, 1, 4, 3), (5, 3, 7, 4), (5, 1, 7, 4), (1, 3, 7, 4), (5, 3, 4, 4), (5, 3, 8, 4),
          (4, 4, 2, 6), (64, 32, 66, 256), (64, 32, 256, 256)]
CUSTOM_CALL_SHAPE = (5, 3, 7, 4)  # table 4: a failing shape of the first GPU run
QUICK_SHAPES = [(1, 1, 4, 3), (5, 3, 7, 4), (6, 3, 11, 8)]
OUTPUTS = ["y", "hT", "cT", "dx", "dW_x", "dW_h", "db", "dh0", "dc0"]
TOLERANCE = 1e-5  # float32, relative to each array's largest value (tests/test_kernels.py)


def arrays(T, B, I, H, one_hot, seed=0):
    """Inputs ``src (T,B,I), W_x, W_h, b, h0, c0`` and cotangents ``dhs, dhT, dcT``."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    if one_hot:
        src = np.eye(I, dtype=f32)[rng.integers(0, I, (T, B))]
    else:
        src = rng.normal(size=(T, B, I)).astype(f32)
    scale = 1 / np.sqrt(H)
    params = [rng.uniform(-scale, scale, s).astype(f32) for s in ((I, 4 * H), (H, 4 * H), (4 * H,))]
    states = [rng.normal(0, 0.5, (B, H)).astype(f32) for _ in range(2)]
    cotangents = [rng.normal(size=s).astype(f32) for s in ((T, B, H), (B, H), (B, H))]
    return [src, *params, *states], cotangents


def reference_lstm(src, W_x, W_h, b, h0, c0):
    """``(hs, hT, cT)`` of scanrnn's LSTM (gates i, f, g, o) as a plain ``lax.scan``."""
    import jax
    import jax.numpy as jnp
    hi = jax.lax.Precision.HIGHEST

    def step(carry, x):
        h, c = carry
        z = jnp.dot(x, W_x, precision=hi) + jnp.dot(h, W_h, precision=hi) + b
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    (hT, cT), hs = jax.lax.scan(step, (h0, c0), src)
    return hs, hT, cT


def wrapper_function():
    """Our cuDNN wrapper, jitted: forward, then backward from the forward's reserve space;
    arguments ``src, W_x, W_h, b, h0, c0, dhs, dhT, dcT``, the nine arrays of OUTPUTS back."""
    import jax

    from scanrnn.kernels import cudnn_rnn

    @jax.jit
    def run(src, W_x, W_h, b, h0, c0, dhs, dhT, dcT):
        hs, hT, cT, reserve = cudnn_rnn.forward(src, W_x, W_h, b, h0, c0)
        grads = cudnn_rnn.backward(src, W_x, W_h, b, h0, c0, hs, hT, cT, reserve, dhs, dhT, dcT)
        return [hs, hT, cT, *grads]
    return run


def scanrnn_cudnn(inputs, cotangents, repeats=1):
    """The wrapper's nine arrays, from ``repeats`` calls of one compiled function."""
    run = wrapper_function()
    return [[np.asarray(a) for a in run(*inputs, *cotangents)] for _ in range(repeats)]


def wrapper_errors(inputs, cotangents):
    """Table 1's row: the wrapper against :func:`reference`, then its rerun's difference."""
    first, again = scanrnn_cudnn(inputs, cotangents, repeats=2)
    rerun = max(relative_errors(again, first))
    return relative_errors(first, reference(inputs, cotangents)) + [rerun]


def custom_calls(shape=CUSTOM_CALL_SHAPE):
    """The custom-call lines of the wrapper's optimized HLO at ``shape`` (one-hot input),
    up to their target name: operand and result shapes with their layouts."""
    inputs, cotangents = arrays(*shape, one_hot=True)
    try:
        text = wrapper_function().lower(*inputs, *cotangents).compile().as_text()
    except Exception as exc:  # the tables above are the report; this is an extra
        return [f"(could not compile it: {type(exc).__name__}: {str(exc)[:200]})"]
    calls = [line.strip().split(", backend_config")[0].split(", api_version")[0]
             for line in text.splitlines() if "custom-call(" in line]
    return calls or ["(no custom calls: the stand-in is plain JAX)"]


def reference(inputs, cotangents):
    """The same nine arrays from :func:`reference_lstm` and its VJP."""
    return _outputs_and_vjp(reference_lstm, inputs, cotangents)


def jax_own_lstm(inputs, cotangents):
    """JAX's ``rnn.lstm`` (custom VJP on cuDNN) in scanrnn's layout, and ``rnn.lstm_ref``."""
    import jax.numpy as jnp
    from jax.experimental import rnn

    from scanrnn.kernels import cudnn_rnn

    def call(fn, src, W_x, W_h, b, h0, c0):
        T, B, I = src.shape
        H = h0.shape[1]
        w, lengths = cudnn_rnn._pack(W_x, W_h, b), cudnn_rnn._lengths(B, T)  # as the wrapper
        x = jnp.swapaxes(src, 0, 1)
        if fn is rnn.lstm:
            y, hn, cn = rnn.lstm(x, h0[None], c0[None], w, lengths, I, H, 1, 0.0, False,
                                 cudnn_rnn._precision())
        else:
            W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(w, I, H, 1, False)
            y, hn, cn = rnn.lstm_ref(x, h0[None], c0[None], W_ih, W_hh, b_ih, b_hh, lengths,
                                     I, H, 1, 0.0, False)
        return jnp.swapaxes(y, 0, 1), hn[0], cn[0]

    return [_outputs_and_vjp(partial(call, fn), inputs, cotangents)
            for fn in (rnn.lstm, rnn.lstm_ref)]


def _outputs_and_vjp(fn, inputs, cotangents):
    """``fn(*inputs)``'s three outputs and its VJP at ``cotangents``, jitted, as numpy."""
    import jax

    def run(args, cts):
        outs, vjp = jax.vjp(fn, *args)
        return [*outs, *vjp(tuple(cts))]
    return [np.asarray(a) for a in jax.jit(run)(inputs, cotangents)]


def relative_errors(got, want):
    """max |got - want| / max |want| per array (float64)."""
    out = []
    for g, w in zip(got, want):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        scale = max(np.abs(w).max(initial=0.0), 1e-6)
        out.append(float(np.abs(g - w).max(initial=0.0)) / scale)
    return out


def _row(label, errors):
    cells = " | ".join(f"{e:.1e}" + (" **" if e > TOLERANCE else "") for e in errors)
    return f"| {label} | {cells} | {'ok' if max(errors) <= TOLERANCE else 'DIFFERS'} |"


def kernel_table(shapes, title, compare, columns=OUTPUTS):
    """One markdown table: a row per (shape, input kind), the errors of ``compare``."""
    lines = [f"### {title}", "", "| T, B, I, H, input | " + " | ".join(columns) + " | |",
             "|" + " --- |" * (len(columns) + 2)]
    print("\n".join(["", *lines]), flush=True)
    worst = 0.0
    for T, B, I, H in shapes:
        for one_hot in (False, True):
            inputs, cotangents = arrays(T, B, I, H, one_hot)
            label = f"{T}, {B}, {I}, {H}, {'one-hot' if one_hot else 'normal'}"
            try:
                errors = compare(inputs, cotangents)
            except Exception as exc:  # report the failure, go on with the next shape
                lines.append(f"| {label} | {type(exc).__name__}: {str(exc)[:120]} |")
                worst = float("inf")
            else:
                worst = max(worst, *errors)
                lines.append(_row(label, errors))
            print(lines[-1], flush=True)  # as it goes: a timeout keeps the rows so far
    return lines, worst


def lm_losses(steps, quick):
    """Losses of ``steps`` Adam steps of bench_core's "lm" step on the scan and on cuDNN."""
    sys.path.insert(0, HERE)
    import bench_core

    cfg = bench_core.CONFIGS["lm"]
    if quick:
        cfg = bench_core.Config("small lm", "lm", 11, 8, 3, 6, layers=2, lr=5e-3)
    from scanrnn import kernels
    losses = {}
    for name, use_kernels in (("fused scan", False), ("cuDNN", True)):
        fn, _ = bench_core.scanrnn_train_function(cfg, "jax", kernels=use_kernels)
        where = kernels.describe(fn)
        rng = np.random.default_rng(0)
        seen = []
        for _ in range(steps):
            x = rng.integers(0, cfg.vocab, (cfg.steps, cfg.batch)).astype(np.int32)
            seen.append(float(np.asarray(fn(x, np.roll(x, -1, axis=0)))))
        losses[name] = (seen, where)
    return cfg, losses


def lm_table(steps, quick):
    cfg, losses = lm_losses(steps, quick)
    scan = np.array(losses["fused scan"][0])
    lines = [f"### 3. {cfg.name}: {steps} Adam steps, losses against the fused scan", "",
             "| path | first loss | last loss | max abs. difference | where each layer ran |",
             "| --- | --- | --- | --- | --- |"]
    worst = 0.0
    for name, (seen, where) in losses.items():
        diff = float(np.abs(np.array(seen) - scan).max())
        worst = max(worst, diff) if name != "fused scan" else worst
        kinds = "; ".join(w.split("-> ")[1].split(" (")[0] if "-> " in w else "fused scan"
                          for w in where) or "fused scan"
        lines.append(f"| {name} | {seen[0]:.5f} | {seen[-1]:.5f} | {diff:.1e} | {kinds} |")
    print("\n".join(["", *lines]), flush=True)
    return lines, worst


def main(argv=None, set_attribute=setattr):
    """Print (and with ``--out`` write) the four tables; 0 when scanrnn's wrapper and the LM
    agree with the scan (tables 1 and 3), 1 when they differ, 2 when there is no cuDNN (and no
    ``--standin``).  ``set_attribute`` installs the stand-in (a test passes
    ``monkeypatch.setattr`` to undo it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--standin", action="store_true",
                        help="JAX's reference LSTM in cuDNN's place (runs on a CPU)")
    parser.add_argument("--quick", action="store_true", help="a smaller grid, 3 LM steps")
    parser.add_argument("--steps", type=int, default=5, help="Adam steps of the LM (5)")
    parser.add_argument("--out", help="also write the tables to this file")
    args = parser.parse_args(argv)
    os.environ["SCANRNN_KERNELS"] = "1"  # the kernel path wherever one applies
    os.environ["SCANRNN_CUDNN"] = "1"  # cuDNN's LSTM even if the environment turned it off
    import jax
    if args.standin:
        sys.path.insert(0, os.path.join(HERE, "..", "tests"))
        import cudnn_standin
        cudnn_standin.install(set_attribute)
    from scanrnn import kernels
    if kernels.vendor() != "cudnn" or kernels.unavailable_reason():
        print(f"cudnn_diagnose: no cuDNN here ({kernels.vendor()}, "
              f"{kernels.unavailable_reason()}); --standin runs it on a CPU")
        return 2
    with jax.default_matmul_precision("highest"):
        lines, worst = tables(args, jax)
    text = "\n".join(lines)
    print(lines[-1])
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0 if worst[0] <= TOLERANCE and worst[2] <= 1e-4 else 1


def cudnn_version() -> str:
    """cuDNN's version as jaxlib reports it (``"?"`` when it cannot say, e.g. on a CPU)."""
    try:
        from jax._src.lib import cuda_versions
        return str(cuda_versions.cudnn_get_version())
    except Exception:  # no CUDA plugin, or a jaxlib without this private helper
        return "?"


def tables(args, jax):
    """The report's lines and the worst error of each table."""
    shapes = QUICK_SHAPES if args.quick else SHAPES
    lines = [f"cuDNN diagnosis on {jax.devices()[0].device_kind}"
             f"{' (stand-in: JAX reference LSTM)' if args.standin else ''}, jax {jax.__version__}"
             f", cuDNN {cudnn_version()}",
             f"errors: max |a - b| / max |b|; ** above {TOLERANCE:g}", ""]
    print("\n".join(lines[:2]), flush=True)
    ours, worst_ours = kernel_table(
        shapes, "1. scanrnn's cuDNN wrapper vs a lax.scan LSTM (rerun: the same call again)",
        wrapper_errors, OUTPUTS + ["rerun"])
    theirs, worst_theirs = kernel_table(
        shapes, "2. JAX's rnn.lstm (cuDNN) vs rnn.lstm_ref",
        lambda i, c: relative_errors(*jax_own_lstm(i, c)))
    lm, worst_lm = lm_table(3 if args.quick else args.steps, args.quick)
    calls = [f"### 4. The custom calls as compiled, table 1 at {CUSTOM_CALL_SHAPE} (one-hot)",
             "", "```", *custom_calls(), "```"]
    print("\n".join(["", *calls]), flush=True)
    lines += ours + [""] + theirs + [""] + lm + [""] + calls
    lines += ["", f"worst: wrapper {worst_ours:.1e}, jax's lstm {worst_theirs:.1e}, "
              f"LM losses {worst_lm:.1e}"]
    return lines, (worst_ours, worst_theirs, worst_lm)


if __name__ == "__main__":
    sys.exit(main())
