"""Compile graphs on a chosen backend: :func:`function` and :func:`backends`.

===========  =========================================  ==========================
backend      PyTensor mode                              notes
===========  =========================================  ==========================
``"jax"``    ``"JAX"`` (``jax.jit`` of the whole graph)  the GPU path; static shapes
``"numba"``  ``"NUMBA"``                                 compiles 30-50 s cold
``"c"``      ``"CVM"``                                   needs a C compiler
``"python"`` ``Mode(linker="py")``                       slow; a reference
===========  =========================================  ==========================

``"auto"`` is JAX when it imports, else Numba.

What :class:`Function` takes care of (see PyTensor's notes on each point):

* **Static shapes for JAX.**  Data inputs with unknown dimensions and all
  shared variables are pinned with ``specify_shape`` to the shapes of the
  first call; one jitted function is compiled per shape signature and cached.
* **Checked inputs** (:mod:`scanrnn.arguments`).  Arguments are converted to the
  input's dtype when that loses nothing of meaning; a wrong rank, a wrong fixed
  dimension or floats for an integer input raise a ``ValueError`` that names the
  input.  On JAX, shapes that do not fit the graph's parameters (found when the
  graph is compiled for them) raise one ``ValueError`` that names them.
* **Shared values across backends.**  A JAX function leaves JAX arrays in
  shared variables; before a Numba / C / Python function runs they are turned
  back into numpy arrays.
* **Blocking.**  Results are numpy arrays (the call waits for the device);
  ``return_numpy=False`` returns JAX arrays as they are, without waiting.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import warnings
from functools import cache

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.compile.mode import Mode, get_mode
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.replace import graph_replace
from pytensor.graph.traversal import graph_inputs, io_toposort
from pytensor.tensor.type import TensorType

from . import _config  # noqa: F401  (sets floatX)
from . import allocator, id_ranges, pytensor_compat, quiet_rewrites
from .arguments import CHECK_SHAPES, about_shapes, check_arguments, describe_input, shapes_of
from .function_parts import checked_inputs, checked_updates, output_list
from .parallel import to_host
from .peer_failure import collective_errors
from .pytensor_compat import clone_node, has_mutable_inner_graph, inline_op_from_graph

BACKENDS = ("jax", "numba", "c", "python")


class BackendError(ValueError):
    """An unknown or unavailable backend was asked for."""


@cache
def _available(backend: str) -> bool:
    if backend == "python":
        return True
    if backend == "jax":
        return importlib.util.find_spec("jax") is not None
    if backend == "numba":
        return importlib.util.find_spec("numba") is not None
    if backend == "c":
        return bool(pytensor.config.cxx)
    return False


def installed_backends() -> list[str]:
    """The backends that can run here, fastest first."""
    return [b for b in BACKENDS if _available(b)]


def default_backend() -> str:
    """``"jax"`` when JAX is installed, else ``"numba"`` (else ``"python"``)."""
    for backend in ("jax", "numba", "python"):
        if _available(backend):
            return backend
    return "python"


def resolve_backend(backend: str | None = "auto") -> str:
    """Check a backend name and turn ``"auto"`` into the default one."""
    if backend is None or backend == "auto":
        return default_backend()
    name = str(backend).lower()
    name = {"cvm": "c", "py": "python"}.get(name, name)
    installed = installed_backends()
    if name not in BACKENDS:
        raise BackendError(
            f"unknown backend {backend!r}; choose one of: auto, {', '.join(installed)}")
    if name not in installed:
        hint = " (pip install 'scanrnn[jax]')" if name == "jax" else ""
        raise BackendError(
            f"backend {backend!r} is not installed here{hint}; installed: {', '.join(installed)}")
    return name


def mode_for(backend: str) -> Mode:
    """The PyTensor ``Mode`` of a backend name."""
    name = resolve_backend(backend)
    if name == "python":
        return Mode(linker="py", optimizer="fast_run")
    if name == "jax":
        pytensor_compat.keep_wide_integer_constants()
    return get_mode({"jax": "JAX", "numba": "NUMBA", "c": "CVM"}[name])


def jax_devices() -> list[str]:
    """The devices JAX sees (``[]`` if JAX is not installed)."""
    if not _available("jax"):
        return []
    import jax
    return [f"{d.platform}:{d.id} ({getattr(d, 'device_kind', d.platform)})"
            for d in jax.devices()]


def backends() -> dict:
    """What is installed: backends, the default, JAX devices, versions, vendor kernels."""
    versions = {"pytensor": pytensor.__version__, "numpy": np.__version__}
    for module in ("jax", "jaxlib", "numba"):
        if importlib.util.find_spec(module) is not None:
            versions[module] = getattr(importlib.import_module(module), "__version__", "?")
    return {
        "installed": installed_backends(),
        "default": default_backend(),
        "jax_devices": jax_devices(),
        "floatX": pytensor.config.floatX,
        "versions": versions,
        "kernels": kernel_status(),
        "malloc": allocator.status(),
    }


def kernel_status() -> dict:
    """Which vendor kernels JAX functions use here, or why none: ``{"active": [...],
    "reason": str | None, ...}`` (see :func:`scanrnn.kernels.status`; may build them once)."""
    if not _available("jax"):
        return {"active": [], "reason": "JAX is not installed"}
    from . import kernels
    return {**kernels.status(), "default": kernels.wanted("auto")}


# Harmless warnings PyTensor and JAX print while tracing a float32 graph:
# float32 sums accumulate in float64, which JAX computes in float32 without x64;
# runtime shape asserts are dropped by JAX tracing (the shapes are pinned anyway).
_EXPECTED_TRACE_WARNINGS = (
    ".*Explicitly requested dtype float64.*",
    ".*as JAX tracing would remove it.*",
    ".*np.dot\\(\\) is faster on contiguous arrays.*",
)


_DYNAMIC_SLICE = ("slice indices must have static", "slice entries must be static")  # JAX's
_DYNAMIC_SLICE_HINT = (
    "{} cannot run on jax: it slices with bounds computed from its inputs (Theano's "
    "givens={{x: data[i * B:(i + 1) * B]}}), and JAX compiles for fixed sizes. Slice outside "
    "and pass the batch as an argument (f(data[i * B:(i + 1) * B])), or use backend='numba' "
    "or 'c', which take such slices")


def _shape_failures(held) -> list:
    """The held rewrite failures whose exception is about shapes."""
    return [h for h in held if h[1] is not None and about_shapes(h[1])]


def _shared_tensors(outputs, updates) -> list[SharedVariable]:
    roots = list(outputs) + list(updates.values()) + list(updates.keys())
    found = [v for v in graph_inputs(roots) if isinstance(v, SharedVariable)]
    found += [k for k in updates if isinstance(k, SharedVariable)]
    unique = list(dict.fromkeys(found))
    return [v for v in unique if isinstance(v.type, TensorType)]


def _uses_float64(inputs, outputs, shared) -> bool:
    return any(getattr(v, "dtype", None) == "float64" for v in [*inputs, *outputs, *shared])


def _jax_x64(enabled: bool):
    """A context in which JAX traces and runs with 64-bit types ``enabled``.

    PyTensor sets JAX's process-wide ``jax_enable_x64`` from ``floatX`` when its JAX
    backend is imported (scanrnn puts the user's setting back:
    :func:`~scanrnn.pytensor_compat.jax_dispatch`); a float64 graph needs it on, a float32
    one off (its int64 constants as int32).  The context leaves the process-wide setting
    as it was for everything else (other functions, the user's own JAX code).
    """
    import jax
    pytensor_compat.jax_dispatch()
    if bool(jax.config.jax_enable_x64) == enabled:
        return contextlib.nullcontext()
    enable_x64 = getattr(jax, "enable_x64", None)  # jax >= 0.5; before, jax.experimental's
    if enable_x64 is None:
        from jax.experimental import enable_x64
    return enable_x64(enabled)


def _inline_once(variables):
    """Inline every inline ``OpFromGraph``; give every other inner-graph node its own copy."""
    memo, found = {}, False
    for node in io_toposort(list(graph_inputs(variables)), list(variables)):
        new_inputs = [memo.get(i, i) for i in node.inputs]
        if isinstance(node.op, OpFromGraph) and node.op.is_inline:
            found = True
            new_outputs = inline_op_from_graph(node.op, new_inputs)
        elif any(n is not o for n, o in zip(new_inputs, node.inputs)) or \
                has_mutable_inner_graph(node.op):
            new_outputs = clone_node(node, new_inputs).outputs
        else:
            continue
        memo.update(zip(node.outputs, new_outputs))
    return [memo.get(v, v) for v in variables], found


def _with_private_inner_graphs(variables):
    """Rebuild the graph of ``variables`` so that no Scan op is shared with another function.

    On PyTensor 3.0.7 a Scan's inner graph is compiled in place: the C/Python path adds BLAS
    ops (``Gemm``) and in-place ops to ``op.fgraph`` and Numba rewrites it too.
    Ops are shared by every function built from the same symbolic graph, and an
    inlined ``OpFromGraph`` (scanrnn's fused recurrences) hands out the very Scan
    ops of its frozen inner graph to every compilation; so compiling one model on
    two backends broke the second ("No JAX conversion for Gemm", "Graph must not
    contain inplace operations").  Each compilation therefore inlines the
    ``OpFromGraph`` nodes itself, from clones, and clones every Scan.  From
    PyTensor 3.1 on inner graphs are immutable and shared safely, so only the
    inlining remains (see :mod:`scanrnn.pytensor_compat`).  Inputs and shared
    variables are kept as they are.
    """
    variables, found = list(variables), True
    while found:
        variables, found = _inline_once(variables)
    return variables


class Function:
    """A compiled PyTensor function on one backend; call it like the function.

    Attributes
    ----------
    backend : str
        ``"jax"``, ``"numba"``, ``"c"`` or ``"python"``.
    compiled : dict
        The underlying ``pytensor`` Function objects, keyed by shape signature
        (one entry, key ``None``, on backends that need no static shapes).
    """

    def __init__(self, inputs, outputs=None, updates=None, backend="auto", *, name=None,
                 givens=None, return_numpy=True, on_unused_input="raise",
                 no_default_updates=False, profile=False, kernels="auto", devices=None,
                 batch_axes=None):
        self.backend = resolve_backend(backend)
        if kernels not in (True, False, "auto"):
            raise ValueError(f"kernels must be True, False or 'auto', got {kernels!r}")
        self.kernels = kernels
        self.kernel_decisions = None  # scanrnn.kernels.rewriting.Decision list, per compile
        self.name = name
        self.inputs = checked_inputs(inputs)
        self.outputs, self.single_output = output_list(outputs)
        self.updates = checked_updates(updates)
        self.givens = givens
        self.return_numpy = return_numpy
        self._fn_kwargs = dict(on_unused_input=on_unused_input, profile=profile)
        if no_default_updates:
            self._fn_kwargs["no_default_updates"] = True
        self.shared = _shared_tensors(self.outputs, self.updates)
        self.parallel = None
        if devices is not None:
            self._set_devices(devices, batch_axes)
        elif batch_axes:
            raise ValueError("batch_axes is for a data-parallel function: give devices= too")
        self.mode = mode_for(self.backend)
        if self.parallel is not None:  # products keep the batch axis (scanrnn.contract)
            from . import contract
            contract.register_jax()
            self.mode = self.mode.excluding(contract.EXPAND_REWRITE)
        self.compiled = {}
        self._pin = self.backend == "jax"
        self._x64 = _uses_float64(self.inputs, self.outputs, self.shared)
        self._fresh = set()
        self._held_failures = {}  # signature -> rewrite failures, logged after the first call
        self._id_ranges = id_ranges.find(self.inputs, [*self.outputs, *self.updates.values()],
                                         givens)
        if not self._pin:
            self._compile(None)

    # -- data parallelism ---------------------------------------------------
    def _set_devices(self, devices, batch_axes):
        """Split batch axes over ``devices`` (see :mod:`scanrnn.parallel`)."""
        from .parallel import DataParallel, default_batch_axis
        if self.backend != "jax":
            raise BackendError(f"devices= needs the JAX backend (this function is on "
                               f"{self.backend!r}); use backend='jax'")
        self.parallel = DataParallel(devices)
        given = dict(batch_axes or {})
        by_name = {v.name: v for v in [*self.inputs, *self.shared] if v.name}
        axes = {}
        for key, axis in given.items():
            var = by_name.get(key) if isinstance(key, str) else key
            if not any(var is v for v in [*self.inputs, *self.shared]):
                raise ValueError(f"batch_axes names {key!r}, which is neither an input nor a "
                                 f"shared variable of this function")
            axes[var] = axis
        self._input_axes = [
            self.parallel.check_axis(describe_input(v, i), v.ndim,
                                     axes.get(v, default_batch_axis(v.ndim)))
            for i, v in enumerate(self.inputs)]
        self._shared_axes = {
            v: self.parallel.check_axis(f"shared variable {v.name!r}", v.ndim, axes.get(v))
            for v in self.shared}

    def _place(self, args):
        """Arguments split over the mesh, shared values placed (once; they stay there)."""
        placed = [self.parallel.place_local(describe_input(v, i), a, axis)
                  for i, (v, a, axis) in enumerate(zip(self.inputs, args, self._input_axes))]
        for var, axis in self._shared_axes.items():
            storage = var.container.storage
            storage[0] = self.parallel.place_global(f"shared variable {var.name!r}",
                                                    storage[0], axis)
        return placed

    def _constrained_updates(self, updates):
        """New shared values marked to stay where their old ones live (replicated or split)."""
        from .parallel import constrain
        return {var: constrain(value, self.parallel.sharding(var.ndim,
                                                             self._shared_axes.get(var)))
                if var in self._shared_axes else value
                for var, value in updates.items()}

    # -- compilation --------------------------------------------------------
    def _signature(self, args):
        if not self._pin:
            return None
        return (tuple(np.shape(a) for a in args),
                tuple(np.shape(v.get_value(borrow=True)) for v in self.shared))

    def _compile(self, signature):
        keys = list(self.updates)
        private = _with_private_inner_graphs(self._with_kernels())
        outputs = private[:len(self.outputs)]
        updates = dict(zip(keys, private[len(self.outputs):]))
        if self.parallel is not None:
            updates = self._constrained_updates(updates)
        if signature is not None:
            input_shapes, shared_shapes = signature
            pins = {}
            for var, shape in [*zip(self.inputs, input_shapes),
                               *zip(self.shared, shared_shapes)]:
                if any(s is None for s in var.type.shape):
                    pins[var] = pt.specify_shape(var, shape)
            if pins:
                keys = list(updates)
                replaced = graph_replace([*outputs, *updates.values()], pins, strict=False)
                outputs = replaced[:len(outputs)]
                updates = dict(zip(keys, replaced[len(outputs):]))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*RandomType SharedVariables.*")
            for message in _EXPECTED_TRACE_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            with self._build_context(), quiet_rewrites.size_one_failures():
                fn = self._compiled_or_clear_error(outputs, updates, signature)
        fn.trust_input = True
        if self.backend != "jax":
            fn_shared = [(c, i.variable) for c, i in zip(fn.input_storage, fn.maker.inputs)
                         if isinstance(i.variable, SharedVariable)
                         and isinstance(i.variable.type, TensorType)]
            self._shared_containers = [c for c, _ in fn_shared]
        self.compiled[signature] = fn
        self._fresh.add(signature)
        return fn

    def _compiled_or_clear_error(self, outputs, updates, signature):
        """``pytensor.function`` of the prepared graph.  PyTensor's rewrite failures are held
        back: when the compile, or on JAX the first call, then fails on arguments whose
        shapes do not fit the graph, one ValueError says so (naming the rewrite's error
        about shapes: JAX's alone names an Op it cannot run); every other failure is
        logged after the compile (on JAX, after the first call), as PyTensor would have."""
        error = None
        with quiet_rewrites.held_failures() as held:
            try:
                fn = pytensor.function(self.inputs, outputs, updates=updates,
                                       givens=self.givens, mode=self.mode, name=self.name,
                                       **self._fn_kwargs)
            except Exception as exc:
                error = exc
        if error is None:
            if signature is None:  # compiled for any shapes: nothing more to learn
                quiet_rewrites.release(held)
            else:  # JAX: the first call may still refuse these shapes
                self._held_failures[signature] = held
            return fn
        failures = _shape_failures(held)
        quiet_rewrites.release([h for h in held if h not in failures])
        if signature is None or not (failures or about_shapes(error)):
            raise error
        raise self._shape_error("be compiled", signature, failures, error) from error

    def _first_call(self, fn, key, args):
        """The first call with ``key``'s shapes (JAX traces, Numba compiles): JAX's refusal of
        shapes that do not fit becomes one ValueError; held rewrite failures are logged."""
        held = self._held_failures.pop(key, [])
        try:
            results = fn(*args)
        except Exception as exc:
            failures = _shape_failures(held) if self._pin else []
            quiet_rewrites.release([h for h in held if h not in failures])
            if self._pin and any(words in str(exc).lower() for words in _DYNAMIC_SLICE):
                quiet_rewrites.release(failures)
                raise ValueError(_DYNAMIC_SLICE_HINT.format(self.name or "the function")) from exc
            if not about_shapes(exc):
                quiet_rewrites.release(failures)
                raise
            raise self._shape_error("run", shapes_of(args, key), failures, exc) from exc
        except BaseException:
            quiet_rewrites.release(held)
            raise
        quiet_rewrites.release(held)
        self._fresh.discard(key)
        return results

    def _shape_error(self, what, signature, failures, error) -> ValueError:
        """One ValueError: the arguments' shapes, the rewrite's reason (else the error's)."""
        then = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        if failures:
            cause = f"{type(failures[0][1]).__name__}: {failures[0][1]}"
            why = cause if then == cause else f"{cause} (so {then})"
        else:
            why = then
        return ValueError(f"{self.name or 'the function'} cannot {what} on {self.backend}"
                          f"{self._shapes_text(signature)}: {why.rstrip('.')}. "
                          f"{CHECK_SHAPES}")

    def _shapes_text(self, signature) -> str:
        """`` for arguments of shapes x (5, 2, 7), ...`` (empty without a signature)."""
        if signature is None or not self.inputs:
            return ""
        return " for arguments of shapes " + ", ".join(
            f"{v.name or f'input {i}'} {tuple(s)}"
            for i, (v, s) in enumerate(zip(self.inputs, signature[0])))

    def _with_kernels(self):
        """Outputs and update values, the fused recurrences on vendor kernels where they apply.

        JAX only, as ``kernels`` says: :func:`scanrnn.kernels.rewrite` (before the fused
        ops are inlined); its decisions are kept in ``kernel_decisions``.
        """
        variables = [*self.outputs, *self.updates.values()]
        if self.backend != "jax":
            return variables
        from . import kernels
        if not kernels.wanted(self.kernels):
            return variables
        with self._build_context():
            mesh = None if self.parallel is None else self.parallel.mesh
            variables, self.kernel_decisions = kernels.rewrite(
                variables, mesh=mesh, select=kernels.selection(self.kernels))
        return variables

    def _build_context(self):
        """Where this function compiles and runs.

        The python backend builds every inner graph (scan bodies) without C code
        too; JAX traces and runs with 64-bit types on exactly when the graph
        uses float64.
        """
        if self.backend == "python":
            return pytensor.config.change_flags(cxx="")
        if self._pin:
            return _jax_x64(self._x64)
        return contextlib.nullcontext()

    def function_for(self, *args):
        """The ``pytensor`` Function that a call with ``args`` runs (compiled if needed)."""
        fn, key, _ = self._prepare(args)
        quiet_rewrites.release(self._held_failures.pop(key, []))
        return fn

    def compiled_text(self, *args) -> str:
        """The optimized HLO XLA runs for a call with ``args`` (JAX only), for study:
        on several devices, the partitioned program with its collectives (``all-reduce``)."""
        if self.backend != "jax":
            raise BackendError(f"compiled_text needs the JAX backend, not {self.backend!r}")
        fn, key, placed = self._prepare(args)
        quiet_rewrites.release(self._held_failures.pop(key, []))
        shared = [c.storage[0] for c in fn.input_storage[len(placed):]]
        with self._build_context():
            return fn.vm.jit_fn.lower(*placed, *shared).compile().as_text()

    def _prepare(self, args):
        """Check ``args``; return the compiled function for their signature, the key, the args."""
        args = check_arguments(self.inputs, args)
        id_ranges.check(self._id_ranges, self.inputs, args)
        if self.parallel is not None:
            args = self._place(args)
        key = self._signature(args)
        fn = self.compiled.get(key)
        return (fn if fn is not None else self._compile(key)), key, args

    # -- calling ------------------------------------------------------------
    def __call__(self, *args):
        if len(args) != len(self.inputs):
            names = ", ".join(v.name or f"input{i}" for i, v in enumerate(self.inputs))
            raise TypeError(f"{self.name or 'function'} takes {len(self.inputs)} "
                            f"argument(s) ({names}), got {len(args)}")
        fn, key, args = self._prepare(args)
        if not self._pin:
            for container in self._shared_containers:
                value = container.storage[0]
                if not isinstance(value, np.ndarray):  # a JAX array: read-only view
                    container.storage[0] = np.array(value)
            args = [np.asarray(a) for a in args]
        with self._peer_errors():
            results = self._run(fn, key, args)
        return results[0] if self.single_output else results

    def _run(self, fn, key, args):
        if key in self._fresh:  # the first call traces (JAX) or compiles (Numba)
            with warnings.catch_warnings(), self._build_context():
                for message in _EXPECTED_TRACE_WARNINGS:
                    warnings.filterwarnings("ignore", message=message)
                results = self._first_call(fn, key, args)
        else:
            with self._build_context():
                try:
                    results = fn(*args)
                except (TypeError, ValueError, AssertionError) as exc:
                    if not about_shapes(exc):
                        raise
                    raise self._shape_error("run", shapes_of(args, key), [], exc) from exc
        if self.return_numpy:
            convert = np.asarray if self.parallel is None else to_host
            results = [convert(r) for r in results]
        return results

    def _peer_errors(self):
        """Several processes: a collective failed by a lost process raises ``PeerLost``."""
        return collective_errors(self.parallel is not None and self.parallel.multi_process)

    def __repr__(self):
        where = "" if self.parallel is None else f" {self.parallel!r}"
        return (f"<scanrnn.Function {self.name or ''} backend={self.backend}{where} "
                f"inputs={[v.name for v in self.inputs]} compiled={len(self.compiled)}>")


def function(inputs, outputs=None, updates=None, backend="auto", **kwargs) -> Function:
    """Compile ``outputs`` of ``inputs`` (and ``updates``) on ``backend``.

    Like ``pytensor.function`` (or Theano's): ``inputs`` is a list of symbolic
    inputs, ``outputs`` one variable, a list, or ``None`` for a function that
    only applies its updates (it returns ``[]``), ``updates`` a
    ``{shared: new_value}`` dict applied after each call.  ``backend`` is
    ``"auto"``, ``"jax"``, ``"numba"``, ``"c"`` or ``"python"``.

    Keyword arguments: ``name``, ``givens``, ``return_numpy`` (default True:
    results are numpy arrays), ``on_unused_input``, ``no_default_updates``,
    ``profile``, ``kernels``: True runs fused recurrences on vendor kernels where they
    apply on JAX (oneDNN on the CPU; cuDNN's LSTM on an NVIDIA GPU,
    ``SCANRNN_CUDNN=0`` turns it off; see :mod:`scanrnn.kernels`); False keeps the
    scan, for study and comparison; ``"auto"`` (the default) uses them on the CPU for the
    LSTMs with ``H >= 512``, where oneDNN measured as fast as the fused scan or faster, and
    not on a GPU, where the fused scan measured faster than cuDNN (:func:`scanrnn.kernels.wanted`;
    ``SCANRNN_KERNELS=1`` / ``0``: all / none; benchmarks/RESULTS.md).

    Data parallelism (JAX only, :mod:`scanrnn.parallel`): ``devices`` is an int N, ``"all"``,
    a list of JAX devices or a ``jax.sharding.Mesh``; inputs are split along their batch
    axis (axis 1 of time-major ``(T, B, ...)`` inputs, axis 0 of 1-D ones, scalars
    replicated), shared variables replicated and kept on the devices between calls.
    ``batch_axes={variable_or_name: axis or None}`` overrides an input's axis, or splits a
    shared variable (state carried between sequential batches) along ``axis``.  A batch
    size not divisible by the number of devices raises a ``ParallelError``.  With
    ``return_numpy=False`` the results stay JAX arrays on the devices.
    """
    return Function(inputs, outputs, updates, backend, **kwargs)
