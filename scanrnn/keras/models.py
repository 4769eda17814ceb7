"""``scanrnn.keras.models``: the model classes and model loading, under Keras's names.

The classes live in :mod:`.functional` (with their training half in
:mod:`.fit_loop`); loading a file in :mod:`.saving`.
"""

from __future__ import annotations

from .functional import Model, Sequential, model_from_config, model_from_json
from .saving import load_model

__all__ = ["Model", "Sequential", "load_model", "model_from_config", "model_from_json"]
