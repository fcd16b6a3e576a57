"""``xbar bench NAME [--json]``: run one benchmark module from :mod:`bench`.

Each module ``bench/NAME.py`` defines ``DESCRIPTION`` (one line), optionally
``add_arguments(parser)``, and ``run(args) -> list[bench._report.Row]``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import bench
from bench._report import emit


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print a table (or --json)")
    bsub = p.add_subparsers(dest="bench_name", metavar="NAME", required=True)
    for name in _modules():
        module = importlib.import_module(f"bench.{name}")
        bp = bsub.add_parser(name, help=getattr(module, "DESCRIPTION", name))
        bp.add_argument("--json", action="store_true", help="print the rows as a JSON list")
        if hasattr(module, "add_arguments"):
            module.add_arguments(bp)
        bp.set_defaults(func=_runner(module))


def _runner(module):
    def run(args: argparse.Namespace) -> int:
        rows = module.run(args)
        print(emit(rows, args.json))
        return 0

    return run
