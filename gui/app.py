"""The main window of the crossbar lab application, and ``main(argv)``.

Layout (usable down to 1024×700): the bench bar (bench, Connect / Switch, SIMULATED banner with
the device profile, status) beside the EMERGENCY STOP and Acknowledge stop buttons on top; when
a stop is latched a red bar under them says so; the panels (I-V sweep, Crossbar, Calibration,
Inference, Characterisation) as tabs — their side columns scroll, their plots reflow; a log pane;
a status bar with the running operation, its progress and an Abort button. The window title
names the bench and says SIMULATED on a simulated one.

Threading: every long operation is a :class:`gui.workers.Task` run by the window's
:class:`gui.workers.TaskRunner` on one worker thread (one operation at a time). The window holds
no instrument logic: it opens a :class:`gui.backend_chooser.BenchSession` (backend + recording
:class:`crossbar.core.Crossbar`) and hands the crossbar to the panels.

Safety:

* **EMERGENCY STOP** latches the crossbar layer's emergency stop (the running operation stops at
  its next primitive and shows no result), waits briefly for the worker to leave the instrument
  (≤ 0.5 s), then calls the backend's ``shutdown()`` (every output off, switch matrix released)
  even if the worker has not stopped; the bench stays connected, outputs off. Every further
  operation is refused until **Acknowledge stop** (always on screen beside the stop button,
  enabled while a stop is latched) is pressed.
* **Abort** stops the running operation; the crossbar layer switches outputs off.
* **Closing the window** aborts running work and shuts the backend down.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QCloseEvent, QFont, QGuiApplication, QKeySequence
from PyQt6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from crossbar.progress import Progress
from gui import plotting
from gui.arguments import add_arguments
from gui.backend_chooser import (
    BenchChooser,
    BenchSession,
    close_session,
    example_bench_path,
    open_session,
)
from gui.settings import Settings
from gui.widgets import set_panes
from gui.workers import Task, TaskContext, TaskRunner
from instruments.errors import ConnectionLost

__all__ = ["MIN_SIZE", "MainWindow", "create_app", "main"]

_LEVEL_COLOURS = {"info": "#202020", "warning": "#b36b00", "error": "#c00000", "ok": "#1a7f1a"}
#: The smallest screen the window is laid out for (px): every control stays on screen.
MIN_SIZE = (1024, 700)
_TITLE = "xbar — perovskite crossbar lab"


class MainWindow(QMainWindow):
    """The application window (see the module docstring)."""

    session_changed = pyqtSignal(object)  # BenchSession | None
    log_message = pyqtSignal(str, str)  # text, level

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        bench: str | None = None,
        data_dir: str | Path | None = None,
        update_interval_ms: int = 50,
    ) -> None:
        super().__init__()
        plotting.configure()
        self.settings = settings or Settings()
        if bench is not None:
            self.settings.bench = bench
        if data_dir is not None:
            self.settings.data_dir = data_dir
        self.session: BenchSession | None = None
        self.runner = TaskRunner(self, update_interval_ms=update_interval_ms)
        self.estop_count = 0
        self.last_discovery: list = []
        self._estopped = False
        self._closing = False
        self._closed = False
        self._build()
        self._update_title()
        self.resize(*_initial_size())
        self.runner.started.connect(self._task_started)
        self.runner.progress.connect(self._task_progress)
        self.runner.message.connect(self.op_label.setText)
        self.runner.finished.connect(self._task_finished)
        self.runner.busy_changed.connect(self._busy_changed)
        self.log(f"Data folder: {self.settings.data_dir}")

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget()
        self.setCentralWidget(central)
        v = QVBoxLayout(central)
        v.setContentsMargins(6, 6, 6, 2)
        v.setSpacing(4)
        v.addLayout(self._build_top())
        v.addWidget(self._build_stop_bar())
        split = QSplitter(Qt.Orientation.Vertical)
        split.setChildrenCollapsible(False)
        v.addWidget(split, 1)
        self.tabs = QTabWidget()
        self.tabs.setUsesScrollButtons(True)
        split.addWidget(self.tabs)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setFont(QFont("monospace", 9))
        self.log_view.setPlaceholderText("log")
        self.log_view.setMinimumHeight(48)
        split.addWidget(self.log_view)
        set_panes(split, stretch=(5, 1), sizes=(720, 110))
        self._build_panels()
        self._build_status_bar()
        self._build_actions()

    def _build_top(self) -> QGridLayout:
        """The bench bar beside the EMERGENCY STOP and Acknowledge stop buttons."""
        top = QGridLayout()
        top.setHorizontalSpacing(8)
        self.chooser = BenchChooser(
            self.settings.bench,
            self.settings.last_dir("bench", example_bench_path().parent),
            profile=str(self.settings.get("bench/profile") or ""),
        )
        self.chooser.connect_requested.connect(self.connect_bench)
        self.chooser.disconnect_requested.connect(self.disconnect_bench)
        top.addWidget(self.chooser, 0, 0)
        top.setColumnStretch(0, 1)
        self.estop = QPushButton("EMERGENCY STOP")
        self.estop.setToolTip(
            "Abort the running operation, switch every output off and release the switch "
            "matrix (Ctrl+Space); operations stay refused until the stop is acknowledged"
        )
        self.estop.setStyleSheet(
            "QPushButton { background: #d00000; color: white; font-weight: bold; "
            "font-size: 13pt; border: 2px solid #700000; border-radius: 6px; padding: 4px 12px }"
            "QPushButton:pressed { background: #900000 }"
        )
        self.estop.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.estop.setMinimumHeight(52)
        self.estop.clicked.connect(self.emergency_stop)
        top.addWidget(self.estop, 0, 1)
        self.ack_button = QPushButton("Acknowledge\nstop")
        self.ack_button.setToolTip(
            "After an emergency stop: check the bench, then acknowledge to allow operations "
            "again (outputs stay off until the next operation)"
        )
        self.ack_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.ack_button.setEnabled(False)
        self.ack_button.clicked.connect(self.acknowledge_stop)
        top.addWidget(self.ack_button, 0, 2)
        return top

    def _build_stop_bar(self) -> QFrame:
        """The red bar shown while an emergency stop is latched."""
        self.stop_bar = QFrame()
        self.stop_bar.setStyleSheet(
            "QFrame { background: #c00000; border-radius: 4px } QLabel { color: white; "
            "font-weight: bold }"
        )
        h = QHBoxLayout(self.stop_bar)
        h.setContentsMargins(8, 3, 8, 3)
        self.stop_bar_label = QLabel(
            "EMERGENCY STOP latched: every output is off and operations are refused. Check "
            "the bench, then press Acknowledge stop."
        )
        self.stop_bar_label.setWordWrap(True)
        h.addWidget(self.stop_bar_label, 1)
        self.stop_bar.setVisible(False)
        return self.stop_bar

    def _build_panels(self) -> None:
        """One tab per panel; the crossbar map's focused cell goes to the I-V panel, whose
        measured sweeps go to the calibration panel; the characterisation's deployment profile
        goes to the inference panel (its deployment loop's default profile)."""
        from gui.panels.calibration import CalibrationPanel
        from gui.panels.characterisation import CharacterisationPanel
        from gui.panels.crossbar_map import CrossbarPanel
        from gui.panels.inference import InferencePanel
        from gui.panels.iv_sweep import IVSweepPanel
        from gui.panels.study import StudyPanel

        self.iv_panel = IVSweepPanel(self)
        self.crossbar_panel = CrossbarPanel(self)
        self.calibration_panel = CalibrationPanel(self)
        self.inference_panel = InferencePanel(self)
        self.characterisation_panel = CharacterisationPanel(self)
        self.study_panel = StudyPanel(self)
        self.panels = [
            self.iv_panel,
            self.crossbar_panel,
            self.calibration_panel,
            self.inference_panel,
            self.characterisation_panel,
            self.study_panel,
        ]
        for p in self.panels:
            self.tabs.addTab(p, p.title)
        self.crossbar_panel.focus_changed.connect(self.iv_panel.set_cell)
        self.iv_panel.sweep_measured.connect(self.calibration_panel.add_measured_sweep)
        self.calibration_panel.devices_changed.connect(self.inference_panel.set_devices)
        self.inference_panel.array_programmed.connect(self.crossbar_panel.refresh_from_data_file)
        self.characterisation_panel.profile_changed.connect(
            self.inference_panel.set_session_profile
        )

    def _build_status_bar(self) -> None:
        """The running operation, its elapsed time and progress, and the Abort button."""
        sb = self.statusBar()
        self.op_label = QLabel("Idle")
        self.op_label.setMinimumWidth(120)
        self.op_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar()
        self.progress.setMinimumWidth(200)
        self.progress.setMaximumWidth(300)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        self.abort_button = QPushButton("Abort")
        self.abort_button.setEnabled(False)
        self.abort_button.setToolTip("Stop the running operation (outputs off) (Esc)")
        self.abort_button.setMinimumWidth(
            self.abort_button.fontMetrics().horizontalAdvance("Abort") + 40
        )
        self.abort_button.clicked.connect(self.abort)
        self.elapsed = QLabel("")
        self.elapsed.setMinimumWidth(self.elapsed.fontMetrics().horizontalAdvance("0000.0 s"))
        sb.addWidget(self.op_label, 1)
        sb.addPermanentWidget(self.elapsed)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.abort_button)
        self._t0 = 0.0
        self._tick = QTimer(self)
        self._tick.setInterval(250)
        self._tick.timeout.connect(self._update_elapsed)

    def _build_actions(self) -> None:
        """Esc aborts, Ctrl+Space is the emergency stop; File and Bench menus."""
        act = QAction("Abort", self)
        act.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        act.triggered.connect(self.abort)
        self.addAction(act)
        act = QAction("Emergency stop", self)
        act.setShortcut(QKeySequence("Ctrl+Space"))
        act.triggered.connect(self.emergency_stop)
        self.addAction(act)

        menu = self.menuBar().addMenu("&File")
        a = menu.addAction("Data folder…")
        a.triggered.connect(self._choose_data_dir)
        a = menu.addAction("Export from a data file…")
        a.setToolTip(
            "Write the sweeps (CSV + xlsx), the last map and programming results of "
            "a recorded HDF5 data file"
        )
        a.triggered.connect(self._export_data_file_dialog)
        menu.addSeparator()
        a = menu.addAction("Quit")
        a.triggered.connect(self.close)
        menu = self.menuBar().addMenu("&Bench")
        a = menu.addAction("Discover instruments…")
        a.triggered.connect(self.discover_instruments)
        a = menu.addAction("Identify the connected bench's instruments")
        a.triggered.connect(self.identify_bench)
        a = menu.addAction("Open example bench file…")
        a.triggered.connect(self._open_example_bench_dialog)

    def _update_title(self) -> None:
        s = self.session
        if s is None:
            self.setWindowTitle(f"{_TITLE} — no bench")
        elif s.is_simulated:
            prof = f", device profile {s.profile}" if s.profile else ""
            self.setWindowTitle(f"{_TITLE} — SIMULATED bench '{s.name}'{prof}")
        else:
            self.setWindowTitle(f"{_TITLE} — bench '{s.name}' (real instruments)")

    # -- log -------------------------------------------------------------------------------------
    def log(self, text: str, level: str = "info") -> None:
        """Append a timestamped line to the log pane (``level``: info, ok, warning, error)."""
        stamp = _dt.datetime.now().strftime("%H:%M:%S")
        colour = _LEVEL_COLOURS.get(level, _LEVEL_COLOURS["info"])
        tag = "" if level in ("info", "ok") else f"{level.upper()}: "
        self.log_view.appendHtml(
            f"<span style='color:#808080'>{stamp}</span> "
            f"<span style='color:{colour}'>{html.escape(tag + text)}</span>"
        )
        self.log_message.emit(text, level)

    def log_lines(self) -> list[str]:
        """The log pane's text, one entry per line (tests)."""
        return self.log_view.toPlainText().splitlines()

    # -- tasks -----------------------------------------------------------------------------------
    def run_task(self, task: Task) -> bool:
        """Run a task that does not need the bench (calibration, training)."""
        if self._closing:
            return False
        if self.runner.busy:
            cur = self.runner.current
            self.log(f"Busy with '{cur.name if cur else '?'}'; wait or abort it first.", "warning")
            return False
        return self.runner.submit(task)

    def run_bench_task(self, task: Task) -> bool:
        """Run a task on the connected bench: its abort also calls ``Crossbar.abort``, and
        every output is switched off when it ends (``backend.outputs_off``)."""
        session = self.session
        if session is None:
            self.log("Connect a bench first.", "warning")
            return False
        crossbar = session.crossbar
        if crossbar.emergency_stopped:
            self.log(
                f"EMERGENCY STOP is latched: press Acknowledge stop before {task.name}.", "error"
            )
            return False
        backend = session.backend
        fn = task.fn

        def wrapped(ctx: TaskContext):
            crossbar.reset_abort()  # a stale request must not stop this new operation
            try:
                return fn(ctx)
            finally:
                # Idle-safe between operations: single-cell reads and pulses leave the source
                # on at the read voltage with the cell routed; nothing stays driven while the
                # user thinks (outputs_off never raises and keeps the bench usable).
                backend.outputs_off()

        task.fn = wrapped
        on_error = task.on_error
        on_aborted = task.on_aborted

        def failed(exc: BaseException) -> None:
            if crossbar.emergency_stopped and not isinstance(exc, ConnectionLost):
                # the stop's shutdown can reach the instruments while the operation is still
                # in a primitive (the worker had not left it within 0.5 s): whatever that
                # primitive then raised, the operation was stopped, and shows no result
                self.log(f"{task.name} ended by the emergency stop ({exc})", "warning")
                if on_aborted is not None:
                    on_aborted(None)
                return
            if on_error is not None:
                on_error(exc)
            if isinstance(exc, ConnectionLost):
                self._instrument_lost(exc)

        task.on_error = failed
        if task.abort_hook is None:
            task.abort_hook = crossbar.abort
        return self.run_task(task)

    def _instrument_lost(self, exc: ConnectionLost) -> None:
        """An instrument stopped answering: say what that means and how to go on."""
        who = exc.instrument or "an instrument"
        self.log(
            f"{who} could not be reached to switch it off: check it (its output may still be "
            "on); every other output is off and the switch matrix is released. Disconnect and "
            "connect again to go on.",
            "error",
        )
        self.chooser.set_status(f"{who} lost — check it, then reconnect", "#c00000")

    def abort(self) -> None:
        """Abort the running operation (outputs are switched off by the crossbar layer)."""
        if self.runner.busy:
            cur = self.runner.current
            self.log(f"Abort requested: {cur.name if cur else ''}", "warning")
            self.op_label.setText(f"Aborting {cur.name if cur else ''}…")
            self.runner.abort()

    def _task_started(self, name: str) -> None:
        self.op_label.setText(f"Running: {name}")
        self.progress.setRange(0, 0)  # busy indicator until the first progress report
        self._t0 = time.monotonic()
        self._tick.start()
        self.abort_button.setEnabled(True)

    def _task_progress(self, p: Progress) -> None:
        if p.total > 0:
            self.progress.setRange(0, p.total)
            self.progress.setValue(min(p.done, p.total))
            self.progress.setFormat(f"{p.stage}: %v / %m" if p.stage else "%v / %m")

    def _task_finished(self, name: str, outcome: str) -> None:
        self._tick.stop()
        self._update_elapsed()
        self.op_label.setText(f"{name}: {outcome}")
        self.abort_button.setEnabled(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if outcome == "done" else 0)

    def _update_elapsed(self) -> None:
        self.elapsed.setText(f"{time.monotonic() - self._t0:.1f} s")

    def _busy_changed(self, busy: bool) -> None:
        self.chooser.set_busy(busy)
        for p in self.panels:
            p.busy_changed(busy)

    # -- bench -----------------------------------------------------------------------------------
    def connect_bench(self, bench: str | None = None, profile: str | None = None) -> bool:
        """Open ``bench`` ("sim" or a TOML path; default: the chooser's) with the simulated
        device ``profile`` (default: the chooser's) on the worker thread. With a bench already
        connected this switches: the open bench is shut down and closed first."""
        bench = bench if bench is not None else self.chooser.bench()
        if not bench:
            self.log("Choose a bench file first.", "warning")
            return False
        if bench != self.chooser.bench():
            self.chooser.set_bench(bench)
        if profile is not None:
            self.chooser.set_profile(profile)
        profile = self.chooser.chosen_profile()
        old = self.session
        if old is not None and self.runner.busy:
            return False
        data_dir = self.settings.data_dir
        self.chooser.set_status(f"connecting to {bench}…", "#b36b00")

        def run(ctx: TaskContext) -> BenchSession:
            if old is not None:
                ctx.message(f"Closing bench {old.name}…")
                close_session(old)
            ctx.message(f"Opening bench {bench}…")
            return open_session(bench, data_dir, profile=profile or None)

        def done(session: BenchSession) -> None:
            if old is not None:
                self._drop_session("disconnected")
                self.log(f"Disconnected from '{old.name}'; outputs off, data file closed", "ok")
            if self._closing or self._closed:
                close_session(session)
                return
            self.settings.bench = bench
            self.settings.set("bench/profile", profile)
            if bench != "sim":
                self.settings.set_last_dir("bench", bench)
            self._use_session(session)

        def failed(exc: BaseException) -> None:
            if old is not None:
                self._drop_session("disconnected")
            self.chooser.set_status("connection failed", "#c00000")
            self.log(f"Cannot open bench {bench}: {exc}", "error")

        verb = "Switch to" if old is not None else "Connect to"
        return self.run_task(
            Task(
                f"{verb} {bench}",
                run,
                on_done=done,
                on_error=failed,
                on_aborted=lambda _: failed(RuntimeError("aborted")),
                uses_bench=False,
            )
        )

    def attach_session(self, session: BenchSession) -> None:
        """Use an already open session (scripts and tests with a custom backend)."""
        if self.session is not None:
            raise RuntimeError("a bench is already connected")
        self._use_session(session)

    def _use_session(self, session: BenchSession) -> None:
        """Make ``session`` the connected bench."""
        self.session = session
        self.chooser.set_connected(True, session.profile)
        self._show_connected()
        self.log(f"Connected to bench {session.describe()}", "ok")
        if session.data_path is not None:
            self.log(f"Recording to {session.data_path}")
        self._notify_session()

    def _show_connected(self) -> None:
        s = self.session
        if s is None:
            return
        self.chooser.set_simulated(s.is_simulated, s.profile)
        rows, cols = s.shape
        self.chooser.set_status(f"connected: {s.name}, {rows}×{cols}", "#1a7f1a")
        self.chooser.status.setToolTip(s.describe())

    def disconnect_bench(self) -> bool:
        """Shut the bench down and close the data file (on the worker thread)."""
        session = self.session
        if session is None:
            return False

        def run(ctx: TaskContext) -> None:
            close_session(session)

        def done(_=None) -> None:
            self._drop_session("disconnected")
            self.log("Disconnected; outputs off, data file closed", "ok")

        return self.run_task(Task("Disconnect", run, on_done=done, on_error=lambda e: done()))

    def _drop_session(self, status: str, colour: str = "grey") -> None:
        self.session = None
        self.chooser.set_connected(False)
        self.chooser.set_simulated(None)
        self.chooser.set_status(status, colour)
        self._notify_session()

    def _notify_session(self) -> None:
        latched = self.session is not None and self.session.crossbar.emergency_stopped
        self._set_latched(latched)
        self._update_title()
        for p in self.panels:
            p.session_changed(self.session)
        self.session_changed.emit(self.session)

    def _set_latched(self, latched: bool) -> None:
        """Show (or hide) the latched emergency stop: the red bar and the enabled
        Acknowledge stop button."""
        self._estopped = latched
        self.ack_button.setEnabled(latched)
        self.stop_bar.setVisible(latched)
        self.ack_button.setStyleSheet(
            "QPushButton { background: #ffd24d; color: black; font-weight: bold; "
            "border: 2px solid #b38600; border-radius: 6px; padding: 2px 8px }"
            if latched
            else ""
        )

    def emergency_stop(self) -> None:
        """Abort everything, switch every output off and release the switch matrix.

        The running operation is aborted; the worker gets up to 0.5 s to leave the instrument,
        then ``backend.shutdown()`` runs from the UI thread regardless (and once more when the
        worker has unwound, if it had not). The bench stays connected with every output off.
        """
        self.estop_count += 1
        session = self.session
        running = self.runner.busy
        if session is not None:
            session.crossbar.emergency_stop()  # latched: the running operation shows no result
            self._set_latched(True)
        self.runner.abort()
        if session is None:
            self.log("EMERGENCY STOP: no bench connected", "warning")
            return
        stopped = self.runner.wait_worker(0.5) if running else True
        self._shutdown_backend(session)
        if not stopped:  # shut down again once the worker has unwound

            def again(_name: str, _outcome: str) -> None:
                self.runner.finished.disconnect(again)
                self._shutdown_backend(session)

            self.runner.finished.connect(again)
        self.log(
            "EMERGENCY STOP: every output off, switch matrix released"
            + ("" if stopped else " (the running operation is being aborted)"),
            "error",
        )
        self.chooser.set_status("EMERGENCY STOP — outputs off; acknowledge to go on", "#c00000")

    def acknowledge_stop(self) -> None:
        """Acknowledge a latched emergency stop: operations are accepted again (outputs stay
        off until the next operation switches them on)."""
        session = self.session
        if session is not None:
            session.crossbar.reset_emergency_stop()
            self._show_connected()
        self._set_latched(False)
        self.log("Emergency stop acknowledged: operations allowed again (outputs are off)")

    @staticmethod
    def _shutdown_backend(session: BenchSession) -> None:
        try:
            session.backend.shutdown()  # never raises by contract
        except Exception:  # noqa: BLE001 - belt and braces for third-party backends
            pass

    # -- instruments -----------------------------------------------------------------------------
    def discover_instruments(self, visa_library: str = "") -> bool:
        """List the VISA resources and the AD2s this computer sees, with each one's identity
        (``*IDN?`` through the 6487 driver), on the worker thread; the result goes to the log
        and to :attr:`last_discovery`. On a connected simulated bench the twins' identities."""
        from gui.bench_info import discover, format_identities, session_identities

        session = self.session

        def run(ctx: TaskContext):
            if session is not None and session.is_simulated:
                ctx.message("Asking the simulated bench's instruments for their identity…")
                return session_identities(session)
            ctx.message("Listing VISA resources and AD2 devices…")
            return discover(visa_library)

        def done(found) -> None:
            self.last_discovery = found
            for line in format_identities(found):
                self.log(line)
            from gui.bench_info import show_identities

            show_identities(self, found)

        return self.run_task(
            Task(
                "Discover instruments",
                run,
                on_done=done,
                on_error=lambda e: self.log(f"Instrument discovery failed: {e}", "error"),
                uses_bench=False,
            )
        )

    def identify_bench(self) -> bool:
        """Ask the connected bench's instruments for their identity (``*IDN?``, AD2 serial)."""
        if self.session is None:
            self.log("Connect a bench first.", "warning")
            return False
        return self.discover_instruments()

    def _open_example_bench_dialog(self) -> None:
        target, _ = QFileDialog.getSaveFileName(
            self,
            "Copy the example bench file to",
            str(Path(self.settings.last_dir("bench")) / "my_bench.toml"),
            "Bench files (*.toml)",
        )
        if target:
            self.open_example_bench(target)

    def open_example_bench(self, target: str | Path) -> Path:
        """Copy the example real-instrument bench file to ``target`` and choose it (edit its
        resource names — Bench ▸ Discover instruments lists them — then Connect)."""
        out = Path(target)
        shutil.copyfile(example_bench_path(), out)
        self.chooser.set_bench(str(out))
        self.settings.set_last_dir("bench", out)
        self.log(
            f"Example bench copied to {out}: set keithley_resource and ad2_serial to your "
            "instruments (Bench ▸ Discover instruments), then Connect"
        )
        return out

    def _export_data_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Data file", str(self.settings.data_dir), "Data files (*.h5 *.hdf5)"
        )
        if not path:
            return
        out = QFileDialog.getExistingDirectory(
            self, "Export into folder", self.settings.last_dir("export")
        )
        if out:
            self.export_data_file(path, out)

    def export_data_file(self, path: str | Path, out_dir: str | Path) -> list[Path]:
        """Write what a recorded data file holds as files (:func:`gui.export.export_data_file`)."""
        from gui.export import export_data_file

        try:
            if self.session is not None and self.session.datastore is not None:
                self.session.datastore.flush()
            written = export_data_file(path, out_dir)
        except (OSError, ValueError) as exc:
            self.log(f"Export of {path}: {exc}", "error")
            return []
        self.settings.set_last_dir("export", Path(out_dir) / "x")
        self.log(f"Exported {len(written)} file(s) from {Path(path).name} to {out_dir}", "ok")
        return written

    # -- settings / close ------------------------------------------------------------------------
    def _choose_data_dir(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Data folder", str(self.settings.data_dir))
        if d:
            self.settings.data_dir = d
            self.log(f"Data folder: {d} (used from the next connection)")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        """Abort running work, shut the bench down (outputs off), save settings."""
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """What closing the window does (idempotent)."""
        if self._closed:
            return
        self._closing = True
        for p in self.panels:
            try:
                p.save_settings()
            except Exception:  # noqa: BLE001 - never block closing
                pass
        self.settings.bench = self.chooser.bench() or "sim"
        self.settings.set("bench/profile", self.chooser.chosen_profile())
        self.settings.sync()
        session = self.session
        if self.runner.busy:
            self.runner.abort()
        self.runner.stop(10.0)
        if session is not None:
            close_session(session)
            self.session = None
        self._closed = True


# ------------------------------------------------------------------------------------------------


def _initial_size() -> tuple[int, int]:
    """1400×900, or the available screen if that is smaller (never below :data:`MIN_SIZE`)."""
    screen = QGuiApplication.primaryScreen()
    w, h = 1400, 900
    if screen is not None:
        avail = screen.availableGeometry()
        w, h = min(w, avail.width()), min(h, avail.height())
    return max(w, MIN_SIZE[0]), max(h, MIN_SIZE[1])


def create_app(argv: Sequence[str] | None = None) -> QApplication:
    """The QApplication (reused if one exists)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
        app.setOrganizationName("perovskite-xbar")
        app.setApplicationName("xbar-gui")
    return app  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xbar gui", description="Open the crossbar lab GUI.")
    add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Open the window (or take screenshots) with parsed ``args``; returns an exit code."""
    app = create_app()
    if args.screenshots:
        from gui.screenshots import take_screenshots

        paths = take_screenshots(
            args.screenshots,
            bench=args.bench,
            data_dir=args.data_dir,
            iv_data=args.iv_data,
            size=args.size,
        )
        for p in paths:
            print(p)
        return 0 if paths else 1
    window = MainWindow(bench=args.bench, data_dir=args.data_dir)
    window.show()
    if not args.no_connect:
        window.connect_bench(args.bench)
    return int(app.exec())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gui.app [--bench sim|FILE] [--screenshots DIR]``."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
