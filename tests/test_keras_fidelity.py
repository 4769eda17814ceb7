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


def test_batch_normalization_leaves_masked_steps_out_of_its_statistics():
    """Keras 3 computes a masked input's batch mean and variance over the unmasked steps
    (the padding counted before: moving_mean 0.009 for 0.004)."""
    from scanrnn.keras import BatchNormalization, Embedding
    rng = np.random.default_rng(2)
    ids = rng.integers(1, 7, size=(5, 6))
    ids[0, 3:] = 0
    ids[2, :2] = 0
    model = Sequential([Input((6,), dtype="int32"), Embedding(7, 3, mask_zero=True),
                        BatchNormalization(momentum=0.0), Dense(2)])
    model.compile(optimizer=SGD(0.0), loss="mse")
    table = model.layers[0].get_weights()[0]
    model.fit(ids, np.zeros((5, 6, 2), "float32"), batch_size=5, epochs=1)
    moving_mean, moving_var = model.layers[1].get_weights()[2:]
    kept = table[ids[ids != 0]]
    np.testing.assert_allclose(moving_mean, kept.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(moving_var, kept.var(0), rtol=1e-4, atol=1e-7)


def test_metrics_may_be_one_string_and_several_outputs_report_their_losses():
    """compile(metrics="accuracy") was read letter by letter ("unknown metric 'a'"); a model
    with several outputs lacked Keras 3's per-output losses, so evaluate()[1] was a metric
    where Keras code expects the first output's loss."""
    from scanrnn.keras import Model
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 3)).astype("float32")
    ya, yb = rng.normal(size=(6, 2)).astype("float32"), rng.normal(size=(6, 1)).astype("float32")
    inputs = Input((3,))
    model = Model(inputs, [Dense(2, name="a")(inputs), Dense(1, name="b")(inputs)])
    model.compile(optimizer=SGD(0.0), loss=["mse", "mae"], loss_weights=[1.0, 2.0],
                  metrics="mae")
    assert model.metrics_names == ["loss", "a_loss", "b_loss", "a_mae", "b_mae"]
    pa, pb = model.predict(x)
    a_loss, b_loss = ((pa - ya) ** 2).mean(), np.abs(pb - yb).mean()
    got = model.evaluate(x, [ya, yb], batch_size=4)
    np.testing.assert_allclose(got, [a_loss + 2 * b_loss, a_loss, b_loss,
                                     np.abs(pa - ya).mean(), b_loss], rtol=1e-5)
    history = model.fit(x, [ya, yb], batch_size=4, epochs=1, validation_data=(x, [ya, yb]))
    assert {"a_loss", "b_loss", "val_a_loss", "val_b_mae"} <= set(history.history)
    assert model.train_on_batch(x, [ya, yb])[1] == pytest.approx(a_loss, rel=1e-5)


def test_directories_and_fractional_batch_sizes_get_clear_errors(tmp_path):
    """load_model(<directory>) said "no such file"; save(<directory>) failed naming an
    internal temporary file; fit(batch_size=2.5) ran as 2."""
    from scanrnn.keras import load_model
    model = Sequential([Input((3,)), Dense(2)])
    model.compile(optimizer=SGD(0.1), loss="mse")
    with pytest.raises(ValueError, match="is a directory, not a model or weights file"):
        load_model(tmp_path)
    with pytest.raises(ValueError, match="is a directory, not a model or weights file"):
        model.load_weights(tmp_path)
    for save in (model.save, model.save_weights):
        with pytest.raises(ValueError, match=r"it is a directory \(nothing was written\)"):
            save(tmp_path)
    assert list(tmp_path.iterdir()) == []
    x, y = np.ones((4, 3), "float32"), np.ones((4, 2), "float32")
    for bad in (2.5, "2", True, 0):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            model.fit(x, y, batch_size=bad)
    model.fit(x, y, batch_size=np.int64(2))
