"""Text to token ids: the d2l preprocessing, tokenizers, a vocabulary and n-gram counts.

``Vocab`` orders tokens by decreasing frequency, ties broken by first appearance in the text
(what d2l's ``Vocab`` does: a stable sort of a ``collections.Counter``), or alphabetically with
``order="sorted"`` (what the fast.ai lesson does). Special tokens come first: the padding token
(index 0, when given), then the unknown token, then the reserved tokens.
"""

from __future__ import annotations

import collections
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .corpora import CorpusError, load_corpus

__all__ = ["Vocab", "d2l_corpus", "d2l_lines", "d2l_preprocess", "gluonbook_preprocess",
           "ngram_counts", "text_tokens", "tokenize"]

_NON_LETTERS = re.compile("[^A-Za-z]+")
_MODES = ("char", "word")
_FORMAT = "scanrnn.vocab"


def d2l_lines(text: str) -> list[str]:
    """d2l's ``read_time_machine``: each line with runs of non-letters replaced by one space,
    stripped and lowercased (lines split on ``\\n`` as ``readlines`` does)."""
    return [_NON_LETTERS.sub(" ", line).strip().lower() for line in text.split("\n")]


def d2l_preprocess(text: str, sep: str = "") -> str:
    """The d2l preprocessing as one string: :func:`d2l_lines` joined by ``sep``.

    With the default ``sep=""`` the character tokens are exactly d2l's (170,580 on
    ``timemachine.txt``). For word tokens use :func:`d2l_lines` or ``sep=" "`` so that words at
    line ends do not merge.
    """
    return sep.join(d2l_lines(text))


def gluonbook_preprocess(text: str, num_chars: int = 10_000) -> str:
    """Seed 002's ``gb.load_data_time_machine`` text: newlines (and ``\\r``) become spaces,
    lowercased, the first ``num_chars`` characters kept (``<= 0``: all). On
    ``timemachine.txt`` this gives 10,000 characters, 43 distinct (build its vocabulary with
    ``unk=None`` to get the seed's ``vocab_size`` of 43)."""
    text = text.replace("\n", " ").replace("\r", " ").lower()
    return text[:num_chars] if num_chars > 0 else text


def _check_mode(mode: str) -> str:
    if mode not in _MODES:
        raise ValueError(f"unknown token mode {mode!r}; use 'char' or 'word'")
    return mode


def tokenize(text: str | Sequence[str], mode: str = "char") -> list[str]:
    """Split text into character or word (whitespace-separated) tokens.

    ``text`` may be one string or a list of lines (tokenized line by line and flattened, as d2l
    does).
    """
    _check_mode(mode)
    if isinstance(text, str):
        return list(text) if mode == "char" else text.split()
    tokens: list[str] = []
    for line in text:
        if not isinstance(line, str):
            raise TypeError(f"tokenize expects a string or a list of strings, got an item of "
                            f"type {type(line).__name__}")
        tokens.extend(line if mode == "char" else line.split())
    return tokens


