"""Truncated backprop through time (``truncate_gradient=k``) on every installed backend.

``pytensor.scan``'s own option fails on the JAX backend for every cell (an assertion in its
scan dispatch) and on C / Numba for the relu RNN; :mod:`scanrnn.loop` builds it as two loops
instead.  The reference is ``pytensor.scan``'s truncation on the Python backend (Theano's
semantics) where it works, and the definition itself (gradient through the last k steps only).
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn import cells, loop
from scanrnn.compile import installed_backends
from scanrnn.recurrent import unroll

BACKENDS = [b for b in installed_backends() if b != "numba"]  # numba: one case below (slow)


def _graph(kind, static, go_backwards, k=3, T=7):
    cell = cells.make_cell(kind, 3, 4)
    params = cell.init_params(rng=1)
    x = pt.tensor("x", shape=(T, 2, 3) if static else (None, None, 3), dtype="float32")
    hs, final = unroll(cell, x, params, truncate_gradient=k, go_backwards=go_backwards)
    loss = (hs ** 2).sum() + final[0].sum()
    wrt = [*params.values(), x]
    return x, [loss, *pt.grad(loss, wrt)]


def _values(T=7):
    return np.random.default_rng(0).normal(size=(T, 2, 3)).astype("float32")


def _pytensor_truncation(monkeypatch, kind, static, go_backwards):
    """The same graph with ``pytensor.scan``'s own truncation, on the Python backend."""
    with monkeypatch.context() as patch:
        patch.setattr(loop, "_can_split", lambda *args: False)
        x, outs = _graph(kind, static, go_backwards)
    return scanrnn.function([x], outs, backend="python")(_values())


def _assert_close(got, want, tol=2e-5):
    for g, w in zip(got, want):
        scale = max(float(np.abs(w).max()), 1e-6)
        assert float(np.abs(np.asarray(g) - w).max()) <= tol * scale


@pytest.mark.parametrize("kind,static,go_backwards", [
    ("tanh", True, False), ("gru", False, True), ("lstm", True, True), ("lstm", False, False)])
def test_every_backend_matches_theanos_truncation(monkeypatch, kind, static, go_backwards):
    """Loss, every parameter's gradient and the input's, against pytensor's own truncation."""
    want = _pytensor_truncation(monkeypatch, kind, static, go_backwards)
    x, outs = _graph(kind, static, go_backwards)
    for backend in BACKENDS:
        _assert_close(scanrnn.function([x], outs, backend=backend)(_values()), want)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_the_gradient_reaches_back_k_steps_only(go_backwards):
    """relu RNN (where pytensor's truncation fails on C and Numba too): the input's gradient
    is zero outside the last k steps run, nonzero inside; a loss on an early step gives no
    gradient at all."""
    cell = cells.make_cell("relu", 3, 4)
    params = cell.init_params(rng=1)
    x = pt.tensor("x", shape=(7, 2, 3), dtype="float32")
    hs, _ = unroll(cell, x, params, truncate_gradient=3, go_backwards=go_backwards)
    full, _ = unroll(cell, x, params, go_backwards=go_backwards)
    outs = [pt.grad((hs ** 2).sum(), x), pt.grad(hs[1].sum(), params["W_h"]),
            pt.grad((full ** 2).sum(), x)]
    results = {b: scanrnn.function([x], outs, backend=b)(_values()) for b in BACKENDS}
    for backend, (dx, d_early, dx_full) in results.items():
        ran_last = slice(0, 3) if go_backwards else slice(4, 7)  # steps T-3..T-1 as run
        outside = np.delete(dx, np.arange(7)[ran_last], axis=0)
        assert np.abs(outside).max() == 0.0, backend
        assert np.abs(dx[ran_last]).max() > 0 and np.abs(dx_full).max() > 0
        assert np.abs(d_early).max() == 0.0, backend
        _assert_close(dx, results["python"][0])


def test_a_sequence_no_longer_than_k_gets_the_full_gradient():
    """T <= k: plain backprop through time (static and dynamic lengths)."""
    for shape, backends in [((3, 2, 3), BACKENDS), ((None, None, 3), ["jax"])]:
        cell = cells.make_cell("lstm", 3, 4)
        params = cell.init_params(rng=1)
        x = pt.tensor("x", shape=shape, dtype="float32")
        cut, _ = unroll(cell, x, params, truncate_gradient=5)
        full, _ = unroll(cell, x, params)
        grads = [pt.grad((hs ** 2).sum(), params["W_h"]) for hs in (cut, full)]
        for backend in backends:
            g_cut, g_full = scanrnn.function([x], grads, backend=backend)(_values(3))
            np.testing.assert_allclose(g_cut, g_full, rtol=1e-6)


def test_scan_with_n_steps_and_no_sequence():
    """``scanrnn.scan`` itself: a loop given ``n_steps`` and no sequence truncates too."""
    W = pytensor.shared(np.float32(0.9), name="W")
    h0 = pt.scalar("h0", dtype="float32")
    hs = scanrnn.scan(lambda h, w: pt.tanh(w * h + 0.1), outputs_info=[h0],
                      non_sequences=[W], n_steps=6, truncate_gradient=2)
    grad = pt.grad(hs[-1], W)
    for backend in BACKENDS:
        h_values, g = scanrnn.function([h0], [hs, grad], backend=backend)(np.float32(0.5))
        h = [np.float32(0.5)]
        for _ in range(6):
            h.append(np.tanh(0.9 * h[-1] + 0.1))
        np.testing.assert_allclose(h_values, h[1:], rtol=1e-6)
        # d h6 / dW through the last two steps only, h4 held constant
        d5 = (1 - h[5] ** 2) * h[4]
        d6 = (1 - h[6] ** 2) * (h[5] + 0.9 * d5)
        np.testing.assert_allclose(g, d6, rtol=1e-5)


def test_a_bad_truncation_is_refused():
    cell = cells.make_cell("tanh", 3, 4)
    x = pt.tensor("x", shape=(5, 2, 3), dtype="float32")
    with pytest.raises(ValueError, match="truncate_gradient must be -1"):
        unroll(cell, x, cell.init_params(rng=1), truncate_gradient=0)


@pytest.mark.skipif("numba" not in installed_backends(), reason="numba is not installed")
def test_numba_truncates_the_relu_rnn():
    cell = cells.make_cell("relu", 3, 4)
    params = cell.init_params(rng=1)
    x = pt.tensor("x", shape=(7, 2, 3), dtype="float32")
    hs, _ = unroll(cell, x, params, truncate_gradient=3)
    outs = [pt.grad((hs ** 2).sum(), p) for p in params.values()]
    _assert_close(scanrnn.function([x], outs, backend="numba")(_values()),
                  scanrnn.function([x], outs, backend="python")(_values()))
