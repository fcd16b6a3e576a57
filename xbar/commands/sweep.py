"""``xbar sweep``: cyclic I-V sweeps of one cell, every point written to the data file as measured.

Example::

    xbar sweep --bench sim --cell 0,0 --vmax 6 --vmin -6 --step 0.1 --cycles 3 \\
        --compliance 25e-6 --data runs/cell00.h5

Each cycle goes 0 → +vmax → 0 → vmin → 0 V in ``step`` V with the 6487's current limit at
``compliance`` A (snapped up to the instrument's 25 µA / 250 µA / 2.5 mA / 25 mA). The points go
to ``/iv/<sweep>`` and ``/records`` of ``--data`` (HDF5, appended; a run that stops on an
instrument fault keeps every point measured before it).

Compliance is normal in an I-V sweep (it is what limits the SET current), so a point in
compliance is recorded with its flag and the sweep continues; the summary counts them.

Every argument is checked against the bench before the bench is opened (exit 2, one line);
an instrument fault stops the sweep with every output off (exit 1, one line).

This module also holds the argument helpers shared by ``xbar read-map`` and ``xbar program``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from crossbar.backend import Biasing
from crossbar.config import BenchConfig, range_text
from instruments.errors import SafetyLimitError
from instruments.keithley6487_limits import (
    CURRENT_LIMITS,
    NPLC_RANGE,
    check_range_compliance,
    largest_limit_within,
    snap_compliance,
)
from instruments.sweep_plan import cyclic_points

from ..errors import UserError
from ._common import add_bench_option, add_command, bench_config, open_crossbar

__all__ = [
    "MAX_CYCLES",
    "MAX_POINTS_PER_CYCLE",
    "add_bench_arguments",
    "beyond_bench_limit",
    "finite",
    "load_bench",
    "parse_biasing",
    "parse_cell",
    "read_limit",
    "register",
    "run",
]

#: Largest number of points in one cycle (≈ 7 min at 1 PLC on the 6487).
MAX_POINTS_PER_CYCLE = 20_000
#: Largest number of cycles of one sweep command.
MAX_CYCLES = 100_000


# ------------------------------------------------------------------ shared argument helpers


def add_bench_arguments(p: argparse.ArgumentParser, data_help: str) -> None:
    """``--bench``, ``--profile``, ``--seed``, ``--data`` and ``--json``."""
    add_bench_option(p)
    p.add_argument(
        "--profile",
        dest="sim_profile",
        metavar="NAME",
        help="simulated benches: device profile (optimized|typical|poor)",
    )
    p.add_argument("--seed", type=str, default=None, help="simulated benches: seed (int >= 0)")
    p.add_argument("--data", metavar="FILE.h5", help=data_help)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def finite(
    text: str,
    option: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    unit: str = "",
) -> float:
    """``text`` as a finite float within the bounds, else UserError naming the option."""
    try:
        x = float(text)
    except (TypeError, ValueError):
        raise UserError(f"{option} {text!r} is not a number") from None
    unit = f" {unit}" if unit else ""
    span = range_text(lo, hi, lo_open, hi_open, unit)
    if not math.isfinite(x):
        raise UserError(f"{option} {text}: must be a finite number{span}")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise UserError(f"{option} {x:g}{unit}: must be{span}")
    if hi is not None and (x > hi or (hi_open and x == hi)):
        raise UserError(f"{option} {x:g}{unit}: must be{span}")
    return x


def integer(text: str, option: str, *, lo: int, hi: int | None = None) -> int:
    """``text`` as an int in [lo, hi], else UserError naming the option."""
    try:
        n = int(str(text).strip())
    except ValueError:
        raise UserError(f"{option} {text!r} is not an integer") from None
    if n < lo or (hi is not None and n > hi):
        within = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise UserError(f"{option} {n}: must be an integer {within}")
    return n


def parse_cell(text: str, cfg: BenchConfig, option: str = "--cell") -> tuple[int, int]:
    """``"R,C"`` (0-based) within the bench's array, else UserError naming ``option``."""
    parts = str(text).split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        r, c = (int(p.strip()) for p in parts)
    except ValueError:
        raise UserError(f"{option} {text!r} is not R,C (two integers, 0-based)") from None
    rows, cols = cfg.shape
    if not (0 <= r < rows and 0 <= c < cols):
        raise UserError(
            f"{option} {r},{c} is outside the {rows}x{cols} array of bench {cfg.name!r} "
            f"(rows 0..{rows - 1}, columns 0..{cols - 1})"
        )
    return r, c


