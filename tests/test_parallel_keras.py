"""scanrnn.keras.distribution: data-parallel fit/evaluate/predict match one device.

The multi-device checks run in a child process started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set before JAX starts): the
same Embedding -> LSTM -> TimeDistributed(Dense softmax) model is trained without a
distribution and on 2 and 4 devices, and its losses, weights, evaluation and
predictions compared (float32, 1e-5), with sample counts and batch sizes that the
device count does not divide (padded rows).  A stateful LSTM carries its state split
by rows.  The 1-device distribution and the argument errors run in this process.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import scanrnn
from scanrnn.keras import (LSTM, Adam, Dense, Embedding, Sequential, TimeDistributed,
                           distribution, set_random_seed)
from scanrnn.parallel import ParallelError

pytestmark = pytest.mark.skipif("jax" not in scanrnn.installed_backends(),
                                reason="data parallelism needs JAX")

V, T, H = 11, 5, 8

MODEL = f'''
import numpy as np
from scanrnn.keras import (LSTM, Adam, BatchNormalization, Dense, Embedding, Sequential,
                           TimeDistributed, distribution, set_random_seed)
V, T, H = {V}, {T}, {H}

def model(stateful=False, batch=None):
    set_random_seed(0)
    first = (Embedding(V, 6, batch_input_shape=(batch, T)) if batch else
             Embedding(V, 6, input_length=T))
    m = Sequential([first, LSTM(H, return_sequences=True, stateful=stateful),
                    TimeDistributed(Dense(V, activation="softmax"))])
    m.compile(loss="sparse_categorical_crossentropy", optimizer=Adam(0.01),
              metrics=["accuracy"], backend="jax")
    return m

def data(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (n, T)), rng.integers(0, V, (n, T))
'''

CHILD = MODEL + textwrap.dedent('''
    import contextlib
    import json
    import sys
    import time
    from scanrnn.parallel import ParallelError

    def lists(arrays):
        return [np.asarray(a).tolist() for a in arrays]

    def stateless(dist):
        """fit 2 epochs (12 samples, batch 6: padded to 8 on 4 devices), then evaluate and
        predict 10 samples in one batch (padded to 12 on 4 devices)."""
        m = model()
        x, y = data(12, 1)
        xv, yv = data(10, 2)
        with contextlib.nullcontext() if dist is None else dist.scope():
            h = m.fit(x, y, batch_size=6, epochs=2, verbose=0, shuffle=False)
            return {"loss": h.history["loss"], "weights": lists(m.get_weights()),
                    "evaluate": m.evaluate(xv, yv), "predict": m.predict(xv).tolist()}

    def stateful(dist):
        """A stateful LSTM (batch 4): the carried state is split by rows over the devices."""
        m = model(stateful=True, batch=4)
        x, y = data(8, 3)
        distribution.set_distribution(dist)
        h = m.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
        distribution.set_distribution(None)
        return {"loss": h.history["loss"], "weights": lists(m.get_weights()),
                "states": lists(s.get_value() for s in m.stateful_layers()[0].states)}

    def error(fn):
        try:
            fn()
        except ParallelError as exc:
            return str(exc)
        return "no error"

    def batchnorm_padding():
        set_random_seed(0)
        m = Sequential([Dense(3, input_dim=2), BatchNormalization(), Dense(1)])
        m.compile(loss="mse", optimizer="sgd", backend="jax")
        with distribution.DataParallel().scope():
            m.fit(np.ones((6, 2)), np.ones((6, 1)), batch_size=6, verbose=0)

    def stateful_indivisible():
        m = model(stateful=True, batch=6)
        with distribution.DataParallel(devices=4).scope():
            m.predict(data(6, 0)[0], batch_size=6)

    results = {"devices": distribution.list_devices()}
    for n in (None, 2, 4):
        dist = None if n is None else distribution.DataParallel(devices=n)
        start = time.time()
        results[str(n)] = {"stateless": stateless(dist)}
        middle = time.time()
        if n != 2:   # the stateful check on 4 devices only: it costs ~10 s a run
            results[str(n)]["stateful"] = stateful(dist)
        print(n, round(middle - start, 1), round(time.time() - middle, 1), file=sys.stderr)
    results["errors"] = {
        "batchnorm": error(batchnorm_padding),
        "stateful": error(stateful_indivisible),
        "too_many": error(lambda: distribution.DataParallel(devices=8)),
        "unknown": error(lambda: distribution.DataParallel(devices=["cpu:9"])),
    }
    names = distribution.DataParallel(devices=["cpu:1", "cpu:3"]).devices
    results["named"] = names
    print("RESULT" + json.dumps(results))
''')


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """The child's JSON results (it runs once for the tests below)."""
    script = tmp_path_factory.mktemp("parallel_keras") / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [s for s in proc.stdout.splitlines() if s.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


def close(a, b, what):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, what
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5, err_msg=what)


