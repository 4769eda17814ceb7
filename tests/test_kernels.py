"""oneDNN kernels on the JAX backend (scanrnn.kernels): the kernel path equals the scan path.

Every kernel test compiles the same graph twice, ``kernels=True`` and ``kernels=False``,
and compares outputs, final states and all gradients (float32, 1e-5 relative to each
array's largest value).  Where oneDNN, a compiler or ``jax.ffi`` is missing those tests
are skipped with a reason saying that only the scan path was tested; the fallback tests
run everywhere.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                                reason="JAX is not installed: no kernel rewrite to test")

import pytensor.tensor as pt  # noqa: E402

import scanrnn  # noqa: E402
from scanrnn import cells, fused, kernels, losses, optim  # noqa: E402
from scanrnn.kernels import build  # noqa: E402
from scanrnn.recurrent import unroll  # noqa: E402

REASON = kernels.unavailable_reason() if importlib.util.find_spec("jax") else "no JAX"
VENDOR = kernels.vendor() if importlib.util.find_spec("jax") else None
needs_kernel = pytest.mark.skipif(
    REASON is not None,
    reason=f"vendor kernel path NOT tested here, only the scan path: {REASON}")



@pytest.fixture(autouse=True)
def _kernels_on_by_default(monkeypatch):
    """On the CPU kernels="auto" keeps the fused scan below H 512 (it measured faster); these tests
    study the kernel path, so "auto" means the kernels here."""
    monkeypatch.setenv("SCANRNN_KERNELS", "1")


def kernel_for(kind):
    """The kernel a ``kind`` recurrence (fed token ids or floats) runs on here (None: the
    scan), e.g. "oneDNN lbr_gru"; on cuDNN (a GPU, SCANRNN_CUDNN=1) only LSTMs."""
    if VENDOR == "cudnn":
        return "cuDNN lstm" if kind == "lstm" else None
    return {"lstm": "oneDNN lstm", "gru": "oneDNN lbr_gru"}.get(
        kind, f"oneDNN vanilla_rnn[{kind}]")


def assert_close(got, want, rtol=1e-5, what=""):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, what
    scale = max(np.abs(want).max(initial=0.0), 1e-6)
    err = np.abs(got - want).max(initial=0.0)
    assert err <= rtol * scale, f"{what}: max error {err:.3g} vs scale {scale:.3g}"


def _make_cell(kind, size, hidden, name):
    if kind in ("tanh", "relu"):
        return cells.make_cell("rnn", size, hidden, activation=kind, name=name)
    return cells.make_cell(kind, size, hidden, name=name)


def stacked_graph(kind, hidden, layers, *, go_backwards=False, ids=False, vocab=7, features=4,
                  seed=0):
    """Inputs, outputs (every layer's sequence, final states, a loss, its gradients)."""
    rng = np.random.default_rng(seed)
    x = pt.tensor("x", shape=(None, None), dtype="int32") if ids else \
        pt.tensor("x", shape=(None, None, features), dtype="float32")
    h, size, params, finals, inputs = x, vocab if ids else features, [], [], [x]
    for layer in range(layers):
        cell = _make_cell(kind, size, hidden, f"{kind}_{layer}")
        p = cell.init_params(seed + layer)
        init = [pt.matrix(f"s{layer}_{k}", dtype="float32") for k in range(cell.n_states)]
        inputs += init
        h, fin = unroll(cell, h, p, init, go_backwards=go_backwards and layer == layers - 1)
        finals += fin
        params += list(p.values())
        size = hidden
    w = rng.normal(size=hidden).astype("float32")
    loss = (pt.tanh(h) * w).sum() + sum((f * (i + 1)).sum() * 0.1 for i, f in enumerate(finals))
    wrt = params + inputs[1:] + ([] if ids else [x])
    return inputs, [h, *finals, loss, *pt.grad(loss, wrt)]


def arguments(inputs, T, B, hidden, ids, vocab=7, features=4, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, (T, B)).astype(np.int32) if ids else \
        rng.normal(size=(T, B, features)).astype(np.float32)
    states = [rng.normal(0, 0.5, (B, hidden)).astype(np.float32) for _ in inputs[1:]]
    return [x, *states]


def both_paths(inputs, outputs):
    return (scanrnn.function(inputs, outputs, backend="jax", kernels=True),
            scanrnn.function(inputs, outputs, backend="jax", kernels=False))


CASES = [  # kind, T, B, H, layers, go_backwards, ids
    ("lstm", 5, 3, 4, 2, False, True),
    ("lstm", 1, 1, 3, 1, True, False),
    ("gru", 4, 1, 5, 2, True, True),
    ("gru", 1, 2, 3, 1, False, False),
    ("tanh", 6, 2, 4, 2, False, False),
    ("relu", 3, 1, 4, 1, True, True),
]


@needs_kernel
@pytest.mark.parametrize("kind,T,B,H,layers,backwards,ids", CASES)
def test_kernel_path_equals_scan_path(kind, T, B, H, layers, backwards, ids):
    inputs, outputs = stacked_graph(kind, H, layers, go_backwards=backwards, ids=ids)
    with_k, without = both_paths(inputs, outputs)
    args = arguments(inputs, T, B, H, ids)
    before = kernels.describe(with_k)  # what the rewrite will do, before compiling
    got, want = with_k(*args), without(*args)
    lines = kernels.describe(with_k)
    assert before == lines and kernels.describe(without) == []
    expected = [kernel_for(kind)] * layers
    assert len(lines) == layers and all(
        f"rewrite onednn_recurrence -> {want} (" in ln if want else "fused scan" in ln
        for ln, want in zip(lines, expected)), lines
    assert without.kernel_decisions is None
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, what=f"output {i}")
    ops = {type(n.op).__name__ for n in with_k.function_for(*args).maker.fgraph.apply_nodes}
    if any(expected):
        assert {"OneDNNRecurrence", "OneDNNRecurrenceGrad"} <= ops
    assert ("Scan" in ops) == (not all(expected))


