"""``compile``: the loss(es), metrics, loss weights, optimizer and backend of a model.

:class:`CompileSettings` is the first layer of a model's training half: it checks
``compile``'s arguments, keeps them, and turns them into one ``(Loss, weight,
[(metric name, metric)])`` triple per model output (:meth:`~CompileSettings._losses`),
which :mod:`.step_functions` builds the loss graph from.
"""

from __future__ import annotations

from ..compile import resolve_backend
from . import distribution as distribution_lib
from . import losses as klosses
from . import optimizers


def as_items(spec) -> list:
    """``spec`` as a list (a list or tuple as it is, anything else as its only item)."""
    return list(spec) if isinstance(spec, (list, tuple)) else [spec]


class CompileSettings:
    """What ``compile`` chose; the model's outputs and names come from the subclass."""

    def __init__(self):
        self.optimizer = None
        self.loss = None
        self.backend = "auto"
        self._compiled = False
        self._compile_args = None
        self._loss_setup = None
        self._compile_distribution = None

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                sample_weight_mode=None, backend="auto", **kwargs):
        """Choose the loss(es), optimizer and metrics.

        Parameters
        ----------
        optimizer : str or Optimizer
            ``'adam'``, ``'rmsprop'``, ``'sgd'``, ``'adagrad'`` or an instance (``Adam()``).
        loss : str, function, list or dict
            One loss for every output, or one per output (by position or output name).
        metrics : str, list of str, or dict
            E.g. ``['accuracy']`` (or ``'accuracy'``); computed for every output, or given
            per output name in a dict.
        loss_weights : list or dict of float, optional
            The total loss is ``sum(weight_i * loss_i)``.
        backend : str
            ``"auto"`` (JAX when installed), ``"jax"``, ``"numba"``, ``"c"``, ``"python"``.

        A data-parallel distribution set now (:mod:`scanrnn.keras.distribution`) is kept
        and used by ``fit``, ``evaluate`` and ``predict`` when none is set at their call.
        """
        for key in ("run_eagerly", "jit_compile", "steps_per_execution", "weighted_metrics"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"compile got unknown argument(s): {', '.join(sorted(kwargs))}")
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        if sample_weight_mode not in (None, "temporal"):   # (N, T) weights need no mode
            raise ValueError(f"sample_weight_mode must be None or 'temporal', got "
                             f"{sample_weight_mode!r}")
        for item in (loss.values() if isinstance(loss, dict) else as_items(loss)):
            klosses.get(item)
        self.optimizer = optimizers.get(optimizer)
        self.backend = resolve_backend(backend)
        self._compile_distribution = distribution_lib.distribution()
        self.loss = loss
        metrics = metrics if isinstance(metrics, dict) else as_items(metrics or [])
        self._compile_args = {"loss": loss, "metrics": metrics, "loss_weights": loss_weights}
        self._compiled = True
        self._invalidate()
        if self.built:
            self._losses()

    def _invalidate(self):
        self._loss_setup = None

    def _require_compiled(self, what):
        if not self._compiled:
            raise RuntimeError(f"compile the model before {what}: "
                               f"model.compile(loss=..., optimizer=...)")

    def _per_output(self, spec, what, default):
        """``spec`` (one value, a list by position or a dict by output name) as a list with
        one entry per model output."""
        names = self.output_names
        n = len(self.outputs)
        if spec is None:
            return [default] * n
        if isinstance(spec, dict):
            if len(set(names)) != len(names):
                raise ValueError(f"{what} given by output name, but output names repeat "
                                 f"({', '.join(names)}); give a list instead")
            unknown = set(spec) - set(names)
            if unknown:
                raise ValueError(f"{what} for unknown output(s) {sorted(unknown)}; outputs: "
                                 f"{', '.join(names)}")
            return [spec.get(name, default) for name in names]
        if isinstance(spec, (list, tuple)) and what != "metrics":
            if len(spec) != n:
                raise ValueError(f"{what} has {len(spec)} entries for {n} model outputs")
            return list(spec)
        return [spec] * n

    def _losses(self):
        """Per output: (Loss, weight, [(metric name, metric)]); computed once per build."""
        if self._loss_setup:
            return self._loss_setup
        args = self._compile_args
        losses = [klosses.get(x) for x in self._per_output(args["loss"], "loss", None)]
        weights = [float(w) for w in self._per_output(args["loss_weights"], "loss_weights",
                                                      1.0)]
        metric_specs = self._per_output(args["metrics"], "metrics", [])
        seen: dict[str, int] = {}
        self._loss_setup = [
            (loss, weight, self._named_metrics(i, loss, specs, seen))
            for i, (loss, weight, specs) in enumerate(zip(losses, weights, metric_specs))]
        return self._loss_setup

    def _named_metrics(self, i, loss, specs, seen):
        """``[(name, metric)]`` of output ``i``; names are prefixed with the output's name
        when the model has several outputs and numbered when they repeat."""
        metrics = []
        for spec in as_items(specs):
            metric = klosses.get_metric(spec, loss)
            if metric.sparse != loss.sparse:
                raise ValueError(f"metric {metric.name!r} does not fit loss {loss.name!r} "
                                 f"(one takes class ids, the other one-hot targets)")
            name = f"{self.output_names[i]}_{metric.name}" if len(self.outputs) > 1 \
                else metric.name
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name}_{seen[name] - 1}"
            metrics.append((name, metric))
        return metrics

    @property
    def loss_names(self) -> list[str]:
        """``['loss']``, and with several outputs each output's own (unweighted) loss,
        ``'<output>_loss'``, as Keras 3 reports them."""
        if len(self.outputs) == 1:
            return ["loss"]
        return ["loss"] + [f"{name}_loss" for name in self.output_names]

    @property
    def metrics_names(self) -> list[str]:
        """``[*loss_names, *metric names]``: the order of ``evaluate``'s results."""
        return self.loss_names + [name for _, _, ms in self._losses() for name, _ in ms]
