"""Gradients against finite differences, scan against a Python unroll, losses, optimizers."""

import copy
import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn import cells, init, losses, optim
from scanrnn.recurrent import unroll

CELL_KINDS = ["tanh", "relu", "gru", "lstm"]


def _numeric_gradient(f, arrays, index, eps=1e-6):
    """Central differences of scalar ``f(*arrays)`` with respect to ``arrays[index]``."""
    base = [a.copy() for a in arrays]
    grad = np.zeros_like(base[index])
    for pos in np.ndindex(grad.shape):
        plus = [a.copy() for a in base]
        minus = [a.copy() for a in base]
        plus[index][pos] += eps
        minus[index][pos] -= eps
        grad[pos] = (f(*plus) - f(*minus)) / (2 * eps)
    return grad


def _check_gradients(inputs, loss, values, wrt, rtol=1e-5, atol=1e-7):
    grads = pt.grad(loss, [inputs[i] for i in wrt])
    f_loss = scanrnn.function(inputs, loss, backend="python", on_unused_input="ignore")
    f_grad = scanrnn.function(inputs, grads, backend="python", on_unused_input="ignore")
    analytic = f_grad(*values)
    for i, g in zip(wrt, analytic):
        numeric = _numeric_gradient(lambda *a: float(f_loss(*a)), values, i)
        np.testing.assert_allclose(g, numeric, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {inputs[i].name}")


def _cell_graph(kind, T=4, B=2, I=3, H=3, mask=False, go_backwards=False):
    cell = cells.make_cell(kind, I, H)
    arrays = cell.init_arrays(np.random.default_rng(1))
    rng = np.random.default_rng(2)
    # random biases and inputs so no unit sits exactly at a kink of relu
    arrays = {k: v + 0.1 * rng.normal(size=v.shape) for k, v in arrays.items()}
    params = {k: pt.tensor(k, shape=v.shape, dtype="float64") for k, v in arrays.items()}
    x = pt.tensor("x", shape=(T, B, I), dtype="float64")
    m = pt.tensor("m", shape=(T, B), dtype="float64") if mask else None
    hs, final = unroll(cell, x, params, mask=m, go_backwards=go_backwards)
    loss = 0.5 * (hs ** 2).sum() + sum(s.sum() for s in final)
    inputs = [x, *params.values()] + ([m] if mask else [])
    values = [rng.normal(size=(T, B, I)), *arrays.values()]
    if mask:
        values.append(np.array([[1, 1], [1, 1], [1, 0], [0, 0]], dtype=float)[:T])
    return cell, inputs, loss, values


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cell_gradients_match_finite_differences(kind):
    with pytensor.config.change_flags(floatX="float64"):
        cell, inputs, loss, values = _cell_graph(kind)
        _check_gradients(inputs, loss, values, wrt=range(len(inputs)))


def test_gradients_with_mask_and_reverse_direction():
    with pytensor.config.change_flags(floatX="float64"):
        _, inputs, loss, values = _cell_graph("lstm", mask=True, go_backwards=True)
        _check_gradients(inputs, loss, values, wrt=range(len(inputs) - 1))


def _python_unroll(cell, x, params, mask=None, go_backwards=False):
    """The same cell stepped by a Python loop: no scan."""
    n_steps = x.type.shape[0]
    steps = range(n_steps - 1, -1, -1) if go_backwards else range(n_steps)
    projected = cell.project(x, params)
    states = cell.initial_state(x.shape[1])
    outputs = []
    for t in steps:
        new = cell.step(projected[t], *states, *cell.recurrent_params(params))
        new = list(new) if isinstance(new, (tuple, list)) else [new]
        if mask is not None:
            keep = mask[t][:, None] > 0
            new = [pt.switch(keep, n, o) for n, o in zip(new, states)]
        states = new
        outputs.append(cell.output(states))
    return pt.stack(outputs), states


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("variant", ["plain", "mask+backwards", "int-ids"])
def test_scan_equals_python_unroll(kind, variant):
    T, B, I, H = 5, 3, 4, 6
    cell = cells.make_cell(kind, I, H)
    params = cell.init_params(np.random.default_rng(3))
    rng = np.random.default_rng(4)
    if variant == "int-ids":
        x = pt.tensor("x", shape=(T, B), dtype="int32")
        x_value = rng.integers(0, I, size=(T, B))
    else:
        x = pt.tensor("x", shape=(T, B, I), dtype="float32")
        x_value = rng.normal(size=(T, B, I))
    mask = None
    inputs = [x]
    values = [x_value]
    if variant == "mask+backwards":
        mask = pt.tensor("mask", shape=(T, B), dtype="float32")
        inputs.append(mask)
        values.append((rng.random((T, B)) > 0.3).astype(np.float32))
    backwards = variant == "mask+backwards"
    hs, final = unroll(cell, x, params, mask=mask, go_backwards=backwards)
    hs_py, final_py = _python_unroll(cell, x, params, mask=mask, go_backwards=backwards)
    f = scanrnn.function(inputs, [hs, *final, hs_py, *final_py], backend="jax")
    out = f(*values)
    half = len(out) // 2
    for scanned, looped in zip(out[:half], out[half:]):
        np.testing.assert_allclose(scanned, looped, rtol=1e-5, atol=1e-6)


def test_unroll_last_output_and_truncated_gradient():
    with pytensor.config.change_flags(floatX="float64"):
        cell = cells.make_cell("tanh", 2, 3)
        params = cell.init_params(0)
        x = pt.tensor("x", shape=(12, 1, 2), dtype="float64")
        last, _ = unroll(cell, x, params, return_sequences=False)
        full = pt.grad(last.sum(), params["W_h"])
        cut, _ = unroll(cell, x, params, return_sequences=False, truncate_gradient=3)
        trunc = pt.grad(cut.sum(), params["W_h"])
        hs, _ = unroll(cell, x, params)
        f = scanrnn.function([x], [last, hs[-1], full, trunc], backend="python")
        value = np.random.default_rng(0).normal(size=(12, 1, 2))
        last_v, hs_last, g_full, g_trunc = f(value)
    np.testing.assert_allclose(last_v, hs_last)
    assert np.linalg.norm(g_trunc) < np.linalg.norm(g_full)
    assert not np.allclose(g_full, g_trunc)


# -- losses ------------------------------------------------------------------

def test_losses_gradients_match_finite_differences():
    with pytensor.config.change_flags(floatX="float64"):
        logits = pt.tensor("logits", shape=(3, 2, 5), dtype="float64")
        onehot = pt.tensor("onehot", shape=(3, 2, 5), dtype="float64")
        ids = pt.tensor("ids", shape=(3, 2), dtype="int32")
        probs = pt.special.softmax(logits, axis=-1)
        rng = np.random.default_rng(0)
        target_ids = rng.integers(0, 5, size=(3, 2))
        values = [rng.normal(size=(3, 2, 5)), np.eye(5)[target_ids], target_ids]
        for loss in [losses.cross_entropy(logits, ids),
                     losses.cross_entropy(logits, onehot, reduction="sum"),
                     losses.categorical_crossentropy(probs, onehot).sum(),
                     losses.categorical_crossentropy(probs, ids, reduction="mean"),
                     losses.mean_squared_error(probs, onehot)]:
            _check_gradients([logits, onehot, ids], loss, values, wrt=[0])


def test_cross_entropy_values_and_stability():
    logits = pt.tensor("z", shape=(2, 5), dtype="float32")
    y = pt.tensor("y", shape=(2,), dtype="int32")
    loss = losses.cross_entropy(logits, y, reduction="sum")
    grad = pt.grad(loss, logits)
    from_probs = losses.categorical_crossentropy(pt.special.softmax(logits, axis=-1), y).sum()
    f = scanrnn.function([logits, y], [loss, grad, from_probs], backend="jax")
    z = np.array([[1000, 0, 0, 0, -1000], [0.5, 1.0, -1.0, 2.0, 0.0]], dtype=np.float32)
    value, g, value_p = f(z, [4, 3])
    expected_row2 = -(z[1, 3] - np.log(np.exp(z[1]).sum()))
    assert np.isfinite(g).all()
    np.testing.assert_allclose(value, 2000.0 + expected_row2, rtol=1e-5)
    np.testing.assert_allclose(value_p, -math.log(losses.EPSILON) + expected_row2, rtol=1e-4)


def test_cross_entropy_mask_and_bad_targets():
    z = pt.tensor("z", shape=(3, 4), dtype="float32")
    y = pt.tensor("y", shape=(3,), dtype="int32")
    m = pt.tensor("m", shape=(3,), dtype="float32")
    masked = losses.cross_entropy(z, y, mask=m)
    f = scanrnn.function([z, y, m], masked, backend="jax")
    zs = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    only_first = f(zs, [1, 2, 3], [1, 0, 0])
    f_single = scanrnn.function([z, y], losses.cross_entropy(z, y, reduction="none"), backend="jax")
    np.testing.assert_allclose(only_first, f_single(zs, [1, 2, 3])[0], rtol=1e-6)
    with pytest.raises(ValueError, match="targets must be"):
        losses.cross_entropy(z, pt.tensor("bad", shape=(3, 4, 1), dtype="int32"))
    with pytest.raises(ValueError, match="unknown reduction"):
        losses.cross_entropy(z, y, reduction="avg")


def test_perplexity_and_bits_per_char():
    assert losses.perplexity(math.log(4.0)) == pytest.approx(4.0)
    assert losses.bits_per_char(math.log(2.0)) == pytest.approx(1.0)
    x = pt.scalar("x")
    assert isinstance(losses.perplexity(x), pt.TensorVariable)


# -- initializers ---------------------------------------------------------------

def test_initializers_are_named_float32_and_reproducible():
    for name in ["zeros", "normal", "he_normal", "glorot_uniform", "orthogonal", "identity"]:
        a = getattr(init, name)((6, 6), name=f"W_{name}", rng=7)
        b = getattr(init, name)((6, 6), rng=7)
        assert a.name == f"W_{name}"
        assert a.get_value().dtype == np.float32
        np.testing.assert_array_equal(a.get_value(), b.get_value())
    q = init.orthogonal((8, 24), rng=0).get_value()
    for k in range(3):
        np.testing.assert_allclose(q[:, 8 * k:8 * (k + 1)].T @ q[:, 8 * k:8 * (k + 1)],
                                   np.eye(8), atol=1e-5)
    np.testing.assert_array_equal(init.identity((4, 4)).get_value(), np.eye(4))
    he = init.he_normal((2000, 50), rng=0).get_value()
    assert he.std() == pytest.approx(math.sqrt(2 / 2000), rel=0.02)
    assert not np.array_equal(init.normal((3, 3), rng=1).get_value(),
                              init.normal((3, 3), rng=2).get_value())
    with pytest.raises(ValueError, match="unknown initializer"):
        init.get("gaussian_please")


def test_cells_parameter_counts_and_errors():
    assert cells.make_cell("tanh", 86, 256).n_params() == 86 * 256 + 256 * 256 + 256
    assert cells.make_cell("lstm", 10, 20).n_params() == 4 * (20 * (10 + 20) + 20)
    assert cells.make_cell("gru", 10, 20).n_params() == 3 * (20 * (10 + 20) + 2 * 20)
    lstm = cells.make_cell("lstm", 3, 4)
    b = lstm.init_arrays(0)["b"]
    np.testing.assert_array_equal(b[4:8], 1.0)
    assert lstm.init_params(0)["W_x"].name == "lstm.W_x"
    with pytest.raises(ValueError, match="unknown cell"):
        cells.make_cell("transformer", 3, 4)
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        cells.make_cell("gru", 3, 0)
    with pytest.raises(ValueError, match="unknown activation"):
        cells.activation("swishy")


# -- optimizers ------------------------------------------------------------------

def _quadratic():
    w = init.shared(np.array([1.0, -2.0]), name="w")
    loss = (w ** 2).sum()
    return w, loss


def test_sgd_is_the_seeds_upd_dict_and_lr_changes_without_recompiling():
    w, loss = _quadratic()
    (g,) = pt.grad(loss, [w]),
    updates = optim.sgd(g, [w], 0.1)
    seed_upd_dict = {w: w - g[0] * 0.1}
    assert set(updates) == set(seed_upd_dict)
    step = scanrnn.function([], loss, updates=updates, backend="jax")
    step()
    np.testing.assert_allclose(np.asarray(w.get_value()), [0.8, -1.6], rtol=1e-6)
    updates.learning_rate.set_value(np.float32(0.5))
    step()
    np.testing.assert_allclose(np.asarray(w.get_value()), [0.0, 0.0], atol=1e-6)
    assert len(step.compiled) == 1


def test_symbolic_learning_rate_input():
    w, loss = _quadratic()
    lr = pt.scalar("lr")
    step = scanrnn.function([lr], loss, updates=optim.sgd(loss, [w], lr), backend="jax")
    step(0.25)
    np.testing.assert_allclose(np.asarray(w.get_value()), [0.5, -1.0], rtol=1e-6)


def _numpy_adam(w, steps, lr=0.1, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, steps + 1):
        g = 2 * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps) - lr * wd * w
    return w


