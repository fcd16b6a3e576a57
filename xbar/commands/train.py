"""``xbar train``: train an ERM or BayesMulti network and save it (``STEM.pt`` + ``STEM.json``).

Examples::

    xbar train --method erm --data moons --out models/moons-erm
    xbar train --method bayesmulti --data moons --usability 0.5 --out models/moons-bm
    xbar train --method bayesmulti --data moons --profile device.json --bo-iters 12 --out m/bm
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from inference.names import DATA_NAMES, NOISE_SITES, OBJECTIVES

from ..errors import UserError
from ._common import add_bo_arguments, bo_settings, make_dir

if TYPE_CHECKING:
    from calibration.profile import DeviceNoiseProfile
    from crossbar.progress import Progress

DEFAULT_USABILITY = 0.5  # BayesMulti target when neither --usability nor --profile is given


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an ERM or BayesMulti network (moons / digits) and save it",
        description="Train ERM or BayesMulti (METHODS section 3) and save STEM.pt + STEM.json.",
    )
    p.add_argument("--method", choices=["erm", "bayesmulti"], required=True)
    p.add_argument("--data", choices=list(DATA_NAMES), default="moons")
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--usability",
        type=float,
        metavar="U",
        help=f"target usability in (0, 1] (BayesMulti default {DEFAULT_USABILITY})",
    )
    target.add_argument("--profile", metavar="PROFILE.json", help="target device profile")
    add_bo_arguments(p)
    p.add_argument(
        "--objective",
        choices=list(OBJECTIVES),
        default="hardware",
        help="BO objective (default: validation accuracy under hardware noise)",
    )
    p.add_argument(
        "--eval-trials",
        type=int,
        default=30,
        help="noise trials averaged by the hardware objective (default 30)",
    )
    p.add_argument("--noise-site", choices=list(NOISE_SITES), default="activations")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default per data)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default per data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="STEM", help="writes STEM.pt and STEM.json")
    p.set_defaults(func=run)


def _target(args: argparse.Namespace) -> tuple[float | None, DeviceNoiseProfile | None]:
    from calibration.profile import DeviceNoiseProfile, ProfileError

    if args.profile is not None:
        path = Path(args.profile)
        if not path.is_file():
            raise UserError(f"device profile {path} does not exist")
        try:
            profile = DeviceNoiseProfile.load(path)
        except ProfileError as exc:
            raise UserError(f"bad device profile: {exc}") from exc
        if profile.non_monotonic and not profile.mean_curve_g:
            raise UserError(
                f"bad device profile: {path}: L < L_min but the mean curve needed by the "
                "non-monotonic mapping is empty"
            )
        return None, profile
    if args.usability is not None:
        u = args.usability
        if not (math.isfinite(u) and 0.0 < u <= 1.0):
            raise UserError(f"--usability must be in (0, 1], got {u}")
        return u, None
    return None, None


def run(args: argparse.Namespace) -> int:
    from inference.data import load_dataset
    from inference.noise import evaluate
    from inference.robustness import SIZES_BY_DATA
    from inference.storage import save_model
    from inference.training import train_erm

    usability, profile = _target(args)
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {args.epochs}")
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        raise UserError(f"--lr must be > 0, got {args.lr}")
    if args.bo_init < 1 or args.bo_iters < 0:
        raise UserError("--bo-init must be >= 1 and --bo-iters >= 0")
    if args.eval_trials < 1:
        raise UserError("--eval-trials must be >= 1")
    stem = Path(args.out)
    make_dir(stem.parent, "cannot create output folder {path}: {err}")
    dataset = load_dataset(args.data, seed=args.seed)
    sizes = SIZES_BY_DATA[args.data]
    print(
        f"data: {args.data} ({len(dataset.y_train)} train / {len(dataset.y_val)} val / "
        f"{len(dataset.y_test)} test), network {'-'.join(map(str, sizes))}"
    )
    if args.method == "erm":
        trained = train_erm(dataset, sizes, epochs=args.epochs, lr=args.lr, seed=args.seed)
    else:
        trained, usability = _train_bayesmulti(args, dataset, sizes, usability, profile)
    acc = trained.accuracies
    print(
        f"{args.method}: software accuracy train {acc['train']:.3f}  val {acc['val']:.3f}  "
        f"test {acc['test']:.3f};  p1={trained.p1:.3f} p2={trained.p2:.3f}"
    )
    if usability is not None or profile is not None:
        hw = evaluate(
            trained,
            dataset.x_test,
            dataset.y_test,
            usability=usability,
            profile=profile,
            n_trials=10,
            seed=args.seed,
        )
        print(f"test accuracy under hardware noise (10 trials): {hw.mean():.3f} ± {hw.std():.3f}")
    pt, js = save_model(trained, stem)
    print(f"saved {pt} and {js}")
    return 0


def _train_bayesmulti(
    args: argparse.Namespace,
    dataset,
    sizes: tuple[int, ...],
    usability: float | None,
    profile: DeviceNoiseProfile | None,
):
    """BayesMulti towards the target (a usability or a device profile), the BO printed live;
    returns the trained model and the usability it was tuned for (None: a profile, or no
    target with the training-accuracy objective)."""
    from inference.training import train_bayesmulti

    if usability is None and profile is None and args.objective == "hardware":
        usability = DEFAULT_USABILITY
        print(f"target: usability {usability} (default; give --usability or --profile)")
    elif profile is not None:
        print(
            f"target: device profile {profile.name} (sigma {profile.sigma:.3f}, "
            f"U {profile.usability:.3f}, non-monotonic {profile.non_monotonic})"
        )
    elif usability is not None:
        print(f"target: usability {usability} (sigma {-math.log(usability):.3f})")
    total = args.bo_init + args.bo_iters

    def progress(p: Progress) -> None:
        v = p.values
        print(
            f"  BO {p.done:>2}/{p.total}: p1={v['p1']:.3f} p2={v['p2']:.3f} -> objective "
            f"{v['score']:.4f}",
            flush=True,
        )

    print(
        f"BayesMulti: {args.bo_init} + {args.bo_iters} = {total} candidates, objective "
        f"{args.objective}"
    )
    trained = train_bayesmulti(
        dataset,
        sizes,
        usability=usability,
        profile=profile,
        objective=args.objective,
        progress=progress,
        epochs=args.epochs,
        lr=args.lr,
        **bo_settings(args),
    )
    return trained, usability
