"""What differs between the PyTensor lines scanrnn supports, in one place.

scanrnn runs on PyTensor 3.0.7 (the newest release for Python 3.11) and on the
3.1+ line that pip resolves on Python 3.12 and 3.13 (tested up to 3.3.8).  The
differences that matter to scanrnn:

* **Inner graphs.**  On 3.0.7 the inner graph of a ``Scan`` or ``OpFromGraph``
  (``op.fgraph``) is a mutable ``FunctionGraph`` that compilation rewrites in
  place, so one op must not be shared by two compilations; an ``OpFromGraph``
  keeps a frozen copy beside it (``op._frozen_fgraph``).  From 3.1 on, inner
  graphs are immutable ``FrozenFunctionGraph`` objects (``op.fgraph`` itself)
  whose nodes cannot be cloned one by one, and sharing an op is safe.
  :func:`frozen_inner_graph`, :func:`has_mutable_inner_graph`,
  :func:`inline_op_from_graph`, :func:`clone_node` and :func:`inner_outputs_with`
  hide the difference; each decides from the op it is given, not from a version.
* **Inferred shapes.**  3.0.7's ``ShapeFeature`` keeps them in the dict
  ``shape_of``; 3.1+ computes them on demand and deprecates ``shape_of``:
  :func:`inferred_shape`.
* **Shape inference through inner graphs.**  3.0.7's ``builders.infer_shape`` (used
  by ``Scan.infer_shape`` and ``OpFromGraph.infer_shape``) imports the whole outer
  graph behind the input shapes into a fresh ``ShapeFeature``, which infers every
  earlier Scan again: compiling a model of L layers took time growing much faster than
  L (and a deep one hit the recursion limit).  3.1+ infers in terms of the inner
  inputs and substitutes the outer shapes afterwards.  :func:`use_linear_shape_inference`
  gives 3.0.7 the same behaviour (same shapes, no outer graph imported).
* **Wide integer constants on JAX** (both lines).  The JAX linker turns every 0-d
  constant into a Python number, and JAX (without 64-bit mode) refuses a Python int
  beyond int32, so an elementwise op that reads a lone uint32 constant >= 2**31 (the
  hash multipliers of :mod:`scanrnn.random`, when fusion leaves one on its own) failed at
  the first call.  :func:`keep_wide_integer_constants` keeps such constants as NumPy
  uint32 scalars.
* **Deprecated keywords.**  3.1+ warns (``FutureWarning``) when
  ``clone_inner_graph(s)`` is passed; :func:`clone_node` passes it only where it
  still means something.
"""

from __future__ import annotations

import numpy as np
import pytensor
from pytensor.graph.fg import FrozenFunctionGraph
from pytensor.graph.op import HasInnerGraph

PYTENSOR_VERSION = tuple(int(p) for p in pytensor.__version__.split(".")[:2] if p.isdigit())


def frozen_inner_graph(op) -> FrozenFunctionGraph:
    """The immutable inner graph of an ``OpFromGraph`` (or ``Scan``) on either line."""
    graph = op.fgraph
    if isinstance(graph, FrozenFunctionGraph):
        return graph
    frozen = getattr(op, "_frozen_fgraph", None)  # PyTensor 3.0.7's OpFromGraph
    return frozen if frozen is not None else graph.freeze()


def has_mutable_inner_graph(op) -> bool:
    """True when ``op`` holds an inner graph that compilation may rewrite in place."""
    return isinstance(op, HasInnerGraph) and not isinstance(op.fgraph, FrozenFunctionGraph)


def inline_op_from_graph(op, inputs) -> list:
    """The outputs of ``op``'s inner graph rebuilt on ``inputs`` (fresh nodes).

    This is what PyTensor's own ``inline_ofg_expansion`` rewrite does, done
    before compilation so that each compilation owns the nodes it rewrites.
    """
    frozen = frozen_inner_graph(op)
    return frozen.bind(dict(zip(frozen.inputs, inputs)))


def clone_node(node, inputs):
    """A copy of ``node`` on ``inputs`` that shares no mutable inner graph with it."""
    if has_mutable_inner_graph(node.op):
        return node.clone_with_new_inputs(list(inputs), clone_inner_graph=True)
    return node.clone_with_new_inputs(list(inputs))


def inner_outputs_with(op, replace: dict) -> list:
    """``op``'s inner outputs rebuilt with some inner inputs replaced (``{inner input: new}``).

    ``clone_replace`` walks a graph node by node, which frozen inner graphs (3.1+)
    do not allow; their ``bind`` does the same in one call.
    """
    graph = op.fgraph
    if isinstance(graph, FrozenFunctionGraph):
        return graph.bind({i: replace.get(i, i) for i in graph.inputs})
    from pytensor.graph.replace import clone_replace
    return clone_replace(list(op.inner_outputs), replace=replace)


