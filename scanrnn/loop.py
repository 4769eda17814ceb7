"""The loop: the one module of scanrnn that calls :func:`pytensor.scan`.

:func:`scan` is ``pytensor.scan`` with the settings scanrnn always wants
(``strict=True``: every shared variable the step uses is a ``non_sequence``;
``return_updates=False``: recurrent state lives in ``outputs_info``; a name, so
printed graphs map back to layers).  :mod:`scanrnn.fused` and :mod:`scanrnn.recurrent`
build their loops with it.
"""

from __future__ import annotations

import pytensor

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
