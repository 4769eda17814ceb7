"""Ctrl-C in the ``scanrnn`` commands at any moment: before the command starts (imports),
while JAX loads, and when Python drops the ``KeyboardInterrupt`` (a signal handler's
exception raised inside JAX's garbage-collection callback is printed as "Exception ignored"
and lost).  Every case is driven in-process and deterministically: the handler is called,
or the signal raised synchronously (:func:`signal.raise_signal`), at the moment under test.
"""

import importlib.abc
import importlib.machinery
import signal
import sys
import types

import pytest

from scanrnn import checkpoint as ck
from scanrnn import cli
from scanrnn.lm import Trainer, interrupt
from scanrnn.lm import commands as lm_commands
from scanrnn.lm.interrupt import StopRequest, TrainingInterrupted

TINY = ["--max-chars", "20000", "--hidden", "16", "--embed", "8", "--layers", "1",
        "--batch-size", "8", "--seq-len", "16", "--backend", "jax", "--devices", "1",
        "--no-progress", "--sample-every", "0", "--eval-every", "0"]


@pytest.fixture(autouse=True)
def _terminal_sigint(monkeypatch):
    """Each test starts with a terminal's Ctrl-C (a CI job in the background inherits SIGINT
    ignored) and gets the handlers back as they were, whatever the command left."""
    monkeypatch.setenv("SCANRNN_JAX_CACHE", "0")
    old, hook = signal.signal(signal.SIGINT, signal.default_int_handler), sys.unraisablehook
    yield
    signal.signal(signal.SIGINT, old)
    sys.unraisablehook = hook
    interrupt.forget_interrupts()


def dropped(handler=None):
    """Deliver SIGINT the way JAX's GC callback does: the handler runs, and the exception
    it raises is dropped."""
    handler = handler or signal.getsignal(signal.SIGINT)
    try:
        handler(signal.SIGINT, None)
    except KeyboardInterrupt:
        pass


