"""Data parallelism on JAX's SPMD partitioner: a device mesh, and where each value lives on it.

A data-parallel :func:`scanrnn.function` (``devices=``) compiles the same graph
as on one device; what changes is where its values live:

* **inputs with a batch axis** are split along it over the devices of a
  one-axis :class:`jax.sharding.Mesh` (axis name ``"batch"``);
* **shared variables** (weights, optimizer state) are replicated on every
  device and kept there between calls; a shared variable named in
  ``batch_axes`` (the state carried between sequential batches) is split
  along its batch axis instead, so each device keeps its own rows;
* XLA's SPMD partitioner turns the graph into one program per device and
  inserts the all-reduce of the gradients itself: no communication code here.

Which axis is the batch axis: by default axis 1 of an input with two or more
dimensions (scanrnn's time-major ``(T, B, ...)``), axis 0 of a 1-D input,
none for a scalar.  ``batch_axes={var: axis}`` overrides it per input or shared
variable (``None``: replicated).

Several processes (one per host, or several on one machine) join one mesh with
:func:`initialize` (``jax.distributed``); then every process calls the
function with **its own rows** of the batch and the mesh spans every
process's devices.  Dropout and sampling draws come from :mod:`scanrnn.random`,
a hash of each element's *global* index, so they do not depend on the number of
devices.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

BATCH_AXIS_NAME = "batch"

#: Environment variables read by :func:`initialize` when no argument is given.
ENV_COORDINATOR = "SCANRNN_COORDINATOR"
ENV_NUM_PROCESSES = "SCANRNN_NUM_PROCESSES"
ENV_PROCESS_ID = "SCANRNN_PROCESS_ID"


class ParallelError(ValueError):
    """A data-parallel setting or a batch that does not fit the devices."""


def default_batch_axis(ndim: int) -> int | None:
    """The batch axis of a time-major value: 1 of ``(T, B, ...)``, 0 of ``(B,)``, none else."""
    return None if ndim == 0 else (0 if ndim == 1 else 1)


def make_mesh(devices="all"):
    """A one-axis mesh named ``"batch"``.

    ``devices``: an int N (the first N of ``jax.devices()``, which spans every
    process after :func:`initialize`), ``"all"``, a sequence of JAX devices, or a
    ``jax.sharding.Mesh`` (its first axis is the batch axis).
    """
    import jax
    from jax.sharding import Mesh
    if isinstance(devices, Mesh):
        return devices
    available = jax.devices()
    if isinstance(devices, str):
        if devices != "all":
            raise ParallelError(f"devices must be an int, 'all', a list of devices or a Mesh, "
                                f"got {devices!r}")
        chosen = available
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ParallelError(
                f"devices={devices}, but JAX sees {len(available)} device(s) here "
                f"({available[0].platform}); on the CPU, XLA_FLAGS="
                f"--xla_force_host_platform_device_count=N makes N host devices")
        chosen = available[:int(devices)]
    elif isinstance(devices, Sequence):
        chosen = list(devices)
        if not chosen:
            raise ParallelError("devices is an empty list")
    else:
        raise ParallelError(f"devices must be an int, 'all', a list of devices or a Mesh, "
                            f"got {devices!r}")
    return Mesh(np.array(chosen), (BATCH_AXIS_NAME,))


class DataParallel:
    """Where a data-parallel function's values live: a mesh and the batch axis of each value.

    ``devices``: see :func:`make_mesh`.  The mesh's first axis splits the batch.
    """

    def __init__(self, devices="all"):
        import jax
        self.mesh = make_mesh(devices)
        self.axis_name = self.mesh.axis_names[0]
        self.num_devices = int(self.mesh.shape[self.axis_name])
        self.process_count = jax.process_count()
        self.multi_process = len({d.process_index for d in self.mesh.devices.flat}) > 1

    def __repr__(self):
        kinds = sorted({d.platform for d in self.mesh.devices.flat})
        return (f"DataParallel({self.num_devices} {'/'.join(kinds)} device(s), "
                f"{self.process_count} process(es))")

    def sharding(self, ndim: int, axis: int | None):
        """The ``NamedSharding`` of a ``ndim``-D value split along ``axis`` (None: replicated)."""
        from jax.sharding import NamedSharding, PartitionSpec
        if axis is None:
            return NamedSharding(self.mesh, PartitionSpec())
        spec = [None] * ndim
        spec[axis] = self.axis_name
        return NamedSharding(self.mesh, PartitionSpec(*spec))

    def check_axis(self, what: str, ndim: int, axis: int | None) -> int | None:
        """``axis`` as a non-negative int (or None), checked against a ``ndim``-D value."""
        if axis is None:
            return None
        if not -ndim <= axis < ndim:
            raise ParallelError(f"{what} is {ndim}-D, so its batch axis cannot be {axis}")
        return axis % ndim

    def _check_divisible(self, what: str, rows: int, axis: int):
        if rows % self.num_devices:
            raise ParallelError(
                f"{what}: batch size {rows} (axis {axis}) is not divisible by the "
                f"{self.num_devices} devices; use a batch size that is a multiple of "
                f"{self.num_devices}, or fewer devices")

    def place_local(self, what: str, value, axis: int | None):
        """A global array from this process's rows of ``value`` (the whole batch in one process)."""
        import jax
        sharding = self.sharding(np.ndim(value), axis)
        if _has_sharding(value, sharding):
            return value
        if axis is None:
            return self.place_global(what, value, None)
        rows = np.shape(value)[axis] * (self.process_count if self.multi_process else 1)
        self._check_divisible(what, rows, axis)
        if not self.multi_process:
            return jax.device_put(value, sharding)
        return jax.make_array_from_process_local_data(sharding, np.asarray(value))

    def place_global(self, what: str, value, axis: int | None):
        """``value`` (the same whole array in every process) split along ``axis`` or replicated."""
        import jax
        sharding = self.sharding(np.ndim(value), axis)
        if _has_sharding(value, sharding):
            return value
        if axis is not None:
            self._check_divisible(what, np.shape(value)[axis], axis)
        if not self.multi_process:
            return jax.device_put(value, sharding)
        host = np.asarray(value)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def to_host(value) -> np.ndarray:
    """A numpy copy of a (possibly multi-process) JAX array; numpy arrays pass through.

    An array split over the devices of several processes is gathered with
    ``multihost_utils.process_allgather``, which every process must call.
    """
    if getattr(value, "is_fully_addressable", True):
        return np.asarray(value)
    if value.is_fully_replicated:  # every process holds all of it: no communication
        return np.asarray(value.addressable_data(0))
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(value, tiled=True))


