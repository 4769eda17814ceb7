"""Kept importable: training moved to :mod:`scanrnn.lm` (``trainer``, ``config``, ``data``,
``evaluate``, ``step``); text preparation to :mod:`scanrnn.data`."""

from .data import text_tokens
from .lm.config import TrainConfig
from .lm.data import LMData, prepare_data, split_tokens
from .lm.evaluate import Evaluator, evaluate, evaluate_text, evaluate_tokens
from .lm.step import NonFiniteLossError
from .lm.trainer import Callback, Trainer

__all__ = ["Callback", "Evaluator", "LMData", "NonFiniteLossError", "TrainConfig", "Trainer",
           "evaluate", "evaluate_text", "evaluate_tokens", "prepare_data", "split_tokens",
           "text_tokens"]