def call(capsys, *argv):
    """Run the CLI in-process; returns (status, stdout, stderr).  A KeyboardInterrupt that
    escapes it fails the test (rather than stopping the whole test session)."""
    try:
        status = cli.main([str(a) for a in argv])
    except KeyboardInterrupt:
        pytest.fail("a KeyboardInterrupt escaped scanrnn.cli.main: " + repr(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("interrupts") / "run"
    assert cli.main(["train", *TINY, "--steps", "2", "--out", str(out)]) == 0
    return out


# -- before the command runs ------------------------------------------------------------
@pytest.mark.parametrize("where", ["build_parser", "_enable_jax_cache"])
def test_ctrl_c_while_the_command_starts_is_interrupted_not_a_traceback(capsys, monkeypatch,
                                                                        where):
    """_enable_jax_cache() (import jax) ran before main()'s try: a traceback, not 130."""
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, where, ctrl_c)
    status, out, err = call(capsys, "eval", "some/run")
    assert status == 130
    assert err.strip() == "scanrnn eval: interrupted"
    # the command exits: a second Ctrl-C must not land in an exit handler (JAX's atexit)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_jax_is_imported_with_ctrl_c_held_back(monkeypatch):
    """A KeyboardInterrupt raised inside jaxlib's C++ import aborts the process ("Critical
    nanobind error"): the import finishes first, then the interrupt is raised."""
    state = {}

    class FakeJax(importlib.abc.Loader):
        def create_module(self, spec):
            return None

        def exec_module(self, module):
            signal.raise_signal(signal.SIGINT)    # Ctrl-C in the middle of the import
            state["finished"] = True
            module.config = types.SimpleNamespace(jax_compilation_cache_dir="set")

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            return importlib.machinery.ModuleSpec("jax", FakeJax()) if name == "jax" else None

    monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    with pytest.raises(KeyboardInterrupt):
        cli._enable_jax_cache()
    assert state == {"finished": True}


def test_an_uninterrupted_command_leaves_the_handlers_as_it_found_them(capsys):
    hook = sys.unraisablehook
    status, _, err = call(capsys, "sample", "no/such/run")
    assert status == 2 and "does not exist" in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert sys.unraisablehook is hook


# -- requests Python dropped ------------------------------------------------------------
def test_stop_request_keeps_a_dropped_interrupt_while_compiling():
    """The handler only raised: a drop during the first compile was lost, training ran on."""
    stop = StopRequest()
    dropped(stop._handler)                 # before the first step finished
    with pytest.raises(TrainingInterrupted) as info:
        stop.step_done()                   # the first step finished: stop there
    assert not info.value.before_start and not info.value.aborted


def test_stop_request_stops_at_once_for_a_ctrl_c_caught_before_training():
    restore = interrupt.catch_interrupts()
    try:
        dropped()                          # the commands' handler, before fit()
        assert interrupt.interrupted()
        with pytest.raises(TrainingInterrupted) as info:
            with StopRequest():
                pass
        assert info.value.before_start
    finally:
        restore()


def test_a_dropped_ctrl_c_while_compiling_stops_training_after_the_first_step(
        capsys, monkeypatch, tmp_path):
    """Ctrl-C in JAX's GC callback during the first compile was ignored: the run trained to
    the end and exited 0."""
    step = Trainer.train_step

    def compile_and_drop(self, x, y):
        if self.global_step == 0:
            dropped()                      # StopRequest's handler, the first step compiling
        return step(self, x, y)

    monkeypatch.setattr(Trainer, "train_step", compile_and_drop)
    out = tmp_path / "run"
    status, _, err = call(capsys, "train", *TINY, "--steps", "6", "--out", out)
    assert status == 130, err
    assert "interrupted at step 1 (epoch 1); saved" in err and "Traceback" not in err
    assert ck.load(out / "latest.npz").meta["global_step"] == 1
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_dropped_ctrl_c_before_training_removes_the_new_run(capsys, monkeypatch, tmp_path):
    fit = Trainer.fit

    def drop_then_fit(self):
        dropped()                          # the commands' handler (sizing, setup...)
        return fit(self)

    monkeypatch.setattr(Trainer, "fit", drop_then_fit)
    out = tmp_path / "run"
    status, _, err = call(capsys, "train", *TINY, "--steps", "6", "--out", out)
    assert status == 130, err
    assert "interrupted before the first step finished" in err and not out.exists()


def test_a_dropped_ctrl_c_during_eval_is_interrupted_not_a_score(capsys, monkeypatch,
                                                                 run_dir):
    """eval scored the whole text and exited 0 after a Ctrl-C landed in JAX's GC callback."""
    score = lm_commands.evaluate_tokens

    def drop_then_score(*args, **kwargs):
        dropped()
        return score(*args, **kwargs)

    monkeypatch.setattr(lm_commands, "evaluate_tokens", drop_then_score)
    status, out, err = call(capsys, "eval", run_dir)
    assert status == 130 and out == ""
    assert err.strip() == "scanrnn eval: interrupted"


def test_the_report_of_a_dropped_interrupt_stays_off_the_terminal():
    """Python prints "Exception ignored in: <function _xla_gc_callback>" with a traceback."""
    seen = []
    sys.unraisablehook = seen.append
    restore = interrupt.catch_interrupts()
    try:
        def report(exc):
            return types.SimpleNamespace(exc_type=type(exc), exc_value=exc, exc_traceback=None,
                                         err_msg=None, object=None)
        sys.unraisablehook(report(KeyboardInterrupt()))
        assert seen == []                  # a KeyboardInterrupt: recorded, not printed
        other = report(ValueError("x"))
        sys.unraisablehook(other)
        assert seen == [other]             # anything else: reported as before
    finally:
        restore()
    assert sys.unraisablehook == seen.append


def test_an_earlier_request_does_not_interrupt_a_later_command(capsys, run_dir):
    """A request recorded before a command started is not that command's Ctrl-C."""
    restore = interrupt.catch_interrupts()
    dropped()
    restore()
    status, out, _ = call(capsys, "eval", run_dir)
    assert status == 0 and "loss" in out
