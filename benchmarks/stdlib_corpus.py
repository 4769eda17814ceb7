"""A third corpus for the `scanrnn train` defaults, made honestly from what is installed: the
source of Python's own standard library (code, comments and docstrings: upper and lower case,
indentation, digits and punctuation; a text unlike the two books).

The modules of the running interpreter's standard library (``sysconfig``'s ``stdlib``
folder), every ``*.py`` file outside ``test``/``tests``/``idlelib``/``site-packages`` folders,
in sorted path order, read as UTF-8 and joined with a blank line, cut at ``--chars``
characters. The same Python version gives the same text (the file records which)::

    python benchmarks/stdlib_corpus.py --out /tmp/pystdlib.txt      # 1,000,000 characters
    scanrnn train --corpus /tmp/pystdlib.txt --minutes 10
    python benchmarks/torch_lm.py --corpus /tmp/pystdlib.txt --minutes 10

Not committed: it is a megabyte that any machine makes in a second.
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
from pathlib import Path

SKIPPED = {"test", "tests", "idlelib", "site-packages", "__pycache__"}


def stdlib_text(chars: int) -> str:
    """The first ``chars`` characters of the standard library's sources, as described above."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, total = [], 0
    for path in sorted(root.rglob("*.py")):
        if SKIPPED & set(path.relative_to(root).parts[:-1]):
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(source)
        total += len(source) + 2
        if total >= chars:
            break
    return "\n\n".join(parts)[:chars]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="file to write")
    ap.add_argument("--chars", type=int, default=1_000_000, help="length (default 1,000,000)")
    args = ap.parse_args(argv)
    text = stdlib_text(args.chars)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"{args.out}: {len(text):,} characters, {len(set(text))} distinct, from the standard "
          f"library of Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
