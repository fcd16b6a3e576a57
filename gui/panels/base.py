"""What every panel shares: access to the application (session, task runner, log, settings)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PyQt6.QtWidgets import QFileDialog, QHBoxLayout, QScrollArea, QVBoxLayout, QWidget

from gui.workers import Task

if TYPE_CHECKING:
    from gui.backend_chooser import BenchSession
    from gui.settings import Settings
    from gui.workers import TaskContext, TaskRunner


class AppServices(Protocol):
    """The main window as the panels see it."""

    session: BenchSession | None
    runner: TaskRunner
    settings: Settings

    def log(self, text: str, level: str = "info") -> None: ...

    def run_bench_task(self, task: Task) -> bool: ...

    def run_task(self, task: Task) -> bool: ...


class Panel(QWidget):
    """A tab of the main window."""

    title = "panel"

    def __init__(self, app: AppServices, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app

    def side_layout(self, width: int) -> tuple[QHBoxLayout, QScrollArea, QVBoxLayout]:
        """The panel as a scrolling column of controls (at least ``width`` px) on the left
        and room on the right: (the row to add the right-hand part to, the column's scroll
        area, the column's layout)."""
        from gui.widgets import scroll_column

        outer = QHBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        area, column = scroll_column(width)
        outer.addWidget(area, 0)
        return outer, area, column

    def session_changed(self, session: BenchSession | None) -> None:
        """A bench was connected (session) or disconnected (None)."""

    def busy_changed(self, busy: bool) -> None:
        """An operation started (True) or ended (False)."""

    def save_settings(self) -> None:
        """Store the panel's options (window closing)."""

    def start_task(
        self,
        name: str,
        fn: Callable[[TaskContext], Any],
        *,
        failed: str,
        aborted: str | None = None,
        bench: bool = True,
        **callbacks: Any,
    ) -> bool:
        """Run ``fn`` on the worker thread as the operation ``name``: on the connected bench
        (outputs off at the end) unless ``bench`` is False. An error is logged as
        ``"{failed}: {error}"``, an abort as the warning ``aborted``; ``callbacks`` are the
        other :class:`~gui.workers.Task` fields (``on_items``, ``on_done``, ``on_aborted``,
        ``abort_hook``). False if it cannot start now (busy, no bench)."""
        task = Task(
            name,
            fn,
            on_error=lambda exc: self.app.log(f"{failed}: {exc}", "error"),
            uses_bench=bench,
            **callbacks,
        )
        if aborted is not None:
            task.on_aborted = lambda _: self.app.log(aborted, "warning")
        return self.app.run_bench_task(task) if bench else self.app.run_task(task)

    # -- file dialogs starting in the folder last used for ``where`` (see Settings.last_dir) ----
    def ask_open_file(self, title: str, where: str, filters: str) -> str:
        """A file to open, chosen by the user ("" if cancelled)."""
        path, _ = QFileDialog.getOpenFileName(
            self, title, self.app.settings.last_dir(where), filters
        )
        return path

    def ask_open_files(self, title: str, where: str, filters: str) -> list[str]:
        """Files to open, chosen by the user ([] if cancelled)."""
        paths, _ = QFileDialog.getOpenFileNames(
            self, title, self.app.settings.last_dir(where), filters
        )
        return paths

    def ask_save_file(self, title: str, where: str, name: str, filters: str) -> str:
        """A file to write, proposed as ``name`` in the last folder ("" if cancelled)."""
        start = str(Path(self.app.settings.last_dir(where)) / name)
        path, _ = QFileDialog.getSaveFileName(self, title, start, filters)
        return path

    def write_export(self, what: str, write: Callable[[], Path]) -> Path | None:
        """Run ``write()`` (it writes a file and returns its path): the folder is remembered
        for the next export and the log says where ``what`` went; None (logged) if writing
        failed."""
        try:
            out = Path(write())
        except OSError as exc:
            self.app.log(f"Cannot write {what}: {exc}", "error")
            return None
        self.app.settings.set_last_dir("export", out)
        self.app.log(f"{what} exported to {out}", "ok")
        return out

    def export_dialog(
        self, what: str, name: str, filters: str, export: Callable[[str], object]
    ) -> None:
        """Ask where to write ``what`` (proposed as ``name`` in the last export folder), then
        ``export(path)``."""
        path = self.ask_save_file(f"Export {what}", "export", name, filters)
        if path:
            export(path)
