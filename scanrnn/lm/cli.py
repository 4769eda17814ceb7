"""The language-model subcommands' arguments: ``scanrnn train``, ``sample`` and ``eval``.

:func:`register` adds them to the ``scanrnn`` parser (:mod:`scanrnn.cli`); what each runs
is in :mod:`scanrnn.lm.train_command` and :mod:`scanrnn.lm.commands`.
"""

from __future__ import annotations

import dataclasses

from ..cells import CELL_KINDS
from ..cli_support import (
    HelpFormatter,
    fraction,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    seed_int,
)
from ..optim import OPTIMIZERS
from .commands import cmd_eval, cmd_sample
from .config import AUTO, GENERAL_RECIPE, SAMPLINGS, SCHEDULES, LMConfig, TrainConfig, recipe_for
from .train_command import DEFAULT_RUNS, cmd_train

__all__ = ["register"]


def register(sub) -> None:
    """Add ``train``, ``sample`` and ``eval`` to an ``argparse`` subparsers object."""
    _train_parser(sub)
    _sample_parser(sub)
    _eval_parser(sub)


def _defaults():
    lm = {f.name: f.default for f in dataclasses.fields(LMConfig)
          if f.default is not dataclasses.MISSING}
    return lm, TrainConfig()


def _train_parser(sub):
    lm, tc = _defaults()
    p = sub.add_parser(
        "train", formatter_class=HelpFormatter, help="train a character language model",
        description="Train a character-level language model and write a run directory\n"
                    "(config.json, vocab.json, latest.npz, best.npz, metrics.csv, "
                    "samples.txt, loss.png).\nWith no flags: the default 2-layer LSTM on "
                    f"the Time Machine for {tc.minutes:g} minutes.",
        epilog="Ctrl-C saves latest.npz and exits (status 130); continue with --resume.\n"
               "A NaN/inf loss stops training (status 1) and keeps the last good checkpoint.")
    _data_flags(p, tc)
    _model_flags(p, lm)
    _batch_and_budget_flags(p, tc)
    _optimisation_flags(p, tc)
    _run_flags(p, tc)
    _device_flags(p)
    p.set_defaults(func=cmd_train)
    return p


def _data_flags(p, tc) -> None:
    d = "(default: %s)"
    g = p.add_argument_group("data")
    g.add_argument("--corpus", metavar="NAME|PATH",
                   help=f"registry name (timemachine, nietzsche) or a UTF-8 text file "
                        f"{d % tc.corpus}")
    g.add_argument("--max-chars", type=positive_int, metavar="N",
                   help="use only the first N characters of the text (default: all)")
    g.add_argument("--preprocess", choices=("auto", "d2l", "none"),
                   help="d2l: letters and spaces, lowercased; none: the raw text, every "
                        "character kept; auto: d2l for timemachine, none for any other corpus "
                        "(default: auto)")
    g.add_argument("--tokens", choices=("char", "word"), help=f"token unit {d % tc.tokens}")
    g.add_argument("--val-fraction", type=fraction, metavar="F",
                   help=f"the last fraction F of the text is held out {d % tc.val_fraction}")


def _model_flags(p, lm) -> None:
    d = "(default: %s)"
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=CELL_KINDS,
                   help=f"recurrent cell (rnn = tanh) {d % lm['cell']}")
    g.add_argument("--layers", type=positive_int, metavar="N",
                   help=f"stacked layers {d % lm['layers']}")
    g.add_argument("--hidden", type=positive_int, metavar="N",
                   help=f"hidden units per layer {d % lm['hidden']}; on a --minutes budget "
                        "and a text without a tuned recipe, the default model's width and "
                        "--weight-drop follow the tokens the budget buys, timed in its first "
                        "3 s (the header says what was chosen)")
    g.add_argument("--embed", type=nonnegative_int, metavar="N",
                   help=f"embedding size, 0 = one-hot inputs {d % lm['embed']}")
    g.add_argument("--dropout", type=fraction, metavar="F",
                   help=f"dropout between layers and before the output {d % lm['dropout']}")
    g.add_argument("--embed-dropout", type=fraction, metavar="F",
                   help=f"dropout on the embedding {d % lm['embed_dropout']}")
    g.add_argument("--weight-drop", type=fraction, metavar="F",
                   help=f"DropConnect on the recurrent weights, one mask per step "
                        f"{d % lm['weight_drop']}")
    g.add_argument("--init", choices=("default", "normal"),
                   help=f"default: embedding N(0, 1), Glorot/orthogonal; normal: N(0, init-scale) "
                        f"{d % lm['init']}")
    g.add_argument("--init-scale", type=positive_float, metavar="F",
                   help=f"std of --init normal {d % lm['init_scale']}")


