"""Hardware-noise model (METHODS section 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from calibration.profile import DeviceNoiseProfile
from inference.noise import (
    evaluate,
    evaluate_per_trial,
    nonmonotonic_fraction,
    nonmonotonic_map,
    perturb_weights,
    sigma_from_usability,
)

# A tiny mean curve: rises 1 -> 2 -> 3 (LCIS of length 3 from s = 0), dips, rises again.
CURVE = [1.0, 2.0, 3.0, 2.5, 4.0, 3.5]


def _profile(*, sigma: float = 0.0, start: int = 0, length: int = 3, l_min: int = 5):
    return DeviceNoiseProfile(
        name="tiny",
        sigma=sigma,
        alpha_nm=min(1.0, length / l_min),
        usability=min(1.0, length / l_min) * math.exp(-sigma),
        lcis_start=start,
        lcis_length=length,
        l_min=l_min,
        mean_curve_v=[0.5 * k for k in range(len(CURVE))],
        mean_curve_g=CURVE,
    )


def test_usability_one_leaves_weights_unchanged() -> None:
    w = [np.array([[0.3, -1.2, 0.0], [2.0, 0.5, -0.1]]), np.array([[1.0, -2.0]])]
    out = perturb_weights(w, n_trials=4, rng=0, usability=1.0)
    assert [o.shape for o in out] == [(4, 2, 3), (4, 1, 2)]
    for o, wi in zip(out, w):
        assert np.array_equal(o, np.broadcast_to(wi, o.shape))


@pytest.mark.parametrize("u", [0.9, 0.5, 0.1])
def test_log_ratio_std_is_minus_ln_u(u: float) -> None:
    w = np.full((20, 30), 0.7)
    (out,) = perturb_weights([w], n_trials=200, rng=np.random.default_rng(3), usability=u)
    r = np.log(out / w)
    assert abs(r.std() - (-math.log(u))) < 0.01 * -math.log(u) + 0.005
    assert abs(r.mean()) < 0.01 + 0.01 * -math.log(u)
    # independent per weight and per trial
    assert np.corrcoef(r[:, 0, 0], r[:, 0, 1])[0, 1] < 0.25
    assert not np.allclose(r[0], r[1])


def test_bad_usability_and_mode() -> None:
    for bad in (0.0, -0.5, 1.2, float("nan")):
        with pytest.raises(ValueError, match="usability"):
            sigma_from_usability(bad)
    with pytest.raises(ValueError, match="exactly one"):
        perturb_weights([np.ones((2, 2))], n_trials=1, rng=0)
    with pytest.raises(ValueError, match="exactly one"):
        perturb_weights([np.ones((2, 2))], n_trials=1, rng=0, usability=0.5, profile=_profile())


def test_nonmonotonic_fraction_hand_computed() -> None:
    # s = 0, L = 3, L_min = 5: j = round(4 f); G_max = max(G[0..4]) = 4; G[s] = 1
    f = np.array([0.0, 0.2, 0.5, 0.625, 0.75, 1.0])
    got = nonmonotonic_fraction(f, mean_curve_g=CURVE, lcis_start=0, lcis_length=3, l_min=5)
    # j:            0    1    2    3 (2.5 rounds up)  3                  4
    expected = [0.0, 0.2, 0.5, (2.5 - 1) / (4 - 1), (2.5 - 1) / (4 - 1), (4 - 1) / (4 - 1)]
    assert np.allclose(got, expected)


def test_nonmonotonic_indices_beyond_the_branch_use_the_last_point() -> None:
    # s = 3 (G = 2.5), L = 1, L_min = 5: window G[3..7] -> 2.5, 4, 3.5, 3.5, 3.5; G_max = 4
    f = np.array([0.0, 0.25, 0.5, 1.0])
    got = nonmonotonic_fraction(f, mean_curve_g=CURVE, lcis_start=3, lcis_length=1, l_min=5)
    # j = 0 (< L: kept), 1 -> G[4] = 4, 2 -> G[5] = 3.5, 4 -> G[7] = last = 3.5
    expected = [0.0, 1.0, (3.5 - 2.5) / 1.5, (3.5 - 2.5) / 1.5]
    assert np.allclose(got, expected)


def test_nonmonotonic_map_on_a_matrix_and_flat_window() -> None:
    w = np.array([[2.0, -1.5], [1.0, 0.4]])  # W_max = 2: f = 1, 0.75, 0.5, 0.2
    got = nonmonotonic_map(w, _profile())
    assert np.allclose(got, [[2.0 * 1.0, -2.0 * 0.5], [1.0, 0.4]])
    # a profile without the non-ideality (L >= L_min) leaves the matrix alone
    assert np.array_equal(nonmonotonic_map(w, _profile(length=5, l_min=5)), w)
    # G_max = G[s] (curve falls after s): every unreachable level realises 0
    falling = nonmonotonic_fraction(
        np.array([0.3, 1.0]), mean_curve_g=[5.0, 4.0, 3.0], lcis_start=0, lcis_length=1, l_min=3
    )
    assert np.array_equal(falling, [0.0, 0.0])


def test_profile_mode_applies_mapping_then_stochastic_factor() -> None:
    w = [np.array([[2.0, -1.5], [1.0, 0.4]])]
    mapped = nonmonotonic_map(w[0], _profile())
    (det,) = perturb_weights(w, n_trials=3, rng=0, profile=_profile(sigma=0.0))
    assert np.allclose(det, mapped)
    (noisy,) = perturb_weights(w, n_trials=3, rng=5, profile=_profile(sigma=0.4))
    eps = np.random.default_rng(5).standard_normal((3, 4)).reshape(3, 2, 2)
    assert np.allclose(noisy, mapped * np.exp(0.4 * eps))


@given(
    arrays(np.float64, (3, 4), elements=st.floats(-5, 5, allow_subnormal=False)),
    st.floats(0.05, 1.0),
)
@settings(max_examples=60, deadline=None)
def test_stochastic_noise_keeps_sign_and_zeros(w: np.ndarray, u: float) -> None:
    (out,) = perturb_weights([w], n_trials=5, rng=1, usability=u)
    assert np.array_equal(np.sign(out), np.broadcast_to(np.sign(w), out.shape))
    assert np.all(np.isfinite(out))


@given(st.floats(0, 1), st.integers(1, 6), st.integers(1, 8))
@settings(max_examples=80, deadline=None)
def test_nonmonotonic_fraction_stays_in_unit_interval(f: float, length: int, l_min: int) -> None:
    g = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 4.5, 6.0, 0.5])
    out = nonmonotonic_fraction(
        np.array([f]), mean_curve_g=g, lcis_start=1, lcis_length=length, l_min=l_min
    )
    assert 0.0 <= out[0] <= 1.0


def test_vectorised_evaluate_equals_per_trial_loop() -> None:
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((6, 3)), rng.standard_normal((3, 7))]
    x = rng.standard_normal((150, 2))
    y = rng.integers(0, 3, 150)
    for kwargs in ({"usability": 0.6}, {"usability": 1.0}, {"profile": _profile(sigma=0.3)}):
        a = evaluate(weights, x, y, n_trials=25, seed=11, **kwargs)
        b = evaluate_per_trial(weights, x, y, n_trials=25, seed=11, **kwargs)
        assert a.shape == (25,)
        assert np.array_equal(a, b)
    clean = evaluate(weights, x, y, usability=1.0, n_trials=3, seed=0)
    assert np.all(clean == clean[0])  # no noise at U = 1: every trial identical
    noisy = evaluate(weights, x, y, usability=0.3, n_trials=20, seed=0)
    assert noisy.std() > 0