def inferred_shape(shape_feature, var):
    """The shape ``ShapeFeature`` inferred for ``var`` (a tuple of scalars), or ``None``.

    3.0.7 keeps the inferred shapes in the dict ``shape_of``; 3.1+ computes them on
    demand with ``shape_tuple`` and deprecates ``shape_of`` (a ``DeprecationWarning``),
    while 3.0.7's ``shape_tuple`` ignores what was inferred.
    """
    if getattr(var.type, "ndim", 0) == 0:
        return None
    if isinstance(getattr(type(shape_feature), "shape_of", None), property):
        return shape_feature.shape_tuple(var)
    return shape_feature.shape_of.get(var)


def _infer_shape_with_stand_ins(original):
    """``builders.infer_shape`` that sees no outer graph: each non-constant input shape
    entry is replaced by a fresh root variable, and the outer entries are put back into
    the resulting output shapes."""
    from pytensor.graph.basic import Constant, Variable
    from pytensor.graph.replace import clone_replace

    def infer_shape(outs, inputs, input_shapes):
        outer_of = {}
        local_shapes = []
        for shape in input_shapes:
            if shape is None:
                local_shapes.append(None)
                continue
            dims = []
            for dim in shape:
                if isinstance(dim, Variable) and not isinstance(dim, Constant) \
                        and dim.owner is not None:
                    stand_in = dim.type()
                    outer_of[stand_in] = dim
                    dim = stand_in
                dims.append(dim)
            local_shapes.append(tuple(dims))
        shapes = original(outs, inputs, local_shapes)
        flat = [d for shape in shapes if shape is not None for d in shape]
        symbolic = [d for d in flat if isinstance(d, Variable)]
        outer = dict(zip(symbolic, clone_replace(symbolic, replace=outer_of))) \
            if symbolic and outer_of else {}
        return [None if shape is None else tuple(outer.get(d, d) for d in shape)
                for shape in shapes]

    infer_shape.scanrnn_stand_ins = True
    return infer_shape


def use_linear_shape_inference() -> bool:
    """On PyTensor 3.0.x, make Scan/OpFromGraph shape inference ignore the outer graph
    (see the module docstring); compile time then grows linearly with depth.  Returns
    whether it changed anything (False on 3.1+, or when already done)."""
    if PYTENSOR_VERSION >= (3, 1):
        return False
    import importlib

    builders = importlib.import_module("pytensor.compile.builders")
    scan_op = importlib.import_module("pytensor.scan.op")   # pytensor.scan is a function
    if getattr(builders.infer_shape, "scanrnn_stand_ins", False):
        return False
    patched = _infer_shape_with_stand_ins(builders.infer_shape)
    builders.infer_shape = patched
    scan_op.infer_shape = patched
    return True


def jax_dispatch():
    """``pytensor.link.jax.dispatch``, imported leaving JAX's process-wide
    ``jax_enable_x64`` as the user set it (PyTensor's import sets it from ``floatX``,
    which turned off the user's own 64-bit JAX code; scanrnn's functions trace and run
    in the setting their graph needs, :func:`scanrnn.compile._jax_x64`)."""
    import sys

    import jax
    if "pytensor.link.jax.dispatch" in sys.modules:
        return sys.modules["pytensor.link.jax.dispatch"]
    x64 = bool(jax.config.jax_enable_x64)
    try:
        import pytensor.link.jax.dispatch as dispatch
    finally:
        jax.config.update("jax_enable_x64", x64)
    return dispatch


def keep_wide_integer_constants() -> None:
    """Make the JAX linker keep 0-d unsigned constants of up to 32 bits beyond int32 as
    NumPy scalars of their dtype (``np.uint32(0x85EBCA6B)``) instead of Python ints JAX
    cannot convert.  Idempotent; every other constant is converted as before (a wider
    int64/uint64 one still fails loudly rather than being cut to 32 bits)."""
    jax_dispatch()
    from pytensor.link.jax.dispatch.basic import jax_typify

    original = jax_typify.dispatch(np.ndarray)
    if getattr(original, "keeps_wide_integers", False):
        return

    def typify_ndarray(data, dtype=None, **kwargs):
        if (data.ndim == 0 and data.dtype.kind == "u" and data.dtype.itemsize <= 4
                and int(data) >= 2 ** 31):
            return data[()]
        return original(data, dtype=dtype, **kwargs)

    typify_ndarray.keeps_wide_integers = True
    jax_typify.register(np.ndarray)(typify_ndarray)
