"""Shapes and memory of a graph's Scans, from PyTensor's shape inference on example
arguments."""

from __future__ import annotations


import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.scan.op import Scan
from pytensor.tensor.rewriting.shape import ShapeFeature

from ..pytensor_compat import inferred_shape

from .analysis import TRACED_KINDS, GraphStats, ScanSummary, scan_nodes

__all__ = ["fill_shapes"]


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


