"""A trained run read back: :func:`load_run` rebuilds the model from a run directory's
configuration and loads a checkpoint's weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import LMConfig, TrainConfig
from .model import CharLM
from .rundir import BEST, CONFIG_FILE, LATEST, RunDir, RunDirError

__all__ = ["Run", "build_model", "load_run", "params_from_checkpoint", "parse_configs"]


@dataclass
class Run:
    """A trained run loaded by :func:`load_run`.

    Attributes
    ----------
    path : Path
        The run directory.
    model : scanrnn.lm.CharLM
        The model with the checkpoint's weights.
    vocab : scanrnn.data.Vocab
    config : scanrnn.lm.LMConfig
        The model configuration.
    train_config : scanrnn.lm.TrainConfig
        The training configuration the run was started with.
    meta : dict
        The checkpoint's metadata (epoch, step, best validation loss, ...).
    checkpoint : str
        Which checkpoint was loaded (``"best"`` or ``"latest"``).
    run_config : dict
        config.json as a dict (includes the corpus and backend used).
    """

    path: Path
    model: object
    vocab: object
    config: object
    train_config: object
    meta: dict = field(default_factory=dict)
    checkpoint: str = "best"
    run_config: dict = field(default_factory=dict)


def parse_configs(run: RunDir, model: dict, train: dict):
    """``(LMConfig, TrainConfig)`` from config.json's sections; RunDirError if invalid."""
    try:
        return LMConfig.from_dict(model), TrainConfig.from_dict(train)
    except (KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"{run.config_path} has an invalid configuration ({exc})") from None


def build_model(run: RunDir):
    """A fresh model for the run's configuration (no weights loaded).

    Returns ``(model, vocab, lm_config, train_config, config_dict)``.
    """
    config = run.read_config()
    vocab = run.read_vocab()
    lm_config, train_config = parse_configs(run, config["model"], config.get("train", {}))
    if len(vocab) != lm_config.vocab_size:
        raise RunDirError(f"{run.vocab_path} has {len(vocab)} tokens but the model in "
                          f"{CONFIG_FILE} was built for {lm_config.vocab_size}")
    return CharLM(lm_config), vocab, lm_config, train_config, config


def load_run(path, checkpoint: str = "best") -> Run:
    """Load a run directory: the model with trained weights, its vocabulary and configs.

    Parameters
    ----------
    path : str or Path
        A directory written by ``scanrnn train``.
    checkpoint : {"best", "latest"} or str
        Which weights: ``"best"`` (lowest validation loss; falls back to the
        latest when no best checkpoint exists), ``"latest"``, or a file name.

    Raises
    ------
    RunDirError
        ``path`` is not a run directory or holds no checkpoint.
    scanrnn.checkpoint.CheckpointError
        The checkpoint is corrupt or belongs to another configuration.
    """
    run = RunDir.open(path)
    which = checkpoint
    if which == "best" and not run.has_checkpoint("best"):
        which = "latest"
    if not run.has_checkpoint(which):
        raise RunDirError(f"{run.path} holds no checkpoint yet ({LATEST} / {BEST} missing); "
                          "train it first")
    model, vocab, lm_config, train_config, config = build_model(run)
    saved = run.load_checkpoint(which)
    model.set_weights(params_from_checkpoint(saved.arrays))
    return Run(path=run.path, model=model, vocab=vocab, config=lm_config,
               train_config=train_config, meta=saved.meta, checkpoint=which, run_config=config)


PARAMS_PREFIX = "param/"


def params_from_checkpoint(arrays: dict) -> dict:
    """The model weights (name -> array) of a checkpoint (the names of
    :meth:`scanrnn.lm.Trainer.state_dict`): the moving averages ``opt/<name>.ema`` when
    the run kept them (``TrainConfig.ema``: what its validation scored), else the training
    weights stored under ``param/``."""
    params = {k[len(PARAMS_PREFIX):]: v for k, v in arrays.items()
              if k.startswith(PARAMS_PREFIX)}
    averages = {name: arrays.get(f"opt/{name}.ema") for name in params}
    return averages if params and all(v is not None for v in averages.values()) else params
