"""``explain(target)``: compile a graph on one or several backends and gather what the
compiler did into a :class:`~scanrnn.inspect.report.GraphReport`."""

from __future__ import annotations

import numpy as np

from ..compile import backends as installed_report
from ..arguments import check_arguments
from ..compile import installed_backends, resolve_backend
from .analysis import graph_stats, symbolic_fgraph
from .compare import compare_scans
from .memory import fill_shapes
from .naming import variable_label
from .measure import compile_and_time, time_compiled
from .report import GraphReport
from .target import as_graph_spec

__all__ = ["explain", "resolve_backends"]


def resolve_backends(backends, default: str | None = None) -> list[str]:
    """``"all"``, ``"auto"``, a name, a comma list or a list -> installed backend names.

    ``"auto"`` is ``default`` (the backend a compiled target was built for) when given,
    else scanrnn's default backend.
    """
    if backends is None:
        backends = ("auto",)
    if isinstance(backends, str):
        backends = [b.strip() for b in backends.split(",") if b.strip()]
    names = []
    for b in backends:
        if str(b).lower() == "all":
            names += installed_backends()
        elif str(b).lower() == "auto" and default:
            names.append(resolve_backend(default))
        else:
            names.append(resolve_backend(b))
    if not names:
        raise ValueError("no backend given; use 'auto', 'all' or names such as 'jax,numba'")
    return list(dict.fromkeys(names))


def explain(target, *, backends=("auto",), inputs=None, stage: str = "both",
            jax_text: bool = False, run: bool = True, min_time_s: float = 0.3,
            kernels: bool | str | None = None) -> GraphReport:
    """Compile ``target`` on each backend and report what the compiler did.

    Parameters
    ----------
    target
        A :func:`scanrnn.function` result, a pytensor function, ``(outputs, inputs[,
        updates])``, a model (:class:`scanrnn.lm.CharLM`, or an object with
        ``graph_spec()``/``training_graph()`` or a compiled ``train_function``), a run
        directory, a model spec string (``"d2l"``, ``"theano"``, ``"lstm:hidden=64"``: see
        :mod:`scanrnn.inspect.specs`) or a :class:`GraphSpec`.
    backends : str or sequence
        ``"auto"`` (the target's own backend, else scanrnn's default), ``"all"`` (every
        installed backend), or names: ``"jax"``, ``"numba"``, ``"c"``, ``"python"``.
    inputs : list, optional
        Example argument values (one per input) to run and time the function; model
        specs and run directories bring their own; without any, the graph is compiled
        but not run (JAX then compiles the graph without pinned shapes).
    stage : {"both", "before", "after"}
        Analyse the symbolic graph, the rewritten graphs, or both.  Compiling (and so the
        rewrite list and timings) happens for "after" and "both".
    jax_text : bool
        Add the jaxpr and StableHLO of the JAX function (needs example inputs).
    run : bool or collection of str
        Run and time the compiled functions (default True); or the backends to run (the
        others are compiled only: no first call, which for Numba is the long part).
    min_time_s : float
        About how long to spend timing steady calls per backend.
    kernels : bool, "auto" or None
        True runs fused recurrences on vendor kernels on JAX (:mod:`scanrnn.kernels`; the
        report names the rewrite and the kernel of each recurrence); False keeps the scans,
        to study them or to compare; "auto" does what :func:`scanrnn.function` does; None
        (default): a :func:`scanrnn.function` target's own setting, else "auto".

    Returns
    -------
    GraphReport
        ``.text()``, ``.to_json()``, ``.to_dot()``, ``.save(path, format)``.
    """
    if stage not in ("before", "after", "both"):
        raise ValueError(f"stage must be 'before', 'after' or 'both', got {stage!r}")
    spec = as_graph_spec(target, inputs=inputs)
    if kernels is not None or "kernels" not in spec.fn_kwargs:
        spec.fn_kwargs = {**spec.fn_kwargs, "kernels": "auto" if kernels is None else kernels}
    names = resolve_backends(backends, spec.backend)
    info = installed_report()
    report = GraphReport(
        name=spec.name, description=spec.description,
        inputs=[variable_label(v) for v in spec.inputs],
        params=[[v.name, list(np.shape(v.get_value(borrow=True))), str(v.dtype)]
                for v in spec.params()],
        stage=stage, versions=info["versions"], step_source=spec.step_source)
    if spec.compiled is not None:
        return _explain_compiled(spec, report, names, run, min_time_s, jax_text)
    if stage in ("before", "both"):
        fgraph = symbolic_fgraph(spec.outputs, spec.updates, spec.inputs)
        report.before_fgraph = fgraph
        report.before = graph_stats(fgraph, "before")
    if stage == "before":
        return report
    args = None
    if spec.example_args is not None:
        args = [np.asarray(a) for a in check_arguments(spec.inputs, spec.example_args)]
    for backend in names:
        do_run = run if isinstance(run, bool) else backend in set(resolve_backends(run))
        report.runs.append(_compile_and_study(spec, backend, do_run, min_time_s, jax_text,
                                              args, report.before))
    if report.before is not None and args is not None:
        note = fill_shapes(report.before_fgraph, report.before, args)
        if note:
            report.notes.append(f"before rewriting, not every scan shape is known: {note}")
    if not any(r.ok for r in report.runs):
        report.notes.append("no backend compiled the graph; see the errors in section 4")
    return report


def _compile_and_study(spec, backend, run, min_time_s, jax_text, args, before):
    """Compile (and time) ``spec`` on ``backend``; read its rewritten graph."""
    result = compile_and_time(spec, backend, run=run, min_time_s=min_time_s,
                              jax_text=jax_text)
    if result.ok:
        stats = graph_stats(result.fgraph, backend, with_text=True)
        result.n_nodes, result.op_counts, result.scans = (stats.n_nodes, stats.op_counts,
                                                          stats.scans)
        result.shapes_note = (fill_shapes(result.fgraph, stats, args) if args is not None
                              else "no example input values")
        if before is not None:
            compare_scans(before, stats)
    return result


def _explain_compiled(spec, report, names, run, min_time_s, jax_text) -> GraphReport:
    """A report on an already compiled pytensor function (its own backend only)."""
    report.stage = "after"
    report.notes.append(
        "the target was already compiled: PyTensor rewrote its graph in place, so the graph "
        "before rewriting, the rewrites and the compile times are not available; pass the "
        "symbolic graph (outputs, inputs, updates) or a scanrnn.function to see them")
    others = [b for b in names if b != spec.backend]
    if others:
        report.notes.append(f"only the function's own backend ({spec.backend}) can be studied; "
                            f"not compiled for: {', '.join(others)}")
    do_run = run if isinstance(run, bool) else spec.backend in set(resolve_backends(run))
    result = time_compiled(spec, run=do_run, min_time_s=min_time_s, jax_text=jax_text)
    if result.ok:
        stats = graph_stats(result.fgraph, result.backend)
        result.n_nodes, result.op_counts, result.scans = (stats.n_nodes, stats.op_counts,
                                                          stats.scans)
        if spec.example_args is not None:
            result.shapes_note = fill_shapes(result.fgraph, stats,
                                             [np.asarray(a) for a in spec.example_args])
    report.runs.append(result)
    return report
