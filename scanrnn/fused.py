"""Fused recurrences: the loop with a hand-written backward pass (as cuDNN does).

PyTensor differentiates a ``scan`` by building a second scan that also
accumulates the gradient of every recurrent weight at every step: one small
``(H, B) @ (B, G*H)`` product and an ``(H, G*H)`` read-modify-write per step.
Here the recurrence is an ``OpFromGraph`` whose gradient is written by hand:

* the backward scan carries only ``dh`` (and ``dc``), reads the saved
  sequences at ``t`` in place and emits the gradient of each step's
  pre-activation ``dA_t`` (see :func:`_backward_scan`);
* the recurrent weight gradient is then ONE product after the loop,
  ``dW_h = sum_t h_{t-1}^T dA_t`` over all ``T * B`` rows;
* the gradient of the projected inputs is ``dA`` itself, so the input weights'
  gradient is one product as well (the projection was hoisted before the loop;
  only the bias is added inside it, where it fuses into the gate arithmetic);
* the forward pass saves what the backward step multiplies by (for the LSTM
  the gate derivatives times their partners), so nothing is recomputed.

The op is inlined when the function is compiled, so every backend runs it.
:func:`scanrnn.recurrent.unroll` uses it when the cell's activations have known
derivatives and no mask or gradient truncation is asked for; its gradients are
checked against finite differences and against PyTensor's own in the tests.

Shapes: ``xp`` (T, B, G*H) projected inputs without the bias, states (B, H),
``W_h`` (H, G*H), ``b`` (G*H,).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.gradient import DisconnectedType

from ._config import floatx
from .cells import GRUCell, LSTMCell, RNNCell, activation
from .contract import sum_outer
from .loop import scan

# PyTensor 3.0.7 renamed ``lop_overrides`` to ``pullback`` (the old name warns)
_PULLBACK_ARGUMENT = ("pullback" if "pullback" in inspect.signature(OpFromGraph.__init__).parameters
                      else "lop_overrides")

# d act(z) / dz written in terms of the output y = act(z)
_DERIVATIVE_FROM_OUTPUT = {
    "tanh": lambda y: 1 - pt.sqr(y),
    "sigmoid": lambda y: y * (1 - y),
    "relu": lambda y: pt.cast(pt.gt(y, 0), y.dtype),
    "linear": lambda y: pt.ones_like(y),
    "hard_sigmoid": lambda y: 0.2 * pt.cast(pt.gt(y, 0) & pt.lt(y, 1), y.dtype),
}


# the cell methods whose math the fused graphs below re-implement
_MATH_METHODS = ("step", "recurrent_params", "gate", "gate_activations", "_gates_one_by_one",
                 "one_tanh_gates")


def fused_class(cell):
    """The built-in cell class whose fused graphs compute ``cell``'s recurrence, or None.

    That is the nearest of :class:`RNNCell`, :class:`GRUCell`, :class:`LSTMCell` in
    ``type(cell)``'s MRO, provided the subclass overrides none of the methods whose math
    the fused graphs re-implement (``step``, ``recurrent_params``, ``gate`` and the LSTM's
    ``gate_activations``, ``_gates_one_by_one``, ``one_tanh_gates``).  So a subclass that
    only adds attributes, initialisers or other methods runs fused, and one with its own
    ``step`` runs that ``step`` through ``scan``, never the parent's math.
    """
    base = next((k for k in type(cell).__mro__ if k in _GRAPHS), None)
    if base is None or any(getattr(type(cell), m, None) is not getattr(base, m, None)
                           for m in _MATH_METHODS):
        return None
    return base


def supports(cell) -> bool:
    """True when :func:`recurrence` has a hand-written backward pass for ``cell``: its
    :func:`fused_class` exists and its activations have known derivatives."""
    names = [getattr(cell, "activation", None), getattr(cell, "recurrent_activation", "sigmoid")]
    return fused_class(cell) is not None and all(
        isinstance(n, str) and n in _DERIVATIVE_FROM_OUTPUT for n in names)


def _d(name, y):
    return _DERIVATIVE_FROM_OUTPUT[name](y)


def _grad_or_zeros(grad, like):
    return pt.zeros_like(like) if isinstance(grad.type, DisconnectedType) else grad


def _pre_activation(x_t, h, W, b):
    """``x_t + b + h @ W``, written so that ``x_t + b`` is never a node of its own: the
    scan rewrites would move such a node out of the loop as one more pass over the
    whole ``(T, B, G*H)`` projection, where inside it the add fuses into the gates."""
    return (pt.dot(h, W) + b) + x_t


def _previous(initial, sequence):
    """``[s_0, s_1, ..., s_{T-1}]`` from the initial state and the states after each step."""
    return pt.concatenate([initial[None], sequence[:-1]], axis=0)


def _sum_outer(prev, d_pre):
    """``sum_t prev_t^T d_pre_t`` as one product over all T*B rows: (H, G*H)."""
    return sum_outer(prev, d_pre)


def _backward_scan(step, xp, carries, n_grads, non_sequences, name):
    """The backward loop, t = T-1 .. 0, shared by the cells.

    ``step(t, *carries, *non_sequences)`` reads the saved sequences at ``t`` in
    place (``go_backwards`` would first copy each of them reversed) and returns
    the new carries followed by ``n_grads`` per-step gradients.  Returns the
    carries' sequences, then the gradients stacked in processing order, i.e.
    REVERSED in time: sums over time (``dW_h``, bias gradients) take them as they
    are, against time-reversed partners, and only what leaves the op in time
    order -- the projected inputs' gradient -- is reversed back.  (Writing each
    step's gradient at ``t`` of a buffer carried through the loop would avoid that
    one reversal on JAX, but the C and Python backends copy such a buffer at every
    step: quadratic in ``T``.)
    """
    steps = pt.arange(xp.shape[0] - 1, -1, -1)
    results = scan(step, sequences=[steps], outputs_info=[*carries, *[None] * n_grads],
                   non_sequences=non_sequences, name=f"{name}_grad")
    return list(results) if isinstance(results, (list, tuple)) else [results]


def _reversed_previous(initial, sequence):
    """``[s_{T-1}, ..., s_1, s_0]``: :func:`_previous` in reverse time order."""
    return _previous(initial, sequence)[::-1]


# -- per-cell forward (saving what the backward needs) and backward steps ---------------

def _rnn_graphs(cell: RNNCell, name):
    act = activation(cell.activation)

    def forward(xp, h0, W_h, b):
        return [scan(lambda x_t, h, W, b: act(_pre_activation(x_t, h, W, b)), sequences=[xp],
                     outputs_info=[h0], non_sequences=[W_h, b], name=name)]

    def backward(inputs, outputs, grads):
        xp, h0, W_h, b = inputs
        (hs,) = outputs
        dhs = _grad_or_zeros(grads[0], hs)

        def step(t, carry, dhs, hs, W_T):
            d_pre = (dhs[t] + carry) * _d(cell.activation, hs[t])
            return pt.dot(d_pre, W_T), d_pre

        carries, d_pre_rev = _backward_scan(step, xp, [pt.zeros_like(h0)], 1,
                                            [dhs, hs, W_h.T], name)
        return [d_pre_rev[::-1], carries[-1], _sum_outer(_reversed_previous(h0, hs), d_pre_rev),
                d_pre_rev.sum(axis=(0, 1))]

    return forward, backward, 4


def _lstm_gate_derivatives(cell: LSTMCell, gates):
    """d gates / d pre-activations ``(B, 4H)`` from the activated gates."""
    if cell.one_tanh_gates:
        # y - y^2 (sigmoid) and 1 - y^2 (tanh), over the whole block at once
        is_g = np.zeros(4 * cell.hidden_size, dtype=floatx())
        is_g[2 * cell.hidden_size:3 * cell.hidden_size] = 1
        return is_g + gates * ((1 - is_g) - gates)
    names = [cell.recurrent_activation] * 2 + [cell.activation, cell.recurrent_activation]
    return pt.concatenate([_d(n, cell.gate(gates, k)) for k, n in enumerate(names)], axis=-1)


def _lstm_graphs(cell: LSTMCell, name):
    act = activation(cell.activation)

    def step(x_t, h, c, W, b):
        gates = cell.gate_activations(_pre_activation(x_t, h, W, b))
        i, f, g, o = (cell.gate(gates, k) for k in range(4))
        d_gates = _lstm_gate_derivatives(cell, gates)
        c_new = f * c + i * g
        act_c = act(c_new)
        # what the backward step multiplies by: d_pre = [dc, dc, dc, dh] * scale_t with
        # dc = dc_in + dh * dc_dh; the carry is dc * f -- so it needs no transcendental
        scales = pt.concatenate([g, c, i, act_c], axis=-1) * d_gates
        return (o * act_c, c_new, scales,
                pt.concatenate([o * _d(cell.activation, act_c), f], axis=-1))

    def forward(xp, h0, c0, W_h, b):
        return scan(step, sequences=[xp], outputs_info=[h0, c0, None, None],
                    non_sequences=[W_h, b], name=name)

    def backward(inputs, outputs, grads):
        xp, h0, c0, W_h, b = inputs
        hs, cs, scales, dc_dh_and_f = outputs
        dhs, dcs = _grad_or_zeros(grads[0], hs), _grad_or_zeros(grads[1], cs)

        def bstep(t, dh_carry, dc_carry, dhs, dcs, scales, dc_dh_and_f, W_T):
            dc_dh, f = cell.gate(dc_dh_and_f[t], 0), cell.gate(dc_dh_and_f[t], 1)
            dh = dhs[t] + dh_carry
            dc = dcs[t] + dc_carry + dh * dc_dh
            d_pre = pt.concatenate([dc, dc, dc, dh], axis=-1) * scales[t]
            return pt.dot(d_pre, W_T), dc * f, d_pre

        dh_c, dc_c, d_pre_rev = _backward_scan(
            bstep, xp, [pt.zeros_like(h0), pt.zeros_like(c0)], 1,
            [dhs, dcs, scales, dc_dh_and_f, W_h.T], name)
        return [d_pre_rev[::-1], dh_c[-1], dc_c[-1],
                _sum_outer(_reversed_previous(h0, hs), d_pre_rev), d_pre_rev.sum(axis=(0, 1))]

    return forward, backward, 5


def _gru_graphs(cell: GRUCell, name):
    act, gate_act = activation(cell.activation), activation(cell.recurrent_activation)

    def step(x_t, h, W, b_h, b):
        hh = pt.dot(h, W) + b_h
        # (loop-dependent + b) + x_t, so the scan rewrites cannot hoist x_t + b out
        z = gate_act((cell.gate(hh, 0) + cell.gate(b, 0)) + cell.gate(x_t, 0))
        r = gate_act((cell.gate(hh, 1) + cell.gate(b, 1)) + cell.gate(x_t, 1))
        n = act((r * cell.gate(hh, 2) + cell.gate(b, 2)) + cell.gate(x_t, 2))
        return z * h + (1 - z) * n, pt.concatenate([z, r, n, cell.gate(hh, 2)], axis=-1)

    def forward(xp, h0, W_h, b_h, b):
        return scan(step, sequences=[xp], outputs_info=[h0, None],
                    non_sequences=[W_h, b_h, b], name=name)

    def backward(inputs, outputs, grads):
        xp, h0, W_h, _, _ = inputs
        hs, saved = outputs
        dhs = _grad_or_zeros(grads[0], hs)

        def bstep(t, carry, dhs, saved, h_prevs, W_T):
            z, r, n, hh_n = (cell.gate(saved[t], k) for k in range(4))
            dh = dhs[t] + carry
            d_n = dh * (1 - z) * _d(cell.activation, n)
            d_r = d_n * hh_n * _d(cell.recurrent_activation, r)
            d_z = dh * (h_prevs[t] - n) * _d(cell.recurrent_activation, z)
            d_hh = pt.concatenate([d_z, d_r, d_n * r], axis=-1)
            return (dh * z + pt.dot(d_hh, W_T), pt.concatenate([d_z, d_r, d_n], axis=-1), d_hh)

        h_prevs = _previous(h0, hs)
        carries, d_xp_rev, d_hh_rev = _backward_scan(bstep, xp, [pt.zeros_like(h0)], 2,
                                                     [dhs, saved, h_prevs, W_h.T], name)
        return [d_xp_rev[::-1], carries[-1], _sum_outer(h_prevs[::-1], d_hh_rev),
                d_hh_rev.sum(axis=(0, 1)), d_xp_rev.sum(axis=(0, 1))]

    return forward, backward, 5


_GRAPHS = {RNNCell: _rnn_graphs, LSTMCell: _lstm_graphs, GRUCell: _gru_graphs}


class FusedRecurrence(OpFromGraph):
    """The fused recurrence's op, marked with what it computes for :mod:`scanrnn.kernels`.

    ``cell_kind`` (``"rnn"``, ``"gru"``, ``"lstm"``) and ``activations``
    (``(activation, recurrent_activation)``) say which vendor kernel could replace it;
    the gradient node that :meth:`pullback` builds is tagged with the output
    gradients it got (``node.tag.fused_output_grads``), so the kernel rewrite can
    replace the backward pass too.  Otherwise a plain inline ``OpFromGraph``.
    """

    def __init__(self, *args, cell_kind=None, activations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.cell_kind, self.activations = cell_kind, tuple(activations)

    def pullback(self, inputs, outputs, output_grads):
        grads = super().pullback(inputs, outputs, output_grads)
        for grad in grads:
            if grad.owner is not None and isinstance(grad.owner.op, OpFromGraph):
                grad.owner.tag.fused_output_grads = list(output_grads)
        return grads


def recurrence(cell, projected, initial_state, recurrent_params, bias, name):
    """Run ``cell`` over ``projected`` inputs with the fused forward/backward pair.

    ``projected`` is the input projection WITHOUT the bias ``b`` (G*H,): the loop
    adds it at each step, where it fuses into the gate arithmetic.

    Returns the list of per-step states (each ``(T, B, H)``), like the scan in
    :func:`scanrnn.recurrent.unroll`.  ``cell`` must pass :func:`supports`.
    """
    if not supports(cell):
        raise ValueError(f"no fused recurrence for {type(cell).__name__} (activation "
                         f"{getattr(cell, 'activation', None)!r}): see scanrnn.fused.supports")
    forward, backward, n_inputs = _GRAPHS[fused_class(cell)](cell, name)
    # inner inputs of the outer inputs' types: a batch of 1 known statically must be
    # known inside too, or scan's broadcast checks fail when the op is inlined
    initial_state = [pt.as_tensor_variable(s) for s in initial_state]
    bias = pt.as_tensor_variable(bias)
    inner = [v.type() for v in (projected, *initial_state, *recurrent_params, bias)]
    assert len(inner) == n_inputs
    outputs = forward(*inner)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    op = FusedRecurrence(inner, list(outputs), inline=True, name=f"{name}_fused",
                         cell_kind=fused_class(cell).kind,
                         activations=(cell.activation,
                                      getattr(cell, "recurrent_activation", None)),
                         **{_PULLBACK_ARGUMENT: backward})
    results = op(projected, *initial_state, *recurrent_params, bias)
    results = results if isinstance(results, (list, tuple)) else [results]
    return list(results[:cell.n_states])
