"""A language model's data: the corpus read, tokenised, split and encoded."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..data import (CorpusError, Vocab, batch_rows, load_corpus, random_batches,
                    sequential_batches, text_tokens, tokens_needed, train_val_split)
from .config import TrainConfig

__all__ = ["LMData", "checked_ids", "checked_split", "epoch_batches", "phrase_from",
           "prepare_data", "split_tokens"]


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


PREFIX_CHARS = 40   # the longest default sample prefix :func:`phrase_from` takes (chars)


def phrase_from(text: str, mode: str = "char", words: int = 3) -> str:
    """A sample prefix taken from a corpus: the first ``words`` words of the first line or
    sentence in ``text`` that starts after its first character and has two words or more
    (a heading is skipped), at most :data:`PREFIX_CHARS` characters (a text without spaces
    has no words); its first word for word tokens."""
    if mode == "word":
        return (text.split() or [text])[0]
    for start in re.finditer(r"(?:\n|[.!?] )(?=\S)", text):
        line = text[start.end():].split("\n", 1)[0].split()
        if len(line) >= 2:
            return _bounded(" ".join(line[:words]))
    return _bounded(" ".join(text.split()[:words]) or text[:8])


def _bounded(phrase: str) -> str:
    """``phrase`` cut to :data:`PREFIX_CHARS` characters, at a space when there is one."""
    if len(phrase) <= PREFIX_CHARS:
        return phrase
    cut = phrase[:PREFIX_CHARS]
    return cut.rsplit(" ", 1)[0] if " " in cut.strip() else cut


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


def checked_ids(ids, name: str, vocab_size: int) -> np.ndarray:
    """``ids`` as a 1-D int32 array of ids in ``[0, vocab_size)``; TypeError/ValueError
    naming ``name`` otherwise."""
    if ids is None:
        raise ValueError(f"{name} is required (1-D integer token ids)")
    if isinstance(ids, str):
        raise TypeError(f"{name} must be token ids; encode the text with a Vocab first")
    arr = np.asarray(ids)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D integer array, got shape {arr.shape} "
                         f"dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise ValueError(f"{name} holds ids outside [0, {vocab_size - 1}] "
                         f"(vocab_size={vocab_size})")
    return arr.astype(np.int32)


def checked_split(config: TrainConfig, train_ids, val_ids, vocab_size: int):
    """``(train_ids, val_ids or None)`` checked as :func:`checked_ids`; ValueError when the
    training ids cannot fill one batch of ``config`` or a held-out part has one token."""
    train_ids = checked_ids(train_ids, "train_ids", vocab_size)
    val_ids = None if val_ids is None or len(val_ids) == 0 else \
        checked_ids(val_ids, "val_ids", vocab_size)
    if val_ids is not None and len(val_ids) < 2:
        raise ValueError("val_ids needs at least 2 tokens (or pass none)")
    c = config
    need = tokens_needed(c.batch_size, c.seq_len, c.sampling,
                         "d2l" if c.sampling == "rows" else c.batch_flavor)
    if len(train_ids) < need:
        raise ValueError(
            f"the training text has {len(train_ids):,} tokens, fewer than the "
            f"{need:,} one {c.sampling} batch of batch_size x seq_len = {c.batch_size} x "
            f"{c.seq_len} needs; use a longer text or a smaller batch_size / seq_len")
    return train_ids, val_ids