def _decay_arg(text: str):
    return AUTO if text.strip().lower() == AUTO else nonnegative_float(text)


def _recipe_default(name: str) -> str:
    """'(default: X)' for a recipe field, with the Time Machine's own value where it differs."""
    timemachine = recipe_for("timemachine")
    general, tuned = GENERAL_RECIPE[name], timemachine[name]
    if tuned == general:
        return f"(default: {general})"
    if name == "eval_minutes" and tuned is None:
        return f"(default: {general}; on timemachine every {timemachine['eval_every']} steps)"
    return f"(default: {general}; {tuned} on timemachine)"


def _batch_and_budget_flags(p, tc) -> None:
    d = "(default: %s)"
    g = p.add_argument_group("batches and budget")
    g.add_argument("--seq-len", type=positive_int, metavar="N",
                   help=f"time steps per batch (BPTT length) {d % tc.seq_len}")
    g.add_argument("--batch-size", type=positive_int, metavar="N",
                   help=f"sequences per batch {d % tc.batch_size}")
    g.add_argument("--sampling", choices=SAMPLINGS,
                   help=f"random: d2l random sampling (state reset); sequential / rows: "
                        f"state carried across batches {_recipe_default('sampling')}")
    budget = g.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=positive_int, metavar="N",
                        help="train N epochs in total (counting epochs done before --resume)"
                             " (default: no epoch limit, --minutes applies)")
    budget.add_argument("--minutes", type=positive_float, metavar="M",
                        help="train for M minutes of wall clock in total, compilation "
                             f"included; ignored when --epochs is given {d % tc.minutes}")
    g.add_argument("--max-tokens", type=positive_int, metavar="N",
                   help=f"stop after N training tokens {d % tc.max_tokens}")
    g.add_argument("--steps", type=positive_int, metavar="N",
                   help="stop after N training steps in total: --max-tokens N x batch size x "
                        "seq len (default: none)")
    g.add_argument("--patience", type=nonnegative_int, metavar="N",
                   help=f"early stopping after N validations without improvement, 0 = never "
                        f"{d % tc.patience}")


def _optimisation_flags(p, tc) -> None:
    d = "(default: %s)"
    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=tuple(OPTIMIZERS),
                   help=f"update rule {d % tc.optimizer}")
    g.add_argument("--lr", type=positive_float, metavar="F",
                   help=f"learning rate {_recipe_default('lr')}")
    g.add_argument("--clip", type=nonnegative_float, metavar="F",
                   help=f"clip the global gradient norm at F, 0 = off {d % tc.clip}")
    g.add_argument("--weight-decay", type=_decay_arg, metavar="F|auto",
                   help="decoupled weight decay of --optimizer adam (AdamW): each step "
                        "shrinks every weight by lr x F of itself; auto: none for a run that "
                        "passes over its text once, 0.1 from five passes on "
                        f"{_recipe_default('weight_decay')}")
    g.add_argument("--ema", type=fraction, metavar="F",
                   help="validate, sample and keep as best the moving averages of the weights, "
                        "each step a decay F of the old average, 0 = off "
                        f"{_recipe_default('ema')}")
    g.add_argument("--schedule", choices=SCHEDULES,
                   help=f"learning-rate schedule {_recipe_default('schedule')}")
    g.add_argument("--halve-every", type=positive_int, metavar="N",
                   help=f"epochs between halvings for --schedule halve {d % tc.halve_every}")
    g.add_argument("--warmup", type=fraction, metavar="F",
                   help=f"first fraction of the run that ramps the learning rate up "
                        f"(--schedule cosine) {d % tc.warmup}")
    g.add_argument("--min-lr", type=nonnegative_float, metavar="F",
                   help=f"final learning rate of --schedule cosine {d % tc.min_lr}")


