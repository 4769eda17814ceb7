"""Compiled functions for a batch of exactly one sequence.

On JAX, :class:`scanrnn.compile.Function` pins every free dimension to the
shapes of the call with ``specify_shape``.  A batch of one becomes a static
size 1 *after* the graph was built, and a ``scan`` built for a free batch then
meets a broadcastable (size 1) sequence it was not built for: PyTensor's scan
rewrites fail and print tracebacks (the results stay right).  So a model builds
a second graph for batch size 1, whose scans are made with that static size
from the start (:meth:`Model.build_graph` with ``batch_size=1``), and uses it
for batches of one on JAX.  The training step of that graph shares the
optimizer state (moments, step counter) of the general one.
"""

from __future__ import annotations

from pytensor.graph.replace import graph_replace

from .. import optim


def single_batch(backend: str, arrays) -> int | None:
    """1 when a call with ``arrays`` needs the batch-of-one graph, else ``None``."""
    return 1 if backend == "jax" and arrays and len(arrays[0]) == 1 else None


def updates_sharing_slots(optimizer, loss, params, slots) -> optim.Updates:
    """``optimizer``'s updates for ``loss``, reading and writing the existing ``slots``
    (the general step's) instead of the new state variables the rule creates."""
    updates = optimizer.get_updates(loss, params)
    fresh = list(updates.slots)
    if len(fresh) != len(slots):
        raise RuntimeError("the optimizer made a different state for the batch-of-one step")
    optimizer.slots = list(slots)
    mapping = dict(zip(fresh, slots))
    keys = [mapping.get(var, var) for var in updates]
    values = graph_replace(list(updates.values()), mapping, strict=False)
    return optim.Updates(dict(zip(keys, values)), learning_rate=updates.learning_rate,
                         slots=list(slots))
