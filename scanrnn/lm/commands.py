"""The ``scanrnn`` command: ``train``, ``sample``, ``eval``, ``info`` (and ``graph``).

Exit status: 0 success; 1 training stopped by a NaN / infinite loss (the last good
checkpoint is kept); 2 bad input (one line on stderr, no traceback); 130 interrupted by
Ctrl-C (after saving a checkpoint).  ``SCANRNN_DEBUG=1`` shows tracebacks instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import os
import shlex
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_RUNS = "runs"


class UsageError(ValueError):
    """Bad command-line input detected by the CLI itself."""


# --------------------------------------------------------------------------------------
# argument types: each rejects bad values with a message argparse prints on one line
# --------------------------------------------------------------------------------------
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    value = _float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def seed_int(text: str) -> int:
    value = nonnegative_int(text)
    if value >= 2 ** 32:
        raise argparse.ArgumentTypeError(f"must be < 2**32, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class _Help(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=30, width=100)


# --------------------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------------------
# flag -> (config, field) for `train`; None config = CLI-only
MODEL_FLAGS = {"cell": "cell", "layers": "layers", "hidden": "hidden", "embed": "embed",
               "dropout": "dropout", "embed_dropout": "embed_dropout", "init": "init",
               "init_scale": "init_scale"}
TRAIN_FLAGS = ("corpus", "preprocess", "tokens", "val_fraction", "seq_len", "batch_size",
               "sampling", "epochs", "minutes", "max_tokens", "optimizer", "lr", "clip",
               "schedule", "halve_every", "min_lr", "backend", "eval_every", "patience",
               "sample_every", "sample_length", "sample_temperature")
# what a resumed run may not change (data, model, compiled graph, batches)
FIXED_ON_RESUME = ("corpus", "preprocess", "tokens", "val_fraction", "max_chars", "seq_len",
                   "batch_size", "sampling", "optimizer", "clip", "seed", *MODEL_FLAGS)
BUDGET_FLAGS = ("epochs", "minutes", "max_tokens")


def _defaults():
    from .models import LMConfig
    from .training import TrainConfig
    lm = {f.name: f.default for f in dataclasses.fields(LMConfig)
          if f.default is not dataclasses.MISSING}
    return lm, TrainConfig()


def _train_parser(sub):
    lm, tc = _defaults()
    p = sub.add_parser(
        "train", formatter_class=_Help, help="train a character language model",
        description="Train a character-level language model and write a run directory\n"
                    "(config.json, vocab.json, latest.npz, best.npz, metrics.csv, "
                    "samples.txt, loss.png).\nWith no flags: the default 2-layer LSTM on "
                    f"the Time Machine for {tc.minutes:g} minutes.",
        epilog="Ctrl-C saves latest.npz and exits (status 130); continue with --resume.\n"
               "A NaN/inf loss stops training (status 1) and keeps the last good checkpoint.")
    d = "(default: %s)"
    g = p.add_argument_group("data")
    g.add_argument("--corpus", metavar="NAME|PATH",
                   help=f"registry name (timemachine, nietzsche) or a UTF-8 text file "
                        f"{d % tc.corpus}")
    g.add_argument("--max-chars", type=positive_int, metavar="N",
                   help="use only the first N characters of the text (default: all)")
    g.add_argument("--preprocess", choices=("d2l", "none"),
                   help=f"d2l: letters and spaces, lowercased; none: the raw text "
                        f"{d % tc.preprocess}")
    g.add_argument("--tokens", choices=("char", "word"), help=f"token unit {d % tc.tokens}")
    g.add_argument("--val-fraction", type=fraction, metavar="F",
                   help=f"the last fraction F of the text is held out {d % tc.val_fraction}")
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=("rnn", "gru", "lstm", "relu"),
                   help=f"recurrent cell (rnn = tanh) {d % lm['cell']}")
    g.add_argument("--layers", type=positive_int, metavar="N",
                   help=f"stacked layers {d % lm['layers']}")
    g.add_argument("--hidden", type=positive_int, metavar="N",
                   help=f"hidden units per layer {d % lm['hidden']}")
    g.add_argument("--embed", type=nonnegative_int, metavar="N",
                   help=f"embedding size, 0 = one-hot inputs {d % lm['embed']}")
    g.add_argument("--dropout", type=fraction, metavar="F",
                   help=f"dropout between layers and before the output {d % lm['dropout']}")
    g.add_argument("--embed-dropout", type=fraction, metavar="F",
                   help=f"dropout on the embedding {d % lm['embed_dropout']}")
    g.add_argument("--init", choices=("default", "normal"),
                   help=f"default: Glorot/orthogonal; normal: N(0, init-scale) "
                        f"{d % lm['init']}")
    g.add_argument("--init-scale", type=positive_float, metavar="F",
                   help=f"std of --init normal {d % lm['init_scale']}")
    g = p.add_argument_group("batches and budget")
    g.add_argument("--seq-len", type=positive_int, metavar="N",
                   help=f"time steps per batch (BPTT length) {d % tc.seq_len}")
    g.add_argument("--batch-size", type=positive_int, metavar="N",
                   help=f"sequences per batch {d % tc.batch_size}")
    g.add_argument("--sampling", choices=("random", "sequential", "rows"),
                   help=f"random: d2l random sampling (state reset); sequential / rows: "
                        f"state carried across batches {d % tc.sampling}")
    budget = g.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=positive_int, metavar="N",
                        help="train N epochs in total (counting epochs done before --resume)"
                             " (default: no epoch limit, --minutes applies)")
    budget.add_argument("--minutes", type=positive_float, metavar="M",
                        help="train for M minutes of wall clock in total, compilation "
                             f"included; ignored when --epochs is given {d % tc.minutes}")
    g.add_argument("--max-tokens", type=positive_int, metavar="N",
                   help=f"stop after N training tokens {d % tc.max_tokens}")
    g.add_argument("--patience", type=nonnegative_int, metavar="N",
                   help=f"early stopping after N validations without improvement, 0 = never "
                        f"{d % tc.patience}")
    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=("sgd", "momentum", "nesterov", "adagrad", "rmsprop",
                                           "adam"), help=f"update rule {d % tc.optimizer}")
    g.add_argument("--lr", type=positive_float, metavar="F", help=f"learning rate {d % tc.lr}")
    g.add_argument("--clip", type=nonnegative_float, metavar="F",
                   help=f"clip the global gradient norm at F, 0 = off {d % tc.clip}")
    g.add_argument("--schedule", choices=("constant", "halve", "cosine", "plateau"),
                   help=f"learning-rate schedule {d % tc.schedule}")
    g.add_argument("--halve-every", type=positive_int, metavar="N",
                   help=f"epochs between halvings for --schedule halve {d % tc.halve_every}")
    g.add_argument("--min-lr", type=nonnegative_float, metavar="F",
                   help=f"final learning rate of --schedule cosine {d % tc.min_lr}")
    g = p.add_argument_group("run")
    g.add_argument("--backend", metavar="NAME",
                   help=f"auto, jax, numba, c or python {d % tc.backend}")
    g.add_argument("--seed", type=seed_int, metavar="N",
                   help=f"seeds the weights, dropout, batches and samples {d % tc.seed}")
    g.add_argument("--out", metavar="DIR",
                   help=f"run directory (default: {DEFAULT_RUNS}/<corpus>-<cell>-<time>)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --out (default: the newest run in "
                        f"{DEFAULT_RUNS}/) from its latest checkpoint")
    g.add_argument("--eval-every", type=nonnegative_int, metavar="N",
                   help="validate (and save latest.npz) every N steps, 0 = at epoch ends "
                        f"only {d % tc.eval_every}")
    g.add_argument("--save-every", type=nonnegative_int, metavar="N",
                   help="also save latest.npz every N steps, 0 = only after validations, "
                        "epochs and Ctrl-C (default: 0)")
    g.add_argument("--log-every", type=positive_int, metavar="N",
                   help="steps per row of metrics.csv (default: 50)")
    g.add_argument("--sample-every", type=nonnegative_int, metavar="N",
                   help="print a sample every N epochs, 0 = never (default: 1)")
    g.add_argument("--sample-prefix", action="append", metavar="TEXT",
                   help="prefix of the epoch samples; repeat for several "
                        f"(default: {tc.sample_prefixes[0]!r} when the vocabulary has its "
                        "characters, else the first word of the text)")
    g.add_argument("--sample-length", type=positive_int, metavar="N",
                   help=f"characters per epoch sample {d % tc.sample_length}")
    g.add_argument("--sample-temperature", type=positive_float, metavar="F",
                   help=f"temperature of the epoch samples {d % tc.sample_temperature}")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--quiet", action="store_true", help="print only errors and the summary")
    p.set_defaults(func=cmd_train)
    return p


def _sample_parser(sub):
    p = sub.add_parser(
        "sample", formatter_class=_Help, help="generate text from a trained run",
        description="Print continuations of a prefix generated by a trained run "
                    "(the same --seed gives the same text).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `scanrnn train`")
    p.add_argument("--prefix", metavar="TEXT",
                   help="text to continue (default: the run's first sample prefix)")
    p.add_argument("--length", type=positive_int, default=200, metavar="N",
                   help="characters to generate (default: 200)")
    p.add_argument("--temperature", type=positive_float, default=0.8, metavar="F",
                   help="softmax temperature; lower is more conservative (default: 0.8)")
    p.add_argument("--top-k", type=positive_int, metavar="K",
                   help="sample among the K most likely characters (default: all)")
    p.add_argument("--greedy", action="store_true",
                   help="always pick the most likely character (ignores --temperature)")
    p.add_argument("--seed", type=seed_int, default=0, metavar="N",
                   help="random seed (default: 0)")
    p.add_argument("--num", type=positive_int, default=1, metavar="N",
                   help="number of samples, printed separated by a line of dashes (default: 1)")
    p.add_argument("--checkpoint", default="best", metavar="best|latest",
                   help="which weights (default: best)")
    p.add_argument("--backend", default="auto", metavar="NAME",
                   help="auto, jax, numba, c or python (default: auto)")
    p.set_defaults(func=cmd_sample)
    return p


def _eval_parser(sub):
    p = sub.add_parser(
        "eval", formatter_class=_Help, help="perplexity and bits per char of a run on a text",
        description="Evaluate a trained run: cross-entropy, perplexity and bits per "
                    "character on the run's validation text or on any text\n(preprocessed "
                    "as the run's training text; characters outside the vocabulary count "
                    "as <unk> and are reported).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `scanrnn train`")
    p.add_argument("--corpus", metavar="NAME|PATH",
                   help="text to evaluate (default: the run's held-out validation text)")
    p.add_argument("--max-chars", type=positive_int, metavar="N",
                   help="use only the first N characters of --corpus (default: all)")
    p.add_argument("--checkpoint", default="best", metavar="best|latest",
                   help="which weights (default: best)")
    p.add_argument("--batch-size", type=positive_int, default=16, metavar="N",
                   help="parallel rows the text is cut into (default: 16)")
    p.add_argument("--seq-len", type=positive_int, default=256, metavar="N",
                   help="steps per compiled chunk, state carried across chunks (default: 256)")
    p.add_argument("--backend", default="auto", metavar="NAME",
                   help="auto, jax, numba, c or python (default: auto)")
    p.set_defaults(func=cmd_eval)
    return p


def _info_parser(sub):
    p = sub.add_parser(
        "info", formatter_class=_Help, help="versions, backends, devices, data locations",
        description="Print the versions, installed backends, the devices JAX sees, and where "
                    "corpora and compilation caches are looked up.")
    p.set_defaults(func=cmd_info)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The ``scanrnn`` argument parser (sub-commands train, sample, eval, info, graph)."""
    from . import __version__
    parser = _Parser(
        prog="scanrnn", formatter_class=_Help,
        description="Theano-style recurrent networks on PyTensor: train character language "
                    "models, sample from them, evaluate them.",
        epilog="Start with `scanrnn train`, then `scanrnn sample runs/<run>`.\n"
               "`scanrnn COMMAND --help` describes each command's flags and defaults.")
    parser.add_argument("--version", action="version", version=f"scanrnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _train_parser(sub)
    _sample_parser(sub)
    _eval_parser(sub)
    _info_parser(sub)
    try:
        from .inspect import cli as inspect_cli
    except ImportError:
        inspect_cli = None
    if inspect_cli is not None and hasattr(inspect_cli, "register"):
        inspect_cli.register(sub)
    return parser


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _say(args, text=""):
    if not getattr(args, "quiet", False):
        print(text, flush=True)


def _check_backend(name):
    from .backends import resolve_backend
    return resolve_backend(name or "auto")


def _load_text(corpus: str, max_chars: int | None) -> tuple[str, str]:
    """``(text, resolved path)`` of a corpus name or path, cut to ``max_chars``."""
    from .data import read_text, resolve_corpus
    path = resolve_corpus(corpus)
    text = read_text(path)
    if max_chars:
        text = text[:max_chars]
    return text, str(path)


def _explicit(args, names) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _newest_run(root: Path) -> Path:
    from .rundir import RunDir
    runs = [p for p in root.iterdir() if p.is_dir() and RunDir.is_run_dir(p)] \
        if root.is_dir() else []
    if not runs:
        raise UsageError(f"--resume without --out: no run directory in {root}/; "
                         "pass --out DIR")
    return max(runs, key=lambda p: p.stat().st_mtime)


def _default_out(corpus: str, cell: str) -> Path:
    stem = Path(corpus).stem if corpus else "corpus"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(DEFAULT_RUNS) / f"{stem}-{cell}-{stamp}"


def _sample_prefixes(args, vocab, text_tokens, default_prefixes):
    """Explicit --sample-prefix values, or a default the vocabulary can encode."""
    if args.sample_prefix:
        return tuple(args.sample_prefix)
    good = [p for p in default_prefixes if not vocab.unknown(p)]
    if good:
        return tuple(good)
    words = "".join(text_tokens[:200]).split() if vocab.mode == "char" else text_tokens[:1]
    return (words[0] if words else "".join(text_tokens[:8]),)


# --------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------
def _open_to_resume(args):
    """The run to resume, opened and locked (another process training it: RunDirError)."""
    from .rundir import RunDir
    run = RunDir.open(Path(args.out) if args.out else _newest_run(Path(DEFAULT_RUNS)))
    run.lock()   # before anything is read or cleaned up: nobody else writes it from now on
    return run


def _setup_resume(args, run, train_over):
    """A locked run's saved configuration with the allowed overrides, data, checkpoint."""
    from .rundir import parse_configs
    from .training import prepare_data
    run.remove_stale_temp_files()
    saved = run.read_config()
    saved_model, saved_train = saved["model"], dict(saved.get("train", {}))
    data = saved.get("data", {})
    current = {**{k: saved_model.get(v) for k, v in MODEL_FLAGS.items()},
               **{k: saved_train.get(k) for k in TRAIN_FLAGS},
               "seed": saved_train.get("seed"), "max_chars": data.get("max_chars")}
    for name in FIXED_ON_RESUME:
        given = getattr(args, name, None)
        if given is not None and given != current.get(name):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} {given} differs from the run being resumed "
                             f"({current.get(name)!r}); drop {flag} or start a new run with "
                             "another --out")
    if any(k in train_over for k in BUDGET_FLAGS):   # a new budget replaces the old one
        for k in BUDGET_FLAGS:
            saved_train[k] = train_over.get(k)
    saved_train.update({k: v for k, v in train_over.items() if k not in BUDGET_FLAGS})
    if args.sample_prefix:
        saved_train["sample_prefixes"] = list(args.sample_prefix)
    lm_config, train_config = parse_configs(run, saved_model, saved_train)
    text, corpus_path = _load_text(train_config.corpus, data.get("max_chars"))
    lm_data = prepare_data(train_config, text)
    vocab = run.read_vocab()
    if vocab.idx_to_token != lm_data.vocab.idx_to_token:
        raise UsageError(f"the corpus {corpus_path} no longer gives the vocabulary saved in "
                         f"{run.vocab_path}; was the file changed?")
    return train_config, lm_config, lm_data, vocab, text, corpus_path, _resume_checkpoint(run)