@pytest.mark.parametrize("rule", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_every_rule_descends_and_keeps_float32(rule):
    w, loss = _quadratic()
    updates = optim.get(rule)(loss, [w], 0.05)
    assert all(u.dtype == "float32" for u in updates.values())
    step = scanrnn.function([], loss, updates=updates, backend="jax")
    first = float(step())
    for _ in range(20):
        last = float(step())
    assert last < first
    assert all(np.asarray(s.get_value()).dtype == np.float32 for s in updates.slots)


def test_adam_matches_reference():
    w, loss = _quadratic()
    step = scanrnn.function([], loss, updates=optim.adam(loss, [w], 0.1), backend="jax")
    for _ in range(5):
        step()
    np.testing.assert_allclose(np.asarray(w.get_value()), _numpy_adam(np.array([1.0, -2.0]), 5),
                               rtol=1e-5)


def test_adam_weight_decay_is_decoupled_as_adamw():
    w, loss = _quadratic()
    updates = optim.adam(loss, [w], 0.1, weight_decay=0.5)
    step = scanrnn.function([], loss, updates=updates, backend="jax")
    for _ in range(5):
        step()
    expected = _numpy_adam(np.array([1.0, -2.0]), 5, wd=0.5)
    np.testing.assert_allclose(np.asarray(w.get_value()), expected, rtol=1e-5)
    assert not np.allclose(expected, _numpy_adam(np.array([1.0, -2.0]), 5))
    with pytest.raises(ValueError, match="weight_decay"):
        optim.adam(loss, [w], 0.1, weight_decay=-1.0)


def test_ema_averages_the_updated_weights_with_a_warming_decay():
    w, loss = _quadratic()
    updates = optim.sgd(loss, [w], 0.1)
    averages = optim.ema(updates, [w], decay=0.8)
    shadow = optim.averages_of(averages)[w]
    assert shadow.name == "w.ema" and shadow in optim.slots_of(averages)
    step = scanrnn.function([], loss, updates=optim.merge(updates, averages), backend="jax")
    weights = np.array([1.0, -2.0])
    expected = weights.copy()                   # an average starts at the weights
    for t in range(1, 6):
        step()
        weights = weights - 0.1 * 2.0 * weights   # d(sum w^2)/dw, as _quadratic's loss
        decay = min(0.8, (1.0 + t) / (10.0 + t))  # 0.18, 0.25, ... (0.8 from t = 35)
        expected = decay * expected + (1.0 - decay) * weights
    np.testing.assert_allclose(np.asarray(shadow.get_value()), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(w.get_value()), weights, rtol=1e-6)
    with pytest.raises(ValueError, match="decay"):
        optim.ema(updates, [w], decay=1.0)


def test_clip_by_global_norm_returns_norm_and_clips():
    a = pt.vector("a")
    b = pt.vector("b")
    (ca, cb), norm = optim.clip_by_global_norm([a, b], 1.0)
    f = scanrnn.function([a, b], [ca, cb, norm], backend="jax")
    ca_v, cb_v, n = f([3.0, 0.0], [4.0])
    assert n == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([ca_v, cb_v]), [0.6, 0.0, 0.8], rtol=1e-5)
    small = f([0.3, 0.0], [0.4])
    np.testing.assert_allclose(np.concatenate(small[:2]), [0.3, 0.0, 0.4], rtol=1e-5)


