"""Run long operations off the UI thread.

One :class:`TaskRunner` per main window owns one worker :class:`~PyQt6.QtCore.QThread` (the same
thread for every task, so instrument sessions are always used from one thread) and runs one
:class:`Task` at a time on it. A task is a plain function ``fn(ctx)`` that receives a
:class:`TaskContext`; from the worker thread it may

* ``ctx.progress(p)`` — a :class:`crossbar.progress.Progress`; the latest is shown in the status bar;
* ``ctx.emit(item)`` — live data (sweep points, cell reads, BO iterations …), buffered and handed
  to the task's ``on_items`` on the UI thread in batches at most every ``update_interval_ms``
  (50 ms by default), so plots are redrawn at a bounded rate however fast points arrive;
* ``ctx.should_abort()`` / ``ctx.check()`` — poll the abort request (``check`` raises
  :class:`TaskAborted`).

Outcomes reach the UI thread as queued signals: ``on_done(result)``, ``on_aborted(partial)``
(after :class:`TaskAborted` or the crossbar layer's ``OperationAborted``, whose ``partial`` is
passed on), ``on_error(exc)``. :meth:`TaskRunner.abort` sets the context's flag and calls the
task's ``abort_hook`` (e.g. ``Crossbar.abort``) from the UI thread.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PyQt6.QtCore import (
    QCoreApplication,
    QEventLoop,
    QObject,
    QThread,
    QTimer,
    pyqtSignal,
    pyqtSlot,
)

from crossbar.backend import OperationAborted
from crossbar.progress import Progress

__all__ = ["Task", "TaskAborted", "TaskContext", "TaskRunner"]


class TaskAborted(RuntimeError):
    """Raised inside a task (by :meth:`TaskContext.check`) to stop it on request."""

    def __init__(self, message: str = "aborted", *, partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial


class TaskContext:
    """The worker side of a running task (thread-safe)."""

    def __init__(self) -> None:
        self._abort = threading.Event()
        self._lock = threading.Lock()
        self._items: list[Any] = []
        self._progress: Progress | None = None
        self._message: str | None = None

    # -- called from the worker thread -------------------------------------------------------
    def progress(self, progress: Progress) -> None:
        """Report progress (the protocol of every long operation: pass ``ctx.progress`` as the
        operation's ``progress``)."""
        with self._lock:
            self._progress = progress

    def emit(self, item: Any) -> None:
        """Queue one live-data item for the UI (delivered in batches)."""
        with self._lock:
            self._items.append(item)

    def message(self, text: str) -> None:
        """Replace the status text of the running operation."""
        with self._lock:
            self._message = str(text)

    def should_abort(self) -> bool:
        """True once an abort was requested."""
        return self._abort.is_set()

    def check(self) -> None:
        """Raise :class:`TaskAborted` when an abort was requested."""
        if self._abort.is_set():
            raise TaskAborted()

    # -- called from the UI thread -----------------------------------------------------------
    def request_abort(self) -> None:
        self._abort.set()

    def drain(self) -> tuple[list[Any], Progress | None, str | None]:
        with self._lock:
            items, self._items = self._items, []
            prog, msg = self._progress, self._message
            self._message = None
        return items, prog, msg


@dataclass
class Task:
    """One long operation. Callbacks run on the UI thread."""

    name: str
    fn: Callable[[TaskContext], Any]
    on_items: Callable[[list[Any]], None] | None = None
    on_done: Callable[[Any], None] | None = None
    on_aborted: Callable[[Any], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    abort_hook: Callable[[], None] | None = None  # called on the UI thread by TaskRunner.abort
    uses_bench: bool = True
    ctx: TaskContext = field(default_factory=TaskContext)
    # filled in by the runner
    outcome: str = ""  # "done" | "aborted" | "error"
    payload: Any = None
    seconds: float = 0.0


def limit_native_threads(n: int | None = None) -> None:
    """Cap the BLAS/OpenMP thread pools of every loaded native library at ``n`` threads
    (default: CPUs − 1, at least 1) so a computation on the worker thread always leaves a core
    for the UI thread (pools spinning on every core starve it for 100+ ms on a 2-core machine).
    Applied before every task (libraries loaded since are covered too)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return
    threadpool_limits(n if n is not None else max(1, (os.cpu_count() or 2) - 1))


class _Executor(QObject):
    """Lives in the worker thread; runs one task per :meth:`run` call."""

    finished = pyqtSignal(object)

    def __init__(self) -> None:
        super().__init__()
        self.idle = threading.Event()
        self.idle.set()

    @pyqtSlot(object)
    def run(self, task: Task) -> None:
        t0 = time.perf_counter()
        try:
            limit_native_threads()
            task.payload = task.fn(task.ctx)
            task.outcome = "done"
        except (TaskAborted, OperationAborted) as exc:
            task.outcome, task.payload = "aborted", getattr(exc, "partial", None)
        except BaseException as exc:  # noqa: BLE001 - every failure is reported to the UI
            exc.__dict__.setdefault("gui_traceback", traceback.format_exc())
            task.outcome, task.payload = "error", exc
        task.seconds = time.perf_counter() - t0
        self.idle.set()
        self.finished.emit(task)


class TaskRunner(QObject):
    """Runs :class:`Task` objects one at a time on a dedicated worker thread.

    Signals: ``started(name)``, ``progress(Progress)``, ``message(text)``,
    ``finished(name, outcome)`` with outcome "done", "aborted" or "error", ``busy_changed``.
    """

    started = pyqtSignal(str)
    progress = pyqtSignal(object)  # crossbar.progress.Progress
    message = pyqtSignal(str)
    finished = pyqtSignal(str, str)
    busy_changed = pyqtSignal(bool)
    _submit = pyqtSignal(object)

    def __init__(self, parent: QObject | None = None, *, update_interval_ms: int = 50) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("xbar-worker")
        self._executor = _Executor()
        self._executor.moveToThread(self._thread)
        self._submit.connect(self._executor.run)
        self._executor.finished.connect(self._on_finished)
        self._thread.start()
        self._task: Task | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(int(update_interval_ms))
        self._timer.timeout.connect(self._drain)
        self._stopped = False

    # -- state ---------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while a task runs (until its outcome callbacks have run)."""
        return self._task is not None

    @property
    def current(self) -> Task | None:
        """The running task, or None."""
        return self._task

    @property
    def update_interval_ms(self) -> int:
        return self._timer.interval()

    # -- control -------------------------------------------------------------------------------
    def submit(self, task: Task) -> bool:
        """Start ``task``; returns False (and does nothing) while another task runs."""
        if self._task is not None or self._stopped:
            return False
        self._task = task
        self._executor.idle.clear()
        self._timer.start()
        self.busy_changed.emit(True)
        self.started.emit(task.name)
        self._submit.emit(task)
        return True

    def abort(self) -> None:
        """Ask the running task to stop (no-op when idle)."""
        task = self._task
        if task is None:
            return
        task.ctx.request_abort()
        if task.abort_hook is not None:
            try:
                task.abort_hook()
            except Exception:  # noqa: BLE001 - an abort must never raise into the UI
                pass

    def wait_worker(self, timeout_s: float) -> bool:
        """Block (without an event loop) until the worker thread is idle; True if it is."""
        return self._executor.idle.wait(timeout_s)

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Process events until the running task's callbacks have run (tests, screenshots)."""
        deadline = time.monotonic() + timeout_s
        while self._task is not None and time.monotonic() < deadline:
            loop = QEventLoop()
            QTimer.singleShot(10, loop.quit)
            loop.exec()
        return self._task is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Abort any task, wait for the worker, and end the thread (window closing)."""
        self._stopped = True
        self.abort()
        self.wait_worker(timeout_s)
        self._timer.stop()
        self._thread.quit()
        self._thread.wait(int(timeout_s * 1000))

    # -- UI-thread internals -------------------------------------------------------------------
    def _drain(self) -> None:
        task = self._task
        if task is None:
            return
        items, prog, msg = task.ctx.drain()
        if prog is not None:
            self.progress.emit(prog)
        if msg is not None:
            self.message.emit(msg)
        if items and task.on_items is not None:
            try:
                task.on_items(items)
            except Exception:  # noqa: BLE001 - a plotting bug must not kill the run
                traceback.print_exc()

    @pyqtSlot(object)
    def _on_finished(self, task: Task) -> None:
        self._drain()
        self._timer.stop()
        self._task = None
        cb = {"done": task.on_done, "aborted": task.on_aborted, "error": task.on_error}[
            task.outcome
        ]
        try:
            if cb is not None:
                cb(task.payload)
            elif task.outcome == "error":
                traceback.print_exception(task.payload)
        finally:
            self.busy_changed.emit(False)
            self.finished.emit(task.name, task.outcome)


def process_events_for(seconds: float) -> None:
    """Run the Qt event loop for ``seconds`` (helper for tests and screenshots)."""
    deadline = time.monotonic() + seconds
    app = QCoreApplication.instance()
    while time.monotonic() < deadline and app is not None:
        loop = QEventLoop()
        QTimer.singleShot(10, loop.quit)
        loop.exec()
