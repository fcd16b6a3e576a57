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

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
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
from gui import plotting
from gui.panels.base import AppServices, Panel
from gui.workers import Task, TaskContext

__all__ = ["COLUMNS", "CalibrationPanel", "NumericItem"]

#: Table columns: (header, tooltip).
COLUMNS = (
    ("file", "device (file name, or sweep name for measured sweeps)"),
    ("cycles", "cycles with data"),
    ("U", "usability U = α_nm · exp(−σ)"),
    ("α_nm", "non-monotonic factor min(1, L / L_min)"),
    ("σ_ML", "σ̂: maximum-likelihood standard deviation of the log residuals in the LCIS"),
    ("σ_up", "χ² 95 % upper bound of σ"),
    ("L / L_min", "LCIS length / required length (points)"),
    ("N", "number of residuals"),
    ("LCIS (V)", "voltage range of the longest conductance-increasing run"),
)
U_COLUMN = 2


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

    def __init__(self, app: AppServices, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.devices: list[DeviceCalibration] = []
        self.failures: list[tuple[str, str]] = []
        self.history = None  # calibration.fabrication.History
        self.suggestions: list = []
        self._build()

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        self.tabs = QTabWidget()
        outer.addWidget(self.tabs)
        self.tabs.addTab(self._build_devices(), "Devices (METHODS §1)")
        self.tabs.addTab(self._build_fabrication(), "Fabrication (METHODS §4)")

    def _build_devices(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        bar = QHBoxLayout()
        self.open_files_btn = QPushButton("Open files…")
        self.open_files_btn.clicked.connect(self._open_files_dialog)
        self.open_dir_btn = QPushButton("Open folder…")
        self.open_dir_btn.clicked.connect(self._open_dir_dialog)
        self.use_sweep_btn = QPushButton("Add last I-V sweep")
        self.use_sweep_btn.setToolTip("Grade the last sweep measured in the I-V panel")
        self.use_sweep_btn.clicked.connect(self._add_last_sweep)
        self.clear_btn = QPushButton("Clear")
        self.clear_btn.clicked.connect(self.clear)
        self.report_btn = QPushButton("Save report PNG…")
        self.report_btn.clicked.connect(self._save_report_dialog)
        for b in (
            self.open_files_btn,
            self.open_dir_btn,
            self.use_sweep_btn,
            self.clear_btn,
            self.report_btn,
        ):
            bar.addWidget(b)
        bar.addSpacing(20)
        bar.addWidget(QLabel("Non-rises tolerated"))
        self.tolerated = QSpinBox()
        self.tolerated.setRange(0, 10)
        self.tolerated.setToolTip("Non-rises tolerated inside the LCIS (METHODS: 0; authors: 2)")
        bar.addWidget(self.tolerated)
        bar.addWidget(QLabel("L_min fraction"))
        self.lmin_fraction = QDoubleSpinBox()
        self.lmin_fraction.setRange(0.01, 1.0)
        self.lmin_fraction.setSingleStep(0.05)
        self.lmin_fraction.setValue(0.35)
        bar.addWidget(self.lmin_fraction)
        bar.addWidget(QLabel("σ in U"))
        self.sigma_choice = QComboBox()
        self.sigma_choice.addItem("σ_up (χ² bound)", "up")
        self.sigma_choice.addItem("σ_ML (estimate)", "hat")
        bar.addWidget(self.sigma_choice)
        bar.addStretch(1)
        v.addLayout(bar)

        split = QSplitter(Qt.Orientation.Vertical)
        v.addWidget(split, 1)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([c for c, _ in COLUMNS])
        for j, (_, tip) in enumerate(COLUMNS):
            self.table.horizontalHeaderItem(j).setToolTip(tip)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for j in range(1, len(COLUMNS)):
            hh.setSectionResizeMode(j, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSortIndicator(U_COLUMN, Qt.SortOrder.DescendingOrder)  # best device first
        self.table.setSortingEnabled(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        lv.addWidget(self.table, 1)
        self.summary = QLabel("Open I-V files (xlsx, csv, h5) or measure a sweep in the I-V panel.")
        self.summary.setWordWrap(True)
        lv.addWidget(self.summary)
        split.addWidget(left)

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
            row=0,
            col=2,
            title="Ḡ on the SET branch",
            axisItems={"left": plotting.SIAxis("left", "S")},
        )
        self.p_res = self.figures.addPlot(row=0, col=3, title="log residuals r = ln(G/Ḡ)")
        for j, f in enumerate((1.0, 1.0, 1.25, 1.0)):
            self.figures.ci.layout.setColumnStretchFactor(j, int(f * 4))
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
        self.p_g.addLegend(offset=(-10, -10), labelTextSize="8pt")
        self.p_res.addLegend(offset=(10, 10), labelTextSize="8pt")
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.figures, 1)
        self.numbers = QLabel("Select a device in the table.")
        self.numbers.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.numbers.setWordWrap(True)
        rv.addWidget(self.numbers)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([230, 380])
        return w

    def _build_fabrication(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        bar = QHBoxLayout()
        self.load_history_btn = QPushButton("Load history CSV…")
        self.load_history_btn.setToolTip(
            "Columns perovskite, nw_length_um, nw_diameter_nm, pb_ed_min, ag_thickness_nm, "
            "usability"
        )
        self.load_history_btn.clicked.connect(self._load_history_dialog)
        self.build_history_btn = QPushButton("Build from conditions.csv…")
        self.build_history_btn.setToolTip(
            "Grade every raw file listed in a conditions.csv (METHODS §1) and join the conditions"
        )
        self.build_history_btn.clicked.connect(self._build_history_dialog)
        bar.addWidget(self.load_history_btn)
        bar.addWidget(self.build_history_btn)
        bar.addSpacing(20)
        bar.addWidget(QLabel("Suggestions"))
        self.n_suggest = QSpinBox()
        self.n_suggest.setRange(1, 20)
        self.n_suggest.setValue(3)
        bar.addWidget(self.n_suggest)
        self.suggest_btn = QPushButton("Suggest next fabrications")
        self.suggest_btn.clicked.connect(self.suggest)
        bar.addWidget(self.suggest_btn)
        bar.addStretch(1)
        v.addLayout(bar)
        self.history_label = QLabel(
            "No history loaded: load a history CSV or build one from a conditions.csv"
        )
        v.addWidget(self.history_label)
        outer = QSplitter(Qt.Orientation.Horizontal)
        v.addWidget(outer, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(split)
        self.fab_plot = plotting.plot_widget(
            "Measured and predicted usability",
            x="measured (sorted by U), then suggested",
            y="usability U",
        )
        fp = self.fab_plot.getPlotItem()
        plotting.no_si_prefix(fp)
        fp.setYRange(-0.03, 1.05, padding=0)
        fp.addLegend(offset=(10, 10), labelTextSize="9pt")
        outer.addWidget(self.fab_plot)
        outer.setSizes([820, 560])
        box = QGroupBox("History: conditions and measured usability")
        bl = QVBoxLayout(box)
        self.history_table = _table(
            [
                "device",
                "perovskite",
                "length (µm)",
                "diameter (nm)",
                "Pb ED (min)",
                "Ag (nm)",
                "U",
            ]
        )
        bl.addWidget(self.history_table)
        split.addWidget(box)
        box = QGroupBox("Suggested next fabrications (Expected Improvement over the grid)")
        bl = QVBoxLayout(box)
        self.suggest_table = _table(
            [
                "rank",
                "perovskite",
                "length (µm)",
                "diameter (nm)",
                "Pb ED (min)",
                "Ag (nm)",
                "predicted U",
                "± std",
                "EI",
            ],
            stretch=1,
        )
        bl.addWidget(self.suggest_table)
        split.addWidget(box)
        self.suggest_btn.setEnabled(False)
        return w

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
        """Grade files/folders on the worker thread; rows appear as files finish."""
        try:
            files = find_iv_files(paths)
        except (CalibrationInputError, OSError) as exc:
            self.app.log(f"Calibration: {exc}", "error")
            return False
        if not files:
            self.app.log("Calibration: no I-V files found", "warning")
            return False
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
                        ctx.emit(("device", d))
                    ok += len(devs)
                ctx.progress(k + 1, len(files))
            return ok, bad

        def done(res: tuple[int, int]) -> None:
            ok, bad = res
            self.app.log(f"Calibrated {ok} device(s)" + (f", {bad} failed" if bad else ""), "ok")
            self._select_best_if_none()

        self.app.settings.set_last_dir("calibration", Path(files[0]))
        return self.app.run_task(
            Task(
                f"Calibrate {len(files)} file(s)",
                run,
                on_items=self._on_items,
                on_done=done,
                on_aborted=lambda _: self.app.log("Calibration aborted", "warning"),
                on_error=lambda e: self.app.log(f"Calibration failed: {e}", "error"),
                uses_bench=False,
            )
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
        self._add_device(dev)
        return dev

    def _add_last_sweep(self) -> None:
        iv = getattr(self.app, "iv_panel", None)
        if iv is None or iv.last is None:
            self.app.log("No sweep measured yet (I-V panel).", "warning")
            return
        if self.add_measured_sweep(iv.last) is not None:
            self.select_row(self.table.rowCount() - 1)

    def _on_items(self, items: list) -> None:
        for it in items:
            if it[0] == "device":
                self._add_device(it[1])
            else:
                self.failures.append((it[1], it[2]))
                self.app.log(f"Calibration: {it[2]}", "warning")

    def _add_device(self, dev: DeviceCalibration) -> None:
        r = dev.result
        self.devices.append(dev)
        idx = len(self.devices) - 1
        self.table.setSortingEnabled(False)
        row = self.table.rowCount()
        self.table.insertRow(row)
        name_item = QTableWidgetItem(
            Path(dev.name).name if dev.source_format != "measured" else dev.name
        )
        name_item.setToolTip(dev.name)
        name_item.setData(Qt.ItemDataRole.UserRole, idx)
        self.table.setItem(row, 0, name_item)
        vals = [
            (f"{r.n_cycles}", r.n_cycles),
            (f"{r.usability:.3f}", r.usability),
            (f"{r.alpha_nm:.3f}", r.alpha_nm),
            (plotting.fmt(r.sigma_hat, 3), r.sigma_hat),
            (plotting.fmt(r.sigma_up, 3), r.sigma_up),
            (f"{r.lcis_length} / {r.l_min}", r.lcis_length / max(r.l_min, 1)),
            (f"{r.n_residuals}", r.n_residuals),
            (f"{r.lcis_start_v:.2f} → {r.lcis_stop_v:.2f}", r.lcis_start_v),
        ]
        for j, (text, value) in enumerate(vals, start=1):
            self.table.setItem(row, j, NumericItem(text, value))
        self.table.setSortingEnabled(True)
        n = len(self.devices)
        us = np.array([d.result.usability for d in self.devices])
        self.summary.setText(
            f"{n} device(s): U from {us.min():.3f} to {us.max():.3f} (median {np.median(us):.3f})"
            + (f"; {len(self.failures)} file(s) failed" if self.failures else "")
        )

    def clear(self) -> None:
        self.devices.clear()
        self.failures.clear()
        self.table.setRowCount(0)
        for p in (self.p_lin, self.p_log, self.p_g, self.p_res):
            p.clear()
        self.numbers.setText("Select a device in the table.")
        self.summary.setText("")

    # -- table access ----------------------------------------------------------------------------
    def row_device(self, row: int) -> DeviceCalibration:
        """The device shown in table row ``row`` (after sorting)."""
        idx = self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)
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
        r = dev.result
        for p in (self.p_lin, self.p_log, self.p_g, self.p_res):
            p.clear()
        old = getattr(self, "_verdict", None)
        if old is not None and old.scene() is not None:
            old.scene().removeItem(old)
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
        self.p_lin.setTitle(f"I-V loops, linear ({len(cols)} cycles, dark → light)", size="10pt")
        self.p_log.setTitle("I-V loops, log |I|", size="10pt")

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
            xs[ok],
            ys[ok],
            pen=None,
            symbol="o",
            symbolSize=3,
            symbolBrush=(150, 150, 150, 120),
            symbolPen=None,
            name="G per cycle",
        )
        self.p_g.plot(
            bv,
            bg,
            pen=pg.mkPen(plotting.colour(0), width=1.5),
            symbol="o",
            symbolSize=4,
            symbolBrush=plotting.colour(0),
            symbolPen=None,
            name="Ḡ (mean)",
        )
        if L > 0:
            seg = slice(s, s + L)
            self.p_g.plot(
                bv[seg],
                bg[seg],
                pen=pg.mkPen(plotting.colour(3), width=3.5),
                symbol="o",
                symbolSize=6,
                symbolBrush=plotting.colour(3),
                symbolPen=None,
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
        verdict = "L ≥ L_min: monotonic" if L >= r.l_min else f"L < L_min: α_nm = {r.alpha_nm:.3f}"
        self.p_g.setTitle(f"Ḡ on the SET branch ({len(bv)} points)", size="10pt")
        text = pg.TextItem(
            verdict,
            color="k",
            fill=pg.mkBrush(255, 255, 255, 220),
            border=pg.mkPen("#bbbbbb"),
            anchor=(0, 0),
        )
        text.setParentItem(self.p_g.getViewBox())
        text.setPos(8, 6)
        self._verdict = text

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
            mu = float(res.mean())
            lo, hi = float(res.min()), float(res.max())
            pad = 0.1 * (hi - lo) if hi > lo else 1.0
            x = np.linspace(lo - pad, hi + pad, 300)
            if r.sigma_hat > 0:
                pdf = np.exp(-0.5 * ((x - mu) / r.sigma_hat) ** 2) / (
                    r.sigma_hat * math.sqrt(2 * math.pi)
                )
                self.p_res.plot(
                    x,
                    pdf,
                    pen=pg.mkPen(plotting.colour(3), width=2),
                    name=f"normal, σ_ML = {r.sigma_hat:.3g}",
                )
            if math.isfinite(r.sigma_up) and r.sigma_up > 0:
                pdf = np.exp(-0.5 * ((x - mu) / r.sigma_up) ** 2) / (
                    r.sigma_up * math.sqrt(2 * math.pi)
                )
                self.p_res.plot(
                    x,
                    pdf,
                    pen=pg.mkPen(plotting.colour(1), width=1.5, style=Qt.PenStyle.DashLine),
                    name=f"σ_up = {r.sigma_up:.3g}",
                )
        self.p_res.setTitle("Stochastic spread inside the LCIS", size="10pt")
        for p in (self.p_lin, self.p_log, self.p_g, self.p_res):
            p.enableAutoRange()
        sig = "σ_up" if r.sigma_choice == "up" else "σ_ML"
        self.numbers.setText(
            f"<b>{Path(dev.name).name}</b><br>"
            f"<b>U = {r.usability:.4f}</b> = α_nm · exp(−{sig}) &nbsp;|&nbsp; "
            f"L = {r.lcis_length}, L_min = {r.l_min} (⌈{dev.options.l_min_fraction:g}·"
            f"{r.branch_points}⌉), α_nm = {r.alpha_nm:.4f} &nbsp;|&nbsp; σ_ML = {r.sigma_hat:.4f}, "
            f"σ_up = {r.sigma_up:.4f}, N = {r.n_residuals} &nbsp;|&nbsp; {r.n_cycles} cycles, "
            f"LCIS {r.lcis_start_v:.3g} → {r.lcis_stop_v:.3g} V"
            + "".join(f"<br><span style='color:#c00000'>note: {n}</span>" for n in dev.notes)
        )

    def save_report(self, dev: DeviceCalibration, path: str | Path) -> Path:
        """Write the :mod:`calibration.report` PNG of ``dev`` (fast enough for the UI thread)."""
        from calibration.report import write_device_png

        out = write_device_png(dev, path)
        self.app.log(f"Report written to {out}")
        return out

    # -- dialogs ---------------------------------------------------------------------------------
    def _open_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self,
            "I-V files",
            self.app.settings.last_dir("calibration"),
            "I-V data (*.xlsx *.xlsm *.xls *.csv *.txt *.h5 *.hdf5);;All files (*)",
        )
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

        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save report",
            str(Path(self.app.settings.last_dir("calibration")) / f"{safe_stem(dev.name)}.png"),
            "PNG (*.png)",
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

        return self.app.run_task(
            Task(
                "Build fabrication history",
                run,
                on_done=done,
                on_error=lambda e: self.app.log(f"History: {e}", "error"),
                uses_bench=False,
            )
        )

    def set_history(self, hist) -> None:
        self.history = hist
        t = self.history_table
        t.setSortingEnabled(False)
        t.setRowCount(len(hist))
        for i, (c, u) in enumerate(zip(hist.conditions, hist.usability)):
            label = hist.labels[i] if i < len(hist.labels) else f"row {i + 1}"
            t.setItem(i, 0, QTableWidgetItem(Path(label).name))
            t.item(i, 0).setToolTip(label)
            t.setItem(i, 1, QTableWidgetItem(c.perovskite))
            for j, val in enumerate(
                (c.nw_length_um, c.nw_diameter_nm, c.pb_ed_min, c.ag_thickness_nm, float(u)),
                start=2,
            ):
                t.setItem(i, j, NumericItem(f"{val:g}" if j < 6 else f"{val:.3f}", val))
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
        if fp.legend is not None:
            fp.legend.clear()
        if self.history is None:
            return
        us = np.sort(np.asarray(self.history.usability, dtype=float))
        x = np.arange(1, us.size + 1)
        fp.plot(
            x,
            us,
            pen=None,
            symbol="o",
            symbolSize=7,
            symbolBrush=plotting.colour(0),
            symbolPen=None,
            name="measured (history, sorted)",
        )
        best = float(us.max())
        fp.addItem(
            pg.InfiniteLine(
                best,
                angle=0,
                pen=pg.mkPen("#888888", style=Qt.PenStyle.DashLine),
                label=f"best measured U = {best:.3f}",
                labelOpts={"position": 0.25, "color": "#555555"},
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
                pen=None,
                symbol="s",
                symbolSize=9,
                symbolBrush=plotting.colour(3),
                symbolPen=None,
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

        return self.app.run_task(
            Task(
                "Suggest fabrications",
                run,
                on_done=done,
                on_error=lambda e: self.app.log(f"Suggestion failed: {e}", "error"),
                uses_bench=False,
            )
        )

    def _load_history_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Fabrication history",
            self.app.settings.last_dir("calibration"),
            "CSV (*.csv);;All files (*)",
        )
        if path:
            self.load_history(path)

    def _build_history_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "conditions.csv",
            self.app.settings.last_dir("calibration"),
            "CSV (*.csv);;All files (*)",
        )
        if path:
            self.build_history(path)


def _table(headers: list[str], stretch: int = 0) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.verticalHeader().setVisible(False)
    t.setWordWrap(False)
    t.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    hh = t.horizontalHeader()
    for j in range(len(headers)):
        mode = (
            QHeaderView.ResizeMode.Stretch
            if j == stretch
            else QHeaderView.ResizeMode.ResizeToContents
        )
        hh.setSectionResizeMode(j, mode)
    hh.setSortIndicator(0, Qt.SortOrder.AscendingOrder)  # Qt's default is descending
    t.setSortingEnabled(True)
    return t
