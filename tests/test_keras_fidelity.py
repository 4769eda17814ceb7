"""scanrnn.keras where a hostile comparison with Keras 3.15 found it silently different:
EarlyStopping's ``min_delta`` and ``patience``, and the best weights restored at the end.
Keras 3's behaviour is written out here (from keras/src/callbacks/early_stopping.py)."""

from __future__ import annotations

import numpy as np
import pytest

from scanrnn.keras import SGD, Callback, Dense, EarlyStopping, Input, Sequential


class _Model:
    """What EarlyStopping touches of a model."""

    def __init__(self):
        self.stop_training, self.weights = False, [np.zeros(1)]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = weights


def _drive(losses, **kwargs):
    """Feed ``losses`` as epoch-end logs: (epochs run, best, weights left at the end), the
    weights of each epoch being its number."""
    model, cb = _Model(), EarlyStopping(monitor="loss", **kwargs)
    cb.set_model(model)
    cb.on_train_begin()
    ran = 0
    for epoch, loss in enumerate(losses):
        model.weights = [np.full(1, epoch)]
        cb.on_epoch_end(epoch, {"loss": loss})
        ran += 1
        if model.stop_training:
            break
    cb.on_train_end()
    return ran, cb.best, int(model.weights[0][0])


@pytest.mark.parametrize("losses, kwargs, want", [
    ([1.0, 1.1, 1.2, 1.3], dict(patience=1), (2, 1.0)),          # patience: >=, not >
    ([1.0, 1.1, 1.2, 1.3], dict(patience=0), (2, 1.0)),          # never at the first epoch
    ([1.0, 1.1, 1.2, 1.3], dict(patience=2), (3, 1.0)),
    ([1.0, 0.999, 0.998, 0.997], dict(patience=1, min_delta=0.01), (2, 1.0)),
    ([1.0, 1.005, 1.009, 1.02], dict(patience=1, min_delta=0.01), (2, 1.0)),  # worse: no
    ([1.0, 0.98, 0.96, 0.94], dict(patience=1, min_delta=0.01), (4, 0.94)),
    ([1.0, 0.9, 0.95, 0.97, 0.99], dict(patience=2), (4, 0.9)),
    ([1.0, 0.9, 0.95, 0.97, 0.99], dict(patience=2, baseline=0.5), (3, 0.9)),  # wait goes on
    ([5.0, 6.0, 1.0, 1.5, 1.6], dict(patience=1, start_from_epoch=2), (4, 1.0)),
])
def test_early_stopping_stops_where_keras3_does(losses, kwargs, want):
    ran, best, _ = _drive(losses, **kwargs)
    assert (ran, best) == want


def test_the_best_weights_come_back_at_the_end_stopped_early_or_not():
    assert _drive([1.0, 0.5, 0.7, 0.8], patience=2, restore_best_weights=True)[2] == 1
    assert _drive([1.0, 0.5, 0.7], patience=5, restore_best_weights=True)[2] == 1  # not stopped
    assert _drive([1.0, 0.5, 0.7], patience=5)[2] == 2  # without restore: the last epoch's


def test_early_stopping_in_fit_keeps_the_best_epochs_weights():
    """A min_delta no epoch can beat: Keras 3 stops after 2 epochs and restores epoch 1's
    weights (scanrnn ran all 5 and kept a worse epoch's)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    model = Sequential([Input((3,)), Dense(1)])
    model.compile(optimizer=SGD(0.05), loss="mse")
    first = []
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[
        EarlyStopping(monitor="loss", patience=1, min_delta=10, restore_best_weights=True),
        _Remember(first)])
    assert len(history.history["loss"]) == 2
    for got, want in zip(model.get_weights(), first[0]):
        np.testing.assert_array_equal(got, want)


class _Remember(Callback):
    """A callback keeping the weights at the end of the first epoch."""

    def __init__(self, kept):
        super().__init__()
        self.kept = kept

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.kept.append(self.model.get_weights())


def test_a_masked_metric_is_a_mean_over_every_unmasked_step_of_the_run():
    """Keras 3 counts every unmasked step of the whole evaluation; scanrnn averaged each
    batch's masked accuracy weighted by the batch's size (0.169 for 0.174 over 3 batches).
    The loss stays a mean of batch losses weighted by batch size, as in Keras 3."""
    from scanrnn.keras import Embedding, SimpleRNN
    rng = np.random.default_rng(1)
    N, T, V = 7, 4, 5
    ids = rng.integers(1, 6, size=(N, T))
    ids[0, 2:] = 0
    ids[1, :1] = 0
    ids[3, 1:3] = 0
    y = rng.integers(0, V, size=(N, T))
    model = Sequential([Input((T,), dtype="int32"), Embedding(6, 3, mask_zero=True),
                        SimpleRNN(3, return_sequences=True), Dense(V, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    probs, mask = model.predict(ids), ids != 0
    right = (probs.argmax(-1) == y) & mask
    loss, accuracy = model.evaluate(ids, y, batch_size=3)
    assert accuracy == pytest.approx(right.sum() / mask.sum(), abs=1e-6)
    nll = -np.log(np.take_along_axis(probs, y[..., None], -1)[..., 0])
    batch_losses = [(nll[s:s + 3] * mask[s:s + 3]).sum() / mask[s:s + 3].sum()
                    for s in range(0, N, 3)]
    assert loss == pytest.approx(np.average(batch_losses, weights=[3, 3, 1]), rel=1e-5)
    assert model.test_on_batch(ids[:3], y[:3])[1] == pytest.approx(
        right[:3].sum() / mask[:3].sum(), abs=1e-6)
