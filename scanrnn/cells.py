"""Recurrent cells: pure step functions plus their parameter spec and initial state.

A cell knows nothing about the loop (that is :mod:`scanrnn.recurrent`).  Every
cell stores one canonical weight layout, whatever backend or layer uses it:

========  =====================  ==========================  ==========
name      ``W_x`` (I, G*H)       ``W_h`` (H, G*H)            ``b`` (G*H)
========  =====================  ==========================  ==========
rnn       G = 1                  G = 1                       G = 1
gru       gates ``z, r, n``      gates ``z, r, n``           + ``b_h`` (3H), reset after
lstm      gates ``i, f, g, o``   gates ``i, f, g, o``        forget bias 1
========  =====================  ==========================  ==========

The input projection ``x_t @ W_x + b`` of all steps is one product computed
before the loop (:meth:`Cell.project`); :meth:`Cell.step` only adds the
recurrent product.  Integer inputs (token ids) select rows of ``W_x``, which
equals a one-hot product without building the one-hot matrix.

Shapes: ``x`` is time-major, ``(T, B, I)`` floats or ``(T, B)`` integer ids;
states are ``(B, H)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from . import init as initializers
from ._config import floatx
from .contract import dot_last, take_rows

ACTIVATIONS = {
    "tanh": pt.tanh,
    # not pt.maximum(z, 0): on PyTensor 3.0.7 its gradient through an unfused scan compiled
    # for JAX comes out wrong (tests/test_core_math.py::test_fused_backward_pass_equals_...)
    "relu": lambda z: pt.switch(z > 0, z, 0),
    "sigmoid": pt.sigmoid,
    "hard_sigmoid": lambda z: pt.clip(0.2 * z + 0.5, 0, 1),
    "linear": lambda z: z,
}


def activation(name):
    """The elementwise function called ``name`` (or ``name`` itself if callable)."""
    if callable(name):
        return name
    if name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}"
        )
    return ACTIVATIONS[name]


@dataclass
class Cell:
    """Base class; see :class:`RNNCell`, :class:`GRUCell`, :class:`LSTMCell`.

    Parameters
    ----------
    input_size : int
        Features per step ``I`` (the vocabulary size for integer inputs).
    hidden_size : int
        State size ``H``.
    name : str
        Prefix of the parameter names (``"lstm_1"`` gives ``"lstm_1.W_x"``).
    kernel_init, recurrent_init, bias_init : str
        Initializer names from :mod:`scanrnn.init`.
    """

    input_size: int
    hidden_size: int
    name: str = "cell"
    kernel_init: str = "glorot_uniform"
    recurrent_init: str = "orthogonal"
    bias_init: str = "zeros"

    gates = 1
    n_states = 1
    kind = "cell"

    def __post_init__(self):
        for field in ("input_size", "hidden_size"):
            value = getattr(self, field)
            if isinstance(value, np.integer):  # e.g. a size read from an array's shape
                value = int(value)
                setattr(self, field, value)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{self.kind} {field} must be a positive int, got {value!r}")

    # -- parameters ---------------------------------------------------------
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Short parameter name -> shape, in canonical order."""
        width = self.gates * self.hidden_size
        return {"W_x": (self.input_size, width), "W_h": (self.hidden_size, width),
                "b": (width,)}

    def init_arrays(self, rng=None) -> dict[str, np.ndarray]:
        """Initial parameter values as float64 numpy arrays (short names)."""
        rng = initializers.as_rng(rng)
        kinds = {"W_x": self.kernel_init, "W_h": self.recurrent_init, "b": self.bias_init,
                 "b_h": self.bias_init}
        return {key: initializers.get(kinds[key])(shape, rng)
                for key, shape in self.param_shapes().items()}

    def init_params(self, rng=None) -> dict:
        """Named shared variables ``{short name: shared}`` (dtype floatX)."""
        return {key: initializers.shared(value, name=f"{self.name}.{key}")
                for key, value in self.init_arrays(rng).items()}

    def recurrent_params(self, params: dict) -> list:
        """The parameters :meth:`step` uses, in its argument order."""
        return [params["W_h"]]

    # -- symbolic pieces ----------------------------------------------------
    def project(self, x, params, bias: bool = True):
        """Input projection of all steps at once: ``(T, B, G*H)`` (``bias=False``: no ``b``)."""
        if x.dtype.startswith(("int", "uint")):
            projected = take_rows(params["W_x"], x)
        else:
            projected = dot_last(x, params["W_x"])
        return projected + params["b"] if bias else projected

    def initial_state(self, batch_size) -> list:
        """Zero states, one ``(B, H)`` matrix per state."""
        return [pt.zeros((batch_size, self.hidden_size), dtype=floatx())
                for _ in range(self.n_states)]

    def step(self, xp_t, *states_and_params):
        """One step: ``(projected input (B, G*H), *states, *recurrent params) -> states``."""
        raise NotImplementedError

    @staticmethod
    def output(states):
        """The cell's visible output (the hidden state ``h``) from its states."""
        return states[0]

    def gate(self, z, k):
        """Block ``k`` (0-based) of a fused ``(..., G*H)`` gate matrix."""
        hidden = self.hidden_size
        return z[..., k * hidden:(k + 1) * hidden]

    def n_params(self) -> int:
        """Number of scalar parameters."""
        return int(sum(np.prod(s) for s in self.param_shapes().values()))


