"""Models to study without a run directory: ``NAME[:key=value,...]`` specs.

============  ==========================================================================
name          graph (a full training step: loss, gradient, optimizer updates)
============  ==========================================================================
``theano``    the fast.ai seed's "RNN in Theano" (seed 004), written as in the seed:
              one sequence per call (no batch), one-hot ``(T, V)`` input, relu step with
              both products and the softmax *inside* ``step``, summed categorical
              cross-entropy, plain SGD with the learning rate as an input.
              Defaults ``vocab=86, hidden=256, seq=8``.
``d2l``       d2l's RNN from scratch (seeds 002/003): one-hot input, one tanh layer,
              ``N(0, 0.01)`` weights, mean cross-entropy, gradient clipping at 1, SGD with
              lr 1.  Defaults ``vocab=28, hidden=512, seq=35, batch=32``.
``rnn``,      a :class:`scanrnn.lm.CharLM` with that cell (``rnn``/``tanh``/``relu``,
``gru``,      ``gru``, ``lstm``), initial states as inputs and final states as outputs
``lstm``      (state carried across batches), Adam.  Defaults ``vocab=28, hidden=128,
              seq=35, batch=32, layers=1, embed=0`` (one-hot), ``dropout=0``.
============  ==========================================================================

Keys: ``vocab``, ``hidden``, ``seq`` (T), ``batch`` (B), ``layers``, ``embed``,
``dropout``, ``optimizer`` (sgd, momentum, nesterov, adagrad, rmsprop, adam), ``lr``,
``clip`` (global gradient norm; 0 = off), ``init`` (default | normal), ``seed``.
Example: ``"lstm:hidden=64,layers=2,seq=20,batch=16"``, ``"d2l:hidden=8,seq=5,batch=2"``.
"""

from __future__ import annotations

import dataclasses
import inspect as pyinspect
import math
import os
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
from pytensor.tensor.special import softmax

from .. import init, losses
from ..compile import installed_backends
from ..cells import CELL_KINDS
from ..data import tokens_needed
from ..lm.config import LMConfig
from ..lm.model import CharLM
from ..lm.run import build_model, load_run
from ..lm.rundir import RunDir, RunDirError
from ..lm.step import training_step
from ..lm.trainer import Trainer
from ..optim import OPTIMIZERS
from ..recurrent import scan
from .graph_spec import GraphSpec

__all__ = [
    "PRESETS",
    "SPEC_HELP",
    "NotARunDirError",
    "build_spec",
    "lm_training_spec",
    "parse_spec",
    "run_dir_spec",
    "seed_step",
    "spec_from_path_or_model",
    "theano_seed_spec",
    "trainer_spec",
]

LM_DEFAULTS = dict(vocab=28, hidden=128, seq=35, batch=32, layers=1, embed=0, dropout=0.0,
                   optimizer="adam", lr=0.002, clip=1.0, init="default", seed=0)
PRESETS = {
    "theano": dict(vocab=86, hidden=256, seq=8, lr=0.01, seed=0),
    "d2l": dict(LM_DEFAULTS, cell="tanh", hidden=512, optimizer="sgd", lr=1.0, clip=1.0,
                init="normal"),
}
CELL_NAMES = CELL_KINDS
SPEC_HELP = ("model spec NAME[:key=value,...]: NAME is theano (the fast.ai seed's Theano RNN), "
             "d2l (d2l's RNN from scratch) or a cell (rnn, tanh, relu, gru, lstm); keys "
             "vocab, hidden, seq, batch, layers, embed, dropout, optimizer, lr, clip, init, "
             "seed; e.g. 'lstm:hidden=64,seq=20,batch=16' or 'd2l:hidden=8,seq=5,batch=2'")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _count(least: int):
    return lambda v: type(v) is int and v >= least


