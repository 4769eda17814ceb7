"""Products of time-major tensors that keep their leading axes: what data parallelism needs.

``pt.dot`` of a ``(T, B, K)`` tensor flattens it to ``(T*B, K)`` first (PyTensor's
``tensordot``).  On one device that is free; under data parallelism the batch axis
``B`` is split over the devices, and a flattened ``T*B`` axis interleaves every
device's rows, so XLA's partitioner gathers the whole tensor onto every device
and computes the product there in full.  The two products of a recurrent layer
are therefore written with :class:`Contraction`, which JAX runs as one
``dot_general`` over the original axes (no reshape), each device on its rows:

* :func:`dot_last`  ``(..., K) @ (K, N) -> (..., N)``: projections, output layers;
* :func:`sum_outer` ``sum over the leading axes of a^T b``, ``(..., K), (..., N) ->
  (K, N)``: weight gradients (one partial sum per device, then XLA's all-reduce);
* :func:`take_rows` ``W[ids]`` for ``(T, B)`` token ids (an embedding, or a projection
  selected by id), whose gradient scatters each device's rows and all-reduces.

Every other backend, and JAX on one device, compile the plain ``pt.dot`` /
``pt.tensordot`` graph instead: the rewrite ``expand_contractions`` (registered with
PyTensor's canonicalizations, so any ``pytensor.function`` applies it) writes each
node that way; a data-parallel :func:`scanrnn.function` compiles with it excluded.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.gradient
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.scalar import upcast
from pytensor.tensor.rewriting.basic import register_canonicalize
from pytensor.tensor.type import TensorType

from . import pytensor_compat

__all__ = ["EXPAND_REWRITE", "AddRows", "Contraction", "TakeRows", "dot_last", "register_jax",
           "sum_outer", "take_rows"]

EXPAND_REWRITE = "expand_contractions"


def _check_static_sizes(kind, pairs, a_shape, b_shape):
    """Refuse contracted (or summed) axes whose known sizes differ."""
    if any(m is not None and n is not None and m != n for m, n in pairs):
        what = "last axis against the first" if kind == "dot_last" else "leading axes"
        raise ValueError(f"{kind}: a product of shapes {_shape_text(a_shape)} and "
                         f"{_shape_text(b_shape)} does not fit (the {what})")


def _shape_text(shape) -> str:
    return "(" + ", ".join("?" if n is None else str(n) for n in shape) + ")"


class Contraction(Op):
    """``kind="dot_last"``: ``x (..., K) @ W (K, N)``; ``kind="sum_outer"``:
    ``sum_{leading axes} a^T b`` for ``a (..., K)``, ``b (..., N)`` -> ``(K, N)``."""

    __props__ = ("kind",)

    def __init__(self, kind: str):
        if kind not in ("dot_last", "sum_outer"):
            raise ValueError(f"unknown contraction {kind!r}")
        self.kind = kind

    def make_node(self, a, b):
        a, b = pt.as_tensor_variable(a), pt.as_tensor_variable(b)
        dtype = upcast(a.dtype, b.dtype)
        if self.kind == "dot_last":
            if b.ndim != 2:
                raise ValueError(f"dot_last needs a matrix on the right, got {b.ndim}-D")
            _check_static_sizes(self.kind, [(a.type.shape[-1], b.type.shape[0])],
                                a.type.shape, b.type.shape)
            shape = (*a.type.shape[:-1], b.type.shape[1])
        else:
            if a.ndim != b.ndim:
                raise ValueError(f"sum_outer needs equal ranks, got {a.ndim} and {b.ndim}")
            _check_static_sizes(self.kind, zip(a.type.shape[:-1], b.type.shape[:-1]),
                                a.type.shape, b.type.shape)
            shape = (a.type.shape[-1], b.type.shape[-1])
        return Apply(self, [a, b], [TensorType(dtype, shape=shape)()])

    def perform(self, node, inputs, outputs):
        a, b = inputs
        if self.kind == "dot_last":
            result = np.tensordot(a, b, axes=1)
        else:
            lead = list(range(a.ndim - 1))
            result = np.tensordot(a, b, axes=(lead, lead))
        outputs[0][0] = np.asarray(result, dtype=node.outputs[0].dtype)

    def infer_shape(self, *args):
        """``(node, shapes)`` on PyTensor 3.1+, ``(fgraph, node, shapes)`` on 3.0."""
        a_shape, b_shape = args[-1]
        if self.kind == "dot_last":
            return [(*a_shape[:-1], b_shape[1])]
        return [(a_shape[-1], b_shape[-1])]

    def pullback(self, inputs, outputs, output_grads):
        a, b = inputs
        (g,) = output_grads
        if self.kind == "dot_last":
            return [dot_last(g, b.T), sum_outer(a, g)]
        return [dot_last(b, g.T), dot_last(a, g)]

    def expand(self, a, b):
        """The same product as PyTensor writes it (flattening the leading axes)."""
        self.make_node(a, b)  # the static sizes checked, in words
        if self.kind == "dot_last":
            return pt.dot(a, b)
        lead = list(range(a.ndim - 1))
        return pt.tensordot(a, b, axes=[lead, lead])

    def __str__(self):
        return f"Contraction{{{self.kind}}}"


class TakeRows(Op):
    """``W[ids]``: rows of ``W (V, N)`` picked by integer ``ids (...)`` -> ``(..., N)``.

    PyTensor writes ``W[ids]`` for a matrix of ids as a take of the flattened ids,
    reshaped: the flattening is what data parallelism cannot split.  Here JAX gathers
    with the ids' own axes, and the gradient (:class:`AddRows`) scatters the same way.
    """

    __props__ = ()

    def make_node(self, W, ids):
        W, ids = pt.as_tensor_variable(W), pt.as_tensor_variable(ids)
        if W.ndim != 2 or not ids.dtype.startswith(("int", "uint")):
            raise ValueError(f"take_rows needs a matrix and integer ids, got {W.type}, "
                             f"{ids.type}")
        out = TensorType(W.dtype, shape=(*ids.type.shape, W.type.shape[1]))()
        return Apply(self, [W, ids], [out])

    def perform(self, node, inputs, outputs):
        W, ids = inputs
        outputs[0][0] = np.asarray(W[ids])

    def infer_shape(self, *args):
        """``(node, shapes)`` on PyTensor 3.1+, ``(fgraph, node, shapes)`` on 3.0."""
        w_shape, ids_shape = args[-1]
        return [(*ids_shape, w_shape[1])]

    def pullback(self, inputs, outputs, output_grads):
        W, ids = inputs
        return [AddRows()(W, ids, output_grads[0]),
                pytensor.gradient.grad_undefined(self, 1, ids, "integer ids")]

    def expand(self, W, ids):
        return W[ids]


class AddRows(Op):
    """The gradient of :class:`TakeRows`: ``zeros_like(W)`` with ``g[...]`` added to row
    ``ids[...]`` (``W`` only gives the shape)."""

    __props__ = ()

    def make_node(self, W, ids, g):
        W, ids, g = (pt.as_tensor_variable(v) for v in (W, ids, g))
        return Apply(self, [W, ids, g], [W.type()])

    def perform(self, node, inputs, outputs):
        W, ids, g = inputs
        out = np.zeros_like(W)
        np.add.at(out, ids, g)
        outputs[0][0] = out

    def infer_shape(self, *args):
        """``(node, shapes)`` on PyTensor 3.1+, ``(fgraph, node, shapes)`` on 3.0."""
        return [args[-1][0]]

    def pullback(self, inputs, outputs, output_grads):
        W, ids, g = inputs
        return [pt.zeros_like(W), pytensor.gradient.grad_undefined(self, 1, ids, "integer ids"),
                TakeRows()(output_grads[0], ids)]

    def expand(self, W, ids, g):
        """PyTensor's own gradient of ``W[ids]``."""
        return pytensor.grad(None, wrt=W, known_grads={W[ids]: g})


