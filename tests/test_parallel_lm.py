"""Data-parallel language-model training (issue 14): ``TrainConfig.devices`` and
``scanrnn train --devices``.

The multi-device parts run in a child Python with 4 forced host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4`` must be set before JAX is
imported).  The default architecture (2 LSTM layers, embedding, dropout 0.3) with the
state carried across sequential batches trains the same on 1, 2 and 4 devices: the
dropout masks hash each element's global index (:mod:`scanrnn.random`), so the number
of devices does not change them, and equal losses under dropout show it.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5

pytest.importorskip("jax")


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu", SCANRNN_JAX_CACHE="0",
               XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env.pop("SCANRNN_COORDINATOR", None)
    return env


def _child(tmp_path, body: str, timeout=240) -> dict:
    """Run ``body`` in a child Python with 4 host devices; it prints one JSON line last."""
    script = tmp_path / "child.py"
    script.write_text(COMMON + textwrap.dedent(body))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


COMMON = textwrap.dedent('''
    import json
    import numpy as np
    from scanrnn.data import Vocab
    from scanrnn.lm import CharLM, TrainConfig, Trainer

    WORDS = "the time traveller for so it will be convenient to speak of him was".split()
    rng = np.random.default_rng(0)
    TEXT = " ".join(rng.choice(WORDS, 1200))
    VOCAB = Vocab(TEXT)
    IDS = np.asarray(VOCAB.encode(TEXT))
    TRAIN, VAL = IDS[:5000], IDS[5000:5600]

    def trainer(devices, batch_size=8, seed=0):
        model = CharLM(vocab_size=len(VOCAB), hidden=32, embed=16, layers=2, dropout=0.3,
                       seed=seed)
        cfg = TrainConfig(seq_len=8, batch_size=batch_size, sampling="sequential", epochs=1,
                          minutes=None, eval_minutes=None, eval_batch_size=8, eval_seq_len=32,
                          sample_length=20, sample_prefixes=("the time",), progress=False,
                          verbose=False, backend="jax", devices=devices)
        return Trainer(model, cfg, TRAIN, VAL, VOCAB)

    def steps(t, first, last, reset_after=6):
        X, Y = t.epoch_batches(0)
        losses = []
        for i in range(first, last):
            losses.append(t.train_step(X[i], Y[i])[0])
            if i == reset_after:
                t.reset_state()      # set_value of numpy zeros: re-placed on the next call
        return losses

    def diff(a, b):
        return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))

    def state_diff(s, t):
        return max(diff(s[k], t[k]) for k in s)
''')


def test_one_two_four_devices_train_alike_and_checkpoints_move_between_them(tmp_path):
    """10 steps on 1, 2 and 4 devices: same losses, weights, optimizer state, dropout
    counter and carried state; validation and a sample work on 2 devices and agree with
    1; a state saved on 2 devices after 5 steps continues on 1 (and one saved on 1
    continues on 2) exactly like the uninterrupted 1-device run."""
    result = _child(tmp_path, '''
        runs, mid = {}, {}
        for devices in (None, 2, 4):
            t = trainer(devices)
            losses = steps(t, 0, 5)
            mid[devices] = t.state_dict()
            losses += steps(t, 5, 10)
            runs[devices] = (t, losses, t.state_dict()[0])
        one, losses1, state1 = runs[None]
        two = runs[2][0]
        out = {"losses": losses1,
               "carry_sharded": str(two.carry[0].get_value(borrow=True).sharding.spec),
               "val": abs(two.evaluate()["loss"] - one.evaluate()["loss"]),
               "sample": two.samples(seed=3) == one.samples(seed=3)}
        for devices in (2, 4):
            t, losses, state = runs[devices]
            out[f"losses_{devices}"] = diff(losses, losses1)
            out[f"state_{devices}"] = state_diff(state, state1)
        # resume from the other device count's step-5 state (set_value of numpy values
        # over the ones placed on the devices: re-placed on the next call)
        for saved, t in ((2, one), (None, two)):
            t.load_state_dict(*mid[saved])
            losses = steps(t, 5, 10)
            out[f"resume_from_{saved}"] = max(diff(losses, losses1[5:]),
                                              state_diff(t.state_dict()[0], state1))
        print(json.dumps(out))
    ''')
    assert len(set(result["losses"])) > 1
    for devices in (2, 4):
        assert result[f"losses_{devices}"] < TOL, result
        assert result[f"state_{devices}"] < TOL, result
    assert result["val"] < TOL and result["sample"], result
    assert "batch" in result["carry_sharded"]          # the carried state stays split by row
    assert result["resume_from_2"] < TOL and result["resume_from_None"] < TOL, result


def test_a_batch_that_does_not_divide_over_the_devices_is_one_clear_error(tmp_path):
    result = _child(tmp_path, '''
        import time
        from scanrnn.parallel import ParallelError
        t0 = time.perf_counter()
        try:
            trainer(4, batch_size=6)
        except ParallelError as exc:
            message = str(exc)
        print(json.dumps({"message": message, "seconds": time.perf_counter() - t0}))
    ''')
    message = result["message"]
    assert "batch size 6" in message and "4 devices" in message and "\\n" not in message
    assert result["seconds"] < 10          # refused before anything compiled


def test_cli_devices_two_trains_and_resumes_on_one(tmp_path):
    """``scanrnn train --devices 2`` end to end, then ``--resume --devices 1``."""
    corpus = tmp_path / "words.txt"
    words = "the time traveller for so it will be convenient to speak of him was".split()
    corpus.write_text(" ".join(words[i * 7 % len(words)] for i in range(1500)) + "\n")
    out = tmp_path / "run"
    common = ["--corpus", corpus, "--out", out, "--hidden", 16, "--embed", 8, "--seq-len", 8,
              "--batch-size", 4, "--eval-every", 20, "--no-progress", "--sample-length", 20]

    def scanrnn(*args):
        return subprocess.run([sys.executable, "-m", "scanrnn", "train", *map(str, args)],
                              cwd=tmp_path, env=_env(), capture_output=True, text=True,
                              timeout=240)

    first = scanrnn(*common, "--steps", 30, "--devices", 2)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "data parallel on 2 cpu devices" in first.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["devices"] == 2
    second = scanrnn("--out", out, "--resume", "--steps", 40, "--devices", 1, "--no-progress")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "data parallel on 1 cpu device" in second.stdout
    rows = (out / "metrics.csv").read_text().splitlines()
    assert any(r.startswith("val") for r in rows)
    from scanrnn.lm import load_run
    assert load_run(out, "latest").meta["global_step"] == 40


def test_auto_split_takes_the_most_devices_that_divide_the_batch():
    from scanrnn.lm.devices import AUTO_MAX_DEVICES, auto_split
    assert auto_split(32, 2) == 2
    assert auto_split(32, 1) is None
    assert auto_split(32, 64) == AUTO_MAX_DEVICES == 8      # at least 4 rows each, at most 8
    assert auto_split(12, 8) == 3                           # 12 rows: 3 devices of 4
    assert auto_split(6, 2) is None                         # 3 rows each is too few
    assert auto_split(30, 4) == 3                           # 4 does not divide 30


def test_for_command_leaves_other_backends_and_explicit_devices_alone():
    from scanrnn.lm import TrainConfig
    from scanrnn.lm.devices import for_command
    config = TrainConfig(batch_size=32)
    assert for_command(config, "numba") == (config, False)
    every = TrainConfig(batch_size=32, devices="all")
    assert for_command(every, "jax") == (every, False)


def _plain_env():
    """The child's environment without any forced host devices."""
    env = dict(_env())
    env.pop("XLA_FLAGS")
    return env