def test_merge_rejects_double_updates():
    w, loss = _quadratic()
    a = optim.sgd(loss, [w], 0.1)
    h = init.zeros((2,), name="h")
    merged = optim.merge(a, {h: h + 1})
    assert set(merged) == {w, h} and merged.learning_rate is a.learning_rate
    with pytest.raises(ValueError, match="updated twice"):
        optim.merge(a, optim.sgd(loss, [w], 0.2))
    with pytest.raises(ValueError, match="learning rate"):
        optim.sgd(loss, [w], float("nan"))
    with pytest.raises(ValueError, match="unknown optimizer"):
        optim.get("lbfgs")


@pytest.mark.parametrize("rule", ["sgd", "momentum", "adagrad", "adam"])
def test_updates_keep_learning_rate_and_slots_through_copies_and_merges(rule):
    """The learning rate and slots are read from the entries: no copy can drop them."""
    w, loss = _quadratic()
    h = init.zeros((2,), name="h")
    updates = optim.get(rule)(loss, [w], 0.05)
    lr, slots = updates.learning_rate, updates.slots
    assert lr.get_value() == np.float32(0.05)
    assert [s.name for s in slots] == {"sgd": [], "momentum": ["w.velocity"],
                                       "adagrad": ["w.accu"],
                                       "adam": ["adam.t", "w.m", "w.v"]}[rule]
    copies = {"copy()": updates.copy(), "copy.copy": copy.copy(updates),
              "u | other": updates | {h: h + 1}, "other | u": {h: h + 1} | updates,
              "Updates(dict(u))": optim.Updates(dict(updates)),
              "merge(dict(u), other)": optim.merge(dict(updates), {h: h + 1})}
    for how, other in copies.items():
        assert type(other) is optim.Updates, how
        assert other.learning_rate is lr and other.slots == slots, how
    for how, plain in {"dict(u)": dict(updates), "{**u}": {**updates}}.items():
        assert optim.learning_rate_of(plain) is lr and optim.slots_of(plain) == slots, how
    ior = optim.Updates(updates)
    ior |= {h: h + 1}
    assert ior.learning_rate is lr and ior.slots == slots