@needs_kernel
def test_shapes_that_change_between_calls_recompile_the_kernel():
    ids = True  # token ids: both vendors' kernels take them
    inputs, outputs = stacked_graph("lstm", 4, 1, ids=ids)
    with_k, without = both_paths(inputs, outputs)
    assert "fused scan" not in kernels.describe(with_k)[0]
    for T, B in ((5, 3), (2, 1), (5, 3)):
        args = arguments(inputs, T, B, 4, ids, seed=T)
        for i, (g, w) in enumerate(zip(with_k(*args), without(*args))):
            assert_close(g, w, what=f"T={T} B={B} output {i}")
    assert len(with_k.compiled) == 2


@needs_kernel
@pytest.mark.parametrize("kind", ["lstm", "gru", "tanh"])
def test_kernel_gradients_match_finite_differences(kind):
    if kernel_for(kind) is None:
        pytest.skip(f"no {VENDOR} kernel for {kind} here")
    cell = _make_cell(kind, 3, 4, kind)
    params = cell.init_params(3)
    x = pt.tensor("x", shape=(None, None, 3), dtype="float32")
    h, fin = unroll(cell, x, params)
    w = np.random.default_rng(0).normal(size=(4,)).astype("float32")
    loss = (h * w).sum() + fin[-1].sum()
    shared = list(params.values())
    fn = scanrnn.function([x], [loss, *pt.grad(loss, shared)], backend="jax")
    X = np.random.default_rng(1).normal(size=(4, 2, 3)).astype(np.float32)
    _, *grads = fn(X)
    assert kernel_for(kind) in kernels.describe(fn)[0]
    rng = np.random.default_rng(2)
    base = [p.get_value() for p in shared]
    direction = [rng.normal(size=b.shape).astype(np.float32) for b in base]
    eps = 1e-2
    values = []
    for sign in (1, -1):
        for p, b, d in zip(shared, base, direction):
            p.set_value((b + sign * eps * d).astype(np.float32))
        values.append(float(fn(X)[0]))
    for p, b in zip(shared, base):
        p.set_value(b)
    numeric = (values[0] - values[1]) / (2 * eps)
    analytic = sum(float((np.asarray(g, np.float64) * d).sum()) for g, d in zip(grads, direction))
    assert abs(numeric - analytic) <= 1e-2 * max(1.0, abs(analytic)), (numeric, analytic)


