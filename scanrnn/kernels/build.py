"""Build the oneDNN kernel library at first use, cache it, load it: :func:`library`.

The C++ source ``onednn_rnn.cc`` is compiled with the machine's C++ compiler
against oneDNN from the ``onednn-cpu-gomp`` / ``onednn-devel-cpu-gomp`` wheels
(``pip install "scanrnn[kernels]"``; the README's ``.[jax,dev]`` includes them)
and jaxlib's XLA FFI headers, the way PyTensor compiles its C backend.  The
shared object is cached under ``$SCANRNN_CACHE_DIR`` (default
``~/.cache/scanrnn``), in ``kernels/<key>/``, keyed by the source's hash, the
compiler, jaxlib's and oneDNN's versions and the flags.  Several processes
building at once take a file lock; the result is written to a temporary name
and renamed into place.

Anything missing (no compiler, no oneDNN, no ``jax.ffi``) or a failed build is
reported by :func:`library` as ``(None, reason)``; the caller logs the reason
once and runs the scan path.  ``SCANRNN_KERNELS=0`` turns the kernels off.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

log = logging.getLogger("scanrnn.kernels")

SOURCE = Path(__file__).with_name("onednn_rnn.cc")
FLAGS = ("-O2", "-std=c++17", "-shared", "-fPIC", "-w")
_LOCK = threading.Lock()
_RESULT: dict = {}


class KernelUnavailable(RuntimeError):
    """The oneDNN kernels cannot run here; the message says why."""


def _dist_file(dist: str, suffix: str) -> Path | None:
    """The installed file of ``dist`` whose path ends with ``suffix``, or None."""
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).replace("\\", "/").endswith(suffix):
            path = Path(f.locate()).resolve()
            if path.exists():
                return path
    return None


def onednn_paths() -> tuple[Path, Path]:
    """``(include dir, lib dir)`` of oneDNN, or raise :class:`KernelUnavailable`.

    ``$SCANRNN_ONEDNN_ROOT`` (with ``include/`` and ``lib/``) wins; else the files of the
    ``onednn-devel-cpu-gomp`` and ``onednn-cpu-gomp`` wheels; else ``sys.prefix``.
    """
    roots = [Path(os.environ["SCANRNN_ONEDNN_ROOT"])] if os.environ.get("SCANRNN_ONEDNN_ROOT") \
        else []
    header = _dist_file("onednn-devel-cpu-gomp", "oneapi/dnnl/dnnl.hpp")
    lib = _dist_file("onednn-cpu-gomp", "libdnnl.so")
    if not roots and header is not None and lib is not None:
        return header.parents[2], lib.parent
    roots.append(Path(sys.prefix))
    for root in roots:
        if (root / "include/oneapi/dnnl/dnnl.hpp").exists() and \
                any((root / "lib").glob("libdnnl.so*")):
            return root / "include", root / "lib"
    raise KernelUnavailable("oneDNN is not installed (pip install 'scanrnn[kernels]': "
                            "onednn-cpu-gomp and onednn-devel-cpu-gomp)")


def onednn_version(include: Path) -> str:
    """oneDNN's version from its ``dnnl_version.h``, e.g. ``"3.2.0"``."""
    text = (include / "oneapi/dnnl/dnnl_version.h").read_text(errors="replace")
    parts = []
    for name in ("MAJOR", "MINOR", "PATCH"):
        line = next((ln for ln in text.splitlines() if f"DNNL_VERSION_{name} " in ln), "")
        parts.append(line.split()[-1] if line else "?")
    return ".".join(parts)


def compiler() -> tuple[str, str]:
    """``(path, version line)`` of the C++ compiler (``$CXX``, else g++, else c++).

    A ``$CXX`` that does not answer ``--version`` is passed over with one logged line."""
    chosen = os.environ.get("CXX", "").strip()
    for name in filter(None, (chosen, "g++", "c++", "clang++")):
        found = _answering(name)
        if found is not None:
            if chosen and name != chosen:
                log.warning("scanrnn: CXX=%r does not run as a C++ compiler; building the "
                            "oneDNN kernels with %s", chosen, found[0])
            return found
    raise KernelUnavailable("no C++ compiler found ($CXX, g++, c++ or clang++)")


def _answering(name: str) -> tuple[str, str] | None:
    """``(path, version line)`` of the compiler ``name`` if ``name --version`` succeeds."""
    path = shutil.which(name)
    if not path:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return path, (out.stdout.splitlines() or ["?"])[0]