def _resume_checkpoint(run):
    """The checkpoint a resume continues from: latest.npz, else best.npz (said), else None."""
    if run.has_checkpoint("latest"):
        return run.load_checkpoint("latest")
    if run.has_checkpoint("best"):
        checkpoint = run.load_checkpoint("best")
        print(f"scanrnn train: {run.latest_path.name} is missing from {run.path}: resuming from "
              f"{run.best_path.name} (step {checkpoint.meta.get('global_step', '?')}); metrics "
              f"rows after it move to {run.metrics_path.name}.replaced", file=sys.stderr,
              flush=True)
        return checkpoint
    return None


def _setup_new(args, train_over, model_over):
    """Configuration and data of a new run (nothing is written yet)."""
    from .models import LMConfig
    from .training import TrainConfig, prepare_data, text_tokens
    _, tc_defaults = _defaults()
    seed = args.seed if args.seed is not None else tc_defaults.seed
    fields = {**train_over, "seed": seed}
    fields.setdefault("sample_every", 1)
    if any(k in train_over for k in BUDGET_FLAGS):   # --epochs N alone: no minutes budget
        for k in BUDGET_FLAGS:
            fields[k] = train_over.get(k)
    train_config = TrainConfig(**fields)
    text, corpus_path = _load_text(train_config.corpus, args.max_chars)
    lm_data = prepare_data(train_config, text)
    vocab = lm_data.vocab
    prefixes = _sample_prefixes(args, vocab, text_tokens(text, train_config.preprocess,
                                                         train_config.tokens),
                                train_config.sample_prefixes)
    train_config = dataclasses.replace(train_config, sample_prefixes=prefixes)
    lm_config = LMConfig(vocab_size=len(vocab), seed=seed, **model_over)
    return train_config, lm_config, lm_data, vocab, text, corpus_path


