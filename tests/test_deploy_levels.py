"""Level-aware mapping and settle-and-refresh (issue 15's deployment loop, steps ``levels`` and
``refresh``): a device of few discrete levels gets targets it can hold, the network is
fine-tuned to them, and cells whose filament dissolved after programming are found and
reprogrammed."""

from __future__ import annotations

import numpy as np
import pytest
import test_deploy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bench.hardware_model import physics_bench
from crossbar.characterise import CharacterisationPlan, characterise
from crossbar.core import Crossbar
from crossbar.mapping import MappingError, level_pairs, map_weights, snap_to_levels
from inference.deploy import DeployOptions, normalise_outputs, run_on_crossbar
from inference.finetune import LevelGrid
from xbar.cli import main
from xbar.commands.study import parse_loops

moons, erm = test_deploy.moons, test_deploy.erm  # fixtures: the two moons and their ERM network


_physics = physics_bench  # the physics backend of the built-in bench, a preset and a seed


@pytest.fixture(scope="module")
def paper_profile():
    """The deployment profile of the physics bench ``paper``, seed 0, measured (quick)."""
    with Crossbar(_physics("paper", 0)) as xb:
        return characterise(xb, CharacterisationPlan.quick())


# -- the level grid -------------------------------------------------------------------------------


def test_level_pairs_of_three_levels() -> None:
    """0.1, 1.4 and 20 µS give seven differences; zero is the lowest level twice."""
    pairs, diffs = level_pairs([20e-6, 0.1e-6, 1.4e-6])
    assert np.allclose(diffs * 1e6, [-19.9, -18.6, -1.3, 0.0, 1.3, 18.6, 19.9])
    assert np.allclose(pairs[3], [0.1e-6, 0.1e-6])
    assert np.allclose(pairs[4] * 1e6, [1.4, 0.1]) and np.allclose(pairs[6] * 1e6, [20.0, 0.1])


@pytest.mark.parametrize("levels", [[1e-6], [1e-6, 1e-6], [-1e-6, 1e-6], [1e-6, np.nan]])
def test_level_pairs_refuses_what_is_no_level_set(levels) -> None:
    with pytest.raises(MappingError, match="at least 2 distinct levels"):
        level_pairs(levels)


levels_st = st.lists(
    st.floats(1e-8, 1e-4), min_size=2, max_size=5, unique_by=lambda g: round(g, 10)
).filter(lambda v: min(np.diff(sorted(v))) > 1e-9)
weights_st = arrays(np.float64, (3, 4), elements=st.floats(-5, 5))


@settings(max_examples=60, deadline=None)
@given(levels=levels_st, w=weights_st)
def test_snapped_targets_are_levels_nearest_the_weight(levels, w) -> None:
    """Every target is one of the levels, and each weight's pair realises the level difference
    nearest ``w/k`` (no pair of levels comes closer)."""
    lv = np.sort(levels)
    m = map_weights(w, None, g_min=lv[0], g_max=lv[-1])
    snapped = snap_to_levels(m, lv)
    t = snapped.targets
    assert np.all(np.isin(t, lv))
    dg = m.targets[:, 0::2] - m.targets[:, 1::2]
    got = np.abs(t[:, 0::2] - t[:, 1::2] - dg)
    best = np.abs(dg[..., None] - (lv[:, None] - lv[None, :]).ravel()).min(axis=-1)
    assert np.allclose(got, best, rtol=0, atol=1e-12 * lv[-1])
    assert snapped.k == m.k and (snapped.g_min, snapped.g_max) == (lv[0], lv[-1])


@settings(max_examples=40, deadline=None)
@given(levels=levels_st, w=weights_st, b=arrays(np.float64, (3,), elements=st.floats(-5, 5)))
def test_fine_tuning_sees_the_weights_the_array_will_hold(levels, w, b) -> None:
    """The quantisation-aware forward pass (:class:`LevelGrid`) and the deployment's mapping
    (per-output scale, map to the levels' window, snap) realise the same weights."""
    lv = np.sort(levels)
    wq, bq = LevelGrid(tuple(lv)).realise(torch.as_tensor(w), torch.as_tensor(b))
    wn, gain = normalise_outputs(w)
    m = snap_to_levels(map_weights(wn, None, g_min=lv[0], g_max=lv[-1]), lv)
    held = m.k * (m.targets[:, 0::2] - m.targets[:, 1::2]).T * gain[:, None]
    assert np.allclose(wq.numpy(), held, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(w).max()))
    assert np.array_equal(bq.numpy(), b)  # the bias stays digital


