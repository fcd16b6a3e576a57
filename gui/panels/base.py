"""What every panel shares: access to the application (session, task runner, log, settings)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from PyQt6.QtWidgets import QWidget

if TYPE_CHECKING:
    from gui.backend_chooser import BenchSession
    from gui.settings import Settings
    from gui.workers import Task, TaskRunner


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

    def session_changed(self, session: BenchSession | None) -> None:
        """A bench was connected (session) or disconnected (None)."""

    def busy_changed(self, busy: bool) -> None:
        """An operation started (True) or ended (False)."""

    def save_settings(self) -> None:
        """Store the panel's options (window closing)."""
