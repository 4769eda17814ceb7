"""The arrays given to ``fit``, ``evaluate`` and ``predict``, checked and converted.

Each function takes the model and raises a one-line ``ValueError`` naming the
input or output for arrays of the wrong rank, size, dtype or id range; what it
returns is what the compiled functions take: int32 ids, floatX numbers.
"""

from __future__ import annotations

import operator

import numpy as np

from .._config import floatx
from .engine import shape_str


def expand_1d_in_place(data):
    """Keras 1 quirk the lesson relies on: 1-D arrays in a *list* passed to fit/predict are
    replaced, in that list, by their ``(N, 1)`` version (cells 52 and 71 then stack them)."""
    if isinstance(data, list):
        for i, item in enumerate(data):
            if np.ndim(item) == 1:
                data[i] = np.expand_dims(np.asarray(item), 1)


def embedding_limits(model) -> list[list]:
    """For each model input, the Embedding layers fed by it directly."""
    limits = []
    for t in model.inputs:
        found = []
        for node in model._nodes:
            layer = node.layer
            if any(inp is t for inp in node.inputs) and hasattr(layer, "input_dim") \
                    and type(layer).__name__ == "Embedding":
                found.append(layer)
        limits.append(found)
    return limits


def standardize_x(model, x) -> list[np.ndarray]:
    """The input arrays of ``x`` (an array, a list, or a dict by input name), checked;
    builds a Sequential that was not built yet from their shape."""
    if x is None:
        raise ValueError("no input data given")
    if isinstance(x, dict) and not model.built:
        raise ValueError("inputs by name need a built model")
    arrays = _arrays(x, model.input_names if model.built else [], "inputs")
    if not model.built:
        model.ensure_built_from(arrays)
    if len(arrays) != len(model.inputs):
        raise ValueError(f"model {model.name!r} has {len(model.inputs)} input(s) "
                         f"({', '.join(model.input_names)}), got {len(arrays)} array(s)")
    return [check_array(array, t.shape, t.dtype, f"input {name!r}", embeddings=embeddings)
            for array, t, name, embeddings in zip(arrays, model.inputs, model.input_names,
                                                  embedding_limits(model))]


def _check_ids(array, dtype, what, embeddings, classes):
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(f"{what} holds token/class ids and must be integers, got "
                             f"non-integer floats")
    elif array.dtype.kind not in "iub":
        raise ValueError(f"{what} must be integer ids, got dtype {array.dtype}")
    array = array.astype(dtype, copy=False)
    if array.size:
        low, high = int(array.min()), int(array.max())
        for layer in embeddings:
            if low < 0 or high >= layer.input_dim:
                raise ValueError(
                    f"{what} holds id {high if high >= layer.input_dim else low} but "
                    f"Embedding {layer.name!r} has input_dim={layer.input_dim}; ids "
                    f"must be in [0, {layer.input_dim})")
        if classes is not None and (low < 0 or high >= classes):
            raise ValueError(f"{what} holds class id {high if high >= classes else low}"
                             f" but the output has {classes} classes; ids must be in "
                             f"[0, {classes})")
    return array


def check_array(array, shape, dtype, what, embeddings=(), classes=None) -> np.ndarray:
    """``array`` as ``dtype`` with the rank and known sizes of the Keras ``shape`` (a
    trailing axis of size 1 may be left out); ids are checked against ``embeddings``'
    ``input_dim`` and ``classes``."""
    array = np.asarray(array)
    if array.dtype == object:
        raise ValueError(f"{what}: got an object array; pass numbers of one shape")
    want = len(shape)
    if array.ndim == want - 1 and shape[-1] == 1:
        array = array[..., None]
    if array.ndim != want:
        raise ValueError(f"{what} expects arrays of shape {shape_str(('N', *shape[1:]))} "
                         f"(rank {want}), got shape {array.shape}")
    for axis in range(1, want):
        if shape[axis] is not None and array.shape[axis] != shape[axis]:
            raise ValueError(f"{what} expects arrays of shape "
                             f"{shape_str(('N', *shape[1:]))}, got shape {array.shape} "
                             f"(axis {axis} must be {shape[axis]})")
    if np.dtype(dtype).kind in "iu":
        return _check_ids(array, dtype, what, embeddings, classes)
    if array.dtype.kind not in "fiub":
        raise ValueError(f"{what} must be numbers, got dtype {array.dtype}")
    return array.astype(dtype, copy=False)


