"""Keras 3 files: ``.weights.h5`` (weights) and ``.keras`` (architecture + weights).

Reading them needs ``h5py`` (an optional extra); everything else here is numpy.

A ``.weights.h5`` file stores each layer's arrays under a key made from the
layer's class, in model order (``layers/gru``, ``layers/gru_1``, ...), with
recurrent layers' arrays under ``cell/`` and wrappers' under ``layer/`` or
``forward_layer/``, ``backward_layer/``.  Loading walks our model's layers the
same way (so layer names need not match, as in Keras) and converts Keras's
layouts to scanrnn's (a GRU's ``(2, 3H)`` bias array into ``b`` and ``b_h``).

A damaged file (truncated, corrupt HDF5, a ``config.json`` that is not JSON) raises a
ValueError that names it.  Nothing here writes Keras files (:mod:`.npz_format` refuses
Keras's file names).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib

import numpy as np


def h5py():
    """The ``h5py`` module, or an ImportError that says how to install it."""
    try:
        import h5py as module
    except ImportError as exc:
        raise ImportError("reading Keras .weights.h5 and .keras files needs h5py: "
                          "pip install h5py (or the scanrnn extra that includes it)") from exc
    return module


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path) -> bool:
    """Whether the file at ``path`` is HDF5 (a Keras ``.weights.h5``), by its first bytes."""
    try:
        with open(os.fspath(path), "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def is_keras_archive(path) -> bool:
    """Whether ``path`` is a Keras 3 ``.keras`` zip (one holding ``config.json``)."""
    path = os.fspath(path)
    if not (os.path.isfile(path) and zipfile.is_zipfile(path)):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return "config.json" in archive.namelist()
    except (zipfile.BadZipFile, EOFError, OSError):
        return False                    # damaged: the .npz reader says so, naming the file


def snake_case(name: str) -> str:
    """Keras's key for a class name: ``SimpleRNN`` -> ``simple_rnn``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def layer_keys(layers) -> list[tuple]:
    """``(layer, key)`` in order, the keys numbered per class as Keras numbers them."""
    used, out = {}, []
    for layer in layers:
        base = snake_case(type(layer).__name__)
        count = used.get(base)
        used[base] = 0 if count is None else count + 1
        out.append((layer, base if count is None else f"{base}_{count + 1}"))
    return out


def _vars(group) -> list[np.ndarray]:
    if group is None or "vars" not in group:
        return []
    found = group["vars"]
    return [np.asarray(found[str(i)]) for i in range(len(found))]


def group_arrays(layer, group) -> list[np.ndarray]:
    """The arrays of ``layer`` stored in the h5 ``group``, in Keras's layout."""
    kind = type(layer).__name__
    if kind == "TimeDistributed":
        return group_arrays(layer.layer, group.get("layer"))
    if kind == "Bidirectional":
        return (group_arrays(layer.forward_layer, group.get("forward_layer")) +
                group_arrays(layer.backward_layer, group.get("backward_layer")))
    if hasattr(layer, "cell_kind"):             # a recurrent layer: its arrays are its cell's
        return _vars(group.get("cell"))
    return _vars(group)


def _open(source):
    """An open h5py File for a path, an open file, or bytes' stream."""
    module = h5py()
    return module.File(source if not isinstance(source, (str, os.PathLike))
                       else os.fspath(source), "r")


def _damaged(name, exc) -> ValueError:
    return ValueError(f"{name} is truncated or corrupt ({type(exc).__name__}: {exc}); it is "
                      f"not a readable Keras 3 weights file. Save it again with Keras or use "
                      f"an intact copy")


def optimizer_steps(source) -> int:
    """How many steps the optimizer whose state a Keras 3 weights file holds had taken
    (its ``optimizer/vars/0``, ``iterations``; 0 when it holds none or cannot be read)."""
    try:
        with _open(source) as f:
            found = f.get("optimizer/vars/0")
            return 0 if found is None else int(np.asarray(found))
    except (OSError, KeyError, EOFError, TypeError, ValueError):
        return 0


def load_weights_h5(model, source, name=None) -> None:
    """Set ``model``'s weights from a Keras 3 ``.weights.h5`` file (path or file object);
    ``name`` (default: the path) is how errors call the file."""
    if name is None:
        name = (os.fspath(source) if isinstance(source, (str, os.PathLike))
                else "the Keras weights file")
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built yet; build it before loading "
                         f"weights")
    try:
        with _open(source) as f:
            legacy = _legacy_group(f)
            if f.get("layers") is None and legacy is not None:
                _set_legacy_weights(model, legacy, name)
            else:
                _set_layer_weights(model, f.get("layers"), name)
    except (FileNotFoundError, PermissionError):
        raise
    except (OSError, KeyError, EOFError) as exc:     # h5py's errors for damaged HDF5
        raise _damaged(name, exc) from exc


