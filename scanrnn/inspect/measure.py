"""Compile a :class:`GraphSpec` on one backend, capturing rewrites, and time it.

Timings of one backend (seconds unless noted):

``rewrite_s``
    graph rewriting inside ``pytensor.function`` (the top-level ``prepare_fgraph``);
``build_s``
    the rest of ``pytensor.function``: linking and code generation (C compilation for the
    C backend, Python source for Numba, ``jax.jit`` wrapping for JAX), graph cloning;
``first_call_s``
    the first call; Numba and JAX compile to machine code here (on-disk caches make a
    repeated compile of the same graph fast: ``~/.pytensor``);
``step_ms``
    the median of the following calls (at least 3, about ``min_time_s`` in total).

Calls that update shared variables change them: their values are saved before and
restored after measuring, so studying a model leaves its weights as they were.
"""

from __future__ import annotations

import copy
import statistics
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from ..arguments import check_arguments
from ..compile import function
from .rewrites import capture_rewrites

__all__ = ["BackendRun", "SharedSnapshot", "compile_and_time", "time_compiled"]


@dataclass
class BackendRun:
    """Result of compiling (and running) the graph on one backend."""

    backend: str
    ok: bool = False
    error: str | None = None
    rewrite_s: float | None = None
    build_s: float | None = None
    first_call_s: float | None = None
    step_ms: float | None = None
    calls: int = 0
    n_nodes: int | None = None
    op_counts: dict = field(default_factory=dict)
    scans: list = field(default_factory=list)
    rewrites: list = field(default_factory=list)
    rewrites_by_phase: dict = field(default_factory=dict)
    rejected: dict = field(default_factory=dict)
    internal_replacements: int = 0
    warnings: list = field(default_factory=list)
    rewrite_failures: list = field(default_factory=list)
    shapes_note: str | None = None
    jax_text: dict | None = None
    kernels: list = field(default_factory=list)   # one line per fused recurrence (JAX)
    # not serialised: the compiled objects and the raw log
    compiled: object = field(default=None, repr=False)
    fgraph: object = field(default=None, repr=False)
    log_text: str = field(default="", repr=False)


class SharedSnapshot:
    """Copies of shared variables' values, restored (as numpy arrays) on :meth:`restore`."""

    def __init__(self, shared):
        self.saved = []
        for var in shared:
            value = var.get_value(borrow=True)
            if type(value).__module__.startswith(("jax", "jaxlib")):
                value = np.asarray(value)
            self.saved.append((var, copy.deepcopy(value)))

    def restore(self):
        for var, value in self.saved:
            var.set_value(copy.deepcopy(value), borrow=True)


def _steady(call, min_time_s: float, max_calls: int = 200) -> tuple[float, int]:
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_time_s and len(times) < max_calls):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, len(times)


def compile_and_time(spec, backend: str, *, run: bool = True, min_time_s: float = 0.3,
                     jax_text: bool = False) -> BackendRun:
    """Compile ``spec`` with :func:`scanrnn.function` on ``backend``; time it if ``run``.

    The compiled pytensor function is in ``result.compiled`` and its rewritten graph in
    ``result.fgraph``.  Errors are caught and reported in ``result.error``.
    """
    out = BackendRun(backend)
    args = spec.example_args
    snapshot = SharedSnapshot(spec.shared())
    try:
        with capture_rewrites() as log:
            start = time.perf_counter()
            fn = function(spec.inputs, spec.outputs, spec.updates, backend=backend,
                                  name=spec.name, **spec.fn_kwargs)
            if args is not None:
                compiled = fn.function_for(*args)
            elif fn.compiled:
                compiled = next(iter(fn.compiled.values()))
            else:
                # JAX compiles lazily, per input shapes; without example values compile the
                # graph with unpinned shapes: rewriting and linking happen, no call is made
                compiled = fn._compile(None)
            total = time.perf_counter() - start
            if args is not None and run:
                log.mark("first_call")
                start = time.perf_counter()
                fn(*args)
                out.first_call_s = time.perf_counter() - start
        out.rewrite_s = log.rewrite_s
        out.build_s = max(total - log.rewrite_s, 0.0)
        out.kernels = [d.line() for d in (fn.kernel_decisions or [])]
        out.compiled, out.fgraph = compiled, compiled.maker.fgraph
        out.rewrites = [list(r) for r in log.summary()]
        out.rewrites_by_phase = {p: [list(r) for r in log.summary(p)]
                                 for p in ("graph", "inner", "codegen", "first_call")
                                 if log.summary(p)}
        out.rejected = dict(log.rejected)
        out.internal_replacements = log.internal
        out.warnings = log.warnings
        out.rewrite_failures = log.failures
        out.log_text = log.text
        if args is not None and run:
            out.step_ms, out.calls = _steady(lambda: fn(*args), min_time_s)
            out.calls += 1
        if jax_text and backend == "jax" and args is not None:
            values = check_arguments(spec.inputs, args)
            out.jax_text = jax_program_text(compiled, values)
        out.ok = True
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        out.log_text = traceback.format_exc()
    finally:
        snapshot.restore()
    return out


def time_compiled(spec, *, run: bool = True, min_time_s: float = 0.3,
                  jax_text: bool = False) -> BackendRun:
    """Study ``spec.compiled``, a pytensor function compiled before: its graph and speed.

    Rewriting and build times are unknown (it was compiled earlier); the first call is
    timed only if it has not been called yet.
    """

    fn = spec.compiled
    out = BackendRun(spec.backend or "unknown", compiled=fn, fgraph=fn.maker.fgraph)
    args = spec.example_args
    snapshot = SharedSnapshot(spec.shared())
    try:
        if args is not None and run:
            values = check_arguments(spec.inputs, args)
            with capture_rewrites() as log:
                start = time.perf_counter()
                fn(*values)
                out.first_call_s = time.perf_counter() - start
            out.warnings = log.warnings
            out.step_ms, out.calls = _steady(lambda: fn(*values), min_time_s)
            out.calls += 1
            if jax_text and out.backend == "jax":
                out.jax_text = jax_program_text(fn, values)
        out.ok = True
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        out.log_text = traceback.format_exc()
    finally:
        snapshot.restore()
    return out


def jax_program_text(compiled, args) -> dict:
    """The jaxpr and the lowered StableHLO of a JAX-compiled pytensor function.

    ``compiled.vm.jit_fn`` is the ``jax.jit`` of PyTensor's JAX-funcified graph; its
    arguments are the function's inputs followed by the shared variables' values.
    """
    import jax
    jit_fn = compiled.vm.jit_fn
    shared = [c.storage[0] for c in compiled.input_storage[len(args):]]
    values = list(args) + [np.asarray(v) if v is not None else v for v in shared]
    text = {}
    try:
        text["jaxpr"] = str(jax.make_jaxpr(jit_fn)(*values))
    except Exception as exc:
        text["jaxpr"] = f"(make_jaxpr failed: {type(exc).__name__}: {exc})"
    lower = getattr(jit_fn, "lower", None)
    if lower is None:
        text["stablehlo"] = ("(not available: the function takes scalar shape arguments, so "
                             "PyTensor wraps jax.jit and the wrapper has no .lower)")
    else:
        try:
            text["stablehlo"] = lower(*values).as_text()
        except Exception as exc:
            text["stablehlo"] = f"(lower failed: {type(exc).__name__}: {exc})"
    return text
