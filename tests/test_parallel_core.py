"""Data-parallel ``scanrnn.function(devices=...)`` on forced host devices (scanrnn.parallel).

The multi-device checks run in a child process started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (it must be set before JAX
starts); they train on 1, 2 and 4 devices with the same global batch and compare.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn import parallel

pytestmark = pytest.mark.skipif("jax" not in scanrnn.installed_backends(),
                                reason="data parallelism needs JAX")

CHILD = textwrap.dedent(r'''
    import json, sys
    import numpy as np, pytensor, pytensor.tensor as pt
    import jax
    import scanrnn
    from scanrnn import cells, optim, parallel

    T, B, I, H = 6, 8, 5, 7

    def split_axes(value):
        """The mesh axis of each array axis, trailing unsplit axes dropped (JAX prints differ)."""
        axes = list(value.sharding.spec)
        while axes and axes[-1] is None:
            axes.pop()
        return axes

    def data(step):
        rng = np.random.default_rng(100 + step)
        return (rng.standard_normal((T, B, I)).astype("float32"),
                rng.standard_normal((B, H)).astype("float32"))

    def plain_scan(devices):
        rng = np.random.default_rng(1)
        W = pytensor.shared((0.4 * rng.standard_normal((I, H))).astype("float32"), name="W")
        U = pytensor.shared((0.4 * rng.standard_normal((H, H))).astype("float32"), name="U")
        x, y = pt.tensor3("x"), pt.matrix("y")
        hs = scanrnn.scan(lambda xt, h, W, U: pt.tanh(xt @ W + h @ U), sequences=x,
                          outputs_info=pt.zeros((x.shape[1], H)), non_sequences=[W, U])
        loss = pt.mean((hs[-1] - y) ** 2)
        fn = scanrnn.function([x, y], loss, updates=optim.sgd(loss, [W, U], 0.1),
                              backend="jax", devices=devices, batch_axes={y: 0})
        return fn, [W, U]

    def fused_lstm(devices):
        cell = cells.LSTMCell(I, H, name="lstm")
        params = cell.init_params(np.random.default_rng(2))
        x, y = pt.tensor3("x"), pt.matrix("y")
        hs, _ = scanrnn.unroll(cell, x, params)
        loss = pt.mean((hs[-1] - y) ** 2) + 0.1 * pt.mean(hs ** 2)
        shared = list(params.values())
        fn = scanrnn.function([x, y], loss, updates=optim.adam(loss, shared, 0.01),
                              backend="jax", devices=devices, batch_axes={"y": 0})
        return fn, shared

    def token_lstm(devices):
        """Token ids in (rows of W_x picked by id), a softmax layer out: a tiny language model."""
        V = 11
        cell = cells.LSTMCell(V, H, name="tok")
        params = cell.init_params(np.random.default_rng(4))
        out_W = pytensor.shared((0.3 * np.random.default_rng(5).standard_normal((H, V)))
                                .astype("float32"), name="out_W")
        x, y = pt.tensor3("x"), pt.matrix("y")
        ids = (pt.abs(x[:, :, 0]) * 7).astype("int32") % V
        hs, _ = scanrnn.unroll(cell, ids, params)
        logits = scanrnn.contract.dot_last(hs, out_W)
        loss = -pt.mean(pt.special.log_softmax(logits, axis=-1)[:, :, 0]) + \
            0.01 * pt.mean((hs[-1] - y) ** 2)
        shared = [*params.values(), out_W]
        fn = scanrnn.function([x, y], loss, updates=optim.adam(loss, shared, 0.01),
                              backend="jax", devices=devices, batch_axes={y: 0})
        return fn, shared

    def carried_state(devices):
        """An RNN whose final state is carried between calls, split with its rows."""
        cell = cells.RNNCell(I, H, name="rnn")
        params = cell.init_params(np.random.default_rng(3))
        state = pytensor.shared(np.zeros((B, H), "float32"), name="state")
        x, y = pt.tensor3("x"), pt.matrix("y")
        hs, (final,) = scanrnn.unroll(cell, x, params, initial_state=[state])
        loss = pt.mean((hs[-1] - y) ** 2)
        updates = optim.sgd(loss, list(params.values()), 0.05)
        updates[state] = final
        fn = scanrnn.function([x, y], loss, updates=updates, backend="jax",
                              devices=devices, batch_axes={y: 0, state: 0})
        return fn, [*params.values(), state]

    def collectives(text):
        """Ops and bytes of each collective in an HLO text: {"all-reduce": [ops, bytes]}."""
        import re
        found = {}
        for line in text.splitlines():
            m = re.search(r"= (.*?) (all-reduce|all-gather|all-to-all|collective-permute)\(", line)
            if m:
                sizes = [4 * int(np.prod([int(d) for d in dims.split(",") if d] or [1]))
                         for dims in re.findall(r"f32\[([\d,]*)\]", m.group(1))]
                ops, total = found.get(m.group(2), [0, 0])
                found[m.group(2)] = [ops + 1, total + sum(sizes)]
        return found

    results = {}
    for build in (plain_scan, fused_lstm, token_lstm, carried_state):
        for devices in (1, 2, 4):
            fn, shared = build(devices)
            losses = [float(fn(*data(s % 2))) for s in range(10)]
            where = {v.name: split_axes(v.container.storage[0]) for v in shared}
            results[f"{build.__name__}/{devices}"] = dict(
                losses=losses, params=[np.asarray(v.get_value()).tolist() for v in shared],
                where=where, collectives=collectives(fn.compiled_text(*data(0))))
    json.dump(results, sys.stdout)
''')


def _run_child(script, tmp_path, devices=4, timeout=420):
    path = tmp_path / "child.py"
    path.write_text(script)
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_PLATFORMS="cpu", SCANRNN_KERNELS="0")
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return _run_child(CHILD, tmp_path_factory.mktemp("parallel"))


@pytest.mark.parametrize("graph", ["plain_scan", "fused_lstm", "token_lstm", "carried_state"])
@pytest.mark.parametrize("devices", [2, 4])
def test_same_training_on_more_devices(trained, graph, devices):
    one, many = trained[f"{graph}/1"], trained[f"{graph}/{devices}"]
    np.testing.assert_allclose(many["losses"], one["losses"], rtol=1e-5, atol=1e-6)
    assert one["losses"][-1] < one["losses"][0]  # it trained
    for got, want in zip(many["params"], one["params"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("graph", ["plain_scan", "fused_lstm", "token_lstm", "carried_state"])
def test_the_partitioned_step_all_reduces_the_gradients_only(trained, graph):
    """Each device works on its rows: no activation is gathered, and what is summed
    over the devices is the weight gradients (and the loss), nothing more."""
    found = trained[f"{graph}/4"]["collectives"]
    assert set(found) == {"all-reduce"}, found
    n_weights = {"plain_scan": 5 * 7 + 7 * 7, "fused_lstm": 5 * 28 + 7 * 28 + 28,
                 "token_lstm": 11 * 28 + 7 * 28 + 28 + 7 * 11,
                 "carried_state": 5 * 7 + 7 * 7 + 7}[graph]
    assert 4 * n_weights <= found["all-reduce"][1] <= 4 * n_weights + 64
    assert trained[f"{graph}/1"]["collectives"] == {}


def test_weights_replicated_and_carried_state_split(trained):
    where = trained["carried_state/4"]["where"]
    assert where["state"] == ["batch"]
    assert where["rnn.W_h"] == []
    assert all(axes == [] for axes in trained["fused_lstm/4"]["where"].values())


ERRORS_CHILD = textwrap.dedent('''
    import json, sys
    import numpy as np, pytensor, pytensor.tensor as pt
    import scanrnn
    from scanrnn import parallel
    out = {}

    def split_axes(value):
        axes = list(value.sharding.spec)
        while axes and axes[-1] is None:
            axes.pop()
        return axes

    W = pytensor.shared(np.ones((3, 2), "float32"), name="W")
    x = pt.tensor3("x")
    loss = pt.sum(pt.tanh(x @ W))
    fn = scanrnn.function([x], loss, updates={W: W - 0.1 * pt.grad(loss, W)}, backend="jax",
                          devices=4)
    try:
        fn(np.ones((2, 6, 3), "float32"))
    except parallel.ParallelError as error:
        out["indivisible"] = str(error)
    try:
        parallel.make_mesh(9)
    except parallel.ParallelError as error:
        out["too_many"] = str(error)
    fn(np.ones((2, 8, 3), "float32"))
    W.set_value(np.zeros((3, 2), "float32"))    # a numpy value: placed again on the next call
    out["after_set_value"] = float(fn(np.ones((2, 8, 3), "float32")))
    out["W_axes"] = split_axes(W.container.storage[0])
    raw = scanrnn.function([x], pt.tanh(x), backend="jax", devices=4, return_numpy=False)
    value = raw(np.ones((2, 8, 3), "float32"))
    out["raw_type"] = type(value).__module__.split(".")[0]
    out["raw_axes"] = split_axes(value)
    out["raw_devices"] = len(value.sharding.device_set)
    json.dump(out, sys.stdout)
''')


def test_errors_and_placement(tmp_path):
    out = _run_child(ERRORS_CHILD, tmp_path)
    assert "batch size 6" in out["indivisible"] and "4 devices" in out["indivisible"]
    assert "devices=9" in out["too_many"] and "4 device(s)" in out["too_many"]
    assert out["after_set_value"] == 0.0
    assert out["W_axes"] == []
    assert out["raw_type"] in ("jax", "jaxlib")
    assert out["raw_axes"] == [None, "batch"]
    assert out["raw_devices"] == 4


def test_one_device_in_process_matches_plain_function():
    x = pt.matrix("x")
    W = pytensor.shared(np.arange(6, dtype="float32").reshape(3, 2) / 6, name="W")
    loss = pt.sum(pt.tanh(x.T @ W))
    updates = {W: W - 0.1 * pt.grad(loss, W)}
    data = np.linspace(-1, 1, 12, dtype="float32").reshape(4, 3).T  # (3, B=4): axis 1
    plain = scanrnn.function([x], loss, updates=updates, backend="jax")
    first = [float(plain(data)) for _ in range(3)]
    W.set_value(np.arange(6, dtype="float32").reshape(3, 2) / 6)
    dp = scanrnn.function([x], loss, updates=updates, backend="jax", devices=1)
    assert "DataParallel(1 cpu" in repr(dp)
    np.testing.assert_allclose([float(dp(data)) for _ in range(3)], first, rtol=1e-6)


def test_clear_setting_errors():
    x = pt.matrix("x")
    with pytest.raises(scanrnn.BackendError, match="devices= needs the JAX backend"):
        scanrnn.function([x], x.sum(), backend="python", devices=1)
    with pytest.raises(ValueError, match="give devices= too"):
        scanrnn.function([x], x.sum(), backend="jax", batch_axes={x: 0})
    with pytest.raises(ValueError, match="neither an input nor a shared variable"):
        scanrnn.function([x], x.sum(), backend="jax", devices=1, batch_axes={"nope": 0})
    with pytest.raises(parallel.ParallelError, match="batch axis cannot be 3"):
        scanrnn.function([x], x.sum(), backend="jax", devices=1, batch_axes={x: 3})
    with pytest.raises(parallel.ParallelError, match="an int, 'all'"):
        scanrnn.function([x], x.sum(), backend="jax", devices="some")


def test_default_batch_axes_are_time_major():
    assert parallel.default_batch_axis(0) is None
    assert parallel.default_batch_axis(1) == 0
    assert parallel.default_batch_axis(2) == 1
    assert parallel.default_batch_axis(3) == 1


def test_initialize_without_coordinator_is_single_process(monkeypatch):
    for name in (parallel.ENV_COORDINATOR, parallel.ENV_NUM_PROCESSES, parallel.ENV_PROCESS_ID):
        monkeypatch.delenv(name, raising=False)
    assert parallel.initialize() is False
    with pytest.raises(parallel.ParallelError, match="need a coordinator"):
        parallel.initialize(num_processes=2)
    with pytest.raises(parallel.ParallelError, match="not in 0..1"):
        parallel.initialize("127.0.0.1:1", 2, 5)
    monkeypatch.setenv(parallel.ENV_NUM_PROCESSES, "two")
    with pytest.raises(parallel.ParallelError, match="must be an integer"):
        parallel.initialize("127.0.0.1:1", process_id=0)
