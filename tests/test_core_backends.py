"""Every installed backend gives the same numbers; inputs are checked; memory across steps."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn import cells, losses, optim
from scanrnn.compile import BackendError, installed_backends
from scanrnn.recurrent import unroll

BACKENDS = installed_backends()


def _training_graph(dtype, V=6, H=5, T=7, B=3, static=True, first="gru"):
    """``first`` (GRU or LSTM) then an LSTM, clipped Adam: loss, grad norm, updates."""
    with pytensor.config.change_flags(floatX=dtype):
        gru = cells.make_cell(first, V, H, name=f"{first}_1")
        lstm = cells.make_cell("lstm", H, H, name="lstm")
        p1, p2 = gru.init_params(0), lstm.init_params(1)
        W_y = scanrnn.init.glorot_uniform((H, V), name="W_y", rng=2)
        shape = (T, B) if static else (None, None)
        x = pt.tensor("x", shape=shape, dtype="int32")
        y = pt.tensor("y", shape=shape, dtype="int32")
        h1, _ = unroll(gru, x, p1)
        h2, _ = unroll(lstm, h1, p2)
        loss = losses.cross_entropy(pt.dot(h2, W_y), y)
        params = [*p1.values(), *p2.values(), W_y]
        grads, norm = optim.clip_by_global_norm(pt.grad(loss, params), 0.5)
        updates = optim.adam(grads, params, 0.01)
    return x, y, loss, norm, params, updates


def _run(graph, backend, steps=3):
    """Reset the graph's parameters and optimizer state, compile on ``backend``, train."""
    x, y, loss, norm, params, updates, initial = graph
    for var, value in initial.items():
        var.set_value(value.copy())
    f = scanrnn.function([x, y], [loss, norm], updates=updates, backend=backend)
    rng = np.random.default_rng(0)
    history = []
    for _ in range(steps):
        X = rng.integers(0, 6, size=(7, 3))
        history.append(f(X, np.roll(X, 1, axis=0)))
    return np.array(history), [np.asarray(p.get_value()) for p in params]


@pytest.mark.parametrize("dtype,tol,first", [("float64", 1e-8, "gru"), ("float32", 1e-5, "lstm")])
def test_every_backend_gives_the_same_losses_and_parameters(dtype, tol, first):
    """ONE symbolic graph compiled on every backend in turn.

    Compiling the same graph again on another backend used to fail for two LSTM layers
    (PyTensor rewrites Scan inner graphs in place; see compile._with_private_inner_graphs).
    """
    x, y, loss, norm, params, updates = _training_graph(dtype, first=first)
    initial = {v: np.asarray(v.get_value()).copy() for v in updates}
    graph = (x, y, loss, norm, params, updates, initial)
    reference_losses, reference_params = _run(graph, "python")
    assert reference_losses.dtype == np.dtype(dtype)
    for backend in BACKENDS:
        if backend == "python":
            continue
        got_losses, got_params = _run(graph, backend)
        np.testing.assert_allclose(got_losses, reference_losses, rtol=tol, atol=tol,
                                   err_msg=f"{backend} losses ({dtype})")
        for got, want in zip(got_params, reference_params):
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol,
                                       err_msg=f"{backend} parameters ({dtype})")


@pytest.mark.skipif("jax" not in BACKENDS, reason="JAX not installed")
def test_jax_compiles_one_function_per_shape_signature():
    x, y, loss, norm, params, updates = _training_graph("float32", static=False)
    f = scanrnn.function([x, y], loss, backend="jax")
    a = f(np.zeros((7, 3), int), np.zeros((7, 3), int))
    f(np.zeros((4, 2), int), np.zeros((4, 2), int))
    b = f(np.zeros((7, 3), int), np.zeros((7, 3), int))
    assert len(f.compiled) == 2
    assert a == b


