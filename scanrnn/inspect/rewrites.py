"""Capture the rewrites PyTensor applies while it compiles, without printing anything.

PyTensor reports every graph replacement when ``config.optimizer_verbose`` is on, by
printing lines such as::

    rewriting: rewrite scan_push_out_non_seq replaces Dot.0 of Dot(...) with ...
    rewriting: rewrite local_useless_fill replaces node Second(...) with [...]
    rewriting: validate failed on node Composite{...}.3.
     Reason: <class '...Elemwise'>_inplace_optimizer, Dependency graph contains cycles

:func:`capture_rewrites` turns the flag on, sends ``sys.stdout`` to a buffer, records
Python warnings, and marks where each ``FunctionMaker.prepare_fgraph`` (the rewriting
stage of ``pytensor.function``) starts and ends, so each line is attributed to a phase:

``graph``
    the rewriting of the compiled function's graph (what ``f.maker.fgraph`` shows);
``inner``
    a nested compilation started while linking (e.g. the C backend compiling a Scan's
    inner function, or an ``OpFromGraph`` at its first call);
``codegen``
    rewrites run outside any ``pytensor.function`` rewriting stage: Numba and JAX rewrite
    each Scan's inner graph again when they generate code;
``first_call``
    anything after :meth:`RewriteCapture.mark` ``("first_call")``: the C and Python
    backends compile ``OpFromGraph`` ops such as ``LogSoftmax`` lazily, at the first call.

:func:`parse_log` turns the captured text into :class:`RewriteEvent` s, and
:func:`summarize` into ``(name, count)`` rows in the order each rewrite first fired.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field

import pytensor
from pytensor.compile.maker import FunctionMaker

from .. import quiet_rewrites

__all__ = [
    "RewriteCapture",
    "RewriteEvent",
    "capture_rewrites",
    "clean_name",
    "parse_log",
    "summarize",
]

_MARK = "\x00scanrnn-phase "
_LINE = re.compile(r"^rewriting: rewrite (?P<name>.+?) replaces (?P<node>node )?")
_FAILED = re.compile(r"^rewriting: validate failed on node")
_REASON = re.compile(r"^\s*Reason: (?P<name>.+?), ")
_CLASS = re.compile(r"<class '(?:[\w.]*\.)?(\w+)'>")
_COMPOSITE = "SequentialNodeRewriter("


def clean_name(raw: str) -> str:
    """A rewrite's printed name made readable: ``<class '...Elemwise'>_x`` -> ``Elemwise_x``."""
    return _CLASS.sub(r"\1", raw.strip())


@dataclass
class RewriteEvent:
    """One rewrite application: ``name``, replaced variables ``count``, ``phase``."""

    name: str
    count: int = 1
    phase: str = "graph"


@dataclass
class RewriteCapture:
    """What :func:`capture_rewrites` collected (filled in when the ``with`` block ends).

    Attributes
    ----------
    text : str
        The raw ``optimizer_verbose`` output, with phase markers removed.
    events : list of RewriteEvent
        The applied rewrites, in order.
    rejected : Counter
        Rewrites whose result failed validation (e.g. an in-place rewrite that would
        destroy a protected input), by name.
    internal : int
        Replacements logged without a rewrite name (PyTensor rebuilding an inner graph).
    rewrite_s : float
        Seconds spent in top-level ``prepare_fgraph`` (graph rewriting of each
        ``pytensor.function`` compiled inside the block; nested ones excluded).
    warnings : list of str
        Distinct Python warnings raised inside the block.
    failures : list of str
        Rewrites that raised an error (PyTensor logs them and skips the rewrite), as
        ``"name: error"``.
    other_output : list of str
        Any other line printed to stdout inside the block.
    """

    text: str = ""
    events: list = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)
    internal: int = 0
    rewrite_s: float = 0.0
    warnings: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    other_output: list = field(default_factory=list)
    _buffer: object = field(default=None, repr=False)

    def mark(self, phase: str) -> None:
        """Attribute what follows (outside nested compilations' own stages) to ``phase``."""
        if self._buffer is not None:
            self._buffer.write(f"{_MARK}phase {phase}\n")

    def summary(self, phase: str | None = None) -> list[tuple[str, int]]:
        """``[(name, count), ...]`` in first-fired order (optionally one phase only)."""
        return summarize(self.events, phase)