def _training(kernels_on, steps=20):
    """Losses of 20 Adam steps of a small 2-layer LSTM language model (clip 1.0)."""
    V, H, T, B = 11, 8, 6, 3
    x = pt.tensor("x", shape=(T, B), dtype="int32")
    y = pt.tensor("y", shape=(T, B), dtype="int32")
    h, params = x, []
    for layer, size in enumerate((V, H)):
        cell = cells.make_cell("lstm", size, H, name=f"lm_{layer}")
        p = cell.init_params(layer)
        h, _ = unroll(cell, h, p)
        h = h * 0.9
        params += list(p.values())
    W = scanrnn.init.glorot_uniform((H, V), name="W_out", rng=5)
    params.append(W)
    loss = losses.cross_entropy(pt.dot(h, W), y)
    grads, _ = optim.clip_by_global_norm(pt.grad(loss, params), 1.0)
    fn = scanrnn.function([x, y], loss, updates=optim.adam(grads, params, 0.05),
                          backend="jax", kernels=kernels_on)
    data = np.random.default_rng(0).integers(0, V, (T + 1, B)).astype(np.int32)
    out = [float(fn(data[:-1], data[1:])) for _ in range(steps)]
    return out, fn


@needs_kernel
def test_training_losses_match_the_scan_path_for_20_steps():
    with_k, fn = _training(True)
    without, _ = _training(False)
    want = kernel_for("lstm")
    for line in kernels.describe(fn):  # layer 0 reads token ids, layer 1 floats
        assert (want in line) if want else ("fused scan" in line), line
    assert with_k[-1] < with_k[0] - 0.1  # it trains
    np.testing.assert_allclose(with_k, without, rtol=0, atol=1e-4)


@needs_kernel
def test_cell_state_sequence_used_beyond_its_last_step_keeps_the_scan():
    cell = cells.make_cell("lstm", 3, 4, name="c")
    p = cell.init_params(0)
    x = pt.tensor("x", shape=(None, None, 3), dtype="float32")
    hs, cs = fused.recurrence(cell, cell.project(x, p, bias=False), cell.initial_state(2),
                              cell.recurrent_params(p), p["b"], "c")
    loss = hs.sum() + (cs ** 2).sum()
    outs = [loss, *pt.grad(loss, list(p.values()))]
    with_k, without = both_paths([x], outs)
    X = np.random.default_rng(0).normal(size=(4, 2, 3)).astype(np.float32)
    for g, w in zip(with_k(X), without(X)):
        assert_close(g, w)
    (line,) = kernels.describe(with_k)
    assert "fused scan" in line and "cell-state sequence" in line


@pytest.mark.parametrize("kw", [{"recurrent_activation": "hard_sigmoid"},
                                {"activation": "relu"}])
def test_activations_without_a_kernel_keep_the_scan(kw):
    cell = cells.make_cell("lstm", 3, 4, name="a", **kw)
    p = cell.init_params(0)
    x = pt.tensor("x", shape=(None, None, 3), dtype="float32")
    h, _ = unroll(cell, x, p)
    fn = scanrnn.function([x], [h.sum(), *pt.grad(h.sum(), list(p.values()))], backend="jax")
    fn(np.ones((3, 2, 3), np.float32))
    (line,) = kernels.describe(fn)
    assert "fused scan" in line and ("activation" in line or REASON and REASON in line), line


def test_without_the_kernels_the_scan_runs_and_one_line_says_why(monkeypatch, caplog):
    monkeypatch.setattr(kernels, "unavailable_reason", lambda: "test: oneDNN is missing")
    monkeypatch.setattr(kernels, "_LOGGED", set())
    inputs, outputs = stacked_graph("gru", 3, 1, ids=True)
    with caplog.at_level(logging.WARNING, logger="scanrnn.kernels"):
        fn = scanrnn.function(inputs, outputs, backend="jax")
        args = arguments(inputs, 4, 2, 3, True)
        got = fn(*args)
        kernels.rewrite(outputs)  # a second compilation logs nothing new
    reference = scanrnn.function(inputs, outputs, backend="jax", kernels=False)(*args)
    for g, w in zip(got, reference):
        assert_close(g, w, rtol=0)
    logged = [r for r in caplog.records if r.name == "scanrnn.kernels"]
    assert len(logged) == 1 and "test: oneDNN is missing" in logged[0].getMessage()
    assert kernels.describe(fn) == ["gru_0_fused: fused scan (test: oneDNN is missing)"]
    assert "Scan" in {type(n.op).__name__ for n in fn.function_for(*args).maker.fgraph.apply_nodes}


