"""scanrnn: Theano-style recurrent networks on PyTensor.

Declare symbolic inputs, write a ``step`` function, unroll it with
:func:`scan`, and compile loss, gradient and update functions with
:func:`function` on the JAX (CPU/GPU), Numba, C or Python backend.
"""

from . import _config  # noqa: F401  (float32 default, linear shape inference)
from . import allocator
from . import cells, compile, contract, init, losses, optim, parallel, recurrent
from ._version import __version__
from .compile import BackendError, backends, function, installed_backends, to_numpy
from .recurrent import scan, unroll

allocator.keep_freed_memory()   # before JAX starts its threads: XLA's scratch blocks reused

# ``scanrnn.backends()`` reports what is installed; the module that compiles is
# ``scanrnn.compile`` (``scanrnn.compile.Function``, ``resolve_backend``, ...).
__all__ = ["BackendError", "backends", "cells", "compile", "contract", "function", "init",
           "installed_backends", "losses", "optim", "parallel", "recurrent", "scan", "to_numpy",
           "unroll", "__version__"]
