"""Several processes joined with ``jax.distributed`` (Gloo on the CPU), and ``scanrnn.launch``.

Two processes on 127.0.0.1, started by ``python -m scanrnn.launch``, each feed their own
rows of the batch to a data-parallel function and train a plain scan and the fused LSTM
for 10 steps; they must match one process fed the whole batch (float32, 1e-5).  A process
that dies at step 3 makes the other stop within a bounded time, with one clear line
(``PeerLost``) and exit status 1 (not a hang, not SIGABRT).  The launcher's own behaviour
(variables, a failed process stopping the others, Ctrl-C) is tested with plain children.
Every run has a subprocess timeout; where this environment cannot join two processes the
tests skip with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import scanrnn
from scanrnn import launch

pytestmark = pytest.mark.skipif("jax" not in scanrnn.installed_backends(),
                                reason="several processes need JAX")

RUN_TIMEOUT_S = 150
STEPS = 10

WORKER = textwrap.dedent('''
    import os, sys
    import numpy as np, pytensor, pytensor.tensor as pt
    import scanrnn
    from scanrnn import cells, optim, parallel

    out, die_at = sys.argv[1], int(sys.argv[2])
    joined = parallel.initialize(timeout_s=60, heartbeat_timeout_s=10)
    import jax
    rank, count = jax.process_index(), jax.process_count()
    print(f"JOINED {rank} of {count} (distributed: {joined})", flush=True)
    T, B, I, H = 6, 8, 5, 7

    def data(step):
        rng = np.random.default_rng(100 + step)
        x = rng.standard_normal((T, B, I)).astype("float32")
        y = rng.standard_normal((B, H)).astype("float32")
        rows = slice(rank * B // count, (rank + 1) * B // count)
        return x[:, rows], y[rows]

    def plain_scan():
        rng = np.random.default_rng(1)
        W = pytensor.shared((0.4 * rng.standard_normal((I, H))).astype("float32"), name="W")
        U = pytensor.shared((0.4 * rng.standard_normal((H, H))).astype("float32"), name="U")
        x, y = pt.tensor3("x"), pt.matrix("y")
        hs = scanrnn.scan(lambda xt, h, W, U: pt.tanh(xt @ W + h @ U), sequences=x,
                          outputs_info=pt.zeros((x.shape[1], H)), non_sequences=[W, U])
        loss = pt.mean((hs[-1] - y) ** 2)
        return [x, y], loss, optim.sgd(loss, [W, U], 0.1), [W, U]

    def fused_lstm():
        cell = cells.LSTMCell(I, H, name="lstm")
        params = cell.init_params(np.random.default_rng(2))
        x, y = pt.tensor3("x"), pt.matrix("y")
        hs, _ = scanrnn.unroll(cell, x, params)
        loss = pt.mean((hs[-1] - y) ** 2) + 0.1 * pt.mean(hs ** 2)
        shared = list(params.values())
        return [x, y], loss, optim.adam(loss, shared, 0.01), shared

    results = {}
    for build in (plain_scan, fused_lstm):
        inputs, loss, updates, shared = build()
        fn = scanrnn.function(inputs, loss, updates=updates, backend="jax", devices="all",
                              batch_axes={inputs[1]: 0})
        losses = []
        for step in range(10):
            if step == die_at and rank == 1:
                print("DYING", flush=True)
                os._exit(3)
            losses.append(float(fn(*data(step % 3))))
        results[build.__name__ + "/losses"] = np.array(losses)
        for v in shared:
            results[build.__name__ + "/" + v.name] = parallel.to_host(v.get_value(borrow=True))
    if rank == 0:
        np.savez(out, **results)
    print("DONE", rank, flush=True)
''')


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu", SCANRNN_KERNELS="0",
               PYTHONUNBUFFERED="1")
    for name in ("XLA_FLAGS", launch.ENV_COORDINATOR, launch.ENV_NUM_PROCESSES,
                 launch.ENV_PROCESS_ID):
        env.pop(name, None)
    return env


def _run(command, timeout=RUN_TIMEOUT_S):
    start = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=_env(),
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{command[:4]} did not finish within {timeout} s (a hang): "
                    f"{(exc.stderr or b'')[-2000:]!r}")
    return done, time.monotonic() - start


def _launched(worker, out, processes, die_at=-1):
    return [sys.executable, "-m", "scanrnn.launch", "--processes", str(processes), "--grace",
            "5", "--", sys.executable, str(worker), str(out), str(die_at)]


def _skip_unless_joined(done, processes):
    joined = done.stdout.count("JOINED")
    if done.returncode != 0 and joined < processes:
        pytest.skip(f"{processes} processes could not join with jax.distributed here "
                    f"(exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The worker on one process and on two (through the launcher): their saved results."""
    folder = tmp_path_factory.mktemp("multiprocess")
    worker = folder / "worker.py"
    worker.write_text(WORKER)
    one, _ = _run([sys.executable, str(worker), str(folder / "one.npz"), "-1"])
    assert one.returncode == 0, one.stderr[-3000:]
    two, seconds = _run(_launched(worker, folder / "two.npz", 2))
    _skip_unless_joined(two, 2)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("JOINED") == 2 and "of 2 (distributed: True)" in two.stdout
    return dict(np.load(folder / "one.npz")), dict(np.load(folder / "two.npz")), worker


