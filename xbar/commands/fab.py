"""``xbar fab history|suggest|grid``: Bayesian optimisation of fabrication (METHODS section 4).

``xbar fab history [--data DIR] [--conditions FILE] --out history.csv``
    Joins conditions.csv (perovskite, nw_length, nw_diameter, pb_ed, ag_thickness; units such as
    1.5um, 200nm, 15min are parsed; precursors MAI/FAI/MABr map to MAPbI3/FAPbI3/MAPbBr3) with the
    usability of each raw file computed by METHODS section 1. The reported_* columns are not used.
    Exit 2 if any row's file is missing or does not calibrate (the others are still written).

``xbar fab suggest --history FILE -k K [--grid FILE] [--seed S] [--json]``
    Fits the GP (RBF kernel) to the history and prints the next K fabrications chosen by
    Expected Improvement over the whole grid, with predicted mean, std and EI.

``xbar fab grid [--grid FILE] [--json]``
    Prints the grid's levels and size.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xbar.commands.calibrate import add_calibration_options, options_from_args
from xbar.errors import UserError

from ._common import int_at_least


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fab",
        help="suggest the next fabrications by Bayesian optimisation (METHODS section 4)",
        description=__doc__.split("\n\n", 1)[1].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fsub = p.add_subparsers(dest="fab_command", metavar="ACTION", required=True)

    h = fsub.add_parser("history", help="build the history table from conditions.csv + raw files")
    h.add_argument(
        "--data",
        default=".",
        metavar="DIR",
        help="folder of the raw I-V files and conditions.csv (default: current directory)",
    )
    h.add_argument(
        "--conditions", metavar="FILE", help="conditions table (default: DIR/conditions.csv)"
    )
    h.add_argument("--out", required=True, metavar="FILE", help="history CSV to write")
    add_calibration_options(h)
    h.set_defaults(func=run_history)

    s = fsub.add_parser("suggest", help="the next K fabrications by Expected Improvement")
    s.add_argument("--history", required=True, metavar="FILE", help="history CSV")
    s.add_argument(
        "-k", type=int_at_least(1), default=1, metavar="K", help="suggestions (default 1)"
    )
    s.add_argument(
        "--grid", metavar="FILE", help="grid file (JSON or TOML); default grid if absent"
    )
    s.add_argument("--seed", type=int, default=0, help="seed of the GP fit (default 0)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=run_suggest)

    g = fsub.add_parser("grid", help="print the grid's levels and size")
    g.add_argument(
        "--grid", metavar="FILE", help="grid file (JSON or TOML); default grid if absent"
    )
    g.add_argument("--json", action="store_true", help="print JSON")
    g.set_defaults(func=run_grid)


def _load_grid(path: str | None):
    from calibration.fabrication import DEFAULT_GRID, FabricationInputError, read_grid

    if path is None:
        return DEFAULT_GRID
    try:
        return read_grid(path)
    except FabricationInputError as exc:
        raise UserError(str(exc)) from exc


def run_history(args: argparse.Namespace) -> int:
    from calibration.fabrication import FabricationInputError, build_history, write_history

    data = Path(args.data)
    conditions = Path(args.conditions) if args.conditions else data / "conditions.csv"
    if not conditions.is_file():
        raise UserError(f"{conditions}: no conditions table (use --data DIR or --conditions FILE)")
    try:
        built = build_history(conditions, data, options_from_args(args))
    except FabricationInputError as exc:
        raise UserError(str(exc)) from exc
    for _name, message in built.failures:
        print(f"xbar fab history: error: {message}", file=sys.stderr)
    try:
        write_history(args.out, built.history, built.details)
    except OSError as exc:
        raise UserError(f"{args.out}: cannot write ({exc.strerror})") from exc
    u = built.history.usability
    summary = f"{len(u)} rows" + (f", U {u.min():.4f} … {u.max():.4f}" if len(u) else "")
    print(f"wrote {args.out}: {summary}")
    return 2 if built.failures else 0


def run_suggest(args: argparse.Namespace) -> int:
    from calibration.fabrication import FabricationInputError, read_history, suggest

    grid = _load_grid(args.grid)
    try:
        history = read_history(args.history)
    except FabricationInputError as exc:
        raise UserError(str(exc)) from exc
    try:
        out = suggest(history, args.k, grid, seed=args.seed)
    except ValueError as exc:
        raise UserError(f"{Path(args.history).name}: {exc}") from exc
    best = float(history.usability.max())
    if args.json:
        doc = {
            "grid_size": grid.size,
            "history_rows": len(history),
            "best_usability": best,
            "suggestions": [s.as_dict() for s in out],
        }
        print(json.dumps(doc, indent=1))
        return 0
    print(f"grid: {grid.describe()}")
    print(f"history: {len(history)} rows from {history.source}, best U = {best:.4f}")
    head = [
        "#",
        "perovskite",
        "length (um)",
        "diameter (nm)",
        "Pb ED (min)",
        "Ag (nm)",
        "mean U",
        "std U",
        "EI",
    ]
    body = [
        [
            str(n),
            s.conditions.perovskite,
            f"{s.conditions.nw_length_um:g}",
            f"{s.conditions.nw_diameter_nm:g}",
            f"{s.conditions.pb_ed_min:g}",
            f"{s.conditions.ag_thickness_nm:g}",
            f"{s.mean:.4f}",
            f"{s.std:.4f}",
            f"{s.ei:.3e}",
        ]
        for n, s in enumerate(out, start=1)
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    for row in [head, ["-" * w for w in widths], *body]:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    return 0


def run_grid(args: argparse.Namespace) -> int:
    grid = _load_grid(args.grid)
    if args.json:
        print(json.dumps({"size": grid.size, "levels": grid.to_dict()}, indent=1))
        return 0
    print(f"grid: {grid.describe()}")
    for name, levels in grid.to_dict().items():
        print(f"  {name:16s} {', '.join(f'{x:g}' if isinstance(x, float) else x for x in levels)}")
    return 0
