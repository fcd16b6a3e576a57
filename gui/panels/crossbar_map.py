"""Crossbar panel (ArC ONE/TWO conventions): the array as a heat map, reads, pulses, programming.

* Heat map of R, G or read current per cell on a log colour scale with a colour bar; unread
  cells are grey. Hovering shows the cell's values; click selects a cell, Ctrl+click toggles
  one, drag selects a rectangle.
* Read selected / read all at a read voltage with a biasing scheme (V/3, V/2, ground, float).
* ± pulse with read-after (amplitude, width, repeat) on the selected cells.
* Program-and-verify the selected cells to a target conductance, or every cell of a target map
  loaded from a CSV or NPY file (S, NaN = leave alone).
* Per-cell history: G versus pulse number with the pulse amplitude on a second axis.

Everything runs through :class:`crossbar.core.Crossbar` on the worker thread, so every read,
pulse and program-verify step is recorded in the session's data file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QPen
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsRectItem,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from crossbar.backend import Biasing, CellReading
from crossbar.programming import CellProgramReport, ProgramReport, ProgramStep
from crossbar.progress import Progress
from gui import plotting
from gui.panels.base import AppServices, Panel
from gui.widgets import (
    button,
    choice,
    double_spin,
    form_group,
    hbox,
    int_spin,
    scroll_column,
    set_panes,
)
from gui.workers import TaskAborted, TaskContext

__all__ = ["CellImage", "CrossbarPanel", "HistoryEntry", "load_target_map"]

#: Map quantities: key -> (symbol, unit, what). T and E need programming targets.
QUANTITIES = {
    "R": ("R", "Ω", "resistance"),
    "G": ("G", "S", "conductance"),
    "I": ("I", "A", "read current"),
    "T": ("G target", "S", "programming target"),
    "E": ("G/target − 1", "", "programming error"),
}
#: The fixed colour scales (log10 of Ω, S, A): the decades a perovskite cell spans, from the HRS
#: (≈ 100 nS) to a filament at the compliance (≈ 100 µS), so maps read one after the other
#: compare by colour.
_DEFAULT_LEVELS = {"R": (4.0, 8.0), "G": (-8.0, -4.0), "I": (-9.0, -4.0), "T": (-8.0, -4.0)}


@dataclass(frozen=True)
class HistoryEntry:
    """One event in a cell's history: a read (amplitude 0) or a pulse + verify read."""

    amplitude: float  # V (0 for a plain read)
    width: float  # s (0 for a plain read)
    conductance: float  # S, the read after the event
    current: float  # A
    v_read: float  # V
    kind: str  # "read" | "pulse" | "program"


