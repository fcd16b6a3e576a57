"""Shared fixtures: the real device data folder and headless Qt."""

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
