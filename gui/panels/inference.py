"""Inference panel: train ERM / BayesMulti on two moons, deploy on the bench, compare.

* Train (worker thread) with :func:`inference.training.train_erm` or
  :func:`inference.training.train_bayesmulti`; BayesMulti's Bayesian-optimisation trace appears
  live as a scatter of (p1, p2) coloured by the objective. The BO target is a usability or the
  device selected in the calibration panel (its noise profile).
* Load / save models (:mod:`inference.storage`).
* Deploy a model on the connected bench with
  ``inference.deploy.run_on_crossbar(crossbar, model, dataset, n_test_points, progress,
  should_abort)``: software versus hardware accuracy, the decision boundary with the test points
  (× = misclassified on hardware), and the histogram of hardware − software output errors for
  every deployed model (the paper's ERM versus BayesMulti comparison).
* The deployment loop (issue 15; :class:`inference.deploy.DeployOptions`): one switch per step
  (fault-aware placement, level-aware mapping, chip in the loop, drift compensation, refresh),
  all off by default, the settle time, and the array's deployment profile (a JSON file, or the
  one measured in the Characterisation panel this session). A step that needs the profile
  without one, or an unusable profile file, is one logged line and nothing starts. The result
  label lists the steps that ran.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from crossbar.progress import Progress
from gui import plotting
from gui.panels.base import AppServices, Panel
from gui.widgets import button, choice, double_spin, form_group, hbox, int_spin, set_panes, table
from gui.workers import TaskAborted, TaskContext

__all__ = [
    "LOOP_STEPS",
    "DeployView",
    "InferencePanel",
    "ModelEntry",
    "call_run_on_crossbar",
    "decision_grid",
    "loop_steps",
]

#: The deployment loop's steps: (:class:`inference.deploy.DeployOptions` field, label, tooltip).
LOOP_STEPS: tuple[tuple[str, str, str], ...] = (
    (
        "fault_aware",
        "Fault-aware placement",
        "Put the layers on rows and columns that avoid the profile's stuck cells, each layer "
        "scaled to the window (S) its cells reach. Needs the deployment profile.",
    ),
    (
        "levels",
        "Level-aware mapping",
        "Bias and a per-output scale in the digital periphery; on a device of discrete levels "
        "every cell's target is a pair of the profile's measured levels (S), and the network is "
        "first fine-tuned to them in software. Needs the deployment profile.",
    ),
    (
        "chip_in_loop",
        "Chip in the loop",
        "Program layer by layer: the programmed layers' outputs on training inputs are measured "
        "through the array and the next layer is fine-tuned on them; a digital gain and offset "
        "per class are fitted to the last layer's measured outputs.",
    ),
    (
        "drift_compensation",
        "Drift compensation",
        "Read a reference current (A) through each layer right after programming and again "
        "before the test MVMs; the layer's outputs are scaled by the ratio.",
    ),
    (
        "refresh",
        "Refresh",
        "After programming: a few rounds of waiting (s of bench time), reading every programmed "
        "cell and reprogramming those that moved off their target (dissolved filaments).",
    ),
)

#: The steps that need the array's deployment profile.
NEEDS_PROFILE = ("fault_aware", "levels")


def call_run_on_crossbar(
    run_on_crossbar: Callable[..., Any],
    crossbar: Any,
    model: Any,
    dataset: Any,
    n_test_points: int,
    ctx: TaskContext,
    *,
    options: Any = None,
    settle: float = 0.0,
) -> Any:
    """Call ``run_on_crossbar(crossbar, model, x_test, y_test, *, x_train, progress,
    should_abort, options, y_train, settle)`` (:func:`inference.deploy.run_on_crossbar`) on the
    first ``n_test_points`` test points with the training labels (the loop's fine-tuning steps
    use them) and ``settle`` s of bench time before the MVMs, reporting its progress to the
    task."""

    def progress(p: Progress) -> None:
        ctx.message(f"Deploying: {p.stage} {p.done}/{p.total}")
        ctx.progress(p)

    n = int(n_test_points)
    return run_on_crossbar(
        crossbar,
        model,
        dataset.x_test[:n],
        dataset.y_test[:n],
        x_train=dataset.x_train,
        progress=progress,
        should_abort=ctx.should_abort,
        options=options,
        y_train=dataset.y_train,
        settle=float(settle),
    )


def loop_steps(result: Any, options: Any) -> tuple[str, ...]:
    """The loop steps a deployment ran (switched on in ``options`` or recorded in
    ``result.loop``), as short texts with what they measured."""
    loop = _first(result, ("loop",))
    loop = loop if isinstance(loop, dict) else {}
    out = []
    for key, label, _tip in LOOP_STEPS:
        if key in loop or getattr(options, key, False):
            out.append(label.lower() + _step_detail(key, loop.get(key)))
    return tuple(out)


def _step_detail(key: str, info: Any) -> str:
    """What one loop step measured, in brackets ("" when the result does not say)."""
    if not isinstance(info, dict):
        return ""
    if key == "fault_aware" and "stuck_in_profile" in info:
        return f" ({len(info['stuck_in_profile'])} stuck cells avoided)"
    if key == "levels" and "levels_s" in info:
        lv = info["levels_s"]
        return " (analog device)" if lv is None else f" ({len(lv)} levels)"
    if key == "drift_compensation" and info.get("gains"):
        return " (gains " + ", ".join(f"×{float(g):.3g}" for g in info["gains"]) + ")"
    return ""


def decision_grid(
    model: Any, dataset: Any, n: int = 160
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Software class predictions on an ``n × n`` grid of raw features around the data.

    Returns ``(x_edges (2,), y_edges (2,), classes (n, n))`` with ``classes[iy, ix]``; None
    for data with other than two features (digits), which has no such picture.
    """
    if np.asarray(dataset.x_train).shape[1] != 2:
        return None
    x_all = np.concatenate([dataset.x_train, dataset.x_val, dataset.x_test]).astype(float)
    raw = x_all * dataset.feature_std + dataset.feature_mean
    lo, hi = raw.min(axis=0), raw.max(axis=0)
    pad = 0.08 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    xs = np.linspace(lo[0], hi[0], n)
    ys = np.linspace(lo[1], hi[1], n)
    gx, gy = np.meshgrid(xs, ys)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    classes = np.asarray(model.predict(pts)).reshape(n, n)
    return np.array([lo[0], hi[0]]), np.array([lo[1], hi[1]]), classes


