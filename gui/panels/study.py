"""Study panel: load an ``xbar study`` result (``study.json``) and show what it found.

* The summary table: one row per (method, loop configuration) with the number of runs, the
  software and hardware accuracy and the relative loss, each as mean ± the half-width of its
  95 % confidence interval over bench × training seeds, beside the paper's figure.
* The ablation table (relative loss saved by each step of the full loop, with its CI).
* Per-run plots: every run's hardware accuracy as a point over its row, the mean with the CI as
  an error bar (figure 7b's content), and the histogram of hardware − software output errors
  per method without the loop (figure 7c).

The panel reads the JSON only (``json`` accepts the NaN that a single-run CI is written as); it
neither runs a study nor opens a bench (``xbar study`` does, in worker processes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QLabel, QSplitter, QTableWidgetItem, QVBoxLayout, QWidget

from gui import plotting
from gui.panels.base import AppServices, Panel
from gui.panels.calibration import NumericItem
from gui.widgets import button, hbox, set_panes, table

__all__ = ["SUMMARY_COLUMNS", "StudyFileError", "StudyPanel", "load_study", "pct"]

#: Summary table columns.
SUMMARY_COLUMNS = (
    "method",
    "loop",
    "runs",
    "software %",
    "hardware %",
    "rel. loss %",
    "paper loss %",
)
_JSON_FILES = "xbar study result (study.json *.json);;All files (*)"
_REQUIRED = ("spec", "summary", "runs")


class StudyFileError(ValueError):
    """A file that is not an ``xbar study`` result (the message names what is wrong)."""


def load_study(path: str | Path) -> dict[str, Any]:
    """The ``xbar study`` result in ``path`` (its ``study.json``, or the folder holding it).

    Raises :class:`StudyFileError` naming the file and what is missing or malformed."""
    p = Path(path)
    if p.is_dir():
        p = p / "study.json"
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise StudyFileError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    except json.JSONDecodeError as exc:
        raise StudyFileError(f"{p}: not JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise StudyFileError(f"{p}: not an xbar study result (a JSON object is expected)")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise StudyFileError(f"{p}: not an xbar study result (missing {', '.join(missing)})")
    for i, row in enumerate(data["summary"]):
        for key in ("method", "loop", "runs", "software", "hardware", "loss"):
            if key not in row:
                raise StudyFileError(f"{p}: summary row {i + 1} has no '{key}'")
    return data


def pct(mean: float | None, half: float | None) -> str:
    """``mean ± half`` in percent with one decimal ("-" for a missing mean, no ± for a
    missing or non-finite CI, e.g. a single run)."""
    if mean is None or not math.isfinite(mean):
        return "-"
    text = f"{100 * mean:.1f}"
    if half is not None and math.isfinite(half):
        text += f" ± {100 * half:.1f}"
    return text


def _loop_name(loop: list[str]) -> str:
    return "+".join(loop) or "none"


class StudyPanel(Panel):
    """Load and show an ``xbar study`` result."""

    title = "Study"

    def __init__(self, app: AppServices, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.study: dict[str, Any] | None = None
        self.path: Path | None = None
        v = QVBoxLayout(self)
        v.setContentsMargins(4, 4, 4, 4)
        self.load_button = button(
            "Load study…", self._ask_load, "open the study.json that xbar study --out wrote"
        )
        self.source = QLabel(
            "No study loaded: run `xbar study --out DIR`, then load DIR/study.json"
        )
        self.source.setWordWrap(True)
        v.addLayout(hbox(self.load_button, (self.source, 1)))
        split = QSplitter(Qt.Orientation.Vertical)
        tables = QWidget()
        tv = QVBoxLayout(tables)
        tv.setContentsMargins(0, 0, 0, 0)
        self.summary_table = table(SUMMARY_COLUMNS, stretch=1, sort=None)
        self.summary_table.setToolTip("mean ± half-width of the 95 % CI over the runs")
        self.ablation_table = table(("method", "step", "loss saved (points)"), stretch=1, sort=None)
        tv.addWidget(self.summary_table, 3)
        tv.addWidget(QLabel("Ablation: relative loss saved by each step of the full loop"))
        tv.addWidget(self.ablation_table, 1)
        split.addWidget(tables)
        plots = QSplitter(Qt.Orientation.Horizontal)
        self.runs_plot = plotting.plot_widget(
            "hardware accuracy per run (mean ± 95 % CI)", x="method / loop", y="accuracy (%)"
        )
        self.errors_plot = plotting.plot_widget(
            "output errors without the loop", x="hardware − software", y="density"
        )
        plotting.no_si_prefix(self.errors_plot.getPlotItem(), "left", "bottom")
        plots.addWidget(self.runs_plot)
        plots.addWidget(self.errors_plot)
        split.addWidget(plots)
        set_panes(split, (1, 1), (260, 300))
        v.addWidget(split, 1)

    # -- loading ------------------------------------------------------------------------------
    def _ask_load(self) -> None:
        path = self.ask_open_file("Load an xbar study result", "study", _JSON_FILES)
        if path:
            self.load(path)

    def load(self, path: str | Path) -> bool:
        """Show the study in ``path``; False (the reason logged) if it is not one."""
        try:
            data = load_study(path)
        except StudyFileError as exc:
            self.app.log(f"Cannot load the study: {exc}", "error")
            return False
        self.study, self.path = data, Path(path)
        self.app.settings.set_last_dir("study", self.path)
        spec = data["spec"]
        n_runs = len(data["runs"])
        self.source.setText(
            f"{self.path}: bench {spec.get('bench', '?')}, profile {spec.get('profile') or '-'}, "
            f"{len(spec.get('bench_seeds', []))} bench × {len(spec.get('train_seeds', []))} "
            f"training seeds, {spec.get('test_points', '?')} test points, characterisation "
            f"{spec.get('characterise', '?')}; {n_runs} runs"
        )
        self._fill_summary(data["summary"])
        self._fill_ablation(data.get("ablation") or [])
        self._plot_runs(data["summary"], data["runs"])
        self._plot_errors(spec.get("methods") or [], data["runs"])
        self.app.log(f"Study loaded from {self.path} ({n_runs} runs)", "ok")
        return True

    # -- tables -------------------------------------------------------------------------------
    def _fill_summary(self, rows: list[dict[str, Any]]) -> None:
        t = self.summary_table
        t.setRowCount(len(rows))
        for i, r in enumerate(rows):
            paper = r.get("paper_loss")
            cells = (
                (r["method"], None),
                (_loop_name(r["loop"]), None),
                (str(r["runs"]), float(r["runs"])),
                (pct(r["software"], r.get("software_ci95")), r["software"]),
                (pct(r["hardware"], r.get("hardware_ci95")), r["hardware"]),
                (pct(r["loss"], r.get("loss_ci95")), r["loss"]),
                ("" if paper is None else f"{100 * paper:.0f}", paper),
            )
            for j, (text, value) in enumerate(cells):
                item = QTableWidgetItem(text) if value is None else NumericItem(text, value)
                t.setItem(i, j, item)

    def _fill_ablation(self, rows: list[dict[str, Any]]) -> None:
        t = self.ablation_table
        t.setRowCount(len(rows))
        for i, a in enumerate(rows):
            for j, text in enumerate(
                (a["method"], a["step"], pct(a.get("loss_saved"), a.get("ci95")))
            ):
                t.setItem(i, j, QTableWidgetItem(text))

    # -- plots --------------------------------------------------------------------------------
    def _plot_runs(self, summary: list[dict[str, Any]], runs: list[dict[str, Any]]) -> None:
        p = self.runs_plot.getPlotItem()
        p.clear()
        ticks = []
        for k, r in enumerate(summary):
            mine = [
                100 * u["hardware"]
                for u in runs
                if u["method"] == r["method"] and list(u["loop"]) == list(r["loop"])
            ]
            jitter = np.linspace(-0.15, 0.15, len(mine)) if len(mine) > 1 else np.zeros(len(mine))
            p.addItem(
                pg.ScatterPlotItem(
                    x=k + jitter, y=mine, size=8, brush=plotting.colour(k), pen=None, symbol="o"
                )
            )
            half = r.get("hardware_ci95")
            half = 100 * half if half is not None and math.isfinite(half) else 0.0
            p.addItem(
                pg.ErrorBarItem(
                    x=np.array([k + 0.3]),
                    y=np.array([100 * r["hardware"]]),
                    height=np.array([2 * half]),
                    beam=0.12,
                    pen=pg.mkPen("k", width=2),
                )
            )
            mean = 100 * r["hardware"]
            p.plot([k + 0.2, k + 0.4], [mean, mean], pen=pg.mkPen("k", width=3))  # the mean
            ticks.append((k, f"{r['method']} / {_loop_name(r['loop'])}"))
        p.getAxis("bottom").setTicks([ticks])
        p.setYRange(0, 100)

    def _plot_errors(self, methods: list[str], runs: list[dict[str, Any]]) -> None:
        p = self.errors_plot.getPlotItem()
        p.clear()
        p.addLegend(offset=(5, 5))
        for k, method in enumerate(methods):
            errs = [
                np.asarray(u["output_errors"], dtype=float)
                for u in runs
                if u["method"] == method and not u["loop"] and u.get("output_errors") is not None
            ]
            if not errs:
                continue
            e = np.concatenate(errs)
            e = e[np.isfinite(e)]
            if e.size == 0:
                continue
            density, edges = np.histogram(e, bins=40, density=True)
            p.plot(
                edges, density, stepMode="center", pen=pg.mkPen(plotting.colour(k), width=2),
                name=method,
            )  # fmt: skip

    # -- for tests and screenshots -------------------------------------------------------------
    def summary_texts(self) -> list[list[str]]:
        """The summary table's texts, row by row."""
        t = self.summary_table
        return [[t.item(i, j).text() for j in range(t.columnCount())] for i in range(t.rowCount())]
