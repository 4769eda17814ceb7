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

reached from the input through ops that keep all its values (transposes, reshapes,
widening casts) or through slices with constant bounds (``seq[:-1]`` and ``seq[1:]``, the
inputs and targets of one sequence: the same slice of the argument is checked) in the
function's own graph (not inside a ``scan`` step, nor with ``givens``), and :func:`check`
refuses a call whose ids leave those ranges, naming the input.  A size is read from the
static shape, or from a shared variable's current value through products, softmaxes and
elementwise ops; where it cannot be known before the call (a table or logits that are
inputs themselves), that use is not checked.  JAX arrays passed as arguments are not read
back to be checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import io_toposort
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.subtensor import indices_from_subtensor

from .arguments import describe_input

__all__ = ["IdRange", "check", "find", "mark_classes"]

Size = Callable[[], "int | None"]


@dataclass(frozen=True)
class IdRange:
    """Input ``index`` must hold ids in ``[-size, size)`` (``negative``) or ``[0, size)``;
    ``part`` (when not None) takes from the argument the ids that are used (a slice)."""

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
        source, part = _source(ids)
        index = positions.get(source)
        if index is not None and size is not None:
            found.append(IdRange(index, size, what, negative, part))

    for node in io_toposort(list(inputs), list(roots)):
        for axis, ids in _indexed_axes(node):
            what = "rows of a table" if axis == 0 else f"entries of axis {axis} of a table"
            add(ids, _axis_size(node.inputs[0], axis), what, True)
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
        array = args[rng.index]
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
            raise ValueError(
                f"{describe_input(inputs[rng.index], rng.index)} holds the id {bad}, but each "
                f"id picks one of the {size} {rng.what}: ids must be from {least} to "
                f"{size - 1}")


# Ops named rather than imported: PyTensor 3.3 has no AdvancedSubtensor1, 3.0 has both
_PICK_ROWS = ("TakeRows", "AdvancedSubtensor1", "AdvancedSubtensor")  # (table, ids, ...)
# all of the input's values, moved
_KEEP_VALUES = ("DimShuffle", "Reshape", "SpecifyShape", "ScalarFromTensor")  # (values, ...)
# a part of them: followed when its bounds are constants, and the same part is checked
# (the rest of the input may hold ids of another table)
_REPLAYED = ("Subtensor", "DimShuffle")
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


def _name(op) -> str:
    return type(op).__name__


def _constant(n: int) -> Size:
    return lambda: n


def _source(var):
    """``(source, part)``: the variable whose values ``var`` shows, through transposes,
    reshapes, safe casts and constant slices, and None, or when slices were crossed a
    function taking from the source's argument (numpy) the values ``var`` holds."""
    chain = []
    while var.owner is not None:
        node = var.owner
        op, source = node.op, node.inputs[0]
        cast = isinstance(op, Elemwise) and _name(op.scalar_op) in ("Cast", "Identity") \
            and np.can_cast(source.dtype, var.dtype, "safe")  # a narrowing cast wraps ids
        sliced = _name(op) == "Subtensor" and all(isinstance(i, Constant)
                                                  for i in node.inputs[1:])
        if not (_name(op) in _KEEP_VALUES or cast or sliced):
            break
        chain.append(node)
        var = source
    slices = [k for k, node in enumerate(chain) if _name(node.op) == "Subtensor"]
    if not slices:
        return var, None
    # from the source to the last slice (after it, values only move: nothing to replay)
    replayed = [node for node in reversed(chain[slices[0]:])
                if _name(node.op) != "SpecifyShape" and not isinstance(node.op, Elemwise)]
    if any(_name(node.op) not in _REPLAYED for node in replayed):
        return var, None  # a reshape before a slice: its shape is an input's, unchecked
    return var, _replay(replayed)


def _replay(nodes) -> Callable:
    """numpy ``array -> array`` running ``nodes`` (slices, transposes) in order."""
    def part(array):
        for node in nodes:
            out = [[None]]
            node.op.perform(node, [array, *(i.data for i in node.inputs[1:])], out)
            array = out[0][0]
        return np.asarray(array)
    return part


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
