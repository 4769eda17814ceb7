"""The model for a run on a time budget, chosen from the pace of its own step.

A ``--minutes`` budget buys a number of tokens that the machine decides: on one 2-core CPU the
default model trained 13K tokens/s on a busy day and 56K on a quiet one. What pays depends
on those tokens (``benchmarks/RESULTS_lm.md``, "The model from the pace"): a wider LSTM
learns more per token but steps slower, so it wins once the budget holds enough tokens; and
a run that passes over its text many times over-fits unless its recurrent weights are
dropped (DropConnect, ``weight_drop``), which slows the learning of a shorter run.
:func:`measure_pace` times the compiled step of the default model on the run's own batches
(and leaves the trainer as it found it); :func:`choose` turns the tokens the budget would
buy at that pace into a model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["PROBE_SECONDS", "WIDE", "WEIGHT_DROP", "Choice", "Pace", "choose", "measure_pace"]

PROBE_SECONDS = 3.0
"""How long :func:`measure_pace` times training steps (after the compiling first call)."""

WIDE = (8e6, 384)
"""``(tokens, hidden)``: a run whose budget buys at least ``tokens`` at the default width gets
``hidden`` units (nietzsche, 2-core CPU: from about 5M tokens on, 384 units are ahead of 256
at equal wall clock, though they step at 0.55x the pace)."""

WEIGHT_DROP = (0.3, (40.0, 80.0))
"""``(rate, (low, high))``: DropConnect ``rate`` on the recurrent weights for a run whose
budget passes over its training text at least ``high`` times at the default width, none at
``low`` or fewer, linear in between (nietzsche: 0.3 lost 0.020 nats/char at 25 passes and
gained 0.016 at 90, both for 256 units; 0.017 for 384 units in the 90-pass budget)."""


@dataclass(frozen=True)
class Choice:
    """The sizes :func:`choose` sets: ``hidden`` units per layer, ``weight_drop`` rate."""

    hidden: int
    weight_drop: float


@dataclass
class Pace:
    """What :func:`measure_pace` saw: ``tokens_per_second`` of the training step,
    ``compile_seconds`` of its first call, ``seconds`` of wall clock the probe took."""

    tokens_per_second: float
    compile_seconds: float
    seconds: float


def measure_pace(trainer, seconds: float | None = None) -> Pace:
    """Time ``trainer``'s compiled step on its first epoch's batches for about ``seconds``
    (default :data:`PROBE_SECONDS`; at least three steps after the first, compiling call),
    then restore every weight, optimizer slot, carried state and counter: the run starts
    as if never probed."""
    seconds = PROBE_SECONDS if seconds is None else seconds
    arrays, meta = trainer.state_dict()
    xs, ys = trainer.epoch_batches(0)
    start = time.perf_counter()
    trainer.train_step(xs[0], ys[0])   # compiles
    compiled = time.perf_counter()
    steps = 0
    while steps < 3 or time.perf_counter() - compiled < seconds:
        i = 1 + steps % (len(xs) - 1) if len(xs) > 1 else 0
        trainer.train_step(xs[i], ys[i])
        steps += 1
    end = time.perf_counter()
    trainer.load_state_dict(arrays, meta)
    tokens = steps * trainer.config.batch_size * trainer.config.seq_len
    return Pace(tokens / (end - compiled), compiled - start, end - start)


def choose(budget_tokens: float, train_tokens: int, default: Choice) -> Choice:
    """The model for a run whose budget buys ``budget_tokens`` at the ``default`` width,
    on ``train_tokens`` of training text."""
    tokens, wide = WIDE
    hidden = max(wide, default.hidden) if budget_tokens >= tokens else default.hidden
    rate, (low, high) = WEIGHT_DROP
    passes = budget_tokens / max(train_tokens, 1)
    weight_drop = rate * min(max((passes - low) / (high - low), 0.0), 1.0)
    return Choice(hidden, round(weight_drop, 3))
