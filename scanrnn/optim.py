"""Update rules that return plain ``{shared_variable: new_value}`` dicts.

Each rule is ``rule(loss_or_grads, params, learning_rate, ...)`` (Lasagne's
order) and returns an :class:`Updates` — a ``dict`` you pass straight to
``updates=`` — which also remembers its ``learning_rate`` (a shared float32
scalar you can change between calls without recompiling) and the optimizer's
own state variables (``slots``, saved in checkpoints).

>>> upd = sgd(g_all, w_all, 0.01)        # the seed's upd_dict(w_all, g_all, lr)
>>> upd.learning_rate.set_value(0.001)   # no recompilation

Rules compose: :func:`clip_by_global_norm` transforms gradients before a
rule, :func:`apply_momentum` transforms an update dict after one, and
:func:`merge` joins dicts (optimizer updates, carried RNN state, RNG state).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable

from ._config import floatx

__all__ = ["Updates", "shared_learning_rate", "gradients", "clip_by_global_norm", "sgd",
           "momentum", "nesterov_momentum", "apply_momentum", "adagrad", "rmsprop",
           "adam", "merge", "OPTIMIZERS", "get"]


class Updates(dict):
    """A ``{shared: expression}`` dict with ``learning_rate`` and ``slots`` attached."""

    def __init__(self, *args, learning_rate=None, slots=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.learning_rate = learning_rate
        self.slots = list(slots)


def shared_learning_rate(value=0.01, name: str = "learning_rate"):
    """A shared float scalar; a shared variable or a symbolic scalar is passed through."""
    if isinstance(value, Variable):
        return value
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"learning rate must be a finite number >= 0, got {value}")
    return pytensor.shared(np.asarray(value, dtype=floatx()), name=name)


def gradients(loss_or_grads, params):
    """``pt.grad(loss, params)``, or the given gradient list checked for length."""
    params = list(params)
    if isinstance(loss_or_grads, Sequence) and not isinstance(loss_or_grads, Variable):
        grads = list(loss_or_grads)
        if len(grads) != len(params):
            raise ValueError(f"got {len(grads)} gradients for {len(params)} parameters")
        return grads
    return pt.grad(loss_or_grads, params)


def clip_by_global_norm(grads, max_norm: float, epsilon: float = 1e-7):
    """Rescale ``grads`` so their joint L2 norm is at most ``max_norm``.

    Returns ``(clipped_grads, norm)`` with ``norm`` the norm *before*
    clipping (a scalar, for logging).  This is d2l's ``grad_clipping``.
    """
    grads = list(grads)
    norm = pt.sqrt(sum(pt.sqr(g).sum() for g in grads))
    scale = pt.minimum(1.0, pt.cast(max_norm, floatx()) / (norm + epsilon))
    return [g * scale for g in grads], norm


def _slot(param, name, value=0.0):
    array = np.full(param.get_value(borrow=True).shape, value, dtype=param.dtype)
    return pytensor.shared(array, name=f"{param.name or 'param'}.{name}")


def sgd(loss_or_grads, params, learning_rate=0.01) -> Updates:
    """``p <- p - lr * g`` for each parameter (the fast.ai seed's ``upd_dict``)."""
    lr = shared_learning_rate(learning_rate)
    grads = gradients(loss_or_grads, params)
    return Updates({p: p - lr * g for p, g in zip(params, grads)}, learning_rate=lr)


def apply_momentum(updates: Updates, params=None, momentum: float = 0.9,
                   nesterov: bool = False) -> Updates:
    """Add (Nesterov) momentum to an update dict such as :func:`sgd`'s.

    ``v <- mu v + (new - p)``; ``p <- p + v`` (or ``p + mu v + (new - p)``).
    """
    params = list(updates) if params is None else list(params)
    out = Updates(updates, learning_rate=updates.learning_rate, slots=updates.slots)
    for p in params:
        velocity = _slot(p, "velocity")
        step = updates[p] - p
        new_velocity = momentum * velocity + step
        out[velocity] = new_velocity
        out[p] = p + (momentum * new_velocity + step if nesterov else new_velocity)
        out.slots.append(velocity)
    return out


def momentum(loss_or_grads, params, learning_rate=0.01, momentum=0.9) -> Updates:
    """SGD with classical momentum."""
    return apply_momentum(sgd(loss_or_grads, params, learning_rate), params, momentum)


def nesterov_momentum(loss_or_grads, params, learning_rate=0.01, momentum=0.9) -> Updates:
    """SGD with Nesterov momentum."""
    return apply_momentum(sgd(loss_or_grads, params, learning_rate), params, momentum,
                          nesterov=True)


def adagrad(loss_or_grads, params, learning_rate=0.01, epsilon=1e-6) -> Updates:
    """Adagrad: ``a <- a + g^2``; ``p <- p - lr g / sqrt(a + eps)``."""
    lr = shared_learning_rate(learning_rate)
    out = Updates(learning_rate=lr)
    for p, g in zip(params, gradients(loss_or_grads, params)):
        acc = _slot(p, "accu")
        new_acc = acc + pt.sqr(g)
        out[acc] = new_acc
        out[p] = p - lr * g / pt.sqrt(new_acc + epsilon)
        out.slots.append(acc)
    return out


def rmsprop(loss_or_grads, params, learning_rate=0.001, rho=0.9, epsilon=1e-6) -> Updates:
    """RMSprop: ``a <- rho a + (1 - rho) g^2``; ``p <- p - lr g / sqrt(a + eps)``."""
    lr = shared_learning_rate(learning_rate)
    out = Updates(learning_rate=lr)
    for p, g in zip(params, gradients(loss_or_grads, params)):
        acc = _slot(p, "accu")
        new_acc = rho * acc + (1 - rho) * pt.sqr(g)
        out[acc] = new_acc
        out[p] = p - lr * g / pt.sqrt(new_acc + epsilon)
        out.slots.append(acc)
    return out


def adam(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999,
         epsilon=1e-8) -> Updates:
    """Adam (Kingma & Ba) with bias correction folded into the step size."""
    lr = shared_learning_rate(learning_rate)
    step = pytensor.shared(np.asarray(0.0, dtype=floatx()), name="adam.t")
    t = step + 1
    out = Updates({step: t}, learning_rate=lr, slots=[step])
    lr_t = lr * pt.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    for p, g in zip(params, gradients(loss_or_grads, params)):
        m, v = _slot(p, "m"), _slot(p, "v")
        m_t = beta1 * m + (1 - beta1) * g
        v_t = beta2 * v + (1 - beta2) * pt.sqr(g)
        out[m], out[v] = m_t, v_t
        out[p] = p - lr_t * m_t / (pt.sqrt(v_t) + epsilon)
        out.slots += [m, v]
    return out


def merge(*update_dicts) -> Updates:
    """Join update dicts; a variable updated by two of them is an error."""
    out = Updates()
    for updates in update_dicts:
        if not updates:
            continue
        for var, value in dict(updates).items():
            if var in out:
                raise ValueError(f"{var} is updated twice; each shared variable may have one update")
            out[var] = value
        if getattr(updates, "learning_rate", None) is not None:
            out.learning_rate = updates.learning_rate
        out.slots += getattr(updates, "slots", [])
    return out


OPTIMIZERS = {"sgd": sgd, "momentum": momentum, "nesterov": nesterov_momentum,
              "adagrad": adagrad, "rmsprop": rmsprop, "adam": adam}


def get(name: str):
    """The update rule called ``name``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]
