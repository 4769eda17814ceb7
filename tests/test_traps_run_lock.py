"""One training process per run directory: RunDir.lock (an flock on train.lock).

The end-to-end case (a second ``scanrnn train`` while one runs) is in test_cli.py; here the
lock itself: a second holder is refused at once, also from another process, a dead
holder's file does not block, and create() returns the new run locked.
"""

import os
import subprocess
import sys

import pytest

from scanrnn.data import Vocab
from scanrnn.lm.rundir import LOCK_FILE, RunDir, RunDirError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")

TRY_LOCK = """
import sys
from scanrnn.lm.rundir import RunDir, RunDirError
try:
    RunDir(sys.argv[1]).lock()
except RunDirError as exc:
    print(exc)
    sys.exit(3)
print("locked")
"""


def _new_run(path):
    return RunDir.create(path, {"model": {"hidden": 4}}, Vocab("abc"))


def _try_lock_in_another_process(path):
    return subprocess.run([sys.executable, "-c", TRY_LOCK, str(path)], capture_output=True,
                          text=True, timeout=120)


def test_create_returns_the_run_locked_and_a_second_lock_is_refused(tmp_path):
    run = _new_run(tmp_path / "run")
    assert (tmp_path / "run" / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    with pytest.raises(RunDirError, match=rf"being trained by another process \(pid "
                                          rf"{os.getpid()}\)"):
        RunDir.open(tmp_path / "run").lock()            # another open file, same process
    other = _try_lock_in_another_process(tmp_path / "run")
    assert other.returncode == 3 and f"(pid {os.getpid()})" in other.stdout, other
    run.unlock()
    assert not (tmp_path / "run" / LOCK_FILE).exists()
    locked = _try_lock_in_another_process(tmp_path / "run")
    assert locked.stdout.strip() == "locked", locked


def test_a_dead_holders_lock_file_does_not_block(tmp_path):
    run = _new_run(tmp_path / "run")
    run.unlock()
    (tmp_path / "run" / LOCK_FILE).write_text("999999\n")   # left by a killed process
    again = RunDir.open(tmp_path / "run")
    again.lock()
    assert (tmp_path / "run" / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    again.lock()                                            # held already: no-op
    again.unlock()
    again.unlock()
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_a_folder_with_only_a_stale_lock_file_can_hold_a_new_run(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_FILE).write_text("999999\n")
    run = _new_run(tmp_path / "run")
    assert RunDir.is_run_dir(tmp_path / "run")
    run.unlock()
    with pytest.raises(RunDirError, match="already holds a run"):
        _new_run(tmp_path / "run")
    assert not (tmp_path / "run" / LOCK_FILE).exists()
