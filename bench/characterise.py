"""``xbar bench characterise``: wall time and bench time of the characterisation protocols.

Runs :func:`crossbar.characterise.characterise` on the built-in simulated bench (the real
drivers over the twins; the bench time is the twins' virtual clock: the estimate for a real
bench, retention waits included) with the short protocol (``--quick``, ours) against the full
protocol (the peer), for the device profile ``--profile`` (default typical). ``ratio`` = full /
quick.
"""

from __future__ import annotations

import argparse
import time

from bench._report import Row

DESCRIPTION = "characterisation: wall and bench time of --quick against the full protocol"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="typical", help="simulated device profile")
    p.add_argument("--seed", type=int, default=0, help="bench seed")


def _run(profile: str, seed: int, quick: bool) -> tuple[float, float]:
    """(wall s, bench s) of one characterisation."""
    from crossbar.characterise import CharacterisationPlan, characterise
    from crossbar.config import load_bench_config, parse_bench_config
    from crossbar.core import Crossbar
    from lab import open_backend

    d = load_bench_config("sim").to_dict()
    d["simulation"]["profile"], d["simulation"]["seed"] = profile, seed
    backend = open_backend(parse_bench_config(d, origin="bench characterise"))
    plan = CharacterisationPlan.quick() if quick else CharacterisationPlan()
    w0 = time.perf_counter()
    with Crossbar(backend) as xb:
        result = characterise(xb, plan)
    return time.perf_counter() - w0, result.bench_time


def run(args: argparse.Namespace) -> list[Row]:
    profile, seed = getattr(args, "profile", "typical"), int(getattr(args, "seed", 0))
    qw, qb = _run(profile, seed, quick=True)
    fw, fb = _run(profile, seed, quick=False)
    case = f"characterise-{profile}"
    return [
        Row(case, "wall time (--quick)", qw, "s", "full protocol", fw, fw / qw),
        Row(case, "bench time (--quick)", qb, "s", "full protocol", fb, fb / qb),
    ]
