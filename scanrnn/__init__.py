"""scanrnn: Theano-style recurrent networks on PyTensor.

Declare symbolic inputs, write a ``step`` function, unroll it with
:func:`scan`, and compile loss, gradient and update functions with
:func:`function` on the JAX (CPU/GPU), Numba, C or Python backend.
"""

from . import _config  # noqa: F401  (float32 default, linear shape inference)
from . import cells, init, losses, optim, recurrent
from . import backends as _backends_module
from .backends import BackendError, backends, function, installed_backends, to_numpy
from .recurrent import scan, unroll

from ._version import __version__

# ``scanrnn.backends`` is the report function; let ``scanrnn.backends.X`` also reach
# the module's public names (``from scanrnn.backends import X`` imports the module).
for _name in ("Function", "BackendError", "resolve_backend", "installed_backends",
              "default_backend", "mode_for", "jax_devices", "check_argument", "check_arguments",
              "BACKENDS"):
    setattr(backends, _name, getattr(_backends_module, _name))
del _name

__all__ = ["BackendError", "backends", "cells", "function", "init", "installed_backends",
           "losses", "optim", "recurrent", "scan", "to_numpy", "unroll", "__version__"]
