"""Render a :class:`~scanrnn.inspect.report.GraphReport` as text, Graphviz dot, SVG or PNG.

The dot graph puts the graph before rewriting and each backend's rewritten graph side
by side (one cluster each); every Scan node gets a dashed cluster holding its inner
graph (``subgraph cluster_<stage>_scan<k>``), whose inputs are labelled with their kind
and the outer variable they come from (``sit-sot: h0[t-1]``, ``non-sequence: rnn.W_h``).
SVG and PNG are made by Graphviz's ``dot`` program when it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap

from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.scan.op import Scan

from .analysis import KIND_NOTES, scan_slots
from .naming import describe, op_label

__all__ = ["DotNotFound", "format_bytes", "render_dot", "render_image", "render_text"]


INNER_LINES = 60


class DotNotFound(RuntimeError):
    """Graphviz's ``dot`` program is not installed."""


def format_bytes(n) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return str(n)


def _fmt(value, spec=".3f", missing="-"):
    return missing if value is None else format(value, spec)


def _section(title: str, width: int) -> str:
    return f"\n-- {title} " + "-" * max(3, width - len(title) - 4)


def _table(header, rows) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    def line(r):
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths))]
        return "  " + "  ".join(cells).rstrip()
    return [line(header)] + [line(r) for r in rows]


def _shape(slot):
    if slot.shape is None:
        return ""
    return f"{tuple(slot.shape)} {slot.dtype} = {format_bytes(slot.nbytes)}"


def _scan_lines(scan, width: int, inner: bool = True) -> list[str]:
    steps = f", {scan.n_steps} steps" if scan.n_steps is not None else ""
    lines = [f"  Scan {scan.name!r} ({scan.role}{steps}); parameters: "
             f"{', '.join(scan.params) or '-'}"]
    for slot in scan.inputs:
        if slot.kind == "n_steps":
            continue
        what = slot.inner or ""
        shape = _shape(slot)
        lines.append(f"    in  {slot.kind:<12} {what:<22} <- {slot.outer}"
                     + (f"   [{shape}]" if shape else ""))
    for slot in scan.outputs:
        shape = _shape(slot)
        lines.append(f"    out {slot.kind:<12} {slot.inner[:22]:<22} -> {slot.outer}"
                     + (f"   [{shape}]" if shape else ""))
    if scan.per_step_bytes is not None:
        lines.append(f"    memory: {format_bytes(scan.per_step_bytes)} written per step; "
                     f"traced outputs {format_bytes(scan.traced_bytes)}"
                     f"{' (read by the gradient scan)' if scan.read_by_gradient else ''}; "
                     f"untraced {format_bytes(scan.untraced_bytes)}")
    for change in scan.changes:
        for k, part in enumerate(textwrap.wrap(change, width - 8) or [""]):
            lines.append(("    * " if k == 0 else "      ") + part)
    ops = ", ".join(f"{k} x{v}" for k, v in list(scan.inner_ops.items())[:8])
    lines.append(f"    inner graph: {scan.inner_nodes} nodes ({ops})")
    if inner and scan.inner_text:
        body = scan.inner_text.rstrip().splitlines()
        lines += ["      " + line for line in body[:INNER_LINES]]
        if len(body) > INNER_LINES:
            lines.append(f"      ... {len(body) - INNER_LINES} more lines (the JSON report has "
                         "the whole inner graph)")
    return lines


def render_text(report, width: int = 100) -> str:
    """The report as readable text (sections: nodes, scans, rewrites, timings, memory)."""
    ok_runs = [r for r in report.runs if r.ok]
    out = _text_header(report, width)
    out += _text_nodes(report, ok_runs, width)
    out += _text_scans(report, ok_runs, width)
    out += _text_rewrites(report, ok_runs, width)
    if not report.runs:
        out.append("\n(stage 'before': nothing was compiled; use stage 'after' or 'both' for "
                   "the rewritten graphs, rewrites, timings and memory)")
        for note in report.notes:
            out += textwrap.wrap("note: " + note, width)
        return "\n".join(out) + "\n"
    out += _text_timings(report, ok_runs, width)
    out += _text_memory(report, ok_runs, width)
    out += _text_jax_and_notes(report, ok_runs, width)
    return "\n".join(out) + "\n"


