"""Held-out scoring of a language model: mean next-token cross-entropy with the state
carried through the text, the way training validates."""

from __future__ import annotations

import math

import numpy as np
import pytensor.tensor as pt

from .._config import floatx
from ..compile import function, resolve_backend
from ..data import text_tokens
from ..losses import cross_entropy, perplexity
from .interrupt import raise_if_interrupted
from .model import CharLM

__all__ = ["Evaluator", "cached_evaluator", "evaluate", "evaluate_text", "evaluate_tokens",
           "stream_layout"]

LN2 = math.log(2.0)


def stream_layout(n_targets: int, streams: int, burn_in: int) -> tuple[int, int, int]:
    """``(streams B, new tokens per stream L, burn-in W)`` for ``n_targets`` targets:
    stream ``i`` reads ``[i L, (i + 1) L + W)`` and scores all of it for ``i = 0``, its
    last ``L`` tokens otherwise (``B L + W`` scored in all, ``< B`` left out)."""
    B = max(1, min(streams, n_targets))
    W = min(burn_in, n_targets // B)
    L = (n_targets - W) // B
    if B == 1 or L < 1:
        return 1, n_targets, 0
    return B, L, W


class Evaluator:
    """Compiled evaluation of a model on long id sequences (dropout off, state carried).

    The ids are read as ``batch_size`` parallel streams (fewer for short texts), each in
    chunks of ``seq_len`` steps with the state carried from chunk to chunk.  Stream 0
    starts at the text's beginning, like one stream would; every other stream first reads
    ``burn_in`` tokens that the stream before it scores (not scored again), so it starts
    scoring with a warmed-up state: the loss equals one stream's up to what the model
    remembers from more than ``burn_in`` tokens back.  Padded steps are masked, so one
    compiled function serves every length; only the ``< batch_size`` tokens that do not
    fill the streams are left out.
    """

    def __init__(self, model: CharLM, batch_size: int = 64, seq_len: int = 256,
                 backend: str = "auto", burn_in: int | None = None):
        self.model = model
        self.batch_size = int(batch_size)
        self.seq_len = int(seq_len)
        self.burn_in = self.seq_len if burn_in is None else int(burn_in)
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

    def _checked(self, ids) -> np.ndarray:
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
        return ids.astype(np.int32)

    def __call__(self, ids, unk_id: int | None = None) -> dict:
        ids = self._checked(ids)
        B, L, W = stream_layout(ids.size - 1, self.batch_size, self.burn_in)
        R, T = L + W, self.seq_len
        rows = np.arange(B)[None, :] * L + np.arange(R)[:, None]          # (R, B)
        X, Y = ids[rows], ids[rows + 1]
        M = np.ones((R, B), np.float32)
        M[:W, 1:] = 0.0                                    # burn-in: read, not scored
        pad = -(-R // T) * T - R
        Xp = np.concatenate([X, np.zeros((pad, B), np.int32)])
        Yp = np.concatenate([Y, np.zeros((pad, B), np.int32)])
        Mp = np.concatenate([M, np.zeros((pad, B), np.float32)])
        states = self.model.zero_states(B)
        total = 0.0
        for k in range(len(Xp) // T):
            sl = slice(k * T, (k + 1) * T)
            out = self.fn(Xp[sl], Yp[sl], Mp[sl], *states)
            total += float(out[0])
            states = out[1:]
            raise_if_interrupted()   # a Ctrl-C Python dropped (while compiling, say)
        count = int(M.sum())
        loss = total / count
        result = {"loss": loss, "perplexity": perplexity(loss),
                  "bits_per_char": loss / LN2, "tokens": count}
        if unk_id is not None:
            result["unknown"] = int(np.sum((Y == unk_id) & (M > 0)))
        return result


def cached_evaluator(model, batch_size: int, seq_len: int, backend: str) -> Evaluator:
    """The model's :class:`Evaluator` for these sizes, compiled once and kept on the model."""
    cache = model.__dict__.setdefault("_evaluators", {})
    key = (int(batch_size), int(seq_len), resolve_backend(backend))
    if key not in cache:
        cache[key] = Evaluator(model, *key)
    return cache[key]


def evaluate(model: CharLM, ids, batch_size: int = 64, seq_len: int = 256,
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


