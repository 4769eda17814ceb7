"""The character (or word) language-model application, built on the core.

One job per module, every import pointing down:

==================  ====================================================================
``config``          :class:`LMConfig` (architecture), :class:`TrainConfig` (training),
                    sampling bounds
``model``           :class:`CharLM`: embedding -> stacked cells -> dense, with dropout
``step``            the ONE training-step graph (trainer and ``scanrnn graph`` alike)
``data``            corpus -> tokens -> train/validation ids and the vocabulary
``evaluate``        held-out loss with the state carried (:func:`evaluate`)
``sample``          text generation in one compiled call (:class:`Sampler`)
``interrupt``       Ctrl-C / SIGTERM during training (:class:`StopRequest`)
``schedules``       the learning rate and the validations over a run's clock
``trainer``         :class:`Trainer`: the loop, schedule, validation, early stopping
``trainer_state``   a trainer's state as arrays + JSON, for exact resumes
``rundir``          :class:`RunDir`: the files of a run directory, its lock
``run``             :func:`load_run`: a trained run read back
``recorder``        :class:`RunRecorder`: metrics, checkpoints, samples, plot while training
``cli``             the ``train`` / ``sample`` / ``eval`` subcommands' arguments
``train_command``   ``scanrnn train`` (new runs and ``--resume``)
``commands``        ``scanrnn sample`` and ``scanrnn eval``
==================  ====================================================================
"""

from .config import LMConfig, TrainConfig
from .data import LMData, prepare_data
from .evaluate import Evaluator, evaluate, evaluate_text, evaluate_tokens
from .interrupt import StopRequest, TrainingInterrupted
from .model import CharLM
from .recorder import RunRecorder
from .run import Run, load_run
from .rundir import RunDir, RunDirError
from .sample import Sampler, generate
from .step import NonFiniteLossError, TrainingStep, training_step
from .trainer import Callback, Trainer

__all__ = [
    "Callback", "CharLM", "Evaluator", "LMConfig", "LMData", "NonFiniteLossError", "Run",
    "RunDir", "RunDirError", "RunRecorder", "Sampler", "StopRequest", "TrainConfig", "Trainer",
    "TrainingInterrupted", "TrainingStep", "evaluate", "evaluate_text", "evaluate_tokens",
    "generate", "load_run", "prepare_data", "training_step",
]