def _train(tmp_path, name: str, cores: int, *extra):
    """``scanrnn train`` of a small model on ``cores`` cores (the child sets its own
    affinity): its stdout, saved config and metrics.csv rows."""
    corpus = tmp_path / "words.txt"
    words = "the time traveller for so it will be convenient to speak of him was".split()
    corpus.write_text(" ".join(words[i * 7 % len(words)] for i in range(1500)) + "\n")
    out = tmp_path / name
    args = ["train", "--corpus", str(corpus), "--hidden", "16", "--embed", "8", "--seq-len",
            "8", "--batch-size", "8", "--eval-every", "10", "--steps", "30", "--no-progress",
            "--sample-length", "20", "--log-every", "5", "--out", str(out), *extra]
    code = ("import os, sys; os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))"
            f"[:{cores}]); from scanrnn.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path,
                          env=_plain_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [r.split(",") for r in (out / "metrics.csv").read_text().splitlines()]
    return proc.stdout, json.loads((out / "config.json").read_text()), rows


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs a CPU with two cores this process may use")
def test_cli_splits_the_batch_over_one_host_device_per_core_by_default(tmp_path):
    """No --devices and no XLA_FLAGS on two cores: one host device per core, said in the
    header, not recorded in the run (a resume chooses anew), and the losses of one device."""
    stdout, config, rows = _train(tmp_path, "auto", 2)
    assert "data parallel on 2 cpu devices (one per core" in stdout
    assert config["train"]["devices"] is None
    one_stdout, _, one_rows = _train(tmp_path, "one", 2, "--devices", "1")
    assert "data parallel on 1 cpu device" in one_stdout and "one per core" not in one_stdout
    header = rows[0]
    assert header == one_rows[0] and len(rows) == len(one_rows)
    compared = 0
    for name in ("train_loss", "val_loss"):
        column = header.index(name)
        for mine, theirs in zip(rows[1:], one_rows[1:]):
            assert bool(mine[column]) == bool(theirs[column])
            if mine[column]:
                assert abs(float(mine[column]) - float(theirs[column])) < 1e-4, (mine, theirs)
                compared += 1
    assert compared >= 8


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="needs Linux's affinity")
def test_cli_on_one_core_keeps_one_device(tmp_path):
    stdout, config, _ = _train(tmp_path, "auto", 1)
    assert "data parallel" not in stdout and config["train"]["devices"] is None


def test_cli_devices_two_needs_no_xla_flags(tmp_path):
    """``--devices 2`` makes the two host devices itself (before, JAX saw one and refused)."""
    stdout, config, _ = _train(tmp_path, "two", 1, "--devices", "2")
    assert "data parallel on 2 cpu devices" in stdout and "one per core" not in stdout
    assert config["train"]["devices"] == 2
