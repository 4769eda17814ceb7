"""A dimension of size 1 on JAX: no PyTensor rewrite tracebacks, right numbers, and the
failures still visible to scanrnn.inspect (scanrnn/quiet_rewrites.py)."""

import contextlib
import logging

import numpy as np
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn import quiet_rewrites
from scanrnn.compile import installed_backends
from scanrnn.inspect import capture_rewrites

needs_c = pytest.mark.skipif("c" not in installed_backends(), reason="no C backend")


def _lstm_and_gradient(I=5, H=4):
    cell = scanrnn.cells.LSTMCell(I, H)
    params = cell.init_params(rng=1)
    x = pt.tensor3("x")
    hs, _ = scanrnn.unroll(cell, x, params)
    loss = (hs ** 2).sum()
    return x, [loss, *pt.grad(loss, list(params.values()))]


@needs_c
@pytest.mark.parametrize("shape,I,H", [((4, 1, 5), 5, 4), ((3, 2, 1), 1, 1)])
def test_a_size_one_dimension_compiles_quietly_and_right(caplog, shape, I, H):
    """Batch 1 (an LSTM and its gradient logged 214 lines of tracebacks), and input and
    hidden size 1 (the C backend refused to compile it: "Inconsistency in the inner graph
    of scan"): nothing logged, the numbers of JAX and C agree."""
    x, outs = _lstm_and_gradient(I, H)
    value = np.random.default_rng(0).normal(size=shape).astype("float32")
    with caplog.at_level(logging.WARNING, logger="pytensor"):
        got = scanrnn.function([x], outs, backend="jax")(value)
        want = scanrnn.function([x], outs, backend="c")(value)
    failures = [r for r in caplog.records if r.name.startswith("pytensor.graph.rewriting")]
    assert not failures, caplog.text[:2000]   # (3.0.7's C backend warns about its BLAS)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-6)


def test_scanrnn_inspect_still_records_them():
    x, outs = _lstm_and_gradient()
    with capture_rewrites() as log:
        scanrnn.function([x], outs, backend="jax")(np.ones((4, 1, 5), "float32"))
    assert log.failures, "the size-1 failures should reach the capture"


@contextlib.contextmanager
def _recorded():
    """``(messages, logger)``: what PyTensor's rewrite logger emits inside the block."""
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("pytensor.graph.rewriting.basic")
    logger.addHandler(handler)
    try:
        yield records, logger
    finally:
        logger.removeHandler(handler)


def _fail(logger, exception):
    """Log a rewrite failure the way PyTensor does: inside ``except``."""
    try:
        raise exception
    except Exception:
        logger.error("Rewrite failure due to: some_rewrite")


def _logged(exception) -> list[str]:
    with _recorded() as (records, logger), quiet_rewrites.size_one_failures():
        _fail(logger, exception)
    return records


def test_only_the_size_one_failures_are_dropped():
    size_one = TypeError("The broadcast pattern of the output of scan (Tensor3(...)) is "
                         "inconsistent with the one provided in `output_info`")
    assert _logged(size_one) == []
    assert _logged(ValueError("a rewrite that is really broken")) == [
        "Rewrite failure due to: some_rewrite"]
    with quiet_rewrites.shown():
        assert _logged(size_one) == ["Rewrite failure due to: some_rewrite"]


def test_held_failures_are_kept_back_then_released():
    """A compile that succeeds logs its rewrite failures after all (release); while held
    they are not logged, and each comes with the exception the rewrite raised."""
    with _recorded() as (records, logger):
        with quiet_rewrites.held_failures() as held:
            _fail(logger, ValueError("broken"))
        assert records == [] and [str(e) for _, e in held] == ["broken"]
        quiet_rewrites.release(held)
    assert records == ["Rewrite failure due to: some_rewrite"]


@pytest.mark.parametrize("contraction_on_jax", [False, True])
def test_arguments_whose_shapes_do_not_fit_are_one_clear_error(caplog, contraction_on_jax):
    """JAX compiles per argument shape: an input size the LSTM was not built for used to log
    a rewrite traceback and then raise JAX's "No JAX conversion ... Contraction" (or, once
    data parallelism taught JAX that Op, a dot_general TypeError at the first call); now one
    ValueError names the shapes, nothing is logged, and the right shape still runs."""
    if contraction_on_jax:
        scanrnn.contract.register_jax()
    x, outs = _lstm_and_gradient(I=5, H=4)
    f = scanrnn.function([x], outs[0], backend="jax")
    with caplog.at_level(logging.WARNING, logger="pytensor"):
        with pytest.raises(ValueError, match=r"x \(3, 2, 7\).*\(3, 2, 7\) and \(5, 16\) does "
                                             r"not fit") as info:
            f(np.ones((3, 2, 7), "float32"))
    assert "Check that the arguments' shapes fit" in str(info.value)
    assert not [r for r in caplog.records if r.name.startswith("pytensor.graph.rewriting")]
    assert np.isfinite(f(np.ones((3, 2, 5), "float32")))


_BROKEN_REWRITE = """
import sys
import numpy as np, pytensor.tensor as pt, scanrnn
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.tensor.rewriting.basic import register_canonicalize

@register_canonicalize
@node_rewriter([pt.elemwise.Elemwise])
def broken(fgraph, node):  # a rewrite with a bug: PyTensor logs it and goes on
    if type(node.op.scalar_op).__name__ == "Tanh":
        raise RuntimeError("BROKEN-REWRITE")

A = pt.matrix("A", dtype="float32")
f = scanrnn.function([A], pt.tanh(A), backend=sys.argv[1])
print("result", f(np.ones((2, 2), "float32")).sum())
"""


@pytest.mark.parametrize("backend", [b for b in ("python", "jax") if b in installed_backends()])
def test_an_unrelated_rewrite_failure_is_logged_once_and_the_compile_goes_on(backend):
    """On a backend that compiles for any shapes, releasing the held failures inside the
    hold re-held each record: the compile never ended and memory grew without bound."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", _BROKEN_REWRITE, backend],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "result 3.046" in done.stdout
    assert done.stderr.count("BROKEN-REWRITE") >= 1 and "Rewrite failure" in done.stderr
