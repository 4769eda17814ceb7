"""PyTensor's scan rewrites that give up on a dimension of size 1, kept off the terminal.

On JAX, :class:`scanrnn.compile.Function` pins every free dimension to the shapes of the
call (JAX needs static shapes).  A batch, hidden or input size of 1 then becomes
*broadcastable* after the scans were built for a free size, and several of PyTensor's scan
rewrites (``scan_remove_unused`` / ``scan_inline_invariant_constants``,
``scan_push_out_non_seq``, ``scan_reduce_trace_no_prealloc``, ``scan_inner_graph``) rebuild
a ``Scan`` whose inner and outer types no longer agree and give up.  PyTensor then leaves the
graph as it was -- the results are right (tests/test_core_backends.py, the Keras batch-of-one
tests) -- but logs every failure with a traceback: 214 lines for one LSTM and its gradient at
batch 1, and on every ``scanrnn eval`` of a text short enough for one stream.

:func:`size_one_failures` drops exactly those records while a function compiles, recognised
by the exception PyTensor is handling when it logs them; any other rewrite failure is still
logged, and :func:`shown` turns the filter off (``scanrnn.inspect`` records them all).

:func:`held_failures` keeps the other failures back while a function compiles: if the
compile then fails, the caller raises one error that says why (a rewrite that failed on
shapes that do not fit leaves an Op JAX cannot run, and JAX's error alone names only that
Op); if it succeeds, :func:`release` logs them as before.
"""

from __future__ import annotations

import contextlib
import logging
import sys

__all__ = ["held_failures", "release", "shown", "size_one_failures"]

# what PyTensor's Scan says when a rebuilt loop meets a broadcastable (size 1) dimension
_SIZE_ONE_MESSAGES = (
    "The broadcast pattern of the output of scan",
    "given to the scan node is not compatible with its corresponding loop function variable",
)
_LOGGER = "pytensor.graph.rewriting.basic"  # where PyTensor logs its rewrite failures


class _SizeOneScanFailures(logging.Filter):
    """Refuses the log records of a rewrite failure caused by a size-1 dimension."""

    enabled = True

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.enabled:
            return True
        handled = sys.exc_info()[1]  # PyTensor logs its failures inside `except`
        return not (isinstance(handled, (TypeError, ValueError))
                    and any(m in str(handled) for m in _SIZE_ONE_MESSAGES))


_FILTER = _SizeOneScanFailures()


@contextlib.contextmanager
def size_one_failures():
    """While compiling: PyTensor's size-1 scan rewrite failures are not logged."""
    logger = logging.getLogger(_LOGGER)
    logger.addFilter(_FILTER)  # a set: nested blocks add it once
    try:
        yield
    finally:
        logger.removeFilter(_FILTER)


@contextlib.contextmanager
def shown():
    """Every rewrite failure is logged inside this block (for tools that study them)."""
    enabled, _FILTER.enabled = _FILTER.enabled, False
    try:
        yield
    finally:
        _FILTER.enabled = enabled


class _Hold(logging.Filter):
    """Keeps each rewrite failure's record, and the exception PyTensor was handling."""

    def __init__(self):
        super().__init__()
        self.held: list[tuple[logging.LogRecord, BaseException | None]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.held.append((record, sys.exc_info()[1]))
        return False


@contextlib.contextmanager
def held_failures():
    """While compiling: rewrite failures are not logged but kept, as a list of ``(record,
    exception)`` (exception: what the rewrite raised, or None), which this block yields."""
    logger = logging.getLogger(_LOGGER)
    hold = _Hold()
    logger.addFilter(hold)
    try:
        yield hold.held
    finally:
        logger.removeFilter(hold)


def release(held) -> None:
    """Log the records that :func:`held_failures` kept (outside its block)."""
    logger = logging.getLogger(_LOGGER)
    for record, _ in list(held):  # a copy: never the list a hold is still filling
        logger.handle(record)
