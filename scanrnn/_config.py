"""Process-wide PyTensor settings scanrnn relies on.

scanrnn keeps one dtype end to end: float32, the dtype of GPUs and of the
seeds' programs.  Importing scanrnn therefore sets ``pytensor.config.floatX``
to ``"float32"`` unless the user chose a value in ``PYTENSOR_FLAGS`` (the
Theano convention).  Everything scanrnn creates (shared parameters, symbolic
inputs, optimizer state) is cast to ``floatX`` explicitly.

On PyTensor 3.0.x it also makes shape inference through Scan and OpFromGraph ignore the
outer graph, as 3.1+ does (:func:`scanrnn.pytensor_compat.use_linear_shape_inference`).
"""

import os

import pytensor

from .pytensor_compat import use_linear_shape_inference


def _user_chose_floatx() -> bool:
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    return any(item.strip().startswith("floatX") for item in flags.split(","))


if not _user_chose_floatx():
    pytensor.config.floatX = "float32"
use_linear_shape_inference()


def floatx() -> str:
    """The float dtype scanrnn builds graphs in (``pytensor.config.floatX``)."""
    return pytensor.config.floatX
