"""Keras-style optimizer objects over the update rules of :mod:`scanrnn.optim`.

An optimizer owns its learning rate as a shared float32 scalar, so
``model.optimizer.lr = 1e-4`` (Keras 1) or ``optimizer.learning_rate = 1e-4``
(Keras 3) takes effect at the next batch without recompiling.  The update
dict it returns is the core rule's (``sgd``, ``momentum``, ``rmsprop``,
``adagrad``, ``adam``); the model merges it with the layers' own updates.

>>> opt = Adam()
>>> opt.lr = 1e-4
>>> round(opt.lr, 6), round(float(opt.learning_rate_variable.get_value()), 6)
(0.0001, 0.0001)
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytensor.tensor as pt

from .. import init as initializers
from .. import optim
from .._config import floatx


class Optimizer:
    """Base class.  ``learning_rate`` (Keras 1: ``lr``), ``clipvalue``, ``decay``
    (``lr / (1 + decay * iterations)``) and, with Keras 3's meanings:

    - ``clipnorm``: each gradient ``g`` is clipped to L2 norm ``clipnorm`` on its own,
      ``g * clipnorm / max(|g|, clipnorm)`` (Keras 1 clipped the global norm here);
    - ``global_clipnorm``: all gradients scaled together so their joint norm is at
      most ``global_clipnorm``.

    The defaults are Keras 3's (``epsilon=1e-7``; Adagrad ``learning_rate=1e-3`` and
    ``initial_accumulator_value=0.1``), not Keras 1's nor :mod:`scanrnn.optim`'s.
    """

    default_lr = 0.01
    hyper_defaults: ClassVar[dict] = {}

    def __init__(self, learning_rate=None, *, lr=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, decay=0.0, **hyper):
        if learning_rate is not None and lr is not None and learning_rate != lr:
            raise ValueError("give the learning rate once, as learning_rate= or lr=")
        value = self.default_lr if learning_rate is None and lr is None else \
            (learning_rate if learning_rate is not None else lr)
        unknown = set(hyper) - set(self.hyper_defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown argument(s): "
                            f"{', '.join(sorted(unknown))}; it takes learning_rate (lr), "
                            f"{', '.join(self.hyper_defaults) or 'no other'} hyperparameters, "
                            f"clipnorm, global_clipnorm, clipvalue, decay")
        self.hyper = {**self.hyper_defaults, **hyper}
        self.learning_rate_variable = optim.shared_learning_rate(
            value, name=f"{type(self).__name__.lower()}.learning_rate")
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError("give clipnorm (per weight) or global_clipnorm (all weights "
                             "together), not both")
        for name, limit in (("clipnorm", clipnorm), ("global_clipnorm", global_clipnorm),
                            ("clipvalue", clipvalue)):
            if limit is not None and not (np.isfinite(limit) and limit > 0):
                raise ValueError(f"{name} must be a positive number (or None: no clipping), "
                                 f"got {limit!r}")
        self.clipnorm, self.global_clipnorm = clipnorm, global_clipnorm
        self.clipvalue = clipvalue
        self.decay = float(decay)
        if self.decay < 0:
            raise ValueError(f"decay must be >= 0, got {decay}")
        self.slots: list = []
        self._pending_slots: dict[str, np.ndarray] = {}

    # -- the learning rate ------------------------------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate (settable: the compiled functions read it at every call)."""
        return float(np.asarray(self.learning_rate_variable.get_value()))

    @lr.setter
    def lr(self, value):
        value = float(np.asarray(value))
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"learning rate must be a finite number >= 0, got {value}")
        self.learning_rate_variable.set_value(np.asarray(value, dtype=floatx()))

    learning_rate = lr

    # -- updates -----------------------------------------------------------------------------
    def rule(self, grads, params, learning_rate):
        raise NotImplementedError

    def get_updates(self, loss, params) -> optim.Updates:
        """``{shared: new value}`` for ``params`` (and the optimizer's own state)."""
        params = list(params)
        if not params:
            raise ValueError("the model has no trainable weights to optimise")
        grads = pt.grad(loss, params, disconnected_inputs="ignore")
        if self.clipvalue is not None:
            grads = [pt.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        grads = self._clip_norms(grads)
        lr = self.learning_rate_variable
        extra = optim.Updates()
        if self.decay:
            iterations = initializers.shared(0.0, name=f"{type(self).__name__.lower()}.iterations")
            lr = lr / (1.0 + np.asarray(self.decay, dtype=floatx()) * iterations)
            extra = optim.Updates({iterations: iterations + 1}, slots=[iterations])
        updates = optim.merge(self.rule(grads, params, lr), extra)
        updates.learning_rate = self.learning_rate_variable
        self.slots = list(updates.slots)
        self._apply_pending()
        return updates

    def _clip_norms(self, grads):
        """Keras 3's ``clipnorm`` (each gradient) and ``global_clipnorm`` (all together)."""
        if self.clipnorm is not None:
            limit = np.asarray(self.clipnorm, dtype=floatx())
            return [g * limit / pt.maximum(pt.sqrt(pt.sqr(g).sum()), limit) for g in grads]
        if self.global_clipnorm is not None:
            limit = np.asarray(self.global_clipnorm, dtype=floatx())
            norm = pt.sqrt(sum(pt.sqr(g).sum() for g in grads))
            return [g * (limit / pt.maximum(norm, limit)) for g in grads]
        return grads

    # -- state ---------------------------------------------------------------------------------
    def get_slot_values(self) -> dict[str, np.ndarray]:
        """The optimizer's state (moments, step counter) by variable name."""
        return {s.name: np.asarray(s.get_value()) for s in self.slots}

    def set_slot_values(self, values: dict) -> None:
        """Restore state saved by :meth:`get_slot_values` (now, or when the updates are built)."""
        self._pending_slots.update({k: np.asarray(v) for k, v in values.items()})
        self._apply_pending()

    def _apply_pending(self):
        for slot in self.slots:
            value = self._pending_slots.pop(slot.name, None)
            if value is not None:
                want = np.shape(slot.get_value(borrow=True))
                if value.shape != want:
                    raise ValueError(f"saved optimizer state {slot.name!r} has shape "
                                     f"{value.shape}, the model needs {want}")
                slot.set_value(value.astype(slot.dtype))

    def get_config(self) -> dict:
        config = {"learning_rate": self.lr, **self.hyper}
        if self.clipnorm is not None:
            config["clipnorm"] = self.clipnorm
        if self.global_clipnorm is not None:
            config["global_clipnorm"] = self.global_clipnorm
        if self.clipvalue is not None:
            config["clipvalue"] = self.clipvalue
        if self.decay:
            config["decay"] = self.decay
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(learning_rate={self.lr:g})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum."""

    default_lr = 0.01
    hyper_defaults: ClassVar[dict] = {"momentum": 0.0, "nesterov": False}

    def rule(self, grads, params, learning_rate):
        mu = float(self.hyper["momentum"])
        if mu == 0.0:
            return optim.sgd(grads, params, learning_rate)
        if self.hyper["nesterov"]:
            return optim.nesterov_momentum(grads, params, learning_rate, momentum=mu)
        return optim.momentum(grads, params, learning_rate, momentum=mu)


class RMSprop(Optimizer):
    """RMSprop: ``a <- rho a + (1-rho) g^2``; ``p <- p - lr g / sqrt(a + epsilon)``."""

    default_lr = 0.001
    hyper_defaults: ClassVar[dict] = {"rho": 0.9, "epsilon": 1e-7}

    def rule(self, grads, params, learning_rate):
        return optim.rmsprop(grads, params, learning_rate, rho=self.hyper["rho"],
                             epsilon=self.hyper["epsilon"])


class Adagrad(Optimizer):
    """Adagrad: ``a <- a + g^2`` from ``a = initial_accumulator_value``;
    ``p <- p - lr g / sqrt(a + epsilon)`` (Keras 3: lr 1e-3, a 0.1, epsilon 1e-7)."""

    default_lr = 0.001
    hyper_defaults: ClassVar[dict] = {"initial_accumulator_value": 0.1, "epsilon": 1e-7}

    def rule(self, grads, params, learning_rate):
        updates = optim.adagrad(grads, params, learning_rate, epsilon=self.hyper["epsilon"])
        start = float(self.hyper["initial_accumulator_value"])
        for slot in updates.slots:
            slot.set_value(np.full_like(slot.get_value(borrow=True), start))
        return updates


class Adam(Optimizer):
    """Adam (Kingma & Ba), Keras 3 defaults ``learning_rate=0.001, beta_1=0.9,
    beta_2=0.999, epsilon=1e-7`` (Keras 1 had ``epsilon=1e-8``)."""

    default_lr = 0.001
    hyper_defaults: ClassVar[dict] = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}

    def rule(self, grads, params, learning_rate):
        return optim.adam(grads, params, learning_rate, beta1=self.hyper["beta_1"],
                          beta2=self.hyper["beta_2"], epsilon=self.hyper["epsilon"])


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad, "adam": Adam}


def get(identifier) -> Optimizer:
    """An optimizer from an instance, a name (``'adam'``) or ``{"class_name", "config"}``."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        cls = OPTIMIZERS.get(str(identifier.get("class_name", "")).lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier.get('class_name')!r}; known: "
                             f"{', '.join(c.__name__ for c in OPTIMIZERS.values())}")
        return cls.from_config(dict(identifier.get("config", {})))
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; use one of "
                     f"{', '.join(OPTIMIZERS)} or an optimizer object (e.g. Adam(lr=1e-3))")


