"""The layering contracts of DEVELOPERS.md, checked by import-linter on every test run."""

from __future__ import annotations

import shutil
import subprocess
import sys

from conftest import REPO


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(
        __import__("pathlib").Path(sys.executable).parent / "lint-imports"
    )
    out = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    # Every configured contract was checked and kept (4 contracts in pyproject.toml).
    assert "Contracts: 4 kept, 0 broken." in out.stdout, out.stdout


def test_no_qt_outside_gui_in_sources() -> None:
    """Belt and braces: no source file outside gui/ mentions a Qt binding import."""
    offenders = []
    for pkg in ["instruments", "crossbar", "inference", "calibration", "sim_backends", "bench"]:
        for path in (REPO / pkg).rglob("*.py"):
            text = path.read_text()
            if "import PyQt6" in text or "from PyQt6" in text or "pyqtgraph" in text:
                offenders.append(str(path))
    assert offenders == []
