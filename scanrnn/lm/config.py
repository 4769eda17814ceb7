"""What a language-model run is: the model's architecture (:class:`LMConfig`), how it
trains (:class:`TrainConfig`), and the bounds sampling can honour.

Both configurations are plain dataclasses that validate themselves on construction and
round-trip through JSON (``to_dict`` / ``from_dict``), so a run directory records them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import optim
from ..cells import CELL_KINDS
from ..data.corpora import CORPORA

__all__ = ["LMConfig", "TrainConfig", "GENERAL_RECIPE", "recipe_for", "config_from_dict",
           "check_length", "check_temperature", "MAX_LENGTH", "TEMPERATURE_RANGE"]

SAMPLINGS = ("random", "sequential", "rows")
SCHEDULES = ("constant", "halve", "cosine", "plateau")
AUTO = "auto"

GENERAL_RECIPE = {"sampling": "sequential", "lr": 3e-3, "schedule": "cosine",
                  "weight_decay": AUTO, "ema": 0.99, "eval_every": 0, "eval_minutes": 0.5,
                  "eval_batch_size": 64}
"""What a :class:`TrainConfig` field left at ``"auto"`` becomes on a corpus with no recipe of
its own (a user's file; measured on nietzsche, ``benchmarks/RESULTS_lm.md``)."""


def recipe_for(corpus: str) -> dict:
    """The training recipe for ``corpus``: :data:`GENERAL_RECIPE`, overridden by the registry's
    ``train_defaults`` for a corpus with a tuned reproduction (``timemachine``)."""
    known = CORPORA.get(corpus)
    return {**GENERAL_RECIPE, **(known.train_defaults if known else {})}


@dataclass
class LMConfig:
    """Architecture of a :class:`~scanrnn.lm.CharLM`.

    Parameters
    ----------
    vocab_size : int
        Number of token ids ``V``.
    cell : str
        ``"lstm"``, ``"gru"``, ``"rnn"`` / ``"tanh"`` (Elman, tanh) or ``"relu"``.
    layers, hidden : int
        Number of stacked cells and their state size ``H``.
    embed : int
        Embedding size ``E``; ``0`` feeds one-hot vectors (the seeds' models).
    dropout : float
        Dropout rate between layers and before the output projection (training only).
    embed_dropout : float
        Dropout rate on the embedding output (training only).
    weight_drop : float
        DropConnect rate on each layer's recurrent weights ``W_h`` (AWD-LSTM's "weight
        drop"): one mask per training step, shared by every time step and sequence, so the
        recurrence itself is regularised (training only).
    output_bias : bool
        Whether the output projection has a bias ``out.b``.
    init : str
        ``"default"`` (embedding N(0, 1) as PyTorch's, Glorot inputs and output, orthogonal
        recurrent weights, LSTM forget bias 1) or
        ``"normal"``: every weight ``N(0, init_scale)``, biases 0 (seeds 002/003).
    init_scale : float
        Standard deviation for ``init="normal"``.
    seed : int
        Seed of the initial weights and of the dropout stream.
    """

    vocab_size: int
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    embed: int = 64
    dropout: float = 0.3
    embed_dropout: float = 0.0
    weight_drop: float = 0.0
    output_bias: bool = True
    init: str = "default"
    init_scale: float = 0.01
    seed: int = 0

    def __post_init__(self):
        def positive_int(name, value, minimum=1):
            if isinstance(value, bool) or int(value) != value or value < minimum:
                raise ValueError(f"LMConfig.{name} must be an integer >= {minimum}, "
                                 f"got {value!r}")
            return int(value)
        self.vocab_size = positive_int("vocab_size", self.vocab_size, 2)
        self.layers = positive_int("layers", self.layers)
        self.hidden = positive_int("hidden", self.hidden)
        self.embed = positive_int("embed", self.embed, 0)
        self.seed = positive_int("seed", self.seed, 0)
        if self.cell not in CELL_KINDS:
            raise ValueError(f"LMConfig.cell must be one of {', '.join(CELL_KINDS)}, "
                             f"got {self.cell!r}")
        for name in ("dropout", "embed_dropout", "weight_drop"):
            rate = float(getattr(self, name))
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"LMConfig.{name} must be in [0, 1), got {rate!r}")
            setattr(self, name, rate)
        if self.embed_dropout and not self.embed:
            raise ValueError("LMConfig.embed_dropout needs an embedding (embed > 0)")
        if self.init not in ("default", "normal"):
            raise ValueError(f"LMConfig.init must be 'default' or 'normal', got {self.init!r}")
        if not float(self.init_scale) > 0:
            raise ValueError(f"LMConfig.init_scale must be > 0, got {self.init_scale!r}")

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LMConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (named)."""
        return config_from_dict(cls, d)


def config_from_dict(cls, d: dict):
    """Build the dataclass ``cls`` from a dict; unknown keys are an error that names them."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    return cls(**d)


