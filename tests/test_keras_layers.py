"""Recurrent arguments and layers beyond the basics: ``use_bias=False``, GRU
``reset_after=False``, ``Bidirectional`` (against Keras 3's numbers in
``tests/fixtures/keras3_io.npz``) and variational ``dropout`` / ``recurrent_dropout``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import scanrnn
from scanrnn.keras import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Input,
    Model,
    Sequential,
    SimpleRNN,
    TimeDistributed,
    load_model,
    model_from_json,
)
from scanrnn.keras.engine import Context

FIXTURES = Path(__file__).parent / "fixtures"
IO = np.load(FIXTURES / "keras3_io.npz")


def _keras_weights(name):
    keys = [k for k in IO.files if k.startswith(f"{name}_w")]
    return [IO[k] for k in sorted(keys, key=lambda k: int(k.split("_w")[1]))]


def _keras_outputs(name):
    keys = [k for k in IO.files if k.startswith(f"{name}_y")]
    return [IO[k] for k in sorted(keys, key=lambda k: int(k.split("_y")[1]))]


def variants_model():
    return Sequential([
        Input((5, 3)),
        GRU(4, reset_after=False, return_sequences=True),
        GRU(3, use_bias=False, return_sequences=True),
        GRU(3, use_bias=False, reset_after=False, return_sequences=True),
        LSTM(3, use_bias=False, return_sequences=True),
        SimpleRNN(2, use_bias=False),
    ])


def bidirectional_model():
    ids = Input((6,), dtype="int32")
    x = Embedding(10, 4, mask_zero=True)(ids)
    x = Bidirectional(GRU(3, return_sequences=True))(x)
    x = Bidirectional(SimpleRNN(2, return_sequences=True), merge_mode="ave")(x)
    seq = Bidirectional(LSTM(2, return_sequences=True), merge_mode="mul")(x)
    out, fh, fc, bh, bc = Bidirectional(LSTM(2, return_state=True), merge_mode="sum")(x)
    fwd, bwd = Bidirectional(GRU(2), merge_mode=None)(x)
    return Model(ids, [seq, out, fh, fc, bh, bc, fwd, bwd])


def test_use_bias_false_and_gru_reset_before_equal_keras3():
    model = variants_model()
    units, inputs = 4, 3
    assert model.layers[0].count_params() == 3 * (units * (inputs + units) + units)  # one bias
    assert model.layers[1].count_params() == 3 * 3 * (4 + 3)              # no bias
    assert [len(layer.weights) for layer in model.layers] == [3, 2, 2, 2, 2]
    model.set_weights(_keras_weights("variants"))
    np.testing.assert_allclose(model.predict(IO["variants_x"]), _keras_outputs("variants")[0],
                               atol=1e-5)
    again = model_from_json(model.to_json())
    assert [layer.use_bias for layer in again.layers] == [True, False, False, False, False]
    assert again.layers[0].reset_after is False


def test_bidirectional_equals_keras3_with_masks_states_and_merge_modes():
    model = bidirectional_model()
    model.set_weights(_keras_weights("bidi"))
    for got, want in zip(model.predict(IO["bidi_x"]), _keras_outputs("bidi")):
        np.testing.assert_allclose(got, want, atol=1e-5)
    concat = model.layers[2]
    assert concat.forward_layer.name.startswith("forward_")
    assert concat.backward_layer.go_backwards
    assert concat.count_params() == 2 * 3 * (3 * (4 + 3) + 2 * 3)


def test_bidirectional_round_trips_through_json():
    model = bidirectional_model()
    model.set_weights(_keras_weights("bidi"))
    again = model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    for got, want in zip(again.predict(IO["bidi_x"]), _keras_outputs("bidi")):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_bidirectional_from_a_keras_file():
    pytest.importorskip("h5py", reason="h5py is not installed (the optional extra for "
                                       "Keras files)")
    model = load_model(FIXTURES / "keras3_bidi.keras", compile=False)
    for got, want in zip(model.predict(IO["bidi_x"]), _keras_outputs("bidi")):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_bidirectional_rejects_what_it_cannot_wrap():
    with pytest.raises(TypeError, match="wraps a SimpleRNN"):
        Bidirectional(Dense(3))
    with pytest.raises(ValueError, match="merge_mode"):
        Bidirectional(GRU(3), merge_mode="max")
    seeded = Bidirectional(GRU(3, dropout=0.5, seed=3))        # the halves draw different masks
    assert (seeded.forward_layer.seed, seeded.backward_layer.seed) == (3, 4)


# -- dropout ------------------------------------------------------------------------------------

def _linear_rnn(**dropout):
    """SimpleRNN(4, linear) with W_x = W_h = I and no bias: ``h_t = x_t d_x + h_{t-1} d_h``."""
    layer = SimpleRNN(4, activation="linear", return_sequences=True, use_bias=False,
                      kernel_initializer="identity", recurrent_initializer="identity",
                      seed=3, **dropout)
    Sequential([Input((6, 4)), layer])
    return layer


def _run_training_graph(layer, x, calls=1):
    import pytensor.tensor as pt
    ctx = Context(training=True)
    xv = pt.tensor("x", shape=(None, 6, 4), dtype="float32")
    fn = scanrnn.function([xv], layer(xv, ctx=ctx), updates=ctx.updates)
    return [np.asarray(fn(x)) for _ in range(calls)]


def test_input_dropout_mask_is_fixed_across_time_steps():
    layer = _linear_rnn(dropout=0.5)
    x = np.ones((64, 6, 4), dtype="float32")
    first, second = _run_training_graph(layer, x, calls=2)
    # h_t = t * (x d_x): one mask per sequence, the same at every step
    steps = np.arange(1, 7, dtype="float32")[None, :, None]
    np.testing.assert_allclose(first, first[:, :1] * steps, rtol=1e-6)
    assert set(np.unique(first[:, 0])) == {0.0, 2.0}                     # 1 / (1 - 0.5)
    assert 0.35 < np.mean(first[:, 0] == 0) < 0.65
    assert not np.array_equal(first, second)                             # the stream advances


def test_recurrent_dropout_mask_is_fixed_across_time_steps():
    layer = _linear_rnn(recurrent_dropout=0.5)
    x = np.ones((64, 6, 4), dtype="float32")
    (h,) = _run_training_graph(layer, x)
    d_h = h[:, 1] - 1.0                                                   # h_2 = 1 + h_1 d_h
    assert set(np.unique(d_h)) == {0.0, 2.0}
    for t in range(2, 6):
        np.testing.assert_allclose(h[:, t], 1.0 + h[:, t - 1] * d_h, rtol=1e-6)


def test_dropout_only_while_training_and_fit_runs():
    x = np.random.default_rng(0).normal(size=(16, 6, 4)).astype("float32")
    y = np.random.default_rng(1).normal(size=(16, 2)).astype("float32")
    plain = Sequential([Input((6, 4)), LSTM(5), Dense(2)])
    dropped = Sequential([Input((6, 4)), LSTM(5, dropout=0.3, recurrent_dropout=0.3), Dense(2)])
    dropped.set_weights(plain.get_weights())
    np.testing.assert_allclose(dropped.predict(x), plain.predict(x), rtol=1e-6)
    dropped.compile(loss="mse", optimizer="adam")
    history = dropped.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert model_from_json(dropped.to_json()).layers[0].recurrent_dropout == 0.3
    with pytest.raises(ValueError, match="dropout must be in"):
        GRU(3, dropout=1.5)


def _dropout_stack(seed):
    """Input -> Dropout -> LSTM (dropout, recurrent_dropout) -> Dropout -> Dense: three
    streams (and their gradients) in one training graph."""
    return Sequential([Input((6, 4)), Dropout(0.5, seed=seed),
                       LSTM(5, return_sequences=True, dropout=0.2, recurrent_dropout=0.2,
                            seed=seed + 1),
                       Dropout(0.5, seed=seed + 2), TimeDistributed(Dense(3))])


def test_dropout_layer_draws_in_the_graph_fresh_each_step_and_from_its_seed():
    layer = Dropout(0.5, seed=7)
    Sequential([Input((6, 4)), layer])
    x = np.ones((64, 6, 4), dtype="float32")
    import pytensor.tensor as pt
    ctx = Context(training=True)
    xv = pt.tensor("x", shape=(None, 6, 4), dtype="float32")
    fn = scanrnn.function([xv], layer(xv, ctx=ctx), updates=ctx.updates)
    first, second = (np.asarray(fn(x)) for _ in range(2))
    assert set(np.unique(first)) == {0.0, 2.0} and 0.4 < np.mean(first == 0) < 0.6
    assert not np.array_equal(first, second)                       # a new mask every step
    assert np.asarray(layer.rng.get_value()).tolist() == [7, 2]    # [seed, steps drawn]
    layer.rng.set_value(np.array([7, 0], dtype=np.uint32))         # rewind: the same masks
    np.testing.assert_array_equal(np.asarray(fn(x)), first)


def test_dropout_streams_train_alike_from_one_seed():
    # on JAX (the default backend), where a shared numpy Generator would be copied per function
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6, 4)).astype("float32")
    y = rng.normal(size=(16, 6, 3)).astype("float32")
    losses = []
    for _ in range(2):
        scanrnn.keras.set_random_seed(5)
        model = _dropout_stack(seed=11)
        model.compile(loss="mse", optimizer="adam", backend="jax")
        losses.append(model.fit(x, y, epochs=2, batch_size=8, verbose=0,
                                shuffle=False).history["loss"])
        noiseless = model.evaluate(x, y, batch_size=16)
    assert np.all(np.isfinite(losses[0]))
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)    # same seed, same masks
    assert not np.isclose(losses[0][-1], noiseless, rtol=1e-3)     # training drops, eval not
