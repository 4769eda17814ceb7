"""Data-parallel training of a language model: the devices, this process's rows, agreement.

:class:`TrainDevices` is what a :class:`~scanrnn.lm.trainer.Trainer` with
``TrainConfig.devices`` set needs beyond :func:`scanrnn.function`'s ``devices=``:

* the check that the global batch divides over the devices, before anything compiles;
* the rows of each ``(T, B)`` batch this process feeds: every process builds the same
  global batches from the same seed and keeps its own block of rows (all of them in
  one process);
* (the trainer validates and samples on a copy of the model on one local device,
  :meth:`~scanrnn.lm.trainer.Trainer.eval_weights`: the training weights live on the mesh,
  in several processes partly on other hosts, and a sample or a text too short to split
  has no batch to divide);
* in several processes, one value of the wall clock and of "stop now" per step
  (:meth:`TrainDevices.agree`), so every process takes the same time-based decisions
  (budget, validation, cosine learning rate, Ctrl-C) at the same step.

Dropout masks do not depend on the number of devices: :mod:`scanrnn.random` hashes each
element's *global* index, which XLA's partitioner keeps when it splits the batch, so
1, 2 or 4 devices draw the same masks (tests/test_parallel_lm.py checks it).
"""

from __future__ import annotations

import numpy as np

from ..parallel import DataParallel, ParallelError

__all__ = ["TrainDevices", "for_config"]


class TrainDevices:
    """The devices a data-parallel trainer runs on (``devices``: an int N or ``"all"``)."""

    def __init__(self, devices, batch_size: int):
        self.spec = devices
        self.parallel = DataParallel(devices)
        self.num_devices = self.parallel.num_devices
        self.process_count = self.parallel.process_count if self.parallel.multi_process else 1
        self.batch_size = int(batch_size)
        if self.batch_size % self.num_devices:
            raise ParallelError(
                f"batch size {self.batch_size} is not divisible by the {self.num_devices} "
                f"devices; use a --batch-size that is a multiple of {self.num_devices}, or "
                f"--devices that divides {self.batch_size}")
        self.rows = self._local_rows()

    def _local_rows(self) -> slice:
        """This process's block of the batch axis of ``(T, B)`` batches."""
        sharding = self.parallel.sharding(2, 1)
        blocks = sharding.addressable_devices_indices_map((1, self.batch_size)).values()
        starts = [b[1].start or 0 for b in blocks]
        stops = [self.batch_size if b[1].stop is None else b[1].stop for b in blocks]
        if sum(b - a for a, b in zip(starts, stops)) != max(stops) - min(starts):
            raise ParallelError("this process's devices do not hold one block of the batch; "
                                "give --devices as 'all' or a count")
        return slice(min(starts), max(stops))

    def describe(self) -> str:
        """E.g. ``"data parallel on 4 cpu devices"`` (and the processes, when several)."""
        kinds = "/".join(sorted({d.platform for d in self.parallel.mesh.devices.flat}))
        line = (f"data parallel on {self.num_devices} {kinds} "
                f"device{'s' if self.num_devices > 1 else ''}")
        if self.process_count > 1:
            line += (f" of {self.process_count} processes (this one feeds rows "
                     f"{self.rows.start}:{self.rows.stop})")
        return line

    def local(self, batch: np.ndarray) -> np.ndarray:
        """This process's rows of a global ``(T, B)`` batch (all of it in one process)."""
        return batch if self.process_count == 1 else batch[:, self.rows]

    def input_rows(self) -> int | None:
        """The static batch size of the inputs: each process passes its own rows, so None
        (the global shape is pinned when the function compiles) with several processes."""
        return self.batch_size if self.process_count == 1 else None

    def batch_axes(self, carry) -> dict:
        """``batch_axes`` of the training function: the carried ``(B, H)`` states by row."""
        return {var: 0 for var in carry}

    def start_clock(self, elapsed: float) -> float | None:
        """The agreed clock at the start of ``fit`` (the checkpoint's, the same in every
        process); None in one process, whose own clock is used."""
        return float(elapsed) if self.process_count > 1 else None

    def agree(self, elapsed: float, stop: bool,
              eval_cost: float | None = None) -> tuple[float, bool, float | None]:
        """Process 0's elapsed seconds, whether any process was asked to stop, and process
        0's last validation cost in seconds (None: none yet) — one small all-gather per step
        in several processes; the values as given in one."""
        if self.process_count == 1:
            return elapsed, stop, eval_cost
        from jax.experimental import multihost_utils
        mine = np.array([elapsed, 1.0 if stop else 0.0,
                         -1.0 if eval_cost is None else eval_cost], np.float32)
        every = np.asarray(multihost_utils.process_allgather(mine)).reshape(-1, 3)
        cost = float(every[0, 2])
        return float(every[0, 0]), bool(every[:, 1].any()), (None if cost < 0 else cost)


def for_config(config) -> TrainDevices | None:
    """The :class:`TrainDevices` of a :class:`~scanrnn.lm.TrainConfig` (None: one device)."""
    if config.devices is None:
        return None
    from ..compile import resolve_backend
    if resolve_backend(config.backend) != "jax":
        raise ParallelError(f"devices={config.devices!r} needs the JAX backend (this run uses "
                            f"{resolve_backend(config.backend)!r}); use --backend jax")
    return TrainDevices(config.devices, config.batch_size)
