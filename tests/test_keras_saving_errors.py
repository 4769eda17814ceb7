"""scanrnn.keras saving and loading when the name or the file is wrong: Keras's file names
are refused before anything is written (Keras could not read what scanrnn writes), a
format newer than this code asks for an upgrade, and a missing, empty, truncated or
corrupt file raises an error that names it (never EOFError, JSONDecodeError, BadZipFile
or KeyError).  Tiny models: nothing here trains."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scanrnn.keras import LSTM, Dense, Input, Sequential, load_model
from scanrnn.keras.functional import FORMAT
from test_keras_io import needs_h5py

FIXTURES = Path(__file__).parent / "fixtures"
INTERNAL = (EOFError, KeyError, json.JSONDecodeError, zipfile.BadZipFile)
CURRENT = int(FORMAT.rsplit("/", 1)[1])                # FORMAT is "scanrnn.keras/<n>"
SUPPORTED_FORMATS = [f"scanrnn.keras/{n}" for n in range(1, CURRENT + 1)]


def tiny():
    return Sequential([Input((4, 3)), LSTM(2), Dense(2)])


def _arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _write_npz(path, arrays):
    with open(path, "wb") as handle:            # exactly this name: no ".npz" appended
        np.savez(handle, **arrays)
    return path


def _with_config(tmp_path, name, edit):
    """A copy of a saved tiny model whose ``__config__`` (the JSON text) went through edit."""
    tiny().save(tmp_path / "good.npz")
    arrays = _arrays(tmp_path / "good.npz")
    arrays["__config__"] = np.array(edit(str(arrays["__config__"])))
    return _write_npz(tmp_path / name, arrays)


def _clear_error(excinfo, path):
    """The error names the file and is not one of the internal exceptions."""
    assert os.fspath(path) in str(excinfo.value)
    assert not isinstance(excinfo.value, INTERNAL), repr(excinfo.value)


# -- bug 1: Keras's file names -------------------------------------------------------------------

@pytest.mark.parametrize("name,suggested", [
    ("m.keras", "m.npz"), ("m.h5", "m.npz"), ("m.hdf5", "m.npz"), ("M.KERAS", "M.npz"),
    ("w.weights.h5", "w.weights.npz")])
@pytest.mark.parametrize("weights_only", [False, True])
def test_a_keras_file_name_is_refused_before_anything_is_written(tmp_path, name, suggested,
                                                                  weights_only):
    model = tiny()
    path = tmp_path / name
    save = model.save_weights if weights_only else model.save
    with pytest.raises(ValueError, match="Keras cannot read|Keras's load_weights cannot read"
                       ) as excinfo:
        save(path)
    message = str(excinfo.value)
    assert str(path) in message and repr(str(tmp_path / suggested)) in message
    assert list(tmp_path.iterdir()) == []
    # a file already there (an older scanrnn's save under that name) is left whole
    path.write_bytes(b"previous")
    with pytest.raises(ValueError):
        save(path)
    assert path.read_bytes() == b"previous" and list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("name", ["model", "model.npz", "ckpt.weights.npz", "model.v2"])
def test_scanrnn_names_save_exactly_there_and_load(tmp_path, name):
    model = tiny()
    model.save(tmp_path / name)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert zipfile.is_zipfile(tmp_path / name)
    loaded = load_model(tmp_path / name)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.save_weights(tmp_path / "w")
    fresh = tiny()
    fresh.load_weights(tmp_path / "w")
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_files_older_versions_saved_under_keras_names_still_load(tmp_path):
    model = tiny()
    model.save(tmp_path / "m.npz")
    model.save_weights(tmp_path / "w.npz")
    os.replace(tmp_path / "m.npz", tmp_path / "old.keras")     # what save("old.keras") wrote
    os.replace(tmp_path / "w.npz", tmp_path / "old.weights.h5")
    loaded = load_model(tmp_path / "old.keras")
    fresh = tiny()
    fresh.load_weights(tmp_path / "old.weights.h5")
    for a, b, c in zip(loaded.get_weights(), fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)


# -- bug 2: the format marker --------------------------------------------------------------------

def _set_format(value):
    def edit(text):
        spec = json.loads(text)
        if value is None:
            del spec["format"]
        else:
            spec["format"] = value
        return json.dumps(spec)
    return edit


def test_the_formats_read_are_every_one_up_to_the_one_written():
    from scanrnn.keras.saving import SUPPORTED_FORMATS as read
    assert list(read) == SUPPORTED_FORMATS and read[-1] == FORMAT


@pytest.mark.parametrize("newer", ["scanrnn.keras/99", "next"])
def test_a_newer_format_asks_for_an_upgrade(tmp_path, newer):
    if newer == "next":
        newer = f"scanrnn.keras/{CURRENT + 1}"
    path = _with_config(tmp_path, "new.npz", _set_format(newer))
    with pytest.raises(ValueError, match="upgrade scanrnn") as excinfo:
        load_model(path)
    _clear_error(excinfo, path)
    assert repr(newer) in str(excinfo.value)
    for known in SUPPORTED_FORMATS:
        assert known in str(excinfo.value)


@pytest.mark.parametrize("found,said", [(None, "no format marker"),
                                        ("keras/2", "unknown format 'keras/2'"),
                                        ("scanrnn.keras/x", "unknown format"),
                                        (2, "unknown format 2")])
def test_an_unknown_or_missing_format_is_refused(tmp_path, found, said):
    path = _with_config(tmp_path, "odd.npz", _set_format(found))
    with pytest.raises(ValueError, match=said) as excinfo:
        load_model(path)
    _clear_error(excinfo, path)
    assert FORMAT in str(excinfo.value) and "upgrade" not in str(excinfo.value)


@pytest.mark.parametrize("known", SUPPORTED_FORMATS)
def test_every_supported_format_loads(tmp_path, known):
    path = _with_config(tmp_path, "known.npz", _set_format(known))
    assert [type(layer).__name__ for layer in load_model(path).layers] == ["LSTM", "Dense"]


# -- bug 3: missing and damaged files ------------------------------------------------------------

@pytest.mark.parametrize("name", ["gone.npz", "gone.keras", "gone"])
def test_a_missing_file_is_named(tmp_path, name):
    with pytest.raises(FileNotFoundError, match="no such file") as excinfo:
        load_model(tmp_path / name)
    _clear_error(excinfo, tmp_path / name)
    with pytest.raises(FileNotFoundError) as excinfo:
        tiny().load_weights(tmp_path / name)
    _clear_error(excinfo, tmp_path / name)


@pytest.mark.parametrize("name", ["m.keras", "m.npz", "w.weights.h5", "m"])
def test_an_empty_file_is_named_and_called_empty(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    for load in (load_model, tiny().load_weights):
        with pytest.raises(ValueError, match=r"is empty .*not a scanrnn.keras .npz or a Keras 3"
                           ) as excinfo:
            load(path)
        _clear_error(excinfo, path)


def test_a_truncated_npz_is_named_and_called_truncated(tmp_path):
    tiny().save(tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: len(data) // 2])
    for load in (load_model, tiny().load_weights):
        with pytest.raises(ValueError, match="truncated or corrupt") as excinfo:
            load(path)
        _clear_error(excinfo, path)
    flipped = bytearray(data)                   # one byte of a stored array changed
    flipped[len(flipped) // 3] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="truncated or corrupt") as excinfo:
        load_model(path)
    _clear_error(excinfo, path)


def test_a_truncated_keras_file_is_named(tmp_path):
    data = (FIXTURES / "keras3_seq.keras").read_bytes()
    path = tmp_path / "cut.keras"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt") as excinfo:
        load_model(path)
    _clear_error(excinfo, path)


def _keras_file(tmp_path, replace):
    """A copy of the Sequential fixture with some members' bytes replaced."""
    src = zipfile.ZipFile(FIXTURES / "keras3_seq.keras")
    path = tmp_path / "edited.keras"
    with zipfile.ZipFile(path, "w") as out:
        for item in src.namelist():
            out.writestr(item, replace.get(item, src.read(item)))
    return path


