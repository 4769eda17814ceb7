"""What differs between PyTensor 3.0.7 (Python 3.11) and 3.1+ (Python 3.12/3.13).

These tests run on whichever line is installed; CI runs them on both.
"""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.builders import OpFromGraph
from pytensor.graph.fg import FrozenFunctionGraph
from pytensor.graph.traversal import applys_between
from pytensor.scan.op import Scan

import scanrnn
from scanrnn import cells
from scanrnn.compile import _with_private_inner_graphs, installed_backends
from scanrnn.recurrent import unroll
from scanrnn.pytensor_compat import (
    PYTENSOR_VERSION,
    frozen_inner_graph,
    has_mutable_inner_graph,
    inline_op_from_graph,
)


def _fused_lstm_graph():
    cell = cells.make_cell("lstm", 3, 4, name="compat")
    params = cell.init_params(0)
    x = pt.tensor("x", shape=(5, 2, 3), dtype="float32")
    hs, _ = unroll(cell, x, params, fused=True)
    return x, hs.sum(), params


def _nodes(variables):
    return list(applys_between(pytensor.graph.traversal.graph_inputs(variables), variables))


def test_the_installed_line_is_one_we_know():
    assert PYTENSOR_VERSION >= (3, 0)
    ofg = OpFromGraph([x := pt.scalar("x")], [x * 2])
    frozen = frozen_inner_graph(ofg)
    assert isinstance(frozen, FrozenFunctionGraph)
    # 3.0.7: a mutable fgraph beside a frozen copy; 3.1+: the fgraph itself is frozen.
    assert has_mutable_inner_graph(ofg) == (PYTENSOR_VERSION < (3, 1))


def test_inlining_rebuilds_the_inner_graph_on_new_inputs():
    a, b = pt.scalar("a"), pt.scalar("b")
    ofg = OpFromGraph([a, b], [a * b + 1], inline=True)
    c, d = pt.scalar("c"), pt.scalar("d")
    (out,) = inline_op_from_graph(ofg, [c, d])
    assert not any(isinstance(n.op, OpFromGraph) for n in _nodes([out]))
    f = pytensor.function([c, d], out, mode="FAST_COMPILE")
    assert float(f(3.0, 4.0)) == 13.0


def test_private_graphs_inline_the_fused_recurrence_without_warnings():
    """No ``clone_inner_graph`` FutureWarning on 3.1+, no shared mutable Scan on 3.0.7."""
    x, loss, params = _fused_lstm_graph()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = _with_private_inner_graphs([loss])
        second = _with_private_inner_graphs([loss])
    scans = [[n.op for n in _nodes(v) if isinstance(n.op, Scan)] for v in (first, second)]
    assert scans[0] and len(scans[0]) == len(scans[1])
    assert not any(isinstance(n.op, OpFromGraph) and n.op.is_inline for n in _nodes(first))
    for op_a, op_b in zip(*scans):
        if has_mutable_inner_graph(op_a):  # 3.0.7: each compilation owns its Scans
            assert op_a is not op_b and op_a.fgraph is not op_b.fgraph


