"""``xbar study``: methods × loop steps × bench seeds × training seeds, with confidence intervals.

Example::

    xbar study --bench sim --profile paper --bench-seeds 5 --train-seeds 3 --test-points 200 \\
        --out xbar-out/study-paper

For every bench seed the device is characterised (``--characterise quick``, default: the
deployment profile is measured on the bench, not read from the preset; or ``full``, or a saved
profile JSON), every method is trained against it for every training seed, and each network is
deployed with every loop configuration (``--loop``: ``none``, ``full``, ``ablation`` = full and
full-without-each-step, or steps joined with ``+``; default ``none full ablation``) on a fresh
bench of that seed. Output: the table of software and hardware accuracy and relative loss (mean
± 95 % CI over the seeds) beside the paper's row, the ablation, ``study.json``, ``study.csv`` and
the figure 7b/7c plots in ``--out``. Runs go to ``--workers`` processes; progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from inference.names import DATA_NAMES, METHODS

from ..errors import UserError
from ..study import STEPS
from ._common import add_bench_option, add_command, int_at_least, make_dir

__all__ = ["register", "run"]

LOOP_STEPS = tuple(STEPS)


SUMMARY = "methods x loop steps x seeds on a bench: hardware loss with 95 %% CIs"
"""``xbar study``'s line in ``xbar --help``."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "study", SUMMARY, __doc__)
    add_bench_option(p, '"sim" or BENCH.toml')
    p.add_argument("--profile", help="simulated benches: device preset (e.g. paper, typical)")
    p.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma list of {', '.join(METHODS)}"
    )
    p.add_argument(
        "--loop",
        nargs="+",
        default=["none", "full", "ablation"],
        help=f"configurations: none, full, ablation, or steps joined by + ({', '.join(LOOP_STEPS)})",
    )
    p.add_argument("--bench-seeds", type=int_at_least(1), default=5, help="bench seeds (5)")
    p.add_argument("--train-seeds", type=int_at_least(1), default=3, help="training seeds (3)")
    p.add_argument("--test-points", type=int_at_least(1), default=200, help="per deployment")
    p.add_argument(
        "--characterise", default="quick", help="quick (default), full, or a profile JSON"
    )
    p.add_argument("--settle", type=float, default=0.0, help="s between programming and use")
    p.add_argument("--workers", type=int_at_least(1), default=2, help="worker processes (2)")
    p.add_argument("--data", choices=DATA_NAMES, default="moons")
    p.add_argument("--bo-iters", type=int_at_least(0), default=10, help="BayesMulti BO iterations")
    p.add_argument("--out", default="xbar-out/study", help="output folder")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def parse_loops(items: list[str]) -> tuple[tuple[str, ...], ...]:
    """``--loop`` words as configurations; UserError naming an unknown word or step."""
    out: list[tuple[str, ...]] = []
    for item in items:
        if item == "none":
            out.append(())
        elif item == "full":
            out.append(LOOP_STEPS)
        elif item == "ablation":
            out += [LOOP_STEPS, *[tuple(s for s in LOOP_STEPS if s != k) for k in LOOP_STEPS]]
        else:
            steps = tuple(item.split("+"))
            bad = [s for s in steps if s not in LOOP_STEPS]
            if bad:
                raise UserError(
                    f"--loop {item!r}: unknown step {bad[0]!r} (none, full, ablation, or "
                    f"{', '.join(LOOP_STEPS)} joined by +)"
                )
            out.append(steps)
    unique: list[tuple[str, ...]] = []
    for c in out:
        if c not in unique:
            unique.append(c)
    return tuple(unique)


def run(args: argparse.Namespace) -> int:
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise UserError(f"--methods: unknown method {bad[0] if bad else ''!r}: "
                        f"choose from {', '.join(METHODS)}")  # fmt: skip
    configs = parse_loops(args.loop)
    if args.characterise not in ("quick", "full") and not Path(args.characterise).is_file():
        raise UserError(
            f"--characterise {args.characterise!r}: quick, full, or an existing profile JSON"
        )
    if not args.settle >= 0:
        raise UserError(f"--settle {args.settle}: must be >= 0 s")
    from crossbar.config import BenchConfigError, load_bench_config

    try:
        cfg = load_bench_config(args.bench)
    except (BenchConfigError, OSError) as exc:
        raise UserError(str(exc)) from None
    if args.characterise not in ("quick", "full"):
        from crossbar.deployment_profile import DeploymentProfileError, load_deployment_profile

        try:
            profile = load_deployment_profile(args.characterise)
        except DeploymentProfileError as exc:
            raise UserError(str(exc)) from None
        if tuple(profile.shape) != tuple(cfg.shape):
            raise UserError(
                f"--characterise {args.characterise}: the deployment profile is for a "
                f"{profile.shape[0]}x{profile.shape[1]} array but bench {args.bench!r} has "
                f"{cfg.shape[0]}x{cfg.shape[1]}; characterise this array"
            )
    out = make_dir(Path(args.out), "--out {path}: cannot create it ({err})")
    from xbar.study import StudySpec, run_study

    spec = StudySpec(
        bench=args.bench,
        profile=args.profile,
        methods=methods,
        configs=configs,
        bench_seeds=tuple(range(args.bench_seeds)),
        train_seeds=tuple(range(args.train_seeds)),
        test_points=args.test_points,
        characterise=args.characterise,
        settle=args.settle,
        workers=args.workers,
        data=args.data,
        training={"n_iter": args.bo_iters},
    )
    result = run_study(spec, progress=lambda p: print(f"  {p.text()}", file=sys.stderr))
    paths = result.save(out)
    if args.json:
        print(json.dumps({"summary": result.summary(), "ablation": result.ablation()}, indent=1))
    else:
        print(result.table())
        print(f"\nwrote {', '.join(str(p) for p in paths)}")
    return 0
