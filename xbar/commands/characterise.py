"""``xbar characterise``: measure what a device does at read voltage after programming.

Example::

    xbar characterise --bench sim --quick --out runs/char.h5 --profile-out runs/device.json

Runs the four procedures of :mod:`crossbar.characterise` on the bench — the window and stuck
map (every cell), read noise, programming statistics with settle reads (1 s … 1 h; virtual time
on the simulated bench) and the pulse response — writing every read, pulse and wait to the data
file (``--out``, HDF5) as it is acquired, and the resulting deployment profile to
``--profile-out`` (JSON). ``--quick`` is the short protocol. ``--cells R,C …`` chooses the
cells of the read-noise, programming and pulse-response steps (default: cells spread over the
array). Progress goes to stderr; an instrument fault or Ctrl-C stops it with every output off.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UserError
from ._common import open_crossbar
from .sweep import load_bench, parse_cell

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "characterise",
        help="measure read noise, programming error, drift, levels and stuck cells",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--bench", default="sim", help='"sim" (built-in simulated bench) or BENCH.toml')
    p.add_argument(
        "--profile",
        dest="sim_profile",
        metavar="NAME",
        help="simulated benches: device profile (optimized|typical|poor|paper)",
    )
    p.add_argument("--seed", type=str, default=None, help="simulated benches: seed (int >= 0)")
    p.add_argument("--cells", nargs="+", metavar="R,C", help="cells of steps 2–4 (default: spread)")
    p.add_argument("--quick", action="store_true", help="the short protocol (minutes)")
    p.add_argument(
        "--out", metavar="FILE.h5", help="data file (default xbar-out/characterise-<bench>.h5)"
    )
    p.add_argument(
        "--profile-out",
        metavar="FILE.json",
        help="deployment profile (default xbar-out/deployment-profile-<bench>.json)",
    )
    p.add_argument("--json", action="store_true", help="print the deployment profile as JSON")
    p.add_argument(
        "--show",
        metavar="PROFILE.json",
        help="print a saved deployment profile (checked field by field) instead of measuring",
    )
    p.set_defaults(func=run)


def _progress(p: object) -> None:
    print(f"  {p.text()}", file=sys.stderr, flush=True)  # type: ignore[attr-defined]


def run(args: argparse.Namespace) -> int:
    from crossbar.characterise import CharacterisationPlan, characterise
    from crossbar.deployment_profile import DeploymentProfileError, load_deployment_profile

    if args.show:
        try:
            profile = load_deployment_profile(args.show)
        except DeploymentProfileError as exc:
            raise UserError(str(exc)) from None
        return _report(args, profile, f"deployment profile {args.show}", None, None)
    cfg = load_bench(args)
    cells = tuple(parse_cell(c, cfg, "--cells") for c in args.cells) if args.cells else None
    if cells is not None and len(set(cells)) != len(cells):
        raise UserError("--cells: a cell is given twice")
    plan = (
        CharacterisationPlan.quick(cells=cells) if args.quick else CharacterisationPlan(cells=cells)
    )
    out = Path(args.out) if args.out else Path("xbar-out") / f"characterise-{cfg.name}.h5"
    prof_path = (
        Path(args.profile_out)
        if args.profile_out
        else Path("xbar-out") / f"deployment-profile-{cfg.name}.json"
    )
    for path, what in ((out, "--out"), (prof_path, "--profile-out")):
        if path.is_dir():
            raise UserError(f"{what} {path}: is a directory, give a file")
    meta = {"operation": "characterise", "quick": bool(args.quick)}
    with open_crossbar(cfg, datafile=out, **meta) as xb:
        profile = characterise(xb, plan, progress=_progress)
    try:
        profile.save(prof_path)
    except OSError as exc:
        raise UserError(f"--profile-out {prof_path}: cannot write ({exc.strerror})") from None
    title = f"characterised bench {cfg.name!r} ({'quick' if args.quick else 'full'} protocol)"
    return _report(args, profile, title, out, prof_path)


def _report(
    args: argparse.Namespace, profile: object, title: str, out: Path | None, path: Path | None
) -> int:
    if args.json:
        print(json.dumps(json.loads(profile.model_dump_json()), indent=1))  # type: ignore[attr-defined]
        return 0
    rn, pr, pu, w = profile.read_noise, profile.programming, profile.pulse_response, profile.window  # type: ignore[attr-defined]
    print(title)
    print(f"  read noise       σ_read = {100 * rn.sigma_rel:.2f} % of G at {rn.v_read:g} V")
    print(
        f"  programming      σ_prog = {100 * pr.sigma_rel:.2f} % ({pr.mean_pulses:.1f} pulses, "
        f"{100 * pr.converged_fraction:.0f} % converged), relaxation "
        f"{100 * pr.relaxation_rel:+.2f} %, drift ν = {pr.drift_nu_mean:.4f} ± "
        f"{pr.drift_nu_std:.4f}, dissolved {100 * pr.dissolved_fraction:.0f} %"
    )
    print(
        f"  pulse response   {pu.levels_text}, range ×{pu.dynamic_range:.3g}, non-linearity "
        f"set {pu.nonlinearity_set:.2f} / reset {pu.nonlinearity_reset:.2f}"
    )
    print(f"  window           {len(w.stuck)} stuck cell(s) ({100 * w.stuck_fraction:.0f} %)")
    where = f"; data -> {out}; profile -> {path}" if out is not None else ""
    print(f"  bench time {profile.bench_time:.0f} s{where}")  # type: ignore[attr-defined]
    return 0
