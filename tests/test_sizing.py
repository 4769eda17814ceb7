"""The width of a run on a time budget follows the pace of its own step
(:mod:`scanrnn.lm.sizing`): the probe leaves the trainer as it was, the rule follows the
tokens, and `scanrnn train` says and records what it chose."""

import json

import numpy as np
import pytest

from scanrnn import cli
from scanrnn.lm import CharLM, TrainConfig, Trainer, sizing
from scanrnn.lm.train_command import _model_is_open

TEXT = ("Supposing that Truth is a woman--what then? Is there not ground\n"
        "for suspecting that all philosophers have failed to understand women!\n") * 30


def _trainer():
    ids = np.random.default_rng(0).integers(0, 12, 4000).astype(np.int32)
    config = TrainConfig(corpus="user.txt", seq_len=8, batch_size=4, progress=False,
                         verbose=False, backend="jax", minutes=1.0)
    return Trainer(CharLM(vocab_size=12, hidden=8, embed=4, layers=1, dropout=0.2), config, ids)


def test_the_probe_times_the_step_and_leaves_the_trainer_as_it_was():
    trainer = _trainer()
    before_arrays, before_meta = trainer.state_dict()
    pace = sizing.measure_pace(trainer, seconds=0.2)
    assert pace.tokens_per_second > 0 and pace.seconds >= pace.compile_seconds > 0
    arrays, meta = trainer.state_dict()
    assert meta == before_meta
    assert arrays.keys() == before_arrays.keys()
    for name, value in before_arrays.items():
        np.testing.assert_array_equal(arrays[name], value, err_msg=name)
    probed = trainer.train_step(*[b[0] for b in trainer.epoch_batches(0)])
    fresh = _trainer()
    assert probed == fresh.train_step(*[b[0] for b in fresh.epoch_batches(0)])


def test_the_model_follows_the_tokens_and_passes_the_budget_buys():
    default = sizing.Choice(256, 0.0)
    tokens, wide = sizing.WIDE
    rate, (low, high) = sizing.WEIGHT_DROP
    assert wide > 256 and 0 < rate < 1 and low < high
    text = 10 * tokens   # a large text: few passes
    assert sizing.choose(0.5 * tokens, text, default) == default
    assert sizing.choose(tokens, text, default) == sizing.Choice(wide, 0.0)
    small = tokens / high   # a small text: the budget passes over it `high` times
    assert sizing.choose(tokens, small, default) == sizing.Choice(wide, rate)
    assert sizing.choose(0.5 * tokens, small, default).weight_drop == \
        pytest.approx(rate * min(max((0.5 * high - low) / (high - low), 0), 1), abs=1e-3)
    assert sizing.choose(2 * tokens, small, default) == sizing.Choice(wide, rate)
    middle = tokens / (0.5 * (low + high))
    assert sizing.choose(tokens, middle, default).weight_drop == pytest.approx(rate / 2,
                                                                            abs=1e-3)
    assert sizing.choose(tokens, text, sizing.Choice(512, 0.0)).hidden == 512


def test_only_a_default_model_on_a_time_budget_on_an_untuned_corpus_is_sized():
    user = TrainConfig(corpus="mine.txt", minutes=9.0)
    assert _model_is_open({}, user)
    assert _model_is_open({"dropout": 0.5}, user)
    for flag in ("hidden", "cell", "layers", "embed", "weight_drop"):
        assert not _model_is_open({flag: 1}, user)
    assert not _model_is_open({}, TrainConfig(corpus="mine.txt", minutes=9.0, epochs=2))
    assert not _model_is_open({}, TrainConfig(corpus="mine.txt", minutes=None,
                                              max_tokens=1000))
    assert not _model_is_open({}, TrainConfig(corpus="timemachine", minutes=9.0))


def _train(tmp_path, capsys, *flags):
    path = tmp_path / "mine.txt"
    path.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "run"
    status = cli.main(["train", "--corpus", str(path), "--minutes", "0.1", "--seq-len", "8",
                       "--batch-size", "4", "--out", str(out), "--no-progress",
                       "--backend", "jax", "--devices", "1", *flags])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads((out / "config.json").read_text())["model"], captured.out


def test_train_builds_the_model_the_pace_calls_for_and_says_so(tmp_path, capsys,
                                                              monkeypatch):
    monkeypatch.setattr(sizing, "PROBE_SECONDS", 0.2)
    monkeypatch.setattr(sizing, "WIDE", (0.0, 288))          # any budget: 288 units
    monkeypatch.setattr(sizing, "WEIGHT_DROP", (0.25, (-2.0, -1.0)))   # and weight drop
    model, out = _train(tmp_path, capsys)
    assert (model["hidden"], model["weight_drop"], model["dropout"]) == (288, 0.25, 0.3)
    assert "hidden 288" in out and "weight drop 0.25" in out and "chosen for" in out
    assert "--hidden 256 --weight-drop 0 for the default" in out


def test_train_keeps_the_default_model_on_a_small_budget(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sizing, "PROBE_SECONDS", 0.2)
    monkeypatch.setattr(sizing, "WEIGHT_DROP", (0.3, (1e9, 2e9)))
    model, out = _train(tmp_path, capsys)   # 6 s buy far fewer tokens than WIDE asks
    assert (model["hidden"], model["weight_drop"]) == (256, 0.0)
    assert "(kept for" in out


def test_a_given_model_is_not_probed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sizing, "WIDE", (0.0, 288))
    model, out = _train(tmp_path, capsys, "--hidden", "16", "--layers", "1")
    assert model["hidden"] == 16
    assert "chosen for" not in out and "kept for" not in out


def test_the_probe_counts_in_the_time_budget():
    trainer = _trainer()                       # a 1-minute budget
    trainer.count_probe(30.0)
    assert trainer.elapsed == 30.0 and trainer.budget_reason() is None
    trainer.count_probe(31.0, compile_seconds=2.0)
    assert trainer.budget_reason() == "minutes" and trainer.compile_time == 2.0
    trainer.fit()
    assert trainer.global_step == 0 and trainer.stop_reason == "minutes"
