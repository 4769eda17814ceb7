"""The arguments of a compiled call, checked against its symbolic inputs.

:func:`check_argument` converts a value to the input's dtype when that loses nothing of
meaning (ints and floats to a float input, ints to ints) and raises a ``ValueError`` that
names the input for a wrong rank, a wrong fixed dimension, floats for an integer input, or
values the dtype cannot hold.  When a compiled call still fails, :func:`about_shapes` tells
whether the failure is about sizes that do not fit; the function then raises one ValueError
naming the arguments' shapes (:func:`shapes_of`).
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["CHECK_SHAPES", "about_shapes", "check_argument", "check_arguments",
           "describe_input", "shapes_of", "to_numpy"]

CHECK_SHAPES = "Check that the arguments' shapes fit the graph's parameters."
_SHAPE_WORDS = ("shape", "broadcast", "dimension", "does not fit", "sizes")


def about_shapes(exc) -> bool:
    """Whether ``exc`` is an error about sizes that do not fit (PyTensor's, JAX's, numpy's);
    the ``shape=(?,)`` of a PyTensor type in a message about types does not count."""
    text = re.sub(r"shape=\([^)]*\)", "", str(exc)).lower()
    return isinstance(exc, (TypeError, ValueError, AssertionError)) and \
        any(word in text for word in _SHAPE_WORDS)


def shapes_of(args, signature):
    """``signature`` (JAX's per-shape key ``(argument shapes, shared shapes)``), else the
    arguments' shapes in that form."""
    return signature if signature is not None else (tuple(np.shape(a) for a in args), ())


def _is_jax_array(value) -> bool:
    return type(value).__module__.startswith(("jax", "jaxlib"))


def to_numpy(value):
    """A numpy array from a numpy or JAX array (blocks on the device)."""
    return np.asarray(value)


def describe_input(var, index) -> str:
    """``input 0 ('x')``: how error messages name an input."""
    return f"input {index} ({var.name!r})" if var.name else f"input {index}"


def _check_range(var, index, array, want):
    """Refuse values that ``want`` cannot hold (numpy would wrap ints and turn floats to inf)."""
    if not array.size or array.dtype.kind == "b" or want.kind == "b":
        return
    if want.kind in "iu" and array.dtype.kind in "iu":
        info = np.iinfo(want)
        low, high = array.min(), array.max()
    elif want.kind == "f" and array.dtype.kind == "f" and want.itemsize < array.dtype.itemsize:
        info = np.finfo(want)
        finite = array[np.isfinite(array)]
        low, high = (finite.min(), finite.max()) if finite.size else (0, 0)
    else:
        return
    if low < info.min or high > info.max:
        raise ValueError(
            f"{describe_input(var, index)} is {want}, which holds values from {info.min} to "
            f"{info.max}; got values from {low} to {high}")


def check_argument(var, value, index: int = 0):
    """Convert ``value`` for the symbolic input ``var`` or raise a clear ValueError."""
    if _is_jax_array(value) and str(value.dtype) == var.dtype and value.ndim == var.ndim:
        array = value
    else:
        array = np.asarray(value)
    want = np.dtype(var.dtype)
    if array.dtype != want:
        ok = (want.kind == "f" and array.dtype.kind in "fiub") or \
             (want.kind in "iu" and array.dtype.kind in "iub")
        if not ok:
            raise ValueError(
                f"{describe_input(var, index)} expects {want} values, got {array.dtype}"
                + (" (cast token ids to an integer dtype)" if want.kind in "iu" else ""))
        _check_range(var, index, array, want)
        array = np.asarray(array, dtype=want)
    if array.ndim != var.ndim:
        known = any(s is not None for s in var.type.shape)
        raise ValueError(
            f"{describe_input(var, index)} expects a {var.ndim}-D array"
            f"{' of shape ' + str(var.type.shape) if known else ''}, "
            f"got a {array.ndim}-D array of shape {array.shape}")
    for axis, (want_n, got_n) in enumerate(zip(var.type.shape, array.shape)):
        if want_n is not None and want_n != got_n:
            raise ValueError(
                f"{describe_input(var, index)} expects shape {var.type.shape}, got {array.shape} "
                f"(axis {axis} must be {want_n})")
    return array


def check_arguments(inputs, args) -> list:
    """:func:`check_argument` for each ``(input, value)`` pair, numbered from 0."""
    return [check_argument(v, a, i) for i, (v, a) in enumerate(zip(inputs, args))]
