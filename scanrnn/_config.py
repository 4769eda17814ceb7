"""Process-wide PyTensor settings scanrnn relies on.

scanrnn keeps one dtype end to end: float32, the dtype of GPUs and of the
seeds' programs.  Importing scanrnn therefore sets ``pytensor.config.floatX``
to ``"float32"`` unless the user chose a value in ``PYTENSOR_FLAGS`` (the
Theano convention).  Everything scanrnn creates (shared parameters, symbolic
inputs, optimizer state) is cast to ``floatX`` explicitly.
"""

import os

import pytensor


def _user_chose_floatx() -> bool:
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    return any(item.strip().startswith("floatX") for item in flags.split(","))


if not _user_chose_floatx():
    pytensor.config.floatX = "float32"


def floatx() -> str:
    """The float dtype scanrnn builds graphs in (``pytensor.config.floatX``)."""
    return pytensor.config.floatX
