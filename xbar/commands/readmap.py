"""``xbar read-map``: read every cell's conductance, each read written to the data file as made.

Example::

    xbar read-map --bench sim --biasing v/3 --v-read 0.2 --data runs/map.h5 --csv runs/map.csv

Cells are read one by one at ``--v-read`` V (|V| ≤ the bench's ``[limits] max_read_voltage``)
with the unselected lines held per ``--biasing``; each read goes to ``/records`` (operation
``read``) of ``--data`` at once. ``--csv`` also writes the map (rows × columns, S) at the end.

A read whose source hits its current limit is recorded with its compliance flag and stops the
map (``ComplianceError``, exit 1): a clamped current is no conductance, and a cell conducting
that much (a short) needs a look before anything else is applied. Instrument faults stop the
map with every output off (exit 1); bad arguments are refused before the bench is opened
(exit 2). Output: the map in µS (or ``--json``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from ._common import add_command, open_crossbar
from .sweep import (
    add_bench_arguments,
    beyond_bench_limit,
    data_path,
    finite,
    load_bench,
    parse_biasing,
    read_limit,
)

__all__ = ["register", "run", "write_map_csv"]


SUMMARY = "read every cell's conductance, written to the data file as read"
"""``xbar read-map``'s line in ``xbar --help``."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "read-map", SUMMARY, __doc__)
    p.add_argument("--v-read", default="0.2", help="read voltage, V (default 0.2)")
    p.add_argument(
        "--biasing", default="v/3", help="unselected lines: v/3 (default), v/2, ground, float"
    )
    p.add_argument("--csv", metavar="OUT.csv", help="also write the map (S) as CSV")
    add_bench_arguments(p, "data file (HDF5, appended; default xbar-out/read-map-<bench>.h5)")
    p.set_defaults(func=run)


def write_map_csv(path: Path, g: np.ndarray) -> Path:
    """The map (rows × columns, S) as CSV, 17 significant digits (reads back exactly)."""
    lines = [",".join(repr(float(x)) for x in row) for row in np.asarray(g, dtype=float)]
    path.write_text("\n".join(lines) + "\n")
    return path


def run(args: argparse.Namespace) -> int:
    cfg = load_bench(args)
    v_read = finite(args.v_read, "--v-read", unit="V")
    limit = cfg.limits.max_read_voltage
    if v_read == 0:
        raise UserError("--v-read 0 V: must be non-zero (G = I / V)")
    if abs(v_read) > limit:
        raise beyond_bench_limit(cfg, "max_read_voltage", "--v-read", v_read)
    biasing = parse_biasing(args.biasing)
    read_limit(cfg)  # a bench that cannot read at all is refused here
    csv_path = None
    if args.csv:
        csv_path = Path(args.csv)
        if csv_path.is_dir():
            raise UserError(f"--csv {csv_path}: is a directory, give a .csv file")
        try:
            csv_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"--csv {csv_path}: cannot create its folder ({exc.strerror})"
            ) from None
    data = data_path(args, cfg, "read-map")
    meta = {"operation": "read-map", "v_read": v_read, "biasing": biasing.value}
    with open_crossbar(cfg, datafile=data, flush_every=1, **meta) as xb:
        g = xb.read_map(v_read=v_read, biasing=biasing)
    if csv_path is not None:
        try:
            write_map_csv(csv_path, g)
        except OSError as exc:
            raise UserError(f"--csv {csv_path}: cannot write ({exc.strerror})") from None
    summary = {
        "bench": cfg.name,
        "v_read": v_read,
        "biasing": biasing.value,
        "cells": int(g.size),
        "g_min_s": float(np.nanmin(g)),
        "g_median_s": float(np.nanmedian(g)),
        "g_max_s": float(np.nanmax(g)),
        "data": str(data),
        "csv": None if csv_path is None else str(csv_path),
        "conductance_s": g.tolist(),
    }
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print(
        f"read {g.size} cells on bench {cfg.name!r} at {v_read:g} V ({biasing.value}); "
        f"G (µS), rows x columns:"
    )
    for row in g * 1e6:
        print(" ".join(f"{x:8.3f}" for x in row))
    print(
        f"G min {summary['g_min_s']:.3g} S, median {summary['g_median_s']:.3g} S, "
        f"max {summary['g_max_s']:.3g} S; data -> {data}"
        + (f"; csv -> {csv_path}" if csv_path else "")
    )
    return 0