# key -> (accepts, what): the values `scanrnn train` accepts for the same setting
_RULES = {
    **{key: (_count(1), "a positive integer") for key in ("vocab", "hidden", "seq", "batch",
                                                          "layers")},
    "embed": (_count(0), "an integer >= 0 (0 = one-hot input)"),
    "dropout": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "lr": (lambda v: _finite(v) and v > 0, "a finite number > 0"),
    "clip": (lambda v: _finite(v) and v >= 0, "a finite number >= 0 (0 = no clipping)"),
    "optimizer": (lambda v: v in OPTIMIZERS, "one of " + ", ".join(OPTIMIZERS)),
    "init": (lambda v: v in ("default", "normal"), "default or normal"),
    "cell": (lambda v: v in CELL_KINDS, "one of " + ", ".join(CELL_KINDS)),
    "seed": (lambda v: type(v) is int and 0 <= v < 2 ** 32, "an integer in [0, 2**32)"),
}


_TRAIN_FLAGS = {"seq": "--seq-len", "batch": "--batch-size", "vocab": None}


def _checked(key: str, value, text: str):
    """``value`` if ``scanrnn train`` would accept it for the same setting, else a
    ValueError saying what is wanted."""
    accepts, what = _RULES[key]
    if not accepts(value):
        flag = _TRAIN_FLAGS.get(key, f"--{key}")
        like = f", as `scanrnn train {flag}` takes" if flag else ""
        raise ValueError(f"{key} must be {what}{like}, got {value!r} (in {text!r})")
    return value


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_spec(text: str) -> tuple[str, dict]:
    """``"lstm:hidden=64,seq=20"`` -> ``("lstm", {"hidden": 64, "seq": 20})`` (checked)."""
    name, _, rest = str(text).strip().partition(":")
    name = name.strip().lower()
    if name not in PRESETS and name not in CELL_NAMES:
        raise ValueError(f"unknown model {name!r} in spec {text!r}: choose theano, d2l, "
                         f"{', '.join(CELL_NAMES)}")
    defaults = PRESETS.get(name, LM_DEFAULTS)
    options = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not value.strip():
            raise ValueError(f"spec item {item!r} must be key=value (in {text!r})")
        if key not in defaults:
            raise ValueError(f"unknown key {key!r} for model {name!r}; known: "
                             f"{', '.join(k for k in defaults if k != 'cell')}")
        options[key] = _checked(key, _value(value.strip()), text)
    return name, options


def build_spec(text: str) -> GraphSpec:
    """The :class:`GraphSpec` of a model spec string (see the module docstring)."""
    name, options = parse_spec(text)
    if name == "theano":
        return theano_seed_spec(**{**PRESETS["theano"], **options})
    values = {**PRESETS.get(name, LM_DEFAULTS), **options}
    cell = values.pop("cell", name)
    for key in ("vocab", "hidden", "seq", "batch", "layers"):
        if not isinstance(values[key], int) or values[key] < 1:
            raise ValueError(f"{key} must be a positive integer, got {values[key]!r}")
    model = CharLM(LMConfig(vocab_size=values["vocab"], cell=cell, layers=values["layers"],
                            hidden=values["hidden"], embed=values["embed"],
                            dropout=float(values["dropout"]), init=values["init"],
                            seed=values["seed"]))
    spec = lm_training_spec(model, batch=values["batch"], seq=values["seq"],
                            optimizer=values["optimizer"], learning_rate=values["lr"],
                            clip=values["clip"], name=text)
    if name == "d2l":
        spec.description = ("d2l's RNN from scratch (seeds 002/003): one-hot input, tanh, "
                            "N(0, 0.01) init, clipping at 1, SGD. " + spec.description)
    return spec


