"""Run directories: everything one training run writes, and :func:`load_run` to read it back.

========================  ===============================================================
file                      what
========================  ===============================================================
``config.json``           the model, training and corpus configuration (rebuilds the model)
``vocab.json``            the vocabulary (:meth:`scanrnn.data.Vocab.to_json`)
``latest.npz``            the latest checkpoint: parameters, optimizer state, random state,
                          data position, epoch, learning rate, history
``best.npz``              the same at the best validation loss so far
``metrics.csv``           one row per ``N`` steps (``kind=step``) and per epoch (``kind=epoch``)
``samples.txt``           text generated at the end of each epoch
``loss.png``              train / validation curves (only when matplotlib is installed)
``train.lock``            held (``flock``) by the process training the run, with its pid;
                          removed when it ends (:meth:`RunDir.lock`)
========================  ===============================================================

Checkpoints are written atomically (:mod:`scanrnn.checkpoint`); config.json and
vocab.json too.  A checkpoint carries the hash of the model configuration and
the vocabulary, so one from another run is refused with a clear error.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import shlex
from pathlib import Path

from .. import checkpoint as ckpt
from .._version import __version__

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: runs are not locked
    fcntl = None

RUN_FORMAT = "scanrnn-run"
RUN_VERSION = 1
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
LATEST = "latest.npz"
BEST = "best.npz"
METRICS_FILE = "metrics.csv"
SAMPLES_FILE = "samples.txt"
PLOT_FILE = "loss.png"
LOCK_FILE = "train.lock"

METRIC_COLUMNS = ("kind", "epoch", "step", "tokens", "seconds", "lr", "train_loss", "train_ppl",
                  "train_bpc", "val_loss", "val_ppl", "val_bpc", "tokens_per_s")


def _metrics_csv(rows, header: bool = True) -> str:
    """``rows`` (dicts) as metrics.csv text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k)) for k in METRIC_COLUMNS})
    return buffer.getvalue()


class RunDirError(ValueError):
    """A path that is not a usable run directory."""


def model_hash(model_config: dict, vocab_dict: dict) -> str:
    """The configuration hash stored in every checkpoint of a run (model + vocabulary tokens)."""
    vocab_key = {k: vocab_dict.get(k) for k in ("mode", "unk", "pad", "idx_to_token")}
    return ckpt.config_hash({"model": model_config, "vocab": vocab_key})