def test_learning_rate_of_expressions_symbols_and_several_rates():
    w, loss = _quadratic()
    lr = optim.shared_learning_rate(0.1)
    decayed = optim.sgd(loss, [w], lr / (1 + init.zeros((), name="t")))
    assert decayed.learning_rate is lr                    # the settable variable, not the ratio
    symbolic = pt.scalar("lr")
    assert optim.sgd(loss, [w], symbolic).learning_rate is symbolic
    expression = pt.scalar("a") * 2                      # nothing tagged underneath it
    assert optim.sgd(loss, [w], expression).learning_rate is expression
    v = init.zeros((2,), name="v")
    both = optim.merge(optim.sgd(loss, [w], 0.1), optim.adam((v ** 2).sum(), [v], 0.2))
    with pytest.raises(ValueError, match="read 2 learning rates"):
        _ = both.learning_rate
    assert [s.name for s in both.slots] == ["adam.t", "v.m", "v.v"]
    both.learning_rate = lr                               # named explicitly, it is kept
    assert both.learning_rate is lr and both.copy().learning_rate is lr


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_fused_backward_pass_equals_pytensor_autodiff(kind, go_backwards):
    """The hand-written backward pass (scanrnn.fused) against PyTensor's scan gradient."""
    cell = cells.make_cell(kind, 3, 4)
    params = cell.init_params(0)
    x = pt.tensor("x", shape=(6, 2, 3), dtype="float32")
    results = []
    for fused in (False, True):
        hs, final = unroll(cell, x, params, fused=fused, go_backwards=go_backwards)
        loss = (hs ** 2).sum() + 0.3 * sum((s * s).sum() for s in final)
        results += [loss, hs, *final, *pt.grad(loss, [*params.values(), x])]
    f = scanrnn.function([x], results, backend="jax")
    out = f(np.random.default_rng(0).normal(size=(6, 2, 3)))
    half = len(out) // 2
    for autodiff, fused in zip(out[:half], out[half:]):
        np.testing.assert_allclose(fused, autodiff, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="fused=True needs"):
        unroll(cell, x, params, fused=True, truncate_gradient=2)


