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
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.compile.mode import Mode
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.traversal import ancestors, graph_inputs
from pytensor.scan.op import Scan
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.rewriting.shape import ShapeFeature

from ..pytensor_compat import inferred_shape, inner_outputs_with

__all__ = [
    "KIND_NOTES",
    "GraphStats",
    "ScanSummary",
    "Slot",
    "compare_scans",
    "describe",
    "graph_stats",
    "op_counts",
    "op_key",
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


# -- naming ------------------------------------------------------------------------------
def op_key(op) -> str:
    """A short op type: ``Dot``, ``Scan``, ``Elemwise{Add}``, ``Elemwise{Composite}``."""
    if isinstance(op, Elemwise):
        return f"Elemwise{{{type(op.scalar_op).__name__}}}"
    return type(op).__name__


def op_label(op, width: int = 48) -> str:
    """``str(op)`` shortened to ``width`` characters (Scans as ``Scan{name}``)."""
    if isinstance(op, Scan):
        return f"Scan{{{op.name}}}"
    text = str(op)
    return text if len(text) <= width else text[: width - 3] + "..."


def op_counts(nodes) -> dict:
    """``{op_key: count}``, most frequent first."""
    counts = Counter(op_key(n.op) for n in nodes)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


# Inner inputs of the OpFromGraph nodes being looked into -> the outer variables bound to
# them, so a Scan inside an OpFromGraph is described in terms of the outer graph.
_BINDINGS: dict = {}


def _resolve(var):
    for _ in range(8):
        if var.owner is not None or var not in _BINDINGS:
            break
        var = _BINDINGS[var]
    return var


def describe(var, depth: int = 2) -> str:
    """A short readable name for ``var``: its name, a constant, or ``Op(args)``."""
    var = _resolve(var)
    if var.name:
        return var.name
    if isinstance(var, Constant):
        data = np.asarray(var.data)
        return repr(data.item()) if data.size == 1 else f"const{list(data.shape)}"
    owner = var.owner
    if owner is None:
        return f"<{var.type}>"
    if isinstance(owner.op, Scan):
        return f"{owner.op.name}.out{owner.outputs.index(var)}"
    label = op_label(owner.op, 28)
    if depth <= 0:
        return label
    args = [describe(i, depth - 1) for i in owner.inputs if not isinstance(i, Constant)][:3]
    return f"{label}({', '.join(args)})"


VIEW_OPS = ("Subtensor", "ExpandDims", "DimShuffle", "SpecifyShape", "MatrixTranspose",
            "Squeeze", "IncSubtensor", "AllocEmpty")
SHAPE_OPS = ("Shape", "Shape_i", "SpecifyShape")


def root_name(var, limit: int = 6) -> str | None:
    """The first named variable found walking up from ``var``.

    The walk does not enter Scans (their outputs are named ``scan.outK``) nor shape
    computations (a zero buffer shaped like ``W`` is not ``W``).
    """
    frontier, seen = [var], set()
    for _ in range(limit):
        nxt = []
        for v in frontier:
            if id(v) in seen:
                continue
            seen.add(id(v))
            v = _resolve(v)
            if v.name and not isinstance(v, Constant):
                name = v.name
                return name.removesuffix("[0:]")
            if v.owner is None:
                continue
            if isinstance(v.owner.op, Scan):
                return describe(v)
            kind = op_key(v.owner.op)
            if kind in ("Shape", "Shape_i"):
                continue
            if kind in ("Elemwise{Second}", "Alloc"):    # fill(shape-like, value)
                nxt.append(v.owner.inputs[1 if kind == "Elemwise{Second}" else 0])
                continue
            nxt.extend(v.owner.inputs)
        frontier = nxt
    return None


def is_view_of_input(var, limit: int = 8) -> bool:
    """True if ``var`` is an input or a Scan output seen through slicing / reshaping only."""
    for _ in range(limit):
        var = _resolve(var)
        if var.owner is None or isinstance(var.owner.op, Scan):
            return True
        if type(var.owner.op).__name__ not in VIEW_OPS:
            return False
        data_inputs = [i for i in var.owner.inputs if not isinstance(i, Constant)
                       and getattr(i.type, "ndim", 0) > 0]
        if not data_inputs:
            return True
        var = data_inputs[-1] if type(var.owner.op).__name__ == "IncSubtensor" \
            else data_inputs[0]
    return False


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


def _slots(node):
    """Outer (input slots, output slots) and the inner input labels of a Scan node."""
    op, ins, outs = node.op, list(node.inputs), list(node.outputs)
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

    def inner_desc(var):
        if var in labels:
            return labels[var]
        owner = var.owner
        if owner is None:
            return describe(var, 0)
        args = [inner_desc(i) if i in labels else op_label(i.owner.op, 16) if i.owner
                else describe(i, 0) for i in owner.inputs if not isinstance(i, Constant)][:3]
        return f"{op_label(owner.op, 24)}({', '.join(args)})"

    out_slots = []
    inner_out = list(op.inner_outputs)
    kinds = ([("mit-mot", o) for o in op.outer_mitmot_outs(outs)]
             + [("mit-sot", o) for o in op.outer_mitsot_outs(outs)]
             + [("sit-sot", o) for o in op.outer_sitsot_outs(outs)]
             + [("nit-sot", o) for o in op.outer_nitsot_outs(outs)]
             + [("untraced", o) for o in op.outer_untraced_sit_sot_outs(outs)])
    # inner outputs come in the same kind order; a mit-mot may have several per output
    inner_pos = op.info.n_mit_mot_outs
    for kind, o in kinds:
        if kind == "mit-mot":
            inner = "accumulated"
        else:
            inner = inner_desc(inner_out[inner_pos]) if inner_pos < len(inner_out) else ""
            inner_pos += 1
        out_slots.append(Slot(kind, describe(o), inner, o.dtype))
    return in_slots, out_slots, labels


def _inner_text(op, labels) -> str:
    """``dprint`` of the inner graph with inner inputs renamed after their outer meaning."""
    replace = {iv: iv.type(name=label) for iv, label in labels.items()}
    outs = inner_outputs_with(op, replace)
    return pytensor.dprint(outs, file="str", print_type=False)


def _params(node) -> list[str]:
    found = [v.name for v in ancestors([_resolve(v) for v in node.inputs])
             if isinstance(v, SharedVariable) and v.name]
    return sorted(set(found))


def summarize_scan(node, with_text: bool = True) -> ScanSummary:
    """A :class:`ScanSummary` of a Scan apply node (shapes filled by :func:`fill_shapes`)."""
    op = node.op
    in_slots, out_slots, labels = _slots(node)
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
    _BINDINGS.clear()
    _BINDINGS.update(bindings)
    try:
        summaries = [summarize_scan(n, with_text) for n in scans]
    finally:
        _BINDINGS.clear()
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


# -- shapes and memory -------------------------------------------------------------------
def _nbytes(shape, dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def fill_shapes(fgraph, stats: GraphStats, args) -> str | None:
    """Evaluate the shapes of every Scan slot in ``fgraph`` for the input values ``args``.

    ``args`` are the values of the graph's non-shared inputs, in order.  Shapes come
    from PyTensor's shape inference (``ShapeFeature``) evaluated on a clone, so no Scan
    runs.  Fills ``shape``/``nbytes`` of the slots and the byte totals of ``stats``.
    Returns an error message when the shapes could not be evaluated (else None).
    """
    try:
        clone = fgraph.clone()
        if not hasattr(clone, "shape_feature"):
            clone.attach_feature(ShapeFeature())
        feature = clone.shape_feature
        inputs = [i for i in clone.inputs if not isinstance(i, SharedVariable)]
        if len(inputs) != len(args):
            return f"expected {len(inputs)} input values, got {len(args)}"
        nodes = scan_nodes(clone)
        top = set(clone.apply_nodes)     # Scans inside OpFromGraphs are sized once inlined
        wanted, keys = [], []
        for node in nodes:
            if node not in top:
                continue
            candidates = [("n_steps", node.inputs[0])]
            for v in list(node.inputs) + list(node.outputs):
                shape = inferred_shape(feature, v)
                if shape is not None:
                    candidates.append((v, pt.stack([pt.cast(s, "int64") for s in shape])))
            for key, expr in candidates:
                if not _needs_loop(inputs, expr):   # else only known by running a Scan
                    wanted.append(expr)
                    keys.append((node, key))
        if not wanted:
            return "no shape could be inferred without running the loops"
        fn = pytensor.function(inputs, wanted, mode=Mode(linker="py", optimizer=None),
                               on_unused_input="ignore", accept_inplace=True)
        values = fn(*args)
    except Exception as exc:  # shape inference is best effort: report, don't fail
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    found = {}
    for (node, v), value in zip(keys, values):
        found.setdefault(node, {})[v] = value
    for node, summary in zip(nodes, stats.scans):
        got = found.get(node, {})
        if "n_steps" in got:
            summary.n_steps = int(got["n_steps"])
        shapes = {v: [int(s) for s in value] for v, value in got.items() if v != "n_steps"}
        _apply_shapes(node, summary, shapes)
    if any(s.per_step_bytes is None for node, s in zip(nodes, stats.scans) if node in top):
        return "some shapes are only known by running the loops"
    return None


def _needs_loop(inputs, expr) -> bool:
    from pytensor.graph.traversal import applys_between
    return any(isinstance(n.op, Scan) for n in applys_between(inputs, [expr]))


def _apply_shapes(node, summary: ScanSummary, shapes) -> None:
    op = node.op
    ins = list(node.inputs)
    outer_in = ([ins[0]] + op.outer_seqs(ins) + op.outer_mitmot(ins) + op.outer_mitsot(ins)
                + op.outer_sitsot(ins) + op.outer_untraced_sit_sot(ins) + op.outer_nitsot(ins)
                + op.outer_non_seqs(ins))
    for slot, var in zip(summary.inputs, outer_in):
        if var in shapes:
            slot.shape = shapes[var]
            slot.nbytes = _nbytes(slot.shape, var.dtype)
            if slot.kind in ("sequence",):
                slot.step_shape = slot.shape[1:]
            elif slot.kind in ("untraced", "non-sequence"):
                slot.step_shape = slot.shape
            if slot.step_shape is not None:
                slot.step_nbytes = _nbytes(slot.step_shape, var.dtype)
    outs = list(node.outputs)
    outer_out = (op.outer_mitmot_outs(outs) + op.outer_mitsot_outs(outs)
                 + op.outer_sitsot_outs(outs) + op.outer_nitsot_outs(outs)
                 + op.outer_untraced_sit_sot_outs(outs))
    traced = untraced = per_step = 0
    known = True
    for slot, var in zip(summary.outputs, outer_out):
        if var not in shapes:
            known = False
            continue
        slot.shape = shapes[var]
        slot.nbytes = _nbytes(slot.shape, var.dtype)
        slot.step_shape = slot.shape if slot.kind == "untraced" else slot.shape[1:]
        slot.step_nbytes = _nbytes(slot.step_shape, var.dtype)
        per_step += slot.step_nbytes
        if slot.kind in TRACED_KINDS:
            traced += slot.nbytes
        else:
            untraced += slot.nbytes
    if known:
        summary.traced_bytes, summary.untraced_bytes = traced, untraced
        summary.per_step_bytes = per_step


# -- before vs after ---------------------------------------------------------------------
def _kind_counts(summary: ScanSummary, side: str) -> Counter:
    slots = summary.inputs if side == "in" else summary.outputs
    return Counter(s.kind for s in slots)


def compare_scans(before: GraphStats, after: GraphStats) -> None:
    """Fill ``changes`` of each Scan in ``after`` with what rewriting did to it.

    Scans are matched by name (forward ``rnn``, gradient ``grad_of_rnn``).  Reported:
    inner nodes removed or added by op, new sequences computed outside the loop (the
    hoisted work), non-sequences no longer needed inside, states turned untraced, and
    outputs dropped.
    """
    pool = list(before.scans)
    for scan in after.scans:
        match = next((b for b in pool if b.name == scan.name and b.role == scan.role), None)
        if match is None:
            scan.changes = ["no Scan of this name before rewriting (created by a rewrite)"]
            continue
        pool.remove(match)
        changes = []
        if scan.inner_nodes != match.inner_nodes:
            changes.append(f"loop body: {match.inner_nodes} -> {scan.inner_nodes} nodes")
        b_ops, a_ops = Counter(match.inner_ops), Counter(scan.inner_ops)
        gone = b_ops - a_ops
        new = a_ops - b_ops
        if gone:
            changes.append("gone from the loop body (moved out, fused or replaced): "
                           + ", ".join(f"{k} x{v}" for k, v in gone.most_common()))
        if new:
            changes.append("new in the loop body: "
                           + ", ".join(f"{k} x{v}" for k, v in new.most_common()))
        b_seqs = [s for s in match.inputs if s.kind == "sequence"]
        a_seqs = [s for s in scan.inputs if s.kind == "sequence"]
        b_comp = [s.outer for s in b_seqs if s.computed]
        a_comp = [s.outer for s in a_seqs if s.computed]
        if len(a_seqs) != len(b_seqs):
            changes.append(f"sequences {len(b_seqs)} -> {len(a_seqs)}")
        if len(a_comp) > len(b_comp):
            changes.append(f"{len(a_comp) - len(b_comp)} sequence(s) now computed before the "
                           "loop for all steps at once (hoisted): "
                           + "; ".join(s for s in a_comp if s not in b_comp))
        b_ns = [s.inner for s in match.inputs if s.kind == "non-sequence"]
        a_ns = [s.inner for s in scan.inputs if s.kind == "non-sequence"]
        dropped = [n for n in b_ns if n not in a_ns]
        if len(a_ns) != len(b_ns):
            text = f"non-sequences {len(b_ns)} -> {len(a_ns)}"
            if dropped:
                text += f" (no longer read inside the loop: {', '.join(dropped)})"
            changes.append(text)
        bi, ai = _kind_counts(match, "in"), _kind_counts(scan, "in")
        if ai["untraced"] > bi["untraced"]:
            changes.append(f"{ai['untraced'] - bi['untraced']} traced state(s) made untraced "
                           "(only the last value is kept)")
        bo, ao = _kind_counts(match, "out"), _kind_counts(scan, "out")
        lost = [f"{k} x{bo[k] - ao[k]}" for k in ("nit-sot", "sit-sot", "mit-mot", "mit-sot")
                if ao[k] < bo[k]]
        if lost:
            changes.append("outputs dropped or converted: " + ", ".join(lost))
        if not changes:
            changes.append("unchanged")
        scan.changes = changes


def variable_label(var: Variable) -> str:
    """Name (or description) with type: ``x int32 (?, ?)``."""
    dims = ["?" if s is None else str(s) for s in getattr(var.type, "shape", ())]
    shape = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
    return f"{describe(var, 1)} {getattr(var, 'dtype', '')} {shape}"
