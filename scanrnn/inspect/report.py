"""The result of :func:`scanrnn.inspect.explain`: :class:`GraphReport`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FORMATS", "GraphReport"]

FORMATS = ("text", "json", "dot", "svg", "png")


@dataclass
class GraphReport:
    """What the compiler does to one graph, on one or more backends.

    Attributes
    ----------
    name, description : str
    inputs : list of str
        The inputs, with dtype and shape.
    params : list of [name, shape, dtype]
        The named shared variables (parameters, optimizer state).
    stage : str
        ``"before"``, ``"after"`` or ``"both"``: which graphs were analysed.
    before : GraphStats or None
        The symbolic graph as written.
    runs : list of BackendRun
        One per backend: rewritten graph, rewrites, compile and step times, memory.
    versions : dict
        Library versions.
    notes : list of str
    """

    name: str
    description: str
    inputs: list
    params: list
    stage: str
    before: object = None
    runs: list = field(default_factory=list)
    versions: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    step_source: str | None = None
    # not serialised
    before_fgraph: object = field(default=None, repr=False)

    # -- access ----------------------------------------------------------------------------
    def run(self, backend: str):
        """The :class:`~scanrnn.inspect.measure.BackendRun` of ``backend``."""
        for r in self.runs:
            if r.backend == backend:
                return r
        raise KeyError(f"no run for backend {backend!r}; have: "
                       f"{', '.join(r.backend for r in self.runs)}")

    @property
    def primary(self):
        """The first backend that compiled (its graph is described in detail)."""
        return next((r for r in self.runs if r.ok), None)

    # -- output ----------------------------------------------------------------------------
    def text(self, width: int = 100) -> str:
        """A readable report (see :func:`scanrnn.inspect.render.render_text`)."""
        from .render import render_text
        return render_text(self, width)

    def to_dict(self) -> dict:
        """Plain data (what :meth:`to_json` writes)."""
        def strip(obj):
            if dataclasses.is_dataclass(obj):
                return {f.name: strip(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                        if f.repr}
            if isinstance(obj, dict):
                return {str(k): strip(v) for k, v in obj.items()}
            if isinstance(obj, (list, tuple)):
                return [strip(v) for v in obj]
            return obj
        data = strip(self)
        data["format"] = "scanrnn-graph-report"
        data["version"] = 1
        return data

    def to_json(self, indent: int | None = 1) -> str:
        """The report as JSON."""
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def to_dot(self, stage: str | None = None) -> str:
        """Graphviz source: before / after graphs side by side, each Scan body a cluster."""
        from .render import render_dot
        return render_dot(self, stage or self.stage)

    def render(self, format: str = "text") -> str | bytes:
        """The report in ``format`` (text, json, dot: str; svg: str; png: bytes)."""
        from .render import render_image
        if format == "text":
            return self.text()
        if format == "json":
            return self.to_json()
        if format == "dot":
            return self.to_dot()
        if format in ("svg", "png"):
            data = render_image(self.to_dot(), format)
            return data.decode("utf-8") if format == "svg" else data
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")

    def save(self, path, format: str | None = None) -> Path:
        """Write the report to ``path``; ``format`` defaults to the file's suffix.

        ``svg`` and ``png`` need Graphviz's ``dot`` program (a clear RuntimeError says so).
        """
        path = Path(path)
        if format is None:
            suffix = path.suffix.lstrip(".").lower()
            format = {"txt": "text", "gv": "dot"}.get(suffix, suffix) or "text"
        data = self.render(format)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data if data.endswith("\n") else data + "\n", encoding="utf-8")
        return path

    def __str__(self):
        return self.text()
