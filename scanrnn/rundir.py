"""Kept importable: run directories moved to :mod:`scanrnn.lm` (``rundir``: the files;
``run``: :func:`load_run`; ``recorder``: :class:`RunRecorder`)."""

from .lm.recorder import RunRecorder
from .lm.run import Run, build_model, load_run, params_from_checkpoint, parse_configs
from .lm.rundir import RunDir, RunDirError

__all__ = ["Run", "RunDir", "RunDirError", "RunRecorder", "build_model", "load_run",
           "params_from_checkpoint", "parse_configs"]
