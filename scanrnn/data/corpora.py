"""Corpus registry: find a text by name, verify it, download it if needed, read it.

A corpus name (``"timemachine"``, ``"nietzsche"``) or its file name (``"nietzsche.txt"``)
resolves, in this order, to the first existing copy of the file in

1. ``$SCANRNN_DATA/<file>`` (the local mirror; several folders may be joined with ``os.pathsep``),
2. ``<repo>/data/<file>`` (the project's own ``data/`` folder) and ``./data/<file>``,
3. the user cache, ``$XDG_CACHE_HOME/scanrnn`` or ``~/.cache/scanrnn`` (or ``cache_dir=``),
4. a download from the canonical URL into the cache (checked against its SHA-256; skipped when
   ``download=False`` or the environment variable ``SCANRNN_OFFLINE`` is set to a non-empty
   value other than ``0``).

A registry file found locally must match its SHA-256; an explicit path is read as it is.
Every failure raises :class:`CorpusError` saying what was wrong and what to do.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CORPORA", "Corpus", "CorpusError", "default_cache_dir", "download_file", "load_corpus",
    "read_text", "resolve_corpus", "search_paths", "sha256sum",
]

#: Seconds to wait for the server before a download gives up.
DOWNLOAD_TIMEOUT = 30.0

# The fetcher used by :func:`download_file` (a module attribute so tests can replace it).
_urlopen = urllib.request.urlopen

_REPO_DATA = Path(__file__).resolve().parents[2] / "data"


class CorpusError(ValueError):
    """A corpus or text file is missing, corrupt, unreadable or too short for the request."""


@dataclass(frozen=True)
class Corpus:
    """One registry entry: where a corpus comes from and how to recognise the right file.

    ``size`` is in bytes; ``sha256`` is checked, ``sha1`` is kept because the seeds quote it.
    """

    name: str
    filename: str
    sha256: str
    sha1: str
    size: int
    url: str
    description: str
    sample_prefix: str | None = None   # the seeds' epoch-sample prefix, if they have one
    # `scanrnn train` defaults of a reproduction tuned on this corpus (flags still win)
    train_defaults: dict = field(default_factory=dict)


CORPORA: dict[str, Corpus] = {
    "timemachine": Corpus(
        name="timemachine",
        filename="timemachine.txt",
        sha256="8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516",
        sha1="090b5e7e70c295757f55df93cb0a180b9691891a",
        size=178_979,
        url="http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt",
        description="H. G. Wells, The Time Machine: the file used by Dive into Deep Learning "
                    "(d2l preprocessing gives 170,580 characters, vocabulary 28).",
        sample_prefix="time traveller",
        # issue 3's held-out target (perplexity 4.175 in 178 s): the general defaults
        # (sequential batches, cosine) overfit this 150K-character text sooner (4.345)
        train_defaults={"sampling": "random", "lr": 5e-3, "schedule": "plateau",
                        "weight_decay": 0.0, "ema": 0.0, "eval_every": 150, "eval_minutes": None,
                        "eval_batch_size": 16},
    ),
    "nietzsche": Corpus(
        name="nietzsche",
        filename="nietzsche.txt",
        sha256="9cb94a5f1f8d1359e2e018fa67306eba4ae03942b8c44643eececded39e096df",
        sha1="b06c2dd0f59004fa6e716f649b944745eb1db5ad",
        size=600_901,
        url="https://s3.amazonaws.com/text-datasets/nietzsche.txt",
        description="Nietzsche, Beyond Good and Evil (English, lowercased): the Keras example "
                    "corpus of the fast.ai lesson (600,893 characters, 57 distinct).",
    ),
}


# ---------------------------------------------------------------------------------------------
# locations


def default_cache_dir() -> Path:
    """The user cache folder: ``$XDG_CACHE_HOME/scanrnn`` or ``~/.cache/scanrnn``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "scanrnn"


