"""Callbacks: hooks the training loop calls at the start and end of training,
epochs and batches (Keras 1 ``on_batch_*`` and Keras 3 ``on_train_batch_*`` names).

As in Keras 3, the ``logs`` of a batch-end hook hold the running means of the
loss and metrics over the epoch so far (weighted by batch size), not the
batch's own values; the epoch-end ``logs`` hold the epoch's means.

``History`` is returned by ``fit``; ``LearningRateScheduler``, ``EarlyStopping``,
``ModelCheckpoint``, ``TerminateOnNaN`` and ``LambdaCallback`` are the usual ones.
"""

from __future__ import annotations

import inspect
import math
import warnings

from . import npz_format


class Callback:
    """Base class; ``self.model`` and ``self.params`` are set before training starts."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)

    def wants_batch_logs(self) -> bool:
        """Whether this callback reads per-batch logs (which costs a device sync per batch)."""
        cls = type(self)
        return any(getattr(cls, name) is not getattr(Callback, name)
                   for name in ("on_batch_end", "on_train_batch_end"))


class CallbackList:
    """Calls every callback in order."""

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback objects, got {type(cb).__name__}")
            cb.set_model(model)
            cb.set_params(params)

    @property
    def wants_batch_logs(self) -> bool:
        return any(cb.wants_batch_logs() for cb in self.callbacks)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args, **kwargs):
            for cb in self.callbacks:
                getattr(cb, hook)(*args, **kwargs)
        return call


class History(Callback):
    """``history.history['loss']``: one value per epoch of every logged quantity."""

    def __init__(self):
        super().__init__()
        self.epoch = []
        self.history = {}

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"<History epochs={len(self.epoch)} last={last}>"


class LambdaCallback(Callback):
    """A callback from functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
             "on_batch_begin", "on_batch_end")

    def __init__(self, **hooks):
        super().__init__()
        unknown = set(hooks) - set(self.HOOKS)
        if unknown:
            raise TypeError(f"LambdaCallback hooks are {', '.join(self.HOOKS)}; got "
                            f"{', '.join(sorted(unknown))}")
        self._hooks = hooks
        for name, fn in hooks.items():
            setattr(self, name, fn)

    def wants_batch_logs(self):
        return "on_batch_end" in self._hooks


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch start: ``schedule(epoch)`` or ``schedule(epoch, lr)``."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def _takes_lr(self) -> bool:
        try:
            params = inspect.signature(self.schedule).parameters.values()
        except (TypeError, ValueError):
            return False
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)

    def on_epoch_begin(self, epoch, logs=None):
        if self._takes_lr():
            lr = self.schedule(epoch, self.model.optimizer.lr)
        else:
            lr = self.schedule(epoch)
        self.model.optimizer.lr = lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: learning rate {float(lr):g}")


def _better(mode, monitor):
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return (lambda a, b: a < b) if mode == "min" else (lambda a, b: a > b)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs, as Keras 3: an epoch improves when it beats the best by more than ``min_delta``;
    training stops at the ``patience``-th epoch in a row that does not (never at the first);
    ``baseline``: the wait only restarts on epochs that also beat it; ``start_from_epoch``:
    epochs before it are not watched; ``restore_best_weights``: the best epoch's weights are
    set back when training ends (stopped early or not)."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.verbose, self.restore_best_weights = verbose, restore_best_weights
        self.baseline, self.start_from_epoch = baseline, start_from_epoch
        self.better = _better(mode, monitor)
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self.wait, self.best, self.best_weights, self.stopped_epoch = 0, None, None, None
        self.best_epoch = 0

    def _improves(self, value, reference) -> bool:
        """``value`` beats ``reference`` by more than ``min_delta`` (None: anything does)."""
        if reference is None:
            return True
        margin = self.min_delta if self.better(0, 1) else -self.min_delta  # min: value + d
        return self.better(value + margin, reference)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"EarlyStopping: {self.monitor!r} is not in the logs "
                          f"({', '.join(logs or {})})", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._improves(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print(f"Epoch {epoch + 1}: early stopping ({self.monitor} best {self.best:.4f})")

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) after each epoch; ``filepath`` may use
    ``{epoch}`` and log names, e.g. ``"weights.{epoch:02d}-{loss:.2f}.npz"``."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto"):
        super().__init__()
        npz_format.check_save_path(filepath, save_weights_only)  # before any epoch trains
        self.filepath, self.monitor, self.verbose = str(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.better = _better(mode, monitor)
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                warnings.warn(f"ModelCheckpoint: {self.monitor!r} is not in the logs",
                              stacklevel=2)
                return
            if self.best is not None and not self.better(value, self.best):
                return
            self.best = value
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved to {path}")


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite."""

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


__all__ = ["Callback", "CallbackList", "EarlyStopping", "History", "LambdaCallback",
           "LearningRateScheduler", "ModelCheckpoint", "TerminateOnNaN"]