# -- on the paper device --------------------------------------------------------------------------


def test_levels_put_every_cell_on_a_measured_level(erm, moons, paper_profile) -> None:
    """Physics bench ``paper`` seed 0, ERM, 200 points: without the step 15 % of the cells
    converge (targets between the three levels) and the network keeps 65 %; with it every
    target is a measured level, every cell converges, the bias row is gone (40 cells instead of
    54) and the hardware accuracy is ≥ 0.9 (0.965 measured)."""
    lv = paper_profile.pulse_response.level_conductances
    assert paper_profile.pulse_response.levels == 3 and len(lv) == 3
    x, y = moons.x_test[:200], moons.y_test[:200]
    results = {}
    for name, on in (("plain", False), ("levels", True)):
        with Crossbar(_physics("paper", 0)) as xb:
            o = DeployOptions(profile=paper_profile, levels=on)
            results[name] = run_on_crossbar(
                xb, erm, x, y, x_train=moons.x_train, y_train=moons.y_train, options=o
            )
    plain, lev = results["plain"], results["levels"]
    assert plain.programming["cells"] == 54 and plain.programming["fraction_converged"] < 0.5
    assert lev.programming["cells"] == 40 and lev.programming["fraction_converged"] == 1.0
    assert lev.hardware_accuracy >= 0.9 and lev.hardware_accuracy - plain.hardware_accuracy > 0.15
    info = lev.loop["levels"]
    assert np.allclose(info["levels_s"], sorted(lv))
    assert [len(p["gain"]) for p in info["periphery"]] == [5, 2]
    assert info["finetune"]["accuracy_after"] > 0.9


def test_refresh_reprograms_the_cells_whose_filament_dissolved(erm, moons, paper_profile) -> None:
    """``paper`` dissolves 40 % of its filaments within seconds of a SET. Deployed with the
    levels, then left 100 s: without refresh many of the cells programmed to a SET level have
    fallen to the floor; after three refresh rounds (10 s, read, reprogram) at most half as
    many have, and the refresh pulses are counted in the cells' totals."""
    x, y = moons.x_test[:50], moons.y_test[:50]
    fallen, pulses = {}, {}
    for on in (False, True):
        backend = _physics("paper", 0)
        with Crossbar(backend) as xb:
            o = DeployOptions(profile=paper_profile, levels=True, refresh=on)
            r = run_on_crossbar(
                xb, erm, x, y, x_train=moons.x_train, y_train=moons.y_train, options=o
            )
            xb.wait(100.0)
            g = backend.sim.true_conductance(0.2)
        set_level = r.loop["levels"]["levels_s"][1]
        high = np.isfinite(r.target_map) & (r.target_map >= set_level * 0.99)
        fallen[on] = int(np.sum(g[high] < 0.3 * r.target_map[high]))
        pulses[on] = r.programming["mean_pulses"]
    assert fallen[False] >= 4
    assert fallen[True] <= fallen[False] / 2
    assert pulses[True] > pulses[False]


# -- switches and bad input -----------------------------------------------------------------------


def test_levels_and_refresh_are_off_by_default_and_checked(erm, moons) -> None:
    o = DeployOptions()
    assert (o.levels, o.refresh) == (False, False)
    x, y = moons.x_test[:5], moons.y_test[:5]
    cases = [
        (DeployOptions(levels=True), {"y_train": moons.y_train}, "needs the array's deployment"),
        (DeployOptions(levels=True), {}, "needs y_train"),
        (DeployOptions(refresh=True, refresh_rounds=0), {}, "refresh needs refresh_rounds >= 1"),
    ]
    for options, extra, message in cases:
        with Crossbar(_physics("optimized", 0)) as xb, pytest.raises(ValueError, match=message):
            run_on_crossbar(xb, erm, x, y, x_train=moons.x_train, options=options, **extra)


def test_xbar_infer_levels_needs_a_profile(tmp_path, erm, capsys) -> None:
    from inference.storage import save_model

    stem = tmp_path / "erm"
    save_model(erm, stem)
    code = main(
        ["infer", "--bench", "sim", "--model", str(stem), "--levels", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--levels needs --deployment-profile FILE" in err[0]


def test_study_knows_the_new_steps() -> None:
    assert parse_loops(["levels+refresh"]) == (("levels", "refresh"),)
    (full,) = parse_loops(["full"])
    assert set(full) == {"fault-aware", "chip-in-loop", "drift-compensation", "levels", "refresh"}
    assert len(parse_loops(["ablation"])) == 6
