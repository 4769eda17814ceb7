"""Ctrl-C and SIGTERM: while training, stop at a step boundary, or at once before the first
step (while compiling, there is nothing to save yet); in the commands, stop at once.

Python drops an exception a signal handler raises while a callback runs (JAX's
garbage-collection hook, a ``__del__``): it prints "Exception ignored in ..." and goes
on.  So every handler here also *records* the request, and the code checks the record at
safe points (after each step, each evaluation chunk, before a command prints its result):
a request to stop is never lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

__all__ = ["StopRequest", "TrainingInterrupted", "catch_interrupts", "command_handler",
           "deferred_interrupts", "forget_interrupts", "ignore_interrupts", "interrupted",
           "raise_if_interrupted"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by a signal.

    ``before_start``: no step had finished (the first call was compiling);
    ``aborted``: a second signal arrived in the middle of a step, whose bookkeeping may be
    half done. Otherwise the trainer stopped between steps, in a consistent state.
    """

    def __init__(self, before_start: bool = False, aborted: bool = False):
        super().__init__("training interrupted")
        self.before_start = before_start
        self.aborted = aborted


# -- the commands' SIGINT handler -------------------------------------------------------
_received: list[int] = []   # the signals command_handler caught since forget_interrupts()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def command_handler(signum, frame):
    """The ``scanrnn`` commands' SIGINT handler: record the request, then raise
    ``KeyboardInterrupt`` (which Python may drop: :func:`raise_if_interrupted`)."""
    _received.append(signum)
    raise KeyboardInterrupt


def _replaceable(handler) -> bool:
    """Python's default SIGINT handler or ours (an ignored SIGINT, a background job's, or
    an application's own handler stays as it is)."""
    return handler is signal.default_int_handler or handler is command_handler


def catch_interrupts():
    """Forget earlier requests and, where SIGINT has a replaceable handler (main thread),
    install :func:`command_handler` and a ``sys.unraisablehook`` that keeps the "Exception
    ignored" report of a dropped interrupt off the terminal (it is recorded).  Returns a
    function that puts back what was replaced."""
    forget_interrupts()
    if not _main_thread() or not _replaceable(signal.getsignal(signal.SIGINT)):
        return lambda: None
    hook = sys.unraisablehook

    def quiet_hook(unraisable):
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            hook(unraisable)   # an interrupt: the handler that raised it recorded it

    sys.unraisablehook = quiet_hook
    replaced = signal.signal(signal.SIGINT, command_handler)

    def restore():
        if sys.unraisablehook is quiet_hook:
            sys.unraisablehook = hook
        if signal.getsignal(signal.SIGINT) is command_handler:
            signal.signal(signal.SIGINT, replaced)
    return restore


@contextlib.contextmanager
def deferred_interrupts():
    """Hold Ctrl-C back inside the block (loading a C extension such as jaxlib, which a
    ``KeyboardInterrupt`` raised in the middle of aborts): the handler only records it,
    and ``KeyboardInterrupt`` is raised when the block ends.  Main thread, replaceable
    handler only."""
    replaced = None
    if _main_thread() and _replaceable(signal.getsignal(signal.SIGINT)):
        replaced = signal.signal(signal.SIGINT, lambda signum, frame: _received.append(signum))
    try:
        yield
    finally:
        if replaced is not None:
            signal.signal(signal.SIGINT, replaced)
    raise_if_interrupted()


def interrupted() -> bool:
    """Whether :func:`command_handler` caught a signal since :func:`catch_interrupts`."""
    return bool(_received)


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C was caught (even one Python dropped)."""
    if _received:
        raise KeyboardInterrupt


def forget_interrupts() -> None:
    """Clear the record of :func:`command_handler` (a new command starts, or one ended)."""
    _received.clear()


def ignore_interrupts() -> None:
    """The command exits after an interrupt: further Ctrl-Cs are ignored, so none lands
    in an exit handler (JAX's) as a traceback.  Main thread, replaceable handler only."""
    if _main_thread() and _replaceable(signal.getsignal(signal.SIGINT)):
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# -- training -----------------------------------------------------------------------------
class StopRequest:
    """Catch SIGINT and SIGTERM while training (a context manager; main thread only).

    Before the first step has finished a signal raises :class:`TrainingInterrupted` at
    once. After it, the first signal only sets :attr:`requested` (and prints ``message``);
    :meth:`step_done`, called when a step's bookkeeping is complete, then raises. A
    second signal raises at once (``aborted``). Every signal is also recorded in
    :attr:`requested`, so one whose exception Python dropped stops training at the next
    :meth:`step_done`. A Ctrl-C the command caught before training (:func:`interrupted`)
    stops it on entry. Handlers are installed only where the process has the default
    ones (or the commands', :func:`command_handler`): an ignored SIGINT (a background job)
    or a handler of the application's own stays as it is.
    """

    def __init__(self, message: str = "stopping after this step (press Ctrl-C again to abort)"):
        self.message = message
        self.requested = False
        self.aborted = False
        self.started = False
        self._old = {}

    def __enter__(self) -> StopRequest:
        if interrupted():      # a Ctrl-C caught (and maybe dropped) before training
            raise TrainingInterrupted(before_start=True)
        if _main_thread():
            if _replaceable(signal.getsignal(signal.SIGINT)):
                self._old[signal.SIGINT] = signal.signal(signal.SIGINT, self._handler)
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                self._old[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handler)
        return self

    def _handler(self, signum, frame):
        if not self.started:
            self.requested = True   # kept should Python drop the exception
            raise TrainingInterrupted(before_start=True)
        if self.requested:
            self.aborted = True
            raise TrainingInterrupted(aborted=True)
        self.requested = True
        os.write(2, f"\n{self.message}\n".encode())

    def step_done(self) -> None:
        """A step and its bookkeeping are complete: stop here if a signal asked to."""
        self.started = True
        self.check()

    def check(self) -> None:
        """Raise :class:`TrainingInterrupted` if a signal asked to stop."""
        if self.requested:
            raise TrainingInterrupted()

    def __exit__(self, exc_type, exc, tb):
        for signum, handler in self._old.items():
            signal.signal(signum, handler)
        self._old.clear()
        if exc_type is None:
            self.check()   # a signal whose exception was dropped after the last check
        return False
