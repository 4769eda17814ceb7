"""Kept importable: text generation moved to :mod:`scanrnn.lm.sample`."""

from .lm.config import MAX_LENGTH, TEMPERATURE_RANGE, check_length, check_temperature
from .lm.sample import Sampler, encode_prefix, generate

__all__ = ["MAX_LENGTH", "Sampler", "TEMPERATURE_RANGE", "check_length", "check_temperature",
           "encode_prefix", "generate"]
