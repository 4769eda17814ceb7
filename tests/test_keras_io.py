"""Keras 3 weights and files: ``set_weights`` with Keras layouts, ``.weights.h5`` and
``.keras`` files made by Keras 3 (``tests/fixtures/make_keras3_reference.py``) predict
here what they predicted in Keras.  The file tests need h5py (an optional extra)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scanrnn.keras import (
    GRU,
    LSTM,
    Adam,
    BatchNormalization,
    Concatenate,
    Dense,
    Embedding,
    Input,
    Model,
    Sequential,
    SimpleRNN,
    TimeDistributed,
    load_model,
)

FIXTURES = Path(__file__).parent / "fixtures"
IO = np.load(FIXTURES / "keras3_io.npz")
try:
    import h5py  # noqa: F401
    HAVE_H5PY = True
except ImportError:
    HAVE_H5PY = False
needs_h5py = pytest.mark.skipif(not HAVE_H5PY, reason="h5py is not installed (the optional "
                                "extra for Keras .weights.h5 / .keras files)")


def _keras_weights(name):
    keys = sorted((k for k in IO.files if k.startswith(f"{name}_w")),
                  key=lambda k: int(k.split("_w")[1]))
    return [IO[k] for k in keys]


def sequential_model():
    """The fixture's Sequential model, spelled in scanrnn.keras with other layer names."""
    return Sequential([
        Input((6,), dtype="int32"),
        Embedding(10, 4, mask_zero=True, name="emb"),
        GRU(5, return_sequences=True, name="g"),
        LSTM(4, return_sequences=True),
        TimeDistributed(Dense(3, activation="tanh")),
        SimpleRNN(3, go_backwards=True),
        Dense(2, activation="softmax"),
    ])


def functional_model():
    inp = Input((5, 3))
    x = BatchNormalization()(GRU(4, return_sequences=True)(inp))
    out = Dense(2)(Concatenate()([LSTM(3)(x), SimpleRNN(3, activation="relu")(x)]))
    return Model(inp, out)


