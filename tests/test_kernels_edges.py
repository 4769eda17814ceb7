"""The vendor-kernel path at its edges (a hostile QA pass found each of these): token ids that
are negative or uint8, shapes that do not fit, an empty batch, a damaged cached library, a
broken $CXX, an unknown SCANRNN_KERNELS, explain() of a function compiled with kernels; and
on the scan path, float64 features into a float32 cell and int8 ids of a large table."""

import logging
import shutil

import numpy as np
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn import cells
from scanrnn.compile import installed_backends
from scanrnn.inspect import explain
from scanrnn.kernels import build
from scanrnn.recurrent import unroll

from test_kernels import assert_close, needs_kernel


@pytest.fixture(autouse=True)
def _kernels_on_by_default(monkeypatch):
    monkeypatch.setenv("SCANRNN_KERNELS", "1")


def _on_ids(kind, vocab, dtype, H=3):
    """A ``kind`` recurrence fed ``dtype`` token ids of a ``vocab``: loss, every gradient."""
    ids = pt.tensor("ids", shape=(None, None), dtype=dtype)
    cell = cells.make_cell(kind, vocab, H, name="r")
    params = cell.init_params(0)
    h, _ = unroll(cell, ids, params)
    loss = (pt.tanh(h) * np.linspace(-1, 1, H).astype("float32")).sum()
    return [ids], [h, loss, *pt.grad(loss, list(params.values()))]


def _both(inputs, outputs, *args):
    return [scanrnn.function(inputs, outputs, backend="jax", kernels=k)(*args)
            for k in (True, False)]


@needs_kernel
@pytest.mark.parametrize("kind,vocab,dtype,low", [("lstm", 5, "int32", -5),
                                                  ("gru", 300, "uint8", 0),
                                                  ("lstm", 300, "uint8", 0)])
def test_negative_and_narrow_token_ids_give_the_scan_numbers(kind, vocab, dtype, low):
    """A negative id counts from the end (the kernel's one-hot made it a zero row), and
    uint8 ids of a vocabulary over 256 stay single (the one-hot wrapped at 256)."""
    ids = np.array([[low, 1], [255 if vocab > 256 else -1, 3], [2, 4]]).astype(dtype)
    got, want = _both(*_on_ids(kind, vocab, dtype), ids)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, rtol=1e-4, what=f"output {i}")


@needs_kernel
def test_shapes_that_do_not_fit_the_kernel_are_refused_not_read_past():
    """oneDNN read past W_x and h0 (NaNs, or numbers from other memory) where the scan path
    refuses the same call."""
    x = pt.tensor("x", shape=(None, None, None), dtype="float32")
    h0, c0 = pt.matrix("h0", dtype="float32"), pt.matrix("c0", dtype="float32")
    cell = cells.make_cell("lstm", 3, 4, name="l")
    h, _ = unroll(cell, x, cell.init_params(0), [h0, c0])
    f = scanrnn.function([x, h0, c0], h.sum(), backend="jax", kernels=True)
    states = np.zeros((2, 4), "float32")
    assert np.isfinite(f(np.ones((4, 2, 3), "float32"), states, states))
    with pytest.raises(ValueError, match=r"oneDNN lstm: shapes that do not fit .* W_x \(3, 16\) "
                                         r"\(needs \(5, 16\)\)"):
        f(np.ones((4, 2, 5), "float32"), states, states)
    with pytest.raises(ValueError, match=r"h0 \(1, 4\) \(needs \(2, 4\)\), c0 \(1, 4\)"):
        f(np.ones((4, 2, 3), "float32"), states[:1], states[:1])


