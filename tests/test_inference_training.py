"""ERM, BayesMulti and the BO of (p1, p2) (METHODS section 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.profile import DeviceNoiseProfile
from inference.data import make_digits_dataset, make_moons_dataset
from inference.models import MOONS_SIZES
from inference.noise import evaluate
from inference.training import (
    P_TOTAL_MAX,
    bayes_opt_noise,
    best_of_trace,
    fit_network,
    fit_networks,
    random_triangle_points,
    robustness_radius,
    train_bayesmulti,
    train_erm,
    triangle_grid,
)


@pytest.fixture(scope="module")
def moons():
    return make_moons_dataset(seed=0, noise=0.2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_erm_on_moons_reaches_95_percent(seed: int) -> None:
    ds = make_moons_dataset(seed=seed, noise=0.2)
    erm = train_erm(ds, MOONS_SIZES, seed=seed)
    assert erm.accuracies["test"] >= 0.95
    assert erm.method == "erm" and (erm.p1, erm.p2) == (0.0, 0.0)
    assert erm.accuracies["test"] == pytest.approx(erm.model.accuracy(ds.x_test, ds.y_test))


def test_digits_mlp_learns() -> None:
    ds = make_digits_dataset(seed=0)
    erm = train_erm(ds, (64, 32, 10), epochs=60, lr=0.02)
    assert erm.accuracies["test"] >= 0.9


def test_batched_training_equals_training_alone(moons) -> None:
    specs = [(0.3, 0.1), None, (0.0, 0.5)]
    batch = fit_networks(moons, MOONS_SIZES, specs, epochs=40, lr=0.05, seed=3, restarts=2)
    for spec, model in zip(specs, batch):
        alone = fit_network(moons, MOONS_SIZES, noise=spec, epochs=40, lr=0.05, seed=3, restarts=2)
        for a, b in zip(model.parameters(), alone.parameters()):
            assert torch.allclose(a, b, atol=1e-5)
    # noise actually changes training
    assert not torch.allclose(batch[0].layers[0].weight, batch[1].layers[0].weight)
    # the same holds with the noise on the weights
    wb = fit_networks(moons, MOONS_SIZES, specs[:2], noise_site="weights", epochs=30, lr=0.05)
    alone = fit_network(
        moons, MOONS_SIZES, noise=specs[0], noise_site="weights", epochs=30, lr=0.05
    )
    assert torch.allclose(wb[0].layers[0].weight, alone.layers[0].weight, atol=1e-5)
    assert wb[0].noise_site == "weights" and wb[1].noise is None
    assert not torch.allclose(wb[0].layers[0].weight, batch[0].layers[0].weight)


def test_minibatch_training(moons) -> None:
    model = fit_network(moons, MOONS_SIZES, epochs=40, lr=0.02, seed=0, restarts=2, batch_size=64)
    assert model.accuracy(moons.x_test, moons.y_test) >= 0.95
    again = fit_network(moons, MOONS_SIZES, epochs=40, lr=0.02, seed=0, restarts=2, batch_size=64)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))


def test_bayesmulti_returns_the_best_of_its_trace(moons) -> None:
    seen = []
    bm = train_bayesmulti(
        moons,
        MOONS_SIZES,
        usability=0.5,
        n_init=2,
        n_iter=3,
        seed=0,
        n_eval_trials=15,
        progress=seen.append,
    )
    assert len(bm.bo_trace) == 5 and len(seen) == 5
    assert [s.done for s in seen] == [1, 2, 3, 4, 5] and all(s.total == 5 for s in seen)
    assert {s.stage for s in seen} == {"BO"}
    assert [(s.values["p1"], s.values["p2"], s.values["score"]) for s in seen] == [
        (t["p1"], t["p2"], t["objective"]) for t in bm.bo_trace
    ]
    top = best_of_trace(bm.bo_trace)
    assert top["objective"] == max(t["objective"] for t in bm.bo_trace)
    assert (bm.p1, bm.p2) == (top["p1"], top["p2"])
    # the returned network is the one that scored best: re-scoring it reproduces the value
    again = evaluate(bm, moons.x_val, moons.y_val, usability=0.5, n_trials=15, seed=0 + 7919)
    assert float(np.mean(again)) == pytest.approx(top["objective"])
    for t in bm.bo_trace:
        assert t["p1"] >= 0 and t["p2"] >= 0 and t["p1"] + t["p2"] <= P_TOTAL_MAX + 1e-9
    assert [t["phase"] for t in bm.bo_trace] == ["init", "init", "bo", "bo", "bo"]


def test_bayesmulti_is_deterministic_for_a_seed(moons) -> None:
    kw = {"usability": 0.6, "n_init": 2, "n_iter": 2, "n_eval_trials": 10, "epochs": 60}
    a = train_bayesmulti(moons, MOONS_SIZES, seed=4, **kw)
    b = train_bayesmulti(moons, MOONS_SIZES, seed=4, **kw)
    c = train_bayesmulti(moons, MOONS_SIZES, seed=5, **kw)
    assert a.bo_trace == b.bo_trace
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)
    assert [(t["p1"], t["p2"]) for t in a.bo_trace] != [(t["p1"], t["p2"]) for t in c.bo_trace]


def test_train_accuracy_objective_and_profile_target(moons) -> None:
    bm = train_bayesmulti(
        moons, MOONS_SIZES, objective="train_accuracy", n_init=2, n_iter=0, epochs=60, seed=0
    )
    assert bm.objective == "train_accuracy" and bm.target is None
    assert max(t["objective"] for t in bm.bo_trace) == pytest.approx(bm.accuracies["train"])
    profile = DeviceNoiseProfile(
        name="dev",
        sigma=0.4,
        alpha_nm=0.6,
        usability=0.6 * math.exp(-0.4),
        lcis_start=0,
        lcis_length=3,
        l_min=5,
        mean_curve_v=[0, 1, 2, 3, 4],
        mean_curve_g=[1, 2, 3, 2, 4],
    )
    bp = train_bayesmulti(
        moons, MOONS_SIZES, profile=profile, n_init=2, n_iter=1, epochs=60, n_eval_trials=8
    )
    assert bp.target["profile"] == "dev" and bp.target["non_monotonic"] is True
    again = evaluate(bp, moons.x_val, moons.y_val, profile=profile, n_trials=8, seed=7919)
    assert float(np.mean(again)) == pytest.approx(max(t["objective"] for t in bp.bo_trace))


def test_bad_bayesmulti_inputs(moons) -> None:
    with pytest.raises(ValueError, match="usability"):
        train_bayesmulti(moons, MOONS_SIZES, usability=0.0, n_init=1, n_iter=0)
    with pytest.raises(ValueError, match="target"):
        train_bayesmulti(moons, MOONS_SIZES, n_init=1, n_iter=0)
    with pytest.raises(ValueError, match="objective"):
        train_bayesmulti(moons, MOONS_SIZES, usability=0.5, objective="loss")


def test_bo_finds_the_optimum_of_a_known_function() -> None:
    def f(p1: float, p2: float) -> float:
        return -((p1 - 0.3) ** 2) - (p2 - 0.5) ** 2

    trace = bayes_opt_noise(f, n_init=3, n_iter=12, seed=0)
    best = best_of_trace(trace)
    assert math.hypot(best["p1"] - 0.3, best["p2"] - 0.5) < 0.08
    # EI beats the random initial points
    assert best["objective"] > max(t["objective"] for t in trace[:3])


def test_triangle_grid_and_random_points() -> None:
    g = triangle_grid(0.01)
    assert len(g) == 96 * 97 // 2
    assert np.all(g >= 0) and np.all(g.sum(axis=1) <= P_TOTAL_MAX + 1e-9)
    pts = random_triangle_points(20_000, np.random.default_rng(0))
    assert np.all(pts >= 0) and np.all(pts.sum(axis=1) <= P_TOTAL_MAX + 1e-12)
    # uniform on the triangle: mean at the centroid (0.95/3, 0.95/3)
    assert np.allclose(pts.mean(axis=0), P_TOTAL_MAX / 3, atol=0.01)


def test_robustness_radius_formula() -> None:
    # r = [ln(1.5 - f) - Θ ln(1 - p2)] / [ln p1 - ln(1 - p2)]
    assert robustness_radius(0.2, 0.0, 10, 0.9) == pytest.approx(math.log(0.6) / math.log(0.2))
    expected = (math.log(0.6) - 10 * math.log(0.9)) / (math.log(0.2) - math.log(0.9))
    assert robustness_radius(0.2, 0.1, 10, 0.9) == pytest.approx(expected)
    assert robustness_radius(0.0, 0.3, 10, 0.9) == 0.0
    with pytest.raises(ValueError):
        robustness_radius(0.6, 0.5, 10, 0.9)


@given(st.floats(0.01, 0.9), st.floats(0.5, 1.0))
@settings(max_examples=40, deadline=None)
def test_radius_grows_with_p1_when_p2_is_zero(p1: float, f: float) -> None:
    r = robustness_radius(p1, 0.0, 100, f)
    assert r >= 0
    if f < 1.0 and p1 < 0.89:
        assert robustness_radius(p1 + 0.01, 0.0, 100, f) >= r


# -- the methods of issue 15: hardware-aware training, the linear control, any hardware target --


def _typical_like_profile():
    """A noisy deployment profile: 75 % of the cells converge, 3 % stuck, 3 % read noise."""
    from test_inference_hardware_model import make_profile

    return make_profile(
        read_noise={"sigma_rel": 0.03},
        programming={"converged_fraction": 0.75, "sigma_rel_by_target": [0.05, 0.5]},
        window={"stuck": [[0, 3], [5, 1], [9, 9]], "stuck_fraction": 0.03},
    )


def test_train_method_refuses_unknown_methods_and_missing_hardware(moons) -> None:
    from inference.training import train_method

    with pytest.raises(ValueError, match="method must be one of erm, bayesmulti, hwa"):
        train_method("sgd", moons, MOONS_SIZES)
    for method in ("hwa", "bayesmulti+hwa"):
        with pytest.raises(ValueError, match="hardware"):
            train_method(method, moons, MOONS_SIZES, epochs=5)
    with pytest.raises(ValueError, match="target"):
        train_method("bayesmulti", moons, MOONS_SIZES, epochs=5)


def test_hwa_on_an_ideal_device_is_erm(moons) -> None:
    """The realisation path adds nothing of its own: no noise → ERM's network."""
    from test_inference_hardware_model import make_profile

    from inference.hardware_model import DeploymentModel
    from inference.training import train_hwa

    ideal = DeploymentModel(make_profile(), read_noise="none")
    kw = {"epochs": 150, "lr": 0.05, "restarts": 1, "seed": 3}
    hwa = train_hwa(moons, MOONS_SIZES, hardware=ideal, **kw)
    erm = train_erm(moons, MOONS_SIZES, **kw)
    assert hwa.method == "hwa" and hwa.training["hardware_noise"]["kind"] == "deployment"
    for a, b in zip(hwa.model.parameters(), erm.model.parameters()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-3)
    assert hwa.accuracies == pytest.approx(erm.accuracies, abs=0.005)