def parse_biasing(text: str) -> Biasing:
    """A biasing scheme name, else UserError listing the allowed ones."""
    try:
        return Biasing.parse(text)
    except ValueError:
        allowed = ", ".join(b.value for b in Biasing)
        raise UserError(f"--biasing {text!r}: allowed {allowed}") from None


def load_bench(args: argparse.Namespace) -> BenchConfig:
    """The bench of ``--bench`` with ``--profile``/``--seed`` applied (UserError if bad)."""
    seed = None if args.seed is None else integer(args.seed, "--seed", lo=0)
    return bench_config(args.bench, profile=args.sim_profile, seed=seed)


def read_limit(cfg: BenchConfig) -> float:
    """Current limit (A) the bench reads cells with: the largest 6487 limit the bench allows
    (instrument benches), or ``max_compliance`` (physics)."""
    if cfg.backend == "physics":
        return cfg.limits.max_compliance
    limit = largest_limit_within(cfg.limits.max_compliance)
    if limit is None:
        raise UserError(
            f"bench {cfg.name!r}: [limits] max_compliance = {cfg.limits.max_compliance:g} A is "
            f"below the 6487's smallest current limit ({CURRENT_LIMITS[0]:g} A): no cell can "
            "be read on this bench"
        )
    return limit


#: How a refusal names each ``[limits]`` key, and its unit.
_LIMIT_TEXT = {
    "max_voltage": ("limit |V| <=", "V"),
    "max_read_voltage": ("read limit |V| <=", "V"),
    "max_compliance": ("limit", "A"),
}


def beyond_bench_limit(cfg: BenchConfig, key: str, option: str, value: float) -> SafetyLimitError:
    """The error refusing ``option`` = ``value`` (V or A) beyond the bench's ``[limits] key``
    (``max_voltage``, ``max_read_voltage`` or ``max_compliance``), naming the bench file."""
    limit = getattr(cfg.limits, key)
    words, unit = _LIMIT_TEXT[key]
    return SafetyLimitError(
        f"{option} {value:g} {unit} refused: beyond the bench {words} {limit:g} {unit} "
        f"([limits] {key} of {cfg.source})",
        setting=option,
        value=value,
        limit=limit,
    )


def data_path(args: argparse.Namespace, cfg: BenchConfig, what: str) -> Path:
    """``--data`` or ``xbar-out/<what>-<bench>.h5``; refuses a directory."""
    path = Path(args.data) if args.data else Path("xbar-out") / f"{what}-{cfg.name}.h5"
    if path.is_dir():
        raise UserError(f"--data {path}: is a directory, give a .h5 file")
    return path


# ------------------------------------------------------------------ the command


