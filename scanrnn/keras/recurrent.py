"""``SimpleRNN``, ``GRU``, ``LSTM``: thin wrappers over :mod:`scanrnn.cells` and
:func:`scanrnn.recurrent.unroll`.

Keras is batch-major outside, ``(B, T, I)``; the core loop is time-major
inside, so a layer transposes, unrolls the core cell, and transposes back.
The weights are the cell's canonical ``W_x (I, G*H)``, ``W_h (H, G*H)``,
``b (G*H)`` (``+ b_h`` for the GRU), so the parameter counts are Keras's:

============  ===========================  ==========================
layer         Keras formula                core layout
============  ===========================  ==========================
SimpleRNN     ``H*(I+H) + H``              ``W_x, W_h, b``
GRU           ``3*(H*(I+H) + 2H)``         ``W_x, W_h, b, b_h`` (reset after)
LSTM          ``4*(H*(I+H) + H)``          ``W_x, W_h, b`` (gates i, f, g, o)
============  ===========================  ==========================

``stateful=True`` keeps the final states in shared variables of shape
``(B, H)`` (so the batch size is fixed) that the compiled functions update
after every batch; :meth:`Recurrent.reset_states` zeroes (or resizes) them.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from .. import cells
from .. import init as initializers
from .. import recurrent as core_recurrent
from . import activations, random_streams
from .core_layers import _check_initializer, _pick, _positive_int
from .engine import KerasTensor, Layer, as_list, shape_str, weight_rng
from .recurrent_cells import GRUResetBeforeCell, dropout_masks, unroll_masked
from .registry import register

STATE_NAMES = ("h", "c")


def _rate(value, what):
    value = float(value or 0.0)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value!r}")
    return value


def _elementwise(name, what, layer):
    """The canonical name of an elementwise activation (the ones a cell can use)."""
    key = activations.canonical(name)
    if key not in activations.ELEMENTWISE:
        raise ValueError(f"{type(layer).__name__} {what} must be one of "
                         f"{', '.join(sorted(activations.ELEMENTWISE))}, got {name!r}")
    return key


class Recurrent(Layer):
    """Base of the recurrent layers; see :class:`SimpleRNN`, :class:`GRU`, :class:`LSTM`.

    Parameters
    ----------
    units : int
        Hidden size ``H`` (Keras 1: ``output_dim``).
    activation : str
        ``tanh`` (default) or ``relu``, ``sigmoid``, ``hard_sigmoid``, ``linear``.
    recurrent_activation : str
        Gate activation of GRU/LSTM (Keras 1: ``inner_activation``); default ``sigmoid``.
        ``"hard_sigmoid"`` is Keras 3's ``clip(x/6 + 0.5, 0, 1)``; given as Keras 1's
        ``inner_activation="hard_sigmoid"`` it is Keras 1's ``clip(0.2x + 0.5, 0, 1)``
        (stored as ``"keras1_hard_sigmoid"``).
    kernel_initializer, recurrent_initializer, bias_initializer : str
        Keras 1: ``init``, ``inner_init``.  ``'identity'`` gives the IRNN of the lesson.
    return_sequences : bool
        Output ``(B, T, H)`` (every step) instead of ``(B, H)`` (the last step).
    return_state : bool
        Also return the final states (``[output, h]``, LSTM ``[output, h, c]``).
    go_backwards : bool
        Read the sequence from its end; outputs come in processing order.  With
        ``return_sequences`` and a mask, the output's mask is the input mask
        reversed too, so it stays aligned with the reversed outputs (Keras 3
        passes the input mask on unreversed, which misaligns them; a masked
        loss or a next masked layer sees the padded steps where they are).
    stateful : bool
        Carry the final states into the next batch (needs a fixed batch size).
    truncate_gradient : int
        Backpropagate through at most this many steps (-1: all), as in Theano.
    use_bias : bool
        Without biases (their arrays are left out of the weights, as in Keras).
    dropout, recurrent_dropout : float
        Keras's variational dropout while training (Keras 1: ``dropout_W``,
        ``dropout_U``): one mask per sequence, the same at every step, on the
        inputs ``(B, I)`` and on ``h_{t-1}`` ``(B, H)`` where it enters the recurrent
        products (the carried state itself is not dropped).  Drawn in the graph
        from a counter-based stream (``<name>.dropout_rng``, ``[seed, counter]``).
    seed : int, optional
        Seed of that stream (default: drawn from the weight generator).
    """

    supports_masking = True
    cell_kind = "rnn"

    def __init__(self, units=None, activation="tanh", recurrent_activation=None,
                 use_bias=True, kernel_initializer=None, recurrent_initializer=None,
                 bias_initializer="zeros",
                 unit_forget_bias=True, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, truncate_gradient=-1, dropout=0.0,
                 recurrent_dropout=0.0, reset_after=True, seed=None, *, output_dim=None,
                 init=None,
                 inner_init=None, inner_activation=None, forget_bias_init=None,
                 dropout_W=0.0, dropout_U=0.0, input_dim=None, input_length=None, **kwargs):
        self.dropout = _rate(_pick(dropout or None, dropout_W or None, 0.0, "dropout_W"),
                             "dropout")
        self.recurrent_dropout = _rate(_pick(recurrent_dropout or None, dropout_U or None, 0.0,
                                             "dropout_U"), "recurrent_dropout")
        self.seed = seed
        self.use_bias = bool(use_bias)
        self.reset_after = bool(reset_after)
        if input_dim is not None:
            kwargs.setdefault("input_shape", (input_length, input_dim))
        elif input_length is not None:
            raise ValueError(f"{type(self).__name__}: input_length needs input_dim")
        super().__init__(**kwargs)
        self.units = _positive_int(_pick(units, output_dim, None, "output_dim"), "units",
                                   type(self).__name__)
        self.activation = _elementwise(activation, "activation", self)
        if inner_activation is not None:  # Keras 1's argument: Keras 1's hard_sigmoid
            inner_activation = activations.keras1(inner_activation)
            recurrent_activation = None if recurrent_activation is None else \
                activations.canonical(recurrent_activation)
        self.recurrent_activation = _elementwise(
            _pick(recurrent_activation, inner_activation, "sigmoid", "inner_activation"),
            "recurrent_activation", self)
        self.kernel_initializer = _check_initializer(
            _pick(kernel_initializer, init, "glorot_uniform", "init"))
        self.recurrent_initializer = _check_initializer(
            _pick(recurrent_initializer, inner_init, "orthogonal", "inner_init"))
        self.bias_initializer = _check_initializer(bias_initializer)
        if forget_bias_init is not None:
            unit_forget_bias = forget_bias_init in ("one", "ones")
        self.unit_forget_bias = bool(unit_forget_bias)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.truncate_gradient = int(truncate_gradient)
        self.cell = None
        self.params = None
        self.states = []
        self.rng = None

    # -- the core cell ----------------------------------------------------------------------
    def make_cell(self, input_size: int) -> cells.Cell:
        kwargs = {"name": self.name, "kernel_init": self.kernel_initializer,
                  "recurrent_init": self.recurrent_initializer,
                  "bias_init": self.bias_initializer,
                  "activation": activations.for_cell(self.activation)}
        if self.cell_kind in ("gru", "lstm"):
            kwargs["recurrent_activation"] = activations.for_cell(self.recurrent_activation)
        if self.cell_kind == "lstm":
            kwargs["forget_bias"] = 1.0 if (self.unit_forget_bias and self.use_bias) else 0.0
        if self.cell_kind == "gru" and not self.reset_after:
            return GRUResetBeforeCell(input_size, self.units, **kwargs)
        return cells.make_cell(self.cell_kind, input_size, self.units, **kwargs)

    def build(self, input_shape):
        shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        if len(shape) != 3:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} expects inputs of shape (batch, timesteps, "
                f"features), got {shape_str(shape)}" +
                (" (add an Embedding layer, or reshape to (batch, timesteps, 1))"
                 if len(shape) == 2 else ""))
        if shape[-1] is None:
            raise ValueError(f"{type(self).__name__} {self.name!r} needs a known feature size, "
                             f"got {shape_str(shape)}")
        self.cell = self.make_cell(int(shape[-1]))
        self.params = self.cell.init_params(weight_rng())
        for short in list(self.params):
            if short.startswith("b") and not self.use_bias:   # b, b_h: zeros, not weights
                shape = self.cell.param_shapes()[short]
                self.params[short] = pt.zeros(shape, dtype=self.params[short].dtype)
            else:
                self.track_weight(short, self.params[short])
        if self.dropout or self.recurrent_dropout:
            self.rng = random_streams.new_stream(self.seed, f"{self.name}.dropout_rng")
        if self.stateful:
            if shape[0] is None:
                raise ValueError(
                    f"a stateful {type(self).__name__} needs a fixed batch size: give the first "
                    f"layer batch_input_shape=(batch, timesteps, ...) (or use "
                    f"Input(batch_shape=(batch, ...)))")
            self.states = [initializers.shared(np.zeros((shape[0], self.units)),
                                               name=f"{self.name}.state_{STATE_NAMES[k]}")
                           for k in range(self.cell.n_states)]

    def check_input_shape(self, input_shape):
        shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        if len(shape) != 3:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects inputs of shape "
                             f"(batch, timesteps, features), got {shape_str(shape)}")
        if shape[-1] is not None and shape[-1] != self.cell.input_size:
            raise ValueError(f"layer {self.name!r} was built for {self.cell.input_size} input "
                             f"features and cannot take {shape_str(shape)}")

    @property
    def n_states(self) -> int:
        return cells.CELLS[self.cell_kind].n_states

    def compute_output_shape(self, input_shape):
        shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        batch, steps = shape[0], shape[1]
        out = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [out] + [(batch, self.units)] * self.n_states
        return out

    # -- calling ------------------------------------------------------------------------------
    def _call_kwargs(self, kwargs):
        initial_state = kwargs.pop("initial_state", None)
        for key in ("training", "mask"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"{type(self).__name__} call got unknown argument(s): "
                            f"{', '.join(sorted(kwargs))}")
        initial = as_list(initial_state)
        if not initial:
            return [], {}
        if self.stateful:
            raise ValueError(f"stateful layer {self.name!r} carries its own state; do not pass "
                             f"initial_state")
        if len(initial) != self.n_states:
            raise ValueError(f"{type(self).__name__} takes {self.n_states} initial state(s), got "
                             f"{len(initial)}")
        for t in initial:
            if isinstance(t, KerasTensor) and (len(t.shape) != 2 or
                                               t.shape[-1] not in (None, self.units)):
                raise ValueError(f"initial states of {self.name!r} must have shape "
                                 f"(batch, {self.units}), got {shape_str(t.shape)}")
        return initial, {"initial_state": len(initial)}

    def call(self, inputs, ctx):
        items = as_list(inputs)
        x, initial = items[0], items[1:]
        if x.ndim != 3:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects a 3-D input "
                             f"(batch, timesteps, features), got ndim={x.ndim}")
        if self.stateful:
            initial = self.states
        if x.type.shape[0] is not None:   # a static batch (e.g. 1) must reach scan's states too
            initial = [pt.specify_shape(s, (x.type.shape[0], self.units)) for s in initial]
        mask = ctx.masks.get(x)
        outputs, finals = self._unroll(x, initial, None if mask is None else mask.T, ctx)
        if self.stateful:
            for state, final in zip(self.states, finals):
                if final.type.shape != state.type.shape:
                    # a static batch (the batch-of-one graph): the update must keep the
                    # state's free type, and a slice to the state's own rows is one
                    final = final[:state.shape[0]]
                ctx.add_update(state, final, self)
        if self.return_sequences:
            outputs = outputs.dimshuffle(1, 0, 2)
        return [outputs, *finals] if self.return_state else outputs

    def _unroll(self, x, initial, mask, ctx):
        """The core loop over ``x`` ``(B, T, I)``; with dropout (training only) the masked one."""
        loop = {"go_backwards": self.go_backwards, "truncate_gradient": self.truncate_gradient,
                "return_sequences": self.return_sequences, "name": self.name, "mask": mask}
        xt = x.dimshuffle(1, 0, 2)
        if not (ctx.training and (self.dropout or self.recurrent_dropout)):
            return core_recurrent.unroll(self.cell, xt, self.params,
                                         initial_state=initial or None, **loop)
        drop_x, drop_h, advanced = dropout_masks(self.rng, x.shape[0], self.cell.input_size,
                                                 self.units, self.dropout,
                                                 self.recurrent_dropout)
        ctx.add_update(self.rng, advanced, self)
        batch = x.type.shape[0]                    # static sizes agree with the sequence's
        drop_x, drop_h = (None if m is None else pt.specify_shape(m, (batch, size))
                          for m, size in ((drop_x, self.cell.input_size), (drop_h, self.units)))
        if drop_x is not None:
            xt = xt * drop_x[None].astype(xt.dtype)
        initial = initial or self.cell.initial_state(x.shape[0])
        return unroll_masked(self.cell, xt, self.params, initial, recurrent_mask=drop_h, **loop)

    def compute_mask(self, inputs, ctx):
        """The input mask ``(B, T)`` for ``return_sequences`` (reversed with
        ``go_backwards``, to match the outputs' order; Keras 3 does not reverse it)."""
        mask = ctx.masks.get(as_list(inputs)[0])
        out = mask if (self.return_sequences and mask is not None) else None
        if out is not None and self.go_backwards:
            out = out[:, ::-1]
        return [out] + [None] * self.n_states if self.return_state else out

    # -- state ----------------------------------------------------------------------------
    def reset_states(self, batch_size: int | None = None) -> None:
        """Zero the carried states; ``batch_size`` also resizes them (e.g. to 1 for sampling)."""
        if not self.stateful:
            raise ValueError(f"layer {self.name!r} is not stateful")
        if not self.built:
            return
        rows = self.states[0].get_value(borrow=True).shape[0] if batch_size is None \
            else _positive_int(batch_size, "batch_size", self.name)
        for state in self.states:
            state.set_value(np.zeros((rows, self.units), dtype=state.dtype))

    @property
    def state_batch_size(self) -> int | None:
        if not (self.stateful and self.states):
            return None
        return int(np.shape(self.states[0].get_value(borrow=True))[0])

    def get_config(self):
        config = {**super().get_config(), "units": self.units, "activation": self.activation,
                  "kernel_initializer": self.kernel_initializer,
                  "recurrent_initializer": self.recurrent_initializer,
                  "bias_initializer": self.bias_initializer,
                  "return_sequences": self.return_sequences, "return_state": self.return_state,
                  "go_backwards": self.go_backwards, "stateful": self.stateful,
                  "truncate_gradient": self.truncate_gradient, "use_bias": self.use_bias,
                  "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                  "seed": self.seed}
        if self.cell_kind == "gru":
            config["reset_after"] = self.reset_after
        if self.cell_kind in ("gru", "lstm"):
            config["recurrent_activation"] = self.recurrent_activation
        if self.cell_kind == "lstm":
            config["unit_forget_bias"] = self.unit_forget_bias
        return config


@register
class SimpleRNN(Recurrent):
    """Elman RNN: ``h_t = activation(x_t W_x + b + h_{t-1} W_h)``; ``H*(I+H)+H`` parameters."""

    cell_kind = "rnn"

    def __init__(self, units=None, activation="tanh", **kwargs):
        for key in ("recurrent_activation", "inner_activation", "unit_forget_bias"):
            if key in kwargs:
                raise TypeError(f"SimpleRNN has no {key} (it has no gates)")
        super().__init__(units, activation=activation, **kwargs)


@register
class GRU(Recurrent):
    """GRU, reset gate after the recurrent product (Keras 3); ``3*(H*(I+H)+2H)`` parameters.

    ``reset_after=False`` (Keras 2 / TF1 weights) applies the reset gate to ``h``
    before the recurrent product and has one bias ``b (3H)``: ``3*(H*(I+H)+H)``.

    Weights: ``W_x (I, 3H), W_h (H, 3H), b (3H), b_h (3H)`` (gates z, r, n).
    :meth:`set_weights` also takes Keras 3's three arrays, whose last, ``(2, 3H)``,
    holds ``b`` and ``b_h`` as rows; :meth:`get_weights` returns the four.
    """

    cell_kind = "gru"

    def _keras_bias(self, arrays, at):
        """True when ``arrays[at]`` is Keras's ``(2, 3H)`` pair of biases."""
        return len(arrays) > at and np.ndim(arrays[at]) == 2 and np.shape(arrays[at])[0] == 2

    def canonical_arrays(self, arrays):
        if self.use_bias and self.reset_after and len(arrays) == 3 and \
                self._keras_bias(arrays, 2):
            W_x, W_h, biases = arrays
            return [W_x, W_h, np.asarray(biases)[0], np.asarray(biases)[1]]
        return arrays

    def count_arrays(self, arrays):
        keras_pair = self.use_bias and self.reset_after and self._keras_bias(arrays, 2)
        return 3 if keras_pair else len(self.weights)


@register
class LSTM(Recurrent):
    """LSTM, gates ``i, f, g, o``, forget bias 1; states ``(h, c)``; ``4*(H*(I+H)+H)``."""

    cell_kind = "lstm"
