"""The rewrite ``onednn_recurrence``: fused recurrences -> oneDNN kernels (:func:`apply`).

It runs on the graph a JAX :class:`scanrnn.Function` compiles, before the
fused recurrences (:class:`scanrnn.fused.FusedRecurrence`) are inlined.  For
each fused recurrence it finds

* the input projection that feeds it, ``x @ W_x`` (3-D float ``x``) or
  ``W_x[ids]`` (token ids, one-hot encoded inside the kernel when the
  vocabulary is at most :data:`MAX_ONE_HOT`), possibly reversed in time
  (``go_backwards``): oneDNN multiplies its input by ``W_x`` itself;
* the gradient nodes built from it by ``pt.grad`` (tagged by
  ``FusedRecurrence.pullback``), and the gradients of ``x`` and ``W_x`` that the
  projection's own gradient computes from them (matched structurally against a
  fresh ``pt.grad`` of the projection);

and replaces the forward by :class:`~scanrnn.kernels.ops.OneDNNRecurrence`
and each backward by :class:`~scanrnn.kernels.ops.OneDNNRecurrenceGrad`.
oneDNN's backward takes the gradient of every step's ``h`` but only of the
FINAL cell state, so an LSTM whose cell-state sequence is used beyond its last
step keeps the scan.  Whatever does not match keeps the scan too, with the
reason recorded (:class:`Decision`); after replacing, the rewrite checks that
no part of the old recurrence is still computed, else it undoes that one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytensor
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import equal_computations
from pytensor.graph.traversal import graph_inputs, io_toposort
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.math import Dot
from pytensor.tensor.subtensor import IncSubtensor, Subtensor

from ..contract import dot_last, take_rows

REWRITE_NAME = "onednn_recurrence"
MAX_ONE_HOT = 512
_SUPPORTED = {"rnn": ("tanh", "relu"), "gru": ("tanh",), "lstm": ("tanh",)}


@dataclass
class Decision:
    """What the rewrite did with one fused recurrence."""

    name: str  # the fused op's name, e.g. "lstm_0_fused"
    kind: str  # "rnn", "gru" or "lstm"
    kernel: str | None  # e.g. "oneDNN lstm"; None: the scan runs
    detail: str  # "forward + backward", or why the scan runs

    def line(self) -> str:
        """One line for graph listings."""
        if self.kernel:
            return f"{self.name}: rewrite {REWRITE_NAME} -> {self.kernel} ({self.detail})"
        return f"{self.name}: fused scan ({self.detail})"


class _NoKernel(Exception):
    """This recurrence keeps the scan; the message says why."""


def _fused_nodes(nodes):
    from ..fused import FusedRecurrence
    return [n for n in nodes if isinstance(n.op, FusedRecurrence)]


def _backward_nodes(nodes, fused):
    """``{forward node: [its gradient nodes]}`` from the tags ``FusedRecurrence.pullback`` sets."""
    found = defaultdict(list)
    for node in nodes:
        if getattr(node.tag, "fused_output_grads", None) is None or \
                not isinstance(node.op, OpFromGraph):
            continue
        for forward in fused:
            n_in, n_out = len(forward.inputs), len(forward.outputs)
            if list(node.inputs[:n_in]) == list(forward.inputs) and \
                    list(node.inputs[n_in:n_in + n_out]) == list(forward.outputs):
                found[forward].append(node)
    return found


def _ancestors(var, depth):
    seen, frontier = [], [var]
    for _ in range(depth):
        nxt = []
        for v in frontier:
            if v.owner is not None:
                for i in v.owner.inputs:
                    if i not in seen:
                        seen.append(i)
                        nxt.append(i)
        frontier = nxt
    return seen


def _vocabulary(W_x, depth=4):
    """The number of rows of ``W_x`` (a shared matrix, a static shape, or a product
    ``E @ W`` of those, as an embedding folded into the projection is), or None."""
    if isinstance(W_x, SharedVariable):
        return int(W_x.get_value(borrow=True).shape[0])
    if W_x.type.shape[0] is not None or W_x.owner is None or depth == 0:
        return W_x.type.shape[0]
    node = W_x.owner
    if isinstance(node.op, Dot | Elemwise):
        firsts = [i for i in node.inputs if i.ndim == 2]
        return _vocabulary(firsts[0], depth - 1) if firsts else None
    return None


def _same(var, build, *args) -> bool:
    """True when ``var`` is the graph ``build(*args)`` builds (False if it cannot build)."""
    try:
        candidate = build(*args)
    except (ValueError, TypeError, IndexError):  # e.g. static shapes that do not fit
        return False
    return equal_computations([var], [candidate])


def match_projection(projected):
    """``(src, W_x, vocab, reverse)`` with ``projected == (src @ W_x or W_x[src])[::-1]?``.

    ``vocab`` is 0 for a float ``src``; raises :class:`_NoKernel` when nothing matches.
    """
    reverse, plain = False, projected
    if projected.owner is not None and isinstance(projected.owner.op, Subtensor):
        inner = projected.owner.inputs[0]
        if inner.ndim == 3 and equal_computations([projected], [inner[::-1]]):
            reverse, plain = True, inner
    candidates = _ancestors(plain, 4)
    weights = [v for v in candidates if v.ndim == 2 and v.dtype == "float32"]
    for W in weights:
        for x in candidates:
            if x.ndim == 3 and x.dtype == "float32" and \
                    (_same(plain, dot_last, x, W) or _same(plain, pt.dot, x, W)):
                return x, W, 0, reverse
            if x.ndim == 2 and x.dtype.startswith(("int", "uint")) and \
                    (_same(plain, lambda ids, W: take_rows(W, ids), x, W)
                     or _same(plain, lambda ids, W: W[ids], x, W)):
                vocab = _vocabulary(W)
                if vocab is None or vocab > MAX_ONE_HOT:
                    raise _NoKernel(f"token-id input with a vocabulary of {vocab} "
                                    f"(one-hot in the kernel up to {MAX_ONE_HOT})")
                return x, W, vocab, reverse
    raise _NoKernel("its input is not a projection x @ W_x or W_x[ids]")


def _is_zero(var) -> bool:
    try:
        return float(pt.get_underlying_scalar_constant_value(var)) == 0.0
    except Exception:  # NotScalarConstantError and friends: not provably zero
        return False


def last_step_gradient(grad_seq):
    """``g`` when ``grad_seq`` is zero except ``grad_seq[-1] = g`` (None: all zero).

    That is what ``pt.grad`` builds for a sequence used only as ``seq[-1]``;
    raises :class:`_NoKernel` otherwise.
    """
    if isinstance(grad_seq.type, DisconnectedType) or _is_zero(grad_seq):
        return None
    node = grad_seq.owner
    if node is not None and isinstance(node.op, Elemwise) and \
            isinstance(node.op.scalar_op, pytensor.scalar.Add):
        parts = [last_step_gradient(i) for i in node.inputs]
        parts = [p for p in parts if p is not None]
        return None if not parts else parts[0] if len(parts) == 1 else pt.add(*parts)
    if node is not None and isinstance(node.op, IncSubtensor) and len(node.inputs) == 3 \
            and _is_zero(node.inputs[0]):
        try:
            index = int(pt.get_underlying_scalar_constant_value(node.inputs[2]))
        except Exception:
            index = None
        if index == -1 and node.inputs[1].ndim == 2:
            return node.inputs[1]
    raise _NoKernel("the LSTM's cell-state sequence is used beyond its last step "
                    "(oneDNN's backward takes the final cell state's gradient only)")


def _descendants(var, clients, depth):
    seen, frontier = [], [var]
    for _ in range(depth):
        nxt = []
        for v in frontier:
            for node, _ in clients.get(v, ()):
                for out in node.outputs:
                    if out not in seen:
                        seen.append(out)
                        nxt.append(out)
        frontier = nxt
    return seen


def _projection_gradient_exits(projected, d_projected, wrt, clients):
    """``{graph variable: which}`` for the gradients of ``wrt`` computed from ``d_projected``."""
    expected = pytensor.grad(None, wrt=list(wrt.values()), known_grads={projected: d_projected},
                             disconnected_inputs="ignore", return_disconnected="disconnected")
    found = {}
    for var in _descendants(d_projected, clients, 10):
        for (which, _), exp in zip(wrt.items(), expected):
            if not isinstance(exp.type, DisconnectedType) and var.type.ndim == exp.type.ndim \
                    and equal_computations([var], [exp]):
                found[var] = which
    return found


def _fit(new, old):
    """``new`` with the static shape of ``old``'s type, so that it can replace ``old``."""
    if new.type == old.type:
        return new
    if any(s is not None for s in old.type.shape):
        new = pt.specify_shape(new, old.type.shape)
    return old.type.filter_variable(new, allow_convert=True)


