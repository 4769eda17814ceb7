"""Each language-model example runs its --quick configuration (a few seconds each)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EXPECT = {
    "mxnet_time_machine.py": ["vocabulary: ours", "| seed 77", "tokens/s"],
    "d2l_rnn.py": ["seed 002", "final training perplexity: ours", "| seed 1.34", "tokens/s"],
    "sine_wave.py": ["64-step-ahead MSE", "seed (MLP) 0.0582"],
    "heldout_timemachine.py": ["ours: best held-out loss", "reference: PyTorch", "sample:"],
}


@pytest.mark.parametrize("script", sorted(EXPECT))
def test_example_quick(script):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    run = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--quick",
                          "--backend", "jax"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    for text in EXPECT[script]:
        assert text in run.stdout, (text, run.stdout[-3000:])
