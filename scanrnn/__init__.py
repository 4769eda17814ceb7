"""scanrnn: Theano-style recurrent networks on PyTensor.

Declare symbolic inputs, write a ``step`` function, unroll it with
:func:`scan`, and compile loss, gradient and update functions with
:func:`function` on the JAX (CPU/GPU), Numba, C or Python backend.
"""

from . import _config  # noqa: F401  (float32 default, before anything compiles)
from . import cells, init, losses, optim, recurrent
from .backends import BackendError, backends, function, installed_backends, to_numpy
from .recurrent import scan, unroll

__version__ = "0.1.0"

__all__ = ["BackendError", "backends", "cells", "function", "init", "installed_backends",
           "losses", "optim", "recurrent", "scan", "to_numpy", "unroll", "__version__"]
