"""The ``scanrnn`` command: ``train``, ``sample``, ``eval`` (:mod:`scanrnn.lm.cli`),
``graph`` (:mod:`scanrnn.inspect.cli`) and ``info``.

Exit status: 0 success; 1 training stopped by a NaN / infinite loss (the last good
checkpoint is kept); 2 bad input (one line on stderr, no traceback); 130 interrupted by
Ctrl-C (after saving a checkpoint).  ``SCANRNN_DEBUG=1`` shows tracebacks instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import threading
from pathlib import Path

import pytensor

from ._version import __version__
from .compile import backends
from .cli_support import (  # noqa: F401  (UsageError and the exit codes: public here too)
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    HelpFormatter,
    Parser,
    UsageError,
    one_line,
)

__all__ = ["build_parser", "jax_cache_dir", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``scanrnn`` argument parser (sub-commands train, sample, eval, info, graph)."""
    from .inspect import cli as inspect_cli   # here: main() catches a Ctrl-C while importing
    from .lm import cli as lm_cli
    parser = Parser(
        prog="scanrnn", formatter_class=HelpFormatter,
        description="Theano-style recurrent networks on PyTensor: train character language "
                    "models, sample from them, evaluate them.",
        epilog="Start with `scanrnn train`, then `scanrnn sample runs/<run>`.\n"
               "`scanrnn COMMAND --help` describes each command's flags and defaults.")
    parser.add_argument("--version", action="version", version=f"scanrnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    lm_cli.register(sub)
    _info_parser(sub)
    inspect_cli.register(sub)
    return parser


def _info_parser(sub):
    p = sub.add_parser(
        "info", formatter_class=HelpFormatter, help="versions, backends, devices, data locations",
        description="Print the versions, installed backends, the devices JAX sees, and where "
                    "corpora and compilation caches are looked up.")
    p.set_defaults(func=cmd_info)
    return p



def cmd_info(args) -> int:
    """``scanrnn info``: versions, backends, devices, data and cache locations."""
    import importlib.metadata

    from .data import CORPORA, default_cache_dir, search_paths
    report = backends()
    versions = dict(report["versions"])
    for module in ("tqdm", "matplotlib"):     # read from the metadata: importing is slow
        try:
            versions[module] = importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            versions[module] = "not installed"
    print(f"scanrnn {__version__} ({Path(__file__).resolve().parent})")
    print(f"python {platform.python_version()} ({sys.executable})")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"backends: {', '.join(report['installed'])} (auto = {report['default']})")
    print(f"jax devices: {', '.join(report['jax_devices']) or 'none (JAX not installed)'}")
    print(f"floatX: {report['floatX']}")
    print("vendor kernels: " + _kernel_line(report.get("kernels") or {}))
    print(f"host memory (malloc): {report['malloc']['reason']}")
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
    print(f"  pytensor C cache: {_pytensor_cache_dir('compiledir')}")
    print(f"  numba cache:      {_pytensor_cache_dir('base_compiledir', 'numba')}")
    print(f"  jax cache:        {jax_cache_dir() or 'off (SCANRNN_JAX_CACHE=0)'}")
    print("  (PYTENSOR_FLAGS=base_compiledir=/path moves both pytensor caches)")
    return EXIT_OK



def _kernel_line(kernels: dict) -> str:
    if not kernels.get("active"):
        return f"none ({kernels.get('reason') or 'unknown'}): recurrences run as fused scans"
    names = ", ".join(kernels["active"])
    if kernels.get("default") == "large LSTMs":
        return (f"{names} built; by default only LSTMs with H >= 512 use them here (the fused "
                "scan measured as fast or faster below that on the CPU); kernels=True or "
                "SCANRNN_KERNELS=1 for every recurrence, kernels=False or SCANRNN_KERNELS=0 for "
                "none")
    if kernels.get("default"):
        return f"{names} (used by default; scanrnn.function(..., kernels=False) keeps the scans)"
    from .kernels.build import env_setting
    why = ("SCANRNN_KERNELS=0" if env_setting() is False
           else "on a GPU the fused scan measured faster")
    return f"{names} available, not used by default ({why}); kernels=True turns them on"


def _pytensor_cache_dir(setting: str, sub: str = "") -> str:
    """A PyTensor cache folder, or why there is none (PyTensor creates it when read, and
    raises when it cannot: a read-only home)."""
    try:
        return str(Path(getattr(pytensor.config, setting)) / sub)
    except Exception as exc:  # PyTensor raises ValueError or OSError, depending on the case
        return (f"unavailable ({one_line(exc)}); set PYTENSOR_FLAGS=base_compiledir=/a/"
                f"writable/folder")


