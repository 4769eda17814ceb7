"""Helpers of the lesson: ``to_categorical``, ``get_file`` (offline, through the corpus
registry), ``Progbar``, ``set_random_seed``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .._config import floatx
from .engine import set_random_seed
from .progbar import Progbar

__all__ = ["Progbar", "get_file", "set_random_seed", "to_categorical"]


def to_categorical(y, num_classes=None, dtype=None, *, nb_classes=None):
    """One-hot rows: int ids of shape ``S`` -> float32 ``S + (num_classes,)``.

    A trailing axis of size 1 is dropped first (``(N, 1) -> (N, V)``), as in Keras.
    Keras 1 calls ``num_classes`` ``nb_classes``.
    """
    if nb_classes is not None:
        if num_classes is not None and num_classes != nb_classes:
            raise ValueError("give the number of classes once")
        num_classes = nb_classes
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if np.any(y != np.round(y)):
            raise ValueError("to_categorical takes integer class ids, got non-integer floats")
    elif y.dtype.kind not in "iub":
        raise ValueError(f"to_categorical takes integer class ids, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.size and y.min() < 0:
        raise ValueError(f"class ids must be >= 0, got {y.min()}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    num_classes = int(num_classes)
    if y.size and y.max() >= num_classes:
        raise ValueError(f"class id {int(y.max())} does not fit num_classes={num_classes}")
    out = np.zeros((*y.shape, num_classes), dtype=dtype or floatx())
    np.put_along_axis(out, y[..., None], 1, axis=-1)
    return out


def _corpora():
    try:
        from ..data import corpora
    except ImportError as exc:
        raise ImportError("get_file needs scanrnn.data (the corpus registry), which is not "
                          "importable here") from exc
    return corpora


def _hash(path, algorithm):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_hash(path, file_hash):
    if not file_hash:
        return
    algorithm = "sha256" if len(file_hash) == 64 else "md5"
    actual = _hash(path, algorithm)
    if actual != file_hash.lower():
        raise ValueError(f"{path} has {algorithm} {actual}, expected {file_hash}; delete it to "
                         f"download it again")


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None,
             cache_subdir="datasets", hash_algorithm="auto", extract=False,
             archive_format="auto", cache_dir=None):
    """The local path of a data file, as Keras's ``get_file`` (returns a ``str``).

    A corpus the project's registry knows (by file name, e.g. ``'nietzsche.txt'``,
    or by its canonical URL) resolves through :func:`scanrnn.data.resolve_corpus`:
    the local mirror (``$SCANRNN_DATA``), the project's ``data/``, the user cache,
    then a checked download.  Other files are looked up in
    ``cache_dir/cache_subdir`` (default ``~/.keras/datasets``) and downloaded
    from ``origin`` when missing.
    """
    if untar or extract:
        raise ValueError("get_file(untar=/extract=) is not supported; extract archives "
                         "yourself")
    if fname is None and origin is None:
        raise ValueError("get_file needs fname or origin")
    fname = fname or os.path.basename(str(origin))
    corpora = _corpora()
    for corpus in corpora.CORPORA.values():
        if fname in (corpus.filename, corpus.name) or (origin and origin == corpus.url):
            path = corpora.resolve_corpus(corpus.name)
            _check_hash(path, file_hash or md5_hash)
            return str(path)
    folder = Path(cache_dir or Path.home() / ".keras").expanduser() / cache_subdir
    dest = folder / fname
    if not dest.is_file():
        if origin is None:
            raise FileNotFoundError(f"{dest} does not exist and no origin URL was given")
        sha256 = file_hash if file_hash and len(file_hash) == 64 else None
        corpora.download_file(origin, dest, sha256=sha256)
    _check_hash(dest, file_hash or md5_hash)
    return str(dest)