def load_target_map(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """Read a target conductance map (S) from ``.npy`` or a CSV/text grid; NaN = skip a cell.

    Raises ValueError when the shape differs from ``shape`` or a value is ≤ 0.
    """
    p = Path(path)
    if p.suffix.lower() == ".npy":
        arr = np.load(p, allow_pickle=False)
    else:
        text = p.read_text(encoding="utf-8-sig")
        delim = "," if "," in text else None
        arr = np.genfromtxt(p, delimiter=delim, dtype=float, filling_values=np.nan)
    arr = np.asarray(arr, dtype=float)
    if arr.shape != tuple(shape):
        raise ValueError(f"{p.name}: target map has shape {arr.shape}, the array is {shape}")
    bad = np.isfinite(arr) & (arr <= 0)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{p.name}: target at ({r}, {c}) is {arr[r, c]:g} S; must be > 0")
    if not np.isfinite(arr).any():
        raise ValueError(f"{p.name}: no target values (all NaN)")
    return arr


class CellImage(pg.ImageItem):
    """Heat-map image that turns mouse input into cell selection and hover signals."""

    cell_clicked = pyqtSignal(int, int, bool)  # row, col, toggle (Ctrl)
    cells_dragged = pyqtSignal(int, int, int, int, bool)  # r0, c0, r1, c1, finished
    cell_hovered = pyqtSignal(int, int)  # -1, -1 when leaving

    def __init__(self, shape: tuple[int, int]) -> None:
        super().__init__(axisOrder="row-major")
        self.shape_rc = shape
        self.setAcceptHoverEvents(True)

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        rows, cols = self.shape_rc
        c, r = int(np.floor(pos.x())), int(np.floor(pos.y()))
        if 0 <= r < rows and 0 <= c < cols:
            return r, c
        return None

    def _clamped(self, pos: QPointF) -> tuple[int, int]:
        rows, cols = self.shape_rc
        return (
            int(np.clip(np.floor(pos.y()), 0, rows - 1)),
            int(np.clip(np.floor(pos.x()), 0, cols - 1)),
        )

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph API
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        cell = self.cell_at(ev.pos())
        if cell is None:
            ev.ignore()
            return
        ev.accept()
        toggle = bool(ev.modifiers() & Qt.KeyboardModifier.ControlModifier)
        self.cell_clicked.emit(cell[0], cell[1], toggle)

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph API
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        r0, c0 = self._clamped(ev.buttonDownPos())
        r1, c1 = self._clamped(ev.pos())
        self.cells_dragged.emit(r0, c0, r1, c1, bool(ev.isFinish()))

    def hoverEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph API
        if ev.isExit():
            self.cell_hovered.emit(-1, -1)
            return
        cell = self.cell_at(ev.pos())
        self.cell_hovered.emit(*(cell if cell is not None else (-1, -1)))


class CrossbarPanel(Panel):
    """The array map with read / pulse / program operations and per-cell histories."""

    title = "Crossbar"
    focus_changed = pyqtSignal(int, int)  # the cell whose history is shown

    def __init__(self, app: AppServices, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.shape = (10, 10)
        self._init_data()
        self.selection: set[tuple[int, int]] = set()
        self.focus: tuple[int, int] = (0, 0)
        self.target_map: np.ndarray | None = None
        self.target_path: str | None = None
        self.last_program: ProgramReport | None = None
        self.program_targets: np.ndarray | None = None  # the last run's targets (S)
        self.program_options: dict = {}
        self.levels: dict[str, tuple[float, float]] = {}  # locked colour scales
        self._drag_base: set[tuple[int, int]] = set()
        self._build()
        self.session_changed(None)

    def _init_data(self) -> None:
        self.g_map = np.full(self.shape, np.nan)  # S
        self.i_map = np.full(self.shape, np.nan)  # A
        self.history: dict[tuple[int, int], list[HistoryEntry]] = {}

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        split = QSplitter(Qt.Orientation.Horizontal)  # map (square) beside the plots
        split.setChildrenCollapsible(False)
        outer.addWidget(split, 1)
        split.addWidget(self._build_map())
        self.plot_tabs = QTabWidget()
        self.plot_tabs.addTab(self._build_history(), "History")
        self.plot_tabs.addTab(self._build_program_plot(), "Achieved vs target")
        split.addWidget(self.plot_tabs)
        set_panes(split, stretch=(4, 5), sizes=(330, 410))
        area, rv = scroll_column(270)
        self.controls_area = area
        outer.addWidget(area, 0)
        self._build_controls(rv)
        self.refresh_map()
        self.refresh_history()
        self._update_selection()

    def _build_map(self) -> QWidget:
        """The quantity and colour-scale choosers over the heat map and the hover line."""
        mapbox = QWidget()
        mv = QVBoxLayout(mapbox)
        mv.setContentsMargins(0, 0, 0, 0)
        self.quantity = QComboBox()
        for key, (sym, _unit, what) in QUANTITIES.items():
            self.quantity.addItem(sym, key)
            self.quantity.setItemData(self.quantity.count() - 1, what, Qt.ItemDataRole.ToolTipRole)
        q = str(self.app.settings.get("plot/map_quantity") or "R")
        self.quantity.setCurrentIndex(max(0, self.quantity.findData(q)))
        self.quantity.currentIndexChanged.connect(self.refresh_map)
        self.scale_mode = choice(
            [("fixed decades", "fixed"), ("fitted, locked", "locked"), ("follows data", "auto")],
            "Fixed decades: the device's whole range (e.g. 10 kΩ … 100 MΩ), the same for every "
            "read; fitted, locked: fitted to the map when chosen (or Fit) and then kept; "
            "follows data: refitted at every read",
        )
        self.scale_mode.currentIndexChanged.connect(self.refresh_map)
        self.fit_btn = button(
            "Fit", self.fit_scale, "Fit the colour scale to the map shown, and keep it (locked)"
        )
        top = hbox(
            QLabel("Show"), (self.quantity, 1), QLabel("scale"), self.scale_mode, self.fit_btn
        )
        mv.addLayout(top)
        mv.addWidget(self._build_map_plot(), 1)
        self.hover_label = QLabel("Hover over a cell to see its values")
        self.hover_label.setMinimumHeight(20)
        self.hover_label.setWordWrap(True)
        mv.addWidget(self.hover_label)
        return mapbox

    def _build_map_plot(self) -> pg.PlotWidget:
        """The heat map: grey where unread, a colour bar, the selection and the focused cell."""
        plotting.configure()
        self.map_widget = pg.PlotWidget()
        self.map_plot = self.map_widget.getPlotItem()
        vb = self.map_plot.getViewBox()
        vb.setMouseEnabled(x=False, y=False)
        vb.setMenuEnabled(False)
        vb.invertY(True)
        vb.setAspectLocked(True)
        self.unread_rect = QGraphicsRectItem(0, 0, self.shape[1], self.shape[0])
        self.unread_rect.setBrush(QBrush(QColor(205, 205, 205)))
        self.unread_rect.setPen(QPen(Qt.PenStyle.NoPen))
        self.unread_rect.setZValue(-10)
        vb.addItem(self.unread_rect)
        self.map_plot.hideButtons()
        self.map_plot.setLabel("bottom", "column (bit line)")
        self.map_plot.setLabel("left", "row (word line)")
        self.image = CellImage(self.shape)
        self.map_plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(
            values=(2.0, 7.0),
            colorMap=pg.colormap.get("viridis"),
            interactive=False,
            width=18,
            pen="k",
        )
        self.colorbar.setImageItem(self.image, insert_in=self.map_plot)
        self.sel_item = pg.ScatterPlotItem(
            pxMode=False, size=0.9, symbol="s", brush=None, pen=pg.mkPen("#ff2d2d", width=3)
        )
        self.map_plot.addItem(self.sel_item)
        self.focus_item = pg.ScatterPlotItem(
            pxMode=False, size=0.6, symbol="o", brush=None, pen=pg.mkPen("w", width=2)
        )
        self.map_plot.addItem(self.focus_item)
        self.image.cell_clicked.connect(self._clicked)
        self.image.cells_dragged.connect(self._dragged)
        self.image.cell_hovered.connect(self._hovered)
        return self.map_widget

    def _build_history(self) -> pg.PlotWidget:
        """The focused cell's history: G (log) per pulse, pulse amplitudes on a right axis."""
        self.hist_widget = plotting.plot_widget("History", x="pulse number", y="G", y_units="S")
        hp = self.hist_widget.getPlotItem()
        self.hist_curve = hp.plot(
            [], [], **plotting.markers(plotting.colour(0), 5, line_width=1), name="G"
        )
        # log G on the left only (the right amplitude axis stays linear)
        self.hist_curve.setLogMode(False, True)
        hp.getAxis("left").setLogMode(False, True)
        hp.getAxis("left").enableAutoSIPrefix(False)
        hp.setLabel("left", "G (read after), log scale")
        plotting.no_si_prefix(hp, "bottom")
        hp.showAxis("right")
        hp.setLabel("right", "pulse amplitude", units="V")
        self.amp_view = pg.ViewBox()
        hp.scene().addItem(self.amp_view)
        hp.getAxis("right").linkToView(self.amp_view)
        self.amp_view.setXLink(hp)
        self.amp_bars = pg.ScatterPlotItem(
            symbol="t1", size=7, pen=None, brush=pg.mkBrush(plotting.colour(3))
        )
        self.amp_view.addItem(self.amp_bars)
        self.amp_view.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen("#bbbbbb", width=1)))
        hp.getViewBox().sigResized.connect(self._sync_views)
        self.hist_hint = pg.TextItem(
            "No reads or pulses of this cell yet", color="#777777", anchor=(0.5, 0.5)
        )
        self.hist_hint.setParentItem(hp.getViewBox())
        return self.hist_widget

    def _build_program_plot(self) -> pg.PlotWidget:
        """Achieved versus target conductance of the last programming run (log-log), the
        identity line and the tolerance band."""
        self.prog_widget = plotting.plot_widget(
            "Achieved vs target", x="target G", x_units="S", y="achieved G", y_units="S"
        )
        pp = self.prog_widget.getPlotItem()
        pp.setLogMode(x=True, y=True)
        pp.getAxis("left").enableAutoSIPrefix(False)
        pp.addLegend(offset=(10, 10), labelTextSize="8pt")
        self.prog_ideal = pp.plot(
            [], [], pen=pg.mkPen("#888888", width=1), name="achieved = target"
        )
        self.prog_band = [
            pp.plot([], [], pen=pg.mkPen("#888888", width=1, style=Qt.PenStyle.DashLine))
            for _ in range(2)
        ]
        self.prog_points = {
            "converged": pp.plot(
                [], [], **plotting.markers(plotting.colour(2), 8), name="converged"
            ),
            "not converged": pp.plot(
                [], [], **plotting.markers(plotting.colour(1), 8), name="not converged"
            ),
            "stuck": pp.plot([], [], **plotting.markers(plotting.colour(3), 10, "x"), name="stuck"),
        }
        return self.prog_widget

    def _build_controls(self, rv: QVBoxLayout) -> None:
        """The selection over the read, pulse, program and export groups."""
        g = QGroupBox("Selection")
        v = QVBoxLayout(g)
        self.sel_label = QLabel("No cell selected")
        self.sel_label.setWordWrap(True)
        v.addWidget(self.sel_label)
        self.select_all = button(
            "Select all",
            lambda: self.set_selection(
                {(r, c) for r in range(self.shape[0]) for c in range(self.shape[1])}
            ),
        )
        self.clear_sel = button("Clear", lambda: self.set_selection(set()))
        v.addLayout(hbox(self.select_all, self.clear_sel))
        rv.addWidget(g)
        rv.addWidget(self._read_group())
        rv.addWidget(self._pulse_group())
        rv.addWidget(self._program_group())
        rv.addWidget(self._export_group())
        rv.addStretch(1)

    def _export_group(self) -> QGroupBox:
        g = QGroupBox("Export")
        v = QVBoxLayout(g)
        self.export_map_btn = button(
            "Export map CSV…",
            self._export_map_dialog,
            "Every cell's last read (G, R, I), target and error, one row per cell",
        )
        self.export_program_btn = button(
            "Export programming CSV…",
            self._export_program_dialog,
            "The last programming run: target, achieved, error and pulses per cell",
        )
        v.addWidget(self.export_map_btn)
        v.addWidget(self.export_program_btn)
        return g

    def _read_group(self) -> QGroupBox:
        g, f = form_group("Read")
        self.v_read = double_spin(
            0.01, 0.3, float(self.app.settings.get("read/v_read")), 0.05, 3, " V"
        )
        self.biasing = QComboBox()
        for b in Biasing:
            self.biasing.addItem(b.value, b)
        bi = self.biasing.findData(Biasing.parse(str(self.app.settings.get("read/biasing"))))
        self.biasing.setCurrentIndex(max(0, bi))
        self.biasing.setToolTip(
            "Unselected lines: V/3 (rows V/3, columns 2V/3), V/2, ground or floating"
        )
        f.addRow("Read voltage", self.v_read)
        f.addRow("Biasing", self.biasing)
        self.read_sel_btn = button("Read selected", self.read_selected)
        self.read_all_btn = button("Read all", self.read_all)
        f.addRow(hbox(self.read_sel_btn, self.read_all_btn))
        return g

    def _pulse_group(self) -> QGroupBox:
        g, f = form_group("Pulse (read after)")
        self.amplitude = double_spin(0.1, 6.0, 3.2, 0.1, 2, " V")
        self.width_ms = double_spin(0.001, 1000.0, 1.0, 0.5, 3, " ms")
        self.repeat = int_spin(1, 1000, 1)
        self.read_after = QCheckBox("read after each pulse")
        self.read_after.setChecked(True)
        for label, widget in (
            ("Amplitude", self.amplitude),
            ("Width", self.width_ms),
            ("Pulses", self.repeat),
        ):
            f.addRow(label, widget)
        f.addRow(self.read_after)
        self.pulse_pos_btn = button("+ Pulse (SET)", lambda: self.pulse_selected(+1))
        self.pulse_neg_btn = button("− Pulse (RESET)", lambda: self.pulse_selected(-1))
        f.addRow(hbox(self.pulse_pos_btn, self.pulse_neg_btn))
        return g

    def _program_group(self) -> QGroupBox:
        g = QGroupBox("Program and verify")
        grid = QGridLayout(g)
        self.target_us = double_spin(0.1, 1000.0, 10.0, 1.0, 2, " µS")
        self.tolerance = double_spin(0.5, 50.0, 5.0, 1.0, 1, " %")
        self.max_pulses = int_spin(1, 1000, 60)
        for i, (label, widget) in enumerate(
            (
                ("Target G", self.target_us),
                ("Tolerance", self.tolerance),
                ("Pulse budget", self.max_pulses),
            )
        ):
            grid.addWidget(QLabel(label), i, 0)
            grid.addWidget(widget, i, 1)
        self.program_sel_btn = button("Program selected", self.program_selected)
        grid.addWidget(self.program_sel_btn, 3, 0, 1, 2)
        self.load_target_btn = button("Load map…", self._load_target_dialog, "Load a target map")
        self.program_map_btn = button("Program map", self.program_target_map)
        self.program_map_btn.setToolTip("Program every cell of the loaded target map")
        grid.addWidget(self.load_target_btn, 4, 0)
        grid.addWidget(self.program_map_btn, 4, 1)
        self.resume_btn = button(
            "Resume last programming",
            self.resume_programming,
            "Program the last run's targets again, skipping the cells whose last verify read "
            "in the data file is within tolerance (as `xbar program --resume`)",
        )
        grid.addWidget(self.resume_btn, 5, 0, 1, 2)
        self.target_label = QLabel("No target map loaded")
        self.target_label.setWordWrap(True)
        grid.addWidget(self.target_label, 6, 0, 1, 2)
        self.program_label = QLabel("")
        self.program_label.setWordWrap(True)
        grid.addWidget(self.program_label, 7, 0, 1, 2)
        return g

    def _place_hint(self) -> None:
        hint = getattr(self, "hist_hint", None)
        if hint is not None and hint.isVisible():
            hint.setPos(self.hist_widget.getPlotItem().getViewBox().boundingRect().center())

    def _sync_views(self) -> None:
        self._place_hint()
        hp = self.hist_widget.getPlotItem()
        self.amp_view.setGeometry(hp.getViewBox().sceneBoundingRect())
        self.amp_view.linkedViewChanged(hp.getViewBox(), self.amp_view.XAxis)

    # -- session / state -------------------------------------------------------------------------
    def session_changed(self, session) -> None:
        if session is not None:
            if tuple(session.shape) != self.shape:
                self.shape = tuple(session.shape)
                self._init_data()
                self.image.shape_rc = self.shape
                self.selection = set()
            self.v_read.setMaximum(session.max_read_voltage)
            self.amplitude.setMaximum(session.max_voltage)
        self._update_enabled()
        self.refresh_map()

    def busy_changed(self, busy: bool) -> None:
        self._update_enabled()

    def _update_enabled(self) -> None:
        ok = self.app.session is not None and not self.app.runner.busy
        has_sel = bool(self.selection)
        self.read_all_btn.setEnabled(ok)
        for b in (self.read_sel_btn, self.pulse_pos_btn, self.pulse_neg_btn, self.program_sel_btn):
            b.setEnabled(ok and has_sel)
        self.program_map_btn.setEnabled(ok and self.target_map is not None)
        unfinished = self.program_targets is not None and (
            self.last_program is None
            or self.last_program.aborted
            or self.last_program.n_converged < int(np.isfinite(self.program_targets).sum())
        )
        self.resume_btn.setEnabled(ok and unfinished)
        self.export_map_btn.setEnabled(bool(np.isfinite(self.g_map).any()))
        self.export_program_btn.setEnabled(self.last_program is not None)

    def save_settings(self) -> None:
        s = self.app.settings
        s.set("plot/map_quantity", self.quantity.currentData())
        s.set("read/v_read", self.v_read.value())
        s.set("read/biasing", self.biasing.currentData().value)

    # -- map -------------------------------------------------------------------------------------
    def targets(self) -> np.ndarray:
        """The programming targets shown (S, NaN = none): the last run's, else the loaded
        target map."""
        if self.program_targets is not None:
            return self.program_targets
        if self.target_map is not None:
            return self.target_map
        return np.full(self.shape, np.nan)

    def quantity_map(self, which: str | None = None) -> np.ndarray:
        """The map of ``which`` ("R" Ω, "G" S, "I" A, "T" target S, "E" G/target − 1;
        default: the one shown), NaN = unread / no target."""
        which = which or self.quantity.currentData()
        with np.errstate(divide="ignore", invalid="ignore"):
            if which == "R":
                return np.where(self.g_map > 0, 1.0 / self.g_map, np.nan)
            if which == "G":
                return self.g_map.copy()
            if which == "T":
                return self.targets().copy()
            if which == "E":
                t = self.targets()
                return np.where(t > 0, self.g_map / t - 1.0, np.nan)
            return self.i_map.copy()

    def displayed_image(self) -> np.ndarray:
        """The array given to the image item: log10 |quantity| (the error: linear), NaN where
        unread."""
        return np.asarray(self.image.image)

    def _fitted_levels(self, which: str, values: np.ndarray) -> tuple[float, float]:
        finite = values[np.isfinite(values)]
        if which == "E":
            m = float(np.max(np.abs(finite))) if finite.size else 0.1
            m = max(m, self.tolerance.value() / 100.0 * 2)
            return -m, m
        if not finite.size:
            return _DEFAULT_LEVELS[which]
        lo, hi = float(finite.min()), float(finite.max())
        if hi - lo < 0.2:  # a near-uniform map still gets a readable scale
            mid = 0.5 * (lo + hi)
            lo, hi = mid - 0.1, mid + 0.1
        return lo, hi

    def colour_levels(self) -> tuple[float, float]:
        """The colour scale's (low, high) of the map shown (log10 of the quantity; the error
        linear)."""
        return tuple(self.colorbar.levels())  # type: ignore[return-value]

    def fit_scale(self) -> None:
        """Fit the colour scale to the map shown now and keep it ("fitted, locked")."""
        self.levels.pop(self.quantity.currentData(), None)
        i = self.scale_mode.findData("locked")
        if self.scale_mode.currentIndex() != i:
            self.scale_mode.setCurrentIndex(i)  # refreshes
        else:
            self.refresh_map()

    def refresh_map(self) -> None:
        which = self.quantity.currentData()
        sym, unit, _ = QUANTITIES[which]
        raw = self.quantity_map(which)
        if which == "E":
            img = raw
        else:
            values = np.abs(raw)
            with np.errstate(divide="ignore", invalid="ignore"):
                img = np.where(values > 0, np.log10(values), np.nan)
        has_data = bool(np.isfinite(img).any())
        mode = self.scale_mode.currentData()
        if mode == "fixed" and which != "E":
            lo, hi = _DEFAULT_LEVELS[which]
        elif mode != "auto" and which in self.levels:
            lo, hi = self.levels[which]
        else:
            lo, hi = self._fitted_levels(which, img)
            if mode == "locked" and has_data:
                self.levels[which] = (lo, hi)
        self.image.setImage(img, autoLevels=False, levels=(lo, hi))
        self.image.setRect(0, 0, self.shape[1], self.shape[0])
        if which == "E":
            self.colorbar.setColorMap(pg.colormap.get("CET-D1"))
            ticks = [(v, f"{100 * v:+.0f} %") for v in np.linspace(lo, hi, 5)]
        else:
            self.colorbar.setColorMap(pg.colormap.get("viridis"))
            ticks = plotting.log_ticks(lo, hi, unit)
        self.colorbar.setLevels((lo, hi))
        self.colorbar.axis.setTicks([ticks])
        self.colorbar.axis.setWidth(78)  # room for "200 kΩ" (narrower labels are dropped)
        self.colorbar.axis.showLabel(False)
        self.unread_rect.setRect(0, 0, self.shape[1], self.shape[0])
        scale = "linear" if which == "E" else "log"
        plotting.set_title(
            self.map_plot,
            f"{QUANTITIES[which][2].capitalize()} ({sym}), {scale} colour scale",
            size="10pt",
        )
        vb = self.map_plot.getViewBox()
        vb.setRange(xRange=(0, self.shape[1]), yRange=(0, self.shape[0]), padding=0.02)
        for axis, n in (("bottom", self.shape[1]), ("left", self.shape[0])):
            self.map_plot.getAxis(axis).setTicks([[(i + 0.5, str(i)) for i in range(n)]])

    def _hovered(self, r: int, c: int) -> None:
        if r < 0:
            self.hover_label.setText("Hover over a cell to see its values")
            self.image.setToolTip("")
            return
        g = self.g_map[r, c]
        text = self.cell_text(r, c)
        if not np.isfinite(g):
            text = f"cell ({r}, {c}): not read yet"
        self.hover_label.setText(text)
        self.image.setToolTip(text)

    def cell_text(self, r: int, c: int) -> str:
        """One-line description of a cell's last read."""
        g = self.g_map[r, c]
        r_ohm = 1.0 / g if g > 0 else np.nan
        n = len(self.history.get((r, c), []))
        t = self.targets()[r, c]
        tgt = (
            f",  target {plotting.si(t, 'S')} ({100 * (g / t - 1):+.1f} %)"
            if np.isfinite(t) and np.isfinite(g)
            else ""
        )
        return (
            f"cell ({r}, {c}):  R = {plotting.si(r_ohm, 'Ω')},  G = {plotting.si(g, 'S')},  "
            f"I = {plotting.si(self.i_map[r, c], 'A')}{tgt}  ({n} event(s) in history)"
        )

    # -- selection -------------------------------------------------------------------------------
    def set_selection(self, cells: set[tuple[int, int]]) -> None:
        """Select exactly ``cells`` (row, col)."""
        rows, cols = self.shape
        self.selection = {(int(r), int(c)) for r, c in cells if 0 <= r < rows and 0 <= c < cols}
        self._update_selection()

    def select_block(self, r0: int, c0: int, r1: int, c1: int) -> None:
        """Select the rectangle spanned by two corner cells (inclusive)."""
        ra, rb = sorted((r0, r1))
        ca, cb = sorted((c0, c1))
        self.set_selection({(r, c) for r in range(ra, rb + 1) for c in range(ca, cb + 1)})

    def _clicked(self, r: int, c: int, toggle: bool) -> None:
        if toggle:
            sel = set(self.selection)
            sel ^= {(r, c)}
            self.set_selection(sel)
        else:
            self.set_selection({(r, c)})
        self.set_focus(r, c)

    def _dragged(self, r0: int, c0: int, r1: int, c1: int, finished: bool) -> None:
        self.select_block(r0, c0, r1, c1)
        if finished:
            self.set_focus(r1, c1)

    def _update_selection(self) -> None:
        cells = sorted(self.selection)
        if cells:
            self.sel_item.setData([c + 0.5 for _, c in cells], [r + 0.5 for r, _ in cells])
        else:
            self.sel_item.setData([], [])
        n = len(cells)
        if n == 0:
            self.sel_label.setText("No cell selected: click, Ctrl+click or drag on the map")
        else:
            shown = ", ".join(f"({r}, {c})" for r, c in cells[:6]) + (" …" if n > 6 else "")
            self.sel_label.setText(f"<b>{n} cell(s) selected</b>: {shown}")
        self._update_enabled()

    def set_focus(self, r: int, c: int) -> None:
        """Show the history of cell (r, c)."""
        self.focus = (int(r), int(c))
        self.focus_item.setData([c + 0.5], [r + 0.5])
        self.refresh_history()
        self.focus_changed.emit(int(r), int(c))

    # -- history ---------------------------------------------------------------------------------
    def _add_history(self, r: int, c: int, entry: HistoryEntry) -> None:
        self.history.setdefault((r, c), []).append(entry)

    def history_arrays(self, r: int, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(event number, G S, pulse amplitude V) of a cell's history."""
        h = self.history.get((r, c), [])
        n = np.arange(len(h))
        return (
            n,
            np.array([e.conductance for e in h], dtype=float),
            np.array([e.amplitude for e in h], dtype=float),
        )

    def refresh_history(self) -> None:
        r, c = self.focus
        n, g, amp = self.history_arrays(r, c)
        ok = np.isfinite(g) & (g > 0)
        self.hist_curve.setData(n[ok], g[ok])
        # no events: no invented ticks ("2 S … 9 S" of an empty log axis), a hint instead
        empty = not ok.any()
        hp = self.hist_widget.getPlotItem()
        for side in ("left", "bottom", "right"):
            hp.getAxis(side).setStyle(showValues=not empty)
        self.hist_hint.setVisible(empty)
        self._place_hint()
        pulses = amp != 0
        self.amp_bars.setData(n[pulses], amp[pulses])
        if pulses.any():
            self.amp_bars.setBrush(
                [
                    pg.mkBrush(plotting.colour(3) if a > 0 else plotting.colour(0))
                    for a in amp[pulses]
                ]
            )
            lim = max(1.0, float(np.max(np.abs(amp[pulses]))) * 1.15)
            self.amp_view.setYRange(-lim, lim, padding=0)
        else:
            self.amp_view.setYRange(-4, 4, padding=0)
        plotting.set_title(
            self.hist_widget.getPlotItem(),
            f"({r}, {c}): <span style='color:{plotting.colour(0)}'>● G</span> "
            f"<span style='color:{plotting.colour(3)}'>▲ SET</span> "
            f"<span style='color:{plotting.colour(0)}'>▲ RESET</span>",
            size="10pt",
        )
        self.hist_widget.getPlotItem().enableAutoRange()
        self._sync_views()

    # -- readings in -----------------------------------------------------------------------------
    def _apply_reading(self, reading: CellReading, entry: HistoryEntry) -> None:
        r, c = reading.row, reading.col
        self.g_map[r, c] = reading.conductance
        self.i_map[r, c] = reading.current
        self._add_history(r, c, entry)

    def _on_items(self, items: list) -> None:
        focus_touched = False
        for it in items:
            if isinstance(it, ProgramStep):
                self._apply_reading(
                    it.reading,
                    HistoryEntry(
                        it.amplitude,
                        it.width,
                        it.reading.conductance,
                        it.reading.current,
                        it.reading.voltage,
                        "program" if it.pulse else "read",
                    ),
                )
                focus_touched |= (it.row, it.col) == self.focus
            elif isinstance(it, tuple) and len(it) == 3 and isinstance(it[2], CellReading):
                amp, width, reading = it
                kind = "pulse" if amp else "read"
                self._apply_reading(
                    reading,
                    HistoryEntry(
                        amp, width, reading.conductance, reading.current, reading.voltage, kind
                    ),
                )
                focus_touched |= (reading.row, reading.col) == self.focus
        self.refresh_map()
        if focus_touched:
            self.refresh_history()

    # -- operations ------------------------------------------------------------------------------
    def _session(self):
        s = self.app.session
        if s is None:
            self.app.log("Connect a bench first.", "warning")
        return s

    def read_all(self) -> bool:
        """Read every cell (Crossbar.read_map) and fill the map."""
        s = self._session()
        if s is None:
            return False
        v_read, biasing = self.v_read.value(), self.biasing.currentData()
        crossbar = s.crossbar

        def run(ctx: TaskContext) -> np.ndarray:
            return crossbar.read_map(v_read=v_read, biasing=biasing, progress=ctx.progress)

        def done(g: np.ndarray, aborted: bool = False) -> None:
            g = np.asarray(g, dtype=float)
            got = np.isfinite(g)
            self.g_map[got] = g[got]
            self.i_map[got] = g[got] * v_read
            for r, c in np.argwhere(got):
                self._add_history(
                    int(r),
                    int(c),
                    HistoryEntry(0.0, 0.0, float(g[r, c]), float(g[r, c] * v_read), v_read, "read"),
                )
            self.refresh_map()
            self.refresh_history()
            n = int(got.sum())
            if aborted:
                self.app.log(f"Read all aborted after {n} cell(s); outputs off", "warning")
            else:
                gg = g[got]
                self.app.log(
                    f"Read all ({biasing.value}, {v_read:g} V): G from {plotting.si(gg.min(), 'S')}"
                    f" to {plotting.si(gg.max(), 'S')}, median {plotting.si(np.median(gg), 'S')}"
                )

        def aborted(partial) -> None:
            if isinstance(partial, np.ndarray):
                done(partial, aborted=True)
            else:
                self.app.log("Read all aborted; outputs off", "warning")

        return self.start_task(
            f"Read all ({self.shape[0]}×{self.shape[1]})",
            run,
            failed="Read all failed",
            on_done=done,
            on_aborted=aborted,
        )

    def read_selected(self) -> bool:
        """Read the selected cells one by one."""
        s = self._session()
        if s is None or not self.selection:
            return False
        cells = sorted(self.selection)
        v_read, biasing = self.v_read.value(), self.biasing.currentData()
        crossbar = s.crossbar

        def run(ctx: TaskContext) -> int:
            for k, (r, c) in enumerate(cells):
                if ctx.should_abort():
                    crossbar.backend.outputs_off()
                    raise TaskAborted()
                reading = crossbar.read_cell(r, c, v_read=v_read, biasing=biasing)
                ctx.emit((0.0, 0.0, reading))
                ctx.progress(Progress(k + 1, len(cells), "read"))
            return len(cells)

        return self.start_task(
            f"Read {len(cells)} cell(s)",
            run,
            failed="Read failed",
            aborted="Read aborted; outputs off",
            on_items=self._on_items,
            on_done=lambda n: self.app.log(f"Read {n} cell(s) at {v_read:g} V ({biasing.value})"),
        )

    def pulse_selected(self, polarity: int) -> bool:
        """Apply ``repeat`` pulses of ±amplitude to each selected cell, reading after each."""
        s = self._session()
        if s is None or not self.selection:
            return False
        cells = sorted(self.selection)
        amp = float(np.sign(polarity)) * self.amplitude.value()
        width = self.width_ms.value() / 1e3
        n_rep = self.repeat.value()
        read_after = self.read_after.isChecked()
        v_read, biasing = self.v_read.value(), self.biasing.currentData()
        crossbar = s.crossbar
        total = n_rep * len(cells)

        def run(ctx: TaskContext) -> int:
            done = 0
            for r, c in cells:
                for _ in range(n_rep):
                    reading = crossbar.pulse(
                        r,
                        c,
                        amp,
                        width,
                        biasing=biasing,
                        read_after=read_after,
                        v_read=v_read,
                        read_biasing=biasing,
                    )
                    if reading is not None:
                        ctx.emit((amp, width, reading))
                    done += 1
                    ctx.progress(Progress(done, total, "pulses"))
            return done

        return self.start_task(
            f"{'+' if amp > 0 else '−'}{abs(amp):g} V pulses on {len(cells)} cell(s)",
            run,
            failed="Pulse failed",
            aborted="Pulses aborted; outputs off",
            on_items=self._on_items,
            on_done=lambda n: self.app.log(
                f"Applied {n} pulse(s) of {amp:+g} V, {width * 1e3:g} ms ({biasing.value})"
            ),
            abort_hook=crossbar.abort,
        )

    def program_selected(self) -> bool:
        """Program-and-verify the selected cells to the target G."""
        if not self.selection:
            return False
        targets = np.full(self.shape, np.nan)
        for r, c in self.selection:
            targets[r, c] = self.target_us.value() / 1e6
        return self.program(targets, f"Program {len(self.selection)} cell(s)")

    def program_target_map(self) -> bool:
        """Program every non-NaN cell of the loaded target map."""
        if self.target_map is None:
            self.app.log("Load a target map first.", "warning")
            return False
        n = int(np.isfinite(self.target_map).sum())
        return self.program(self.target_map, f"Program target map ({n} cells)")

    def program(
        self,
        targets: np.ndarray,
        name: str,
        *,
        skip: set[tuple[int, int]] | None = None,
        options: dict | None = None,
    ) -> bool:
        """Run :meth:`Crossbar.program_map` on ``targets`` (S, NaN = skip), leaving the cells
        of ``skip`` alone; ``options``: program-and-verify settings (default: the panel's)."""
        s = self._session()
        if s is None:
            return False
        options = (
            dict(options)
            if options
            else dict(
                tol=self.tolerance.value() / 100.0,
                max_pulses=self.max_pulses.value(),
                v_read=self.v_read.value(),
                biasing=self.biasing.currentData(),
            )
        )
        crossbar = s.crossbar
        targets = np.array(targets, dtype=float, copy=True)
        skip = set(skip or set())

        def run(ctx: TaskContext) -> ProgramReport:
            return crossbar.program_map(
                targets, skip=skip, progress=ctx.progress, on_pulse=ctx.emit, **options
            )

        def done(rep: ProgramReport) -> None:
            self.last_program = rep
            self.program_label.setText(rep.summary() + skipped_text)
            self.app.log(f"{name}: {rep.summary()}{skipped_text}")
            if rep.n_stuck:
                self.app.log(f"Stuck cells: {rep.stuck_cells()}", "warning")
            self.refresh_program_plot()
            self.refresh_map()
            self._update_enabled()
            self.reveal(self.program_label)

        def aborted(partial) -> None:
            if isinstance(partial, ProgramReport):
                self.last_program = partial
                self.program_label.setText(partial.summary() + " — Resume continues it")
                self.refresh_program_plot()
            else:  # an emergency stop: no result
                self.last_program = None
                self.program_label.setText("stopped: no result")
            self.app.log(f"{name} aborted; outputs off", "warning")
            self._update_enabled()

        skipped_text = f"; {len(skip)} cell(s) already done, skipped" if skip else ""
        self.program_targets = targets
        self.program_options = dict(options)
        self.last_program = None
        self.program_label.setText("programming…")
        return self.start_task(
            name,
            run,
            failed=f"{name} failed",
            on_items=self._on_items,
            on_done=done,
            on_aborted=aborted,
        )

    def reveal(self, widget: QWidget) -> None:
        """Scroll the controls column so that ``widget`` (e.g. the programming summary) shows."""
        QTimer.singleShot(0, lambda: self.controls_area.ensureWidgetVisible(widget, 0, 0))

    def resume_programming(self) -> bool:
        """Program the last run's targets again, skipping every cell whose last verify read in
        the session's data file (and the last report) is within tolerance."""
        s = self._session()
        if s is None or self.program_targets is None:
            self.app.log("Nothing to resume: program cells first.", "warning")
            return False
        opts = self.program_options
        tol = float(opts.get("tol", self.tolerance.value() / 100.0))
        done: set[tuple[int, int]] = set()
        if self.last_program is not None:
            done |= {(c.row, c.col) for c in self.last_program.cells if c.converged}
        if s.datastore is not None and s.data_path is not None:
            from crossbar.datastore import read_records
            from crossbar.programming import converged_cells

            s.datastore.flush()
            done |= converged_cells(read_records(s.data_path), self.program_targets, tol=tol)
        left = int(np.isfinite(self.program_targets).sum()) - len(done)
        if left <= 0:
            self.app.log("Every cell of the last programming run is within tolerance.", "ok")
            return False
        return self.program(
            self.program_targets, f"Resume programming ({left} cells)", skip=done, options=opts
        )

    def refresh_program_plot(self) -> None:
        """Achieved versus target of the last programming report."""
        rep = self.last_program
        cells = rep.cells if rep is not None else []
        groups = {
            "converged": [c for c in cells if c.converged],
            "not converged": [c for c in cells if not c.converged and not c.stuck],
            "stuck": [c for c in cells if c.stuck],
        }
        for key, item in self.prog_points.items():
            cs = [c for c in groups[key] if c.target > 0 and c.final > 0]
            item.setData([c.target for c in cs], [c.final for c in cs])
        ts = [c.target for c in cells if c.target > 0]
        if ts:
            lo, hi = min(ts) / 1.5, max(ts) * 1.5
            tol = float(self.program_options.get("tol", self.tolerance.value() / 100.0))
            self.prog_ideal.setData([lo, hi], [lo, hi])
            for item, f in zip(self.prog_band, (1 + tol, 1 - tol)):
                item.setData([lo, hi], [lo * f, hi * f])
            title = rep.summary() if rep is not None else ""
        else:
            for item in (self.prog_ideal, *self.prog_band):
                item.setData([], [])
            title = "Program cells to see achieved versus target"
        plotting.set_title(self.prog_widget.getPlotItem(), title, size="9pt")

    def cell_report(self, r: int, c: int) -> CellProgramReport | None:
        """The last programming report of a cell, if any."""
        if self.last_program is None:
            return None
        for cell in self.last_program.cells:
            if (cell.row, cell.col) == (r, c):
                return cell
        return None

    # -- data file and export --------------------------------------------------------------------
    def refresh_from_data_file(self) -> int:
        """Show every cell's last read recorded in the session's data file (e.g. after a
        deployment programmed the array); returns the cells updated."""
        s = self.app.session
        if s is None or s.datastore is None or s.data_path is None:
            return 0
        from crossbar.datastore import read_records
        from gui.export import last_reads

        s.datastore.flush()
        g, i = last_reads(read_records(s.data_path), self.shape)
        got = np.isfinite(g)
        self.g_map[got] = g[got]
        self.i_map[got] = i[got]
        self.refresh_map()
        self._update_enabled()
        return int(got.sum())

    def _meta(self) -> dict[str, object]:
        s = self.app.session
        meta: dict[str, object] = {}
        if s is not None:
            meta["bench"] = s.describe()
            if s.data_path is not None:
                meta["data file"] = str(s.data_path)
        meta["read voltage (V)"] = self.v_read.value()
        meta["read biasing"] = self.biasing.currentData().name
        return meta

    def export_map(self, path: str | Path) -> Path | None:
        """Write every cell's last read, target and error as CSV (:func:`gui.export.write_map_csv`)."""
        from gui.export import write_map_csv

        return self.write_export(
            "Map",
            lambda: write_map_csv(
                path, self.g_map, current=self.i_map, target=self.targets(), metadata=self._meta()
            ),
        )

    def export_programming(self, path: str | Path) -> Path | None:
        """Write the last programming run (target, achieved, error, pulses per cell) as CSV."""
        from gui.export import program_rows, write_program_csv

        rep = self.last_program
        if rep is None:
            self.app.log("Program cells first.", "warning")
            return None
        meta = self._meta()
        meta["tolerance"] = self.program_options.get("tol")
        meta["pulse budget"] = self.program_options.get("max_pulses")
        meta["summary"] = rep.summary().replace(",", ";")
        return self.write_export(
            "Programming results", lambda: write_program_csv(path, program_rows(rep), meta)
        )

    def _export_map_dialog(self) -> None:
        self.export_dialog("map", "map.csv", "CSV (*.csv)", self.export_map)

    def _export_program_dialog(self) -> None:
        self.export_dialog("programming", "programming.csv", "CSV (*.csv)", self.export_programming)

    # -- target map ------------------------------------------------------------------------------
    def load_targets(self, path: str | Path) -> bool:
        """Load a target map file (CSV or NPY, S); returns False (and logs) on a bad file."""
        try:
            arr = load_target_map(path, self.shape)
        except (OSError, ValueError) as exc:
            self.app.log(f"Target map: {exc}", "error")
            return False
        self.target_map = arr
        self.target_path = str(path)
        t = arr[np.isfinite(arr)]
        self.target_label.setText(
            f"{Path(path).name}: {t.size} cell(s), {plotting.si(t.min(), 'S')} … "
            f"{plotting.si(t.max(), 'S')}"
        )
        self.app.log(f"Loaded target map {path} ({t.size} cells)")
        self.program_targets = None  # show the loaded map's targets
        self.refresh_map()
        self._update_enabled()
        return True

    def _load_target_dialog(self) -> None:
        path = self.ask_open_file(
            "Target conductance map (S)", "targets", "Maps (*.csv *.txt *.npy);;All files (*)"
        )
        if path:
            self.app.settings.set_last_dir("targets", path)
            self.load_targets(path)
