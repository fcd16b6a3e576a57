"""The deployment noise model (inference.hardware_model): each effect against its definition,
the MVM path against the deployment's own (`crossbar_outputs` on an ideal crossbar holding the
same conductances), and hardware-aware training's torch mapping against `map_weights`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fakes import IdealCrossbar
from hypothesis import given, settings
from hypothesis import strategies as st

from crossbar.core import Crossbar
from crossbar.deployment_profile import DeploymentProfile
from crossbar.mapping import map_weights
from inference.data import make_moons_dataset
from inference.deploy import DeployOptions, crossbar_outputs, place_model, software_outputs
from inference.hardware_model import (
    DeploymentModel,
    Draws,
    ProfileShapeError,
    check_profile_shape,
    failed_spread,
    load_deployment_model,
    torch_targets,
)
from inference.models import MOONS_SIZES
from inference.noise import UsabilityModel, evaluate
from inference.training import train_erm


def profile_doc(shape: tuple[int, int] = (10, 10), **changes: dict) -> dict:
    """A valid deployment profile of an ideal device (no noise, no error, nothing stuck);
    ``changes`` update its sections (``programming={"converged_fraction": 0.5}``)."""
    from test_bad_input import _deployment_profile

    rows, cols = shape
    doc = _deployment_profile()  # a valid 2×2 profile, made ideal and resized here
    doc.update(bench="test", shape=[rows, cols], bench_time=10.0)
    doc["read_noise"].update(sigma_rel=0.0, sigma_rel_per_cell=[0.0, 0.0])
    doc["programming"].update(
        targets=[2e-6, 1e-5], sigma_rel=0.0, sigma_rel_by_target=[0.0, 0.0],
        settle_times=[1.0, 10.0, 100.0], drift_nu_mean=0.0, drift_nu_std=0.0,
    )  # fmt: skip
    doc["pulse_response"].update(levels=30, dynamic_range=1000.0)
    doc["window"].update(g_min=[[1e-7] * cols] * rows, g_max=[[1e-4] * cols] * rows)
    for section, values in changes.items():
        doc[section].update(values)
    return doc


def make_profile(shape: tuple[int, int] = (10, 10), **changes: dict) -> DeploymentProfile:
    return DeploymentProfile.from_dict(profile_doc(shape, **changes))


@pytest.fixture(scope="module")
def moons_erm():
    """The two-moons data and its ERM network (seed 0)."""
    data = make_moons_dataset(seed=0)
    return data, train_erm(data, MOONS_SIZES, seed=0)


def _blocks(n: int, value: float = 1e-5, shape: tuple[int, int] = (3, 10)) -> torch.Tensor:
    return torch.full((n, *shape), value, dtype=torch.float64)


def _draws(n: int, seed: int = 0) -> Draws:
    return Draws(torch.Generator().manual_seed(seed), n, torch.float64)


# -- the whole network ----------------------------------------------------------------------------


def test_an_ideal_device_computes_the_software_network_exactly(moons_erm) -> None:
    moons, erm = moons_erm
    model = DeploymentModel(make_profile(), read_noise="none")
    logits = model.logits(erm, moons.x_test, x_calib=moons.x_train, n_trials=4, seed=3)
    ref = software_outputs(erm, moons.x_test)
    assert logits.shape == (4, len(moons.x_test), 2)
    inside = np.all(np.abs(moons.x_test) <= np.abs(moons.x_train).max(), axis=1)
    assert inside.mean() > 0.9  # inputs beyond the calibration range are clipped, as deployed
    assert np.allclose(logits[:, inside], ref[None, inside], rtol=1e-9, atol=1e-9)
    acc = model.accuracy(erm, moons.x_test, moons.y_test, x_calib=moons.x_train, n_trials=4)
    assert np.all(acc == np.mean(logits[0].argmax(1) == moons.y_test))


def test_the_mvm_path_is_the_deployments_own(moons_erm) -> None:
    """Same conductances → the model's logits equal crossbar_outputs on an ideal crossbar."""
    moons, erm = moons_erm
    profile = make_profile(
        programming={"converged_fraction": 0.7, "sigma_rel_by_target": [0.05, 0.05]},
        window={"stuck": [[1, 3], [4, 1]], "stuck_fraction": 0.02},
    )
    seen: list[np.ndarray] = []

    def mvm(g: np.ndarray, v: np.ndarray) -> np.ndarray:
        seen.append(g.copy())
        assert g.shape == (1, 10, 10) and v.shape[-1] == 10
        return np.matmul(v, g)

    model = DeploymentModel(profile, read_noise="none", stuck="profile", mvm=mvm)
    x = moons.x_test[:50]
    logits = model.logits(erm, x, x_calib=moons.x_train, n_trials=1, seed=11)[0]
    placement = place_model(erm, moons.x_train, (10, 10), DeployOptions())
    g = seen[0][0].copy()
    l2 = placement.layers[1]
    g[l2.row_start : l2.row_start + l2.n_rows, l2.col_start : l2.col_start + l2.n_cols] = seen[1][
        0, l2.row_start : l2.row_start + l2.n_rows, l2.col_start : l2.col_start + l2.n_cols
    ]
    assert g[1, 3] == pytest.approx(math.sqrt(1e-7 * 1e-4))  # the stuck cell holds its value
    with Crossbar(IdealCrossbar(g)) as xb:
        ref, _ = crossbar_outputs(xb, placement, x, erm.activation)
    assert np.allclose(logits, ref, rtol=1e-9, atol=1e-12)
    assert not np.allclose(logits, software_outputs(erm, x), rtol=1e-3)  # the errors are there