def test_kernels_false_and_other_backends_leave_the_graph_alone():
    inputs, outputs = stacked_graph("lstm", 3, 1)
    off = scanrnn.function(inputs, outputs, backend="jax", kernels=False)
    numba_or_py = scanrnn.function(inputs, outputs, backend="python")
    assert off.kernel_decisions is None and numba_or_py.kernel_decisions is None


@pytest.mark.skipif(VENDOR != "onednn", reason="the CPU's default selection (JAX not on the CPU)")
def test_on_a_gpu_auto_keeps_the_fused_scan(monkeypatch):
    """On an H200 the fused scan trained LSTMs 1.56-1.62x faster than cuDNN's LSTM."""
    monkeypatch.delenv("SCANRNN_KERNELS")
    monkeypatch.setattr(kernels, "_jax_platform", lambda: "gpu")
    assert kernels.wanted("auto") is False and kernels.wanted(True) is True
    monkeypatch.setenv("SCANRNN_KERNELS", "1")
    assert kernels.wanted("auto") is True
    monkeypatch.setattr(kernels, "_jax_platform", lambda: "cpu")
    monkeypatch.delenv("SCANRNN_KERNELS")
    assert kernels.wanted("auto") == "large LSTMs"


@pytest.mark.skipif(VENDOR != "onednn", reason="the CPU's default selection (JAX not on the CPU)")
def test_on_the_cpu_auto_puts_only_large_lstms_on_the_kernel(monkeypatch):
    monkeypatch.delenv("SCANRNN_KERNELS")
    assert kernels.wanted("auto") == "large LSTMs"
    small = [scanrnn.function(*stacked_graph(kind, 16, 1), backend="jax")
             for kind in ("lstm", "gru", "tanh")]
    big_gru = scanrnn.function(*stacked_graph("gru", 512, 1), backend="jax")
    big_lstm = scanrnn.function(*stacked_graph("lstm", 512, 1), backend="jax")

    def not_built():
        raise AssertionError("nothing should be built or loaded for these graphs")
    with monkeypatch.context() as m:
        m.setattr(kernels, "unavailable_reason", not_built)
        for fn in [*small, big_gru]:
            (line,) = kernels.describe(fn)
            assert "fused scan" in line and "H >= 512" in line, line
    (line,) = kernels.describe(big_lstm)
    assert (kernel_for("lstm") in line) if REASON is None else (REASON in line), line
    assert kernels.describe(scanrnn.function(*stacked_graph("lstm", 512, 1), backend="jax",
                                     kernels=False)) == []


def test_a_failed_build_is_one_clear_reason(tmp_path, monkeypatch):
    include = tmp_path / "include"
    include.mkdir()
    with pytest.raises(build.KernelUnavailable, match="building the oneDNN kernels failed"):
        build._compile("/bin/false", [include], tmp_path, tmp_path / "k" / "lib.so")
    assert not list((tmp_path / "k").glob("*.so"))  # no half-written library left behind
    monkeypatch.setenv("SCANRNN_KERNELS", "0")
    with pytest.raises(build.KernelUnavailable, match="SCANRNN_KERNELS=0"):
        build.built_library()


def test_the_cache_key_changes_with_source_compiler_jaxlib_onednn_and_its_folder():
    """The folder too: a build finds libdnnl where it was built (a venv that may be gone)."""
    parts = [b"src", "g++ 12", "0.10.2", "3.2.0", "/venv/a/lib"]
    key = build.build_key(*parts)
    for i, other in enumerate([b"src2", "g++ 13", "0.12", "3.3.0", "/venv/b/lib"]):
        changed = list(parts)
        changed[i] = other
        assert build.build_key(*changed) != key
    assert build.build_key(*parts) == key


def test_status_says_which_kernels_are_active_or_why_not():
    status = kernels.status()
    if REASON is None and VENDOR == "cudnn":
        assert status["active"] == ["cuDNN lstm (jax.experimental.rnn)"]
    elif REASON is None:
        assert "oneDNN lstm" in status["active"] and status["onednn"].startswith("3.")
    else:
        assert status["active"] == [] and status["reason"] == REASON


