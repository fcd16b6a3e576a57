"""Shared fixtures: the real device data folder, headless Qt, the GUI main window, and the
``--bench FILE`` option of the tests marked ``hardware`` (skipped, with the reason, without
it: ``python -m pytest -m hardware --bench my-bench.toml`` runs them on a real bench)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_IV = REPO.parent / "shared" / "data" / "perovskite_iv"
NO_BENCH = (
    "needs a bench: run `python -m pytest -m hardware --bench FILE` with a real bench's TOML "
    "(tests marked hardware; `--bench sim` runs them on the simulated bench)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench",
        default=None,
        metavar="FILE",
        help="bench TOML (or 'sim') for the tests marked hardware; without it they are skipped",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``hardware`` are skipped, with the reason, unless ``--bench`` is given."""
    if config.getoption("--bench") is not None:
        return
    skip = pytest.mark.skip(reason=NO_BENCH)
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def hardware_bench(request: pytest.FixtureRequest) -> str:
    """The ``--bench`` the hardware tests run on (skipped without one)."""
    bench = request.config.getoption("--bench")
    if bench is None:
        pytest.skip(NO_BENCH)
    return str(bench)


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