def test_trials_are_seeded_and_independent(moons_erm) -> None:
    moons, erm = moons_erm
    model = DeploymentModel(
        make_profile(read_noise={"sigma_rel": 0.05}, programming={"converged_fraction": 0.8})
    )
    kw = {"x_calib": moons.x_train, "n_trials": 6}
    a = model.logits(erm, moons.x_test, seed=1, **kw)
    assert np.array_equal(a, model.logits(erm, moons.x_test, seed=1, **kw))
    assert not np.allclose(a, model.logits(erm, moons.x_test, seed=2, **kw))
    assert len({float(a[t].sum()) for t in range(6)}) == 6  # every trial its own realisation


def test_profile_shape_is_checked(moons_erm) -> None:
    moons, erm = moons_erm
    model = DeploymentModel(make_profile((4, 4)))
    with pytest.raises(ValueError, match="layer 1 needs 10 columns"):
        model.accuracy(erm, moons.x_test, moons.y_test, x_calib=moons.x_train)
    placement = place_model(erm, moons.x_train, (10, 10))
    with pytest.raises(ProfileShapeError, match="4x4 array but the placement is for 10x10"):
        model.logits(erm, moons.x_test, placement=placement)
    with pytest.raises(ProfileShapeError, match="4x4 array but the bench is 10x10"):
        check_profile_shape(make_profile((4, 4)), (10, 10), "the bench")
    check_profile_shape(make_profile((4, 4)), (4, 4), "the bench")


def test_options_are_checked() -> None:
    p = make_profile()
    for bad in ({"stuck": "sometimes"}, {"read_noise": "loud"}, {"failed": "up"},
                {"t_inference": -1.0}, {"quantise": 1}, {"stuck": [(10, 0)]}):  # fmt: skip
        with pytest.raises(ValueError):
            DeploymentModel(p, **bad)


def test_load_deployment_model_reads_the_file(tmp_path) -> None:
    path = make_profile(programming={"converged_fraction": 0.9}).save(tmp_path / "p.json")
    model = load_deployment_model(path, drift_compensation=True)
    d = model.describe()
    assert d["source"] == str(path) and d["converged_fraction"] == 0.9
    assert d["drift_compensation"] is True and d["kind"] == "deployment"


# -- programming ------------------------------------------------------------------------------


