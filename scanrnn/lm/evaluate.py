"""Held-out scoring of a language model: mean next-token cross-entropy with the state
carried through the text, the way training validates."""

from __future__ import annotations

import math

import numpy as np
import pytensor.tensor as pt

from .._config import floatx
from ..backends import function, resolve_backend
from ..data import text_tokens
from ..losses import cross_entropy, perplexity
from .model import CharLM

__all__ = ["Evaluator", "cached_evaluator", "evaluate", "evaluate_text", "evaluate_tokens"]

LN2 = math.log(2.0)


class Evaluator:
    """Compiled evaluation of a model on long id sequences (dropout off, state carried).

    The ids are cut into ``batch_size`` contiguous rows (fewer for short texts) read in
    chunks of ``seq_len`` steps, the state carried from chunk to chunk; the last chunk is
    padded and masked, so one compiled function serves every length.  Only the
    ``< batch_size`` tokens that do not fill the rows are left out.
    """

    def __init__(self, model: CharLM, batch_size: int = 16, seq_len: int = 256,
                 backend: str = "auto"):
        self.model = model
        self.batch_size = int(batch_size)
        self.seq_len = int(seq_len)
        self.backend = resolve_backend(backend)
        H = model.config.hidden
        x = pt.tensor("x", shape=(self.seq_len, None), dtype="int32")
        y = pt.tensor("y", shape=(self.seq_len, None), dtype="int32")
        mask = pt.tensor("mask", shape=(self.seq_len, None), dtype=floatx())
        states = [pt.tensor(f"state_{n}", shape=(None, H), dtype=floatx())
                  for n in model.state_names]
        logits, finals = model.logits(x, states, training=False, name="eval")
        nll_sum = cross_entropy(logits, y, reduction="sum", mask=mask,
                                num_classes=model.vocab_size)
        self.fn = function([x, y, mask, *states], [nll_sum, *finals], backend=self.backend,
                           name="eval_chunk")

    def __call__(self, ids, unk_id: int | None = None) -> dict:
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.size < 2:
            raise ValueError(f"evaluation needs a 1-D sequence of at least 2 token ids, got "
                             f"shape {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"evaluation needs integer token ids, got dtype {ids.dtype}")
        V = self.model.vocab_size
        if ids.min() < 0 or ids.max() >= V:
            raise ValueError(f"token ids must lie in [0, {V - 1}] for this model; got "
                             f"[{ids.min()}, {ids.max()}] (was the text encoded with the "
                             f"model's vocabulary?)")
        ids = ids.astype(np.int32)
        B = min(self.batch_size, ids.size - 1)
        L = (ids.size - 1) // B
        X = ids[:B * L].reshape(B, L).T                    # (L, B) time-major
        Y = ids[1:B * L + 1].reshape(B, L).T
        T = self.seq_len
        n_chunks = -(-L // T)
        pad = n_chunks * T - L
        Xp = np.concatenate([X, np.zeros((pad, B), np.int32)])
        Yp = np.concatenate([Y, np.zeros((pad, B), np.int32)])
        M = np.concatenate([np.ones((L, B), np.float32), np.zeros((pad, B), np.float32)])
        states = self.model.zero_states(B)
        total = 0.0
        for k in range(n_chunks):
            sl = slice(k * T, (k + 1) * T)
            out = self.fn(Xp[sl], Yp[sl], M[sl], *states)
            total += float(out[0])
            states = out[1:]
        count = B * L
        loss = total / count
        result = {"loss": loss, "perplexity": perplexity(loss),
                  "bits_per_char": loss / LN2, "tokens": int(count)}
        if unk_id is not None:
            result["unknown"] = int(np.sum(Y == unk_id))
        return result


def cached_evaluator(model, batch_size: int, seq_len: int, backend: str) -> Evaluator:
    """The model's :class:`Evaluator` for these sizes, compiled once and kept on the model."""
    cache = model.__dict__.setdefault("_evaluators", {})
    key = (int(batch_size), int(seq_len), resolve_backend(backend))
    if key not in cache:
        cache[key] = Evaluator(model, *key)
    return cache[key]


def evaluate(model: CharLM, ids, batch_size: int = 16, seq_len: int = 256,
             backend: str = "auto", unk_id: int | None = None) -> dict:
    """Mean cross-entropy of ``model`` on ``ids`` (next-token prediction, state carried).

    Returns ``dict(loss (nats/token), perplexity, bits_per_char, tokens)`` and, with
    ``unk_id``, ``unknown``: how many scored targets are the unknown token.
    The compiled function is cached on the model.
    """
    return cached_evaluator(model, batch_size, seq_len, backend)(ids, unk_id)


def evaluate_text(model: CharLM, vocab, text: str, preprocess: str = "none", **kwargs) -> dict:
    """:func:`evaluate` on a text: characters outside ``vocab`` count as ``<unk>``.

    The result also lists them (``unknown_tokens``).  ``preprocess="d2l"`` applies the d2l
    preprocessing first (use it for models trained on d2l-preprocessed text).
    """
    return evaluate_tokens(model, vocab, text_tokens(text, preprocess, vocab.mode), **kwargs)


def evaluate_tokens(model: CharLM, vocab, tokens: list, **kwargs) -> dict:
    """:func:`evaluate` on tokens encoded with ``vocab`` (those outside it count as
    ``<unk>`` and are listed in ``unknown_tokens``)."""
    missing = vocab.unknown(tokens)
    if missing and vocab.unk is None:
        raise ValueError(f"the text has tokens outside the vocabulary and it has no unknown "
                         f"token: {missing[:20]}")
    result = evaluate(model, vocab.encode(tokens), unk_id=vocab.unk, **kwargs)
    result["unknown_tokens"] = missing
    return result


