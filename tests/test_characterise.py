"""``xbar characterise`` recovers the simulated bench's hidden device (issue 14, acceptance).

On the ``sim`` bench (the real drivers over the twins) the device is known, so every figure of
the deployment profile is compared with the truth (tests/char_truth.py: the profile, the
array's stuck mask and per-cell ν, the true conductance of every programmed cell at the moment
of its measurement): read noise σ and programming σ within 20 % relative, mean drift ν within
20 %, stuck fraction within 2 points, levels within 1 (0: analog) — for ``optimized``,
``typical``, ``paper`` and a device given inline in the bench file. The quick protocol on one
bench seed runs in the quick suite; more seeds and the full protocol are slow.

The procedures' figures are also checked on synthetic data (levels, σ_prog with dissolved
cells, the drift fit), and the new profile fields are checked on bad input.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from char_truth import DEVICES, INLINE_DEVICE, characterise_with_truth, table

from crossbar.characterise import (
    CharacterisationPlan,
    _programming_figures,
    count_levels,
)
from crossbar.deployment_profile import DeploymentProfile, DeploymentProfileError, ReadNoise

# -- acceptance against the bench's hidden device ---------------------------------------------


@pytest.mark.parametrize("device", list(DEVICES))
def test_quick_characterisation_recovers_the_true_device(device: str) -> None:
    t = characterise_with_truth(device, 0, quick=True)
    print(table([t]))
    assert t.errors() == {}, t.errors()
    # the figures behind the comparison are real measurements, not defaults
    assert t.true["n_prog"] >= 3  # σ_prog over at least three converged cells
    assert t.profile.protocol["n_cells"] == 10
    # the bench time of a cell's program-and-verify and of the reads right after it (on the
    # bench clock: measured, and the reads end before the first settle read): the means of
    # what the bench clock showed around each program-and-verify and its reads
    prog = t.profile.programming
    assert prog.seconds_per_cell > 0
    assert 0 < prog.seconds_right_after < prog.settle_times[0]
    assert len(t.timing["per_cell"]) == len(t.timing["right_after"]) >= 3
    assert prog.seconds_per_cell == pytest.approx(np.mean(t.timing["per_cell"]), rel=1e-9)
    assert prog.seconds_right_after == pytest.approx(np.mean(t.timing["right_after"]), rel=1e-9)
    levels = DEVICES[device][1].get("levels", 0) if device == "inline" else None
    if levels:
        assert len(t.profile.pulse_response.level_conductances) == levels
        assert len(t.profile.programming.targets) == levels - 1  # programmed to its levels


def test_the_inline_device_differs_from_every_preset() -> None:
    from sim_backends.profiles import PROFILES

    for name, preset in PROFILES.items():
        differ = [k for k, v in INLINE_DEVICE.items() if getattr(preset, k) != v]
        assert len(differ) >= 5, name
    assert INLINE_DEVICE["levels"] not in {p.levels for p in PROFILES.values()}
    assert INLINE_DEVICE["drift_nu"] not in {p.drift_nu for p in PROFILES.values()}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("device", list(DEVICES))
def test_quick_characterisation_on_more_bench_seeds(device: str, seed: int) -> None:
    t = characterise_with_truth(device, seed, quick=True)
    print(table([t]))
    assert t.errors() == {}, t.errors()


@pytest.mark.slow
@pytest.mark.parametrize("device", list(DEVICES))
def test_full_characterisation_recovers_the_true_device(device: str) -> None:
    t = characterise_with_truth(device, 0, quick=False)
    print(table([t]))
    assert t.errors() == {}, t.errors()
    assert t.profile.protocol["n_cells"] == 20
    assert t.profile.programming.settle_times[-1] == 3600.0


# -- the procedures on synthetic data -------------------------------------------------------


def _train(levels: list[float], visits: list[int], rng: np.random.Generator) -> np.ndarray:
    """Reads that visit ``levels`` (S) for ``visits`` reads each, 1 % noise."""
    g = np.concatenate([np.full(k, lv) for lv, k in zip(levels, visits)])
    return g * (1 + 0.01 * rng.standard_normal(g.size))


def test_count_levels_finds_the_plateaus_of_a_discrete_filament() -> None:
    rng = np.random.default_rng(0)
    lv = [1e-7, 1.4e-6, 2e-5]
    # two cells, SET then RESET trains; one read caught mid-jump
    a = np.concatenate([_train(lv, [3, 6, 11], rng), _train(lv[::-1], [4, 8, 8], rng)])
    b = np.concatenate([_train(lv, [2, 9, 9], rng), [5e-6], _train(lv[::-1], [5, 5, 9], rng)])
    n, where = count_levels([a, b])
    assert n == 3
    np.testing.assert_allclose(where, lv, rtol=0.02)
    # a binary filament
    n, where = count_levels([_train([1e-7, 2e-5, 1e-7], [10, 20, 10], rng)])
    assert n == 2 and where[0] < where[1]


def test_count_levels_calls_a_filled_window_analog() -> None:
    rng = np.random.default_rng(1)
    up = np.geomspace(1e-7, 2e-5, 20) * np.exp(0.05 * rng.standard_normal(20))
    assert count_levels([np.concatenate([up, up[::-1]])]) == (0, [])
    # an abrupt analog SET (typical): reads pause here and there between a wide HRS and the top
    lo = np.linspace(0.0, 0.3, 30)
    a = np.r_[lo, 0.51, 0.62, 0.66, 0.70, 0.90, 0.94, 1.0]
    b = np.r_[lo[::2], 0.48, 0.54, 0.57, 0.72, 0.74, 1.0, 1.0]
    assert count_levels([1e-7 * np.exp(u * math.log(1e3)) for u in (a, b)]) == (0, [])
    # a cell that did not switch says nothing; no cell left: one level
    assert count_levels([np.full(10, 1e-6)]) == (1, [])


def _noise(sigma: float) -> ReadNoise:
    return ReadNoise(
        v_read=0.2,
        biasing="ground",
        n_reads=20,
        sigma_rel=sigma,
        sigma_rel_per_cell=[sigma],
        g_per_cell=[1e-6],
        slope=1.0,
    )


def test_programming_figures_leave_out_dissolved_cells_and_fit_the_drift() -> None:
    plan = CharacterisationPlan.quick(prog_reads=4, settle_times=(1.0, 10.0, 100.0, 1000.0))
    rng = np.random.default_rng(2)
    n = 40
    target = 1e-5
    err = 0.04 * rng.standard_normal(n)
    nu = 0.03 + 0.01 * rng.standard_normal(n)
    t = np.array([0.5, 1.0, 10.0, 100.0, 1000.0])
    achieved = [list(target * (1 + e) * np.maximum(t, 1.0) ** -v) for e, v in zip(err, nu)]
    lowest = [a[0] for a in achieved]
    converged = [True] * n
    # cell 0 dissolved during the read after verify, cell 1 while settling, cell 2 never
    # converged (all three far from the target and without a power law)
    lowest[0], achieved[0][0] = 1e-7, 0.55 * target
    achieved[1][3:] = [1.1e-7, 1.0e-7]
    converged[2], achieved[2] = False, [0.2 * target] * 5
    todo = [(0, k, target) for k in range(n)]
    times = [list(t) for _ in range(n)]
    prog = _programming_figures(
        plan, todo, [target], achieved, times, [10] * n, converged, lowest, _noise(0.0)
    )
    keep = np.arange(3, n)
    assert prog.sigma_rel == pytest.approx(np.std(np.r_[err[1], err[keep]], ddof=1), rel=1e-9)
    assert prog.drift_nu_mean == pytest.approx(np.mean(nu[keep]), abs=1e-9)
    assert prog.drift_nu_std == pytest.approx(np.std(nu[keep], ddof=1), abs=1e-9)
    assert prog.dissolved_fraction == pytest.approx(2 / 39)
    # by each settle read (1, 10, 100, 1000 s): cell 0 at once, cell 1 by the third
    assert prog.dissolved_by_settle == pytest.approx([1 / 39, 1 / 39, 2 / 39, 2 / 39])
    assert prog.converged_fraction == pytest.approx(39 / 40)
    assert prog.dissolved_right_after == pytest.approx(1 / 39)  # cell 0, during the reads
    # the averaged read's own noise is removed in quadrature
    noisy = _programming_figures(
        plan, todo, [target], achieved, times, [10] * n, converged, lowest, _noise(0.04)
    )
    assert noisy.sigma_rel == pytest.approx(math.sqrt(prog.sigma_rel**2 - 0.04**2 / 4))


def test_programming_figures_measure_the_spread_of_the_relaxation() -> None:
    plan = CharacterisationPlan.quick(prog_reads=4, avg_reads=4, settle_times=(1.0, 10.0))
    rng = np.random.default_rng(5)
    n, target = 30, 1e-5
    r = -0.05 + 0.1 * rng.standard_normal(n)  # each cell's G(1 s)/G(0) − 1
    achieved = [[target, target * (1 + x), target * (1 + x)] for x in r]
    todo = [(0, k, target) for k in range(n)]
    times = [[0.01, 1.0, 10.0] for _ in range(n)]
    args = (plan, todo, [target], achieved, times, [5] * n, [True] * n, [target] * n)
    prog = _programming_figures(*args, _noise(0.0))
    assert prog.relaxation_rel == pytest.approx(np.mean(r), abs=1e-12)
    assert prog.relaxation_std == pytest.approx(np.std(r, ddof=1), rel=1e-9)
    # the two averaged reads' own noise (σ²/4 each) is removed in quadrature
    noisy = _programming_figures(*args, _noise(0.1))
    assert noisy.relaxation_std == pytest.approx(
        math.sqrt(np.var(r, ddof=1) - 0.1**2 / 2), rel=1e-9
    )


# -- bad input: the new fields of the profile ---------------------------------------------------


def _good() -> dict:
    from test_bad_input import _deployment_profile

    return _deployment_profile()


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (("levels", -1), ("pulse_response.levels = -1", "greater than or equal to 0")),
        (("level_conductances", [1e-6, 2.0]), ("pulse_response.level_conductances.1 = 2.0",)),
        (("level_conductances", "many"), ("pulse_response.level_conductances",)),
    ],
)
def test_bad_level_fields_are_named(change: tuple, fragments: tuple, tmp_path: Path) -> None:
    doc = _good()
    doc["pulse_response"][change[0]] = change[1]
    with pytest.raises(DeploymentProfileError) as exc:
        DeploymentProfile.from_dict(doc, origin="p.json")
    assert all(f in str(exc.value) for f in fragments), str(exc.value)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    run = subprocess.run(
        [sys.executable, "-m", "xbar", "characterise", "--show", str(path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and all(f in lines[0] for f in fragments), run.stderr


def test_an_analog_profile_says_so_and_an_old_one_still_loads() -> None:
    doc = _good()
    assert "level_conductances" not in doc["pulse_response"]  # a profile from before
    prof = DeploymentProfile.from_dict(doc)
    assert prof.pulse_response.level_conductances == []
    doc["pulse_response"]["levels"] = 0
    assert DeploymentProfile.from_dict(doc).pulse_response.levels_text == "0 levels (analog)"
    # before the programming step timed itself: unknown (0), the model ages every cell alike
    assert "seconds_per_cell" not in doc["programming"]
    assert prof.programming.seconds_per_cell == 0.0
    assert prof.programming.dissolved_right_after == 0.0
    assert prof.programming.seconds_right_after == 0.0


@pytest.mark.slow
def test_the_cli_characterises_a_device_given_inline_in_a_bench_file(tmp_path: Path) -> None:
    """``xbar characterise --bench FILE.toml --quick``: the device of ``[simulation.device]``,
    the figures the bench's own array (rebuilt from the same seed) holds."""
    from crossbar.config import load_bench_config
    from lab import device_profile, open_backend

    sim = Path(__file__).resolve().parents[1] / "crossbar" / "benches" / "sim.toml"
    toml = "\n".join(f"{k} = {json.dumps(v)}" for k, v in INLINE_DEVICE.items())
    bench = tmp_path / "mine.toml"
    bench.write_text(sim.read_text() + "\n[simulation.device]\n" + toml + "\n")
    out = tmp_path / "dp.json"
    run = subprocess.run(
        [sys.executable, "-m", "xbar", "characterise", "--bench", str(bench), "--quick",
         "--out", str(tmp_path / "c.h5"), "--profile-out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "4 levels" in run.stdout
    prof = DeploymentProfile.from_dict(json.loads(out.read_text()))
    cfg = load_bench_config(bench)
    truth = device_profile(cfg)
    devs = open_backend(cfg).sim_handles.crossbar.devices  # the same seed: the same array
    assert prof.pulse_response.levels == truth.levels == 4
    assert prof.read_noise.sigma_rel == pytest.approx(truth.read_sigma, rel=0.2)
    stuck = devs.stuck_on | devs.stuck_off
    assert {tuple(c) for c in prof.window.stuck} == {tuple(c) for c in np.argwhere(stuck)}
    nu = np.mean([devs.drift_nu[r, c] for r, c in prof.cells if not stuck[r, c]])
    assert prof.programming.drift_nu_mean == pytest.approx(nu, rel=0.25)
