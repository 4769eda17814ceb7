"""A Keras-like layer API over the scanrnn core.

The fast.ai lesson's Keras 1 code runs with its imports replaced::

    from scanrnn.keras import (Sequential, Model, Input, Embedding, SimpleRNN, LSTM, Dense,
                               TimeDistributed, BatchNormalization, Flatten, merge, Adam,
                               get_file)

Layers are thin: a recurrent layer calls :mod:`scanrnn.cells` and
:func:`scanrnn.recurrent.unroll`; training compiles one function with
:func:`scanrnn.function` whose updates merge the optimizer's
(:mod:`scanrnn.optim`) with the layers' own (stateful RNN state, batch-norm
statistics).  Both Keras 1 spellings (``nb_epoch``, ``init=``,
``inner_init=``, ``output_dim``, ``merge(mode='sum')``) and Keras 3 names
(``epochs``, ``kernel_initializer``, ``units``) work.

Several devices: :mod:`scanrnn.keras.distribution` (Keras 3's names) splits each batch
of ``fit``, ``evaluate`` and ``predict`` over the devices, weights replicated::

    from scanrnn.keras import distribution
    with distribution.DataParallel().scope():     # every device JAX sees
        model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
        model.fit(x, y, batch_size=64)
"""

from . import callbacks, distribution, layers, losses, models, optimizers, utils
from .callbacks import (Callback, EarlyStopping, History, LambdaCallback, LearningRateScheduler,
                        ModelCheckpoint, TerminateOnNaN)
from .layers import (GRU, LSTM, Activation, Add, Average, BatchNormalization, Bidirectional,
                     Concatenate, Dense, Dropout, Embedding, Flatten, Input, InputLayer, Layer,
                     Maximum, Minimum, Multiply, Reshape, SimpleRNN, Subtract, TimeDistributed,
                     add, average, concatenate, maximum, merge, minimum, multiply, subtract)
from .models import Model, Sequential, load_model, model_from_json
from .optimizers import SGD, Adagrad, Adam, RMSprop
from .utils import get_file, set_random_seed, to_categorical

__all__ = [
    "GRU", "LSTM", "SGD", "Activation", "Adagrad", "Adam", "Add", "Average",
    "BatchNormalization", "Bidirectional", "Callback", "Concatenate", "Dense", "Dropout",
    "EarlyStopping", "Embedding", "Flatten", "History", "Input", "InputLayer", "LambdaCallback",
    "Layer", "LearningRateScheduler", "Maximum", "Minimum", "Model", "ModelCheckpoint", "Multiply",
    "RMSprop", "Reshape", "Sequential", "SimpleRNN", "Subtract", "TerminateOnNaN",
    "TimeDistributed", "add", "average", "callbacks", "concatenate", "distribution",
    "get_file", "layers", "load_model", "losses", "maximum", "merge", "minimum",
    "model_from_json", "models", "multiply", "optimizers", "set_random_seed", "subtract",
    "to_categorical", "utils",
]
