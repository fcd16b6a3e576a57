"""``xbar infer``: run a trained classifier's MVMs on a crossbar and compare with software.

Examples::

    xbar infer --bench sim --model models/moons-bm --test-points 200
    xbar infer --bench sim --model m/erm --model m/bm --profile optimized --profile typical --seeds 5
    xbar infer --bench sim --model models/moons-bm --deployment-profile device.json \
        --fault-aware --chip-in-loop --drift-compensation --levels --refresh --settle 3600

Each (profile, seed, model) run opens a fresh bench (the same seed gives the same devices, so the
models meet identical arrays), maps the weights to conductances, programs them with
program-and-verify, runs every MVM on the bench (activations and argmax stay digital) and
reports software versus hardware accuracy. The deployment loop's steps are switched on one by
one: ``--fault-aware`` (layers on rows and columns that avoid the stuck cells of the
``--deployment-profile``, each in the window its cells reach), ``--chip-in-loop`` (program layer
by layer, fine-tuning the next layer on the measured outputs of the programmed ones) and
``--drift-compensation`` (a reference read scales each layer's outputs at inference), ``--levels``
(bias and per-output scale digital; on a device of discrete levels every cell on a pair of its
measured levels, the network fine-tuned to them) and ``--refresh`` (settle, re-read, reprogram
the cells that moved). Writes ``summary.json``, one PNG per profile (the
paper's figure 7b/7c), one HDF5 data file per run and the per-run JSON/NPZ into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inference.names import DEPLOY_TOL

from ..errors import UserError
from ._common import add_bench_option, add_command, bench_config, open_crossbar

if TYPE_CHECKING:
    from inference.deploy import DeploymentResult, DeployOptions
    from inference.training import TrainedModel


SUMMARY = "deploy a trained model on a crossbar and compare software vs hardware accuracy"
"""``xbar infer``'s line in ``xbar --help``."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "infer", SUMMARY, __doc__)
    add_bench_option(p)
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="M",
        help="trained model (STEM, STEM.pt or STEM.json); repeat to compare",
    )
    p.add_argument("--test-points", type=int, default=200, metavar="N")
    p.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help="simulated device profile (optimized|typical|poor); repeatable; default: the bench's",
    )
    p.add_argument(
        "--seeds", type=int, default=1, help="simulated benches to average (seeds 0..K-1)"
    )
    p.add_argument(
        "--tol",
        type=float,
        default=DEPLOY_TOL,
        help=f"program-and-verify tolerance (default {DEPLOY_TOL})",
    )
    p.add_argument(
        "--deployment-profile",
        metavar="FILE",
        help="the array's deployment profile (xbar characterise); needed by --fault-aware",
    )
    p.add_argument(
        "--fault-aware",
        action="store_true",
        help="place the layers on rows/columns that avoid the profile's stuck cells and use "
        "each cell's measured window for the layer scale",
    )
    p.add_argument(
        "--chip-in-loop",
        action="store_true",
        help="program layer by layer; fine-tune the next layer in software on the outputs of "
        "the programmed ones measured on training inputs 30 s after their programming "
        "(NeuRRAM, Yao et al. 2020)",
    )
    p.add_argument(
        "--drift-compensation",
        action="store_true",
        help="read a reference vector through each layer after programming and before the test "
        "MVMs; scale its outputs by the ratio (global drift compensation)",
    )
    p.add_argument(
        "--levels",
        action="store_true",
        help="bias and a per-output scale in the digital periphery; on a device of discrete "
        "levels (the profile's) every cell on a pair of levels, the network fine-tuned to them",
    )
    p.add_argument(
        "--refresh",
        action="store_true",
        help="after programming, settle 10 s, read every cell and reprogram those that moved "
        "beyond 30 %% (a dissolved filament); 3 rounds",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds of bench time between programming and the test MVMs (drift acts there)",
    )
    p.add_argument("--out", default="xbar-out/infer", help="output folder")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def _load(paths: list[str]) -> list[TrainedModel]:
    from inference.storage import ModelFileError, load_model

    models = []
    for path in paths:
        try:
            models.append(load_model(path))
        except ModelFileError as exc:
            raise UserError(str(exc)) from exc
    return models