@pytest.mark.parametrize("graph", ["plain_scan", "fused_lstm"])
def test_two_processes_train_like_one(runs, graph):
    one, two, _ = runs
    keys = sorted(k for k in one if k.startswith(graph + "/"))
    assert len(keys) >= 3 and keys == sorted(k for k in two if k.startswith(graph + "/"))
    assert one[f"{graph}/losses"][-1] < one[f"{graph}/losses"][0]  # it trained
    for key in keys:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_the_survivor_raises_peer_lost_and_exits_1(runs, tmp_path):
    """Without the launcher stopping it: process 0 must stop on its own, not hang or abort."""
    worker = runs[2]
    port = launch.free_port()
    procs = []
    for rank in (0, 1):
        env = dict(_env(), **{launch.ENV_COORDINATOR: f"127.0.0.1:{port}",
                              launch.ENV_NUM_PROCESSES: "2", launch.ENV_PROCESS_ID: str(rank)})
        procs.append(subprocess.Popen([sys.executable, str(worker), str(tmp_path / "x.npz"),
                                       "3"], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    start = time.monotonic()
    try:
        out0, err0 = procs[0].communicate(timeout=90)
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail("process 0 still ran 90 s after process 1 died (a hang)")
    procs[1].communicate(timeout=30)
    seconds = time.monotonic() - start
    if "JOINED" not in out0:
        pytest.skip(f"two processes could not join here: {err0.strip().splitlines()[-1:]}")
    assert procs[1].returncode == 3
    assert procs[0].returncode == 1, err0[-3000:]  # not 134 (SIGABRT)
    assert seconds < 60
    lines = [ln for ln in err0.splitlines() if ln.startswith("scanrnn.peer_failure.PeerLost")]
    assert lines and "another process of this data-parallel run stopped or is unreachable" \
        in lines[0], err0[-3000:]


# -- the launcher on its own (no JAX in the children) ---------------------------------------
def _py(code):
    return [sys.executable, "-c", code]


def test_launcher_sets_the_variables_and_succeeds(tmp_path):
    code = ("import os, pathlib; e = os.environ; pathlib.Path(sys.argv[1], "
            "e['SCANRNN_PROCESS_ID']).write_text(e['SCANRNN_NUM_PROCESSES'] + ' ' + "
            "e['SCANRNN_COORDINATOR'])").replace("sys.argv", "__import__('sys').argv")
    done, _ = _run([sys.executable, "-m", "scanrnn.launch", "-n", "3", "--", *_py(code),
                    str(tmp_path)], 60)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0", "1", "2"]
    seen = {p.read_text() for p in tmp_path.iterdir()}
    assert len(seen) == 1 and seen.pop().startswith("3 127.0.0.1:")


def test_launcher_stops_the_others_when_one_fails():
    code = ("import os, sys, time; rank = int(os.environ['SCANRNN_PROCESS_ID']); "
            "time.sleep(0.3); sys.exit(7) if rank == 1 else time.sleep(60)")
    done, seconds = _run([sys.executable, "-m", "scanrnn.launch", "-n", "3", "--grace", "2",
                          "--", *_py(code)], 60)
    assert done.returncode == 7
    assert seconds < 20
    assert "scanrnn.launch: process 1 of 3 failed with exit code 7; stopping the others" \
        in done.stderr


def test_launcher_forwards_ctrl_c():
    code = "import time; print('UP', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-m", "scanrnn.launch", "-n", "2", "--",
                             *_py(code)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    deadline = time.monotonic() + 30
    seen = ""
    while seen.count("UP") < 2 and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    proc.send_signal(2)  # SIGINT, what Ctrl-C sends
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.count("KeyboardInterrupt") == 2  # each child got it once
    assert "ended after SIGINT" in err


def test_launcher_errors():
    done, _ = _run([sys.executable, "-m", "scanrnn.launch", "-n", "2"], 30)
    assert done.returncode == 2 and "no command to run" in done.stderr
    done, _ = _run([sys.executable, "-m", "scanrnn.launch", "-n", "2", "--",
                    "no-such-command-scanrnn"], 30)
    assert done.returncode == 127 and "cannot start 'no-such-command-scanrnn'" in done.stderr
    assert launch.describe(-9) == "killed by SIGKILL (exit status 137)"
    assert launch.exit_status(3) == 3


def test_which_errors_mean_a_lost_process():
    from jax.errors import JaxRuntimeError

    from scanrnn.lm.processes import peer_lost
    from scanrnn.peer_failure import PeerLost
    assert peer_lost(PeerLost("another process of this data-parallel run stopped"))
    assert peer_lost(JaxRuntimeError("UNKNOWN: Gloo AllGather failed: Connection closed by peer"))
    assert peer_lost(JaxRuntimeError("UNAVAILABLE: Task 1 heartbeat timeout"))
    assert not peer_lost(JaxRuntimeError("RESOURCE_EXHAUSTED: out of memory"))
    assert not peer_lost(ValueError("connection refused"))  # not JAX's: the user's own error
