"""The loop: the one module of scanrnn that calls :func:`pytensor.scan`.

:func:`scan` is ``pytensor.scan`` with the settings scanrnn always wants
(``strict=True``: every shared variable the step uses is a ``non_sequence``;
``return_updates=False``: recurrent state lives in ``outputs_info``; a name, so
printed graphs map back to layers).  :func:`unroll` runs a
:class:`~scanrnn.cells.Cell` over a time-major sequence with the input
projection hoisted out of the loop.
"""

from __future__ import annotations

import pytensor
import pytensor.tensor as pt


def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None, *,
         name: str = "scan", truncate_gradient: int = -1, go_backwards: bool = False):
    """``pytensor.scan`` with ``strict=True`` and ``return_updates=False``.

    ``fn`` receives, in order: one slice per sequence, the previous value of
    each recurrent output (those with an initial value in ``outputs_info``),
    then the ``non_sequences``.  Returns the stacked outputs (one variable, or
    a list when ``fn`` returns several).  A shared random generator given in
    ``outputs_info`` comes back as its *final* state, to be used in
    ``updates={rng: final_rng}``.
    """
    return pytensor.scan(
        fn,
        sequences=sequences,
        outputs_info=outputs_info,
        non_sequences=non_sequences,
        n_steps=n_steps,
        truncate_gradient=truncate_gradient,
        go_backwards=go_backwards,
        name=name,
        strict=True,
        return_updates=False,
    )


def unroll(cell, x, params: dict, initial_state=None, *, mask=None,
           go_backwards: bool = False, truncate_gradient: int = -1,
           return_sequences: bool = True, name: str | None = None,
           fused: bool | None = None):
    """Run ``cell`` over the sequence ``x``.

    Parameters
    ----------
    cell : scanrnn.cells.Cell
    x : TensorVariable
        Time-major input, ``(T, B, I)`` floats or ``(T, B)`` integer ids.
    params : dict
        The cell's parameters (``cell.init_params()``).
    initial_state : list of TensorVariable, optional
        One ``(B, H)`` matrix per cell state; zeros when omitted.
    mask : TensorVariable, optional
        ``(T, B)``, 1 for real steps and 0 for padding: a padded step keeps the
        previous state (and outputs it).
    go_backwards : bool
        Process the sequence from its last step; outputs come in processing order.
    truncate_gradient : int
        Backpropagate through at most this many steps (-1: all).
    return_sequences : bool
        Return every step's output ``(T, B, H)`` or only the last ``(B, H)``.
    fused : bool, optional
        Use the recurrence with the hand-written backward pass
        (:mod:`scanrnn.fused`: weight gradients as one product after the loop).
        ``None`` (default) uses it whenever it applies: a built-in cell (or a
        subclass that keeps its ``step``, see :func:`scanrnn.fused.fused_class`)
        with built-in activations, no mask, no gradient truncation.

    Returns
    -------
    outputs, final_states
        ``outputs`` as chosen by ``return_sequences``; ``final_states`` a list
        of ``(B, H)`` matrices (feed them back as ``initial_state`` to carry
        state across batches).
    """
    if x.ndim not in (2, 3):
        raise ValueError(f"unroll expects a time-major (T, B) or (T, B, I) input, "
                         f"got ndim={x.ndim}")
    if initial_state is None:
        initial_state = cell.initial_state(x.shape[1])
    initial_state = list(initial_state)
    if len(initial_state) != cell.n_states:
        raise ValueError(f"{cell.kind} cell has {cell.n_states} state(s), got {len(initial_state)}")
    recurrent = cell.recurrent_params(params)
    n_states = cell.n_states

    from . import fused as fused_module

    can_fuse = mask is None and truncate_gradient == -1 and fused_module.supports(cell)
    if fused and not can_fuse:
        raise ValueError("fused=True needs a built-in cell (or a subclass that keeps its "
                         "step) with built-in activations, no mask and no truncate_gradient")
    if can_fuse and fused is not False:
        # the bias is added inside the loop, where it fuses into the gate arithmetic
        # (added to the (T, B, G*H) projection it is one more pass over that array)
        projected = cell.project(x, params, bias=False)
        ordered = projected[::-1] if go_backwards else projected
        states = fused_module.recurrence(cell, ordered, initial_state, recurrent,
                                         params["b"], name or cell.name)
        outputs = cell.output(states)
        return (outputs if return_sequences else outputs[-1]), [s[-1] for s in states]

    projected = cell.project(x, params)
    if mask is None:
        step = cell.step
        sequences = [projected]
    else:
        mask = pt.as_tensor_variable(mask)

        def step(xp_t, m_t, *rest):
            old = rest[:n_states]
            new = cell.step(xp_t, *rest)
            new = new if isinstance(new, (tuple, list)) else [new]
            keep = m_t[:, None].astype("bool")
            return [pt.switch(keep, n, o) for n, o in zip(new, old)]
        sequences = [projected, mask]

    result = scan(step, sequences=sequences, outputs_info=initial_state,
                  non_sequences=recurrent, go_backwards=go_backwards,
                  truncate_gradient=truncate_gradient, name=name or cell.name)
    states = result if isinstance(result, (list, tuple)) else [result]
    final_states = [s[-1] for s in states]
    outputs = cell.output(states)
    return (outputs if return_sequences else outputs[-1]), final_states
