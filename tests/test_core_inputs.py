"""The core's inputs are checked where a mistake is made: ``unroll``'s sequence, states,
parameters and mask, a cell's sizes, a clip norm (each used to fail deep inside PyTensor or
JAX, or -- a float (T, B) input, a negative clip norm -- to compute something wrong)."""

import numpy as np
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn import cells, optim
from scanrnn.keras import optimizers as keras_optimizers
from scanrnn.recurrent import unroll


@pytest.fixture
def lstm():
    cell = cells.LSTMCell(3, 4)
    return cell, cell.init_params(rng=1)


@pytest.mark.parametrize("make_x,message", [
    (lambda: pt.matrix("m"), "must hold integer token ids"),
    (lambda: pt.itensor3("i"), "must hold floats"),
    (lambda: pt.tensor4("x4"), "ndim=4"),
    (lambda: pt.tensor("x7", shape=(None, None, 7), dtype="float32"),
     "7 features per step, the lstm cell's input_size is 3"),
])
def test_a_wrong_sequence_is_named(lstm, make_x, message):
    cell, params = lstm
    with pytest.raises(ValueError, match=message):
        unroll(cell, make_x(), params)


def test_a_numpy_sequence_is_taken_as_a_constant(lstm):
    cell, params = lstm
    value = np.random.default_rng(0).normal(size=(2, 2, 3)).astype("float32")
    hs, _ = unroll(cell, value, params)
    x = pt.tensor3("x")
    same, _ = unroll(cell, x, params)
    np.testing.assert_allclose(scanrnn.function([], hs, backend="python")(),
                               scanrnn.function([x], same, backend="python")(value), rtol=1e-6)


@pytest.mark.parametrize("params_of,message", [
    (lambda: cells.GRUCell(3, 4).init_params(rng=0), r"params\['W_x'\] has shape \(3, 12\)"),
    (lambda: cells.LSTMCell(5, 4).init_params(rng=0), r"has shape \(5, 16\)"),
    (lambda: {k: v for k, v in cells.LSTMCell(3, 4).init_params(rng=0).items() if k != "b"},
     "params lack b"),
])
def test_another_cells_parameters_are_refused(lstm, params_of, message):
    cell, _ = lstm
    with pytest.raises(ValueError, match=message):
        unroll(cell, pt.tensor3("x"), params_of())


def test_states_and_mask_of_the_wrong_rank_are_refused(lstm):
    cell, params = lstm
    x = pt.tensor3("x")
    with pytest.raises(ValueError, match=r"initial_state\[0\] must be a \(B, 4\) matrix"):
        unroll(cell, x, params, initial_state=[pt.vector(), pt.vector()])
    with pytest.raises(ValueError, match=r"initial_state\[1\] must be a \(B, 4\) matrix"):
        unroll(cell, x, params, initial_state=[pt.matrix(), pt.tensor("c", shape=(None, 5))])
    with pytest.raises(ValueError, match="mask must be"):
        unroll(cell, x, params, mask=pt.tensor3("m"))


def test_a_cell_takes_numpy_integer_sizes_and_refuses_others():
    cell = cells.make_cell("gru", np.int64(7), np.int32(4))
    assert (cell.input_size, cell.hidden_size) == (7, 4)
    assert type(cell.input_size) is int
    for bad in (0, -1, 1.0, True, "4"):
        with pytest.raises(ValueError, match="must be a positive int"):
            cells.LSTMCell(3, bad)


@pytest.mark.parametrize("bad", [-1.0, 0, float("nan"), float("inf")])
def test_a_clip_norm_must_be_positive(bad):
    g = pt.vector("g")
    with pytest.raises(ValueError, match="max_norm must be a positive number"):
        optim.clip_by_global_norm([g], bad)
    for name in ("clipnorm", "global_clipnorm", "clipvalue"):
        with pytest.raises(ValueError, match=f"{name} must be a positive number"):
            keras_optimizers.SGD(learning_rate=0.1, **{name: bad})


def test_a_symbolic_clip_norm_still_works():
    g, limit = pt.vector("g"), pt.scalar("limit")
    (clipped,), _ = optim.clip_by_global_norm([g], limit)
    out = scanrnn.function([g, limit], clipped, backend="python")(
        np.array([3, 4], "float32"), np.float32(1.0))
    np.testing.assert_allclose(out, [0.6, 0.8], rtol=1e-6)


