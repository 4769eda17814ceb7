"""A Keras-style progress bar.

``verbose=1`` on a terminal redraws one line per epoch::

    1173/1173 [==============================] - 5s 4ms/step - loss: 2.1700

(when the output is not a terminal only the finished line is printed);
``verbose=2`` prints just ``- 5s - loss: 2.1700`` at the end of each epoch.
"""

from __future__ import annotations

import sys
import time


def format_logs(values: dict) -> str:
    return "".join(f" - {k}: {v:.4f}" if abs(v) >= 1e-3 or v == 0 else f" - {k}: {v:.4e}"
                   for k, v in values.items())


def _format_time(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{round(seconds)}s"


class Progbar:
    """Progress of ``target`` steps; :meth:`update` with the step reached and the logs."""

    def __init__(self, target: int, width: int = 30, verbose: int = 1, unit: str = "step",
                 stream=None, interval: float = 0.1):
        self.target = int(target)
        self.width = width
        self.verbose = verbose
        self.unit = unit
        self.stream = stream or sys.stdout
        self.interval = interval
        self.start = time.perf_counter()
        self.last_draw = 0.0
        isatty = getattr(self.stream, "isatty", None)
        self.dynamic = bool(isatty and isatty())
        self._line_len = 0

    def due(self) -> bool:
        """Whether a redraw is due (callers can skip computing the logs otherwise)."""
        return self.verbose == 1 and self.dynamic and \
            time.perf_counter() - self.last_draw >= self.interval

    def _line(self, current: int, values: dict, final: bool) -> str:
        elapsed = time.perf_counter() - self.start
        if self.verbose == 2:
            return f" - {_format_time(elapsed)}{format_logs(values)}"
        digits = len(str(self.target))
        filled = int(self.width * current / max(self.target, 1))
        bar = "=" * filled
        if filled < self.width:
            bar = bar[:-1] + ">" if bar else ">"
            bar += "." * (self.width - len(bar))
        per_step = elapsed / max(current, 1)
        if final:
            speed = (f"{per_step * 1e3:.0f}ms/{self.unit}" if per_step >= 1e-3
                     else f"{per_step * 1e6:.0f}us/{self.unit}")
            timing = f" - {_format_time(elapsed)} {speed}"
        else:
            timing = f" - ETA: {_format_time(per_step * (self.target - current))}"
        return f"{current:>{digits}}/{self.target} [{bar}]{timing}{format_logs(values)}"

    def update(self, current: int, values: dict | None = None, final: bool = False) -> None:
        """Draw the bar at ``current`` steps with ``values`` (a ``{name: float}`` dict)."""
        values = values or {}
        self.last_draw = time.perf_counter()
        if self.verbose == 0:
            return
        if not final and not (self.verbose == 1 and self.dynamic):
            return
        line = self._line(current, values, final)
        if self.dynamic and self.verbose == 1:
            pad = " " * max(self._line_len - len(line), 0)
            self.stream.write("\r" + line + pad + ("\n" if final else ""))
            self._line_len = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
