"""``scanrnn.keras.distribution``: data-parallel ``fit``/``evaluate``/``predict``, as in Keras 3.

Under a :class:`DataParallel` distribution each batch is split along its batch axis
(axis 0 of the Keras-like API's batch-major arrays) over the devices of a one-axis
``jax.sharding.Mesh``; the weights and the optimizer state are replicated on every
device and stay there between batches, and XLA's SPMD partitioner inserts the
all-reduce of the gradients (:mod:`scanrnn.parallel` does the placing).  The results
are those of one device, up to float32 rounding (sums in a different order)::

    from scanrnn.keras import distribution
    dist = distribution.DataParallel()            # every device JAX sees
    distribution.set_distribution(dist)           # or: with dist.scope(): ...
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    model.fit(x, y, batch_size=64, epochs=3)

Which distribution a call uses: the one set when it runs (:func:`set_distribution` or
inside ``dist.scope()``); if none is set, the one that was set when the model was
compiled; else none (one device, as before).  The model's compiled functions are kept
per distribution; every one of them shares the same weights and optimizer state.

**Batches not divisible by the device count** (the last batch of an epoch, or any
``batch_size``): the batch is padded to the next multiple of the device count with
copies of its last row; the padded rows get zero weight in the loss and the metrics
(they are masked out of every mean) and are dropped from ``predict``'s outputs, so
``fit``, ``evaluate`` and ``predict`` give what one device gives on the real rows.
Two cases cannot pad and raise :class:`~scanrnn.parallel.ParallelError` naming both
numbers: training a model with ``BatchNormalization`` (its batch statistics would see
the padded rows), and a stateful model whose fixed batch size is not a multiple of the
device count (its carried state is split by rows over the devices).

Dropout draws come from a hash of each element's index in the global batch
(:mod:`scanrnn.random`), so they do not depend on the device count either.  The
distribution runs in one process (one host's devices); several hosts are for
:func:`scanrnn.function` with ``devices=`` and ``scanrnn train``.
"""

from __future__ import annotations

import contextlib

from ..parallel import BATCH_AXIS_NAME, ParallelError

_GLOBAL: list = [None]


def _jax():
    try:
        import jax
    except ImportError:
        raise ParallelError("a distribution needs JAX: pip install jax") from None
    return jax


def list_devices(device_type: str | None = None) -> list[str]:
    """The devices JAX sees, as Keras 3 names them: ``["cpu:0", "cpu:1", ...]``.

    ``device_type``: ``"cpu"``, ``"gpu"`` or ``"tpu"``; default: JAX's default
    platform (a GPU or TPU when there is one, else the CPU).
    """
    jax = _jax()
    try:
        found = jax.devices(device_type.lower()) if device_type else jax.devices()
    except RuntimeError as exc:
        raise ParallelError(f"no {device_type} devices here ({exc})") from None
    return [f"{d.platform}:{d.id}" for d in found]


def _device(spec):
    """A JAX device from a Keras name ``"cpu:1"`` (or a JAX device, as it is)."""
    if not isinstance(spec, str):
        return spec
    jax = _jax()
    platform, _, number = spec.lower().partition(":")
    try:
        found = jax.devices(platform)
    except RuntimeError:
        found = []
    for device in found:
        if str(device.id) == (number or "0"):
            return device
    raise ParallelError(f"no device {spec!r} here; list_devices() gives "
                        f"{', '.join(list_devices())}")


class DataParallel:
    """Split every batch over ``devices``; replicate the weights and optimizer state.

    Parameters
    ----------
    device_mesh : jax.sharding.Mesh, optional
        Its first axis splits the batch (other axes, if any, hold replicas).
    devices : list, int or None
        Keras names (``["cpu:0", "cpu:1"]``, see :func:`list_devices`), JAX devices, or
        an int N (the first N of ``jax.devices()``).  Neither given: every device.

    Attributes: ``device_mesh`` (the ``Mesh``), ``devices`` (Keras names),
    ``num_devices`` (the number of pieces a batch is split into), ``batch_dim_name``.
    """

    def __init__(self, device_mesh=None, devices=None):
        jax = _jax()
        from ..parallel import make_mesh
        if device_mesh is not None and devices is not None:
            raise ParallelError("give DataParallel a device_mesh or devices, not both")
        if jax.process_count() > 1:
            raise ParallelError(
                "the Keras-like API's DataParallel runs in one process; across several "
                "processes use scanrnn.function(devices=...) or scanrnn train")
        if device_mesh is None:
            chosen = "all" if devices is None else devices
            if isinstance(chosen, (list, tuple)):
                chosen = [_device(d) for d in chosen]
            device_mesh = make_mesh(chosen)
        elif not isinstance(device_mesh, jax.sharding.Mesh):
            raise ParallelError(f"device_mesh must be a jax.sharding.Mesh, got "
                                f"{type(device_mesh).__name__}")
        self.device_mesh = device_mesh
        self.batch_dim_name = device_mesh.axis_names[0]
        self.num_devices = int(device_mesh.shape[self.batch_dim_name])
        flat = list(device_mesh.devices.flat)
        self.devices = [f"{d.platform}:{d.id}" for d in flat]
        self.key = (tuple(device_mesh.axis_names), tuple(device_mesh.devices.shape),
                    tuple(d.id for d in flat), tuple(d.platform for d in flat))

    def __eq__(self, other):
        return isinstance(other, DataParallel) and other.key == self.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        return f"DataParallel(devices={self.devices})"

    @contextlib.contextmanager
    def scope(self):
        """Use this distribution inside the ``with`` block (the previous one after it)."""
        previous = _GLOBAL[0]
        _GLOBAL[0] = self
        try:
            yield self
        finally:
            _GLOBAL[0] = previous

    def function_options(self, batched, carried=()) -> dict:
        """``scanrnn.function`` arguments: ``batched`` inputs split along axis 0, and the
        ``carried`` shared state ``(B, ...)`` of stateful layers split with its rows."""
        return {"devices": self.device_mesh,
                "batch_axes": {var: 0 for var in [*batched, *carried]}}

    def padded_size(self, rows: int) -> int:
        """``rows`` rounded up to a multiple of the device count."""
        return -(-rows // self.num_devices) * self.num_devices


def set_distribution(value) -> None:
    """Make ``value`` (a :class:`DataParallel`, or None for one device) the global one."""
    if value is not None and not isinstance(value, DataParallel):
        raise ParallelError(f"set_distribution takes a DataParallel or None, got "
                            f"{type(value).__name__}")
    _GLOBAL[0] = value


def distribution():
    """The distribution set now (:func:`set_distribution` or ``scope()``), or None."""
    return _GLOBAL[0]


__all__ = ["BATCH_AXIS_NAME", "DataParallel", "ParallelError", "distribution", "list_devices",
           "set_distribution"]