@pytest.mark.parametrize("backend", [b for b in ("jax",) if b in installed_backends()])
def test_one_fused_graph_compiles_on_two_backends_in_turn(backend):
    x, loss, params = _fused_lstm_graph()
    X = np.random.default_rng(0).normal(size=(5, 2, 3)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        want = scanrnn.function([x], loss, backend="python")(X)
        got = scanrnn.function([x], loss, backend=backend)(X)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.skipif("jax" not in installed_backends(), reason="JAX is not installed")
def test_a_float64_jax_function_leaves_the_process_wide_x64_setting_alone():
    import jax
    before = bool(jax.config.jax_enable_x64)
    v, e = pt.dvector("v"), pt.dscalar("e")
    f64 = scanrnn.function([v, e], v + e, backend="jax")
    got = f64(np.ones(3), 1e-12)
    assert got.dtype == np.float64 and got[0] == 1 + 1e-12  # computed in float64
    assert bool(jax.config.jax_enable_x64) == before
    w = pt.fvector("w")
    f32 = scanrnn.function([w], w * 2, backend="jax")
    assert f32(np.ones(3, dtype="float32")).dtype == np.float32
    assert f64(np.ones(3), 1e-12)[0] == 1 + 1e-12
    assert bool(jax.config.jax_enable_x64) == before


def test_inferred_shapes_are_read_without_deprecation_warnings():
    from pytensor.graph.fg import FunctionGraph
    from pytensor.tensor.rewriting.shape import ShapeFeature

    from scanrnn.pytensor_compat import inferred_shape

    x = pt.matrix("x")
    y = pt.concatenate([x, x], axis=0).T
    fgraph = FunctionGraph([x], [y], clone=False)
    fgraph.attach_feature(ShapeFeature())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shape = inferred_shape(fgraph.shape_feature, y)
        assert inferred_shape(fgraph.shape_feature, x.sum()) is None
    f = pytensor.function([x], list(shape), mode="FAST_COMPILE")
    assert [int(s) for s in f(np.zeros((2, 3), dtype=x.dtype))] == [3, 4]


def _scan_shape_inferences(layers: int) -> int:
    """How many times Scan.infer_shape runs while a ShapeFeature reads the gradient graph
    of ``layers`` stacked RNN layers (plain scans, not fused)."""
    from pytensor.graph.fg import FunctionGraph
    from pytensor.tensor.rewriting.shape import ShapeFeature

    from scanrnn.pytensor_compat import inferred_shape

    x = pt.tensor3("x")
    h, params = x, []
    for i in range(layers):
        cell = cells.RNNCell(3, 3, name=f"rnn{i}")
        p = cell.init_params(np.random.default_rng(i))
        params += list(p.values())
        h, _ = unroll(cell, h, p, fused=False)
    grads = pytensor.grad((h ** 2).sum(), params)
    calls = []
    original = Scan.infer_shape

    def counting(self, fgraph, node, input_shapes):
        calls.append(node)
        return original(self, fgraph, node, input_shapes)

    Scan.infer_shape = counting
    try:
        fgraph = FunctionGraph([x, *params], grads, clone=True)
        fgraph.attach_feature(ShapeFeature())
        for node in fgraph.toposort():          # 3.1+ infers only when asked
            if isinstance(node.op, Scan):
                for out in node.outputs:
                    inferred_shape(fgraph.shape_feature, out)
    finally:
        Scan.infer_shape = original
    return len(calls)


@pytest.mark.skipif(PYTENSOR_VERSION >= (3, 1), reason="PyTensor 3.1+ infers Scan shapes "
                    "lazily, in terms of the inner inputs: nothing to make linear")
def test_shape_inference_through_scans_grows_linearly_with_depth():
    """PyTensor 3.0.7 re-inferred every earlier Scan for each later one (5 inferences for
    2 layers, 69 for 6: a 12-layer model compiled for many minutes);
    pytensor_compat.use_linear_shape_inference gives it 3.1+'s way. Each layer adds a
    forward and a gradient Scan: so many inferences, not more."""
    small, large = _scan_shape_inferences(2), _scan_shape_inferences(6)
    assert large - small == 2 * (6 - 2), (small, large)


def test_linear_shape_inference_gives_the_same_shapes():
    from pytensor.compile.builders import infer_shape

    from scanrnn.pytensor_compat import _infer_shape_with_stand_ins

    a, b = pt.matrix("a"), pt.vector("b")
    out = pt.concatenate([a, a], axis=0) * b          # (2 n, m)
    outer = pt.matrix("outer")
    shapes = [(outer.shape[0] + 1, outer.shape[1]), (outer.shape[1],)]
    for fn in (infer_shape, _infer_shape_with_stand_ins(infer_shape)):
        [shape] = fn([out], [a, b], shapes)
        f = pytensor.function([outer], list(shape), mode="FAST_COMPILE")
        assert [int(s) for s in f(np.zeros((4, 5), dtype=outer.dtype))] == [10, 5]


@pytest.mark.skipif("jax" not in installed_backends(), reason="JAX not installed")
def test_uint32_constants_beyond_int32_run_on_jax():
    """PyTensor's JAX linker passes 0-d constants as Python ints, which JAX refuses beyond
    int32 (plain ``pytensor.function(..., mode="JAX")`` fails on this graph: two dropout
    keys share the seed's hash, which then stands alone); scanrnn keeps them as NumPy
    scalars, with the same values as the Python backend."""
    from scanrnn.random import stream_key

    rng = pt.vector("rng", dtype="uint32")
    keys = [stream_key(rng, 1), stream_key(rng, 2)]
    state = np.array([3, 7], dtype=np.uint32)
    got = scanrnn.function([rng], keys, backend="jax")(state)
    want = scanrnn.function([rng], keys, backend="python")(state)
    assert [np.asarray(g).dtype for g in got] == [np.uint32, np.uint32]
    assert [int(g) for g in got] == [int(w) for w in want] and int(got[0]) != int(got[1])
