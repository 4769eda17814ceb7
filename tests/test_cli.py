"""The ``scanrnn`` command end to end: train -> sample -> eval -> resume, and every error case.

Training runs in subprocesses (``python -m scanrnn``) on the first 20,000 characters of the
Time Machine with a tiny LSTM on the JAX backend; error cases that fail before any compilation
call :func:`scanrnn.cli.main` in-process.
"""

import csv
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanrnn import checkpoint as ck
from scanrnn import cli
from scanrnn.lm import RunDir, load_run

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--max-chars", "20000", "--hidden", "32", "--embed", "16", "--layers", "1",
        "--batch-size", "8", "--seq-len", "16", "--backend", "jax", "--no-progress",
        "--patience", "0", "--lr", "0.01", "--schedule", "plateau"]
# validating every step makes every Ctrl-C land on a step that owes a validation
# (with weight drop, moving averages and the decay that follows the passes: all resume exactly)
EXACT = [*TINY, "--eval-every", "1", "--log-every", "1", "--epochs", "2", "--weight-drop", "0.2",
         "--ema", "0.9", "--weight-decay", "auto"]


_JAX_CACHE = {}


@pytest.fixture(scope="module", autouse=True)
def _jax_cache(tmp_path_factory):
    """Subprocesses share one JAX compilation cache (in a temporary folder)."""
    _JAX_CACHE["dir"] = str(tmp_path_factory.mktemp("jax-cache"))
    yield


@pytest.fixture(autouse=True)
def _no_cache_in_process(monkeypatch):
    monkeypatch.setenv("SCANRNN_JAX_CACHE", "0")   # in-process calls leave JAX's config alone


