"""``xbar bench inference``: training and noise-evaluation speed.

Cases:

* ``train-bayesmulti-moons`` — wall time of ERM + BayesMulti (3 + 12 BO iterations, hardware
  objective at U = 0.5) on two moons, the whole pipeline as ``xbar train`` runs it. No peer.
* ``robustness-moons`` — throughput of the section-2 noise evaluation in (noise trials × test
  points) per second: our vectorised :func:`inference.noise.evaluate` against the same evaluation
  with a Python loop over trials (:func:`inference.noise.evaluate_per_trial`), timed in the same
  run; both return identical accuracies for a seed (checked). ``ratio`` = our throughput / peer
  throughput (> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench._report import Row
from inference.data import make_moons_dataset
from inference.models import MOONS_SIZES
from inference.noise import evaluate, evaluate_per_trial
from inference.training import train_bayesmulti, train_erm

DESCRIPTION = "training and noise-evaluation speed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bo-iters", type=int, default=12, help="BO iterations (default 12)")
    parser.add_argument(
        "--trials", type=int, default=500, help="noise trials of the throughput case (default 500)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings (default 3)")


def _best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(args: argparse.Namespace) -> list[Row]:
    bo_iters = getattr(args, "bo_iters", 12)
    n_trials = getattr(args, "trials", 500)
    repeats = getattr(args, "repeats", 3)
    rows: list[Row] = []
    ds = make_moons_dataset(seed=0)

    t0 = time.perf_counter()
    erm = train_erm(ds, MOONS_SIZES, seed=0)
    train_bayesmulti(ds, MOONS_SIZES, usability=0.5, n_init=3, n_iter=bo_iters, seed=0)
    wall = time.perf_counter() - t0
    rows.append(Row("train-bayesmulti-moons", "wall_time", wall, "s"))

    x, y = ds.x_test, ds.y_test
    work = n_trials * len(y)
    t_ours, acc_ours = _best_time(
        lambda: evaluate(erm, x, y, usability=0.5, n_trials=n_trials, seed=1), repeats
    )
    t_peer, acc_peer = _best_time(
        lambda: evaluate_per_trial(erm, x, y, usability=0.5, n_trials=n_trials, seed=1), repeats
    )
    if not np.array_equal(acc_ours, acc_peer):
        raise RuntimeError("vectorised and per-trial evaluations disagree for the same seed")
    ours, peer = work / t_ours, work / t_peer
    rows.append(
        Row(
            "robustness-moons",
            "throughput",
            ours,
            "trial-points/s",
            peer="per-trial python loop",
            peer_value=peer,
            ratio=ours / peer,
        )
    )
    return rows
