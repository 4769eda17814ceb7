"""scanrnn.keras against Keras 3 where the two could silently differ: hard_sigmoid,
clipnorm / global_clipnorm, optimizer defaults, per-batch callback logs, and the
mask after ``go_backwards``.  Keras 3's numbers come from
``tests/fixtures/keras3_reference.npz`` (made by ``make_keras3_reference.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scanrnn.keras import (
    GRU,
    LSTM,
    SGD,
    Activation,
    Adagrad,
    Adam,
    Callback,
    Dense,
    Embedding,
    Input,
    Model,
    RMSprop,
    Sequential,
    SimpleRNN,
    model_from_json,
)
from scanrnn.keras.engine import Context

REF = np.load(Path(__file__).parent / "fixtures" / "keras3_reference.npz")


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _keras1_hard_sigmoid(z):
    return np.clip(0.2 * z + 0.5, 0, 1)


def _keras3_hard_sigmoid(z):
    return np.clip(z / 6 + 0.5, 0, 1)


def _numpy_lstm(x, W_x, W_h, b, gate):
    """Gates i, f, g, o; ``x`` (B, T, I) -> last h (B, H)."""
    H = W_h.shape[0]
    h = c = np.zeros((x.shape[0], H))
    for t in range(x.shape[1]):
        z = x[:, t] @ W_x + h @ W_h + b
        i, f, g, o = gate(z[:, :H]), gate(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), \
            gate(z[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
    return h


# -- hard_sigmoid -------------------------------------------------------------------------------

def test_hard_sigmoid_is_keras3s_when_spelled_the_keras3_way():
    x = REF["hard_sigmoid_x"]
    np.testing.assert_allclose(REF["hard_sigmoid_y"], _keras3_hard_sigmoid(x), atol=1e-7)
    model = Sequential([Activation("hard_sigmoid", input_shape=(x.size,))])
    np.testing.assert_allclose(model.predict(x[None])[0], REF["hard_sigmoid_y"], atol=1e-6)


@pytest.mark.parametrize("spelling,gate", [
    ({"recurrent_activation": "hard_sigmoid"}, _keras3_hard_sigmoid),
    ({"inner_activation": "hard_sigmoid"}, _keras1_hard_sigmoid),
    ({"recurrent_activation": "keras1_hard_sigmoid"}, _keras1_hard_sigmoid),
    ({}, _sigmoid),
])
def test_lstm_gates_follow_the_spelling(spelling, gate):
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32") * 3
    layer = LSTM(4, **spelling)
    model = Sequential([Input((5, 3)), layer])
    want = _numpy_lstm(x.astype("float64"), *layer.get_weights(), gate)
    np.testing.assert_allclose(model.predict(x), want, atol=1e-5)
    # the choice survives saving as JSON
    again = model_from_json(model.to_json())
    assert again.layers[0].recurrent_activation == layer.recurrent_activation


def test_format_1_json_keeps_keras1_hard_sigmoid():
    model = Sequential([Input((5, 3)), LSTM(4, inner_activation="hard_sigmoid")])
    spec = json.loads(model.to_json())
    spec["format"] = "scanrnn.keras/1"
    spec["config"]["layers"][0]["config"]["recurrent_activation"] = "hard_sigmoid"
    old = model_from_json(json.dumps(spec))
    assert old.layers[0].recurrent_activation == "keras1_hard_sigmoid"


# -- optimizers ------------------------------------------------------------------------------------

def _three_steps(optimizer, initial):
    x, y = REF["opt_x"], REF["opt_y"]
    model = Sequential([Input((4,)), Dense(3)])
    model.set_weights([initial[:12].reshape(4, 3), initial[12:]])
    model.compile(optimizer=optimizer, loss="mse")
    for _ in range(3):
        model.train_on_batch(x, y)
    return np.concatenate([w.ravel() for w in model.get_weights()])


@pytest.mark.parametrize("name,make", [
    ("rmsprop", RMSprop), ("adam", Adam), ("adagrad", Adagrad),
    ("clipnorm", lambda: SGD(learning_rate=0.5, clipnorm=0.3)),
    ("global_clipnorm", lambda: SGD(learning_rate=0.5, global_clipnorm=0.3)),
])
def test_optimizer_steps_equal_keras3(name, make):
    got = _three_steps(make(), REF[f"opt_{name}_initial"])
    np.testing.assert_allclose(got, REF[f"opt_{name}_final"], rtol=1e-5, atol=1e-6)


def test_optimizer_defaults_are_keras3s():
    assert RMSprop().hyper["epsilon"] == 1e-7 and Adam().hyper["epsilon"] == 1e-7
    ada = Adagrad()
    assert ada.lr == pytest.approx(1e-3)
    assert ada.hyper == {"initial_accumulator_value": 0.1, "epsilon": 1e-7}
    with pytest.raises(ValueError, match="not both"):
        SGD(clipnorm=1.0, global_clipnorm=1.0)


def test_clipnorm_clips_each_weight_and_global_clipnorm_all_together():
    """One step from zero weights: the per-weight and global rules differ, and both keep
    a gradient already under the limit as it is."""
    zero = np.zeros(15, dtype="float32")
    plain = _three_steps(SGD(learning_rate=0.5), zero)
    per_weight = _three_steps(SGD(learning_rate=0.5, clipnorm=0.3), zero)
    together = _three_steps(SGD(learning_rate=0.5, global_clipnorm=0.3), zero)
    assert not np.allclose(per_weight, together) and not np.allclose(plain, per_weight)
    loose = _three_steps(SGD(learning_rate=0.5, clipnorm=1e6), zero)
    np.testing.assert_allclose(loose, plain, rtol=1e-5, atol=1e-7)


# -- callbacks -------------------------------------------------------------------------------------

def test_batch_logs_hold_the_running_mean_as_in_keras3():
    initial = REF["logs_initial"]
    model = Sequential([Input((4,)), Dense(3)])
    model.set_weights([initial[:12].reshape(4, 3), initial[12:]])
    model.compile(optimizer=SGD(learning_rate=0.05), loss="mse")
    seen = []

    class Record(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs["loss"])

    history = model.fit(REF["opt_x"], REF["opt_y"], batch_size=4, epochs=2, shuffle=False,
                        verbose=0, callbacks=[Record()])
    np.testing.assert_allclose(seen, REF["logs_batch_loss"], rtol=1e-5)
    np.testing.assert_allclose(history.history["loss"], REF["logs_epoch_loss"], rtol=1e-5)
    assert seen[2] == pytest.approx(history.history["loss"][0])   # the epoch's last batch


# -- go_backwards masks ----------------------------------------------------------------------------

def test_go_backwards_reverses_the_output_mask_with_the_outputs():
    """Ours: the mask of a go_backwards return_sequences output is reversed with it
    (Keras 3 keeps input order).  A padded step repeats the previous state."""
    ids = Input((5,), dtype="int32")
    out = GRU(3, return_sequences=True, go_backwards=True)(Embedding(9, 2, mask_zero=True)(ids))
    model = Model(ids, out)
    ctx = Context()
    inputs, outputs = model.build_graph(ctx)
    import scanrnn
    fn = scanrnn.function(inputs, [outputs[0], ctx.masks[outputs[0]]])
    x = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]], dtype="int32")
    seq, mask = (np.asarray(v) for v in fn(x))
    np.testing.assert_array_equal(mask, (x != 0)[:, ::-1])
    # the first row's padding is read first: its states stay zero where the mask is 0
    np.testing.assert_array_equal(seq[0, :2], 0)
    assert np.all(seq[0, 2:] != 0)


# -- sample_weight and class_weight --------------------------------------------------------------

def _classifier():
    p0 = REF["sw_initial"]
    model = Sequential([Input((4,)), Dense(3, activation="softmax")])
    model.set_weights([p0[:12].reshape(4, 3), p0[12:]])
    model.compile(optimizer=SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
    return model


def _flat(model):
    return np.concatenate([w.ravel() for w in model.get_weights()])


def test_sample_weight_in_evaluate_and_train_on_batch_equals_keras3():
    """Keras 3: the loss is mean(loss_i * w_i), not renormalised by the weights."""
    model = _classifier()
    x, y, w = REF["opt_x"], REF["sw_y"], REF["sw_w"]
    assert model.evaluate(x, y, sample_weight=w, batch_size=4) == \
        pytest.approx(float(REF["sw_eval"]), rel=1e-5)
    assert model.evaluate(x, y, sample_weight=np.ones(10)) == pytest.approx(model.evaluate(x, y))
    model.train_on_batch(x, y, sample_weight=w)
    np.testing.assert_allclose(_flat(model), REF["sw_after_step"], rtol=1e-5, atol=1e-6)


def test_class_weight_in_fit_equals_keras3():
    model = _classifier()
    x, y, w = REF["opt_x"], REF["sw_y"], REF["sw_w"]
    model.train_on_batch(x, y, sample_weight=w)
    history = model.fit(x, y, class_weight={0: 0.5, 1: 2.0, 2: 1.0}, batch_size=4, epochs=2,
                        shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], REF["sw_class_losses"], rtol=1e-5)
    np.testing.assert_allclose(_flat(model), REF["sw_after_fit"], rtol=1e-5, atol=1e-6)


def test_per_step_sample_weights_on_a_sequence_output_equal_keras3():
    seq = Sequential([Input((4, 3)), SimpleRNN(2, return_sequences=True, activation="linear"),
                      Activation("softmax")])
    seq.set_weights([REF[f"sws_w{i}"] for i in range(3)])
    seq.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y, w = REF["sws_x"], REF["sws_y"], REF["sws_w"]
    assert seq.evaluate(x, y, sample_weight=w) == pytest.approx(float(REF["sws_eval"]), rel=1e-5)
    # (N,) weights broadcast over the steps
    per_sample = np.array([1.0, 0.0, 2.0, 0.5, 1.0, 3.0])
    assert seq.evaluate(x, y, sample_weight=per_sample) == pytest.approx(
        seq.evaluate(x, y, sample_weight=np.repeat(per_sample[:, None], 4, 1)))
    with pytest.raises(ValueError, match="one weight per sample"):
        seq.evaluate(x, y, sample_weight=np.ones(5))