def _mirror_dirs() -> list[Path]:
    value = os.environ.get("SCANRNN_DATA", "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def search_paths(filename: str, cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """Every place a registry file is looked for, in order (duplicates removed)."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folders = [*_mirror_dirs(), _REPO_DATA, Path.cwd() / "data", cache]
    seen: set[Path] = set()
    paths = []
    for folder in folders:
        path = folder / filename
        key = path.resolve() if path.exists() else path.absolute()
        if key not in seen:
            seen.add(key)
            paths.append(path)
    return paths


def _lookup(name: str) -> Corpus | None:
    key = name.strip()
    if key in CORPORA:
        return CORPORA[key]
    for corpus in CORPORA.values():
        if key == corpus.filename:
            return corpus
    return None


# ---------------------------------------------------------------------------------------------
# checksums and downloads


def sha256sum(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _offline() -> bool:
    return os.environ.get("SCANRNN_OFFLINE", "").strip() not in ("", "0")


def download_file(url: str, dest: str | os.PathLike, *, sha256: str | None = None,
                  timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Download ``url`` to ``dest`` safely and return ``dest``.

    The bytes go to a temporary file beside ``dest``; when ``sha256`` is given they must match
    it, otherwise the temporary file is deleted and :class:`CorpusError` is raised. Only a
    verified file is renamed (atomically) to ``dest``. Network failures raise
    :class:`CorpusError` too.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        try:
            with os.fdopen(fd, "wb") as out, _urlopen(url, timeout=timeout) as response:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CorpusError(f"could not download {url}: {exc}") from exc
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256.lower():
            raise CorpusError(
                f"checksum mismatch for the download of {url}: expected sha256 {sha256}, got "
                f"{actual}; the partial file was deleted. The server may have changed the file: "
                f"fetch the right one by hand and put it at {dest}.")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def _verify(path: Path, corpus: Corpus) -> None:
    size = path.stat().st_size
    if size == corpus.size and sha256sum(path) == corpus.sha256:
        return
    actual = sha256sum(path)
    raise CorpusError(
        f"{path} is not the expected {corpus.name!r} corpus: {size:,} bytes with sha256 {actual}, "
        f"expected {corpus.size:,} bytes with sha256 {corpus.sha256}. Delete or replace that file "
        f"(the right one is at {corpus.url}), or pass the file's path explicitly to use it as "
        f"it is.")


# ---------------------------------------------------------------------------------------------
# resolution


def _special_file(path: Path) -> str | None:
    """What ``path`` is when it exists but is not a regular file or folder (else None)."""
    try:
        mode = path.stat().st_mode
    except RuntimeError:  # pragma: no cover - Python < 3.13 raises this for a loop
        return "a symbolic link loop"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if path.is_symlink():
            return f"a symbolic link to {os.readlink(path)!r}, which does not exist"
        return None
    kinds = [(stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), None)


def resolve_corpus(name_or_path: str | os.PathLike, *, download: bool = True,
                   cache_dir: str | os.PathLike | None = None,
                   timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Return the path of a text file given a path or a registry name.

    Parameters
    ----------
    name_or_path : an existing file (returned, made absolute, unchecked), a registry name such as
        ``"timemachine"``, or a registry file name such as ``"nietzsche.txt"``.
    download : fetch a registry corpus from its canonical URL into the cache when no local copy
        exists (also disabled by ``SCANRNN_OFFLINE=1``).
    cache_dir : the user cache folder to use instead of :func:`default_cache_dir`.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise CorpusError(f"expected a corpus name or a file path, got {type(name_or_path)!r}")
    text = os.fspath(name_or_path)
    if not text.strip():
        raise CorpusError(f"empty corpus name; known corpora: {', '.join(sorted(CORPORA))}")
    path = Path(text).expanduser()
    if path.is_file():
        return path.absolute()
    if path.is_dir():
        raise CorpusError(f"{path} is a folder, not a text file; pass a file or a corpus name "
                          f"({', '.join(sorted(CORPORA))})")
    special = _special_file(path)
    if special:
        raise CorpusError(f"{path} is {special}, not a regular text file; pass a text file or "
                          f"a corpus name ({', '.join(sorted(CORPORA))})")
    corpus = _lookup(text)
    if corpus is None:
        raise CorpusError(
            f"no file at {path.absolute()} and {text!r} is not a known corpus name; known "
            f"corpora: {', '.join(sorted(CORPORA))} (or give the path of a UTF-8 text file)")

    places = search_paths(corpus.filename, cache_dir)
    for candidate in places:
        if candidate.is_file():
            _verify(candidate, corpus)
            return candidate.absolute()

    cache = places[-1].parent
    looked = "\n  ".join(str(p) for p in places)
    if download and not _offline():
        dest = cache / corpus.filename
        try:
            return download_file(corpus.url, dest, sha256=corpus.sha256, timeout=timeout)
        except CorpusError as exc:
            raise CorpusError(
                f"corpus {corpus.name!r} ({corpus.filename}) was not found locally and the "
                f"download failed: {exc}\nLooked in:\n  {looked}\nSet SCANRNN_DATA to a folder "
                f"holding {corpus.filename}, or put the file in one of those places.") from exc
    why = "downloads are disabled" if not download else "SCANRNN_OFFLINE is set"
    raise CorpusError(
        f"corpus {corpus.name!r} ({corpus.filename}) was not found and {why}.\nLooked in:\n"
        f"  {looked}\nSet SCANRNN_DATA to a folder holding {corpus.filename}, or put the file in "
        f"one of those places (it is at {corpus.url}).")


# ---------------------------------------------------------------------------------------------
# reading


def read_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file as ``str`` (universal newlines, a leading BOM dropped).

    Raises :class:`CorpusError` for a missing, empty, binary (NUL bytes) or non-UTF-8 file,
    naming the byte offset of the first bad byte.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CorpusError(f"no such file: {path.absolute()}; check the path, or use a corpus "
                          f"name ({', '.join(sorted(CORPORA))})")
    if not path.is_file():
        raise CorpusError(f"{path} is not a regular file; pass a UTF-8 text file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc}") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data:
        raise CorpusError(f"{path} is empty; a corpus needs some text")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise CorpusError(f"{path} looks binary: NUL byte at byte offset {nul}; pass a UTF-8 "
                          f"text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{path} is not valid UTF-8: bad byte 0x{data[exc.start]:02x} at byte offset "
            f"{exc.start} ({exc.reason}); convert the file to UTF-8 (e.g. iconv -f latin1 "
            f"-t utf-8)") from exc
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def load_corpus(name_or_path: str | os.PathLike, **kw) -> str:
    """The text of a corpus: ``read_text(resolve_corpus(name_or_path, **kw))``."""
    return read_text(resolve_corpus(name_or_path, **kw))