def take_rows(W, ids):
    """``W[ids]`` for ``W (V, N)`` and integer ``ids (...)``, the ids' axes kept.

    Ids narrower than 32 bits are widened first: JAX's gather computes a negative id's row
    in the ids' own dtype, which overflows for int8 ids of a table over 127 rows."""
    ids = pt.as_tensor_variable(ids)
    if ids.dtype in ("int8", "int16", "uint8", "uint16"):
        ids = pt.cast(ids, "int32")
    return W[ids] if ids.ndim <= 1 else TakeRows()(W, ids)


def dot_last(x, W):
    """``x (..., K) @ W (K, N) -> (..., N)``, leading axes kept (a plain ``pt.dot`` for 2-D x)."""
    x = pt.as_tensor_variable(x)
    return pt.dot(x, W) if x.ndim <= 2 else Contraction("dot_last")(x, W)


def sum_outer(a, b):
    """``sum_t a_t^T b_t`` over all leading axes: ``(..., K), (..., N) -> (K, N)``."""
    a = pt.as_tensor_variable(a)
    return pt.dot(a.T, b) if a.ndim <= 2 else Contraction("sum_outer")(a, b)


@register_canonicalize
@node_rewriter([Contraction, TakeRows, AddRows])
def expand_contractions(fgraph, node):
    """A :class:`Contraction`, :class:`TakeRows` or :class:`AddRows` as PyTensor's own
    ``dot`` / ``tensordot`` / indexing graph."""
    return [node.op.expand(*node.inputs)]


_jax_registered = False


def register_jax():
    """Teach PyTensor's JAX backend to run :class:`Contraction` as one ``dot_general``."""
    global _jax_registered
    if _jax_registered:
        return
    jax_funcify = pytensor_compat.jax_dispatch().jax_funcify

    @jax_funcify.register(Contraction)
    def _jax_contraction(op, **kwargs):
        from jax import lax

        if op.kind == "dot_last":
            def contraction(a, b):
                return lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())))
        else:
            def contraction(a, b):
                lead = tuple(range(a.ndim - 1))
                return lax.dot_general(a, b, ((lead, lead), ((), ())))
        return contraction

    @jax_funcify.register(TakeRows)
    def _jax_take_rows(op, **kwargs):
        def take(W, ids):
            return W[ids]
        return take

    @jax_funcify.register(AddRows)
    def _jax_add_rows(op, **kwargs):
        import jax.numpy as jnp

        def add_rows(W, ids, g):
            return jnp.zeros_like(W).at[ids].add(g)
        return add_rows
    _jax_registered = True