@pytest.mark.parametrize("gate_act,act", [("sigmoid", "tanh"), ("hard_sigmoid", "tanh"),
                                          ("sigmoid", "relu")])
def test_lstm_gate_activations_and_fused_gradients_for_each_activation(gate_act, act):
    """One tanh for the usual gates equals the four slices; other activations fall back."""
    cell = cells.LSTMCell(3, 4, recurrent_activation=gate_act, activation=act)
    assert cell.one_tanh_gates == ((gate_act, act) == ("sigmoid", "tanh"))
    z = pt.tensor("z", shape=(5, 16), dtype="float64")
    reference = [cells.activation(n)(cell.gate(z, k))
                 for k, n in enumerate([gate_act, gate_act, act, gate_act])]
    f = pytensor.function([z], [cell.gate_activations(z), pt.concatenate(reference, axis=-1)])
    values = np.random.default_rng(0).normal(scale=4.0, size=(5, 16))
    ours, expected = f(values)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)

    params = cell.init_params(0)
    x = pt.tensor("x", shape=(6, 2, 3), dtype="float32")
    results = []
    for fused in (False, True):
        hs, final = unroll(cell, x, params, fused=fused)
        loss = (hs ** 2).sum() + 0.3 * sum((s * s).sum() for s in final)
        results += pt.grad(loss, [*params.values(), x])
    out = scanrnn.function([x], results, backend="jax")(
        np.random.default_rng(1).normal(size=(6, 2, 3)))
    for autodiff, fused in zip(out[:len(out) // 2], out[len(out) // 2:]):
        np.testing.assert_allclose(fused, autodiff, rtol=1e-4, atol=1e-6)
