"""Choose and open a bench: the built-in simulated bench (default) or a bench TOML file.

The GUI never builds a backend itself: :func:`open_session` calls
:func:`lab.open_backend` with ``"sim"`` or the file's path and wraps the backend in a
:class:`crossbar.core.Crossbar` recording to a new :class:`crossbar.datastore.DataStore` in the
data folder. This module does not import ``sim_backends``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from crossbar.backend import CrossbarBackend
from crossbar.core import Crossbar
from crossbar.datastore import DataStore

__all__ = ["BenchChooser", "BenchSession", "close_session", "open_session"]

SIM = "sim"


@dataclass
class BenchSession:
    """An open bench: backend, the recording crossbar facade and its data file."""

    bench: str  # "sim" or the TOML path
    name: str  # the bench's name from its configuration
    backend: CrossbarBackend
    crossbar: Crossbar
    datastore: DataStore | None
    data_path: Path | None
    config_dict: dict = field(default_factory=dict)
    closed: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        return self.crossbar.shape

    @property
    def max_read_voltage(self) -> float:
        """Largest read voltage the bench allows (V)."""
        lim = self.config_dict.get("limits", {})
        return float(lim.get("max_read_voltage", 0.3))

    @property
    def max_voltage(self) -> float:
        """The bench's voltage limit (V)."""
        return float(self.backend.limits.max_voltage)

    @property
    def max_compliance(self) -> float:
        """The bench's largest compliance (A)."""
        return float(self.backend.limits.max_compliance)

    @property
    def is_simulated(self) -> bool:
        """True unless the bench drives real instruments (``backend = "instruments"``)."""
        kind = self.config_dict.get("bench", {}).get("backend")
        if kind is not None:
            return kind != "instruments"
        return getattr(self.backend, "sim_handles", None) is not None


def open_session(
    bench: str | Path = SIM,
    data_dir: str | Path | None = None,
    *,
    backend: CrossbarBackend | None = None,
) -> BenchSession:
    """Open ``bench`` ("sim" or a TOML path) and a new data file in ``data_dir``.

    ``backend`` short-circuits the bench configuration (tests with a test double).
    ``data_dir=None`` records nothing. Raises whatever the bench layer raises
    (``BenchConfigError`` for a bad file, instrument errors for an unreachable bench).
    """
    bench = str(bench)
    config_dict: dict = {}
    name = bench
    if backend is None:
        from crossbar.config import load_bench_config
        from lab import open_backend

        config = load_bench_config(bench)
        config_dict = config.to_dict()
        name = config.name
        backend = open_backend(bench)
    else:
        name = getattr(backend, "name", "backend")
    store = None
    path = None
    if data_dir is not None:
        stamp = _dt.datetime.now().strftime("%Y%m%d_%H%M%S_%f")[:-3]
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
        path = Path(data_dir) / f"xbar_{safe}_{stamp}.h5"
        try:
            store = DataStore(
                path,
                metadata={"application": "xbar gui", "bench": bench},
                bench_config=config_dict,
                mode="x",
            )
        except BaseException:
            backend.shutdown()
            raise
    return BenchSession(
        bench=bench,
        name=name,
        backend=backend,
        crossbar=Crossbar(backend, datastore=store),
        datastore=store,
        data_path=path,
        config_dict=config_dict,
    )


def close_session(session: BenchSession) -> None:
    """Outputs off, switch matrix released, data file closed, instruments released (never
    raises)."""
    if session.closed:
        return
    session.closed = True
    try:
        session.crossbar.close()  # shutdown + data file closed
    except Exception:  # noqa: BLE001 - closing must not raise into the UI
        try:
            session.backend.shutdown()
        except Exception:  # noqa: BLE001
            pass
    close = getattr(session.backend, "close", None)  # release instrument sessions, if any
    if callable(close):
        try:
            close()
        except Exception:  # noqa: BLE001
            pass


class BenchChooser(QWidget):
    """Bench selector + Connect button + status light.

    Signals: ``connect_requested(bench)`` with "sim" or a TOML path; ``disconnect_requested()``.
    """

    connect_requested = pyqtSignal(str)
    disconnect_requested = pyqtSignal()

    def __init__(self, bench: str = SIM, last_dir: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._last_dir = last_dir
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Bench:"))
        self.kind = QComboBox()
        self.kind.addItems(["Simulated bench (built-in)", "Bench file (TOML)"])
        self.kind.setToolTip("The built-in simulated bench, or a bench description file")
        lay.addWidget(self.kind)
        self.path = QLineEdit()
        self.path.setPlaceholderText("path/to/bench.toml")
        self.path.setMinimumWidth(220)
        lay.addWidget(self.path, 1)
        self.browse = QPushButton("Browse…")
        lay.addWidget(self.browse)
        self.connect_button = QPushButton("Connect")
        self.connect_button.setMinimumWidth(100)
        lay.addWidget(self.connect_button)
        self.status = QLabel()
        self.status.setMinimumWidth(260)
        lay.addWidget(self.status)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.browse.clicked.connect(self._browse)
        self.connect_button.clicked.connect(self._clicked)
        self._connected = False
        self.set_bench(bench)
        self.set_status("disconnected", "grey")

    # -- state -----------------------------------------------------------------------------------
    def bench(self) -> str:
        """ "sim" or the chosen TOML path."""
        if self.kind.currentIndex() == 0:
            return SIM
        return self.path.text().strip()

    def set_bench(self, bench: str) -> None:
        if bench and bench != SIM:
            self.kind.setCurrentIndex(1)
            self.path.setText(bench)
        else:
            self.kind.setCurrentIndex(0)
        self._kind_changed()

    def set_connected(self, connected: bool) -> None:
        self._connected = connected
        self.connect_button.setText("Disconnect" if connected else "Connect")
        for w in (self.kind, self.path, self.browse):
            w.setEnabled(not connected)
        if not connected:
            self._kind_changed()

    def set_busy(self, busy: bool) -> None:
        """Disable Connect/Disconnect while an operation runs."""
        self.connect_button.setEnabled(not busy)

    def set_status(self, text: str, colour: str = "grey") -> None:
        self.status.setText(f"<span style='color:{colour}; font-size:14pt'>●</span> {text}")
        self.status.setToolTip(text)

    # -- slots -----------------------------------------------------------------------------------
    def _kind_changed(self) -> None:
        file_mode = self.kind.currentIndex() == 1
        self.path.setEnabled(file_mode and not self._connected)
        self.browse.setEnabled(file_mode and not self._connected)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Bench description", self._last_dir, "Bench files (*.toml);;All files (*)"
        )
        if path:
            self.path.setText(path)
            self._last_dir = str(Path(path).parent)

    def _clicked(self) -> None:
        if self._connected:
            self.disconnect_requested.emit()
        else:
            self.connect_requested.emit(self.bench())
