"""Shared fixtures: the real device data folder, headless Qt and the GUI main window."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_IV = REPO.parent / "shared" / "data" / "perovskite_iv"


@pytest.fixture(scope="session")
def shared_iv_dir() -> Path:
    """The real I-V exports at ../shared/data/perovskite_iv (skipped where absent)."""
    if not SHARED_IV.is_dir():
        pytest.skip(f"real device data folder {SHARED_IV} is absent")
    return SHARED_IV


@pytest.fixture(scope="session")
def shared_iv_files(shared_iv_dir: Path) -> list[Path]:
    """The 30 real .xlsx device files."""
    return sorted(shared_iv_dir.glob("*.xlsx"))


def _main_window(qtbot, tmp_path: Path, *, connect: bool):
    from gui.testing import open_main_window  # Qt only for the tests that ask for a window

    w = open_main_window(tmp_path, connect=connect)
    qtbot.addWidget(w)
    return w


@pytest.fixture
def window(qtbot, tmp_path: Path):
    """The main window connected to the built-in simulated bench (settings and data files under
    ``tmp_path``); shut down after the test."""
    w = _main_window(qtbot, tmp_path, connect=True)
    yield w
    w.shutdown()


@pytest.fixture
def offline_window(qtbot, tmp_path: Path):
    """The main window without a bench (calibration needs none); shut down after the test."""
    w = _main_window(qtbot, tmp_path, connect=False)
    yield w
    w.shutdown()