def test_a_contraction_of_shapes_that_do_not_fit_is_refused_when_built():
    from scanrnn.contract import dot_last, sum_outer
    a = pt.tensor3("a", shape=(3, 2, 7))
    with pytest.raises(ValueError, match=r"\(3, 2, 7\) and \(4, 12\) does not fit"):
        dot_last(a, pt.matrix("W", shape=(4, 12)))
    with pytest.raises(ValueError, match="leading axes"):
        sum_outer(a, pt.tensor3("b", shape=(3, 5, 4)))
    assert dot_last(a, pt.matrix("W", shape=(None, 12))).type.shape == (3, 2, 12)


BACKENDS = [b for b in ("jax", "numba", "c", "python") if b in scanrnn.installed_backends()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_mask_of_another_length_is_refused_at_the_call(lstm, backend):
    """A (T', B) mask against a (T, B, I) sequence used to cut the scan to the shorter of the
    two without a word (every backend); now the call raises one ValueError with the shapes."""
    cell, params = lstm
    x, m = pt.tensor3("x", dtype="float32"), pt.matrix("m", dtype="float32")
    hs, _ = unroll(cell, x, params, mask=m)
    f = scanrnn.function([x, m], hs.sum(), backend=backend)
    xs = np.ones((5, 2, 3), "float32")
    for short in (3, 1):
        with pytest.raises(ValueError, match=rf"x \(5, 2, 3\), m \({short}, 2\)"):
            f(xs, np.ones((short, 2), "float32"))
    assert np.isfinite(f(xs, np.ones((5, 2), "float32")))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_size_that_does_not_fit_names_the_arguments_on_every_backend(lstm, backend):
    """JAX's refusal of shapes was already one ValueError naming them; C, Numba and Python
    raised numpy's or BLAS's words alone ("gemm: operands have mismatched ...")."""
    cell, params = lstm
    x = pt.tensor3("x", dtype="float32")
    hs, _ = unroll(cell, x, params)
    good, bad = np.ones((5, 2, 3), "float32"), np.ones((5, 2, 7), "float32")
    for args in ([bad, bad, good], [good, bad]):  # bad as the first call (which may compile)
        f = scanrnn.function([x], hs.sum(), backend=backend)  # and after a good one
        for arg in args:
            if arg is good:
                assert np.isfinite(f(arg))
                continue
            with pytest.raises(ValueError, match=r"cannot (run|be compiled) on \w+ for "
                               r"arguments of shapes x \(5, 2, 7\).*Check that the arguments"):
                f(arg)


@pytest.mark.skipif("jax" not in BACKENDS, reason="JAX is not installed")
def test_theanos_sliced_givens_get_a_clear_error_on_jax_and_run_elsewhere():
    """Theano's tutorials slice a shared dataset by a symbolic index through ``givens``; JAX
    cannot compile a slice of unknown length (a raw IndexError about tracers); one ValueError
    says what to do, and the backends that take such slices run it."""
    import pytensor
    data = pytensor.shared(np.arange(40, dtype="float32").reshape(10, 4), name="data")
    index, x = pt.iscalar("index"), pt.matrix("x", dtype="float32")
    cost = (x * np.float32(2)).sum()
    givens = {x: data[index * 2:(index + 1) * 2]}
    f = scanrnn.function([index], cost, givens=givens, backend="jax")
    with pytest.raises(ValueError, match=r"slices with bounds computed from its inputs.*"
                                         r"pass the batch as an argument"):
        f(1)
    for backend in [b for b in BACKENDS if b != "jax"]:
        g = scanrnn.function([index], cost, givens=givens, backend=backend)
        assert g(1) == pytest.approx(2 * sum(range(8, 16)))


def test_float64_parameters_get_float64_zero_states_and_numpy_parameters_work():
    """The default zero states were floatX (float32) for float64 parameters: a raw scan
    dtype error; numpy arrays as parameters raised AttributeError deep in the fused op."""
    import pytensor
    cell = cells.LSTMCell(3, 4)
    arrays = cell.init_arrays(0)
    params64 = {k: pytensor.shared(v.astype("float64"), name=k) for k, v in arrays.items()}
    x64 = pt.tensor3("x", dtype="float64")
    hs, _ = unroll(cell, x64, params64)
    xs = np.random.default_rng(0).normal(size=(3, 2, 3))
    want = scanrnn.function([x64], hs, backend="python")(xs)
    np.testing.assert_allclose(scanrnn.function([x64], hs, backend=BACKENDS[0])(xs), want,
                               rtol=1e-10)
    with pytest.raises(ValueError, match=r"initial_state\[0\] is float64 but the cell's "
                                         r"parameters are float32"):
        unroll(cell, pt.tensor3("x32"), cell.init_params(rng=0),
               initial_state=[pt.dmatrix(), pt.dmatrix()])
    constants, _ = unroll(cell, x64, {k: v.astype("float64") for k, v in arrays.items()})
    np.testing.assert_allclose(scanrnn.function([x64], constants, backend="python")(xs), want,
                               rtol=1e-12)


def test_scan_and_unroll_options_are_checked():
    """A step closing over a shared variable got PyTensor's "provide it in the 'inputs'
    list" (there is none: it is non_sequences); truncate_gradient=2.7 ran as 2."""
    import pytensor
    W = pytensor.shared(np.float32(2.0), name="W")
    s = pt.vector("s", dtype="float32")
    with pytest.raises(ValueError, match=r"uses a variable it is not given \(.*W.*"
                                         r"non_sequences=\[\.\.\.\]"):
        scanrnn.scan(lambda x, h: h + x * W, sequences=[s],
                     outputs_info=[pt.constant(np.float32(0))])
    for bad in (2.7, True, "2"):
        with pytest.raises(ValueError, match="truncate_gradient must be -1"):
            scanrnn.scan(lambda x, h, w: h + x * w, sequences=[s], non_sequences=[W],
                         outputs_info=[pt.constant(np.float32(0))], truncate_gradient=bad)
    out = scanrnn.scan(lambda x, h, w: h + x * w, sequences=[s], non_sequences=[W],
                       outputs_info=[pt.constant(np.float32(0))],
                       truncate_gradient=np.int64(2))
    assert list(scanrnn.function([s], out, backend="python")(np.ones(3, "float32"))) == [2, 4, 6]


def test_function_arguments_are_checked_when_it_is_made():
    """Inputs not in a list, and updates of another dtype (reported at the first call on
    JAX, as if the arguments' shapes were wrong); a numpy update value is a constant."""
    import pytensor
    x = pt.vector("x", dtype="float32")
    with pytest.raises(ValueError, match=r"inputs must be a list .* write \[x\]"):
        scanrnn.function(x, 2 * x)
    P = pytensor.shared(np.zeros(2, "float32"), name="P")
    for backend in BACKENDS:
        with pytest.raises(ValueError, match=r"the update of P is float64 .* P is float32"):
            scanrnn.function([x], x.sum(), updates={P: P + pt.dvector("d")},
                             backend=backend)
    f = scanrnn.function([x], x.sum(), updates={P: np.ones(2)}, backend=BACKENDS[0])
    f(np.ones(2, "float32"))
    assert P.get_value().tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="must map shared variables"):
        scanrnn.function([x], x.sum(), updates={x: x + 1})


