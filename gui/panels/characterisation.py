"""Characterisation panel: the device characterisation as modules, in the style of ArC ONE.

Each module runs one procedure of :mod:`crossbar.characterise` on the connected bench through
:func:`crossbar.characterise.run_step` — so every read, pulse, program-verify step and retention
wait is recorded in the session's data file — with a live plot fed by the step's progress values,
the status bar's progress and Abort, and the step's result:

* **Window** — the on/off window and the stuck map of every cell (G_max/G_min map);
* **Read noise** — σ of single reads per cell against its G;
* **Programming** — program-and-verify to targets across the window: achieved versus target,
  σ_prog, pulses, convergence (no settle reads);
* **Retention** — the same programming, then averaged reads at the settle times: G(t)/G(t₀),
  relaxation, drift exponent ν, cells dissolved;
* **Pulse response** — trains of identical SET then RESET pulses: G per pulse, levels, dynamic
  range, non-linearity (potentiation / depression);
* **Deployment profile** — the four results as a :class:`~crossbar.deployment_profile.
  DeploymentProfile` (assembled from the modules run, or a whole :func:`characterise` run),
  saved and loaded as JSON.

A module that needs another's result (programming needs the window and the read noise) uses the
panel's latest one or measures it first. An emergency stop or an abort shows no result.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from crossbar.biasing import Biasing
from crossbar.characterise import CharacterisationPlan, make_profile, run_step
from crossbar.progress import Progress
from gui import plotting
from gui.panels.base import AppServices, Panel
from gui.widgets import button, choice, double_spin, form_group, int_spin
from gui.workers import TaskContext

__all__ = ["MODULES", "CharacterisationPanel"]

#: (key, tab title, characterise step run) of the modules, in tab order.
MODULES = (
    ("window", "Window", "window"),
    ("read_noise", "Read noise", "read_noise"),
    ("pulse_response", "Pulse response", "pulse_response"),
    ("programming", "Programming", "programming"),
    ("retention", "Retention", "programming"),
    ("profile", "Profile", None),
)


def _times(text: str) -> tuple[float, ...]:
    """ "1, 10, 100" → (1.0, 10.0, 100.0) s (each > 0, ascending)."""
    vals = tuple(float(x) for x in text.replace(";", ",").split(",") if x.strip())
    if not vals or any(not (v > 0 and math.isfinite(v)) for v in vals):
        raise ValueError(f"settle times {text!r}: give positive seconds, e.g. 1, 10, 100")
    if list(vals) != sorted(vals):
        raise ValueError(f"settle times {text!r}: give them in ascending order")
    return vals


class CharacterisationPanel(Panel):
    """The characterisation modules (see the module docstring)."""

    title = "Characterisation"
    profile_changed = pyqtSignal(object)  # the DeploymentProfile shown (measured or loaded)

    def __init__(self, app: AppServices, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.results: dict[str, Any] = {}  # module key -> its step's result
        self.profile = None  # DeploymentProfile
        self.bench_time = 0.0  # s of bench clock the modules' runs took
        self.live: dict[str, list] = {}
        self.running: str | None = None
        self._build()
        self.session_changed(None)

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        outer, self.side, left = self.side_layout(270)
        left.addWidget(self._plan_group())
        self.params = QGroupBox("Module settings")
        self.param_forms: dict[str, QWidget] = {}
        pv = QVBoxLayout(self.params)
        for key, form in self._module_forms().items():
            self.param_forms[key] = form
            pv.addWidget(form)
        left.addWidget(self.params)
        self.run_btn = button("Run module", self.run_current)
        self.run_btn.setStyleSheet("font-weight: bold; padding: 6px")
        left.addWidget(self.run_btn)
        self.problem_label = QLabel("")
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #c00000")
        left.addWidget(self.problem_label)
        left.addStretch(1)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        self.tabs = QTabWidget()
        self.tabs.setUsesScrollButtons(True)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.result_labels: dict[str, QLabel] = {}
        for key, title, _step in MODULES:
            self.tabs.addTab(self._module_page(key), title)
        self.tabs.currentChanged.connect(self._module_changed)
        rv.addWidget(self.tabs, 1)
        outer.addWidget(right, 1)
        self._module_changed()

    def _plan_group(self) -> QGroupBox:
        g, f = form_group("Protocol (all modules)")
        self.base = choice(
            [("quick", "quick"), ("full", "full")],
            "The defaults of CharacterisationPlan.quick() (the short protocol) or of the full "
            "CharacterisationPlan()",
        )
        self.base.currentIndexChanged.connect(self._base_changed)
        self.n_cells = int_spin(1, 100, 10, "Cells of read noise, programming and retention")
        self.v_read = double_spin(0.01, 0.3, 0.2, 0.05, 3, " V")
        self.read_biasing = QComboBox()
        for b in Biasing:
            if not b.positive_only:
                self.read_biasing.addItem(b.name, b.name)
        self.read_biasing.setCurrentIndex(max(0, self.read_biasing.findData("ground")))
        self.avg_reads = int_spin(1, 64, 6, "Reads averaged for every G of window, programming")
        f.addRow("Protocol", self.base)
        f.addRow("Cells", self.n_cells)
        f.addRow("Read voltage", self.v_read)
        f.addRow("Read biasing", self.read_biasing)
        f.addRow("Averaged reads", self.avg_reads)
        return g

    def _module_forms(self) -> dict[str, QWidget]:
        forms: dict[str, QWidget] = {}

        def form(key: str) -> QFormLayout:
            w = QWidget()
            f = QFormLayout(w)
            f.setContentsMargins(0, 0, 0, 0)
            forms[key] = w
            return f

        f = form("window")
        self.min_ratio = double_spin(1.1, 100.0, 2.0, 0.5, 2, "")
        self.min_ratio.setToolTip("A cell whose G_max/G_min is below this is stuck")
        f.addRow("Stuck below ratio", self.min_ratio)
        note = QLabel("Every cell: RESET ramp, SET ramp, RESET ramp (V/3 biasing).")
        note.setWordWrap(True)
        f.addRow(note)
        f = form("read_noise")
        self.n_reads = int_spin(2, 1000, 20, "Single reads per cell")
        f.addRow("Reads per cell", self.n_reads)
        for key in ("programming", "retention"):
            f = form(key)
            n_t = int_spin(1, 20, 3, "Targets spread log-uniformly across the shared window")
            tol = double_spin(0.5, 50.0, 3.0, 0.5, 1, " %")
            mp = int_spin(1, 1000, 60)
            setattr(self, f"{key}_targets", n_t)
            setattr(self, f"{key}_tol", tol)
            setattr(self, f"{key}_pulses", mp)
            f.addRow("Targets", n_t)
            f.addRow("Tolerance", tol)
            f.addRow("Pulse budget", mp)
        self.settle = QLineEdit("1, 10, 100, 1000")
        self.settle.setToolTip("Seconds after programming at which the cells are read")
        f.addRow("Settle times (s)", self.settle)
        f = form("pulse_response")
        self.n_pulse_cells = int_spin(1, 20, 2)
        self.n_pulses = int_spin(2, 1000, 20)
        self.amp_set = double_spin(0.1, 6.0, 3.4, 0.1, 2, " V")
        self.amp_reset = double_spin(-6.0, -0.1, -2.6, 0.1, 2, " V")
        self.width_ms = double_spin(0.001, 1000.0, 1.0, 0.5, 3, " ms")
        for label, w in (
            ("Cells", self.n_pulse_cells),
            ("Pulses per train", self.n_pulses),
            ("SET amplitude", self.amp_set),
            ("RESET amplitude", self.amp_reset),
            ("Width", self.width_ms),
        ):
            f.addRow(label, w)
        f = form("profile")
        self.assemble_btn = button(
            "Assemble from the modules",
            self.assemble_profile,
            "A profile of the Window, Read noise, Retention and Pulse response results",
        )
        self.full_btn = button(
            "Run the whole characterisation",
            self.run_full,
            "crossbar.characterise.characterise with the protocol above (all four steps)",
        )
        self.save_btn = button("Save profile JSON…", self._save_dialog)
        self.load_btn = button("Load profile JSON…", self._load_dialog)
        for b in (self.full_btn, self.assemble_btn, self.save_btn, self.load_btn):
            f.addRow(b)
        return forms

    def _module_page(self, key: str) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(2, 2, 2, 2)
        if key == "profile":
            self.profile_text = QLabel("No profile yet: run the modules or the whole run.")
            self.profile_text.setWordWrap(True)
            self.profile_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.profile_text.setAlignment(Qt.AlignmentFlag.AlignTop)
            area = QScrollArea()
            area.setWidgetResizable(True)
            area.setWidget(self.profile_text)
            v.addWidget(area, 1)
            self.result_labels[key] = self.profile_text
            return page
        spec = {
            "window": ("On/off window G_max / G_min of every cell", "", "", "", ""),
            "read_noise": ("Read noise per cell", "mean G", "S", "σ / G of single reads", ""),
            "programming": ("Achieved versus target", "target G", "S", "achieved G", "S"),
            "retention": (
                "G(t) / G(t₀) after programming",
                "time after programming",
                "s",
                "G / G(first read)",
                "",
            ),
            "pulse_response": ("G after each pulse: SET train, then RESET", "pulse", "", "G", "S"),
        }[key]
        plot = plotting.plot_widget(spec[0], x=spec[1], x_units=spec[2], y=spec[3], y_units=spec[4])
        item = plot.getPlotItem()
        item.addLegend(offset=(10, 10), labelTextSize="8pt")
        if key == "window":
            self._setup_window_plot(item)
        elif key == "read_noise":
            plotting.log_axes(item, x=True, y=True)
        elif key == "programming":
            plotting.log_axes(item, x=True, y=True)
        elif key == "retention":
            plotting.log_axes(item, x=True, y=False)
            plotting.no_si_prefix(item, "left")
        elif key == "pulse_response":
            plotting.log_axes(item, x=False, y=True)
            plotting.no_si_prefix(item, "bottom")
        self.plots[key] = plot
        v.addWidget(plot, 1)
        label = QLabel("—")
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_labels[key] = label
        v.addWidget(label)
        return page

    def _setup_window_plot(self, item) -> None:
        item.showGrid(x=False, y=False)
        vb = item.getViewBox()
        vb.invertY(True)
        vb.setAspectLocked(True)
        item.setLabel("bottom", "column")
        item.setLabel("left", "row")
        self.window_image = pg.ImageItem(axisOrder="row-major")
        item.addItem(self.window_image)
        self.window_bar = pg.ColorBarItem(
            values=(0.0, 2.0), colorMap=pg.colormap.get("viridis"), interactive=False, width=16
        )
        self.window_bar.setImageItem(self.window_image, insert_in=item)
        self.window_stuck = pg.ScatterPlotItem(
            symbol="x", size=12, pen=pg.mkPen("#ff2d2d", width=2), brush=None, name="stuck"
        )
        item.addItem(self.window_stuck)

    # -- state -----------------------------------------------------------------------------------
    def current_module(self) -> str:
        return MODULES[self.tabs.currentIndex()][0]

    def _module_changed(self) -> None:
        key = self.current_module()
        for k, w in self.param_forms.items():
            w.setVisible(k == key)
        self.side.updateGeometry()
        title = MODULES[self.tabs.currentIndex()][1]
        self.params.setTitle("Deployment profile" if key == "profile" else f"{title} settings")
        self.run_btn.setVisible(key != "profile")
        self._update_enabled()

    def _base_changed(self) -> None:
        base = self._base_plan()
        self.n_cells.setValue(base.n_cells)
        self.n_reads.setValue(base.n_reads)
        self.avg_reads.setValue(base.avg_reads)
        for key in ("programming", "retention"):
            getattr(self, f"{key}_targets").setValue(base.n_targets)
        self.settle.setText(", ".join(f"{t:g}" for t in base.settle_times))
        self.n_pulse_cells.setValue(base.n_pulse_cells)
        self.n_pulses.setValue(base.n_pulses)

    def _base_plan(self) -> CharacterisationPlan:
        return (
            CharacterisationPlan.quick()
            if self.base.currentData() == "quick"
            else (CharacterisationPlan())
        )

    def plan(self, module: str | None = None) -> CharacterisationPlan:
        """The protocol of the panel's settings for ``module`` (default: the one shown); the
        Programming module reads no settle times, Retention those given."""
        module = module or self.current_module()
        prog = "retention" if module in ("retention", "profile") else "programming"
        settle = _times(self.settle.text()) if prog == "retention" else ()
        return dataclasses.replace(
            self._base_plan(),
            n_cells=self.n_cells.value(),
            v_read=self.v_read.value(),
            read_biasing=str(self.read_biasing.currentData()),
            n_reads=self.n_reads.value(),
            avg_reads=self.avg_reads.value(),
            n_targets=getattr(self, f"{prog}_targets").value(),
            tol=getattr(self, f"{prog}_tol").value() / 100.0,
            max_pulses=getattr(self, f"{prog}_pulses").value(),
            settle_times=settle,
            n_pulse_cells=self.n_pulse_cells.value(),
            n_pulses=self.n_pulses.value(),
            amplitude_set=self.amp_set.value(),
            amplitude_reset=self.amp_reset.value(),
            pulse_width=self.width_ms.value() / 1e3,
            min_ratio=self.min_ratio.value(),
        )

    def session_changed(self, session) -> None:
        if session is not None:
            self.v_read.setMaximum(session.max_read_voltage)
            rows, cols = session.shape
            self.n_cells.setMaximum(rows * cols)
        self._update_enabled()

    def busy_changed(self, busy: bool) -> None:
        self._update_enabled()

    def _update_enabled(self) -> None:
        ok = self.app.session is not None and not self.app.runner.busy
        self.run_btn.setEnabled(ok)
        self.full_btn.setEnabled(ok)
        self.assemble_btn.setEnabled(
            all(k in self.results for k in ("window", "read_noise", "retention", "pulse_response"))
        )
        self.save_btn.setEnabled(self.profile is not None)

    # -- runs ------------------------------------------------------------------------------------
    def run_current(self) -> bool:
        """Run the module shown."""
        return self.run_module(self.current_module())

    def run_module(self, key: str) -> bool:
        """Run module ``key`` (see :data:`MODULES`) on the bench; False if it cannot start."""
        s = self.app.session
        if s is None:
            self.app.log("Connect a bench first.", "warning")
            return False
        step = dict((k, st) for k, _t, st in MODULES)[key]
        if step is None:
            return self.run_full()
        try:
            plan = self.plan(key)
        except ValueError as exc:
            self.problem_label.setText(str(exc))
            self.app.log(f"Characterisation: {exc}", "error")
            return False
        self.problem_label.setText("")
        xb = s.crossbar
        window = self.results.get("window")
        noise = self.results.get("read_noise")
        pulse = self.results.get("pulse_response")
        self.live[key] = []
        self.running = key
        self._clear_plot(key)
        self.result_labels[key].setText("running…")
        self.tabs.setCurrentIndex([m[0] for m in MODULES].index(key))

        def run(ctx: TaskContext):
            t0 = xb.now()
            res = run_step(
                xb,
                plan,
                step,
                progress=_live(ctx),
                window=window,
                read_noise=noise,
                pulse_response=pulse,
            )
            return res, xb.now() - t0

        def done(payload) -> None:
            res, seconds = payload
            self.running = None
            self.results[key] = res
            self.bench_time += float(seconds)
            self.show_result(key, res)
            self.app.log(f"Characterisation {key}: done ({seconds:.0f} s of bench time)", "ok")
            self._update_enabled()

        return self.start_task(
            f"Characterisation: {dict((k, t) for k, t, _s in MODULES)[key]}",
            run,
            failed=f"Characterisation {key} failed",
            on_items=lambda items: self._on_items(key, items),
            on_done=done,
            on_aborted=lambda _p: self._stopped(key),
        )

    def run_full(self) -> bool:
        """The whole :func:`crossbar.characterise.characterise` run; its profile is shown."""
        s = self.app.session
        if s is None:
            self.app.log("Connect a bench first.", "warning")
            return False
        try:
            plan = self.plan("profile")
        except ValueError as exc:
            self.app.log(f"Characterisation: {exc}", "error")
            return False
        from crossbar.characterise import characterise

        xb = s.crossbar
        self.running = "profile"
        self.profile_text.setText("running the whole characterisation…")

        def run(ctx: TaskContext):
            return characterise(xb, plan, progress=_live(ctx))

        def done(profile) -> None:
            self.running = None
            self.set_profile(profile)
            self.app.log(
                f"Characterisation done: deployment profile ({profile.bench_time:.0f} s of "
                "bench time)",
                "ok",
            )

        self.tabs.setCurrentIndex(len(MODULES) - 1)
        return self.start_task(
            "Characterisation (all steps)",
            run,
            failed="Characterisation failed",
            on_done=done,
            on_aborted=lambda _p: self._stopped("profile"),
        )

    def _stopped(self, key: str) -> None:
        """An abort or emergency stop: nothing of the run is shown as a result."""
        self.running = None
        s = self.app.session
        why = "emergency stop" if s is not None and s.crossbar.emergency_stopped else "aborted"
        self.result_labels[key].setText(f"stopped ({why}): no result")
        self.app.log(f"Characterisation {key} stopped ({why}); outputs off, no result", "warning")
        self._update_enabled()

    # -- live plots ------------------------------------------------------------------------------
    def _clear_plot(self, key: str) -> None:
        if key == "window":
            self.window_image.clear()
            self.window_stuck.setData([], [])
            return
        if key in self.plots:
            item = self.plots[key].getPlotItem()
            item.clear()
            if item.legend is not None:
                item.legend.clear()

    def _on_items(self, key: str, items: list[Progress]) -> None:
        self.live.setdefault(key, []).extend(items)
        self.draw_live(key)

    def draw_live(self, key: str) -> None:
        """Redraw module ``key``'s plot from the progress values received so far."""
        pts = [p for p in self.live.get(key, []) if p.values]
        if key == "window":
            self._draw_window_live([p for p in pts if p.stage == "window"])
        elif key == "read_noise":
            rn = [p.values for p in pts if p.stage == "read noise"]
            self._scatter(key, [v["g"] for v in rn], [v["sigma_rel"] for v in rn], "cells", 0)
        elif key == "programming":
            pr = [p.values for p in pts if p.stage == "programming"]
            self._scatter(key, [v["target"] for v in pr], [v["achieved"] for v in pr], "cells", 2)
            if pr:
                ts = [v["target"] for v in pr]
                lo, hi = min(ts) / 1.5, max(ts) * 1.5
                self.plots[key].getPlotItem().plot(
                    [lo, hi], [lo, hi], pen=pg.mkPen("#888888"), name="achieved = target"
                )
        elif key == "retention":
            self._draw_retention([p for p in pts if p.stage in ("programming", "settling")])
        elif key == "pulse_response":
            self._draw_trains([p.values for p in pts if p.stage == "pulse response"])

    def _scatter(self, key: str, x: list, y: list, name: str, colour: int) -> None:
        item = self.plots[key].getPlotItem()
        item.clear()
        if item.legend is not None:
            item.legend.clear()
        ok = [(a, b) for a, b in zip(x, y) if a > 0 and b > 0]
        if ok:
            xs, ys = zip(*ok)
            item.plot(list(xs), list(ys), **plotting.markers(plotting.colour(colour), 8), name=name)

    def _draw_window_live(self, pts: list[Progress]) -> None:
        s = self.app.session
        shape = s.shape if s is not None else (10, 10)
        ratio = np.full(shape, np.nan)
        for p in pts:
            v = p.values
            lo = max(float(v["g_min"]), 1e-15)
            ratio[int(v["row"]), int(v["col"])] = math.log10(max(float(v["g_max"]) / lo, 1e-3))
        self._show_ratio(ratio, [])

    def _show_ratio(self, log_ratio: np.ndarray, stuck: list) -> None:
        finite = log_ratio[np.isfinite(log_ratio)]
        hi = max(1.0, float(finite.max())) if finite.size else 2.0
        self.window_image.setImage(log_ratio, autoLevels=False, levels=(0.0, hi))
        self.window_image.setRect(0, 0, log_ratio.shape[1], log_ratio.shape[0])
        self.window_bar.setLevels((0.0, hi))
        ticks = [(float(v), f"×{10**v:g}") for v in range(0, int(math.floor(hi)) + 1)]
        self.window_bar.axis.setTicks([ticks])
        self.window_stuck.setData([c + 0.5 for _, c in stuck], [r + 0.5 for r, _ in stuck])
        item = self.plots["window"].getPlotItem()
        for axis, n in (("bottom", log_ratio.shape[1]), ("left", log_ratio.shape[0])):
            item.getAxis(axis).setTicks([[(i + 0.5, str(i)) for i in range(n)]])

    def _draw_retention(self, pts: list[Progress]) -> None:
        first: dict[str, float] = {}
        for p in pts:
            if p.stage == "programming":
                first[f"r{int(p.values['row'])}c{int(p.values['col'])}"] = p.values["achieved"]
        series: dict[str, tuple[list, list]] = {}
        for p in pts:
            if p.stage != "settling":
                continue
            for k, g in p.values.items():
                if k == "t" or k not in first or first[k] <= 0:
                    continue
                xs, ys = series.setdefault(k, ([], []))
                xs.append(float(p.values["t"]))
                ys.append(float(g) / first[k])
        item = self.plots["retention"].getPlotItem()
        item.clear()
        if item.legend is not None:
            item.legend.clear()
        for i, (k, (xs, ys)) in enumerate(series.items()):
            item.plot(
                xs,
                ys,
                **plotting.markers(plotting.colour(i), 6, line_width=1.2),
                name=k if i < 8 else None,
            )

    def _draw_trains(self, trains: list[dict]) -> None:
        item = self.plots["pulse_response"].getPlotItem()
        item.clear()
        if item.legend is not None:
            item.legend.clear()
        for i, v in enumerate(trains):
            up = [v[k] for k in sorted((k for k in v if k.startswith("set")), key=_idx)]
            down = [v[k] for k in sorted((k for k in v if k.startswith("reset")), key=_idx)]
            g = np.array(up + down, dtype=float)
            n = np.arange(1, g.size + 1)
            ok = g > 0
            item.plot(
                n[ok],
                g[ok],
                **plotting.markers(plotting.colour(i), 6, line_width=1.2),
                name=f"cell ({int(v['row'])}, {int(v['col'])})",
            )
            if up:
                item.addItem(
                    pg.InfiniteLine(
                        len(up) + 0.5, angle=90, pen=pg.mkPen("#aaaaaa", style=Qt.PenStyle.DashLine)
                    )
                )

    # -- results ---------------------------------------------------------------------------------
    def show_result(self, key: str, res: Any) -> None:
        """Draw and describe a module's result."""
        label = self.result_labels[key]
        if key == "window":
            g_min = np.array(res.g_min)
            g_max = np.array(res.g_max)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.log10(np.maximum(g_max / np.maximum(g_min, 1e-15), 1e-3))
            self._show_ratio(ratio, [tuple(c) for c in res.stuck])
            label.setText(
                f"<b>{len(res.stuck)} stuck cell(s)</b> ({100 * res.stuck_fraction:.0f} %, "
                f"ratio below {res.min_ratio:g}); median G_min {plotting.si(np.median(g_min), 'S')}"
                f", G_max {plotting.si(np.median(g_max), 'S')}, median ratio "
                f"×{np.median(g_max / np.maximum(g_min, 1e-15)):.3g}"
            )
        elif key == "read_noise":
            self._scatter(key, res.g_per_cell, res.sigma_rel_per_cell, "cells", 0)
            label.setText(
                f"<b>σ_read = {100 * res.sigma_rel:.3g} %</b> of G (median of {len(res.g_per_cell)}"
                f" cells, {res.n_reads} reads at {res.v_read:g} V, {res.biasing}); σ ∝ G^"
                f"{res.slope:.2f}"
            )
        elif key in ("programming", "retention"):
            label.setText(
                f"<b>σ_prog = {100 * res.sigma_rel:.3g} %</b> (tolerance {100 * res.tol:g} %), "
                f"{100 * res.converged_fraction:.0f} % converged, {res.mean_pulses:.1f} pulses "
                f"per cell; targets {', '.join(plotting.si(t, 'S') for t in res.targets)}"
                + (
                    f"<br><b>drift ν = {res.drift_nu_mean:.3g} ± {res.drift_nu_std:.2g}</b>, "
                    f"relaxation {100 * res.relaxation_rel:+.2g} %, "
                    f"{100 * res.dissolved_fraction:.0f} % dissolved (settle to "
                    f"{max(res.settle_times):g} s)"
                    if res.settle_times
                    else ""
                )
            )
        elif key == "pulse_response":
            label.setText(
                f"<b>{res.levels_text}</b>, dynamic range ×{res.dynamic_range:.3g} "
                f"({plotting.si(res.g_min, 'S')} … {plotting.si(res.g_max, 'S')}); "
                f"non-linearity ν SET {res.nonlinearity_set:.2f}, RESET "
                f"{res.nonlinearity_reset:.2f}, asymmetry {res.asymmetry:.2f}"
            )

    def assemble_profile(self) -> bool:
        """A deployment profile of the Window, Read noise, Retention and Pulse response
        results (:func:`crossbar.characterise.make_profile`)."""
        s = self.app.session
        need = ("window", "read_noise", "retention", "pulse_response")
        if s is None or not all(k in self.results for k in need):
            self.app.log("Run Window, Read noise, Retention and Pulse response first.", "warning")
            return False
        profile = make_profile(
            s.crossbar,
            self.plan("profile"),
            window=self.results["window"],
            read_noise=self.results["read_noise"],
            programming=self.results["retention"],
            pulse_response=self.results["pulse_response"],
            bench_time=self.bench_time,
        )
        self.set_profile(profile)
        return True

    def set_profile(self, profile) -> None:
        """Show ``profile`` (a DeploymentProfile) on the profile page."""
        self.profile = profile
        rn, pg_, pr, w = (
            profile.read_noise,
            profile.programming,
            profile.pulse_response,
            (profile.window),
        )
        self.profile_text.setText(
            f"<b>Deployment profile of bench '{profile.bench}'</b> ({profile.shape[0]}×"
            f"{profile.shape[1]}, {len(profile.cells)} cells, {profile.bench_time:.0f} s of bench "
            f"time, {profile.created})<br><br>"
            f"<b>Window</b>: {len(w.stuck)} stuck ({100 * w.stuck_fraction:.0f} %)<br>"
            f"<b>Read noise</b>: σ_read {100 * rn.sigma_rel:.3g} % at {rn.v_read:g} V "
            f"({rn.biasing}), slope {rn.slope:.2f}<br>"
            f"<b>Programming</b>: σ_prog {100 * pg_.sigma_rel:.3g} %, "
            f"{100 * pg_.converged_fraction:.0f} % converged, {pg_.mean_pulses:.1f} pulses; "
            f"relaxation {100 * pg_.relaxation_rel:+.2g} %, drift ν {pg_.drift_nu_mean:.3g} ± "
            f"{pg_.drift_nu_std:.2g}, {100 * pg_.dissolved_fraction:.0f} % dissolved<br>"
            f"<b>Pulse response</b>: {pr.levels_text}, range ×{pr.dynamic_range:.3g}, ν SET "
            f"{pr.nonlinearity_set:.2f} / RESET {pr.nonlinearity_reset:.2f}"
        )
        self._update_enabled()
        self.profile_changed.emit(profile)

    def save_profile(self, path: str | Path) -> Path | None:
        """Write the profile as JSON (:meth:`DeploymentProfile.save`)."""
        profile = self.profile
        if profile is None:
            return None
        return self.write_export("Deployment profile", lambda: profile.save(path))

    def load_profile(self, path: str | Path) -> bool:
        """Read a profile JSON (:func:`load_deployment_profile`) and show it."""
        from crossbar.deployment_profile import DeploymentProfileError, load_deployment_profile

        try:
            profile = load_deployment_profile(path)
        except (DeploymentProfileError, OSError, json.JSONDecodeError) as exc:
            self.app.log(f"Deployment profile: {exc}", "error")
            return False
        self.set_profile(profile)
        self.app.log(f"Deployment profile loaded from {path}")
        return True

    def _save_dialog(self) -> None:
        self.export_dialog(
            "deployment profile", "deployment_profile.json", "JSON (*.json)", self.save_profile
        )

    def _load_dialog(self) -> None:
        path = self.ask_open_file("Deployment profile", "export", "JSON (*.json)")
        if path:
            self.load_profile(path)


def _idx(key: str) -> int:
    return int("".join(ch for ch in key if ch.isdigit()) or 0)


def _live(ctx: TaskContext):
    """A ProgressFn for the task: the status bar's progress, and every report that carries
    figures as a live item."""

    def progress(p: Progress) -> None:
        ctx.progress(p)
        if p.values:
            ctx.emit(p)

    return progress