def cache_root() -> Path:
    """Where built kernels are kept: ``$SCANRNN_CACHE_DIR`` or ``~/.cache/scanrnn``."""
    env = os.environ.get("SCANRNN_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "scanrnn"


def _jax_ffi():
    if importlib.util.find_spec("jax") is None:
        raise KernelUnavailable("JAX is not installed")
    import jax
    import jaxlib
    ffi = getattr(jax, "ffi", None)
    if ffi is None or not hasattr(ffi, "register_ffi_target"):
        raise KernelUnavailable(f"jax {jax.__version__} has no jax.ffi")
    return jax, ffi, getattr(jaxlib, "__version__", jax.__version__)


_SWITCH = {"1": True, "on": True, "true": True, "yes": True,
           "0": False, "off": False, "false": False, "no": False, "": None}
_WARNED: set = set()


def env_setting(name: str = "SCANRNN_KERNELS") -> bool | None:
    """The switch ``name`` (``SCANRNN_KERNELS``, ``SCANRNN_CUDNN``): True (1/on/true/yes),
    False (0/off/false/no), None (unset; anything else too, with one logged line)."""
    value = os.environ.get(name, "").strip().lower()
    if value not in _SWITCH and (name, value) not in _WARNED:
        _WARNED.add((name, value))
        log.warning("scanrnn: %s=%r is not one of 1/on/true/yes or 0/off/false/no; "
                    "ignored (the default applies)", name, os.environ.get(name))
    return _SWITCH.get(value)


def build_key(source: bytes, cxx_version: str, jaxlib_version: str, dnnl_version: str,
              lib_dir: str) -> str:
    """The cache key of one build (16 hex digits).

    ``lib_dir`` is where libdnnl lives: the library finds it there (its run path), so a build
    made in a virtual environment that is gone must not be reused by another one."""
    blob = b"\0".join([source, cxx_version.encode(), jaxlib_version.encode(),
                       dnnl_version.encode(), " ".join(FLAGS).encode(),
                       os.fsencode(os.path.abspath(lib_dir))])
    return hashlib.sha256(blob).hexdigest()[:16]


def _compile(cxx, include_dirs, lib_dir, out: Path):
    """Compile ``SOURCE`` to ``out`` (written under a temporary name, then renamed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=out.parent)
    os.close(fd)
    cmd = [cxx, *FLAGS, *[f"-I{d}" for d in include_dirs], str(SOURCE), f"-L{lib_dir}",
           "-ldnnl", f"-Wl,-rpath,{lib_dir}", "-o", tmp]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            first = next((ln for ln in done.stderr.splitlines() if "error" in ln),
                         done.stderr.strip()[:300])
            raise KernelUnavailable(f"building the oneDNN kernels failed: {first}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _locked(path: Path):
    """An exclusive file lock on ``path`` (a context manager)."""
    import contextlib
    import fcntl

    @contextlib.contextmanager
    def hold():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    return hold()


def built_library() -> tuple[Path, dict]:
    """Build (or find in the cache) the kernel library; ``(path, facts)``."""
    if env_setting() is False:
        raise KernelUnavailable("turned off by SCANRNN_KERNELS=0")
    if not sys.platform.startswith("linux"):
        raise KernelUnavailable(f"the oneDNN kernels are built on Linux only, not {sys.platform}")
    jax, ffi, jaxlib_version = _jax_ffi()
    include, lib_dir = onednn_paths()
    dnnl = onednn_version(include)
    cxx, cxx_version = compiler()
    key = build_key(SOURCE.read_bytes(), cxx_version, jaxlib_version, dnnl, str(lib_dir))
    out = cache_root() / "kernels" / key / "scanrnn_onednn_rnn.so"
    if not out.exists():
        with _locked(out.parent.parent / f"{key}.lock"):
            if not out.exists():
                _compile(cxx, [Path(ffi.include_dir()), include], lib_dir, out)
    return out, {"onednn": dnnl, "compiler": cxx_version, "jaxlib": jaxlib_version,
                 "path": str(out)}


def _quiet_openmp():
    """Let oneDNN's OpenMP threads sleep, not spin, between kernel calls (unless the user chose).

    GNU OpenMP reads ``OMP_WAIT_POLICY`` when libgomp loads, i.e. with libdnnl below.  Its
    default spinning takes a core from XLA's own threads for the rest of the step (measured,
    LSTM H256 B32 T64 training step on 2 cores: 130 ms spinning, 86 ms passive).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


SYMBOLS = ("ScanrnnRnnForward", "ScanrnnRnnBackward", "scanrnn_workspace_bytes")


def _load(path: Path):
    """The library at ``path``, checked to hold :data:`SYMBOLS` (OSError otherwise)."""
    lib = ctypes.CDLL(str(path))
    missing = [name for name in SYMBOLS if not hasattr(lib, name)]
    if missing:
        raise OSError(f"{path} lacks {', '.join(missing)}")
    return lib


def _loaded_or_rebuilt(path: Path, facts: dict):
    """Load the cached library; a damaged one (truncated, not ours) is built again once."""
    try:
        return _load(path), facts
    except OSError as exc:
        log.warning("scanrnn: the cached oneDNN kernel library is damaged (%s); building it "
                    "again", exc)
        with _locked(path.parent.parent / f"{path.parent.name}.lock"):
            path.unlink(missing_ok=True)
        path, facts = built_library()
        return _load(path), facts


def library():
    """``(ctypes library, facts)`` once per process, or ``(None, reason)``."""
    with _LOCK:
        if "result" not in _RESULT:
            try:
                path, facts = built_library()
                _quiet_openmp()
                _RESULT["result"] = _loaded_or_rebuilt(path, facts)
            except KernelUnavailable as exc:
                _RESULT["result"] = (None, str(exc))
            except Exception as exc:  # an unwritable cache, a hung compiler, a bad library
                _RESULT["result"] = (None, f"the oneDNN kernels could not be built or "
                                           f"loaded: {type(exc).__name__}: {exc}")
        return _RESULT["result"]
