"""Deployment of the moons classifier on a crossbar: mapping, programming, MVMs, comparison."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from crossbar.config import load_bench_config
from crossbar.core import Crossbar
from crossbar.deployment_profile import load_deployment_profile
from inference.data import make_moons_dataset
from inference.deploy import (
    DeployOptions,
    place_model,
    run_on_crossbar,
    software_outputs,
)
from inference.models import MOONS_SIZES
from inference.training import train_bayesmulti, train_erm
from lab import open_backend
from xbar.cli import main
from xbar.study import STEPS


@pytest.fixture(scope="module")
def moons():
    return make_moons_dataset(seed=0)


@pytest.fixture(scope="module")
def erm(moons):
    return train_erm(moons, MOONS_SIZES, seed=0)


def _bench(kind: str, profile: str = "optimized", seed: int = 0):
    cfg = load_bench_config("sim")
    cfg = dataclasses.replace(
        cfg,
        bench=dataclasses.replace(cfg.bench, backend=kind),
        simulation=dataclasses.replace(cfg.simulation, profile=profile, seed=seed),
    )
    return open_backend(cfg)


def test_moons_network_placement_fits_the_10x10_array(erm, moons) -> None:
    placement = place_model(erm, moons.x_train, (10, 10))
    (l1, l2) = placement.layers
    assert (l1.row_start, l1.n_rows, l1.col_start, l1.n_cols) == (0, 3, 0, 10)
    assert (l2.row_start, l2.n_rows, l2.col_start, l2.n_cols) == (3, 6, 0, 4)
    targets = placement.full_map()[placement.used_mask()]
    o = DeployOptions()
    assert targets.min() >= o.g_min * (1 - 1e-12) and targets.max() <= o.g_max * (1 + 1e-12)


def test_software_outputs_equal_the_torch_model(erm, moons) -> None:
    logits = software_outputs(erm, moons.x_test)
    assert np.array_equal(logits.argmax(axis=1), erm.model.predict(moons.x_test))


def test_physics_backend_reproduces_software_on_the_optimized_array(erm, moons) -> None:
    with Crossbar(_bench("physics")) as xb:
        r = run_on_crossbar(xb, erm, moons.x_test[:100], moons.y_test[:100], x_train=moons.x_train)
    assert r.programming["fraction_converged"] >= 0.95
    assert r.software_accuracy >= 0.95
    assert r.hardware_accuracy >= r.software_accuracy - 0.05
    # energy per MVM (Yao et al.): E = sum V^2 G t_read over a block; a few pJ at 1 us
    assert 1e-13 < r.energy_per_mvm_j < 1e-10
    assert r.ops_per_mvm == pytest.approx((2 * 3 * 10 + 2 * 6 * 4) / 2)


@pytest.mark.slow
def test_bayesmulti_loses_less_than_erm_on_the_typical_sim_bench(erm, moons) -> None:
    """The paper's hardware result, on the simulated bench (twins), 200 test points."""
    bm = train_bayesmulti(moons, MOONS_SIZES, usability=0.6, n_init=3, n_iter=10, seed=0)
    loss = {}
    for name, model in (("erm", erm), ("bm", bm)):
        with Crossbar(_bench("twins", "typical")) as xb:
            r = run_on_crossbar(
                xb, model, moons.x_test[:200], moons.y_test[:200], x_train=moons.x_train
            )
        loss[name] = r.relative_degradation
    assert loss["bm"] < loss["erm"]
    with Crossbar(_bench("twins", "optimized")) as xb:
        r = run_on_crossbar(xb, bm, moons.x_test[:200], moons.y_test[:200], x_train=moons.x_train)
    assert r.relative_degradation <= 0.15


@pytest.mark.slow
def test_demo_runs_the_whole_loop(tmp_path, capsys) -> None:
    """calibrate -> characterise -> train against the measured profile -> deploy without and
    with the loop -> table (issue 15 item 7)."""
    out = tmp_path / "demo"
    code = main(["demo", "--test-points", "40", "--bo-iters", "2", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "bayesmulti" in text and "erm" in text
    full = "+".join(STEPS)  # the whole loop: every step of the study's table
    assert full == "fault-aware+chip-in-loop+drift-compensation+levels+refresh"
    assert full in text
    summary = json.loads((out / "demo.json").read_text())
    assert 0.0 <= summary["calibration"]["usability"] <= 1.0
    runs = summary["runs"]
    assert {(r["method"], "+".join(r["loop"]) or "none") for r in runs} == {
        (m, loop) for m in ("erm", "bayesmulti") for loop in ("none", full)
    }
    assert all(r["bench_seed"] == 0 and r["train_seed"] == 0 for r in runs)
    profile = load_deployment_profile(out / "deployment-profile.json")
    assert tuple(profile.shape) == (10, 10)
    for name in ("calibration.png", "calibration.h5", "characterise.h5",
                 "deployment-profile.json", "study.json", "figure7b.png"):  # fmt: skip
        assert (out / name).stat().st_size > 1000, name
