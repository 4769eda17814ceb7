"""`scanrnn train` on a corpus nobody tuned for: the text as it is, prefixes from the
corpus, a schedule that follows the budget, cheap validation that scores like one stream."""

import math

import numpy as np
import pytest

from scanrnn import cli
from scanrnn.lm import CharLM, TrainConfig, Trainer, prepare_data, schedules
from scanrnn.lm.data import phrase_from
from scanrnn.lm.evaluate import Evaluator, stream_layout
from scanrnn.lm.run import params_from_checkpoint

TEXT = ("PREFACE\n\nSupposing that Truth is a woman--what then? Is there not ground\n"
        "for suspecting that all philosophers, in so far as they have been\n"
        "dogmatists, have failed to understand women!\n") * 40


def test_a_users_file_is_read_as_it_is(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text(TEXT, encoding="utf-8")
    config = TrainConfig(corpus=str(path), minutes=None)
    assert config.preprocess == "none"
    assert TrainConfig(minutes=None).preprocess == "d2l"          # the timemachine seeds
    data = prepare_data(config, TEXT)
    for ch in "P\n,-?!S":                                         # case, lines, punctuation
        assert ch in data.vocab, ch
    assert data.vocab.decode(data.train_ids[:20]) == TEXT[:20]
    assert len(data.train_ids) + len(data.val_ids) == len(TEXT)


def test_the_recipe_follows_the_corpus_and_given_values_win():
    general = TrainConfig(corpus="user.txt")
    assert (general.sampling, general.lr, general.schedule) == ("sequential", 3e-3, "cosine")
    assert (general.eval_minutes, general.eval_every, general.eval_batch_size) == (0.5, 0, 64)
    tuned = TrainConfig()                                       # the Time Machine's own recipe
    assert (tuned.sampling, tuned.lr, tuned.schedule) == ("random", 5e-3, "plateau")
    assert (tuned.eval_minutes, tuned.eval_every, tuned.eval_batch_size) == (None, 150, 16)
    mixed = TrainConfig(lr=1e-3, eval_minutes=2.0)
    assert (mixed.lr, mixed.eval_minutes, mixed.schedule) == (1e-3, 2.0, "plateau")
    assert TrainConfig.from_dict(mixed.to_dict()) == mixed         # saved runs keep values
    assert TrainConfig.from_dict({**general.to_dict(), "corpus": "timemachine"}).lr == 3e-3


def test_the_sample_prefix_comes_from_the_corpus():
    assert phrase_from("tail of a line\nSupposing that Truth is a woman") == \
        "Supposing that Truth"
    assert phrase_from("ing. Is there not ground") == "Is there not"
    assert phrase_from("one two", mode="word") == "one"


def test_a_new_corpus_run_samples_from_its_own_text(tmp_path, capsys):
    path = tmp_path / "mine.txt"
    path.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "run"
    status = cli.main(["train", "--corpus", str(path), "--hidden", "8", "--layers", "1",
                       "--embed", "4", "--seq-len", "8", "--batch-size", "4", "--epochs", "1",
                       "--out", str(out), "--no-progress", "--quiet", "--backend", "jax"])
    assert status == 0, capsys.readouterr().err
    samples = (out / "samples.txt").read_text()
    assert "time traveller" not in samples
    prefix = samples.splitlines()[1][:len("Supposing")]
    assert prefix in TEXT and prefix[0].isupper()
    assert (out / "loss.png").stat().st_size > 1000                # matplotlib: a real plot


def _trainer(**overrides):
    ids = np.random.default_rng(0).integers(0, 12, 4000).astype(np.int32)
    config = TrainConfig(corpus="user.txt", seq_len=8, batch_size=4, progress=False,
                         verbose=False, backend="jax", **overrides)
    return Trainer(CharLM(vocab_size=12, hidden=8, embed=4, layers=1), config, ids)


def test_the_schedule_follows_a_time_budget_to_its_end():
    trainer = _trainer(minutes=10.0, lr=4e-3, min_lr=1e-4, warmup=0.1)
    lrs = []
    for minute in (0.0, 0.5, 1.0, 5.5, 10.0, 12.0):
        trainer.elapsed = 60.0 * minute
        lrs.append(trainer._scheduled_lr())
    assert lrs[0] == pytest.approx(4e-5)                     # warm-up starts at lr / 100
    assert lrs[1] == pytest.approx(2e-3)                     # halfway through the warm-up
    assert lrs[2] == pytest.approx(4e-3)                     # the peak
    assert lrs[3] == pytest.approx(1e-4 + (4e-3 - 1e-4) / 2)  # half-way down the cosine
    assert lrs[4] == pytest.approx(1e-4) and lrs[5] == pytest.approx(1e-4)


def test_the_schedule_follows_a_step_budget_to_its_end():
    trainer = _trainer(epochs=2, minutes=None, lr=1e-2, min_lr=0.0, warmup=0.0)
    trainer.fit()
    assert trainer.global_step == 2 * trainer.steps_per_epoch()
    assert trainer.lr == pytest.approx(0.0, abs=1e-12)
    assert math.isfinite(trainer.best_val_loss)


@pytest.mark.parametrize("streams", [4, 16])
def test_parallel_streams_score_like_one_stream(streams):
    model = CharLM(vocab_size=20, hidden=16, embed=8, layers=2, dropout=0.0, seed=3)
    B, L, W = stream_layout(2992, streams, 64)
    ids = np.random.default_rng(0).integers(0, 20, B * L + W + 1)   # every target scored
    one = Evaluator(model, batch_size=1, seq_len=64, backend="jax")(ids)
    many = Evaluator(model, batch_size=streams, seq_len=64, backend="jax")(ids)
    assert one["tokens"] == many["tokens"] == len(ids) - 1
    assert many["loss"] == pytest.approx(one["loss"], abs=1e-4)
    cold = Evaluator(model, batch_size=streams, seq_len=64, backend="jax", burn_in=0)(ids)
    assert abs(cold["loss"] - one["loss"]) > abs(many["loss"] - one["loss"])


def test_validation_runs_on_the_clock_and_at_the_end(monkeypatch):
    monkeypatch.setattr(schedules, "EVAL_SHARE", math.inf)      # its cost does not count here
    trainer = _trainer(epochs=2, minutes=None, eval_minutes=1e-9)
    trainer.val_ids = trainer.train_ids[:600]
    trainer.fit()
    steps = [m["step"] for m in trainer.evals]
    assert steps == list(range(1, trainer.global_step + 1))     # due after every step
    quiet = _trainer(epochs=2, minutes=None, eval_minutes=60.0)
    quiet.val_ids = quiet.train_ids[:600]
    quiet.fit()
    assert [m["step"] for m in quiet.evals] == [quiet.global_step]   # only the final one


def test_slow_validation_is_spaced_out_to_a_small_share_of_the_run():
    assert schedules.validation_wait(0.5, None) == 30.0
    assert schedules.validation_wait(0.5, 1.0) == 30.0             # 1 s every 30 s: cheap
    assert schedules.validation_wait(0.5, 3.0) == pytest.approx(3.0 / schedules.EVAL_SHARE)
    trainer = _trainer(epochs=None, minutes=None, eval_minutes=0.5)
    trainer.val_ids = trainer.train_ids[:600]
    assert trainer._eval_cost is None
    trainer.validate()
    assert 0.0 < trainer._eval_cost < 60.0
    trainer._eval_cost = 6.0                          # as if the held-out text were large
    trainer.global_step += 1
    trainer.evals[-1]["time"] = trainer.elapsed = 0.0
    for seconds, due in ((29.0, False), (31.0, False), (119.0, False), (121.0, True)):
        trainer.elapsed = seconds
        assert trainer._validation_is_due() is due, seconds


def test_a_time_budget_keeps_the_final_validation_inside_it():
    assert schedules.training_seconds(10.0, None) == 600.0
    assert schedules.training_seconds(10.0, 20.0) == 580.0
    assert schedules.training_seconds(1.0, 50.0) == 30.0            # at most half the budget
    trainer = _trainer(epochs=None, minutes=10.0, lr=4e-3, min_lr=0.0, warmup=0.0)
    trainer.val_ids = trainer.train_ids[:600]
    trainer._eval_cost = 20.0
    trainer.elapsed = 579.0
    assert trainer.budget_reason() is None and trainer._scheduled_lr() > 0.0
    trainer.elapsed = 580.0
    assert trainer.budget_reason() == "minutes"
    assert trainer._scheduled_lr() == pytest.approx(0.0, abs=1e-12)  # the cosine's end


def test_weight_decay_reaches_the_training_step_and_is_checked():
    with pytest.raises(ValueError, match="weight_decay"):
        TrainConfig(minutes=None, optimizer="sgd", weight_decay=0.1)
    with pytest.raises(ValueError, match="weight_decay"):
        TrainConfig(minutes=None, weight_decay=-0.1)
    plain = _trainer(epochs=None, minutes=None, max_tokens=64, lr=1e-3)
    decayed = _trainer(epochs=None, minutes=None, max_tokens=64, lr=1e-3, weight_decay=50.0)
    before = plain.model.get_weights()
    for trainer in (plain, decayed):
        trainer.fit()
    name = next(k for k, v in before.items() if np.abs(v).sum() > 0 and v.ndim == 2)
    shrink = [np.abs(t.training_weights()[name]).sum() / np.abs(before[name]).sum()
              for t in (plain, decayed)]
    assert shrink[1] < shrink[0] - 0.01           # lr x 50 = 5% per step, on every weight


def test_auto_weight_decay_follows_the_passes_a_run_will_make():
    assert [schedules.weight_decay_for(p) for p in (0.5, 1.0, 3.0, 5.0, 30.0)] == \
        pytest.approx([0.0, 0.0, 0.05, 0.1, 0.1])
    assert TrainConfig(corpus="user.txt").weight_decay == "auto"
    assert TrainConfig().weight_decay == 0.0                 # the Time Machine's own recipe
    # 4000 ids, 124 sequential steps of 4 x 8 an epoch: 0.99 passes each
    short = _trainer(epochs=None, minutes=None, max_tokens=32 * 20)
    short.fit()
    assert short.decay_decided and short.weight_decay == 0.0
    auto = _trainer(epochs=6, minutes=None, lr=1e-2)
    fixed = _trainer(epochs=6, minutes=None, lr=1e-2, weight_decay=0.1)
    assert auto.planned_passes() == pytest.approx(6 * 124 * 32 / 4000)
    auto._follow_passes()
    assert auto.weight_decay == pytest.approx(0.1) and auto.decay_decided
    xs, ys = auto.epoch_batches(0)
    for x, y in zip(xs[:3], ys[:3]):
        assert auto.train_step(x, y) == pytest.approx(fixed.train_step(x, y), rel=1e-5)
    for name, value in auto.model.get_weights().items():
        np.testing.assert_allclose(value, fixed.model.get_weights()[name], rtol=1e-5, atol=1e-7)
    # a minutes budget measures its pace first: 1,000 tokens/s over 10 minutes = 149 passes
    timed = _trainer(epochs=None, minutes=10.0)
    timed.elapsed, timed.tokens_seen = 5.0, 0
    assert timed.planned_passes() is None                    # marks the pace's start
    timed.elapsed, timed.tokens_seen = 25.0, 20_000
    assert timed.planned_passes() == pytest.approx((20_000 + 1000 * 575) / 4000)
    arrays, meta = timed.state_dict()
    timed._follow_passes()
    resumed = short                                           # the same graph: it fits
    resumed.load_state_dict(*timed.state_dict())
    assert (resumed.weight_decay, resumed.decay_decided) == (pytest.approx(0.1), True)
    resumed.load_state_dict(arrays, meta)                     # saved before the decision
    assert (resumed.weight_decay, resumed.decay_decided) == (0.0, False)


def test_validation_scores_the_moving_averages_and_the_best_weights_keep_them():
    assert TrainConfig(corpus="user.txt").ema == 0.99 and TrainConfig().ema == 0.0
    with pytest.raises(ValueError, match="ema"):
        TrainConfig(corpus="user.txt", ema=1.0)
    trainer = _trainer(epochs=None, minutes=None, max_tokens=32 * 30, lr=1e-2, ema=0.9,
                       eval_minutes=None, eval_every=10, restore_best=False)
    trainer.val_ids = trainer.train_ids[:600]
    at_best = {}
    trainer.callbacks.append(type("Keep", (), {
        "on_best": lambda self, t, m: at_best.update(t.eval_weights())})())
    trainer.fit()
    averaged, raw = trainer.eval_weights(), trainer.model.get_weights()
    assert not all(np.allclose(averaged[k], raw[k]) for k in raw)
    copy = CharLM(trainer.model.config)
    copy.set_weights(averaged)
    scored = Evaluator(copy, trainer.config.eval_batch_size, trainer.config.eval_seq_len,
                       "jax")(trainer.val_ids)["loss"]
    assert trainer.evals[-1]["val_loss"] == pytest.approx(scored, rel=1e-6)   # the averages
    for name, value in trainer.best_weights.items():
        np.testing.assert_array_equal(value, at_best[name])
    arrays, _ = trainer.state_dict()                 # `scanrnn eval` loads the averages too
    for name, value in params_from_checkpoint(arrays).items():
        np.testing.assert_array_equal(value, averaged[name])
    trainer.config.restore_best = True               # after fit() loads the best weights,
    trainer._finish_fit()                            # they are what evaluate() scores,
    for average in trainer.averages.values():        # not the averages training goes on with
        average.set_value(np.zeros_like(average.get_value()))
    assert trainer.evaluate()["loss"] == pytest.approx(trainer.best_val_loss, rel=1e-6)
