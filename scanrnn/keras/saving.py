"""``load_model``: a model from a file, whichever of the two formats it is in.

A scanrnn.keras ``.npz`` (:mod:`.npz_format`: architecture, weights, compile settings
and optimizer state) or a Keras 3 ``.keras`` archive (:mod:`.keras_io` reads it,
:mod:`.keras_config` builds its architecture).  ``save_model``, ``save_weights``
and ``load_weights`` are :mod:`.npz_format`'s, kept here under Keras's names.

A ``.npz`` must carry a format this code knows (:data:`SUPPORTED_FORMATS`): a newer one
asks for a newer scanrnn rather than being read with another meaning.  A damaged file
raises a ValueError that names it (never a bare KeyError or JSONDecodeError).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings

from . import keras_io, npz_format, optimizers
from .functional import FORMAT, model_from_config
from .keras_config import model_from_keras_config
from .npz_format import load_weights, save_model, save_weights

__all__ = ["SUPPORTED_FORMATS", "load_keras_model", "load_model", "load_weights", "save_model",
           "save_weights"]

_FORMAT_NAME, _, _FORMAT_VERSION = FORMAT.rpartition("/")
# every format up to the one this code writes ("scanrnn.keras/1" is read with Keras 1's
# hard_sigmoid, :func:`.functional.model_from_config`)
SUPPORTED_FORMATS = tuple(f"{_FORMAT_NAME}/{n}" for n in range(1, int(_FORMAT_VERSION) + 1))


def load_model(filepath, compile: bool = True):
    """A model saved by :meth:`Model.save`: architecture, weights, and (``compile``) training
    settings with the optimizer state.  A Keras 3 ``.keras`` file (needs h5py) loads when
    every layer in it is one scanrnn.keras has (else a ValueError names the layer)."""
    if keras_io.is_keras_archive(filepath):
        return load_keras_model(filepath, compile=compile)
    if os.path.isfile(filepath) and keras_io.is_hdf5(filepath):
        return load_legacy_h5_model(filepath, compile=compile)
    arrays = npz_format.read(filepath)
    spec = npz_format.architecture(arrays, filepath)
    check_format(spec, filepath)
    with _named(filepath, "cannot rebuild the model from its architecture",
                "the file is damaged, or holds a layer this scanrnn lacks"):
        model = model_from_config(spec)
    npz_format.load_weights(model, filepath)
    if compile and spec.get("training"):
        with _named(filepath, "cannot restore its training settings",
                    f"load_model({os.fspath(filepath)!r}, compile=False) loads the model "
                    f"without them"):
            npz_format.restore_training(model, spec["training"], arrays)
    return model


def check_format(spec: dict, filepath) -> None:
    """Raise unless ``spec["format"]`` is one this code reads (:data:`SUPPORTED_FORMATS`)."""
    found = spec.get("format")
    if found in SUPPORTED_FORMATS:
        return
    path, supported = os.fspath(filepath), ", ".join(SUPPORTED_FORMATS)
    name, _, version = str(found).rpartition("/")
    if name == _FORMAT_NAME and version.isdigit() and int(version) > int(_FORMAT_VERSION):
        raise ValueError(f"{path} was saved in format {found!r} by a newer scanrnn; this scanrnn "
                         f"reads {supported}: upgrade scanrnn to load it")
    what = "no format marker" if found is None else f"an unknown format {found!r}"
    raise ValueError(f"{path} has {what} in its architecture ({npz_format.CONFIG_KEY}); this "
                     f"scanrnn reads {supported}: it is damaged or was not written by "
                     f"scanrnn.keras's model.save")


@contextlib.contextmanager
def _named(filepath, what, hint):
    """Turn the KeyError/TypeError/ValueError of a damaged config into a ValueError that
    names the file, says ``what`` failed and gives the ``hint``."""
    try:
        yield
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{os.fspath(filepath)}: {what} ({type(exc).__name__}: {exc}); "
                         f"{hint}") from exc


def load_keras_model(path, compile: bool = True):
    """A scanrnn.keras model from a Keras 3 ``.keras`` file: its architecture, weights and
    (``compile``) loss and optimizer where scanrnn has them."""
    config, weights = keras_io.read_keras_archive(path)
    model = _model_from(config, path, "config.json")
    if weights is not None:
        keras_io.load_weights_h5(model, io.BytesIO(weights),
                                 name=f"{os.fspath(path)} (its model.weights.h5)")
    if compile and config.get("compile_config"):
        _compile_from(model, config["compile_config"])
        steps = 0 if weights is None else keras_io.optimizer_steps(io.BytesIO(weights))
        if steps and model.optimizer is not None:
            warnings.warn(f"{os.fspath(path)}: its optimizer had taken {steps} steps; its state "
                          f"(e.g. Adam's moments) is not read from a Keras file, so training "
                          f"goes on from a fresh {type(model.optimizer).__name__} state "
                          f"(scanrnn's own .npz keeps it)", stacklevel=3)
    return model


def load_legacy_h5_model(path, compile: bool = True):
    """A scanrnn.keras model from a whole-model Keras ``.h5`` file (``model.save("x.h5")``):
    its architecture, weights and (``compile``) loss and optimizer where scanrnn has them."""
    config, training = keras_io.read_legacy_h5_model(path)
    model = _model_from(config, path, "model_config")
    keras_io.load_weights_h5(model, path)
    if compile and training:
        _compile_from(model, {"optimizer": training.get("optimizer_config"),
                              "loss": training.get("loss"), "metrics": training.get("metrics"),
                              "loss_weights": training.get("loss_weights")})
    return model


def _model_from(config, path, part):
    """The model a Keras config builds; a ValueError naming the file (and its ``part``)."""
    try:
        return model_from_keras_config(config)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{os.fspath(path)}: its {part} is damaged or not a Keras model's "
                         f"({type(exc).__name__}: {exc})") from exc


def _compile_from(model, compile_config):
    spec = compile_config.get("optimizer")
    try:
        optimizer = optimizers.from_keras(spec) if spec is not None else "rmsprop"
        model.compile(optimizer=optimizer, loss=compile_config.get("loss"),
                      metrics=compile_config.get("metrics") or None,
                      loss_weights=compile_config.get("loss_weights"))
    except (TypeError, ValueError) as exc:
        warnings.warn(f"the Keras model is loaded uncompiled: {exc}", stacklevel=3)
