"""Update rules that return plain ``{shared_variable: new_value}`` dicts.

Each rule is ``rule(loss_or_grads, params, learning_rate, ...)`` (Lasagne's
order) and returns an :class:`Updates` — a ``dict`` you pass straight to
``updates=`` — whose ``learning_rate`` (a shared float32 scalar you can change
between calls without recompiling) and ``slots`` (the optimizer's own state
variables, saved in checkpoints) are read from the dict itself: the rules tag
those variables, so :func:`learning_rate_of` and :func:`slots_of` find them in
any copy, ``dict(upd)`` and merge included.

>>> upd = sgd(g_all, w_all, 0.01)        # the seed's upd_dict(w_all, g_all, lr)
>>> upd.learning_rate.set_value(0.001)   # no recompilation

Rules compose: :func:`clip_by_global_norm` transforms gradients before a
rule, :func:`apply_momentum` transforms an update dict after one, and
:func:`merge` joins dicts (optimizer updates, carried RNN state, RNG state).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable
from pytensor.gradient import DisconnectedInputError
from pytensor.graph.traversal import ancestors, graph_inputs

from ._config import floatx

__all__ = ["Updates", "learning_rate_of", "slots_of", "shared_learning_rate", "gradients",
           "clip_by_global_norm", "sgd", "momentum", "nesterov_momentum", "apply_momentum",
           "adagrad", "rmsprop", "adam", "ema", "averages_of", "merge", "OPTIMIZERS", "get"]


# what a variable is to the optimizer, kept in its ``tag`` (so it survives any dict copy)
_ROLE = "scanrnn_optimizer_role"


def _mark(var, role):
    setattr(var.tag, _ROLE, role)
    return var


def _role(var):
    return getattr(getattr(var, "tag", None), _ROLE, None)


def slots_of(updates) -> list:
    """The optimizer state variables (``slots``) among the keys of any update dict."""
    return [var for var in updates if _role(var) == "slot"]


def learning_rate_of(updates):
    """The learning rate the update expressions of any dict read, or None.

    That is the variable made by :func:`shared_learning_rate` (or given to it) found
    among the expressions' ancestors -- an expression given to it only when it is not
    computed from such a variable; ValueError if they read several.
    """
    tagged = [v for v in ancestors(list(updates.values())) if _role(v)]
    found = list(dict.fromkeys(v for v in tagged if _role(v) == "learning_rate")) or \
        list(dict.fromkeys(v for v in tagged if _role(v) == "learning_rate_expression"))
    if len(found) > 1:
        raise ValueError(f"these updates read {len(found)} learning rates "
                         f"({', '.join(str(v) for v in found)}); take each from its own "
                         "rule's Updates")
    return found[0] if found else None


class Updates(dict):
    """A ``{shared: expression}`` dict with ``learning_rate`` and ``slots`` attached.

    Both are read from the entries (see :func:`learning_rate_of`, :func:`slots_of`), so
    ``copy()``, ``u | other``, ``Updates(dict(u))`` and :func:`merge` keep them; a plain
    ``dict(u)`` keeps them too, through those two functions.  ``learning_rate=`` (or
    setting the attribute) names one explicitly; ``slots=`` tags variables as slots.
    """

    def __init__(self, *args, learning_rate=None, slots=(), **kwargs):
        super().__init__(*args, **kwargs)
        for var in slots:
            _mark(var, "slot")
        self._learning_rate = learning_rate

    @property
    def learning_rate(self):
        explicit = getattr(self, "_learning_rate", None)
        return explicit if explicit is not None else learning_rate_of(self)

    @learning_rate.setter
    def learning_rate(self, var):
        self._learning_rate = var

    @property
    def slots(self) -> list:
        return slots_of(self)

    def copy(self) -> Updates:
        return Updates(self, learning_rate=_explicit_rate(self))

    def __or__(self, other):
        if not isinstance(other, dict):
            return NotImplemented
        return Updates({**self, **other}, learning_rate=_explicit_rate(self, other))

    def __ror__(self, other):
        if not isinstance(other, dict):
            return NotImplemented
        return Updates({**other, **self}, learning_rate=_explicit_rate(other, self))


def _explicit_rate(*update_dicts):
    """The last explicitly named learning rate of ``update_dicts`` (None if none)."""
    rates = [getattr(u, "_learning_rate", None) for u in update_dicts]
    return next((r for r in reversed(rates) if r is not None), None)


def shared_learning_rate(value=0.01, name: str = "learning_rate"):
    """A shared float scalar; a shared variable or a symbolic scalar is passed through.

    The result is tagged as a learning rate (an expression such as ``lr / (1 + decay t)``
    as a weaker one: the learning rate is then the tagged variable it is computed from).
    """
    if isinstance(value, Variable):
        return _mark(value, "learning_rate" if value.owner is None else "learning_rate_expression")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"learning rate must be a finite number >= 0, got {value}")
    return _mark(pytensor.shared(np.asarray(value, dtype=floatx()), name=name), "learning_rate")


def gradients(loss_or_grads, params):
    """``pt.grad(loss, params)``, or the given gradient list checked for length.

    Every parameter must be a shared variable: an update can only change those.
    """
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, SharedVariable):
            raise TypeError(f"parameter {i} ({getattr(p, 'name', None)!r}) is "
                            f"{type(p).__name__}, not a shared variable; optimizers update "
                            "shared variables (pytensor.shared(...) or scanrnn.init.*)")
    if isinstance(loss_or_grads, Sequence) and not isinstance(loss_or_grads, Variable):
        grads = list(loss_or_grads)
        if len(grads) != len(params):
            raise ValueError(f"got {len(grads)} gradients for {len(params)} parameters")
        _check_gradients(grads, params)
        return grads
    try:
        return pt.grad(loss_or_grads, params)
    except DisconnectedInputError:
        unused = [p.name or f"parameter {i}" for i, p in enumerate(params)
                  if p not in graph_inputs([loss_or_grads])]
        raise ValueError(f"the loss does not depend on {', '.join(unused)}: leave "
                         f"{'it' if len(unused) == 1 else 'them'} out of the parameters") \
            from None


def _check_gradients(grads, params):
    """A given gradient list has a tensor for each parameter (None: a disconnected one)."""
    for i, g in enumerate(grads):
        if g is None:
            raise ValueError(f"the gradient of {params[i].name or f'parameter {i}'} is None "
                             f"(the loss does not depend on it): leave it out of the "
                             f"parameters, or give zeros")


def clip_by_global_norm(grads, max_norm: float, epsilon: float = 1e-7):
    """Rescale ``grads`` so their joint L2 norm is at most ``max_norm``.

    Returns ``(clipped_grads, norm)`` with ``norm`` the norm *before*
    clipping (a scalar, for logging).  This is d2l's ``grad_clipping``.
    """
    if isinstance(max_norm, np.ndarray) and max_norm.ndim == 0:
        max_norm = max_norm[()]
    if isinstance(max_norm, (int, float, np.number)) and not (np.isfinite(max_norm)
                                                             and max_norm > 0):
        raise ValueError(f"clip_by_global_norm: max_norm must be a positive number, got "
                         f"{max_norm!r} (a negative one would flip the gradient)")
    grads = list(grads)
    if any(g is None for g in grads):
        raise ValueError("clip_by_global_norm: a gradient is None (a parameter the loss does "
                         "not depend on): leave it out")
    norm = pt.sqrt(sum(pt.sqr(g).sum() for g in grads))
    scale = pt.minimum(1.0, pt.cast(max_norm, floatx()) / (norm + epsilon))
    return [g * scale for g in grads], norm


def _slot(param, name, value=0.0):
    array = np.full(param.get_value(borrow=True).shape, value, dtype=param.dtype)
    return _mark(pytensor.shared(array, name=f"{param.name or 'param'}.{name}"), "slot")


def sgd(loss_or_grads, params, learning_rate=0.01) -> Updates:
    """``p <- p - lr * g`` for each parameter (the fast.ai seed's ``upd_dict``)."""
    lr = shared_learning_rate(learning_rate)
    grads = gradients(loss_or_grads, params)
    return Updates({p: p - lr * g for p, g in zip(params, grads)})


def apply_momentum(updates: Updates, params=None, momentum: float = 0.9,
                   nesterov: bool = False) -> Updates:
    """Add (Nesterov) momentum to an update dict such as :func:`sgd`'s.

    ``v <- mu v + (new - p)``; ``p <- p + v`` (or ``p + mu v + (new - p)``).
    """
    params = list(updates) if params is None else list(params)
    missing = [p.name or repr(p) for p in params if p not in updates]
    if missing:
        raise ValueError(f"apply_momentum: the updates have no step for {', '.join(missing)}; "
                         f"give the parameters the updates were made for")
    out = Updates(updates, learning_rate=_explicit_rate(updates))
    for p in params:
        velocity = _slot(p, "velocity")
        step = updates[p] - p
        new_velocity = momentum * velocity + step
        out[velocity] = new_velocity
        out[p] = p + (momentum * new_velocity + step if nesterov else new_velocity)
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
    out = Updates()
    for p, g in zip(params, gradients(loss_or_grads, params)):
        acc = _slot(p, "accu")
        new_acc = acc + pt.sqr(g)
        out[acc] = new_acc
        out[p] = p - lr * g / pt.sqrt(new_acc + epsilon)
    return out


def rmsprop(loss_or_grads, params, learning_rate=0.001, rho=0.9, epsilon=1e-6) -> Updates:
    """RMSprop: ``a <- rho a + (1 - rho) g^2``; ``p <- p - lr g / sqrt(a + eps)``."""
    lr = shared_learning_rate(learning_rate)
    out = Updates()
    for p, g in zip(params, gradients(loss_or_grads, params)):
        acc = _slot(p, "accu")
        new_acc = rho * acc + (1 - rho) * pt.sqr(g)
        out[acc] = new_acc
        out[p] = p - lr * g / pt.sqrt(new_acc + epsilon)
    return out


def adam(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999,
         epsilon=1e-8, weight_decay=0.0) -> Updates:
    """Adam (Kingma & Ba) with bias correction folded into the step size.

    ``weight_decay`` > 0 is decoupled weight decay (AdamW, Loshchilov & Hutter; PyTorch's
    ``AdamW``): every parameter also shrinks by ``learning_rate * weight_decay`` of itself.
    A shared float32 scalar (or any symbolic scalar) may stand for it, to change the decay
    between calls without recompiling.
    """
    if not isinstance(weight_decay, Variable) and \
            not (weight_decay >= 0.0 and math.isfinite(weight_decay)):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    lr = shared_learning_rate(learning_rate)
    step = pytensor.shared(np.asarray(0.0, dtype=floatx()), name="adam.t")
    t = step + 1
    out = Updates({step: t}, slots=[step])
    lr_t = lr * pt.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    for p, g in zip(params, gradients(loss_or_grads, params)):
        m, v = _slot(p, "m"), _slot(p, "v")
        m_t = beta1 * m + (1 - beta1) * g
        v_t = beta2 * v + (1 - beta2) * pt.sqr(g)
        out[m], out[v] = m_t, v_t
        new_p = p - lr_t * m_t / (pt.sqrt(v_t) + epsilon)
        decayed = isinstance(weight_decay, Variable) or weight_decay
        out[p] = new_p - (lr * weight_decay) * p if decayed else new_p
    return out


_AVERAGE_OF = "scanrnn_average_of"


def ema(updates, params=None, decay: float = 0.99, name: str = "ema") -> Updates:
    """Exponential moving averages of ``params`` as ``updates`` leave them (Polyak averaging).

    Returns the updates of the averages, to :func:`merge` with ``updates``: one shadow
    variable ``<param>.<name>`` per parameter (its dtype, starting at the parameter's value)
    and a counter ``t``; each step ``shadow <- d shadow + (1 - d) new_param`` with
    ``d = min(decay, (1 + t) / (10 + t))`` (TensorFlow's ``ExponentialMovingAverage`` with
    ``num_updates``: early averages do not stay near the initial weights).  The shadows and
    the counter are tagged as slots (saved with the optimizer state); :func:`averages_of`
    finds ``{param: shadow}``.  ``params`` default to the shared variables ``updates`` updates
    that are not slots.
    """
    if not 0.0 < decay < 1.0:
        raise ValueError(f"ema decay must be in (0, 1), got {decay!r}")
    params = [v for v in updates if _role(v) is None] if params is None else list(params)
    count = pytensor.shared(np.asarray(0.0, dtype=floatx()), name=f"{name}.t")
    t = count + 1
    d = pt.minimum(np.asarray(decay, floatx()), (1 + t) / (10 + t))
    out = Updates({count: t}, slots=[count])
    for p in params:
        shadow = _mark(pytensor.shared(np.array(p.get_value(), dtype=p.dtype),
                                       name=f"{p.name or 'param'}.{name}"), "slot")
        setattr(shadow.tag, _AVERAGE_OF, p)
        out[shadow] = d * shadow + (1 - d) * updates.get(p, p)
    return out


def averages_of(updates) -> dict:
    """``{param: shadow}`` of the :func:`ema` averages among the keys of an update dict."""
    return {getattr(var.tag, _AVERAGE_OF): var for var in updates
            if hasattr(getattr(var, "tag", None), _AVERAGE_OF)}


def merge(*update_dicts) -> Updates:
    """Join update dicts; a variable updated by two of them is an error.

    The result's ``learning_rate`` and ``slots`` are those of the joined entries (a
    learning rate named explicitly in one of them is kept).
    """
    out = Updates(learning_rate=_explicit_rate(*update_dicts))
    for updates in update_dicts:
        for var, value in (updates or {}).items():
            if var in out:
                raise ValueError(f"{var} is updated twice; each shared variable may have one "
                                 "update")
            out[var] = value
    return out


OPTIMIZERS = {"sgd": sgd, "momentum": momentum, "nesterov": nesterov_momentum,
              "adagrad": adagrad, "rmsprop": rmsprop, "adam": adam}


def get(name: str):
    """The update rule called ``name``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]
