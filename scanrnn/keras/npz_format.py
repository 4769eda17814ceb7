"""scanrnn.keras's own file: weights in ``.npz`` (``allow_pickle=False``), the
architecture as JSON.

``save_weights`` writes one array per weight under the key
``"<layer name>/<weight name>"``, layers in model order.  ``save`` writes the
same file plus ``__config__`` (a JSON string: architecture, compile settings)
and ``__optimizer__/<slot>`` arrays (optimizer state), so ``load_model``
rebuilds, compiles and resumes training (:mod:`.saving`).  No pickle is written or
read.  Files are written atomically (:func:`scanrnn.checkpoint.atomic_write_bytes`): a
crash during a save leaves the previous file whole.  Keras's file names (``.keras``,
``.h5``, ``.hdf5``, ``.weights.h5``) are refused before anything is written: Keras cannot
read this format.  Any other name is written as given (``"model"`` or ``"model.npz"``; no
suffix is added).  :func:`read` turns a missing, empty, truncated or foreign file into one
clear error that names it.  This module takes a model object
and imports no model class.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
import zlib

import numpy as np

from ..checkpoint import atomic_write_bytes
from . import optimizers
from .keras_io import HDF5_SIGNATURE, json_object

CONFIG_KEY = "__config__"
OPTIMIZER_PREFIX = "__optimizer__/"
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")      # ".weights.h5" ends in ".h5"
FILE_KINDS = "a scanrnn.keras .npz or a Keras 3 .keras / .weights.h5 file"


def check_save_path(filepath, weights_only: bool = False) -> None:
    """Refuse a Keras file name (``.keras``, ``.h5``, ``.hdf5``, ``.weights.h5``) for a file
    scanrnn.keras writes: Keras could not read it.  Nothing is written either way."""
    path = os.fspath(filepath)
    if os.path.isdir(path):
        raise ValueError(f"cannot save to {path}: it is a directory (nothing was written); "
                         f"give a file name such as {os.path.join(path, 'model.npz')!r}")
    stem, suffix = os.path.splitext(path)
    if suffix.lower() not in KERAS_SUFFIXES:
        return
    suggested = repr(stem + ".npz")
    if weights_only:
        raise ValueError(
            f"cannot save weights as {path}, a Keras file name (nothing was written): "
            f"scanrnn.keras saves weights in its own format (a .npz), which Keras's "
            f"load_weights cannot read; save as {suggested} (model.load_weights reads both its "
            f".npz files and Keras 3 .weights.h5 files)")
    raise ValueError(
        f"cannot save the model as {path}, a Keras file name (nothing was written): "
        f"scanrnn.keras saves its own format (a .npz: architecture, weights, optimizer state), "
        f"which Keras cannot read; save as {suggested} (scanrnn.keras.load_model reads both "
        f"its .npz files and Keras 3 .keras files)")


def _weight_items(model):
    items = []
    for layer in model.layers:
        for var in layer.weights:
            items.append((f"{layer.name}/{var.name}", np.asarray(var.get_value())))
    return items


def _write(filepath, arrays: dict):
    atomic_write_bytes(os.fspath(filepath), lambda handle: np.savez(handle, **arrays))


def save_weights(model, filepath) -> None:
    check_save_path(filepath, weights_only=True)
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built, so it has no weights yet")
    _write(filepath, dict(_weight_items(model)))


def read(filepath) -> dict:
    """The arrays of a scanrnn.keras ``.npz``; any other file raises an error naming it."""
    path = os.fspath(filepath)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a model or weights file: give the "
                         f"file's path (a .npz, .keras or .h5)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    _check_magic(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ValueError(f"{path} holds a pickled (object) array, which scanrnn.keras never "
                             f"writes or reads: it is not {FILE_KINDS}") from exc
        raise _corrupt(path, exc) from exc
    except (EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise _corrupt(path, exc) from exc
    foreign = [key for key, value in arrays.items() if not isinstance(value, np.ndarray)]
    if foreign:
        raise ValueError(f"{path} is a zip archive but not {FILE_KINDS}: its member "
                         f"{foreign[0]!r} is not a numpy array and it has no config.json")
    return arrays


def _check_magic(path) -> None:
    """Raise a clear error unless the file at ``path`` starts like a zip (an ``.npz``)."""
    with open(path, "rb") as handle:
        magic = handle.read(8)
    if not magic:
        raise ValueError(f"{path} is empty (0 bytes): a save that never finished, or a file "
                         f"truncated by a copy; it is not {FILE_KINDS}. Save it again or use an "
                         f"intact copy")
    if magic.startswith(b"\x93NUMPY"):
        raise ValueError(f"{path} is a single numpy .npy array, not {FILE_KINDS}")
    if magic == HDF5_SIGNATURE:
        raise ValueError(f"{path} is an HDF5 file (a Keras .h5 or .weights.h5): load_model reads "
                         f"only scanrnn.keras .npz and Keras 3 .keras files; for Keras weights, "
                         f"build the model in code and call model.load_weights({path!r})")
    if not magic.startswith(b"PK"):
        raise ValueError(f"{path} is not {FILE_KINDS} (it is not even a zip archive)")


def _corrupt(path, exc) -> ValueError:
    return ValueError(f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}); it is not "
                      f"a readable scanrnn.keras .npz or Keras 3 .keras file. Save it again or "
                      f"use an intact copy")


def _groups(arrays: dict) -> dict:
    groups = {}
    for key, value in arrays.items():
        if key.startswith("__"):
            continue
        if "/" not in key:
            raise ValueError(f"unexpected key {key!r} in a weights file (expected "
                             f"'layer/weight')")
        layer, weight = key.split("/", 1)
        groups.setdefault(layer, []).append((weight, value))
    return groups


def load_weights(model, filepath, by_name: bool = False) -> None:
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built yet; build it (give an input shape "
                         f"or call predict once) before loading weights")
    groups = _groups(read(filepath))
    layers = [layer for layer in model.layers if layer.weights]
    if by_name:
        for layer in layers:
            if layer.name not in groups:
                continue
            saved = dict(groups[layer.name])
            missing = [v.name for v in layer.weights if v.name not in saved]
            if missing:
                raise ValueError(f"{filepath}: layer {layer.name!r} lacks weight(s) {missing}")
            layer.set_weights([saved[v.name] for v in layer.weights])
        return
    if len(groups) != len(layers):
        raise ValueError(
            f"{filepath} holds weights of {len(groups)} layer(s) ({', '.join(groups)}) but "
            f"model {model.name!r} has {len(layers)} layer(s) with weights "
            f"({', '.join(lay.name for lay in layers)}); use by_name=True to load matching "
            f"names only")
    for layer, (saved_name, saved) in zip(layers, groups.items()):
        try:
            layer.set_weights([value for _, value in saved])
        except ValueError as exc:
            raise ValueError(f"{filepath}: cannot load the weights of saved layer "
                             f"{saved_name!r} into layer {layer.name!r}: {exc}") from exc


def save_model(model, filepath) -> None:
    check_save_path(filepath)
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built yet; nothing to save")
    spec = json.loads(model.to_json())
    arrays = dict(_weight_items(model))
    if model._compiled:
        args = model._compile_args
        if any(callable(x) for x in _flat(args["loss"])) or \
                any(callable(x) for x in _flat(args["metrics"])):
            warnings.warn("the model uses a custom loss or metric function, which JSON cannot "
                          "hold: it is saved without its training settings", stacklevel=3)
        else:
            spec["training"] = {"optimizer": optimizers.serialize(model.optimizer),
                                "loss": args["loss"], "metrics": args["metrics"],
                                "loss_weights": args["loss_weights"],
                                "backend": model.backend}
            for name, value in model.optimizer.get_slot_values().items():
                arrays[OPTIMIZER_PREFIX + name] = value
    arrays[CONFIG_KEY] = np.array(json.dumps(spec))
    _write(filepath, arrays)


def _flat(spec):
    if isinstance(spec, dict):
        return list(spec.values())
    return list(spec) if isinstance(spec, (list, tuple)) else [spec]


def architecture(arrays: dict, filepath) -> dict:
    """The saved ``{"class_name", "config", "training"?}`` of a file :func:`read` read."""
    if CONFIG_KEY not in arrays:
        raise ValueError(f"{filepath} holds weights only (no architecture): build the model in "
                         f"code and call model.load_weights({os.fspath(filepath)!r})")
    return json_object(str(arrays[CONFIG_KEY]), os.fspath(filepath),
                       f"architecture ({CONFIG_KEY})", "scanrnn.keras .npz",
                       "Save it again or use an intact copy")


def restore_training(model, training: dict, arrays: dict) -> None:
    """Compile ``model`` with the saved ``training`` settings and set the optimizer state."""
    model.compile(optimizer=optimizers.get(training["optimizer"]), loss=training["loss"],
                  metrics=training["metrics"], loss_weights=training["loss_weights"],
                  backend=training.get("backend", "auto"))
    slots = {k[len(OPTIMIZER_PREFIX):]: v for k, v in arrays.items()
             if k.startswith(OPTIMIZER_PREFIX)}
    model.optimizer.set_slot_values(slots)