def test_programming_mixes_converged_and_failed_cells() -> None:
    model = DeploymentModel(
        make_profile(
            read_noise={"sigma_rel": 0.02},
            programming={"converged_fraction": 0.7, "sigma_rel_by_target": [0.5, 0.5]},
        ),
        failed="below",
    )
    assert model.failed == "below"
    target = 1e-5
    sigma_c = math.sqrt(0.03**2 / 3 + 0.02**2)  # tol and read noise, below the measured median
    assert model.sigma_converged == pytest.approx(sigma_c)
    m, a, fixed = model.program(_blocks(4000), _draws(4000))
    g = (target * m + a).numpy().ravel()
    conv = (m > 0).numpy().ravel()
    n = conv.size
    assert abs(conv.mean() - 0.7) < 4 * math.sqrt(0.7 * 0.3 / n)
    assert np.std(g[conv] / target - 1) == pytest.approx(sigma_c, rel=0.02)
    failed = g[~conv]
    assert np.all((failed >= 1e-7) & (failed <= target))  # between the floor and the target
    u = np.log(failed / 1e-7) / np.log(target / 1e-7)  # log-uniform there
    assert np.quantile(u, [0.25, 0.5, 0.75]) == pytest.approx([0.25, 0.5, 0.75], abs=0.01)
    assert not fixed.any()
    window = DeploymentModel(model.profile, failed="window")
    m, a, _ = window.program(_blocks(4000), _draws(4000))
    assert float(a.max()) > 5 * target  # anywhere in the window, above the target too


@settings(max_examples=30, deadline=None)
@given(st.floats(0.05, 1.0), st.floats(0.3, 0.95), st.floats(0.0, 0.05))
def test_failed_spread_reproduces_the_measured_sigma(sigma: float, p_c: float, s_c: float):
    s_f = failed_spread(sigma, s_c, p_c, cap=math.log(1000.0))
    var_f = math.exp(2 * s_f**2) - 2 * math.exp(s_f**2 / 2) + 1  # E[(e^{s Z} − 1)²]
    total = p_c * s_c**2 + (1 - p_c) * var_f
    if s_f < math.log(1000.0) - 1e-9 and sigma**2 > p_c * s_c**2:
        assert total == pytest.approx(sigma**2, rel=1e-6)
    assert failed_spread(sigma, s_c, 1.0, cap=7.0) == 0.0


def test_failed_cells_spread_around_their_target() -> None:
    profile = make_profile(
        read_noise={"sigma_rel": 0.02},
        programming={"converged_fraction": 0.8, "sigma_rel": 0.4, "sigma_rel_by_target": [0.05]},
    )
    assert DeploymentModel(profile).failed == "spread"  # the default
    model = DeploymentModel(profile, failed="spread")
    s_f = failed_spread(0.4, model.sigma_converged, 0.8, math.log(1000.0))
    assert model.sigma_failed == pytest.approx(s_f) and 0.3 < s_f < 1.5
    m, a, _ = model.program(_blocks(4000), _draws(4000))
    assert not a.any()  # every cell keeps its gradient path through its target (training)
    g = (1e-5 * m).numpy().ravel()
    failed = np.abs(np.log(g / 1e-5)) > 0.25  # beyond any converged cell
    assert np.mean(g[failed] > 1e-5) == pytest.approx(0.5, abs=0.05)  # as often above as below
    assert np.std(g / 1e-5 - 1) == pytest.approx(0.4, rel=0.15)  # the measured σ_prog