def _has_sharding(value, sharding) -> bool:
    current = getattr(value, "sharding", None)
    if current is None:
        return False
    try:
        return current.is_equivalent_to(sharding, np.ndim(value))
    except (AttributeError, TypeError, ValueError):
        return current == sharding


class ShardingConstraint(Op):
    """Identity that tells XLA where its value lives (``jax.lax.with_sharding_constraint``).

    Put on the new values of shared variables, so the weights come back replicated and
    the carried state split along its batch axis, call after call.  Other backends and
    ``perform`` treat it as the identity; its gradient is the identity too.
    """

    __props__ = ("sharding",)
    view_map = {0: [0]}

    def __init__(self, sharding):
        self.sharding = sharding

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0]

    def pullback(self, inputs, outputs, output_grads):
        return [output_grads[0]]

    def __str__(self):
        return f"ShardingConstraint{{{self.sharding.spec}}}"


def _register_jax():
    from .pytensor_compat import jax_dispatch
    jax_funcify = jax_dispatch().jax_funcify

    @jax_funcify.register(ShardingConstraint)
    def _jax_sharding_constraint(op, **kwargs):
        import jax
        sharding = op.sharding

        def constrain(x):
            return jax.lax.with_sharding_constraint(x, sharding)
        return constrain


_registered = False


def constrain(x, sharding):
    """``x`` marked to live with ``sharding`` when compiled by JAX."""
    global _registered
    if not _registered:
        _register_jax()
        _registered = True
    return ShardingConstraint(sharding)(x)


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, timeout_s: int = 60,
               heartbeat_timeout_s: int = 20) -> bool:
    """Join this process to a multi-process mesh (``jax.distributed.initialize``).

    Arguments default to ``$SCANRNN_COORDINATOR`` (``host:port`` of process 0),
    ``$SCANRNN_NUM_PROCESSES`` and ``$SCANRNN_PROCESS_ID``.  Returns False (and does
    nothing) when no coordinator is given, or for one process.  Call it before any
    other JAX work.  On the CPU the processes exchange data through Gloo.  A process
    that dies is noticed by the others within about ``heartbeat_timeout_s`` seconds:
    they stop with an error instead of waiting forever.
    """
    coordinator = coordinator or os.environ.get(ENV_COORDINATOR) or None
    num_processes = _env_int(num_processes, ENV_NUM_PROCESSES, "--num-processes")
    process_id = _env_int(process_id, ENV_PROCESS_ID, "--process-id")
    if coordinator is None:
        if num_processes not in (None, 1):
            raise ParallelError(f"{num_processes} processes need a coordinator address "
                                f"(--coordinator HOST:PORT or ${ENV_COORDINATOR})")
        return False
    if num_processes is None or process_id is None:
        raise ParallelError(
            f"a multi-process run needs the number of processes and this process's id "
            f"(--num-processes/--process-id or ${ENV_NUM_PROCESSES}/${ENV_PROCESS_ID})")
    if not 0 <= process_id < num_processes:
        raise ParallelError(f"process id {process_id} is not in 0..{num_processes - 1}")
    if num_processes == 1:
        return False
    import jax
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, ValueError):  # older JAX: its default CPU collectives
        pass
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=timeout_s,
                               heartbeat_timeout_seconds=heartbeat_timeout_s)
    return True


def _env_int(value, env, flag):
    if value is not None:
        return int(value)
    text = os.environ.get(env, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ParallelError(f"${env} must be an integer ({flag}), got {text!r}") from None


HOST_DEVICE_FLAG = "--xla_force_host_platform_device_count"


def request_cpu_devices(count: int) -> bool:
    """Ask JAX for ``count`` CPU devices, as ``XLA_FLAGS`` with :data:`HOST_DEVICE_FLAG`
    does, so that ``devices=N`` can split a batch over the cores of one CPU.

    Only possible before JAX's backends start (its first computation or ``jax.devices()``);
    returns False, changing nothing, once they have started, or when ``$XLA_FLAGS`` already
    sets the count (the user's setting wins).  Other platforms (a GPU) are not affected.
    """
    if HOST_DEVICE_FLAG in os.environ.get("XLA_FLAGS", ""):
        return False
    import jax
    from jax._src import xla_bridge
    if getattr(xla_bridge, "backends_are_initialized", lambda: False)():
        return False
    try:
        jax.config.update("jax_num_cpu_devices", int(count))
    except AttributeError:   # a JAX without the option reads the flag when it starts
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + f" {HOST_DEVICE_FLAG}={int(count)}").strip()
    except RuntimeError:     # started in between: the count is fixed for this process
        return False
    return True


def process_index() -> int:
    """This process's index among the joined processes (0 without :func:`initialize`)."""
    import jax
    return jax.process_index()
