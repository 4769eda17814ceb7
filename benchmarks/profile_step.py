"""Where the time of one compiled training step goes, kernel by kernel (JAX on the CPU).

    python benchmarks/profile_step.py --config lstm          # the top 25 kernels
    python benchmarks/profile_step.py --config lstm2 --top 40

Builds the same training step as ``bench_core.py`` (forward + backward + clipped
SGD update) for scanrnn on the JAX backend, runs it under ``jax.profiler.trace``
with XLA:CPU's per-kernel trace events switched on
(``--xla_cpu_enable_xprof_traceme``), and prints each compiled kernel's time and
calls per training step: the loop bodies' matrix products (``ynn_fusion`` /
``dot``), their elementwise fusions, copies, the loop overhead.  The kernels are
XLA's names; ``--hlo FILE`` writes the optimised HLO module to map them back to
operations.  Nothing here is needed to use scanrnn.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import sys
import tempfile

# XLA reads its flags when the backend starts: before jax is imported
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_cpu_enable_xprof_traceme=true").strip()

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_core  # noqa: E402

# trace events that are not kernels (host-side bookkeeping, the executor itself)
_NOT_KERNELS = ("ThunkExecutor", "SlinkyThreadPool", "PjitFunction", "PjRt", "$")


def kernel_times(trace_file, n_steps):
    """``[(name, ms per step, calls per step)]`` from a perfetto trace, slowest first."""
    with gzip.open(trace_file) as f:
        events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    total, calls = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("ph") == "X":
            total[event["name"]] += event.get("dur", 0)  # microseconds
            calls[event["name"]] += 1
    step_us = total.get("ThunkExecutor::Execute (wait for completion)", 0) / n_steps
    rows = [(name, us / n_steps / 1e3, calls[name] / n_steps) for name, us in total.items()
            if not name.startswith(_NOT_KERNELS)]
    return sorted(rows, key=lambda r: -r[1]), step_us / 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="lstm", choices=sorted(bench_core.CONFIGS))
    parser.add_argument("--steps", type=int, default=5, help="training steps traced")
    parser.add_argument("--top", type=int, default=25, help="kernels listed")
    parser.add_argument("--hlo", help="also write the optimised HLO text to this file")
    args = parser.parse_args(argv)
    import jax

    import scanrnn  # noqa: F401  (float32 default)

    cfg = bench_core.CONFIGS[args.config]
    fn, (X, Y) = bench_core.scanrnn_train_function(cfg, "jax")
    for _ in range(3):  # compile, warm
        np.asarray(fn(X, Y))
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            for _ in range(args.steps):
                np.asarray(fn(X, Y))
        trace = glob.glob(os.path.join(folder, "**", "*.trace.json.gz"), recursive=True)
        if not trace:
            sys.exit("the profiler wrote no perfetto trace (is jax's profiler available?)")
        rows, step_ms = kernel_times(trace[0], args.steps)
    print(f"{cfg.name}: {step_ms:.2f} ms per training step in XLA "
          f"({cfg.batch * cfg.steps / step_ms * 1e3:,.0f} tokens/s under the profiler)\n")
    print(f"{'ms/step':>8} {'share':>6} {'calls/step':>10}  kernel")
    for name, ms, n in rows[:args.top]:
        print(f"{ms:8.2f} {ms / step_ms:6.1%} {n:10.0f}  {name}")
    if args.hlo:
        compiled = fn.function_for(X, Y)
        shared = [c.storage[0] for c in compiled.input_storage[2:]]
        values = [X, Y] + [np.asarray(v) for v in shared]
        with open(args.hlo, "w", encoding="utf-8") as out:
            out.write(compiled.vm.jit_fn.lower(*values).compile().as_text())
        print(f"\nHLO written to {args.hlo}")


if __name__ == "__main__":
    main()