def test_optimizer_mistakes_are_named():
    from scanrnn import init, losses
    x = pt.vector("x", dtype="float32")
    used, unused = init.zeros(2, name="used"), init.zeros(2, name="unused")
    loss = ((x - used) ** 2).sum()
    with pytest.raises(ValueError, match="the loss does not depend on unused"):
        optim.sgd(loss, [used, unused])
    with pytest.raises(ValueError, match="the gradient of unused is None"):
        optim.sgd([pt.grad(loss, used), None], [used, unused])
    with pytest.raises(ValueError, match="a gradient is None"):
        optim.clip_by_global_norm([None], 1.0)
    with pytest.raises(ValueError, match="max_norm must be a positive number"):
        optim.clip_by_global_norm([x], np.array(-1.0))
    with pytest.raises(ValueError, match="the updates have no step for unused"):
        optim.apply_momentum(optim.sgd(loss, [used]), [used, unused])
    p, y = pt.matrix("p", dtype="float32"), pt.vector("y", dtype="float32")
    mse = scanrnn.function([p, y], losses.mean_squared_error(p, y), backend=BACKENDS[0])
    pred, target = np.array([[1.0], [2.0], [3.0]], "float32"), np.array([1.5, 2, 2], "float32")
    assert mse(pred, target) == pytest.approx(((pred[:, 0] - target) ** 2).mean())  # not (B, B)
