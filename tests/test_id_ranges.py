"""Integer inputs that pick rows or classes are checked before a call (scanrnn/id_ranges.py):
JAX used to clamp an id past the table and compute with the wrong row where C raised, and a
target past the classes scored 0 on every backend."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn import losses
from scanrnn.compile import installed_backends

BACKENDS = [b for b in ("jax", "c", "python") if b in installed_backends()]


def _lstm_on_ids(backend, V=6, classes=5, num_classes=None):
    """An LSTM reading token ids (its input projection picked by id), cross-entropy over
    ``classes`` outputs."""
    cell = scanrnn.cells.LSTMCell(V, 4)
    ids, y = pt.imatrix("ids"), pt.imatrix("y")
    hs, _ = scanrnn.unroll(cell, ids, cell.init_params(rng=0))
    W = pytensor.shared(np.ones((4, classes), "float32"), name="W_out")
    loss = losses.cross_entropy(hs @ W, y, num_classes=num_classes)
    return scanrnn.function([ids, y], loss, backend=backend), W


@pytest.mark.parametrize("backend", BACKENDS)
def test_ids_past_the_table_and_targets_past_the_classes_are_refused(backend):
    f, _ = _lstm_on_ids(backend)
    ok = np.zeros((3, 2), "int32")
    assert np.isfinite(f(ok, ok))
    with pytest.raises(ValueError, match=r"input 0 \('ids'\) holds the id 6, but each id picks "
                                         r"one of the 6 rows of a table: ids must be from -6 "
                                         r"to 5"):
        f(ok + 6, ok)
    with pytest.raises(ValueError, match="holds the id -7"):
        f(ok - 7, ok)
    with pytest.raises(ValueError, match=r"input 1 \('y'\) holds the id 5, but each id picks "
                                         r"one of the 5 classes of a loss: ids must be from 0"):
        f(ok, ok + 5)
    with pytest.raises(ValueError, match="holds the id -1"):
        f(ok, ok - 1)


def test_ids_in_range_give_the_same_numbers_on_every_backend():
    """Negative ids within the table count from its end, on every backend alike."""
    ids = np.array([[0, -1], [5, -6], [2, 3]], "int32")
    y = np.array([[0, 4], [1, 2], [3, 3]], "int32")
    got = [_lstm_on_ids(b)[0](ids, y) for b in BACKENDS]
    np.testing.assert_allclose(got, got[0], rtol=1e-5)


def test_the_range_follows_the_shared_value_and_num_classes():
    f, W = _lstm_on_ids("python")
    ok = np.zeros((3, 2), "int32")
    W.set_value(np.ones((4, 8), "float32"))  # 8 classes now: 7 is a valid target
    assert np.isfinite(f(ok, ok + 7))
    g, _ = _lstm_on_ids("python", num_classes=3)
    with pytest.raises(ValueError, match="one of the 3 classes"):
        g(ok, ok + 3)


def test_transposed_ids_columns_and_slices_are_checked():
    """take_rows(W, ids.T) and W[:, cols] are checked, and W[:, ids[:, 1]] checks that column
    of ids alone (the other column picks rows: checking all of ids against W's 3 columns
    would refuse it)."""
    W = pytensor.shared(np.arange(12, dtype="float32").reshape(4, 3), name="W")
    ids, cols = pt.imatrix("ids"), pt.ivector("cols")
    f = scanrnn.function([ids, cols], [scanrnn.contract.take_rows(W, ids.T).sum(),
                                       W[:, cols].sum(), W[:, ids[:, 1]].sum()],
                         backend=BACKENDS[0])
    f(np.array([[3, 2]], "int32"), np.array([2], "int32"))
    with pytest.raises(ValueError, match="input 0 .* one of the 4 rows"):
        f(np.array([[4, 1]], "int32"), np.array([2], "int32"))
    with pytest.raises(ValueError, match=r"input 1 \('cols'\) .* one of the 3 entries of "
                                         r"axis 1"):
        f(np.array([[1, 2]], "int32"), np.array([3], "int32"))
    with pytest.raises(ValueError, match=r"input 0 \('ids'\) holds the id 3, .* one of the 3 "
                                         r"entries of axis 1"):
        f(np.array([[1, 3]], "int32"), np.array([2], "int32"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_sequence_sliced_into_inputs_and_targets_is_checked(backend):
    """seq[:-1] picks rows, seq[1:] are the targets (one (T + 1, B) array of a language
    model): JAX computed with a clamped row for an id past the table, without a word."""
    V = 5
    W = pytensor.shared(np.random.default_rng(0).normal(size=(V, 3)).astype("float32"))
    W_out = pytensor.shared(np.ones((3, 4), "float32"))  # 4 classes: the last id is no target
    seq = pt.imatrix("seq")
    loss = losses.cross_entropy(W[seq[:-1]] @ W_out, seq[1:])
    f = scanrnn.function([seq], loss, backend=backend)
    assert np.isfinite(f(np.array([[4, 1], [3, 0], [2, 3]], "int32")))  # 4 only as an input
    with pytest.raises(ValueError, match=r"holds the id 7, but each id picks one of the 5 rows"):
        f(np.array([[1, 2], [7, 0], [3, 3]], "int32"))
    with pytest.raises(ValueError, match=r"holds the id 4, but each id picks one of the 4 "
                                         r"classes"):
        f(np.array([[1, 2], [0, 0], [4, 3]], "int32"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_integer_scalar_index_is_checked(backend):
    """W[i] and W[1:, i] with an integer scalar input: JAX clamped i past the axis (W[7]
    of 5 rows gave row 4) where C raised IndexError."""
    W = pytensor.shared(np.arange(15, dtype="float32").reshape(5, 3), name="W")
    i = pt.iscalar("i")
    f = scanrnn.function([i], [W[i].sum(), W[1:, i].sum()], backend=backend)
    np.testing.assert_allclose(f(2), [21.0, 38.0])
    np.testing.assert_allclose(f(-1), [39.0, 38.0])
    for bad, what in ((7, "of a table"), (-6, "of a table"), (4, "3 entries of axis 1")):
        with pytest.raises(ValueError, match=rf"input 0 \('i'\) holds the id {bad}, .*{what}"):
            f(bad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ids_computed_with_constants_and_ids_read_in_a_scan_step_are_checked(backend):
    """E[ids - 1] (1-based ids), E[ids + 1] and Theano's W_e[x_t] in a scan step: JAX
    computed with the clamped last row, without a word.  What the graph computes is checked
    (clip makes any id valid), and a table in the step checks the sequence it reads."""
    E = pytensor.shared(np.arange(8, dtype="float32").reshape(4, 2), name="E")
    ids = pt.ivector("ids")
    f = scanrnn.function([ids], [E[ids - 1].sum(), E[pt.clip(ids + 1, 0, 3)].sum()],
                         backend=backend)
    np.testing.assert_allclose(f(np.array([1, 4], "int32")), [1 + 13, 9 + 13])
    with pytest.raises(ValueError, match=r"input 0 \('ids'\) gives the id 4 where the graph "
                                         r"uses it .* one of the 4 rows"):
        f(np.array([5], "int32"))
    with pytest.raises(ValueError, match=r"gives the id -6 "):  # -5 - 1
        f(np.array([-5], "int32"))
    step = scanrnn.scan(lambda i, e: e[i].sum(), sequences=[ids], non_sequences=[E])
    g = scanrnn.function([ids], step.sum(), backend=backend)
    assert g(np.array([3, 0], "int32")) == 14.0
    with pytest.raises(ValueError, match=r"holds the id 7, .* 4 rows of a table \(read in a "
                                         r"scan step\)"):
        g(np.array([1, 7], "int32"))


def test_what_the_check_leaves_alone():
    """Masked targets (padding marked -1), a batched matmul's table (its leading axis comes
    from both operands), a function with givens (another graph runs) and a narrowing cast
    (the ids wrap): each ran before the check and still runs."""
    backend = BACKENDS[0]
    x, y, mask = pt.matrix("x", dtype="float32"), pt.ivector("y"), pt.vector("m")
    Wo = pytensor.shared(np.ones((3, 6), "float32"))
    masked = scanrnn.function([x, y, mask], losses.cross_entropy(x @ Wo, y, mask=mask),
                              backend=backend)
    assert np.isfinite(masked(np.ones((3, 3), "float32"), np.array([1, 2, -1], "int32"),
                              np.array([1, 1, 0], "float32")))
    ids = pt.ivector("ids")
    Wb = pytensor.shared(np.ones((5, 3, 2), "float32"))
    batched = scanrnn.function([x, ids], pt.matmul(x, Wb)[ids], backend=backend)
    assert batched(np.ones((4, 3), "float32"), np.array([3], "int32")).shape == (1, 4, 2)
    small = pytensor.shared(np.ones((3, 2), "float32"))
    big = pytensor.shared(np.ones((10, 2), "float32"))
    swapped = scanrnn.function([ids], small[ids].sum(), givens={small: big}, backend="python")
    assert swapped(np.array([8], "int32")) == 2
    W = pytensor.shared(np.ones((50, 1), "float32"))
    wrapped = scanrnn.function([ids], W[pt.cast(ids, "int8")].sum(), backend=backend)
    assert wrapped(np.array([300], "int32")) == 1
