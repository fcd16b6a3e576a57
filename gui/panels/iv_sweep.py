"""I-V sweep panel: cyclic sweeps of one cell, plotted live, graded when done.

The sweep runs through :meth:`crossbar.core.Crossbar.iv_sweep` on the worker thread, so every
point is written to the session's data file as it is measured (``/iv/<name>``); points reach the
plot in batches (at most every 50 ms). When the sweep ends its usability (METHODS section 1,
:func:`calibration.usability.usability`) is shown, and the sweep is offered to the calibration
panel (:attr:`IVSweepPanel.sweep_measured`).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from calibration.usability import UsabilityError, UsabilityResult, usability
from crossbar.backend import Biasing, SweepPoint, SweepResult
from gui import plotting
from gui.panels.base import AppServices, Panel
from gui.widgets import double_spin, int_spin
from gui.workers import Task, TaskContext

__all__ = ["IVSweepPanel", "MeasuredSweep", "staircase"]


def staircase(v_pos: float, v_neg: float, step: float) -> np.ndarray:
    """One cycle's voltages: 0 → ``v_pos`` → 0 → ``v_neg`` → 0 in steps of ``step`` (V).

    ``v_pos`` ≥ 0, ``v_neg`` ≤ 0 (0 skips that half), ``step`` > 0. The extremes are always
    included even when they are not a multiple of ``step``; 0 appears at the start, between the
    halves and at the end.
    """
    if not step > 0:
        raise ValueError(f"step must be > 0 V, got {step}")
    if v_pos < 0 or v_neg > 0:
        raise ValueError("V+ must be ≥ 0 and V− ≤ 0")

    def ramp(top: float) -> np.ndarray:
        mag = abs(top)
        n = int(np.floor(mag / step + 1e-9))
        up = np.arange(1, n + 1) * step
        if up.size == 0 or mag - up[-1] > 1e-9:
            up = np.append(up, mag)
        up = np.round(up, 9) * np.sign(top)
        return np.concatenate([up, up[-2::-1], [0.0]])

    parts = [np.array([0.0])]
    if v_pos > 0:
        parts.append(ramp(v_pos))
    if v_neg < 0:
        parts.append(ramp(v_neg))
    return np.concatenate(parts)


@dataclass
class MeasuredSweep:
    """A finished (or aborted) sweep, as handed to the calibration panel."""

    name: str
    row: int
    col: int
    voltage: np.ndarray  # (K,) V
    current: np.ndarray  # (K, cycles) A
    usability: UsabilityResult | None
    error: str | None = None
    data_path: str | None = None


class IVSweepPanel(Panel):
    """Cyclic I-V sweeps of a cell with a live plot."""

    title = "I-V sweep"
    sweep_measured = pyqtSignal(object)  # MeasuredSweep

    def __init__(self, app: AppServices, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.voltage = np.zeros(0)
        self.current = np.zeros((0, 0))
        self.curves: list[pg.PlotDataItem] = []
        self.last: MeasuredSweep | None = None
        self.sweeps: list[MeasuredSweep] = []
        self._build()
        self.session_changed(None)

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QHBoxLayout(self)
        left = QVBoxLayout()
        outer.addLayout(left, 0)

        cell = QGroupBox("Cell")
        f = QFormLayout(cell)
        self.row = QSpinBox()
        self.col = QSpinBox()
        for sb in (self.row, self.col):
            sb.setRange(0, 9)
        f.addRow("Row (word line)", self.row)
        f.addRow("Column (bit line)", self.col)
        self.biasing = QComboBox()
        for b in Biasing:
            self.biasing.addItem(b.value, b)
        self.biasing.setCurrentIndex(list(Biasing).index(Biasing.GROUND))
        self.biasing.setToolTip("How the unselected lines are held during the sweep")
        f.addRow("Unselected lines", self.biasing)
        left.addWidget(cell)

        sweep = QGroupBox("Sweep")
        f = QFormLayout(sweep)
        self.v_pos = double_spin(0.0, 6.0, 6.0, 0.1, 2, " V")
        self.v_neg = double_spin(-6.0, 0.0, -6.0, 0.1, 2, " V")
        self.step = double_spin(0.01, 2.0, 0.1, 0.05, 3, " V")
        self.cycles = int_spin(1, 100, 3)
        self.compliance = double_spin(0.01, 1000.0, 25.0, 5.0, 2, " µA")
        self.compliance.setToolTip("Current limit of the source (protects the device)")
        self.nplc = double_spin(0.01, 10.0, 1.0, 0.5, 2, "")
        self.nplc.setToolTip("Integration time per point in power-line cycles")
        self.sweep_name = QLineEdit()
        self.sweep_name.setPlaceholderText("automatic")
        f.addRow("V+", self.v_pos)
        f.addRow("V−", self.v_neg)
        f.addRow("Step", self.step)
        f.addRow("Cycles", self.cycles)
        f.addRow("Compliance", self.compliance)
        f.addRow("NPLC", self.nplc)
        f.addRow("Name", self.sweep_name)
        self.points_label = QLabel()
        f.addRow("Points", self.points_label)
        for w in (self.v_pos, self.v_neg, self.step, self.cycles):
            w.valueChanged.connect(self._update_points)
        left.addWidget(sweep)

        self.start = QPushButton("Start sweep")
        self.start.setStyleSheet("font-weight: bold; padding: 6px")
        self.start.clicked.connect(self.start_sweep)
        left.addWidget(self.start)

        self.log_scale = QCheckBox("log |I|")
        self.log_scale.setChecked(bool(self.app.settings.get("plot/iv_log")))
        self.log_scale.toggled.connect(self._set_log)
        left.addWidget(self.log_scale)

        res = QGroupBox("Usability (METHODS §1)")
        v = QVBoxLayout(res)
        self.result_label = QLabel("—")
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label.setWordWrap(True)
        self.result_label.setMinimumWidth(240)
        v.addWidget(self.result_label)
        left.addWidget(res)
        left.addStretch(1)

        self.plot = plotting.plot_widget("I-V", x="V", x_units="V", y="I", y_units="A")
        self.plot.getPlotItem().addLegend(offset=(10, 10))
        outer.addWidget(self.plot, 1)
        self._set_log(self.log_scale.isChecked())
        self._update_points()

    # -- state -----------------------------------------------------------------------------------
    def session_changed(self, session) -> None:
        if session is not None:
            rows, cols = session.shape
            self.row.setMaximum(rows - 1)
            self.col.setMaximum(cols - 1)
            vmax = session.max_voltage
            self.v_pos.setMaximum(vmax)
            self.v_neg.setMinimum(-vmax)
            self.compliance.setMaximum(session.max_compliance * 1e6)
        self._update_enabled()

    def busy_changed(self, busy: bool) -> None:
        self._update_enabled()

    def _update_enabled(self) -> None:
        ok = self.app.session is not None and not self.app.runner.busy
        self.start.setEnabled(ok)

    def set_cell(self, row: int, col: int) -> None:
        """Select the cell to sweep (e.g. from the crossbar map)."""
        self.row.setValue(int(row))
        self.col.setValue(int(col))

    def voltages(self) -> np.ndarray:
        """The staircase of one cycle for the current settings (V)."""
        return staircase(self.v_pos.value(), self.v_neg.value(), self.step.value())

    def _update_points(self) -> None:
        try:
            n = self.voltages().size
            self.points_label.setText(f"{n} per cycle, {n * self.cycles.value()} in all")
        except ValueError as exc:
            self.points_label.setText(str(exc))

    def save_settings(self) -> None:
        self.app.settings.set("plot/iv_log", self.log_scale.isChecked())

    # -- run -------------------------------------------------------------------------------------
    def start_sweep(self) -> bool:
        """Start a sweep with the panel's settings; False if it cannot start now."""
        session = self.app.session
        if session is None:
            self.app.log("Connect a bench first.", "warning")
            return False
        try:
            v = self.voltages()
        except ValueError as exc:
            self.app.log(f"I-V sweep: {exc}", "error")
            return False
        row, col = self.row.value(), self.col.value()
        cycles = self.cycles.value()
        compliance = self.compliance.value() * 1e-6
        nplc = self.nplc.value()
        biasing = self.biasing.currentData()
        name = self.sweep_name.text().strip() or (
            f"iv_{_dt.datetime.now().strftime('%Y%m%d_%H%M%S')}_r{row}c{col}"
        )
        crossbar = session.crossbar
        store_path = str(session.data_path) if session.data_path else None

        def run(ctx: TaskContext) -> tuple[SweepResult, UsabilityResult | None, str | None]:
            result = crossbar.iv_sweep(
                row,
                col,
                v,
                compliance=compliance,
                cycles=cycles,
                nplc=nplc,
                biasing=biasing,
                name=name if session.datastore is not None else None,
                progress=ctx.progress,
                on_point=ctx.emit,
            )
            try:
                return result, usability(result.voltage, result.current), None
            except UsabilityError as exc:
                return result, None, str(exc)

        self._reset_plot(v, cycles)
        self.plot.getPlotItem().setTitle(f"I-V of cell ({row}, {col}) — {name}", size="11pt")
        self.result_label.setText("sweeping…")
        self._pending = (name, row, col, store_path)
        task = Task(
            f"I-V sweep of cell ({row}, {col})",
            run,
            on_items=self._on_points,
            on_done=self._on_done,
            on_aborted=self._on_aborted,
            on_error=self._on_error,
        )
        started = self.app.run_bench_task(task)
        if started:
            self.app.log(
                f"I-V sweep of ({row}, {col}): {v.max():g} / {v.min():g} V, step "
                f"{self.step.value():g} V, {cycles} cycle(s), compliance {compliance * 1e6:g} µA, "
                f"NPLC {nplc:g}, {biasing.value} biasing"
            )
        return started

    # -- plot ------------------------------------------------------------------------------------
    def _reset_plot(self, v: np.ndarray, cycles: int) -> None:
        p = self.plot.getPlotItem()
        for c in self.curves:
            p.removeItem(c)
        if p.legend is not None:
            p.legend.clear()
        self.voltage = np.asarray(v, dtype=float)
        self.current = np.full((v.size, cycles), np.nan)
        self.curves = []
        for c in range(cycles):
            item = p.plot(
                [],
                [],
                **plotting.markers(plotting.colour(c), 4, line_width=1),
                name=f"cycle {c + 1}",
                connect="finite",
            )
            self.curves.append(item)

    def _on_points(self, points: list[SweepPoint]) -> None:
        touched = set()
        for p in points:
            if 0 <= p.index < self.current.shape[0] and 0 <= p.cycle < self.current.shape[1]:
                self.current[p.index, p.cycle] = p.current
                touched.add(p.cycle)
        for c in touched:
            self._redraw_cycle(c)

    def _redraw_cycle(self, c: int) -> None:
        i = self.current[:, c]
        measured = np.isfinite(i)
        if not measured.any():
            self.curves[c].setData([], [])
            return
        last = int(np.nonzero(measured)[0][-1]) + 1  # points arrive in sweep order
        v, y = self.voltage[:last], i[:last]
        if self.log_scale.isChecked():
            y = np.abs(y)
            y = np.where(y > 0, y, np.nan)
        self.curves[c].setData(v, y)

    def _set_log(self, on: bool) -> None:
        p = self.plot.getPlotItem()
        plotting.set_log_y(p, on, "|I|" if on else "I", "A")
        for c in range(len(self.curves)):
            self._redraw_cycle(c)
        p.enableAutoRange()

    def curve_data(self, cycle: int) -> tuple[np.ndarray, np.ndarray]:
        """(V, I) arrays currently plotted for ``cycle`` (|I| in log mode; before the log
        transform of the axis)."""
        x, y = self.curves[cycle].getOriginalDataset()
        return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))

    # -- outcomes --------------------------------------------------------------------------------
    def _finish(self, result: SweepResult, u: UsabilityResult | None, err: str | None) -> None:
        name, row, col, store_path = self._pending
        self.current = np.array(result.current, dtype=float, copy=True)
        for c in range(min(len(self.curves), self.current.shape[1])):
            self._redraw_cycle(c)
        sweep = MeasuredSweep(
            name, row, col, np.asarray(result.voltage), self.current.copy(), u, err, store_path
        )
        self.last = sweep
        self.sweeps.append(sweep)
        self.result_label.setText(_usability_text(u, err, result))
        self.sweep_measured.emit(sweep)

    def _on_done(self, payload) -> None:
        result, u, err = payload
        self._finish(result, u, err)
        n_comp = int(np.count_nonzero(result.compliance))
        msg = f"I-V sweep done: U = {u.usability:.3f}" if u else f"I-V sweep done ({err})"
        if n_comp:
            msg += f"; {n_comp} point(s) at compliance"
        self.app.log(msg)
        name, _, _, store_path = self._pending
        if store_path:
            self.app.log(f"Sweep saved to {store_path} : /iv/{name}")

    def _on_aborted(self, partial) -> None:
        self.app.log("I-V sweep aborted; outputs off", "warning")
        if isinstance(partial, SweepResult):
            try:
                u, err = usability(partial.voltage, partial.current), None
            except UsabilityError as exc:
                u, err = None, str(exc)
            self._finish(partial, u, err)
            self.result_label.setText("(aborted) " + self.result_label.text())
        else:
            self.result_label.setText("aborted")

    def _on_error(self, exc: BaseException) -> None:
        self.result_label.setText(f"failed: {exc}")
        self.app.log(f"I-V sweep failed: {exc}", "error")


def _usability_text(u: UsabilityResult | None, err: str | None, r: SweepResult) -> str:
    if u is None:
        return f"not computable: {err}"
    return (
        f"<b>U = {u.usability:.3f}</b><br>"
        f"α<sub>nm</sub> = {u.alpha_nm:.3f} (L = {u.lcis_length}, L<sub>min</sub> = {u.l_min})<br>"
        f"σ<sub>ML</sub> = {u.sigma_hat:.3g}, σ<sub>up</sub> = {u.sigma_up:.3g} (N = {u.n_residuals})<br>"
        f"LCIS {u.lcis_start_v:.2f} → {u.lcis_stop_v:.2f} V, {u.n_cycles} cycle(s)"
    )
