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
    for pkg in [
        "instruments",
        "crossbar",
        "inference",
        "calibration",
        "lab",
        "sim_backends",
        "bench",
    ]:
        for path in (REPO / pkg).rglob("*.py"):
            text = path.read_text()
            if "import PyQt6" in text or "from PyQt6" in text or "pyqtgraph" in text:
                offenders.append(str(path))
    assert offenders == []


def test_every_package_is_under_the_contracts() -> None:
    """A new top-level package cannot slip past the contracts: each one in the repository is a
    root package of import-linter and sits in a layer (import-linter's ``exhaustive`` option
    only applies to layers inside a container, so it is checked here)."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    linter = config["tool"]["importlinter"]
    roots = set(linter["root_packages"])
    layered = set()
    for contract in linter["contracts"]:
        if contract["type"] == "layers":
            for layer in contract["layers"]:
                layered |= {p.strip() for p in layer.replace("|", ":").split(":")}
    packages = {
        p.parent.name
        for p in REPO.glob("*/__init__.py")
        if p.parent.name not in {"tests", "docs", "scripts"}
    }
    assert packages == roots == layered
    found = config["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {f.rstrip("*") for f in found} == packages  # and each one is installed
