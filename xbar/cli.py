"""The ``xbar`` command line.

Subcommands live one per module in :mod:`xbar.commands`; each module defines
``register(subparsers)`` which adds its parser and sets ``func`` (a callable taking the parsed
namespace and returning an exit code).  Modules are discovered, so adding a command is adding a
file. Registering is cheap: a command module imports torch, botorch, sim_backends and Qt only in
the function that runs it, so ``xbar --help`` and ``xbar COMMAND --help`` load none of them.

Exit codes: 0 success, 1 a run failed (instrument fault, aborted), 2 bad input (files, configs,
arguments), 130 interrupted by Ctrl-C. Every failure is reported as ONE line on stderr (no
traceback): argument errors too (``xbar sweep: error: argument --cycles: ...``). Log warnings
and Python warnings raised while a command runs (e.g. a shutdown step that failed on a dead bus)
are collected: after a success they are printed one per line, after a failure they are
summarised in the error line.
A lost connection is reported as such: that instrument could not be switched off.

SIGTERM and SIGHUP (a scheduler stopping the job, a closed terminal or SSH session) are turned
into the same path as Ctrl-C while a command runs: the operation stops, every output is switched
off, the data file is flushed and closed, exit 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import signal
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

import xbar.commands

from .errors import UserError


class _ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (``xbar sweep: error: argument --cycles: ...``, exit 2)
    instead of the usage block; subcommand parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


class _Warnings(logging.Handler):
    """Collects the log warnings of one command (printed by :func:`main`, never as a dump)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(_one_line(record.getMessage()))
        except Exception:  # noqa: BLE001 - a bad log call must not break the command
            self.messages.append(_one_line(str(record.msg)))


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every discovered subcommand."""
    parser = _ArgumentParser(
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
    warnings = _Warnings()
    root = logging.getLogger()
    outer = [h for h in root.handlers if isinstance(h, _Warnings)]  # main() inside a command
    for h in outer:
        root.removeHandler(h)
    root.addHandler(warnings)
    captured = getattr(logging, "_warnings_showwarning", None) is not None
    logging.captureWarnings(True)  # Python warnings (e.g. from torch.load) join the log ones
    try:
        with _stop_signals_interrupt():
            code, message = _run(args)
    finally:
        logging.captureWarnings(captured)
        root.removeHandler(warnings)
        for h in outer:
            root.addHandler(h)
    if message is None:
        for w in warnings.messages:
            print(f"xbar {args.command}: warning: {w}", file=sys.stderr)
        return code
    if warnings.messages:
        n = len(warnings.messages)
        first = warnings.messages[0]
        first = first if len(first) <= 120 else first[:117] + "..."
        message += f" [{n} warning{'s' if n > 1 else ''} logged, first: {first}]"
    print(message, file=sys.stderr)
    return code


class _stop_signals_interrupt:
    """While active (main thread only), SIGTERM/SIGHUP raise KeyboardInterrupt, so the
    operation's cleanup (outputs off, data flushed) runs as for Ctrl-C."""

    _SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))

    def __enter__(self) -> None:
        self._old: dict = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in self._SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, _interrupt)
            except (ValueError, OSError):  # not allowed here (embedded interpreter)
                pass

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _run(args: argparse.Namespace) -> tuple[int, str | None]:
    """Run the command: (exit code, None) or (exit code, the one-line error message)."""
    from crossbar.backend import OperationAborted
    from instruments.errors import ConnectionLost, InstrumentError, SafetyLimitError

    cmd = f"xbar {args.command}"
    try:
        return int(args.func(args) or 0), None
    except (UserError, SafetyLimitError) as exc:
        return 2, f"{cmd}: error: {_one_line(exc)}"
    except ConnectionLost as exc:
        return 1, (
            f"{cmd}: instrument fault: {_one_line(exc)} (the {exc.instrument} could not be "
            "reached to switch it off: check it; every other output switched off)"
        )
    except InstrumentError as exc:
        return 1, f"{cmd}: instrument fault: {_one_line(exc)} (outputs switched off)"
    except OperationAborted as exc:
        return 1, f"{cmd}: aborted: {_one_line(exc)} (outputs switched off)"
    except KeyboardInterrupt as exc:
        why = f" by {exc}" if str(exc) else ""
        return 130, f"{cmd}: interrupted{why}; outputs switched off"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
