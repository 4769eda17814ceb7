import os
from pathlib import Path

# Tests read the corpora from the local mirror (never from the network).
_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data"
if "SCANRNN_DATA" not in os.environ and _MIRROR.is_dir():
    os.environ["SCANRNN_DATA"] = str(_MIRROR)

import scanrnn  # noqa: E402,F401  (float32 default before any test builds a graph)

try:
    # Start JAX's backends now, with the devices the environment asks for: `scanrnn train`
    # run in this process (tests/test_cli.py) would otherwise ask for one host device per
    # core whenever it happened to be the first to use JAX, and change later tests.
    import jax
    jax.devices()
except ImportError:
    pass
