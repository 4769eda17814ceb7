"""Cutting a token-id sequence into training batches, as the seeds do.

Every batch is a pair ``(X, Y)`` of int32 arrays in **batch-major** layout ``(batch_size,
seq_len)`` like d2l; ``Y`` is ``X`` shifted by one token. The recurrent core is time-major:
consumers transpose (``X.T``). The batch iterators return :class:`Batches`, which has a length
and holds the whole epoch as two stacked arrays ``(num_batches, batch_size, seq_len)``.

* :func:`random_batches` - d2l ``seq_data_iter_random``: random offset in ``[0, seq_len - 1]``,
  non-overlapping subsequences, shuffled; batches are independent (reset the state).
* :func:`sequential_batches` - d2l ``seq_data_iter_sequential``: random offset in
  ``[0, seq_len]``, the text cut into ``batch_size`` rows, consecutive windows: row ``i`` of
  batch ``k + 1`` continues row ``i`` of batch ``k`` (carry the state).
* :func:`batch_rows` - the MXNet seed's layout: sequences of ``seq_len`` from the start of the
  text, dealt into ``batch_size`` rows of ``len // seq_len // batch_size`` sequences each.
* :func:`windows` and :func:`char_ngrams` - fixed windows for the fast.ai models.

``flavor="d2l"`` (default) follows d2l (seed 003); ``flavor="gluonbook"`` follows the
``gluonbook`` helpers seed 002 calls (``gb.data_iter_random``, ``gb.data_iter_consecutive``).

Randomness: ``rng`` is ``None`` (fresh, unseeded), an int seed, a ``numpy.random.Generator``,
or a ``random.Random``; with a ``random.Random`` the draws are the seeds' own calls
(``randint`` / ``uniform``, ``shuffle``), so ``random.Random(s)`` reproduces a seed run after
``random.seed(s)``.
"""

from __future__ import annotations

import random as _random
from collections.abc import Iterator

import numpy as np

from .corpora import CorpusError

__all__ = [
    "Batches", "batch_rows", "char_ngrams", "num_batches", "random_batches",
    "sequential_batches", "tokens_needed", "train_val_split", "windows",
]

_MODES = ("random", "sequential", "rows")
_FLAVORS = ("d2l", "gluonbook")


class Batches:
    """One epoch of batches: iterate for ``(X, Y)`` pairs, each int32 ``(batch_size, seq_len)``.

    Attributes
    ----------
    X, Y : int32 arrays ``(num_batches, batch_size, seq_len)``; ``Y[k]`` is ``X[k]`` shifted
        by one token in the text.
    offset : the offset into the text this epoch started at.
    """

    def __init__(self, X: np.ndarray, Y: np.ndarray, offset: int = 0):
        self.X, self.Y, self.offset = X, Y, int(offset)

    def __len__(self) -> int:
        return self.X.shape[0]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for k in range(len(self)):
            yield self.X[k], self.Y[k]

    @property
    def shape(self) -> tuple[int, int]:
        """``(batch_size, seq_len)`` of every batch."""
        return self.X.shape[1], self.X.shape[2]

    @property
    def num_tokens(self) -> int:
        """Number of input tokens in the epoch."""
        return int(self.X.size)

    def __repr__(self) -> str:
        b, t = self.shape
        return f"Batches({len(self)} batches of ({b}, {t}), offset {self.offset})"


# ---------------------------------------------------------------------------------------------
# checks


def _as_ids(ids) -> np.ndarray:
    if isinstance(ids, (str, bytes)):
        raise TypeError("batching needs token ids, not text: encode it first "
                        "(Vocab.encode(text))")
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"token ids must be a 1-D sequence, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"token ids must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int32, copy=False)


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _as_rng(rng):
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (np.random.Generator, _random.Random)):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed, a numpy Generator or a random.Random, got "
                    f"{type(rng).__name__}")


def _draw_offset(rng, seq_len: int, mode: str, flavor: str) -> int:
    """The random offset, drawn with the seed's own call when ``rng`` is a ``random.Random``."""
    high = _max_offset(seq_len, mode, flavor)
    if isinstance(rng, _random.Random):
        if flavor == "gluonbook":
            return int(rng.uniform(0, seq_len))
        return rng.randint(0, high)
    return int(rng.integers(0, high + 1))