@pytest.mark.slow
def test_hwa_is_more_robust_under_its_own_noise_than_erm(moons) -> None:
    from inference.hardware_model import DeploymentModel
    from inference.training import train_method

    model = DeploymentModel(_typical_like_profile())
    erm = train_method("erm", moons, MOONS_SIZES, seed=0)
    hwa = train_method("hwa", moons, MOONS_SIZES, hardware=model, seed=0)
    kw = {"x_calib": moons.x_train, "n_trials": 300, "seed": 5}  # the same draws for both
    a_erm = model.accuracy(erm, moons.x_val, moons.y_val, **kw)
    a_hwa = model.accuracy(hwa, moons.x_val, moons.y_val, **kw)
    diff = a_hwa - a_erm
    half = 1.96 * diff.std(ddof=1) / math.sqrt(diff.size)
    print(f"HWA - ERM under the profile: {100 * diff.mean():+.1f} ± {100 * half:.1f} points")
    assert diff.mean() - half > 0
    assert hwa.target == model.describe()


def test_linear_control_is_logistic_regression_on_one_layer(moons) -> None:
    from sklearn.linear_model import LogisticRegression

    from inference.training import train_linear

    lin = train_linear(moons, c=0.5, seed=0)
    assert lin.method == "linear" and lin.sizes == (2, 2) and len(lin.model.layers) == 1
    clf = LogisticRegression(C=0.5, max_iter=5000, random_state=0).fit(moons.x_train, moons.y_train)
    (wb,) = lin.augmented_weights()
    z = moons.x_test @ (wb[1, :-1] - wb[0, :-1]) + (wb[1, -1] - wb[0, -1])
    assert np.allclose(z, clf.decision_function(moons.x_test), rtol=1e-6, atol=1e-6)
    assert lin.accuracies["test"] == pytest.approx(clf.score(moons.x_test, moons.y_test))
    assert 0.8 < lin.accuracies["test"] < 0.95  # a straight line through two moons
    digits = train_linear(make_digits_dataset(seed=0))
    assert digits.sizes == (64, 10) and digits.accuracies["test"] > 0.9


