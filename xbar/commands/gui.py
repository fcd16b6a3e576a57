"""``xbar gui [--bench sim|FILE] [--screenshots DIR]``: the desktop application.

Opens the PyQt6 window connected to the built-in simulated bench (default) or to the bench a
TOML file describes. ``--screenshots DIR`` drives every panel into a populated state on the
bench (simulated benches only: it sweeps, programs and characterises cells), saves one PNG per
panel and characterisation module into DIR (window ``--size WxH``, default 1500x960) and exits.
Qt is imported only when the command runs, so ``xbar --help`` never loads it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gui.arguments import add_arguments
from xbar.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gui",
        help="open the desktop application (I-V, crossbar, calibration, inference, "
        "characterisation)",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossbar.config import BenchConfigError, load_bench_config

    try:
        config = load_bench_config(args.bench)
    except BenchConfigError as exc:
        raise UserError(str(exc)) from None
    if args.screenshots and config.backend == "instruments":
        raise UserError(
            f"--screenshots drives the bench (sweeps to ±6 V, programming): refused on the "
            f"real-instrument bench {config.name!r}; use a simulated bench (e.g. --bench sim)"
        )
    if args.iv_data and not Path(args.iv_data).is_dir():
        raise UserError(f"--iv-data {args.iv_data}: no such folder")
    from gui.app import run as run_gui  # Qt is loaded here, not at `xbar --help`

    return run_gui(args)