def _check_mode(mode: str, flavor: str = "d2l") -> None:
    if mode not in _MODES:
        raise ValueError(f"unknown batching mode {mode!r}; use one of {', '.join(_MODES)}")
    if flavor not in _FLAVORS:
        raise ValueError(f"unknown flavor {flavor!r}; use one of {', '.join(_FLAVORS)}")


def _max_offset(seq_len: int, mode: str, flavor: str) -> int:
    if mode == "rows":
        return 0
    return seq_len if (mode, flavor) == ("sequential", "d2l") else seq_len - 1


def _needed(b: int, t: int, mode: str, flavor: str, offset: int) -> int:
    """Fewest tokens giving one batch at this offset (inverse of :func:`num_batches`)."""
    if mode == "rows":
        return b * t + 1
    if flavor == "gluonbook":
        return ((b + 1) * t + 1 if mode == "random" else b * (t + 1)) + offset
    return b * t + 1 + offset


def tokens_needed(batch_size: int, seq_len: int, mode: str = "sequential",
                  flavor: str = "d2l") -> int:
    """The fewest tokens that give at least one batch whatever the random offset.

    d2l: ``B*T + 1`` plus the largest offset (``T - 1`` for ``random``, ``T`` for
    ``sequential``); ``rows``: ``B*T + 1``; gluonbook: ``(B+1)*T + T`` (random) and
    ``B*(T+1) + T - 1`` (sequential).
    """
    b, t = _positive("batch_size", batch_size), _positive("seq_len", seq_len)
    _check_mode(mode, flavor)
    return _needed(b, t, mode, flavor, _max_offset(t, mode, flavor))


def _require(n_tokens: int, b: int, t: int, mode: str, flavor: str,
             offset: int | None) -> None:
    off = _max_offset(t, mode, flavor) if offset is None else offset
    needed = _needed(b, t, mode, flavor, off)
    if n_tokens < needed:
        parts = ["1 for the targets"]
        if off:
            parts.append(f"{'up to ' if offset is None else ''}{off} for the offset")
        if flavor == "gluonbook" and mode != "rows":
            parts.append("the gluonbook layout's spare subsequence or column")
        raise CorpusError(
            f"the text has {n_tokens:,} tokens, fewer than the {needed:,} needed for one {mode} "
            f"batch: batch_size * seq_len = {b} * {t} = {b * t:,}, plus {', '.join(parts)}. "
            f"Use a longer text or a smaller batch_size or seq_len.")


def _check_offset(offset, seq_len: int, high: int) -> int:
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) \
            or not 0 <= offset <= high:
        raise ValueError(f"offset must be an integer in [0, {high}] for seq_len={seq_len}, "
                         f"got {offset!r}")
    return int(offset)