def _check_activations(op):
    kind = op.cell_kind
    activation, recurrent = (list(op.activations) + [None, None])[:2]
    if kind not in _SUPPORTED:
        raise _NoKernel(f"no oneDNN kernel for {kind!r} cells")
    if activation not in _SUPPORTED[kind] or (kind != "rnn" and recurrent != "sigmoid"):
        raise _NoKernel(f"activation {activation}/{recurrent} has no oneDNN {kind} kernel")
    return kind, activation


def plan(forward, backwards, clients, vendor="onednn", mesh=None):
    """``({old variable: new}, kernel name)`` for one fused recurrence (or ``_NoKernel``).

    ``vendor``: ``"onednn"`` (CPU) or ``"cudnn"`` (GPU, LSTM only); ``mesh``: a
    data-parallel mesh, on which each device runs the kernel on its rows (:mod:`.sharded`).
    """
    from functools import partial

    from .ops import OneDNNRecurrence, OneDNNRecurrenceGrad

    kind, activation = _check_activations(forward.op)
    if vendor == "cudnn" and kind != "lstm":
        raise _NoKernel(f"the GPU kernel (cuDNN via jax.experimental.rnn) is for the LSTM, "
                        f"not {kind}")
    if any(i.dtype != "float32" for i in forward.inputs):
        raise _NoKernel("oneDNN's RNN kernels here are float32 only")
    projected, *rest = forward.inputs
    # fused order: lstm (xp, h0, c0, W_h, b), gru (xp, h0, W_h, b_h, b), rnn (xp, h0, W_h, b)
    names = {"lstm": ["h0", "c0", "W_h", "b"], "gru": ["h0", "W_h", "b_h", "b"],
             "rnn": ["h0", "W_h", "b"]}[kind]
    given = dict(zip(names, rest))
    src, W_x, vocab, reverse = match_projection(projected)
    src_k = src[::-1] if reverse else src
    params = [given["W_h"]] + ([given["b_h"]] if kind == "gru" else []) \
        + [given["b"], given["h0"]] + ([given["c0"]] if kind == "lstm" else [])
    kernel = OneDNNRecurrence(kind, activation, vocab, vendor, training=bool(backwards),
                              mesh=mesh)
    k_out = kernel(src_k, W_x, *params, return_list=True)
    cT = k_out[2] if kind == "lstm" else None
    replace = {forward.outputs[0]: _fit(k_out[0], forward.outputs[0])}
    if kind == "lstm":
        cs = forward.outputs[1]
        for node, _ in clients.get(cs, ()):
            if isinstance(node.op, Subtensor) and equal_computations([node.outputs[0]], [cs[-1]]):
                replace[node.outputs[0]] = _fit(cT, node.outputs[0])
    for backward in backwards:
        replace.update(_plan_backward(kind, activation, vocab, forward, backward, given, clients,
                                      (src, src_k, W_x, params, reverse, k_out),
                                      partial(OneDNNRecurrenceGrad, vendor=vendor,
                                              mesh=mesh)))
    return replace, kernel.kernel_name