def test_on_a_gpu_the_rewrite_puts_lstms_on_cudnn_and_keeps_the_scan_for_the_rest():
    """The graph the GPU path builds (it runs only on a GPU: benchmarks/gpu_check.sh)."""
    from scanrnn.kernels import rewriting
    for kind, ids, want in (("lstm", False, "cuDNN lstm"), ("lstm", True, "cuDNN lstm"),
                            ("gru", False, None), ("tanh", False, None)):
        inputs, outputs = stacked_graph(kind, 3, 1, ids=ids)
        new, (decision,) = rewriting.apply(outputs, vendor="cudnn")
        assert decision.kernel == want, decision.line()
        ops = {str(n.op) for n in rewriting.io_toposort(inputs, new)}
        assert any("cuDNN lstm" in op for op in ops) == (want is not None)


def test_cudnns_custom_calls_declare_every_buffer_row_major(monkeypatch):
    """jaxlib's cuDNN RNN custom calls declare no layouts, and XLA on an H200 handed cuDNN a
    transposed input as a permuted-layout bitcast (wrong answers); scanrnn's declare every
    operand and result row-major.  jaxlib's own lowering, lowered for CUDA on this CPU, with
    a stand-in for the GPU plugin's descriptor (no GPU needed to lower)."""
    import jax
    from jaxlib import gpu_rnn

    from scanrnn.kernels import cudnn_rnn
    if not all(hasattr(gpu_rnn, n) for n in ("_rnn_fwd_lowering", "_rnn_bwd_lowering")):
        pytest.skip("this jaxlib's gpu_rnn lacks _rnn_fwd_lowering: the layouts NOT checked")

    class Plugin:  # what jaxlib asks of its CUDA plugin while lowering
        @staticmethod
        def build_rnn_descriptor(*args):
            return b"descriptor"
    monkeypatch.setattr(gpu_rnn, "compute_rnn_workspace_reserve_space_sizes",
                        lambda *args: (16, 8), raising=False)
    for name, lowering in (("cudnn_rnn_lowering", gpu_rnn._rnn_fwd_lowering),
                           ("cudnn_rnn_bwd_lowering", gpu_rnn._rnn_bwd_lowering)):
        monkeypatch.setattr(gpu_rnn, name, functools.partial(lowering, Plugin, "cu"))
    cudnn_rnn._row_major_primitives.cache_clear()  # registered again with the above
    T, B, I, H = 5, 3, 7, 4
    shapes = [(T, B, I), (I, 4 * H), (H, 4 * H), (4 * H,), (B, H), (B, H), (T, B, H), (B, H),
              (B, H)]

    def forward_and_backward(src, W_x, W_h, b, h0, c0, dhs, dhT, dcT):
        hs, hT, cT, reserve = cudnn_rnn.forward(src, W_x, W_h, b, h0, c0)
        return cudnn_rnn.backward(src, W_x, W_h, b, h0, c0, hs, hT, cT, reserve, dhs, dhT, dcT)
    try:
        args = [np.zeros(s, np.float32) for s in shapes]
        text = jax.jit(forward_and_backward).trace(*args).lower(
            lowering_platforms=("cuda",)).as_text()
    finally:
        cudnn_rnn._row_major_primitives.cache_clear()
    calls = [ln for ln in text.splitlines() if "stablehlo.custom_call @cudnn_rnn" in ln]
    assert [c.split("@")[1].split("(")[0] for c in calls] == ["cudnn_rnn_ffi",
                                                                "cudnn_rnn_bwd_ffi"]
    want = {"3": "[2, 1, 0]", "1": "0"}  # minor-to-major: row-major for rank 3 and 1
    for call, operands, results in ((calls[0], "33311", "33311"),
                                    (calls[1], "33333313111", "33311")):
        assert len(re.findall(r"dense<[^>]*> : tensor<\d+xindex>", call)) == (
            len(operands) + len(results)), call
        for attribute, ranks in (("operand_layouts", operands), ("result_layouts", results)):
            declared = re.findall(r"dense<(\[[\d, ]+\]|\d+)> : tensor<\d+xindex>",
                                  call.split(f"{attribute} = [")[1])[:len(ranks)]
            assert declared == [want[r] for r in ranks], (attribute, call)


