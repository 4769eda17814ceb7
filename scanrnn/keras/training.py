"""``compile``, ``fit``, ``evaluate``, ``predict`` and the per-batch calls.

Each model compiles (lazily, on first use) at most three functions with
:func:`scanrnn.function`: ``train`` (loss, metrics; optimizer updates merged
with the layers' state, batch-norm and dropout updates), ``test`` (loss,
metrics; state updates) and ``predict`` (outputs; state updates).  Their
inputs have a free batch axis; the core's :class:`~scanrnn.backends.Function`
compiles one version per input shape on JAX (a new batch size costs one
compile, then is cached), and one for all shapes on the other backends.

``fit`` keeps the device busy: the batch losses come back as device arrays
and are read only when the progress bar redraws, so JAX runs ahead of
Python as it would in a bare loop over the compiled step.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytensor.tensor as pt

from .. import losses as core_losses
from .. import optim
from .._config import floatx
from ..backends import function as compile_function
from ..backends import resolve_backend
from . import losses as klosses
from . import optimizers, sample_weights
from .batch_one import single_batch, updates_sharing_slots
from .callbacks import CallbackList, History
from .engine import Context, shape_str
from .progbar import Progbar, format_logs

FLUSH_EVERY = 128


def _named(values, names):
    return {name: float(value) for name, value in zip(names, values)}


class _Accumulator:
    """Sample-weighted means of per-batch outputs, read from the device lazily."""

    def __init__(self, names):
        self.names = names
        self.totals = np.zeros(len(names))
        self.count = 0
        self.pending = []

    def add(self, outputs, size):
        self.pending.append((outputs, size))
        if len(self.pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self):
        for outputs, size in self.pending:
            self.totals += np.array([float(np.asarray(o)) for o in outputs]) * size
            self.count += size
        self.pending = []

    def means(self) -> dict:
        self.flush()
        return _named(self.totals / max(self.count, 1), self.names)


class Trainer:
    """The training half of :class:`~scanrnn.keras.models.Model`."""

    def __init__(self):
        self.optimizer = None
        self.loss = None
        self.stop_training = False
        self.history = None
        self.backend = "auto"
        self._compiled = False
        self._compile_args = None
        self._functions = {}

    def _invalidate(self):
        self._functions = {}
        self._loss_setup = None

    # -- compile -------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                sample_weight_mode=None, backend="auto", **kwargs):
        """Choose the loss(es), optimizer and metrics.

        Parameters
        ----------
        optimizer : str or Optimizer
            ``'adam'``, ``'rmsprop'``, ``'sgd'``, ``'adagrad'`` or an instance (``Adam()``).
        loss : str, function, list or dict
            One loss for every output, or one per output (by position or output name).
        metrics : list of str
            E.g. ``['accuracy']``; computed for every output.
        loss_weights : list or dict of float, optional
            The total loss is ``sum(weight_i * loss_i)``.
        backend : str
            ``"auto"`` (JAX when installed), ``"jax"``, ``"numba"``, ``"c"``, ``"python"``.
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
        self.loss = loss
        self._compile_args = {"loss": loss, "metrics": list(metrics or []),
                              "loss_weights": loss_weights}
        self._compiled = True
        self._invalidate()
        if self.built:
            self._losses()

    def _require_compiled(self, what):
        if not self._compiled:
            raise RuntimeError(f"compile the model before {what}: "
                               f"model.compile(loss=..., optimizer=...)")

    def _per_output(self, spec, what, default):
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
        if getattr(self, "_loss_setup", None):
            return self._loss_setup
        args = self._compile_args
        losses = [klosses.get(x) for x in self._per_output(args["loss"], "loss", None)]
        weights = [float(w) for w in self._per_output(args["loss_weights"], "loss_weights",
                                                      1.0)]
        metric_specs = self._per_output(args["metrics"], "metrics", [])
        multi = len(self.outputs) > 1
        seen, setup = {}, []
        for i, (loss, weight, specs) in enumerate(zip(losses, weights, metric_specs)):
            metrics = []
            for spec in as_items(specs):
                metric = klosses.get_metric(spec, loss)
                if metric.sparse != loss.sparse:
                    raise ValueError(f"metric {metric.name!r} does not fit loss {loss.name!r} "
                                     f"(one takes class ids, the other one-hot targets)")
                name = f"{self.output_names[i]}_{metric.name}" if multi else metric.name
                seen[name] = seen.get(name, 0) + 1
                if seen[name] > 1:
                    name = f"{name}_{seen[name] - 1}"
                metrics.append((name, metric))
            setup.append((loss, weight, metrics))
        self._loss_setup = setup
        return setup

    @property
    def metrics_names(self) -> list[str]:
        """``['loss', *metric names]``: the order of ``evaluate``'s results."""
        return ["loss"] + [name for _, _, ms in self._losses() for name, _ in ms]

    # -- compiled functions -----------------------------------------------------------------------
    def _target_variables(self):
        targets = []
        for i, (t, (loss, _, _)) in enumerate(zip(self.outputs, self._losses())):
            shape = (None, *t.shape[1:-1]) if loss.sparse else (None, *t.shape[1:])
            dtype = "int32" if loss.sparse else floatx()
            targets.append(pt.tensor(name=f"{self.output_names[i]}_target", shape=shape,
                                     dtype=dtype))
        return targets

    def _weight_variables(self, targets):
        """One per-sample loss weight input per output, shaped like its losses."""
        return [pt.tensor(name=f"{self.output_names[i]}_sample_weight",
                          shape=(None, *t.type.shape[1:(None if loss.sparse else -1)]),
                          dtype=floatx())
                for i, (t, (loss, _, _)) in enumerate(zip(targets, self._losses()))]

    def _loss_graph(self, outputs, targets, ctx, sample_weights=None):
        total, metric_values = 0, []
        sample_weights = sample_weights or [None] * len(outputs)
        for out_t, pred, y, sw, (loss, weight, metrics) in zip(
                self.outputs, outputs, targets, sample_weights, self._losses()):
            classes = out_t.shape[-1]
            logits = ctx.logits.get(pred)
            mask = ctx.masks.get(pred)
            values = loss(y, pred, logits=logits, num_classes=classes)
            if mask is not None and mask.ndim != values.ndim:
                mask = None
            weighted = values if sw is None else values * sw
            total = total + weight * core_losses.reduce(weighted, "mean", mask)
            for _, metric in metrics:
                metric_values.append(core_losses.reduce(
                    metric(y, pred, logits=logits, num_classes=classes), "mean", mask))
        return total, metric_values

    def _trainable_params(self):
        return self.trainable_weights

    def _function(self, kind, batch_size=None):
        """The compiled ``kind`` function; ``batch_size=1``: its batch-of-one graph."""
        fn = self._functions.get((kind, batch_size))
        if fn is None:
            fn = self._functions[(kind, batch_size)] = self._make_function(kind, batch_size)
        return fn

    def _run(self, kind, arrays):
        """Call the compiled ``kind`` function on one batch (see :mod:`.batch_one`)."""
        return self._function(kind, single_batch(resolve_backend(self.backend), arrays))(*arrays)

    def _make_function(self, kind, batch_size=None):
        ctx = Context(training=kind == "train")
        inputs, outputs = self.build_graph(ctx, batch_size)
        common = {"backend": self.backend, "name": f"{self.name}.{kind}",
                  "return_numpy": False, "on_unused_input": "ignore"}
        if kind == "predict":
            return compile_function(inputs, outputs, ctx.updates, **common)
        targets = self._target_variables()
        weights = self._weight_variables(targets)
        loss, metric_values = self._loss_graph(outputs, targets, ctx, weights)
        updates = ctx.updates
        if kind == "train":
            updates = optim.merge(self._optimizer_updates(loss, batch_size), ctx.updates)
        return compile_function(inputs + targets + weights, [loss, *metric_values], updates,
                                **common)

    def _optimizer_updates(self, loss, batch_size):
        params = self._trainable_params()
        if batch_size is None:
            updates = self.optimizer.get_updates(loss, params)
            self._optimizer_slots = list(updates.slots)
            return updates
        self._function("train")                  # the general step owns the optimizer state
        return updates_sharing_slots(self.optimizer, loss, params, self._optimizer_slots)

    def train_function(self):
        """The compiled training step ``f(*inputs, *targets, *sample_weights) -> [loss,
        *metrics]`` (one sample-weight array per output, see :mod:`.sample_weights`)."""
        self._require_compiled("training")
        return self._function("train")

    # -- data ----------------------------------------------------------------------------------
    def _embedding_limits(self):
        """For each model input, the Embedding layers fed by it directly."""
        limits = []
        for t in self.inputs:
            found = []
            for node in self._nodes:
                layer = node.layer
                if any(inp is t for inp in node.inputs) and hasattr(layer, "input_dim") \
                        and type(layer).__name__ == "Embedding":
                    found.append(layer)
            limits.append(found)
        return limits

    def _standardize_x(self, x):
        if x is None:
            raise ValueError("no input data given")
        if isinstance(x, dict):
            if not self.built:
                raise ValueError("inputs by name need a built model")
            missing = [n for n in self.input_names if n not in x]
            if missing:
                raise ValueError(f"missing input(s) {missing}; the model inputs are "
                                 f"{', '.join(self.input_names)}")
            arrays = [x[n] for n in self.input_names]
        else:
            _expand_1d_in_place(x)
            arrays = list(x) if isinstance(x, (list, tuple)) else [x]
        if not self.built:
            self.ensure_built_from(arrays)
        if len(arrays) != len(self.inputs):
            raise ValueError(f"model {self.name!r} has {len(self.inputs)} input(s) "
                             f"({', '.join(self.input_names)}), got {len(arrays)} array(s)")
        out = []
        for array, t, name, embeddings in zip(arrays, self.inputs, self.input_names,
                                              self._embedding_limits()):
            out.append(self._check_array(array, t.shape, t.dtype, f"input {name!r}",
                                         embeddings=embeddings))
        return out

    def _check_array(self, array, shape, dtype, what, embeddings=(), classes=None):
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
        else:
            if array.dtype.kind not in "fiub":
                raise ValueError(f"{what} must be numbers, got dtype {array.dtype}")
            array = array.astype(dtype, copy=False)
        return array

    def _standardize_y(self, y):
        if y is None:
            raise ValueError("no targets given (y)")
        if isinstance(y, dict):
            missing = [n for n in self.output_names if n not in y]
            if missing or len(set(self.output_names)) != len(self.output_names):
                raise ValueError(f"targets by name need unique output names and one array each;"
                                 f" outputs: {', '.join(self.output_names)}")
            arrays = [y[n] for n in self.output_names]
        else:
            _expand_1d_in_place(y)
            arrays = list(y) if isinstance(y, (list, tuple)) else [y]
        if len(arrays) != len(self.outputs):
            raise ValueError(f"model {self.name!r} has {len(self.outputs)} output(s) "
                             f"({', '.join(self.output_names)}), got {len(arrays)} target "
                             f"array(s)")
        out = []
        for array, t, name, (loss, _, _) in zip(arrays, self.outputs, self.output_names,
                                                self._losses()):
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
                out.append(self._check_array(array, t.shape[:-1], "int32", what,
                                             classes=t.shape[-1]))
            else:
                if loss.one_hot and array.ndim == len(t.shape) - 1 and \
                        array.dtype.kind in "iu" and t.shape[-1] != 1:
                    raise ValueError(f"{what} must be one-hot of shape "
                                     f"{shape_str(('N', *t.shape[1:]))}, got ids of shape "
                                     f"{array.shape}; use loss='sparse_categorical_crossentropy'"
                                     f" or to_categorical(y, {t.shape[-1]})")
                out.append(self._check_array(array, t.shape, floatx(), what))
        return out

    @staticmethod
    def _length(arrays, ys=()):
        lengths = {len(a) for a in [*arrays, *ys]}
        if len(lengths) != 1:
            raise ValueError(f"all input and target arrays need the same number of samples, "
                             f"got {sorted(len(a) for a in [*arrays, *ys])}")
        n = lengths.pop()
        if n == 0:
            raise ValueError("got 0 samples")
        return n

    def _batch_size(self, batch_size, n, what):
        fixed = self.stateful_batch_size()
        if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) <= 0):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if fixed is None:
            return 32 if batch_size is None else int(batch_size)
        size = fixed if batch_size is None else int(batch_size)
        advice = ("call model.reset_states(batch_size=k) to resize the carried state (weights "
                  "are kept), e.g. reset_states(batch_size=1) to run one sequence at a time")
        if size != fixed:
            raise ValueError(f"model {self.name!r} is stateful with batch size {fixed}; "
                             f"{what} got batch_size={size}. Use batch_size={fixed}, or "
                             f"{advice}")
        if n % fixed:
            raise ValueError(f"model {self.name!r} is stateful with batch size {fixed}, so "
                             f"{what} needs a multiple of {fixed} samples, got {n} (e.g. "
                             f"x[:{n // fixed * fixed}]), or {advice}")
        return size

    # -- the loops -----------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, *, nb_epoch=None, **kwargs):
        """Train for ``epochs`` passes over ``(x, y)``; returns a :class:`History`.

        Keras 1's ``nb_epoch`` is ``epochs``.  ``shuffle`` is True (a new order each
        epoch), False (for stateful models) or ``'batch'`` (shuffle whole batches).
        Stateful models need ``batch_size`` equal to their fixed batch size.
        ``sample_weight`` ``(N,)`` or per step ``(N, T)`` (a list or dict for several
        outputs) and ``class_weight`` ``{class id: weight}`` scale each sample's loss
        as in Keras 3 (:mod:`scanrnn.keras.sample_weights`); metrics are unweighted.
        """
        if kwargs:
            raise TypeError(f"fit got unknown argument(s): {', '.join(sorted(kwargs))}")
        epochs = int(nb_epoch if nb_epoch is not None else epochs)
        self._require_compiled("fit")
        xs = self._standardize_x(x)
        ys = self._weighted_targets(y, sample_weight, class_weight)
        n = self._length(xs, ys)
        val = None
        if validation_data is not None:
            items = list(validation_data)
            if len(items) not in (2, 3):
                raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, "
                                 "sample_weight_val)")
            val = (self._standardize_x(items[0]),
                   self._weighted_targets(items[1], items[2] if len(items) == 3 else None))
        elif validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            split = int(n * (1.0 - validation_split))
            val = ([a[split:] for a in xs], [a[split:] for a in ys])
            xs, ys, n = [a[:split] for a in xs], [a[:split] for a in ys], split
        batch_size = self._batch_size(batch_size, n, "fit")
        if val is not None:
            self._batch_size(batch_size, self._length(*val), "validation")
        if shuffle is True and self.stateful_layers():
            warnings.warn("fitting a stateful model with shuffle=True: consecutive batches are "
                          "not consecutive text, so the carried state links unrelated "
                          "sequences; pass shuffle=False", stacklevel=2)
        self.train_function()
        history = History()
        steps = math.ceil(n / batch_size)
        params = {"batch_size": batch_size, "epochs": epochs, "steps": steps, "samples": n,
                  "verbose": verbose, "metrics": self.metrics_names}
        cbs = CallbackList([history, *(callbacks or [])], self, params)
        self.stop_training = False
        self.history = history
        cbs.on_train_begin()
        for epoch in range(int(initial_epoch), epochs):
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            cbs.on_epoch_begin(epoch)
            bar = Progbar(steps, verbose=verbose)
            logs = self._train_epoch(xs, ys, n, batch_size, shuffle, bar, cbs)
            if val is not None:
                val_logs = self._evaluate_arrays(val[0], val[1], batch_size)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            bar.update(steps, logs, final=True)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end()
        return history

    def _train_epoch(self, xs, ys, n, batch_size, shuffle, bar, cbs):
        steps = math.ceil(n / batch_size)
        batch_order = range(steps)
        if shuffle == "batch":
            batch_order = np.random.permutation(steps)
        elif shuffle:
            perm = np.random.permutation(n)
            xs, ys = [a[perm] for a in xs], [a[perm] for a in ys]
        acc = _Accumulator(self.metrics_names)
        batch_logs = cbs.wants_batch_logs
        for done, step in enumerate(batch_order, 1):
            start = step * batch_size
            stop = min(start + batch_size, n)
            cbs.on_train_batch_begin(done - 1, {"batch": done - 1, "size": stop - start})
            outputs = self._run("train", [a[start:stop] for a in [*xs, *ys]])
            acc.add(outputs, stop - start)
            if batch_logs:  # Keras 3: the running means over the epoch so far
                cbs.on_train_batch_end(done - 1, {"batch": done - 1, "size": stop - start,
                                                  **acc.means()})
            if bar.due():
                bar.update(done, acc.means())
            if self.stop_training:
                break
        return acc.means()

    def _evaluate_arrays(self, xs, ys, batch_size):
        n = self._length(xs, ys)
        acc = _Accumulator(self.metrics_names)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            acc.add(self._run("test", [a[start:stop] for a in [*xs, *ys]]), stop - start)
        return acc.means()

    def _weighted_targets(self, y, sample_weight=None, class_weight=None) -> list:
        """The target arrays followed by one loss-weight array per output (ones by default):
        what the train and test functions take after the inputs."""
        ys = self._standardize_y(y)
        return ys + sample_weights.per_output(self, ys, sample_weight, class_weight)

    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, sample_weight=None,
                 return_dict=False):
        """Loss (and metrics) on ``(x, y)``: a float, or ``[loss, *metrics]``.  The loss
        weighs each sample by ``sample_weight`` (Keras 3: the mean of ``loss * weight``)."""
        self._require_compiled("evaluate")
        xs, ys = self._standardize_x(x), self._weighted_targets(y, sample_weight)
        n = self._length(xs, ys)
        logs = self._evaluate_arrays(xs, ys, self._batch_size(batch_size, n, "evaluate"))
        if verbose:
            print(format_logs(logs).lstrip(" -"))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose=0):
        """The outputs for ``x``: an array, or a list of arrays for several outputs.

        Any batch size works for a stateless model (each new size compiles once on
        JAX); a stateful model needs its fixed batch size (see ``reset_states``).
        """
        xs = self._standardize_x(x)
        n = self._length(xs)
        batch_size = self._batch_size(batch_size, n, "predict")
        chunks = [[] for _ in self.outputs]
        bar = Progbar(math.ceil(n / batch_size), verbose=verbose)
        for start in range(0, n, batch_size):
            outputs = self._run("predict", [a[start:start + batch_size] for a in xs])
            for chunk, out in zip(chunks, outputs):
                chunk.append(out)
            if bar.due():
                bar.update(start // batch_size + 1)
        bar.update(bar.target, final=True)
        results = [np.concatenate([np.asarray(c) for c in chunk]) for chunk in chunks]
        return results if len(results) > 1 else results[0]

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One training step on one batch; the loss (or ``[loss, *metrics]``)."""
        xs, ys = self._standardize_x(x), self._weighted_targets(y, sample_weight, class_weight)
        self._batch_size(self._length(xs, ys), self._length(xs, ys), "train_on_batch")
        self.train_function()
        values = [float(np.asarray(v)) for v in self._run("train", [*xs, *ys])]
        return values[0] if len(values) == 1 else values

    def test_on_batch(self, x, y, sample_weight=None):
        """Loss (and metrics) of one batch, without training."""
        self._require_compiled("test_on_batch")
        xs, ys = self._standardize_x(x), self._weighted_targets(y, sample_weight)
        self._batch_size(self._length(xs, ys), self._length(xs, ys), "test_on_batch")
        values = [float(np.asarray(v)) for v in self._run("test", [*xs, *ys])]
        return values[0] if len(values) == 1 else values

    def predict_on_batch(self, x):
        """The outputs of one batch."""
        xs = self._standardize_x(x)
        self._batch_size(self._length(xs), self._length(xs), "predict_on_batch")
        results = [np.asarray(r) for r in self._run("predict", xs)]
        return results if len(results) > 1 else results[0]


def _expand_1d_in_place(data):
    """Keras 1 quirk the lesson relies on: 1-D arrays in a *list* passed to fit/predict are
    replaced, in that list, by their ``(N, 1)`` version (cells 52 and 71 then stack them)."""
    if isinstance(data, list):
        for i, item in enumerate(data):
            if np.ndim(item) == 1:
                data[i] = np.expand_dims(np.asarray(item), 1)


def as_items(spec) -> list:
    return list(spec) if isinstance(spec, (list, tuple)) else [spec]


__all__ = ["Trainer"]
