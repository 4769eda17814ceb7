"""Activation functions by Keras name: the core cells' elementwise ones plus softmax.

Every function maps a tensor of any shape to one of the same shape; ``softmax``
normalises over the last axis.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.tensor.special import softmax as _softmax

from .. import cells

ELEMENTWISE = dict(cells.ACTIVATIONS)
EXTRA = {
    "softmax": lambda z: _softmax(z, axis=-1),
    "softplus": pt.softplus,
    "exponential": pt.exp,
}
ALIASES = {None: "linear", "None": "linear", "identity": "linear"}


def names() -> list[str]:
    """Every activation name :func:`get` knows."""
    return sorted([*ELEMENTWISE, *EXTRA])


def canonical(name):
    """The canonical name of an activation (``None`` -> ``"linear"``); checks that it exists."""
    if callable(name):
        return name
    key = ALIASES.get(name, name)
    if key not in ELEMENTWISE and key not in EXTRA:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(names())} "
                         f"(or pass a function of one tensor)")
    return key


def get(name):
    """The function called ``name`` (a callable is returned as it is)."""
    key = canonical(name)
    if callable(key):
        return key
    if key in EXTRA:
        return EXTRA[key]
    return cells.activation(key)


def serialize(fn) -> str:
    """The name to store in a JSON config; a custom function cannot be stored."""
    if callable(fn):
        raise TypeError("a model with a custom activation function cannot be saved as JSON; "
                         "use a named activation (" + ", ".join(names()) + ")")
    return fn
