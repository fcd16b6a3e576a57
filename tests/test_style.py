"""ruff is part of the test suite: the tree must lint clean."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_ruff_check_clean() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All checks passed" in out.stdout
