"""Merging layers: ``Add``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum``,
``Subtract``, ``Concatenate``, their Keras 2 functions (``add([...])``) and
Keras 1's ``merge([...], mode='sum')``.

All inputs have the same shape (``Concatenate``: all but ``axis``); the mask
of the output is the product of the input masks that exist.
"""

from __future__ import annotations

from functools import reduce

import pytensor.tensor as pt

from .engine import Layer, shape_str, unique_name
from .registry import register


class _Merge(Layer):
    supports_masking = True

    def _check_inputs(self, shapes):
        if not isinstance(shapes, list) or len(shapes) < 2:
            raise ValueError(f"{type(self).__name__} {self.name!r} merges a list of at least 2 "
                             f"tensors, got {shapes!r}")

    def build(self, input_shape):
        self.compute_output_shape(input_shape)

    def check_input_shape(self, input_shape):
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape):
        self._check_inputs(input_shape)
        first = input_shape[0]
        out = list(first)
        for shape in input_shape[1:]:
            if len(shape) != len(first):
                raise ValueError(f"{type(self).__name__} {self.name!r} needs inputs of one "
                                 f"shape, got {', '.join(shape_str(s) for s in input_shape)}")
            for axis, (a, b) in enumerate(zip(out, shape)):
                if a is not None and b is not None and a != b:
                    raise ValueError(
                        f"{type(self).__name__} {self.name!r} needs inputs of one shape, got "
                        f"{', '.join(shape_str(s) for s in input_shape)}")
                if a is None:
                    out[axis] = b
        return tuple(out)

    def combine(self, tensors):
        raise NotImplementedError

    def call(self, inputs, ctx):
        return self.combine(list(inputs))

    def compute_mask(self, inputs, ctx):
        masks = [ctx.masks[t] for t in inputs if t in ctx.masks]
        return reduce(lambda a, b: a * b, masks) if masks else None


@register
class Add(_Merge):
    """Elementwise sum (Keras 1 ``merge(mode='sum')``, the default)."""

    def combine(self, tensors):
        return reduce(lambda a, b: a + b, tensors)


@register
class Subtract(_Merge):
    """``a - b`` of exactly two inputs."""

    def _check_inputs(self, shapes):
        super()._check_inputs(shapes)
        if len(shapes) != 2:
            raise ValueError(f"Subtract {self.name!r} takes exactly 2 inputs")

    def combine(self, tensors):
        return tensors[0] - tensors[1]


@register
class Multiply(_Merge):
    """Elementwise product (``mode='mul'``)."""

    def combine(self, tensors):
        return reduce(lambda a, b: a * b, tensors)


@register
class Average(_Merge):
    """Elementwise mean (``mode='ave'``)."""

    def combine(self, tensors):
        return reduce(lambda a, b: a + b, tensors) / len(tensors)


@register
class Maximum(_Merge):
    """Elementwise maximum (``mode='max'``)."""

    def combine(self, tensors):
        return reduce(pt.maximum, tensors)


@register
class Minimum(_Merge):
    """Elementwise minimum."""

    def combine(self, tensors):
        return reduce(pt.minimum, tensors)


@register
class Concatenate(_Merge):
    """Join along ``axis`` (default the last; ``mode='concat'``, ``concat_axis``)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def compute_output_shape(self, input_shape):
        self._check_inputs(input_shape)
        ndim = len(input_shape[0])
        axis = self.axis % ndim
        if axis == 0:
            raise ValueError(f"Concatenate {self.name!r} cannot join along the batch axis")
        rest = [tuple(s for k, s in enumerate(shape) if k != axis) for shape in input_shape]
        if any(len(shape) != ndim for shape in input_shape):
            raise ValueError(f"Concatenate {self.name!r} needs inputs of one rank, got "
                             f"{', '.join(shape_str(s) for s in input_shape)}")
        merged = list(_Merge.compute_output_shape(self, rest))
        sizes = [shape[axis] for shape in input_shape]
        merged.insert(axis, None if None in sizes else sum(sizes))
        return tuple(merged)

    def combine(self, tensors):
        return pt.concatenate(tensors, axis=self.axis % tensors[0].ndim)

    def compute_mask(self, inputs, ctx):
        if self.axis % inputs[0].ndim != inputs[0].ndim - 1:
            return None
        return super().compute_mask(inputs, ctx)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


MODES = {"sum": Add, "mul": Multiply, "ave": Average, "max": Maximum, "concat": Concatenate}


def merge(inputs, mode="sum", concat_axis=-1, dot_axes=-1, output_shape=None, name=None):
    """Keras 1's functional merge: ``merge([a, b], mode='sum')`` (sum is the default)."""
    if callable(mode) or mode not in MODES:
        raise ValueError(f"merge mode {mode!r} is not supported; use one of "
                         f"{', '.join(MODES)}")
    name = name or unique_name("merge")
    layer = Concatenate(axis=concat_axis, name=name) if mode == "concat" else \
        MODES[mode](name=name)
    return layer(list(inputs))


def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(list(inputs))


def subtract(inputs, **kwargs):
    """``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(list(inputs))


def multiply(inputs, **kwargs):
    """``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(list(inputs))


def average(inputs, **kwargs):
    """``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(list(inputs))


def maximum(inputs, **kwargs):
    """``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(list(inputs))


def minimum(inputs, **kwargs):
    """``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(list(inputs))


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(list(inputs))