def deploy_all(
    models: list[TrainedModel],
    *,
    bench: str,
    profiles: list[str | None],
    seeds: int,
    test_points: int,
    out: Path,
    options: DeployOptions,
    log: Callable[[str], object] = print,
    settle: float = 0.0,
) -> list[dict]:
    """Run every model on every (profile, seed); returns summary rows (and writes files).

    ``settle``: s of bench time between programming and the test MVMs. A network that does not
    fit the array around its stuck cells, or a deployment profile of another array size, is a
    UserError (one line)."""
    from crossbar.mapping import MappingError
    from inference.data import load_dataset
    from inference.deploy import run_on_crossbar
    from inference.figures import plot_deployment
    from inference.hardware_model import ProfileShapeError

    if test_points < 1:
        raise UserError(f"--test-points must be >= 1, got {test_points}")
    if seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {seeds}")
    rows = []
    for profile in profiles:
        first: list[DeploymentResult] = []
        for seed in range(seeds):
            cfg = bench_config(bench, profile=profile, seed=seed if seeds > 1 else None)
            for m in models:
                ds = load_dataset(m.data_name, seed=m.data_seed, noise=m.data_noise or 0.2)
                n = min(test_points, len(ds.y_test))
                if n < test_points:
                    log(f"note: the test split has {len(ds.y_test)} points; using all of them")
                tag = f"{cfg.simulation.profile}-s{cfg.simulation.seed}-{m.method}"
                try:
                    with open_crossbar(cfg, datafile=out / f"{tag}.h5", model=m.method) as xb:
                        r = run_on_crossbar(
                            xb,
                            m,
                            ds.x_test[:n],
                            ds.y_test[:n],
                            x_train=ds.x_train,
                            y_train=ds.y_train,
                            options=options,
                            settle=settle,
                        )
                except (MappingError, ProfileShapeError) as exc:
                    raise UserError(f"{m.method} on {tag}: {exc}") from exc
                r.save(out / tag)
                if seed == 0:
                    first.append(r)
                row = {
                    "profile": cfg.simulation.profile,
                    "seed": cfg.simulation.seed,
                    **r.summary(),
                }
                rows.append(row)
                log(
                    f"{cfg.simulation.profile:10s} seed {cfg.simulation.seed}  {m.method:10s} "
                    f"software {100 * r.software_accuracy:5.1f} %  hardware "
                    f"{100 * r.hardware_accuracy:5.1f} %  loss {100 * r.relative_degradation:5.1f} %"
                    f"  ({r.programming.get('mean_pulses', 0):.1f} pulses/cell, "
                    f"{r.bench_time_s:.0f} s bench time)"
                )
        name = first[0] and rows[-1]["profile"]
        plot_deployment(first, out / f"deploy-{name}.png", title=f"profile {name}, seed 0")
    return rows


def aggregate(rows: list[dict]) -> list[dict]:
    """Mean over seeds per (profile, method)."""
    out = []
    keys = sorted({(r["profile"], r["method"]) for r in rows})
    for profile, method in keys:
        sel = [r for r in rows if r["profile"] == profile and r["method"] == method]
        out.append(
            {
                "profile": profile,
                "method": method,
                "seeds": len(sel),
                "software_accuracy": float(np.mean([r["software_accuracy"] for r in sel])),
                "hardware_accuracy": float(np.mean([r["hardware_accuracy"] for r in sel])),
                "relative_degradation": float(np.mean([r["relative_degradation"] for r in sel])),
                "relative_degradation_std": float(np.std([r["relative_degradation"] for r in sel])),
                "output_error_std": float(np.mean([r["output_error_std"] for r in sel])),
                "energy_per_mvm_j": float(np.mean([r["energy_per_mvm_j"] for r in sel])),
                "vs_v100": float(np.mean([r["vs_v100"] for r in sel])),
            }
        )
    return out


def format_table(agg: list[dict]) -> str:
    lines = [
        f"{'profile':10s} {'method':10s} {'seeds':>5s} {'software':>9s} {'hardware':>9s} "
        f"{'loss':>12s} {'out.err σ':>9s} {'E/MVM':>9s} {'×V100':>7s}"
    ]
    for a in agg:
        lines.append(
            f"{a['profile']:10s} {a['method']:10s} {a['seeds']:5d} "
            f"{100 * a['software_accuracy']:8.1f}% {100 * a['hardware_accuracy']:8.1f}% "
            f"{100 * a['relative_degradation']:5.1f}±{100 * a['relative_degradation_std']:4.1f}% "
            f"{a['output_error_std']:9.3f} {a['energy_per_mvm_j']:9.2e} {a['vs_v100']:7.0f}"
        )
    return "\n".join(lines)


def _options(args: argparse.Namespace) -> DeployOptions:
    """DeployOptions of the command line (UserError, one line, for a missing or bad profile)."""
    from crossbar.deployment_profile import DeploymentProfileError, load_deployment_profile
    from inference.deploy import DeployOptions

    if not (args.settle >= 0 and np.isfinite(args.settle)):
        raise UserError(f"--settle must be a time >= 0 s, got {args.settle:g}")
    profile = None
    if args.deployment_profile:
        try:
            profile = load_deployment_profile(args.deployment_profile)
        except DeploymentProfileError as exc:
            raise UserError(str(exc)) from exc
    for flag, on in (("--fault-aware", args.fault_aware), ("--levels", args.levels)):
        if on and profile is None:
            raise UserError(
                f"{flag} needs --deployment-profile FILE (the array's, from xbar characterise)"
            )
    return DeployOptions(
        tol=args.tol,
        profile=profile,
        fault_aware=args.fault_aware,
        chip_in_loop=args.chip_in_loop,
        drift_compensation=args.drift_compensation,
        levels=args.levels,
        refresh=args.refresh,
    )


def run(args: argparse.Namespace) -> int:
    models = _load(args.model)
    options = _options(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    rows = deploy_all(
        models,
        bench=args.bench,
        profiles=args.profile or [None],
        seeds=args.seeds,
        test_points=args.test_points,
        out=out,
        options=options,
        log=log,
        settle=args.settle,
    )
    agg = aggregate(rows)
    (out / "summary.json").write_text(json.dumps({"runs": rows, "mean": agg}, indent=1))
    if args.json:
        print(json.dumps({"runs": rows, "mean": agg}, indent=1))
    else:
        print()
        print(format_table(agg))
        print(f"\nwrote {out / 'summary.json'}, figures deploy-*.png, data files *.h5")
    return 0


__all__ = ["aggregate", "deploy_all", "format_table", "register", "run"]
