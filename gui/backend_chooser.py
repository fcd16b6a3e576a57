"""Choose and open a bench: the built-in simulated bench (default) or a bench TOML file.

The GUI never builds a backend itself: :func:`open_session` calls
:func:`lab.open_backend` with the bench's configuration (``"sim"`` or the file's, with the
simulated device profile chosen in the window) and wraps the backend in a
:class:`crossbar.core.Crossbar` recording to a new :class:`crossbar.datastore.DataStore` in the
data folder. This module does not import ``sim_backends``: the profile names come from
:func:`lab.simulated_profiles`.

:class:`BenchChooser` is the window's bench bar: which bench, Connect / Disconnect / Switch
(switching closes the open bench first), the simulated device profile, a SIMULATED banner (a
simulated bench never looks like a real one) and the connection status.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from crossbar.backend import CrossbarBackend
from crossbar.core import Crossbar
from crossbar.datastore import DataStore

__all__ = [
    "BenchChooser",
    "BenchSession",
    "close_session",
    "example_bench_path",
    "open_session",
    "simulated_profiles",
]

SIM = "sim"
FROM_FILE = ""  # the profile entry "as in the bench file"


def simulated_profiles() -> tuple[str, ...]:
    """The simulated device profiles a bench may use (``[simulation] profile``)."""
    from lab import simulated_profiles as names

    return names()


def example_bench_path() -> Path:
    """The example bench file for the real instruments (``crossbar/benches``)."""
    from crossbar.config import builtin_bench_path

    return builtin_bench_path(SIM).with_name("example_hardware.toml")


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

    @property
    def profile(self) -> str | None:
        """The simulated device profile (None on a real bench or when unknown)."""
        if not self.is_simulated:
            return None
        return self.config_dict.get("simulation", {}).get("profile")

    def describe(self) -> str:
        """``"sim (SIMULATED, profile optimized, 10×10)"`` / ``"lab-1 (real instruments,
        10×10)"``: what the status line, the log and exports say about the bench."""
        rows, cols = self.shape
        if self.is_simulated:
            prof = f", profile {self.profile}" if self.profile else ""
            return f"{self.name} (SIMULATED{prof}, {rows}×{cols})"
        return f"{self.name} (real instruments, {rows}×{cols})"


