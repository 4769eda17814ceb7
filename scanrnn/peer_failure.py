"""When another process of a multi-process run stops: one clear error, never a hang or an abort.

Two ways a lost process shows up in the survivors (``jax.distributed`` with Gloo on the CPU):

* a collective in flight (the gradient all-reduce of a training step) fails at
  once with a ``JaxRuntimeError`` ("Gloo AllGather failed ... Connection closed
  by peer"); :func:`collective_errors` turns it into :class:`PeerLost` with one
  clear line.  JAX's own shutdown at interpreter exit would then wait for the
  heartbeat timeout and abort the process (SIGABRT, a page of C++ log), so the
  process instead ends with status :data:`EXIT_STATUS` when the interpreter
  exits (other ``atexit`` handlers registered before are skipped: the
  distributed runtime cannot shut down cleanly after a loss);
* a survivor outside any collective (host work between steps) hears of the loss
  from the coordination service after ``heartbeat_timeout_s`` and JAX aborts it
  ("Terminating process because the JAX distributed service detected fatal
  errors ... another task died").  JAX offers no public hook to change that
  (its client's callback takes an ``absl::Status`` that Python cannot receive).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys

from .parallel import ParallelError

#: Exit status of a process whose run lost another process (instead of SIGABRT's 134).
EXIT_STATUS = 1
MESSAGE = "another process of this data-parallel run stopped or is unreachable"

# Words in XLA's runtime errors that mean a peer or the coordination service is gone.
_PEER_WORDS = ("gloo", "connection", "unavailable", "heartbeat", "coordination",
               "peer", "socket", "barrier", "aborted", "deadline")


class PeerLost(ParallelError, RuntimeError):
    """Another process of this data-parallel run stopped or cannot be reached."""


def is_peer_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (a JAX runtime error, or :class:`PeerLost`) says a process or the
    coordination service of the run is gone."""
    if isinstance(exc, PeerLost):
        return True
    text = str(exc).lower()
    return any(word in text for word in _PEER_WORDS)


@contextlib.contextmanager
def collective_errors(multi_process: bool = True):
    """Re-raise a collective's runtime error caused by a lost process as :class:`PeerLost`."""
    if not multi_process:
        yield
        return
    from jax.errors import JaxRuntimeError
    try:
        yield
    except JaxRuntimeError as exc:
        if not is_peer_failure(exc):
            raise
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        _exit_at_interpreter_exit()
        raise PeerLost(f"{MESSAGE}: {first}") from exc


_armed = []


def _exit_now():
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(EXIT_STATUS)


def _exit_at_interpreter_exit():
    """Skip JAX's distributed shutdown at exit: after a loss it waits for the heartbeat
    timeout and then aborts the process; end with :data:`EXIT_STATUS` instead."""
    if not _armed:
        _armed.append(True)
        atexit.register(_exit_now)  # registered after JAX's clean-up, so it runs first