class _StopRequest:
    """Ctrl-C (SIGINT) and SIGTERM stop training at the next step boundary.

    The first signal sets a flag; :meth:`on_step` (a training callback, called after the
    step's bookkeeping) raises ``KeyboardInterrupt`` there, so the state saved next is
    consistent.  A second signal aborts at once (``aborted`` is then True and nothing
    is saved).  Before the first step has finished (while the training function
    compiles) there is nothing new to save: a signal stops at once (``before_start``).
    An ignored SIGINT (a background job) stays ignored.
    """

    def __init__(self):
        self.requested = False
        self.aborted = False
        self.started = False
        self.before_start = False
        self._old = {}

    def __enter__(self):
        import signal
        import threading
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self._old[signal.SIGINT] = signal.signal(signal.SIGINT, self._handler)
            self._old[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handler)
        return self

    def _handler(self, signum, frame):
        if not self.started:
            self.before_start = True
            raise KeyboardInterrupt
        if self.requested:
            self.aborted = True
            raise KeyboardInterrupt
        self.requested = True
        os.write(2, b"\nstopping after this step and saving (press Ctrl-C again to abort)\n")

    def on_step(self, trainer, step, loss):
        self.started = True
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        import signal
        for signum, handler in self._old.items():
            signal.signal(signum, handler)
        return False