@dataclass
class RNNCell(Cell):
    """Elman cell: ``h_t = act(x_t W_x + b + h_{t-1} W_h)`` (tanh or relu)."""

    activation: str = "tanh"
    kind = "rnn"

    def step(self, xp_t, h_prev, W_h):
        return activation(self.activation)(xp_t + pt.dot(h_prev, W_h))


@dataclass
class GRUCell(Cell):
    """GRU with the reset gate applied after the recurrent product (cuDNN, Keras 3).

    ``z = σ(x_z + h W_hz + b_hz)``, ``r = σ(x_r + h W_hr + b_hr)``,
    ``n = tanh(x_n + r ⊙ (h W_hn + b_hn))``, ``h' = z ⊙ h + (1 - z) ⊙ n``.
    """

    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    gates = 3
    kind = "gru"

    def param_shapes(self):
        shapes = super().param_shapes()
        shapes["b_h"] = (self.gates * self.hidden_size,)
        return shapes

    def recurrent_params(self, params):
        return [params["W_h"], params["b_h"]]

    def step(self, xp_t, h_prev, W_h, b_h):
        gate_act = activation(self.recurrent_activation)
        hh = pt.dot(h_prev, W_h) + b_h
        z = gate_act(self.gate(xp_t, 0) + self.gate(hh, 0))
        r = gate_act(self.gate(xp_t, 1) + self.gate(hh, 1))
        n = activation(self.activation)(self.gate(xp_t, 2) + r * self.gate(hh, 2))
        return z * h_prev + (1 - z) * n


@dataclass
class LSTMCell(Cell):
    """LSTM, gates ``i, f, g, o`` fused; states ``(h, c)``; forget-gate bias 1."""

    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    forget_bias: float = 1.0
    gates = 4
    n_states = 2
    kind = "lstm"

    def init_arrays(self, rng=None):
        arrays = super().init_arrays(rng)
        arrays["b"][self.hidden_size:2 * self.hidden_size] += self.forget_bias
        return arrays

    def gate_activations(self, z):
        """``[i, f, g, o]`` activated, as one ``(B, 4H)`` block, from the pre-activations.

        With the usual sigmoid gates and tanh candidate this is ONE tanh over
        the whole block, using ``sigmoid(x) = tanh(x / 2) / 2 + 1/2``: a single
        vectorised pass where four strided column slices would run as four
        (XLA:CPU ran them about 3x slower).
        """
        if self.one_tanh_gates:
            H = self.hidden_size
            scale = np.full(4 * H, 0.5, dtype=floatx())
            scale[2 * H:3 * H] = 1.0
            return pt.tanh(z * scale) * scale + (1 - scale)
        return pt.concatenate(self._gates_one_by_one(z), axis=-1)

    @property
    def one_tanh_gates(self) -> bool:
        """True when :meth:`gate_activations` is one tanh (sigmoid gates, tanh candidate)."""
        return (self.recurrent_activation, self.activation) == ("sigmoid", "tanh")

    def _gates_one_by_one(self, z):
        gate_act, act = activation(self.recurrent_activation), activation(self.activation)
        return [gate_act(self.gate(z, 0)), gate_act(self.gate(z, 1)),
                act(self.gate(z, 2)), gate_act(self.gate(z, 3))]

    def step(self, xp_t, h_prev, c_prev, W_h):
        z = xp_t + pt.dot(h_prev, W_h)
        if self.one_tanh_gates:
            gates = self.gate_activations(z)
            i, f, g, o = (self.gate(gates, k) for k in range(4))
        else:  # no concatenate: its gradient inside a scan needs shapes JAX cannot trace
            i, f, g, o = self._gates_one_by_one(z)
        c = f * c_prev + i * g
        return o * activation(self.activation)(c), c


CELLS = {"rnn": RNNCell, "gru": GRUCell, "lstm": LSTMCell}
#: every name :func:`make_cell` accepts ("tanh"/"relu": an RNN with that activation)
CELL_KINDS = ("lstm", "gru", "rnn", "tanh", "relu")


def make_cell(kind: str, input_size: int, hidden_size: int, **kwargs) -> Cell:
    """Build a cell by name: ``"rnn"`` (alias ``"tanh"``, ``"relu"``), ``"gru"``, ``"lstm"``."""
    if kind in ("tanh", "relu"):
        kwargs.setdefault("activation", kind)
        kind = "rnn"
    if kind not in CELLS:
        raise ValueError(f"unknown cell {kind!r}; known: {', '.join(CELL_KINDS)}")
    kwargs.setdefault("name", kind)
    return CELLS[kind](input_size, hidden_size, **kwargs)