def _plan_backward(kind, activation, vocab, forward, backward, given, clients, made, grad_cls):
    src, src_k, W_x, params, reverse, k_out = made
    n_in = len(forward.inputs)
    if len(backward.outputs) != n_in:
        raise _NoKernel("a gradient of one of its inputs is disconnected")
    grads = backward.tag.fused_output_grads
    hs = k_out[0]
    dhs = grads[0]
    dhs = pt.zeros_like(hs) if isinstance(dhs.type, DisconnectedType) else dhs
    extra = []
    if kind == "lstm":
        dcT = last_step_gradient(grads[1])
        extra = [pt.zeros_like(k_out[2]) if dcT is None else dcT]
    n_states = 2 if kind == "lstm" else 1
    if any(not isinstance(g.type, DisconnectedType) for g in grads[n_states:]):
        raise _NoKernel("the gradient uses the recurrence's saved intermediate sequences")
    state_outs = k_out[:3] if kind == "lstm" else k_out[:2]
    g_out = grad_cls(kind, activation, vocab)(src_k, W_x, *params, *state_outs, k_out[-1], dhs,
                                              pt.zeros_like(k_out[1]), *extra, return_list=True)
    if not vocab:
        d_src, g_out = g_out[0], g_out[1:]
        d_src = d_src[::-1] if reverse else d_src
    got = dict(zip(["W_x", "W_h"] + (["b_h"] if kind == "gru" else []) + ["b", "h0"]
                   + (["c0"] if kind == "lstm" else []), g_out))
    names = {"lstm": ["h0", "c0", "W_h", "b"], "gru": ["h0", "W_h", "b_h", "b"],
             "rnn": ["h0", "W_h", "b"]}[kind]
    replace = {old: _fit(got[name], old) for old, name in zip(backward.outputs[1:], names)}
    wrt = {"W_x": W_x} if vocab else {"W_x": W_x, "x": src}
    exits = _projection_gradient_exits(forward.inputs[0], backward.outputs[0], wrt, clients)
    for var, which in exits.items():
        replace[var] = _fit(got["W_x"] if which == "W_x" else d_src, var)
    return replace