@dataclass
class DeployView:
    """What the panel shows of one deployment (from the deploy result, with fallbacks)."""

    software_accuracy: float
    hardware_accuracy: float
    outputs_sw: np.ndarray  # (n, classes)
    outputs_hw: np.ndarray  # (n, classes)
    x_raw: np.ndarray  # (n, 2) raw test features
    labels: np.ndarray  # (n,)
    pred_hw: np.ndarray  # (n,)
    raw: Any = None
    steps: tuple[str, ...] = ()  # the loop steps that ran (:func:`loop_steps`)
    settle: float = 0.0  # s of bench time between programming and the test MVMs

    @property
    def errors(self) -> np.ndarray:
        """Hardware − software outputs, flattened."""
        return (np.asarray(self.outputs_hw) - np.asarray(self.outputs_sw)).ravel()


def _first(obj: Any, names: tuple[str, ...]) -> Any:
    for n in names:
        v = obj.get(n) if isinstance(obj, dict) else getattr(obj, n, None)
        if v is not None:
            return v
    return None


def view_of(result: Any, dataset: Any, n_points: int) -> DeployView:
    """Normalise a deploy result (object or dict) for display."""
    sw = float(_first(result, ("software_accuracy",)))
    hw = float(_first(result, ("hardware_accuracy",)))
    out_sw = np.atleast_2d(
        np.asarray(_first(result, ("outputs_software", "outputs_sw")), dtype=float)
    )
    out_hw = np.atleast_2d(
        np.asarray(_first(result, ("outputs_hardware", "outputs_hw")), dtype=float)
    )
    n = out_hw.shape[0]
    x = _first(result, ("x_raw", "inputs_raw"))
    if x is None:
        xt = _first(result, ("x", "x_test", "inputs"))
        if xt is None:
            xt = dataset.x_test[:n]
        x = np.asarray(xt, dtype=float) * dataset.feature_std + dataset.feature_mean
    y = _first(result, ("labels", "y", "y_test", "targets"))
    if y is None:
        y = dataset.y_test[:n]
    pred = _first(result, ("predictions_hardware", "predictions_hw", "pred_hw"))
    if pred is None:
        pred = np.argmax(out_hw, axis=1)
    return DeployView(
        sw, hw, out_sw, out_hw, np.asarray(x, dtype=float), np.asarray(y), np.asarray(pred), result
    )


@dataclass
class ModelEntry:
    """A trained or loaded model in the panel's table."""

    name: str
    model: Any  # inference.training.TrainedModel
    dataset: Any  # inference.data.Dataset
    boundary: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    deploys: list[DeployView] = field(default_factory=list)
    path: str | None = None  # the kept model file (.json)

    @property
    def last(self) -> DeployView | None:
        return self.deploys[-1] if self.deploys else None


#: (inputs, classes) of each data set's network.
_IO_SIZES = {"moons": (2, 2), "digits": (64, 10)}

#: The models table. Software accuracy on the whole test set is fixed per model; the last
#: deployment's columns say on how many test points both accuracies were measured.
MODEL_COLUMNS = (
    "model",
    "p1",
    "p2",
    "software acc. (test set)",
    "deployed on",
    "software acc. (deployed)",
    "hardware acc. (deployed)",
)


