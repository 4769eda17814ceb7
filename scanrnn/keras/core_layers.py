"""Plain layers: ``Dense``, ``Embedding``, ``Flatten``, ``Activation``, ``Dropout``, ``Reshape``.

Each is a few PyTensor operations on batch-major inputs; shapes in the
docstrings leave out nothing (``B`` batch, ``T`` steps, ``V`` vocabulary).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from .. import init as initializers
from .._config import floatx
from . import activations, random_streams
from .engine import Layer, shape_str
from .registry import register


def _check_initializer(name):
    initializers.get(name)
    return name


def _positive_int(value, what, layer):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value <= 0:
        raise ValueError(f"{layer}: {what} must be a positive int, got {value!r}")
    return int(value)


def _pick(keras3, keras1, default, keras1_name):
    """A Keras 3 argument, or its Keras 1 spelling; giving both differently is an error."""
    if keras1 is None:
        return default if keras3 is None else keras3
    if keras3 is not None and keras3 != keras1:
        raise ValueError(f"both {keras1_name}={keras1!r} and its Keras 3 name were given")
    return keras1


def apply_dense(x, W, b=None):
    """``x @ W + b`` on the last axis of an input of any rank >= 2."""
    if x.ndim == 2:
        z = pt.dot(x, W)
    else:
        lead = [x.shape[i] for i in range(x.ndim - 1)]
        z = pt.dot(x.reshape((-1, x.shape[-1])), W).reshape((*lead, W.shape[1]))
    return z if b is None else z + b


@register
class Dense(Layer):
    """Fully connected: ``activation(x @ W + b)``; ``(B, ..., I) -> (B, ..., units)``.

    Keras 1 spellings ``output_dim``, ``init``, ``bias`` and Keras 3 ``units``,
    ``kernel_initializer``, ``use_bias`` both work.  The softmax output
    remembers its logits so the loss can use a stable log-softmax.
    """

    supports_masking = True

    def __init__(self, units=None, activation=None, use_bias=None, kernel_initializer=None,
                 bias_initializer="zeros", *,
                 output_dim=None, init=None, bias=None, **kwargs):
        super().__init__(**kwargs)
        self.units = _positive_int(_pick(units, output_dim, None, "output_dim"), "units",
                                   self.name)
        self.activation = activations.canonical(activation)
        self.use_bias = bool(_pick(use_bias, bias, True, "bias"))
        self.kernel_initializer = _check_initializer(_pick(kernel_initializer, init,
                                                           "glorot_uniform", "init"))
        self.bias_initializer = _check_initializer(bias_initializer)

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Dense {self.name!r} needs inputs (batch, ..., features) with a "
                             f"known last axis, got {shape_str(input_shape)}")
        self.W = self.add_weight("W", (input_shape[-1], self.units), self.kernel_initializer)
        self.b = self.add_weight("b", (self.units,), self.bias_initializer) \
            if self.use_bias else None

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def call(self, x, ctx):
        z = apply_dense(x, self.W, self.b)
        out = activations.get(self.activation)(z)
        if self.activation == "softmax":
            ctx.logits[out] = z
        return out

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer}


@register
class Embedding(Layer):
    """Rows of a ``(input_dim, output_dim)`` table: int ``(B, T)`` -> ``(B, T, output_dim)``.

    ``mask_zero=True`` marks id 0 as padding: recurrent layers downstream skip
    those steps and the loss leaves them out.
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer=None,
                 mask_zero=False, input_length=None, *, init=None, dropout=0.0, **kwargs):
        if dropout:
            raise ValueError("Embedding(dropout=...) is not supported; add a Dropout layer")
        self.input_dim = _positive_int(input_dim, "input_dim (vocabulary size)", "Embedding")
        self.output_dim = _positive_int(output_dim, "output_dim", "Embedding")
        self.input_length = None if input_length is None else \
            _positive_int(input_length, "input_length", "Embedding")
        if "batch_input_shape" not in kwargs and "input_shape" not in kwargs \
                and input_length is not None:
            kwargs["input_shape"] = (input_length,)
        super().__init__(**kwargs)
        self.embeddings_initializer = _check_initializer(
            _pick(embeddings_initializer, init, "uniform", "init"))
        self.mask_zero = bool(mask_zero)
        if self.declared_dtype is None:
            self.declared_dtype = "int32"

    def build(self, input_shape):
        if self.input_length is not None and len(input_shape) > 1 \
                and input_shape[1] not in (None, self.input_length):
            raise ValueError(f"Embedding {self.name!r} has input_length={self.input_length} but "
                             f"is called on inputs of shape {shape_str(input_shape)}")
        self.W = self.add_weight("W", (self.input_dim, self.output_dim),
                                 self.embeddings_initializer)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def check_input_shape(self, input_shape):
        pass

    def call(self, x, ctx):
        if not x.dtype.startswith(("int", "uint")):
            x = pt.cast(x, "int32")
        return self.W[x]

    def compute_mask(self, x, ctx):
        if not self.mask_zero:
            return None
        return pt.cast(pt.neq(x, 0), floatx())

    def get_config(self):
        config = {**super().get_config(), "input_dim": self.input_dim,
                  "output_dim": self.output_dim,
                  "embeddings_initializer": self.embeddings_initializer,
                  "mask_zero": self.mask_zero}
        if self.input_length is not None:
            config["input_length"] = self.input_length
        return config


