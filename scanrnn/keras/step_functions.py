"""The compiled per-batch functions of a model: ``train``, ``test`` and ``predict``.

Each model compiles (lazily, on first use) at most three functions with
:func:`scanrnn.function`: ``train`` (loss, metrics; optimizer updates merged
with the layers' state, batch-norm and dropout updates), ``test`` (loss,
metrics; state updates) and ``predict`` (outputs; state updates).  Their
inputs have a free batch axis; the core's :class:`~scanrnn.compile.Function`
compiles one version per input shape on JAX (a new batch size costs one
compile, then is cached), and one for all shapes on the other backends.

Train and test take ``(*inputs, *targets, *sample_weights)``: one target and one
per-sample loss weight array per output (:mod:`.sample_weights`).

Under a data-parallel distribution (:mod:`.distribution`) the functions are compiled
again for its devices (kept per distribution, sharing the weights and optimizer
state); their inputs are split along axis 0, train and test take one more input,
``valid`` ``(B,)``, and batches are padded to a multiple of the device count
(:mod:`.parallel_batches`).
"""

from __future__ import annotations

import pytensor.tensor as pt

from .. import losses as core_losses
from .. import optim
from .._config import floatx
from ..compile import function as compile_function
from ..compile import resolve_backend
from ..parallel import to_host
from . import distribution as distribution_lib
from . import parallel_batches
from .batch_one import single_batch, updates_sharing_slots
from .compile_settings import CompileSettings
from .engine import Context


