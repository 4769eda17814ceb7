"""A language model's data: the corpus read, tokenised, split and encoded."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..data import (CorpusError, Vocab, batch_rows, load_corpus, random_batches,
                    sequential_batches, text_tokens, train_val_split)
from .config import TrainConfig

__all__ = ["LMData", "epoch_batches", "phrase_from", "prepare_data", "split_tokens"]


@dataclass
class LMData:
    """Token ids of the training and held-out parts (int32, 1-D) and the vocabulary."""

    train_ids: np.ndarray
    val_ids: np.ndarray
    vocab: Vocab
    unknown_val: list = field(default_factory=list)


def split_tokens(tokens: list, val_fraction: float) -> tuple[list, list]:
    """:func:`scanrnn.data.train_val_split` of a corpus's tokens (the last ``val_fraction``
    held out), refusing a corpus with fewer than two tokens."""
    if len(tokens) < 2:
        raise CorpusError(f"the corpus has {len(tokens)} token(s) after preprocessing; "
                          f"a language model needs text")
    return train_val_split(list(tokens), val_fraction, min_tokens=0)


def prepare_data(config: TrainConfig, text: str | None = None) -> LMData:
    """Load ``config.corpus`` (or ``text``), preprocess, split, build the vocabulary.

    The vocabulary is built from the training part only; held-out tokens outside it count
    as ``<unk>`` (listed in ``unknown_val``).  With ``preprocess="d2l"`` and character
    tokens on timemachine this is d2l's corpus (170,580 tokens, vocabulary 28).
    """
    if text is None:
        text = load_corpus(config.corpus)
    train_tokens, val_tokens = split_tokens(
        text_tokens(text, config.preprocess, config.tokens), config.val_fraction)
    vocab = Vocab(train_tokens, mode=config.tokens)
    unknown = vocab.unknown(val_tokens) if val_tokens else []
    train_ids = vocab.encode(train_tokens)
    val_ids = vocab.encode(val_tokens) if val_tokens else np.zeros(0, np.int32)
    return LMData(np.asarray(train_ids, np.int32), np.asarray(val_ids, np.int32), vocab, unknown)


def phrase_from(text: str, mode: str = "char", words: int = 3) -> str:
    """A sample prefix taken from a corpus: the first ``words`` words of the first line or
    sentence in ``text`` that starts after its first character and has two words or more
    (a heading is skipped); its first word for word tokens."""
    if mode == "word":
        return (text.split() or [text])[0]
    for start in re.finditer(r"(?:\n|[.!?] )(?=\S)", text):
        line = text[start.end():].split("\n", 1)[0].split()
        if len(line) >= 2:
            return " ".join(line[:words])
    return " ".join(text.split()[:words]) or text[:8]


def epoch_batches(train_ids: np.ndarray, config: TrainConfig,
                  epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)`` of epoch ``epoch`` (0-based) as ``config.sampling`` cuts them: time-major
    ``(n, T, B)`` int32, deterministic in ``(config.seed, epoch)``."""
    c = config
    rng = np.random.default_rng([c.seed, epoch])
    if c.sampling == "random":
        b = random_batches(train_ids, c.batch_size, c.seq_len, rng, flavor=c.batch_flavor)
    elif c.sampling == "sequential":
        b = sequential_batches(train_ids, c.batch_size, c.seq_len, rng, flavor=c.batch_flavor)
    else:
        b = batch_rows(train_ids, c.batch_size, c.seq_len)
    return (np.ascontiguousarray(b.X.transpose(0, 2, 1)),
            np.ascontiguousarray(b.Y.transpose(0, 2, 1)))