@register
class Flatten(Layer):
    """``(B, d1, d2, ...) -> (B, d1 * d2 * ...)`` (the trailing sizes must be known)."""

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if any(s is None for s in rest):
            raise ValueError(f"Flatten {self.name!r} needs known sizes after the batch axis, got "
                             f"{shape_str(input_shape)} (give the input a fixed length)")
        return (input_shape[0], int(np.prod(rest)))

    def build(self, input_shape):
        self.compute_output_shape(input_shape)

    def call(self, x, ctx):
        return x.reshape((x.shape[0], int(np.prod(self.built_input_shape[1:]))))


@register
class Reshape(Layer):
    """``(B, ...) -> (B, *target_shape)``; one entry of ``target_shape`` may be -1."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(s) for s in target_shape)

    def compute_output_shape(self, input_shape):
        known = [s for s in self.target_shape if s != -1]
        total = None if any(s is None for s in input_shape[1:]) else \
            int(np.prod(input_shape[1:]))
        if -1 in self.target_shape:
            fill = None if total is None else total // max(int(np.prod(known)), 1)
            shape = tuple(fill if s == -1 else s for s in self.target_shape)
        else:
            shape = self.target_shape
        if total is not None and None not in shape and int(np.prod(shape)) != total:
            raise ValueError(f"Reshape {self.name!r} cannot reshape {shape_str(input_shape)} to "
                             f"{shape_str((input_shape[0], *self.target_shape))}")
        return (input_shape[0], *shape)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)

    def call(self, x, ctx):
        return x.reshape((x.shape[0], *self.target_shape))

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


@register
class Activation(Layer):
    """An activation on its own: ``Activation('softmax')``."""

    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.canonical(activation)

    def call(self, x, ctx):
        out = activations.get(self.activation)(x)
        if self.activation == "softmax":
            ctx.logits[out] = x
        return out

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


@register
class Dropout(Layer):
    """Zero each input with probability ``rate`` while training (scaled by ``1/(1-rate)``).

    The mask is drawn in the graph from the layer's counter-based stream
    (``<name>.rng``, ``uint32 [seed, counter]``, :mod:`.random_streams`): a new mask
    every training step, the same sequence of masks for the same ``seed`` on every
    backend.  At prediction time the layer is the identity.  Keras 1 calls ``rate`` ``p``.
    """

    supports_masking = True

    def __init__(self, rate=None, noise_shape=None, seed=None, *, p=None, **kwargs):
        super().__init__(**kwargs)
        rate = _pick(rate, p, None, "p")
        if rate is None or not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate!r}")
        if noise_shape is not None:
            raise ValueError("Dropout(noise_shape=...) is not supported")
        self.rate = float(rate)
        self.seed = seed
        self.rng = None

    def build(self, input_shape):
        self.rng = random_streams.new_stream(self.seed, f"{self.name}.rng")

    def call(self, x, ctx):
        if not ctx.training or self.rate == 0.0:
            return x
        return random_streams.dropped(x, self.rate, self.rng, ctx, self)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
