"""METHODS section 1 (calibration/usability.py): hand-computed cases, properties, real data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import chi2

from calibration.usability import UsabilityError, lcis, usability

# ---------------------------------------------------------------------------------------------
# Hand-computed cases. Conductances are chosen per cycle and currents built as I = G·V with
# small integers and halves, so I / V recovers G exactly.

# Case A: one cycle 0 → 2 V → 0, two cycles.
#   V        = 0    0.5  1.0  1.5  2.0  1.0  0
#   G cycle1 = -    1    2    3    2    -    -
#   G cycle2 = -    1    4    1    6    -    -
# SET branch: k = 0 … argmax(V) = 4, V ≥ 1 mV drops V = 0 → V = 0.5, 1, 1.5, 2 (n_branch = 4).
# Ḡ = 1, 3, 2, 4. Strict rises: 1→3 yes, 3→2 no, 2→4 yes: runs [1,3] and [2,4], both L = 2;
# the tie goes to the first run: start 0 (0.5 V), stop 1.0 V.
# L_min = ceil(0.35 · 4) = ceil(1.4) = 2 → α_nm = min(1, 2/2) = 1.
# Residuals in the LCIS: ln(1/1), ln(1/1), ln(2/3), ln(4/3) = 0, 0, −0.405465, 0.287682; N = 4.
# mean = −0.0294458; σ̂ = sqrt(mean((r − mean)²)) = 0.2468272.
# χ²₀.₀₅(3) = 0.3518463 → σ_up = 0.2468272 · sqrt(4 / 0.3518463) = 0.8322361.
# U = 1 · exp(−0.8322361) = 0.4350753.
V_A = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 1.0, 0.0])
G_A = np.array([[0, 0], [1, 1], [2, 4], [3, 1], [2, 6], [0, 0], [0, 0]], dtype=float)
I_A = G_A * V_A[:, None]

# Case B: up-only sweep 0 → 6 V, two cycles, one missing point, l_min_fraction = 0.6.
#   V        = 0  1  2  3  4  5  6
#   G cycle1 = -  5  4  2  4  6  1
#   G cycle2 = -  5  4  4  4  4  NaN
# Branch: V = 1 … 6 (n_branch = 6); Ḡ = 5, 4, 3, 4, 5, 1 (the last from cycle 1 alone).
# Runs: [5], [4], [3, 4, 5], [1] → LCIS start 2 (3 V), L = 3, stop 5 V.
# L_min = ceil(0.6 · 6) = ceil(3.6) = 4 → α_nm = 3/4 = 0.75.
# Residuals: ln(2/3), ln(4/3), ln(4/4), ln(4/4), ln(6/5), ln(4/5); N = 6.
# mean = −0.0264342; σ̂ = 0.2330967; χ²₀.₀₅(5) = 1.1454762
# σ_up = 0.2330967 · sqrt(6 / 1.1454762) = 0.5334808; U = 0.75 · exp(−0.5334808) = 0.4399198;
# with sigma="hat": U = 0.75 · exp(−0.2330967) = 0.5940577.
V_B = np.arange(7.0)
G_B = np.array([[0, 0], [5, 5], [4, 4], [2, 4], [4, 4], [6, 4], [1, np.nan]], dtype=float)
I_B = G_B * V_B[:, None]


def _sigma_up(sigma_hat: float, n: int) -> float:
    return sigma_hat * math.sqrt(n / chi2.ppf(0.05, n - 1))


def test_hand_case_a() -> None:
    r = usability(V_A, I_A)
    assert (r.n_cycles, r.branch_points, r.lcis_start, r.lcis_length, r.l_min) == (2, 4, 0, 2, 2)
    assert (r.lcis_start_v, r.lcis_stop_v) == (0.5, 1.0)
    assert r.alpha_nm == 1.0
    assert r.n_residuals == 4
    assert r.residuals == pytest.approx([0.0, 0.0, math.log(2 / 3), math.log(4 / 3)], abs=1e-15)
    assert r.sigma_hat == pytest.approx(0.2468272259, abs=1e-9)
    assert chi2.ppf(0.05, 3) == pytest.approx(0.3518463177, abs=1e-9)
    assert r.sigma_up == pytest.approx(0.8322361047, abs=1e-9)
    assert r.sigma_up == pytest.approx(_sigma_up(r.sigma_hat, 4), rel=1e-12)
    assert r.usability == pytest.approx(0.4350753238, abs=1e-9)
    assert r.branch_g_mean == pytest.approx([1.0, 3.0, 2.0, 4.0])


def test_hand_case_a_tolerating_one_dip_takes_the_whole_branch() -> None:
    # One non-rise (3 → 2) tolerated: the LCIS is all 4 points; residuals add ln(3/2), ln(1/2)
    # (k = 2) and ln(2/4), ln(6/4) (k = 3): N = 8, σ̂ = 0.4296534,
    # χ²₀.₀₅(7) = 2.1673499, σ_up = 0.4296534 · sqrt(8 / 2.1673499) = 0.8254651, U = 0.4380312.
    r = usability(V_A, I_A, tolerated_decreases=1)
    assert (r.lcis_start, r.lcis_length, r.n_residuals) == (0, 4, 8)
    assert r.sigma_hat == pytest.approx(0.4296533832, abs=1e-9)
    assert r.sigma_up == pytest.approx(0.8254650944, abs=1e-9)
    assert r.usability == pytest.approx(0.4380312192, abs=1e-9)


def test_hand_case_b_up_only_with_missing_point() -> None:
    r = usability(V_B, I_B, l_min_fraction=0.6)
    assert (r.branch_points, r.lcis_start, r.lcis_length, r.l_min) == (6, 2, 3, 4)
    assert (r.lcis_start_v, r.lcis_stop_v) == (3.0, 5.0)
    assert r.branch_g_mean == pytest.approx([5, 4, 3, 4, 5, 1])
    assert r.alpha_nm == 0.75
    assert r.n_residuals == 6
    assert r.sigma_hat == pytest.approx(0.2330967362, abs=1e-9)
    assert r.sigma_up == pytest.approx(0.5334807805, abs=1e-9)
    assert r.usability == pytest.approx(0.4399197949, abs=1e-9)
    hat = usability(V_B, I_B, l_min_fraction=0.6, sigma="hat")
    assert hat.usability == pytest.approx(0.5940577105, abs=1e-9)
    assert hat.sigma == hat.sigma_hat and r.sigma == r.sigma_up


def test_no_positive_branch_and_too_few_points_raise() -> None:
    v = np.array([0.0, -1.0, -2.0, -1.0, 0.0])
    with pytest.raises(UsabilityError, match="no positive SET branch"):
        usability(v, np.ones((5, 2)))
    with pytest.raises(UsabilityError, match="need at least 2"):
        usability(np.array([0.0, 1.0, 0.0]), np.ones((3, 2)))


# ---------------------------------------------------------------------------------------------
# Properties


def _lcis_reference(x: list[float], t: int) -> tuple[int, int]:
    """Brute force: every window, first of the longest with at most t non-rises."""
    best = (0, 1 if x else 0)
    for s in range(len(x)):
        for e in range(s, len(x)):
            bad = sum(not x[k + 1] > x[k] for k in range(s, e))
            if bad <= t and e - s + 1 > best[1]:
                best = (s, e - s + 1)
    return best


@given(
    st.lists(st.integers(0, 6), min_size=0, max_size=25),
    st.integers(0, 3),
)
def test_lcis_matches_brute_force_including_ties(values: list[int], t: int) -> None:
    x = [float(v) for v in values]
    assert lcis(x, t) == _lcis_reference(x, t)


@st.composite
def sweeps(draw, min_cycles: int = 2, max_cycles: int = 5):
    """A 0 → Vmax → 0 → −Vmin → 0 staircase and integer-valued currents (nA) with gaps."""
    n_up = draw(st.integers(3, 20))
    step = draw(st.sampled_from([0.05, 0.1, 0.2]))
    up = np.arange(n_up + 1) * step
    down_only = draw(st.booleans())
    v = up if down_only else np.concatenate([up, up[-2::-1], -up[1:], -up[-2::-1]])
    n_cyc = draw(st.integers(min_cycles, max_cycles))
    ints = draw(
        st.lists(
            st.lists(st.integers(-5, 1000), min_size=v.size, max_size=v.size),
            min_size=n_cyc,
            max_size=n_cyc,
        )
    )
    i = np.array(ints, dtype=float).T * 1e-9
    holes = draw(
        st.lists(st.tuples(st.integers(0, v.size - 1), st.integers(0, n_cyc - 1)), max_size=5)
    )
    for k, c in holes:
        i[k, c] = np.nan
    return v, i


def _try(v, i, **kw):
    try:
        return usability(v, i, **kw)
    except UsabilityError:
        return None


@given(
    st.lists(st.floats(1.001, 2.0), min_size=2, max_size=30),
    st.floats(1e-9, 1e-3),
    st.integers(1, 6),
    st.booleans(),
)
def test_noise_free_increasing_curve_is_fully_usable(
    ratios: list[float], g0: float, n_cycles: int, with_down_sweep: bool
) -> None:
    g = g0 * np.cumprod(ratios)  # strictly increasing conductance
    v = np.linspace(0.1, 0.1 * len(g), len(g))
    if with_down_sweep:
        v = np.concatenate([[0.0], v, v[-2::-1], [0.0]])
        g = np.concatenate([[g[0]], g, g[-2::-1], [g[0]]])
    i = np.repeat((g * v)[:, None], n_cycles, axis=1)
    r = usability(v, i)
    assert r.alpha_nm == 1.0
    assert r.lcis_length == r.branch_points
    assert r.sigma_hat == pytest.approx(0.0, abs=1e-12)
    assert r.usability == pytest.approx(1.0, abs=1e-10)


@given(sweeps(), st.integers(-20, 20))
def test_power_of_two_current_scale_changes_nothing(sweep, e: int) -> None:
    v, i = sweep
    base = _try(v, i)
    assume(base is not None)
    scaled = usability(v, i * 2.0**e)
    assert scaled.summary() == base.summary()


@given(sweeps(), st.floats(1e-3, 1e3))
def test_any_positive_current_scale_changes_nothing(sweep, c: float) -> None:
    v, i = sweep
    base = _try(v, i)
    assume(base is not None)
    g = np.asarray(base.branch_g_mean)
    # exactly tied neighbours may round either way after scaling: keep well-separated curves
    assume(g.size < 2 or np.min(np.abs(np.diff(g)) / g[1:]) > 1e-9)
    scaled = usability(v, i * c)
    s, b = scaled.summary(), base.summary()
    for key in ("n_cycles", "branch_points", "lcis_length", "l_min", "n_residuals"):
        assert s[key] == b[key]
    for key in ("alpha_nm", "sigma_hat", "sigma_up", "usability", "lcis_start_v"):
        assert s[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12)


@given(sweeps(), st.lists(st.integers(0, 5), min_size=1, max_size=4))
def test_all_nan_cycles_change_nothing(sweep, positions: list[int]) -> None:
    v, i = sweep
    base = _try(v, i)
    assume(base is not None)
    padded = i
    for p in positions:
        p = min(p, padded.shape[1])
        padded = np.insert(padded, p, np.nan, axis=1)
    assert usability(v, padded) == base


@given(
    sweeps(min_cycles=1), st.integers(0, 3), st.floats(0.05, 1.0), st.sampled_from(["up", "hat"])
)
def test_usability_always_in_unit_interval(sweep, t: int, f: float, sigma: str) -> None:
    v, i = sweep
    r = _try(v, i, tolerated_decreases=t, l_min_fraction=f, sigma=sigma)
    assume(r is not None)
    assert 0.0 <= r.usability <= 1.0
    assert 0.0 <= r.alpha_nm <= 1.0
    assert 1 <= r.lcis_length <= r.branch_points
    assert r.sigma_up >= r.sigma_hat >= 0.0


@given(sweeps())
def test_tolerating_every_dip_gives_the_whole_branch(sweep) -> None:
    v, i = sweep
    base = _try(v, i)
    assume(base is not None)
    g = np.asarray(base.branch_g_mean)
    dips = int(np.sum(~(g[1:] > g[:-1])))
    for t in (dips, dips + 3):
        r = usability(v, i, tolerated_decreases=t)
        assert (r.lcis_start, r.lcis_length) == (0, r.branch_points)
        assert r.alpha_nm == 1.0
    if dips > 0:
        assert usability(v, i, tolerated_decreases=dips - 1).lcis_length < base.branch_points


def test_ties_go_to_the_first_run() -> None:
    # Ḡ = 1 2 3 | 1 2 3 | 0.5: two runs of 3; the first (lowest voltage) wins.
    g = np.array([1, 2, 3, 1, 2, 3, 0.5])
    v = np.arange(1, 8) * 0.5
    r = usability(v, np.repeat((g * v)[:, None], 2, axis=1))
    assert (r.lcis_start, r.lcis_length, r.lcis_start_v) == (0, 3, 0.5)
    assert lcis([3, 1, 2, 0, 2, 1], 0) == (1, 2)


@given(sweeps())
def test_up_only_sweep_equals_the_same_branch_with_a_return(sweep) -> None:
    v, i = sweep
    k_top = int(np.argmax(v))
    up_v, up_i = v[: k_top + 1], i[: k_top + 1]
    base = _try(up_v, up_i)
    assume(base is not None)
    # appending a return sweep (anything, below the top) does not change the SET branch
    back_v = np.concatenate([up_v, up_v[-2::-1]])
    back_i = np.concatenate([up_i, np.full((k_top, i.shape[1]), 7e-9)])
    assert usability(back_v, back_i) == base


def test_cycles_starting_at_column_two() -> None:
    i = np.concatenate([np.full((V_A.size, 1), np.nan), I_A], axis=1)
    assert usability(V_A, i) == usability(V_A, I_A)
    assert usability(V_A, i).n_cycles == 2


@settings(max_examples=60)
@given(sweeps(), st.integers(0, 2))
def test_naive_peer_of_the_benchmark_agrees(sweep, t: int) -> None:
    from bench.calibrate import naive_usability

    v, i = sweep
    r = _try(v, i, tolerated_decreases=t)
    assume(r is not None)
    assert naive_usability(v.tolist(), i.tolist(), t) == pytest.approx(r.usability, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Real data


@pytest.mark.slow
def test_all_shared_files_calibrate(shared_iv_files) -> None:
    from calibration.batch import calibrate_paths

    assert len(shared_iv_files) == 30
    batch = calibrate_paths(shared_iv_files)
    assert batch.failures == []
    u = np.array([d.result.usability for d in batch.devices])
    assert u.size == 30
    assert np.all((u >= 0) & (u <= 1))
    assert u.max() == pytest.approx(0.92, abs=0.01)
    assert u.min() < 0.05
