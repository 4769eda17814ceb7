"""Each language-model example runs its --quick configuration (a few seconds each).

The checks parse the printed numbers: counts that are fixed by the data, perplexities that
must equal exp(loss), losses that must beat uniform guessing and go down, speeds that must
agree with the printed times -- what a wrong figure or a broken run would violate.
"""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"(-?[\d,]*\.?\d+(?:e[-+]?\d+)?)"
EPOCH_LINE = re.compile(rf"^epoch +(\d+) step +(\d+) train {NUMBER} \(ppl {NUMBER}\)", re.M)


def num(text: str) -> float:
    return float(text.replace(",", ""))


def find(pattern: str, text: str) -> list[float]:
    """The numbers captured by ``pattern`` (``{N}`` stands for a number) in ``text``."""
    match = re.search(pattern.replace("{N}", NUMBER), text, re.M)
    assert match, (pattern, text[-3000:])
    return [num(g) for g in match.groups()]


def epochs(text: str) -> list[tuple[int, int, float, float]]:
    """``(epoch, step, train loss, perplexity)`` of each trainer epoch line."""
    rows = [(int(e), int(s), num(loss), num(ppl)) for e, s, loss, ppl in EPOCH_LINE.findall(text)]
    assert rows, text[-3000:]
    for _, _, loss, ppl in rows:
        assert ppl == pytest.approx(math.exp(loss), rel=2e-4), (loss, ppl)
    return rows


def check_mxnet_time_machine(out):
    assert find(r"characters: ours {N} \| seed {N}", out) == [20_000, 179_533]
    assert find(r"vocabulary: ours {N} \| seed {N}", out) == [70, 77]
    assert find(r"64-char sequences: ours {N}, {N} per batch row", out) == [312, 9]
    rows = epochs(out)
    assert [(e, s) for e, s, _, _ in rows] == [(1, 9), (2, 18)]
    assert rows[1][2] < rows[0][2] < math.log(70)            # learns; beats uniform guessing
    loss, ppl, tps, wall = find(r"after 2 epochs: mean training loss {N} \(perplexity {N}\); "
                                r"{N} tokens/s on this CPU, {N} s wall", out)
    assert (loss, ppl) == (rows[-1][2], rows[-1][3])
    assert 0 < 18 * 32 * 64 / tps < wall                 # the timed steps fit in the wall time


def check_d2l_rnn(out):
    assert "seed 002: 10,000 tokens, vocabulary 43, hidden 64, batch 32 x 64" in out
    rows = epochs(out)
    assert [(e, s) for e, s, _, _ in rows] == [(1, 4), (4, 16)]
    assert rows[-1][2] < rows[0][2] < math.log(43)
    ppl, seed_ppl = find(r"final training perplexity: ours {N} after 4 epochs \| seed {N}", out)
    assert ppl == pytest.approx(rows[-1][3], abs=1e-3) and seed_ppl == 1.34
    tps, per_epoch, wall = find(r"speed: ours {N} tokens/s, {N} s/epoch on this CPU \({N} s wall",
                                out)
    timed_tokens = (16 - 1) * 32 * 64                 # the first (compiling) step is not timed
    assert per_epoch == pytest.approx(timed_tokens / tps / 4, abs=6e-4)
    assert 4 * per_epoch < wall


def check_sine_wave(out):
    rows = re.findall(rf"^epoch +(\d+): train MSE {NUMBER}, valid MSE {NUMBER} "
                      rf"\(seed's units: {NUMBER}\)", out, re.M)
    assert [int(r[0]) for r in rows] == [1, 2, 3], out
    for _, _, valid, seed_units in rows:             # the seed sums over a batch of 20
        assert num(seed_units) == pytest.approx(20 * num(valid), abs=0.02)
    ours, seed, floor = find(r"valid MSE per point: ours {N} \| seed \(MLP\) {N} \| noise floor "
                             r"{N}", out)
    assert ours == num(rows[-1][2]) and (seed, floor) == (0.0582, 0.04)
    assert 0.9 * floor < ours < 0.1                   # near the noise, nowhere below it
    ahead = [find(rf"^ *{k}-step-ahead MSE: {{N}}", out)[0] for k in (1, 4, 16, 64)]
    assert ahead == sorted(ahead) and ahead[0] < 0.1  # errors compound with the horizon
    mse, low, high = find(r"free-running from t=604: MSE {N}, predictions in \[{N}, {N}\]", out)
    assert -1.5 < low < high < 1.5 and mse > 0


def check_heldout_timemachine(out):
    train, held, vocab = find(r"train {N} characters, held out {N}, vocabulary {N}", out)
    assert (train, held, vocab) == (153_522, 17_058, 28)
    table = re.findall(r"^  (\S+) +\(([\d, ]+)\) +([\d,]+)$", out, re.M)
    assert len(table) == 6, out
    for name, shape, count in table:
        assert math.prod(int(d) for d in shape.split(",") if d.strip()) == num(count), name
    assert find(r"^  total +{N}$", out)[0] == sum(num(c) for _, _, c in table)
    loss, ppl, step = find(r"best validation loss {N} \(ppl {N}\) at step {N}", out)
    loss2, ppl2, bits, step2 = find(r"ours: best held-out loss {N} nats/char, perplexity {N}, "
                                    r"{N} bits/char at step {N}", out)
    assert (loss, ppl, step) == (loss2, ppl2, step2) and step == 40
    assert ppl == pytest.approx(math.exp(loss), rel=2e-4)
    assert bits == pytest.approx(loss / math.log(2), abs=1e-3)
    assert loss < math.log(28)                        # beats uniform guessing
    assert ("target: perplexity <= 4.25 within 10 minutes: NOT met" in out) == (ppl > 4.25)
    sample = re.search(r"^sample: (.*)$", out, re.M).group(1)
    assert sample.startswith("the time traveller") and set(sample) <= set(
        "abcdefghijklmnopqrstuvwxyz ")


CHECKS = {
    "mxnet_time_machine.py": check_mxnet_time_machine,
    "d2l_rnn.py": check_d2l_rnn,
    "sine_wave.py": check_sine_wave,
    "heldout_timemachine.py": check_heldout_timemachine,
}


@pytest.mark.parametrize("script", sorted(CHECKS))
def test_example_quick(script):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    run = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--quick",
                          "--backend", "jax"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    CHECKS[script](run.stdout)
