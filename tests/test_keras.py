"""scanrnn.keras: parameter counts, layers against the core cells, shared weights, stateful
state, saving, batch sizes, spellings, and clear errors for bad input."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn import cells
from scanrnn.keras import (
    GRU,
    LSTM,
    SGD,
    Adam,
    BatchNormalization,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Input,
    LearningRateScheduler,
    Model,
    RMSprop,
    Sequential,
    SimpleRNN,
    TimeDistributed,
    load_model,
    merge,
    model_from_json,
    to_categorical,
)
from scanrnn.keras.engine import Context


def quiet(fn, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def built(layer, shape):
    """Build ``layer`` on a symbolic input of batch shape ``shape`` and return it."""
    layer(Input(batch_shape=shape))
    return layer


# -- parameter counts ---------------------------------------------------------------------------

@pytest.mark.parametrize("inputs,units", [(42, 256), (7, 3), (1, 1)])
def test_recurrent_parameter_counts_follow_the_keras_formulas(inputs, units):
    i, h = inputs, units
    cheap = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}  # no QR
    assert built(SimpleRNN(h, **cheap), (None, 5, i)).count_params() == h * (i + h) + h
    assert built(LSTM(h, **cheap), (None, 5, i)).count_params() == 4 * (h * (i + h) + h)
    assert built(GRU(h, **cheap), (None, 5, i)).count_params() == 3 * (h * (i + h) + 2 * h)
    # the core cells count the same (the layer adds nothing of its own)
    assert cells.GRUCell(i, h).n_params() == 3 * (h * (i + h) + 2 * h)


def test_other_layer_parameter_counts():
    assert built(Embedding(86, 42), (None, 8)).count_params() == 86 * 42
    assert built(Dense(86), (None, 256)).count_params() == 256 * 86 + 86
    assert built(Dense(5, use_bias=False), (None, 3)).count_params() == 15
    bn = built(BatchNormalization(), (None, 8, 42))
    assert bn.count_params() == 4 * 42
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2
    td = built(TimeDistributed(Dense(86)), (None, 8, 256))
    assert td.count_params() == 256 * 86 + 86
    assert built(Flatten(), (None, 1, 42)).count_params() == 0


def test_summary_prints_the_lessons_total():
    model = Sequential([Embedding(86, 42, input_length=8),
                        SimpleRNN(256, activation="relu", inner_init="identity"),
                        Dense(86, activation="softmax")])
    out = io.StringIO()
    model.summary(print_fn=lambda text: out.write(text))
    text = out.getvalue()
    assert "Total params: 102,258" in text and "Trainable params: 102,258" in text
    assert [line.split()[-1] for line in text.splitlines() if "(None" in line] == \
        ["3,612", "76,544", "22,102"]


# -- layers equal the core cells ------------------------------------------------------------------

def _by_hand(cell, params, x_bti, initial=None):
    """The core cell stepped in a Python loop (no scan), batch-major in and out."""
    states = initial or cell.initial_state(x_bti.shape[0])
    proj = cell.project(x_bti, params)
    outs = []
    for t in range(x_bti.type.shape[1]):
        new = cell.step(proj[:, t], *states, *cell.recurrent_params(params))
        states = list(new) if isinstance(new, (list, tuple)) else [new]
        outs.append(cell.output(states))
    return pt.stack(outs, axis=1), states


def test_recurrent_layers_equal_the_core_cell_unrolled_by_hand():
    x = pt.tensor("x", shape=(3, 4, 2), dtype="float32")
    layers = [SimpleRNN(5, activation="relu", return_sequences=True),
              GRU(5, return_sequences=False, return_state=True),
              LSTM(5, return_sequences=True, go_backwards=True, return_state=True)]
    got, want = [], []
    for layer in layers:
        out = layer(x)
        hand, states = _by_hand(layer.cell, layer.params,
                                x[:, ::-1] if layer.go_backwards else x)
        if layer.return_state:
            out, *finals = out
            got += finals
            want += states
        got.append(out)
        want.append(hand if layer.return_sequences else hand[:, -1])
    fn = scanrnn.function([x], got + want, backend="jax")
    values = fn(np.random.default_rng(0).normal(size=(3, 4, 2)).astype("float32"))
    half = len(values) // 2
    for a, b in zip(values[:half], values[half:]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_dense_embedding_and_batchnorm_are_plain_expressions():
    x = pt.tensor("x", shape=(None, 3), dtype="float32")
    dense = Dense(2, activation="softmax")
    out = dense(x)
    ctx = Context(training=False)
    ids = pt.tensor("ids", shape=(None, 4), dtype="int32")
    emb = Embedding(10, 3, mask_zero=True)
    bn = BatchNormalization()
    e = emb(ids, ctx=ctx)
    mask = emb.compute_mask(ids, ctx)
    normed = bn(e, ctx=ctx)
    fn = scanrnn.function([x, ids], [out, e, mask, normed], backend="jax")
    xv = np.arange(6, dtype="float32").reshape(2, 3)
    iv = np.array([[1, 2, 0, 0], [3, 4, 5, 0]], dtype="int32")
    o, ev, m, n = fn(xv, iv)
    W, b = dense.get_weights()
    z = xv @ W + b
    np.testing.assert_allclose(o, np.exp(z) / np.exp(z).sum(-1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(ev, emb.get_weights()[0][iv])
    np.testing.assert_array_equal(m, iv != 0)
    np.testing.assert_allclose(n, ev / np.sqrt(1 + 1e-3), rtol=1e-5)   # moving stats 0, 1


# -- functional models: shared layers, merge, several inputs and outputs ---------------------

def test_shared_layers_share_weights_and_train_once():
    a, b = Input(shape=(3,), name="a"), Input(shape=(3,), name="b")
    shared = Dense(4, activation="tanh", name="shared")
    out_sum = merge([shared(a), shared(b)], mode="sum")
    out_cat = Concatenate()([shared(a), Dense(2, name="other")(b)])
    model = Model([a, b], [out_sum, out_cat])
    assert model.layers.count(shared) == 1 and len(shared._nodes) == 3
    assert len(model.trainable_weights) == 4           # shared W, b + other W, b
    text = io.StringIO()
    model.summary(print_fn=text.write)
    assert "a[0][0]" in text.getvalue() and "b[0][0]" in text.getvalue()
    model.compile(loss="mse", optimizer=SGD(lr=0.1))
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    before = shared.get_weights()
    model.fit([xa, xb], [np.zeros((8, 4)), np.zeros((8, 6))], batch_size=8, epochs=1,
              verbose=0)
    W, bias = shared.get_weights()
    assert not np.allclose(W, before[0])
    pred_sum, pred_cat = model.predict({"a": xa, "b": xb})
    want = np.tanh(xa @ W + bias) + np.tanh(xb @ W + bias)
    np.testing.assert_allclose(pred_sum, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pred_cat[:, :4], np.tanh(xa @ W + bias), rtol=1e-4, atol=1e-5)


def test_initial_state_and_return_state_in_the_functional_api():
    seq, h0 = Input(shape=(4, 2)), Input(shape=(3,))
    out, h = SimpleRNN(3, return_state=True)(seq, initial_state=[h0])
    model = Model([seq, h0], [out, h])
    x = np.random.default_rng(1).normal(size=(2, 4, 2))
    zero_out, zero_h = model.predict([x, np.zeros((2, 3))])
    other_out, _ = model.predict([x, np.ones((2, 3))])
    np.testing.assert_allclose(zero_out, zero_h)
    assert not np.allclose(zero_out, other_out)
    rebuilt = model_from_json(model.to_json())
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt.predict([x, np.ones((2, 3))])[0], other_out, rtol=1e-5)


# -- stateful layers ------------------------------------------------------------------------------

def test_stateful_state_carries_across_batches_and_resets():
    weights_source = Sequential([SimpleRNN(5, return_sequences=True, input_shape=(None, 3))])
    stateful = Sequential([SimpleRNN(5, return_sequences=True, stateful=True,
                                     batch_input_shape=(2, 3, 3))])
    stateful.set_weights(weights_source.get_weights())
    x = np.random.default_rng(2).normal(size=(2, 6, 3)).astype("float32")
    full = weights_source.predict(x)
    first = stateful.predict(x[:, :3])
    second = stateful.predict(x[:, 3:])                 # continues from the carried state
    np.testing.assert_allclose(np.concatenate([first, second], 1), full, rtol=1e-5, atol=1e-6)
    stateful.reset_states()
    np.testing.assert_allclose(stateful.predict(x[:, 3:]), weights_source.predict(x[:, 3:]),
                               rtol=1e-5, atol=1e-6)
    state = stateful.layers[0].states[0]
    assert np.abs(np.asarray(state.get_value())).sum() > 0
    stateful.reset_states()
    assert not np.asarray(state.get_value()).any()
    # a stateful model keeps its batch size ...
    with pytest.raises(ValueError, match=r"stateful with batch size 2.*reset_states"):
        stateful.predict(x[:1, :3])
    with pytest.raises(ValueError, match="batch_size=4"):
        stateful.predict(np.concatenate([x, x])[:, :3], batch_size=4)
    # ... until its state is resized
    stateful.reset_states(batch_size=1)
    np.testing.assert_allclose(stateful.predict(x[:1, :3]), full[:1, :3], rtol=1e-5, atol=1e-6)


def test_stateful_needs_a_fixed_batch_size():
    with pytest.raises(ValueError, match="fixed batch size.*batch_input_shape"):
        Sequential([SimpleRNN(4, stateful=True, input_shape=(3, 2))])


# -- training, saving, batch sizes ---------------------------------------------------------------

@pytest.fixture(scope="module")
def trained():
    """A small LSTM language model trained a few batches with batch size 16."""
    rng = np.random.default_rng(3)
    x = rng.integers(1, 12, size=(64, 6))
    y = np.roll(x, -1, axis=1)
    model = Sequential([Embedding(12, 5, input_length=6), LSTM(8, return_sequences=True),
                        Dropout(0.1), TimeDistributed(Dense(12, activation="softmax"))])
    model.compile(loss="sparse_categorical_crossentropy", optimizer=Adam(lr=0.01),
                  metrics=["accuracy"])
    lr_seen = []
    history = model.fit(x, y[..., None], batch_size=16, epochs=3, verbose=0,
                        validation_split=0.25,
                        callbacks=[LearningRateScheduler(lambda epoch: 0.01 / (1 + epoch)),
                                   _Record(lr_seen)])
    return model, x, y, history, lr_seen


class _Record(scanrnn.keras.Callback):
    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(self.model.optimizer.lr)


def test_fit_history_metrics_and_callbacks(trained):
    model, _, _, history, lr_seen = trained
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert lr_seen == pytest.approx([0.01, 0.005, 0.01 / 3])
    assert model.metrics_names == ["loss", "accuracy"]


def test_predict_with_another_batch_size_than_training(trained):
    model, x, _, _, _ = trained
    whole = model.predict(x, batch_size=64)                # trained with batch_size=16
    np.testing.assert_allclose(model.predict(x[:1]), whole[:1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(x[:16], batch_size=3), whole[:16], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(whole.sum(-1), 1.0, rtol=1e-5)


def test_a_failed_save_leaves_the_previous_file_whole(trained, tmp_path, monkeypatch):
    model = trained[0]
    path = tmp_path / "model.npz"
    model.save(path)
    before = path.read_bytes()

    def interrupted(handle, **arrays):                 # half a file, then the disk is full
        handle.write(b"PK\x03\x04 half")
        raise OSError("no space left on device")
    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(OSError, match="no space"):
        model.save(path)
    with pytest.raises(OSError, match="no space"):
        model.save_weights(path)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_save_load_gives_the_same_predictions(trained, tmp_path):
    model, x, _, _, _ = trained
    want = model.predict(x, batch_size=64)
    model.save(tmp_path / "model.npz")
    with np.load(tmp_path / "model.npz", allow_pickle=False) as data:
        config = json.loads(str(data["__config__"]))
        assert config["class_name"] == "Sequential"
        assert any(k.startswith("__optimizer__/") for k in data.files)
    loaded = load_model(tmp_path / "model.npz")
    np.testing.assert_allclose(loaded.predict(x, batch_size=64), want, rtol=1e-6)
    assert loaded.optimizer.lr == pytest.approx(model.optimizer.lr)
    # the same architecture built again in code (other automatic names) takes the weights
    model.save_weights(tmp_path / "weights.npz")
    fresh = Sequential([Embedding(12, 5, input_length=6), LSTM(8, return_sequences=True),
                        Dropout(0.1), TimeDistributed(Dense(12, activation="softmax"))])
    fresh.load_weights(tmp_path / "weights.npz")
    assert [layer.name for layer in fresh.layers] != [layer.name for layer in model.layers]
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # training resumes from the saved optimizer state (restored when the updates are built)
    loaded.train_function()
    saved_slots, restored = model.optimizer.get_slot_values(), loaded.optimizer.get_slot_values()
    assert restored.keys() == saved_slots.keys() and float(restored["adam.t"]) > 0
    for name, value in saved_slots.items():
        np.testing.assert_array_equal(restored[name], value)
    wrong = Sequential([Embedding(12, 5, input_length=6), GRU(8, return_sequences=True),
                        TimeDistributed(Dense(12))])
    with pytest.raises(ValueError, match="cannot load"):
        wrong.load_weights(tmp_path / "weights.npz")


def test_learning_rate_changes_without_recompiling(trained):
    model, x, y, _, _ = trained
    fn = model.train_function()
    model.optimizer.lr = 0.0
    before = model.get_weights()
    model.train_on_batch(x[:16], y[:16])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.optimizer.learning_rate = 0.05
    model.train_on_batch(x[:16], y[:16])
    assert not np.allclose(before[0], model.get_weights()[0])
    assert model.train_function() is fn and len(fn.compiled) == 1


def test_masked_padding_is_skipped():
    model = Sequential([Embedding(9, 4, mask_zero=True, input_length=6), GRU(5)])
    x = np.array([[3, 1, 4, 0, 0, 0], [2, 7, 1, 8, 2, 8]])
    unpadded = Sequential([Embedding(9, 4, input_length=3), GRU(5)])
    unpadded.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(x)[0], unpadded.predict(x[:1, :3])[0], rtol=1e-5)


# -- Keras 1 and Keras 3 spellings ----------------------------------------------------------------

def test_keras1_and_keras3_spellings_agree():
    old = Dense(output_dim=4, init="identity", input_dim=4)
    new = Dense(units=4, kernel_initializer="identity")
    built(old, (None, 4))
    built(new, (None, 4))
    np.testing.assert_array_equal(old.get_weights()[0], np.eye(4))
    np.testing.assert_array_equal(new.get_weights()[0], np.eye(4))
    rnn1 = SimpleRNN(output_dim=3, inner_init="identity", consume_less="gpu")
    rnn3 = SimpleRNN(units=3, recurrent_initializer="identity")
    for layer in (rnn1, rnn3):
        built(layer, (None, 2, 5))
        np.testing.assert_array_equal(layer.params["W_h"].get_value(), np.eye(3))
    lstm = LSTM(output_dim=3, inner_activation="hard_sigmoid", forget_bias_init="zero")
    # Keras 1's argument keeps Keras 1's hard_sigmoid (see test_keras_compat.py)
    assert lstm.recurrent_activation == "keras1_hard_sigmoid" and not lstm.unit_forget_bias
    assert RMSprop(lr=0.1).lr == pytest.approx(RMSprop(learning_rate=0.1).learning_rate)
    np.testing.assert_array_equal(to_categorical([[1], [0]], nb_classes=3),
                                  [[0, 1, 0], [1, 0, 0]])
    assert to_categorical(np.array([[1, 2]]), 3).shape == (1, 2, 3)


# -- errors ------------------------------------------------------------------------------------

def test_bad_input_raises_clear_errors(trained):
    model, x, y, _, _ = trained
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch, timesteps"):
        SimpleRNN(4)(Input(shape=(8,)))
    with pytest.raises(ValueError, match="rank 2"):
        model.predict(x[..., None])
    with pytest.raises(ValueError, match=r"axis 1 must be 6"):
        model.predict(x[:, :4])
    with pytest.raises(ValueError, match=r"input_dim=12; ids must be in \[0, 12\)"):
        model.predict(x + 20)
    with pytest.raises(ValueError, match="class id"):
        model.train_on_batch(x[:4], y[:4] + 30)
    with pytest.raises(ValueError, match="unknown loss 'crossentropy'"):
        model.compile(loss="crossentropy", optimizer="adam")
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        Dense(3, activation="swishy")
    with pytest.raises(ValueError, match="unknown optimizer"):
        model.compile(loss="mse", optimizer="adamax2")
    with pytest.raises(ValueError, match="unknown initializer"):
        Dense(3, init="glorot_fancy")
    with pytest.raises(TypeError, match="unknown argument"):
        Dense(3, kernel_size=2)
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit(x, y[:10], verbose=0)
    a = Input(shape=(2,))
    with pytest.raises(ValueError, match="not among the model inputs"):
        Model(Input(shape=(2,)), Dense(1)(a))
    with pytest.raises(ValueError, match="has 2 input"):
        Model([a, Input(shape=(2,))], Dense(1)(a)).predict(np.zeros((1, 2)))
    with pytest.raises(RuntimeError, match="compile the model"):
        Sequential([Dense(1, input_dim=2)]).fit(np.zeros((2, 2)), np.zeros((2, 1)))


def test_get_file_resolves_through_the_corpus_registry(monkeypatch, tmp_path):
    from scanrnn.keras.utils import get_file
    monkeypatch.setenv("SCANRNN_OFFLINE", "1")
    path = get_file("nietzsche.txt", origin="https://s3.amazonaws.com/text-datasets/nietzsche.txt")
    with open(path, "rb") as f:
        assert path.endswith("nietzsche.txt") and f.read(4)
    assert get_file(origin="https://s3.amazonaws.com/text-datasets/nietzsche.txt") == path
    with pytest.raises(FileNotFoundError, match="no origin"):
        get_file("not_a_corpus.txt", cache_dir=tmp_path)
