"""The ONE training-step graph of a language model, used by the trainer and by
``scanrnn graph`` / :func:`scanrnn.inspect.explain` alike.

Loss of a time-major ``(T, B)`` batch, its gradient, global-norm clipping, the optimizer
update and the dropout stream's counter; every update is guarded by
``switch(isfinite(loss) & isfinite(grad_norm), new, old)``, so a NaN/inf step changes
nothing (weights, optimizer slots, carried state, RNG).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytensor.tensor as pt

from .. import optim
from ..losses import cross_entropy
from .model import CharLM

__all__ = ["NonFiniteLossError", "TrainingStep", "training_step"]


class NonFiniteLossError(ValueError):
    """The training loss (or its gradient) became NaN or infinite; the step was not applied."""


@dataclass
class TrainingStep:
    """The symbolic pieces of one training step.

    ``loss`` (float32 scalar, mean nats per token), ``grad_norm`` (global norm before
    clipping), ``finals`` (one ``(B, H)`` final state per ``model.state_names``),
    ``updates`` (guarded: ``{shared: new value}``), ``learning_rate`` (the optimizer's
    shared scalar), ``slots`` (its state variables, the averages included) and ``averages``
    (``{param: its moving average}``, empty without ``ema``).
    """

    loss: pt.TensorVariable
    grad_norm: pt.TensorVariable
    finals: list
    updates: dict
    learning_rate: object
    slots: list
    averages: dict


def training_step(model: CharLM, x, y, initial_states=None, *, carry=(),
                  optimizer: str = "adam", lr: float = 2e-3, clip: float | None = 1.0,
                  weight_decay=0.0, ema: float = 0.0, name: str = "train") -> TrainingStep:
    """Build the training step of ``model`` on ids ``x`` and targets ``y`` ((T, B) int32).

    ``initial_states``: one ``(B, H)`` state per ``model.state_names`` (zeros when
    omitted); ``carry``: shared variables used as the initial states AND updated to the
    final ones (truncated backprop through time over sequential batches).
    ``weight_decay``: Adam's decoupled weight decay (:func:`scanrnn.optim.adam`), a number
    or a shared scalar.  ``ema`` > 0: also keep moving averages of the weights with that
    decay (:func:`scanrnn.optim.ema`).
    """
    carry = list(carry)
    if carry:
        initial_states = carry
    logits, finals = model.logits(x, initial_states, training=True, name=name)
    loss = cross_entropy(logits, y, num_classes=model.vocab_size)
    loss.name = "loss"
    grads = pt.grad(loss, model.params)
    if clip:
        grads, norm = optim.clip_by_global_norm(grads, clip)
    else:
        norm = pt.sqrt(sum(pt.sqr(g).sum() for g in grads))
    norm.name = "grad_norm"
    off = isinstance(weight_decay, (int, float)) and not weight_decay
    decay = {} if off else {"weight_decay": weight_decay}
    updates = optim.get(optimizer)(grads, model.params, lr, **decay)
    if ema:
        updates = optim.merge(updates, optim.ema(updates, model.params, ema))
    slots = list(updates.slots)
    names = [s.name for s in slots]
    if len(set(names)) != len(names):
        raise RuntimeError(f"optimizer slots need unique names, got {names}")
    extra = dict(model.rng_updates())
    extra.update(zip(carry, finals))
    merged = optim.merge(updates, extra)
    ok = pt.and_(pt.isfinite(loss), pt.isfinite(norm))
    guarded = {var: pt.switch(ok, new, var) for var, new in merged.items()}
    return TrainingStep(loss, norm, list(finals), guarded, updates.learning_rate, slots,
                        optim.averages_of(updates))
