"""Helpers for driving the GUI from tests and scripts (no pytest dependency).

* :class:`GapMonitor` — a 10 ms QTimer on the UI thread recording the longest gap between its
  ticks: the longest time the UI thread was blocked while something ran.
* :func:`bench_outputs` — the state of every output of the simulated bench, read from the
  instrument twins through ``backend.sim_handles`` (source output, AWG levels, switch matrix),
  and :func:`outputs_all_off`.
"""

from __future__ import annotations

import time
from typing import Any

from PyQt6.QtCore import QObject, QTimer

__all__ = ["GapMonitor", "bench_outputs", "keithley_commands", "outputs_all_off"]


class GapMonitor(QObject):
    """Longest interval between ticks of a ``interval_ms`` timer on the UI thread (s)."""

    def __init__(self, interval_ms: int = 10) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setInterval(int(interval_ms))
        self.timer.timeout.connect(self._tick)
        self.max_gap = 0.0
        self.ticks = 0
        self._last: float | None = None

    def start(self) -> None:
        self.max_gap, self.ticks, self._last = 0.0, 0, time.perf_counter()
        self.timer.start()

    def stop(self) -> float:
        """Stop; returns the longest gap (s)."""
        self._tick()
        self.timer.stop()
        return self.max_gap

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.max_gap = max(self.max_gap, now - self._last)
        self._last = now
        self.ticks += 1


def bench_outputs(backend: Any) -> dict[str, Any]:
    """Output state of a simulated bench (``backend.sim_handles``).

    Returns ``source_on`` (6487 output), ``source_v`` (V, 0 when off), ``awg`` (the two AWG bus
    levels, V), ``matrix_enabled`` (False = released, every line floating) and ``lines`` (bus
    codes of rows + columns as the twin's switch matrix sees them).
    """
    h = backend.sim_handles
    if h is None:
        raise ValueError("not a simulated bench (no sim_handles)")
    k = h.adapter
    bench = h.sim_bench
    return {
        "source_on": bool(k.output_on),
        "source_v": float(k.output_voltage),
        "awg": [float(a) for a in bench.awg],
        "matrix_enabled": bool(bench.matrix.enabled),
        "lines": list(bench.matrix.rows) + list(bench.matrix.cols),
        "float_code": int(bench.matrix.float_code),
    }


def outputs_all_off(backend: Any) -> bool:
    """True when the 6487 output is off, both AWG levels are 0 V and the matrix is released."""
    s = bench_outputs(backend)
    return (
        not s["source_on"]
        and s["source_v"] == 0.0
        and all(a == 0.0 for a in s["awg"])
        and not s["matrix_enabled"]
        and all(c == s["float_code"] for c in s["lines"])
    )


def keithley_commands(backend: Any) -> list[str]:
    """Every command the 6487 twin received, in order."""
    return list(backend.sim_handles.adapter.commands)


def open_main_window(
    tmp_path: Any, *, bench: str = "sim", connect: bool = True, timeout_s: float = 120.0
):
    """A shown :class:`gui.app.MainWindow` with settings and data files under ``tmp_path``,
    connected to ``bench`` (raises RuntimeError if the connection fails)."""
    from pathlib import Path

    from gui.app import MainWindow
    from gui.settings import Settings

    tmp = Path(tmp_path)
    window = MainWindow(Settings(tmp / "settings.ini"), bench=bench, data_dir=tmp / "data")
    window.resize(1400, 900)
    window.show()
    if connect:
        window.connect_bench(bench)
        if not window.runner.wait_idle(timeout_s) or window.session is None:
            lines = "\n".join(window.log_lines()[-5:])
            window.shutdown()
            raise RuntimeError(f"could not connect to {bench}:\n{lines}")
    return window
