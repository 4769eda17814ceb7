"""Training a language model: one compiled step, a loop around it, evaluation.

:class:`Trainer` compiles ONE training function per configuration: the loss of a
``(T, B)`` batch, its gradient, global-norm clipping and the optimizer update, plus

* for ``sampling="sequential"`` / ``"rows"`` the hidden state carried across batches in
  shared variables updated through ``updates=`` (truncated backprop through time: the
  carried state enters the next batch as a constant); ``"random"`` starts every batch
  from zeros;
* the dropout stream's counter (``model.rng``, see :mod:`scanrnn.models`);
* a guard: every update is ``switch(isfinite(loss) & isfinite(grad_norm), new, old)``, so a
  NaN/inf step changes nothing (weights, optimizer slots, carried state, RNG) and the host
  raises :class:`NonFiniteLossError` after looking at the returned loss.

:meth:`Trainer.fit` runs epochs and/or a time or token budget with a learning-rate schedule,
validation (every epoch or every ``eval_every`` steps), early stopping that keeps the best
weights in memory, samples from prefixes, callbacks, a progress bar, and
:meth:`Trainer.state_dict` / :meth:`Trainer.load_state_dict` for exact resumption.

Batches are batch-major ``(B, T)`` in :mod:`scanrnn.data`; the graphs are time-major, so the
trainer transposes them.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytensor
import pytensor.tensor as pt

from . import optim
from ._config import floatx
from .backends import function, resolve_backend
from .data import CorpusError, batch_rows, random_batches, sequential_batches, tokens_needed
from .losses import cross_entropy, perplexity
from .models import CharLM, config_from_dict

__all__ = [
    "Callback",
    "Evaluator",
    "LMData",
    "NonFiniteLossError",
    "TrainConfig",
    "Trainer",
    "evaluate",
    "evaluate_text",
    "prepare_data",
]

SAMPLINGS = ("random", "sequential", "rows")
SCHEDULES = ("constant", "halve", "cosine", "plateau")
LN2 = math.log(2.0)


class NonFiniteLossError(ValueError):
    """The training loss (or its gradient) became NaN or infinite; the step was not applied."""


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """How to train; the defaults are what ``scanrnn train`` runs.

    Data: ``corpus`` (name or path), ``preprocess`` (``"d2l"``: letters and spaces,
    lowercased, as d2l; ``"none"``: the raw text), ``tokens`` (``"char"``/``"word"``),
    ``val_fraction`` (the LAST fraction of the text is held out).

    Batches: ``seq_len`` ``T``, ``batch_size`` ``B``, ``sampling``: ``"random"`` (d2l random
    sampling, state reset every batch), ``"sequential"`` (d2l sequential partitioning, state
    carried; reset at each epoch start) or ``"rows"`` (the MXNet seed's layout, state carried);
    ``batch_flavor``: ``"d2l"`` or ``"gluonbook"`` (seed 002's iterators).

    Length: ``epochs``, ``minutes`` (wall clock of :meth:`Trainer.fit`, compilation
    included), ``max_tokens``; training stops at the first reached (or by early stopping).

    Optimisation: ``optimizer`` (a name from :mod:`scanrnn.optim`), ``lr``, ``clip`` (global
    gradient norm; 0 = off), ``schedule``: ``"constant"``; ``"halve"`` (divide by 2 every
    ``halve_every`` epochs, the MXNet seed); ``"cosine"`` (to ``min_lr`` over the run:
    over the steps of ``epochs``/``max_tokens``, else over ``minutes`` of wall clock);
    ``"plateau"`` (halve when ``plateau_patience`` validations in a row do not improve).

    Validation: every ``eval_every`` steps (0 = at each epoch end; always at epoch ends),
    on ``eval_batch_size`` rows read in chunks of ``eval_seq_len`` with the state carried;
    early stopping after ``patience`` validations without an improvement larger than
    ``min_delta`` (None = never); ``restore_best`` loads the best weights into the model at
    the end (:meth:`Trainer.state_dict` and a later ``fit()`` still continue from the last
    training weights).

    Samples: every ``sample_every`` epochs (0 = never) from each of ``sample_prefixes``,
    ``sample_length`` tokens at ``sample_temperature`` (or greedy).

    Misc: ``backend``, ``seed`` (weights are seeded by the model; this seeds batches and
    samples), ``log_every`` (steps between ``on_step`` callbacks), ``progress`` (tqdm bar),
    ``verbose`` (a line every ``print_every`` epochs and at each mid-epoch validation).
    """

    corpus: str = "timemachine"
    preprocess: str = "d2l"
    tokens: str = "char"
    val_fraction: float = 0.1
    seq_len: int = 64
    batch_size: int = 32
    sampling: str = "random"
    batch_flavor: str = "d2l"
    epochs: int | None = None
    minutes: float | None = 9.0
    max_tokens: int | None = None
    optimizer: str = "adam"
    lr: float = 5e-3
    clip: float = 1.0
    schedule: str = "plateau"
    halve_every: int = 100
    plateau_patience: int = 2
    min_lr: float = 0.0
    backend: str = "auto"
    seed: int = 0
    eval_every: int = 150
    eval_batch_size: int = 16
    eval_seq_len: int = 256
    patience: int | None = 8
    min_delta: float = 0.0
    restore_best: bool = True
    sample_every: int = 0
    sample_prefixes: tuple = ("time traveller",)
    sample_length: int = 100
    sample_temperature: float = 0.7
    sample_greedy: bool = False
    log_every: int = 1
    print_every: int = 1
    progress: bool = True
    verbose: bool = True

    def __post_init__(self):
        if isinstance(self.sample_prefixes, str):
            self.sample_prefixes = (self.sample_prefixes,)
        self.sample_prefixes = tuple(self.sample_prefixes)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        def check(ok, name, what):
            if not ok:
                raise ValueError(f"TrainConfig.{name} must be {what}, got "
                                 f"{getattr(self, name)!r}")

        def is_int(v, lo=1):
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo

        check(self.preprocess in ("d2l", "none"), "preprocess", "'d2l' or 'none'")
        check(self.tokens in ("char", "word"), "tokens", "'char' or 'word'")
        check(isinstance(self.val_fraction, (int, float)) and 0 <= self.val_fraction < 1,
              "val_fraction", "a number in [0, 1)")
        for name in ("seq_len", "batch_size", "halve_every", "plateau_patience", "eval_batch_size",
                     "eval_seq_len", "sample_length", "log_every", "print_every"):
            check(is_int(getattr(self, name)), name, "a positive integer")
        for name in ("eval_every", "sample_every", "seed"):
            check(is_int(getattr(self, name), 0), name, "an integer >= 0")
        check(self.sampling in SAMPLINGS, "sampling", " or ".join(map(repr, SAMPLINGS)))
        check(self.batch_flavor in ("d2l", "gluonbook"), "batch_flavor", "'d2l' or 'gluonbook'")
        check(self.schedule in SCHEDULES, "schedule", " or ".join(map(repr, SCHEDULES)))
        check(self.epochs is None or is_int(self.epochs), "epochs", "None or a positive integer")
        check(self.max_tokens is None or is_int(self.max_tokens), "max_tokens",
              "None or a positive integer")
        check(self.minutes is None or (isinstance(self.minutes, (int, float))
                                       and self.minutes > 0), "minutes", "None or > 0")
        check(self.patience is None or is_int(self.patience), "patience",
              "None or a positive integer")
        check(self.optimizer in optim.OPTIMIZERS, "optimizer",
              "one of " + ", ".join(optim.OPTIMIZERS))
        check(isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0,
              "lr", "a finite number > 0")
        check(isinstance(self.min_lr, (int, float)) and 0 <= self.min_lr <= self.lr, "min_lr",
              "in [0, lr]")
        check(self.clip is None or (isinstance(self.clip, (int, float)) and self.clip >= 0),
              "clip", "a number >= 0 (0 = no clipping)")
        from .generate import MAX_LENGTH, TEMPERATURE_RANGE   # what sampling can honour
        low, high = TEMPERATURE_RANGE
        check(isinstance(self.sample_temperature, (int, float))
              and low <= self.sample_temperature <= high, "sample_temperature",
              f"between {low:g} and {high:g}")
        check(self.sample_length <= MAX_LENGTH, "sample_length", f"at most {MAX_LENGTH:,}")
        check(isinstance(self.min_delta, (int, float)) and self.min_delta >= 0, "min_delta",
              ">= 0")
        check(self.backend is not None, "backend", "a backend name")

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        d["sample_prefixes"] = list(self.sample_prefixes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (named)."""
        return config_from_dict(cls, d)

    # fields that change the compiled training graph (a resume must match them)
    GRAPH_FIELDS = ("seq_len", "batch_size", "sampling", "optimizer", "clip", "batch_flavor")


# --------------------------------------------------------------------------------------
# Data preparation
# --------------------------------------------------------------------------------------
@dataclass
class LMData:
    """Token ids of the training and held-out parts and the vocabulary."""

    train_ids: np.ndarray
    val_ids: np.ndarray
    vocab: object
    unknown_val: list = field(default_factory=list)


def text_tokens(text: str, preprocess: str = "none", tokens: str = "char") -> list:
    """``text`` as the tokens training reads: d2l's preprocessing line by line when
    ``preprocess="d2l"``, then characters or words (``tokens``)."""
    from .data import d2l_lines, tokenize
    if preprocess not in ("none", "d2l"):
        raise ValueError(f"preprocess must be 'none' or 'd2l', got {preprocess!r}")
    return tokenize(d2l_lines(text) if preprocess == "d2l" else text, tokens)


def split_tokens(tokens: list, val_fraction: float) -> tuple[list, list]:
    """The one train/validation split: the last ``val_fraction`` of the tokens is held out."""
    if len(tokens) < 2:
        raise CorpusError(f"the corpus has {len(tokens)} token(s) after preprocessing; "
                          f"a language model needs text")
    n_val = round(len(tokens) * val_fraction)
    return tokens[:len(tokens) - n_val], tokens[len(tokens) - n_val:]


def prepare_data(config: TrainConfig, text: str | None = None) -> LMData:
    """Load ``config.corpus`` (or ``text``), preprocess, split, build the vocabulary.

    The vocabulary is built from the training part only; held-out tokens outside it count
    as ``<unk>`` (listed in ``unknown_val``).  With ``preprocess="d2l"`` and character
    tokens on timemachine this is d2l's corpus (170,580 tokens, vocabulary 28).
    """
    from .data import Vocab, load_corpus

    if text is None:
        text = load_corpus(config.corpus)
    train_tokens, val_tokens = split_tokens(
        text_tokens(text, config.preprocess, config.tokens), config.val_fraction)
    vocab = Vocab(train_tokens, mode=config.tokens)
    unknown = vocab.unknown(val_tokens) if val_tokens else []
    train_ids = vocab.encode(train_tokens)
    val_ids = vocab.encode(val_tokens) if val_tokens else np.zeros(0, np.int32)
    return LMData(train_ids, val_ids, vocab, unknown)


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------
class Evaluator:
    """Compiled evaluation of a model on long id sequences (dropout off, state carried).

    The ids are cut into ``batch_size`` contiguous rows (fewer for short texts) read in
    chunks of ``seq_len`` steps, the state carried from chunk to chunk; the last chunk is
    padded and masked, so one compiled function serves every length.  Only the
    ``< batch_size`` tokens that do not fill the rows are left out.
    """

    def __init__(self, model: CharLM, batch_size: int = 16, seq_len: int = 256,
                 backend: str = "auto"):
        self.model = model
        self.batch_size = int(batch_size)
        self.seq_len = int(seq_len)
        self.backend = resolve_backend(backend)
        H = model.config.hidden
        x = pt.tensor("x", shape=(self.seq_len, None), dtype="int32")
        y = pt.tensor("y", shape=(self.seq_len, None), dtype="int32")
        mask = pt.tensor("mask", shape=(self.seq_len, None), dtype=floatx())
        states = [pt.tensor(f"state_{n}", shape=(None, H), dtype=floatx())
                  for n in model.state_names]
        logits, finals = model.logits(x, states, training=False, name="eval")
        nll_sum = cross_entropy(logits, y, reduction="sum", mask=mask,
                                num_classes=model.vocab_size)
        self.fn = function([x, y, mask, *states], [nll_sum, *finals], backend=self.backend,
                           name="eval_chunk")

    def __call__(self, ids, unk_id: int | None = None) -> dict:
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.size < 2:
            raise ValueError(f"evaluation needs a 1-D sequence of at least 2 token ids, got "
                             f"shape {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"evaluation needs integer token ids, got dtype {ids.dtype}")
        V = self.model.vocab_size
        if ids.min() < 0 or ids.max() >= V:
            raise ValueError(f"token ids must lie in [0, {V - 1}] for this model; got "
                             f"[{ids.min()}, {ids.max()}] (was the text encoded with the "
                             f"model's vocabulary?)")
        ids = ids.astype(np.int32)
        B = min(self.batch_size, ids.size - 1)
        L = (ids.size - 1) // B
        X = ids[:B * L].reshape(B, L).T                    # (L, B) time-major
        Y = ids[1:B * L + 1].reshape(B, L).T
        T = self.seq_len
        n_chunks = -(-L // T)
        pad = n_chunks * T - L
        Xp = np.concatenate([X, np.zeros((pad, B), np.int32)])
        Yp = np.concatenate([Y, np.zeros((pad, B), np.int32)])
        M = np.concatenate([np.ones((L, B), np.float32), np.zeros((pad, B), np.float32)])
        states = self.model.zero_states(B)
        total = 0.0
        for k in range(n_chunks):
            sl = slice(k * T, (k + 1) * T)
            out = self.fn(Xp[sl], Yp[sl], M[sl], *states)
            total += float(out[0])
            states = out[1:]
        count = B * L
        loss = total / count
        result = {"loss": loss, "perplexity": perplexity(loss),
                  "bits_per_char": loss / LN2, "tokens": int(count)}
        if unk_id is not None:
            result["unknown"] = int(np.sum(Y == unk_id))
        return result


def _evaluator(model, batch_size, seq_len, backend):
    cache = model.__dict__.setdefault("_evaluators", {})
    key = (int(batch_size), int(seq_len), resolve_backend(backend))
    if key not in cache:
        cache[key] = Evaluator(model, *key)
    return cache[key]


def evaluate(model: CharLM, ids, batch_size: int = 16, seq_len: int = 256,
             backend: str = "auto", unk_id: int | None = None) -> dict:
    """Mean cross-entropy of ``model`` on ``ids`` (next-token prediction, state carried).

    Returns ``dict(loss (nats/token), perplexity, bits_per_char, tokens)`` and, with
    ``unk_id``, ``unknown``: how many scored targets are the unknown token.
    The compiled function is cached on the model.
    """
    return _evaluator(model, batch_size, seq_len, backend)(ids, unk_id)


def evaluate_text(model: CharLM, vocab, text: str, preprocess: str = "none", **kwargs) -> dict:
    """:func:`evaluate` on a text: characters outside ``vocab`` count as ``<unk>``.

    The result also lists them (``unknown_tokens``).  ``preprocess="d2l"`` applies the d2l
    preprocessing first (use it for models trained on d2l-preprocessed text).
    """
    return evaluate_tokens(model, vocab, text_tokens(text, preprocess, vocab.mode), **kwargs)


def evaluate_tokens(model: CharLM, vocab, tokens: list, **kwargs) -> dict:
    """:func:`evaluate` on tokens encoded with ``vocab`` (those outside it count as
    ``<unk>`` and are listed in ``unknown_tokens``)."""
    missing = vocab.unknown(tokens)
    if missing and vocab.unk is None:
        raise ValueError(f"the text has tokens outside the vocabulary and it has no unknown "
                         f"token: {missing[:20]}")
    result = evaluate(model, vocab.encode(tokens), unk_id=vocab.unk, **kwargs)
    result["unknown_tokens"] = missing
    return result


# --------------------------------------------------------------------------------------
# Callbacks and Ctrl-C
# --------------------------------------------------------------------------------------
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


class _DeferInterrupt:
    """Hold a first Ctrl-C until the current step's bookkeeping is done; a second aborts."""

    def __init__(self):
        self.pending = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            if self._old in (signal.default_int_handler,):
                signal.signal(signal.SIGINT, self._handler)
            else:
                self._old = None
        return self

    def _handler(self, signum, frame):
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def check(self):
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _json_float(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------
class Trainer:
    """Train a :class:`~scanrnn.models.CharLM` on token ids.

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
        self.train_ids = self._check_ids(train_ids, "train_ids")
        self.val_ids = None if val_ids is None or len(val_ids) == 0 else \
            self._check_ids(val_ids, "val_ids")
        if self.val_ids is not None and len(self.val_ids) < 2:
            raise ValueError("val_ids needs at least 2 tokens (or pass none)")
        c = config
        need = tokens_needed(c.batch_size, c.seq_len, c.sampling,
                             "d2l" if c.sampling == "rows" else c.batch_flavor)
        if len(self.train_ids) < need:
            raise ValueError(
                f"the training text has {len(self.train_ids):,} tokens, fewer than the "
                f"{need:,} one {c.sampling} batch of batch_size x seq_len = {c.batch_size} x "
                f"{c.seq_len} needs; use a longer text or a smaller batch_size / seq_len")
        if vocab is not None and len(vocab) != model.vocab_size:
            raise ValueError(f"vocabulary has {len(vocab)} tokens but the model has "
                             f"vocab_size={model.vocab_size}")
        if vocab is not None and c.sample_every:
            from .generate import _encode_prefix
            for prefix in c.sample_prefixes:
                _encode_prefix(vocab, prefix)
        self.backend = resolve_backend(c.backend)
        self.stateful = c.sampling in ("sequential", "rows")
        self._build_train_function()
        self._evaluator = None
        self._sampler = None
        self._epoch_cache = None
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
        self._reset_epoch_stats()
        self.lr = float(c.lr)

    # -- construction -------------------------------------------------------------------
    def _check_ids(self, ids, name):
        if ids is None:
            raise ValueError(f"{name} is required (1-D integer token ids)")
        if isinstance(ids, str):
            raise TypeError(f"{name} must be token ids; encode the text with a Vocab first")
        arr = np.asarray(ids)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"{name} must be a 1-D integer array, got shape {arr.shape} "
                             f"dtype {arr.dtype}")
        V = self.model.vocab_size
        if arr.size and (arr.min() < 0 or arr.max() >= V):
            raise ValueError(f"{name} holds ids outside [0, {V - 1}] (vocab_size={V})")
        return arr.astype(np.int32)

    def _build_train_function(self):
        c, model = self.config, self.model
        T, B, H = c.seq_len, c.batch_size, model.config.hidden
        x = pt.tensor("x", shape=(T, B), dtype="int32")
        y = pt.tensor("y", shape=(T, B), dtype="int32")
        if self.stateful:
            self.carry = [pytensor.shared(np.zeros((B, H), np.float32), name=f"carry.{n}")
                          for n in model.state_names]
            init = self.carry
        else:
            self.carry = []
            init = None
        logits, finals = model.logits(x, init, training=True, name="train")
        loss = cross_entropy(logits, y, num_classes=model.vocab_size)
        grads = pt.grad(loss, model.params)
        if c.clip:
            grads, norm = optim.clip_by_global_norm(grads, c.clip)
        else:
            norm = pt.sqrt(sum(pt.sqr(g).sum() for g in grads))
        updates = optim.get(c.optimizer)(grads, model.params, c.lr)
        self.lr_var = updates.learning_rate
        self.slots = list(updates.slots)
        names = [s.name for s in self.slots]
        if len(set(names)) != len(names):
            raise RuntimeError(f"optimizer slots need unique names, got {names}")
        extra = dict(model.rng_updates())
        extra.update(zip(self.carry, finals))
        updates = optim.merge(updates, extra)
        ok = pt.and_(pt.isfinite(loss), pt.isfinite(norm))
        guarded = {var: pt.switch(ok, new, var) for var, new in updates.items()}
        self.train_fn = function([x, y], [loss, norm], updates=guarded, backend=self.backend,
                                 name="train_step")

    # -- one step -----------------------------------------------------------------------
    def train_step(self, X, Y) -> tuple[float, float]:
        """One update on a batch-major ``(B, T)`` batch; returns ``(loss, grad norm)``.

        Raises :class:`NonFiniteLossError` when the loss or gradient is NaN/inf; the
        compiled guard has then left every weight, slot and state unchanged.
        """
        return self._train_time_major(np.asarray(X).T, np.asarray(Y).T)

    def _train_time_major(self, x, y) -> tuple[float, float]:
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

    # -- batches ------------------------------------------------------------------------
    def epoch_batches(self, epoch: int):
        """``(X, Y)`` of epoch ``epoch`` (0-based), time-major ``(n, T, B)`` int32.

        Deterministic in ``(config.seed, epoch)`` so a resumed run sees the same batches.
        """
        if self._epoch_cache is not None and self._epoch_cache[0] == epoch:
            return self._epoch_cache[1]
        c = self.config
        rng = np.random.default_rng([c.seed, epoch])
        if c.sampling == "random":
            b = random_batches(self.train_ids, c.batch_size, c.seq_len, rng,
                               flavor=c.batch_flavor)
        elif c.sampling == "sequential":
            b = sequential_batches(self.train_ids, c.batch_size, c.seq_len, rng,
                                   flavor=c.batch_flavor)
        else:
            b = batch_rows(self.train_ids, c.batch_size, c.seq_len)
        data = (np.ascontiguousarray(b.X.transpose(0, 2, 1)),
                np.ascontiguousarray(b.Y.transpose(0, 2, 1)))
        self._epoch_cache = (epoch, data)
        return data

    def steps_per_epoch(self) -> int:
        return len(self.epoch_batches(self.epoch)[0])

    # -- evaluation and samples ---------------------------------------------------------
    @property
    def evaluator(self) -> Evaluator:
        if self._evaluator is None:
            self._evaluator = _evaluator(self.model, self.config.eval_batch_size,
                                         self.config.eval_seq_len, self.backend)
        return self._evaluator

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
        if self._sampler is None:
            from .generate import Sampler
            self._sampler = Sampler(self.model, self.vocab, self.backend)
        c = self.config
        seed = c.seed + self.epoch if seed is None else seed
        return [self._sampler.sample(p, c.sample_length, c.sample_temperature,
                                     greedy=c.sample_greedy, seed=seed)[0]
                for p in c.sample_prefixes]

    # -- schedule -----------------------------------------------------------------------
    def _total_steps(self):
        c = self.config
        totals = []
        if c.epochs is not None:
            totals.append(c.epochs * self.steps_per_epoch())
        if c.max_tokens is not None:
            totals.append(max(1, c.max_tokens // (c.batch_size * c.seq_len)))
        return min(totals) if totals else None

    def _scheduled_lr(self) -> float:
        c = self.config
        if c.schedule == "halve":
            return c.lr / 2.0 ** ((self.epoch + 1) // c.halve_every)
        if c.schedule == "cosine":
            total = self._total_steps()
            if total is not None:
                frac = min(self.global_step / total, 1.0)
            elif c.minutes is not None:
                frac = min(self.elapsed_now() / (60.0 * c.minutes), 1.0)
            else:
                return c.lr
            return c.min_lr + (c.lr - c.min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac))
        return self.lr  # constant, plateau (changed on validation)

    # -- the loop -----------------------------------------------------------------------
    def _reset_epoch_stats(self):
        self._epoch_loss_sum = 0.0
        self._epoch_steps = 0
        self._epoch_timed_steps = 0
        self._epoch_train_time = 0.0

    @property
    def tokens_per_second(self) -> float:
        """Training throughput so far: tokens / seconds inside training steps, the first
        (compiling) call excluded."""
        return self.timed_tokens / self.train_time if self.train_time > 0 else float("nan")

    def elapsed_now(self) -> float:
        start = getattr(self, "_fit_start", None)
        return self.elapsed if start is None else self.elapsed + time.perf_counter() - start

    def _budget_reason(self):
        c = self.config
        if c.epochs is not None and self.epoch >= c.epochs:
            return "epochs"
        if c.max_tokens is not None and self.tokens_seen >= c.max_tokens:
            return "max_tokens"
        if c.minutes is not None and self.elapsed_now() >= 60.0 * c.minutes:
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
        metrics = {"step": self.global_step, "epoch": self.epoch + self.step_in_epoch /
                   max(1, self.steps_per_epoch()), "val_loss": m["loss"],
                   "val_perplexity": m["perplexity"], "val_bits_per_char": m["bits_per_char"],
                   "val_tokens": m["tokens"], "lr": self.lr,
                   "time": self.elapsed_now(), "eval_seconds": time.perf_counter() - t0}
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
            self.best_weights = self.model.get_weights()
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
        steps = max(self._epoch_steps, 1)
        train_loss = self._epoch_loss_sum / steps
        tokens = self._epoch_timed_steps * c.batch_size * c.seq_len
        metrics = {"epoch": self.epoch + 1, "step": self.global_step,
                   "tokens": self.tokens_seen, "time": self.elapsed_now(), "lr": self.lr,
                   "train_loss": train_loss, "train_perplexity": perplexity(train_loss),
                   "train_bits_per_char": train_loss / LN2,
                   "tokens_per_s": (tokens / self._epoch_train_time
                                    if self._epoch_train_time > 0 else float("nan"))}
        last = self.evals[-1] if self.evals else None
        if self.val_ids is not None:
            if last is None or last["step"] != self.global_step:
                last = self.validate()
            for key in ("val_loss", "val_perplexity", "val_bits_per_char", "is_best"):
                metrics[key] = last[key]
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
        self._reset_epoch_stats()
        line = (f"epoch {metrics['epoch']:>4} step {self.global_step:>6} "
                f"train {train_loss:.4f} (ppl {metrics['train_perplexity']:.3f})")
        if "val_loss" in metrics:
            line += (f" | val {metrics['val_loss']:.4f} (ppl {metrics['val_perplexity']:.3f}, "
                     f"{metrics['val_bits_per_char']:.3f} bpc){' *' if metrics['is_best'] else ''}")
        tps = metrics["tokens_per_s"]
        line += (f" | {tps:,.0f} tok/s" if math.isfinite(tps) else "") + \
            f" lr {self.lr:.3g} {metrics['time']:.0f}s"
        if self.epoch % c.print_every == 0 or self.epoch == 1 or self._budget_reason():
            self._log(line)
        for s in metrics.get("samples", []):
            self._log(f"  - {s!r}")
        self._call("on_epoch_end", metrics)

    def fit(self) -> list[dict]:
        """Train until the epochs / minutes / max_tokens budget or early stopping.

        Returns :attr:`history` (one metrics dict per completed epoch).  Ctrl-C finishes
        the current step, leaves a consistent state (see :meth:`state_dict`) and re-raises
        ``KeyboardInterrupt``; a second Ctrl-C abandons the step.
        """
        c = self.config
        self.stop_reason = None
        if self._final_weights is not None:   # a previous fit() restored the best weights
            self.model.set_weights(self._final_weights)
            self._final_weights = None
        self._fit_start = time.perf_counter()
        bar = None
        try:
            with _DeferInterrupt() as interrupt:
                while True:
                    reason = self._budget_reason()
                    if reason:
                        self.stop_reason = reason
                        break
                    if self.step_in_epoch == 0:
                        self.reset_state()
                        if c.schedule in ("halve", "cosine"):
                            self.set_lr(self._scheduled_lr())
                    Xs, Ys = self.epoch_batches(self.epoch)
                    n = len(Xs)
                    if c.progress:
                        from tqdm.auto import tqdm
                        bar = tqdm(total=n, initial=self.step_in_epoch, leave=False,
                                   desc=f"epoch {self.epoch + 1}", unit="batch",
                                   mininterval=0.5, dynamic_ncols=True)
                    while self.step_in_epoch < n:
                        k = self.step_in_epoch
                        t0 = time.perf_counter()
                        loss, _ = self._train_time_major(Xs[k], Ys[k])
                        dt = time.perf_counter() - t0
                        self.step_in_epoch += 1
                        self.global_step += 1
                        self.tokens_seen += c.batch_size * c.seq_len
                        self._epoch_loss_sum += loss
                        self._epoch_steps += 1
                        if self._warm:
                            self._epoch_train_time += dt
                            self._epoch_timed_steps += 1
                            self.train_time += dt
                            self.timed_tokens += c.batch_size * c.seq_len
                        else:   # the first call compiles: not training speed
                            self.compile_time += dt
                            self._warm = True
                        if c.schedule == "cosine":
                            self.set_lr(self._scheduled_lr())
                        if bar is not None:
                            bar.update(1)
                            if self.global_step % 10 == 0:
                                tps = (self._epoch_timed_steps * c.batch_size * c.seq_len
                                       / max(self._epoch_train_time, 1e-9))
                                bar.set_postfix(loss=f"{loss:.3f}",
                                                ppl=f"{perplexity(loss):.2f}",
                                                tok_s=f"{tps:,.0f}", refresh=False)
                        if self.global_step % c.log_every == 0:
                            self._call("on_step", self.global_step, loss)
                        interrupt.check()
                        if c.eval_every and self.global_step % c.eval_every == 0 \
                                and self.step_in_epoch < n:
                            m = self.validate()
                            if m is not None:
                                self._log(f"  step {self.global_step:>6} val {m['val_loss']:.4f}"
                                          f" (ppl {m['val_perplexity']:.3f})"
                                          f"{' *' if m['is_best'] else ''} lr {self.lr:.3g} "
                                          f"{m['time']:.0f}s")
                        if self._budget_reason() not in (None, "epochs"):
                            break
                    if bar is not None:
                        bar.close()
                        bar = None
                    if self.step_in_epoch >= n:
                        self._end_epoch()
                    else:   # stopped by a budget inside the epoch
                        if self.val_ids is not None and (
                                not self.evals or self.evals[-1]["step"] != self.global_step):
                            self.validate()
                interrupt.check()   # a Ctrl-C during the last validation
        finally:
            if bar is not None:
                bar.close()
            self.elapsed += time.perf_counter() - self._fit_start
            self._fit_start = None
        if c.restore_best and self.best_weights is not None:
            self._final_weights = self.model.get_weights()
            self.model.set_weights(self.best_weights)
        best = f"{self.best_val_loss:.4f}" if math.isfinite(self.best_val_loss) else "n/a"
        kind = "validation" if self.val_ids is not None else "epoch training"
        self._log(f"stopped ({self.stop_reason}) after {self.global_step} steps, "
                  f"{self.elapsed:.0f}s; best {kind} loss {best}"
                  + (f" (ppl {perplexity(self.best_val_loss):.3f}) at step {self.best_step}"
                     if math.isfinite(self.best_val_loss) else ""))
        self._call("on_train_end")
        return self.history

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> tuple[dict, dict]:
        """Everything a resume needs: ``(arrays, meta)``.

        ``arrays``: ``param/<name>`` (the training weights, even when :meth:`fit` has
        loaded the best ones into the model), ``opt/<slot>`` (optimizer state), ``carry/<state>``
        (sequential sampling), ``rng/dropout`` (``[seed, counter]`` of the dropout stream),
        ``best/<name>`` (best weights so far).  ``meta`` (JSON): both configs, the data
        position (epoch, step in epoch; batches are a function of ``(seed, epoch)``), the
        learning rate, best loss, early-stopping counters, running epoch sums, history.
        A run resumed from it gives the same losses step for step as an uninterrupted one
        (same backend and seed), except with the wall-clock (``minutes``, time-based
        cosine) budgets, which depend on timing.
        """
        arrays = {}
        for p in self.model.params:
            value = (p.get_value(borrow=True) if self._final_weights is None
                     else self._final_weights[p.name])
            arrays[f"param/{p.name}"] = np.array(value, dtype=np.float32)
        for s in self.slots:
            arrays[f"opt/{s.name}"] = np.array(s.get_value(borrow=True))
        for name, var in zip(self.model.state_names, self.carry):
            arrays[f"carry/{name}"] = np.array(var.get_value(borrow=True))
        arrays["rng/dropout"] = np.array(self.model.rng.get_value(borrow=True), dtype=np.uint32)
        if self.best_weights is not None:
            for name, value in self.best_weights.items():
                arrays[f"best/{name}"] = np.array(value)
        meta = {
            "format": "scanrnn.trainer", "version": 1, "backend": self.backend,
            "config": self.config.to_dict(), "model": self.model.config.to_dict(),
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step, "tokens_seen": self.tokens_seen,
            "batch_seed": self.config.seed, "elapsed_s": self.elapsed,
            "train_time_s": self.train_time, "timed_tokens": self.timed_tokens,
            "lr": self.lr,
            "best_val_loss": _json_float(self.best_val_loss), "best_step": self.best_step,
            "bad_evals": self.bad_evals, "plateau_bad": self.plateau_bad,
            "epoch_loss_sum": self._epoch_loss_sum, "epoch_steps": self._epoch_steps,
            "epoch_train_time": self._epoch_train_time,
            "epoch_timed_steps": self._epoch_timed_steps, "stop_reason": self.stop_reason,
            "history": _jsonable(self.history), "evals": _jsonable(self.evals),
        }
        return arrays, meta

    def load_state_dict(self, arrays: dict, meta: dict) -> None:
        """Restore a :meth:`state_dict`.

        Everything is checked before anything is set: a state that does not fit (another
        model, training graph or seed, a missing or misshapen array, a missing or invalid
        meta field) raises ValueError and leaves the trainer exactly as it was.
        """
        self._check_state_meta(meta)
        values, best = self._checked_state_arrays(arrays)
        fields = _state_fields(meta)
        for var, value in values:
            var.set_value(value)
        self.best_weights = best or None
        self._final_weights = None
        lr = fields.pop("lr")
        for name, value in fields.items():
            setattr(self, name, value)
        self.set_lr(lr)

    def _check_state_meta(self, meta) -> None:
        """Raise ValueError unless ``meta`` was saved by this model, graph and seed."""
        if not isinstance(meta, dict) or meta.get("format") != "scanrnn.trainer":
            raise ValueError("not a scanrnn trainer state (meta['format'] != 'scanrnn.trainer')")
        saved_model = meta.get("model", {})
        now_model = self.model.config.to_dict()
        # the weights and the dropout stream come from the state: the init seed may differ
        diff = sorted(k for k in set(saved_model) | set(now_model)
                      if k != "seed" and saved_model.get(k) != now_model.get(k))
        if diff:
            raise ValueError("the state was saved from a different model; differing fields: "
                             + ", ".join(f"{k} (saved {saved_model.get(k)!r}, now "
                                         f"{now_model.get(k)!r})" for k in diff))
        saved_cfg = meta.get("config", {})
        bad = [f for f in TrainConfig.GRAPH_FIELDS
               if saved_cfg.get(f) != getattr(self.config, f)]
        if bad:
            raise ValueError("the state was saved with a different training graph: "
                             + ", ".join(f"{f} (saved {saved_cfg.get(f)!r}, now "
                                         f"{getattr(self.config, f)!r})" for f in bad))
        if meta.get("batch_seed", self.config.seed) != self.config.seed:
            raise ValueError(f"the state's batches were drawn with seed {meta['batch_seed']!r}, "
                             f"this trainer uses seed {self.config.seed}")

    def _state_variables(self) -> dict:
        """``{state_dict key: shared variable}`` of everything the arrays restore."""
        expected = {f"param/{p.name}": p for p in self.model.params}
        expected.update((f"opt/{s.name}", s) for s in self.slots)
        expected.update((f"carry/{name}", var)
                        for name, var in zip(self.model.state_names, self.carry))
        expected["rng/dropout"] = self.model.rng
        return expected

    def _checked_state_arrays(self, arrays) -> tuple[list, dict]:
        """``([(variable, value of its dtype)], best weights)``; ValueError naming every
        missing, unexpected or misshapen array."""
        expected = self._state_variables()
        problems = []
        missing = [k for k in expected if k not in arrays]
        extra = sorted(k for k in arrays if k not in expected and not k.startswith("best/"))
        if missing:
            problems.append("missing " + ", ".join(missing))
        if extra:
            problems.append("unexpected " + ", ".join(extra))
        values = []
        for key, var in expected.items():
            if key not in arrays:
                continue
            now = np.asarray(var.get_value(borrow=True))
            try:
                value = np.array(arrays[key], dtype=now.dtype)
            except (TypeError, ValueError) as exc:
                problems.append(f"{key}: not {now.dtype} numbers ({exc})")
                continue
            if value.shape != now.shape:
                problems.append(f"{key}: shape {value.shape}, expected {now.shape}")
            elif value.dtype.kind == "f" and not np.isfinite(value).all():
                problems.append(f"{key}: holds NaN or infinite values")
            values.append((var, value))
        best = {k[5:]: np.asarray(v, np.float32) for k, v in arrays.items()
                if k.startswith("best/")}
        if best and set(best) != set(self.model.param_names):
            problems.append("best/ weights do not match the model's parameter names")
        problems += [f"best/{k}: holds NaN or infinite values" for k, v in best.items()
                     if not np.isfinite(v).all()]
        if problems:
            raise ValueError("trainer state does not fit: " + "; ".join(problems))
        return values, best


# the trainer attributes a state_dict's meta restores: (attribute, meta key, parse, default)
_REQUIRED = object()
_STATE_FIELDS = (
    ("epoch", "epoch", int, _REQUIRED), ("step_in_epoch", "step_in_epoch", int, _REQUIRED),
    ("global_step", "global_step", int, _REQUIRED),
    ("tokens_seen", "tokens_seen", int, _REQUIRED), ("lr", "lr", float, _REQUIRED),
    ("elapsed", "elapsed_s", float, 0.0), ("train_time", "train_time_s", float, 0.0),
    ("timed_tokens", "timed_tokens", int, 0),
    ("best_val_loss", "best_val_loss", lambda v: math.inf if v is None else float(v), None),
    ("best_step", "best_step", lambda v: None if v is None else int(v), None),
    ("bad_evals", "bad_evals", int, 0), ("plateau_bad", "plateau_bad", int, 0),
    ("_epoch_loss_sum", "epoch_loss_sum", float, 0.0),
    ("_epoch_steps", "epoch_steps", int, 0),
    ("_epoch_train_time", "epoch_train_time", float, 0.0),
    ("_epoch_timed_steps", "epoch_timed_steps", int, 0),
    ("history", "history", list, ()), ("evals", "evals", list, ()),
    ("stop_reason", "stop_reason", lambda v: v, None),
)


def _state_fields(meta: dict) -> dict:
    """``{trainer attribute: value}`` parsed from a state_dict's meta (ValueError if a
    field is missing or of the wrong kind)."""
    fields = {}
    for attr, key, parse, default in _STATE_FIELDS:
        if key not in meta and default is _REQUIRED:
            raise ValueError(f"trainer state does not fit: meta has no {key!r}")
        try:
            fields[attr] = parse(meta.get(key, default))
        except (TypeError, ValueError):
            raise ValueError(f"trainer state does not fit: meta[{key!r}] = "
                             f"{meta.get(key)!r} is not a valid {key}") from None
    return fields

def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return _json_float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
