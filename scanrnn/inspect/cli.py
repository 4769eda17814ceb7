"""``scanrnn graph``: what the compiler does to a model, from the command line.

    scanrnn graph RUN_DIR [--stage both] [--backend auto] [--format text] [--out FILE]
    scanrnn graph --model d2l:hidden=64 --backend all --format svg --out d2l.svg

:func:`register` adds the ``graph`` subcommand to an ``argparse`` subparsers object;
:func:`run_graph` runs it.  ``python -m scanrnn.inspect.cli ...`` works too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..compile import BackendError
from ..lm.rundir import RunDir
from .explainer import explain
from .render import DotNotFound
from .specs import NotARunDirError, build_spec, run_dir_spec

__all__ = ["build_parser", "main", "register", "run_graph"]

DESCRIPTION = """\
Compile a model's training step and report what the graph compiler did: node counts by
op before and after rewriting, every Scan (forward and gradient) with its inner graph and
the kinds of its inputs and outputs, what was hoisted out of the loop, the rewrites that
fired, compile and step times per backend, and the memory each scan keeps."""

EPILOG = """\
model specs (--model NAME[:key=value,...]):
  theano   the fast.ai seed's "RNN in Theano": relu, one sequence per call, one-hot
           input, softmax inside step, SGD (vocab=86, hidden=256, seq=8)
  d2l      d2l's RNN from scratch: one-hot input, tanh, N(0, 0.01) init, clip 1, SGD lr 1
           (vocab=28, hidden=512, seq=35, batch=32)
  rnn | tanh | relu | gru | lstm
           a CharLM with that cell, Adam (vocab=28, hidden=128, seq=35, batch=32, layers=1)
  keys: vocab, hidden, seq, batch, layers, embed, dropout, optimizer, lr, clip, init, seed
  e.g. --model lstm:hidden=64,layers=2,seq=20,batch=16

backends: auto (the run's backend, else the default), all, or a comma list of jax, numba,
c, python.  Numba compiles a training graph in 30-70 s the first time (then it is cached).
formats: text, json, dot (Graphviz source), svg, png (need Graphviz's dot program).

exit status: 0 ok, 1 no backend compiled the graph, 2 bad arguments or not a run directory.
"""


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the ``graph`` options to ``parser`` (a new parser when None)."""
    if parser is None:
        parser = argparse.ArgumentParser(prog="scanrnn graph", description=DESCRIPTION,
                                         epilog=EPILOG,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", nargs="?", metavar="RUN_DIR",
                        help="a run directory written by 'scanrnn train'")
    parser.add_argument("--model", metavar="SPEC",
                        help="study a model spec instead of a run directory (see below)")
    parser.add_argument("--stage", choices=("before", "after", "both"), default="both",
                        help="the graph before rewriting, after, or both (default)")
    parser.add_argument("--backend", action="append", metavar="NAME",
                        help="backend(s): auto (default), all, or jax,numba,c,python; "
                             "repeatable")
    parser.add_argument("--format", choices=("text", "json", "dot", "svg", "png"),
                        default=None, help="output format (default: from --out's suffix, "
                                           "else text)")
    parser.add_argument("--out", metavar="FILE", help="write here instead of stdout "
                                                      "(required for svg and png)")
    parser.add_argument("--jax-text", action="store_true",
                        help="include the jaxpr and lowered StableHLO of the JAX function")
    parser.add_argument("--no-run", action="store_true",
                        help="compile only; do not run or time the functions")
    kernels = parser.add_mutually_exclusive_group()
    kernels.add_argument("--kernels", action="store_true",
                         help="run every fused recurrence on a vendor RNN kernel on JAX "
                              "(default: as scanrnn.function chooses: on the CPU oneDNN for "
                              "LSTMs with H >= 512, on a GPU none)")
    kernels.add_argument("--no-kernels", action="store_true",
                         help="keep the scans on JAX (to study them, or to compare)")
    parser.set_defaults(func=run_graph)
    return parser


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``graph`` to an ``argparse`` subparsers object; returns its parser."""
    parser = subparsers.add_parser(
        "graph", help="what the graph compiler does to a model (per backend)",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return build_parser(parser)


def _error(message: str) -> int:
    print(f"scanrnn graph: error: {message}", file=sys.stderr)
    return 2


def _format(args) -> str:
    if args.format:
        return args.format
    if args.out:
        suffix = Path(args.out).suffix.lstrip(".").lower()
        suffix = {"txt": "text", "gv": "dot"}.get(suffix, suffix)
        if suffix in ("text", "json", "dot", "svg", "png"):
            return suffix
    return "text"


def run_graph(args) -> int:
    """Run ``scanrnn graph`` with parsed ``args``; returns the exit status."""
    if bool(args.run_dir) == bool(args.model):
        return _error("give either RUN_DIR or --model SPEC (one of them)")
    fmt = _format(args)
    if fmt in ("svg", "png") and not args.out:
        return _error(f"--format {fmt} writes a binary/graphics file: give --out FILE")
    backends = ",".join(args.backend) if args.backend else "auto"
    try:
        if args.model:
            target = build_spec(args.model)
        else:
            path = Path(args.run_dir)
            if not path.is_dir() or not RunDir.is_run_dir(path):
                what = "does not exist" if not path.exists() else (
                    "is not a directory" if not path.is_dir() else
                    "has no scanrnn config.json")
                raise NotARunDirError(f"{args.run_dir} is not a run directory ({what}); "
                                      "make one with 'scanrnn train' or use --model SPEC")
            target = run_dir_spec(path)
        report = explain(target, backends=backends, stage=args.stage,
                         jax_text=args.jax_text, run=not args.no_run,
                         kernels=True if args.kernels else False if args.no_kernels
                         else "auto")
    except (NotARunDirError, BackendError, ValueError, FileNotFoundError) as exc:
        return _error(str(exc).splitlines()[0])
    try:
        if args.out:
            report.save(args.out, fmt)
        else:
            data = report.render(fmt)
            sys.stdout.write(data if data.endswith("\n") else data + "\n")
    except DotNotFound as exc:
        return _error(str(exc))
    failed = [r for r in report.runs if not r.ok]
    for r in failed:
        print(f"scanrnn graph: {r.backend} failed: {r.error}", file=sys.stderr)
    if args.stage != "before" and report.runs and len(failed) == len(report.runs):
        return 1
    return 0


def main(argv=None) -> int:
    """``python -m scanrnn.inspect.cli``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_graph(args)


if __name__ == "__main__":
    sys.exit(main())
