"""``xbar demo``: the closed loop on the built-in simulated bench, in a few minutes.

1. calibrate a simulated device: 10 cyclic I-V sweeps of one cell through the real drivers and
   their twins, graded by METHODS section 1 (usability U, report PNG);
2. characterise the array for computing (``xbar characterise --quick``): window and stuck map,
   read noise, pulse response, programming error and drift -> the deployment profile;
3. train ERM and BayesMulti against that measured profile (BayesMulti's BO objective evaluated
   under it) on two moons;
4. deploy both on a fresh bench of the same array, without and with the loop (fault-aware
   placement, chip-in-the-loop correction, drift compensation, level-aware mapping,
   settle-and-refresh): program-and-verify, every MVM on the array;
5. print the software-versus-hardware table (relative loss beside the paper's figure).

Everything lands in ``--out`` (default ``xbar-out/demo``): the data files (HDF5, written as
acquired), the calibration report, the deployment profile, ``study.json``/``study.csv`` with
figures 7b/7c and ``demo.json``. One bench seed and one training seed: for means with confidence
intervals over seeds run ``xbar study``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from ._common import add_bench_option, add_command, bench_config, open_crossbar

if TYPE_CHECKING:
    from crossbar.config import BenchConfig


SUMMARY = (
    "calibrate, characterise, train ERM + BayesMulti against the measured device, deploy "
    "without and with the loop, compare"
)
"""``xbar demo``'s line in ``xbar --help``."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "demo", SUMMARY, __doc__, raw=True)
    add_bench_option(p, '"sim" (default) or BENCH.toml')
    p.add_argument(
        "--profile",
        default="typical",
        help="simulated device profile: optimized (the paper's optimised device, "
        "U ~ 0.9), typical (default, U ~ 0.5) or poor",
    )
    p.add_argument("--cell", default="3,4", help="cell to calibrate (R,C)")
    p.add_argument("--seed", type=int, default=0, help="bench and training seed")
    p.add_argument("--test-points", type=int, default=200)
    p.add_argument("--bo-iters", type=int, default=10, help="BO iterations after 3 random points")
    p.add_argument("--out", default="xbar-out/demo")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        r, c = (int(x) for x in args.cell.split(","))
    except ValueError:
        raise UserError(f"--cell {args.cell!r} is not R,C") from None
    if args.test_points < 1:
        raise UserError(f"--test-points must be >= 1, got {args.test_points}")
    cfg = bench_config(args.bench, profile=args.profile, seed=args.seed)

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)

    say(
        f"1/5 calibrating cell ({r}, {c}) of bench {cfg.name!r} (profile "
        f"{cfg.simulation.profile}): 10 cycles 0 -> 6 -> 0 -> -6 -> 0 V, 25 uA compliance"
    )
    dev = _calibrate(cfg, (r, c), out, say)
    say("2/5 characterising the array for computing (quick protocol)")
    profile_path = _characterise(cfg, out, say)
    say("3/5 + 4/5 training ERM and BayesMulti against the measured profile, deploying each "
        f"without and with the loop ({args.test_points} test points)")  # fmt: skip
    result = _loop(args, cfg, profile_path, say)
    say("5/5 comparison (one bench seed, one training seed; `xbar study` for CIs)")
    print(result.table())
    files = result.save(out)
    summary = {
        "calibration": dev.to_json_dict(),
        "deployment_profile": str(profile_path),
        "runs": [{k: v for k, v in run.items() if k != "output_errors"} for run in result.runs],
        "summary": result.summary(),
        "wall_time_s": time.perf_counter() - t0,
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=1, default=float))
    print(
        f"\nwrote {out}/: calibration.png, {profile_path.name}, "
        f"{', '.join(f.name for f in files)}, demo.json, data files (*.h5)  "
        f"[{time.perf_counter() - t0:.0f} s]",
        file=sys.stderr,
    )
    return 0


def _characterise(cfg: BenchConfig, out: Path, say: Callable[[str], None]) -> Path:
    """Step 2: the quick characterisation of the bench's array; its deployment profile JSON."""
    from crossbar.characterise import CharacterisationPlan, characterise

    with open_crossbar(cfg, datafile=out / "characterise.h5", operation="demo-characterise") as xb:
        profile = characterise(
            xb,
            CharacterisationPlan.quick(),
            progress=lambda p: say(f"    {p.stage} {p.done}/{p.total}") if p.done == p.total
            else None,
        )  # fmt: skip
    path = profile.save(out / "deployment-profile.json")
    rn, pr, pu, w = profile.read_noise, profile.programming, profile.pulse_response, profile.window
    say(
        f"    σ_read {100 * rn.sigma_rel:.1f} %, σ_prog {100 * pr.sigma_rel:.1f} % "
        f"({100 * pr.converged_fraction:.0f} % converged), drift ν {pr.drift_nu_mean:.3f}, "
        f"{pu.levels} levels, {100 * w.stuck_fraction:.0f} % stuck -> {path.name}"
    )
    return path


def _loop(args: argparse.Namespace, cfg: BenchConfig, profile: Path, say: Callable[[str], None]):
    """Steps 3-4 through the study's runner: one bench seed, one training seed, the loop off
    and on."""
    from ..study import STEPS, StudySpec, run_study

    spec = StudySpec(
        bench=args.bench,
        profile=cfg.simulation.profile,
        methods=("erm", "bayesmulti"),
        configs=((), tuple(STEPS)),
        bench_seeds=(cfg.simulation.seed,),
        train_seeds=(args.seed,),
        test_points=args.test_points,
        characterise=str(profile),
        workers=1,
        training={"n_iter": args.bo_iters},
    )
    return run_study(spec, progress=lambda p: say(f"    {p.stage}: {p.detail}"))


def _calibrate(cfg: BenchConfig, cell: tuple[int, int], out: Path, say: Callable[[str], None]):
    """Step 1: 10 cycles of ``cell`` graded by section 1; its report PNG and device profile."""
    from calibration.live import calibrate_cell
    from calibration.report import write_device_png

    with open_crossbar(cfg, datafile=out / "calibration.h5", operation="demo-calibrate") as xb:
        dev = calibrate_cell(xb, *cell, cycles=10)
    res = dev.result
    write_device_png(dev, out / "calibration.png")
    dev.to_profile().save(out / "device.profile.json")
    say(
        f"    U = {res.usability:.3f} (alpha_nm {res.alpha_nm:.2f}, sigma_up {res.sigma_up:.3f}, "
        f"LCIS {res.lcis_length}/{res.l_min} points) -> calibration.png, device.profile.json"
    )
    return dev
