"""What the Keras recurrent layers need beyond the core: the GRU with the reset gate
*before* the recurrent product (Keras 2 / TF1's ``reset_after=False``), Keras's
variational dropout (one mask per sequence, fixed across time steps, drawn in the
graph from a counter-based stream so it runs on every backend, JAX included),
and the scan loop that applies those masks.

Shapes: ``x`` is time-major ``(T, B, I)``; states and recurrent masks ``(B, H)``;
input masks ``(B, I)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from .. import cells
from .. import random as core_random
from .. import recurrent as core_recurrent
from .._config import floatx


@dataclass
class GRUResetBeforeCell(cells.Cell):
    """GRU with the reset gate applied to ``h`` before the recurrent product; one bias.

    ``z = σ(x_z + h W_hz)``, ``r = σ(x_r + h W_hr)``, ``n = tanh(x_n + (r ⊙ h) W_hn)``,
    ``h' = z ⊙ h + (1 - z) ⊙ n`` (``x_* = x W_x + b``); ``3*(H*(I+H)+H)`` parameters,
    the layout of Keras's ``GRU(reset_after=False)``: ``W_x (I, 3H), W_h (H, 3H), b (3H)``.
    """

    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    gates = 3
    kind = "gru_reset_before"

    def step(self, xp_t, h_prev, W_h):
        gate_act = cells.activation(self.recurrent_activation)
        H = self.hidden_size
        zr = pt.dot(h_prev, W_h[:, :2 * H])
        z = gate_act(self.gate(xp_t, 0) + zr[:, :H])
        r = gate_act(self.gate(xp_t, 1) + zr[:, H:])
        candidate = self.gate(xp_t, 2) + pt.dot(r * h_prev, W_h[:, 2 * H:])
        n = cells.activation(self.activation)(candidate)
        return z * h_prev + (1 - z) * n


def dropout_masks(rng, batch, input_size, hidden_size, rate, recurrent_rate):
    """``(input mask (B, I) or None, recurrent mask (B, H) or None, rng update)``.

    Inverted-dropout masks (0 or ``1 / (1 - rate)``), one per sequence: the same for
    every time step (Keras's variational dropout).  Both come from one ``(B, I + H)``
    block of draws (one key: two hash chains side by side trip a PyTensor 3.3 rewrite
    whose uint32 constants JAX then cannot build).
    """
    u = core_random.uniform_hash(core_random.stream_key(rng, 0),
                                 (batch, input_size + hidden_size))
    masks = []
    for block, p in ((u[:, :input_size], rate), (u[:, input_size:], recurrent_rate)):
        scale = np.asarray(1.0 / (1.0 - p), dtype=floatx())
        masks.append(pt.switch(block >= np.float32(p), scale, np.asarray(0, dtype=floatx()))
                     if p > 0 else None)
    return masks[0], masks[1], core_random.advanced(rng)


def unroll_masked(cell, x, params, initial_state, *, mask=None, recurrent_mask=None,
                  go_backwards=False, truncate_gradient=-1, return_sequences=True, name=None):
    """:func:`scanrnn.recurrent.unroll`'s scan loop with a recurrent dropout mask:
    ``h_{t-1} * recurrent_mask`` feeds the recurrent products (the carried state and
    the GRU's ``z ⊙ h`` use ``h`` itself).  ``mask`` ``(T, B)`` keeps padded steps."""
    n_states = cell.n_states
    recurrent = cell.recurrent_params(params)

    def step(*args):
        xp_t, rest = args[0], list(args[1:])
        m_t = rest.pop(0) if mask is not None else None
        old = rest[:n_states]
        extra = rest[n_states:]
        if recurrent_mask is not None:
            drop, weights = extra[0], extra[1:]
            new = _step_dropped(cell, xp_t, old, drop, weights)
        else:
            new = cell.step(xp_t, *old, *extra)
        new = list(new) if isinstance(new, (tuple, list)) else [new]
        if m_t is None:
            return new
        keep = m_t[:, None].astype("bool")
        return [pt.switch(keep, n, o) for n, o in zip(new, old)]

    sequences = [cell.project(x, params)] + ([mask] if mask is not None else [])
    non_sequences = ([recurrent_mask] if recurrent_mask is not None else []) + recurrent
    result = core_recurrent.scan(step, sequences=sequences, outputs_info=list(initial_state),
                                 non_sequences=non_sequences, go_backwards=go_backwards,
                                 truncate_gradient=truncate_gradient, name=name or cell.name)
    states = result if isinstance(result, (list, tuple)) else [result]
    outputs = cell.output(states)
    return (outputs if return_sequences else outputs[-1]), [s[-1] for s in states]


def _step_dropped(cell, xp_t, old, drop, weights):
    """One step whose recurrent products read ``h * drop``."""
    h = old[0]
    if isinstance(cell, (cells.GRUCell, GRUResetBeforeCell)):
        # z ⊙ h uses the undropped h: step on the dropped h, then correct that term
        dropped = cell.step(xp_t, h * drop, *weights)
        z = _gru_update_gate(cell, xp_t, h * drop, weights)
        return dropped + z * (h - h * drop)
    return cell.step(xp_t, h * drop, *old[1:], *weights)


def _gru_update_gate(cell, xp_t, h, weights):
    W_h = weights[0]
    H = cell.hidden_size
    zh = pt.dot(h, W_h[:, :H])
    if len(weights) > 1:                       # reset after: the recurrent bias b_h
        zh = zh + weights[1][:H]
    return cells.activation(cell.recurrent_activation)(cell.gate(xp_t, 0) + zh)
