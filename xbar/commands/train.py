"""``xbar train``: train a network by one of the methods and save it (``STEM.pt`` + ``STEM.json``).

Methods: ``erm`` (no noise), ``bayesmulti`` (multinomial noise, (p1, p2) by Bayesian
optimisation), ``hwa`` (hardware-aware training: the forward pass sees the weights as the target
hardware realises them), ``bayesmulti+hwa`` (both) and ``linear`` (logistic regression, the
linear-model control). The target hardware is a measured deployment profile
(``--deployment-profile``, from ``xbar characterise``), a usability (``--usability``, METHODS §2)
or a calibrated device curve (``--profile``); BayesMulti's objective is the validation accuracy
under it (``--objective hardware``, default) or the paper's training accuracy.

Examples::

    xbar train --method erm --data moons --out models/moons-erm
    xbar train --method bayesmulti --deployment-profile device.json --out models/moons-bm
    xbar train --method hwa --deployment-profile device.json --out models/moons-hwa
    xbar train --method bayesmulti --usability 0.5 --out models/moons-bm-u05
    xbar train --method linear --out models/moons-linear
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.names import DATA_NAMES, HARDWARE_METHODS, METHODS, NOISE_SITES, OBJECTIVES

from ..errors import UserError
from ._common import add_bo_arguments, add_command, bo_settings, make_dir

if TYPE_CHECKING:
    from crossbar.progress import Progress

DEFAULT_USABILITY = 0.5  # BayesMulti target when no target is given
STUCK_CHOICES = ("random", "profile", "none")  # inference.hardware_model.STUCK_MODES


SUMMARY = "train a network (erm, bayesmulti, hwa, bayesmulti+hwa, linear) and save it"
"""``xbar train``'s line in ``xbar --help``."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", SUMMARY, __doc__)
    p.add_argument("--method", choices=list(METHODS), required=True)
    p.add_argument("--data", choices=list(DATA_NAMES), default="moons")
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--deployment-profile",
        metavar="FILE.json",
        help="target: a deployment profile measured by `xbar characterise`",
    )
    target.add_argument(
        "--usability",
        type=float,
        metavar="U",
        help=f"target: usability in (0, 1] (BayesMulti default {DEFAULT_USABILITY})",
    )
    target.add_argument("--profile", metavar="PROFILE.json", help="target: a device curve")
    add_bo_arguments(p)
    p.add_argument(
        "--objective",
        choices=list(OBJECTIVES),
        default="hardware",
        help="BayesMulti's BO objective (default: validation accuracy under the target)",
    )
    p.add_argument(
        "--eval-trials",
        type=int,
        default=30,
        help="noise trials averaged by the hardware objective (default 30)",
    )
    p.add_argument("--noise-site", choices=list(NOISE_SITES), default="activations")
    p.add_argument(
        "--t-inference",
        type=float,
        metavar="S",
        help="deployment profile: s after programming the network is used at (default: right "
        "after, the profile's first settle time)",
    )
    p.add_argument(
        "--drift-compensation",
        action="store_true",
        help="deployment profile: scale each layer by a reference read (global drift comp.)",
    )
    p.add_argument(
        "--stuck",
        choices=list(STUCK_CHOICES),
        default="random",
        help="deployment profile: stuck cells at random positions (default), at the profile's "
        "own map (this very array), or none",
    )
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default per data)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default per data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="STEM", help="writes STEM.pt and STEM.json")
    p.set_defaults(func=run)


def _check_numbers(args: argparse.Namespace) -> None:
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {args.epochs}")
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        raise UserError(f"--lr must be > 0, got {args.lr}")
    if args.bo_init < 1 or args.bo_iters < 0:
        raise UserError("--bo-init must be >= 1 and --bo-iters >= 0")
    if args.eval_trials < 1:
        raise UserError("--eval-trials must be >= 1")
    if args.usability is not None and not (
        math.isfinite(args.usability) and 0.0 < args.usability <= 1.0
    ):
        raise UserError(f"--usability must be in (0, 1], got {args.usability}")
    t = args.t_inference
    if t is not None and not (math.isfinite(t) and t >= 0):
        raise UserError(f"--t-inference must be a time >= 0 s, got {t}")
    if args.deployment_profile is None and (
        t is not None or args.drift_compensation or args.stuck != "random"
    ):
        raise UserError("--t-inference, --drift-compensation and --stuck need --deployment-profile")


def _device_curve(path_text: str) -> Any:
    from calibration.profile import DeviceNoiseProfile, ProfileError

    path = Path(path_text)
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
    return profile


