"""I-V sweep panel: the full live sweep protocol of one cell, plotted live, graded, exported.

The protocol (:class:`gui.protocol.SweepProtocol`) is everything
:meth:`crossbar.core.Crossbar.iv_sweep` takes: the staircase and cycles, the SET branch's
(V ≥ 0) compliance and biasing, the RESET branch's (V < 0) own compliance and biasing, the
integration time (NPLC, within the bench's range) and the time per point (a settling delay
before each reading). Named presets (``xbar calibrate``'s live default among them) and the last
protocol are remembered across restarts. Every change is checked at once by the crossbar
layer's own validation (:meth:`crossbar.policy.CrossbarPolicy.plan_sweep`): a combination the
bench would refuse (a positive-only biasing on negative points, a compliance beyond the bench,
an NPLC out of range …) shows its one-line reason and Start stays disabled; biasings the bench
cannot apply are greyed out.

The sweep runs on the worker thread, so every point is written to the session's data file as it
is measured (``/iv/<name>``); points reach the plot in batches (at most every 50 ms). The plot
shows the source's current limits as dashed lines and marks every point measured at compliance.
When the sweep ends its usability (METHODS section 1) is shown, and the sweep is offered to the
calibration panel (:attr:`IVSweepPanel.sweep_measured`). "Export CSV…" / "Export xlsx…" write
it in the Keithley layout ``xbar calibrate`` reads (:mod:`gui.export`).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from calibration.usability import UsabilityError, UsabilityResult, usability
from crossbar.backend import Biasing, SweepPoint, SweepResult
from crossbar.policy import SweepSettings
from gui import plotting
from gui.panels.base import AppServices, Panel
from gui.protocol import (
    BUILTIN_PRESETS,
    CLI_PRESET,
    SweepProtocol,
    load_presets,
    save_presets,
)
from gui.widgets import button, double_spin, enable_items, form_group, hbox, int_spin
from gui.workers import Task, TaskContext

__all__ = ["IVSweepPanel", "MeasuredSweep", "staircase"]

_NPLC_RANGE = (0.01, 6.0)  # crossbar.backend.Capabilities' default, until a bench says
_CUSTOM = "(custom)"


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
    """A finished (or aborted) sweep, as handed to the calibration panel and exported."""

    name: str
    row: int
    col: int
    voltage: np.ndarray  # (K,) V
    current: np.ndarray  # (K, cycles) A
    usability: UsabilityResult | None
    error: str | None = None
    data_path: str | None = None
    compliance: np.ndarray | None = None  # (K, cycles) bool: at the source's current limit
    protocol: SweepProtocol | None = None
    limits: tuple[float, float] | None = None  # applied (SET, RESET) current limits, A
    bench: str = ""

    @property
    def n_at_compliance(self) -> int:
        return 0 if self.compliance is None else int(np.count_nonzero(self.compliance))

    def metadata(self) -> dict[str, object]:
        """What an export writes above the data."""
        p = self.protocol
        meta: dict[str, object] = {
            "bench": self.bench,
            "cell (row, col)": f"({self.row}; {self.col})",
            "sweep": self.name,
        }
        if self.data_path:
            meta["data file"] = f"{self.data_path} : /iv/{self.name}"
        if p is not None:
            meta.update(
                {
                    "staircase (V)": f"0 -> {p.v_pos:g} -> 0 -> {p.v_neg:g} -> 0 step {p.step:g}",
                    "cycles": p.cycles,
                    "biasing (V >= 0)": p.biasing,
                    "compliance requested (V >= 0) A": repr(p.compliance),
                    "biasing (V < 0)": p.reset_biasing or p.biasing,
                    "compliance requested (V < 0) A": repr(
                        p.compliance if p.reset_compliance is None else p.reset_compliance
                    ),
                    "nplc": p.nplc,
                    "time per point (s)": "bare reading" if p.point_time is None else p.point_time,
                }
            )
        if self.limits is not None:
            meta["compliance applied (V >= 0; V < 0) A"] = f"{self.limits[0]!r}; {self.limits[1]!r}"
        meta["points at compliance"] = self.n_at_compliance
        if self.usability is not None:
            meta["usability U (METHODS 1)"] = repr(self.usability.usability)
        return meta


class IVSweepPanel(Panel):
    """Cyclic I-V sweeps of a cell with a live plot."""

    title = "I-V sweep"
    sweep_measured = pyqtSignal(object)  # MeasuredSweep

    def __init__(self, app: AppServices, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.voltage = np.zeros(0)
        self.current = np.zeros((0, 0))
        self.flags = np.zeros((0, 0), dtype=bool)
        self.curves: list[pg.PlotDataItem] = []
        self.last: MeasuredSweep | None = None
        self.sweeps: list[MeasuredSweep] = []
        self.problem: str = ""
        self._limits: tuple[float, float] | None = None
        self._loading = False
        self.user_presets = load_presets(str(self.app.settings.get("iv/presets", "") or ""))
        self._build()
        self._restore()
        self.session_changed(None)

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        outer, _area, left = self.side_layout(300)
        left.addWidget(self._protocol_group())
        left.addWidget(self._cell_group())
        left.addWidget(self._staircase_group())
        left.addWidget(self._branch_groups())
        left.addWidget(self._timing_group())
        self.problem_label = QLabel("")
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #c00000")
        left.addWidget(self.problem_label)
        self.start = QPushButton("Start sweep")
        self.start.setStyleSheet("font-weight: bold; padding: 6px")
        self.start.clicked.connect(self.start_sweep)
        left.addWidget(self.start)
        self.export_csv_btn = button(
            "Export CSV…",
            lambda: self._export_dialog(".csv"),
            "The last sweep in the Keithley layout `xbar calibrate` reads (signed current, "
            "full precision, compliance flags, metadata)",
        )
        self.export_xlsx_btn = button(
            "Export xlsx…", lambda: self._export_dialog(".xlsx"), self.export_csv_btn.toolTip()
        )
        left.addLayout(hbox(self.export_csv_btn, self.export_xlsx_btn))
        self.log_scale = QCheckBox("log |I|")
        self.log_scale.setChecked(bool(self.app.settings.get("plot/iv_log")))
        self.log_scale.toggled.connect(self._set_log)
        left.addWidget(self.log_scale)
        res = QGroupBox("Usability (METHODS §1)")
        v = QVBoxLayout(res)
        self.result_label = QLabel("—")
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label.setWordWrap(True)
        v.addWidget(self.result_label)
        left.addWidget(res)
        left.addStretch(1)

        self.plot = plotting.plot_widget("I-V", x="V", x_units="V", y="I", y_units="A")
        p = self.plot.getPlotItem()
        p.addLegend(offset=(10, 10), labelTextSize="8pt")
        # the limits do not stretch the axes: a line far beyond the data is off the plot (the
        # applied limits are written under the SET branch's settings)
        self.limit_curves = []
        for _ in range(2):
            curve = pg.PlotDataItem(
                [], [], pen=pg.mkPen("#c00000", width=1.2, style=Qt.PenStyle.DashLine)
            )
            p.addItem(curve, ignoreBounds=True)
            self.limit_curves.append(curve)
        self.clamped = pg.PlotDataItem(  # (a data item: it follows the log scale)
            [],
            [],
            pen=None,
            symbol="x",
            symbolSize=10,
            symbolPen=pg.mkPen("#c00000", width=2),
            symbolBrush=None,
        )
        p.addItem(self.clamped)
        p.legend.addItem(self.limit_curves[0], "compliance limit")
        p.legend.addItem(self.clamped, "at compliance")
        plotting.data_menu(
            self.plot,
            [
                ("Export sweep as CSV…", lambda: self._export_dialog(".csv")),
                ("Export sweep as xlsx…", lambda: self._export_dialog(".xlsx")),
            ],
        )
        outer.addWidget(self.plot, 1)
        self._set_log(self.log_scale.isChecked())

    def _protocol_group(self) -> QGroupBox:
        g = QGroupBox("Protocol")
        v = QVBoxLayout(g)
        self.preset = QComboBox()
        self.preset.setToolTip("Named protocols: the built-in ones and those you saved")
        self._fill_presets()
        self.preset.activated.connect(lambda _i: self.apply_preset(self.preset.currentText()))
        v.addWidget(self.preset)
        self.save_preset_btn = button("Save as…", self._save_preset_dialog)
        self.delete_preset_btn = button("Delete", self._delete_preset)
        v.addLayout(hbox(self.save_preset_btn, self.delete_preset_btn))
        return g

    def _cell_group(self) -> QGroupBox:
        g, f = form_group("Cell")
        self.row = QSpinBox()
        self.col = QSpinBox()
        for sb in (self.row, self.col):
            sb.setRange(0, 9)
            sb.valueChanged.connect(self._changed)
        f.addRow("Row (word line)", self.row)
        f.addRow("Column (bit line)", self.col)
        return g

    def _staircase_group(self) -> QGroupBox:
        g, f = form_group("Staircase")
        self.v_pos = double_spin(0.0, 6.0, 6.0, 0.1, 2, " V")
        self.v_neg = double_spin(-6.0, 0.0, -6.0, 0.1, 2, " V")
        self.step = double_spin(0.01, 2.0, 0.1, 0.05, 3, " V")
        self.cycles = int_spin(1, 100, 3)
        f.addRow("V+", self.v_pos)
        f.addRow("V−", self.v_neg)
        f.addRow("Step", self.step)
        f.addRow("Cycles", self.cycles)
        self.points_label = QLabel()
        f.addRow("Points", self.points_label)
        for w in (self.v_pos, self.v_neg, self.step, self.cycles):
            w.valueChanged.connect(self._changed)
        return g

    def _branch_groups(self) -> QWidget:
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        g, f = form_group("SET branch (V ≥ 0)")
        self.compliance = double_spin(0.01, 1000.0, 25.0, 5.0, 2, " µA")
        self.compliance.setToolTip("Current limit of the source (protects the device)")
        self.biasing = _biasing_combo()
        self.biasing.setToolTip("How the unselected lines are held")
        f.addRow("Compliance", self.compliance)
        f.addRow("Unselected lines", self.biasing)
        self.limit_label = QLabel("")
        self.limit_label.setStyleSheet("color: #555555")
        f.addRow(self.limit_label)
        v.addWidget(g)
        g, f = form_group("RESET branch (V < 0)")
        self.reset_own = QCheckBox("own compliance and biasing")
        self.reset_own.setToolTip(
            "A cell's RESET can need more current than its SET was formed under, and a "
            "positive-only biasing (cols-2v/3) needs another one below 0 V"
        )
        self.reset_compliance = double_spin(0.01, 1000.0, 250.0, 50.0, 2, " µA")
        self.reset_biasing = _biasing_combo()
        f.addRow(self.reset_own)
        f.addRow("Compliance", self.reset_compliance)
        f.addRow("Unselected lines", self.reset_biasing)
        v.addWidget(g)
        for w in (self.compliance, self.reset_compliance):
            w.valueChanged.connect(self._changed)
        for w in (self.biasing, self.reset_biasing):
            w.currentIndexChanged.connect(self._changed)
        self.reset_own.toggled.connect(self._changed)
        return box

    def _timing_group(self) -> QGroupBox:
        g, f = form_group("Timing")
        self.nplc = double_spin(*_NPLC_RANGE, 1.0, 0.5, 2, "")
        self.nplc.setToolTip("Integration time per reading in power-line cycles")
        self.point_ms = double_spin(0.0, 1_000_000.0, 50.0, 10.0, 1, " ms")
        self.point_ms.setSpecialValueText("bare reading")
        self.point_ms.setToolTip(
            "Time per point: a settling delay then the NPLC reading (switching is a rate "
            "process, so the loops depend on it); 0 = the bare reading"
        )
        self.sweep_name = QLineEdit()
        self.sweep_name.setPlaceholderText("automatic")
        f.addRow("NPLC", self.nplc)
        f.addRow("Time per point", self.point_ms)
        f.addRow("Name", self.sweep_name)
        for w in (self.nplc, self.point_ms):
            w.valueChanged.connect(self._changed)
        return g

    # -- protocol --------------------------------------------------------------------------------
    def _fill_presets(self) -> None:
        self.preset.blockSignals(True)
        self.preset.clear()
        for name in BUILTIN_PRESETS:
            self.preset.addItem(name)
        for name in self.user_presets:
            self.preset.addItem(name)
        self.preset.addItem(_CUSTOM)
        self.preset.blockSignals(False)

    def protocol(self) -> SweepProtocol:
        """The protocol the panel's controls describe."""
        own = self.reset_own.isChecked()
        pt = self.point_ms.value()
        return SweepProtocol(
            v_pos=self.v_pos.value(),
            v_neg=self.v_neg.value(),
            step=self.step.value(),
            cycles=self.cycles.value(),
            compliance=self.compliance.value() / 1e6,
            biasing=self.biasing.currentData().name,
            reset_compliance=self.reset_compliance.value() / 1e6 if own else None,
            reset_biasing=self.reset_biasing.currentData().name if own else None,
            nplc=self.nplc.value(),
            point_time=pt / 1e3 if pt > 0 else None,
        )

    def set_protocol(self, p: SweepProtocol) -> None:
        """Show ``p`` in the controls (values beyond a control's range are clipped to it;
        the check then says so)."""
        self._loading = True
        try:
            self.v_pos.setValue(p.v_pos)
            self.v_neg.setValue(p.v_neg)
            self.step.setValue(p.step)
            self.cycles.setValue(p.cycles)
            self.compliance.setValue(p.compliance * 1e6)
            _choose(self.biasing, p.biasing)
            own = p.split
            self.reset_own.setChecked(own)
            self.reset_compliance.setValue(
                (p.compliance if p.reset_compliance is None else p.reset_compliance) * 1e6
            )
            _choose(self.reset_biasing, p.reset_biasing or "v/3")
            self.nplc.setValue(p.nplc)
            self.point_ms.setValue(0.0 if p.point_time is None else p.point_time * 1e3)
        finally:
            self._loading = False
        self._changed()

    def presets(self) -> dict[str, SweepProtocol]:
        """Every named protocol: built-in, then the user's."""
        return {**BUILTIN_PRESETS, **self.user_presets}

    def apply_preset(self, name: str) -> bool:
        """Load the protocol named ``name``; False if there is none."""
        p = self.presets().get(name)
        if p is None:
            return False
        self.set_protocol(p)
        self.preset.setCurrentText(name)
        self._preset_name = name
        return True

    def save_preset(self, name: str) -> None:
        """Store the current protocol as the user preset ``name`` (remembered)."""
        name = name.strip()
        if not name or name == _CUSTOM or name in BUILTIN_PRESETS:
            raise ValueError(f"{name!r}: choose another name (built-in presets stay as they are)")
        self.user_presets[name] = self.protocol()
        self.app.settings.set("iv/presets", save_presets(self.user_presets))
        self._fill_presets()
        self.preset.setCurrentText(name)
        self.app.log(f"I-V protocol saved as preset '{name}'")

    def _save_preset_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Save protocol", "Preset name:")
        if ok and name.strip():
            try:
                self.save_preset(name)
            except ValueError as exc:
                self.app.log(str(exc), "warning")

    def _delete_preset(self) -> None:
        name = self.preset.currentText()
        if name in self.user_presets:
            del self.user_presets[name]
            self.app.settings.set("iv/presets", save_presets(self.user_presets))
            self._fill_presets()
            self.preset.setCurrentText(_CUSTOM)

    def _restore(self) -> None:
        """The protocol, cell and preset of the last session (else the CLI's default)."""
        s = self.app.settings
        text = str(s.get("iv/protocol", "") or "")
        try:
            p = SweepProtocol.from_json(text) if text else BUILTIN_PRESETS[CLI_PRESET]
        except (TypeError, ValueError):
            p = BUILTIN_PRESETS[CLI_PRESET]
        self.set_protocol(p)
        name = str(s.get("iv/preset", "") or (CLI_PRESET if not text else _CUSTOM))
        self.preset.setCurrentText(name if self.presets().get(name) == p else _CUSTOM)
        self.row.setValue(int(s.get("iv/row", 0) or 0))
        self.col.setValue(int(s.get("iv/col", 0) or 0))

    def save_settings(self) -> None:
        s = self.app.settings
        s.set("plot/iv_log", self.log_scale.isChecked())
        s.set("iv/protocol", self.protocol().to_json())
        s.set("iv/preset", self.preset.currentText())
        s.set("iv/row", self.row.value())
        s.set("iv/col", self.col.value())

    # -- checks ----------------------------------------------------------------------------------
    def _changed(self) -> None:
        if self._loading:
            return
        name = self.preset.currentText()
        if name != _CUSTOM and self.presets().get(name) != self.protocol():
            self.preset.setCurrentText(_CUSTOM)
        self._update_points()
        self._update_choices()
        self.check()

    def _update_choices(self) -> None:
        """Grey out the biasings the bench cannot apply, and positive-only ones where the
        branch has points below 0 V."""
        session = self.app.session
        caps = {b.name for b in session.crossbar.policy.capabilities.biasings} if session else None
        negative_set = self.v_neg.value() < 0 and not self.reset_own.isChecked()

        def set_ok(b) -> bool:
            return (caps is None or b.name in caps) and not (b.positive_only and negative_set)

        def reset_ok(b) -> bool:
            return (caps is None or b.name in caps) and not b.positive_only

        enable_items(
            self.biasing,
            set_ok,
            "not available on this bench, or positive-only while the RESET branch uses the "
            "same biasing",
        )
        enable_items(self.reset_biasing, reset_ok, "positive-only, or not available here")
        own = self.reset_own.isChecked()
        self.reset_compliance.setEnabled(own)
        self.reset_biasing.setEnabled(own)

    def check(self) -> str:
        """Validate the protocol as the crossbar layer will (one line, "" when it would run);
        Start is enabled only when it is "" and a bench is idle."""
        problem = ""
        self._limits = None
        try:
            p = self.protocol()
            v = self.voltages()
            delay = p.delay
            session = self.app.session
            if session is not None:
                plan = session.crossbar.policy.plan_sweep(
                    self.row.value(),
                    self.col.value(),
                    v,
                    SweepSettings(
                        p.compliance,
                        p.cycles,
                        p.nplc,
                        p.biasing,
                        delay,
                        p.reset_compliance,
                        p.reset_biasing,
                    ),
                )
                self._limits = (plan.compliance_limit, plan.reset_limit)
            else:  # no bench yet: at least the biasings' polarity rules
                b = Biasing.parse(p.biasing)
                rb = Biasing.parse(p.reset_biasing) if p.reset_biasing else b
                b.check_polarity(v if not p.split else v[v >= 0], "sweep voltages")
                rb.check_polarity(v[v < 0], "sweep voltages below 0 V")
        except (ValueError, TypeError, KeyError) as exc:
            problem = str(exc)
        self.problem = problem
        self.problem_label.setText(problem)
        self.problem_label.setVisible(bool(problem))
        if self._limits is not None:
            a, b = self._limits
            self.limit_label.setText(
                f"applied: {plotting.si(a, 'A')} (V ≥ 0), {plotting.si(b, 'A')} (V < 0)"
            )
        else:
            self.limit_label.setText("")
        self._update_enabled()
        return problem

    # -- state -----------------------------------------------------------------------------------
    def session_changed(self, session) -> None:
        if session is not None:
            rows, cols = session.shape
            self.row.setMaximum(rows - 1)
            self.col.setMaximum(cols - 1)
            vmax = session.max_voltage
            self.v_pos.setMaximum(vmax)
            self.v_neg.setMinimum(-vmax)
            top = session.max_compliance * 1e6
            self.compliance.setMaximum(top)
            self.reset_compliance.setMaximum(top)
            lo, hi = session.crossbar.policy.capabilities.nplc_range
            self.nplc.setRange(lo, hi)
        self._update_choices()
        self.check()

    def busy_changed(self, busy: bool) -> None:
        self._update_enabled()

    def _update_enabled(self) -> None:
        ok = self.app.session is not None and not self.app.runner.busy and not self.problem
        self.start.setEnabled(ok)
        has = self.last is not None
        self.export_csv_btn.setEnabled(has)
        self.export_xlsx_btn.setEnabled(has)

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

    # -- run -------------------------------------------------------------------------------------
    def start_sweep(self) -> bool:
        """Start a sweep with the panel's protocol; False if it cannot start now."""
        session = self.app.session
        if session is None:
            self.app.log("Connect a bench first.", "warning")
            return False
        problem = self.check()
        if problem:
            self.app.log(f"I-V sweep: {problem}", "error")
            return False
        v = self.voltages()
        row, col = self.row.value(), self.col.value()
        p = self.protocol()
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
                **p.sweep_options(),
                name=name if session.datastore is not None else None,
                progress=ctx.progress,
                on_point=ctx.emit,
            )
            try:
                return result, usability(result.voltage, result.current), None
            except UsabilityError as exc:
                return result, None, str(exc)

        self._reset_plot(v, p.cycles)
        self._draw_limits(p)
        plotting.set_title(
            self.plot.getPlotItem(), f"I-V of cell ({row}, {col}) — {name}", size="10pt"
        )
        self.result_label.setText("sweeping…")
        self._pending = (name, row, col, store_path, p, self._limits, session.describe())
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
            below = (
                f"; below 0 V {p.reset_biasing or p.biasing} at "
                f"{(p.reset_compliance or p.compliance) * 1e6:g} µA"
                if p.split
                else ""
            )
            self.app.log(
                f"I-V sweep of ({row}, {col}): {v.max():g} / {v.min():g} V, step "
                f"{p.step:g} V, {p.cycles} cycle(s), {p.biasing} at {p.compliance * 1e6:g} µA"
                f"{below}, NPLC {p.nplc:g}, "
                + ("bare readings" if p.point_time is None else f"{p.point_time * 1e3:g} ms/point")
            )
        return started

    # -- plot ------------------------------------------------------------------------------------
    def _reset_plot(self, v: np.ndarray, cycles: int) -> None:
        p = self.plot.getPlotItem()
        for c in self.curves:
            p.removeItem(c)
            p.legend.removeItem(c)
        self.voltage = np.asarray(v, dtype=float)
        self.current = np.full((v.size, cycles), np.nan)
        self.flags = np.zeros((v.size, cycles), dtype=bool)
        self.curves = []
        self.clamped.setData([], [])
        for c in range(cycles):
            item = p.plot(
                [],
                [],
                **plotting.markers(plotting.colour(c), 4, line_width=1),
                name=f"cycle {c + 1}" if cycles <= 12 else None,
                connect="finite",
            )
            self.curves.append(item)

    def _draw_limits(self, p: SweepProtocol | None = None) -> None:
        """Dashed lines at the applied current limits: +limit over the SET branch's voltages,
        −limit over the RESET branch's (|limit| in log mode)."""
        lims = self._limits
        if self.voltage.size == 0 or lims is None:
            for c in self.limit_curves:
                c.setData([], [])
            return
        log = self.log_scale.isChecked()
        vmax, vmin = float(np.nanmax(self.voltage)), float(np.nanmin(self.voltage))
        segs = ((0.0, vmax, lims[0]), (vmin, 0.0, -lims[1]))
        for curve, (a, b, i) in zip(self.limit_curves, segs):
            if b > a:
                y = abs(i) if log else i
                curve.setData([a, b], [y, y])
            else:
                curve.setData([], [])

    def _on_points(self, points: list[SweepPoint]) -> None:
        touched = set()
        for p in points:
            if 0 <= p.index < self.current.shape[0] and 0 <= p.cycle < self.current.shape[1]:
                self.current[p.index, p.cycle] = p.current
                self.flags[p.index, p.cycle] = bool(p.compliance)
                touched.add(p.cycle)
        for c in touched:
            self._redraw_cycle(c)
        self._redraw_clamped()

    def _y(self, i: np.ndarray) -> np.ndarray:
        if self.log_scale.isChecked():
            y = np.abs(i)
            return np.where(y > 0, y, np.nan)
        return i

    def _redraw_cycle(self, c: int) -> None:
        i = self.current[:, c]
        measured = np.isfinite(i)
        if not measured.any():
            self.curves[c].setData([], [])
            return
        last = int(np.nonzero(measured)[0][-1]) + 1  # points arrive in sweep order
        self.curves[c].setData(self.voltage[:last], self._y(i[:last]))

    def _redraw_clamped(self) -> None:
        k, c = np.nonzero(self.flags & np.isfinite(self.current))
        self.clamped.setData(self.voltage[k], self._y(self.current[k, c]))

    def clamped_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(V, I) of the points marked as measured at compliance (I as plotted)."""
        x, y = self.clamped.getOriginalDataset()
        return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))

    def _set_log(self, on: bool) -> None:
        p = self.plot.getPlotItem()
        plotting.set_log_y(p, on, "|I|" if on else "I", "A")
        for c in range(len(self.curves)):
            self._redraw_cycle(c)
        self._redraw_clamped()
        self._draw_limits()
        p.enableAutoRange()

    def curve_data(self, cycle: int) -> tuple[np.ndarray, np.ndarray]:
        """(V, I) arrays currently plotted for ``cycle`` (|I| in log mode; before the log
        transform of the axis)."""
        x, y = self.curves[cycle].getOriginalDataset()
        return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))

    # -- outcomes --------------------------------------------------------------------------------
    def _finish(self, result: SweepResult, u: UsabilityResult | None, err: str | None) -> None:
        name, row, col, store_path, protocol, limits, bench = self._pending
        self.current = np.array(result.current, dtype=float, copy=True)
        self.flags = np.array(result.compliance, dtype=bool, copy=True)
        for c in range(min(len(self.curves), self.current.shape[1])):
            self._redraw_cycle(c)
        self._redraw_clamped()
        sweep = MeasuredSweep(
            name,
            row,
            col,
            np.asarray(result.voltage),
            self.current.copy(),
            u,
            err,
            store_path,
            self.flags.copy(),
            protocol,
            limits,
            bench,
        )
        self.last = sweep
        self.sweeps.append(sweep)
        self.result_label.setText(_usability_text(u, err, sweep))
        self._update_enabled()
        self.sweep_measured.emit(sweep)

    def _on_done(self, payload) -> None:
        result, u, err = payload
        self._finish(result, u, err)
        n_comp = self.last.n_at_compliance if self.last else 0
        msg = f"I-V sweep done: U = {u.usability:.3f}" if u else f"I-V sweep done ({err})"
        if n_comp:
            msg += f"; {n_comp} point(s) at compliance (marked ✕ on the plot)"
        self.app.log(msg)
        name, _, _, store_path, *_ = self._pending
        if store_path:
            self.app.log(f"Sweep saved to {store_path} : /iv/{name}")

    def _on_aborted(self, partial) -> None:
        if isinstance(partial, SweepResult):
            self.app.log("I-V sweep aborted; outputs off", "warning")
            try:
                u, err = usability(partial.voltage, partial.current), None
            except UsabilityError as exc:
                u, err = None, str(exc)
            self._finish(partial, u, err)
            self.result_label.setText("(aborted) " + self.result_label.text())
        else:  # an emergency stop: no result
            self.app.log("I-V sweep stopped: no result", "warning")
            self.result_label.setText("stopped: no result")

    def _on_error(self, exc: BaseException) -> None:
        self.result_label.setText(f"failed: {exc}")
        self.app.log(f"I-V sweep failed: {exc}", "error")

    # -- export ----------------------------------------------------------------------------------
    def export_sweep(self, path: str | Path, sweep: MeasuredSweep | None = None) -> Path | None:
        """Write ``sweep`` (default: the last) as CSV or xlsx by the suffix of ``path``
        (:func:`gui.export.write_iv`); None (logged) when there is none or writing fails."""
        from gui.export import write_iv

        sweep = sweep or self.last
        if sweep is None:
            self.app.log("Measure a sweep first.", "warning")
            return None
        return self.write_export(
            f"Sweep {sweep.name}",
            lambda: write_iv(
                path, sweep.voltage, sweep.current, sweep.compliance, sweep.metadata()
            ),
        )

    def _export_dialog(self, suffix: str) -> None:
        if self.last is None:
            self.app.log("Measure a sweep first.", "warning")
            return
        kind = "Excel (*.xlsx)" if suffix == ".xlsx" else "CSV (*.csv)"
        self.export_dialog("I-V sweep", f"{self.last.name}{suffix}", kind, self.export_sweep)


def _biasing_combo() -> QComboBox:
    combo = QComboBox()
    for b in Biasing:
        combo.addItem(b.name, b)
        combo.setItemData(combo.count() - 1, b.description, Qt.ItemDataRole.ToolTipRole)
    return combo


def _choose(combo: QComboBox, name: str) -> None:
    for i in range(combo.count()):
        if combo.itemData(i).name == name:
            combo.setCurrentIndex(i)
            return


def _usability_text(u: UsabilityResult | None, err: str | None, s: MeasuredSweep) -> str:
    comp = (
        f"<br><span style='color:#c00000'>{s.n_at_compliance} point(s) at compliance (✕)</span>"
        if s.n_at_compliance
        else ""
    )
    if u is None:
        return f"not computable: {err}{comp}"
    return (
        f"<b>U = {u.usability:.3f}</b><br>"
        f"α<sub>nm</sub> = {u.alpha_nm:.3f} (L = {u.lcis_length}, L<sub>min</sub> = {u.l_min})<br>"
        f"σ<sub>ML</sub> = {u.sigma_hat:.3g}, σ<sub>up</sub> = {u.sigma_up:.3g} (N = {u.n_residuals})<br>"
        f"LCIS {u.lcis_start_v:.2f} → {u.lcis_stop_v:.2f} V, {u.n_cycles} cycle(s)" + comp
    )
