"""Activation functions by Keras name: the core cells' elementwise ones plus softmax.

Every function maps a tensor of any shape to one of the same shape; ``softmax``
normalises over the last axis.

``hard_sigmoid`` is Keras 3's, ``clip(x / 6 + 0.5, 0, 1)``.  Keras 1 and 2 had
``clip(0.2 x + 0.5, 0, 1)``; that one is ``"keras1_hard_sigmoid"`` here, and a
Keras 1 spelling (``inner_activation="hard_sigmoid"`` on a recurrent layer)
gets it, so the lesson's Keras 1 code computes what it did in Keras 1.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.tensor.special import softmax as _softmax

from .. import cells

KERAS1_HARD_SIGMOID = "keras1_hard_sigmoid"


def hard_sigmoid(z):
    """Keras 3's hard sigmoid: ``clip(z / 6 + 0.5, 0, 1)`` (``relu6(z + 3) / 6``)."""
    return pt.clip(z / 6.0 + 0.5, 0, 1)


ELEMENTWISE = {**cells.ACTIVATIONS, "hard_sigmoid": hard_sigmoid,
               KERAS1_HARD_SIGMOID: cells.ACTIVATIONS["hard_sigmoid"]}
# Our name -> the core cells' name, where they differ (the core's is Keras 1's function).
CORE_NAMES = {KERAS1_HARD_SIGMOID: "hard_sigmoid"}
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


def keras1(name):
    """The canonical name of an activation given by a Keras 1-only argument
    (``inner_activation``): ``"hard_sigmoid"`` there means Keras 1's."""
    key = canonical(name)
    return KERAS1_HARD_SIGMOID if key == "hard_sigmoid" else key


def for_cell(name):
    """What a core cell takes for activation ``name``: the core's name where the
    function is the core's (its fused backward pass applies), else the function."""
    if name in CORE_NAMES:
        return CORE_NAMES[name]
    if name in cells.ACTIVATIONS and ELEMENTWISE[name] is cells.ACTIVATIONS[name]:
        return name
    return ELEMENTWISE[name]


def get(name):
    """The function called ``name`` (a callable is returned as it is)."""
    key = canonical(name)
    if callable(key):
        return key
    if key in EXTRA:
        return EXTRA[key]
    return ELEMENTWISE[key]


def serialize(fn) -> str:
    """The name to store in a JSON config; a custom function cannot be stored."""
    if callable(fn):
        raise TypeError("a model with a custom activation function cannot be saved as JSON; "
                        "use a named activation (" + ", ".join(names()) + ")")
    return fn
