"""Persistent GUI settings (QSettings): last bench, folders, plot options.

Stored under the organisation ``perovskite-xbar`` and application ``xbar-gui`` in the platform's
usual place. Tests (and ``XBAR_GUI_SETTINGS=/path/file.ini``) use an INI file instead, so they
never touch the user's settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QSettings, QStandardPaths

ORGANISATION = "perovskite-xbar"
APPLICATION = "xbar-gui"
ENV_SETTINGS_FILE = "XBAR_GUI_SETTINGS"

DEFAULTS: dict[str, Any] = {
    "bench": "sim",  # "sim" or the path of a bench TOML file
    "data_dir": "",  # "" = default_data_dir()
    "dirs/calibration": "",
    "dirs/models": "",
    "dirs/targets": "",
    "dirs/bench": "",
    "dirs/export": "",
    "dirs/profiles": "",  # deployment profiles (JSON) for the deployment loop
    "bench/profile": "",  # simulated device profile ("" = as in the bench file)
    "plot/iv_log": False,
    "plot/map_quantity": "R",
    "read/v_read": 0.2,
    "read/biasing": "v/3",
}


def default_data_dir() -> Path:
    """Per-user folder for data files (e.g. ``~/.local/share/perovskite-xbar/xbar-gui/data``)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    if not base:
        base = str(Path.home() / ".xbar")
    return Path(base) / "data"


class Settings:
    """Typed access to the GUI's QSettings.

    Args:
        path: an INI file to use instead of the platform store (tests); default: the
            ``XBAR_GUI_SETTINGS`` environment variable if set, else the platform store.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        path = path if path is not None else os.environ.get(ENV_SETTINGS_FILE) or None
        if path is not None:
            self.qsettings = QSettings(str(path), QSettings.Format.IniFormat)
        else:
            self.qsettings = QSettings(ORGANISATION, APPLICATION)

    def get(self, key: str, default: Any = None) -> Any:
        """Value of ``key`` converted to the type of its default."""
        dflt = DEFAULTS.get(key, default)
        raw = self.qsettings.value(key, dflt)
        if isinstance(dflt, bool):
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
        if isinstance(dflt, float):
            try:
                return float(raw)
            except (TypeError, ValueError):
                return dflt
        if isinstance(dflt, int):
            try:
                return int(raw)
            except (TypeError, ValueError):
                return dflt
        return raw if raw is not None else dflt

    def set(self, key: str, value: Any) -> None:
        """Store ``key`` (written at :meth:`sync` or when Qt decides)."""
        self.qsettings.setValue(key, value)

    def sync(self) -> None:
        self.qsettings.sync()

    # -- convenience ---------------------------------------------------------------------------
    @property
    def bench(self) -> str:
        """Last bench: ``"sim"`` or a TOML path."""
        return str(self.get("bench") or "sim")

    @bench.setter
    def bench(self, value: str) -> None:
        self.set("bench", str(value))

    @property
    def data_dir(self) -> Path:
        """Folder of the data files (created when a session starts)."""
        d = str(self.get("data_dir") or "")
        return Path(d) if d else default_data_dir()

    @data_dir.setter
    def data_dir(self, value: str | Path) -> None:
        self.set("data_dir", str(value))

    def last_dir(self, what: str, fallback: str | Path | None = None) -> str:
        """Last folder used for ``what`` ("calibration", "models", "targets", "bench",
        "export", "profiles"); ``fallback`` (default: the home folder) when none was used yet."""
        d = str(self.get(f"dirs/{what}", "") or "")
        if d and Path(d).is_dir():
            return d
        return str(fallback) if fallback is not None else str(Path.home())

    def set_last_dir(self, what: str, path: str | Path) -> None:
        p = Path(path)
        self.set(f"dirs/{what}", str(p if p.is_dir() else p.parent))
