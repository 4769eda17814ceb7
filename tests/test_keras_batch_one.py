"""A batch of exactly one sequence: compiled for that size from the start (on JAX), so
PyTensor prints no scan rewrite failures, and training on it shares the optimizer
state of the general step."""

from __future__ import annotations

import numpy as np
import pytest

from scanrnn.keras import (
    GRU,
    LSTM,
    Adam,
    Bidirectional,
    Dense,
    Embedding,
    Input,
    Sequential,
    SimpleRNN,
    TimeDistributed,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _models():
    yield "gru", Sequential([Input((5, 3)), GRU(4), Dense(2)])
    yield "lstm backwards", Sequential([Input((5, 3)), LSTM(4, go_backwards=True), Dense(2)])
    yield "masked", Sequential([Input((5,), dtype="int32"), Embedding(6, 3, mask_zero=True),
                                GRU(4, go_backwards=True, return_sequences=True),
                                SimpleRNN(3, dropout=0.2, recurrent_dropout=0.2), Dense(2)])
    yield "bidirectional", Sequential([Input((5, 3)), Bidirectional(LSTM(2)), Dense(2)])


def _data(model, n):
    rng = np.random.default_rng(0)
    if model.inputs[0].dtype == "int32":
        x = rng.integers(1, 6, size=(n, 5)).astype("int32")
        x[:, 3:] = 0
    else:
        x = rng.normal(size=(n, 5, 3)).astype("float32")
    return x, rng.normal(size=(n, 2)).astype("float32")


def test_one_sequence_compiles_without_tracebacks(capfd):
    for name, model in _models():
        model.compile(loss="mse", optimizer="adam")
        x, y = _data(model, 3)
        model.predict(x[:1])
        model.train_on_batch(x[:1], y[:1])
        model.evaluate(x[:1], y[:1])
        model.fit(x, y, batch_size=2, epochs=1, verbose=0)        # last batch: one sample
        err = capfd.readouterr().err
        assert "Rewrite failure" not in err and "Traceback" not in err, (name, err[-2000:])


def test_stateful_batch_of_one_is_quiet(capfd):
    model = Sequential([Input(batch_shape=(1, 5, 3)), LSTM(4, stateful=True, return_sequences=True),
                        TimeDistributed(Dense(2))])
    model.compile(loss="mse", optimizer="adam")
    x = np.ones((2, 5, 3), dtype="float32")
    model.fit(x, np.zeros((2, 5, 2), dtype="float32"), batch_size=1, shuffle=False, verbose=0)
    first = model.predict(x[:1])
    second = model.predict(x[:1])                  # the state carried on
    assert not np.allclose(first, second)
    assert "Rewrite failure" not in capfd.readouterr().err


def test_a_step_on_one_sequence_equals_that_sequence_twice_and_shares_adam_state():
    """The mean loss of a batch of one equals that of the row repeated, so both steps give
    the same weights; the batch-of-one step advances the same Adam moments and counter."""
    a = Sequential([Input((5, 3)), GRU(4), Dense(2)])
    b = Sequential([Input((5, 3)), GRU(4), Dense(2)])
    b.set_weights(a.get_weights())
    for model in (a, b):
        model.compile(loss="mse", optimizer=Adam(learning_rate=0.01))
    x, y = _data(a, 3)
    a.train_on_batch(x[:1], y[:1])
    b.train_on_batch(np.repeat(x[:1], 2, 0), np.repeat(y[:1], 2, 0))
    a.train_on_batch(x[1:], y[1:])
    b.train_on_batch(x[1:], y[1:])
    for got, want in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    slots = a.optimizer.get_slot_values()
    assert float(slots["adam.t"]) == 2.0
    assert len(a.optimizer.slots) == 1 + 2 * len(a.trainable_weights)
