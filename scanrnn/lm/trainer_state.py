"""Exact resumption: a :class:`~scanrnn.lm.trainer.Trainer`'s whole state as arrays and
JSON metadata, checked in full before any of it is restored."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..parallel import to_host
from .config import TrainConfig

__all__ = ["EpochStats", "check_state_meta", "checked_state_arrays", "load_state", "state_dict",
           "state_fields"]


@dataclass
class EpochStats:
    """Running sums of the epoch in progress (saved in a state_dict for exact resumes)."""

    loss_sum: float = 0.0
    steps: int = 0
    timed_steps: int = 0      # steps whose time counts (the compiling first call excluded)
    train_time: float = 0.0   # seconds inside those steps

    def tokens_per_second(self, tokens_per_step: int) -> float:
        return (self.timed_steps * tokens_per_step / self.train_time
                if self.train_time > 0 else float("nan"))


def _json_float(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def state_dict(trainer) -> tuple[dict, dict]:
    """Everything a resume needs: ``(arrays, meta)``.

    ``arrays``: ``param/<name>`` (the training weights, even when :meth:`fit` has
    loaded the best ones into the model), ``opt/<slot>`` (optimizer state), ``carry/<state>``
    (sequential sampling), ``rng/dropout`` (``[seed, counter]`` of the dropout stream),
    ``best/<name>`` (best weights so far).  ``meta`` (JSON): both configs, the data
    position (epoch, step in epoch; batches are a function of ``(seed, epoch)``), the
    learning rate, best loss, early-stopping counters, running epoch sums, history.
    A run resumed from it gives the same losses step for step as an uninterrupted one
    (same backend and seed, any number of devices), except with the wall-clock
    (``minutes``, time-based cosine) budgets, which depend on timing.

    Values a data-parallel trainer keeps on a device mesh are gathered to the host
    (:func:`scanrnn.parallel.to_host`); the carried state split over several processes
    is gathered by a collective, so every process must call this at the same step.
    """
    arrays = {f"param/{name}": np.array(value, dtype=np.float32)
              for name, value in trainer.training_weights().items()}
    for s in trainer.slots:
        arrays[f"opt/{s.name}"] = np.array(to_host(s.get_value(borrow=True)))
    for name, var in zip(trainer.model.state_names, trainer.carry):
        arrays[f"carry/{name}"] = np.array(to_host(var.get_value(borrow=True)))
    arrays["rng/dropout"] = np.array(to_host(trainer.model.rng.get_value(borrow=True)),
                                     dtype=np.uint32)
    if trainer.best_weights is not None:
        for name, value in trainer.best_weights.items():
            arrays[f"best/{name}"] = np.array(value)
    meta = {
        "format": "scanrnn.trainer", "version": 1, "backend": trainer.backend,
        "config": trainer.config.to_dict(), "model": trainer.model.config.to_dict(),
        "epoch": trainer.epoch, "step_in_epoch": trainer.step_in_epoch,
        "global_step": trainer.global_step, "tokens_seen": trainer.tokens_seen,
        "batch_seed": trainer.config.seed, "elapsed_s": trainer.elapsed,
        "train_time_s": trainer.train_time, "timed_tokens": trainer.timed_tokens,
        "lr": trainer.lr, "weight_decay": trainer.weight_decay,
        "weight_decay_decided": trainer.decay_decided,
        "best_val_loss": _json_float(trainer.best_val_loss), "best_step": trainer.best_step,
        "bad_evals": trainer.bad_evals, "plateau_bad": trainer.plateau_bad,
        "epoch_loss_sum": trainer.epoch_stats.loss_sum,
        "epoch_steps": trainer.epoch_stats.steps,
        "epoch_train_time": trainer.epoch_stats.train_time,
        "epoch_timed_steps": trainer.epoch_stats.timed_steps, "stop_reason": trainer.stop_reason,
        "history": _jsonable(trainer.history), "evals": _jsonable(trainer.evals),
    }
    return arrays, meta


def load_state(trainer, arrays: dict, meta: dict) -> None:
    """Restore a :func:`state_dict` into ``trainer``.

    Everything is checked before anything is set: a state that does not fit (another
    model, training graph or seed, a missing or misshapen array, a missing or invalid
    meta field) raises ValueError and leaves the trainer exactly as it was.
    """
    check_state_meta(trainer, meta)
    values, best = checked_state_arrays(trainer, arrays)
    fields = state_fields(meta)
    for var, value in values:
        var.set_value(value)
    trainer.best_weights = best or None
    trainer._final_weights = None
    trainer.set_lr(fields.pop("lr"))
    decay, decided = fields.pop("weight_decay"), fields.pop("decay_decided")
    if trainer.decay_var is not None:   # "auto": the saved run's decision, if it made one
        trainer.set_weight_decay(decay if decided else 0.0)
        trainer.decay_decided = decided
    for name, value in fields.items():
        setattr(trainer, name, value)


def check_state_meta(trainer, meta) -> None:
    """Raise ValueError unless ``meta`` was saved by this model, graph and seed."""
    if not isinstance(meta, dict) or meta.get("format") != "scanrnn.trainer":
        raise ValueError("not a scanrnn trainer state (meta['format'] != 'scanrnn.trainer')")
    saved_model = meta.get("model", {})
    now_model = trainer.model.config.to_dict()
    # the weights and the dropout stream come from the state: the init seed may differ
    diff = sorted(k for k in set(saved_model) | set(now_model)
                  if k != "seed" and saved_model.get(k) != now_model.get(k))
    if diff:
        raise ValueError("the state was saved from a different model; differing fields: "
                         + ", ".join(f"{k} (saved {saved_model.get(k)!r}, now "
                                     f"{now_model.get(k)!r})" for k in diff))
    saved_cfg = {**TrainConfig.LEGACY, **meta.get("config", {})}
    bad = [f for f in TrainConfig.GRAPH_FIELDS
           if saved_cfg.get(f) != getattr(trainer.config, f)]
    if bad:
        raise ValueError("the state was saved with a different training graph: "
                         + ", ".join(f"{f} (saved {saved_cfg.get(f)!r}, now "
                                     f"{getattr(trainer.config, f)!r})" for f in bad))
    if meta.get("batch_seed", trainer.config.seed) != trainer.config.seed:
        raise ValueError(f"the state's batches were drawn with seed {meta['batch_seed']!r}, "
                         f"this trainer uses seed {trainer.config.seed}")


def state_variables(trainer) -> dict:
    """``{state_dict key: shared variable}`` of everything the arrays restore."""
    expected = {f"param/{p.name}": p for p in trainer.model.params}
    expected.update((f"opt/{s.name}", s) for s in trainer.slots)
    expected.update((f"carry/{name}", var)
                    for name, var in zip(trainer.model.state_names, trainer.carry))
    expected["rng/dropout"] = trainer.model.rng
    return expected


def checked_state_arrays(trainer, arrays) -> tuple[list, dict]:
    """``([(variable, value of its dtype)], best weights)``; ValueError naming every
    missing, unexpected or misshapen array."""
    expected = state_variables(trainer)
    problems = []
    missing = [k for k in expected if k not in arrays]
    extra = sorted(k for k in arrays if k not in expected and not k.startswith("best/"))
    if missing:
        problems.append("missing " + ", ".join(missing))
    if extra:
        problems.append("unexpected " + ", ".join(extra))
    values = []
    for key, var in expected.items():
        if key not in arrays:
            continue
        now = var.get_value(borrow=True)   # numpy, or a JAX array on a device mesh
        dtype, shape = np.dtype(now.dtype), tuple(np.shape(now))
        try:
            value = np.array(arrays[key], dtype=dtype)
        except (TypeError, ValueError) as exc:
            problems.append(f"{key}: not {dtype} numbers ({exc})")
            continue
        if value.shape != shape:
            problems.append(f"{key}: shape {value.shape}, expected {shape}")
        elif value.dtype.kind == "f" and not np.isfinite(value).all():
            problems.append(f"{key}: holds NaN or infinite values")
        values.append((var, value))
    best = {k[5:]: np.asarray(v, np.float32) for k, v in arrays.items()
            if k.startswith("best/")}
    if best and set(best) != set(trainer.model.param_names):
        problems.append("best/ weights do not match the model's parameter names")
    problems += [f"best/{k}: holds NaN or infinite values" for k, v in best.items()
                 if not np.isfinite(v).all()]
    if problems:
        raise ValueError("trainer state does not fit: " + "; ".join(problems))
    return values, best


# the trainer attributes a state_dict's meta restores: (attribute, meta key, parse, default)
_REQUIRED = object()
_STATE_FIELDS = (
    ("epoch", "epoch", int, _REQUIRED), ("step_in_epoch", "step_in_epoch", int, _REQUIRED),
    ("global_step", "global_step", int, _REQUIRED),
    ("tokens_seen", "tokens_seen", int, _REQUIRED), ("lr", "lr", float, _REQUIRED),
    ("weight_decay", "weight_decay", float, 0.0),
    ("decay_decided", "weight_decay_decided", bool, False),
    ("elapsed", "elapsed_s", float, 0.0), ("train_time", "train_time_s", float, 0.0),
    ("timed_tokens", "timed_tokens", int, 0),
    ("best_val_loss", "best_val_loss", lambda v: math.inf if v is None else float(v), None),
    ("best_step", "best_step", lambda v: None if v is None else int(v), None),
    ("bad_evals", "bad_evals", int, 0), ("plateau_bad", "plateau_bad", int, 0),
    ("epoch_stats.loss_sum", "epoch_loss_sum", float, 0.0),
    ("epoch_stats.steps", "epoch_steps", int, 0),
    ("epoch_stats.train_time", "epoch_train_time", float, 0.0),
    ("epoch_stats.timed_steps", "epoch_timed_steps", int, 0),
    ("history", "history", list, ()), ("evals", "evals", list, ()),
    ("stop_reason", "stop_reason", lambda v: v, None),
)


def state_fields(meta: dict) -> dict:
    """``{trainer attribute: value}`` parsed from a state_dict's meta (ValueError if a
    field is missing or of the wrong kind); ``epoch_stats`` is an :class:`EpochStats`."""
    fields = {}
    for attr, key, parse, default in _STATE_FIELDS:
        if key not in meta and default is _REQUIRED:
            raise ValueError(f"trainer state does not fit: meta has no {key!r}")
        try:
            fields[attr] = parse(meta.get(key, default))
        except (TypeError, ValueError):
            raise ValueError(f"trainer state does not fit: meta[{key!r}] = "
                             f"{meta.get(key)!r} is not a valid {key}") from None
    prefix = "epoch_stats."
    fields["epoch_stats"] = EpochStats(**{k[len(prefix):]: fields.pop(k)
                                          for k in list(fields) if k.startswith(prefix)})
    return fields


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return _json_float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
