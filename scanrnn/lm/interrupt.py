"""Ctrl-C and SIGTERM during training: stop at a step boundary, or at once before the
first step (while compiling, there is nothing to save yet)."""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["StopRequest", "TrainingInterrupted"]


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


class StopRequest:
    """Catch SIGINT and SIGTERM while training (a context manager; main thread only).

    Before the first step has finished a signal raises :class:`TrainingInterrupted` at
    once. After it, the first signal only sets :attr:`requested` (and prints ``message``);
    :meth:`step_done`, called when a step's bookkeeping is complete, then raises. A
    second signal raises at once (``aborted``). Handlers are installed only where the
    process has the default ones: an ignored SIGINT (a background job) or a handler of
    the application's own stays as it is.
    """

    def __init__(self, message: str = "stopping after this step (press Ctrl-C again to abort)"):
        self.message = message
        self.requested = False
        self.aborted = False
        self.started = False
        self._old = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self._old[signal.SIGINT] = signal.signal(signal.SIGINT, self._handler)
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                self._old[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handler)
        return self

    def _handler(self, signum, frame):
        if not self.started:
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

    def __exit__(self, *exc):
        for signum, handler in self._old.items():
            signal.signal(signum, handler)
        self._old.clear()
        return False
