"""scanrnn: Theano-style recurrent networks on PyTensor.

Declare symbolic inputs, write a ``step`` function, unroll it with
:func:`scan`, and compile loss, gradient and update functions with
:func:`function` on the JAX (CPU/GPU), Numba, C or Python backend.
"""

from . import allocator

# first, before numpy's and PyTensor's imports start threads that could make malloc arenas of
# their own: XLA's scratch blocks reused (scanrnn.allocator)
allocator.keep_freed_memory()

from . import _config  # noqa: E402, F401  (float32 default, linear shape inference)
from . import cells, compile, contract, init, losses, optim, parallel, recurrent  # noqa: E402
from ._version import __version__  # noqa: E402
from .arguments import to_numpy  # noqa: E402
from .compile import BackendError, backends, function, installed_backends  # noqa: E402
from .recurrent import scan, unroll  # noqa: E402

# ``scanrnn.backends()`` reports what is installed; the module that compiles is
# ``scanrnn.compile`` (``scanrnn.compile.Function``, ``resolve_backend``, ...).
__all__ = ["BackendError", "backends", "cells", "compile", "contract", "function", "init",
           "installed_backends", "losses", "optim", "parallel", "recurrent", "scan", "to_numpy",
           "unroll", "__version__"]