class RunDir:
    """One run directory on disk.  Create with :meth:`create`, open with :meth:`open`."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock_fd = None

    # -- paths ----------------------------------------------------------------
    config_path = property(lambda self: self.path / CONFIG_FILE)
    vocab_path = property(lambda self: self.path / VOCAB_FILE)
    latest_path = property(lambda self: self.path / LATEST)
    best_path = property(lambda self: self.path / BEST)
    metrics_path = property(lambda self: self.path / METRICS_FILE)
    samples_path = property(lambda self: self.path / SAMPLES_FILE)
    plot_path = property(lambda self: self.path / PLOT_FILE)
    lock_path = property(lambda self: self.path / LOCK_FILE)

    def __repr__(self):
        return f"RunDir({str(self.path)!r})"

    # -- creating and opening -------------------------------------------------
    @staticmethod
    def is_run_dir(path) -> bool:
        """True if ``path`` holds a scanrnn config.json, or a config.json too damaged to
        tell (not JSON: :meth:`open` then says the file is corrupt)."""
        try:
            config = _load_json(Path(path) / CONFIG_FILE)
        except RunDirError:
            return True
        except OSError:
            return False
        return isinstance(config, dict) and config.get("format") == RUN_FORMAT

    @classmethod
    def create(cls, path, config: dict, vocab) -> RunDir:
        """Make a new run directory holding ``config`` (a dict) and the vocabulary.

        ``config`` must have a ``"model"`` entry (the model configuration dict);
        the format marker, the scanrnn version, the creation time and the
        configuration hash are added.  ``vocab`` is a :class:`scanrnn.data.Vocab`.
        An existing run or a non-empty folder is refused (continue a run with
        :meth:`open` instead).  The new run is returned locked (:meth:`lock`).
        """
        run = cls(path)
        cls.check_new(run.path)
        run.path.mkdir(parents=True, exist_ok=True)
        run.lock()
        try:
            cls.check_new(run.path)   # again: another process may have made it meanwhile
            run._write_new(config, vocab)
        except BaseException:
            run.unlock()
            raise
        return run

    @classmethod
    def check_new(cls, path) -> None:
        """RunDirError unless :meth:`create` can make a run at ``path`` (missing or empty)."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunDirError(f"--out {path} exists and is a file, not a directory")
        if cls.is_run_dir(path):
            _read_json(path / CONFIG_FILE)   # a corrupt one: says so
            raise RunDirError(f"{path} already holds a run; pass --resume to continue it, "
                              "or choose another --out")
        if path.is_dir() and any(p.name != LOCK_FILE for p in path.iterdir()):
            raise RunDirError(f"{path} is not empty and is not a run directory; "
                              "choose another --out")

    def _write_new(self, config: dict, vocab) -> None:
        """config.json (with the format marker, version, time and hash) and vocab.json."""
        full = {"format": RUN_FORMAT, "version": RUN_VERSION, "scanrnn": __version__,
                "created": datetime.datetime.now().isoformat(timespec="seconds"), **config,
                "config_hash": model_hash(config["model"], vocab.to_json())}
        ckpt.atomic_write_text(self.vocab_path,
                               json.dumps(vocab.to_json(), ensure_ascii=False) + "\n")
        ckpt.atomic_write_text(self.config_path,
                               json.dumps(full, indent=2, sort_keys=False) + "\n")

    def record_train_config(self, train: dict) -> None:
        """Replace config.json's ``train`` section (what a resume changed is kept for the
        next one); the model section and the checkpoints' hash stay as they are."""
        config = self.read_config()
        config["train"] = train
        ckpt.atomic_write_text(self.config_path,
                               json.dumps(config, indent=2, sort_keys=False) + "\n")

    @classmethod
    def open(cls, path) -> RunDir:
        """Open an existing run directory, with a clear error if ``path`` is not one."""
        run = cls(path)
        if not run.path.exists():
            raise RunDirError(f"run directory {run.path} does not exist")
        if not run.path.is_dir():
            raise RunDirError(f"{run.path} is a file, not a run directory")
        if not run.config_path.is_file():
            raise RunDirError(f"{run.path} is not a scanrnn run directory (no {CONFIG_FILE}); "
                              "make one with `scanrnn train --out DIR`")
        config = _read_json(run.config_path)
        if not isinstance(config, dict) or config.get("format") != RUN_FORMAT:
            raise RunDirError(f"{run.path} is not a scanrnn run directory "
                              f"({CONFIG_FILE} has no scanrnn format marker)")
        if not isinstance(config.get("version"), int) or config["version"] > RUN_VERSION:
            raise RunDirError(f"{run.path} was written by a newer scanrnn "
                              f"(run format {config.get('version')!r}); upgrade scanrnn")
        if not run.vocab_path.is_file():
            raise RunDirError(f"{run.path} has no {VOCAB_FILE}; the run directory is incomplete")
        return run

    # -- one training process at a time -------------------------------------------
    def lock(self) -> None:
        """Take the run's lock (``train.lock``, ``flock``ed, holding our pid).

        Raises :class:`RunDirError` at once if another process holds it.  The lock dies
        with its process (a killed run leaves no lock behind, at most the file); release
        it with :meth:`unlock`.  Without ``fcntl`` (not POSIX) this does nothing.
        """
        if self._lock_fd is not None or fcntl is None:
            return
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 32).decode("ascii", "replace").strip()
                os.close(fd)
                raise RunDirError(
                    f"{self.path} is being trained by another process"
                    f"{f' (pid {owner})' if owner.isdigit() else ''}; wait for it to end or "
                    "stop it (Ctrl-C saves it), or choose another --out") from None
            if self._holds_current_file(fd):
                break
            os.close(fd)   # the previous holder removed that file as it ended: retry
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._lock_fd = fd

    def _holds_current_file(self, fd) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
        except FileNotFoundError:
            return False

    def unlock(self) -> None:
        """Release the lock taken by :meth:`lock` and remove ``train.lock`` (no-op if not held)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            self.lock_path.unlink(missing_ok=True)   # while held: nobody else holds it
            os.close(fd)

    def discard_unstarted(self) -> bool:
        """Remove a run that this process created and that never saved a step (config,
        vocabulary, empty metrics, the lock): the folder is as before the command.  Returns
        False, touching nothing, when the run holds a checkpoint or anything unknown."""
        if self._lock_fd is None or self.has_checkpoint("latest") or self.has_checkpoint("best"):
            return False
        ours = {CONFIG_FILE, VOCAB_FILE, self.metrics_path.name, self.lock_path.name}
        present = {p.name for p in self.path.iterdir()}
        if not present <= ours or self.read_metrics():
            return False
        for name in present - {self.lock_path.name}:
            (self.path / name).unlink(missing_ok=True)
        self.unlock()
        try:
            self.path.rmdir()
        except OSError:
            pass
        return True

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete temporary files left by saves that were killed (call only when no other
        process writes to this run, e.g. before resuming it)."""
        stale = sorted(self.path.glob(".*.tmp"))
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    # -- configuration ----------------------------------------------------------
    def read_config(self) -> dict:
        """config.json as a dict, its sections checked (RunDirError says what is wrong)."""
        path = self.config_path
        config = _read_json(path)
        if not isinstance(config, dict):
            raise RunDirError(f"{path} must hold a JSON object, got {_json_kind(config)}")
        if "model" not in config:
            raise RunDirError(f"{path} has no 'model' section; was it edited by hand?")
        for section in ("model", "train", "data", "recorder"):
            if section in config and not isinstance(config[section], dict):
                raise RunDirError(f"{path}: '{section}' must be an object ({{...}}), got "
                                  f"{_json_kind(config[section])}; was it edited by hand?")
        max_chars = config.get("data", {}).get("max_chars")
        if max_chars is not None and (type(max_chars) is not int or max_chars <= 0):
            raise RunDirError(f"{path}: data.max_chars must be a positive integer or null, "
                              f"got {max_chars!r}")
        return config

    def read_vocab_dict(self) -> dict:
        """vocab.json as a dict."""
        return _read_json(self.vocab_path)

    def read_vocab(self):
        """The run's :class:`scanrnn.data.Vocab`."""
        from .data import Vocab
        try:
            return Vocab.from_json(self.read_vocab_dict())
        except (ValueError, KeyError, TypeError) as exc:
            raise RunDirError(f"{self.vocab_path} is not a valid vocabulary ({exc})") from None

    @property
    def config_hash(self) -> str:
        """The hash every checkpoint of this run carries (model config + vocabulary)."""
        return model_hash(self.read_config()["model"], self.read_vocab_dict())

    # -- checkpoints ------------------------------------------------------------
    def checkpoint_path(self, which: str = "latest") -> Path:
        """``"latest"``, ``"best"`` or a file name / path of a checkpoint."""
        if which in ("latest", "best"):
            return self.latest_path if which == "latest" else self.best_path
        path = Path(which)
        return path if path.is_absolute() or path.exists() else self.path / path

    def has_checkpoint(self, which: str = "latest") -> bool:
        return self.checkpoint_path(which).is_file()

    def save_checkpoint(self, which: str, arrays: dict, meta: dict) -> Path:
        """Write ``arrays`` and ``meta`` atomically as checkpoint ``which``."""
        return ckpt.save(self.checkpoint_path(which), arrays, meta, self.config_hash)

    def load_checkpoint(self, which: str = "latest") -> ckpt.Checkpoint:
        """Load checkpoint ``which``, checking it belongs to this run's configuration."""
        path = self.checkpoint_path(which)
        if not path.is_file():
            raise RunDirError(f"{self.path} has no {which} checkpoint ({path.name}); "
                              "it was never saved (did training stop before the first save?)")
        return ckpt.load(path, self.config_hash)

    # -- metrics, samples, plot -------------------------------------------------
    def append_metrics(self, row: dict) -> None:
        """Append one row to metrics.csv (header written on first use)."""
        new = not self.metrics_path.is_file() or self.metrics_path.stat().st_size == 0
        with open(self.metrics_path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k)) for k in METRIC_COLUMNS})
            handle.flush()

    def read_metrics(self) -> list[dict]:
        """metrics.csv as a list of dicts (numbers converted; empty cells are None)."""
        path = self.metrics_path
        if not path.is_file():
            return []
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(handle)]
        except (UnicodeDecodeError, csv.Error) as exc:
            raise RunDirError(
                f"{path} is damaged ({exc}); move it aside (mv {shlex.quote(str(path))} "
                f"{shlex.quote(str(path) + '.damaged')}) and run "
                "again: the checkpoints are intact, and a new metrics.csv starts from the "
                "latest one") from None

    def truncate_metrics(self, step: int) -> None:
        """Move rows logged after ``step`` out of metrics.csv (used on resume, so no row is
        counted twice); they are appended to ``metrics.csv.replaced``, never lost."""
        if not self.metrics_path.is_file():
            return
        rows = self.read_metrics()
        kept = [r for r in rows if r.get("step") is None or r["step"] <= step]
        if len(kept) == len(rows):
            return
        replaced = self.metrics_path.with_name(self.metrics_path.name + ".replaced")
        old = replaced.read_text(encoding="utf-8") if replaced.is_file() else ""
        dropped = [r for r in rows if r.get("step") is not None and r["step"] > step]
        ckpt.atomic_write_text(replaced, old + _metrics_csv(dropped, header=not old))
        ckpt.atomic_write_text(self.metrics_path, _metrics_csv(kept))

    def append_samples(self, header: str, texts) -> None:
        """Append generated ``texts`` under a ``header`` line to samples.txt."""
        with open(self.samples_path, "a", encoding="utf-8") as handle:
            handle.write(f"=== {header}\n")
            for text in texts:
                handle.write(text.rstrip("\n") + "\n---\n")
            handle.write("\n")

    def plot(self) -> Path | None:
        """Draw loss.png (train and validation loss per step / epoch) if matplotlib is installed."""
        try:
            import matplotlib
            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        rows = self.read_metrics()
        steps = [(r["step"], r["train_loss"]) for r in rows
                 if r["kind"] == "step" and r.get("train_loss") is not None]
        epochs = [r for r in rows if r["kind"] == "epoch"]
        if not steps and not epochs and not any(r["kind"] == "val" for r in rows):
            return None
        fig, ax = plt.subplots(figsize=(7, 4))
        if steps:
            ax.plot(*zip(*steps), lw=1, alpha=0.6, label="train (running)")
        train = [(r["step"], r["train_loss"]) for r in epochs if r.get("train_loss") is not None]
        val = [(r["step"], r["val_loss"]) for r in rows
               if r["kind"] == "val" and r.get("val_loss") is not None]
        if train:
            ax.plot(*zip(*train), "o-", label="train (epoch)")
        if val:
            ax.plot(*zip(*val), "-", marker="s" if len(val) < 40 else None,
                    label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats / char)")
        ax.set_title(self.path.name)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        tmp = self.plot_path.with_name(f".{PLOT_FILE}.{os.getpid()}.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        os.replace(tmp, self.plot_path)
        return self.plot_path


def _load_json(path: Path):
    """A JSON file's value; OSError if it cannot be read, RunDirError if it is corrupt."""
    data = path.read_bytes()
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:   # UnicodeDecodeError, JSONDecodeError
        raise RunDirError(f"{path} is corrupt: not valid JSON ({exc}); restore it from a "
                          "copy, or start a new run in another folder") from None


def _read_json(path: Path):
    """:func:`_load_json`, an unreadable file a RunDirError too."""
    try:
        return _load_json(path)
    except OSError as exc:
        raise RunDirError(f"cannot read {path} ({exc.strerror or exc})") from None


def _fmt(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    try:  # numpy scalars
        import numpy as np
        if isinstance(value, np.generic):
            return _fmt(value.item())
    except ImportError:  # pragma: no cover
        pass
    return value


def _parse(text):
    if text is None or text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _json_kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null",
            bool: "a boolean"}.get(type(value), "a number")
