"""``BatchNormalization``: batch statistics while training, moving averages otherwise.

Training: ``y = gamma * (x - mean_B) / sqrt(var_B + epsilon) + beta`` with the
mean and (biased) variance over every axis but ``axis`` (over the unmasked steps when
the input has a mask, as Keras 3), and the updates
``moving = momentum * moving + (1 - momentum) * batch`` merged into the
training function.  Prediction uses the moving mean and variance.
Weights: ``gamma, beta`` (trainable), ``moving_mean, moving_variance`` (not):
``4 * C`` parameters for ``C`` channels.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from .._config import floatx
from .core_layers import _check_initializer, _pick
from .engine import Layer, shape_str
from .registry import register


@register
class BatchNormalization(Layer):
    """Normalise each channel (the ``axis`` entry, default the last) over the batch.

    Keras 1 arguments ``mode=0``, ``beta_init``, ``gamma_init`` are accepted.
    """

    supports_masking = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer=None, gamma_initializer=None,
                 moving_mean_initializer="zeros", moving_variance_initializer="ones", *,
                 mode=0, beta_init=None, gamma_init=None, gamma_regularizer=None,
                 beta_regularizer=None, **kwargs):
        if mode != 0:
            raise ValueError("BatchNormalization(mode=1 or 2) (Keras 1 sample-wise modes) is not "
                             "supported; only mode=0, feature-wise normalisation")
        if gamma_regularizer is not None or beta_regularizer is not None:
            raise ValueError("BatchNormalization regularizers are not supported")
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        if not 0.0 <= self.momentum < 1.0 or self.epsilon <= 0.0:
            raise ValueError(f"BatchNormalization needs 0 <= momentum < 1 and epsilon > 0, got "
                             f"momentum={momentum}, epsilon={epsilon}")
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = _check_initializer(_pick(beta_initializer, beta_init, "zeros",
                                                         "beta_init"))
        self.gamma_initializer = _check_initializer(_pick(gamma_initializer, gamma_init, "ones",
                                                          "gamma_init"))
        self.moving_mean_initializer = _check_initializer(moving_mean_initializer)
        self.moving_variance_initializer = _check_initializer(moving_variance_initializer)

    def _axis(self, ndim: int) -> int:
        axis = self.axis % ndim
        if axis == 0 or not -ndim <= self.axis < ndim:
            raise ValueError(f"BatchNormalization {self.name!r}: axis={self.axis} is not a "
                             f"feature axis of a {ndim}-D input")
        return axis

    def build(self, input_shape):
        channels = input_shape[self._axis(len(input_shape))]
        if channels is None:
            raise ValueError(f"BatchNormalization {self.name!r} needs a known size on axis "
                             f"{self.axis}, got {shape_str(input_shape)}")
        shape = (channels,)
        self.gamma = self.add_weight("gamma", shape, self.gamma_initializer) \
            if self.scale else None
        self.beta = self.add_weight("beta", shape, self.beta_initializer) if self.center else None
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape,
                                               self.moving_variance_initializer, trainable=False)

    def check_input_shape(self, input_shape):
        built = self.built_input_shape
        axis = self._axis(len(input_shape))
        if len(input_shape) != len(built) or input_shape[axis] not in (None, built[axis]):
            raise ValueError(f"BatchNormalization {self.name!r} was built for "
                             f"{shape_str(built)} and cannot take {shape_str(input_shape)}")

    def call(self, x, ctx):
        axis = self._axis(x.ndim)
        reduce_axes = tuple(a for a in range(x.ndim) if a != axis)
        pattern = ["x"] * x.ndim
        pattern[axis] = 0

        def bcast(v):
            return v.dimshuffle(*pattern)

        if ctx.training:
            mean, var = _moments(x, reduce_axes, bcast, ctx.masks.get(x))
            keep = np.asarray(self.momentum, dtype=floatx())
            ctx.add_update(self.moving_mean, keep * self.moving_mean + (1 - keep) * mean, self)
            ctx.add_update(self.moving_variance,
                           keep * self.moving_variance + (1 - keep) * var, self)
        else:
            mean, var = self.moving_mean, self.moving_variance
        y = (x - bcast(mean)) / pt.sqrt(bcast(var) + np.asarray(self.epsilon, dtype=floatx()))
        if self.gamma is not None:
            y = y * bcast(self.gamma)
        if self.beta is not None:
            y = y + bcast(self.beta)
        return y

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": self.beta_initializer,
                "gamma_initializer": self.gamma_initializer,
                "moving_mean_initializer": self.moving_mean_initializer,
                "moving_variance_initializer": self.moving_variance_initializer}


def _moments(x, reduce_axes, bcast, mask):
    """Mean and (biased) variance over ``reduce_axes``; with a mask (one axis fewer than
    ``x``, as Keras 3) over the unmasked entries only (Keras adds 1e-7 to their count)."""
    if mask is None or mask.ndim != x.ndim - 1:
        mean = x.mean(axis=reduce_axes)
        return mean, pt.sqr(x - bcast(mean)).mean(axis=reduce_axes)
    kept = pt.broadcast_to(pt.shape_padright(pt.neq(mask, 0)), x.shape)
    count = pt.cast(kept, x.dtype).sum(axis=reduce_axes) + np.asarray(1e-7, dtype=x.dtype)
    zero = np.asarray(0, dtype=x.dtype)
    mean = pt.switch(kept, x, zero).sum(axis=reduce_axes) / count
    var = pt.sqr(pt.switch(kept, x - bcast(mean), zero)).sum(axis=reduce_axes) / count
    return mean, var
