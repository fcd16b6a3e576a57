"""``xbar demo``: the whole loop on the built-in simulated bench, in a few minutes.

1. calibrate a simulated device: 10 cyclic I-V sweeps of one cell through the real drivers and
   their twins, graded by METHODS section 1 (usability U, report PNG, device profile);
2. train ERM and BayesMulti (BO over p1, p2 at the device's U) on two moons;
3. deploy both on the bench: map to conductances, program-and-verify, every MVM on the array;
4. print the software-versus-hardware comparison and write the figures.

Everything lands in ``--out`` (default ``xbar-out/demo``): the data files (HDF5, written as
acquired), the calibration report, the models, the deployment figure and ``demo.json``.
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
from .infer import aggregate, deploy_all, format_table

if TYPE_CHECKING:
    from crossbar.config import BenchConfig


SUMMARY = "calibrate, train ERM + BayesMulti, deploy both on the simulated bench, compare"
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
    from inference.deploy import DeployOptions

    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        r, c = (int(x) for x in args.cell.split(","))
    except ValueError:
        raise UserError(f"--cell {args.cell!r} is not R,C") from None
    cfg = bench_config(args.bench, profile=args.profile, seed=args.seed)

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)

    say(
        f"1/4 calibrating cell ({r}, {c}) of bench {cfg.name!r} (profile "
        f"{cfg.simulation.profile}): 10 cycles 0 -> 6 -> 0 -> -6 -> 0 V, 25 uA compliance"
    )
    dev = _calibrate(cfg, (r, c), out, say)
    say("2/4 training ERM and BayesMulti (2-5-2 MLP on two moons)")
    models = _train(args, dev.result.usability, out, say)
    say(f"3/4 deploying both on the bench ({args.test_points} test points each)")
    rows = deploy_all(
        models,
        bench=args.bench,
        profiles=[args.profile],
        seeds=1,
        test_points=args.test_points,
        out=out,
        options=DeployOptions(),
        log=lambda m: say("    " + m),
    )
    agg = aggregate(rows)
    say("4/4 comparison")
    print(format_table(agg))
    summary = {"calibration": dev.to_json_dict(), "runs": rows, "mean": agg}
    summary["wall_time_s"] = time.perf_counter() - t0
    (out / "demo.json").write_text(json.dumps(summary, indent=1, default=float))
    print(
        f"\nwrote {out}/: calibration.png, deploy-{cfg.simulation.profile}.png, demo.json, "
        f"models, data files (*.h5)  [{time.perf_counter() - t0:.0f} s]",
        file=sys.stderr,
    )
    return 0


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


def _train(args: argparse.Namespace, usability: float, out: Path, say: Callable[[str], None]):
    """Step 2: ERM and BayesMulti (tuned at the device's usability) on two moons, saved."""
    from inference.data import make_moons_dataset
    from inference.models import MOONS_SIZES
    from inference.storage import save_model
    from inference.training import train_bayesmulti, train_erm

    ds = make_moons_dataset(seed=args.seed)
    erm = train_erm(ds, MOONS_SIZES, seed=args.seed)
    bm = train_bayesmulti(
        ds,
        MOONS_SIZES,
        usability=max(min(usability, 1.0), 0.05),
        n_init=3,
        n_iter=args.bo_iters,
        seed=args.seed,
        progress=lambda p: say(f"    BO {p.done}/{p.total}: {p.detail}"),
    )
    save_model(erm, out / "moons-erm")
    save_model(bm, out / "moons-bayesmulti")
    say(
        f"    ERM test accuracy {erm.accuracies['test']:.3f}; BayesMulti "
        f"{bm.accuracies['test']:.3f} with p1={bm.p1:.2f}, p2={bm.p2:.2f}"
    )
    return [erm, bm]
