"""``xbar check --bench FILE [--json]``: is this bench ready? One line per item, pass or fail
and what to do.

Items, in order: VISA library (NI-VISA or pyvisa-py), the 6487's ``*IDN?`` and error queue,
its line frequency, its interlock, zero check, the Analog Discovery 2 (WaveForms runtime and
device), a walk of every switch-matrix line at 0.1 V, and one cell read at <= 0.1 V
(``--cell R,C``, ``--read-voltage V``). An item that needs a failed one is skipped. Exit 0 only
when every item passed, 1 when one failed, 2 for bad input (bench file, option).

On a simulated bench, ``--fault NAME`` (repeatable) injects a fault to see how it shows:
interlock-open, no-ad2, no-keithley, keithley-error, open-row.
"""

from __future__ import annotations

import argparse
import json

from ..errors import UserError
from ._common import add_bench_option, add_command, bench_config, check_bench
from .sweep import parse_cell

__all__ = ["register", "run"]


SUMMARY = "bench self-test: VISA, 6487, interlock, AD2, switch matrix, one read"
"""``xbar check``'s line in ``xbar --help``."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "check", SUMMARY, __doc__, raw=True)
    add_bench_option(p)
    p.add_argument("--cell", default="0,0", help="cell R,C read by the last item (default 0,0)")
    p.add_argument(
        "--read-voltage", default="0.1", help="that read's voltage, V, 0 < V <= 0.1 (default 0.1)"
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="inject a fault on a simulated bench (repeatable): interlock-open, no-ad2, "
        "no-keithley, keithley-error, open-row",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = bench_config(args.bench)
    cell = parse_cell(args.cell, cfg)
    try:
        volts = float(args.read_voltage)
    except ValueError:
        raise UserError(f"--read-voltage {args.read_voltage!r}: not a number (V)") from None
    report = check_bench(cfg, cell=cell, read_voltage=volts, faults=args.fault)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        for item in report.items:
            print(item.line())
        n = len(report.items)
        if report.passed:
            print(f"bench {report.bench!r}: ready ({n} items checked)")
        else:
            print(f"bench {report.bench!r}: NOT ready: failed {', '.join(report.failed)}")
    return 0 if report.passed else 1