def _env():
    return {**os.environ, "SCANRNN_JAX_CACHE": _JAX_CACHE["dir"],
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def scanrnn(*args, timeout=240, **kw):
    return subprocess.run([sys.executable, "-m", "scanrnn", *map(str, args)], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=timeout, **kw)


def popen(*args):
    return subprocess.Popen([sys.executable, "-m", "scanrnn", *map(str, args)], cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


# `scanrnn train` that stops after step N until it is signalled: the run writes MARKER and
# waits, still running, for the CLI's stop request (Ctrl-C / SIGTERM) to be set
PAUSED_TRAIN = """
import os, signal, sys, time
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's Ctrl-C (see below)
from scanrnn import cli
from scanrnn.lm import recorder
pause_at, marker = int(sys.argv[1]), Path(sys.argv[2])
record = recorder.RunRecorder.on_step

def on_step(self, trainer, step, loss):
    record(self, trainer, step, loss)
    if step == pause_at:
        stop = signal.getsignal(signal.SIGTERM).__self__    # the trainer's StopRequest
        marker.with_suffix(".tmp").write_text(str(os.getpid()))
        marker.with_suffix(".tmp").replace(marker)   # whole, never seen half-written
        while not stop.requested:
            time.sleep(0.01)

recorder.RunRecorder.on_step = on_step
sys.exit(cli.main(sys.argv[3:]))
"""


# The scripts above start with Ctrl-C as in a terminal.  A CI job started in the background
# of a non-interactive shell inherits SIGINT *ignored*, and scanrnn, like any Unix program,
# leaves an ignored SIGINT ignored (nohup): without that line these tests hung there.


def popen_paused(pause_at, marker, *args):
    """``scanrnn train ARGS`` in a subprocess that pauses after step ``pause_at`` (see
    :func:`wait_until_paused`) and then waits for SIGINT or SIGTERM."""
    return subprocess.Popen([sys.executable, "-c", PAUSED_TRAIN, str(pause_at), str(marker),
                             "train", *map(str, args)], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_paused(proc, marker, timeout=300):
    """Wait for the marker of :func:`popen_paused` (the timeout only catches a hung run)."""
    deadline = time.monotonic() + timeout
    while not marker.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(("the run never paused", proc.returncode, *proc.communicate()))
        time.sleep(0.01)
    assert marker.read_text() == str(proc.pid)


def rows(run_dir):
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def trajectory(run_dir):
    """What must be identical between runs: kind, step, losses and learning rate per row."""
    return [(r["kind"], r["step"], r["train_loss"], r["val_loss"], r["lr"])
            for r in rows(run_dir)]


def assert_one_line_error(result, *fragments, status=2):
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A trained tiny run (2 epochs, every step logged and validated)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    result = scanrnn("train", *EXACT, "--sample-every", "1", "--sample-length", "40",
                     "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "best validation loss" in result.stdout
    assert "dropout 0.3, weight drop 0.2:" in result.stdout
    return out


def call(capsys, *argv):
    """Run the CLI in-process; returns (status, stdout, stderr)."""
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def in_process_error(capsys, *argv, fragments=(), status=2):
    code, out, err = call(capsys, *argv)
    assert code == status, (code, out, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


# ------------------------------------------------------------------------------------------
# the happy path
# ------------------------------------------------------------------------------------------
def test_train_writes_a_complete_run_directory(run_dir):
    for name in ("config.json", "vocab.json", "latest.npz", "best.npz", "metrics.csv",
                 "samples.txt"):
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["format"] == "scanrnn-run"
    assert config["model"]["hidden"] == 32 and config["model"]["cell"] == "lstm"
    assert config["train"]["batch_size"] == 8 and config["data"]["max_chars"] == 20000
    kinds = [r["kind"] for r in rows(run_dir)]
    assert kinds.count("epoch") == 2 and kinds.count("step") == 2 * 131
    assert kinds.count("val") >= 262
    epochs = [r for r in rows(run_dir) if r["kind"] == "epoch"]
    assert float(epochs[-1]["val_loss"]) < float(epochs[0]["train_loss"])
    samples = (run_dir / "samples.txt").read_text()
    assert samples.count("=== epoch") == 2 and "time traveller" in samples
    latest = ck.load(run_dir / "latest.npz", RunDir(run_dir).config_hash)
    assert latest.meta["global_step"] == 262 and latest.meta["epoch"] == 2
    assert any(k.startswith("opt/") for k in latest.arrays)      # optimizer state saved
    assert "rng/dropout" in latest.arrays
    assert not list(run_dir.glob(".*.tmp")) and not (run_dir / "train.lock").exists()
    _check_metrics_and_bookkeeping(rows(run_dir), latest.meta)


def _check_metrics_and_bookkeeping(table, meta):
    """metrics.csv rows against each other and the final trainer state (8 x 16 batches)."""
    by_kind = {k: [r for r in table if r["kind"] == k] for k in ("step", "val", "epoch")}
    steps = by_kind["step"]
    assert [int(r["step"]) for r in steps] == list(range(1, 263))
    assert all(int(r["tokens"]) == 128 * int(r["step"]) for r in steps)
    assert all(float(r["epoch"]) == pytest.approx(int(r["step"]) / 131, rel=1e-5) for r in steps)
    assert steps[0]["tokens_per_s"] == ""                 # the compiling step is not timed
    # each row's speed is its 128 tokens over time spent inside that step, which the wall
    # clock between rows contains (plus bookkeeping): a wrong speed breaks the inequality
    for before, row in zip(steps[1:], steps[2:]):
        step_seconds = 128 / float(row["tokens_per_s"])
        assert 0 < step_seconds <= float(row["seconds"]) - float(before["seconds"]) + 2e-3
    for kind, part in by_kind.items():                     # clocks and lr move one way
        seconds = [float(r["seconds"]) for r in part]
        assert seconds == sorted(seconds) and seconds[-1] <= meta["elapsed_s"], kind
        lrs = [float(r["lr"]) for r in part]
        assert lrs == sorted(lrs, reverse=True) and 0 < lrs[-1] <= lrs[0] <= 0.01, kind
    assert float(steps[0]["lr"]) == 0.01                    # --lr 0.01
    for r in steps + by_kind["epoch"]:
        assert float(r["train_ppl"]) == pytest.approx(math.exp(float(r["train_loss"])),
                                                      rel=1e-4)
    for r in by_kind["val"] + by_kind["epoch"]:
        loss = float(r["val_loss"])
        assert float(r["val_ppl"]) == pytest.approx(math.exp(loss), rel=1e-4)
        assert float(r["val_bpc"]) == pytest.approx(loss / math.log(2), rel=1e-4)
    assert [int(r["tokens"]) for r in by_kind["epoch"]] == [131 * 128, 262 * 128]
    assert meta["tokens_seen"] == 262 * 128 and meta["timed_tokens"] == 261 * 128
    assert 0 < meta["train_time_s"] < meta["elapsed_s"]
    val_loss = {int(r["step"]): float(r["val_loss"]) for r in by_kind["val"]}
    best = min(val_loss.values())                          # (printed to 6 digits)
    assert meta["best_val_loss"] == pytest.approx(best, rel=1e-5)
    assert val_loss[meta["best_step"]] == pytest.approx(best, rel=1e-5)


def test_loss_plot_is_drawn_when_matplotlib_is_installed(run_dir, tmp_path, monkeypatch):
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # as if not installed
    assert RunDir.open(copy).plot() is None
    monkeypatch.undo()
    pytest.importorskip("matplotlib")
    path = RunDir.open(copy).plot()
    assert path == copy / "loss.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_load_run_gives_the_model_vocab_and_configs(run_dir):
    run = load_run(run_dir)
    assert run.checkpoint == "best" and run.path == run_dir
    assert run.config.hidden == 32 and len(run.vocab) == run.config.vocab_size == 28
    assert run.train_config.seq_len == 16
    best = ck.load(run_dir / "best.npz")
    assert run.meta["global_step"] == best.meta["global_step"]


def test_sample_is_deterministic_per_seed(run_dir):
    first = scanrnn("sample", run_dir, "--prefix", "the time", "--length", "50", "--seed", "7",
                    "--num", "2")
    again = scanrnn("sample", run_dir, "--prefix", "the time", "--length", "50", "--seed", "7",
                    "--num", "2")
    for result in (first, again):
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == ""
    texts = first.stdout.rstrip("\n").split("\n----\n")
    assert len(texts) == 2 and texts[0] != texts[1]
    assert all(t.startswith("the time") and len(t) == len("the time") + 50 for t in texts)
    assert first.stdout == again.stdout


def test_eval_matches_the_best_validation_loss(run_dir):
    result = scanrnn("eval", run_dir)
    assert result.returncode == 0, result.stderr
    best = json.loads(json.dumps(ck.load(run_dir / "best.npz").meta))["best_val_loss"]
    assert f"loss {best:.4f} nats/char" in result.stdout
    assert "perplexity" in result.stdout and "bits/char" in result.stdout
    other = scanrnn("eval", run_dir, "--corpus", "nietzsche", "--max-chars", "3000",
                    "--checkpoint", "latest")
    assert other.returncode == 0, other.stderr
    assert "nietzsche.txt" in other.stdout and "nats/char" in other.stdout
    assert "latest checkpoint, step 262" in other.stdout


def test_info_and_help(capsys):
    code, out, _ = call(capsys, "info")
    assert code == 0
    assert "pytensor 3." in out and "backends:" in out and "jax devices:" in out
    assert "timemachine" in out and "SCANRNN_DATA" in out and "numba cache" in out
    for command in ("train", "sample", "eval", "info"):
        code, out, _ = call(capsys, command, "--help")
        assert code == 0 and "usage: scanrnn " + command in out
    code, out, _ = call(capsys, "train", "--help")
    for flag in ("--corpus", "--cell", "--layers", "--hidden", "--embed", "--seq-len",
                 "--batch-size", "--epochs", "--minutes", "--optimizer", "--lr", "--clip",
                 "--val-fraction", "--backend", "--seed", "--out", "--resume"):
        assert flag in out, flag
    assert out.count("(default:") >= 25
    code, out, _ = call(capsys, "sample", "--help")
    assert "(default: 0.8)" in out and "--top-k" in out and "--greedy" in out


# ------------------------------------------------------------------------------------------
# reliability
# ------------------------------------------------------------------------------------------
def test_ctrl_c_saves_and_resume_matches_an_uninterrupted_run(run_dir, tmp_path):
    out, marker = tmp_path / "interrupted", tmp_path / "paused"
    # samples have no effect on the trajectory; the run pauses after step 40, still
    # running, so the Ctrl-C lands there whatever the machine's speed
    proc = popen_paused(40, marker, *EXACT, "--sample-every", "0", "--out", out)
    try:
        wait_until_paused(proc, marker)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    assert "interrupted at step 40 (epoch 1)" in stderr and "--resume" in stderr
    step = ck.load(out / "latest.npz").meta["global_step"]
    assert step == 40, stderr
    assert len([r for r in rows(out) if r["kind"] == "step"]) == step
    assert not (out / "train.lock").exists()

    resumed = scanrnn("train", "--out", out, "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert f"from step {step}" in resumed.stdout
    got, want = trajectory(out), trajectory(run_dir)
    first_diff = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
    assert got == want, (step, len(got), len(want), first_diff,
                         first_diff is not None and (got[first_diff], want[first_diff]))
    assert ck.load(out / "latest.npz").meta["global_step"] == 262


def test_resume_of_a_finished_run_has_nothing_to_do(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    code = cli.main(["train", "--out", str(copy), "--resume", "--no-progress"])
    assert code == 0
    assert trajectory(copy) == trajectory(run_dir)


def test_resume_without_out_picks_the_newest_run(capsys, run_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    in_process_error(capsys, "train", "--resume", fragments=("no run directory in runs",))
    shutil.copytree(run_dir, tmp_path / "runs" / "older")
    newest = shutil.copytree(run_dir, tmp_path / "runs" / "newer")
    os.utime(tmp_path / "runs" / "older", (1, 1))
    code, out, err = call(capsys, "train", "--resume", "--no-progress")
    assert code == 0, err
    assert f"resuming: {Path('runs') / newest.name}" in out and "nothing to do" in out


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    before = hashlib.sha256((copy / "latest.npz").read_bytes()).hexdigest()
    result = scanrnn("train", "--out", copy, "--resume", "--epochs", "4", "--lr", "3e38",
                     "--no-progress")
    err = assert_one_line_error(result, "training stopped", "last good", status=1).lower()
    assert "not applied" in err or "not saved" in err
    assert "nan" in err or "inf" in err
    assert hashlib.sha256((copy / "latest.npz").read_bytes()).hexdigest() == before
    assert load_run(copy, "latest").meta["global_step"] == 262


def _wait_for_rows(path, count, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().count("\nstep,") >= count:
            return
        time.sleep(0.01)


def test_killed_run_keeps_a_checkpoint_and_sigterm_saves_like_ctrl_c(tmp_path):
    out = tmp_path / "killed"
    proc = popen("train", *TINY, "--epochs", "30", "--save-every", "1", "--sample-every", "0",
                 "--eval-every", "0", "--log-every", "1", "--out", out)
    try:
        _wait_for_rows(out / "metrics.csv", 20)
        proc.send_signal(signal.SIGKILL)          # saves every step: likely mid-save
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_run(out, "latest").meta["global_step"]   # whole, whatever the timing
    assert killed_at >= 19                         # the kill may land in the save of step 20

    marker = tmp_path / "paused"                  # SIGTERM while the resumed run runs
    proc = popen_paused(killed_at + 20, marker, "--out", out, "--resume")
    try:
        wait_until_paused(proc, marker)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and f"interrupted at step {killed_at + 20}" in stderr
    assert not list(out.glob(".*.tmp"))           # the killed save's leftovers were removed
    assert load_run(out, "latest").meta["global_step"] == killed_at + 20


def _files(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_second_process_training_the_same_run_stops_at_once(tmp_path):
    out, marker = tmp_path / "busy", tmp_path / "paused"
    proc = popen_paused(3, marker, *TINY, "--epochs", "1", "--log-every", "1",
                        "--eval-every", "0", "--sample-every", "0", "--out", out)
    try:
        wait_until_paused(proc, marker)
        assert (out / "train.lock").read_text() == f"{proc.pid}\n"
        before = _files(out)
        second = scanrnn("train", "--out", out, "--resume", "--no-progress")
        assert_one_line_error(second, str(out), "is being trained by another process",
                              f"(pid {proc.pid})")
        new = scanrnn("train", *TINY, "--epochs", "1", "--out", out)
        assert_one_line_error(new, "already holds a run")
        assert _files(out) == before                   # nothing of the first run touched
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "interrupted at step 3" in stderr, (stdout, stderr)
    assert not (out / "train.lock").exists()           # released and removed at the end
    run = RunDir.open(out)
    run.lock()
    run.unlock()


# ------------------------------------------------------------------------------------------
# bad input: one line on stderr, exit status 2, no traceback
# ------------------------------------------------------------------------------------------
def test_missing_corpus_says_where_it_looked(capsys, tmp_path, monkeypatch):
    in_process_error(capsys, "train", "--corpus", tmp_path / "nope.txt", "--out",
                     tmp_path / "r", fragments=("nope.txt", "not a known corpus name"))
    monkeypatch.setenv("SCANRNN_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("SCANRNN_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    err = in_process_error(capsys, "train", "--corpus", "nietzsche", "--out", tmp_path / "r",
                           fragments=("nietzsche.txt", "Looked in", str(tmp_path / "empty")))
    assert "SCANRNN_OFFLINE" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("content, fragment", [
    (b"", "is empty"),
    (b"caf\xe9 au lait " * 100, "not valid UTF-8"),
    (b"abc\x00def" * 100, "binary"),
])
def test_bad_text_files(capsys, tmp_path, content, fragment):
    path = tmp_path / "text.txt"
    path.write_bytes(content)
    in_process_error(capsys, "train", "--corpus", path, "--out", tmp_path / "r",
                     fragments=(fragment,))
    assert not (tmp_path / "r").exists()


def test_corpus_shorter_than_one_batch(capsys, tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("the time traveller " * 5)
    in_process_error(capsys, "train", "--corpus", path, "--out", tmp_path / "r",
                     "--backend", "jax", fragments=("fewer than", "batch"))
    assert not (tmp_path / "r").exists()


def test_unknown_backend_lists_the_installed_ones(capsys, tmp_path, run_dir):
    err = in_process_error(capsys, "train", "--backend", "cuda", "--out", tmp_path / "r",
                           fragments=("unknown backend 'cuda'", "jax"))
    assert "numba" in err
    in_process_error(capsys, "sample", run_dir, "--backend", "tpu", fragments=("'tpu'",))


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--hidden", "0"], "--hidden: must be a positive integer, got 0"),
    (["train", "--batch-size", "-3"], "--batch-size: must be a positive integer, got -3"),
    (["train", "--seq-len", "abc"], "--seq-len: expected a positive integer"),
    (["train", "--layers", "0"], "--layers"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--minutes", "-1"], "--minutes: must be > 0"),
    (["train", "--lr", "0"], "--lr: must be > 0"),
    (["train", "--lr", "nan"], "--lr: must be a finite number"),
    (["train", "--val-fraction", "1.5"], "--val-fraction: must be in [0, 1)"),
    (["train", "--dropout", "1"], "--dropout"),
    (["train", "--cell", "transformer"], "invalid choice"),
    (["train", "--epochs", "2", "--minutes", "1"], "not allowed with argument"),
    (["sample", "RUN", "--temperature", "0"], "--temperature: must be > 0, got 0"),
    (["sample", "RUN", "--temperature", "-1"], "--temperature: must be > 0"),
    (["sample", "RUN", "--length", "0"], "--length"),
    (["sample", "RUN", "--num", "-2"], "--num"),
    (["sample", "RUN", "--top-k", "0"], "--top-k"),
    (["eval", "RUN", "--batch-size", "0"], "--batch-size"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_flags(capsys, argv, fragment):
    in_process_error(capsys, *argv, fragments=(fragment,))


def test_prefix_outside_the_vocabulary_names_the_characters(capsys, run_dir):
    err = in_process_error(capsys, "sample", run_dir, "--prefix", "The Time Machine!",
                           fragments=("'T'", "'M'", "'!'", "outside"))
    assert "lowercase" in err
    in_process_error(capsys, "sample", run_dir, "--prefix", "", fragments=("empty",))
    in_process_error(capsys, "sample", run_dir, "--top-k", "99", fragments=("vocabulary",))


def test_not_a_run_directory(capsys, tmp_path):
    for command in ("sample", "eval"):
        in_process_error(capsys, command, tmp_path, fragments=("not a scanrnn run directory",))
        in_process_error(capsys, command, tmp_path / "missing", fragments=("does not exist",))
    (tmp_path / "config.json").write_text('{"something": "else"}')
    in_process_error(capsys, "sample", tmp_path, fragments=("not a scanrnn run directory",))
    (tmp_path / "file").write_text("x")
    in_process_error(capsys, "eval", tmp_path / "file", fragments=("not a run directory",))
    in_process_error(capsys, "train", "--resume", "--out", tmp_path / "missing",
                     fragments=("does not exist",))


def test_damaged_or_foreign_checkpoints(capsys, run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    data = (copy / "best.npz").read_bytes()
    (copy / "best.npz").write_bytes(data[: len(data) // 3])
    in_process_error(capsys, "sample", copy, fragments=("truncated or corrupt",))
    (copy / "best.npz").write_bytes(b"not a checkpoint at all")
    in_process_error(capsys, "eval", copy, fragments=("not a scanrnn checkpoint",))
    # a checkpoint from another configuration (hidden 32 -> 24 in config.json)
    shutil.copy(run_dir / "best.npz", copy / "best.npz")
    config = json.loads((copy / "config.json").read_text())
    config["model"]["hidden"] = 24
    (copy / "config.json").write_text(json.dumps(config))
    in_process_error(capsys, "sample", copy, fragments=("another configuration",))


def test_resume_refuses_a_different_model(capsys, run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    in_process_error(capsys, "train", "--resume", "--out", copy, "--hidden", "64",
                     fragments=("--hidden 64 differs", "32"))
    in_process_error(capsys, "train", "--resume", "--out", copy, "--batch-size", "4",
                     fragments=("--batch-size 4 differs",))


def test_new_run_refuses_an_existing_run(capsys, run_dir):
    in_process_error(capsys, "train", *TINY, "--epochs", "1", "--out", run_dir,
                     fragments=("already holds a run", "--resume"))


def test_a_validation_loss_past_709_nats_reports_infinite_perplexity(tmp_path):
    """math.exp of the loss overflowed (OverflowError traceback) once the loss passed ~709."""
    from scanrnn.losses import perplexity
    assert perplexity(709.0) == pytest.approx(math.exp(709.0))
    assert perplexity(710.0) == math.inf and perplexity(1e30) == math.inf
    assert math.isnan(perplexity(float("nan"))) and perplexity(-1.0) == math.exp(-1.0)
    out = tmp_path / "huge"
    run = scanrnn("train", *TINY, "--max-tokens", "384", "--eval-every", "3", "--init", "normal",
                  "--init-scale", "1000", "--out", out)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "OverflowError" not in run.stderr
    with open(out / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_loss")]
    assert rows and float(rows[-1]["val_loss"]) > 709


def test_resume_without_latest_continues_from_best_and_loses_nothing(tmp_path):
    """It used to start from step 0, overwrite best.npz with a worse model, truncate metrics."""
    out = tmp_path / "run"
    first = scanrnn("train", *TINY, "--epochs", "1", "--eval-every", "20", "--out", out)
    assert first.returncode == 0, first.stderr
    run = RunDir.open(out)
    best_before = ck.load(run.best_path).meta
    rows_before = run.read_metrics()
    run.latest_path.unlink()
    again = scanrnn("train", "--out", out, "--resume", "--no-progress", "--epochs", "2")
    assert again.returncode == 0, again.stderr
    assert "latest.npz is missing" in again.stderr and "resuming from best.npz" in again.stderr
    assert f"from step {best_before['global_step']} " in again.stdout
    best_after = ck.load(run.best_path).meta
    assert best_after["best_val_loss"] <= best_before["best_val_loss"]
    assert best_after["global_step"] > best_before["global_step"]
    moved_path = out / "metrics.csv.replaced"
    moved = []
    if moved_path.is_file():
        with open(moved_path, newline="") as f:
            moved = list(csv.DictReader(f))
    after = run.read_metrics()
    kept = [r for r in rows_before if r["step"] <= best_before["global_step"]]
    assert after[:len(kept)] == kept and len(moved) == len(rows_before) - len(kept)


def test_rows_a_resume_replaces_are_moved_aside_not_lost(tmp_path):
    from scanrnn.data import Vocab
    run = RunDir.create(tmp_path / "r", {"model": {"hidden": 4}}, Vocab("abc"))
    for step in (10, 20, 30, 40):
        run.append_metrics({"kind": "step", "step": step, "train_loss": step / 10})
    run.truncate_metrics(20)
    assert [r["step"] for r in run.read_metrics()] == [10, 20]
    run.append_metrics({"kind": "step", "step": 30, "train_loss": 9.0})
    run.truncate_metrics(10)
    assert [r["step"] for r in run.read_metrics()] == [10]
    with open(run.metrics_path.with_name("metrics.csv.replaced"), newline="") as f:
        moved = [(int(r["step"]), float(r["train_loss"])) for r in csv.DictReader(f)]
    assert moved == [(30, 3.0), (40, 4.0), (20, 2.0), (30, 9.0)]
    run.unlock()


def _tiny_corpus(path, chars=20000):
    from scanrnn.data import load_corpus
    path.write_text(load_corpus("timemachine")[:chars], encoding="utf-8")
    return path


def test_eval_scores_with_the_runs_vocabulary_when_the_corpus_changed(tmp_path):
    """eval used to rebuild the vocabulary from today's file and print a wrong loss silently."""
    from scanrnn.data import load_corpus
    from scanrnn.data import text_tokens
    from scanrnn.lm.data import split_tokens
    from scanrnn.lm.evaluate import evaluate_tokens
    corpus = _tiny_corpus(tmp_path / "book.txt")
    out = tmp_path / "run"
    tiny = [a for a in TINY if a != "20000" and a != "--max-chars"]
    trained = scanrnn("train", *tiny, "--corpus", corpus, "--max-tokens", "640", "--out", out)
    assert trained.returncode == 0, trained.stderr
    corpus.write_text("z" * 4000 + load_corpus("timemachine")[:20000], encoding="utf-8")
    result = scanrnn("eval", out)
    assert result.returncode == 0, result.stderr
    assert "has changed since training" in result.stderr and "run's vocab.json" in result.stderr
    run = load_run(out)
    tc = run.train_config
    _, val = split_tokens(text_tokens(corpus.read_text(), tc.preprocess, tc.tokens),
                          tc.val_fraction)
    want = evaluate_tokens(run.model, run.vocab, val, backend="jax")["loss"]
    assert f"loss {want:.4f} nats/char" in result.stdout


def test_eval_of_a_word_level_run_tokenizes_as_training_did(tmp_path):
    """eval --corpus on a word-level run joined words across line ends ('aboutand')."""
    corpus = _tiny_corpus(tmp_path / "book.txt", 40000)
    out = tmp_path / "run"
    tiny = [a for a in TINY if a != "20000" and a != "--max-chars"]
    trained = scanrnn("train", *tiny, "--corpus", corpus, "--tokens", "word", "--max-tokens",
                      "256", "--out", out)
    assert trained.returncode == 0, trained.stderr
    same = scanrnn("eval", out, "--corpus", corpus)
    assert same.returncode == 0, same.stderr
    unknown = [line for line in same.stdout.splitlines() if line.startswith("<unk>")]
    assert not any("aboutand" in line or "andthe" in line for line in unknown), unknown


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.pop("model"), "has no 'model' section"),
    (lambda c: c.update(model=[1, 2]), "'model' must be an object"),
    (lambda c: c.update(train=None), "'train' must be an object ({...}), got null"),
    (lambda c: c.update(data="timemachine"), "'data' must be an object"),
    (lambda c: c.update(recorder="x"), "'recorder' must be an object"),
    (lambda c: c["data"].update(max_chars="20000"), "data.max_chars must be a positive"),
    (lambda c: c["train"].update(lr="fast"), "has an invalid configuration"),
])
def test_a_hand_edited_config_is_refused_in_one_line(run_dir, tmp_path, capsys, edit, message):
    """--resume and eval used to print tracebacks (KeyError, TypeError, AttributeError)."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    edit(config)
    (copy / "config.json").write_text(json.dumps(config))
    for argv in (["train", "--out", copy, "--resume"], ["eval", copy], ["sample", copy]):
        code, out, err = call(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert message in err and "Traceback" not in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, err


def test_flags_given_on_resume_are_honoured_and_recorded_for_the_next(tmp_path):
    """--sample-prefix was ignored on --resume; an --lr was forgotten by the next resume."""
    out = tmp_path / "run"
    first = scanrnn("train", *TINY, "--epochs", "1", "--sample-every", "1", "--out", out)
    assert first.returncode == 0, first.stderr
    steps = RunDir.open(out).read_metrics()[-1]["step"]
    second = scanrnn("train", "--out", out, "--resume", "--epochs", "2", "--lr", "0.002",
                     "--sample-prefix", "the psy", "--no-progress")
    assert second.returncode == 0, second.stderr
    train = json.loads((out / "config.json").read_text())["train"]
    assert train["lr"] == 0.002 and train["sample_prefixes"] == ["the psy"]
    assert "the psy" in (out / "samples.txt").read_text()
    third = scanrnn("train", "--out", out, "--resume", "--epochs", "3", "--no-progress")
    assert third.returncode == 0, third.stderr
    later = [r for r in RunDir.open(out).read_metrics() if r["step"] > steps]
    assert later and max(r["lr"] for r in later) <= 0.002
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == 3


# `scanrnn train` whose compilation blocks (as a long one would) once it has started
COMPILING_TRAIN = """
import os, signal, sys, time
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's Ctrl-C (see below)
from scanrnn import cli, compile
marker, compile_ = Path(sys.argv[1]), compile.Function._compile

def slow_compile(self, signature):
    if self.name == "train_step":
        marker.with_suffix(".tmp").write_text(str(os.getpid()))
        marker.with_suffix(".tmp").replace(marker)   # whole, never seen half-written
        time.sleep(600)                       # a compile that would take ten minutes
    return compile_(self, signature)

compile.Function._compile = slow_compile
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_first_compile_stops_at_once(tmp_path, signum):
    """The handler only set a flag, so a long compile ignored Ctrl-C and SIGTERM; a new run
    interrupted before its first step leaves no half-made run directory behind."""
    out, marker = tmp_path / "run", tmp_path / "compiling"
    proc = subprocess.Popen([sys.executable, "-c", COMPILING_TRAIN, str(marker), "train",
                             *TINY, "--epochs", "1", "--out", str(out)], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_paused(proc, marker)
        sent = time.monotonic()
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
        waited = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, (stdout, stderr)
    assert waited < 30, waited                # not the ten minutes of the blocked compile
    assert "interrupted before the first step finished (while compiling)" in stderr
    assert "Traceback" not in stderr and not out.exists()
    again = scanrnn("train", *TINY, "--max-tokens", "128", "--out", out)
    assert again.returncode == 0, again.stderr   # not "already holds a run"


def test_a_graph_too_deep_to_compile_is_one_line_and_leaves_no_run(tmp_path):
    """--layers 100 on PyTensor 3.0.7 died with a RecursionError traceback after ~70 s and left
    a run directory without a checkpoint ("already holds a run" on the next try)."""
    deep = COMPILING_TRAIN.replace("time.sleep(600)", "raise RecursionError('maximum depth')")
    out, marker = tmp_path / "run", tmp_path / "compiling"
    result = subprocess.run([sys.executable, "-c", deep, str(marker), "train", *TINY,
                             "--epochs", "1", "--out", str(out)], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=240)
    assert_one_line_error(result, "the graph is too deep to compile", "use fewer --layers")
    assert marker.is_file() and not out.exists()


def test_info_says_why_available_kernels_are_not_used_by_default(monkeypatch):
    from scanrnn.cli import _kernel_line
    gpu = {"active": ["cuDNN lstm (jax.experimental.rnn)"], "default": False}
    monkeypatch.delenv("SCANRNN_KERNELS", raising=False)
    assert "on a GPU the fused scan measured faster" in _kernel_line(gpu)
    monkeypatch.setenv("SCANRNN_KERNELS", "off")
    assert "(SCANRNN_KERNELS=0)" in _kernel_line(gpu)
    assert "used by default" in _kernel_line({**gpu, "default": True})
    assert _kernel_line({"active": [], "reason": "no JAX"}).startswith("none (no JAX)")
