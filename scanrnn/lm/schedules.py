"""When things happen in a training run: the learning rate, the validations over its clock
and the weight decay the run's length calls for.

Pure functions of the run's position, so :class:`~scanrnn.lm.trainer.Trainer` (and a test)
can ask "what now?" without a model.
"""

from __future__ import annotations

import math

__all__ = ["DECAY_MAX", "DECAY_PASSES", "EVAL_SHARE", "cosine_lr", "scheduled_lr",
           "total_steps", "training_seconds", "validation_wait", "weight_decay_for"]

EVAL_SHARE = 0.05
"""The largest share of the wall clock validation may take: the next validation waits at
least ``cost / EVAL_SHARE`` seconds after one that took ``cost`` seconds."""


def cosine_lr(lr: float, min_lr: float, warmup: float, frac: float) -> float:
    """The learning rate ``frac`` (in [0, 1]) through a run: a linear warm-up from ``lr / 100``
    over the first ``warmup`` fraction, then half a cosine from ``lr`` to ``min_lr`` at 1."""
    if frac < warmup:
        return lr * max(frac / warmup, 0.01)
    frac = (frac - warmup) / (1.0 - warmup)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))


def total_steps(config, steps_per_epoch: int) -> int | None:
    """The steps a run's ``epochs`` / ``max_tokens`` allow (the fewer); None when it has
    neither (a ``minutes`` budget or none)."""
    totals = []
    if config.epochs is not None:
        totals.append(config.epochs * steps_per_epoch)
    if config.max_tokens is not None:
        totals.append(max(1, config.max_tokens // (config.batch_size * config.seq_len)))
    return min(totals) if totals else None


def scheduled_lr(config, epoch: int, lr: float, run_fraction) -> float:
    """The learning rate ``config.schedule`` sets now: ``"halve"`` by ``epoch``, ``"cosine"``
    by ``run_fraction()`` (how far through its budget the run is; None: no budget, ``config.lr``),
    else ``lr`` as it stands (constant; plateau changes it on validation)."""
    if config.schedule == "halve":
        return config.lr / 2.0 ** ((epoch + 1) // config.halve_every)
    if config.schedule == "cosine":
        frac = run_fraction()
        return config.lr if frac is None else cosine_lr(config.lr, config.min_lr,
                                                        config.warmup, frac)
    return lr


def validation_wait(eval_minutes: float, cost: float | None) -> float:
    """Seconds between validations: ``eval_minutes`` of wall clock, or longer when the last
    validation took ``cost`` seconds (None: none yet), so validation stays under
    :data:`EVAL_SHARE` of the run on any held-out size."""
    return max(60.0 * eval_minutes, (cost or 0.0) / EVAL_SHARE)


def training_seconds(minutes: float, eval_cost: float | None) -> float:
    """The seconds of training a ``minutes`` budget leaves: the final validation (``eval_cost``
    seconds, None: not measured yet) is kept inside it, up to half the budget."""
    budget = 60.0 * minutes
    return budget - min(eval_cost or 0.0, budget / 2.0)


DECAY_MAX = 0.1
DECAY_PASSES = (1.0, 5.0)
"""``weight_decay="auto"``: no decay for a run that passes over its training text at most
``DECAY_PASSES[0]`` times, :data:`DECAY_MAX` from ``DECAY_PASSES[1]`` passes on, linear in
between (measured: 0.1 gains 0.009 nats/char at 30 passes and 0.006 at 10, and loses 0.006
at half a pass; ``benchmarks/RESULTS_lm.md``)."""


def weight_decay_for(passes: float) -> float:
    """The decoupled weight decay for a run that will pass over its text ``passes`` times."""
    low, high = DECAY_PASSES
    return DECAY_MAX * min(max((passes - low) / (high - low), 0.0), 1.0)
