"""The options of the desktop application, shared by ``xbar gui`` and ``python -m gui.app``.

No Qt here: ``xbar --help`` builds these options without loading the GUI.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--bench``, ``--screenshots``, ``--data-dir``, ``--iv-data`` and ``--no-connect``."""
    p.add_argument(
        "--bench",
        default="sim",
        metavar="sim|FILE",
        help="the built-in simulated bench 'sim' (default) or a bench TOML file",
    )
    p.add_argument(
        "--screenshots",
        metavar="DIR",
        help="populate every panel, save a PNG of each into DIR, then exit",
    )
    p.add_argument("--data-dir", metavar="DIR", help="folder for the HDF5 data files")
    p.add_argument(
        "--iv-data",
        metavar="DIR",
        help="I-V files shown in the calibration panel with --screenshots "
        "(default: ../shared/data/perovskite_iv beside the project, if present)",
    )
    p.add_argument("--no-connect", action="store_true", help="do not connect at start")
