"""``xbar program``: program-and-verify a conductance map, resumable from its data file.

Examples::

    xbar program --bench sim --targets map.csv --data runs/prog.h5
    xbar program --bench sim --targets map.csv --data runs/prog.h5 --resume   # after a fault

``--targets``: a ``.csv`` (rows × columns of the bench's array, numbers in S; ``nan`` or an
empty field leaves a cell alone) or a ``.npy`` (float array of that shape; loaded without
pickle). Every target must be > 0 S and readable by a verify read (G·0.2 V within the bench's
read current limit).

Every initial read and every pulse + verify read goes to ``/records`` (``program-verify``) of
``--data`` as it is made. If the run stops (instrument fault, compliance, Ctrl-C, a crash),
``--resume`` reads that file, skips the cells whose last verify read is within ``--tol`` of
their target, and programs the rest, appending to the same file (a file left open by a crashed
run is recovered). Without ``--resume`` an existing data file is refused, so two runs are not
mixed by accident; ``--resume`` on a missing file starts from scratch (so a retry loop
``until xbar program --resume ...; do sleep 60; done`` works).

Exit codes: 0 the map run completed (stuck or non-converged cells are reported, not failures),
1 an instrument fault / compliance stopped it (resume later), 2 bad input (before the bench is
opened).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crossbar.programming import DEFAULTS, converged_cells

from ..errors import UserError
from ._common import add_command, open_crossbar
from .sweep import add_bench_arguments, data_path, finite, integer, load_bench, read_limit

if TYPE_CHECKING:
    from crossbar.config import BenchConfig

__all__ = ["load_targets", "register", "run"]

_V_VERIFY = float(DEFAULTS["v_read"])  # V, verify reads


SUMMARY = "program-and-verify a conductance map (resumable from its data file)"
"""``xbar program``'s line in ``xbar --help``."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "program", SUMMARY, __doc__)
    p.add_argument(
        "--targets",
        required=True,
        metavar="MAP.csv|MAP.npy",
        help="target conductances (S), the array's shape; nan = leave alone",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run recorded in --data: skip the cells already converged",
    )
    p.add_argument(
        "--tol",
        default=str(DEFAULTS["tol"]),
        help=f"relative tolerance (0..1, default {DEFAULTS['tol']})",
    )
    p.add_argument(
        "--max-pulses",
        default=str(DEFAULTS["max_pulses"]),
        help=f"pulse budget per cell (default {DEFAULTS['max_pulses']})",
    )
    p.add_argument(
        "--v-max",
        default=str(DEFAULTS["v_max"]),
        help=f"largest pulse amplitude, V (default {DEFAULTS['v_max']})",
    )
    add_bench_arguments(p, "data file (HDF5; default xbar-out/program-<bench>.h5)")
    p.set_defaults(func=run)


def _parse_csv(path: Path) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"--targets {path}: not a text CSV file") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        row = []
        for colno, field in enumerate(line.split(","), start=1):
            f = field.strip()
            if f == "" or f.lower() == "nan":
                row.append(np.nan)
                continue
            try:
                row.append(float(f))
            except ValueError:
                raise UserError(
                    f"--targets {path}: line {lineno}, column {colno}: {f[:40]!r} is not a "
                    "number (conductance in S, or nan to leave the cell alone)"
                ) from None
        rows.append(row)
    if not rows:
        raise UserError(f"--targets {path}: no rows (empty file)")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise UserError(
            f"--targets {path}: rows have different numbers of columns {sorted(widths)}"
        )
    return np.array(rows, dtype=float)


