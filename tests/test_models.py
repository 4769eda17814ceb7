"""CharLM: parameters, weights round trip, forward pass vs. stepping, dropout stream."""

import numpy as np
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn import kernels as vendor_kernels
from scanrnn.lm import CharLM, LMConfig
from scanrnn.random import dropout, stream_key, uniform_hash

V = 11


def small(**kw):
    kw.setdefault("vocab_size", V)
    kw.setdefault("hidden", 8)
    kw.setdefault("embed", 5)
    kw.setdefault("dropout", 0.0)
    return CharLM(**kw)


def test_config_round_trip_and_errors():
    cfg = LMConfig(vocab_size=28, cell="gru", layers=3, dropout=0.2)
    assert LMConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown LMConfig field"):
        LMConfig.from_dict({**cfg.to_dict(), "hiden": 3})
    with pytest.raises(ValueError, match="cell"):
        LMConfig(vocab_size=28, cell="transformer")
    with pytest.raises(ValueError, match="dropout"):
        LMConfig(vocab_size=28, dropout=1.0)
    with pytest.raises(ValueError, match="layers"):
        LMConfig(vocab_size=28, layers=0)


@pytest.mark.parametrize("cell,embed,expected", [
    ("lstm", 5, ["embed.W", "lstm_1.W_x", "lstm_1.W_h", "lstm_1.b", "lstm_2.W_x", "lstm_2.W_h",
                 "lstm_2.b", "out.W", "out.b"]),
    ("gru", 0, ["gru_1.W_x", "gru_1.W_h", "gru_1.b", "gru_1.b_h", "gru_2.W_x", "gru_2.W_h",
                "gru_2.b", "gru_2.b_h", "out.W", "out.b"]),
])
def test_parameter_names_shapes_dtype(cell, embed, expected):
    m = small(cell=cell, embed=embed)
    assert m.param_names == expected
    w = m.get_weights()
    gates = {"lstm": 4, "gru": 3}[cell]
    assert w[f"{cell}_1.W_x"].shape == (embed or V, gates * 8)
    assert w[f"{cell}_2.W_h"].shape == (8, gates * 8)
    assert w["out.W"].shape == (8, V)
    assert all(a.dtype == np.float32 for a in w.values())
    assert m.n_params() == sum(a.size for a in w.values())


def test_default_init_scales():
    """Embedding rows N(0, 1) (PyTorch's default: they train faster than Glorot's, see
    benchmarks/RESULTS_lm.md), the output Glorot-uniform, LSTM forget-gate bias 1."""
    w = CharLM(vocab_size=60, embed=64, hidden=32, layers=1, seed=3).get_weights()
    assert 0.9 < w["embed.W"].std() < 1.1 and abs(w["embed.W"].mean()) < 0.05
    limit = np.sqrt(6 / (32 + 60))
    assert np.abs(w["out.W"]).max() <= limit and w["out.W"].std() > limit / 3
    np.testing.assert_array_equal(w["lstm_1.b"][32:64], 1.0)
    normal = CharLM(vocab_size=60, embed=64, hidden=32, layers=1, init="normal",
                    init_scale=0.01).get_weights()
    assert normal["embed.W"].std() < 0.02          # --init normal still means every weight
    shared = scanrnn.init.standard_normal((400, 50), name="e", rng=0).get_value()
    assert shared.dtype == np.float32 and 0.95 < shared.std() < 1.05


def test_seed_makes_weights_and_set_weights_checks():
    a, b, c = small(seed=1), small(seed=1), small(seed=2)
    for k, v in a.get_weights().items():
        np.testing.assert_array_equal(v, b.get_weights()[k])
    assert not np.array_equal(a.get_weights()["out.W"], c.get_weights()["out.W"])
    c.set_weights(a.get_weights())
    np.testing.assert_array_equal(c.get_weights()["out.W"], a.get_weights()["out.W"])
    w = a.get_weights()
    del w["out.b"]
    with pytest.raises(ValueError, match="missing: out.b"):
        c.set_weights(w)
    w = a.get_weights()
    w["out.W"] = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match=r"out.W: shape \(3, 3\)"):
        c.set_weights(w)
    w = a.get_weights()
    w["extra"] = np.zeros(2)
    with pytest.raises(ValueError, match="unexpected: extra"):
        c.set_weights(w)


