"""``scanrnn`` commands on the edge cases a QA pass found: --quiet, a NaN at the first step,
eval on a corpus that changed, graph's model specs and damaged run files, and the default
sample prefix of a text without spaces.  Everything runs in-process on tiny models."""

import json
import shutil

import pytest

from scanrnn import cli
from scanrnn.lm import RunDir
from scanrnn.lm.data import phrase_from
from test_cli import call, in_process_error

TINY = ["--max-chars", "20000", "--hidden", "16", "--embed", "8", "--layers", "1",
        "--batch-size", "8", "--seq-len", "16", "--backend", "jax", "--devices", "1",
        "--sample-every", "0", "--eval-every", "0"]
OWN_TEXT = TINY[2:]    # all of a --corpus file (no --max-chars)
PANGRAM = "the quick brown fox jumps over the lazy dog.\n"


@pytest.fixture(autouse=True)
def _no_jax_cache(monkeypatch):
    monkeypatch.setenv("SCANRNN_JAX_CACHE", "0")   # in-process calls leave JAX's config alone


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("edge") / "run"
    assert cli.main(["train", *TINY, "--no-progress", "--steps", "2", "--log-every", "1",
                     "--out", str(out)]) == 0
    return out


# -- train --------------------------------------------------------------------------------
def test_quiet_prints_the_summary_and_no_progress_bar(capsys, tmp_path):
    """--quiet ("only errors and the summary") printed no summary, and the progress bar."""
    out = tmp_path / "run"
    status, stdout, stderr = call(capsys, "train", *TINY, "--steps", "2", "--quiet",
                                  "--out", out)
    assert status == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].startswith("done (max_tokens): 2 steps"), stdout
    assert lines[-1] == f"next: scanrnn sample {out}   |   scanrnn eval {out}"
    assert "run directory:" not in stdout          # the header is not the summary
    assert stderr == ""                            # no progress bar


def test_a_nan_loss_at_the_first_step_leaves_no_half_made_run(capsys, tmp_path):
    """A NaN at step 1 left config.json and vocab.json: neither resumable nor replaceable."""
    out = tmp_path / "run"
    in_process_error(capsys, "train", *TINY, "--no-progress", "--cell", "relu", "--init",
                   "normal", "--init-scale", "1e30", "--steps", "3", "--out", out, status=1,
                   fragments=("training loss is nan", "at step 1",
                              f"{out} was removed (it had not trained a step)"))
    assert not out.exists()
    RunDir.check_new(out)    # the same --out takes a new run


# -- eval ---------------------------------------------------------------------------------
def test_eval_warns_when_the_text_is_not_the_one_the_run_trained_on(capsys, tmp_path):
    """A corpus file that grew but kept its vocabulary was scored without a word."""
    corpus, out = tmp_path / "pangrams.txt", tmp_path / "run"
    corpus.write_text(PANGRAM * 700, encoding="utf-8")
    status, _, err = call(capsys, "train", *OWN_TEXT, "--no-progress", "--corpus", corpus,
                          "--steps", "2", "--out", out)
    assert status == 0, err
    status, stdout, err = call(capsys, "eval", out)
    assert status == 0 and err == "" and "loss" in stdout      # the same text: no warning
    data = json.loads((out / "config.json").read_text())["data"]
    corpus.write_text(PANGRAM * 1400, encoding="utf-8")        # same characters, twice as long
    status, stdout, err = call(capsys, "eval", out)
    assert status == 0 and "loss" in stdout                    # still scored
    assert len(err.strip().splitlines()) == 1, err
    assert "is not the text the run was trained on" in err
    assert f"records {data['train_tokens']:,} / {data['val_tokens']:,}" in err
    assert f"now gives {2 * data['train_tokens']:,} training" in err


# -- graph --------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, fragment", [
    ("lstm:clip=-1", "clip must be a finite number >= 0 (0 = no clipping)"),
    ("lstm:clip=abc", "clip must be a finite number >= 0"),       # was a traceback
    ("lstm:clip=nan", "clip must be a finite number >= 0"),
    ("lstm:lr=0", "lr must be a finite number > 0"),
    ("theano:lr=-1", "lr must be a finite number > 0"),
    ("lstm:seed=abc", "seed must be an integer in [0, 2**32)"),
    ("lstm:dropout=1", "dropout must be a number in [0, 1)"),
    ("lstm:seq=0", "seq must be a positive integer, as `scanrnn train --seq-len` takes"),
])
def test_graph_model_specs_refuse_what_train_refuses(capsys, spec, fragment):
    """graph --model lstm:clip=-1 was accepted (described as "clip -1") where train
    --clip -1 is refused."""
    in_process_error(capsys, "graph", "--model", spec, "--no-run",
                   fragments=(fragment, f"(in {spec!r})"))


def test_a_corrupt_config_json_is_called_corrupt(capsys, tmp_path):
    """graph said "is not a run directory (has no scanrnn config.json)"."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"format": "scanrnn-run", "version": 1, "mod')
    for argv in (["graph", run], ["sample", run], ["train", "--out", run]):
        in_process_error(capsys, *argv, fragments=(f"{run / 'config.json'} is corrupt",))


# -- resume -------------------------------------------------------------------------------
def test_resume_names_a_damaged_metrics_file_and_what_to_do(capsys, run_dir, tmp_path):
    """Garbage bytes in metrics.csv failed with "'utf-8' codec can't decode byte 0xd6"."""
    copy = shutil.copytree(run_dir, tmp_path / "run")
    metrics = copy / "metrics.csv"
    with open(metrics, "ab") as handle:
        handle.write(b"\xd6\xd6 garbage\n")
    in_process_error(capsys, "train", "--out", copy, "--resume", "--no-progress",
                   fragments=(f"{metrics} is damaged", "move it aside",
                              f"mv {metrics} {metrics}.damaged"))
    metrics.rename(metrics.with_name("metrics.csv.damaged"))     # what the message says
    status, _, err = call(capsys, "train", "--out", copy, "--resume", "--no-progress",
                          "--steps", "3")
    assert status == 0, err


# -- sample -------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["a" * 3000, "天地玄黃宇宙洪荒" * 300, "word " * 600])
def test_the_default_sample_prefix_is_short_whatever_the_text(text):
    """A text without spaces made the whole 2,000-character chunk the prefix."""
    assert 0 < len(phrase_from(text[:2000])) <= 40


def test_sentences_still_give_their_first_words():
    assert phrase_from("Chapter I\nThe Time Traveller (for so it will be") == \
        "The Time Traveller"


def test_sample_of_a_run_on_a_text_without_spaces_prints_what_was_asked(capsys, tmp_path):
    corpus, out = tmp_path / "a.txt", tmp_path / "run"
    corpus.write_text("ab" * 6000, encoding="utf-8")
    status, _, err = call(capsys, "train", *OWN_TEXT, "--no-progress", "--corpus", corpus,
                          "--steps", "1", "--out", out)
    assert status == 0, err
    status, stdout, err = call(capsys, "sample", out, "--length", "10")
    assert status == 0, err
    assert len(stdout.strip()) <= 50, len(stdout)     # prefix <= 40 + 10 generated