MAX_LENGTH = 1_000_000
"""Most tokens one call generates: the compiled loop of ``length`` steps, its constants and
its ``(length, num)`` output are built at once (10**7 steps took 51 s; 10**9 exhausted 24 GB)."""
TEMPERATURE_RANGE = (1e-30, 1e30)
"""Temperatures float32 sampling computes faithfully: ``t`` is a normal float32 and ``logits / t``
stays finite (1e-38 became 0 or a denormal and sampled "e e e e"; 1e39 overflowed to inf)."""


def check_length(length) -> int:
    """``length`` as an int in ``[1, MAX_LENGTH]``, or a ``ValueError`` saying why not."""
    if isinstance(length, bool) or int(length) != length or length <= 0:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    if length > MAX_LENGTH:
        raise ValueError(f"length {length:,} is more than {MAX_LENGTH:,} tokens, the most one call "
                         f"generates (it compiles a loop of that many steps); generate in parts, "
                         f"continuing from the previous text as the prefix")
    return int(length)


def check_temperature(temperature) -> float:
    """``temperature`` as a float in :data:`TEMPERATURE_RANGE`, or a ``ValueError``."""
    low, high = TEMPERATURE_RANGE
    try:
        value = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number, got {temperature!r}") from None
    if not low <= value <= high:
        raise ValueError(f"temperature must be between {low:g} and {high:g} (float32 sampling "
                         f"turns a smaller one into 0 and a larger one into infinity), got "
                         f"{temperature!r}; for argmax decoding use greedy sampling")
    return value


