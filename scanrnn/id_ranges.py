"""The ranges that integer inputs must keep when they pick rows or classes.

An id out of range is a bug the backends answer differently: C and Python raise
``IndexError``, JAX clamps the index (XLA's gather) and computes with the wrong row, and a
target id outside a loss's classes scores 0 on every backend (``losses._pick`` compares it
with each class).  So :class:`scanrnn.compile.Function` finds, once, the integer inputs
that the graph uses as

* row ids: ``take_rows(W, ids)`` (:class:`scanrnn.contract.TakeRows`), ``W[ids]`` with
  integer arrays, or ``W[i]`` / ``W[:, i]`` with an integer scalar -- valid ids run from
  ``-V`` to ``V - 1`` for an axis of ``V`` entries;
* target classes of :mod:`scanrnn.losses` (``cross_entropy``, ``sparse_categorical_
  crossentropy``) without a ``mask`` (masked targets may mark padding with any id) --
  from 0 to ``V - 1`` for ``V`` classes;

reached from the input through ops that move its values (transposes, reshapes), slices
(``seq[:-1]`` and ``seq[1:]``, the inputs and targets of one sequence) and elementwise ops
with constants (``ids - 1``, casts) -- then the values the graph computes from the argument
are checked (compiled once, run on the host before each call) --, in the function's own
graph or as ``table[x_t]`` in a ``scan`` step over a sequence of ids (not with ``givens``),
and :func:`check` refuses a call whose ids leave those ranges, naming the input.  A size
is read from the static shape, or from a shared variable's current value through products,
softmaxes and elementwise ops; where it cannot be known before the call (a table or logits
that are inputs themselves), or the ids need more than their input (a slice by another
input), that use is not checked.  JAX arrays passed as arguments are not read back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import graph_inputs, io_toposort
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.subtensor import indices_from_subtensor

from .arguments import describe_input

__all__ = ["IdRange", "check", "find", "mark_classes"]

Size = Callable[[], "int | None"]


@dataclass(frozen=True)
class IdRange:
    """Input ``index`` must hold ids in ``[-size, size)`` (``negative``) or ``[0, size)``;
    ``part`` (when not None) computes from the argument the ids the graph uses (a slice of
    it, ``ids - 1``, ...)."""

    index: int
    size: Size
    what: str
    negative: bool
    part: Callable | None = None


def mark_classes(picked, targets, logits, num_classes=None) -> None:
    """Note on ``picked`` (a loss's fresh variable computed from them) that the integer
    ``targets`` pick classes of ``logits (..., V)``, or of ``num_classes`` when it is an
    int (:mod:`scanrnn.losses` calls this)."""
    picked.tag.scanrnn_classes = (targets, logits, num_classes)


def find(inputs, roots, givens=None) -> list[IdRange]:
    """The id ranges that integer ``inputs`` must keep for the graph of ``roots`` (none
    with ``givens``: the graph that runs is another)."""
    if givens:
        return []
    positions = {var: i for i, var in enumerate(inputs) if var.dtype.startswith(("int", "uint"))}
    if not positions:
        return []
    found = []

    def add(ids, size, what, negative):
        source, changed = _source(ids)
        index = positions.get(source)
        if index is None or size is None:
            return
        part = _part(source, ids) if changed else None
        if part is not None or not changed:
            found.append(IdRange(index, size, what, negative, part))

    for node in io_toposort(list(inputs), list(roots)):
        for axis, ids in _indexed_axes(node):
            what = "rows of a table" if axis == 0 else f"entries of axis {axis} of a table"
            add(ids, _axis_size(node.inputs[0], axis), what, True)
        for axis, ids, size in _scan_step_lookups(node):
            what = "rows" if axis == 0 else f"entries of axis {axis}"
            add(ids, size, f"{what} of a table (read in a scan step)", True)
        for var in node.outputs:
            classes = getattr(var.tag, "scanrnn_classes", None)
            if classes is not None:
                targets, logits, number = classes
                if number is None or hasattr(number, "type"):  # symbolic: from the logits
                    size = _axis_size(logits, -1)
                else:
                    size = _constant(int(number))
                add(targets, size, "classes of a loss", False)
    return found


def check(ranges: list[IdRange], inputs, args) -> None:
    """Raise ValueError when an argument holds an id outside its range."""
    for rng in ranges:
        given = array = args[rng.index]
        if not isinstance(array, np.ndarray):
            continue  # a JAX array is not read back here
        if rng.part is not None:
            try:
                array = rng.part(array)
            except Exception:  # an argument the graph cannot take either: the call says so
                continue
        size = rng.size() if array.size else None
        if size is None:
            continue
        low, high = int(array.min()), int(array.max())
        least = -size if rng.negative else 0
        if low < least or high >= size:
            bad = high if high >= size else low
            held = f"holds the id {bad}" if np.any(given == bad) else \
                f"gives the id {bad} where the graph uses it (computed from its values)"
            raise ValueError(
                f"{describe_input(inputs[rng.index], rng.index)} {held}, but each id picks "
                f"one of the {size} {rng.what}: ids must be from {least} to {size - 1}")


# Ops named rather than imported: PyTensor 3.3 has no AdvancedSubtensor1, 3.0 has both
_PICK_ROWS = ("TakeRows", "AdvancedSubtensor1", "AdvancedSubtensor")  # (table, ids, ...)
# all of the input's values, moved
_KEEP_VALUES = ("DimShuffle", "Reshape", "SpecifyShape", "ScalarFromTensor")  # (values, ...)
_SAME_SHAPE = ("Softmax", "LogSoftmax")


def _indexed_axes(node) -> list[tuple[int, object]]:
    """``(axis, ids)`` for each integer array, or symbolic integer scalar (``W[i]``), that
    ``node`` indexes its first input with."""
    name = _name(node.op)
    if name == "Subtensor":  # basic indexing: a scalar picks one entry of its axis
        entries = indices_from_subtensor(node.inputs[1:], node.op.idx_list)
        return [(axis, entry) for axis, entry in enumerate(entries)
                if not isinstance(entry, (slice, Constant))
                and entry.dtype.startswith(("int", "uint"))]
    if name not in _PICK_ROWS or len(node.inputs) < 2:
        return []
    if any(v.dtype == "bool" for v in node.inputs[1:]):
        return []  # a boolean mask takes several axes: which axis an id picks is unclear
    idx_list = getattr(node.op, "idx_list", None)
    if idx_list is None:  # TakeRows, AdvancedSubtensor1: the ids pick rows
        pairs = [(0, node.inputs[1])]
    else:
        pairs = [(axis, node.inputs[1 + entry]) for axis, entry in enumerate(idx_list)
                 if isinstance(entry, int) and 1 + entry < len(node.inputs)]
    return [(axis, ids) for axis, ids in pairs if ids.dtype.startswith(("int", "uint"))]


def _scan_step_lookups(node) -> list[tuple]:
    """``(axis, outer ids, size)`` for each lookup ``table[x_t]`` in the step of a ``Scan``
    ``node`` whose ids are a sequence's slice and whose table a non-sequence (Theano's
    ``W_e[x_t]``): the sequence's values must keep the table's range."""
    if _name(node.op) != "Scan":
        return []
    from pytensor.scan.utils import ScanArgs
    try:
        args = ScanArgs.from_node(node)
    except Exception:  # a loop this code does not know how to read: not checked
        return []
    sequences = dict(zip(args.inner_in_seqs, args.outer_in_seqs))
    tables = dict(zip(args.inner_in_non_seqs, args.outer_in_non_seqs))
    found = []
    for inner in io_toposort(node.op.inner_inputs, node.op.inner_outputs):
        for axis, ids in _indexed_axes(inner):
            source, changed = _source(ids)
            table = tables.get(inner.inputs[0])
            if source in sequences and table is not None and not changed:
                found.append((axis, sequences[source], _axis_size(table, axis)))
    return found


def _name(op) -> str:
    return type(op).__name__


def _constant(n: int) -> Size:
    return lambda: n


def _source(var):
    """``(source, changed)``: the variable whose values ``var`` is computed from alone,
    walking back through moves (transposes, reshapes), elementwise ops whose other inputs
    are constants (``ids - 1``, casts) and slices; ``changed``: whether the values differ
    from the source's (then :func:`_part` computes them from the argument)."""
    changed = False
    while var.owner is not None:
        node = var.owner
        name = _name(node.op)
        if name in _KEEP_VALUES or name == "Subtensor":
            inputs = node.inputs[:1]
            changed = changed or name == "Subtensor"
        elif isinstance(node.op, Elemwise):
            inputs = [v for v in node.inputs if not _constant_valued(v)]
            safe_cast = _name(node.op.scalar_op) in ("Cast", "Identity") \
                and np.can_cast(node.inputs[0].dtype, var.dtype, "safe")
            changed = changed or not safe_cast
        else:
            break
        if len(inputs) != 1:
            break
        var = inputs[0]
    return var, changed