def _text_header(report, width) -> list[str]:
    """Name, description, inputs, shared variables, versions."""
    out = [f"== scanrnn graph report: {report.name} =="]
    if report.description:
        out += textwrap.wrap(report.description, width)
    out.append("inputs: " + "; ".join(report.inputs))
    if report.params:
        out += textwrap.wrap("shared: " + ", ".join(f"{n} {tuple(s)}" for n, s, _ in
                                                     report.params), width,
                             subsequent_indent="  ")
    if report.versions:
        out.append("versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()))
    return out


def _text_nodes(report, ok_runs, width) -> list[str]:
    """1. Node counts by op type, before and after rewriting."""
    out = []
    out.append(_section("1. Nodes by op type (before / after rewriting)", width))
    columns = (["before"] if report.before else []) + [r.backend for r in ok_runs]
    keys = []
    for counts in ([report.before.op_counts] if report.before else []) + \
            [r.op_counts for r in ok_runs]:
        keys += [k for k in counts if k not in keys]
    rows = []
    for key in keys:
        row = [key]
        if report.before:
            row.append(report.before.op_counts.get(key, "-"))
        row += [r.op_counts.get(key, "-") for r in ok_runs]
        rows.append(row)
    total = ["total"] + ([report.before.n_nodes] if report.before else []) + \
        [r.n_nodes for r in ok_runs]
    out += _table(["op", *columns], rows + [total])
    return out


def _text_scans(report, ok_runs, width) -> list[str]:
    """2. Each Scan: its slots and its body."""
    out = []
    out.append(_section("2. Scans: what each loop carries, and its body", width))
    legend = "; ".join(f"{k}: {v}" for k, v in KIND_NOTES.items() if k != "n_steps")
    out += textwrap.wrap("kinds: " + legend, width)
    if report.before:
        out.append(f"before rewriting ({len(report.before.scans)} scan(s)):")
        for scan in report.before.scans:
            out += _scan_lines(scan, width)
    primary = report.primary
    for r in ok_runs:
        detail = r is primary
        out.append(f"after rewriting for {r.backend} ({len(r.scans)} scan(s))"
                   + ("" if detail else "; inner graphs: see JSON") + ":")
        if r.shapes_note:
            out.append(f"  (shapes not evaluated: {r.shapes_note})")
        for scan in r.scans:
            out += _scan_lines(scan, width, inner=detail)
    return out


def _text_rewrites(report, ok_runs, width) -> list[str]:
    """3. The rewrites that fired, by phase."""
    out = []
    for r in ok_runs:
        if r.rewrite_s is None:      # compiled before explain(): nothing was captured
            continue
        n = sum(c for _, c in r.rewrites)
        out.append(_section(f"3. Rewrites that fired on {r.backend}: {len(r.rewrites)} "
                            f"rewrites, {n} replacements", width))
        for phase, rows in r.rewrites_by_phase.items():
            title = {"graph": "graph rewriting (pytensor.function)",
                     "inner": "nested compilations (inner functions)",
                     "codegen": "at code generation (scan inner graphs)",
                     "first_call": "at the first call (lazily compiled ops)"}[phase]
            out.append(f"  {title}, in the order they first fired:")
            items = [f"{name} x{count}" for name, count in rows]
            out += textwrap.wrap(", ".join(items), width - 4, initial_indent="    ",
                                 subsequent_indent="    ")
        if r.rejected:
            out += textwrap.wrap("  tried but rejected by validation: " + ", ".join(
                f"{k} x{v}" for k, v in r.rejected.items()), width, subsequent_indent="    ")
        for failure in r.rewrite_failures:
            out += textwrap.wrap(f"  rewrite failed (PyTensor skipped it): {failure}", width,
                                 subsequent_indent="    ")
        for line in r.kernels:
            out.append(f"  vendor kernels (scanrnn, before PyTensor's rewrites): {line}")
        if r.internal_replacements:
            out.append(f"  (+ {r.internal_replacements} unnamed internal replacements: "
                       "inner graphs rebuilt by Scan rewrites)")
    return out


def _text_timings(report, ok_runs, width) -> list[str]:
    """4. Compile and run times per backend."""
    out = []
    out.append(_section("4. Compile and run, per backend", width))
    rows = []
    for r in report.runs:
        if not r.ok:
            rows.append([r.backend, "failed", "", "", "", "", ""])
            continue
        rows.append([r.backend, r.n_nodes, _fmt(r.rewrite_s), _fmt(r.build_s),
                     _fmt(r.first_call_s), _fmt(r.step_ms, ".3f"), r.calls or "-"])
    out += _table(["backend", "nodes", "rewrite s", "build s", "first call s", "step ms",
                   "calls"], rows)
    out += textwrap.wrap(
        "rewrite: graph rewriting in pytensor.function; build: the rest of it (linking, code "
        "generation, C compilation); first call: includes Numba/JAX machine-code compilation; "
        "step: median of the following calls. Compilers cache on disk (~/.pytensor), so a "
        "second compile of the same graph is faster.", width)
    for r in report.runs:
        if not r.ok:
            out.append(f"  {r.backend} failed: {r.error}")
    if ok_runs and not any(r.calls for r in ok_runs):
        out.append("  (not run: no example input values, or run=False; pass inputs=[...])")
    return out


def _text_memory(report, ok_runs, width) -> list[str]:
    """5. Memory kept by each scan."""
    out = []
    out.append(_section("5. Memory kept by each scan", width))
    rows = []
    for r in ok_runs:
        for scan in r.scans:
            traced = [s for s in scan.outputs if s.kind in ("sit-sot", "nit-sot", "mit-mot",
                                                            "mit-sot")]
            rows.append([r.backend, scan.name, scan.role, _fmt(scan.n_steps, "d"),
                         format_bytes(scan.per_step_bytes), len(traced),
                         format_bytes(scan.traced_bytes),
                         sum(1 for s in scan.outputs if s.kind == "untraced"),
                         format_bytes(scan.untraced_bytes),
                         "yes" if scan.read_by_gradient else ""])
    if rows:
        out += _table(["backend", "scan", "role", "steps", "per step", "traced",
                       "trace bytes", "untraced", "bytes", "read by grad"], rows)
        out += textwrap.wrap(
            "traced outputs store every step (the history the gradient scan reads back); "
            "untraced states keep only the last value.", width)
    return out


def _text_jax_and_notes(report, ok_runs, width) -> list[str]:
    """6. The JAX program; warnings and notes."""
    out = []
    for r in ok_runs:
        if r.jax_text:
            out.append(_section(f"6. JAX program ({r.backend})", width))
            out.append("jaxpr:")
            out += ["  " + line for line in r.jax_text.get("jaxpr", "").splitlines()]
            out.append("lowered (StableHLO):")
            out += ["  " + line for line in r.jax_text.get("stablehlo", "").splitlines()]
    for r in ok_runs:
        if r.warnings:
            out.append(f"warnings while compiling on {r.backend}: " + " | ".join(
                w[:160] for w in r.warnings[:5]))
    for note in report.notes:
        out += textwrap.wrap("note: " + note, width)
    return out


# -- dot ---------------------------------------------------------------------------------
def _q(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _DotWriter:
    def __init__(self):
        self.lines = []
        self.counter = 0

    def new_id(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def graph(self, fgraph, prefix: str, indent: str, labels=None, depth: int = 0):
        """Emit the nodes of ``fgraph`` (an fgraph or (inputs, outputs) of a Scan body)."""
        labels = labels or {}
        if isinstance(fgraph, tuple):
            inputs, outputs = fgraph
            from pytensor.graph.traversal import io_toposort
            nodes = io_toposort(inputs, outputs)
        else:
            inputs, outputs, nodes = fgraph.inputs, fgraph.outputs, fgraph.toposort()
        ids = {}
        for var in inputs:
            vid = self.new_id(prefix + "v")
            ids[var] = vid
            label = labels.get(var) or describe(var, 0)
            style = 'style=filled fillcolor="#e8e8e8"' if isinstance(var, SharedVariable) \
                else 'style=filled fillcolor="#dbeafe"'
            self.lines.append(f"{indent}{vid} [shape=ellipse {style} label={_q(label)}];")
        scan_count = 0
        for node in nodes:
            nid = self.new_id(prefix + "n")
            for out in node.outputs:
                ids[out] = nid
            if isinstance(node.op, Scan):
                scan_count += 1
                self.lines.append(f'{indent}{nid} [shape=box3d style=filled fillcolor="#fde68a" '
                                  f'label={_q(op_label(node.op))}];')
                if depth < 2:
                    self.scan_cluster(node, f"{prefix}scan{scan_count}", nid, indent)
            else:
                self.lines.append(f"{indent}{nid} [shape=box label={_q(op_label(node.op, 40))}];")
            for inp in node.inputs:
                if isinstance(inp, Constant) and inp not in ids:
                    continue
                src = ids.get(inp)
                if src is None:
                    src = self.new_id(prefix + "v")
                    ids[inp] = src
                    self.lines.append(f"{indent}{src} [shape=ellipse label="
                                      f"{_q(describe(inp, 0))}];")
                self.lines.append(f"{indent}{src} -> {nid};")
        for k, var in enumerate(outputs):
            oid = self.new_id(prefix + "o")
            self.lines.append(f"{indent}{oid} [shape=plaintext label={_q(f'out {k}')}];")
            if var in ids:
                self.lines.append(f"{indent}{ids[var]} -> {oid};")
        return ids

    def scan_cluster(self, node, cluster: str, scan_id: str, indent: str):
        _, _, labels = scan_slots(node)
        kinds = {}
        op = node.op
        info = op.info
        inner = list(op.inner_inputs)
        pos = 0
        for kind, n in (("sequence", info.n_seqs),
                        ("mit-mot", sum(len(t) for t in info.mit_mot_in_slices)),
                        ("mit-sot", sum(len(t) for t in info.mit_sot_in_slices)),
                        ("sit-sot", info.n_sit_sot), ("untraced", info.n_untraced_sit_sot),
                        ("non-sequence", info.n_non_seqs)):
            for var in inner[pos:pos + n]:
                kinds[var] = kind
            pos += n
        full = {var: f"{kinds.get(var, '')}: {label}" for var, label in labels.items()}
        role = "gradient" if (op.name or "").startswith("grad_of_") or info.n_mit_mot \
            else "forward"
        self.lines.append(f"{indent}subgraph cluster_{cluster} {{")
        self.lines.append(f'{indent}  label={_q(f"Scan {op.name}: inner graph ({role})")}; '
                          'style=dashed; color="#b45309";')
        ids = self.graph((inner, list(op.inner_outputs)), cluster + "_", indent + "  ", full,
                         depth=1)
        self.lines.append(f"{indent}}}")
        first = next((ids[v] for v in inner if v in ids), None)
        if first is not None:
            self.lines.append(f"{indent}{scan_id} -> {first} [style=dashed arrowhead=none "
                              f"lhead=cluster_{cluster} color=\"#b45309\"];")


def render_dot(report, stage: str = "both") -> str:
    """Graphviz source of the report's graphs (``stage``: before, after or both)."""
    if stage not in ("before", "after", "both"):
        raise ValueError(f"stage must be before, after or both, got {stage!r}")
    w = _DotWriter()
    w.lines += ["digraph scanrnn {", "  compound=true; rankdir=TB; newrank=true;",
                '  node [fontname="Helvetica" fontsize=10]; edge [color="#555555"];',
                f"  label={_q(f'scanrnn graph: {report.name}')}; labelloc=t; fontsize=14;"]
    panels = []
    if stage in ("before", "both") and report.before_fgraph is not None:
        n = len(report.before_fgraph.apply_nodes)
        panels.append(("before", f"before rewriting ({n} nodes)", report.before_fgraph))
    if stage in ("after", "both"):
        for r in report.runs:
            if r.ok and r.fgraph is not None:
                panels.append((f"after_{r.backend}",
                               f"after rewriting: {r.backend} ({r.n_nodes} nodes)", r.fgraph))
    if not panels:
        raise ValueError(f"the report has no graph for stage {stage!r}")
    for key, title, fgraph in panels:
        w.lines.append(f"  subgraph cluster_{key} {{")
        w.lines.append(f"    label={_q(title)}; style=rounded; color=\"#1f2937\";")
        w.graph(fgraph, f"{key}_", "    ")
        w.lines.append("  }")
    w.lines.append("}")
    return "\n".join(w.lines) + "\n"


def render_image(dot_source: str, format: str, timeout: float = 120.0) -> bytes:
    """Run Graphviz ``dot -T<format>`` on ``dot_source``; raises :class:`DotNotFound`."""
    exe = shutil.which("dot")
    if exe is None:
        raise DotNotFound(
            f"cannot make {format}: Graphviz's 'dot' program is not installed (Debian/Ubuntu: "
            "apt-get install graphviz; macOS: brew install graphviz); save format='dot' and "
            "render it elsewhere")
    proc = subprocess.run([exe, f"-T{format}"], check=False, input=dot_source.encode("utf-8"),
                          capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"dot -T{format} failed: {proc.stderr.decode(errors='replace')[:500]}")
    return proc.stdout

