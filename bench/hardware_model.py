"""``xbar bench hardware_model``: speed of the deployment noise model (inference.hardware_model).

A study calls the model thousands of times (a grid of methods × seeds, BayesMulti's BO
objective), so its cost per evaluation is what matters. The deployment profile is measured
first (``characterise`` with the quick plan on a physics bench, preset ``--preset``), the 2-5-2
ERM network of two moons is evaluated on ``--points`` test points.

Cases:

* ``eval-200x100`` — wall time of one evaluation, ``--points`` points × ``--trials`` trials,
  vectorised over trials; peer: the same model with a Python loop over trials (one trial per
  call), timed in the same run. ``ratio`` = peer time / our time (> 1: ours is faster).
* ``eval-vs-deployment`` — time per realisation (one trial) of the model against one
  deployment on the physics backend (:func:`inference.deploy.run_on_crossbar`: program-and-
  verify of the 54 cells, then the MVMs), the measurement the model stands in for.
  ``ratio`` = deployment time / model time per trial.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from bench._report import Row
from crossbar.characterise import CharacterisationPlan, characterise
from crossbar.config import load_bench_config
from crossbar.core import Crossbar
from inference.data import make_moons_dataset
from inference.deploy import run_on_crossbar
from inference.hardware_model import DeploymentModel
from inference.models import MOONS_SIZES
from inference.training import train_erm
from lab import open_backend

DESCRIPTION = "speed of the deployment noise model (per evaluation, against a deployment)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="typical", help="simulated device (default typical)")
    parser.add_argument("--points", type=int, default=200, help="test points (default 200)")
    parser.add_argument("--trials", type=int, default=100, help="trials (default 100)")
    parser.add_argument("--repeats", type=int, default=5, help="best of N timings (default 5)")


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def physics_bench(preset: str, seed: int):
    """The physics backend of the built-in bench with device preset ``preset`` and ``seed``."""
    cfg = load_bench_config("sim")
    return open_backend(
        dataclasses.replace(
            cfg,
            bench=dataclasses.replace(cfg.bench, backend="physics"),
            simulation=dataclasses.replace(cfg.simulation, profile=preset, seed=seed),
        )
    )


def run(args: argparse.Namespace) -> list[Row]:
    preset = getattr(args, "preset", "typical")
    n_points, n_trials = getattr(args, "points", 200), getattr(args, "trials", 100)
    repeats = getattr(args, "repeats", 5)
    ds = make_moons_dataset(seed=0)
    erm = train_erm(ds, MOONS_SIZES, seed=0)
    x, y = ds.x_test[:n_points], ds.y_test[:n_points]
    with Crossbar(physics_bench(preset, 0)) as xb:
        profile = characterise(xb, CharacterisationPlan.quick())
    model = DeploymentModel(profile)

    def ours() -> None:
        model.accuracy(erm, x, y, x_calib=ds.x_train, n_trials=n_trials, seed=1)

    def loop() -> None:
        for t in range(n_trials):
            model.accuracy(erm, x, y, x_calib=ds.x_train, n_trials=1, seed=t)

    t_ours, t_loop = _best(ours, repeats), _best(loop, max(1, repeats // 2))
    rows = [
        Row(
            f"eval-{n_points}x{n_trials}",
            "wall_time",
            1e3 * t_ours,
            "ms",
            peer="per-trial python loop",
            peer_value=1e3 * t_loop,
            ratio=t_loop / t_ours,
        )
    ]
    t0 = time.perf_counter()
    with Crossbar(physics_bench(preset, 1)) as xb:
        run_on_crossbar(xb, erm, x, y, x_train=ds.x_train)
    t_dep = time.perf_counter() - t0
    per_trial = t_ours / n_trials
    rows.append(
        Row(
            "eval-vs-deployment",
            "time_per_realisation",
            1e3 * per_trial,
            "ms",
            peer=f"physics-backend deployment ({preset})",
            peer_value=1e3 * t_dep,
            ratio=t_dep / per_trial,
        )
    )
    return rows