def cmd_train(args) -> int:
    """``scanrnn train``: a new run or ``--resume``; the run directory stays locked
    (:meth:`scanrnn.rundir.RunDir.lock`) until the command ends."""
    from .models import CharLM
    from .rundir import RunDir
    from .training import Trainer

    backend = _check_backend(args.backend) if args.backend else None
    model_over = {MODEL_FLAGS[k]: v for k, v in _explicit(args, MODEL_FLAGS).items()}
    train_over = _explicit(args, TRAIN_FLAGS)
    if args.patience is not None:
        train_over["patience"] = args.patience or None
    run = None
    try:
        if args.resume:
            run = _open_to_resume(args)
            train_config, lm_config, lm_data, vocab, text, corpus_path, checkpoint = \
                _setup_resume(args, run, train_over)
        else:
            if args.out:                 # an existing run is refused before any work
                RunDir.check_new(args.out)
            train_config, lm_config, lm_data, vocab, text, corpus_path = \
                _setup_new(args, train_over, model_over)
            checkpoint = None
        recorded_train = train_config
        # the run directory keeps the best weights in best.npz: the model keeps its last ones
        train_config = dataclasses.replace(train_config, progress=not args.no_progress,
                                           verbose=not args.quiet, restore_best=False,
                                           log_every=1, backend=backend or train_config.backend)
        # build the trainer before creating the run directory: bad sizes fail with nothing
        # on disk
        trainer = Trainer(CharLM(lm_config), train_config, lm_data.train_ids,
                          lm_data.val_ids, vocab)
        if run is None:
            run = _create_run(args, trainer, lm_data, vocab, corpus_path)
        else:   # the flags this resume changed are recorded for the next one
            run.record_train_config(recorded_train.to_dict())
        return _train_run(args, run, trainer, checkpoint, lambda: _train_header(
            run, trainer, lm_data, vocab, corpus_path, text, args.resume))
    finally:
        if run is not None:
            run.unlock()


