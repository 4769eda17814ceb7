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

On a CPU with several cores, ``scanrnn train`` splits the batch over one host device per
core by default (:func:`for_command`): XLA runs each device's share of the step on a core of
its own, where one device leaves most of the second core idle between its small kernels
(measured on 2 cores: 22% more tokens/s, benchmarks/RESULTS_lm.md).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from ..parallel import DataParallel, ParallelError, request_cpu_devices

__all__ = ["AUTO_MAX_DEVICES", "AUTO_MIN_ROWS", "TrainDevices", "auto_split", "for_command",
           "for_config", "usable_cores"]

AUTO_MAX_DEVICES = 8
"""The most host devices ``scanrnn train`` splits a batch over by default."""
AUTO_MIN_ROWS = 4
"""The fewest batch rows a host device gets by default (smaller shares only add overhead)."""


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


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, as ``taskset`` sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        return os.cpu_count() or 1


def auto_split(batch_size: int, devices: int) -> int | None:
    """How many of ``devices`` host devices a batch of ``batch_size`` rows is split over by
    default: the most that divide the batch, each with at least :data:`AUTO_MIN_ROWS` rows
    (at most :data:`AUTO_MAX_DEVICES`); None when that is one."""
    most = min(devices, AUTO_MAX_DEVICES, batch_size // AUTO_MIN_ROWS)
    count = max((n for n in range(1, most + 1) if batch_size % n == 0), default=1)
    return count if count > 1 else None


def for_command(config, backend: str):
    """``(config, auto)``: the :class:`~scanrnn.lm.TrainConfig` a ``scanrnn train`` process
    trains with on the ``backend`` it resolved, and whether it chose the devices itself.

    ``devices`` N: JAX is asked for N host devices first (no ``XLA_FLAGS`` needed on the CPU).
    No ``devices`` on the JAX backend of a CPU with several cores: one host device per core
    (:func:`auto_split`).  Both only take effect before JAX's backends start; after that
    (an application that already ran JAX) the devices JAX has are what there is.
    """
    if backend != "jax" or config.devices == "all":
        return config, False
    if config.devices is not None:
        request_cpu_devices(config.devices)
        return config, False
    cores = usable_cores()
    if cores < 2:
        return config, False
    request_cpu_devices(min(cores, AUTO_MAX_DEVICES))
    import jax
    if jax.default_backend() != "cpu":
        return config, False
    count = auto_split(config.batch_size, min(cores, len(jax.devices())))
    if count is None:
        return config, False
    return dataclasses.replace(config, devices=count), True