def substitute(roots, replace):
    """``roots`` rebuilt with every variable in ``replace`` swapped for its value.

    Unlike ``graph_replace`` this also rewrites inside the replacement values (a
    kernel's gradient takes the output gradients, which are computed from the
    outputs the kernel replaces) and keeps replacing a variable that is an
    ancestor of another replaced one.  Iterative, so deep graphs are fine.
    """
    from ..pytensor_compat import clone_node

    memo, cloned, active = {}, {}, set()
    stack = list(roots)
    while stack:
        var = stack[-1]
        if var in memo:
            stack.pop()
            continue
        target = replace.get(var)
        pending = ([target] if target is not None else
                   [] if var.owner is None else list(var.owner.inputs))
        pending = [p for p in pending if p not in memo]
        if pending:
            if var in active:
                raise ValueError("cyclic replacement")
            active.add(var)
            stack.extend(pending)
            continue
        stack.pop()
        active.discard(var)
        if target is not None:
            memo[var] = memo[target]
        elif var.owner is None:
            memo[var] = var
        else:
            node = var.owner
            if node not in cloned:
                new_inputs = [memo[i] for i in node.inputs]
                same = all(a is b for a, b in zip(new_inputs, node.inputs))
                cloned[node] = node if same else clone_node(node, new_inputs)
            memo[var] = cloned[node].outputs[node.outputs.index(var)]
    return [memo[r] for r in roots]


def _clients(nodes):
    clients = defaultdict(list)
    for node in nodes:
        for i, var in enumerate(node.inputs):
            clients[var].append((node, i))
    return clients


def _ops_in(variables):
    return {n.op for n in io_toposort(list(graph_inputs(variables)), list(variables))}


