"""What :func:`scanrnn.function` is given -- inputs, outputs, updates -- checked before
anything compiles, so that a mistake is one ``ValueError`` naming it on every backend (on
JAX, PyTensor's own checks would only run at the first call, and some of its messages
read as if the arguments' shapes were wrong).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable

__all__ = ["checked_inputs", "checked_updates", "output_list"]


def checked_inputs(inputs) -> list:
    """``inputs`` as a list of symbolic tensor inputs (``pt.matrix("x")``, ...)."""
    if isinstance(inputs, Variable):
        raise ValueError(f"inputs must be a list of symbolic inputs, e.g. [x]; got the one "
                         f"variable {inputs!r}: write [{inputs.name or 'x'}]")
    listed = list(inputs)
    for i, var in enumerate(listed):
        if not isinstance(var, pt.TensorVariable) or var.owner is not None:
            raise ValueError(f"input {i} must be a symbolic tensor input (pt.tensor, "
                             f"pt.matrix, ...), got {var!r}")
    return listed


def output_list(outputs) -> tuple[list, bool]:
    """``outputs`` as a list, and whether one variable was given (``None``: no outputs)."""
    if outputs is None:
        return [], False
    single = not isinstance(outputs, (list, tuple))
    listed = [outputs] if single else list(outputs)
    for i, out in enumerate(listed):
        if not isinstance(out, Variable):
            raise ValueError(f"output {i} must be a symbolic variable computed from the inputs "
                             f"(pt.tensor operations), got {out!r}")
    return listed, single


def checked_updates(updates) -> dict:
    """``updates`` (a dict or ``(shared, new value)`` pairs) as a dict: each key a shared
    variable, each value a tensor of its type (a numpy value becomes a constant; a value
    of a wider dtype or another rank is refused, naming the variable)."""
    pairs = list(updates.items()) if isinstance(updates, dict) else list(updates or [])
    checked = {}
    for key, value in pairs:
        name = getattr(key, "name", None) or "the shared variable"
        if not isinstance(key, SharedVariable):
            raise ValueError(f"updates must map shared variables to new values; {key!r} is "
                             f"not a shared variable (pytensor.shared(...))")
        if not isinstance(value, Variable):
            value = np.asarray(value)
            if not np.can_cast(value.dtype, key.dtype, "same_kind"):
                raise ValueError(f"the update of {name} is a {value.dtype} array, {name} is "
                                 f"{key.dtype}")
            value = pt.as_tensor_variable(value.astype(key.dtype))
        if value.type.ndim != key.type.ndim or (
                value.dtype != key.dtype and not np.can_cast(value.dtype, key.dtype, "safe")):
            raise ValueError(f"the update of {name} is {value.dtype} with {value.type.ndim} "
                             f"dimension(s), {name} is {key.dtype} with {key.type.ndim}: "
                             f"cast the new value with .astype('{key.dtype}') (or declare the "
                             f"inputs it is computed from as {key.dtype})")
        if value.dtype != key.dtype:
            value = pt.cast(value, key.dtype)
        checked[key] = value
    return checked
