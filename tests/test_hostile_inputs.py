"""Odd input gets one clear line, never a traceback (the smaller items of a hostile afternoon)."""

import os
import re

import pytensor.tensor as pt
import pytest

from scanrnn import cli, optim
from scanrnn.data import CorpusError, resolve_corpus


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_special_files_as_a_corpus_are_named_for_what_they_are(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing-here")
    cases = {fifo: "is a named pipe (FIFO)", tmp_path / "a": "is a symbolic link loop",
             tmp_path / "dangling": "which does not exist"}
    if os.path.exists("/dev/zero"):
        cases["/dev/zero"] = "is a character device"
    for path, message in cases.items():
        with pytest.raises(CorpusError, match=re.escape(message)):
            resolve_corpus(path, download=False)


def test_optimizers_name_a_parameter_that_is_not_shared():
    w = pt.fvector("w")
    for make in (optim.sgd, optim.adam, optim.rmsprop, optim.adagrad, optim.momentum):
        with pytest.raises(TypeError, match=r"parameter 0 \('w'\) is TensorVariable, not a "
                                            r"shared variable"):
            make((w ** 2).sum(), [w])


def test_running_out_of_memory_is_one_line_not_a_traceback(monkeypatch, capsys):
    def exhausted(args):
        raise MemoryError("Unable to allocate 1.49 TiB for an array")
    parser = cli.build_parser

    def build():
        p = parser()
        p._subparsers._group_actions[0].choices["info"].set_defaults(func=exhausted)
        return p
    monkeypatch.setattr(cli, "build_parser", build)
    assert cli.main(["info"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scanrnn info: error: out of memory (Unable to allocate 1.49 TiB")
    assert "smaller model" in err and len(err.strip().splitlines()) == 1


def test_info_completes_where_pytensor_cannot_create_its_cache(tmp_path):
    """A read-only home: PyTensor raises when its compile cache folder is read; `scanrnn
    info` says so on that line and finishes (it stopped half-way, exit 2)."""
    import subprocess
    import sys
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where PyTensor wants its cache folder")
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={blocker}/pytensor",
           "SCANRNN_KERNELS": "0"}
    result = subprocess.run([sys.executable, "-m", "scanrnn", "info"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    cache_line = next(line for line in result.stdout.splitlines() if "pytensor C cache" in line)
    assert "unavailable" in cache_line and "PYTENSOR_FLAGS=base_compiledir=" in cache_line
    assert "jax cache:" in result.stdout                  # the lines after it are printed too