def test_a_cell_is_clipped_into_its_own_window_and_stuck_cells_hold() -> None:
    g_max = [[1e-4] * 10 for _ in range(10)]
    g_max[0][2] = 5e-6
    profile = make_profile(window={"g_max": g_max, "stuck": [[1, 4]], "stuck_fraction": 0.01})
    model = DeploymentModel(profile, stuck="profile")
    cells = (np.arange(0, 3), np.arange(0, 10))
    m, a, fixed = model.program(_blocks(3), _draws(3), cells)
    g = (1e-5 * m + a).numpy()
    assert np.all(g[:, 0, 2] == pytest.approx(5e-6))  # at most the cell's G_max
    assert fixed.numpy()[:, 1, 4].all() and fixed.sum() == 3
    assert np.all(g[:, 1, 4] == pytest.approx(math.sqrt(1e-7 * 1e-4)))
    # the same profile with random positions: the measured fraction, values from the pool
    rnd = DeploymentModel(profile, stuck="random")
    m, a, fixed = rnd.program(_blocks(20000), _draws(20000))
    frac = fixed.double().mean().item()
    assert abs(frac - 0.01) < 4 * math.sqrt(0.01 * 0.99 / fixed.numel())
    assert np.allclose(a[fixed].numpy(), math.sqrt(1e-7 * 1e-4))
    # a given map (e.g. fault-aware placement moved the layer away): exactly those cells
    given = DeploymentModel(profile, stuck=[(0, 0), (2, 9)])
    _, _, fixed = given.program(_blocks(2), _draws(2), cells)
    assert {tuple(c) for c in np.argwhere(fixed[0].numpy())} == {(0, 0), (2, 9)}
    assert not DeploymentModel(profile, stuck="none").program(_blocks(2), _draws(2), cells)[2].any()


def test_few_levels_round_the_targets() -> None:
    few = make_profile(
        pulse_response={"levels": 4}, programming={"converged_fraction": 0.2}
    )  # the verify fails: the levels are real
    model = DeploymentModel(few, read_noise="none")
    levels = np.geomspace(1e-7, 1e-4, 4)
    assert np.allclose(model.levels, levels)
    m, a, _ = DeploymentModel(few, programming=False).program(_blocks(2, 8e-6), _draws(2))
    assert np.allclose((8e-6 * m + a).numpy(), levels[2])  # 1e-5 is the nearest in ln G
    analog = make_profile(pulse_response={"levels": 4}, programming={"converged_fraction": 0.9})
    assert DeploymentModel(analog).levels is None  # the verify converged: the count is wrong
    assert DeploymentModel(make_profile(pulse_response={"levels": 12})).levels is None
    assert DeploymentModel(make_profile(), quantise=8).levels.size == 8
    assert DeploymentModel(few, quantise=None).levels is None


def _three_levels(**programming: float) -> DeploymentProfile:
    """The ``paper`` kind of device: a filament of three measured levels (0.1, 1.4, 20 µS), the
    HRS spread 0.1 and the levels' 0.2 in ln G over the cells, every verify converging on them
    (the characterisation aims at the levels)."""
    rows = np.exp(np.linspace(-1.0, 1.0, 10))  # a log spread over the 10 columns
    return make_profile(
        pulse_response={"levels": 3, "level_conductances": [1e-7, 1.4e-6, 2e-5]},
        programming={"converged_fraction": 0.95, **programming},
        window={
            "g_min": [list(1e-7 * rows**0.1)] * 10,
            "g_max": [list(2e-5 * rows**0.2)] * 10,
        },
    )


def test_a_discrete_device_quantises_to_its_measured_levels() -> None:
    model = DeploymentModel(_three_levels())
    assert model.discrete
    assert np.allclose(model.levels, [1e-7, 1.4e-6, 2e-5])  # although 95 % converged
    spread = np.std(np.tile(np.linspace(-1.0, 1.0, 10), 10), ddof=1)
    assert model.level_sigma == pytest.approx((0.1 * spread, 0.2 * spread))
    assert model.describe()["p_upper"] == 0.8
    # an explicit count keeps the log-spaced levels; analog profiles do not quantise
    assert not DeploymentModel(_three_levels(), quantise=3).discrete
    assert DeploymentModel(_three_levels(), quantise=3).levels[1] == pytest.approx(
        math.sqrt(1e-7 * 1e-4)
    )
    with pytest.raises(ValueError, match="p_upper"):
        DeploymentModel(_three_levels(), p_upper=1.5)


