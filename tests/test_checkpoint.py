"""Checkpoints: round trip, atomic saves, and a clear error for every bad file."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from scanrnn import checkpoint as ck

CONFIG = {"model": {"cell": "lstm", "hidden": 8}, "vocab": ["a", "b"]}


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {"params/lstm_1.W_x": rng.normal(size=(3, 32)).astype(np.float32),
            "params/lstm_1.b": np.zeros(32, np.float32),
            "rng/state": np.array([1, 2, 3], np.uint64)}


def test_round_trip_keeps_arrays_meta_and_dtypes(tmp_path):
    path = tmp_path / "latest.npz"
    ck.save(path, _arrays(), {"step": np.int64(7), "lr": np.float32(0.5), "history": [1.5, 1.2]},
            CONFIG)
    got = ck.load(path, CONFIG)
    for name, value in _arrays().items():
        assert got.arrays[name].dtype == value.dtype
        np.testing.assert_array_equal(got.arrays[name], value)
    assert got.meta == {"step": 7, "lr": 0.5, "history": [1.5, 1.2]}
    assert got.config_hash == ck.config_hash(CONFIG)
    assert [p.name for p in tmp_path.iterdir()] == ["latest.npz"]  # no temp file left


def test_config_hash_is_order_independent_and_sensitive():
    assert ck.config_hash({"a": 1, "b": [1, 2]}) == ck.config_hash({"b": [1, 2], "a": 1})
    assert ck.config_hash({"a": 1}) != ck.config_hash({"a": 2})


def test_other_configuration_is_refused(tmp_path):
    path = ck.save(tmp_path / "c.npz", _arrays(), {}, CONFIG)
    other = {**CONFIG, "model": {"cell": "gru", "hidden": 8}}
    with pytest.raises(ck.CheckpointError, match="another configuration"):
        ck.load(path, other)
    ck.load(path)  # without an expected configuration it loads


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "truncated or corrupt"),
    (lambda b: b[:-30], "truncated or corrupt"),
    (lambda b: b[:600] + bytes([b[600] ^ 0xFF]) + b[601:], "truncated or corrupt"),
    (lambda b: b"", "is empty"),
    (lambda b: b"just some text\n", "not an .npz"),
])
def test_damaged_files_give_a_clear_error(tmp_path, damage, message):
    path = ck.save(tmp_path / "c.npz", _arrays(), {"step": 1}, CONFIG)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ck.CheckpointError, match=message):
        ck.load(path, CONFIG)


def test_missing_file(tmp_path):
    with pytest.raises(ck.CheckpointError, match="does not exist"):
        ck.load(tmp_path / "nope.npz")


def test_foreign_npz_and_npy_are_not_ours(tmp_path):
    np.savez(tmp_path / "f.npz", W=np.ones(3))
    with pytest.raises(ck.CheckpointError, match="not a scanrnn checkpoint"):
        ck.load(tmp_path / "f.npz")
    np.save(tmp_path / "g.npy", np.ones(3))
    with pytest.raises(ck.CheckpointError, match="single .npy"):
        ck.load(tmp_path / "g.npy")


class _Trap:
    """Unpickling this would create a file: proof that nothing is unpickled."""

    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return (Path.touch, (Path(self.flag),))


def test_pickled_payloads_are_never_unpickled(tmp_path):
    flag = tmp_path / "unpickled"
    header = np.frombuffer(b'{"format": "scanrnn-checkpoint", "version": 1}', np.uint8)
    np.savez(tmp_path / "p.npz", __scanrnn__=header,
             trap=np.array([_Trap(str(flag))], dtype=object))
    with pytest.raises(ck.CheckpointError, match="pickled"):
        ck.load(tmp_path / "p.npz")
    (tmp_path / "q.npz").write_bytes(pickle.dumps(_Trap(str(flag))))
    with pytest.raises(ck.CheckpointError):
        ck.load(tmp_path / "q.npz")
    assert not flag.exists()


def test_newer_format_version_is_refused(tmp_path):
    header = np.frombuffer(b'{"format": "scanrnn-checkpoint", "version": 99}', np.uint8)
    np.savez(tmp_path / "v.npz", __scanrnn__=header)
    with pytest.raises(ck.CheckpointError, match="version 99"):
        ck.load(tmp_path / "v.npz")


def test_object_arrays_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="object"):
        ck.save(tmp_path / "o.npz", {"x": np.array([{}], dtype=object)})
    assert not list(tmp_path.iterdir())


def test_failed_rename_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = ck.save(tmp_path / "latest.npz", _arrays(0), {"step": 1}, CONFIG)

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ck.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        ck.save(path, _arrays(1), {"step": 2}, CONFIG)
    monkeypatch.undo()
    got = ck.load(path, CONFIG)
    assert got.meta["step"] == 1
    np.testing.assert_array_equal(got.arrays["params/lstm_1.W_x"], _arrays(0)["params/lstm_1.W_x"])
    assert [p.name for p in tmp_path.iterdir()] == ["latest.npz"]


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = ck.save(tmp_path / "latest.npz", _arrays(0), {"step": 1}, CONFIG)

    def broken_savez(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    monkeypatch.setattr(ck.np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        ck.save(path, _arrays(1), {"step": 2}, CONFIG)
    monkeypatch.undo()
    assert ck.load(path, CONFIG).meta["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.npz"]


def test_kill_during_save_leaves_a_loadable_checkpoint(tmp_path):
    """SIGKILL a process in the middle of its second save (data written, not yet renamed).

    The child announces that it is inside the save and blocks there, so the kill lands
    mid-save by construction, whatever the machine's speed.
    """
    script = textwrap.dedent(f"""
        import sys, time, numpy as np
        from scanrnn import checkpoint as ck
        path = {str(tmp_path / "latest.npz")!r}
        big = np.full(1_000_000, 1.0, np.float32)
        ck.save(path, {{"big": big}}, {{"step": 1}}, {{"k": 1}})
        savez = ck.np.savez

        def savez_then_block(handle, **payload):
            savez(handle, **payload)
            handle.flush()
            print("inside the save", flush=True)
            time.sleep(600)

        ck.np.savez = savez_then_block
        ck.save(path, {{"big": big * 2}}, {{"step": 2}}, {{"k": 1}})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout.readline().strip() == "inside the save"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    leftovers = list(tmp_path.glob(".latest.npz.*.tmp"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 4_000_000
    got = ck.load(tmp_path / "latest.npz", {"k": 1})       # the first save, whole
    assert got.meta["step"] == 1 and np.all(got.arrays["big"] == 1.0)
    os.remove(leftovers[0])
