"""scanrnn.inspect: explain(), its output formats, the rewrite capture and `scanrnn graph`.

One report is built once (module fixture) on the tiny d2l training step: JAX compiles
and runs it, Numba only compiles it (its machine-code compile happens at the first call,
30-70 s cold on 2 cores).  The C and Python backends (the Python backend runs Scan bodies
on PyTensor's C VM, so both compile C code: over a minute for that graph with a cold
cache) are covered by the every-backend test on a small forward-only graph.
"""

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytensor
import pytest

import scanrnn
from scanrnn.compile import mode_for
from scanrnn.inspect import DotNotFound, build_spec, capture_rewrites, explain, theano_seed_spec
from scanrnn.inspect import cli as graph_cli
from scanrnn.inspect.specs import parse_spec

ROOT = Path(__file__).resolve().parents[1]
D2L = "d2l:hidden=8,vocab=8,seq=5,batch=2"
INSTALLED = scanrnn.backends()["installed"]
# the rewrite list is checked on a backend that compiles the graph as given (JAX pins shapes)
REWRITES_ON = "numba" if "numba" in INSTALLED else "python"
RUN = ["jax"] if "jax" in INSTALLED else ["python"]


FIXTURE_BACKENDS = list(dict.fromkeys(RUN + [REWRITES_ON]))


@pytest.fixture(scope="module")
def report():
    # the scans themselves are studied: on JAX they would run on vendor kernels
    return explain(D2L, backends=FIXTURE_BACKENDS, run=RUN, min_time_s=0.05, kernels=False)


@pytest.fixture(scope="module")
def primary(report):
    return report.primary


# -- graph before / after ---------------------------------------------------------------
def test_every_requested_backend_compiles(report):
    assert [r.backend for r in report.runs] == FIXTURE_BACKENDS
    failed = {r.backend: r.error for r in report.runs if not r.ok}
    assert not failed


def test_node_counts_drop_after_rewriting(report):
    assert report.before.n_nodes == sum(report.before.op_counts.values())
    for run in report.runs:
        assert run.n_nodes == sum(run.op_counts.values())
        assert report.before.n_nodes > run.n_nodes, run.backend


def test_forward_and_gradient_scans_with_inner_graphs(report, primary):
    for stats in (report.before, primary):
        roles = {s.role for s in stats.scans}
        assert roles == {"forward", "gradient"}, stats
        for scan in stats.scans:
            assert "rnn_1" in scan.name
            assert scan.inner_nodes > 0 and scan.inner_text.strip()
            kinds = {s.kind for s in scan.inputs}
            assert "sequence" in kinds and "non-sequence" in kinds
    fwd = next(s for s in primary.scans if s.role == "forward")
    # the recurrent weight is read inside the loop, under its parameter name
    assert "rnn_1.W_h" in [s.inner for s in fwd.inputs if s.kind == "non-sequence"]
    assert fwd.read_by_gradient
    assert fwd.n_steps == 5
    # h: (T + 1, B, H) float32 trace; one step (B, H)
    [h] = [s for s in fwd.outputs if s.kind == "sit-sot"]
    assert h.shape == [6, 2, 8] and h.nbytes == 6 * 2 * 8 * 4 and h.step_nbytes == 2 * 8 * 4
    assert fwd.changes
    text = report.text()
    for scan in primary.scans:
        assert f"Scan {scan.name!r}" in text
    assert "inner graph:" in text


# -- rewrites ----------------------------------------------------------------------------
NAME = re.compile(r"^rewriting: rewrite (.+?) replaces (node )?")


def _direct_rewrite_names(spec, backend):
    """What PyTensor itself prints, parsed independently of scanrnn.inspect."""
    # the graph scanrnn.function hands to PyTensor: OpFromGraph nodes already inlined
    # from private copies (so PyTensor's own inline_ofg_expansion has nothing to do)
    from scanrnn.compile import _with_private_inner_graphs
    keys = list(spec.updates)
    graph = _with_private_inner_graphs([*spec.outputs, *spec.updates.values()])
    outputs, updates = graph[:len(spec.outputs)], dict(zip(keys, graph[len(spec.outputs):]))
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), \
            pytensor.config.change_flags(optimizer_verbose=True):
        pytensor.function(spec.inputs, outputs, updates=updates, mode=mode_for(backend))
    names = []
    for line in buffer.getvalue().splitlines():
        m = NAME.match(line)
        if not m:
            continue
        name = re.sub(r"<class '(?:[\w.]*\.)?(\w+)'>", r"\1", m.group(1))
        if name == "None" or name.startswith("SequentialNodeRewriter("):
            continue
        if name not in names:
            names.append(name)
    return names