def test_unreachable_targets_end_on_a_neighbouring_level() -> None:
    model = DeploymentModel(_three_levels(), stuck="none", p_upper=0.7, failed="below")
    n = 4000
    sig = model.level_sigma[1]
    for target, lower, upper in ((6e-6, 1.4e-6, 2e-5), (1e-6, 1e-7, 1.4e-6)):
        m, a, _ = model.program(_blocks(n, target, (1, 1)), _draws(n, 3))
        g = (target * m + a).numpy().ravel()
        up = np.abs(np.log(g / upper)) < 5 * sig
        down = np.abs(np.log(g / lower)) < 5 * max(sig, model.level_sigma[0])
        assert (up | down).all() and not (up & down).any()
        assert up.mean() == pytest.approx(0.7, abs=0.03)
        assert np.std(np.log(g[up] / upper)) == pytest.approx(sig, rel=0.1)
    # a target within the level's spread of one converges on it (σ_c = tol/√3 here)
    m, a, _ = model.program(_blocks(n, 1.5e-6, (1, 1)), _draws(n, 3))
    g = (1.5e-6 * m + a).numpy().ravel()
    conv = np.abs(g / 1.4e-6 - 1) < 0.1
    assert conv.mean() == pytest.approx(0.95, abs=0.02)
    # past the top level: the top level
    m, a, _ = model.program(_blocks(n, 1e-4, (1, 1)), _draws(n, 3))
    assert np.median((1e-4 * m + a).numpy()) == pytest.approx(2e-5, rel=0.05)


def test_dissolution_follows_the_measured_share_by_settle_time() -> None:
    by = [0.1, 0.15, 0.2]  # at the settle times 1, 10, 100 s
    model = DeploymentModel(_three_levels(dissolved_fraction=0.2, dissolved_by_settle=by))
    assert model.dissolution(0.5) == pytest.approx(0.05)
    assert model.dissolution(1.0) == pytest.approx(0.1)
    assert model.dissolution(math.sqrt(10.0)) == pytest.approx(0.125)
    assert model.dissolution(1e4) == pytest.approx(0.2)
    m, a, fixed = model.program(_blocks(5000, 2e-5, (1, 1)), _draws(5000))
    mt, at = model.age(m, a, fixed, _draws(5000, 1))  # at t_inference = 1 s
    gone = ((mt == 0) & (at == 1e-7)).numpy()  # dissolved to the floor
    assert gone.mean() == pytest.approx(0.1, abs=0.015)
    assert ((mt == 0) & ~torch.from_numpy(gone)).double().mean().item() < 0.06  # failed verifies
    # an older profile (no share by settle time): linear up to the last settle time
    old = DeploymentModel(_three_levels(dissolved_fraction=0.2))
    assert old.dissolution(10.0) == pytest.approx(0.02)


def test_dissolution_before_the_first_settle_time_follows_the_share_right_after() -> None:
    by = [0.1, 0.15, 0.2]  # at the settle times 1, 10, 100 s
    early = {"dissolved_right_after": 0.04, "seconds_right_after": 0.01}
    model = DeploymentModel(_three_levels(dissolved_by_settle=by, **early))
    assert model.dissolution(0.005) == pytest.approx(0.02)  # linear up to the reads' end
    assert model.dissolution(0.01) == pytest.approx(0.04)
    assert model.dissolution(0.1) == pytest.approx(0.07)  # then in ln t up to 1 s
    assert model.dissolution(1.0) == pytest.approx(0.1)
    assert model.dissolution(10.0) == pytest.approx(0.15)


def test_each_cell_relaxes_by_its_own_amount_with_the_measured_spread() -> None:
    relax = {"relaxation_rel": -0.05, "relaxation_std": 0.1}
    model = DeploymentModel(make_profile(programming=relax), programming=False, stuck="none")
    m, a, fixed = model.program(_blocks(20000, 1e-5, (1, 1)), _draws(20000))
    mt, _ = model.age(m, a, fixed, _draws(20000, 1))  # at t_inference = t₁: the whole of it
    assert mt.mean().item() == pytest.approx(0.95, abs=0.003)
    assert mt.std().item() == pytest.approx(0.1, rel=0.03)
    half, _ = model.age(m, a, fixed, _draws(20000, 1), 0.5)  # half-way to t₁: half of it
    assert half.std().item() == pytest.approx(0.05, rel=0.03)


