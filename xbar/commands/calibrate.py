"""``xbar calibrate FILE… [--json] [--report DIR] [--profile-out DIR] …``: grade devices.

Applies METHODS section 1 to cyclic I-V files (Excel exports, CSV, HDF5 sweeps; directories are
expanded to the supported files inside) and prints, per device, the LCIS, ``L_min``, ``α_nm``,
``σ̂``, ``σ_up`` and the usability ``U``: a table sorted by ``U`` (descending), or with ``--json``
a JSON list with one object per device under exactly the keys
:data:`calibration.batch.JSON_KEYS` (non-finite numbers as ``null``).

``--read-stats`` adds the read-voltage statistics of :mod:`calibration.readstats` at
``--read-voltage`` (default 0.2 V): per branch the cycle-to-cycle σ of ln G, the median G and
the drift per cycle, and the LRS/HRS ratio — as columns of the table and, with ``--json``, as the
keys :data:`calibration.readstats.READ_STATS_KEYS` after the section-1 ones.

A file that cannot be calibrated prints one ``error:`` line on stderr and the batch goes on.
Exit code: 0 when every file calibrated, 2 when any failed (or none was given/found).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from xbar.errors import UserError

from ._common import BENCH_HELP, add_command, int_at_least, make_dir

_HELP = """\
Applies METHODS section 1 to cyclic I-V files (Excel exports, CSV, HDF5 sweeps;
directories are expanded to the supported files inside) and prints per device the
LCIS, L_min, alpha_nm, sigma_hat, sigma_up and the usability U: a table sorted by U
(descending), or with --json a JSON list with one object per device (keys: file,
n_cycles, branch_points, lcis_start_v, lcis_stop_v, lcis_length, l_min, alpha_nm,
n_residuals, sigma_hat, sigma_up, usability; non-finite numbers as null).

