"""``xbar calibrate FILE… [--json] [--report DIR] [--profile-out DIR] …``: grade devices.

Applies METHODS section 1 to cyclic I-V files (Excel exports, CSV, HDF5 sweeps; directories are
expanded to the supported files inside) and prints, per device, the LCIS, ``L_min``, ``α_nm``,
``σ̂``, ``σ_up`` and the usability ``U``: a table sorted by ``U`` (descending), or with ``--json``
a JSON list with one object per device under exactly the keys
:data:`calibration.batch.JSON_KEYS` (non-finite numbers as ``null``).

A file that cannot be calibrated prints one ``error:`` line on stderr and the batch goes on.
Exit code: 0 when every file calibrated, 2 when any failed (or none was given/found).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from xbar.errors import UserError

_HELP = """\
Applies METHODS section 1 to cyclic I-V files (Excel exports, CSV, HDF5 sweeps;
directories are expanded to the supported files inside) and prints per device the
LCIS, L_min, alpha_nm, sigma_hat, sigma_up and the usability U: a table sorted by U
(descending), or with --json a JSON list with one object per device (keys: file,
n_cycles, branch_points, lcis_start_v, lcis_stop_v, lcis_length, l_min, alpha_nm,
n_residuals, sigma_hat, sigma_up, usability; non-finite numbers as null).

A file that cannot be calibrated prints one error line on stderr and the batch goes
on. Exit code: 0 when every file calibrated, 2 when any failed (or none was found)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="grade devices from cyclic I-V files (METHODS section 1 usability)",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="I-V files or directories")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--report", metavar="DIR", help="write a PNG per device and a summary CSV")
    p.add_argument(
        "--profile-out", metavar="DIR", help="write a DeviceNoiseProfile JSON per device"
    )
    add_calibration_options(p)
    # TODO(crossbar): a live source (`--bench` with the cell and cycle count) goes here once the
    # crossbar layer exists: sweep the cell, then pass (name, V, I) to
    # calibration.batch.calibrate_arrays exactly as the file path does in _calibrate below.
    p.set_defaults(func=run)


def add_calibration_options(p: argparse.ArgumentParser) -> None:
    """The METHODS section-1 decisions as options (shared with ``xbar fab history``)."""
    p.add_argument(
        "--tolerated-decreases",
        type=_non_negative_int,
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
    from calibration.batch import calibrate_paths
    from calibration.io import find_iv_files

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

        _make_dir(Path(args.report), "--report")
        paths = write_report(devices, args.report, jobs=_jobs())
        print(f"xbar calibrate: report: {len(paths) - 1} PNG(s) and {paths[-1]}", file=sys.stderr)

    if args.json:
        print(json.dumps([d.to_json_dict() for d in devices], indent=1, allow_nan=False))
    else:
        print(format_table(devices))
    if failed:
        print(
            f"xbar calibrate: {failed} of {len(batch.devices) + len(batch.failures)} "
            f"device(s) failed",
            file=sys.stderr,
        )
        return 2
    return 0


def _write_profiles(devices, out: Path) -> int:
    from calibration.io import CalibrationInputError
    from calibration.report import safe_stem

    _make_dir(out, "--profile-out")
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


def _make_dir(path: Path, option: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{option} {path}: cannot create the directory ({exc.strerror})") from exc


def format_table(devices) -> str:
    """A readable table, one row per device in the given order; the file name comes last."""
    head = [
        "U",
        "alpha_nm",
        "sigma_up",
        "sigma_hat",
        "L",
        "L_min",
        "N",
        "cycles",
        "LCIS (V)",
        "file",
    ]
    body = []
    for d in devices:
        r = d.result
        body.append(
            [
                f"{r.usability:.4f}",
                f"{r.alpha_nm:.3f}",
                f"{r.sigma_up:.4f}",
                f"{r.sigma_hat:.4f}",
                str(r.lcis_length),
                str(r.l_min),
                str(r.n_residuals),
                str(r.n_cycles),
                f"{r.lcis_start_v:.2f}-{r.lcis_stop_v:.2f}",
                d.name,
            ]
        )
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    right = set(range(len(head) - 2))  # numbers right-aligned

    def fmt(row):
        return "  ".join(
            (c.rjust(w) if i in right else c.ljust(w)) for i, (c, w) in enumerate(zip(row, widths))
        ).rstrip()

    lines = [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(row) for row in body]
    return "\n".join(lines)


def _non_negative_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def _fraction(text: str) -> float:
    try:
        f = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < f <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {f}")
    return f