def test_rewrites_match_pytensor_optimizer_verbose(report):
    run = report.run(REWRITES_ON)
    # everything pytensor.function did (its rewriting stage, nested compilations, code
    # generation), in order; "first_call" holds what the first call compiled lazily
    names = []
    for phase in ("graph", "inner", "codegen"):
        names += [n for n, _ in run.rewrites_by_phase.get(phase, []) if n not in names]
    assert names and all(count >= 1 for _, count in run.rewrites)
    assert any(n.startswith("scan_") for n in names)
    direct = _direct_rewrite_names(build_spec(D2L), REWRITES_ON)
    assert set(names) == set(direct)
    assert names == direct      # same first-fired order


def test_capture_prints_nothing(capsys):
    x = pytensor.tensor.vector("x")
    with capture_rewrites() as log:
        pytensor.function([x], (x + 0) * 1, mode=mode_for("python"))
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert log.events and log.rewrite_s > 0
    assert "rewriting: rewrite" in log.text


# -- timings and memory ------------------------------------------------------------------
def test_timings_per_backend(report):
    for run in report.runs:
        assert run.rewrite_s > 0 and run.build_s >= 0
        if run.backend in RUN:
            assert run.step_ms > 0 and run.calls >= 4 and run.first_call_s > 0
        else:
            assert run.step_ms is None and run.first_call_s is None


def test_backend_table_has_every_installed_backend():
    from scanrnn.cells import RNNCell
    from scanrnn.recurrent import unroll
    cell = RNNCell(4, 4, name="rnn")
    x = pytensor.tensor.tensor("x", shape=(None, None, 4), dtype="float32")
    h, _ = unroll(cell, x, cell.init_params(0))
    r = explain(([h.sum()], [x]), backends="all", inputs=[np.ones((3, 2, 4), "float32")],
                run=[b for b in INSTALLED if b != "numba"], min_time_s=0.01)
    assert [run.backend for run in r.runs] == INSTALLED
    assert all(run.ok for run in r.runs), [run.error for run in r.runs]
    table = r.text().split("4. Compile and run")[1].split("\n-- ")[0]
    for run in r.runs:
        row = re.search(rf"^\s+{run.backend}\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)\s+(\S+)",
                        table, re.MULTILINE)
        assert row, run.backend
        assert int(row.group(1)) == run.n_nodes
        if run.backend != "numba":
            assert float(row.group(5)) > 0                # steady step, ms