def _constant_valued(var) -> bool:
    return all(isinstance(v, Constant) for v in graph_inputs([var]))


def _part(source, var) -> Callable | None:
    """numpy ``argument -> var's values``, compiled once (Python linker, no rewrites), or
    None when ``var`` needs more than ``source`` (e.g. a slice by another input)."""
    import pytensor
    from pytensor.compile.mode import Mode
    try:
        fn = pytensor.function([source], var, mode=Mode(linker="py", optimizer=None),
                               on_unused_input="ignore")
    except Exception:  # MissingInputError and the like: that use is not checked
        return None
    return lambda array: np.asarray(fn(array))


def _axis_size(var, axis: int) -> Size | None:
    """How to read the size of ``var``'s axis ``axis`` before a call, or None."""
    if var.ndim == 0:
        return None
    axis %= var.ndim
    static = var.type.shape[axis]
    if static is not None:
        return _constant(static)
    if isinstance(var, SharedVariable):
        return lambda: var.get_value(borrow=True).shape[axis]
    if var.owner is None:
        return None
    op, args = var.owner.op, var.owner.inputs
    if _name(op) in _SAME_SHAPE:
        return _axis_size(args[0], axis)
    if _name(op) == "DimShuffle":
        source = op.new_order[axis]
        return _constant(1) if source == "x" else _axis_size(args[0], source)
    if _is_product(op):
        if axis == var.ndim - 1:
            return _axis_size(args[1], -1)
        keeps_leading = _name(op) == "Dot" or getattr(op, "kind", None) == "dot_last"
        return _axis_size(args[0], axis) if keeps_leading and args[0].ndim == var.ndim \
            else None  # a batched matmul broadcasts its leading axes over both operands
    if _name(op) == "TakeRows" and axis == var.ndim - 1:
        return _axis_size(args[0], -1)
    if isinstance(op, Elemwise):
        return _broadcast_size([_axis_size(a, axis) for a in args if a.ndim == var.ndim])
    return None


def _is_product(op) -> bool:
    """``a @ b`` keeping ``a``'s leading axes: Dot, Matmul, ``contract.dot_last``."""
    if _name(op) == "Dot" or getattr(op, "kind", None) == "dot_last":
        return True
    core = getattr(op, "core_op", None)  # Blockwise(Matmul)
    return core is not None and _name(core) in ("Dot", "Matmul")


def _broadcast_size(sizes) -> Size | None:
    """An elementwise result's size: any input's that is not 1 (the others are 1 or equal)."""
    known = [s for s in sizes if s is not None]
    if not known:
        return None

    def size():
        values = [s() for s in known]
        above_one = [v for v in values if v is not None and v != 1]
        if above_one:
            return above_one[0]
        return 1 if len(known) == len(sizes) and all(v == 1 for v in values) else None
    return size