def num_batches(n_tokens: int, batch_size: int, seq_len: int, mode: str = "sequential",
                offset: int = 0, flavor: str = "d2l") -> int:
    """Number of batches in one epoch of ``n_tokens`` tokens for a given offset."""
    b, t = _positive("batch_size", batch_size), _positive("seq_len", seq_len)
    _check_mode(mode, flavor)
    n = int(n_tokens)
    if mode == "rows":
        return max(n - 1, 0) // t // b
    if flavor == "gluonbook":
        if mode == "random":
            return max((n - offset - 1) // t - 1, 0) // b
        return max((n - offset) // b - 1, 0) // t
    if mode == "random":
        return max(n - offset - 1, 0) // t // b
    return (max(n - offset - 1, 0) // b) // t


# ---------------------------------------------------------------------------------------------
# the seeds' batch layouts


def random_batches(ids, batch_size: int, seq_len: int, rng=None,
                   offset: int | None = None, flavor: str = "d2l") -> Batches:
    """d2l ``seq_data_iter_random``: shuffled, non-overlapping subsequences.

    From a random ``offset`` in ``[0, seq_len - 1]`` (or the given one) the text is cut into
    ``(len - offset - 1) // seq_len`` subsequences whose start positions are shuffled and
    dealt ``batch_size`` at a time; leftovers are dropped. ``flavor="gluonbook"`` is seed 002's
    ``gb.data_iter_random``: the same with one subsequence fewer. Returns :class:`Batches` of
    int32 ``(batch_size, seq_len)`` pairs.
    """
    ids = _as_ids(ids)
    b, t = _positive("batch_size", batch_size), _positive("seq_len", seq_len)
    _check_mode("random", flavor)
    rng = _as_rng(rng)
    if offset is not None:
        offset = _check_offset(offset, t, _max_offset(t, "random", flavor))
    _require(len(ids), b, t, "random", flavor, offset)
    if offset is None:
        offset = _draw_offset(rng, t, "random", flavor)
    num_subseqs = (len(ids) - offset - 1) // t - (1 if flavor == "gluonbook" else 0)
    if isinstance(rng, _random.Random):
        starts_list = list(range(0, num_subseqs * t, t))
        rng.shuffle(starts_list)
        starts = np.asarray(starts_list, dtype=np.int64)
    else:
        starts = rng.permutation(np.arange(0, num_subseqs * t, t, dtype=np.int64))
    n_batches = num_subseqs // b
    starts = offset + starts[: n_batches * b].reshape(n_batches, b, 1)
    steps = np.arange(t)
    return Batches(ids[starts + steps], ids[starts + 1 + steps], offset)


def sequential_batches(ids, batch_size: int, seq_len: int, rng=None,
                       offset: int | None = None, flavor: str = "d2l") -> Batches:
    """d2l ``seq_data_iter_sequential``: consecutive windows over ``batch_size`` rows.

    From a random ``offset`` in ``[0, seq_len]`` (or the given one) the text is cut into
    ``batch_size`` equal rows of ``(len - offset - 1) // batch_size`` tokens; batch ``k`` is
    columns ``k*T:(k+1)*T`` of the rows, so row ``i`` of batch ``k + 1`` continues row ``i`` of
    batch ``k`` and no token is an input twice in an epoch. ``flavor="gluonbook"`` is seed
    002's ``gb.data_iter_consecutive``: offset in ``[0, seq_len - 1]``, rows of
    ``(len - offset) // batch_size`` tokens holding both inputs and targets (``Y`` is the next
    column of the same row). Returns :class:`Batches`.
    """
    ids = _as_ids(ids)
    b, t = _positive("batch_size", batch_size), _positive("seq_len", seq_len)
    _check_mode("sequential", flavor)
    rng = _as_rng(rng)
    if offset is not None:
        offset = _check_offset(offset, t, _max_offset(t, "sequential", flavor))
    _require(len(ids), b, t, "sequential", flavor, offset)
    if offset is None:
        offset = _draw_offset(rng, t, "sequential", flavor)
    if flavor == "gluonbook":
        rows = ids[offset: offset + ((len(ids) - offset) // b) * b].reshape(b, -1)
        xs, ys = rows[:, :-1], rows[:, 1:]
    else:
        num_tokens = ((len(ids) - offset - 1) // b) * b
        xs = ids[offset: offset + num_tokens].reshape(b, -1)
        ys = ids[offset + 1: offset + 1 + num_tokens].reshape(b, -1)
    n_batches = xs.shape[1] // t

    def stack(rows: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(
            rows[:, : n_batches * t].reshape(b, n_batches, t).transpose(1, 0, 2))

    return Batches(stack(xs), stack(ys), offset)


def batch_rows(ids, batch_size: int, seq_len: int) -> Batches:
    """The MXNet seed's layout (no offset, no shuffling).

    The text is cut into ``(len - 1) // seq_len`` sequences of ``seq_len`` tokens; row ``b``
    of the batches gets sequences ``b*S .. b*S + S - 1`` with ``S = that // batch_size``, so batch
    ``s`` row ``b`` is sequence ``b*S + s`` and rows continue across batches. Returns
    :class:`Batches` (the seed's list of ``S`` batches, batch-major).
    """
    ids = _as_ids(ids)
    b, t = _positive("batch_size", batch_size), _positive("seq_len", seq_len)
    _require(len(ids), b, t, "rows", "d2l", 0)
    per_row = (len(ids) - 1) // t // b
    n = b * per_row * t

    def stack(flat: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(flat.reshape(b, per_row, t).transpose(1, 0, 2))

    return Batches(stack(ids[:n]), stack(ids[1: n + 1]), 0)


def windows(ids, size: int, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Fixed windows: ``X[j] = ids[j*step : j*step + size]`` and ``Y[j]`` the same shifted by one.

    Returns ``(X, Y)``, int32 ``(N, size)`` with ``N = (len - size - 1) // step + 1``: every
    window whose targets fit in the text. They are read-only views onto one private copy of
    ``ids`` (``np.array(X)`` for a writable copy).
    """
    ids = _as_ids(ids)
    size, step = _positive("size", size), _positive("step", step)
    if len(ids) < size + 1:
        raise CorpusError(f"the text has {len(ids):,} tokens, fewer than the {size + 1:,} needed "
                          f"for one window of {size} inputs and its shifted targets")
    view = np.lib.stride_tricks.sliding_window_view
    ids = np.array(ids, dtype=np.int32)  # the views' own copy
    return view(ids[:-1], size)[::step], view(ids[1:], size)[::step]


def char_ngrams(ids, n: int, targets: str = "next", drop_last: int = 2
                ) -> tuple[np.ndarray, np.ndarray]:
    """The fast.ai lesson's arrays: ``n`` input characters from every ``n``-th position.

    As the seed builds them: starts ``i`` in ``range(0, len - 1 - n, n)``, the last
    ``drop_last`` (2 in the seed: its ``[:-2]``) dropped; ``X[j, k] = ids[i_j + k]`` (the
    columns are its ``c1 .. cn``). With ``targets="next"`` ``y[j] = ids[i_j + n]`` (shape
    ``(N,)``, the 4-char and n-char models); with ``targets="sequence"`` ``Y[j, k] =
    ids[i_j + 1 + k]`` (shape ``(N, n)``, the ``return_sequences`` models' ``y_rnn``).
    Returns int32 arrays.
    """
    ids = _as_ids(ids)
    n = _positive("n", n)
    if targets not in ("next", "sequence"):
        raise ValueError(f"targets must be 'next' or 'sequence', got {targets!r}")
    if isinstance(drop_last, bool) or not isinstance(drop_last, (int, np.integer)) \
            or drop_last < 0:
        raise ValueError(f"drop_last must be a non-negative integer, got {drop_last!r}")
    starts = np.arange(0, max(len(ids) - 1 - n, 0), n, dtype=np.int64)
    starts = starts[: max(len(starts) - int(drop_last), 0)]
    if len(starts) == 0:
        raise CorpusError(f"the text has {len(ids):,} tokens, too few for one {n}-character "
                          f"example (need at least {n + 2 + n * int(drop_last):,} with "
                          f"drop_last={drop_last})")
    cols = np.arange(n)
    X = ids[starts[:, None] + cols]
    if targets == "next":
        return X, ids[starts + n]
    return X, ids[starts[:, None] + 1 + cols]


def train_val_split(ids, val_fraction: float = 0.1, min_tokens: int = 2):
    """Hold out the LAST ``val_fraction`` of a sequence (token ids, text or a list of
    tokens) for validation: the one train/validation split of scanrnn.

    Returns ``(train, val)`` of the input's type; ``val`` has ``round(len * val_fraction)``
    items (empty when ``val_fraction == 0``). Raises :class:`CorpusError` when either non-empty
    side is shorter than ``min_tokens`` (pass :func:`tokens_needed` to ask for one batch).
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float, np.floating)) \
            or not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be a number in [0, 1), got {val_fraction!r}")
    if not isinstance(ids, (str, list)):
        ids = _as_ids(ids)
    n = len(ids)
    n_val = int(round(n * float(val_fraction)))
    n_train = n - n_val
    for side, count in (("training", n_train), ("validation", n_val)):
        if (side == "training" or val_fraction > 0) and count < min_tokens:
            raise CorpusError(
                f"splitting {n:,} tokens with val_fraction={val_fraction} leaves {count:,} for "
                f"{side}, fewer than the {min_tokens:,} needed; use a longer text, a "
                f"{'smaller' if side == 'training' else 'larger'} val_fraction, or smaller "
                f"batches")
    return ids[:n_train], ids[n_train:]
