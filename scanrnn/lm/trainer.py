"""Training a language model: one compiled step, a loop around it, evaluation.

:class:`Trainer` compiles ONE training function per configuration, the graph of
:func:`scanrnn.lm.step.training_step`: the loss of a ``(T, B)`` batch, its gradient,
global-norm clipping and the optimizer update, plus

* for ``sampling="sequential"`` / ``"rows"`` the hidden state carried across batches in
  shared variables updated through ``updates=`` (truncated backprop through time: the
  carried state enters the next batch as a constant); ``"random"`` starts every batch
  from zeros;
* the dropout stream's counter (``model.rng``, see :mod:`scanrnn.random`);
* a guard: every update is ``switch(isfinite(loss) & isfinite(grad_norm), new, old)``, so a
  NaN/inf step changes nothing (weights, optimizer slots, carried state, RNG) and the host
  raises :class:`NonFiniteLossError` after looking at the returned loss.

:meth:`Trainer.fit` runs epochs and/or a time or token budget with a learning-rate schedule,
validation (:mod:`~scanrnn.lm.schedules`), early stopping that keeps the best weights in
memory, samples from prefixes, callbacks, a progress bar, and
:meth:`Trainer.state_dict` / :meth:`Trainer.load_state_dict` for exact resumption.

Batches are time-major ``(T, B)`` int32, as the graphs are (:meth:`Trainer.epoch_batches`).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time

import numpy as np
import pytensor

from .._config import floatx
from ..compile import function, resolve_backend
from ..losses import perplexity
from ..parallel import to_host
from . import data as lm_data
from . import devices, trainer_state
from .callbacks import Callback
from .config import AUTO, TrainConfig
from .data import checked_split, phrase_from
from .evaluate import Evaluator, cached_evaluator
from .interrupt import StopRequest
from .model import CharLM
from .sample import Sampler, encode_prefix
from .schedules import (scheduled_lr, total_steps, training_seconds, validation_wait,
                        weight_decay_for)
from .step import NonFiniteLossError, training_step
from .trainer_state import EpochStats

__all__ = ["Callback", "EpochStats", "Trainer"]

LN2 = math.log(2.0)
PACE_SECONDS = 20.0   # a minutes budget's pace is measured over this long (planned_passes)


# --------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------
class Trainer:
    """Train a :class:`~scanrnn.lm.CharLM` on token ids.

    Parameters
    ----------
    model : CharLM
    config : TrainConfig
    train_ids, val_ids : 1-D integer arrays
        Training ids and held-out ids (``None``/empty: no validation; the best weights are
        then those of the lowest training epoch loss).
    vocab : scanrnn.data.Vocab, optional
        For samples and the unknown-token count.
    callbacks : sequence of :class:`Callback`
    """

    def __init__(self, model: CharLM, config: TrainConfig | None = None, train_ids=None,
                 val_ids=None, vocab=None, callbacks=()):
        if not isinstance(model, CharLM):
            raise TypeError(f"Trainer needs a CharLM, got {type(model).__name__}")
        config = TrainConfig() if config is None else config
        config.validate()
        self.model, self.config, self.vocab = model, config, vocab
        self.callbacks = list(callbacks)
        self.train_ids, self.val_ids = checked_split(config, train_ids, val_ids,
                                                     model.vocab_size)
        c = config
        if vocab is not None and len(vocab) != model.vocab_size:
            raise ValueError(f"vocabulary has {len(vocab)} tokens but the model has "
                             f"vocab_size={model.vocab_size}")
        if vocab is not None and c.sample_every:
            for prefix in c.sample_prefixes:
                encode_prefix(vocab, prefix)
        self.backend = resolve_backend(c.backend)
        self.stateful = c.sampling in ("sequential", "rows")
        self.devices = devices.for_config(c)   # None: one device; checked before compiling
        self._agreed_elapsed = None
        # seconds of the newest validation: this process's, and the one every process uses
        self._own_eval_cost = self._eval_cost = None
        self._build_train_function()
        self._sampler, self._epoch_cache, self._pace, self._eval_model = None, None, None, None
        # position and bookkeeping (all in state_dict)
        self.epoch = 0                 # epochs completed
        self.step_in_epoch = 0
        self.global_step = 0
        self.tokens_seen = 0
        self.elapsed = 0.0             # wall seconds inside fit()
        self.train_time = 0.0          # seconds inside training steps (compilation excluded)
        self.timed_tokens = 0          # tokens of those steps
        self.compile_time = 0.0        # the first call of the training function
        self._warm = False
        self.best_val_loss = math.inf
        self.best_weights: dict | None = None
        self.best_step = None
        self.bad_evals = 0
        self.plateau_bad = 0
        self.history: list[dict] = []
        self.evals: list[dict] = []
        self.stop_reason = None
        self._final_weights = None     # the last training weights while the best are loaded
        self.epoch_stats = EpochStats()
        self._validation_due = False
        self.lr = float(c.lr)
        self.interrupt_message = "stopping after this step (press Ctrl-C again to abort)"

    # -- construction -------------------------------------------------------------------
    def _build_train_function(self):
        c, model = self.config, self.model
        T, B, H = c.seq_len, c.batch_size, model.config.hidden
        rows = B if self.devices is None else self.devices.input_rows()
        x = pytensor.tensor.tensor("x", shape=(T, rows), dtype="int32")
        y = pytensor.tensor.tensor("y", shape=(T, rows), dtype="int32")
        self.carry = [pytensor.shared(np.zeros((B, H), np.float32), name=f"carry.{n}")
                      for n in model.state_names] if self.stateful else []
        auto_decay = c.weight_decay == AUTO and c.optimizer == "adam"
        self.decay_var = pytensor.shared(np.asarray(0.0, dtype=floatx()), name="weight_decay") \
            if auto_decay else None
        self.weight_decay = 0.0 if c.weight_decay == AUTO else float(c.weight_decay)
        self.decay_decided = not auto_decay
        step = training_step(model, x, y, carry=self.carry, optimizer=c.optimizer, lr=c.lr,
                             clip=c.clip, weight_decay=self.decay_var if auto_decay
                             else self.weight_decay, ema=c.ema)
        self.lr_var, self.slots = step.learning_rate, step.slots
        self.averages = step.averages or None   # {param: moving average} with config.ema
        placement = {} if self.devices is None else dict(
            devices=self.devices.spec, batch_axes=self.devices.batch_axes(self.carry))
        self.train_fn = function([x, y], [step.loss, step.grad_norm], updates=step.updates,
                                 backend=self.backend, name="train_step", **placement)

    # -- one step -----------------------------------------------------------------------
    def train_step(self, x, y) -> tuple[float, float]:
        """One update on a time-major ``(T, B)`` int32 batch (ids ``x``, targets ``y``, as
        :meth:`epoch_batches` gives them); returns ``(loss, grad norm)``.

        Raises :class:`NonFiniteLossError` when the loss or gradient is NaN/inf; the
        compiled guard has then left every weight, slot and state unchanged.
        """
        if self.devices is not None:   # this process's rows of the global batch
            x, y = self.devices.local(x), self.devices.local(y)
        loss, norm = self.train_fn(x, y)
        loss, norm = float(loss), float(norm)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            raise NonFiniteLossError(
                f"the training loss is {loss} (gradient norm {norm}) at step "
                f"{self.global_step + 1} (epoch {self.epoch + 1}); that update was NOT applied "
                f"(weights, optimizer state and carried state are those before it). Lower the "
                f"learning rate (now {self.lr:g}), clip gradients (clip={self.config.clip}), "
                f"or check the data and initial weights.")
        return loss, norm

    def reset_state(self):
        """Zero the carried hidden state (sequential / rows sampling)."""
        for var in self.carry:
            var.set_value(np.zeros(var.get_value(borrow=True).shape, np.float32))

    def set_lr(self, lr: float):
        """Set the learning rate (a shared variable: no recompilation)."""
        self.lr = float(lr)
        self.lr_var.set_value(np.asarray(self.lr, dtype=floatx()))

    def set_weight_decay(self, decay: float):
        """Set the weight decay of ``weight_decay="auto"`` (a shared variable: no recompiling)."""
        if self.decay_var is None:
            raise ValueError("only TrainConfig.weight_decay='auto' (with adam) can change")
        self.weight_decay = float(decay)
        self.decay_var.set_value(np.asarray(self.weight_decay, dtype=floatx()))

    def count_probe(self, seconds: float, compile_seconds: float | None = None):
        """Charge ``seconds`` spent before :meth:`fit` timing this run's step
        (:func:`scanrnn.lm.sizing.measure_pace`) to the run's clock, so a ``minutes`` budget
        includes them; ``compile_seconds``: this trainer's function compiled then, in that
        long, so the first step of :meth:`fit` is timed as training (None: it did not)."""
        self.elapsed += float(seconds)
        if compile_seconds is not None:
            self.compile_time += float(compile_seconds)
            self._warm = True

    # -- batches ------------------------------------------------------------------------
    def epoch_batches(self, epoch: int):
        """``(X, Y)`` of epoch ``epoch`` (0-based), time-major ``(n, T, B)`` int32.

        Deterministic in ``(config.seed, epoch)`` so a resumed run sees the same batches.
        """
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            self._epoch_cache = (epoch, lm_data.epoch_batches(self.train_ids, self.config, epoch))
        return self._epoch_cache[1]

    def steps_per_epoch(self) -> int:
        return len(self.epoch_batches(self.epoch)[0])

    # -- evaluation and samples ---------------------------------------------------------
    @property
    def evaluator(self) -> Evaluator:
        """Validation's :class:`Evaluator` (on :meth:`_plain_model`; compiled once)."""
        return cached_evaluator(self._plain_model(), self.config.eval_batch_size,
                                self.config.eval_seq_len, self.backend)

    def _plain_model(self) -> CharLM:
        """What validation and samples run on: the model, or a copy of it on one device
        holding :meth:`eval_weights` (with moving averages, or when data parallel)."""
        if self.averages is None and self.devices is None:
            return self.model
        if self._eval_model is None:
            self._eval_model = CharLM(self.model.config)
        weights = self.eval_weights()   # as they are: NaN weights must score NaN, as the model
        for p in self._eval_model.params:
            p.set_value(weights[p.name])
        return self._eval_model

    def eval_weights(self) -> dict:
        """The weights validation scores and the best weights keep: the moving averages of
        ``config.ema`` (:func:`scanrnn.optim.ema`), else the model's weights (which are
        the best ones once :meth:`fit` has restored them)."""
        if self.averages is None or self._final_weights is not None:
            return self.model.get_weights()
        return {p.name: np.array(to_host(a.get_value(borrow=True)), dtype=np.float32)
                for p, a in self.averages.items()}

    def evaluate(self, ids=None) -> dict:
        """Loss / perplexity / bits per char on ``ids`` (default: the validation ids)."""
        ids = self.val_ids if ids is None else ids
        if ids is None:
            raise ValueError("no validation ids were given to this Trainer")
        unk = getattr(self.vocab, "unk", None) if self.vocab is not None else None
        return self.evaluator(ids, unk)

    def samples(self, seed: int | None = None) -> list[str]:
        """One sample per ``config.sample_prefixes`` (needs a vocabulary)."""
        if self.vocab is None:
            return []
        model = self._plain_model()
        if self._sampler is None or self._sampler.model is not model:
            self._sampler = Sampler(model, self.vocab, self.backend)
        c = self.config
        seed = c.seed + self.epoch if seed is None else seed
        prefixes = c.sample_prefixes or (phrase_from(self.vocab.decode(
            self.train_ids[len(self.train_ids) // 2:][:2000]), self.vocab.mode),)
        return [self._sampler.sample(p, c.sample_length, c.sample_temperature,
                                     greedy=c.sample_greedy, seed=seed)[0]
                for p in prefixes]

    # -- schedule -----------------------------------------------------------------------
    def _total_steps(self):
        return total_steps(self.config, self.steps_per_epoch())

    def _scheduled_lr(self) -> float:
        return scheduled_lr(self.config, self.epoch, self.lr, self.run_fraction)

    def run_fraction(self) -> float | None:
        """How far through its budget the run is, in [0, 1]: by steps for an epochs or
        max_tokens budget, else by wall clock for a minutes budget (None: no budget)."""
        total = self._total_steps()
        if total is not None:
            return min(self.global_step / total, 1.0)
        if self.config.minutes is not None:
            return min(self.elapsed_now() / self._training_seconds(), 1.0)
        return None

    def planned_passes(self) -> float | None:
        """How many times this run will pass over its training text: from its epochs /
        max_tokens, and for a ``minutes`` budget from the tokens per second of the first
        :data:`PACE_SECONDS` of :meth:`fit` (None until measured); inf with no budget."""
        c = self.config
        tokens = []
        total = self._total_steps()
        if total is not None:
            tokens.append(total * c.batch_size * c.seq_len)
        if c.minutes is not None:
            now = (self.elapsed_now(), self.tokens_seen)
            if self._pace is None:   # the first step of this fit() compiled: time from here
                self._pace = now
            seconds = now[0] - self._pace[0]
            if seconds < PACE_SECONDS:
                return None
            rate = (now[1] - self._pace[1]) / seconds
            tokens.append(now[1] + rate * max(self._training_seconds() - now[0], 0.0))
        return min(tokens) / len(self.train_ids) if tokens else math.inf

    def _follow_passes(self) -> None:
        """``weight_decay="auto"``: set the decay once the passes are known
        (:func:`~scanrnn.lm.schedules.weight_decay_for`)."""
        passes = self.planned_passes()
        if passes is None:
            return
        self.set_weight_decay(weight_decay_for(passes))
        self.decay_decided = True
        self._log(f"  weight decay {self.weight_decay:.3g} (auto): about {passes:.3g} passes "
                  "over the training text")

    # -- the loop -----------------------------------------------------------------------
    @property
    def tokens_per_second(self) -> float:
        """Training throughput so far: tokens / seconds inside training steps, the first
        (compiling) call excluded."""
        return self.timed_tokens / self.train_time if self.train_time > 0 else float("nan")

    def elapsed_now(self) -> float:
        """Seconds inside :meth:`fit`; in several processes process 0's as of the last step."""
        start = getattr(self, "_fit_start", None)
        if start is None or self._agreed_elapsed is not None:
            return self.elapsed if start is None else self._agreed_elapsed
        return self.elapsed + time.perf_counter() - start

    def _training_seconds(self) -> float:
        """The ``minutes`` budget less the final validation's time (when measured)."""
        cost = self._eval_cost if self.val_ids is not None else None
        return training_seconds(self.config.minutes, cost)

    def budget_reason(self) -> str | None:
        """Why training would stop now (``"epochs"``, ``"max_tokens"``, ``"minutes"``,
        ``"early_stopping"``), or None."""
        c = self.config
        if c.epochs is not None and self.epoch >= c.epochs:
            return "epochs"
        if c.max_tokens is not None and self.tokens_seen >= c.max_tokens:
            return "max_tokens"
        if c.minutes is not None and self.elapsed_now() >= self._training_seconds():
            return "minutes"
        if c.patience is not None and self.bad_evals >= c.patience:
            return "early_stopping"
        return None

    def _call(self, hook, *args):
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    def _log(self, text):
        if self.config.verbose:
            from tqdm.auto import tqdm
            tqdm.write(text, file=sys.stdout)

    def validate(self) -> dict | None:
        """Evaluate on the validation ids, update the best weights and early stopping."""
        if self.val_ids is None:
            return None
        t0 = time.perf_counter()
        m = self.evaluate()
        self._own_eval_cost = seconds = time.perf_counter() - t0   # the first one compiles too
        if self._agreed_elapsed is None:   # several processes: process 0's, at the next step
            self._eval_cost = seconds
        metrics = {"step": self.global_step, "epoch": self.epoch + self.step_in_epoch /
                   max(1, self.steps_per_epoch()), "val_loss": m["loss"],
                   "val_perplexity": m["perplexity"], "val_bits_per_char": m["bits_per_char"],
                   "val_tokens": m["tokens"], "lr": self.lr,
                   "time": self.elapsed_now(), "eval_seconds": seconds}
        if "unknown" in m:
            metrics["val_unknown"] = m["unknown"]
        self._record_val(m["loss"], metrics)
        self.evals.append(metrics)
        return metrics

    def _record_val(self, loss, metrics):
        c = self.config
        improved = loss < self.best_val_loss - c.min_delta
        metrics["is_best"] = bool(improved)
        if improved:
            self.best_val_loss = float(loss)
            self.best_weights = self.eval_weights()
            self.best_step = self.global_step
            self.bad_evals = 0
            self.plateau_bad = 0
            self._call("on_best", metrics)
        else:
            self.bad_evals += 1
            self.plateau_bad += 1
            if c.schedule == "plateau" and self.plateau_bad >= c.plateau_patience:
                self.set_lr(max(self.lr / 2.0, c.min_lr))
                self.plateau_bad = 0
        metrics["best_val_loss"] = self.best_val_loss

    def _end_epoch(self):
        c = self.config
        stats = self.epoch_stats
        train_loss = stats.loss_sum / max(stats.steps, 1)
        metrics = {"epoch": self.epoch + 1, "step": self.global_step,
                   "tokens": self.tokens_seen, "time": self.elapsed_now(), "lr": self.lr,
                   "train_loss": train_loss, "train_perplexity": perplexity(train_loss),
                   "train_bits_per_char": train_loss / LN2,
                   "tokens_per_s": stats.tokens_per_second(c.batch_size * c.seq_len)}
        if self.val_ids is not None:
            if c.eval_minutes is None or self._validation_is_due():
                if not self.validated_at_this_step():
                    self.validate()
            last = self.evals[-1] if self.evals else None
            if last is not None:        # the newest validation (maybe of an earlier step)
                for key in ("val_loss", "val_perplexity", "val_bits_per_char"):
                    metrics[key] = last[key]
                metrics["is_best"] = bool(last["is_best"]) and last["step"] == self.global_step
                if "val_unknown" in last:
                    metrics["val_unknown"] = last["val_unknown"]
        else:
            self._record_val(train_loss, metrics)
        metrics["best_val_loss"] = self.best_val_loss
        self.epoch += 1
        self.step_in_epoch = 0
        if c.sample_every and self.epoch % c.sample_every == 0 and self.vocab is not None:
            metrics["samples"] = self.samples()
        self.history.append(metrics)
        self.epoch_stats = EpochStats()
        line = (f"epoch {metrics['epoch']:>4} step {self.global_step:>6} "
                f"train {train_loss:.4f} (ppl {metrics['train_perplexity']:.3f})")
        if "val_loss" in metrics:
            line += (f" | val {metrics['val_loss']:.4f} (ppl {metrics['val_perplexity']:.3f}, "
                     f"{metrics['val_bits_per_char']:.3f} bpc){' *' if metrics['is_best'] else ''}")
        tps = metrics["tokens_per_s"]
        line += (f" | {tps:,.0f} tok/s" if math.isfinite(tps) else "") + \
            f" lr {self.lr:.3g} {metrics['time']:.0f}s"
        if self.epoch % c.print_every == 0 or self.epoch == 1 or self.budget_reason():
            self._log(line)
        for s in metrics.get("samples", []):
            self._log(f"  - {s!r}")
        self._call("on_epoch_end", metrics)

    def fit(self) -> list[dict]:
        """Train until the epochs / minutes / max_tokens budget or early stopping.

        Returns :attr:`history` (one metrics dict per completed epoch).  Ctrl-C or SIGTERM
        (:class:`~scanrnn.lm.interrupt.StopRequest`) finishes the current step, leaves a
        consistent state (see :meth:`state_dict`) and raises
        :class:`~scanrnn.lm.interrupt.TrainingInterrupted` (a ``KeyboardInterrupt``); a
        second signal abandons the step; one before the first step finished stops at once.
        """
        self.stop_reason = None
        if self._final_weights is not None:   # a previous fit() restored the best weights
            self.model.set_weights(self._final_weights)
            self._final_weights = None
        self._fit_start, self._pace = time.perf_counter(), None
        if not self.decay_decided and self.config.minutes is None:
            self._follow_passes()   # known up front (a minutes budget measures its pace first)
        self._agreed_elapsed = self.devices.start_clock(self.elapsed) if self.devices else None
        try:
            with StopRequest(self.interrupt_message) as stop:
                while True:
                    self.stop_reason = self.budget_reason()
                    if self.stop_reason:
                        break
                    self._run_epoch(stop)
                if self.val_ids is not None and self.global_step and \
                        not self.validated_at_this_step():
                    self.validate()   # the end is always validated
                stop.check()   # a signal during the last validation
        finally:
            self.elapsed = self.elapsed_now()
            self._fit_start, self._agreed_elapsed = None, None
        self._finish_fit()
        return self.history

    def _run_epoch(self, stop: StopRequest) -> None:
        """Train the rest of the current epoch, or up to a budget inside it."""
        c = self.config
        if self.step_in_epoch == 0:
            self.reset_state()
            if c.schedule in ("halve", "cosine"):
                self.set_lr(self._scheduled_lr())
        xs, ys = self.epoch_batches(self.epoch)
        n = len(xs)
        with self._progress_bar(n) as bar:
            while self.step_in_epoch < n:
                loss = self._timed_step(xs[self.step_in_epoch], ys[self.step_in_epoch])
                self._after_step(loss, bar)
                self._agree(stop)
                self._validation_due = self.step_in_epoch < n and self._validation_is_due()
                stop.step_done()
                if self._validation_due:
                    self._validate_mid_epoch()
                if self.budget_reason() not in (None, "epochs"):
                    break
        if self.step_in_epoch >= n:
            self._end_epoch()
        elif self.val_ids is not None and not self.validated_at_this_step():
            self.validate()   # stopped by a budget inside the epoch

    def _agree(self, stop: StopRequest) -> None:
        """Several processes: one clock and one stop request for all (every step)."""
        if self.devices is not None and self.devices.process_count > 1:
            self._agreed_elapsed, stop.requested, self._eval_cost = self.devices.agree(
                self.elapsed + time.perf_counter() - self._fit_start, stop.requested,
                self._own_eval_cost)

    def _progress_bar(self, n: int):
        if not self.config.progress:
            return contextlib.nullcontext()
        from tqdm.auto import tqdm
        return tqdm(total=n, initial=self.step_in_epoch, leave=False,
                    desc=f"epoch {self.epoch + 1}", unit="batch", mininterval=0.5,
                    dynamic_ncols=True)

    def _timed_step(self, x, y) -> float:
        """One training step; its time counts as training unless it compiled."""
        t0 = time.perf_counter()
        loss, _ = self.train_step(x, y)
        dt = time.perf_counter() - t0
        tokens = self.config.batch_size * self.config.seq_len
        self.step_in_epoch += 1
        self.global_step += 1
        self.tokens_seen += tokens
        self.epoch_stats.loss_sum += loss
        self.epoch_stats.steps += 1
        if self._warm:
            self.epoch_stats.train_time += dt
            self.epoch_stats.timed_steps += 1
            self.train_time += dt
            self.timed_tokens += tokens
        else:   # the first call compiles: not training speed
            self.compile_time += dt
            self._warm = True
        return loss

    def _after_step(self, loss: float, bar) -> None:
        c = self.config
        if c.schedule == "cosine":
            self.set_lr(self._scheduled_lr())
        if not self.decay_decided:
            self._follow_passes()
        if bar is not None:
            bar.update(1)
            if self.global_step % 10 == 0:
                tps = self.epoch_stats.tokens_per_second(c.batch_size * c.seq_len)
                bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{perplexity(loss):.2f}",
                                tok_s=f"{tps:,.0f}", refresh=False)
        if self.global_step % c.log_every == 0:
            self._call("on_step", self.global_step, loss)

    def _validate_mid_epoch(self) -> None:
        m = self.validate()
        if m is not None:
            self._log(f"  step {self.global_step:>6} val {m['val_loss']:.4f} (ppl "
                      f"{m['val_perplexity']:.3f}){' *' if m['is_best'] else ''} lr "
                      f"{self.lr:.3g} {m['time']:.0f}s")

    def _finish_fit(self) -> None:
        if self.config.restore_best and self.best_weights is not None:
            self._final_weights = self.model.get_weights()
            self.model.set_weights(self.best_weights)
        best = self.best_val_loss
        kind = "validation" if self.val_ids is not None else "epoch training"
        self._log(f"stopped ({self.stop_reason}) after {self.global_step} steps, "
                  f"{self.elapsed:.0f}s; best {kind} loss "
                  + (f"{best:.4f} (ppl {perplexity(best):.3f}) at step {self.best_step}"
                     if math.isfinite(best) else "n/a"))
        self._call("on_train_end")

    # -- consistency --------------------------------------------------------------------
    def validated_at_this_step(self) -> bool:
        return bool(self.evals) and self.evals[-1]["step"] == self.global_step

    def _validation_is_due(self) -> bool:
        """Whether the validation schedule asks for one now: ``eval_minutes`` of wall clock
        since the last one (or since the start; longer when validation is slow, see
        :func:`~scanrnn.lm.schedules.validation_wait`), else every ``eval_every`` steps."""
        c = self.config
        if self.val_ids is None or self.validated_at_this_step():
            return False
        if c.eval_minutes is not None:
            last = self.evals[-1]["time"] if self.evals else 0.0
            return self.elapsed_now() - last >= validation_wait(c.eval_minutes, self._eval_cost)
        return bool(c.eval_every) and self.global_step % c.eval_every == 0

    def owes_bookkeeping(self) -> bool:
        """True between a step and the validation or epoch end the schedule gives it
        (a checkpoint written then would not resume exactly)."""
        if self.step_in_epoch >= self.steps_per_epoch():
            return True
        return self._validation_due and not self.validated_at_this_step()

    def training_weights(self) -> dict:
        """The weights training continues from (not the best ones :meth:`fit` may have
        loaded into the model at its end)."""
        if self._final_weights is not None:
            return dict(self._final_weights)
        return self.model.get_weights()

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> tuple[dict, dict]:
        """Everything a resume needs: ``(arrays, meta)``; see
        :func:`scanrnn.lm.trainer_state.state_dict`."""
        return trainer_state.state_dict(self)

    def load_state_dict(self, arrays: dict, meta: dict) -> None:
        """Restore a :meth:`state_dict`; everything is checked before anything is set
        (:func:`scanrnn.lm.trainer_state.load_state`)."""
        trainer_state.load_state(self, arrays, meta)