class StepFunctions(CompileSettings):
    """Builds the symbolic loss of the model and compiles the per-batch functions."""

    def __init__(self):
        super().__init__()
        self._functions = {}
        self._optimizer_slots = None

    def _invalidate(self):
        super()._invalidate()
        self._functions = {}
        self._optimizer_slots = None

    def _distribution_in_effect(self):
        """The distribution set now, else the one set at ``compile``, else None."""
        return distribution_lib.distribution() or self._compile_distribution

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

    def _loss_graph(self, outputs, targets, ctx, sample_weights=None, valid=None):
        """``(total loss, [each output's loss], [metric values], [metric counts])``: scalars
        (an output's loss before its ``loss_weights`` factor); a count is how many
        entries its metric's mean is over (the mask's sum), so that a run's mean is over all
        of them as in Keras 3, not a mean of batch means.  A softmax output's loss is computed
        from its logits (``ctx.logits``) with the stable log-softmax.  ``valid`` ``(B,)``
        (data-parallel functions) masks padded rows out of every mean."""
        total, output_losses, metric_values, metric_counts = 0, [], [], []
        sample_weights = sample_weights or [None] * len(outputs)
        for out_t, pred, y, sw, (loss, weight, metrics) in zip(
                self.outputs, outputs, targets, sample_weights, self._losses()):
            classes = out_t.shape[-1]
            logits = ctx.logits.get(pred)
            mask = ctx.masks.get(pred)
            values = loss(y, pred, logits=logits, num_classes=classes)
            if mask is not None and mask.ndim != values.ndim:
                mask = None
            if valid is not None:
                mask = _rows_mask(valid, values, mask)
            weighted = values if sw is None else values * sw
            output_losses.append(core_losses.reduce(weighted, "mean", mask))
            total = total + weight * output_losses[-1]
            for _, metric in metrics:
                entries = metric(y, pred, logits=logits, num_classes=classes)
                metric_values.append(core_losses.reduce(entries, "mean", mask))
                count = entries.size if mask is None else pt.as_tensor_variable(mask).sum()
                metric_counts.append(pt.cast(count, floatx()))
        return total, output_losses, metric_values, metric_counts

    def _function(self, kind, batch_size=None, dist=None):
        """The compiled ``kind`` function; ``batch_size=1``: its batch-of-one graph;
        ``dist``: for that distribution's devices."""
        key = (kind, batch_size, dist)
        fn = self._functions.get(key)
        if fn is None:
            fn = self._functions[key] = self._make_function(kind, batch_size, dist)
        return fn

    def _run(self, kind, arrays):
        """Call the compiled ``kind`` function on one batch (see :mod:`.batch_one`)."""
        dist = self._distribution_in_effect()
        if dist is not None:
            return self._run_parallel(kind, arrays, dist)
        return self._function(kind, single_batch(resolve_backend(self.backend), arrays))(*arrays)

    def _run_parallel(self, kind, arrays, dist):
        """One batch split over ``dist``'s devices, padded to a multiple of their count."""
        parallel_batches.check_stateful(self, dist)
        n = len(arrays[0])
        size = dist.padded_size(n)
        if size != n:
            parallel_batches.check_padding(self, kind, n, size, dist)
            arrays = parallel_batches.pad_rows(arrays, size)
        fn = self._function(kind, single_batch(resolve_backend(self.backend), arrays), dist)
        if kind != "predict":
            return fn(*arrays, parallel_batches.valid_rows(n, size))
        outputs = fn(*arrays)
        return outputs if size == n else [to_host(out)[:n] for out in outputs]

    def _make_function(self, kind, batch_size=None, dist=None):
        if dist is not None and resolve_backend(self.backend) != "jax":
            raise distribution_lib.ParallelError(
                f"a data-parallel distribution needs the JAX backend; model {self.name!r} "
                f"is compiled for {resolve_backend(self.backend)!r} (compile(backend='jax'))")
        ctx = Context(training=kind == "train")
        inputs, outputs = self.build_graph(ctx, batch_size)
        common = {"backend": self.backend, "name": f"{self.name}.{kind}",
                  "return_numpy": False, "on_unused_input": "ignore"}
        states = [s for layer in self.stateful_layers() for s in layer.states]
        if kind == "predict":
            if dist is not None:
                common.update(dist.function_options(inputs, states))
            return compile_function(inputs, outputs, ctx.updates, **common)
        targets = self._target_variables()
        weights = self._weight_variables(targets)
        valid = None if dist is None else pt.tensor(name="valid_rows", shape=(batch_size,),
                                                    dtype=floatx())
        loss, output_losses, metric_values, metric_counts = self._loss_graph(
            outputs, targets, ctx, weights, valid)
        output_losses = output_losses if len(output_losses) > 1 else []  # as loss_names
        updates = ctx.updates
        if kind == "train":
            updates = optim.merge(self._optimizer_updates(loss, batch_size, dist), ctx.updates)
        batched = inputs + targets + weights + ([] if valid is None else [valid])
        if dist is not None:
            common.update(dist.function_options(batched, states))
        return compile_function(batched, [loss, *output_losses, *metric_values,
                                          *metric_counts], updates, **common)

    def _optimizer_updates(self, loss, batch_size, dist=None):
        """The optimizer's updates; the first general training step owns its state (moments,
        step counter), the batch-of-one and other distributions' steps share it."""
        params = self.trainable_weights
        if self._optimizer_slots is None and batch_size is not None:
            self._function("train", None, dist)
        if self._optimizer_slots is None:
            updates = self.optimizer.get_updates(loss, params)
            self._optimizer_slots = list(updates.slots)
            return updates
        return updates_sharing_slots(self.optimizer, loss, params, self._optimizer_slots)

    def train_function(self):
        """The compiled training step ``f(*inputs, *targets, *sample_weights) -> [loss,
        *metrics]`` (one sample-weight array per output, see :mod:`.sample_weights`)."""
        self._require_compiled("training")
        return self._function("train")


def _rows_mask(valid, values, mask):
    """``mask`` (or ones) times ``valid`` ``(B,)`` broadcast to ``values``' shape."""
    rows = pt.broadcast_to(pt.shape_padright(valid, values.ndim - 1), values.shape)
    return rows if mask is None else rows * mask
