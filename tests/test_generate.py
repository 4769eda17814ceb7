"""Sampling: one compiled call, determinism, greedy / temperature / top-k semantics, errors."""

import numpy as np
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn.data import Vocab
from scanrnn.lm import CharLM, Sampler, generate

TEXT = "the time traveller smiled round at us then still smiling faintly"


@pytest.fixture(scope="module")
def setup():
    vocab = Vocab(TEXT)
    model = CharLM(vocab_size=len(vocab), hidden=24, embed=8, layers=2, seed=4)
    # sharpen the output layer so that the distributions are far from uniform
    w = model.get_weights()
    w["out.W"] *= 6.0
    model.set_weights(w)
    x = pt.tensor("x", shape=(None, None), dtype="int32")
    logits, _ = model.logits(x)
    forward = scanrnn.function([x], logits, backend="jax")
    return model, vocab, Sampler(model, vocab, backend="jax"), forward


def test_same_seed_same_text_new_seed_without_recompiling(setup):
    model, vocab, sampler, _ = setup
    a = sampler.sample("the ", length=40, seed=1, num=3)
    b = sampler.sample("the ", length=40, seed=1, num=3)
    c = sampler.sample("the ", length=40, seed=2, num=3)
    assert a == b and a != c
    assert len(a) == 3 and len(set(a)) == 3                 # a batch of different samples
    assert all(s.startswith("the ") and len(s) == 44 for s in a)
    assert len(sampler._functions) == 1                      # one compiled (length, num)
    assert generate(model, vocab, "the ", length=40, seed=1, num=3, backend="jax") == a
    assert len(sampler._functions) == 1                      # shared through the model


def _next_logits(forward, vocab, ids):
    """Logits after each id (len, V); the sampler never draws <unk>: -inf there."""
    logits = np.array(forward(np.asarray(ids, np.int32)[:, None])[:, 0])
    logits[:, vocab.unk] = -np.inf
    return logits


def test_greedy_is_argmax_and_equals_top1_and_cold_temperature(setup):
    _, vocab, sampler, forward = setup
    prefix = "time tr"
    greedy = sampler.sample_ids(vocab.encode(prefix), length=40, greedy=True)[0]
    top1 = sampler.sample_ids(vocab.encode(prefix), length=40, top_k=1, seed=5)[0]
    cold = sampler.sample_ids(vocab.encode(prefix), length=40, temperature=1e-4, seed=6)[0]
    np.testing.assert_array_equal(greedy, top1)
    np.testing.assert_array_equal(greedy, cold)
    full = np.concatenate([vocab.encode(prefix), greedy])
    logits = _next_logits(forward, vocab, full)
    expected = logits[len(prefix) - 1:-1].argmax(axis=-1)
    np.testing.assert_array_equal(greedy, expected)


def test_top_k_keeps_only_the_k_most_likely(setup):
    _, vocab, sampler, forward = setup
    prefix = vocab.encode("smil")
    out = sampler.sample_ids(prefix, length=40, top_k=2, seed=11, temperature=3.0)[0]
    logits = _next_logits(forward, vocab, np.concatenate([prefix, out]))[len(prefix) - 1:-1]
    ranks = (logits > logits[np.arange(40), out][:, None]).sum(axis=-1)
    assert ranks.max() <= 1
    hot = sampler.sample_ids(prefix, length=40, seed=11, temperature=3.0)[0]
    hot_logits = _next_logits(forward, vocab, np.concatenate([prefix, hot]))[len(prefix) - 1:-1]
    hot_ranks = (hot_logits > hot_logits[np.arange(40), hot][:, None]).sum(axis=-1)
    assert hot_ranks.max() > 1               # without top-k a hot sampler strays further


def test_temperature_frequencies_follow_softmax(setup):
    _, vocab, sampler, forward = setup
    prefix = vocab.encode("the")
    first = np.concatenate([sampler.sample_ids(prefix, length=40, temperature=2.0, seed=s,
                                               num=3)[:, 0] for s in range(700)])
    logits = _next_logits(forward, vocab, prefix)[-1] / 2.0
    p = np.exp(logits - logits.max())
    p /= p.sum()
    freq = np.bincount(first, minlength=len(vocab)) / len(first)
    assert np.abs(freq - p).max() < 0.035


def test_bad_arguments_are_clear(setup):
    _, vocab, sampler, _ = setup
    with pytest.raises(ValueError, match=r"outside the vocabulary: 'T'.*lowercase"):
        sampler.sample("The", 10)
    with pytest.raises(ValueError, match="'Z', 'q'"):
        sampler.sample("Zq", 10)
    with pytest.raises(ValueError, match="temperature must be between 1e-30 and 1e"):
        sampler.sample("the", 10, temperature=0)
    with pytest.raises(ValueError, match="top_k must be"):
        sampler.sample("the", 10, top_k=0)
    with pytest.raises(ValueError, match="top_k must be"):
        sampler.sample("the", 10, top_k=len(vocab) + 1)
    with pytest.raises(ValueError, match="length must be a positive"):
        sampler.sample("the", 0)
    with pytest.raises(ValueError, match="at least one"):
        sampler.sample("", 10)
    with pytest.raises(ValueError, match="vocab_size"):
        Sampler(CharLM(vocab_size=5, hidden=4, embed=2), vocab)


def test_the_case_hint_says_lowercase_only_for_a_lowercase_vocabulary():
    from scanrnn.lm.sample import encode_prefix
    with pytest.raises(ValueError, match=r"'Z' \(this vocabulary is lowercase"):
        encode_prefix(Vocab.from_text("abc zed"), "Zed")
    with pytest.raises(ValueError, match=r"'Z' \('z' is in it\)"):
        encode_prefix(Vocab.from_text("Abc zed"), "Zed")
