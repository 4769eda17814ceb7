"""``fit``, ``evaluate``, ``predict`` and the per-batch calls: the loops over batches.

:class:`FitLoop` is the training half of :class:`~scanrnn.keras.models.Model`: it
checks the arrays (:mod:`.input_checks`), slices them into batches and calls the
compiled functions (:mod:`.step_functions`), with callbacks and a progress bar.

``fit`` keeps the device busy: the batch losses come back as device arrays
and are read only when the progress bar redraws, so JAX runs ahead of
Python as it would in a bare loop over the compiled step.

Under a data-parallel distribution (:mod:`scanrnn.keras.distribution`) every batch
of these loops is split over the devices, padded to a multiple of their count with
rows that count nowhere; the results are one device's.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from . import input_checks, sample_weights
from .callbacks import CallbackList, History
from .progbar import Progbar, format_logs
from .step_functions import StepFunctions

FLUSH_EVERY = 128


class _Accumulator:
    """Means over the batches so far, read from the device lazily, as Keras 3's: the losses
    weighted by each batch's size, each metric by the entries it counted in the batch
    (its mask's sum: a masked metric is a mean over all unmasked steps, not of batch means).

    A batch's outputs are ``[*losses, *metric values, *metric counts]``, the first
    ``n_losses`` of ``names`` being losses (:mod:`.step_functions`).
    """

    def __init__(self, names, n_losses):
        self.names, self.n_losses = names, n_losses
        self.totals = np.zeros(len(names))
        self.weights = np.zeros(len(names))
        self.pending = []

    def add(self, outputs, size):
        self.pending.append((outputs, size))
        if len(self.pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self):
        k = len(self.names)
        for outputs, size in self.pending:
            values = np.array([float(np.asarray(o)) for o in outputs])
            weights = np.concatenate([[size] * self.n_losses, values[k:]])
            self.totals += values[:k] * weights
            self.weights += weights
        self.pending = []

    def means(self) -> dict:
        self.flush()
        means = np.divide(self.totals, self.weights, out=np.zeros_like(self.totals),
                          where=self.weights > 0)
        return {name: float(value) for name, value in zip(self.names, means)}


def _batches(arrays, n, batch_size):
    """``(start, stop, [array[start:stop] ...])`` for consecutive batches."""
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield start, stop, [a[start:stop] for a in arrays]


def _single(values):
    return values[0] if len(values) == 1 else values


class FitLoop(StepFunctions):
    """The loops over batches of a compiled model."""

    def __init__(self):
        super().__init__()
        self.stop_training = False
        self.history = None

    def _standardize_x(self, x) -> list:
        return input_checks.standardize_x(self, x)

    def _weighted_targets(self, y, sample_weight=None, class_weight=None) -> list:
        """The target arrays followed by one loss-weight array per output (ones by default):
        what the train and test functions take after the inputs."""
        ys = input_checks.standardize_y(self, y)
        return ys + sample_weights.per_output(self, ys, sample_weight, class_weight)

    def _fit_data(self, x, y, sample_weight, class_weight, validation_split,
                  validation_data):
        """``(xs, ys, n, val)``: the training arrays and the validation ones (or None)."""
        xs = self._standardize_x(x)
        ys = self._weighted_targets(y, sample_weight, class_weight)
        n = input_checks.sample_count(xs, ys)
        if validation_data is not None:
            items = list(validation_data)
            if len(items) not in (2, 3):
                raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, "
                                 "sample_weight_val)")
            return xs, ys, n, (self._standardize_x(items[0]), self._weighted_targets(
                items[1], items[2] if len(items) == 3 else None))
        if not validation_split:
            return xs, ys, n, None
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        split = int(n * (1.0 - validation_split))
        val = ([a[split:] for a in xs], [a[split:] for a in ys])
        return [a[:split] for a in xs], [a[:split] for a in ys], split, val

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
        xs, ys, n, val = self._fit_data(x, y, sample_weight, class_weight, validation_split,
                                        validation_data)
        batch_size = input_checks.batch_size_for(self, batch_size, n, "fit")
        if val is not None:
            input_checks.batch_size_for(self, batch_size, input_checks.sample_count(*val),
                                        "validation")
        if shuffle is True and self.stateful_layers():
            warnings.warn("fitting a stateful model with shuffle=True: consecutive batches are "
                          "not consecutive text, so the carried state links unrelated "
                          "sequences; pass shuffle=False", stacklevel=2)
        self._function("train", None, self._distribution_in_effect())
        steps = math.ceil(n / batch_size)
        self.history = History()
        cbs = CallbackList([self.history, *(callbacks or [])], self,
                           {"batch_size": batch_size, "epochs": epochs, "steps": steps,
                            "samples": n, "verbose": verbose, "metrics": self.metrics_names})
        self.stop_training = False
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
        return self.history

    def _train_epoch(self, xs, ys, n, batch_size, shuffle, bar, cbs):
        steps = math.ceil(n / batch_size)
        batch_order = range(steps)
        if shuffle == "batch":
            batch_order = np.random.permutation(steps)
        elif shuffle:
            perm = np.random.permutation(n)
            xs, ys = [a[perm] for a in xs], [a[perm] for a in ys]
        acc = _Accumulator(self.metrics_names, len(self.loss_names))
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
        acc = _Accumulator(self.metrics_names, len(self.loss_names))
        for start, stop, batch in _batches([*xs, *ys], input_checks.sample_count(xs, ys),
                                           batch_size):
            acc.add(self._run("test", batch), stop - start)
        return acc.means()

    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, sample_weight=None,
                 return_dict=False):
        """Loss (and metrics) on ``(x, y)``: a float, or ``[loss, *metrics]``.  The loss
        weighs each sample by ``sample_weight`` (Keras 3: the mean of ``loss * weight``)."""
        self._require_compiled("evaluate")
        xs, ys = self._standardize_x(x), self._weighted_targets(y, sample_weight)
        n = input_checks.sample_count(xs, ys)
        logs = self._evaluate_arrays(xs, ys,
                                     input_checks.batch_size_for(self, batch_size, n,
                                                                 "evaluate"))
        if verbose:
            print(format_logs(logs).lstrip(" -"))
        return logs if return_dict else _single(list(logs.values()))

    def predict(self, x, batch_size=None, verbose=0):
        """The outputs for ``x``: an array, or a list of arrays for several outputs.

        Any batch size works for a stateless model (each new size compiles once on
        JAX); a stateful model needs its fixed batch size (see ``reset_states``).
        """
        xs = self._standardize_x(x)
        n = input_checks.sample_count(xs)
        batch_size = input_checks.batch_size_for(self, batch_size, n, "predict")
        chunks = [[] for _ in self.outputs]
        bar = Progbar(math.ceil(n / batch_size), verbose=verbose)
        for start, _, batch in _batches(xs, n, batch_size):
            for chunk, out in zip(chunks, self._run("predict", batch)):
                chunk.append(out)
            if bar.due():
                bar.update(start // batch_size + 1)
        bar.update(bar.target, final=True)
        return _single([np.concatenate([np.asarray(c) for c in chunk]) for chunk in chunks])

    def _one_batch(self, kind, x, y=None, sample_weight=None, class_weight=None):
        xs = self._standardize_x(x)
        ys = [] if y is None else self._weighted_targets(y, sample_weight, class_weight)
        n = input_checks.sample_count(xs, ys)
        input_checks.batch_size_for(self, n, n, f"{kind}_on_batch")
        outputs = self._run(kind, [*xs, *ys])
        return outputs if kind == "predict" else outputs[:len(self.metrics_names)]

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One training step on one batch; the loss (or ``[loss, *metrics]``)."""
        self._require_compiled("training")
        return _single([float(np.asarray(v)) for v in
                        self._one_batch("train", x, y, sample_weight, class_weight)])

    def test_on_batch(self, x, y, sample_weight=None):
        """Loss (and metrics) of one batch, without training."""
        self._require_compiled("test_on_batch")
        return _single([float(np.asarray(v)) for v in
                        self._one_batch("test", x, y, sample_weight)])

    def predict_on_batch(self, x):
        """The outputs of one batch."""
        return _single([np.asarray(r) for r in self._one_batch("predict", x)])


__all__ = ["FitLoop"]
