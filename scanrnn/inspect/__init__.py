"""Study what the graph compiler does to a model: ``explain(...)`` and ``scanrnn graph``.

Theano users had ``debugprint``, ``pydotprint`` and profile mode; PyTensor has ``dprint``
and ``optimizer_verbose``.  :func:`explain` gathers what they tell, for one graph on one
or several backends, into a :class:`GraphReport`:

* the graph before and after rewriting: node counts by op type, every Scan (forward and
  gradient) with its inner graph, the kinds of its inputs and outputs and what rewriting
  moved out of the loop;
* the rewrites that fired, in order, with counts (captured, never printed);
* compile time split into rewriting and code generation, first call and steady step time,
  per backend, in one table;
* memory: what each scan writes per step and the traces it keeps for the gradient;
* for JAX, the jaxpr and the lowered StableHLO (``jax_text=True``).

>>> import scanrnn.inspect as si
>>> report = si.explain("d2l:hidden=8,seq=5,batch=2", backends="jax")   # doctest: +SKIP
>>> print(report.text()); report.save("graph.svg")                       # doctest: +SKIP
"""

from __future__ import annotations

from .explainer import explain, resolve_backends
from .analysis import GraphStats, ScanSummary, Slot
from .measure import BackendRun
from .render import DotNotFound
from .report import FORMATS, GraphReport
from .rewrites import RewriteCapture, capture_rewrites, parse_log
from .specs import PRESETS, SPEC_HELP, build_spec, lm_training_spec, theano_seed_spec
from .graph_spec import GraphSpec
from .target import as_graph_spec

__all__ = [
    "FORMATS",
    "PRESETS",
    "SPEC_HELP",
    "BackendRun",
    "DotNotFound",
    "GraphReport",
    "GraphSpec",
    "GraphStats",
    "RewriteCapture",
    "ScanSummary",
    "Slot",
    "as_graph_spec",
    "build_spec",
    "capture_rewrites",
    "explain",
    "lm_training_spec",
    "parse_log",
    "resolve_backends",
    "theano_seed_spec",
]
