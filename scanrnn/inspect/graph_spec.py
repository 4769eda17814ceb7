"""A symbolic graph to compile and study: its inputs, outputs, updates and example
arguments (:class:`GraphSpec`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.traversal import graph_inputs

__all__ = ["GraphSpec", "example_args"]


@dataclass
class GraphSpec:
    """A symbolic graph to compile and study.

    Attributes
    ----------
    name : str
        Shown in reports (``"d2l training step"``).
    inputs, outputs : list of Variable
    updates : dict
        ``{shared: new value}``.
    example_args : list, optional
        One value per input, used to run and time the compiled function (and needed
        by JAX, which compiles for concrete shapes).
    backend : str, optional
        The backend the target was compiled for; ``"auto"`` means this one.
    fn_kwargs : dict
        Extra keyword arguments for :func:`scanrnn.function` (``givens``, ...).
    description : str
        One or two lines on what the graph is.
    compiled : pytensor Function, optional
        Set when the target was an already compiled ``pytensor.function``: its symbolic
        graph is gone (PyTensor rewrites its own copy in place), so only its rewritten
        graph can be studied and timed, on its own backend.
    step_source : str, optional
        Source code of the scan step, when known (shown by the guided walk).
    """

    name: str
    inputs: list
    outputs: list
    updates: dict = field(default_factory=dict)
    example_args: list | None = None
    backend: str | None = None
    fn_kwargs: dict = field(default_factory=dict)
    description: str = ""
    step_source: str | None = None
    compiled: object = None

    def __post_init__(self):
        self.inputs = list(self.inputs)
        self.outputs = list(self.outputs) if isinstance(self.outputs, (list, tuple)) \
            else [self.outputs]
        self.updates = dict(self.updates or {})
        for i, var in enumerate(self.inputs):
            if not isinstance(var, Variable) or var.owner is not None \
                    or isinstance(var, (SharedVariable, Constant)):
                raise ValueError(f"input {i} ({var!r}) is not a symbolic input variable: "
                                 "inputs are the pt.tensor / pt.matrix ... variables the "
                                 "function takes as arguments")
        if not self.outputs and not self.updates:
            raise ValueError("the graph has no outputs and no updates: nothing to study")
        if self.example_args is not None and len(self.example_args) != len(self.inputs):
            raise ValueError(f"{len(self.example_args)} example argument(s) for "
                             f"{len(self.inputs)} input(s)")

    def shared(self) -> list:
        """The shared variables the graph reads or updates."""
        roots = self.outputs + list(self.updates.values())
        found = [v for v in graph_inputs(roots) if isinstance(v, SharedVariable)]
        found += [k for k in self.updates if isinstance(k, SharedVariable)]
        return list(dict.fromkeys(found))

    def params(self) -> list:
        """Named float shared variables (the model's parameters and optimizer state)."""
        return [v for v in self.shared() if v.name and str(getattr(v, "dtype", "")).startswith(
            "float")]


def example_args(inputs) -> list | None:
    """Zero / small random values for inputs whose shapes are all static, else None.

    Integer inputs get zeros (valid token ids); float inputs small normal noise.
    """
    rng = np.random.default_rng(0)
    values = []
    for var in inputs:
        shape = getattr(var.type, "shape", None)
        if shape is None or any(s is None for s in shape):
            return None
        if var.dtype.startswith(("int", "uint", "bool")):
            values.append(np.zeros(shape, dtype=var.dtype))
        else:
            values.append((0.1 * rng.standard_normal(shape)).astype(var.dtype))
    return values
