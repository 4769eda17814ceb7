"""Sampling refuses what float32 or memory cannot honour, with a message saying why."""

import numpy as np
import pytest

from scanrnn.lm.config import MAX_LENGTH, TEMPERATURE_RANGE, check_length, \
    check_temperature
from scanrnn.lm import CharLM, LMConfig, Sampler


@pytest.mark.parametrize("temperature", [1e-38, 1e-31, 1e31, 1e39, float("inf"), float("nan"),
                                         0, -1.0])
def test_temperatures_float32_cannot_honour_are_refused(temperature):
    with pytest.raises(ValueError, match="temperature must be between 1e-30 and 1e"):
        check_temperature(temperature)


def test_temperatures_in_range_and_lengths_up_to_the_bound_are_accepted():
    low, high = TEMPERATURE_RANGE
    assert check_temperature(low) == low and check_temperature(high) == high
    assert check_temperature(np.float32(0.8)) == pytest.approx(0.8)
    assert check_length(MAX_LENGTH) == MAX_LENGTH and check_length(7.0) == 7
    with pytest.raises(ValueError, match="temperature must be a number"):
        check_temperature("warm")


@pytest.mark.parametrize("length,message", [(MAX_LENGTH + 1, "more than 1,000,000 tokens"),
                                            (10**9, "generate in parts"),
                                            (0, "positive integer"), (True, "positive integer"),
                                            (2.5, "positive integer")])
def test_lengths_past_the_bound_are_refused_before_compiling(length, message):
    with pytest.raises(ValueError, match=message):
        check_length(length)


def test_the_sampler_checks_before_it_compiles():
    model = CharLM(LMConfig(vocab_size=5, hidden=4, layers=1, embed=3))
    sampler = Sampler(model, backend="python")
    with pytest.raises(ValueError, match="more than 1,000,000 tokens"):
        sampler.sample_ids([1, 2], length=10**9)
    with pytest.raises(ValueError, match="temperature must be between"):
        sampler.sample_ids([1, 2], length=3, temperature=1e-38)
    assert sampler._functions == {}  # nothing was compiled for the refused calls
    greedy = sampler.sample_ids([1, 2], length=3, temperature=1e-38, greedy=True, seed=0)
    assert greedy.shape == (1, 3)
    coldest = sampler.sample_ids([1, 2], length=3, temperature=TEMPERATURE_RANGE[0], seed=0)
    np.testing.assert_array_equal(coldest, greedy)   # computed, not 0 or NaN


def test_training_refuses_epoch_sample_settings_sampling_would_refuse_later():
    """A --sample-temperature of 1e-38 trained a whole epoch before its sample failed."""
    from scanrnn.lm import TrainConfig
    with pytest.raises(ValueError, match="sample_temperature must be between 1e-30 and 1e"):
        TrainConfig(sample_temperature=1e-38)
    with pytest.raises(ValueError, match="sample_length must be at most 1,000,000"):
        TrainConfig(sample_length=MAX_LENGTH + 1)
    assert TrainConfig(sample_temperature=1e-30, sample_length=MAX_LENGTH).sample_length == \
        MAX_LENGTH
