"""Read a graph: node counts by op, the Scans with their inner graphs, slot kinds and memory.

Works on any ``FunctionGraph``: the symbolic graph (before rewriting) or the rewritten
graph of a compiled function (``f.maker.fgraph``).  A Scan's outer inputs and outputs
are sorted into PyTensor's kinds (:class:`ScanInfo` fields):

============  =====================================================================
kind          meaning
============  =====================================================================
sequence      sliced one step at a time (``x[t]``)
mit-mot       gradient accumulators read and written at several taps (grad scans)
mit-sot       a recurrent state read at several past taps
sit-sot       a recurrent state read at ``t-1``; traced: every step is stored
untraced      a recurrent state of which only the last value is kept
nit-sot       a per-step output with no recurrence; traced
non-sequence  the same value at every step (weights)
============  =====================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytensor
from pytensor.compile.builders import OpFromGraph
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.traversal import ancestors, graph_inputs
from pytensor.scan.op import Scan

from ..pytensor_compat import inner_outputs_with
from .naming import (
    OFG_BINDINGS,
    describe,
    is_view_of_input,
    op_counts,
    op_label,
    resolve_binding,
    root_name,
)

__all__ = [
    "KIND_NOTES",
    "GraphStats",
    "ScanSummary",
    "Slot",
    "graph_stats",
    "scan_nodes",
    "symbolic_fgraph",
]

KIND_NOTES = {
    "n_steps": "number of steps",
    "sequence": "sliced per step",
    "mit-mot": "gradient accumulator, several taps",
    "mit-sot": "recurrent state, several taps",
    "sit-sot": "recurrent state, traced (every step kept)",
    "untraced": "recurrent state, untraced (last value only)",
    "nit-sot": "per-step output, traced",
    "non-sequence": "same every step",
}
TRACED_KINDS = ("mit-mot", "mit-sot", "sit-sot", "nit-sot")


@dataclass
class Slot:
    """One outer input or output of a Scan.

    ``shape``/``nbytes`` are those of the outer variable (for a traced output: the
    whole stored trace) when they could be evaluated; ``step_shape``/``step_nbytes``
    those of one step (the state or output the loop body sees).  ``computed`` marks a
    sequence computed before the loop for all steps (not a slice of an input or of
    another scan's output): work hoisted out of the loop.
    """

    kind: str
    outer: str
    inner: str = ""
    dtype: str = ""
    shape: list | None = None
    nbytes: int | None = None
    step_shape: list | None = None
    step_nbytes: int | None = None
    computed: bool = False


@dataclass
class ScanSummary:
    """One Scan node: what it loops over, carries, outputs, and what its body computes."""

    name: str
    role: str
    info: dict
    n_steps: int | None
    inputs: list
    outputs: list
    inner_nodes: int
    inner_ops: dict
    inner_text: str
    params: list
    traced_bytes: int | None = None
    untraced_bytes: int | None = None
    per_step_bytes: int | None = None
    read_by_gradient: bool = False
    changes: list = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for s in self.inputs if s.kind == kind)


@dataclass
class GraphStats:
    """Node counts and Scans of one graph (``stage`` is ``"before"`` or a backend name)."""

    stage: str
    n_nodes: int
    op_counts: dict
    scans: list


# -- graphs ------------------------------------------------------------------------------
def symbolic_fgraph(outputs, updates=None, inputs=None) -> FunctionGraph:
    """The graph as written (no rewriting): outputs then update expressions, cloned.

    The graph's inputs are ``inputs`` (in that order) followed by every other root
    (shared variables, ...), so ``fgraph.inputs`` lines up with a compiled function's.
    """
    outs = list(outputs) + list((updates or {}).values())
    first = list(inputs or [])
    rest = [v for v in graph_inputs(outs) if v not in first and not isinstance(v, Constant)]
    return FunctionGraph(inputs=first + rest, outputs=outs, clone=True)


def _inner_graph_nodes(node) -> list:
    """The nodes inside an ``OpFromGraph`` (or another op with an inner ``fgraph``)."""
    fgraph = getattr(node.op, "fgraph", None)
    return fgraph.toposort() if fgraph is not None and not isinstance(node.op, Scan) else []


def expanded_nodes(fgraph) -> list:
    """The graph's nodes, with ``OpFromGraph(inline=True)`` nodes replaced by their inner
    nodes (recursively): what the rewriter works on once ``inline_ofg_expansion`` ran."""
    out = []

    def walk(nodes):
        for node in nodes:
            if isinstance(node.op, OpFromGraph) and getattr(node.op, "is_inline", False):
                walk(_inner_graph_nodes(node))
            else:
                out.append(node)
    walk(fgraph.toposort())
    return out


def scan_nodes(fgraph, bindings: dict | None = None) -> list:
    """The Scan apply nodes of ``fgraph`` in topological order, including Scans inside
    ``OpFromGraph`` ops (scanrnn's fused recurrences are OpFromGraphs around a Scan).

    ``bindings`` (a dict) receives ``{OpFromGraph inner input: outer variable}``.
    """
    out = []
    bindings = {} if bindings is None else bindings

    def walk(nodes):
        for node in nodes:
            if isinstance(node.op, Scan):
                out.append(node)
            elif isinstance(node.op, OpFromGraph):
                bindings.update(zip(node.op.inner_inputs, node.inputs))
                walk(_inner_graph_nodes(node))
    walk(fgraph.toposort())
    return out


GRAD_NAME = re.compile(r"(^grad_of_|_grad$|_grad_|\bbackward\b)")


def _role(op) -> str:
    if op.info.n_mit_mot or GRAD_NAME.search(op.name or ""):
        return "gradient"
    return "forward"


def _output_names(node) -> dict:
    """``{kind: [name or None per outer output]}`` (PyTensor names gradients ``(dC/dW)``)."""
    op, outs = node.op, list(node.outputs)
    return {"mit-mot": [o.name for o in op.outer_mitmot_outs(outs)],
            "mit-sot": [o.name for o in op.outer_mitsot_outs(outs)],
            "sit-sot": [o.name for o in op.outer_sitsot_outs(outs)],
            "untraced": [o.name for o in op.outer_untraced_sit_sot_outs(outs)]}


def _state_label(kind, k, outer, role, out_names) -> str:
    name = out_names[kind][k] if k < len(out_names[kind]) else None
    if name:
        return name
    base = root_name(outer)
    if base:
        return base
    if role != "gradient":
        return f"{kind.replace('-', '')}{k}" if kind in ("mit-mot", "mit-sot") else f"state{k}"
    # in a gradient scan: mit-mot = gradient flowing back through a forward state;
    # sit-sot / untraced = a weight's gradient accumulated over the steps
    return f"dstate{k}" if kind in ("mit-mot", "mit-sot") else f"acc{k}"


def scan_slots(node):
    """Outer (input slots, output slots) and the inner input labels of a Scan node."""
    op, ins = node.op, list(node.inputs)
    role = _role(op)
    out_names = _output_names(node)
    inner_in = list(op.inner_inputs)
    labels = {}
    in_slots = [Slot("n_steps", describe(ins[0]), dtype=ins[0].dtype)]
    pos = 0

    def take(n):
        nonlocal pos
        got = inner_in[pos:pos + n]
        pos += n
        return got

    for k, v in enumerate(op.outer_seqs(ins)):
        [iv] = take(1)
        computed = not is_view_of_input(v)
        labels[iv] = f"{f'seq{k}' if computed else root_name(v) or f'seq{k}'}[t]"
        in_slots.append(Slot("sequence", describe(v), labels[iv], v.dtype, computed=computed))
    for k, (v, taps) in enumerate(zip(op.outer_mitmot(ins), op.info.mit_mot_in_slices)):
        base = _state_label("mit-mot", k, v, role, out_names)
        names = []
        for tap, iv in zip(taps, take(len(taps))):
            names.append(f"{base}[t{tap:+d}]")
            labels[iv] = names[-1]
        in_slots.append(Slot("mit-mot", describe(v), ", ".join(names), v.dtype))
    for k, (v, taps) in enumerate(zip(op.outer_mitsot(ins), op.info.mit_sot_in_slices)):
        base = _state_label("mit-sot", k, v, role, out_names)
        names = []
        for tap, iv in zip(taps, take(len(taps))):
            names.append(f"{base}[t{tap:+d}]")
            labels[iv] = names[-1]
        in_slots.append(Slot("mit-sot", describe(v), ", ".join(names), v.dtype))
    for kind, outer in (("sit-sot", op.outer_sitsot(ins)),
                        ("untraced", op.outer_untraced_sit_sot(ins))):
        for k, v in enumerate(outer):
            [iv] = take(1)
            labels[iv] = f"{_state_label(kind, k, v, role, out_names)}[t-1]"
            in_slots.append(Slot(kind, describe(v), labels[iv], v.dtype))
    for v in op.outer_nitsot(ins):
        in_slots.append(Slot("nit-sot", f"length {describe(v)}", "", v.dtype))
    for k, v in enumerate(op.outer_non_seqs(ins)):
        [iv] = take(1)
        labels[iv] = v.name or root_name(v) or f"nonseq{k}"
        in_slots.append(Slot("non-sequence", describe(v), labels[iv], v.dtype))

    return in_slots, _output_slots(node, labels), labels


def _inner_description(var, labels) -> str:
    """An inner variable as its slot label, or ``Op(args)`` of up to three arguments."""
    if var in labels:
        return labels[var]
    owner = var.owner
    if owner is None:
        return describe(var, 0)
    args = [_inner_description(i, labels) if i in labels else op_label(i.owner.op, 16)
            if i.owner else describe(i, 0) for i in owner.inputs
            if not isinstance(i, Constant)][:3]
    return f"{op_label(owner.op, 24)}({', '.join(args)})"


def _output_slots(node, labels) -> list:
    """A Scan node's output slots, each with what its inner graph computes."""
    op, outs = node.op, list(node.outputs)
    inner_out = list(op.inner_outputs)
    kinds = ([("mit-mot", o) for o in op.outer_mitmot_outs(outs)]
             + [("mit-sot", o) for o in op.outer_mitsot_outs(outs)]
             + [("sit-sot", o) for o in op.outer_sitsot_outs(outs)]
             + [("nit-sot", o) for o in op.outer_nitsot_outs(outs)]
             + [("untraced", o) for o in op.outer_untraced_sit_sot_outs(outs)])
    # inner outputs come in the same kind order; a mit-mot may have several per output
    inner_pos = op.info.n_mit_mot_outs
    out_slots = []
    for kind, o in kinds:
        if kind == "mit-mot":
            inner = "accumulated"
        else:
            inner = (_inner_description(inner_out[inner_pos], labels)
                     if inner_pos < len(inner_out) else "")
            inner_pos += 1
        out_slots.append(Slot(kind, describe(o), inner, o.dtype))
    return out_slots


def _inner_text(op, labels) -> str:
    """``dprint`` of the inner graph with inner inputs renamed after their outer meaning."""
    replace = {iv: iv.type(name=label) for iv, label in labels.items()}
    outs = inner_outputs_with(op, replace)
    return pytensor.dprint(outs, file="str", print_type=False)


def _params(node) -> list[str]:
    found = [v.name for v in ancestors([resolve_binding(v) for v in node.inputs])
             if isinstance(v, SharedVariable) and v.name]
    return sorted(set(found))


def summarize_scan(node, with_text: bool = True) -> ScanSummary:
    """A :class:`ScanSummary` of a Scan apply node (shapes filled by :func:`fill_shapes`)."""
    op = node.op
    in_slots, out_slots, labels = scan_slots(node)
    inner_nodes = op.fgraph.apply_nodes
    n_steps = node.inputs[0]
    return ScanSummary(
        name=op.name or "scan",
        role=_role(op),
        info={k: (list(v) if isinstance(v, tuple) else v) for k, v in op.info.__dict__.items()},
        n_steps=int(n_steps.data) if isinstance(n_steps, Constant) else None,
        inputs=in_slots,
        outputs=out_slots,
        inner_nodes=len(inner_nodes),
        inner_ops=op_counts(inner_nodes),
        inner_text=_inner_text(op, labels) if with_text else "",
        params=_params(node),
    )


def graph_stats(fgraph, stage: str, with_text: bool = True) -> GraphStats:
    """Counts and Scan summaries of ``fgraph``.

    Nodes are counted with ``OpFromGraph(inline=True)`` ops expanded (PyTensor inlines
    them first thing when compiling); Scans inside any OpFromGraph are listed too.
    """
    nodes = expanded_nodes(fgraph)
    bindings = {}
    scans = scan_nodes(fgraph, bindings)
    OFG_BINDINGS.clear()
    OFG_BINDINGS.update(bindings)
    try:
        summaries = [summarize_scan(n, with_text) for n in scans]
    finally:
        OFG_BINDINGS.clear()
    forward_outs = {}
    for node, summary in zip(scans, summaries):
        if summary.role == "forward":
            for o in node.outputs:
                forward_outs[o] = summary
    for node, summary in zip(scans, summaries):
        if summary.role == "gradient":
            for v in ancestors(node.inputs):
                if v in forward_outs:
                    forward_outs[v].read_by_gradient = True
    return GraphStats(stage, len(nodes), op_counts(nodes), summaries)
