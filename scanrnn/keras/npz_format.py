"""scanrnn.keras's own file: weights in ``.npz`` (``allow_pickle=False``), the
architecture as JSON.

``save_weights`` writes one array per weight under the key
``"<layer name>/<weight name>"``, layers in model order.  ``save`` writes the
same file plus ``__config__`` (a JSON string: architecture, compile settings)
and ``__optimizer__/<slot>`` arrays (optimizer state), so ``load_model``
rebuilds, compiles and resumes training (:mod:`.saving`).  No pickle is written or
read.  Files are written atomically (:func:`scanrnn.checkpoint.atomic_write_bytes`): a
crash during a save leaves the previous file whole.  This module takes a model object
and imports no model class.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np

from ..checkpoint import atomic_write_bytes
from . import optimizers

CONFIG_KEY = "__config__"
OPTIMIZER_PREFIX = "__optimizer__/"


def _weight_items(model):
    items = []
    for layer in model.layers:
        for var in layer.weights:
            items.append((f"{layer.name}/{var.name}", np.asarray(var.get_value())))
    return items


def _write(filepath, arrays: dict):
    atomic_write_bytes(os.fspath(filepath), lambda handle: np.savez(handle, **arrays))


def save_weights(model, filepath) -> None:
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built, so it has no weights yet")
    _write(filepath, dict(_weight_items(model)))


def read(filepath) -> dict:
    path = os.fspath(filepath)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no weights file at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except ValueError as exc:
        raise ValueError(f"{path} is not a scanrnn .npz file (or needs pickle, which is never "
                         f"used): {exc}") from exc


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
    return json.loads(str(arrays[CONFIG_KEY]))


def restore_training(model, training: dict, arrays: dict) -> None:
    """Compile ``model`` with the saved ``training`` settings and set the optimizer state."""
    model.compile(optimizer=optimizers.get(training["optimizer"]), loss=training["loss"],
                  metrics=training["metrics"], loss_weights=training["loss_weights"],
                  backend=training.get("backend", "auto"))
    slots = {k[len(OPTIMIZER_PREFIX):]: v for k, v in arrays.items()
             if k.startswith(OPTIMIZER_PREFIX)}
    model.optimizer.set_slot_values(slots)