class InferencePanel(Panel):
    """Train, load, deploy and compare classifiers."""

    title = "Inference"
    array_programmed = pyqtSignal()  # a deployment (re)programmed cells of the array

    def __init__(self, app: AppServices, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.models: list[ModelEntry] = []
        self.current: ModelEntry | None = None
        self.bo_points: list[tuple[float, float, float]] = []
        self._build()
        self.session_changed(None)

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QHBoxLayout(self)
        split = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(split)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 4, 0)
        self.controls_scroll = scroll = QScrollArea()  # never forces the window taller
        self._reveal = QTimer(self)  # child timer: dies with the panel
        self._reveal.setSingleShot(True)
        self._reveal.setInterval(50)
        self._reveal.timeout.connect(lambda: scroll.ensureWidgetVisible(self.acc_label, 0, 0))
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(380)
        left_split = QSplitter(Qt.Orientation.Vertical)  # controls (scrolling) over the models
        left_split.addWidget(scroll)
        split.addWidget(left_split)
        lv.addWidget(self._data_group())
        lv.addWidget(self._training_group())
        lv.addWidget(self._deploy_group())
        # as wide as the controls need (never clipped), the plots take the rest
        bar = scroll.verticalScrollBar().sizeHint().width()
        scroll.setMinimumWidth(max(380, left.minimumSizeHint().width() + bar + 4))
        self.table = table(MODEL_COLUMNS, single_selection=True, sort=None)
        self.table.itemSelectionChanged.connect(self._table_selection)
        self.table.setMinimumHeight(110)
        lv.addStretch(1)
        left_split.addWidget(self.table)
        left_split.setCollapsible(0, False)
        set_panes(left_split, stretch=(4, 1), sizes=(600, 130))

        plotting.configure()
        self.plots = pg.GraphicsLayoutWidget()
        split.addWidget(self.plots)
        set_panes(split, stretch=(0, 1), sizes=(430, 950))
        self._build_bo_plot()
        self._build_boundary_plot()
        self.p_err = self.plots.addPlot(
            row=1, col=0, colspan=2, title="Output error: hardware − software"
        )
        self.p_err.setLabel("bottom", "output error (logit units)")
        self.p_err.setLabel("left", "count")
        plotting.grid(self.p_err)
        self.p_err.addLegend(offset=(10, 10), labelTextSize="9pt")
        plotting.no_si_prefix(self.p_err)
        self._err_hint()
        for p in (self.p_bo, self.p_db, self.p_err):
            plotting.relax_title(p)
        self.plots.ci.layout.setRowStretchFactor(0, 3)
        self.plots.ci.layout.setRowStretchFactor(1, 2)
        self._method_changed()

    def _data_group(self) -> QGroupBox:
        g, f = form_group("Data")
        self.data_name = choice(
            [
                ("two moons (2 features, 2 classes)", "moons"),
                ("digits (8×8 pixels, 10 classes)", "digits"),
            ],
            "digits trains in software; its 64-H-10 network does not fit a 10×10 array",
        )
        self.data_name.currentIndexChanged.connect(self._data_changed)
        self.data_seed = int_spin(0, 10_000)
        self.data_noise = double_spin(0.0, 1.0, 0.2, 0.05, 2)
        self.data_noise.setToolTip("Noise of the moons (digits: none)")
        self.hidden = int_spin(
            1, 64, 5, "Hidden units (2-H-2 network on moons; H ≤ 5 fits the 10×10 array)"
        )
        f.addRow("Set", self.data_name)
        row = QHBoxLayout()
        for label, w in (("Seed", self.data_seed), ("Noise", self.data_noise)):
            row.addWidget(QLabel(label))
            row.addWidget(w, 1)
        f.addRow(row)
        f.addRow("Hidden units", self.hidden)
        return g

    def _training_group(self) -> QGroupBox:
        g, f = form_group("Training")
        self.method = choice(
            [("ERM (no noise)", "erm"), ("BayesMulti (BO of p1, p2)", "bayesmulti")]
        )
        self.method.currentIndexChanged.connect(self._method_changed)
        self.target_u = double_spin(0.05, 1.0, 0.5, 0.05, 2)
        self.target_u.setToolTip("Target device usability for the BO objective (σ = −ln U)")
        self.noise_source = QComboBox()
        self.noise_source.setToolTip(
            "The BO's device noise: a target usability, or a device calibrated in the "
            "Calibration panel (chosen here by name, not by the row last clicked there)"
        )
        self.noise_source.addItem("target usability U", None)
        self.n_init = int_spin(1, 20, 3)
        self.n_iter = int_spin(0, 100, 10)
        self.eval_trials = int_spin(1, 200, 10)
        self.epochs = int_spin(0, 5000, 0)
        self.epochs.setSpecialValueText("default")
        self.train_seed = int_spin(0, 10_000)
        f.addRow("Method", self.method)
        f.addRow("Device noise", self.noise_source)
        f.addRow("Target U", self.target_u)
        f.addRow("BO initial points", self.n_init)
        f.addRow("BO iterations", self.n_iter)
        f.addRow("Noise trials", self.eval_trials)
        f.addRow("Epochs", self.epochs)
        f.addRow("Seed", self.train_seed)
        self.train_btn = button("Train", self.train)
        self.train_btn.setStyleSheet("font-weight: bold; padding: 5px")
        self.load_btn = button("Load…", self._load_dialog, "Load a saved model (.json + .pt)")
        self.save_btn = button("Save…", self._save_dialog, "Save the selected model (.json + .pt)")
        f.addRow(hbox((self.train_btn, 2), (self.load_btn, 1), (self.save_btn, 1)))
        return g

    def _deploy_group(self) -> QGroupBox:
        g, f = form_group("Deploy on the bench")
        self.n_test = int_spin(1, 400, 400)
        self.n_test.setToolTip("Test points run on the bench (default: the whole test set)")
        self.n_test_label = QLabel("")
        f.addRow("Test points", hbox(self.n_test, self.n_test_label))
        self._loop_rows(f)
        self.deploy_btn = button("Run on bench…", self._deploy_clicked)
        self.deploy_btn.setToolTip(
            "Programs the network's cells of the array (the cells' present states are lost), "
            "then runs the test points as MVMs"
        )
        self.deploy_btn.setStyleSheet("font-weight: bold; padding: 5px")
        f.addRow(self.deploy_btn)
        self.acc_label = QLabel("—")
        self.acc_label.setWordWrap(True)
        self.acc_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        f.addRow(self.acc_label)
        return g

    def _loop_rows(self, f: QFormLayout) -> None:
        """The deployment loop: the profile, one switch per step (all off), the settle time."""
        self.session_profile: Any = None  # DeploymentProfile measured in Characterisation
        self.profile_path = QLineEdit()
        self.profile_path.setToolTip(
            "The array's deployment profile (JSON: Characterisation → Save profile JSON, or "
            "xbar characterise); empty: the profile measured in this session, if any. Needed by "
            "fault-aware placement and level-aware mapping"
        )
        self.profile_browse = button("Browse…", self._browse_profile, "Choose a profile JSON")
        f.addRow("Deployment profile", hbox((self.profile_path, 1), self.profile_browse))
        self.loop_checks: dict[str, QCheckBox] = {}
        grid = QGridLayout()
        for i, (key, label, tip) in enumerate(LOOP_STEPS):
            cb = QCheckBox(label)
            cb.setToolTip(tip)
            cb.setChecked(False)
            self.loop_checks[key] = cb
            grid.addWidget(cb, i // 2, i % 2)
        f.addRow(QLabel("Deployment loop (each step off by default):"))
        f.addRow(grid)  # the whole width: the controls column stays as narrow as before
        self.settle = double_spin(0.0, 1e7, 0.0, 10.0, 1)
        self.settle.setToolTip(
            "Seconds of bench time between programming and the test MVMs (relaxation and drift "
            "act there)"
        )
        f.addRow("Settle (s)", self.settle)
        self.set_session_profile(None)

    def set_session_profile(self, profile: Any) -> None:
        """The deployment profile measured (or loaded) in the Characterisation panel: used when
        the profile field is empty."""
        self.session_profile = profile
        self.profile_path.setPlaceholderText(
            "none: browse, or characterise the array"
            if profile is None
            else f"from Characterisation (bench '{profile.bench}', {profile.created})"
        )

    def _browse_profile(self) -> None:
        path = self.ask_open_file(
            "Deployment profile", "profiles", "Deployment profiles (*.json);;All files (*)"
        )
        if path:
            self.profile_path.setText(path)
            self.app.settings.set_last_dir("profiles", path)

    def loop_options(self, shape: tuple[int, int]) -> dict[str, Any] | None:
        """The loop switches as :class:`inference.deploy.DeployOptions` fields (the profile
        only when a step needs it); None, with one line logged, when a step needs a profile
        that is missing, unreadable or for another array size than ``shape``."""
        steps = {key: cb.isChecked() for key, cb in self.loop_checks.items()}
        need = [label for key, label, _ in LOOP_STEPS if key in NEEDS_PROFILE and steps[key]]
        if not need:
            return {**steps, "profile": None}
        what = " and ".join([need[0], *(label.lower() for label in need[1:])])
        verb = "needs" if len(need) == 1 else "need"
        path = self.profile_path.text().strip()
        profile = self.session_profile
        if path:
            from crossbar.deployment_profile import DeploymentProfileError, load_deployment_profile

            try:
                profile = load_deployment_profile(path)
            except (DeploymentProfileError, OSError) as exc:
                why = " ".join(str(exc).split())
                self.app.log(
                    f"{what}: unusable deployment profile: {why}; nothing deployed", "error"
                )
                return None
        if profile is None:
            self.app.log(
                f"{what} {verb} the array's deployment profile: choose a profile JSON (or measure "
                "one in Characterisation); nothing deployed",
                "error",
            )
            return None
        if tuple(profile.shape) != tuple(shape):
            self.app.log(
                f"{what}: the deployment profile is for a {profile.shape[0]}×{profile.shape[1]} "
                f"array but the bench's is {shape[0]}×{shape[1]}; nothing deployed",
                "error",
            )
            return None
        return {**steps, "profile": profile}

    def _build_bo_plot(self) -> None:
        """(p1, p2) of every BO candidate coloured by its objective; the best one starred."""
        self.p_bo = self.plots.addPlot(row=0, col=0, title="BayesMulti search: (p1, p2)")
        self.p_bo.setLabel("bottom", "p1 = P(η = 0)")
        self.p_bo.setLabel("left", "p2 = P(η = 0.5)")
        plotting.grid(self.p_bo)
        plotting.no_si_prefix(self.p_bo)
        self.p_bo.setXRange(0, 0.95, padding=0.03)
        self.p_bo.setYRange(0, 0.95, padding=0.03)
        self.p_bo.plot([0, 0.95], [0.95, 0], pen=pg.mkPen("#999999", style=Qt.PenStyle.DashLine))
        self.bo_cmap = pg.colormap.get("viridis")
        self.bo_scatter = pg.ScatterPlotItem(size=11, pen=pg.mkPen("k", width=0.8))
        self.p_bo.addItem(self.bo_scatter)
        self.bo_best = pg.ScatterPlotItem(
            size=22, symbol="star", pen=pg.mkPen("#d62728", width=2), brush=None
        )
        self.p_bo.addItem(self.bo_best)
        self.bo_bar = pg.ColorBarItem(
            values=(0.0, 1.0),
            colorMap=self.bo_cmap,
            interactive=False,
            width=14,
            pen="k",
            label="objective",
        )
        self.p_bo.layout.addItem(self.bo_bar, 2, 5)
        self.p_bo.layout.setColumnFixedWidth(4, 5)

    def _build_boundary_plot(self) -> None:
        """The selected model's software decision regions with the deployed test points."""
        self.p_db = self.plots.addPlot(row=0, col=1, title="Decision boundary and test points")
        self.p_db.setLabel("bottom", "x₁")
        self.p_db.setLabel("left", "x₂")
        self.db_image = pg.ImageItem(axisOrder="row-major")
        lut = np.array([[200, 220, 245, 255], [250, 215, 190, 255]], dtype=np.ubyte)
        self.db_image.setLookupTable(lut)
        self.p_db.addItem(self.db_image)
        plotting.no_si_prefix(self.p_db)
        self.db_points: list[pg.ScatterPlotItem] = []
        self.p_db.addLegend(offset=(5, 5), labelTextSize="7pt", verSpacing=-6)

    # -- state -----------------------------------------------------------------------------------
    def _method_changed(self) -> None:
        bm = self.method.currentData() == "bayesmulti"
        for w in (self.noise_source, self.n_init, self.n_iter, self.eval_trials):
            w.setEnabled(bm)
        self.target_u.setEnabled(bm and self.noise_source.currentData() is None)

    def session_changed(self, session) -> None:
        self._update_enabled()

    def busy_changed(self, busy: bool) -> None:
        self._update_enabled()

    def _update_enabled(self) -> None:
        idle = not self.app.runner.busy
        self.train_btn.setEnabled(idle)
        self.load_btn.setEnabled(idle)
        self.save_btn.setEnabled(self.current is not None)
        self.deploy_btn.setEnabled(
            idle and self.app.session is not None and self.current is not None
        )

    def dataset(self):
        """The data set of the panel's settings."""
        from inference.data import load_dataset

        return load_dataset(
            self.data_name.currentData(),
            seed=self.data_seed.value(),
            noise=self.data_noise.value(),
        )

    def _data_changed(self) -> None:
        moons = self.data_name.currentData() == "moons"
        self.data_noise.setEnabled(moons)

    def set_devices(self, devices: list) -> None:
        """The devices calibrated in the Calibration panel (for the BO's device noise); the
        one chosen stays chosen while it is there."""
        chosen = self.noise_source.currentText()
        self.noise_source.blockSignals(True)
        self.noise_source.clear()
        self.noise_source.addItem("target usability U", None)
        for d in devices:
            self.noise_source.addItem(
                f"{Path(d.name).name[:60]}  (U = {d.result.usability:.3f})", d
            )
            self.noise_source.setItemData(
                self.noise_source.count() - 1, d.name, Qt.ItemDataRole.ToolTipRole
            )
        i = self.noise_source.findText(chosen)
        self.noise_source.setCurrentIndex(max(0, i))
        self.noise_source.blockSignals(False)
        self._method_changed()

    def choose_device(self, name_part: str) -> bool:
        """Choose the calibrated device whose name contains ``name_part`` as the BO's noise."""
        for i in range(1, self.noise_source.count()):
            if name_part in self.noise_source.itemData(i).name:
                self.noise_source.setCurrentIndex(i)
                return True
        return False

    def _selected_profile(self):
        """The noise profile of the device chosen in "Device noise" (None: logged)."""
        dev = self.noise_source.currentData()
        if dev is None:
            self.app.log("Choose a calibrated device under Device noise first.", "warning")
            return None
        try:
            return dev.to_profile()
        except ValueError as exc:
            self.app.log(f"Device profile: {exc}", "error")
            return None

    # -- training --------------------------------------------------------------------------------
    def train(self) -> bool:
        """Train with the panel's settings on the worker thread."""
        method = self.method.currentData()
        data_name = self.data_name.currentData()
        sizes = (*_IO_SIZES[data_name][:1], self.hidden.value(), _IO_SIZES[data_name][1])
        seed = self.train_seed.value()
        epochs = self.epochs.value() or None
        profile = None
        usability = self.target_u.value()
        if method == "bayesmulti" and self.noise_source.currentData() is not None:
            profile = self._selected_profile()
            if profile is None:
                return False
            usability = None
        n_init, n_iter, trials = self.n_init.value(), self.n_iter.value(), self.eval_trials.value()
        data_seed, data_noise = self.data_seed.value(), self.data_noise.value()

        def run(ctx: TaskContext):
            from inference.data import load_dataset
            from inference.training import train_bayesmulti, train_erm

            ds = load_dataset(data_name, seed=data_seed, noise=data_noise)
            if method == "erm":
                ctx.message("Training ERM…")
                model = train_erm(ds, sizes, epochs=epochs, seed=seed)
            else:

                def progress(p: Progress) -> None:
                    ctx.emit((p.values["p1"], p.values["p2"], p.values["score"]))
                    ctx.progress(p)
                    if ctx.should_abort():
                        raise TaskAborted()

                model = train_bayesmulti(
                    ds,
                    sizes,
                    usability=usability,
                    profile=profile,
                    n_init=n_init,
                    n_iter=n_iter,
                    n_eval_trials=trials,
                    seed=seed,
                    epochs=epochs,
                    progress=progress,
                )
            return model, ds, decision_grid(model, ds)

        if method == "bayesmulti":
            self.bo_points = []
            self._draw_bo()
        target = (
            f"device {Path(profile.name).stem[:24]}"
            if profile is not None
            else f"U = {usability:g}"
        )
        net = "-".join(str(n) for n in sizes)
        name = f"ERM {net}" if method == "erm" else f"BayesMulti {net}, {target}"
        if data_name != "moons":
            name += f" ({data_name})"
        return self.start_task(
            f"Train {name}",
            run,
            failed="Training failed",
            aborted="Training aborted",
            bench=False,
            on_items=self._on_bo,
            on_done=self._trained(name),
        )

    def _on_bo(self, items: list) -> None:
        self.bo_points.extend(items)
        self._draw_bo()

    def _draw_bo(self) -> None:
        if not self.bo_points:
            self.bo_scatter.setData([], [])
            self.bo_best.setData([], [])
            return
        pts = np.array(self.bo_points, dtype=float)
        obj = pts[:, 2]
        lo, hi = float(obj.min()), float(obj.max())
        if hi - lo < 1e-6:
            lo, hi = lo - 0.01, hi + 0.01
        colours = self.bo_cmap.map((obj - lo) / (hi - lo), mode="qcolor")
        self.bo_scatter.setData(pts[:, 0], pts[:, 1], brush=[pg.mkBrush(c) for c in colours])
        best = int(np.argmax(obj))
        self.bo_best.setData([pts[best, 0]], [pts[best, 1]])
        self.bo_bar.setLevels((lo, hi))
        plotting.set_title(
            self.p_bo,
            f"BO: {len(pts)} candidates (★ best)",
            size="10pt",
        )

    def bo_data(self) -> np.ndarray:
        """(n, 3) array of the plotted BO points (p1, p2, objective)."""
        return np.array(self.bo_points, dtype=float).reshape(-1, 3)

    def _trained(self, name: str):
        def done(payload) -> None:
            model, ds, grid = payload
            entry = self.add_model(name, model, ds, grid)
            self.keep_model(entry)
            acc = model.accuracies
            self.app.log(
                f"Trained {name}: accuracy train {acc['train']:.3f}, val {acc['val']:.3f}, "
                f"test {acc['test']:.3f}"
                + (
                    f"; p1 = {model.p1:.2f}, p2 = {model.p2:.2f}"
                    if model.method == "bayesmulti"
                    else ""
                ),
                "ok",
            )

        return done

    def add_model(self, name: str, model: Any, dataset: Any, grid=None) -> ModelEntry:
        """Add a model to the table and make it current."""
        entry = ModelEntry(name, model, dataset, grid)
        if model.bo_trace and not self.bo_points:
            self.bo_points = [(t["p1"], t["p2"], t["objective"]) for t in model.bo_trace]
            self._draw_bo()
        self.models.append(entry)
        row = self.table.rowCount()
        self.table.insertRow(row)
        self._fill_row(row, entry)
        self.table.selectRow(row)
        self.set_current(entry)
        return entry

    # -- models kept across restarts -------------------------------------------------------------
    def models_dir(self) -> Path:
        """Where trained models are kept (``<data folder>/models``)."""
        return Path(self.app.settings.data_dir) / "models"

    def kept_models(self) -> dict[str, str]:
        """The model files (``.json``) the panel loads at the next start -> their names."""
        raw = str(self.app.settings.get("inference/models", "") or "")
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def keep_model(self, entry: ModelEntry) -> Path | None:
        """Save ``entry``'s model into :meth:`models_dir` and remember it for the next start."""
        try:
            from inference.storage import save_model
        except ImportError:  # pragma: no cover - torch missing
            return None
        stamp = _dt.datetime.now().strftime("%Y%m%d_%H%M%S_%f")
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in entry.name)[:60]
        d = self.models_dir()
        try:
            d.mkdir(parents=True, exist_ok=True)
            out = save_model(entry.model, d / f"{safe}_{stamp}")
        except (OSError, ValueError) as exc:
            self.app.log(f"Could not keep the model {entry.name}: {exc}", "warning")
            return None
        js = Path(out[0] if isinstance(out, (tuple, list)) else out).with_suffix(".json")
        entry.path = str(js)
        kept = self.kept_models()
        kept[str(js)] = entry.name
        self.app.settings.set("inference/models", json.dumps(kept))
        return js

    def restore_models(self) -> bool:
        """Load the models kept by earlier sessions (worker thread); False if there are none
        or the worker is busy."""
        kept = self.kept_models()
        known = {e.path for e in self.models}
        paths = [p for p in kept if Path(p).is_file() and p not in known]
        self._restored = True
        if not paths:
            return False

        def run(ctx: TaskContext):
            from inference.data import load_dataset
            from inference.storage import ModelFileError, load_model

            for k, path in enumerate(paths):
                ctx.check()
                try:
                    model = load_model(path)
                    ds = load_dataset(
                        model.data_name,
                        seed=model.data_seed,
                        noise=model.data_noise if model.data_noise is not None else 0.2,
                    )
                except (ModelFileError, OSError, ValueError) as exc:
                    ctx.emit((path, None, None, str(exc)))
                    continue
                ctx.emit((path, model, ds, None))
                ctx.progress(Progress(k + 1, len(paths), "load models"))
            return len(paths)

        def items(batch: list) -> None:
            for path, model, ds, err in batch:
                if model is None:
                    self.app.log(f"Kept model {path}: {err}", "warning")
                    continue
                entry = self.add_model(kept.get(path) or Path(path).stem, model, ds)
                entry.path = path

        return self.start_task(
            "Load kept models",
            run,
            failed="Loading kept models failed",
            bench=False,
            on_items=items,
            on_done=lambda n: self.app.log(f"{len(self.models)} model(s) from earlier sessions"),
        )

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        """The first time the panel is shown, the models of earlier sessions come back."""
        super().showEvent(event)
        if not getattr(self, "_restored", False) and not self.app.runner.busy:
            self.restore_models()

    def _fill_row(self, row: int, e: ModelEntry) -> None:
        m = e.model
        last = e.last
        texts = [
            e.name,
            f"{m.p1:.2f}",
            f"{m.p2:.2f}",
            f"{m.accuracies.get('test', np.nan):.3f}",
            f"{last.labels.size} pts" if last else "—",
            f"{last.software_accuracy:.3f}" if last else "—",
            f"{last.hardware_accuracy:.3f}" if last else "—",
        ]
        for j, t in enumerate(texts):
            it = QTableWidgetItem(t)
            if j:
                it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, j, it)
        self.table.item(row, 0).setToolTip(e.name)

    def _table_selection(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if rows:
            self.set_current(self.models[min(rows)])

    def set_current(self, entry: ModelEntry) -> None:
        self.current = entry
        n = int(len(entry.dataset.y_test))
        was_all = self.n_test.value() == self.n_test.maximum()
        self.n_test.setMaximum(n)
        if was_all:
            self.n_test.setValue(n)
        self.n_test_label.setText(f"of {n}")
        self._draw_boundary()
        self._update_acc_label()
        self._update_enabled()

    # -- plots -----------------------------------------------------------------------------------
    def _draw_boundary(self) -> None:
        e = self.current
        for it in self.db_points:
            self.p_db.removeItem(it)
        self.db_points = []
        if self.p_db.legend is not None:
            self.p_db.legend.clear()
        if e is None:
            return
        if e.boundary is None:
            e.boundary = decision_grid(e.model, e.dataset)
        if e.boundary is None:  # not two features: no decision-boundary picture
            self.db_image.clear()
            plotting.set_title(self.p_db, f"No 2-D picture for {e.dataset.name}", size="10pt")
            return
        xe, ye, classes = e.boundary
        self.db_image.setImage(classes.astype(float), autoLevels=False, levels=(0, 1))
        self.db_image.setRect(
            float(xe[0]), float(ye[0]), float(xe[1] - xe[0]), float(ye[1] - ye[0])
        )
        d = e.last
        if d is not None:
            x, y, pred = d.x_raw, d.labels, d.pred_hw
        else:
            n = self.n_test.value()
            x = (
                np.asarray(e.dataset.x_test[:n], float) * e.dataset.feature_std
                + e.dataset.feature_mean
            )
            y = e.dataset.y_test[:n]
            pred = None
        for cls in (0, 1):
            colour = plotting.colour(0 if cls == 0 else 1)
            ok = (y == cls) if pred is None else (y == cls) & (pred == y)
            bad = np.zeros_like(ok) if pred is None else (y == cls) & (pred != y)
            item = pg.ScatterPlotItem(
                x[ok, 0],
                x[ok, 1],
                size=9,
                brush=pg.mkBrush(colour),
                pen=pg.mkPen("k", width=0.8),
                name=f"class {cls}",
            )
            self.p_db.addItem(item)
            self.db_points.append(item)
            if bad.any():
                item = pg.ScatterPlotItem(
                    x[bad, 0],
                    x[bad, 1],
                    size=13,
                    symbol="x",
                    brush=pg.mkBrush(colour),
                    pen=pg.mkPen(colour, width=2),
                    name=None if cls else "✗ wrong on the bench",
                )
                self.p_db.addItem(item)
                self.db_points.append(item)
        plotting.set_title(
            self.p_db,
            "Decision boundary" + ("" if d is None else " (✗: bench)"),
            size="10pt",
        )
        self.p_db.autoRange()

    def _err_hint(self) -> None:
        hint = pg.TextItem(
            "Deploy a model on the bench to compare its hardware and software outputs here",
            color="#777777",
            anchor=(0.5, 0.5),
        )
        self.p_err.addItem(hint)
        hint.setPos(0.5, 0.5)
        self.p_err.setXRange(0, 1)
        self.p_err.setYRange(0, 1)

    def _draw_errors(self) -> None:
        self.p_err.clear()
        if self.p_err.legend is not None:
            self.p_err.legend.clear()
        deployed = [e for e in self.models if e.last is not None]
        if not deployed:
            self._err_hint()
            return
        allerr = np.concatenate([e.last.errors for e in deployed])
        allerr = allerr[np.isfinite(allerr)]
        if allerr.size == 0:
            return
        lim = float(np.max(np.abs(allerr))) or 1.0
        edges = np.linspace(-lim * 1.05, lim * 1.05, 31)
        for k, e in enumerate(deployed):
            err = e.last.errors
            err = err[np.isfinite(err)]
            hist, _ = np.histogram(err, bins=edges)
            c = pg.mkColor(plotting.colour(k))
            fill = pg.mkColor(c)
            fill.setAlpha(70)
            self.p_err.plot(
                edges,
                hist,
                stepMode="center",
                fillLevel=0,
                brush=fill,
                pen=pg.mkPen(c, width=2),
                name=f"{e.name}: mean |err| {np.mean(np.abs(err)):.3g}",
            )
        self.p_err.enableAutoRange()

    def _update_acc_label(self) -> None:
        e = self.current
        if e is None:
            self.acc_label.setText("—")
            return
        d = e.last
        if d is None:
            self.acc_label.setText(
                f"<b>{e.name}</b><br>software test accuracy {e.model.accuracies['test']:.3f}"
                "<br>not deployed yet"
            )
            return
        self.acc_label.setText(
            f"<b>{e.name}</b> on {d.labels.size} test points<br>"
            f"<b>software accuracy {d.software_accuracy:.3f}</b><br>"
            f"<b>hardware accuracy {d.hardware_accuracy:.3f}</b> "
            f"(Δ = {d.hardware_accuracy - d.software_accuracy:+.3f})"
            + _extras(d.raw)
            + _loop_line(d)
        )

    # -- deploy ----------------------------------------------------------------------------------
    def deploy(self) -> bool:
        """Run the current model's MVMs on the bench (``inference.deploy.run_on_crossbar``)."""
        s = self.app.session
        e = self.current
        if s is None or e is None:
            self.app.log("Connect a bench and train or load a model first.", "warning")
            return False
        n = self.n_test.value()
        crossbar = s.crossbar
        loop = self.loop_options(tuple(crossbar.shape))
        if loop is None:
            return False
        settle = self.settle.value()

        def run(ctx: TaskContext):
            from inference.deploy import DeployOptions, run_on_crossbar

            options = DeployOptions(**loop)
            result = call_run_on_crossbar(
                run_on_crossbar, crossbar, e.model, e.dataset, n, ctx, options=options,
                settle=settle,
            )  # fmt: skip
            view = view_of(result, e.dataset, n)
            view.steps, view.settle = loop_steps(result, options), settle
            return view

        def done(view: DeployView) -> None:
            e.deploys.append(view)
            self.array_programmed.emit()
            self._fill_row(self.models.index(e), e)
            if self.current is e:
                self._draw_boundary()
                self._update_acc_label()
            self._draw_errors()
            self._reveal.start()  # show the result once the label's new size is laid out
            self.app.log(
                f"{e.name} on the bench ({view.labels.size} points): software "
                f"{view.software_accuracy:.3f}, hardware {view.hardware_accuracy:.3f}"
                + (f"; loop: {', '.join(view.steps)}" if view.steps else ""),
                "ok",
            )

        def aborted(_partial) -> None:
            stopped = s.crossbar.emergency_stopped
            self.app.log(
                "Deployment stopped: no result" if stopped else "Deployment aborted; outputs off",
                "warning",
            )
            self.acc_label.setText(f"<b>{e.name}</b><br>deployment stopped: no result")
            if not stopped:
                self.array_programmed.emit()  # cells may have been programmed before the abort

        return self.start_task(
            f"Deploy {e.name}",
            run,
            failed="Deployment failed",
            on_done=done,
            on_aborted=aborted,
        )

    def _deploy_clicked(self) -> None:
        if self.confirm_deploy():
            self.deploy()

    def confirm_deploy(self) -> bool:
        """Ask before a deployment reprograms the array (Yes/No)."""
        e = self.current
        if e is None:
            return False
        msg = (
            f"Deploying {e.name} programs its weights into the array: the conductances of the "
            "cells it uses are overwritten (a pattern programmed there is lost). Then "
            f"{self.n_test.value()} test points run as MVMs.\n\nDeploy now?"
        )
        ans = QMessageBox.question(
            self,
            "Reprogram the array?",
            msg,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return ans == QMessageBox.StandardButton.Yes

    # -- load / save -----------------------------------------------------------------------------
    def load_model(self, path: str | Path) -> bool:
        """Load a model saved by :func:`inference.storage.save_model` (worker thread)."""
        try:
            from inference.storage import load_model
        except ImportError:
            self.app.log("Model files are not supported: inference.storage is missing", "error")
            return False

        def run(ctx: TaskContext):
            from inference.data import load_dataset

            model = load_model(path)
            ds = load_dataset(
                model.data_name,
                seed=model.data_seed,
                noise=model.data_noise if model.data_noise is not None else 0.2,
            )
            return model, ds, decision_grid(model, ds)

        def done(payload) -> None:
            model, ds, grid = payload
            self.add_model(Path(path).stem, model, ds, grid)
            self.app.log(f"Loaded model {path} ({model.method}, sizes {model.sizes})")

        self.app.settings.set_last_dir("models", path)
        return self.start_task(
            f"Load {Path(path).name}", run, failed=f"Cannot load {path}", bench=False, on_done=done
        )

    def save_model(self, path: str | Path) -> bool:
        """Save the current model (:func:`inference.storage.save_model`)."""
        if self.current is None:
            return False
        try:
            from inference.storage import save_model
        except ImportError:
            self.app.log("Model files are not supported: inference.storage is missing", "error")
            return False
        try:
            out = save_model(self.current.model, path)
        except (OSError, ValueError) as exc:
            self.app.log(f"Cannot save {path}: {exc}", "error")
            return False
        self.app.settings.set_last_dir("models", path)
        files = out if isinstance(out, (tuple, list)) else [out if out is not None else path]
        self.app.log("Model saved to " + ", ".join(str(f) for f in files))
        return True

    def _load_dialog(self) -> None:
        path = self.ask_open_file("Load model", "models", "Models (*.json *.pt);;All files (*)")
        if path:
            self.load_model(path)

    def _save_dialog(self) -> None:
        if self.current is None:
            return
        path = self.ask_save_file(
            "Save model", "models", self.current.model.method, "Models (*.pt);;All files (*)"
        )
        if path:
            self.save_model(path)


def _loop_line(d: DeployView) -> str:
    """The deployment loop's steps that ran and the settle time (an HTML line)."""
    text = ", ".join(d.steps) if d.steps else "off"
    if d.settle > 0:
        text += f"; settled {d.settle:g} s before the MVMs"
    return f"<br>deployment loop: {text}"


def _extras(result: Any) -> str:
    """Programming and energy figures of a deploy result, when it has them (HTML lines)."""
    out = []
    prog = _first(result, ("programming",))
    if isinstance(prog, dict) and prog.get("cells"):
        conv = prog.get("fraction_converged", float("nan"))
        out.append(
            f"programmed {int(prog['cells'])} cells, {100 * conv:.0f} % converged, "
            f"{int(prog.get('stuck', 0))} stuck"
        )
    e = _first(result, ("energy_per_mvm_j",))
    eff = _first(result, ("vs_v100",))
    if e is not None:
        line = f"array energy per MVM {plotting.si(float(e), 'J')}"
        if eff is not None and np.isfinite(eff):
            line += f" (≈{float(eff):.0f}× a V100's efficiency)"
        out.append(line)
    return "".join(f"<br>{t}" for t in out)
