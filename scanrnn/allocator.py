"""Keep the pages of freed large blocks for the next training step (glibc's malloc, Linux).

XLA on the CPU allocates the temporary buffers of each call of a compiled function as one
block -- 58 MB for the default ``scanrnn train`` step -- and frees it when the call ends.
glibc serves a block above its mmap threshold (32 MB at most) with a fresh ``mmap`` and
returns it with ``munmap``, so every step faulted its whole scratch space back in, page by
page: about 15,600 minor page faults per step, which cost the default model 10-25% of its
speed on a 2-core CPU (``benchmarks/RESULTS.md``).  :func:`keep_freed_memory` asks glibc to
serve large blocks from its heap and not to trim the heap, so the next step reuses the
same pages.  The process keeps the memory of its largest step until it ends (what a
training process wants; a long-lived service that trains once can opt out).

Applied first thing when scanrnn is imported, before numpy, PyTensor and JAX start threads.
``M_ARENA_MAX=1`` puts threads that allocate afterwards on the main heap, which keeps any
block.  A thread that made an arena of its own before (numpy's BLAS threads, when numpy was
imported first, may have) can hand XLA's worker that arena, whose 64 MB heaps give a block
that needed a heap of its own back when it is freed: then that process faults it in as
before (rare: once in about 20 test runs).  ``SCANRNN_MALLOC=0``, or the user's own
``MALLOC_..._`` / ``GLIBC_TUNABLES=glibc.malloc...`` settings, leave malloc as it is; on other
C libraries (macOS, musl, Windows) nothing changes.  ``scanrnn info`` says which.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["keep_freed_memory", "status"]

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
KEEP_UP_TO = 2**31 - 1     # bytes of free heap top glibc keeps instead of trimming (int max)

_state = {"decided": False, "applied": False, "reason": ""}


def _user_reason() -> str | None:
    """Why the user's environment says to leave malloc alone, or None."""
    if os.environ.get("SCANRNN_MALLOC", "").strip().lower() in ("0", "off", "false", "no"):
        return "left alone: SCANRNN_MALLOC=0"
    chosen = [k for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_",
                          "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX") if k in os.environ]
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        chosen.append("GLIBC_TUNABLES")
    return f"left alone: the user's own settings ({', '.join(chosen)})" if chosen else None


def _glibc_mallopt():
    """glibc's ``mallopt``, or None on another C library."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if not hasattr(libc, "gnu_get_libc_version"):   # musl has a mallopt that ignores all
            return None
    except OSError:
        return None
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


def keep_freed_memory() -> bool:
    """Make glibc keep freed large blocks for reuse (decided once per process); True if so."""
    if _state["decided"]:
        return _state["applied"]
    _state["decided"] = True
    reason = _user_reason()
    mallopt = None if reason else _glibc_mallopt()
    if mallopt is not None:
        if all(mallopt(param, value) == 1 for param, value in
               ((M_TRIM_THRESHOLD, KEEP_UP_TO), (M_MMAP_MAX, 0), (M_ARENA_MAX, 1))):
            _state["applied"] = True
            reason = "large blocks served from the heap, freed pages kept for reuse"
        else:
            reason = "left alone: glibc's mallopt refused the settings"
    _state["reason"] = reason or "left alone: not glibc's malloc"
    return _state["applied"]


def status() -> dict:
    """``{"applied": bool, "reason": str}`` (``scanrnn info``)."""
    return {"applied": _state["applied"], "reason": _state["reason"] or "not decided yet"}