def _deployment_model(args: argparse.Namespace, dataset: Any, sizes: tuple[int, ...]) -> Any:
    """The deployment-profile model, checked: the file, and that the network fits its array."""
    from crossbar.deployment_profile import DeploymentProfileError
    from crossbar.mapping import MappingError
    from inference.hardware_model import load_deployment_model
    from inference.models import MLP

    try:
        model = load_deployment_model(
            args.deployment_profile,
            t_inference=args.t_inference,
            drift_compensation=args.drift_compensation,
            stuck=args.stuck,
        )
    except DeploymentProfileError as exc:
        raise UserError(str(exc)) from None
    except ValueError as exc:
        raise UserError(f"{args.deployment_profile}: {exc}") from None
    try:
        model.placement(MLP(sizes), dataset.x_train)
    except MappingError as exc:
        rows, cols = model.shape
        raise UserError(
            f"{args.deployment_profile}: the profile is for a {rows}x{cols} array and the "
            f"{'-'.join(map(str, sizes))} network does not fit it: {exc}"
        ) from None
    return model


def _hardware(args: argparse.Namespace, dataset: Any, sizes: tuple[int, ...]) -> Any:
    """The target hardware model (None: no target), after every check."""
    from inference.noise import UsabilityModel

    if args.deployment_profile is not None:
        return _deployment_model(args, dataset, sizes)
    if args.profile is not None:
        return UsabilityModel(device=_device_curve(args.profile))
    if args.usability is not None:
        return UsabilityModel(usability=args.usability)
    needs = args.method in HARDWARE_METHODS or (
        args.method == "bayesmulti" and args.objective == "hardware"
    )
    if needs:
        if args.method in HARDWARE_METHODS:
            raise UserError(
                f"--method {args.method} needs a target: --deployment-profile FILE.json "
                "(or --usability U)"
            )
        print(f"target: usability {DEFAULT_USABILITY} (default; give --deployment-profile)")
        return UsabilityModel(usability=DEFAULT_USABILITY)
    return None


def run(args: argparse.Namespace) -> int:
    from inference.data import load_dataset
    from inference.robustness import SIZES_BY_DATA
    from inference.storage import save_model
    from inference.training import train_method

    _check_numbers(args)
    if args.profile is not None:
        _device_curve(args.profile)  # a bad file is refused before any data is made
    dataset = load_dataset(args.data, seed=args.seed)
    sizes = SIZES_BY_DATA[args.data]
    hardware = _hardware(args, dataset, sizes)
    stem = Path(args.out)
    make_dir(stem.parent, "cannot create output folder {path}: {err}")
    net = sizes if args.method != "linear" else (sizes[0], sizes[-1])
    print(
        f"data: {args.data} ({len(dataset.y_train)} train / {len(dataset.y_val)} val / "
        f"{len(dataset.y_test)} test), network {'-'.join(map(str, net))}"
    )
    if hardware is not None:
        print(f"target hardware: {hardware!r}")
    trained = train_method(
        args.method,
        dataset,
        sizes,
        hardware=hardware,
        objective=args.objective,
        progress=_bo_printer(args) if "bayesmulti" in args.method else None,
        epochs=args.epochs,
        lr=args.lr,
        **bo_settings(args),
    )
    acc = trained.accuracies
    print(
        f"{args.method}: software accuracy train {acc['train']:.3f}  val {acc['val']:.3f}  "
        f"test {acc['test']:.3f};  p1={trained.p1:.3f} p2={trained.p2:.3f}"
    )
    if hardware is not None:
        n = 100 if args.deployment_profile else 10
        hw = hardware.accuracy(
            trained, dataset.x_test, dataset.y_test, x_calib=dataset.x_train, n_trials=n,
            seed=args.seed,
        )  # fmt: skip
        print(
            f"test accuracy under the target hardware ({n} trials): "
            f"{hw.mean():.3f} ± {hw.std():.3f}"
        )
    pt, js = save_model(trained, stem)
    print(f"saved {pt} and {js}")
    return 0


def _bo_printer(args: argparse.Namespace):
    """Prints every BO candidate as it is scored."""
    print(
        f"BayesMulti: {args.bo_init} + {args.bo_iters} = {args.bo_init + args.bo_iters} "
        f"candidates, objective {args.objective}"
    )

    def progress(p: Progress) -> None:
        v = p.values
        print(
            f"  BO {p.done:>2}/{p.total}: p1={v['p1']:.3f} p2={v['p2']:.3f} -> objective "
            f"{v['score']:.4f}",
            flush=True,
        )

    return progress