# Keras 3 optimizer arguments scanrnn has only at these values (the Keras defaults).
_KERAS3_ONLY_DEFAULTS = {"weight_decay": None, "use_ema": False, "loss_scale_factor": None,
                         "gradient_accumulation_steps": None, "amsgrad": False,
                         "centered": False, "momentum": 0.0}


def from_keras(spec: dict) -> Optimizer:
    """Ours from a Keras 3 ``{"class_name", "config"}`` optimizer spec (a ``.keras`` file)."""
    name = str(spec.get("class_name", ""))
    cls = OPTIMIZERS.get(name.lower())
    if cls is None:
        raise ValueError(f"Keras optimizer {name!r} is not one scanrnn.keras has "
                         f"({', '.join(c.__name__ for c in OPTIMIZERS.values())})")
    config = dict(spec.get("config", {}))
    for key in ("name", "ema_momentum", "ema_overwrite_frequency"):
        config.pop(key, None)
    for key, default in _KERAS3_ONLY_DEFAULTS.items():
        if key in config and not (cls is SGD and key == "momentum"):
            value = config.pop(key)
            if value not in (default, None) and value != default:
                raise ValueError(f"Keras optimizer {name} has {key}={value!r}, which scanrnn's "
                                 f"{cls.__name__} does not support")
    if not isinstance(config.get("learning_rate", 0.0), (int, float)):
        raise ValueError(f"Keras optimizer {name} has a learning-rate schedule, which scanrnn "
                         f"does not support; give a number")
    return cls(**{k: v for k, v in config.items() if v is not None})


def serialize(optimizer: Optimizer) -> dict:
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
