"""``load_model``: a model from a file, whichever of the two formats it is in.

A scanrnn.keras ``.npz`` (:mod:`.npz_format`: architecture, weights, compile settings
and optimizer state) or a Keras 3 ``.keras`` archive (:mod:`.keras_io` reads it,
:mod:`.keras_config` builds its architecture).  ``save_model``, ``save_weights``
and ``load_weights`` are :mod:`.npz_format`'s, kept here under Keras's names.
"""

from __future__ import annotations

import io
import os
import warnings

from . import keras_io, npz_format, optimizers
from .functional import model_from_config
from .keras_config import model_from_keras_config
from .npz_format import load_weights, save_model, save_weights

__all__ = ["load_keras_model", "load_model", "load_weights", "save_model", "save_weights"]


def load_model(filepath, compile: bool = True):
    """A model saved by :meth:`Model.save`: architecture, weights, and (``compile``) training
    settings with the optimizer state.  A Keras 3 ``.keras`` file (needs h5py) loads when
    every layer in it is one scanrnn.keras has (else a ValueError names the layer)."""
    if keras_io.is_keras_archive(filepath):
        return load_keras_model(filepath, compile=compile)
    arrays = npz_format.read(filepath)
    spec = npz_format.architecture(arrays, filepath)
    model = model_from_config(spec)
    npz_format.load_weights(model, filepath)
    if compile and spec.get("training"):
        npz_format.restore_training(model, spec["training"], arrays)
    return model


def load_keras_model(path, compile: bool = True):
    """A scanrnn.keras model from a Keras 3 ``.keras`` file: its architecture, weights and
    (``compile``) loss and optimizer where scanrnn has them."""
    config, weights = keras_io.read_keras_archive(path)
    try:
        model = model_from_keras_config(config)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: {exc}") from exc
    if weights is not None:
        keras_io.load_weights_h5(model, io.BytesIO(weights))
    if compile and config.get("compile_config"):
        _compile_from(model, config["compile_config"])
    return model


def _compile_from(model, compile_config):
    spec = compile_config.get("optimizer")
    try:
        optimizer = optimizers.from_keras(spec) if spec is not None else "rmsprop"
        model.compile(optimizer=optimizer, loss=compile_config.get("loss"),
                      metrics=compile_config.get("metrics") or None,
                      loss_weights=compile_config.get("loss_weights"))
    except (TypeError, ValueError) as exc:
        warnings.warn(f"the Keras model is loaded uncompiled: {exc}", stacklevel=3)