def _run_flags(p, tc) -> None:
    d = "(default: %s)"
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
    g.add_argument("--eval-minutes", type=positive_float, metavar="M",
                   help="validate (and save latest.npz) every M minutes, or less often "
                        "when one validation would take over 5%% of that "
                        f"{_recipe_default('eval_minutes')}")
    g.add_argument("--eval-every", type=nonnegative_int, metavar="N",
                   help="validate every N steps and at epoch ends instead, 0 = at epoch ends "
                        "only (default: every --eval-minutes)")
    g.add_argument("--save-every", type=nonnegative_int, metavar="N",
                   help="also save latest.npz every N steps, 0 = only after validations, "
                        "epochs and Ctrl-C (default: 0)")
    g.add_argument("--log-every", type=positive_int, metavar="N",
                   help="steps per row of metrics.csv (default: 50)")
    g.add_argument("--sample-every", type=nonnegative_int, metavar="N",
                   help="print a sample every N epochs, 0 = never (default: 1)")
    g.add_argument("--sample-prefix", action="append", metavar="TEXT",
                   help="prefix of the epoch samples; repeat for several "
                        "(default: 'time traveller' on timemachine, else the first words of a "
                        "sentence in the middle of the training text)")
    g.add_argument("--sample-length", type=positive_int, metavar="N",
                   help=f"characters per epoch sample {d % tc.sample_length}")
    g.add_argument("--sample-temperature", type=positive_float, metavar="F",
                   help=f"temperature of the epoch samples {d % tc.sample_temperature}")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--quiet", action="store_true", help="print only errors and the summary")


def devices_arg(text: str):
    """``--devices``: a positive integer or ``all``."""
    return "all" if text.strip().lower() == "all" else positive_int(text)


def _device_flags(p) -> None:
    g = p.add_argument_group(
        "devices and processes",
        "Data parallel: the batch is split over the devices (--batch-size must be a multiple "
        "of their number).\nSeveral processes (one per host, or several on one machine): "
        "start the same command in each,\nwith its --process-id; each feeds its own rows of "
        "the batch and process 0 writes the run.")
    g.add_argument("--devices", type=devices_arg, metavar="N|all",
                   help="train data parallel on the first N devices JAX sees, or all of them; "
                        "on the CPU, N makes N host devices (default: on a CPU with several "
                        "cores, one host device per core, up to 8 and at least 4 batch rows "
                        "each; else one device; with several processes: all; a --resume may "
                        "change it)")
    g.add_argument("--coordinator", metavar="HOST:PORT",
                   help="address of process 0, to join several processes "
                        "(default: $SCANRNN_COORDINATOR)")
    g.add_argument("--num-processes", type=positive_int, metavar="N",
                   help="how many processes train this run (default: $SCANRNN_NUM_PROCESSES)")
    g.add_argument("--process-id", type=nonnegative_int, metavar="I",
                   help="this process's index, 0..N-1; 0 writes the run directory "
                        "(default: $SCANRNN_PROCESS_ID)")


def _sample_parser(sub):
    p = sub.add_parser(
        "sample", formatter_class=HelpFormatter, help="generate text from a trained run",
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
        "eval", formatter_class=HelpFormatter,
        help="perplexity and bits per char of a run on a text",
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
    p.add_argument("--batch-size", type=positive_int, metavar="N",
                   help="parallel streams the text is read as (default: the run's validation "
                        "setting)")
    p.add_argument("--seq-len", type=positive_int, metavar="N",
                   help="steps per compiled chunk, state carried across chunks (default: the "
                        "run's validation setting)")
    p.add_argument("--backend", default="auto", metavar="NAME",
                   help="auto, jax, numba, c or python (default: auto)")
    p.set_defaults(func=cmd_eval)
    return p