def ngram_counts(tokens: Sequence, n: int) -> list[tuple[tuple, int]]:
    """Counts of the n-grams of ``tokens`` (tokens or ids), most frequent first.

    Ties keep first appearance order, like d2l's bigram and trigram ``Vocab``.
    Returns a list of ``(ngram tuple, count)``.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    items = tokens.tolist() if isinstance(tokens, np.ndarray) else list(tokens)
    grams = zip(*(items[i:] for i in range(int(n))))
    counter = collections.Counter(grams)
    return sorted(counter.items(), key=lambda kv: kv[1], reverse=True)


class Vocab:
    """Token <-> id mapping.

    Parameters
    ----------
    tokens : the training tokens (a flat list, or a list of token lists), or a string, which is
        tokenized in ``mode``.
    min_freq : tokens seen fewer times are left out (they map to ``unk``).
    reserved_tokens : extra tokens placed right after ``pad`` and ``unk`` (e.g. ``"<bos>"``).
    unk : the unknown token (``None``: unknown tokens are an error).
    pad : a padding token placed at index 0 (the fast.ai lesson uses ``"\\0"``), or ``None``.
    mode : ``"char"`` or ``"word"``: how :meth:`encode` splits a string and :meth:`decode` joins.
    order : ``"frequency"`` (decreasing count, ties by first appearance) or ``"sorted"``.

    Layout: ``[pad] + [unk] + reserved_tokens + tokens``. With the defaults it is d2l's
    ``Vocab`` (``<unk>`` at 0, then tokens by frequency).
    """

    def __init__(self, tokens: Iterable = (), min_freq: int = 0,
                 reserved_tokens: Sequence[str] = (), unk: str | None = "<unk>",
                 pad: str | None = None, mode: str = "char", order: str = "frequency"):
        self.mode = _check_mode(mode)
        if order not in ("frequency", "sorted"):
            raise ValueError(f"unknown order {order!r}; use 'frequency' or 'sorted'")
        if isinstance(tokens, str):
            tokens = tokenize(tokens, mode)
        else:
            tokens = list(tokens)
            if tokens and isinstance(tokens[0], list):
                tokens = [t for line in tokens for t in line]
        counter = collections.Counter(tokens)
        freqs = sorted(counter.items(), key=lambda kv: kv[1], reverse=True)
        if order == "sorted":
            freqs = sorted(counter.items(), key=lambda kv: kv[0])
        self.token_freqs: list[tuple[str, int]] = freqs
        self.min_freq = int(min_freq)
        self.order = order
        self.unk_token = unk
        self.pad_token = pad
        self.reserved_tokens = list(reserved_tokens)
        specials = [t for t in (pad, unk) if t is not None] + self.reserved_tokens
        kept = [t for t, c in freqs if c >= self.min_freq]
        self._build(specials + kept)

    def _build(self, tokens: Sequence[str]) -> None:
        self.idx_to_token: list[str] = []
        self.token_to_idx: dict[str, int] = {}
        for token in tokens:
            if not isinstance(token, str):
                raise TypeError(f"vocabulary tokens must be strings, got {token!r}")
            if token not in self.token_to_idx:
                self.token_to_idx[token] = len(self.idx_to_token)
                self.idx_to_token.append(token)
        self._table: dict[str, int] | None = None

    @classmethod
    def from_text(cls, text: str, mode: str = "char", **kw) -> Vocab:
        """The vocabulary of a text, tokenized in ``mode``."""
        return cls(tokenize(text, mode), mode=mode, **kw)

    # -- lookups ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __contains__(self, token) -> bool:
        return token in self.token_to_idx

    @property
    def unk(self) -> int | None:
        """Id of the unknown token (``None`` when there is none)."""
        return None if self.unk_token is None else self.token_to_idx[self.unk_token]

    @property
    def pad(self) -> int | None:
        """Id of the padding token, 0 (``None`` when there is none)."""
        return None if self.pad_token is None else self.token_to_idx[self.pad_token]

    def __getitem__(self, tokens):
        """Id of a token, or a list of ids for a list/tuple of tokens (unknown -> ``unk``)."""
        if isinstance(tokens, (list, tuple)):
            return [self[t] for t in tokens]
        idx = self.token_to_idx.get(tokens)
        if idx is not None:
            return idx
        if self.unk_token is None:
            raise CorpusError(f"token {tokens!r} is not in the vocabulary ({len(self)} tokens) "
                              f"and it has no unknown token")
        return self.token_to_idx[self.unk_token]

    def to_tokens(self, ids):
        """Token of an id, or a list of tokens for a sequence of ids."""
        if isinstance(ids, (int, np.integer)):
            return self.idx_to_token[self._check_ids(np.asarray([ids]))[0]]
        return [self.idx_to_token[i] for i in self._check_ids(np.asarray(ids)).tolist()]

    def _split(self, text_or_tokens) -> list[str]:
        if isinstance(text_or_tokens, str):
            return tokenize(text_or_tokens, self.mode)
        return list(text_or_tokens)

    def unknown(self, text_or_tokens) -> list[str]:
        """Sorted distinct tokens of the input that are not in the vocabulary."""
        if isinstance(text_or_tokens, str) and self.mode == "char":
            return sorted(set(text_or_tokens) - self.token_to_idx.keys())
        return sorted(set(self._split(text_or_tokens)) - self.token_to_idx.keys())

    def encode(self, text_or_tokens) -> np.ndarray:
        """Token ids, int32 array of shape ``(n_tokens,)``; unknown tokens map to ``unk``
        (or raise :class:`CorpusError` listing them when there is no ``unk``)."""
        if self.unk_token is None:
            missing = self.unknown(text_or_tokens)
            if missing:
                shown = ", ".join(repr(t) for t in missing[:20])
                more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
                raise CorpusError(f"{len(missing)} token(s) not in the vocabulary: {shown}{more}; "
                                  f"build the vocabulary with unk='<unk>' or from this text")
        if isinstance(text_or_tokens, str) and self.mode == "char":
            return self._encode_chars(text_or_tokens)
        tokens = self._split(text_or_tokens)
        get, unk = self.token_to_idx.get, self.unk
        return np.fromiter((get(t, unk) for t in tokens), dtype=np.int32, count=len(tokens))

    def _encode_chars(self, text: str) -> np.ndarray:
        # Vectorised: code points -> distinct values -> ids.
        if not text:
            return np.zeros(0, dtype=np.int32)
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        distinct, inverse = np.unique(codes, return_inverse=True)
        get, unk = self.token_to_idx.get, self.unk
        table = np.array([get(chr(c), unk) for c in distinct.tolist()], dtype=np.int32)
        return table[inverse.reshape(-1)]

    def _check_ids(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            if not np.all(np.equal(np.mod(ids, 1), 0)):
                raise CorpusError(f"token ids must be integers, got dtype {ids.dtype}")
        ids = ids.astype(np.int64).reshape(-1)
        bad = ids[(ids < 0) | (ids >= len(self))]
        if bad.size:
            raise CorpusError(f"token id {int(bad[0])} is outside the vocabulary "
                              f"[0, {len(self) - 1}]")
        return ids

    def decode(self, ids) -> str:
        """Text of a 1-D sequence of ids: characters joined directly, words by one space."""
        tokens = [self.idx_to_token[i] for i in self._check_ids(ids).tolist()]
        return "".join(tokens) if self.mode == "char" else " ".join(tokens)

    # -- persistence -----------------------------------------------------------------------

    def to_json(self) -> dict:
        """A JSON-serialisable dict holding everything needed to rebuild the vocabulary."""
        return {
            "format": _FORMAT, "version": 1, "mode": self.mode, "order": self.order,
            "unk": self.unk_token, "pad": self.pad_token,
            "reserved_tokens": list(self.reserved_tokens), "min_freq": self.min_freq,
            "idx_to_token": list(self.idx_to_token),
            "token_freqs": [[t, int(c)] for t, c in self.token_freqs],
        }

    @classmethod
    def from_json(cls, d: dict) -> Vocab:
        """Rebuild a vocabulary from :meth:`to_json`'s dict."""
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise CorpusError(f"not a scanrnn vocabulary (expected a dict with format "
                              f"{_FORMAT!r}); was it written by Vocab.to_json / Vocab.save?")
        try:
            vocab = cls.__new__(cls)
            vocab.mode = _check_mode(d["mode"])
            vocab.order = d.get("order", "frequency")
            vocab.unk_token = d["unk"]
            vocab.pad_token = d["pad"]
            vocab.reserved_tokens = list(d.get("reserved_tokens", []))
            vocab.min_freq = int(d.get("min_freq", 0))
            vocab.token_freqs = [(t, int(c)) for t, c in d.get("token_freqs", [])]
            tokens = list(d["idx_to_token"])
            vocab._build(tokens)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorpusError(f"malformed vocabulary JSON: {exc!r}") from exc
        if len(vocab) != len(tokens):
            raise CorpusError("malformed vocabulary JSON: idx_to_token has duplicate tokens")
        for special in (vocab.unk_token, vocab.pad_token):
            if special is not None and special not in vocab.token_to_idx:
                raise CorpusError(f"malformed vocabulary JSON: special token {special!r} is not "
                                  f"in idx_to_token")
        if vocab.pad_token is not None and vocab.token_to_idx[vocab.pad_token] != 0:
            raise CorpusError("malformed vocabulary JSON: the padding token must be at index 0")
        return vocab

    def save(self, path: str | os.PathLike) -> Path:
        """Write the vocabulary as JSON (atomically: temp file then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.to_json(), f, ensure_ascii=False)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CorpusError(f"no vocabulary file at {path.absolute()}") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorpusError(f"cannot read the vocabulary {path}: {exc}") from exc
        return cls.from_json(d)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return (self.idx_to_token == other.idx_to_token and self.mode == other.mode
                and self.unk_token == other.unk_token and self.pad_token == other.pad_token)

    __hash__ = None  # mutable-looking container: not hashable

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.idx_to_token[:8])
        more = ", ..." if len(self) > 8 else ""
        return f"Vocab({len(self)} {self.mode} tokens: [{head}{more}])"


def d2l_corpus(name_or_path: str | os.PathLike = "timemachine", token: str = "char",
               max_tokens: int = -1, **kw) -> tuple[np.ndarray, Vocab]:
    """d2l's ``load_corpus_time_machine``: (ids int32 ``(n,)``, vocab) of a preprocessed corpus.

    The vocabulary is built on the whole text, then ids are truncated to ``max_tokens`` when
    positive (d2l's order). ``kw`` goes to :func:`~scanrnn.data.corpora.resolve_corpus`.
    """
    lines = d2l_lines(load_corpus(name_or_path, **kw))
    tokens = tokenize(lines, token)
    vocab = Vocab(tokens, mode=token)
    ids = vocab.encode(tokens)
    if max_tokens > 0:
        ids = ids[:max_tokens]
    return ids, vocab


PREPROCESSINGS = ("none", "d2l")


def text_tokens(text: str, preprocess: str = "none", tokens: str = "char") -> list[str]:
    """``text`` as a language model reads it: d2l's preprocessing line by line when
    ``preprocess="d2l"`` (letters and spaces, lowercased), then characters or words."""
    if preprocess not in PREPROCESSINGS:
        raise ValueError(f"preprocess must be 'none' or 'd2l', got {preprocess!r}")
    return tokenize(d2l_lines(text) if preprocess == "d2l" else text, tokens)
