"""Where a hostile comparison found the core silently different from numpy, from the other
backends or from the user's own JAX: Keras-style ``(B, 1)`` class ids read as probabilities
(on JAX, which broadcast them; the others refused), a ``(B,)`` mask of ``(T, B)`` losses dividing by
B, and the first JAX compile turning the user's ``jax_enable_x64`` off."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn import losses

BACKENDS = [b for b in ("jax", "numba", "c", "python") if b in scanrnn.installed_backends()]


def _expected_nll(logits, ids):
    z = logits.astype("float64")
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    return -logp[np.arange(len(ids)), ids].mean()


@pytest.mark.parametrize("backend", BACKENDS)
def test_keras_style_class_ids_with_a_trailing_axis_are_ids(backend):
    """sparse_categorical_crossentropy(p, t) with t (B, 1) int: JAX gave 19.3 for 2.27 (the
    ids taken as probabilities: -id * sum(log p)); the others refused."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 5)).astype("float32")
    ids = np.array([0, 3, 4, 1])
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    p, t = pt.matrix("p", dtype="float32"), pt.imatrix("t")
    f = scanrnn.function([p, t], losses.sparse_categorical_crossentropy(p, t, reduction="mean"),
                         backend=backend)
    assert f(probs, ids[:, None].astype("int32")) == pytest.approx(_expected_nll(logits, ids),
                                                                     rel=1e-5)
    with pytest.raises(ValueError, match=r"t \(4, 5\)"):  # one-hot ints are no ids
        f(probs, np.eye(5, dtype="int32")[ids])
    column = pt.tensor("t1", shape=(None, 1), dtype="int32")
    g = scanrnn.function([p, column], losses.cross_entropy(p, column), backend=backend)
    assert g(logits, ids[:, None].astype("int32")) == pytest.approx(
        _expected_nll(logits, ids), rel=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_mask_that_broadcasts_counts_every_element_it_covers(backend):
    """A (B,) mask of (T, B) losses divided the sum by B, not T * B: T times too large."""
    rng = np.random.default_rng(1)
    T, B, V = 6, 3, 5
    logits = rng.normal(size=(T, B, V)).astype("float32")
    ids = rng.integers(0, V, (T, B)).astype("int32")
    z, y, m = (pt.tensor3("z", dtype="float32"), pt.imatrix("y"),
               pt.vector("m", dtype="float32"))
    f = scanrnn.function([z, y, m], [losses.cross_entropy(z, y, mask=m),
                                     losses.cross_entropy(z, y)], backend=backend)
    masked, plain = f(logits, ids, np.ones(B, "float32"))
    assert masked == pytest.approx(plain, rel=1e-6)
    some, _ = f(logits, ids, np.array([1, 0, 1], "float32"))
    want = losses.cross_entropy(z, y, reduction="none")
    per = scanrnn.function([z, y], want, backend="python")(logits, ids)
    assert some == pytest.approx(per[:, [0, 2]].mean(), rel=1e-5)


_X64 = """
import jax, jax.numpy as jnp, numpy as np, pytensor.tensor as pt, scanrnn
jax.config.update("jax_enable_x64", True)
x = pt.vector("x")
f = scanrnn.function([x], 2 * x, backend="jax")
assert f(np.ones(3, "float32")).dtype == np.float32
print(jax.config.jax_enable_x64, jnp.asarray(1.0).dtype)
"""


@pytest.mark.skipif("jax" not in BACKENDS, reason="JAX is not installed")
def test_the_users_jax_x64_setting_survives_a_jax_compile():
    """PyTensor's JAX backend sets jax_enable_x64 from floatX when imported: the user's own
    float64 JAX code after a scanrnn compile ran in float32."""
    out = subprocess.run([sys.executable, "-c", _X64], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "float64"]
