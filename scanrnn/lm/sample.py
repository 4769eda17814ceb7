"""Text generation: prefix warm-up and a whole continuation in ONE compiled call.

The compiled graph runs the model over the (left-padded) prefix to get its state, then a
sampling :func:`scanrnn.scan` of ``length`` steps: each step scales the logits by
``1 / temperature``, keeps the ``top_k`` largest, draws the next id by the Gumbel-max
trick (``argmax(z + g)``, ``g = -log(-log(u))``) and feeds it back.  Greedy decoding
(d2l's ``predict_rnn``) is the same graph with the noise switched off.

The random draws are the counter-based hash of :mod:`scanrnn.random` keyed by ``seed``,
an explicit input of the compiled function: a new seed needs no recompilation (the JAX
backend would otherwise freeze a copy of a shared generator inside each compiled
function), and the same seed gives the same text on the same backend.

JAX needs a constant number of steps, so one function is compiled per ``length`` (and
per batch size ``num``), cached on the model; prefixes are left-padded to a multiple of 16
and masked, so a new prefix length rarely triggers a new compilation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytensor.tensor as pt

from .._config import floatx
from ..compile import function, resolve_backend
from ..random import stream_key, uniform_hash
from ..recurrent import scan
from .config import MAX_LENGTH, TEMPERATURE_RANGE, check_length, check_temperature  # noqa: F401
from .model import CharLM

__all__ = ["Sampler", "encode_prefix", "generate"]

PREFIX_BUCKET = 16


def encode_prefix(vocab, prefix) -> np.ndarray:
    if prefix is None or len(prefix) == 0:
        raise ValueError("prefix must contain at least one token (the sampler warms up on it)")
    if vocab is None:
        ids = np.asarray(prefix)
        if not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 1:
            raise ValueError("without a vocabulary the prefix must be a 1-D sequence of int ids")
        return ids.astype(np.int32)
    missing = vocab.unknown(prefix)
    if missing:
        shown = ", ".join(repr(t) for t in missing[:20])
        hint = ""
        cased = [t for t in missing if isinstance(t, str) and t.lower() != t
                 and t.lower() in vocab]
        tokens = getattr(vocab, "idx_to_token", [])
        if cased and not any(t.lower() != t for t in tokens):
            hint = " (this vocabulary is lowercase: lowercase the prefix)"
        elif cased:
            shown_lower = ", ".join(repr(t.lower()) for t in cased[:5])
            hint = f" ({shown_lower} {'is' if len(cased) == 1 else 'are'} in it)"
        raise ValueError(f"prefix {prefix!r} has token(s) outside the vocabulary: "
                         f"{shown}{hint}; the vocabulary has {len(vocab)} tokens")
    return np.asarray(vocab.encode(prefix), dtype=np.int32)


class Sampler:
    """Compiled sampling for one model; call :meth:`sample` or :meth:`sample_ids`.

    Parameters
    ----------
    model : CharLM
    vocab : scanrnn.data.Vocab, optional
        Maps text to ids and back; without it use :meth:`sample_ids`.
    backend : str
        ``"auto"``, ``"jax"``, ``"numba"``, ``"c"`` or ``"python"``.
    allow_special : bool
        Let the sampler produce the vocabulary's ``<unk>`` / padding tokens (by default
        their logits are set to -inf: they are not text).
    """

    def __init__(self, model: CharLM, vocab=None, backend: str = "auto",
                 allow_special: bool = False):
        if not isinstance(model, CharLM):
            raise TypeError(f"Sampler needs a CharLM, got {type(model).__name__}")
        if vocab is not None and len(vocab) != model.vocab_size:
            raise ValueError(f"vocabulary has {len(vocab)} tokens but the model was built for "
                             f"vocab_size={model.vocab_size}")
        self.model = model
        self.vocab = vocab
        self.backend = resolve_backend(backend)
        self.excluded = [] if vocab is None or allow_special else sorted(
            {i for i in (getattr(vocab, "unk", None), getattr(vocab, "pad", None))
             if i is not None})
        # compiled functions live on the model, shared by every Sampler of it
        self._functions = model.__dict__.setdefault("_sample_functions", {})

    # -- graph --------------------------------------------------------------------------
    def _build(self, length: int, num: int):
        model = self.model
        V = model.vocab_size
        prefix = pt.tensor("prefix", shape=(None, num), dtype="int32")      # (P, N), left-padded
        mask = pt.tensor("prefix_mask", shape=(None, num), dtype=floatx())  # 1 = real token
        seed = pt.scalar("seed", dtype="uint32")
        temperature = pt.scalar("temperature", dtype=floatx())
        top_k = pt.scalar("top_k", dtype="int32")
        noise = pt.scalar("noise", dtype=floatx())                          # 0 = greedy

        # Warm-up over the prefix: padded steps keep the zero state.
        prefix_logits, finals = model.logits(prefix, mask=mask, name="warmup")
        first_logits = prefix_logits[-1]

        weights = model.step_weights()
        keys = list(weights)
        n_states = model.n_states
        banned = np.zeros(V, np.float32)
        banned[self.excluded] = -1e30
        banned = pt.constant(banned, name="excluded_tokens")

        def sample_step(i, logits_prev, *rest):
            states_prev = rest[:n_states]
            inner = dict(zip(keys, rest[n_states:n_states + len(keys)]))
            seed_, temp_, k_, noise_ = rest[n_states + len(keys):]
            z = logits_prev / temp_ + banned
            kth = pt.sort(z, axis=-1)[:, V - k_]
            z = pt.switch(z >= kth[:, None], z, np.float32(-1e30))
            u = uniform_hash(stream_key(pt.stack([seed_, i]), 7), (num, V))
            gumbel = -pt.log(-pt.log(u))
            token = pt.argmax(z + noise_ * gumbel, axis=-1).astype("int32")
            logits_next, states_next = model.step(token, states_prev, inner)
            return [token, logits_next, *states_next]

        steps = pt.arange(length, dtype="uint32")
        result = scan(sample_step, sequences=[steps],
                      outputs_info=[None, first_logits, *finals],
                      non_sequences=[*weights.values(), seed, temperature, top_k, noise],
                      n_steps=length, name="sample")
        tokens = result[0]                                                  # (length, N)
        return function([prefix, mask, seed, temperature, top_k, noise], tokens,
                        backend=self.backend, name=f"sample_{length}x{num}")

    def compiled(self, length: int, num: int = 1):
        """The compiled sampling function for ``length`` steps and ``num`` samples."""
        key = (self.backend, tuple(self.excluded), int(length), int(num))
        if key not in self._functions:
            self._functions[key] = self._build(int(length), int(num))
        return self._functions[key]

    # -- sampling -----------------------------------------------------------------------
    def sample_ids(self, prefix_ids, length: int = 100, temperature: float = 1.0,
                   top_k: int | None = None, greedy: bool = False, seed: int | None = None,
                   num: int = 1) -> np.ndarray:
        """Continuations of a 1-D id prefix: int32 array ``(num, length)`` (prefix excluded)."""
        V = self.model.vocab_size
        check_length(length)
        if isinstance(num, bool) or int(num) != num or num < 1:
            raise ValueError(f"num must be a positive integer, got {num!r}")
        if not greedy:
            check_temperature(temperature)
        if top_k is None:
            top_k = V
        if isinstance(top_k, bool) or int(top_k) != top_k or not 1 <= top_k <= V:
            raise ValueError(f"top_k must be an integer in [1, {V}] (the vocabulary size) or "
                             f"None, got {top_k!r}")
        ids = np.asarray(prefix_ids, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            raise ValueError("prefix must contain at least one token")
        if ids.min() < 0 or ids.max() >= V:
            raise ValueError(f"prefix ids must lie in [0, {V - 1}]")
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 2 ** 32))
        if isinstance(seed, bool) or int(seed) != seed or not 0 <= seed < 2 ** 32:
            raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
        P = -(-ids.size // PREFIX_BUCKET) * PREFIX_BUCKET
        padded = np.zeros((P, num), dtype=np.int32)
        padded[P - ids.size:] = ids[:, None]
        mask = np.zeros((P, num), dtype=np.float32)
        mask[P - ids.size:] = 1.0
        if top_k > V - len(self.excluded):
            top_k = V
        fn = self.compiled(int(length), int(num))
        with warnings.catch_warnings():   # JAX: argmax's int64 computed as int32 (harmless)
            warnings.filterwarnings("ignore", message=".*requested dtype int64.*")
            tokens = fn(padded, mask, np.uint32(seed),
                        np.float32(1.0 if greedy else temperature), np.int32(top_k),
                        np.float32(0.0 if greedy else 1.0))
        return np.asarray(tokens, dtype=np.int32).T

    def sample(self, prefix, length: int = 100, temperature: float = 1.0,
               top_k: int | None = None, greedy: bool = False, seed: int | None = None,
               num: int = 1, include_prefix: bool = True) -> list[str]:
        """``num`` texts: ``prefix`` followed by ``length`` generated tokens."""
        if self.vocab is None:
            raise ValueError("Sampler.sample needs a vocabulary; use sample_ids for raw ids")
        ids = encode_prefix(self.vocab, prefix)
        out = self.sample_ids(ids, length, temperature, top_k, greedy, seed, num)
        sep = " " if getattr(self.vocab, "mode", "char") == "word" else ""
        texts = [self.vocab.decode(row) for row in out]
        return [prefix + sep + t if include_prefix else t for t in texts]


def generate(model: CharLM, vocab, prefix, length: int = 100, temperature: float = 1.0,
             top_k: int | None = None, greedy: bool = False, seed: int | None = None,
             num: int = 1, backend: str = "auto") -> list[str]:
    """Generate ``num`` continuations of ``prefix`` (returned with the prefix).

    ``greedy=True`` picks the most likely token at each step (d2l's ``predict_rnn``);
    otherwise tokens are sampled from ``softmax(logits / temperature)`` restricted to the
    ``top_k`` most likely.  The same ``seed`` gives the same text on the same backend.
    The compiled function is cached on the model (one per backend, length and ``num``).
    """
    sampler = Sampler(model, vocab, backend)
    return sampler.sample(prefix, length, temperature, top_k, greedy, seed, num)