def test_cells_age_in_the_order_the_deployment_programs_them(moons_erm) -> None:
    moons, erm = moons_erm
    by = {"seconds_per_cell": 0.05, "dissolved_by_settle": [0.3, 0.3, 0.3]}
    profile = make_profile(programming=by)
    model = DeploymentModel(profile, stuck="none")
    placement = model.placement(erm, moons.x_train)
    ages = model.cell_ages(placement)
    used = placement.used_mask()
    # row-major: the first programmed cell waits for all the others, the last for none
    order = ages[used]
    n = int(used.sum())
    assert order == pytest.approx(0.05 * np.arange(n - 1, -1, -1))
    assert (ages[~used] == 0).all()
    # younger cells have had less time to dissolve: p = 0.3·t/1 s below the first settle time
    assert model.describe()["ages"] == "programming order"
    m, a, fixed = model.program(_blocks(4000, 1e-5, (1, 2)), _draws(4000))
    mt, _ = model.age(m, a, fixed, _draws(4000, 1), torch.tensor([[0.1, 1.0]]))
    gone = (mt == 0).double().mean(dim=0).numpy().ravel()
    assert gone == pytest.approx([0.03, 0.3], abs=0.025)
    # an explicit t_inference (or an older profile without the time per cell): every cell alike
    assert (DeploymentModel(profile, t_inference=2.0).cell_ages(placement) == 2.0).all()
    assert DeploymentModel(make_profile()).describe()["ages"] == "t_inference"


# -- time after programming, drift compensation -------------------------------------------------


def test_relaxation_drift_and_dissolution_at_the_inference_time() -> None:
    profile = make_profile(
        programming={
            "relaxation_rel": -0.1,
            "drift_nu_mean": 0.05,
            "drift_nu_std": 0.0,
            "dissolved_fraction": 0.2,
        }
    )
    model = DeploymentModel(profile, t_inference=1000.0)
    m, a, fixed = model.program(_blocks(5000), _draws(5000))
    mt, at = model.age(m, a, fixed, _draws(5000, 1))
    kept = (mt > 0).numpy()
    assert (~kept).mean() == pytest.approx(0.2, abs=0.01)  # t past the last settle time
    assert np.allclose((mt / m).numpy()[kept], 0.9 * 1000.0**-0.05)
    assert np.allclose(at.numpy()[~kept], 1e-7)  # dissolved to the floor
    early = DeploymentModel(profile, t_inference=10.0)
    mt, at = early.age(m, a, fixed, _draws(5000, 1))
    assert (mt == 0).double().mean().item() == pytest.approx(0.2 * 10 / 100, abs=0.01)


def test_global_drift_compensation_undoes_a_common_drift(moons_erm) -> None:
    moons, erm = moons_erm
    drift = make_profile(programming={"drift_nu_mean": 0.1, "drift_nu_std": 0.0})
    kw = {"x_calib": moons.x_train, "n_trials": 2, "seed": 0}
    ideal = software_outputs(erm, moons.x_test[:100])
    plain = DeploymentModel(drift, t_inference=1e4, read_noise="none")
    comp = DeploymentModel(drift, t_inference=1e4, read_noise="none", drift_compensation=True)
    drifted = plain.logits(erm, moons.x_test[:100], **kw)
    # every conductance × 1e4^-0.1 = 0.4: the second layer's bias row is at a fixed voltage,
    # so the logits are not just scaled
    f = 1e4**-0.1
    assert np.abs(drifted[0] - ideal).max() > 0.3 * np.abs(ideal).max()
    l1 = erm.augmented_weights()[0]
    h = np.maximum(f * (moons.x_test[:100] @ l1[:, :-1].T + l1[:, -1]), 0.0)
    l2 = erm.augmented_weights()[1]
    assert np.allclose(drifted[0], f * (h @ l2[:, :-1].T + l2[:, -1]), rtol=1e-9, atol=1e-9)
    assert np.allclose(comp.logits(erm, moons.x_test[:100], **kw)[0], ideal, rtol=1e-6, atol=1e-9)


# -- read noise ---------------------------------------------------------------------------------


