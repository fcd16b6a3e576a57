"""``xbar bench NAME [--json]``: run one benchmark module from :mod:`bench`.

Each module ``bench/NAME.py`` defines ``DESCRIPTION`` (one line), optionally
``add_arguments(parser)``, and ``run(args) -> list[bench._report.Row]``.

The modules import what they measure (torch, the simulated instruments), so registering the
command imports none of them: ``DESCRIPTION`` is read from the module's source, and the module is
imported when its sub-command is parsed (``xbar bench NAME ...``, ``--help`` included).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
from pathlib import Path

import bench


def _modules() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")
    )


def _description(name: str) -> str:
    """The module's ``DESCRIPTION`` string literal, read without importing it (else ``name``)."""
    source = (Path(bench.__path__[0]) / f"{name}.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "DESCRIPTION" for t in node.targets
        ):
            try:
                return str(ast.literal_eval(node.value))
            except ValueError:  # not a literal: the help line falls back to the name
                break
    return name


def _lazy_parser_class(base: type[argparse.ArgumentParser]) -> type[argparse.ArgumentParser]:
    """A parser class like ``base`` whose benchmark module is imported, and its
    ``add_arguments`` applied, the first time the parser parses."""

    class BenchParser(base):  # type: ignore[misc, valid-type]
        module_name: str | None = None

        def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
            if self.module_name is not None:
                module = importlib.import_module(self.module_name)
                self.module_name = None
                if hasattr(module, "add_arguments"):
                    module.add_arguments(self)
            return super().parse_known_args(args, namespace)

    return BenchParser


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print a table (or --json)")
    bsub = p.add_subparsers(
        dest="bench_name",
        metavar="NAME",
        required=True,
        parser_class=_lazy_parser_class(type(p)),
    )
    for name in _modules():
        bp = bsub.add_parser(name, help=_description(name))
        bp.add_argument("--json", action="store_true", help="print the rows as a JSON list")
        bp.module_name = f"bench.{name}"
        bp.set_defaults(func=_runner(f"bench.{name}"))


def _runner(module_name: str):
    def run(args: argparse.Namespace) -> int:
        from bench._report import emit

        rows = importlib.import_module(module_name).run(args)
        print(emit(rows, args.json))
        return 0

    return run
