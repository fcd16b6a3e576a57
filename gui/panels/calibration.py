"""Calibration panel: METHODS section 1 on I-V files or on sweeps measured in the I-V panel.

* Open files or a folder (Excel, CSV, HDF5 sweeps — e.g. the shared perovskite_iv data) or take
  the sweeps measured in the I-V panel; each device is graded on the worker thread through
  :mod:`calibration.batch` (the same path as ``xbar calibrate``).
* A table of results (file, cycles, U, α_nm, σ_ML (the σ̂ of METHODS), σ_up,
  L / L_min, N, LCIS range), sortable.
* The section-1 figures of the selected device drawn in pyqtgraph: I-V loops (linear and
  log |I|), Ḡ on the SET branch with the LCIS highlighted and the L_min window marked, the
  histogram of the log residuals with the fitted normal, and the numbers. "Save report PNG"
  writes the :mod:`calibration.report` figure.
* Fabrication tab (METHODS section 4): a history table (conditions + measured usability, from a
  history CSV or built from ``conditions.csv`` and its raw files) and the next fabrications
  suggested by :func:`calibration.fabrication.suggest`.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from calibration.batch import (
    CalibrationOptions,
    DeviceCalibration,
    calibrate_arrays,
    calibrate_file,
)
from calibration.io import CalibrationInputError, find_iv_files
from crossbar.progress import Progress
from gui import plotting
from gui.panels.base import AppServices, Panel
from gui.widgets import button, choice, hbox, int_spin, set_panes, table
from gui.workers import TaskContext

__all__ = ["COLUMNS", "FILE_COLUMN", "U_COLUMN", "CalibrationPanel", "NumericItem"]

#: Table columns: (header, tooltip).
COLUMNS = (
    ("U", "usability U = α_nm · exp(−σ)"),
    ("α_nm", "non-monotonic factor min(1, L / L_min)"),
    ("σ_ML", "σ̂: maximum-likelihood standard deviation of the log residuals in the LCIS"),
    ("σ_up", "χ² 95 % upper bound of σ"),
    ("L / L_min", "LCIS length / required length (points)"),
    ("N", "number of residuals"),
    ("cycles", "cycles with data"),
    ("LCIS (V)", "voltage range of the longest conductance-increasing run"),
    ("file", "device (the whole file name, or the sweep name for measured sweeps)"),
)
U_COLUMN = 0
FILE_COLUMN = len(COLUMNS) - 1  # last: whole names, the table scrolls sideways
#: What a reader's note about ignored columns means for the figures (shown with the note).
_NOTE_WHY = (
    "Only the voltage and current_cycleN columns are I-V data; the others (the instrument's "
    "time stamps, resistance or fabrication notes) do not enter U."
)
_IV_FILES = "I-V data (*.xlsx *.xlsm *.xls *.csv *.txt *.h5 *.hdf5);;All files (*)"
_CSV_FILES = "CSV (*.csv);;All files (*)"


class NumericItem(QTableWidgetItem):
    """A table cell that sorts by its numeric ``UserRole`` value (NaN last)."""

    def __init__(self, text: str, value: float) -> None:
        super().__init__(text)
        self.setData(Qt.ItemDataRole.UserRole, float(value))
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:  # type: ignore[override]
        a = self.data(Qt.ItemDataRole.UserRole)
        b = other.data(Qt.ItemDataRole.UserRole)
        try:
            a, b = float(a), float(b)
        except (TypeError, ValueError):
            return super().__lt__(other)
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a < b


class CalibrationPanel(Panel):
    """Grade devices from I-V data; section-1 figures; fabrication suggestions."""

    title = "Calibration"
    devices_changed = pyqtSignal(object)  # list[DeviceCalibration]

    def __init__(self, app: AppServices, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.devices: list[DeviceCalibration] = []
        self.keys: list[str] = []  # one per device: its source (file + sweep), no duplicates
        self.failures: list[tuple[str, str]] = []
        self.conditions: tuple[list[str], dict[str, dict[str, str]]] | None = None
        self.conditions_path: str | None = None
        self.history = None  # calibration.fabrication.History
        self.suggestions: list = []
        self._build()

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        self.tabs = QTabWidget()
        outer.addWidget(self.tabs)
        self.tabs.addTab(self._build_devices(), "Devices (METHODS §1)")
        self.tabs.addTab(self._build_fabrication(), "Fabrication (METHODS §4)")

    def _build_devices(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        v.setContentsMargins(2, 2, 2, 2)
        v.addLayout(self._device_bar())
        split = QSplitter(Qt.Orientation.Horizontal)  # the table beside the figures
        split.setChildrenCollapsible(False)
        v.addWidget(split, 1)
        split.addWidget(self._device_table())
        split.addWidget(self._device_figures())
        set_panes(split, stretch=(1, 1), sizes=(560, 700))
        return w

    def _device_bar(self) -> QVBoxLayout:
        """Open / add / clear / conditions / export / report buttons over the section-1
        options."""
        self.open_files_btn = button("Open files…", self._open_files_dialog)
        self.open_dir_btn = button("Open folder…", self._open_dir_dialog)
        self.use_sweep_btn = button(
            "Add last I-V sweep",
            self._add_last_sweep,
            "Grade the last sweep measured in the I-V panel",
        )
        self.clear_btn = button("Clear", self.clear)
        self.conditions_btn = button(
            "Conditions…",
            self._load_conditions_dialog,
            "Join a conditions.csv (fabrication conditions per file) to the table",
        )
        self.export_btn = button(
            "Export table CSV…",
            self._export_dialog,
            "Every device's figures (as `xbar calibrate --json`) with the conditions joined",
        )
        self.report_btn = button("Report PNG…", self._save_report_dialog)
        self.tolerated = int_spin(
            0, 10, tooltip="Non-rises tolerated inside the LCIS (METHODS: 0; authors: 2)"
        )
        self.lmin_fraction = QDoubleSpinBox()
        self.lmin_fraction.setRange(0.01, 1.0)
        self.lmin_fraction.setSingleStep(0.05)
        self.lmin_fraction.setValue(0.35)
        self.sigma_choice = choice([("σ_up (χ² bound)", "up"), ("σ_ML (estimate)", "hat")])
        buttons = hbox(
            self.open_files_btn,
            self.open_dir_btn,
            self.use_sweep_btn,
            self.conditions_btn,
            self.clear_btn,
            self.export_btn,
            self.report_btn,
        )
        buttons.addStretch(1)
        opts = QHBoxLayout()
        for label, widget in (
            ("Non-rises tolerated", self.tolerated),
            ("L_min fraction", self.lmin_fraction),
            ("σ in U", self.sigma_choice),
        ):
            opts.addWidget(QLabel(label))
            opts.addWidget(widget)
            opts.addSpacing(12)
        opts.addStretch(1)
        bar = QVBoxLayout()
        bar.addLayout(buttons)
        bar.addLayout(opts)
        return bar

    def _device_table(self) -> QWidget:
        """The results table (best device first) over a one-line summary."""
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        self.table = table(
            [c for c, _ in COLUMNS],
            single_selection=True,
            sort=(U_COLUMN, Qt.SortOrder.DescendingOrder),  # best device first
            stretch=None,
            elide=Qt.TextElideMode.ElideNone,  # full names: the table scrolls sideways
        )
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        for j, (_, tip) in enumerate(COLUMNS):
            self.table.horizontalHeaderItem(j).setToolTip(tip)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        lv.addWidget(self.table, 1)
        self.summary = QLabel("Open I-V files (xlsx, csv, h5) or measure a sweep in the I-V panel.")
        self.summary.setWordWrap(True)
        self.table.setMinimumWidth(260)
        lv.addWidget(self.summary)
        return left

    def _device_figures(self) -> QWidget:
        """The section-1 figures of the selected device over its numbers."""
        plotting.configure()
        self.figures = pg.GraphicsLayoutWidget()
        self.p_lin = self.figures.addPlot(row=0, col=0, title="I-V loops (linear)")
        self.p_log = self.figures.addPlot(
            row=0,
            col=1,
            title="I-V loops (log |I|)",
            axisItems={"left": plotting.SIAxis("left", "A")},
        )
        self.p_g = self.figures.addPlot(
            row=1,
            col=0,
            title="Ḡ on the SET branch",
            axisItems={"left": plotting.SIAxis("left", "S")},
        )
        self.p_res = self.figures.addPlot(row=1, col=1, title="log residuals r = ln(G/Ḡ)")
        self.p_lin.setLabel("bottom", "V", units="V")
        self.p_lin.setLabel("left", "I", units="A")
        self.p_log.setLabel("bottom", "V", units="V")
        plotting.set_log_y(self.p_log, True, "|I|", "A")
        self.p_g.setLabel("bottom", "V", units="V")
        plotting.set_log_y(self.p_g, True, "G = I/V", "S")
        self.p_res.setLabel("bottom", "r = ln(G / Ḡ)")
        self.p_res.setLabel("left", "density")
        plotting.no_si_prefix(self.p_res)
        for p in (self.p_lin, self.p_log, self.p_g, self.p_res):
            plotting.grid(p)
            plotting.relax_title(p)
        self.p_g.addLegend(offset=(-10, -10), labelTextSize="7pt", verSpacing=-6)
        self.p_res.addLegend(offset=(5, 5), labelTextSize="7pt", verSpacing=-6)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.figures, 1)
        self.numbers = QLabel("Select a device in the table.")
        self.numbers.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.numbers.setWordWrap(True)
        rv.addWidget(self.numbers)
        return right

    def _build_fabrication(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        v.addLayout(self._fabrication_bar())
        self.history_label = QLabel(
            "No history loaded: load a history CSV or build one from a conditions.csv"
        )
        v.addWidget(self.history_label)
        outer = QSplitter(Qt.Orientation.Horizontal)
        v.addWidget(outer, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(split)
        self.fab_plot = plotting.plot_widget(
            f"<span style='color:{plotting.colour(0)}'>●</span> measured and "
            f"<span style='color:{plotting.colour(3)}'>■</span> predicted (± std) usability",
            x="measured (sorted by U), then suggested",
            y="usability U",
        )
        fp = self.fab_plot.getPlotItem()
        plotting.no_si_prefix(fp)
        fp.setYRange(-0.03, 1.05, padding=0)
        outer.addWidget(self.fab_plot)
        outer.setSizes([820, 560])
        conditions = ["perovskite", "length (µm)", "diameter (nm)", "Pb ED (min)", "Ag (nm)"]
        self.history_table = table(
            ["U", *conditions, "device"],
            stretch=None,
            sort=(0, Qt.SortOrder.DescendingOrder),
            elide=Qt.TextElideMode.ElideNone,
        )
        split.addWidget(_boxed("History: conditions and measured usability", self.history_table))
        self.suggest_table = table(["rank", *conditions, "predicted U", "± std", "EI"], stretch=1)
        split.addWidget(
            _boxed(
                "Suggested next fabrications (Expected Improvement over the grid)",
                self.suggest_table,
            )
        )
        set_panes(split, stretch=(3, 2), sizes=(420, 220))
        self.suggest_btn.setEnabled(False)
        return w

    def _fabrication_bar(self) -> QHBoxLayout:
        """Load / build the history; how many suggestions; suggest."""
        self.load_history_btn = button(
            "Load history CSV…",
            self._load_history_dialog,
            "Columns perovskite, nw_length_um, nw_diameter_nm, pb_ed_min, ag_thickness_nm, "
            "usability",
        )
        self.build_history_btn = button(
            "Build from conditions.csv…",
            self._build_history_dialog,
            "Grade every raw file listed in a conditions.csv (METHODS §1) and join the conditions",
        )
        self.n_suggest = int_spin(1, 20, 3)
        self.suggest_btn = button("Suggest next fabrications", self.suggest)
        bar = hbox(self.load_history_btn, self.build_history_btn)
        bar.addSpacing(20)
        bar.addWidget(QLabel("Suggestions"))
        bar.addWidget(self.n_suggest)
        bar.addWidget(self.suggest_btn)
        bar.addStretch(1)
        return bar

    # -- options ---------------------------------------------------------------------------------
    def options(self) -> CalibrationOptions:
        """The section-1 decisions chosen in the panel."""
        return CalibrationOptions(
            tolerated_decreases=self.tolerated.value(),
            l_min_fraction=self.lmin_fraction.value(),
            sigma=self.sigma_choice.currentData(),
        )

    # -- adding devices --------------------------------------------------------------------------
    def calibrate_paths(self, paths: list[str | Path]) -> bool:
        """Grade files/folders on the worker thread; rows appear as files finish. A file
        graded before is graded again and replaces its row (no duplicates). A folder's
        ``conditions.csv`` is joined to the table."""
        try:
            files = find_iv_files(paths)
        except (CalibrationInputError, OSError) as exc:
            self.app.log(f"Calibration: {exc}", "error")
            return False
        if not files:
            self.app.log("Calibration: no I-V files found", "warning")
            return False
        for p in map(Path, paths):
            if p.is_dir() and (p / "conditions.csv").is_file() and self.conditions is None:
                self.load_conditions(p / "conditions.csv")
        opts = self.options()

        def run(ctx: TaskContext) -> tuple[int, int]:
            ok = bad = 0
            for k, path in enumerate(files):
                ctx.check()
                try:
                    devs = calibrate_file(path, opts)
                except CalibrationInputError as exc:
                    ctx.emit(("failure", Path(path).name, str(exc)))
                    bad += 1
                else:
                    for d in devs:
                        ctx.emit(("device", d, f"{Path(path).resolve()}::{d.name}"))
                    ok += len(devs)
                ctx.progress(Progress(k + 1, len(files), "calibrate", Path(path).name))
            return ok, bad

        def done(res: tuple[int, int]) -> None:
            ok, bad = res
            self.app.log(f"Calibrated {ok} device(s)" + (f", {bad} failed" if bad else ""), "ok")
            self._select_best_if_none()

        self.app.settings.set_last_dir("calibration", Path(files[0]))
        return self.start_task(
            f"Calibrate {len(files)} file(s)",
            run,
            failed="Calibration failed",
            aborted="Calibration aborted",
            bench=False,
            on_items=self._on_items,
            on_done=done,
        )

    def add_measured_sweep(self, sweep) -> DeviceCalibration | None:
        """Grade a sweep from the I-V panel (:class:`gui.panels.iv_sweep.MeasuredSweep`)."""
        name = f"sweep {sweep.name} ({sweep.row}, {sweep.col})"
        try:
            dev = calibrate_arrays(
                name, sweep.voltage, sweep.current, self.options(), source_format="measured"
            )
        except CalibrationInputError as exc:
            self.app.log(f"Calibration of the measured sweep: {exc}", "warning")
            return None
        self._add_device(dev, f"measured::{name}")
        self.devices_changed.emit(list(self.devices))
        return dev

    def _add_last_sweep(self) -> None:
        iv = getattr(self.app, "iv_panel", None)
        if iv is None or iv.last is None:
            self.app.log("No sweep measured yet (I-V panel).", "warning")
            return
        dev = self.add_measured_sweep(iv.last)
        if dev is not None:
            self.select_row(self.find_row(dev.name))

    def _on_items(self, items: list) -> None:
        for it in items:
            if it[0] == "device":
                self._add_device(it[1], it[2])
            else:
                self.failures.append((it[1], it[2]))
                self.app.log(f"Calibration: {it[2]}", "warning")
        self.devices_changed.emit(list(self.devices))

    def _add_device(self, dev: DeviceCalibration, key: str | None = None) -> None:
        """Add a row for ``dev``, or replace the row of the device with the same ``key``."""
        r = dev.result
        key = key or dev.name
        self.table.setSortingEnabled(False)
        if key in self.keys:
            idx = self.keys.index(key)
            self.devices[idx] = dev
            row = next(
                i
                for i in range(self.table.rowCount())
                if self.table.item(i, FILE_COLUMN).data(Qt.ItemDataRole.UserRole) == idx
            )
        else:
            self.devices.append(dev)
            self.keys.append(key)
            idx = len(self.devices) - 1
            row = self.table.rowCount()
            self.table.insertRow(row)
        name_item = QTableWidgetItem(
            Path(dev.name).name if dev.source_format != "measured" else dev.name
        )
        name_item.setToolTip(dev.name)
        name_item.setData(Qt.ItemDataRole.UserRole, idx)
        self.table.setItem(row, FILE_COLUMN, name_item)
        vals = [
            (f"{r.usability:.3f}", r.usability),
            (f"{r.alpha_nm:.3f}", r.alpha_nm),
            (plotting.fmt(r.sigma_hat, 3), r.sigma_hat),
            (plotting.fmt(r.sigma_up, 3), r.sigma_up),
            (f"{r.lcis_length} / {r.l_min}", r.lcis_length / max(r.l_min, 1)),
            (f"{r.n_residuals}", r.n_residuals),
            (f"{r.n_cycles}", r.n_cycles),
            (f"{r.lcis_start_v:.2f} → {r.lcis_stop_v:.2f}", r.lcis_start_v),
        ]
        for j, (text, value) in enumerate(vals):
            self.table.setItem(row, j, NumericItem(text, value))
        self._fill_conditions(row, dev)
        self.table.setSortingEnabled(True)
        self._update_summary()

    def _update_summary(self) -> None:
        n = len(self.devices)
        if not n:
            self.summary.setText("")
            return
        us = np.array([d.result.usability for d in self.devices])
        cond = (
            f"; conditions from {Path(self.conditions_path).name}" if self.conditions_path else ""
        )
        self.summary.setText(
            f"{n} device(s): U from {us.min():.3f} to {us.max():.3f} (median {np.median(us):.3f})"
            + (f"; {len(self.failures)} file(s) failed" if self.failures else "")
            + cond
        )

    # -- conditions ------------------------------------------------------------------------------
    def load_conditions(self, path: str | Path) -> bool:
        """Join a ``conditions.csv`` (a ``file`` column + fabrication conditions) to the table:
        its columns are added after the figures, matched by file name."""
        from gui.export import read_conditions

        try:
            self.conditions = read_conditions(path)
        except (OSError, ValueError) as exc:
            self.app.log(f"Conditions: {exc}", "error")
            return False
        self.conditions_path = str(path)
        cols = self.conditions[0]
        self.table.setColumnCount(len(COLUMNS) + len(cols))
        self.table.setHorizontalHeaderLabels([c for c, _ in COLUMNS] + cols)
        for j in range(len(COLUMNS), len(COLUMNS) + len(cols)):
            self.table.horizontalHeader().setSectionResizeMode(
                j, QHeaderView.ResizeMode.ResizeToContents
            )
        self.table.setSortingEnabled(False)
        for row in range(self.table.rowCount()):
            self._fill_conditions(row, self.row_device(row))
        self.table.setSortingEnabled(True)
        matched = sum(Path(d.name).name in self.conditions[1] for d in self.devices)
        self.app.log(
            f"Conditions from {path}: {len(cols)} column(s), {len(self.conditions[1])} file(s)"
            f" ({matched} of the {len(self.devices)} device(s) in the table)"
        )
        self._update_summary()
        return True

    def _fill_conditions(self, row: int, dev: DeviceCalibration) -> None:
        if self.conditions is None:
            return
        cols, by_file = self.conditions
        values = by_file.get(Path(dev.name).name, {})
        for j, c in enumerate(cols, start=len(COLUMNS)):
            self.table.setItem(row, j, QTableWidgetItem(values.get(c, "")))

    def condition_values(self, row: int) -> dict[str, str]:
        """The conditions columns of a table row (column -> text)."""
        if self.conditions is None:
            return {}
        cols = self.conditions[0]
        return {
            c: self.table.item(row, j).text() if self.table.item(row, j) else ""
            for j, c in enumerate(cols, start=len(COLUMNS))
        }

    def export_table(self, path: str | Path) -> Path | None:
        """Write every device's figures with the conditions joined
        (:func:`gui.export.write_calibration_csv`), best device first."""
        from gui.export import write_calibration_csv

        devices = sorted(self.devices, key=lambda d: -d.result.usability)
        o = self.options()
        meta = {
            "options": f"tolerated decreases {o.tolerated_decreases}; L_min fraction "
            f"{o.l_min_fraction:g}; sigma {o.sigma}",
            "conditions": self.conditions_path or "",
        }
        return self.write_export(
            f"Calibration table ({len(devices)} devices)",
            lambda: write_calibration_csv(path, devices, conditions=self.conditions, metadata=meta),
        )

    def _load_conditions_dialog(self) -> None:
        path = self.ask_open_file("conditions.csv", "calibration", _CSV_FILES)
        if path:
            self.load_conditions(path)

    def _export_dialog(self) -> None:
        if not self.devices:
            self.app.log("Calibrate devices first.", "warning")
            return
        self.export_dialog("calibration table", "calibration.csv", _CSV_FILES, self.export_table)

    def clear(self) -> None:
        self.devices.clear()
        self.keys.clear()
        self.failures.clear()
        self.table.setRowCount(0)
        for p in (self.p_lin, self.p_log, self.p_g, self.p_res):
            p.clear()
        self.numbers.setText("Select a device in the table.")
        self.summary.setText("")
        self.devices_changed.emit([])

    # -- table access ----------------------------------------------------------------------------
    def row_device(self, row: int) -> DeviceCalibration:
        """The device shown in table row ``row`` (after sorting)."""
        idx = self.table.item(row, FILE_COLUMN).data(Qt.ItemDataRole.UserRole)
        return self.devices[int(idx)]

    def row_values(self, row: int) -> dict[str, object]:
        """Column header -> (text, exact value) of a table row."""
        out = {}
        for j, (head, _) in enumerate(COLUMNS):
            it = self.table.item(row, j)
            out[head] = (it.text(), it.data(Qt.ItemDataRole.UserRole))
        return out

    def find_row(self, name_part: str) -> int:
        """First row whose device name contains ``name_part`` (−1 if none)."""
        for row in range(self.table.rowCount()):
            if name_part in self.row_device(row).name:
                return row
        return -1

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    def selected_device(self) -> DeviceCalibration | None:
        rows = {i.row() for i in self.table.selectedItems()}
        return self.row_device(min(rows)) if rows else None

    def _select_best_if_none(self) -> None:
        if self.selected_device() is None and self.table.rowCount():
            self.table.sortItems(U_COLUMN, Qt.SortOrder.DescendingOrder)
            self.select_row(0)

    def _selection_changed(self) -> None:
        dev = self.selected_device()
        if dev is not None:
            self.show_device(dev)

    # -- figures ---------------------------------------------------------------------------------
    def show_device(self, dev: DeviceCalibration) -> None:
        """Draw the section-1 figures of ``dev``."""
        for p in (self.p_lin, self.p_log, self.p_g, self.p_res):
            p.clear()
        self._draw_loops(dev)
        self._draw_mean_curve(dev)
        self._draw_residuals(dev.result)
        for p in (self.p_lin, self.p_log, self.p_g, self.p_res):
            p.enableAutoRange()
        self._show_numbers(dev)

    def _draw_loops(self, dev: DeviceCalibration) -> None:
        """The I-V loops, one colour per cycle with data, linear and log |I|."""
        v = np.asarray(dev.voltage, dtype=float)
        cur = np.asarray(dev.currents, dtype=float)
        has = np.isfinite(cur).any(axis=0)
        cmap = pg.colormap.get("viridis")
        cols = [c for c, h in zip(range(cur.shape[1]), has) if h]
        for k, c in enumerate(cols):
            colour = cmap.map(k / max(1, len(cols) - 1) * 0.9, mode="qcolor")
            i = cur[:, c]
            ok = np.isfinite(i) & np.isfinite(v)
            self.p_lin.plot(v[ok], i[ok], pen=pg.mkPen(colour, width=1.2))
            mag = np.abs(i)
            ok2 = ok & (mag > 0)
            self.p_log.plot(v[ok2], mag[ok2], pen=pg.mkPen(colour, width=1.2))
        plotting.set_title(
            self.p_lin, f"I-V, linear ({len(cols)} cycles, dark → light)", size="10pt"
        )
        plotting.set_title(self.p_log, "I-V, log |I|", size="10pt")

    def _draw_mean_curve(self, dev: DeviceCalibration) -> None:
        """G per cycle and Ḡ on the SET branch, the LCIS highlighted, the L_min window end
        marked, and the verdict L ≥ L_min or not."""
        r = dev.result
        v = np.asarray(dev.voltage, dtype=float)
        cur = np.asarray(dev.currents, dtype=float)
        bv = np.asarray(r.branch_v)
        bg = np.asarray(r.branch_g_mean)
        s, L = r.lcis_start, r.lcis_length
        k_top = int(np.argmax(np.where(np.isfinite(v), v, -np.inf)))
        idx = np.arange(k_top + 1)
        idx = idx[np.isfinite(v[idx]) & (v[idx] >= 1e-3)]
        with np.errstate(divide="ignore", invalid="ignore"):
            g = cur[idx] / v[idx, None]
        g = np.where(np.isfinite(g) & (g > 0), g, np.nan)
        xs = np.repeat(v[idx], g.shape[1])
        ys = g.reshape(-1)
        ok = np.isfinite(ys)
        self.p_g.plot(
            xs[ok], ys[ok], **plotting.markers((150, 150, 150, 120), 3), name="G per cycle"
        )
        self.p_g.plot(
            bv, bg, **plotting.markers(plotting.colour(0), 4, line_width=1.5), name="Ḡ (mean)"
        )
        if L > 0:
            seg = slice(s, s + L)
            self.p_g.plot(
                bv[seg],
                bg[seg],
                **plotting.markers(plotting.colour(3), 6, line_width=3.5),
                name=f"LCIS, L = {L}",
            )
            region = pg.LinearRegionItem(
                (bv[s], bv[s + L - 1]), movable=False, brush=(214, 39, 40, 25), pen=pg.mkPen(None)
            )
            self.p_g.addItem(region)
        end = min(s + r.l_min - 1, len(bv) - 1)
        if len(bv):
            line = pg.InfiniteLine(
                bv[end],
                angle=90,
                pen=pg.mkPen(plotting.colour(4), width=1.5, style=Qt.PenStyle.DashLine),
                label=f"L_min = {r.l_min}",
                labelOpts={"position": 0.1, "color": plotting.colour(4)},
            )
            self.p_g.addItem(line)
        verdict = "L ≥ L_min" if L >= r.l_min else f"L < L_min, α_nm = {r.alpha_nm:.3f}"
        plotting.set_title(self.p_g, f"Ḡ, SET branch: {verdict}", size="10pt")

    def _draw_residuals(self, r) -> None:
        """Histogram of the log residuals inside the LCIS with the normal of σ_ML and σ_up."""
        res = np.asarray(r.residuals)
        if res.size:
            bins = int(min(60, max(8, math.ceil(2 * res.size ** (1 / 3)))))
            hist, edges = np.histogram(res, bins=bins, density=True)
            self.p_res.plot(
                edges,
                hist,
                stepMode="center",
                fillLevel=0,
                brush=(31, 119, 180, 110),
                pen=pg.mkPen(plotting.colour(0)),
                name=f"r, N = {res.size}",
            )
            lo, hi = float(res.min()), float(res.max())
            pad = 0.1 * (hi - lo) if hi > lo else 1.0
            x = np.linspace(lo - pad, hi + pad, 300)
            normals = (
                (r.sigma_hat, pg.mkPen(plotting.colour(3), width=2), "normal, σ_ML"),
                (
                    r.sigma_up,
                    pg.mkPen(plotting.colour(1), width=1.5, style=Qt.PenStyle.DashLine),
                    "σ_up",
                ),
            )
            for sigma, pen, label in normals:
                if math.isfinite(sigma) and sigma > 0:
                    z = (x - float(res.mean())) / sigma
                    pdf = np.exp(-0.5 * z**2) / (sigma * math.sqrt(2 * math.pi))
                    self.p_res.plot(x, pdf, pen=pen, name=f"{label} = {sigma:.3g}")
        plotting.set_title(self.p_res, "Spread inside the LCIS", size="10pt")

    def _show_numbers(self, dev: DeviceCalibration) -> None:
        r = dev.result
        sig = "σ_up" if r.sigma_choice == "up" else "σ_ML"
        name = html.escape(Path(dev.name).name).replace("_", "_\u200b")  # wraps at "_"
        self.numbers.setText(
            f"<b>{name}</b><br>"
            f"<b>U = {r.usability:.4f}</b> = α_nm · exp(−{sig}) &nbsp;|&nbsp; "
            f"L = {r.lcis_length}, L_min = {r.l_min} (⌈{dev.options.l_min_fraction:g}·"
            f"{r.branch_points}⌉), α_nm = {r.alpha_nm:.4f} &nbsp;|&nbsp; σ_ML = {r.sigma_hat:.4f}, "
            f"σ_up = {r.sigma_up:.4f}, N = {r.n_residuals} &nbsp;|&nbsp; {r.n_cycles} cycles, "
            f"LCIS {r.lcis_start_v:.3g} → {r.lcis_stop_v:.3g} V"
            + "".join(
                f"<br><span style='color:#6b5a00'>note: {html.escape(n)}"
                f"{'. ' + _NOTE_WHY if 'ignored' in n else ''}</span>"
                for n in dev.notes
            )
        )

    def save_report(self, dev: DeviceCalibration, path: str | Path) -> Path:
        """Write the :mod:`calibration.report` PNG of ``dev`` (fast enough for the UI thread)."""
        from calibration.report import write_device_png

        out = write_device_png(dev, path)
        self.app.log(f"Report written to {out}")
        return out

    # -- dialogs ---------------------------------------------------------------------------------
    def _open_files_dialog(self) -> None:
        paths = self.ask_open_files("I-V files", "calibration", _IV_FILES)
        if paths:
            self.calibrate_paths(paths)

    def _open_dir_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(
            self, "Folder of I-V files", self.app.settings.last_dir("calibration")
        )
        if d:
            self.calibrate_paths([d])

    def _save_report_dialog(self) -> None:
        dev = self.selected_device()
        if dev is None:
            self.app.log("Select a device first.", "warning")
            return
        from calibration.report import safe_stem

        path = self.ask_save_file(
            "Save report", "calibration", f"{safe_stem(dev.name)}.png", "PNG (*.png)"
        )
        if path:
            self.save_report(dev, path)

    # -- fabrication -----------------------------------------------------------------------------
    def load_history(self, path: str | Path) -> bool:
        """Load a history CSV (:func:`calibration.fabrication.read_history`)."""
        from calibration.fabrication import FabricationInputError, read_history

        try:
            hist = read_history(path)
        except (FabricationInputError, OSError) as exc:
            self.app.log(f"Fabrication history: {exc}", "error")
            return False
        self.set_history(hist)
        self.app.log(f"Loaded fabrication history {path} ({len(hist)} rows)")
        return True

    def build_history(self, conditions_csv: str | Path) -> bool:
        """Grade every raw file of a conditions.csv on the worker thread and show the history."""
        from calibration.fabrication import build_history

        opts = self.options()

        def run(ctx: TaskContext):
            ctx.message(f"Grading the files listed in {Path(conditions_csv).name}…")
            return build_history(conditions_csv, options=opts)

        def done(build) -> None:
            self.set_history(build.history)
            self.app.log(
                f"History built from {conditions_csv}: {len(build.history)} device(s)"
                + (f", {len(build.failures)} failed" if build.failures else ""),
                "ok",
            )

        return self.start_task(
            "Build fabrication history", run, failed="History", bench=False, on_done=done
        )

    def set_history(self, hist) -> None:
        self.history = hist
        t = self.history_table
        t.setSortingEnabled(False)
        t.setRowCount(len(hist))
        for i, (c, u) in enumerate(zip(hist.conditions, hist.usability)):
            label = hist.labels[i] if i < len(hist.labels) else f"row {i + 1}"
            t.setItem(i, 0, NumericItem(f"{float(u):.3f}", float(u)))
            t.setItem(i, 1, QTableWidgetItem(c.perovskite))
            for j, val in enumerate(
                (c.nw_length_um, c.nw_diameter_nm, c.pb_ed_min, c.ag_thickness_nm), start=2
            ):
                t.setItem(i, j, NumericItem(f"{val:g}", val))
            t.setItem(i, 6, QTableWidgetItem(Path(label).name))
            t.item(i, 6).setToolTip(label)
        t.setSortingEnabled(True)
        us = np.asarray(hist.usability, dtype=float)
        self.history_label.setText(
            f"{len(hist)} fabrication(s) from {hist.source}: best U = {us.max():.3f}"
        )
        self.suggest_btn.setEnabled(len(hist) >= 2)
        self.suggestions = []
        self.suggest_table.setRowCount(0)
        self._draw_fabrication()

    def _draw_fabrication(self) -> None:
        """History U (sorted) and the suggestions' predicted U ± std."""
        fp = self.fab_plot.getPlotItem()
        fp.clear()
        if self.history is None:
            return
        us = np.sort(np.asarray(self.history.usability, dtype=float))
        x = np.arange(1, us.size + 1)
        fp.plot(x, us, **plotting.markers(plotting.colour(0), 7), name="measured (history, sorted)")
        best = float(us.max())
        fp.addItem(
            pg.InfiniteLine(
                best,
                angle=0,
                pen=pg.mkPen("#888888", style=Qt.PenStyle.DashLine),
                label=f"best measured U = {best:.3f}",
                labelOpts={"position": 0.62, "color": "#555555"},
            )
        )
        if self.suggestions:
            xs = us.size + 1 + np.arange(len(self.suggestions)) * 1.0
            mean = np.array([sg.mean for sg in self.suggestions])
            std = np.array([sg.std for sg in self.suggestions])
            fp.addItem(
                pg.ErrorBarItem(
                    x=xs,
                    y=mean,
                    height=2 * std,
                    beam=0.3,
                    pen=pg.mkPen(plotting.colour(3), width=1.5),
                )
            )
            fp.plot(
                xs,
                mean,
                **plotting.markers(plotting.colour(3), 9, symbol="s"),
                name="suggested: predicted U ± std",
            )
        fp.setYRange(-0.03, 1.05, padding=0)
        fp.enableAutoRange(axis="x")

    def suggest(self) -> bool:
        """Suggest the next fabrications (GP + EI over the default grid) on the worker thread."""
        if self.history is None:
            self.app.log("Load or build a fabrication history first.", "warning")
            return False
        from calibration.fabrication import DEFAULT_GRID, suggest

        hist, k = self.history, self.n_suggest.value()

        def run(ctx: TaskContext):
            ctx.message(f"Fitting the GP and scoring {DEFAULT_GRID.size:,} configurations…")
            return suggest(hist, k, DEFAULT_GRID)

        def done(sugg) -> None:
            self.suggestions = list(sugg)
            t = self.suggest_table
            t.setSortingEnabled(False)
            t.setRowCount(len(sugg))
            for i, s in enumerate(sugg):
                c = s.conditions
                t.setItem(i, 0, NumericItem(str(i + 1), i + 1))
                t.setItem(i, 1, QTableWidgetItem(c.perovskite))
                for j, val in enumerate(
                    (c.nw_length_um, c.nw_diameter_nm, c.pb_ed_min, c.ag_thickness_nm), start=2
                ):
                    t.setItem(i, j, NumericItem(f"{val:g}", val))
                t.setItem(i, 6, NumericItem(f"{s.mean:.3f}", s.mean))
                t.setItem(i, 7, NumericItem(f"{s.std:.3f}", s.std))
                t.setItem(i, 8, NumericItem(f"{s.ei:.3g}", s.ei))
            t.setSortingEnabled(True)
            self.app.log(f"{len(sugg)} fabrication(s) suggested (grid {DEFAULT_GRID.describe()})")
            self._draw_fabrication()

        return self.start_task(
            "Suggest fabrications", run, failed="Suggestion failed", bench=False, on_done=done
        )

    def _load_history_dialog(self) -> None:
        path = self.ask_open_file("Fabrication history", "calibration", _CSV_FILES)
        if path:
            self.load_history(path)

    def _build_history_dialog(self) -> None:
        path = self.ask_open_file("conditions.csv", "calibration", _CSV_FILES)
        if path:
            self.build_history(path)


def _boxed(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    QVBoxLayout(box).addWidget(widget)
    return box
