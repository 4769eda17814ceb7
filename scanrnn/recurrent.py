"""Recurrent layers: :func:`unroll` runs a
:class:`~scanrnn.cells.Cell` over a time-major sequence with the input
projection hoisted out of the loop.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from . import fused as fused_module
from .loop import scan

__all__ = ["scan", "unroll"]


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
        previous state (and outputs it).  Another length than ``x``'s is refused
        when the function is called (one ValueError naming the shapes).
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
    x = _checked_input(cell, x)
    params = {k: v if hasattr(v, "type") else pt.as_tensor_variable(v)  # arrays: constants
              for k, v in params.items()}
    _check_params(cell, params)
    x = _in_params_dtype(x, params)
    initial_state = _checked_states(cell, x, initial_state, _params_dtype(params, x.dtype))
    if mask is not None and pt.as_tensor_variable(mask).ndim != 2:
        raise ValueError(f"mask must be (T, B), got {pt.as_tensor_variable(mask).ndim}-d")
    recurrent = cell.recurrent_params(params)
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
    else:
        states = _scanned_states(cell, cell.project(x, params), initial_state, recurrent,
                                 mask, go_backwards, truncate_gradient, name or cell.name)
    outputs = cell.output(states)
    return (outputs if return_sequences else outputs[-1]), [s[-1] for s in states]


def _checked_states(cell, x, initial_state, dtype):
    """The initial states as tensors (zeros of ``dtype``, the parameters', when None),
    checked: ``cell.n_states`` matrices of shape ``(B, H)`` and of ``dtype``."""
    if initial_state is None:
        initial_state = cell.initial_state(x.shape[1])
    states = [pt.as_tensor_variable(s) for s in initial_state]
    if len(states) != cell.n_states:
        raise ValueError(f"{cell.kind} cell has {cell.n_states} state(s), got {len(states)}")
    for k, state in enumerate(states):
        if state.ndim != 2 or state.type.shape[1] not in (None, cell.hidden_size):
            raise ValueError(f"initial_state[{k}] must be a (B, {cell.hidden_size}) matrix, "
                             f"got {state.ndim}-d with static shape {state.type.shape}")
        if state.dtype != dtype and not np.can_cast(state.dtype, dtype, "safe"):
            raise ValueError(f"initial_state[{k}] is {state.dtype} but the cell's parameters "
                             f"are {dtype}: cast it with .astype('{dtype}')")
    return [s if s.dtype == dtype else pt.cast(s, dtype) for s in states]


def _checked_input(cell, x):
    """``x`` as a tensor, checked: (T, B) integer ids or (T, B, I) floats with I the cell's."""
    x = pt.as_tensor_variable(x)
    ids = x.dtype.startswith(("int", "uint"))
    if x.ndim not in (2, 3):
        raise ValueError(f"unroll expects a time-major (T, B) or (T, B, I) input, "
                         f"got ndim={x.ndim}")
    if x.ndim == 2 and not ids:
        raise ValueError(f"a (T, B) input must hold integer token ids, got {x.dtype}; float "
                         f"features are (T, B, I) with I = {cell.input_size}")
    if x.ndim == 3 and ids:
        raise ValueError(f"a (T, B, I) input must hold floats, got {x.dtype}; token ids are a "
                         f"(T, B) integer matrix")
    if x.ndim == 3 and x.type.shape[2] not in (None, cell.input_size):
        raise ValueError(f"the input has {x.type.shape[2]} features per step, the "
                         f"{cell.kind} cell's input_size is {cell.input_size}")
    return x


def _in_params_dtype(x, params):
    """Float features in the parameters' dtype: a narrower float is widened; a wider one
    (float64 into a float32 cell) is refused rather than silently rounded."""
    dtype = _params_dtype(params, x.dtype)
    if x.dtype.startswith(("int", "uint")) or x.dtype == dtype:
        return x
    if np.can_cast(x.dtype, dtype, "safe"):
        return pt.cast(x, dtype)
    raise ValueError(f"the input is {x.dtype} but the cell's parameters are {dtype}: declare "
                     f"the input as {dtype} (pt.tensor3('x', dtype='{dtype}')) or cast it "
                     f"with x.astype('{dtype}')")


def _params_dtype(params, default) -> str:
    """The dtype of the cell's parameters (``W_h``'s; ``default`` when it has none)."""
    reference = params.get("W_h", next(iter(params.values()), None))
    return str(getattr(reference, "dtype", default))


def _check_params(cell, params):
    """The cell's parameters are all there, with the cell's shapes (shared ones are checked)."""
    expected = cell.param_shapes()
    missing = [k for k in expected if k not in params]
    if missing:
        raise ValueError(f"params lack {', '.join(missing)} for this {cell.kind} cell (got "
                         f"{', '.join(params) or 'none'}): pass cell.init_params()")
    for key, shape in expected.items():
        value = getattr(params[key], "get_value", None)
        got = np.shape(value(borrow=True)) if value is not None else None
        if got is None and all(d is not None for d in params[key].type.shape):
            got = params[key].type.shape  # a constant's (or a fixed-size input's) shape
        if got is not None and tuple(got) != tuple(shape):
            raise ValueError(f"params[{key!r}] has shape {tuple(got)}, this {cell.kind} cell "
                             f"(input {cell.input_size}, hidden {cell.hidden_size}) needs "
                             f"{tuple(shape)}: are they another cell's?")


def _scanned_states(cell, projected, initial_state, recurrent, mask, go_backwards,
                    truncate_gradient, name) -> list:
    """Every step's states (each ``(T, B, H)``) from a :func:`scan` of ``cell.step``; a
    masked step keeps the previous states."""
    if mask is None:
        step = cell.step
        sequences = [projected]
    else:
        # a mask of another length would silently cut the scan to the shorter of the two
        mask = pt.specify_shape(pt.as_tensor_variable(mask),
                                (projected.shape[0], projected.shape[1]))
        n_states = cell.n_states

        def step(xp_t, m_t, *rest):
            old = rest[:n_states]
            new = cell.step(xp_t, *rest)
            new = new if isinstance(new, (tuple, list)) else [new]
            keep = m_t[:, None].astype("bool")
            return [pt.switch(keep, n, o) for n, o in zip(new, old)]
        sequences = [projected, mask]
    result = scan(step, sequences=sequences, outputs_info=initial_state,
                  non_sequences=recurrent, go_backwards=go_backwards,
                  truncate_gradient=truncate_gradient, name=name)
    return list(result) if isinstance(result, (list, tuple)) else [result]