@pytest.mark.skipif(not {"jax", "python"} <= set(BACKENDS), reason="needs JAX")
def test_parameters_move_between_jax_and_other_backends():
    x, y, loss, norm, params, updates = _training_graph("float32")
    step_jax = scanrnn.function([x, y], loss, updates=updates, backend="jax")
    step_py = scanrnn.function([x, y], loss, updates=updates, backend="python")
    X = np.arange(21).reshape(7, 3) % 6
    step_jax(X, X)
    assert not isinstance(params[0].get_value(borrow=True), np.ndarray)  # a JAX array now
    step_py(X, X)  # must convert, not crash
    step_jax(X, X)
    assert np.isfinite(np.asarray(params[0].get_value())).all()


def test_memory_task_needs_the_recurrent_state():
    """Predict the symbol seen 2 steps earlier: without memory the best loss is ln(4)."""
    K, T, B, H = 4, 12, 32, 32
    cell = cells.make_cell("tanh", K, H, name="memory_rnn")
    params = cell.init_params(0)
    W_y = scanrnn.init.glorot_uniform((H, K), name="W_y")
    b_y = scanrnn.init.zeros((K,), name="b_y")
    x = pt.tensor("x", shape=(T, B), dtype="int32")
    y = pt.tensor("y", shape=(T, B), dtype="int32")
    hs, _ = unroll(cell, x, params)
    loss = losses.cross_entropy(pt.dot(hs[2:], W_y) + b_y, y[2:])
    all_params = [*params.values(), W_y, b_y]
    step = scanrnn.function([x, y], loss, updates=optim.adam(loss, all_params, 0.01))
    rng = np.random.default_rng(0)
    for _ in range(300):
        X = rng.integers(0, K, size=(T, B))
        last = float(step(X, np.roll(X, 2, axis=0)))
    assert last < 0.3 < np.log(K)


def test_bad_inputs_name_the_problem():
    x = pt.tensor("tokens", shape=(5, 2), dtype="int32")
    h = pt.tensor("h0", shape=(None, 3), dtype="float32")
    f = scanrnn.function([x, h], x.sum() + h.sum(), backend="jax")
    with pytest.raises(ValueError, match=r"\('tokens'\) expects int32 values, got float64"):
        f(np.zeros((5, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\('tokens'\) expects shape \(5, 2\), got \(4, 2\)"):
        f(np.zeros((4, 2), int), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\('h0'\) expects a 2-D array.*got a 1-D array"):
        f(np.zeros((5, 2), int), np.zeros(3))
    with pytest.raises(TypeError, match=r"takes 2 argument\(s\) \(tokens, h0\), got 1"):
        f(np.zeros((5, 2), int))
    with pytest.raises(BackendError, match="unknown backend 'tensorflow'; choose one of: auto"):
        scanrnn.function([x], x.sum(), backend="tensorflow")
    assert float(f(np.ones((5, 2), np.int64), np.ones((2, 3)))) == 16.0
    big = np.ones((5, 2), np.int64)
    big[3, 1] = 2**40  # int32 would wrap it to 0
    with pytest.raises(ValueError, match=r"\('tokens'\) is int32, which holds values from "
                                         r"-2147483648 to 2147483647; got values from 1 to 1099"):
        f(big, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\('h0'\) is float32.*got values from 1.0 to 1e\+39"):
        f(np.ones((5, 2), int), np.array([[1.0, 1e39, np.inf]] * 2))


def test_outputs_none_compiles_an_update_only_function_and_bad_outputs_are_named():
    s = pytensor.shared(np.float32(0.0), name="s")
    step = scanrnn.function([], None, updates={s: s + 1}, backend="python")
    assert step() == [] and step() == []
    assert float(s.get_value()) == 2.0
    x = pt.fvector("x")
    with pytest.raises(ValueError, match=r"output 1 must be a symbolic variable .* got 3"):
        scanrnn.function([x], [x.sum(), 3])


def test_backends_report():
    info = scanrnn.backends()
    assert info["installed"] == BACKENDS and info["default"] in BACKENDS
    assert info["floatX"] == "float32"
    assert "pytensor" in info["versions"]
    if "jax" in BACKENDS:
        assert info["default"] == "jax" and info["jax_devices"]