def _parse_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise UserError(f"--targets {path}: refused ({exc}); save a plain float array") from None
    except (OSError, EOFError) as exc:
        raise UserError(f"--targets {path}: not a readable .npy file ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        kind = getattr(arr, "dtype", type(arr).__name__)
        raise UserError(f"--targets {path}: expected a real number array, got {kind}")
    return np.asarray(arr, dtype=float)


def load_targets(path: str | Path, cfg: BenchConfig) -> np.ndarray:
    """Target map (rows, cols) S from a .csv or .npy, checked against the bench (UserError)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--targets {path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        t = _parse_csv(path)
    elif suffix == ".npy":
        t = _parse_npy(path)
    else:
        raise UserError(f"--targets {path}: unknown format {suffix!r}; give a .csv or .npy file")
    if t.shape != cfg.shape:
        raise UserError(
            f"--targets {path}: shape {'x'.join(map(str, t.shape))} does not match the "
            f"{cfg.shape[0]}x{cfg.shape[1]} array of bench {cfg.name!r}"
        )
    bad = np.isinf(t)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise UserError(f"--targets {path}: cell ({r}, {c}) is infinite")
    valid = np.isfinite(t)
    if not valid.any():
        raise UserError(f"--targets {path}: every cell is nan, nothing to program")
    neg = valid & (t <= 0)
    if neg.any():
        r, c = np.argwhere(neg)[0]
        raise UserError(
            f"--targets {path}: cell ({r}, {c}) = {t[r, c]:g} S; conductances must be > 0 S "
            "(nan leaves a cell alone)"
        )
    g_max = read_limit(cfg) / _V_VERIFY
    high = valid & (t > g_max)
    if high.any():
        r, c = np.argwhere(high)[0]
        raise UserError(
            f"--targets {path}: cell ({r}, {c}) = {t[r, c]:g} S is beyond what a verify read "
            f"at {_V_VERIFY:g} V can measure on bench {cfg.name!r} (<= {g_max:.3g} S; "
            "conductances are in S, e.g. 1e-5 for 10 µS)"
        )
    return t


def run(args: argparse.Namespace) -> int:
    from crossbar.datastore import DataStoreError, read_records

    cfg = load_bench(args)
    targets = load_targets(args.targets, cfg)
    tol = finite(args.tol, "--tol", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    max_pulses = integer(args.max_pulses, "--max-pulses", lo=1, hi=100_000)
    v_max = finite(args.v_max, "--v-max", lo=0.0, lo_open=True, hi=cfg.limits.max_voltage, unit="V")
    data = data_path(args, cfg, "program")
    wanted = {(int(r), int(c)) for r, c in np.argwhere(np.isfinite(targets))}
    skip: set[tuple[int, int]] = set()
    resumed = False
    if data.exists():
        if not args.resume:
            raise UserError(
                f"--data {data} exists: add --resume to continue that run (cells already "
                "converged are skipped), or give another file"
            )
        try:
            records = read_records(data)
        except (DataStoreError, OSError, KeyError, ValueError) as exc:
            raise UserError(f"--data {data}: cannot resume from it ({exc})") from None
        skip = converged_cells(records, targets, tol=tol)
        resumed = True
    meta = {"operation": "program", "targets": str(args.targets), "tol": tol}
    with open_crossbar(cfg, datafile=data, recover=resumed, flush_every=1, **meta) as xb:
        if not args.json:
            start = (
                f"resuming {data}: {len(skip)} of {len(wanted)} cells already converged"
                if resumed
                else f"programming {len(wanted)} cells; data -> {data}"
            )
            print(start, flush=True)
        report = xb.program_map(targets, skip=skip, tol=tol, max_pulses=max_pulses, v_max=v_max)
    done = converged_cells(read_records(data), targets, tol=tol)
    summary = {
        "bench": cfg.name,
        "target_cells": len(wanted),
        "resumed": resumed,
        "skipped_converged": len(skip),
        "programmed": len(report.cells),
        "converged_this_run": report.n_converged,
        "stuck": report.n_stuck,
        "stuck_cells": [list(c) for c in report.stuck_cells()],
        "pulses": report.total_pulses,
        "converged_total": len(done & wanted),
        "not_converged": sorted([list(c) for c in wanted - done]),
        "data": str(data),
    }
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{report.summary()}")
        print(
            f"map: {summary['converged_total']} of {len(wanted)} target cells converged "
            f"(within {tol:g}); data -> {data}"
        )
    return 0