def test_read_noise_is_per_column_current_or_per_cell() -> None:
    model = DeploymentModel(make_profile(read_noise={"sigma_rel": 0.05}))
    g = torch.full((1, 3, 4), 1e-5, dtype=torch.float64)
    v = torch.tensor([[[0.1, 0.2, 0.2]]], dtype=torch.float64).expand(1, 20000, 3)
    i = model._currents(g, v, _draws(1), None)[0].numpy()
    assert np.std(i / 5e-6 - 1) == pytest.approx(0.05, rel=0.03)
    cell = DeploymentModel(model.profile, read_noise="cell")
    i = cell._currents(g, v, _draws(1), None)[0].numpy()
    expected = 0.05 * math.sqrt(0.01 + 0.04 + 0.04) * 1e-5  # √Σ(V G)² of the column
    assert np.std(i - 5e-6) == pytest.approx(expected, rel=0.03)


# -- training: the torch mapping ------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 5),
    st.integers(1, 5),
    st.floats(0.1, 10.0),
    st.integers(0, 2**31 - 1),
)
def test_torch_targets_are_map_weights(n_in: int, n_out: int, scale: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(2, n_out, n_in)) * scale
    b = rng.normal(size=(2, n_out)) * scale
    h = rng.normal(size=(2, 7, n_in))
    o = DeployOptions()
    targets, k, s_x, x_max = torch_targets(
        torch.from_numpy(w), torch.from_numpy(b), torch.from_numpy(h),
        g_min=o.g_min, g_max=o.g_max, v_bias=o.v_bias, v_read_max=o.v_read_max,
    )  # fmt: skip
    for m in range(2):
        ref = map_weights(
            w[m], b[m], g_min=o.g_min, g_max=o.g_max, v_bias=o.v_bias,
            x_max=float(np.abs(h[m]).max()), v_read_max=o.v_read_max,
        )  # fmt: skip
        assert np.allclose(targets[m].numpy(), ref.targets, rtol=1e-12, atol=1e-18)
        assert k[m].item() == pytest.approx(ref.k) and s_x[m].item() == pytest.approx(
            ref.input_scale
        )


def test_train_layer_of_an_ideal_device_is_the_plain_layer_with_its_gradient() -> None:
    model = DeploymentModel(make_profile(), read_noise="none")
    w = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    x = torch.randn(9, 2, dtype=torch.float64)
    y = model.train_layer(w, b, x, Draws([torch.Generator().manual_seed(k) for k in range(3)]))
    plain = torch.matmul(x, w.transpose(1, 2)) + b[:, None, :]
    assert torch.allclose(y, plain, rtol=1e-9, atol=1e-12)
    grads = torch.autograd.grad(y.sum(), (w, b))
    plain_grads = torch.autograd.grad(plain.sum(), (w, b))
    for g, ref in zip(grads, plain_grads):
        assert torch.allclose(g, ref, rtol=1e-9)
    zero = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)  # biases start at 0
    y = model.train_layer(w, zero, x, Draws([torch.Generator().manual_seed(k) for k in range(3)]))
    (gb,) = torch.autograd.grad(y.sum(), zero)
    assert torch.allclose(gb, torch.full_like(gb, 9.0))


def test_usability_model_is_the_section_2_model(moons_erm) -> None:
    moons, erm = moons_erm
    um = UsabilityModel(usability=0.5)
    acc = um.accuracy(erm, moons.x_test, moons.y_test, n_trials=5, seed=2)
    ref = evaluate(erm, moons.x_test, moons.y_test, usability=0.5, n_trials=5, seed=2)
    assert np.array_equal(acc, ref)
    assert um.describe() == {"kind": "usability", "usability": 0.5, "sigma": -math.log(0.5)}
    with pytest.raises(ValueError, match="exactly one"):
        UsabilityModel()
    # training noise: w·exp(σε) per element and model
    w = torch.ones(2, 3, 4)
    b = torch.zeros(2, 3)
    out = um.train_layer(w, b, torch.eye(4)[None].expand(2, 4, 4), Draws(
        [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]))  # fmt: skip
    logs = torch.log(out).flatten()
    assert logs.std().item() == pytest.approx(-math.log(0.5), rel=0.35) and out.min() > 0
