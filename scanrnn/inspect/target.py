"""What :func:`scanrnn.inspect.explain` can study, turned into one :class:`GraphSpec`.

A graph to study is ``inputs -> outputs`` plus ``updates`` (Theano's triple), with
optional example argument values for timing.  Accepted targets:

* a :class:`GraphSpec`;
* a :class:`scanrnn.compile.Function` (``scanrnn.function(...)``);
* a ``pytensor`` compiled function: only its rewritten graph (``f.maker.fgraph``) and its
  speed can be studied, since PyTensor rewrites the graph it compiles in place; pass the
  symbolic graph or a :func:`scanrnn.function` result to see the rewriting too;
* a symbolic graph: ``(outputs, inputs)``, ``(outputs, inputs, updates)``, a dict with
  keys ``outputs``, ``inputs``, ``updates``, or a single output variable;
* a model: anything with a ``graph_spec()`` / ``training_graph()`` method (returning one of
  the above), a ``train_function`` (a compiled function, or a method returning one, as
  :mod:`scanrnn.keras` models have once ``compile()``-d), or a
  :class:`scanrnn.lm.CharLM` (studied with :func:`~scanrnn.inspect.specs.lm_training_spec`);
* a run directory written by ``scanrnn train`` (a path), or a model spec string such as
  ``"d2l"`` or ``"lstm:hidden=64"`` (see :mod:`scanrnn.inspect.specs`).
"""

from __future__ import annotations

import os

from pytensor.compile.executor import Function as PytensorFunction
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.traversal import graph_inputs

from ..compile import Function as ScanrnnFunction
from ..lm.model import CharLM
from .graph_spec import GraphSpec, example_args
from .specs import lm_training_spec, spec_from_path_or_model

__all__ = ["GraphSpec", "as_graph_spec", "example_args"]


def _from_scanrnn_function(f) -> GraphSpec:
    kwargs = {k: v for k, v in getattr(f, "_fn_kwargs", {}).items() if k != "profile"}
    kwargs["kernels"] = f.kernels  # explain() follows the function's own choice
    if getattr(f, "givens", None):
        kwargs["givens"] = f.givens
    return GraphSpec(name=f.name or "function", inputs=f.inputs, outputs=f.outputs,
                     updates=f.updates, backend=f.backend, fn_kwargs=kwargs,
                     description=f"scanrnn.function on {f.backend}")


def _linker_backend(maker) -> str | None:
    name = type(maker.linker).__name__
    if name == "JAXLinker":
        return "jax"
    if name == "NumbaLinker":
        return "numba"
    if name == "VMLinker":
        return "c" if getattr(maker.linker, "c_thunks", True) else "python"
    if name == "PerformLinker":
        return "python"
    return None


def _from_pytensor_function(f) -> GraphSpec:
    maker = f.maker
    inputs = [i.variable for i in maker.inputs if not i.shared]
    updates = {i.variable: i.update for i in maker.inputs if i.update is not None}
    outputs = [o.variable for o in maker.outputs]
    return GraphSpec(name=maker.name or getattr(f, "name", None) or "function", inputs=inputs,
                     outputs=outputs, updates=updates, backend=_linker_backend(maker),
                     description="an already compiled pytensor.function", compiled=f)


def _from_symbolic(target) -> GraphSpec:
    if isinstance(target, dict):
        unknown = set(target) - {"outputs", "inputs", "updates", "name", "example_args"}
        if unknown or "outputs" not in target:
            raise TypeError("a graph dict needs 'outputs' (and 'inputs', 'updates'); "
                            f"unexpected keys: {sorted(unknown)}")
        outputs = target["outputs"]
        inputs = target.get("inputs")
        updates = target.get("updates") or {}
        name = target.get("name", "graph")
        args = target.get("example_args")
    elif isinstance(target, Variable):
        outputs, inputs, updates, name, args = [target], None, {}, target.name or "graph", None
    else:
        items = list(target)
        if len(items) not in (2, 3):
            raise TypeError("a symbolic graph is (outputs, inputs) or (outputs, inputs, updates)")
        outputs, inputs = items[0], items[1]
        updates = items[2] if len(items) == 3 else {}
        name, args = "graph", None
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    if inputs is None:
        inputs = [v for v in graph_inputs(outputs + list(dict(updates).values()))
                  if v.owner is None and not isinstance(v, (SharedVariable, Constant))]
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    return GraphSpec(name=name, inputs=inputs, outputs=outputs, updates=dict(updates),
                     example_args=args, description="symbolic graph")


def _looks_like_graph(target) -> bool:
    if isinstance(target, (Variable, dict)):
        return True
    if isinstance(target, (tuple, list)) and len(target) in (2, 3):
        first = target[0]
        return isinstance(first, Variable) or (
            isinstance(first, (list, tuple)) and all(isinstance(v, Variable) for v in first))
    return False


def _from_model(target) -> GraphSpec | None:
    for hook in ("graph_spec", "training_graph"):
        method = getattr(target, hook, None)
        if callable(method):
            result = method()
            spec = as_graph_spec(result)
            if spec.name in ("graph", "function"):
                spec.name = f"{type(target).__name__} training step"
            return spec
    fn = getattr(target, "train_function", None)
    if callable(fn) and not isinstance(fn, (ScanrnnFunction, PytensorFunction)):
        fn = fn()            # Keras-like models: model.train_function() compiles the step
    if isinstance(fn, (ScanrnnFunction, PytensorFunction)):
        spec = as_graph_spec(fn)
        spec.name = f"{getattr(target, 'name', None) or type(target).__name__} training step"
        return spec
    if isinstance(target, CharLM):
        return lm_training_spec(target)
    return None


def as_graph_spec(target, inputs=None) -> GraphSpec:
    """Turn any accepted target into a :class:`GraphSpec` (see the module docstring).

    ``inputs`` (a list of example argument values) replaces the target's own examples.
    """

    if isinstance(target, GraphSpec):
        spec = target
    elif isinstance(target, ScanrnnFunction):
        spec = _from_scanrnn_function(target)
    elif isinstance(target, PytensorFunction):
        spec = _from_pytensor_function(target)
    elif isinstance(target, (str, os.PathLike)):
        spec = spec_from_path_or_model(target)
    elif _looks_like_graph(target):
        spec = _from_symbolic(target)
    else:
        spec = _from_model(target)
        if spec is None:
            raise TypeError(
                f"cannot study a {type(target).__name__}: pass a scanrnn.function(...) result, "
                "a pytensor function, (outputs, inputs[, updates]), a model (CharLM, or an "
                "object with graph_spec() / training_graph()), a run directory or a model "
                "spec such as 'd2l' or 'lstm:hidden=64'")
    if inputs is not None:
        inputs = list(inputs)
        if len(inputs) != len(spec.inputs):
            names = ", ".join(v.name or f"input{i}" for i, v in enumerate(spec.inputs))
            raise ValueError(f"{len(inputs)} example input(s) given; the graph takes "
                             f"{len(spec.inputs)} ({names})")
        spec.example_args = inputs
    if spec.example_args is None:
        spec.example_args = example_args(spec.inputs)
    return spec