def _arrays(data, names, what) -> list:
    """The arrays of ``data``: a dict by name (one per name of ``names``), a list or tuple
    (1-D arrays in a list expanded, see :func:`expand_1d_in_place`), or one array."""
    if not isinstance(data, dict):
        expand_1d_in_place(data)
        return list(data) if isinstance(data, (list, tuple)) else [data]
    missing = [n for n in names if n not in data]
    if missing or len(set(names)) != len(names):
        raise ValueError(f"{what} by name need unique names and one array each; missing "
                         f"{missing}; the model's are {', '.join(names)}")
    return [data[n] for n in names]


def _target_arrays(model, y) -> list:
    if y is None:
        raise ValueError("no targets given (y)")
    arrays = _arrays(y, model.output_names, "targets")
    if len(arrays) != len(model.outputs):
        raise ValueError(f"model {model.name!r} has {len(model.outputs)} output(s) "
                         f"({', '.join(model.output_names)}), got {len(arrays)} target "
                         f"array(s)")
    return arrays


def standardize_y(model, y) -> list[np.ndarray]:
    """The target arrays of ``y``, checked against each output's loss: class ids for a
    sparse loss, one-hot (or values) of the output's shape otherwise."""
    out = []
    for array, t, name, (loss, _, _) in zip(_target_arrays(model, y), model.outputs,
                                            model.output_names, model._losses()):
        array = np.asarray(array)
        what = f"targets of output {name!r} ({loss.name})"
        if loss.sparse:
            if array.ndim == len(t.shape) and array.shape[-1] == 1:
                array = array[..., 0]
            if array.ndim == len(t.shape) and array.ndim > 1:
                raise ValueError(f"{what} must be class ids of shape "
                                 f"{shape_str(('N', *t.shape[1:-1]))}, got one-hot-like "
                                 f"shape {array.shape}; use "
                                 f"loss='categorical_crossentropy' for one-hot targets")
            out.append(check_array(array, t.shape[:-1], "int32", what, classes=t.shape[-1]))
            continue
        if loss.one_hot and array.ndim == len(t.shape) - 1 and \
                array.dtype.kind in "iu" and t.shape[-1] != 1:
            raise ValueError(f"{what} must be one-hot of shape "
                             f"{shape_str(('N', *t.shape[1:]))}, got ids of shape "
                             f"{array.shape}; use loss='sparse_categorical_crossentropy'"
                             f" or to_categorical(y, {t.shape[-1]})")
        out.append(check_array(array, t.shape, floatx(), what))
    return out


def sample_count(arrays, ys=()) -> int:
    """The number of samples, the same in every input and target array."""
    lengths = {len(a) for a in [*arrays, *ys]}
    if len(lengths) != 1:
        raise ValueError(f"all input and target arrays need the same number of samples, "
                         f"got {sorted(len(a) for a in [*arrays, *ys])}")
    n = lengths.pop()
    if n == 0:
        raise ValueError("got 0 samples")
    return n


def batch_size_for(model, batch_size, n, what) -> int:
    """The batch size ``what`` (``"fit"``, ...) runs with: 32 by default; a stateful model
    needs its fixed batch size and a multiple of it samples."""
    fixed = model.stateful_batch_size()
    if batch_size is not None:
        given = batch_size
        try:
            if isinstance(given, (bool, np.bool_)):
                raise TypeError
            batch_size = operator.index(given)  # 2.5 and "32" are no batch sizes
        except TypeError:
            batch_size = 0
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {given!r}")
    if fixed is None:
        return 32 if batch_size is None else int(batch_size)
    size = fixed if batch_size is None else int(batch_size)
    advice = ("call model.reset_states(batch_size=k) to resize the carried state (weights "
              "are kept), e.g. reset_states(batch_size=1) to run one sequence at a time")
    if size != fixed:
        raise ValueError(f"model {model.name!r} is stateful with batch size {fixed}; "
                         f"{what} got batch_size={size}. Use batch_size={fixed}, or "
                         f"{advice}")
    if n % fixed:
        raise ValueError(f"model {model.name!r} is stateful with batch size {fixed}, so "
                         f"{what} needs a multiple of {fixed} samples, got {n} (e.g. "
                         f"x[:{n // fixed * fixed}]), or {advice}")
    return size
