"""``scanrnn train``: a new run or ``--resume``, and what may change on a resume.

Exit status: 0 success; 1 training stopped by a NaN / infinite loss (the last good
checkpoint is kept) or, in a multi-process run, because another process stopped; 2 bad
input; 130 interrupted by Ctrl-C or SIGTERM (after saving a checkpoint when a step had
finished).

``--devices N|all`` trains data parallel (:mod:`scanrnn.lm.devices`); ``--coordinator``,
``--num-processes`` and ``--process-id`` join several processes (:mod:`scanrnn.lm.processes`).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import shlex
import sys
from pathlib import Path

from ..cli_support import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    check_backend,
    load_text,
    one_line,
    say,
)
from ..losses import perplexity
from .config import AUTO, LMConfig, TrainConfig
from ..data import CORPORA
from .data import phrase_from, prepare_data
from .devices import for_command as devices_for_command
from .model import CharLM
from .recorder import RunRecorder
from .run import parse_configs
from .rundir import RunDir
from .schedules import training_seconds
from .sizing import Choice, choose, measure_pace
from .step import NonFiniteLossError
from .interrupt import TrainingInterrupted
from .processes import FollowerRun, join, peer_lost
from .trainer import Trainer

__all__ = ["BUDGET_FLAGS", "FIXED_ON_RESUME", "MODEL_FLAGS", "TRAIN_FLAGS", "cmd_train"]

DEFAULT_RUNS = "runs"

# flag -> (config, field) for `train`; None config = CLI-only
MODEL_FLAGS = {"cell": "cell", "layers": "layers", "hidden": "hidden", "embed": "embed",
               "dropout": "dropout", "embed_dropout": "embed_dropout",
               "weight_drop": "weight_drop", "init": "init",
               "init_scale": "init_scale"}
TRAIN_FLAGS = ("corpus", "preprocess", "tokens", "val_fraction", "seq_len", "batch_size",
               "sampling", "epochs", "minutes", "max_tokens", "optimizer", "lr", "clip",
               "weight_decay", "ema", "schedule", "halve_every", "warmup", "min_lr", "backend",
               "devices", "eval_every", "eval_minutes", "patience",
               "sample_every", "sample_length", "sample_temperature")
# what a resumed run may not change (data, model, compiled graph, batches)
FIXED_ON_RESUME = ("corpus", "preprocess", "tokens", "val_fraction", "max_chars", "seq_len",
                   "batch_size", "sampling", "optimizer", "clip", "ema", "seed", *MODEL_FLAGS)
BUDGET_FLAGS = ("epochs", "minutes", "max_tokens")


def _explicit(args, names) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _newest_run(root: Path) -> Path:
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


def _sample_prefixes(args, corpus, vocab, lm_data):
    """Explicit --sample-prefix values, else the registry corpus's own prefix (d2l's "time
    traveller") when the vocabulary can encode it, else a phrase of the training text."""
    if args.sample_prefix:
        return tuple(args.sample_prefix)
    known = CORPORA.get(corpus)
    if known is not None and known.sample_prefix and not vocab.unknown(known.sample_prefix):
        return (known.sample_prefix,)
    middle = lm_data.train_ids[len(lm_data.train_ids) // 2:][:2000]
    return (phrase_from(vocab.decode(middle), vocab.mode),)



def _open_to_resume(args, writer: bool = True):
    """The run to resume, opened and locked (another process training it: RunDirError);
    for a process other than 0, opened to read only (:class:`FollowerRun`)."""
    path = Path(args.out) if args.out else _newest_run(Path(DEFAULT_RUNS))
    run = RunDir.open(path) if writer else FollowerRun.open(path)
    run.lock()   # before anything is read or cleaned up: nobody else writes it from now on
    return run


def _setup_resume(args, run, train_over):
    """A locked run's saved configuration with the allowed overrides, data, checkpoint."""
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
    text, corpus_path = load_text(train_config.corpus, data.get("max_chars"))
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
    seed = args.seed if args.seed is not None else TrainConfig().seed
    fields = {**train_over, "seed": seed}   # the corpus's recipe fills the rest (TrainConfig)
    fields.setdefault("sample_every", 1)
    if any(k in train_over for k in BUDGET_FLAGS):   # --epochs N alone: no minutes budget
        for k in BUDGET_FLAGS:
            fields[k] = train_over.get(k)
    train_config = TrainConfig(**fields)
    text, corpus_path = load_text(train_config.corpus, args.max_chars)
    lm_data = prepare_data(train_config, text)
    vocab = lm_data.vocab
    prefixes = _sample_prefixes(args, train_config.corpus, vocab, lm_data)
    train_config = dataclasses.replace(train_config, sample_prefixes=prefixes)
    lm_config = LMConfig(vocab_size=len(vocab), seed=seed, **model_over)
    return train_config, lm_config, lm_data, vocab, text, corpus_path


def cmd_train(args) -> int:
    """``scanrnn train``: a new run or ``--resume``; the run directory stays locked
    (:meth:`scanrnn.rundir.RunDir.lock`) until the command ends.  With several processes
    (``--coordinator``...) they join first; process 0 alone writes and prints."""
    index = join(args)   # before any JAX work
    if index:   # process 0 alone prints
        args.quiet, args.no_progress, args.silent = True, True, True
    try:
        return _cmd_train(args, writer=not index, joined=index is not None)
    except Exception as exc:
        if index is None or not peer_lost(exc):
            raise
        detail = one_line(exc)
        if not detail.startswith("another process"):
            detail = f"another process of this run stopped: {detail}"
        print(f"scanrnn train: error: {detail}", file=sys.stderr, flush=True)
        return EXIT_FAILED


def _cmd_train(args, writer: bool, joined: bool = False) -> int:
    """:func:`cmd_train` in this process; ``writer``: it writes the run (process 0);
    ``joined``: one of several processes."""
    backend = check_backend(args.backend) if args.backend else None
    model_over = {MODEL_FLAGS[k]: v for k, v in _explicit(args, MODEL_FLAGS).items()}
    if args.preprocess == "auto":          # the default: as if not given
        args.preprocess = None
    train_over = _explicit(args, TRAIN_FLAGS)
    if "eval_every" in train_over and "eval_minutes" not in train_over:
        train_over["eval_minutes"] = None   # --eval-every N: validate on steps, not time
    if args.patience is not None:
        train_over["patience"] = args.patience or None
    if args.steps is not None:     # a budget: made N x batch x seq_len tokens below
        if args.max_tokens is not None:
            raise UsageError("--steps and --max-tokens both set a token budget; give one")
        train_over["max_tokens"] = args.steps
    run = None
    try:
        if args.resume:
            run = _open_to_resume(args, writer)
            train_config, lm_config, lm_data, vocab, text, corpus_path, checkpoint = \
                _setup_resume(args, run, train_over)
        else:
            if args.out and writer:      # an existing run is refused before any work
                RunDir.check_new(args.out)
            train_config, lm_config, lm_data, vocab, text, corpus_path = \
                _setup_new(args, train_over, model_over)
            checkpoint = None
        if args.steps is not None:
            train_config = dataclasses.replace(
                train_config, max_tokens=args.steps * train_config.batch_size *
                train_config.seq_len)
        recorded_train = train_config
        # the run directory keeps the best weights in best.npz: the model keeps its last ones
        train_config = dataclasses.replace(train_config,
                                           progress=not (args.no_progress or args.quiet),
                                           verbose=not args.quiet, restore_best=False,
                                           log_every=1, backend=backend or train_config.backend)
        train_config, auto_devices = devices_for_command(
            train_config, check_backend(train_config.backend))
        # build the trainer before creating the run directory: bad sizes fail with nothing
        # on disk
        trainer = Trainer(CharLM(lm_config), train_config, lm_data.train_ids,
                          lm_data.val_ids, vocab)
        model_note = None
        if run is None and not joined and _model_is_open(model_over, train_config):
            trainer, model_note = _model_from_pace(trainer, lm_data, vocab)
        if run is None:
            run = _create_run(args, trainer, lm_data, vocab, corpus_path, writer,
                              recorded_train.devices)
        else:   # the flags this resume changed are recorded for the next one
            run.record_train_config(recorded_train.to_dict())
        return _train_run(args, run, trainer, checkpoint, lambda: _train_header(
            run, trainer, lm_data, vocab, corpus_path, text, args.resume, auto_devices,
            model_note))
    finally:
        if run is not None:
            run.unlock()


def _model_is_open(model_over: dict, train_config) -> bool:
    """Whether a new run's model follows its pace (:mod:`scanrnn.lm.sizing`): the default
    architecture (no --cell, --layers, --hidden, --embed or --weight-drop), a --minutes
    budget alone, and a corpus without a tuned recipe of its own (timemachine keeps its
    model)."""
    known = CORPORA.get(train_config.corpus)
    return (not {"cell", "layers", "hidden", "embed", "weight_drop"} & set(model_over)
            and train_config.minutes is not None and train_config.epochs is None
            and train_config.max_tokens is None
            and not (known is not None and known.train_defaults))


def _model_from_pace(trainer, lm_data, vocab):
    """Time the default model's step (:func:`~scanrnn.lm.sizing.measure_pace`) and keep it,
    or build the model :func:`~scanrnn.lm.sizing.choose` picks for the tokens the budget
    buys; the probe's seconds count in the budget.  Returns ``(trainer, note)``."""
    lm_config, c = trainer.model.config, trainer.config
    pace = measure_pace(trainer)
    tokens = pace.tokens_per_second * training_seconds(c.minutes, None)
    passes = tokens / len(lm_data.train_ids)
    default = Choice(lm_config.hidden, lm_config.weight_drop)
    chosen = choose(tokens, len(lm_data.train_ids), default)
    budget = (f"{tokens / 1e6:.3g}M tokens in the budget at hidden {default.hidden} "
              f"({pace.tokens_per_second:,.0f} tokens/s), {passes:.3g} passes over the "
              "training text")
    if chosen == default:
        trainer.count_probe(pace.seconds, compile_seconds=pace.compile_seconds)
        return trainer, f"kept for {budget}"
    lm_config = dataclasses.replace(lm_config, hidden=chosen.hidden,
                                    weight_drop=chosen.weight_drop)
    trainer = Trainer(CharLM(lm_config), c, lm_data.train_ids, lm_data.val_ids, vocab)
    trainer.count_probe(pace.seconds)   # the probe compiled the default model
    return trainer, (f"chosen for {budget}; --hidden {default.hidden} --weight-drop "
                     f"{default.weight_drop:g} for the default")


def _create_run(args, trainer, lm_data, vocab, corpus_path, writer: bool = True,
                devices=None):
    """The new run directory of ``trainer`` (created locked); only in memory for a
    process other than 0 (:class:`FollowerRun`).  ``devices``: the ``--devices`` to record
    (not the per-core split chosen on this machine, which a resume chooses anew)."""
    train_config = dataclasses.replace(trainer.config, devices=devices)
    lm_config = trainer.model.config
    out = Path(args.out) if args.out else _default_out(train_config.corpus, lm_config.cell)
    create = RunDir.create if writer else \
        (lambda path, config, vocab: FollowerRun(path, config))
    return create(out, {
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

    say(args, header())
    reason = trainer.budget_reason()
    if reason is not None:
        say(args, f"nothing to do: the run already reached its budget ({reason}: epoch "
                  f"{trainer.epoch}, {trainer.elapsed / 60:.1f} min); pass a larger --epochs "
                  "or --minutes (or --patience) to train further", summary=True)
        return EXIT_OK
    trainer.callbacks[:] = [recorder]
    trainer.interrupt_message = "stopping after this step and saving (press Ctrl-C again to abort)"
    first_step = trainer.global_step
    try:
        trainer.fit()
    except TrainingInterrupted as exc:
        if exc.before_start:
            return _interrupted_before_start(args, run)
        return _interrupted(run, trainer, recorder, aborted=exc.aborted)
    except NonFiniteLossError as exc:
        return _stopped_by_nan(exc, run, recorder, new=not args.resume and
                               trainer.global_step == first_step)
    except (RecursionError, MemoryError, ValueError, OSError):
        if trainer.global_step == first_step and not args.resume:
            run.discard_unstarted()   # it failed before a step: leave no half-made run
        raise
    say(args, _train_summary(run, trainer), summary=True)
    return EXIT_OK


def _stopped_by_nan(exc, run, recorder, new: bool) -> int:
    """A NaN / inf loss stopped training: the last good checkpoint is kept; a new run that
    had not trained a step (``new``) is removed, so the same --out can be used again."""
    if run.has_checkpoint("latest"):
        kept = f"The last good checkpoint {run.latest_path} (step {recorder.saved_step}) is kept"
    elif new and run.discard_unstarted():
        kept = f"{run.path} was removed (it had not trained a step)"
    else:
        kept = "No checkpoint had been saved yet"
    print(f"scanrnn train: error: training stopped: {one_line(exc)} {kept}.", file=sys.stderr,
          flush=True)
    return EXIT_FAILED


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
    if consistent and trainer.owes_bookkeeping() and trainer.step_in_epoch < \
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


def _train_header(run, trainer, lm_data, vocab, corpus_path, text, resumed,
                  auto_devices=False, model_note=None) -> str:
    c, m = trainer.config, trainer.model
    budget = ", ".join(f"{k} {getattr(c, k)}" for k in BUDGET_FLAGS if getattr(c, k))
    lines = [
        f"{'resuming' if resumed else 'run directory'}: {run.path}"
        + (f" from step {trainer.global_step} (epoch {trainer.epoch + 1})" if resumed else ""),
        f"corpus: {corpus_path} ({len(text):,} characters, preprocess {c.preprocess}): "
        f"{len(lm_data.train_ids):,} training / {len(lm_data.val_ids):,} validation "
        f"{c.tokens} tokens, vocabulary {len(vocab)}",
        f"model: {m.config.cell} x{m.config.layers}, hidden {m.config.hidden}, embed "
        f"{m.config.embed or 'one-hot'}, dropout {m.config.dropout:g}"
        + "".join(f", {label} {getattr(m.config, name):g}" for name, label in
                  (("embed_dropout", "embed dropout"), ("weight_drop", "weight drop"))
                  if getattr(m.config, name))
        + f": {m.n_params():,} parameters" + (f" ({model_note})" if model_note else ""),
        f"training: {c.optimizer} lr {trainer.lr:g} ({c.schedule}), clip {c.clip:g}"
        + _decay_label(c.weight_decay) + (f", weight averages (ema {c.ema:g})" if c.ema else "")
        + ", batch "
        f"{c.batch_size} x {c.seq_len} ({c.sampling}), {trainer.steps_per_epoch()} steps/epoch, "
        f"budget: {budget or 'none'}, backend {trainer.backend}"
        + (f", {trainer.devices.describe()}" if trainer.devices is not None else "")
        + (" (one per core, the default on a CPU; --devices 1 for one)" if auto_devices
           else ""),
    ]
    return "\n".join(lines)


def _decay_label(decay) -> str:
    if decay == AUTO:
        return ", weight decay auto (by the passes over the text)"
    return f", weight decay {decay:g}" if decay else ""


def _train_summary(run, trainer) -> str:
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


