"""``Bidirectional``: a recurrent layer run forwards and backwards, outputs merged.

The backward copy reads the sequence from its end (``go_backwards``); with
``return_sequences`` its outputs are flipped back to input order, so step ``t``
of both halves belongs to input step ``t``.  As in Keras 3, a masked (padded)
step outputs zeros in both halves (each half alone would repeat its previous
output there), and the output mask is the input mask.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from .engine import Layer, as_list
from .recurrent import Recurrent
from .registry import deserialize, register, serialize

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _copy_backwards(layer, name):
    """The backward half: the same layer reading the other way (its own dropout stream)."""
    config = {**layer.get_config(), "name": name, "go_backwards": not layer.go_backwards}
    config.pop("batch_input_shape", None)
    if config.get("seed") is not None:
        config["seed"] = config["seed"] + 1
    return type(layer).from_config(config)


@register
class Bidirectional(Layer):
    """``Bidirectional(LSTM(64, return_sequences=True), merge_mode="concat")``.

    ``(B, T, I) -> (B, T, 2H)`` (concat; ``sum``, ``mul``, ``ave``: ``(B, T, H)``;
    ``None``: the two halves as a list); without ``return_sequences``,
    ``(B, 2H)`` from the last step of each direction.  With the inner layer's
    ``return_state``, the final states follow: forward ones, then backward ones.
    Weights: the forward layer's, then the backward layer's.  ``initial_state`` is
    not taken (give the halves their states by building them in a functional model).
    """

    supports_masking = True

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None,
                 **kwargs):
        if not isinstance(layer, Recurrent):
            raise TypeError(f"Bidirectional wraps a SimpleRNN, GRU or LSTM, got "
                            f"{type(layer).__name__}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {MERGE_MODES}, got {merge_mode!r}")
        if layer.built:
            raise ValueError("Bidirectional needs a layer that has not been built yet")
        super().__init__(weights=weights, **kwargs)
        base = layer.name[len("forward_"):] if layer.name.startswith("forward_") else layer.name
        layer.name = f"forward_{base}"
        self.forward_layer = layer
        self.backward_layer = backward_layer or _copy_backwards(layer, f"backward_{base}")
        if not isinstance(self.backward_layer, Recurrent) or \
                self.backward_layer.go_backwards == layer.go_backwards:
            raise ValueError("backward_layer must be a recurrent layer reading the other way "
                             "(go_backwards) from the forward one")
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state

    # -- building -------------------------------------------------------------------------
    def build(self, input_shape):
        self.forward_layer.ensure_built(input_shape)
        self.backward_layer.ensure_built(input_shape)
        self._weights = self.forward_layer._weights + self.backward_layer._weights

    def check_input_shape(self, input_shape):
        self.forward_layer.check_input_shape(input_shape)

    def compute_output_shape(self, input_shape):
        out = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            out, *states = out
        if self.merge_mode is None:
            outputs = [out, out]
        else:
            width = out[-1] * 2 if self.merge_mode == "concat" else out[-1]
            outputs = [(*out[:-1], width)]
        everything = outputs + states + states
        return everything if len(everything) > 1 else everything[0]

    # -- weights: Keras's lists are the forward layer's then the backward layer's ------------
    def count_arrays(self, arrays):
        n = self.forward_layer.count_arrays(arrays)
        return n + self.backward_layer.count_arrays(arrays[n:])

    def canonical_arrays(self, arrays):
        n = self.forward_layer.count_arrays(arrays)
        return (self.forward_layer.canonical_arrays(arrays[:n]) +
                self.backward_layer.canonical_arrays(arrays[n:]))

    # -- calling ------------------------------------------------------------------------------
    def call(self, inputs, ctx):
        x = as_list(inputs)[0]
        forward = as_list(self.forward_layer.call(x, ctx))
        backward = as_list(self.backward_layer.call(x, ctx))
        (f, *f_states), (b, *b_states) = forward, backward
        mask = ctx.masks.get(x)
        if self.return_sequences:
            b = b[:, ::-1]
            if mask is not None:             # Keras 3: padded steps output zeros
                keep = mask[:, :, None].astype(f.dtype)
                f, b = f * keep, b * keep
        merged = self._merge(f, b)
        outputs = merged + f_states + b_states
        return outputs if len(outputs) > 1 else outputs[0]

    def _merge(self, f, b):
        if self.merge_mode is None:
            return [f, b]
        if self.merge_mode == "concat":
            return [pt.concatenate([f, b], axis=-1)]
        if self.merge_mode == "sum":
            return [f + b]
        if self.merge_mode == "mul":
            return [f * b]
        return [(f + b) * np.asarray(0.5, dtype=f.dtype)]

    def compute_mask(self, inputs, ctx):
        mask = ctx.masks.get(as_list(inputs)[0])
        out = mask if self.return_sequences else None
        n_out = 2 if self.merge_mode is None else 1
        n_states = 2 * self.forward_layer.n_states if self.return_state else 0
        return [out] * n_out + [None] * n_states if n_out + n_states > 1 else out

    def get_config(self):
        return {**super().get_config(), "layer": serialize(self.forward_layer),
                "backward_layer": serialize(self.backward_layer), "merge_mode": self.merge_mode}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layer = deserialize(config.pop("layer"))
        backward = config.pop("backward_layer", None)
        backward = deserialize(backward) if isinstance(backward, dict) else backward
        return cls(layer, backward_layer=backward, **config)