# --------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------
# Harmless warnings of the libraries underneath (float32 JAX, PyTensor deprecations, JAX
# dropping runtime shape asserts): noise in a terminal, so the command hides them.
_QUIET_WARNINGS = (
    (UserWarning, r"Explicitly requested dtype .* is not available"),
    (UserWarning, r"Skipping Assert"),
    (FutureWarning, r"lop_overrides is deprecated"),
    (UserWarning, r"The RandomType SharedVariables"),
    # JAX's persistent cache (the commands') losing a race with another process: the
    # function still compiles, only the cache entry is skipped
    (UserWarning, r"Error (writing|reading) persistent compilation cache entry"),
)


JAX_CACHE_MAX_BYTES = 1 << 30   # JAX's compilation cache of the commands: 1 GiB at most


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
    """Import JAX, holding Ctrl-C back meanwhile (one landing inside jaxlib's C++ import
    aborts the process), and turn on its persistent compilation cache, so a second
    `scanrnn sample` (or a resumed `train`) skips XLA compilation.  Silently skipped if
    JAX is not installed."""
    import importlib.util
    if importlib.util.find_spec("jax") is None:
        return
    from .lm.interrupt import deferred_interrupts
    with deferred_interrupts():
        import jax
    folder = jax_cache_dir()
    if folder is None:
        return
    try:
        if not jax.config.jax_compilation_cache_dir:
            jax.config.update("jax_compilation_cache_dir", str(folder))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
            # bounded, least recently used first out; JAX then reads and writes under a file
            # lock (filelock comes with PyTensor), so parallel processes share it safely
            if (jax.config.jax_compilation_cache_max_size == -1
                    and importlib.util.find_spec("filelock") is not None):
                jax.config.update("jax_compilation_cache_max_size", JAX_CACHE_MAX_BYTES)
    except (AttributeError, ValueError):  # an older JAX without these options
        pass


COMMANDS = ("train", "sample", "eval", "info", "graph")


def main(argv=None) -> int:
    """Run the ``scanrnn`` command line; returns the exit status.

    Everything past the package's own import (the libraries' imports included) runs
    inside the handlers below, so a Ctrl-C at any moment is ``interrupted`` (status 130),
    never a traceback; after it, further Ctrl-Cs are ignored while the process exits.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((str(a) for a in argv if not str(a).startswith("-")), None)
    prog = f"scanrnn {first}" if first in COMMANDS else "scanrnn"
    if os.environ.get("SCANRNN_DEBUG", "").strip() not in ("", "0"):
        return _run(argv)
    interrupt = restore = status = None
    try:
        from .lm import interrupt
        restore = interrupt.catch_interrupts()
        status = _run(argv)
        if status != EXIT_INTERRUPTED:
            interrupt.raise_if_interrupted()   # a Ctrl-C whose exception Python dropped
    except KeyboardInterrupt:
        _ignore_interrupts(interrupt)   # first: a second Ctrl-C must not cut this short
        status = EXIT_INTERRUPTED
        print(f"\n{prog}: interrupted", file=sys.stderr, flush=True)
    except (ValueError, OSError, RecursionError, MemoryError) as exc:
        status = _error(prog, exc)
    finally:
        if status == EXIT_INTERRUPTED:
            _ignore_interrupts(interrupt)   # SIGINT stays ignored: the process exits
        if restore is not None:   # an in-process call leaves the rest as it found it
            restore()
            interrupt.forget_interrupts()
    return status


def _ignore_interrupts(interrupt) -> None:
    """Ignore further Ctrl-Cs (``interrupt``: :mod:`scanrnn.lm.interrupt`, None when a
    Ctrl-C stopped its import: SIGINT then still has Python's default handler)."""
    if interrupt is not None:
        interrupt.ignore_interrupts()
    elif (threading.current_thread() is threading.main_thread()
          and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(argv) -> int:
    """Parse ``argv`` and run its command."""
    import warnings
    for category, pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=category)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command in ("train", "sample", "eval"):
        _enable_jax_cache()
    return args.func(args)


def _error(prog: str, exc: BaseException) -> int:
    """Print ``exc`` as the command's one-line error; returns the exit status."""
    if isinstance(exc, RecursionError):
        from .pytensor_compat import PYTENSOR_VERSION
        hint = ("; PyTensor 3.0.7 (Python 3.11) infers shapes recursively through every layer: "
                "Python 3.12+ gets PyTensor 3.3, which compiles deep models in linear time"
                if PYTENSOR_VERSION < (3, 1) else "")
        text = ("the graph is too deep to compile (Python's recursion limit was reached); "
                f"use fewer --layers{hint}")
    elif isinstance(exc, MemoryError):
        text = (f"out of memory ({one_line(exc) or 'MemoryError'}); try a smaller model "
                "(--hidden, --layers), batch or --length")
    else:
        hint = ("; set PYTENSOR_FLAGS=base_compiledir=/a/writable/folder"
                if "compiledir" in str(exc) else "")
        text = f"{one_line(exc)}{hint}"
    print(f"{prog}: error: {text}", file=sys.stderr, flush=True)
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