def test_bayesmulti_objective_under_a_deployment_profile(moons) -> None:
    from inference.hardware_model import DeploymentModel

    model = DeploymentModel(_typical_like_profile())
    bm = train_bayesmulti(
        moons, MOONS_SIZES, hardware=model, n_init=2, n_iter=1, epochs=60, n_eval_trials=8
    )
    assert bm.method == "bayesmulti" and bm.target == model.describe()
    top = best_of_trace(bm.bo_trace)
    again = model.accuracy(
        bm, moons.x_val, moons.y_val, x_calib=moons.x_train, n_trials=8, seed=0 + 7919
    )
    assert float(np.mean(again)) == pytest.approx(top["objective"])
    with pytest.raises(ValueError, match="one target"):
        train_bayesmulti(moons, MOONS_SIZES, usability=0.5, hardware=model)


def test_bayesmulti_with_hwa_trains_every_candidate_on_the_hardware(moons) -> None:
    from inference.hardware_model import DeploymentModel
    from inference.training import train_method

    model = DeploymentModel(_typical_like_profile())
    both = train_method(
        "bayesmulti+hwa", moons, MOONS_SIZES, hardware=model, n_init=2, n_iter=0,
        epochs=40, n_eval_trials=4,
    )  # fmt: skip
    plain = train_method(
        "bayesmulti", moons, MOONS_SIZES, hardware=model, n_init=2, n_iter=0, epochs=40,
        n_eval_trials=4,
    )  # fmt: skip
    assert both.method == "bayesmulti+hwa" and both.training["hardware_noise"]["kind"] == (
        "deployment"
    )
    assert [(t["p1"], t["p2"]) for t in both.bo_trace] == [
        (t["p1"], t["p2"]) for t in plain.bo_trace
    ]  # the same candidates, trained differently
    assert [t["objective"] for t in both.bo_trace] != [t["objective"] for t in plain.bo_trace]