@dataclass
class TrainConfig:
    """How to train; the defaults are what ``scanrnn train`` runs.

    Data: ``corpus`` (name or path), ``preprocess`` (``"d2l"``: letters and spaces,
    lowercased, as d2l; ``"none"``: the raw text, every character kept; ``"auto"``, the
    default: d2l for the ``timemachine`` reproductions, the raw text for any other corpus),
    ``tokens`` (``"char"``/``"word"``), ``val_fraction`` (the LAST fraction of the text is
    held out).

    The recipe fields ``sampling``, ``lr``, ``schedule``, ``weight_decay``, ``ema``,
    ``eval_every``, ``eval_minutes`` and ``eval_batch_size`` default to ``"auto"``: the recipe
    tuned for the corpus where it has one (``timemachine``: random batches, Adam 5e-3 halved
    on a plateau, no weight decay or averages, validation every 150 steps on 16 streams), else
    :data:`GENERAL_RECIPE` (sequential batches, 3e-3 with warm-up and cosine, weight decay
    ``"auto"``, averages with decay 0.99, validation every 30 s on 64 streams); a value given
    wins (:func:`recipe_for`).

    Batches: ``seq_len`` ``T``, ``batch_size`` ``B``, ``sampling``: ``"random"`` (d2l random
    sampling, state reset every batch), ``"sequential"`` (d2l sequential partitioning, state
    carried; reset at each epoch start) or ``"rows"`` (the MXNet seed's layout, state carried);
    ``batch_flavor``: ``"d2l"`` or ``"gluonbook"`` (seed 002's iterators).

    Length: ``epochs``, ``minutes`` (wall clock of :meth:`Trainer.fit`, compilation
    included), ``max_tokens``; training stops at the first reached (or by early stopping).

    Optimisation: ``optimizer`` (a name from :mod:`scanrnn.optim`), ``lr``, ``clip`` (global
    gradient norm; 0 = off), ``weight_decay`` (Adam's decoupled decay, AdamW; ``"auto"``
    follows the passes over the training text the run will make, from none at one pass to
    0.1 from five on, :func:`~scanrnn.lm.schedules.weight_decay_for`; no decay with another
    optimizer), ``ema`` (> 0: validation, samples and the best weights use moving averages
    of the weights with this decay per step, :func:`scanrnn.optim.ema`; 0 = off),
    ``schedule``: ``"constant"``; ``"halve"`` (divide by 2 every
    ``halve_every`` epochs, the MXNet seed); ``"cosine"`` (to ``min_lr`` over the run:
    over the steps of ``epochs``/``max_tokens``, else over ``minutes`` of wall clock);
    ``"plateau"`` (halve when ``plateau_patience`` validations in a row do not improve).
    ``warmup``: the first fraction of the run (same clock as cosine) raises the learning
    rate linearly from ``lr / 100`` to ``lr`` (cosine only).

    Validation: every ``eval_minutes`` of wall clock (checked between steps; longer apart
    when one would take over 5% of the run, :func:`~scanrnn.lm.schedules.validation_wait`), or with
    ``eval_minutes=None`` every ``eval_every`` steps and at each epoch end; always at the
    end; on ``eval_batch_size`` parallel streams read in chunks of ``eval_seq_len`` with the
    state carried (:class:`~scanrnn.lm.evaluate.Evaluator`);
    early stopping after ``patience`` validations without an improvement larger than
    ``min_delta`` (None = never); ``restore_best`` loads the best weights into the model at
    the end (:meth:`Trainer.state_dict` and a later ``fit()`` still continue from the last
    training weights).

    Samples: every ``sample_every`` epochs (0 = never) from each of ``sample_prefixes``
    (empty: a phrase from the training text), ``sample_length`` tokens at
    ``sample_temperature`` (or greedy).

    Devices: ``devices`` (None: one device; an int N or ``"all"``: data parallel over the
    first N or all devices JAX sees, every process's devices after
    :func:`scanrnn.parallel.initialize`); ``batch_size`` is the global batch and must be
    divisible by the number of devices (:mod:`scanrnn.lm.devices`).

    Misc: ``backend``, ``seed`` (weights are seeded by the model; this seeds batches and
    samples), ``log_every`` (steps between ``on_step`` callbacks), ``progress`` (tqdm bar),
    ``verbose`` (a line every ``print_every`` epochs and at each mid-epoch validation).
    """

    corpus: str = "timemachine"
    preprocess: str = "auto"
    tokens: str = "char"
    val_fraction: float = 0.1
    seq_len: int = 64
    batch_size: int = 32
    sampling: str = AUTO
    batch_flavor: str = "d2l"
    epochs: int | None = None
    minutes: float | None = 9.0
    max_tokens: int | None = None
    optimizer: str = "adam"
    lr: float | str = AUTO
    clip: float = 1.0
    weight_decay: float | str = AUTO
    ema: float | str = AUTO
    schedule: str = AUTO
    warmup: float = 0.02
    halve_every: int = 100
    plateau_patience: int = 2
    min_lr: float = 0.0
    backend: str = "auto"
    devices: int | str | None = None
    seed: int = 0
    eval_every: int | str = AUTO
    eval_minutes: float | str | None = AUTO
    eval_batch_size: int | str = AUTO
    eval_seq_len: int = 256
    patience: int | None = 8
    min_delta: float = 0.0
    restore_best: bool = True
    sample_every: int = 0
    sample_prefixes: tuple = ()
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
        if self.preprocess == AUTO:
            self.preprocess = "d2l" if self.corpus == "timemachine" else "none"
        for name, value in recipe_for(self.corpus).items():
            if isinstance(getattr(self, name), str) and getattr(self, name) == AUTO:
                setattr(self, name, value)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        def check(ok, name, what):
            if not ok:
                raise ValueError(f"TrainConfig.{name} must be {what}, got "
                                 f"{getattr(self, name)!r}")

        def is_int(v, lo=1):
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo

        check(self.preprocess in ("d2l", "none"), "preprocess", "'d2l', 'none' or 'auto'")
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
        decay = self.weight_decay
        check(decay == AUTO or (isinstance(decay, (int, float)) and math.isfinite(decay)
                                and decay >= 0), "weight_decay", "'auto' or a finite number >= 0")
        check(decay == AUTO or not decay or self.optimizer == "adam", "weight_decay",
              "0 or 'auto' unless optimizer is 'adam' (decoupled weight decay is Adam's option)")
        check(isinstance(self.ema, (int, float)) and 0 <= self.ema < 1, "ema",
              "a decay in [0, 1) (0 = no moving averages)")
        low, high = TEMPERATURE_RANGE
        check(isinstance(self.sample_temperature, (int, float))
              and low <= self.sample_temperature <= high, "sample_temperature",
              f"between {low:g} and {high:g}")
        check(self.sample_length <= MAX_LENGTH, "sample_length", f"at most {MAX_LENGTH:,}")
        check(isinstance(self.warmup, (int, float)) and 0 <= self.warmup <= 0.5, "warmup",
              "a fraction in [0, 0.5]")
        check(self.eval_minutes is None or (isinstance(self.eval_minutes, (int, float))
                                            and self.eval_minutes > 0), "eval_minutes",
              "None or > 0")
        check(isinstance(self.min_delta, (int, float)) and self.min_delta >= 0, "min_delta",
              ">= 0")
        check(self.backend is not None, "backend", "a backend name")
        check(self.devices is None or self.devices == "all" or is_int(self.devices), "devices",
              "None, a positive integer or 'all'")

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        d["sample_prefixes"] = list(self.sample_prefixes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (named)."""
        return config_from_dict(cls, {**cls.LEGACY, **d})

    # fields that change the compiled training graph (a resume must match them)
    GRAPH_FIELDS = ("seq_len", "batch_size", "sampling", "optimizer", "clip", "batch_flavor",
                    "ema")
    # what a config saved before a field existed meant by leaving it out
    LEGACY = {"weight_decay": 0.0, "ema": 0.0}