def lm_training_spec(model, batch: int = 32, seq: int = 35, optimizer: str = "adam",
                     learning_rate: float = 0.002, clip: float = 1.0,
                     name: str | None = None) -> GraphSpec:
    """One training step of a :class:`~scanrnn.lm.CharLM`, as a :class:`GraphSpec`: the
    graph of :func:`scanrnn.lm.step.training_step`, the one the trainer compiles.

    Inputs ``x``, ``y``: ``(T, B)`` int32 ids; then one ``(B, H)`` initial state per
    entry of ``model.state_names``.  Outputs: the mean cross-entropy and the final
    states.  Updates: the optimizer's (after global-norm clipping when ``clip > 0``) and
    the dropout stream's counter, guarded against a non-finite loss or gradient.
    """
    x = pt.tensor("x", shape=(None, None), dtype="int32")
    y = pt.tensor("y", shape=(None, None), dtype="int32")
    states = [pt.tensor(f"{s}0", shape=(None, model.config.hidden), dtype="float32")
              for s in model.state_names]
    step = training_step(model, x, y, states, optimizer=optimizer, lr=learning_rate, clip=clip)
    loss, finals, updates = step.loss, step.finals, step.updates
    for var, state in zip(finals, model.state_names):
        var.name = f"{state}_final"
    rng = np.random.default_rng(0)
    V = model.vocab_size
    args = [rng.integers(0, V, (seq, batch)).astype("int32"),
            rng.integers(0, V, (seq, batch)).astype("int32")]
    args += [np.zeros((batch, model.config.hidden), dtype="float32") for _ in states]
    c = model.config
    return GraphSpec(
        name=name or f"{c.cell} language model",
        inputs=[x, y, *states], outputs=[loss, *finals], updates=updates, example_args=args,
        description=(f"CharLM {c.cell} x{c.layers}, hidden {c.hidden}, "
                     f"{'embed ' + str(c.embed) if c.embed else 'one-hot input'}, vocab {V}; "
                     f"training step on (T={seq}, B={batch}) with {optimizer} lr {learning_rate}"
                     f"{f', clip {clip}' if clip else ''}"))


# -- the seed's Theano RNN -------------------------------------------------------------
def seed_step(x, h, W_h, b_h, W_x, b_x, W_y, b_y):
    """The seed's ``step``: hidden activations and output probabilities of one character."""
    h = pt.maximum(pt.dot(x, W_x) + b_x + pt.dot(h, W_h) + b_h, 0)   # nnet.relu
    y = softmax(pt.dot(h, W_y) + b_y, axis=-1)                       # nnet.softmax
    return h, y