def test_gru_set_weights_takes_keras3s_three_arrays():
    layer = GRU(3)
    Sequential([Input((4, 2)), layer])
    rng = np.random.default_rng(0)
    W_x, W_h, biases = rng.normal(size=(2, 9)), rng.normal(size=(3, 9)), rng.normal(size=(2, 9))
    layer.set_weights([W_x, W_h, biases])
    got = layer.get_weights()                                # scanrnn's four arrays
    assert len(got) == 4
    for a, b in zip(got, [W_x, W_h, biases[0], biases[1]]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(ValueError, match="has shape"):
        layer.set_weights([W_x, W_h, biases[:, :6]])


@pytest.mark.parametrize("name,make", [("seq", sequential_model), ("func", functional_model)])
def test_model_set_weights_takes_a_keras3_weight_list(name, make):
    model = make()
    model.set_weights(_keras_weights(name))
    np.testing.assert_allclose(model.predict(IO[f"{name}_x"]), IO[f"{name}_y"], atol=1e-5)
    with pytest.raises(ValueError, match="array"):
        model.set_weights(_keras_weights(name)[:-1])


@needs_h5py
@pytest.mark.parametrize("name,make", [("seq", sequential_model), ("func", functional_model)])
def test_weights_h5_loads_by_layer_order(name, make):
    model = make()
    model.load_weights(FIXTURES / f"keras3_{name}.weights.h5")
    np.testing.assert_allclose(model.predict(IO[f"{name}_x"]), IO[f"{name}_y"], atol=1e-5)


@needs_h5py
def test_weights_h5_into_another_architecture_names_the_layer():
    other = Sequential([Input((6,), dtype="int32"), Embedding(10, 4), LSTM(5)])
    with pytest.raises(ValueError, match=r"'layers/lstm' into layer .*has shape \(4, 20\)"):
        other.load_weights(FIXTURES / "keras3_seq.weights.h5")
    two_grus = Sequential([Input((6,), dtype="int32"), Embedding(10, 4),
                           GRU(5, return_sequences=True), GRU(5, name="second")])
    with pytest.raises(ValueError, match="no weights for layer 'second' .*layers/gru_1"):
        two_grus.load_weights(FIXTURES / "keras3_seq.weights.h5")


@needs_h5py
@pytest.mark.parametrize("name", ["seq", "func"])
def test_keras_file_loads_architecture_weights_and_compile_settings(name):
    model = load_model(FIXTURES / f"keras3_{name}.keras")
    np.testing.assert_allclose(model.predict(IO[f"{name}_x"]), IO[f"{name}_y"], atol=1e-5)
    assert isinstance(model.optimizer, Adam) and model.loss == "mse"
    kinds = [type(layer).__name__ for layer in model.layers]
    assert "GRU" in kinds and "LSTM" in kinds and "SimpleRNN" in kinds


def _edit_keras_file(tmp_path, edit, member="config.json"):
    """A copy of the Sequential fixture whose config.json went through ``edit`` (or whose
    ``member`` went through ``edit``, bytes to bytes)."""
    src = zipfile.ZipFile(FIXTURES / "keras3_seq.keras")
    path = tmp_path / "edited.keras"
    with zipfile.ZipFile(path, "w") as out:
        for item in src.namelist():
            data = src.read(item)
            if item == member == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            elif item == member:
                data = edit(data)
            out.writestr(item, data)
    return path


def test_keras_file_with_a_layer_we_lack_names_it(tmp_path):
    def add_conv(config):
        config["config"]["layers"].insert(2, {"module": "keras.layers", "class_name": "Conv1D",
                                              "config": {"name": "my_conv", "filters": 4}})
        return config
    with pytest.raises(ValueError, match="'my_conv' is a Conv1D, which scanrnn.keras cannot"):
        load_model(_edit_keras_file(tmp_path, add_conv))

    def stateful_dropout(config):
        config["config"]["layers"][3]["config"]["zero_output_for_mask"] = True
        return config
    with pytest.raises(ValueError, match="'lstm'.*zero_output_for_mask"):
        load_model(_edit_keras_file(tmp_path, stateful_dropout))


def test_missing_h5py_is_a_clear_error(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "h5py", None)
    model = sequential_model()
    with pytest.raises(ImportError, match="pip install h5py"):
        model.load_weights(FIXTURES / "keras3_seq.weights.h5")


@needs_h5py
def test_a_keras_file_with_optimizer_steps_warns_that_its_state_starts_fresh(tmp_path):
    """Adam's moments and step count in a Keras file are not read: training went on from a
    fresh state without a word (0.12 apart from Keras after one more epoch)."""
    import io
    import warnings

    def four_steps(data):
        buffer = io.BytesIO(data)
        with h5py.File(buffer, "r+") as f:
            f["optimizer/vars/0"][()] = 4  # iterations: 4 steps taken
        return buffer.getvalue()
    path = _edit_keras_file(tmp_path, four_steps, member="model.weights.h5")
    with pytest.warns(UserWarning, match=r"its optimizer had taken 4 steps; its state .* is "
                                         r"not read from a Keras file"):
        model = load_model(path)
    assert isinstance(model.optimizer, Adam)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an untrained file (0 steps) loads quietly
        load_model(FIXTURES / "keras3_seq.keras")
        load_model(path, compile=False)


@needs_h5py
def test_a_legacy_keras_h5_model_file_loads_and_its_weights_load_by_order():
    """Keras's legacy whole-model .h5 (model.save("x.h5")): load_model said to use
    load_weights, and load_weights then said the file held "nothing"."""
    from scanrnn.keras import Bidirectional
    io = np.load(FIXTURES / "keras3_legacy_io.npz")
    model = load_model(FIXTURES / "keras3_legacy.h5")
    np.testing.assert_allclose(model.predict(io["x"]), io["y"], atol=1e-5)
    assert isinstance(model.optimizer, Adam) and model.optimizer.lr == pytest.approx(0.01)
    assert model.metrics_names == ["loss", "mae"]
    built = Sequential([Input((4, 3)), LSTM(3, return_sequences=True), Bidirectional(GRU(2)),
                        Dense(2)])
    built.load_weights(FIXTURES / "keras3_legacy.h5")
    np.testing.assert_allclose(built.predict(io["x"]), io["y"], atol=1e-5)
    wrong = Sequential([Input((4, 3)), GRU(2), Dense(2)])
    with pytest.raises(ValueError, match=r"holds weights for 3 layer\(s\) \(lstm, "
                                         r"bidirectional, dense\), model .* has 2"):
        wrong.load_weights(FIXTURES / "keras3_legacy.h5")
    assert load_model(FIXTURES / "keras3_legacy.h5", compile=False).optimizer is None
