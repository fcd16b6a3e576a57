"""The ``xbar`` command line.

Subcommands live one per module in :mod:`xbar.commands`; each module defines
``register(subparsers)`` which adds its parser and sets ``func`` (a callable taking the parsed
namespace and returning an exit code).  Modules are discovered, so adding a command is adding a
file.

Exit codes: 0 success, 1 a run failed (instrument fault, aborted), 2 bad input (files, configs,
arguments), 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import xbar.commands
from crossbar.backend import OperationAborted
from instruments.errors import InstrumentError, SafetyLimitError

from .errors import UserError


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="xbar",
        description="Drive, calibrate, simulate and compute on a perovskite-memristor crossbar.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(xbar.commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"xbar.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xbar``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UserError, SafetyLimitError) as exc:
        print(f"xbar {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except InstrumentError as exc:
        print(f"xbar {args.command}: instrument fault: {exc} (outputs switched off)", file=sys.stderr)
        return 1
    except OperationAborted as exc:
        print(f"xbar {args.command}: aborted: {exc} (outputs switched off)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"xbar {args.command}: interrupted; outputs switched off", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