def theano_seed_spec(vocab: int = 86, hidden: int = 256, seq: int = 8, lr: float = 0.01,
                     seed: int = 0) -> GraphSpec:
    """The fast.ai seed's Theano RNN (seed 004, "Building an RNN in Theano"), step for step.

    ``W_h`` is the identity, ``W_x`` and ``W_y`` He-normal, biases zero; ``step`` computes
    both products and the softmax inside the loop; the error is the summed categorical
    cross-entropy of the probabilities; updates are ``w - g * lr`` with ``lr`` an input.
    Inputs ``h0 (H,)``, ``inp (T, V)``, ``outp (T, V)`` one-hot, ``lr ()``.
    """
    for key, value in (("vocab", vocab), ("hidden", hidden), ("seq", seq)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    rng = init.as_rng(seed)
    W_h = init.shared(init.identity_array((hidden, hidden)), name="rnn.W_h")
    b_h = init.shared(np.zeros(hidden), name="rnn.b_h")
    W_x = init.shared(init.he_normal_array((vocab, hidden), rng), name="rnn.W_x")
    b_x = init.shared(np.zeros(hidden), name="rnn.b_x")
    W_y = init.shared(init.he_normal_array((hidden, vocab), rng), name="out.W_y")
    b_y = init.shared(np.zeros(vocab), name="out.b_y")
    w_all = [W_h, b_h, W_x, b_x, W_y, b_y]
    t_inp = pt.matrix("inp", dtype="float32")
    t_outp = pt.matrix("outp", dtype="float32")
    t_h0 = pt.vector("h0", dtype="float32")
    lr_in = pt.scalar("lr", dtype="float32")
    _v_h, v_y = scan(seed_step, sequences=t_inp, outputs_info=[t_h0, None],
                    non_sequences=w_all, name="rnn")
    error = losses.categorical_crossentropy(v_y, t_outp).sum()
    error.name = "error"
    g_all = pt.grad(error, w_all)
    updates = {w: w - g * lr_in for w, g in zip(w_all, g_all)}
    ids = rng.integers(0, vocab, seq + 1)
    eye = np.eye(vocab, dtype="float32")
    args = [np.zeros(hidden, dtype="float32"), eye[ids[:-1]], eye[ids[1:]],
            np.float32(lr)]
    return GraphSpec(
        name=f"theano seed RNN (V={vocab}, H={hidden}, T={seq})",
        inputs=[t_h0, t_inp, t_outp, lr_in], outputs=[error], updates=updates,
        example_args=args, step_source=pyinspect.getsource(seed_step),
        description=("fast.ai lesson 6 'Building an RNN in Theano' (seed 004): relu RNN, "
                     "one sequence per call, one-hot input, softmax inside step, summed "
                     "cross-entropy, SGD with lr as an input"))


# -- run directories ---------------------------------------------------------------------
def trainer_spec(model, train_config, name: str = "training step") -> GraphSpec:
    """The exact training step :class:`scanrnn.lm.Trainer` compiles for ``model``.

    A Trainer is built on dummy token ids (the graph does not depend on the data) with
    the JAX backend when installed, which compiles nothing until called; its
    ``train_fn`` (inputs ``x``, ``y``; outputs loss and gradient norm; updates: the
    optimizer's, guarded against non-finite steps, plus carried states and the dropout
    counter) is what gets studied.
    """
    c = dataclasses.replace(train_config, backend="jax" if "jax" in installed_backends()
                            else "python", sample_every=0, verbose=False, progress=False)
    flavor = "d2l" if c.sampling == "rows" else c.batch_flavor
    need = tokens_needed(c.batch_size, c.seq_len, c.sampling, flavor)
    trainer = Trainer(model, c, train_ids=np.zeros(need, dtype=np.int32))
    spec = GraphSpec(name=name, inputs=trainer.train_fn.inputs, outputs=trainer.train_fn.outputs,
                     updates=trainer.train_fn.updates)
    rng = np.random.default_rng(0)
    spec.example_args = [rng.integers(0, model.vocab_size, (c.seq_len, c.batch_size))
                         .astype("int32") for _ in range(2)]
    m = model.config
    spec.description = (f"CharLM {m.cell} x{m.layers}, hidden {m.hidden}, "
                         f"{'embed ' + str(m.embed) if m.embed else 'one-hot input'}, vocab "
                         f"{model.vocab_size}; Trainer step on (T={c.seq_len}, B={c.batch_size}) "
                         f"with {c.optimizer} lr {c.lr}{f', clip {c.clip}' if c.clip else ''}, "
                         f"{c.sampling} batches")
    return spec


def run_dir_spec(path) -> GraphSpec:
    """The training step of the run in ``path`` (a directory made by ``scanrnn train``)."""
    run_dir = RunDir.open(path)
    try:
        run = load_run(path)
        model, train_config, run_config = run.model, run.train_config, run.run_config
    except RunDirError:        # no checkpoint yet: the graph needs no weights
        model, _, _, train_config, run_config = build_model(run_dir)
    spec = trainer_spec(model, train_config, name=f"run {Path(path).name}")
    backend = getattr(train_config, "backend", None) or run_config.get("backend")
    if backend and backend != "auto":
        spec.backend = str(backend)
    spec.description = f"run directory {path}: " + spec.description
    return spec


def spec_from_path_or_model(target) -> GraphSpec:
    """A run directory path, or a model spec string when no such path exists."""
    text = os.fspath(target)
    path = Path(text)
    if path.exists():
        if not RunDir.is_run_dir(path):
            raise NotARunDirError(f"{text} is not a scanrnn run directory (no scanrnn "
                                  f"config.json in it; make one with 'scanrnn train')")
        return run_dir_spec(path)
    name = text.partition(":")[0].strip().lower()
    if name in PRESETS or name in CELL_NAMES:
        return build_spec(text)
    raise NotARunDirError(f"{text} is neither a run directory (no such path) nor a model spec "
                          f"({SPEC_HELP})")


class NotARunDirError(ValueError):
    """A path given as a run directory is not one."""