def _create_run(args, trainer, lm_data, vocab, corpus_path):
    """The new run directory of ``trainer`` (created locked)."""
    from .rundir import RunDir
    train_config, lm_config = trainer.config, trainer.model.config
    out = Path(args.out) if args.out else _default_out(train_config.corpus, lm_config.cell)
    return RunDir.create(out, {
        "model": lm_config.to_dict(), "train": train_config.to_dict(),
        "data": {"corpus": train_config.corpus, "path": corpus_path,
                 "max_chars": args.max_chars, "train_tokens": int(len(lm_data.train_ids)),
                 "val_tokens": int(len(lm_data.val_ids)), "vocab_size": len(vocab)},
        "backend": trainer.backend,
        "recorder": {"log_every": args.log_every or 50, "save_every": args.save_every or 0}},
        vocab)


def _train_run(args, run, trainer, checkpoint, header) -> int:
    """Restore ``checkpoint`` (if any), print ``header()``, train and record into ``run``;
    returns the exit status."""
    from .rundir import RunRecorder
    from .training import NonFiniteLossError

    saved_rec = run.read_config().get("recorder", {})
    recorder = RunRecorder(
        run, log_every=args.log_every or saved_rec.get("log_every", 50),
        save_every=args.save_every if args.save_every is not None
        else saved_rec.get("save_every", 0))
    if checkpoint is not None:
        try:
            trainer.load_state_dict(checkpoint.arrays, checkpoint.meta)
        except ValueError as exc:
            raise UsageError(f"cannot resume from {checkpoint.path}: {exc}") from None
        if args.lr is not None:
            trainer.set_lr(args.lr)
        recorder.attach(trainer, checkpoint.meta)
    else:
        recorder.attach(trainer, {} if args.resume else None)

    _say(args, header())
    reason = trainer._budget_reason()
    if reason is not None:
        _say(args, f"nothing to do: the run already reached its budget ({reason}: epoch "
                   f"{trainer.epoch}, {trainer.elapsed / 60:.1f} min); pass a larger --epochs "
                   "or --minutes (or --patience) to train further")
        return EXIT_OK
    with _StopRequest() as stop:
        trainer.callbacks[:] = [recorder, stop]
        try:
            trainer.fit()
        except KeyboardInterrupt:
            if stop.before_start:
                return _interrupted_before_start(args, run)
            return _interrupted(run, trainer, recorder, aborted=stop.aborted)
        except NonFiniteLossError as exc:
            kept = (f"The last good checkpoint {run.latest_path} (step {recorder.saved_step}) "
                    "is kept" if run.has_checkpoint("latest")
                    else "No checkpoint had been saved yet")
            print(f"scanrnn train: error: training stopped: {_one_line(exc)} {kept}.",
                  file=sys.stderr, flush=True)
            return EXIT_FAILED
        except (RecursionError, MemoryError, ValueError, OSError):
            if not stop.started and not args.resume:
                run.discard_unstarted()   # it failed before a step: leave no half-made run
            raise
    _say(args, _train_summary(run, trainer))
    return EXIT_OK


