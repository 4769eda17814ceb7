"""Vendor kernels under data parallelism (scanrnn.kernels.sharded): each device on its rows.

In a child process with 4 forced host devices and ``kernels=True``, an LSTM, a GRU and an
LSTM fed token ids train 5 steps (Adam) on 4 devices with the oneDNN kernels, on 1 device
with the kernels, and on 4 devices with the fused scan: same losses and parameters
(float32, 1e-5).  The compiled program shows each device's kernel call on B/4 rows and no
all-gather (XLA did not gather the batch onto every device).  The same for the cuDNN path's
LSTMs, with JAX's reference LSTM in cuDNN's place (tests/cudnn_standin.py).
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import scanrnn

pytestmark = pytest.mark.skipif("jax" not in scanrnn.installed_backends(),
                                reason="data parallelism needs JAX")

from scanrnn import kernels  # noqa: E402

REASON = kernels.unavailable_reason()
T, B, I, H, VOCAB = 6, 8, 5, 7, 11

CHILD = textwrap.dedent(f'''
    import json, sys
    import numpy as np, pytensor.tensor as pt
    import scanrnn
    from scanrnn import cells, kernels, optim
    VENDOR = sys.argv[1]
    if VENDOR == "cudnn":  # the stand-in: JAX's reference LSTM behind cuDNN's contract
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        import cudnn_standin
        cudnn_standin.install(setattr)

    T, B, I, H, VOCAB = {T}, {B}, {I}, {H}, {VOCAB}

    def data(step, ids):
        rng = np.random.default_rng(100 + step)
        x = rng.integers(0, VOCAB, (T, B)).astype("int32") if ids else \\
            rng.standard_normal((T, B, I)).astype("float32")
        return x, rng.standard_normal((B, H)).astype("float32")

    def build(kind, ids, devices, use_kernels):
        cell = cells.make_cell(kind, VOCAB if ids else I, H, name=kind)
        params = cell.init_params(np.random.default_rng(2))
        x = pt.tensor("x", shape=(None, None), dtype="int32") if ids else pt.tensor3("x")
        y = pt.matrix("y")
        hs, _ = scanrnn.unroll(cell, x, params)
        loss = pt.mean((hs[-1] - y) ** 2) + 0.1 * pt.mean(hs ** 2)
        shared = list(params.values())
        fn = scanrnn.function([x, y], loss, updates=optim.adam(loss, shared, 0.01),
                              backend="jax", devices=devices, batch_axes={{"y": 0}},
                              kernels=use_kernels)
        return fn, shared

    out = {{}}
    graphs = [("lstm", False), ("gru", False), ("lstm", True)]
    for kind, ids in [g for g in graphs if VENDOR == "onednn" or g[0] == "lstm"]:
        name = kind + ("_ids" if ids else "")
        for devices, use in ((4, True), (1, True), (4, False)):
            fn, shared = build(kind, ids, devices, use)
            losses = [float(fn(*data(s % 3, ids))) for s in range(5)]
            out[f"{{name}}/{{devices}}/{{use}}"] = dict(
                losses=losses, params=[np.asarray(v.get_value()).tolist() for v in shared],
                decisions=kernels.describe(fn))
            if devices == 4 and use:
                text = fn.compiled_text(*data(0, ids))
                out[name + "/calls"] = [ln.strip() for ln in text.splitlines()
                                        if "custom_call_target=\\"scanrnn_onednn" in ln]
                out[name + "/all_gathers"] = text.count("all-gather(")
    json.dump(out, sys.stdout)
''')


def run_child(tmp_path_factory, vendor):
    path = tmp_path_factory.mktemp("parallel_kernels") / "child.py"
    path.write_text(CHILD)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu", SCANRNN_KERNELS="1")
    done = subprocess.run([sys.executable, str(path), vendor], capture_output=True, text=True,
                          env=env, timeout=420)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if REASON is not None:
        pytest.skip(f"vendor kernels unavailable here, kernels under a mesh NOT tested: {REASON}")
    return run_child(tmp_path_factory, "onednn")


@pytest.fixture(scope="module")
def trained_cudnn(tmp_path_factory):
    import cudnn_standin
    if cudnn_standin.missing():
        pytest.skip(f"the cuDNN path under a mesh NOT tested: {cudnn_standin.missing()}")
    return run_child(tmp_path_factory, "cudnn")


GRAPHS = ["lstm", "gru", "lstm_ids"]


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("other", ["1/True", "4/False"], ids=["kernels_1_device", "scan"])
def test_kernels_on_4_devices_train_like_1_device_and_the_scan(trained, graph, other):
    many, want = trained[f"{graph}/4/True"], trained[f"{graph}/{other}"]
    np.testing.assert_allclose(many["losses"], want["losses"], rtol=1e-5, atol=1e-6)
    assert len(set(want["losses"])) > 1  # the parameters moved
    for got, ref in zip(many["params"], want["params"]):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("graph", GRAPHS)
def test_the_kernels_ran_each_device_on_its_rows(trained, graph):
    (line,) = trained[f"{graph}/4/True"]["decisions"]
    assert "oneDNN" in line and "each of 4 devices on its B/4 rows" in line
    assert trained[f"{graph}/4/False"]["decisions"] == []
    calls = trained[f"{graph}/calls"]
    forward = [c for c in calls if "scanrnn_onednn_rnn_forward" in c]
    backward = [c for c in calls if "scanrnn_onednn_rnn_backward" in c]
    assert forward and backward
    rows = B // 4
    for call in forward:  # its first result: hs (T, B/4, H) on each device
        assert re.search(rf"= \(f32\[{T},{rows},{H}\]", call), call[:300]
    for call in backward:  # the per-device h0 gradient (B/4, H) is among its results
        assert f"f32[{rows},{H}]" in call.split("custom-call(")[0], call[:300]
    assert trained[f"{graph}/all_gathers"] == 0


@pytest.mark.parametrize("graph", ["lstm", "lstm_ids"])  # cuDNN has the LSTM only
@pytest.mark.parametrize("other", ["1/True", "4/False"], ids=["kernels_1_device", "scan"])
def test_the_cudnn_path_on_4_devices_trains_like_1_device_and_the_scan(trained_cudnn, graph,
                                                                       other):
    many, want = trained_cudnn[f"{graph}/4/True"], trained_cudnn[f"{graph}/{other}"]
    (line,) = many["decisions"]
    assert "cuDNN lstm" in line and "each of 4 devices on its B/4 rows" in line, line
    np.testing.assert_allclose(many["losses"], want["losses"], rtol=1e-5, atol=1e-6)
    assert len(set(want["losses"])) > 1  # the parameters moved
    for got, ref in zip(many["params"], want["params"]):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert trained_cudnn[f"{graph}/all_gathers"] == 0
