"""Every layer, importable as ``scanrnn.keras.layers.X`` (and from ``scanrnn.keras``)."""

from __future__ import annotations

from .bidirectional import Bidirectional
from .core_layers import Activation, Dense, Dropout, Embedding, Flatten, Reshape
from .engine import Input, InputLayer, Layer
from .merge import (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add,
                    average, concatenate, maximum, merge, minimum, multiply, subtract)
from .normalization import BatchNormalization
from .recurrent import GRU, LSTM, Recurrent, SimpleRNN
from .wrappers import TimeDistributed

__all__ = ["Activation", "Add", "Average", "BatchNormalization", "Bidirectional", "Concatenate",
           "Dense", "Dropout", "Embedding", "Flatten", "GRU", "Input", "InputLayer", "LSTM",
           "Layer", "Maximum", "Minimum", "Multiply", "Recurrent", "Reshape", "SimpleRNN",
           "Subtract", "TimeDistributed", "add", "average", "concatenate", "maximum", "merge",
           "minimum", "multiply", "subtract", "deserialize", "LAYERS"]

#: Layer classes by name, for rebuilding a model from its JSON config.
LAYERS = {cls.__name__: cls for cls in
          (Activation, Add, Average, BatchNormalization, Bidirectional, Concatenate, Dense,
           Dropout, Embedding, Flatten, GRU, InputLayer, LSTM, Maximum, Minimum, Multiply,
           Reshape, SimpleRNN, Subtract, TimeDistributed)}


def deserialize(spec: dict) -> Layer:
    """A layer from ``{"class_name": ..., "config": {...}}`` (``get_config``'s format)."""
    name = spec.get("class_name")
    if name not in LAYERS:
        raise ValueError(f"unknown layer class {name!r} in the model config; known: "
                         f"{', '.join(sorted(LAYERS))}")
    return LAYERS[name].from_config(dict(spec.get("config", {})))
