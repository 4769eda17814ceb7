"""Kept importable: the language model moved to :mod:`scanrnn.lm.model` (and its
configuration to :mod:`scanrnn.lm.config`, the random numbers to :mod:`scanrnn.random`)."""

from .lm.config import LMConfig, config_from_dict
from .lm.model import CharLM
from .random import dropout, stream_key, uniform_hash

__all__ = ["CharLM", "LMConfig", "config_from_dict", "dropout", "stream_key", "uniform_hash"]