# -- the cuDNN path, run on the CPU against a stand-in for cuDNN -------------------------

@pytest.fixture
def cudnn_standin(monkeypatch):
    """scanrnn's cuDNN path on this CPU, JAX's reference LSTM in cuDNN's place
    (tests/cudnn_standin.py)."""
    import cudnn_standin
    if cudnn_standin.missing():
        pytest.skip(f"cuDNN path NOT tested: {cudnn_standin.missing()}")
    cudnn_standin.install(monkeypatch.setattr)


@pytest.mark.parametrize("T, B, H, layers, backwards, ids", [
    (5, 3, 4, 2, False, True), (1, 1, 3, 1, True, False), (4, 2, 5, 1, False, False)])
def test_cudnn_path_equals_scan_path_against_a_standin_for_cudnn(cudnn_standin, T, B, H,
                                                                   layers, backwards, ids):
    inputs, outputs = stacked_graph("lstm", H, layers, go_backwards=backwards, ids=ids)
    with_k, without = both_paths(inputs, outputs)
    args = arguments(inputs, T, B, H, ids)
    got, want = with_k(*args), without(*args)
    lines = kernels.describe(with_k)
    assert len(lines) == layers and all("-> cuDNN lstm" in ln for ln in lines), lines
    ops = {type(n.op).__name__ for n in with_k.function_for(*args).maker.fgraph.apply_nodes}
    assert {"OneDNNRecurrence", "OneDNNRecurrenceGrad"} <= ops and "Scan" not in ops
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, what=f"output {i}")


def test_cudnn_path_trains_like_the_scan_path_against_a_standin(cudnn_standin):
    losses_by_path = []
    for use_kernels in (True, False):
        x = pt.tensor("x", shape=(None, None), dtype="int32")
        y = pt.tensor("y", shape=(None, None), dtype="int32")
        cell = cells.make_cell("lstm", 5, 8, name="lstm")
        p = cell.init_params(0)
        E = scanrnn.init.glorot_uniform((9, 5), name="E", rng=2)  # float inputs for cuDNN
        h, _ = unroll(cell, E[x], p)
        W_y = scanrnn.init.glorot_uniform((8, 9), name="W_y", rng=1)
        params = [*p.values(), E, W_y]
        loss = losses.cross_entropy(pt.dot(h, W_y), y)
        grads, _ = optim.clip_by_global_norm(pt.grad(loss, params), 1.0)
        fn = scanrnn.function([x, y], loss, updates=optim.adam(grads, params, 0.01),
                              backend="jax", kernels=use_kernels)
        rng = np.random.default_rng(3)
        seen = []
        for _ in range(10):
            batch = rng.integers(0, 9, (7, 4)).astype(np.int32)
            seen.append(float(fn(batch, np.roll(batch, -1, axis=0))))
        losses_by_path.append(seen)
        if use_kernels:
            assert "-> cuDNN lstm" in kernels.describe(fn)[0]
    assert_close(losses_by_path[0], losses_by_path[1], rtol=1e-4, what="losses")