SUMMARY = "cyclic I-V sweep of one cell, written to the data file as measured"
"""``xbar sweep``'s line in ``xbar --help``."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "sweep", SUMMARY, __doc__)
    p.add_argument("--cell", required=True, metavar="R,C", help="cell to sweep (0-based)")
    p.add_argument("--vmax", default="6", help="positive turning point, V (> 0; default 6)")
    p.add_argument("--vmin", default="-6", help="negative turning point, V (<= 0; default -6)")
    p.add_argument("--step", default="0.1", help="staircase step, V (> 0; default 0.1)")
    p.add_argument("--cycles", default="1", help="number of cycles (>= 1; default 1)")
    p.add_argument(
        "--compliance",
        default="25e-6",
        help="current limit, A (default 25e-6; snapped up to the 6487's limits)",
    )
    p.add_argument("--nplc", default="1", help="integration time, PLC (0.01..6; default 1)")
    p.add_argument(
        "--biasing",
        default="ground",
        help="unselected lines: ground (default), float, v/2, v/3, cols-2v/3 (V >= 0 only)",
    )
    add_bench_arguments(p, "data file (HDF5, appended; default xbar-out/sweep-<bench>.h5)")
    p.set_defaults(func=run)


def _voltages(args: argparse.Namespace, cfg: BenchConfig) -> tuple[np.ndarray, float]:
    """The cycle's voltage list and the compliance, checked against the bench (UserError /
    SafetyLimitError before anything is opened)."""
    vmax = finite(args.vmax, "--vmax", lo=0.0, lo_open=True, unit="V")
    vmin = finite(args.vmin, "--vmin", hi=0.0, unit="V")
    step = finite(args.step, "--step", lo=0.0, lo_open=True, unit="V")
    limit = cfg.limits.max_voltage
    for v, option in ((vmax, "--vmax"), (vmin, "--vmin")):
        if abs(v) > limit:
            raise beyond_bench_limit(cfg, "max_voltage", option, v)
    n = (vmax + abs(vmin)) * 2 / step + 1
    if n > MAX_POINTS_PER_CYCLE:
        raise UserError(
            f"--step {step:g} V gives {n:.0f} points per cycle (from --vmin {vmin:g} to --vmax "
            f"{vmax:g} V); at most {MAX_POINTS_PER_CYCLE} allowed: use a larger step"
        )
    try:
        voltages = cyclic_points(vmax, vmin, step)
    except ValueError as exc:
        raise UserError(f"--vmax/--vmin/--step: {exc}") from None
    compliance = finite(args.compliance, "--compliance", lo=0.0, lo_open=True, unit="A")
    if compliance > cfg.limits.max_compliance:
        raise beyond_bench_limit(cfg, "max_compliance", "--compliance", compliance)
    if cfg.backend != "physics":
        try:
            snapped = snap_compliance(compliance, cfg.limits.max_compliance, "--compliance")
        except ValueError as exc:  # SafetyLimitError is a ValueError too: same message
            if isinstance(exc, SafetyLimitError):
                raise
            raise UserError(str(exc)) from None
        try:
            check_range_compliance(max(vmax, abs(vmin)), snapped, f"--compliance {compliance:g} A")
        except ValueError as exc:
            raise UserError(str(exc)) from None
    return voltages, compliance


def run(args: argparse.Namespace) -> int:
    cfg = load_bench(args)
    row, col = parse_cell(args.cell, cfg)
    voltages, compliance = _voltages(args, cfg)
    cycles = integer(args.cycles, "--cycles", lo=1, hi=MAX_CYCLES)
    nplc = finite(args.nplc, "--nplc", lo=NPLC_RANGE[0], hi=NPLC_RANGE[1], unit="PLC")
    biasing = parse_biasing(args.biasing)
    if biasing.positive_only and voltages.min() < 0:
        raise UserError(
            f"--biasing {biasing.value} is for V >= 0 only (at V < 0 the unselected cells would "
            "see +2|V|/3 and SET): use --vmin 0 or another biasing"
        )
    data = data_path(args, cfg, "sweep")
    meta = {"operation": "sweep", "cell": f"{row},{col}", "cycles": cycles}
    with open_crossbar(cfg, datafile=data, flush_every=1, **meta) as xb:
        assert xb.datastore is not None
        before = set(xb.datastore.file["iv"])
        result = xb.iv_sweep(
            row, col, voltages, compliance=compliance, cycles=cycles, nplc=nplc, biasing=biasing
        )
        name = sorted(set(xb.datastore.file["iv"]) - before)
    n_comp = int(np.count_nonzero(result.compliance))
    summary = {
        "bench": cfg.name,
        "cell": [row, col],
        "points_per_cycle": int(voltages.size),
        "cycles": cycles,
        "points": int(result.current.size),
        "compliance_points": n_comp,
        "compliance_limit_a": result.compliance_limit,
        "v_max": float(voltages.max()),
        "v_min": float(voltages.min()),
        "data": str(data),
        "sweep": f"/iv/{name[0]}" if name else None,
    }
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(
            f"swept cell ({row}, {col}) on bench {cfg.name!r}: {cycles} cycle(s) x "
            f"{voltages.size} points, {summary['v_min']:g} .. {summary['v_max']:g} V; "
            f"{n_comp} point(s) in compliance at {result.compliance_limit:g} A"
        )
        print(f"data -> {data} {summary['sweep'] or ''}".rstrip())
    return 0