@pytest.mark.parametrize("cell", ["lstm", "gru", "tanh"])
def test_sequence_forward_equals_stepping(cell):
    """The (folded-embedding) unrolled graph equals feeding one id at a time."""
    m = small(cell=cell, layers=2)
    x = pt.tensor("x", shape=(None, None), dtype="int32")
    logits, finals = m.logits(x)
    x_t = pt.vector("x_t", dtype="int32")
    states = [pt.matrix(f"s{i}") for i in range(m.n_states)]
    step_logits, new_states = m.step(x_t, states)
    seq = scanrnn.function([x], [logits, *finals], backend="jax")
    one = scanrnn.function([x_t, *states], [step_logits, *new_states], backend="jax")
    ids = np.random.default_rng(0).integers(0, V, size=(6, 3)).astype(np.int32)
    out = seq(ids)
    st = m.zero_states(3)
    for t in range(6):
        res = one(ids[t], *st)
        np.testing.assert_allclose(res[0], out[0][t], atol=1e-5)
        st = res[1:]
    for a, b in zip(st, out[1:]):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_dropout_stream_is_explicit_state():
    m = small(dropout=0.5, layers=2, seed=3)
    x = pt.tensor("x", shape=(None, None), dtype="int32")
    train, _ = m.logits(x, training=True)
    test, _ = m.logits(x, training=False)
    f = scanrnn.function([x], [train, test], updates=m.rng_updates(), backend="jax")
    ids = np.zeros((5, 4), np.int32)
    a_train, a_test = f(ids)
    assert not np.allclose(a_train, a_test)
    assert list(np.asarray(m.rng.get_value())) == [3, 1]
    b_train, b_test = f(ids)
    np.testing.assert_array_equal(a_test, b_test)
    assert not np.allclose(a_train, b_train)       # counter advanced: new masks
    m.reseed(3, 0)                                 # works on JAX without recompiling
    c_train, _ = f(ids)
    np.testing.assert_array_equal(a_train, c_train)


def test_uniform_hash_same_on_every_backend_and_uniform():
    key = pt.scalar("key", dtype="uint32")
    u = uniform_hash(stream_key(pt.stack([key, pt.constant(np.uint32(5))]), 2), (64, 50))
    results = {b: scanrnn.function([key], u, backend=b)(np.uint32(9))
               for b in ("jax", "python")}
    np.testing.assert_array_equal(results["jax"], results["python"])
    r = results["jax"]
    assert r.dtype == np.float32 and 0 < r.min() and r.max() < 1
    assert abs(r.mean() - 0.5) < 0.02 and abs(r.std() - 12 ** -0.5) < 0.02
    other = scanrnn.function([key], u, backend="jax")(np.uint32(10))
    assert abs(np.corrcoef(r.ravel(), other.ravel())[0, 1]) < 0.05


def test_bad_forward_input():
    m = small()
    with pytest.raises(ValueError, match="integer token ids"):
        m.logits(pt.tensor3("x"))
    with pytest.raises(ValueError, match="state matrices"):
        m.logits(pt.tensor("x", shape=(None, None), dtype="int32"), [pt.matrix("h")])


@pytest.mark.parametrize("kernels", [False, True], ids=["scan", "kernels-if-built"])
def test_weight_drop_masks_the_recurrent_weights_once_per_step(kernels):
    """Training with weight drop equals a model without it whose ``W_h`` carries the one
    mask of this step: the same mask at every time step and sequence (on the fused scan,
    and on the vendor kernel where one is built)."""
    m = small(layers=2, weight_drop=0.5, seed=4)
    x = pt.tensor("x", shape=(None, None), dtype="int32")
    train, _ = m.logits(x, training=True)
    test, _ = m.logits(x, training=False)
    ids = np.random.default_rng(0).integers(0, V, size=(7, 3)).astype(np.int32)
    fn = scanrnn.function([x], [train, test], backend="jax", kernels=kernels)
    got_train, got_test = fn(ids)
    if kernels and vendor_kernels.status()["active"]:
        lines = vendor_kernels.describe(fn)
        assert len(lines) == 4 and all("lstm" in line for line in lines), lines
    plain = small(layers=2, seed=4)
    plain_logits = scanrnn.function([x], plain.logits(x)[0], backend="jax")
    np.testing.assert_allclose(got_test, plain_logits(ids), atol=1e-6)
    names = [f"{cell.name}.W_h" for cell in m.cells]
    masked = scanrnn.function([], [
        dropout(m._by_name[name], 0.5, stream_key(m.rng, m.config.layers + 1 + i))
        for i, name in enumerate(names)], backend="jax")()
    weights = plain.get_weights()
    for name, value in zip(names, masked):
        assert 0.3 < np.mean(value == 0) < 0.7
        weights[name] = value
    plain.set_weights(weights)
    np.testing.assert_allclose(got_train, plain_logits(ids), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="weight_drop"):
        LMConfig(vocab_size=28, weight_drop=1.0)
