"""Vendor kernels under data parallelism: each device runs the kernel on its own rows.

XLA's SPMD partitioner cannot split a custom call (a ``jax.ffi`` kernel): left
alone it would gather the whole batch onto every device and run the kernel there.
When a data-parallel :class:`scanrnn.Function` (``devices=``) compiles, the kernel
Ops carry its mesh, and their JAX functions are wrapped in ``jax.shard_map``:

* the forward takes the sequence and the initial states split along the batch
  axis (the mesh's first axis), the weights replicated, and returns the step
  outputs, final states and oneDNN's workspace split the same way (each device's
  workspace is its own rows' workspace);
* the backward takes the same splits and returns the gradients of the input
  sequence and initial states split, and those of the weights **summed over the
  devices** (``psum`` inside the map), so they come out replicated, as the
  gradient of the whole batch: what the rest of the step (clipping, Adam) expects.

Sequences are time-major ``(T, B, ...)`` (batch axis 1), states ``(B, H)`` and the
workspace vector are split along axis 0.
"""

from __future__ import annotations

N_STATES = {"rnn": 1, "gru": 1, "lstm": 2}


def batch_axis_name(mesh) -> str:
    """The axis of ``mesh`` that splits the batch: its first (``scanrnn.parallel``'s rule)."""
    return mesh.axis_names[0]


def num_devices(mesh) -> int:
    """How many devices split the batch."""
    return int(mesh.shape[batch_axis_name(mesh)])


def _specs(axis, roles):
    """PartitionSpecs from roles: "seq" (T, B, ...), "rows" (B, ...), "ws" (N,), "rep"."""
    from jax.sharding import PartitionSpec as P
    table = {"seq": P(None, axis), "rows": P(axis), "ws": P(axis), "rep": P()}
    return tuple(table[r] for r in roles)


def forward_roles(kind: str, training: bool):
    """Input and output roles of :class:`~.ops.OneDNNRecurrence`."""
    n_weights = 4 if kind == "gru" else 3  # W_x, W_h, [b_h], b
    inputs = ["seq"] + ["rep"] * n_weights + ["rows"] * N_STATES[kind]
    outputs = ["seq"] + ["rows"] * N_STATES[kind] + (["ws"] if training else [])
    return inputs, outputs


def backward_roles(kind: str, vocab: int):
    """Input and output roles of :class:`~.ops.OneDNNRecurrenceGrad` (weights' grads summed)."""
    n_weights = 4 if kind == "gru" else 3
    states = ["rows"] * N_STATES[kind]
    inputs = ["seq"] + ["rep"] * n_weights + states + ["seq"] + states + ["ws", "seq"] + states
    outputs = ([] if vocab else ["seq"]) + ["rep"] * n_weights + states
    return inputs, outputs


def _shard_map(fn, mesh, in_specs, out_specs):
    import jax
    if hasattr(jax, "shard_map"):
        return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
                             check_vma=False)
    from jax.experimental.shard_map import shard_map  # older JAX
    return shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)


def wrap(fn, mesh, in_roles, out_roles):
    """``fn`` (a kernel's JAX function: arrays in, a list out) run per device on its rows.

    Outputs with the role "rep" are summed over the batch axis (the weights' gradients).
    ``mesh`` None or of one device: ``fn`` itself.
    """
    if mesh is None or num_devices(mesh) == 1:
        return fn
    import jax
    axis = batch_axis_name(mesh)
    summed = [role == "rep" for role in out_roles]

    def per_device(*args):
        out = list(fn(*args))
        return tuple(jax.lax.psum(o, axis) if s else o for o, s in zip(out, summed))

    mapped = _shard_map(per_device, mesh, _specs(axis, in_roles), _specs(axis, out_roles))

    def run(*args):
        return list(mapped(*args))
    return run
