"""``xbar robustness``: accuracy versus usability, ERM against BayesMulti (figure-2 style).

Trains ERM and BayesMulti on moons or digits, evaluates both on the test set under the
usability-only hardware-noise model at U = 1.0, 0.9, …, 0.1 (``--trials`` noise trials per
level) and, with ``--devices``, under each device's calibrated curve (I-V data files or device
profiles); writes ``DIR/robustness-DATA.csv``, ``.png`` and ``.json`` and prints the table.

BayesMulti tuning (``--tune``): ``once`` (default) tunes (p1, p2) by BO once at
``--tune-usability`` and tests that one model at every level and device, as the paper's authors
trained once and tested across devices; ``per-level`` tunes anew at every level and device with
its test noise known — an oracle, labelled so in the table, the plot and the JSON.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from inference.names import DATA_NAMES, NOISE_SITES, TUNE_MODES

from ..errors import UserError
from ._common import add_bo_arguments, bo_settings, make_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "robustness",
        help="accuracy vs usability of ERM and BayesMulti (CSV + PNG + JSON + table)",
        description="Accuracy versus usability 1.0 -> 0.1 (and device curves) for ERM and "
        "BayesMulti; BayesMulti tuned once by default, per level as a labelled oracle.",
    )
    p.add_argument("--data", choices=list(DATA_NAMES), default="moons")
    p.add_argument("--out", default=".", metavar="DIR", help="output folder (default: .)")
    p.add_argument("--trials", type=int, default=10, help="noise trials per level (default 10)")
    p.add_argument("--seed", type=int, default=0)
    add_bo_arguments(p)
    p.add_argument(
        "--eval-trials", type=int, default=30, help="noise trials in the BO objective (default 30)"
    )
    tune_help = "tune BayesMulti once (default) or at every level with its noise known (oracle)"
    p.add_argument("--tune", choices=list(TUNE_MODES), default="once", help=tune_help)
    p.add_argument("--tune-usability", type=float, default=0.5,
                   help="usability of --tune once (default 0.5)")  # fmt: skip
    p.add_argument(
        "--devices",
        nargs="+",
        metavar="PATH",
        help="device curves to test on too: I-V data files or folders (calibrated, METHODS §1) "
        "or device-profile JSON files",
    )
    p.add_argument("--noise-site", choices=list(NOISE_SITES), default="activations")
    p.set_defaults(func=run)


def _devices(paths: list[str] | None) -> list[Any]:
    """Device curves from profile JSONs and I-V files/folders; a bad one is a UserError."""
    if not paths:
        return []
    from calibration.batch import calibrate_paths
    from calibration.io import CalibrationInputError
    from calibration.profile import DeviceNoiseProfile, ProfileError

    out, data = [], []
    for text in paths:
        path = Path(text)
        if not path.exists():
            raise UserError(f"--devices: {path} does not exist")
        if path.suffix.lower() == ".json":
            try:
                out.append(DeviceNoiseProfile.load(path))
            except ProfileError as exc:
                raise UserError(f"--devices: {exc}") from None
        else:
            data.append(path)
    if data:
        batch = calibrate_paths(data)
        if batch.failures:
            name, why = batch.failures[0]
            raise UserError(f"--devices: {name}: {why}")
        for dev in batch.devices:
            try:
                out.append(dev.to_profile())
            except CalibrationInputError as exc:
                raise UserError(f"--devices: {exc}") from None
    if not out:
        raise UserError(f"--devices: no I-V data or device profile in {' '.join(paths)}")
    return out


def run(args: argparse.Namespace) -> int:
    from inference.robustness import (
        acceptance_figures,
        format_table,
        plot_robustness,
        run_study,
        write_csv,
    )

    if args.trials < 1 or args.bo_init < 1 or args.bo_iters < 0 or args.eval_trials < 1:
        raise UserError("--trials, --bo-init, --eval-trials must be >= 1 and --bo-iters >= 0")
    u = args.tune_usability
    if not (math.isfinite(u) and 0.0 < u <= 1.0):
        raise UserError(f"--tune-usability must be in (0, 1], got {u}")
    devices = _devices(args.devices)
    out = make_dir(Path(args.out), "cannot create output folder {path}: {err}")
    tune_txt = (
        "per level (ORACLE: test noise known)" if args.tune == "per-level" else f"once at U={u}"
    )
    print(
        f"robustness study on {args.data}: BayesMulti tuned {tune_txt} "
        f"({args.bo_init} + {args.bo_iters} BO candidates), {args.trials} trials per level"
        + (f", {len(devices)} device curve(s)" if devices else ""),
        flush=True,
    )
    study = run_study(
        args.data,
        n_trials=args.trials,
        tune=args.tune,
        tune_usability=u,
        devices=devices,
        progress=lambda p: print("  " + p.detail, flush=True),
        **bo_settings(args),
    )
    stem = out / f"robustness-{args.data}"
    csv_path = write_csv(study.rows, stem.with_suffix(".csv"))
    chance = 1.0 / study.dataset.n_classes
    title = f"{args.data}: ERM vs BayesMulti (tuned {tune_txt}), mean ± std of {args.trials} trials"
    png_path = plot_robustness(study.rows, stem.with_suffix(".png"), title=title, chance=chance)
    json_path = study.write_json(stem.with_suffix(".json"))
    print(format_table(study.rows, study.tune, study.tune_usability))
    fig = acceptance_figures(study.rows)
    print(
        f"BayesMulti - ERM at U <= 0.8: worst {fig['worst_gap']:+.1f} points "
        f"(U={fig['worst_at']}); best gain {fig['best_gain']:+.1f} points (U={fig['best_at']})"
    )
    print(f"wrote {csv_path}, {png_path} and {json_path} ({study.elapsed_s:.0f} s)")
    return 0
