"""The loop: the one module of scanrnn that calls :func:`pytensor.scan`.

:func:`scan` is ``pytensor.scan`` with the settings scanrnn always wants
(``strict=True``: every shared variable the step uses is a ``non_sequence``;
``return_updates=False``: recurrent state lives in ``outputs_info``; a name, so
printed graphs map back to layers).  :mod:`scanrnn.fused` and :mod:`scanrnn.recurrent`
build their loops with it.

Truncated backprop through time (``truncate_gradient=k``) is built here, not by
``pytensor.scan``'s own option, which fails on the JAX backend for every cell (an assertion
in its scan dispatch, PyTensor 3.0-3.3) and on the C and Numba backends for some steps: the
loop runs as two loops, the first ``T - k`` steps with their gradient stopped, then the last
``k`` steps from the state they reached, so the gradient reaches back at most ``k`` steps
from the end -- the same numbers as Theano's truncated BPTT, on every backend.
"""

from __future__ import annotations

import operator

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import zero_grad
from pytensor.graph.utils import MissingInputError

__all__ = ["scan"]


def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None, *,
         name: str = "scan", truncate_gradient: int = -1, go_backwards: bool = False):
    """``pytensor.scan`` with ``strict=True`` and ``return_updates=False``.

    ``fn`` receives, in order: one slice per sequence, the previous value of
    each recurrent output (those with an initial value in ``outputs_info``),
    then the ``non_sequences``.  Returns the stacked outputs (one variable, or
    a list when ``fn`` returns several).  A shared random generator given in
    ``outputs_info`` comes back as its *final* state, to be used in
    ``updates={rng: final_rng}``.

    ``truncate_gradient=k`` (k > 0): the gradient flows back through the last ``k`` steps
    only (the earlier steps' outputs, sequence slices and the initial states get none), on
    every backend; see the module docstring.
    """
    if truncate_gradient is None:
        truncate_gradient = -1
    try:
        if isinstance(truncate_gradient, (bool, np.bool_)):
            raise TypeError
        truncate_gradient = operator.index(truncate_gradient)  # numpy ints too, not 2.7
    except TypeError:
        raise ValueError(f"truncate_gradient must be -1 (full backprop) or a positive int, "
                         f"got {truncate_gradient!r}") from None
    try:
        return _scan(fn, sequences, outputs_info, non_sequences, n_steps, name=name,
                     truncate_gradient=truncate_gradient, go_backwards=go_backwards)
    except MissingInputError as exc:  # strict=True: the step closed over a variable
        raise ValueError(f"the step of {name!r} uses a variable it is not given ("
                         f"{str(exc).splitlines()[0].split(' Provide')[0].rstrip('.')}): pass "
                         f"shared variables and other outer values to scan in "
                         f"non_sequences=[...] and take them as the step's last "
                         f"argument(s)") from None


def _scan(fn, sequences, outputs_info, non_sequences, n_steps, *, name, truncate_gradient,
          go_backwards):
    if truncate_gradient != -1 and _can_split(sequences, outputs_info, n_steps):
        return _truncated(fn, _as_list(sequences), outputs_info, non_sequences, n_steps,
                          truncate_gradient, name=name, go_backwards=go_backwards)
    return pytensor.scan(
        _typed_like_initial_states(fn, outputs_info),
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


def _typed_like_initial_states(fn, outputs_info):
    """``fn`` whose recurrent outputs carry their initial state's static sizes of 1.

    A state of static size 1 (hidden size 1: ``zeros((B, 1))``) and a step output of free
    size are the same loop variable with two types; PyTensor builds the loop, but its
    rewrites rebuild it and refuse ("Inconsistency in the inner graph of scan"), on the C
    backend even at compile time.  ``specify_shape`` on the output makes the types agree.
    """
    infos = _as_list(outputs_info)
    sizes = [None if v is None or not _plain_initial(v) else pt.as_tensor_variable(v).type.shape
             for v in infos]
    sizes = [None if s is None else tuple(1 if d == 1 else None for d in s) for s in sizes]
    if not any(s is not None and 1 in s for s in sizes):
        return fn  # the usual case: the loop is built exactly as given

    def step(*args):
        out = fn(*args)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        if len(outs) != len(sizes) or any(isinstance(o, dict) for o in outs):
            return out
        typed = [o if s is None else _with_static_sizes(o, s) for o, s in zip(outs, sizes)]
        return typed if isinstance(out, (list, tuple)) else typed[0]
    return step


def _with_static_sizes(value, sizes):
    value = pt.as_tensor_variable(value)
    if value.ndim != len(sizes) or all(d is None or v is not None
                                       for d, v in zip(sizes, value.type.shape)):
        return value
    return pt.specify_shape(value, sizes)


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _can_split(sequences, outputs_info, n_steps) -> bool:
    """Whether :func:`_truncated` applies: plain sequences (no taps) or ``n_steps``, and
    recurrent outputs each a plain initial value or None (no taps, no random generator)."""
    seqs = _as_list(sequences)
    if (not seqs and n_steps is None) or any(isinstance(v, dict) for v in seqs):
        return False
    return all(_plain_initial(v) for v in _as_list(outputs_info))


def _plain_initial(value) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return False
    kind = getattr(value, "type", None)
    return kind is None or isinstance(kind, pt.TensorType)


def _truncated(fn, seqs, outputs_info, non_sequences, n_steps, k, *, name, go_backwards):
    """Two loops: the first ``T - k`` steps with their gradient stopped, the last ``k``."""
    if k <= 0:
        raise ValueError(f"truncate_gradient must be -1 (full backprop) or a positive "
                         f"number of steps, got {k}")
    if go_backwards:  # the steps in the order they run; outputs come in that order too
        seqs = [s[::-1] for s in seqs]
    T = n_steps if n_steps is not None else seqs[0].shape[0]
    seqs = [s[:T] for s in seqs] if n_steps is not None else seqs
    split = _split_point(T, seqs, k)
    init = [None if v is None else pt.as_tensor_variable(v) for v in _as_list(outputs_info)]

    def run(part_seqs, part_init, steps):
        return _as_list(scan(fn, sequences=part_seqs or None, outputs_info=part_init or None,
                             non_sequences=non_sequences, n_steps=steps, name=name))

    if isinstance(split, int) and split == 0:
        outs = run(seqs, init, n_steps)
        return outs[0] if len(outs) == 1 else outs
    first = run([s[:split] for s in seqs], init, None if seqs else split)
    first = [zero_grad(o) for o in first]
    start = [None if v is None else _state_at_split(v, out, split)
             for v, out in zip(init, first)]
    second = run([s[split:] for s in seqs], start, None if seqs else T - split)
    outs = [pt.concatenate([a, b], axis=0) for a, b in zip(first, second)]
    return outs[0] if len(outs) == 1 else outs


def _state_at_split(initial, stopped, split):
    """The state the second loop starts from: the first loop's last (gradient stopped), or
    ``initial`` when the first loop ran no step (then the gradient reaches it)."""
    if isinstance(split, int):
        return stopped[-1]
    reached = pt.concatenate([initial[None], stopped], axis=0)[-1]
    return pt.switch(pt.gt(split, 0), reached, initial)


def _split_point(T, seqs, k):
    """``max(T - k, 0)``: a Python int when T is known when the graph is built."""
    if isinstance(T, int):
        return max(T - k, 0)
    length = seqs[0].type.shape[0] if seqs else None
    if length is not None:
        return max(int(length) - k, 0)
    return pt.maximum(T - k, 0)
