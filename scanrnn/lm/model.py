"""A character (or word) language model built from the core cells and loop.

``ids (T, B) -> [embedding | one-hot] -> cell_1 -> dropout -> cell_2 ... -> dropout
-> dense -> logits (T, B, V)``.  Graphs are time-major; every array is float32.

Parameters are named float32 shared variables in the canonical layouts of
:mod:`scanrnn.cells` (``"embed.W"`` (V, E), ``"lstm_1.W_x"`` (I, 4H), ``"lstm_1.W_h"``
(H, 4H), ``"lstm_1.b"`` (4H), ..., ``"out.W"`` (H, V), ``"out.b"`` (V)), so weights move
between backends and between training, evaluation and sampling graphs.

Dropout masks come from the in-graph counter RNG of :mod:`scanrnn.random`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytensor
import pytensor.tensor as pt

from .. import init as initializers
from .._config import floatx
from ..cells import make_cell
from ..contract import dot_last, take_rows
from ..parallel import to_host
from ..random import advanced, dropout, stream_key
from ..recurrent import unroll
from .config import LMConfig

__all__ = ["CharLM"]


class CharLM:
    """Embedding (or one-hot) -> stacked recurrent cells -> dense, with dropout.

    Parameters
    ----------
    config : LMConfig, optional
        The architecture; keyword arguments build one (``CharLM(vocab_size=28)``).

    Attributes
    ----------
    params : list of SharedVariable
        The trainable float32 parameters, in a fixed order.
    cells : list of scanrnn.cells.Cell
        One cell per layer, named ``"<kind>_<i>"`` (``"lstm_1"``, ...).
    rng : SharedVariable
        ``uint32`` ``[seed, counter]`` of the dropout stream (not a parameter).
    """

    def __init__(self, config: LMConfig | None = None, **kwargs):
        if config is None:
            config = LMConfig(**kwargs)
        elif kwargs:
            config = dataclasses.replace(config, **kwargs)
        self.config = config
        c = config
        gen = np.random.default_rng(c.seed)
        weights: dict[str, np.ndarray] = {}
        if c.embed:
            weights["embed.W"] = self._init_matrix((c.vocab_size, c.embed), gen, "standard_normal")
        self.cells = []
        size_in = c.embed or c.vocab_size
        for i in range(c.layers):
            kind = c.cell
            cell = make_cell(kind, size_in, c.hidden)
            cell.name = f"{cell.kind}_{i + 1}"
            arrays = cell.init_arrays(gen)
            if c.init == "normal":
                for key, value in arrays.items():
                    arrays[key] = (gen.normal(0.0, c.init_scale, size=value.shape)
                                   if value.ndim == 2 else np.zeros_like(value))
            for key, value in arrays.items():
                weights[f"{cell.name}.{key}"] = value
            self.cells.append(cell)
            size_in = c.hidden
        weights["out.W"] = self._init_matrix((c.hidden, c.vocab_size), gen, "glorot_uniform")
        if c.output_bias:
            weights["out.b"] = np.zeros(c.vocab_size)
        self.params = [initializers.shared(v, name=k) for k, v in weights.items()]
        self._by_name = {p.name: p for p in self.params}
        self.rng = pytensor.shared(np.array([c.seed, 0], dtype=np.uint32), name="dropout_rng")

    def _init_matrix(self, shape, gen, default):
        if self.config.init == "normal":
            return gen.normal(0.0, self.config.init_scale, size=shape)
        return initializers.get(default)(shape, gen)

    # -- description --------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    def n_params(self) -> int:
        """Number of scalar parameters."""
        return int(sum(np.prod(p.get_value(borrow=True).shape) for p in self.params))

    def summary(self) -> str:
        """One line per parameter: name, shape, count."""
        c = self.config
        lines = [(f"CharLM({c.cell} x{c.layers}, hidden {c.hidden}, "
                  f"embed {c.embed or 'one-hot'}, vocab {self.vocab_size})")]
        for p in self.params:
            shape = tuple(np.shape(p.get_value(borrow=True)))
            lines.append(f"  {p.name:<16} {shape!s:<14} {int(np.prod(shape)):>10,}")
        lines.append(f"  {'total':<31}{self.n_params():>10,}")
        return "\n".join(lines)

    def __repr__(self):
        return f"<CharLM {self.config.to_dict()} params={self.n_params():,}>"

    # -- weights ------------------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """``{name: float32 numpy array}`` (copies), in :attr:`params` order (gathered to
        the host when data-parallel training keeps them on a device mesh)."""
        return {p.name: np.array(to_host(p.get_value(borrow=True)), dtype=np.float32)
                for p in self.params}

    def set_weights(self, weights: dict) -> None:
        """Set every parameter from ``{name: array}``; names and shapes must match exactly."""
        if not isinstance(weights, dict):
            raise TypeError(f"set_weights expects a dict name -> array, "
                            f"got {type(weights).__name__}")
        missing = [n for n in self.param_names if n not in weights]
        extra = sorted(set(weights) - set(self.param_names))
        problems = []
        if missing:
            problems.append(f"missing: {', '.join(missing)}")
        if extra:
            problems.append(f"unexpected: {', '.join(extra)}")
        for p in self.params:
            if p.name in weights:
                want = tuple(np.shape(p.get_value(borrow=True)))
                got = tuple(np.shape(weights[p.name]))
                if want != got:
                    problems.append(f"{p.name}: shape {got}, model has {want}")
        if problems:
            raise ValueError("weights do not fit this model (" + self._brief() + "): "
                             + "; ".join(problems))
        for p in self.params:
            value = np.asarray(weights[p.name], dtype=np.float32)
            if not np.all(np.isfinite(value)):
                raise ValueError(f"weight {p.name} contains NaN or inf")
            p.set_value(value.copy())

    def _brief(self):
        c = self.config
        return f"{c.cell} x{c.layers}, hidden {c.hidden}, embed {c.embed}, vocab {c.vocab_size}"

    def reseed(self, seed: int, counter: int = 0) -> None:
        """Restart the dropout stream (no recompilation needed)."""
        self.rng.set_value(np.array([seed, counter], dtype=np.uint32))

    def rng_updates(self) -> dict:
        """``{model.rng: [seed, counter + 1]}``: merge into a training function's updates."""
        return {self.rng: advanced(self.rng)}

    # -- states -------------------------------------------------------------------------
    @property
    def n_states(self) -> int:
        """Number of ``(B, H)`` state matrices (all layers; LSTM has ``h`` and ``c``)."""
        return sum(cell.n_states for cell in self.cells)

    @property
    def state_names(self) -> list[str]:
        names = []
        for cell in self.cells:
            names += [f"{cell.name}.{s}" for s in (("h", "c") if cell.n_states == 2 else ("h",))]
        return names

    def initial_states(self, batch_size) -> list:
        """Symbolic zero states, one ``(B, H)`` float32 matrix per entry of :attr:`state_names`."""
        return [pt.zeros((batch_size, self.config.hidden), dtype=floatx())
                for _ in range(self.n_states)]

    def zero_states(self, batch_size: int) -> list[np.ndarray]:
        """Numpy zero states (float32), as :meth:`initial_states`."""
        return [np.zeros((batch_size, self.config.hidden), dtype=np.float32)
                for _ in range(self.n_states)]

    # -- graph pieces -------------------------------------------------------------------
    def layer_params(self, weights: dict | None = None, fold_embedding: bool = True) -> list:
        """Per-layer ``{short name: variable}`` dicts for the cells.

        With an embedding and ``fold_embedding``, layer 1's ``W_x`` is replaced by
        ``embed.W @ W_x`` (V, G*H): selecting its rows by id equals embedding then
        projecting, at a fraction of the cost (no dropout on the embedding then).
        """
        weights = self._by_name if weights is None else weights
        out = []
        for i, cell in enumerate(self.cells):
            p = {key: weights[f"{cell.name}.{key}"] for key in cell.param_shapes()}
            if i == 0 and self.config.embed and fold_embedding:
                p["W_x"] = pt.dot(weights["embed.W"], p["W_x"])
            out.append(p)
        return out

    def _split_states(self, states):
        states = list(states)
        if len(states) != self.n_states:
            raise ValueError(f"expected {self.n_states} state matrices "
                             f"({', '.join(self.state_names)}), got {len(states)}")
        out, start = [], 0
        for cell in self.cells:
            out.append(states[start:start + cell.n_states])
            start += cell.n_states
        return out

    def _project_out(self, h, weights):
        z = dot_last(h, weights["out.W"])
        return z + weights["out.b"] if self.config.output_bias else z

    def logits(self, x, initial_states=None, training: bool = False, rng=None,
               name: str | None = None, mask=None):
        """Symbolic forward pass over a time-major batch of ids.

        Parameters
        ----------
        x : TensorVariable
            ``(T, B)`` integer token ids.
        initial_states : list, optional
            One ``(B, H)`` matrix per :attr:`state_names` entry; zeros when omitted.
        training : bool
            Apply dropout (drawn from ``rng``, default :attr:`rng`; add
            :meth:`rng_updates` to the compiled function's updates to advance it).
        rng : TensorVariable, optional
            ``uint32 [seed, counter]`` used instead of :attr:`rng`.
        mask : TensorVariable, optional
            ``(T, B)`` float32, 0 at padded steps: they keep the previous state.

        Returns
        -------
        logits, final_states
            ``(T, B, V)`` float32 and a list of ``(B, H)`` final states (feed them back as
            ``initial_states`` to carry state across batches).
        """
        x = pt.as_tensor_variable(x)
        if x.ndim != 2 or not x.dtype.startswith(("int", "uint")):
            raise ValueError(f"x must be (T, B) integer token ids, got ndim={x.ndim}, "
                             f"dtype={x.dtype}")
        c = self.config
        if initial_states is None:
            initial_states = self.initial_states(x.shape[1])
        per_layer = self._split_states(initial_states)
        rng = self.rng if rng is None else rng
        T, B = x.shape[0], x.shape[1]

        def drop(h, rate, site):
            if not training or rate <= 0:
                return h
            return dropout(h, rate, stream_key(rng, site), shape=(T, B, h.shape[-1]))

        fold = not (training and c.embed_dropout > 0)
        params = self.layer_params(fold_embedding=fold)
        if training and c.weight_drop > 0:   # sites after the activations' 0..layers
            for i, p in enumerate(params):
                p["W_h"] = dropout(p["W_h"], c.weight_drop, stream_key(rng, c.layers + 1 + i))
        if c.embed and not fold:
            h = drop(take_rows(self._by_name["embed.W"], x), c.embed_dropout, 0)
        else:
            h = x
        finals = []
        for i, (cell, p, states) in enumerate(zip(self.cells, params, per_layer)):
            if i > 0:
                h = drop(h, c.dropout, i)
            h, fin = unroll(cell, h, p, states, mask=mask, name=f"{name or 'lm'}.{cell.name}")
            finals += list(fin)
        h = drop(h, c.dropout, c.layers)
        return self._project_out(h, self._by_name), finals

    # -- one step (for sampling scans) --------------------------------------------------
    def step_weights(self) -> dict:
        """The variables one step needs, as ``{key: variable}`` (embedding folded).

        Pass ``list(values())`` as a scan's ``non_sequences`` and rebuild the dict inside
        the step with the same keys, then call :meth:`step`.
        """
        out = {}
        for cell, p in zip(self.cells, self.layer_params()):
            for key, var in p.items():
                out[f"{cell.name}.{key}"] = var
        out["out.W"] = self._by_name["out.W"]
        if self.config.output_bias:
            out["out.b"] = self._by_name["out.b"]
        return out

    def step(self, x_t, states, weights: dict | None = None):
        """One time step: ids ``(B,)`` and states -> ``(logits (B, V), new states)``.

        ``weights`` is :meth:`step_weights`' dict (or its scan-inner copy); no dropout.
        """
        weights = self.step_weights() if weights is None else weights
        h = x_t
        new_states = []
        for cell, states_l in zip(self.cells, self._split_states(states)):
            p = {key: weights[f"{cell.name}.{key}"] for key in cell.param_shapes()}
            xp = cell.project(h, p)
            result = cell.step(xp, *states_l, *cell.recurrent_params(p))
            result = list(result) if isinstance(result, (list, tuple)) else [result]
            new_states += result
            h = cell.output(result)
        return self._project_out(h, weights), new_states