def _diagnosis_module():
    """benchmarks/cudnn_diagnose.py, imported from its path."""
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "cudnn_diagnose.py"
    spec = importlib.util.spec_from_file_location("cudnn_diagnose", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gpu_diagnosis_script_runs_and_finds_the_standin_agreeing(cudnn_standin, monkeypatch,
                                                                     tmp_path):
    """benchmarks/cudnn_diagnose.py (run on a GPU by gpu_check.sh) works end to end here: our
    cuDNN wrapper against an independent lax.scan LSTM, JAX's rnn.lstm, the LM on the scan
    and on cuDNN."""
    diagnose = _diagnosis_module()
    monkeypatch.setattr(diagnose, "QUICK_SHAPES", [(5, 3, 7, 4)])
    monkeypatch.setenv("SCANRNN_CUDNN", "1")  # main() sets it; undone after the test
    report = tmp_path / "report.md"
    assert diagnose.main(["--standin", "--quick", "--out", str(report)],
                         set_attribute=monkeypatch.setattr) == 0
    text = report.read_text()
    assert text.count("| 5, 3, 7, 4, one-hot |") == 2 and "DIFFERS" not in text
    assert "| cuDNN |" in text and "cuDNN lstm; cuDNN lstm" in text
    assert "| dc0 | rerun | |" in text  # table 1's extra column
    assert "### 4. The custom calls" in text and "no custom calls: the stand-in" in text


def test_the_gpu_diagnosis_reports_a_wrong_kernel(cudnn_standin, monkeypatch):
    """A cuDNN whose input weights have two gates swapped differs in every row."""
    from scanrnn.kernels import cudnn_rnn
    diagnose = _diagnosis_module()
    right = cudnn_rnn.lstm_fwd

    def swapped_gates(x, h_0, c_0, w, seq_lengths, input_size, hidden_size, *rest):
        n = 4 * hidden_size * input_size
        W = w[:n].reshape(4, hidden_size, input_size)[np.array([1, 0, 2, 3])].ravel()
        return right(x, h_0, c_0, w.at[:n].set(W), seq_lengths, input_size, hidden_size, *rest)

    monkeypatch.setattr(cudnn_rnn, "lstm_fwd", swapped_gates)
    lines, worst = diagnose.kernel_table([(5, 3, 7, 4)], "swapped", diagnose.wrapper_errors)
    assert worst > 1e-3
    assert [ln.endswith("| DIFFERS |") for ln in lines[4:]] == [True, True], lines


def test_the_gpu_diagnosis_reports_a_kernel_that_answers_differently_each_call(
        cudnn_standin, monkeypatch):
    """A cuDNN reading uninitialised memory (here: a host counter added to its output) agrees
    on the first call and is caught by the rerun column."""
    import jax

    from scanrnn.kernels import cudnn_rnn
    diagnose = _diagnosis_module()
    right, calls = cudnn_rnn.lstm_fwd, []

    def drifting(*args):
        (y, h_n, c_n), residuals = right(*args)
        def counter():
            calls.append(1)
            return np.float32(0.0 if len(calls) == 1 else 1e-2)
        drift = jax.pure_callback(counter, jax.ShapeDtypeStruct((), np.float32))
        return (y + drift, h_n, c_n), residuals

    monkeypatch.setattr(cudnn_rnn, "lstm_fwd", drifting)
    errors = diagnose.wrapper_errors(*diagnose.arrays(5, 3, 7, 4, one_hot=False))
    assert len(errors) == len(diagnose.OUTPUTS) + 1
    assert max(errors[:-1]) <= diagnose.TOLERANCE and errors[-1] > 1e-3, errors


def test_on_a_gpu_cudnn_runs_unless_turned_off(monkeypatch):
    """cuDNN's LSTM (checked on an H200 with its layouts declared) is what kernels=True uses
    on a GPU; SCANRNN_CUDNN=0 turns it off, with the reason (kernels=True then runs the fused
    scan)."""
    from jax.experimental import rnn

    from scanrnn.kernels import cudnn_rnn
    monkeypatch.setattr(rnn, "gpu_rnn", object(), raising=False)  # a jaxlib with cuDNN's RNN
    monkeypatch.setattr(kernels, "vendor", lambda: "cudnn")
    for value in ("0", "off", " False "):  # the words SCANRNN_KERNELS takes
        monkeypatch.setenv("SCANRNN_CUDNN", value)
        assert kernels.unavailable_reason() == cudnn_rnn.TURNED_OFF
        assert kernels.status() == {"active": [], "reason": cudnn_rnn.TURNED_OFF}
    assert "SCANRNN_CUDNN=0" in cudnn_rnn.TURNED_OFF
    for value in (None, "1", "yes", "maybe"):
        if value is None:
            monkeypatch.delenv("SCANRNN_CUDNN", raising=False)
        else:
            monkeypatch.setenv("SCANRNN_CUDNN", value)
        assert kernels.unavailable_reason() is None
        assert kernels.status()["active"] == ["cuDNN lstm (jax.experimental.rnn)"]
    monkeypatch.setattr(kernels, "_jax_platform", lambda: "gpu")
    monkeypatch.delenv("SCANRNN_KERNELS", raising=False)
    assert kernels.wanted("auto") is False  # on a GPU the fused scan measured faster