--read-stats adds read-voltage statistics (--read-voltage, default 0.2 V): on each
branch of the cycle (hrs_pos: rising to +Vmax, the state the last RESET left; lrs_pos:
back from +Vmax, the SET's state; lrs_neg, hrs_neg: the same below 0 V) the
cycle-to-cycle sigma of ln G, the median G and the drift of ln G per cycle, and the
LRS/HRS ratio at +V; the table shows sigma_HRS, sigma_LRS, on/off and the HRS drift,
--json every figure (keys v_read, sigma_ln_g_<branch>, g_median_<branch>,
drift_per_cycle_<branch>, n_reads_<branch>, n_clamped_<branch>, on_off_ratio).

A file that cannot be calibrated prints one error line on stderr and the batch goes
on. Exit code: 0 when every file calibrated, 2 when any failed (or none was found).

Live: --bench B --cell R,C [--cell R,C ...] sweeps each cell in turn through the
crossbar layer (every point written to --data as measured) and calibrates it; with
several cells the table ends with their median U. The default protocol measures the cell as
the device profiles are defined on an isolated device: 50 ms per point (--point-time; 0 for
the bare --nplc reading), 25 uA compliance on the SET branch with the unselected rows at 0 V
and the unselected columns at 2V/3 (--biasing cols-2v/3: the sensed current is the cell's
alone and its row mates stay below SET), and the RESET branch (V < 0) under v/3 with a
250 uA limit (--reset-biasing, --reset-compliance), so that a cell whose RESET needs more
current than its SET compliance does not stay stuck in the LRS."""


SUMMARY = "grade devices from cyclic I-V files (METHODS section 1 usability)"
"""``xbar calibrate``'s line in ``xbar --help``."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "calibrate", SUMMARY, _HELP, raw=True)
    p.add_argument("files", nargs="*", metavar="FILE", help="I-V files or directories")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--report", metavar="DIR", help="write a PNG per device and a summary CSV")
    p.add_argument(
        "--profile-out", metavar="DIR", help="write a DeviceNoiseProfile JSON per device"
    )
    add_calibration_options(p)
    p.add_argument(
        "--read-stats",
        action="store_true",
        help="add read-voltage statistics: per-branch sigma of ln G, on/off ratio, drift",
    )
    p.add_argument(
        "--read-voltage",
        type=_read_voltage,
        default=0.2,
        metavar="V",
        help="read voltage of --read-stats, 0 < V <= 1 (default 0.2 V)",
    )
    _add_live_options(p)
    p.set_defaults(func=run)


def _add_live_options(p: argparse.ArgumentParser) -> None:
    """The group ``live``: sweep cells of a bench instead of reading files."""
    live = p.add_argument_group(
        "live", "sweep a cell of a bench instead of reading files (e.g. --bench sim --cell 0,0)"
    )
    live.add_argument("--bench", help=BENCH_HELP)
    live.add_argument(
        "--cell",
        type=_cell,
        action="append",
        metavar="R,C",
        help="cell to sweep (0-based); repeat for several cells",
    )
    schemes = ("cols-2v/3", "v/3", "ground", "v/2", "float")
    live.add_argument(
        "--biasing",
        default="cols-2v/3",
        choices=schemes,
        help="unselected lines on the SET branch, V >= 0 (default cols-2v/3: rows 0 V, "
        "columns 2V/3)",
    )
    live.add_argument(
        "--reset-biasing",
        default="v/3",
        choices=schemes,
        help="unselected lines on the RESET branch, V < 0 (default v/3)",
    )
    live.add_argument(
        "--reset-compliance",
        type=float,
        default=250e-6,
        metavar="A",
        help="current limit on the RESET branch, A (default 250e-6)",
    )
    live.add_argument(
        "--point-time",
        type=float,
        default=0.05,
        metavar="S",
        help="time per sweep point, s (settling delay + reading; default 0.05; 0: the bare "
        "reading)",
    )
    live.add_argument("--cycles", type=int, default=10, help="sweep cycles (default 10, >= 2)")
    live.add_argument("--vmax", type=float, default=6.0, help="positive turning point, V")
    live.add_argument("--vmin", type=float, default=-6.0, help="negative turning point, V (<= 0)")
    live.add_argument("--step", type=float, default=0.1, help="staircase step, V (> 0)")
    live.add_argument("--compliance", type=float, default=25e-6, help="current limit, A")
    live.add_argument("--nplc", type=float, default=1.0, help="integration time, PLC")
    live.add_argument(
        "--profile",
        dest="sim_profile",
        metavar="NAME",
        help="simulated benches: device profile (optimized|typical|poor|paper, or a profile JSON)",
    )
    live.add_argument("--seed", type=int, help="simulated benches: seed")
    live.add_argument(
        "--data",
        metavar="FILE.h5",
        help="data file the sweep is written to as measured "
        "(default xbar-out/calibrate-<bench>.h5)",
    )


def add_calibration_options(p: argparse.ArgumentParser) -> None:
    """The METHODS section-1 decisions as options (shared with ``xbar fab history``)."""
    p.add_argument(
        "--tolerated-decreases",
        type=int_at_least(0),
        default=0,
        metavar="N",
        help="non-rises tolerated inside the LCIS (default 0; the authors' code used 2)",
    )
    p.add_argument(
        "--lmin-fraction",
        type=_fraction,
        default=0.35,
        metavar="F",
        help="L_min = ceil(F x branch points), 0 < F <= 1 (default 0.35)",
    )
    p.add_argument(
        "--sigma",
        choices=("up", "hat"),
        default="up",
        help="sigma used in U: the chi-square bound 'up' (default) or the ML estimate 'hat'",
    )


def options_from_args(args: argparse.Namespace):
    """CalibrationOptions from the parsed section-1 options."""
    from calibration.batch import CalibrationOptions

    return CalibrationOptions(
        tolerated_decreases=args.tolerated_decreases,
        l_min_fraction=args.lmin_fraction,
        sigma=args.sigma,
    )


def run(args: argparse.Namespace) -> int:
    from calibration.batch import BatchResult, calibrate_paths
    from calibration.io import find_iv_files

    if args.bench is not None or args.cell is not None:
        if args.files:
            raise UserError("give either FILEs or --bench/--cell (a live sweep), not both")
        batch = BatchResult(devices=_live(args), failures=[])
    else:
        if not args.files:
            raise UserError("give I-V FILEs or directories, or --bench and --cell for a live sweep")
        files = find_iv_files(args.files)
        if not files:
            raise UserError(f"no I-V files found in {', '.join(args.files)}")
        batch = calibrate_paths(files, options_from_args(args), jobs=_jobs())
    for _name, message in batch.failures:
        print(f"xbar calibrate: error: {message}", file=sys.stderr)
    for dev in batch.devices:
        for note in dev.notes:
            print(f"xbar calibrate: note: {dev.name}: {note}", file=sys.stderr)
    devices = batch.sorted_by_usability()

    failed = len(batch.failures)
    if args.profile_out:
        failed += _write_profiles(devices, Path(args.profile_out))
    if args.report and devices:
        from calibration.report import write_report

        make_dir(Path(args.report), "--report {path}: cannot create the directory ({err})")
        paths = write_report(devices, args.report, jobs=_jobs())
        print(f"xbar calibrate: report: {len(paths) - 1} PNG(s) and {paths[-1]}", file=sys.stderr)

    stats = _read_stats(devices, args.read_voltage) if args.read_stats else None
    if args.json:
        rows = [d.to_json_dict() for d in devices]
        for row, st in zip(rows, stats or []):
            row.update(st.to_dict())
        print(json.dumps(rows, indent=1, allow_nan=False))
    else:
        print(format_table(devices, stats))
        if args.cell is not None and len(devices) > 1:
            u = sorted(d.result.usability for d in devices)
            median = (u[(len(u) - 1) // 2] + u[len(u) // 2]) / 2
            print(f"median U over {len(u)} cells: {median:.4f} (min {u[0]:.4f}, max {u[-1]:.4f})")
    if failed:
        print(
            f"xbar calibrate: {failed} of {len(batch.devices) + len(batch.failures)} "
            f"device(s) failed",
            file=sys.stderr,
        )
        return 2
    return 0


#: The live sweep's options passed to calibrate_cell under their own names.
_LIVE_SWEEP_OPTIONS = (
    "cycles", "step", "compliance", "reset_compliance", "nplc", "biasing", "reset_biasing"
)  # fmt: skip


def _live(args: argparse.Namespace):
    """Sweep each ``--cell`` of the bench through the crossbar layer and calibrate it."""
    from calibration.io import CalibrationInputError
    from calibration.live import calibrate_cell

    from ._common import open_crossbar

    cfg, cells = _live_bench(args)
    data = Path(args.data) if args.data else Path("xbar-out") / f"calibrate-{cfg.name}.h5"
    where = ", ".join(f"({r}, {c})" for r, c in cells)
    point_time = args.point_time or None  # 0: the bare reading
    if point_time is not None and not args.nplc / 60 <= point_time <= 999:
        raise UserError(
            f"--point-time {args.point_time:g} s must hold the --nplc {args.nplc:g} reading "
            f"({args.nplc / 60:.4g} s) and be at most 999 s"
        )
    print(
        f"xbar calibrate: sweeping cell(s) {where} on bench {cfg.name!r} ({args.biasing} "
        f"biasing, {args.reset_biasing} below 0 V): {args.cycles} cycles "
        f"0 -> {args.vmax:g} -> 0 -> {args.vmin:g} -> 0 V, step {args.step:g} V; data -> {data}",
        file=sys.stderr,
    )
    sweep = {key: getattr(args, key) for key in _LIVE_SWEEP_OPTIONS}  # calibrate_cell's names
    sweep.update(v_max=args.vmax, v_min=args.vmin, point_time=point_time)
    devices = []
    with open_crossbar(cfg, datafile=data, operation="calibrate") as xb:
        for r, c in cells:
            try:
                devices.append(calibrate_cell(xb, r, c, options=options_from_args(args), **sweep))
            except CalibrationInputError as exc:
                raise UserError(str(exc)) from exc
    return devices


def _live_bench(args: argparse.Namespace):
    """The bench of ``--bench`` and the cells to sweep (each once, in the order given), with
    the sweep checked against the bench's array and limits (UserError before it is opened)."""
    from crossbar.backend import Biasing

    from ._common import bench_config

    if args.bench is None or args.cell is None:
        raise UserError("a live calibration needs both --bench and --cell R,C")
    if args.cycles < 2:
        raise UserError(f"--cycles must be >= 2 (section 1 needs two cycles), got {args.cycles}")
    if not args.step > 0:
        raise UserError(f"--step must be > 0 V, got {args.step:g}")
    if not args.vmax > 0 or args.vmin > 0:
        raise UserError(f"need --vmax > 0 and --vmin <= 0, got {args.vmax:g} / {args.vmin:g}")
    cfg = bench_config(args.bench, profile=args.sim_profile, seed=args.seed)
    rows, cols = cfg.shape
    cells = list(dict.fromkeys(args.cell))  # each cell once, in the order given
    for r, c in cells:
        if not (0 <= r < rows and 0 <= c < cols):
            raise UserError(
                f"--cell {r},{c} is outside the {rows}x{cols} array of bench {cfg.name!r}"
            )
    for v, what in ((args.vmax, "--vmax"), (args.vmin, "--vmin")):
        if abs(v) > cfg.limits.max_voltage:
            raise UserError(
                f"{what} {v:g} V exceeds the bench limit of {cfg.limits.max_voltage:g} V"
            )
    for icc, what in (
        (args.compliance, "--compliance"),
        (args.reset_compliance, "--reset-compliance"),
    ):
        if not 0 < icc <= cfg.limits.max_compliance:
            raise UserError(
                f"{what} {icc:g} A is outside (0, {cfg.limits.max_compliance:g}] A "
                f"(bench {cfg.name!r})"
            )
    if Biasing.parse(args.reset_biasing).positive_only and args.vmin < 0:
        raise UserError(
            f"--reset-biasing {args.reset_biasing} is for V >= 0 only (at V < 0 the unselected "
            "cells would see +2|V|/3 and SET); use v/3"
        )
    return cfg, cells


def _cell(text: str) -> tuple[int, int]:
    try:
        r, c = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not R,C (two integers)") from None
    return r, c


def _write_profiles(devices, out: Path) -> int:
    from calibration.io import CalibrationInputError
    from calibration.report import safe_stem

    make_dir(out, "--profile-out {path}: cannot create the directory ({err})")
    failed = 0
    for dev in devices:
        try:
            dev.to_profile().save(out / f"{safe_stem(dev.name)}.profile.json")
        except (CalibrationInputError, ValueError) as exc:
            print(f"xbar calibrate: error: {exc}", file=sys.stderr)
            failed += 1
    return failed


def _jobs() -> int:
    """Worker processes for reading files and drawing reports (the CLI process is fresh)."""
    return min(4, os.cpu_count() or 1)


def _read_stats(devices, v_read: float) -> list:
    """Read-voltage statistics of every device (same order)."""
    from calibration.readstats import read_stats

    return [
        read_stats(d.voltage, d.currents, v_read, cycle_numbers=d.cycle_numbers) for d in devices
    ]


def format_table(devices, read_stats=None) -> str:
    """A readable table, one row per device in the given order; the file name comes last.
    ``read_stats`` (one :class:`~calibration.readstats.ReadStats` per device) adds the columns
    sigma_HRS, sigma_LRS (σ of ln G on ``hrs_pos``, ``lrs_pos``), on/off and drift_HRS
    (ln G per cycle on ``hrs_pos``)."""
    head = ["U", "alpha_nm", "sigma_up", "sigma_hat", "L", "L_min", "N", "cycles"]
    if read_stats is not None:
        head += ["sigma_HRS", "sigma_LRS", "on/off", "drift_HRS"]
    head += ["LCIS (V)", "file"]
    body = []
    for k, d in enumerate(devices):
        r = d.result
        row = [
            f"{r.usability:.4f}",
            f"{r.alpha_nm:.3f}",
            f"{r.sigma_up:.4f}",
            f"{r.sigma_hat:.4f}",
            str(r.lcis_length),
            str(r.l_min),
            str(r.n_residuals),
            str(r.n_cycles),
        ]
        if read_stats is not None:
            st = read_stats[k]
            hrs, lrs = st.branch("hrs_pos"), st.branch("lrs_pos")
            row += [
                _num(hrs.sigma_ln_g, ".3f"),
                _num(lrs.sigma_ln_g, ".3f"),
                _num(st.on_off_ratio, ".3g"),
                _num(hrs.drift_per_cycle, "+.3f"),
            ]
        body.append(row + [f"{r.lcis_start_v:.2f}-{r.lcis_stop_v:.2f}", d.name])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    right = set(range(len(head) - 2))  # numbers right-aligned

    def fmt(row):
        return "  ".join(
            (c.rjust(w) if i in right else c.ljust(w)) for i, (c, w) in enumerate(zip(row, widths))
        ).rstrip()

    lines = [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(row) for row in body]
    return "\n".join(lines)


def _num(x: float, spec: str) -> str:
    """A number for the table; "-" where it is not defined (NaN)."""
    return "-" if x != x else format(x, spec)


def _in_zero_one(unit: str = "") -> Callable[[str], float]:
    """An argparse ``type``: a number in (0, 1] (``unit`` shown in the message, e.g. " V")."""

    def parse(text: str) -> float:
        try:
            f = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not 0.0 < f <= 1.0:
            raise argparse.ArgumentTypeError(f"must be in (0, 1]{unit}, got {f}")
        return f

    return parse


_fraction = _in_zero_one()
_read_voltage = _in_zero_one(" V")