def _interrupted_before_start(args, run) -> int:
    """A signal while the first step compiled: nothing new to save; a new run is removed."""
    if not args.resume and run.discard_unstarted():
        what = f"{run.path} removed (it had not trained a step)"
    else:
        what = "the run's checkpoints are as they were"
    print(f"\ninterrupted before the first step finished (while compiling); {what}",
          file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def _interrupted(run, trainer, recorder, aborted: bool) -> int:
    consistent = not aborted and trainer.global_step == recorder.last_step
    if consistent and recorder.pending(trainer) and trainer.step_in_epoch < \
            trainer.steps_per_epoch():
        try:
            trainer.validate()   # the validation this step owes, so a resume matches
        except KeyboardInterrupt:
            consistent = False
    if consistent:
        path = recorder.save_latest(trainer)
        print(f"\ninterrupted at step {trainer.global_step} (epoch {trainer.epoch + 1}); saved "
              f"{path}\ncontinue with: scanrnn train --out {shlex.quote(str(run.path))} "
              "--resume",
              file=sys.stderr, flush=True)
    else:
        kept = (f"the checkpoint of step {recorder.saved_step} is kept"
                if run.has_checkpoint("latest") else "nothing was saved")
        print(f"\naborted in the middle of step {trainer.global_step + 1}; {kept}",
              file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def _train_header(run, trainer, lm_data, vocab, corpus_path, text, resumed) -> str:
    c, m = trainer.config, trainer.model
    budget = ", ".join(f"{k} {getattr(c, k)}" for k in BUDGET_FLAGS if getattr(c, k))
    lines = [
        f"{'resuming' if resumed else 'run directory'}: {run.path}"
        + (f" from step {trainer.global_step} (epoch {trainer.epoch + 1})" if resumed else ""),
        f"corpus: {corpus_path} ({len(text):,} characters, preprocess {c.preprocess}): "
        f"{len(lm_data.train_ids):,} training / {len(lm_data.val_ids):,} validation "
        f"{c.tokens} tokens, vocabulary {len(vocab)}",
        f"model: {m.config.cell} x{m.config.layers}, hidden {m.config.hidden}, embed "
        f"{m.config.embed or 'one-hot'}, dropout {m.config.dropout:g}: {m.n_params():,} "
        f"parameters",
        f"training: {c.optimizer} lr {trainer.lr:g} ({c.schedule}), clip {c.clip:g}, batch "
        f"{c.batch_size} x {c.seq_len} ({c.sampling}), {trainer.steps_per_epoch()} steps/epoch, "
        f"budget: {budget or 'none'}, backend {trainer.backend}",
    ]
    return "\n".join(lines)


def _train_summary(run, trainer) -> str:
    from .losses import perplexity
    best = trainer.best_val_loss
    lines = [f"done ({trainer.stop_reason}): {trainer.global_step} steps, {trainer.epoch} "
             f"epochs, {trainer.elapsed:.0f} s"]
    if math.isfinite(best):
        unit = "word" if trainer.config.tokens == "word" else "char"
        kind = "validation" if trainer.val_ids is not None else "epoch training (no held-out text)"
        lines.append(f"best {kind} loss {best:.4f} nats/{unit}: perplexity "
                     f"{perplexity(best):.3f}, {best / math.log(2):.3f} bits/{unit} (step "
                     f"{trainer.best_step}) -> {run.best_path}")
    quoted = shlex.quote(str(run.path))
    lines.append(f"next: scanrnn sample {quoted}   |   scanrnn eval {quoted}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# sample, eval, info
# --------------------------------------------------------------------------------------
def _load(args):
    from .rundir import load_run
    if args.checkpoint not in ("best", "latest"):
        raise UsageError(f"--checkpoint must be 'best' or 'latest', got {args.checkpoint!r}")
    return load_run(args.run_dir, checkpoint=args.checkpoint)


def cmd_sample(args) -> int:
    from .generate import generate
    backend = _check_backend(args.backend)
    run = _load(args)
    vocab = run.vocab
    prefix = args.prefix
    if prefix is None:
        prefix = (run.train_config.sample_prefixes or ("",))[0]
    if prefix == "":
        raise UsageError("--prefix must not be empty (the model warms up on it)")
    missing = vocab.unknown(prefix)
    if missing:
        hint = ""
        if run.train_config.preprocess == "d2l":
            hint = " (this run was trained on d2l-preprocessed text: lowercase letters and spaces)"
        unit = "words" if vocab.mode == "word" else "characters"
        raise UsageError(f"--prefix has {unit} outside the run's vocabulary: "
                         f"{', '.join(repr(ch) for ch in missing)}{hint}")
    if args.top_k is not None and args.top_k > len(vocab):
        raise UsageError(f"--top-k {args.top_k} is larger than the vocabulary ({len(vocab)})")
    texts = generate(run.model, vocab, prefix, length=args.length,
                     temperature=args.temperature, top_k=args.top_k, greedy=args.greedy,
                     seed=args.seed, num=args.num, backend=backend)
    print("\n----\n".join(texts), flush=True)
    return EXIT_OK


def cmd_eval(args) -> int:
    """``scanrnn eval``: the run's model scored on text encoded with the run's vocabulary."""
    from .data import Vocab
    from .training import evaluate_text, evaluate_tokens, split_tokens, text_tokens
    backend = _check_backend(args.backend)
    run = _load(args)
    tc = run.train_config
    if args.corpus is None:
        if args.max_chars:
            raise UsageError("--max-chars needs --corpus")
        data = run.run_config.get("data", {})
        text, path = _load_text(tc.corpus, data.get("max_chars"))
        train_tokens, val_tokens = split_tokens(text_tokens(text, tc.preprocess, tc.tokens),
                                                tc.val_fraction)
        if len(val_tokens) < 2:
            raise UsageError(f"the run {run.path} has no validation text "
                             f"(val_fraction {tc.val_fraction}); pass --corpus")
        if Vocab(train_tokens, mode=tc.tokens).idx_to_token != run.vocab.idx_to_token:
            print(f"scanrnn eval: warning: {path} has changed since training (its training "
                  f"part no longer gives the run's vocabulary); scoring its last "
                  f"{tc.val_fraction:g} with the run's vocab.json", file=sys.stderr)
        result = evaluate_tokens(run.model, run.vocab, val_tokens, batch_size=args.batch_size,
                                 seq_len=args.seq_len, backend=backend)
        what = f"validation text of {path} (last {tc.val_fraction:g})"
    else:
        text, path = _load_text(args.corpus, args.max_chars)
        result = evaluate_text(run.model, run.vocab, text, preprocess=tc.preprocess,
                               batch_size=args.batch_size, seq_len=args.seq_len,
                               backend=backend)
        what = path
    print(f"run: {run.path} ({run.checkpoint} checkpoint, step {run.meta.get('global_step')})")
    print(f"text: {what}, preprocess {tc.preprocess}: {result['tokens']:,} tokens scored")
    unit = "word" if tc.tokens == "word" else "char"
    print(f"loss {result['loss']:.4f} nats/{unit}   perplexity {result['perplexity']:.3f}   "
          f"bits/{unit} {result['bits_per_char']:.3f}")
    unknown = result.get("unknown_tokens") or []
    if unknown:
        shown = ", ".join(repr(t) for t in unknown[:20])
        print(f"<unk>: {result.get('unknown', 0):,} scored tokens outside the vocabulary "
              f"({shown}{', ...' if len(unknown) > 20 else ''})")
    return EXIT_OK


def cmd_info(args) -> int:
    import importlib.util
    import platform

    import pytensor

    from . import __version__
    from .backends import backends
    from .data import CORPORA, default_cache_dir, search_paths
    report = backends()
    versions = dict(report["versions"])
    for module in ("tqdm", "matplotlib"):
        if importlib.util.find_spec(module) is None:
            versions[module] = "not installed"
        else:
            versions[module] = getattr(__import__(module), "__version__", "?")
    print(f"scanrnn {__version__} ({Path(__file__).resolve().parent})")
    print(f"python {platform.python_version()} ({sys.executable})")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"backends: {', '.join(report['installed'])} (auto = {report['default']})")
    print(f"jax devices: {', '.join(report['jax_devices']) or 'none (JAX not installed)'}")
    print(f"floatX: {report['floatX']}")
    mirror = os.environ.get("SCANRNN_DATA")
    offline = os.environ.get("SCANRNN_OFFLINE", "").strip() not in ("", "0")
    print(f"corpora (SCANRNN_DATA={mirror or '(unset)'}, downloads "
          f"{'off: SCANRNN_OFFLINE is set' if offline else 'on'}):")
    for name, corpus in CORPORA.items():
        places = search_paths(corpus.filename)
        found = next((p for p in places if p.is_file()), None)
        where = f"found at {found}" if found else f"not found; will download {corpus.url}"
        print(f"  {name:<12} {where}")
    print("  looked up in order: " + ", ".join(
        str(p.parent) for p in search_paths("x")) + ", then the download")
    print("caches:")
    print(f"  corpus downloads: {default_cache_dir()}")
    print(f"  pytensor C cache: {pytensor.config.compiledir}")
    print(f"  numba cache:      {Path(pytensor.config.base_compiledir) / 'numba'}")
    print(f"  jax cache:        {jax_cache_dir() or 'off (SCANRNN_JAX_CACHE=0)'}")
    print("  (PYTENSOR_FLAGS=base_compiledir=/path moves both pytensor caches)")
    return EXIT_OK


# --------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------
def _one_line(exc) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


# Harmless warnings of the libraries underneath (float32 JAX, PyTensor deprecations, JAX
# dropping runtime shape asserts): noise in a terminal, so the command hides them.
_QUIET_WARNINGS = (
    (UserWarning, r"Explicitly requested dtype .* is not available"),
    (UserWarning, r"Skipping Assert"),
    (FutureWarning, r"lop_overrides is deprecated"),
    (UserWarning, r"The RandomType SharedVariables"),
)


def jax_cache_dir() -> Path | None:
    """Where the command keeps JAX's persistent compilation cache (None: off).

    ``SCANRNN_JAX_CACHE=/path`` chooses the folder, ``SCANRNN_JAX_CACHE=0`` turns it off;
    by default ``$JAX_COMPILATION_CACHE_DIR`` if set, else ``<user cache>/scanrnn/jax``.
    """
    value = os.environ.get("SCANRNN_JAX_CACHE", "").strip()
    if value.lower() in ("0", "off", "no", "false"):
        return None
    if value:
        return Path(value).expanduser()
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"]).expanduser()
    from .data import default_cache_dir
    return default_cache_dir() / "jax"


def _enable_jax_cache() -> None:
    """Turn on JAX's persistent compilation cache, so a second `scanrnn sample` (or a
    resumed `train`) skips XLA compilation.  Silently skipped if JAX is not installed."""
    import importlib.util
    folder = jax_cache_dir()
    if folder is None or importlib.util.find_spec("jax") is None:
        return
    import jax
    try:
        if not jax.config.jax_compilation_cache_dir:
            jax.config.update("jax_compilation_cache_dir", str(folder))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    except (AttributeError, ValueError):  # an older JAX without these options
        pass


def main(argv=None) -> int:
    """Run the ``scanrnn`` command line; returns the exit status."""
    import warnings
    for category, pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=category)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    prog = f"scanrnn {args.command}"
    if args.command in ("train", "sample", "eval"):
        _enable_jax_cache()
    if os.environ.get("SCANRNN_DEBUG", "").strip() not in ("", "0"):
        return args.func(args)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except RecursionError:
        from .pytensor_compat import PYTENSOR_VERSION
        hint = ("; PyTensor 3.0.7 (Python 3.11) infers shapes recursively through every layer: "
                "Python 3.12+ gets PyTensor 3.3, which compiles deep models in linear time"
                if PYTENSOR_VERSION < (3, 1) else "")
        print(f"{prog}: error: the graph is too deep to compile (Python's recursion limit was "
              f"reached); use fewer --layers{hint}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except MemoryError as exc:
        print(f"{prog}: error: out of memory ({_one_line(exc) or 'MemoryError'}); try a "
              f"smaller model (--hidden, --layers), batch or --length", file=sys.stderr,
              flush=True)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
