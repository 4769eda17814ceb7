"""What every ``scanrnn`` subcommand shares: exit codes, one-line argument errors,
argument types, and small helpers. The commands themselves live with what they run
(:mod:`scanrnn.lm.cli`, :mod:`scanrnn.inspect.cli`); :mod:`scanrnn.cli` assembles them."""

from __future__ import annotations

import argparse
import math

from .compile import resolve_backend

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(ValueError):
    """Bad command-line input detected by the CLI itself."""


def one_line(exc) -> str:
    """An exception's message on one line (its type's name when it has none)."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


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


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=30, width=100)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def say(args, text: str = "", summary: bool = False) -> None:
    """Print ``text`` unless the command runs with ``--quiet``; a ``summary`` even then,
    unless this process is not the one that reports (``args.silent``: a follower of a
    multi-process run)."""
    if getattr(args, "silent", False) or (getattr(args, "quiet", False) and not summary):
        return
    print(text, flush=True)


def check_backend(name) -> str:
    """The backend a ``--backend`` value names (``BackendError`` if unknown)."""
    return resolve_backend(name or "auto")


def load_text(corpus: str, max_chars: int | None) -> tuple[str, str]:
    """``(text, resolved path)`` of a corpus name or path, cut to ``max_chars``."""
    from .data import read_text, resolve_corpus   # here: `import scanrnn.cli` stays light
    path = resolve_corpus(corpus)
    text = read_text(path)
    if max_chars:
        text = text[:max_chars]
    return text, str(path)
