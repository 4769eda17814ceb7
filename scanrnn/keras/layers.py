"""Every layer, importable as ``scanrnn.keras.layers.X`` (and from ``scanrnn.keras``).

Importing this module registers every layer class in :mod:`.registry` (``LAYERS``,
``deserialize``), which a model config is rebuilt with.
"""

from __future__ import annotations

from .bidirectional import Bidirectional
from .core_layers import Activation, Dense, Dropout, Embedding, Flatten, Reshape
from .engine import Input, InputLayer, Layer
from .merge import (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add,
                    average, concatenate, maximum, merge, minimum, multiply, subtract)
from .normalization import BatchNormalization
from .registry import LAYERS, deserialize
from .recurrent import GRU, LSTM, Recurrent, SimpleRNN
from .wrappers import TimeDistributed

__all__ = ["Activation", "Add", "Average", "BatchNormalization", "Bidirectional", "Concatenate",
           "Dense", "Dropout", "Embedding", "Flatten", "GRU", "Input", "InputLayer", "LSTM",
           "Layer", "Maximum", "Minimum", "Multiply", "Recurrent", "Reshape", "SimpleRNN",
           "Subtract", "TimeDistributed", "add", "average", "concatenate", "maximum", "merge",
           "minimum", "multiply", "subtract", "deserialize", "LAYERS"]
