"""Checkpoints as ``.npz`` archives: atomic saves, checked loads, no pickle.

A checkpoint is a plain numpy ``.npz`` (a zip of ``.npy`` arrays) holding

* ``__scanrnn__``: a uint8 array with a UTF-8 JSON header: the format marker
  ``"scanrnn-checkpoint"``, the format version, the hash of the configuration
  the arrays belong to (:func:`config_hash`) and a JSON ``meta`` dict (epoch,
  step, learning rate, history, ...);
* one entry per array, under its own name (``"params/lstm_1.W_x"``, ...).

:func:`save` writes a temporary file in the destination's directory, flushes
and fsyncs it, renames it over the destination with :func:`os.replace` (atomic
on POSIX and Windows) and fsyncs the directory, so a crash or a kill during a
save leaves the previous checkpoint whole.  :func:`load` reads with
``allow_pickle=False`` and turns every way a file can be wrong (missing,
truncated, corrupt, not a zip, not ours, another configuration) into a
:class:`CheckpointError` with one clear sentence.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "scanrnn-checkpoint"
VERSION = 1
HEADER_KEY = "__scanrnn__"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, foreign or mismatched."""


def _jsonable(value):
    """``json.dumps`` fallback for numpy scalars and arrays inside ``meta``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"checkpoint meta holds a {type(value).__name__}, which is not JSON: {value!r}")


def config_hash(config: dict) -> str:
    """A short stable hash of a JSON-able configuration dict (16 hex digits).

    Two checkpoints with the same hash hold arrays of the same names and
    shapes; :func:`load` refuses one whose hash differs from the expected one.
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=_jsonable)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, write) -> Path:
    """Write a file atomically: ``write(fileobj)`` into a temporary file, then rename.

    The temporary file lives in the destination's directory (a rename across
    file systems is not atomic); it is flushed and fsynced before
    :func:`os.replace`, then the directory is fsynced.  On any error the
    temporary file is removed and the destination is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600 files; give the usual umask mode
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text (config.json, vocab.json)."""
    data = text.encode("utf-8")
    return atomic_write_bytes(path, lambda handle: handle.write(data))


def save(path, arrays: dict, meta: dict | None = None, config: str | dict | None = None) -> Path:
    """Save ``arrays`` (name -> numpy array) and ``meta`` atomically to ``path``.

    Parameters
    ----------
    path : str or Path
        Destination, conventionally ending in ``.npz``.
    arrays : dict[str, array_like]
        Numeric arrays (no object dtype); names may contain ``/``.
    meta : dict, optional
        JSON-able data stored in the header (numpy scalars are converted).
    config : str or dict, optional
        The configuration the arrays belong to: a dict (hashed with
        :func:`config_hash`) or a hash string.  :func:`load` checks it.
    """
    if isinstance(config, dict):
        config = config_hash(config)
    header = {"format": FORMAT, "version": VERSION, "config_hash": config,
              "arrays": sorted(arrays), "meta": meta or {}}
    header_bytes = json.dumps(header, default=_jsonable).encode("utf-8")
    payload = {HEADER_KEY: np.frombuffer(header_bytes, dtype=np.uint8)}
    for name, value in arrays.items():
        if name == HEADER_KEY:
            raise ValueError(f"array name {HEADER_KEY!r} is reserved")
        array = np.asarray(value)
        if array.dtype == object:
            raise ValueError(f"array {name!r} has dtype object; checkpoints hold numeric "
                             "arrays only")
        payload[name] = array
    return atomic_write_bytes(path, lambda handle: np.savez(handle, **payload))


class Checkpoint:
    """What :func:`load` returns: ``arrays`` (name -> numpy array), ``meta``, ``config_hash``."""

    def __init__(self, path: Path, arrays: dict, meta: dict, config_hash: str | None):
        self.path = path
        self.arrays = arrays
        self.meta = meta
        self.config_hash = config_hash

    def __repr__(self):
        return (f"<Checkpoint {self.path} arrays={len(self.arrays)} "
                f"step={self.meta.get('step')} epoch={self.meta.get('epoch')}>")


def load(path, config: str | dict | None = None) -> Checkpoint:
    """Load and check a checkpoint written by :func:`save`.

    Parameters
    ----------
    path : str or Path
    config : str or dict, optional
        The expected configuration (dict or hash): a checkpoint saved for
        another configuration raises :class:`CheckpointError`.

    Raises
    ------
    CheckpointError
        Missing file, not a zip/npz, truncated or corrupt data, an archive
        that is not a scanrnn checkpoint, a newer format version, a pickled
        (object) array, or a configuration mismatch.  Nothing is unpickled.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if not magic:
        raise CheckpointError(f"{path} is empty (a save was interrupted before it began?)")
    if magic.startswith(b"\x93NUMPY"):
        raise CheckpointError(f"{path} is a single .npy array, not a scanrnn checkpoint")
    if not magic.startswith(b"PK"):
        raise CheckpointError(f"{path} is not a scanrnn checkpoint (not an .npz archive)")
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            if HEADER_KEY not in archive.files:
                raise CheckpointError(f"{path} is an .npz archive but not a scanrnn "
                                      f"checkpoint (no {HEADER_KEY} entry)")
            header = _parse_header(path, archive[HEADER_KEY])
            for name in archive.files:
                if name != HEADER_KEY:
                    arrays[name] = archive[name]
    except CheckpointError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise CheckpointError(f"{path} holds a pickled (object) array; scanrnn never "
                                  "unpickles, so it is not a scanrnn checkpoint") from None
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt file: {exc})") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, zipfile.LargeZipFile) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt file: "
                              f"{type(exc).__name__}: {exc})") from None
    missing = sorted(set(header.get("arrays", arrays)) - set(arrays))
    if missing:
        raise CheckpointError(f"{path} is incomplete: arrays {missing[:5]} are missing")
    want = config_hash(config) if isinstance(config, dict) else config
    got = header.get("config_hash")
    if want is not None and got != want:
        raise CheckpointError(
            f"{path} was saved for another configuration (hash {got}, expected {want}): "
            "model sizes, cell or vocabulary differ")
    return Checkpoint(path, arrays, header.get("meta", {}), got)


def _parse_header(path: Path, raw: np.ndarray) -> dict:
    try:
        header = json.loads(np.asarray(raw, dtype=np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError):
        raise CheckpointError(f"{path} has a corrupt scanrnn header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a scanrnn checkpoint (format marker missing)")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {version!r}; this scanrnn "
                              f"reads versions up to {VERSION} (upgrade scanrnn)")
    return header