@contextlib.contextmanager
def capture_rewrites(verbose: bool = True):
    """Record PyTensor's rewrite log (and warnings, and rewriting time) inside a block.

    Nothing reaches the user's stdout or stderr.  Yields a :class:`RewriteCapture`,
    complete once the block exits (also when it raises).
    """
    result = RewriteCapture()
    buffer = io.StringIO()
    result._buffer = buffer
    original = FunctionMaker.__dict__["prepare_fgraph"]
    prepare = original.__func__
    depth = [0]

    def timed_prepare(*args, **kwargs):
        depth[0] += 1
        buffer.write(f"{_MARK}start {depth[0]}\n")
        start = time.perf_counter()
        try:
            return prepare(*args, **kwargs)
        finally:
            if depth[0] == 1:
                result.rewrite_s += time.perf_counter() - start
            buffer.write(f"{_MARK}end {depth[0]}\n")
            depth[0] -= 1

    records: list[logging.LogRecord] = []
    handler = _ListHandler(records)
    logger = logging.getLogger("pytensor")
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    FunctionMaker.prepare_fgraph = staticmethod(timed_prepare)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stdout(buffer))
            caught = stack.enter_context(warnings.catch_warnings(record=True))
            warnings.simplefilter("always")
            stack.enter_context(pytensor.config.change_flags(optimizer_verbose=verbose))
            stack.enter_context(quiet_rewrites.shown())  # record every failure
            try:
                yield result
            finally:
                seen = []
                for w in caught:
                    text = f"{w.category.__name__}: {str(w.message).splitlines()[0]}"
                    if text not in seen:
                        seen.append(text)
                result.warnings = seen
    finally:
        FunctionMaker.prepare_fgraph = original
        result._buffer = None
        logger.removeHandler(handler)
        logger.propagate = propagate
        _fill(result, buffer.getvalue())
        result.failures = _failures(records)
        result.other_output += [r.getMessage().splitlines()[0] for r in records
                                if not r.getMessage().startswith(_FAILURE_LINES)][:20]


class _ListHandler(logging.Handler):
    def __init__(self, records):
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record):
        self.records.append(record)


_FAILURE_LINES = ("Rewrite failure due to:", "node:", "TRACEBACK:", "Traceback")


def _failures(records) -> list[str]:
    """``"rewrite: error"`` for each "Rewrite failure due to" block PyTensor logged."""
    out, name = [], None
    for record in records:
        message = record.getMessage()
        if message.startswith("Rewrite failure due to:"):
            name = clean_name(message.split(":", 1)[1])
        elif message.startswith("Traceback") and name is not None:
            lines = [line for line in message.strip().splitlines() if line.strip()]
            error = lines[-1].strip() if lines else "?"
            text = f"{name}: {error[:300]}"
            if text not in out:
                out.append(text)
            name = None
    return out


def _fill(result: RewriteCapture, raw: str) -> None:
    parsed = parse_log(raw)
    result.events = parsed["events"]
    result.rejected = parsed["rejected"]
    result.internal = parsed["internal"]
    result.other_output = parsed["other"]
    result.text = "\n".join(line for line in raw.splitlines() if not line.startswith(_MARK))


def parse_log(text: str) -> dict:
    """Parse ``optimizer_verbose`` output into events.

    Returns a dict with ``events`` (list of :class:`RewriteEvent`), ``rejected``
    (Counter of names), ``internal`` (unnamed replacements) and ``other`` (lines that are
    not rewrite reports).  A ``SequentialNodeRewriter(...)`` line that follows the report
    of one of its members (``replaces node ...``) is the same application and is counted
    under the member's name.
    """
    events: list[RewriteEvent] = []
    rejected: Counter = Counter()
    internal = 0
    other: list[str] = []
    depth = 0
    base = None
    last_node_event: RewriteEvent | None = None
    expect_reason = False
    for line in text.splitlines():
        if line.startswith(_MARK):
            what, level = line[len(_MARK):].split()
            if what == "phase":
                base = level
            else:
                depth = int(level) if what == "start" else int(level) - 1
            continue
        if base is not None:
            phase = base
        else:
            phase = "codegen" if depth == 0 else ("graph" if depth == 1 else "inner")
        if expect_reason:
            expect_reason = False
            m = _REASON.match(line)
            if m:
                rejected[clean_name(m.group("name"))] += 1
                continue
        if _FAILED.match(line):
            expect_reason = True
            continue
        m = _LINE.match(line)
        if not m:
            if line.strip():
                other.append(line)
            continue
        name = clean_name(m.group("name"))
        if m.group("node"):
            last_node_event = RewriteEvent(name, 0, phase)
            events.append(last_node_event)
            continue
        if name == "None":
            internal += 1
            continue
        if (name.startswith(_COMPOSITE) and last_node_event is not None
                and last_node_event.name in name[len(_COMPOSITE):-1].split(",")):
            last_node_event.count += 1
            continue
        last_node_event = None
        events.append(RewriteEvent(name, 1, phase))
    for event in events:
        event.count = max(event.count, 1)
    if len(other) > 50:
        other = other[:50] + [f"... {len(other) - 50} more lines"]
    return {"events": events, "rejected": rejected, "internal": internal, "other": other}


def summarize(events, phase: str | None = None) -> list[tuple[str, int]]:
    """``[(name, total count)]`` in the order each rewrite first fired."""
    counts: Counter = Counter()
    for event in events:
        if phase is None or event.phase == phase:
            counts[event.name] += event.count
    return list(counts.items())