@needs_kernel
@pytest.mark.parametrize("shape", [(3, 0, 3)])
def test_an_empty_batch_gives_the_scan_answer(shape):
    """oneDNN refused it ("could not execute a primitive").  (An empty sequence fails on
    the scan path too: IndexError.)"""
    x = pt.tensor("x", shape=(None, None, 3), dtype="float32")
    h0 = pt.matrix("h0", dtype="float32")
    cell = cells.make_cell("gru", 3, 4, name="g")
    params = cell.init_params(0)
    h, (hT,) = unroll(cell, x, params, [h0])
    loss = (h ** 2).sum() + (hT * 0.5).sum()
    outs = [loss, *pt.grad(loss, [*params.values(), h0])]
    start = np.ones((shape[1], 4), "float32")
    got, want = _both([x, h0], outs, np.zeros(shape, "float32"), start)
    for g, w in zip(got, want):
        assert_close(g, w, what=str(shape))


@needs_kernel
def test_a_damaged_cached_library_is_built_again(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SCANRNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(build, "_RESULT", {})
    path = build.built_library()[0]
    path.write_bytes(b"")  # a full disk, a crash: a truncated file under the right name
    with caplog.at_level(logging.WARNING, logger="scanrnn.kernels"):
        lib, facts = build.library()
    assert lib is not None and hasattr(lib, "ScanrnnRnnForward"), facts
    assert path.stat().st_size > 0
    assert "damaged" in caplog.text and "building it again" in caplog.text


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="no C++ compiler")
def test_a_cxx_that_does_not_run_is_passed_over_with_one_line(monkeypatch, caplog):
    monkeypatch.setenv("CXX", "/bin/false")
    with caplog.at_level(logging.WARNING, logger="scanrnn.kernels"):
        path, _ = build.compiler()
    assert path != "/bin/false" and "CXX='/bin/false' does not run" in caplog.text


def test_an_unknown_switch_value_is_ignored_with_one_line(monkeypatch, caplog):
    monkeypatch.setenv("SCANRNN_KERNELS", "none")
    with caplog.at_level(logging.WARNING, logger="scanrnn.kernels"):
        assert build.env_setting() is None
        assert build.env_setting() is None
    assert caplog.text.count("SCANRNN_KERNELS='none' is not one of") == 1
    monkeypatch.setenv("SCANRNN_KERNELS", " Off ")
    assert build.env_setting() is False


@needs_kernel
def test_explain_studies_a_function_with_its_own_kernels_setting():
    x = pt.tensor("x", shape=(None, None, 3), dtype="float32")
    cell = cells.make_cell("gru", 3, 4, name="g")
    h, _ = unroll(cell, x, cell.init_params(0))
    X = np.ones((4, 2, 3), np.float32)
    for setting in (True, False):
        fn = scanrnn.function([x], (h ** 2).sum(), backend="jax", kernels=setting)
        text = explain(fn, inputs=[X], run=False).text()
        assert ("rewrite onednn_recurrence -> oneDNN lbr_gru" in text) == setting, text


def test_float64_features_into_a_float32_cell_are_one_clear_error():
    cell = cells.make_cell("lstm", 3, 4, name="l")
    params = cell.init_params(0)
    with pytest.raises(ValueError, match="the input is float64 but the cell's parameters are "
                                         "float32"):
        unroll(cell, pt.tensor("x", shape=(None, None, 3), dtype="float64"), params)
    h, _ = unroll(cell, pt.tensor("x", shape=(None, None, 3), dtype="float16"), params)
    assert h.dtype == "float32"


@pytest.mark.parametrize("backend", [b for b in ("jax", "python") if b in installed_backends()])
def test_int8_ids_of_a_table_over_127_rows(backend):
    """JAX's gather computed a negative id's row in int8 and overflowed on a 200-row table."""
    ids = np.array([[-3, 100], [127, 0]])
    got = scanrnn.function(*_on_ids("rnn", 200, "int8"), backend=backend, kernels=False)(
        ids.astype("int8"))
    want = scanrnn.function(*_on_ids("rnn", 200, "int32"), backend=backend)(
        ids.astype("int32"))
    for g, w in zip(got, want):
        assert_close(g, w)
