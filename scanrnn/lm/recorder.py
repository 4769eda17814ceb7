"""Recording a run while it trains: metrics, checkpoints, samples and the loss plot."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..losses import perplexity
from .run import PARAMS_PREFIX
from .rundir import RunDir
from .step import NonFiniteLossError

__all__ = ["RunRecorder"]


class RunRecorder:
    """A training callback that records a run in a :class:`RunDir`.

    * ``metrics.csv``: a ``step`` row every ``log_every`` steps (mean training loss of
      those steps, tokens/s), a ``val`` row per validation, an ``epoch`` row per epoch;
    * ``latest.npz``: the full trainer state after each validation, each epoch, every
      ``save_every`` steps (0 = only then), at the end of training and on request
      (:meth:`save_latest`, e.g. on Ctrl-C);
    * ``best.npz``: the trainer state at each new best validation loss;
    * ``samples.txt`` and ``loss.png`` at each epoch end.

    Checkpoints are only written where the trainer's state is consistent (between
    steps, never with a validation or an epoch end pending), so resuming from any of
    them reproduces the uninterrupted run step for step.
    """

    def __init__(self, run: RunDir, log_every: int = 50, save_every: int = 0,
                 plot: bool = True):
        self.run = run
        self.log_every = int(log_every)
        self.save_every = int(save_every)
        self.plot_enabled = plot
        self.saved_step = None       # global step of the latest checkpoint written
        self.last_step = 0           # last step whose bookkeeping the trainer finished
        self._log_sum = 0.0
        self._log_count = 0
        self._train_time_at_row = 0.0
        self._evals_written = 0

    def attach(self, trainer, meta: dict | None = None) -> None:
        """Start recording ``trainer``.

        After a resume pass the checkpoint's ``meta`` (``{}`` when resuming a run that
        has no checkpoint yet): metrics rows logged after the checkpoint are dropped.
        """
        state = (meta or {}).get("recorder", {})
        self._log_sum = float(state.get("log_sum", 0.0))
        self._log_count = int(state.get("log_count", 0))
        self._train_time_at_row = float(state.get("train_time_at_row", trainer.train_time))
        self._evals_written = len(trainer.evals)
        self.last_step = trainer.global_step
        self.saved_step = trainer.global_step if meta else None
        if meta is not None:
            self.run.truncate_metrics(trainer.global_step)

    # -- checkpoints ------------------------------------------------------------------
    def _state(self, trainer):
        arrays, meta = trainer.state_dict()
        meta["recorder"] = {"log_sum": self._log_sum, "log_count": self._log_count,
                            "train_time_at_row": self._train_time_at_row}
        return arrays, meta

    def save_latest(self, trainer) -> Path:
        """Write the trainer's state to latest.npz (atomically).

        Raises :class:`scanrnn.lm.NonFiniteLossError` (and writes nothing) when a
        weight is NaN or infinite: the previous checkpoint stays the last good one.
        """
        self._write_evals(trainer)
        arrays, meta = self._state(trainer)
        _check_finite(arrays, trainer)
        path = self.run.save_checkpoint("latest", arrays, meta)
        self.saved_step = trainer.global_step
        return path

    # -- metrics ------------------------------------------------------------------------
    def _write_evals(self, trainer):
        for m in trainer.evals[self._evals_written:]:
            self.run.append_metrics({
                "kind": "val", "epoch": m.get("epoch"), "step": m.get("step"),
                "tokens": None, "seconds": m.get("time"), "lr": m.get("lr"),
                "val_loss": m.get("val_loss"), "val_ppl": m.get("val_perplexity"),
                "val_bpc": m.get("val_bits_per_char")})
        self._evals_written = len(trainer.evals)

    # -- callback hooks -----------------------------------------------------------------
    def on_step(self, trainer, step, loss):
        self.last_step = step
        self._log_sum += float(loss)
        self._log_count += 1
        self._write_evals(trainer)
        if step % self.log_every == 0:
            c = trainer.config
            dt = trainer.train_time - self._train_time_at_row
            tokens = self._log_count * c.batch_size * c.seq_len
            mean = self._log_sum / self._log_count
            self.run.append_metrics({
                "kind": "step", "epoch": trainer.epoch + trainer.step_in_epoch
                / max(1, trainer.steps_per_epoch()), "step": step,
                "tokens": trainer.tokens_seen, "seconds": trainer.elapsed_now(),
                "lr": trainer.lr, "train_loss": mean, "train_ppl": perplexity(mean),
                "train_bpc": mean / math.log(2), "tokens_per_s": tokens / dt if dt > 0 else None})
            self._log_sum, self._log_count = 0.0, 0
            self._train_time_at_row = trainer.train_time
        if trainer.owes_bookkeeping():
            return
        since = step - (self.saved_step or 0)
        validated = bool(trainer.evals) and (self.saved_step is None
                                             or trainer.evals[-1]["step"] > self.saved_step)
        if validated or (self.save_every and since >= self.save_every):
            self.save_latest(trainer)

    def on_best(self, trainer, metrics):
        arrays, meta = self._state(trainer)
        _check_finite(arrays, trainer)
        self.run.save_checkpoint("best", arrays, meta)

    def on_epoch_end(self, trainer, metrics):
        self._write_evals(trainer)
        self.run.append_metrics({
            "kind": "epoch", "epoch": metrics.get("epoch"), "step": metrics.get("step"),
            "tokens": metrics.get("tokens"), "seconds": metrics.get("time"),
            "lr": metrics.get("lr"), "train_loss": metrics.get("train_loss"),
            "train_ppl": metrics.get("train_perplexity"),
            "train_bpc": metrics.get("train_bits_per_char"),
            "val_loss": metrics.get("val_loss"), "val_ppl": metrics.get("val_perplexity"),
            "val_bpc": metrics.get("val_bits_per_char"),
            "tokens_per_s": metrics.get("tokens_per_s")})
        if metrics.get("samples"):
            self.run.append_samples(f"epoch {metrics.get('epoch')} step {metrics.get('step')}",
                                    metrics["samples"])
        self.save_latest(trainer)
        if self.plot_enabled:
            self.run.plot()

    def on_train_end(self, trainer):
        self.save_latest(trainer)
        if self.plot_enabled:
            self.run.plot()


def _check_finite(arrays: dict, trainer) -> None:
    bad = [k[len(PARAMS_PREFIX):] for k, v in arrays.items()
           if k.startswith(PARAMS_PREFIX) and not np.all(np.isfinite(v))]
    if bad:
        raise NonFiniteLossError(
            f"weights {', '.join(bad[:4])} became NaN or infinite by step "
            f"{trainer.global_step} (epoch {trainer.epoch + 1}); they were not saved. Lower "
            f"the learning rate (now {trainer.lr:g}) or clip gradients "
            f"(clip={trainer.config.clip}).")
