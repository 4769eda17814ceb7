"""Vendor RNN kernels for the JAX backend: oneDNN on the CPU, cuDNN's LSTM on a GPU.

When a JAX :class:`scanrnn.Function` compiles with kernels wanted (:func:`wanted`: by
default LSTMs with ``H >= 512`` on the CPU, none on a GPU), the rewrite
``onednn_recurrence`` (:mod:`.rewriting`) replaces each fused recurrence
(:mod:`scanrnn.fused`) by an Op that runs oneDNN's LSTM, linear-before-reset GRU or
vanilla RNN (tanh/relu) primitive, forward and backward, the backward reading the
forward's saved workspace (:mod:`.ops`, :mod:`.jax_rnn`, the C++ in ``onednn_rnn.cc``).
The native part is compiled at first use and cached (:mod:`.build`).  When JAX runs on an NVIDIA GPU
the same rewrite can put LSTMs on cuDNN through ``jax.experimental.rnn``
(:mod:`.cudnn_rnn`; GRU and vanilla RNN keep the scan there; ``SCANRNN_CUDNN=0`` turns it
off); ``"auto"`` keeps the fused scan on a GPU, faster than cuDNN on an H200.  Where a kernel
does not apply (masks, truncated gradients, other activations, float64, an LSTM whose
cell-state sequence is used beyond its last step) or cannot run here (no compiler, no
oneDNN, a failed build: one logged line), the fused scan runs.

* :func:`status` -- which kernels are active, or why not (``scanrnn info``);
* :func:`rewrite` -- what ``scanrnn.Function`` calls before compiling;
* :func:`describe` -- one line per recurrence of a compiled function or graph:
  the rewrite that fired and the kernel it runs on.
"""

from __future__ import annotations

import logging

from .build import KernelUnavailable, env_setting

__all__ = ["KernelUnavailable", "describe", "rewrite", "selection", "status",
           "unavailable_reason", "vendor", "wanted"]

log = logging.getLogger("scanrnn.kernels")
_LOGGED: set = set()


def _jax_platform() -> str:
    import jax
    return jax.default_backend()


def vendor() -> str | None:
    """``"onednn"`` when JAX runs on the CPU, ``"cudnn"`` on an NVIDIA GPU, else None."""
    try:
        platform = _jax_platform()
    except Exception:  # JAX missing or broken: unavailable_reason says why
        return None
    return {"cpu": "onednn", "gpu": "cudnn", "cuda": "cudnn"}.get(platform)


def unavailable_reason() -> str | None:
    """Why no vendor kernel can run in this process (None: they can).

    On the CPU the first call builds the oneDNN library if it is not cached (seconds).
    """
    try:
        platform = _jax_platform()
    except Exception as exc:  # JAX missing or broken
        return f"JAX is unavailable ({exc})"
    if vendor() == "cudnn":
        from . import cudnn_rnn
        return cudnn_rnn.available()
    if platform != "cpu":
        return f"no vendor RNN kernel for JAX on {platform}"
    try:
        from . import jax_rnn
        jax_rnn.ensure_ready()
    except KernelUnavailable as exc:
        return str(exc)
    return None


def wanted(setting) -> bool | str:
    """Which recurrences of a JAX function with ``kernels=setting`` go onto vendor kernels:
    True (every one that fits), False (none) or ``"large LSTMs"``.  ``"auto"`` follows
    ``SCANRNN_KERNELS`` (1: all, 0: none), else, on the CPU, the LSTMs with ``H >= 512``
    (:data:`.rewriting.CPU_MIN_HIDDEN`), where oneDNN measured as fast as the fused scan or
    faster, and none on a GPU: on an H200 the fused scan trained the LSTMs 1.56-1.62x faster
    than cuDNN's LSTM (benchmarks/RESULTS.md, 2026-12-04)."""
    if setting != "auto":
        return bool(setting)
    env = env_setting()
    if env is not None:
        return env
    return "large LSTMs" if _jax_platform() == "cpu" else False


def selection(setting):
    """The ``select`` argument of :func:`rewrite` for ``kernels=setting`` (None: all)."""
    from .rewriting import large_lstm
    return large_lstm if wanted(setting) == "large LSTMs" else None


def _log_once(reason: str):
    if reason not in _LOGGED:
        _LOGGED.add(reason)
        log.warning("scanrnn: recurrences run as scans, not on vendor kernels: %s", reason)


def rewrite(variables, mesh=None, select=None):
    """``(new variables, decisions)``: the graph of ``variables`` with kernels swapped in.

    ``decisions`` is a list of :class:`~.rewriting.Decision`, one per fused recurrence.
    ``mesh``: a data-parallel function's ``jax.sharding.Mesh``; each device then runs
    the kernel on its own rows of the batch (:mod:`.sharded`).  ``select``: which
    recurrences may take a kernel (:func:`.rewriting.apply`; e.g. ``rewriting.large_lstm``,
    the CPU's default); when it declines them all, nothing is built or loaded.
    Logs one line (once per process and reason) when the kernels cannot run.
    """
    from . import rewriting as rewrite_module
    variables = list(variables)
    fused = rewrite_module.fused_nodes(variables)
    if not fused:
        return variables, []
    if select is not None and all(select(node) for node in fused):
        return rewrite_module.apply(variables, select=select)
    reason = unavailable_reason()
    if reason is not None:
        _log_once(reason)
    return rewrite_module.apply(variables, unavailable=reason, vendor=vendor() or "onednn",
                                mesh=mesh, select=select)


def status() -> dict:
    """``{"active": [...], "reason": str | None, ...facts}`` for ``scanrnn info``.

    ``active`` lists the kernels a JAX function uses here, e.g.
    ``["oneDNN lstm", "oneDNN lbr_gru", "oneDNN vanilla_rnn (tanh, relu)"]``.
    """
    reason = unavailable_reason()
    if reason is not None:
        return {"active": [], "reason": reason}
    if vendor() == "cudnn":
        return {"active": ["cuDNN lstm (jax.experimental.rnn)"], "reason": None,
                "rewrite": "onednn_recurrence"}
    from .build import library
    facts = dict(library()[1])
    return {"active": ["oneDNN lstm", "oneDNN lbr_gru", "oneDNN vanilla_rnn (tanh, relu)"],
            "reason": None, "rewrite": "onednn_recurrence", **facts}


def describe(target) -> list[str]:
    """One line per recurrence: the rewrite that fired and the kernel it runs on.

    ``target``: a :class:`scanrnn.Function` (the rewrite's decisions at its last
    compilation; before its first call, what the rewrite would do), a PyTensor
    ``Function``, a ``FunctionGraph`` or a list of variables (what the rewrite would
    do to that graph).  Empty when nothing would run on a kernel's backend.
    """
    decisions = getattr(target, "kernel_decisions", None)
    if decisions is not None:
        return [d.line() for d in decisions]
    select = None
    if hasattr(target, "kernel_decisions"):  # a scanrnn Function not called yet (or not JAX)
        if target.backend != "jax" or not wanted(target.kernels):
            return []
        select = selection(target.kernels)
        target = [*target.outputs, *target.updates.values()]
    fgraph = getattr(getattr(target, "maker", None), "fgraph", None) or target
    if hasattr(fgraph, "apply_nodes"):
        from .ops import OneDNNRecurrence
        return [f"{node.op} (rewrite onednn_recurrence)" for node in fgraph.toposort()
                if isinstance(node.op, OneDNNRecurrence)]
    return [d.line() for d in rewrite(list(target), select=select)[1]]
