"""The options of the desktop application, shared by ``xbar gui`` and ``python -m gui.app``.

No Qt here: ``xbar --help`` builds these options without loading the GUI.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "window_size"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--bench``, ``--screenshots``, ``--size``, ``--data-dir``, ``--iv-data`` and
    ``--no-connect``."""
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
    p.add_argument(
        "--size",
        type=window_size,
        default=(1500, 960),
        metavar="WxH",
        help="window size of --screenshots in pixels (default 1500x960; at least 1024x700)",
    )


def window_size(text: str) -> tuple[int, int]:
    """``"1024x700"`` → (1024, 700); at least 1024×700, at most 7680×4320."""
    try:
        w, h = (int(x) for x in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected WIDTHxHEIGHT, e.g. 1024x700"
        ) from None
    if not (1024 <= w <= 7680 and 700 <= h <= 4320):
        raise argparse.ArgumentTypeError(
            f"{text!r}: the window is laid out for 1024x700 up to 7680x4320 pixels"
        )
    return w, h
