"""The deployment noise model predicts what the physics backend's deployment gives.

For each bench seed: open the physics bench, characterise it (the deployment profile of that
very array), deploy each network with :func:`inference.deploy.run_on_crossbar` (program-and-
verify, MVMs on the simulated array) and evaluate the same network with
``DeploymentModel(profile, stuck="profile")`` (200 test points, 200 trials). The claim: the mean
hardware accuracy over the seeds agrees within 3 points. The table (mean with 95 % CI over
seeds, and of the paired difference) is printed (``pytest -s``).

The quick suite runs a small grid (``optimized``, 1 seed, ERM); the full check (``typical`` —
and ``paper`` when the simulation has that preset —, 10 seeds, ERM and BayesMulti) is slow.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from crossbar.characterise import CharacterisationPlan, characterise
from crossbar.config import load_bench_config
from crossbar.core import Crossbar
from inference.data import make_moons_dataset
from inference.deploy import run_on_crossbar
from inference.hardware_model import DeploymentModel
from inference.models import MOONS_SIZES
from inference.training import train_bayesmulti, train_erm
from lab import open_backend
from sim_backends.profiles import PROFILES

N_POINTS = 200


def _physics(preset: str, seed: int):
    cfg = load_bench_config("sim")
    return open_backend(
        dataclasses.replace(
            cfg,
            bench=dataclasses.replace(cfg.bench, backend="physics"),
            simulation=dataclasses.replace(cfg.simulation, profile=preset, seed=seed),
        )
    )


def agreement(preset: str, seeds, nets: dict, plan: CharacterisationPlan, moons) -> dict:
    """Per network: (bench accuracies, model accuracies) over the seeds."""
    x, y = moons.x_test[:N_POINTS], moons.y_test[:N_POINTS]
    out = {name: ([], []) for name in nets}
    for seed in seeds:
        with Crossbar(_physics(preset, seed)) as xb:
            profile = characterise(xb, plan)
            for name, net in nets.items():
                r = run_on_crossbar(xb, net, x, y, x_train=moons.x_train)
                model = DeploymentModel(profile, stuck="profile")
                acc = model.accuracy(net, x, y, x_calib=moons.x_train, n_trials=200, seed=seed)
                out[name][0].append(r.hardware_accuracy)
                out[name][1].append(float(acc.mean()))
    return out


def _ci(v) -> tuple[float, float]:
    v = 100 * np.asarray(v, dtype=float)
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0
    return float(v.mean()), float(half)


def report(preset: str, out: dict) -> str:
    lines = [f"{preset}: hardware accuracy, mean ± 95 % CI over {len(next(iter(out.values()))[0])}"
             " bench seeds (points)"]  # fmt: skip
    for name, (bench, model) in out.items():
        b, m = _ci(bench), _ci(model)
        d = _ci(np.subtract(model, bench))
        lines.append(
            f"  {name:11s} bench {b[0]:5.1f} ± {b[1]:4.1f}   model {m[0]:5.1f} ± {m[1]:4.1f}   "
            f"model − bench {d[0]:+5.1f} ± {d[1]:4.1f}"
        )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def moons():
    return make_moons_dataset(seed=0)


@pytest.fixture(scope="module")
def erm(moons):
    return train_erm(moons, MOONS_SIZES, seed=0)


def test_model_agrees_with_the_optimized_physics_bench(moons, erm) -> None:
    out = agreement("optimized", range(1), {"ERM": erm}, CharacterisationPlan.quick(), moons)
    print(report("optimized", out))
    bench, model = out["ERM"]
    assert abs(model[0] - bench[0]) <= 0.02


@pytest.mark.slow
@pytest.mark.parametrize("preset", [p for p in ("typical", "paper") if p in PROFILES])
def test_model_agrees_with_the_physics_bench_over_seeds(moons, erm, preset: str) -> None:
    bm = train_bayesmulti(moons, MOONS_SIZES, usability=0.5, n_init=3, n_iter=5, seed=0)
    nets = {"ERM": erm, "BayesMulti": bm}
    out = agreement(preset, range(10), nets, CharacterisationPlan(), moons)
    print(report(preset, out))
    for name, (bench, model) in out.items():
        assert abs(np.mean(model) - np.mean(bench)) <= 0.03, (name, report(preset, out))