@pytest.mark.parametrize("devices", ["2", "4"])
def test_fit_evaluate_predict_match_one_device(four_devices, devices):
    one, many = four_devices["None"]["stateless"], four_devices[devices]["stateless"]
    close(many["loss"], one["loss"], "losses")
    for i, (w, w1) in enumerate(zip(many["weights"], one["weights"])):
        close(w, w1, f"weight {i}")
    close(many["evaluate"], one["evaluate"], "evaluate")
    close(many["predict"], one["predict"], "predict")
    assert np.shape(many["predict"]) == (10, T, V)   # the padded rows are dropped


def test_stateful_state_is_split_by_rows(four_devices):
    one, many = four_devices["None"]["stateful"], four_devices["4"]["stateful"]
    close(many["loss"], one["loss"], "losses")
    for i, (w, w1) in enumerate(zip(many["weights"] + many["states"],
                                    one["weights"] + one["states"])):
        close(w, w1, f"weight or state {i}")


def test_clear_errors_name_both_numbers(four_devices):
    assert four_devices["devices"] == ["cpu:0", "cpu:1", "cpu:2", "cpu:3"]
    assert four_devices["named"] == ["cpu:1", "cpu:3"]
    errors = four_devices["errors"]
    assert "padded to 8" in errors["batchnorm"] and "multiples of 4" in errors["batchnorm"]
    assert "batch size 6" in errors["stateful"] and "4 devices" in errors["stateful"]
    assert "devices=8" in errors["too_many"] and "4 device" in errors["too_many"]
    assert "'cpu:9'" in errors["unknown"]


# -- in this process: one device ------------------------------------------------------------

def small_model():
    set_random_seed(0)
    m = Sequential([Embedding(V, 6, input_length=T), LSTM(H, return_sequences=True),
                    TimeDistributed(Dense(V, activation="softmax"))])
    m.compile(loss="sparse_categorical_crossentropy", optimizer=Adam(0.01), backend="jax")
    return m


def test_one_device_data_parallel_matches_no_distribution():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, V, (6, T)), rng.integers(0, V, (6, T))
    plain = small_model()
    plain_loss = plain.fit(x, y, batch_size=6, epochs=2, verbose=0, shuffle=False)
    dist = distribution.DataParallel(devices=1)
    assert dist.num_devices == 1 and dist.devices == distribution.list_devices()[:1]
    with dist.scope():
        assert distribution.distribution() is dist
        model = small_model()                    # compiled in the scope: keeps it
    assert distribution.distribution() is None
    loss = model.fit(x, y, batch_size=6, epochs=2, verbose=0, shuffle=False)
    assert any(key[2] == dist for key in model._functions)
    close(loss.history["loss"], plain_loss.history["loss"], "losses")
    for w, w1 in zip(model.get_weights(), plain.get_weights()):
        close(w, w1, "weights")
    close(model.predict(x[:4]), plain.predict(x[:4]), "predict")


def test_argument_errors():
    with pytest.raises(ParallelError, match="DataParallel or None"):
        distribution.set_distribution("all")
    with pytest.raises(ParallelError, match="not both"):
        distribution.DataParallel(device_mesh=object(), devices=1)
    with pytest.raises(ParallelError, match="jax.sharding.Mesh"):
        distribution.DataParallel(device_mesh=object())
    set_random_seed(0)
    m = Sequential([Dense(2, input_dim=3)])
    m.compile(loss="mse", optimizer="sgd", backend="python")
    with distribution.DataParallel(devices=1).scope(), \
            pytest.raises(ParallelError, match="needs the JAX backend"):
        m.predict(np.ones((2, 3)))
