"""The core example runs end to end in its --quick mode."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_theano_rnn_quick():
    result = subprocess.run([sys.executable, "examples/theano_rnn.py", "--quick"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "Part 1: the seed's Theano program" in out and "Part 2" in out
    errors = [float(line.split(":")[1]) for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 6  # 3 reports for each part
    part1, part2 = errors[:3], errors[3:]
    assert part1[-1] < part1[0] and part2[-1] < part2[0]  # both learn
    assert abs(part1[0] - part2[0]) < 1.0  # the same model


def test_fastai_lesson6_quick():
    """Every Keras cell of the lesson runs (imports changed only) on a short text."""
    result = subprocess.run([sys.executable, "examples/fastai_lesson6.py", "--quick"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert out.count("Total params: 102,258") == 2  # both Sequential summaries, vocab 86
    for model in ("4-char model loss", "n-char model loss", "SimpleRNN loss",
                  "2-to-n model loss", "return_sequences loss", "stateful LSTM loss"):
        assert f">> {model}" in out, model
    assert "done in" in out
