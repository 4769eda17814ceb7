"""Host memory: XLA's per-call scratch block is reused, not page-faulted back in every call
(scanrnn.allocator); SCANRNN_MALLOC=0 and other C libraries leave malloc alone."""

import json
import os
import subprocess
import sys

import pytest

from scanrnn import allocator

pytest.importorskip("jax")
GLIBC = allocator._glibc_mallopt() is not None

# a JAX function whose call needs a 48 MB temporary, more than glibc's
# largest mmap threshold: without the setting every call maps and faults it in afresh
CHILD = r"""
import json, resource, sys
import numpy as np
import pytensor.tensor as pt
import scanrnn
from scanrnn import allocator
a, b, c = pt.matrix("a"), pt.matrix("b"), pt.matrix("c")
hidden = pt.tanh(pt.dot(a, b))             # (2048, 6144) float32: a 48 MB temporary
f = scanrnn.function([a, b, c], [pt.dot(hidden, c)], backend="jax")
rng = np.random.default_rng(0)
args = [rng.normal(size=s).astype("float32") for s in ((2048, 32), (32, 6144), (6144, 4))]
for _ in range(3):
    f(*args)
faults = []
for _ in range(7):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f(*args)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
faults = sorted(faults)[3]                 # the median call (the heap may still grow early on)
print(json.dumps({"faults": faults, **allocator.status()}))
"""


def _child(**env):
    run = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu", **env})
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only (this C library is left alone)")
def test_the_scratch_block_is_reused_between_calls():
    default = _child(SCANRNN_MALLOC="0")
    assert not default["applied"] and "SCANRNN_MALLOC=0" in default["reason"]
    # 12,288 pages per call are mapped afresh by default; kept, almost none
    assert default["faults"] > 4000, default
    # glibc hands a new thread one of the arenas that exist when it first allocates; one
    # made before scanrnn's import (a thread of numpy's BLAS, say) has 64 MB heaps that give
    # a freed block back, and which arena XLA's worker gets varies from process to process
    # (seen once in ~20 CI runs). So up to three processes: one must keep the block.
    tries = []
    for _ in range(3):
        kept = _child()
        assert kept["applied"] and "kept" in kept["reason"]
        tries.append(kept["faults"])
        if kept["faults"] < default["faults"] / 4:
            break
    assert min(tries) < default["faults"] / 4, (tries, default)


def test_the_users_own_malloc_settings_win(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert "MALLOC_ARENA_MAX" in allocator._user_reason()
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
    assert "GLIBC_TUNABLES" in allocator._user_reason()
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.cpu.x86_shstk=on")
    assert allocator._user_reason() is None
    assert set(allocator.status()) == {"applied", "reason"}
