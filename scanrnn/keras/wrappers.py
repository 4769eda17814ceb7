"""``TimeDistributed``: apply a layer to every step of a ``(B, T, ...)`` sequence.

The steps are folded into the batch, ``(B*T, ...)``, the inner layer runs
once, and the result is unfolded to ``(B, T, ...)``: one matrix product, no
loop.  The weights are the inner layer's.
"""

from __future__ import annotations

from .engine import Layer, shape_str
from .registry import deserialize, register, serialize


@register
class TimeDistributed(Layer):
    """``TimeDistributed(Dense(V, activation='softmax'))``: ``(B, T, I) -> (B, T, V)``."""

    supports_masking = True
    keras_prefix = "timedistributed"

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed wraps a layer, got {type(layer).__name__}")
        super().__init__(**kwargs)
        self.layer = layer

    def _inner_shape(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) < 3:
            got = repr(input_shape) if isinstance(input_shape, list) else shape_str(input_shape)
            raise ValueError(f"TimeDistributed {self.name!r} expects inputs (batch, timesteps, "
                             f"...), got {got}")
        return (None, *input_shape[2:])

    def build(self, input_shape):
        self.layer.ensure_built(self._inner_shape(input_shape))
        self._weights = self.layer._weights

    def check_input_shape(self, input_shape):
        self.layer.check_input_shape(self._inner_shape(input_shape))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape(self._inner_shape(input_shape))
        return (input_shape[0], input_shape[1], *inner[1:])

    def canonical_arrays(self, arrays):
        return self.layer.canonical_arrays(arrays)

    def count_arrays(self, arrays):
        return self.layer.count_arrays(arrays)

    @property
    def trainable_weights(self):
        return self.layer.trainable_weights if self.trainable else []

    @property
    def non_trainable_weights(self):
        return self.layer.non_trainable_weights if self.trainable else self.layer.weights

    def call(self, x, ctx):
        batch, steps = x.shape[0], x.shape[1]
        rest = [x.shape[i] for i in range(2, x.ndim)]
        folded = x.reshape((batch * steps, *rest))
        inner = self.layer.call(folded, ctx)

        def unfold(v):
            return v.reshape((batch, steps, *[v.shape[i] for i in range(1, v.ndim)]))

        out = unfold(inner)
        if inner in ctx.logits:
            ctx.logits[out] = unfold(ctx.logits[inner])
        return out

    def get_config(self):
        return {**super().get_config(), "layer": serialize(self.layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(deserialize(config.pop("layer")), **config)