def _set_layer_weights(model, stored, name) -> None:
    for layer, key in layer_keys(model.layers):
        if not layer.weights:
            continue
        if stored is None or key not in stored:
            have = ", ".join(stored.keys()) if stored is not None else "nothing"
            raise ValueError(f"{name} has no weights for layer {layer.name!r} "
                             f"(key 'layers/{key}'); it holds: {have}")
        arrays = group_arrays(layer, stored[key])
        try:
            layer.set_weights(arrays)
        except ValueError as exc:
            raise ValueError(f"{name}: cannot load Keras weights 'layers/{key}' into layer "
                             f"{layer.name!r}: {exc}") from exc


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _legacy_group(f):
    """The group of a legacy (Keras 2 layout) ``.h5`` file whose attribute ``layer_names``
    lists the layers (``model_weights`` of a whole-model file), or None."""
    group = f.get("model_weights", f)
    return group if "layer_names" in group.attrs else None


def _set_legacy_weights(model, group, name) -> None:
    """Set weights from a legacy ``.h5``: its layers with weights, in order, onto the
    model's layers with weights (as Keras loads such files), Keras layouts converted."""
    stored = []
    for layer_name in (_text(n) for n in group.attrs["layer_names"]):
        names = [_text(w) for w in group[layer_name].attrs.get("weight_names", [])]
        if names:
            stored.append((layer_name, [np.asarray(group[layer_name][w]) for w in names]))
    layers = [layer for layer in model.layers if layer.weights]
    if len(stored) != len(layers):
        raise ValueError(f"{name} holds weights for {len(stored)} layer(s) "
                         f"({', '.join(n for n, _ in stored) or 'none'}), model "
                         f"{model.name!r} has {len(layers)} with weights")
    for layer, (layer_name, arrays) in zip(layers, stored):
        try:
            layer.set_weights(arrays)
        except ValueError as exc:
            raise ValueError(f"{name}: cannot load the weights of its layer {layer_name!r} "
                             f"into layer {layer.name!r}: {exc}") from exc


def read_legacy_h5_model(path) -> tuple[dict, dict | None]:
    """``(model config, training config or None)`` of a whole-model legacy ``.h5`` file
    (Keras's ``model.save("x.h5")``); a ValueError when it is a weights-only file."""
    try:
        with _open(path) as f:
            raw, training = f.attrs.get("model_config"), f.attrs.get("training_config")
    except (OSError, KeyError, EOFError) as exc:
        raise _damaged(os.fspath(path), exc) from exc
    if raw is None:
        raise ValueError(f"{os.fspath(path)} holds weights only (no model_config): build the "
                         f"model in code and call model.load_weights({os.fspath(path)!r})")
    fix = "Save it again with Keras or use an intact copy"
    config = json_object(_text(raw), path, "model_config", "Keras .h5 model file", fix)
    return config, (None if training is None else
                    json_object(_text(training), path, "training_config",
                                "Keras .h5 model file", fix))


def read_keras_archive(path) -> tuple[dict, bytes]:
    """``(config, weights h5 bytes)`` of a ``.keras`` zip file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a Keras 3 .keras file (a zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "config.json" not in names:
                raise ValueError(f"{path} has no config.json; it holds {', '.join(names)}")
            raw = archive.read("config.json")
            weights = (archive.read("model.weights.h5") if "model.weights.h5" in names
                       else None)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}); it is "
                         f"not a readable Keras 3 .keras file. Save it again with Keras or use "
                         f"an intact copy") from exc
    return _parse_config(path, raw), weights


def _parse_config(path, raw: bytes) -> dict:
    return json_object(raw, path, "config.json", "Keras 3 .keras file",
                       "Save it again with Keras or use an intact copy")


def json_object(raw, path, part: str, kind: str, fix: str) -> dict:
    """The JSON object ``raw`` (the ``part`` of the file at ``path``, a ``kind``); a
    ValueError naming the file when it is not valid JSON or not an object."""
    try:
        value = json.loads(raw)
    except ValueError as exc:       # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path} is corrupt: its {part} is not valid JSON ({exc}); it is "
                         f"not a readable {kind}. {fix}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{path} is corrupt: its {part} holds a JSON "
                         f"{type(value).__name__}, not an object")
    return value