def open_session(
    bench: str | Path = SIM,
    data_dir: str | Path | None = None,
    *,
    backend: CrossbarBackend | None = None,
    profile: str | None = None,
) -> BenchSession:
    """Open ``bench`` ("sim" or a TOML path) and a new data file in ``data_dir``.

    ``profile``: the simulated device profile to use instead of the file's ``[simulation]
    profile`` (ignored on a real-instrument bench; None or "": the file's). ``backend``
    short-circuits the bench configuration (tests with a test double). ``data_dir=None``
    records nothing. Raises whatever the bench layer raises (``BenchConfigError`` for a bad
    file or profile, instrument errors for an unreachable bench).
    """
    bench = str(bench)
    config_dict: dict = {}
    name = bench
    if backend is None:
        from crossbar.config import BenchConfigError, load_bench_config
        from lab import open_backend

        config = load_bench_config(bench)
        if profile and config.backend != "instruments":
            if profile not in simulated_profiles():
                allowed = ", ".join(simulated_profiles())
                raise BenchConfigError(f"unknown device profile {profile!r}: allowed {allowed}")
            config = dataclasses.replace(
                config, simulation=dataclasses.replace(config.simulation, profile=profile)
            )
        config_dict = config.to_dict()
        name = config.name
        backend = open_backend(config)
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
    """The bench bar: bench selector, Connect / Disconnect / Switch, the simulated device
    profile, the SIMULATED banner and the status light (two rows).

    Signals: ``connect_requested(bench)`` with "sim" or a TOML path (also when another bench
    is connected: the window switches); ``disconnect_requested()``.
    """

    connect_requested = pyqtSignal(str)
    disconnect_requested = pyqtSignal()

    def __init__(
        self,
        bench: str = SIM,
        last_dir: str = "",
        parent: QWidget | None = None,
        *,
        profile: str = "",
    ):
        super().__init__(parent)
        self._last_dir = last_dir or str(example_bench_path().parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setVerticalSpacing(4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Bench:"))
        self.kind = QComboBox()
        self.kind.addItems(["Simulated (built-in)", "Bench file (TOML)"])
        self.kind.setToolTip("The built-in simulated bench, or a bench description file")
        row.addWidget(self.kind)
        self.path = QLineEdit()
        self.path.setPlaceholderText("path/to/bench.toml")
        self.path.setMinimumWidth(90)
        row.addWidget(self.path, 1)
        self.browse = QPushButton("Browse…")
        row.addWidget(self.browse)
        self.connect_button = QPushButton("Connect")
        self.connect_button.setMinimumWidth(
            self.connect_button.fontMetrics().horizontalAdvance("Switch bench") + 24
        )
        row.addWidget(self.connect_button)
        grid.addLayout(row, 0, 0)
        info = QHBoxLayout()
        self.banner = QLabel()
        self.banner.setToolTip(
            "Simulated benches answer from a circuit simulation of the array: no instrument "
            "is driven and no device is measured"
        )
        info.addWidget(self.banner)
        self.profile_label = QLabel("Device profile:")
        info.addWidget(self.profile_label)
        self.profile = QComboBox()
        self.profile.setToolTip(
            "The simulated device profile (sim_backends.profiles); takes effect at the next "
            "connection (Switch bench)"
        )
        self.profile.addItem("as in the file", FROM_FILE)
        for name in simulated_profiles():
            self.profile.addItem(name, name)
        info.addWidget(self.profile)
        self.status = QLabel()
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        info.addWidget(self.status, 1)
        grid.addLayout(info, 1, 0)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.browse.clicked.connect(self._browse)
        self.connect_button.clicked.connect(self._clicked)
        self.path.textChanged.connect(self._update_button)
        self.profile.currentIndexChanged.connect(self._update_button)
        self._connected: tuple[str, str] | None = None  # (bench, profile) connected
        self._busy = False
        self._simulated: bool | None = None
        self.set_bench(bench, profile)
        self.set_simulated(None)
        self.set_status("disconnected", "grey")

    # -- state -----------------------------------------------------------------------------------
    def bench(self) -> str:
        """ "sim" or the chosen TOML path."""
        if self.kind.currentIndex() == 0:
            return SIM
        return self.path.text().strip()

    def chosen_profile(self) -> str:
        """The device profile chosen ("" = the bench file's own)."""
        return str(self.profile.currentData() or "")

    def set_profile(self, profile: str) -> None:
        """Choose ``profile`` ("" = as in the file; an unknown name is ignored)."""
        i = self.profile.findData(profile or FROM_FILE)
        if i >= 0:
            self.profile.setCurrentIndex(i)

    def set_bench(self, bench: str, profile: str | None = None) -> None:
        if bench and bench != SIM:
            self.kind.setCurrentIndex(1)
            self.path.setText(bench)
        else:
            self.kind.setCurrentIndex(0)
        if profile is not None:
            self.set_profile(profile)
        self._kind_changed()

    def set_connected(self, connected: bool, profile: str | None = None) -> None:
        """The window connected the chosen bench or disconnected. ``profile``: the simulated
        device profile the bench runs (shown in the chooser)."""
        if connected and profile:
            self.profile.blockSignals(True)
            self.set_profile(profile)
            self.profile.blockSignals(False)
        self._connected = (self.bench(), self.chosen_profile()) if connected else None
        self._update_button()

    def is_switch(self) -> bool:
        """True when a bench is connected and another one (or another profile) is chosen."""
        return self._connected is not None and self._connected != (
            self.bench(),
            self.chosen_profile(),
        )

    def set_busy(self, busy: bool) -> None:
        """Disable Connect/Disconnect while an operation runs."""
        self._busy = busy
        self._update_button()

    def set_status(self, text: str, colour: str = "grey") -> None:
        self.status.setText(f"<span style='color:{colour}; font-size:14pt'>●</span> {text}")
        self.status.setToolTip(text)

    def set_simulated(self, simulated: bool | None, profile: str | None = None) -> None:
        """The banner: SIMULATED (amber) with the profile, REAL INSTRUMENTS (blue), or empty
        when no bench is connected."""
        self._simulated = simulated
        self.profile.setVisible(simulated is not False)
        self.profile_label.setVisible(simulated is not False)
        if simulated is None:
            self.banner.setText("")
            self.banner.setStyleSheet("")
            self.banner.setVisible(False)
            return
        self.banner.setVisible(True)
        if simulated:
            self.banner.setText(" SIMULATED BENCH ")
            self.banner.setStyleSheet(
                "QLabel { background: #ffd24d; color: #3d2c00; font-weight: bold; "
                "border: 1px solid #b38600; border-radius: 3px; padding: 1px 6px }"
            )
        else:
            self.banner.setText(" REAL INSTRUMENTS ")
            self.banner.setStyleSheet(
                "QLabel { background: #1f4e9c; color: white; font-weight: bold; "
                "border-radius: 3px; padding: 1px 6px }"
            )

    # -- slots -----------------------------------------------------------------------------------
    def _kind_changed(self) -> None:
        file_mode = self.kind.currentIndex() == 1
        self.path.setEnabled(file_mode)
        self.browse.setEnabled(file_mode)
        self._update_button()

    def _update_button(self) -> None:
        if self._connected is None:
            text = "Connect"
        elif self.is_switch():
            text = "Switch bench"
        else:
            text = "Disconnect"
        self.connect_button.setText(text)
        self.connect_button.setEnabled(not self._busy)
        for w in (self.kind, self.profile):
            w.setEnabled(not self._busy)
        file_mode = self.kind.currentIndex() == 1
        self.path.setEnabled(file_mode and not self._busy)
        self.browse.setEnabled(file_mode and not self._busy)

    def browse_start(self) -> str:
        """Where Browse… opens: the folder last used, else the example benches' folder."""
        return self._last_dir

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Bench description", self.browse_start(), "Bench files (*.toml);;All files (*)"
        )
        if path:
            self.path.setText(path)
            self._last_dir = str(Path(path).parent)

    def _clicked(self) -> None:
        if self._connected is not None and not self.is_switch():
            self.disconnect_requested.emit()
        else:
            self.connect_requested.emit(self.bench())
