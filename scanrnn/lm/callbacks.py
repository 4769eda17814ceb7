"""The hooks :class:`~scanrnn.lm.trainer.Trainer` calls while it trains."""

from __future__ import annotations

__all__ = ["Callback"]


class Callback:
    """Base class of training callbacks; override any hook (all optional)."""

    def on_step(self, trainer, step: int, loss: float):
        """After every ``log_every``-th step (``step`` counts from 1)."""

    def on_epoch_end(self, trainer, metrics: dict):
        """After each full epoch (validation done)."""

    def on_best(self, trainer, metrics: dict):
        """After a validation that improved the best loss (best weights updated)."""

    def on_train_end(self, trainer):
        """When :meth:`Trainer.fit` finishes normally (not on an exception)."""