def apply(variables, unavailable: str | None = None, vendor: str = "onednn", mesh=None,
          select=None):
    """Replace the fused recurrences of ``variables``' graph by oneDNN kernels.

    Returns ``(new variables, [Decision, ...])``.  ``unavailable``: the reason the
    kernels cannot run here (every recurrence then keeps the scan and says why);
    ``mesh``: the data-parallel mesh of the function (each device runs on its rows);
    ``select``: ``node -> None`` (this recurrence may take a kernel) or the reason it
    keeps the scan (e.g. :func:`large_lstm`); None takes every one that fits.
    """
    variables = list(variables)
    nodes = io_toposort(list(graph_inputs(variables)), variables)
    fused = _fused_nodes(nodes)
    if not fused:
        return variables, []
    decisions = {}
    for f in fused:
        decisions[f] = Decision(f.op.name or "fused", f.op.cell_kind, None, unavailable or "")
    if unavailable:
        return variables, list(decisions.values())
    clients = _clients(nodes)
    backwards = _backward_nodes(nodes, fused)
    plans = {}
    for f in fused:
        declined = select(f) if select is not None else None
        if declined:
            decisions[f].detail = declined
            continue
        try:
            plans[f] = plan(f, backwards.get(f, []), clients, vendor, mesh)
        except _NoKernel as exc:
            decisions[f].detail = str(exc)
        except Exception as exc:  # a graph the matcher did not foresee: keep the scan
            decisions[f].detail = f"not matched ({type(exc).__name__}: {exc})"
    while plans:
        replace = {old: new for p, _ in plans.values() for old, new in p.items()}
        new_vars = substitute(variables, replace)
        left = _ops_in(new_vars)
        stuck = [f for f in plans if f.op in left or
                 any(b.op in left for b in backwards.get(f, []))]
        if not stuck:
            for f in plans:
                decisions[f].kernel = plans[f][1]
                decisions[f].detail = ("forward + backward" if backwards.get(f) else
                                       "forward") + _per_device(mesh)
            return new_vars, list(decisions.values())
        for f in stuck:
            plans.pop(f)
            decisions[f].detail = "part of the recurrence (its cell-state sequence or its " \
                                  "gradient) is used where the kernel cannot stand in"
    return variables, list(decisions.values())


def _per_device(mesh) -> str:
    if mesh is None:
        return ""
    from .sharded import num_devices
    n = num_devices(mesh)
    return "" if n == 1 else f", each of {n} devices on its B/{n} rows (shard_map)"


def fused_nodes(variables) -> list:
    """The fused recurrences (Apply nodes) in the graph of ``variables``."""
    variables = list(variables)
    return _fused_nodes(io_toposort(list(graph_inputs(variables)), variables))


CPU_MIN_HIDDEN = 512
"""``kernels="auto"`` on the CPU puts an LSTM on oneDNN from this state size up: the 2-layer
LSTM H512 B64 trained 1.11-1.13x faster on the kernel on an AVX2 CPU (2026-12-02) and at par
on an AVX-512 one (1.00-1.01x, 2026-12-04), while at H256 (LSTM, GRU, the default ``scanrnn
train`` model) and for the tanh RNN the fused scan was as fast or faster on both
(``benchmarks/RESULTS.md``)."""


def _hidden_size(node) -> int | None:
    """The state size ``H`` of a fused recurrence (its ``W_h`` is ``(H, k*H)``), if known."""
    W_h = node.inputs[3 if node.op.cell_kind == "lstm" else 2]
    if W_h.type.shape[0] is not None:
        return W_h.type.shape[0]
    value = getattr(W_h, "get_value", None)
    return value(borrow=True).shape[0] if value is not None else None


def large_lstm(node) -> str | None:
    """The CPU's default selection: None for an LSTM with ``H >= CPU_MIN_HIDDEN``, else why
    the fused scan stays."""
    hidden = _hidden_size(node)
    if node.op.cell_kind == "lstm" and hidden is not None and hidden >= CPU_MIN_HIDDEN:
        return None
    what = f"{node.op.cell_kind}, H {hidden if hidden is not None else 'unknown'}"
    return (f"kernels='auto' on the CPU takes oneDNN for LSTMs with H >= {CPU_MIN_HIDDEN} "
            f"only ({what}: the fused scan measured as fast or faster)")
