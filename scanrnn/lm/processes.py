"""Several processes training one run: joining them, who writes, and when one stops.

``scanrnn train --coordinator HOST:PORT --num-processes N --process-id I`` (or
``$SCANRNN_COORDINATOR``, ``$SCANRNN_NUM_PROCESSES``, ``$SCANRNN_PROCESS_ID``) joins
``jax.distributed`` (:func:`scanrnn.parallel.initialize`) before any JAX work.  Every
process then builds the same global batches from the same seed and feeds its own rows
(:mod:`scanrnn.lm.devices`).  Process 0 alone writes the run directory and prints; the
others train through a :class:`FollowerRun`, which reads a resumed run's files (the run
directory must be on a shared file system, or copied, to resume on several hosts) and
writes nothing, but still takes part in every collective (the gathered carried state of
each checkpoint).  A process that stops makes the others fail with one line
(:func:`peer_lost`) within the heartbeat timeout, instead of waiting forever.
"""

from __future__ import annotations

from .rundir import RunDir

__all__ = ["FollowerRun", "HEARTBEAT_TIMEOUT_S", "join", "peer_lost"]

#: Seconds without a heartbeat after which the others give up on a process.
HEARTBEAT_TIMEOUT_S = 20


def join(args) -> int | None:
    """Join the processes named by ``args`` (flags or environment); this process's index,
    or None for a single-process run.  A joined run is data parallel over all devices of
    all processes unless ``--devices`` says otherwise."""
    from ..parallel import initialize, process_index
    if not initialize(args.coordinator, args.num_processes, args.process_id,
                      heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S):
        return None
    if args.devices is None:
        args.devices = "all"
    return process_index()


def peer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says another process of the run (or the coordinator) is gone."""
    from jax.errors import JaxRuntimeError

    from ..peer_failure import PeerLost, is_peer_failure
    return isinstance(exc, (PeerLost, JaxRuntimeError)) and is_peer_failure(exc)


class FollowerRun(RunDir):
    """The run directory as a process other than 0 sees it: it may read a resumed run's
    configuration and checkpoint, and writes nothing (process 0 writes)."""

    def __init__(self, path, config: dict | None = None):
        super().__init__(path)
        self._config = config

    def read_config(self) -> dict:
        return self._config if self._config is not None else super().read_config()

    def save_checkpoint(self, which, arrays, meta):
        return self.checkpoint_path(which)

    def lock(self) -> None:
        pass

    def unlock(self) -> None:
        pass

    def discard_unstarted(self) -> bool:
        return False

    def remove_stale_temp_files(self) -> list:
        return []

    def record_train_config(self, train) -> None:
        pass

    def append_metrics(self, row) -> None:
        pass

    def truncate_metrics(self, step) -> None:
        pass

    def append_samples(self, header, texts) -> None:
        pass

    def plot(self):
        return None