@pytest.mark.parametrize("config,said", [(b"{not json", "config.json is not valid JSON"),
                                         (b"\xff\xfe", "config.json is not valid JSON"),
                                         (b"[1, 2]", "config.json holds a JSON list"),
                                         (b'{"class_name": "Sequential"}', "config.json")])
def test_a_keras_file_with_a_damaged_config_is_named(tmp_path, config, said):
    path = _keras_file(tmp_path, {"config.json": config})
    with pytest.raises(ValueError, match=said) as excinfo:
        load_model(path)
    _clear_error(excinfo, path)


NO_LAYERS = json.dumps({"format": FORMAT, "class_name": "Sequential"})


@pytest.mark.parametrize("config,said", [("{not json", "__config__.*not valid JSON"),
                                         ("[1, 2]", "__config__.*JSON list"),
                                         (NO_LAYERS, "cannot rebuild the model")])
def test_an_npz_with_a_damaged_config_is_named(tmp_path, config, said):
    path = _with_config(tmp_path, "bad.npz", lambda _: config)
    with pytest.raises(ValueError, match=said) as excinfo:
        load_model(path)
    _clear_error(excinfo, path)


@pytest.mark.parametrize("name,content,said", [
    ("text.npz", b"hello", "not even a zip archive"),
    ("other.zip", None, "member 'a.txt' is not a numpy array"),
    ("one.npy", None, "single numpy .npy array"),
    ("keras3_seq.weights.h5", None, r"holds weights only .*model.load_weights|pip install "
                                     r"h5py")])
def test_a_file_of_another_kind_says_what_it_is(tmp_path, name, content, said):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    elif name == "other.zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("a.txt", "hi")
    elif name == "one.npy":
        np.save(path, np.ones(3))
    else:
        path.write_bytes((FIXTURES / name).read_bytes())
    with pytest.raises(ValueError, match=said) as excinfo:
        load_model(path)
    _clear_error(excinfo, path)


@needs_h5py
def test_damaged_keras_weights_are_named(tmp_path):
    data = (FIXTURES / "keras3_seq.weights.h5").read_bytes()
    path = tmp_path / "cut.weights.h5"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt") as excinfo:
        tiny().load_weights(path)   # fails at open
    _clear_error(excinfo, path)
    path.write_bytes(data[:8] + b"\0" * 64)              # an HDF5 signature, then nothing
    with pytest.raises(ValueError, match="truncated or corrupt") as excinfo:
        tiny().load_weights(path)   # fails at open
    _clear_error(excinfo, path)
    inside = _keras_file(tmp_path, {"model.weights.h5": data[: len(data) // 2]})
    with pytest.raises(ValueError, match=r"model.weights.h5\) is truncated") as excinfo:
        load_model(inside)
    _clear_error(excinfo, inside)


def test_a_checkpoint_callback_with_a_keras_file_name_is_refused_before_training():
    """ModelCheckpoint("w.{epoch}.h5") would only fail after the first epoch trained."""
    from scanrnn.keras.callbacks import ModelCheckpoint
    with pytest.raises(ValueError, match="a Keras file name"):
        ModelCheckpoint("w.{epoch:02d}.h5", save_weights_only=True)
    with pytest.raises(ValueError, match="a Keras file name"):
        ModelCheckpoint("model.{epoch:02d}.keras")
    ModelCheckpoint("w.{epoch:02d}.npz", save_weights_only=True)
