"""``xbar robustness``: accuracy versus usability, ERM against BayesMulti (figure-2 style).

Trains ERM and BayesMulti on moons or digits, evaluates both on the test set under the
usability-only hardware-noise model at U = 1.0, 0.9, …, 0.1 (``--trials`` noise trials per
level), writes ``DIR/robustness-DATA.csv`` and ``DIR/robustness-DATA.png`` and prints the table.

BayesMulti tuning (decision, ``--tune``): ``per-level`` (default) tunes (p1, p2) by BO at each
usability level, as the paper tunes for the target device; ``single`` tunes once at
``--tune-usability`` and uses that model at every level.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from inference.names import DATA_NAMES, NOISE_SITES, TUNE_MODES

from ..errors import UserError
from ._common import add_bo_arguments, bo_settings, make_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "robustness",
        help="accuracy vs usability of ERM and BayesMulti (CSV + PNG + table)",
        description="Accuracy versus usability 1.0 -> 0.1 for ERM and BayesMulti.",
    )
    p.add_argument("--data", choices=list(DATA_NAMES), default="moons")
    p.add_argument("--out", default=".", metavar="DIR", help="output folder (default: .)")
    p.add_argument("--trials", type=int, default=10, help="noise trials per level (default 10)")
    p.add_argument("--seed", type=int, default=0)
    add_bo_arguments(p)
    p.add_argument(
        "--eval-trials", type=int, default=30, help="noise trials in the BO objective (default 30)"
    )
    p.add_argument(
        "--tune",
        choices=list(TUNE_MODES),
        default="per-level",
        help="tune BayesMulti at every level (default) or once",
    )
    p.add_argument(
        "--tune-usability", type=float, default=0.5, help="usability of --tune single (default 0.5)"
    )
    p.add_argument("--noise-site", choices=list(NOISE_SITES), default="activations")
    p.set_defaults(func=run)


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
    out = make_dir(Path(args.out), "cannot create output folder {path}: {err}")
    tune_txt = "per level" if args.tune == "per-level" else f"once at U={u}"
    print(
        f"robustness study on {args.data}: BayesMulti tuned {tune_txt} "
        f"({args.bo_init} + {args.bo_iters} BO candidates), {args.trials} trials per level",
        flush=True,
    )
    study = run_study(
        args.data,
        n_trials=args.trials,
        tune=args.tune,
        tune_usability=u,
        progress=lambda p: print("  " + p.detail, flush=True),
        **bo_settings(args),
    )
    csv_path = write_csv(study.rows, out / f"robustness-{args.data}.csv")
    chance = 1.0 / study.dataset.n_classes
    title = f"{args.data}: ERM vs BayesMulti (tuned {tune_txt}), mean ± std of {args.trials} trials"
    png_path = plot_robustness(
        study.rows, out / f"robustness-{args.data}.png", title=title, chance=chance
    )
    print(format_table(study.rows))
    fig = acceptance_figures(study.rows)
    print(
        f"BayesMulti - ERM at U <= 0.8: worst {fig['worst_gap']:+.1f} points "
        f"(U={fig['worst_at']}); best gain {fig['best_gain']:+.1f} points (U={fig['best_at']})"
    )
    print(f"wrote {csv_path} and {png_path} ({study.elapsed_s:.0f} s)")
    return 0
