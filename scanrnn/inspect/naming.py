"""Readable names for ops and variables in graph reports."""

from __future__ import annotations

from collections import Counter

import numpy as np
from pytensor.graph.basic import Constant, Variable
from pytensor.scan.op import Scan
from pytensor.tensor.elemwise import Elemwise


__all__ = ["describe", "op_counts", "op_key", "op_label", "variable_label"]


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
OFG_BINDINGS: dict = {}


def resolve_binding(var):
    for _ in range(8):
        if var.owner is not None or var not in OFG_BINDINGS:
            break
        var = OFG_BINDINGS[var]
    return var


def describe(var, depth: int = 2) -> str:
    """A short readable name for ``var``: its name, a constant, or ``Op(args)``."""
    var = resolve_binding(var)
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
            v = resolve_binding(v)
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
        var = resolve_binding(var)
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


def variable_label(var: Variable) -> str:
    """Name (or description) with type: ``x int32 (?, ?)``."""
    dims = ["?" if s is None else str(s) for s in getattr(var.type, "shape", ())]
    shape = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
    return f"{describe(var, 1)} {getattr(var, 'dtype', '')} {shape}"