# -- formats -----------------------------------------------------------------------------
def test_json_dot_and_text_formats(report, tmp_path):
    data = json.loads(report.to_json())
    assert data["format"] == "scanrnn-graph-report"
    assert [r["backend"] for r in data["runs"]] == FIXTURE_BACKENDS
    assert data["before"]["scans"][0]["inputs"]
    dot = report.to_dot()
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert "subgraph cluster_before" in dot and "subgraph cluster_after_" in dot
    assert re.search(r"subgraph cluster_after_\w+scan\d+ \{", dot)
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', dot)
    assert unquoted.count("{") == unquoted.count("}")
    if shutil.which("dot"):
        proc = subprocess.run(["dot", "-Tcanon"], check=False, input=dot, capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr[:500]
    for fmt in ("text", "json", "dot"):
        path = report.save(tmp_path / f"r.{fmt}", fmt)
        assert path.stat().st_size > 100
    assert json.loads((tmp_path / "r.json").read_text())["runs"]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
def test_svg_and_png(tmp_path):
    small = explain(theano_seed_spec(vocab=8, hidden=8, seq=5), stage="before")
    svg = small.save(tmp_path / "g.svg").read_text()
    assert "<svg" in svg and "cluster" in svg
    png = small.save(tmp_path / "g.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_svg_without_dot_is_a_clear_error(report, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DotNotFound, match="apt-get install graphviz"):
        report.save(tmp_path / "g.svg")


# -- targets -----------------------------------------------------------------------------
def test_explain_a_compiled_function_keeps_weights_and_gives_jax_text():
    if "jax" not in INSTALLED:
        pytest.skip("JAX not installed")
    spec = theano_seed_spec(vocab=8, hidden=8, seq=5)
    f = scanrnn.function(spec.inputs, spec.outputs, spec.updates, backend="jax")
    weights = [np.array(p.get_value()) for p in spec.params()]
    r = explain(f, inputs=spec.example_args, jax_text=True, min_time_s=0.05)
    assert [run.backend for run in r.runs] == ["jax"]           # "auto" = f's backend
    for p, w in zip(spec.params(), weights):
        np.testing.assert_array_equal(np.asarray(p.get_value()), w)
    assert r.primary.step_ms > 0
    assert "let" in r.primary.jax_text["jaxpr"]
    assert "func.func" in r.primary.jax_text["stablehlo"]
    assert "6. JAX program" in r.text()


def test_explain_symbolic_graph_before_only():
    spec = theano_seed_spec(vocab=8, hidden=8, seq=5)
    r = explain((spec.outputs, spec.inputs, spec.updates), stage="before")
    assert r.runs == [] and {s.role for s in r.before.scans} == {"forward", "gradient"}
    assert r.before.scans[0].name == "rnn"
    assert "rnn.W_h" in r.before.scans[0].params
    with pytest.raises(ValueError, match="stage"):
        explain(spec, stage="later")
    with pytest.raises(TypeError, match="cannot study"):
        explain(42)
    with pytest.raises(ValueError, match="example input"):
        explain(spec, inputs=[1, 2])


def test_model_specs():
    assert parse_spec("lstm:hidden=64,seq=20") == ("lstm", {"hidden": 64, "seq": 20})
    assert parse_spec("d2l") == ("d2l", {})
    with pytest.raises(ValueError, match="unknown model"):
        parse_spec("transformer")
    with pytest.raises(ValueError, match="unknown key 'hiden'.*hidden"):
        parse_spec("lstm:hiden=3")
    with pytest.raises(ValueError, match="key=value"):
        parse_spec("gru:hidden")
    spec = build_spec("gru:hidden=4,vocab=6,seq=3,batch=2,layers=2")
    assert [v.name for v in spec.inputs] == ["x", "y", "gru_1.h0", "gru_2.h0"]
    assert spec.example_args[0].shape == (3, 2)


# -- the command line --------------------------------------------------------------------
def test_graph_cli_rejects_a_path_that_is_not_a_run_dir(tmp_path, capsys):
    assert graph_cli.main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a run directory" in err
    (tmp_path / "notes.txt").write_text("x")
    assert graph_cli.main([str(tmp_path)]) == 2
    assert "no scanrnn config.json" in capsys.readouterr().err
    assert graph_cli.main(["--model", "transformer"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert graph_cli.main(["--model", "d2l", "--format", "svg"]) == 2
    assert "--out" in capsys.readouterr().err


def test_scanrnn_graph_on_a_trained_run_dir(tmp_path, capsys):
    from scanrnn import cli
    run_dir = tmp_path / "run"
    backend = "jax" if "jax" in INSTALLED else "python"
    status = cli.main(["train", "--max-chars", "3000", "--cell", "rnn", "--layers", "1",
                       "--hidden", "8", "--embed", "0", "--dropout", "0", "--seq-len", "5",
                       "--batch-size", "2", "--max-tokens", "20", "--backend", backend,
                       "--out", str(run_dir), "--quiet", "--no-progress"])
    assert status == 0 and (run_dir / "config.json").exists()
    capsys.readouterr()
    out = tmp_path / "graph.json"
    assert cli.main(["graph", str(run_dir), "--format", "json", "--out", str(out),
                     "--no-kernels"]) == 0
    data = json.loads(out.read_text())
    assert [r["backend"] for r in data["runs"]] == [backend]
    assert data["runs"][0]["ok"] and data["runs"][0]["step_ms"] > 0
    assert {s["role"] for s in data["runs"][0]["scans"]} == {"forward", "gradient"}
    assert data["runs"][0]["kernels"] == []
    assert cli.main(["graph", str(tmp_path / "nope")]) == 2


def test_graph_study_example_quick():
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "graph_study.py"),
                           "--quick"], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for heading in ("1. The symbolic step", "2. The second Scan", "3. The rewrites",
                    "4. What each backend runs", "5. The same model"):
        assert heading in out
    assert "grad_of_rnn" in out and "sit-sot" in out and "mit-mot" in out


@pytest.mark.skipif("jax" not in INSTALLED, reason="the vendor kernels run under JAX")
def test_the_report_names_the_kernel_each_recurrence_runs_on():
    from scanrnn.kernels import unavailable_reason
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"oneDNN kernels unavailable here: {reason}")
    r = explain(D2L, backends="jax", run=False, kernels=True)
    [line] = r.runs[0].kernels
    assert "rewrite onednn_recurrence -> oneDNN vanilla_rnn" in line and "rnn_1" in line
    assert not r.runs[0].scans                     # the loop now runs inside the kernel
    assert line in r.text()
    scans = explain(D2L, backends="jax", run=False, kernels=False).runs[0]
    assert scans.kernels == [] and {s.role for s in scans.scans} == {"forward", "gradient"}
