"""Device physics of sim_backends.device: read law, switching, compliance, variability, defects."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_backends.device import CELL_PARAMS, V_READ_REF, DeviceArray
from sim_backends.profiles import PROFILES, DeviceProfile
from sim_backends.solver import CrossbarCircuit, End, LineEnds

# A deterministic device: no spreads, no noise, no defects.
CLEAN = DeviceProfile(
    name="clean",
    read_noise=0.0,
    c2c_sigma=0.0,
    level_sigma=0.0,
    c2c_vth_sigma=0.0,
    d2d_vth_sigma=0.0,
    d2d_g_sigma=0.0,
)


def _g0(dev: DeviceArray) -> np.ndarray:
    """Low-field conductance (S) recovered from the law: dI/dV at 0 V."""
    return dev.iv(np.zeros(dev.shape))[1]


# -- read regime ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(v=st.floats(-6.0, 6.0), w=st.floats(0.0, 1.0))
def test_iv_is_the_sinh_law_with_its_derivative(v: float, w: float) -> None:
    dev = DeviceArray(CLEAN, (2, 3), seed=1)
    dev.state = w
    a = CLEAN.nonlinearity
    i, di = dev.iv(np.full(dev.shape, v))
    g0 = _g0(dev)
    np.testing.assert_allclose(i, g0 * np.sinh(a * v) / a, rtol=1e-12, atol=1e-30)
    np.testing.assert_allclose(di, g0 * np.cosh(a * v), rtol=1e-12)
    h = 1e-6
    numeric = (dev.iv(np.full(dev.shape, v + h))[0] - dev.iv(np.full(dev.shape, v - h))[0]) / (
        2 * h
    )
    np.testing.assert_allclose(di, numeric, rtol=1e-5)


def test_window_edges_read_g_off_and_g_on_at_0v1() -> None:
    dev = DeviceArray(PROFILES["typical"], (10, 10), seed=3)
    dev.set_state(np.ones(dev.shape, bool), 0.0, level=0.0)
    g = dev.conductance(V_READ_REF)
    np.testing.assert_allclose(g[~dev.stuck_on], dev.g_off[~dev.stuck_on], rtol=1e-12)
    dev.set_state(np.ones(dev.shape, bool), 1.0, level=0.0)
    g = dev.conductance(V_READ_REF)
    np.testing.assert_allclose(g[~dev.stuck_off], dev.g_on[~dev.stuck_off], rtol=1e-12)
    # typical preset: 0.1 µS … 100 µS nominal window, log-normal d2d spread
    assert 3e-8 < np.median(dev.g_off) < 3e-7
    assert 3e-5 < np.median(dev.g_on) < 3e-4


def test_conductance_is_log_linear_in_the_state() -> None:
    dev = DeviceArray(CLEAN, (5,), seed=0)
    ws = np.linspace(0, 1, 5)
    dev.state = ws
    ln_g = np.log(dev.conductance())
    expected = np.log(CLEAN.g_off) + ws * np.log(CLEAN.g_on / CLEAN.g_off)
    np.testing.assert_allclose(ln_g, expected, rtol=1e-12)


def test_read_adds_relative_gaussian_noise_and_iv_stays_clean() -> None:
    prof = CLEAN.replace(read_noise=0.05)
    dev = DeviceArray(prof, (200, 200), seed=2)
    clean = dev.current(0.2)
    noisy = dev.read(0.2, np.random.default_rng(5))
    rel = noisy / clean - 1.0
    assert abs(rel.std() - 0.05) < 0.002
    assert abs(rel.mean()) < 0.002
    np.testing.assert_array_equal(dev.iv(np.full(dev.shape, 0.2))[0], clean)


def test_device_law_plugs_into_the_circuit_solver() -> None:
    dev = DeviceArray(PROFILES["optimized"], (4, 5), seed=0)
    dev.state = np.random.default_rng(0).random((4, 5))
    circuit = CrossbarCircuit(4, 5)
    rows = LineEnds.driven(np.array([0.3, -0.2, 0.25, 0.1]))
    cols = LineEnds.uniform(5, End.VGROUND)
    sol = circuit.solve(dev.conductance(), rows, cols, device=dev.iv)
    # zero line resistance: every device sees its row voltage
    v = np.repeat(rows.voltage[:, None], 5, axis=1)
    np.testing.assert_allclose(sol.i_device, dev.current(v), rtol=1e-9)
    np.testing.assert_allclose(sol.column_currents, dev.current(v).sum(axis=0), rtol=1e-9)


# -- switching -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(v=st.floats(-2.19, 2.99), t=st.floats(1e-6, 10.0))
def test_no_state_change_between_the_thresholds(v: float, t: float) -> None:
    dev = DeviceArray(PROFILES["typical"].replace(c2c_vth_sigma=0.0, d2d_vth_sigma=0.0), (3, 3))
    dev.state = 0.4
    before, level = dev.state, dev.level
    dev.apply(np.full(dev.shape, v), t)
    np.testing.assert_array_equal(dev.state, before)
    np.testing.assert_array_equal(dev.level, level)


@settings(max_examples=40, deadline=None)
@given(v=st.floats(3.05, 5.0), t=st.floats(1e-5, 5e-3), w0=st.floats(0.0, 0.5))
def test_set_follows_the_vteam_rate(v: float, t: float, w0: float) -> None:
    dev = DeviceArray(CLEAN, (1,), seed=0)
    dev.state = w0
    dev.apply(v, t)
    p = CLEAN
    expected = min(1.0, w0 + p.k_on * (v / p.v_set - 1.0) ** p.alpha_on * t)
    np.testing.assert_allclose(dev.state, expected, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(v=st.floats(-5.0, -2.25), t=st.floats(1e-5, 5e-3), w0=st.floats(0.5, 1.0))
def test_reset_follows_the_vteam_rate(v: float, t: float, w0: float) -> None:
    dev = DeviceArray(CLEAN, (1,), seed=0)
    dev.state = w0
    dev.apply(v, t)
    p = CLEAN
    expected = max(0.0, w0 - p.k_off * (v / p.v_reset - 1.0) ** p.alpha_off * t)
    np.testing.assert_allclose(dev.state, expected, rtol=1e-12)


def test_rate_grows_with_overdrive_and_width_and_state_stays_bounded() -> None:
    dev = DeviceArray(CLEAN, (4,), seed=0)
    dev.apply(np.array([3.2, 3.5, 3.5, 3.5]), 1e-3)
    dev.apply(np.array([0.0, 0.0, 3.5, 0.0]), 1e-3)  # cell 2: twice the width
    w = dev.state
    assert w[0] < w[1] < w[2]
    np.testing.assert_allclose(w[2], 2 * w[1], rtol=1e-12)
    dev.apply(10.0, 1.0)
    np.testing.assert_array_equal(dev.state, 1.0)
    dev.apply(-10.0, 1.0)
    np.testing.assert_array_equal(dev.state, 0.0)


def test_compliance_caps_the_set_at_the_limit_current() -> None:
    dev = DeviceArray(CLEAN, (3,), seed=0)
    icc = np.array([25e-6, 250e-6, np.inf])
    dev.apply(3.5, 1.0, icc)  # long enough to saturate
    i = dev.current(3.5)
    np.testing.assert_allclose(i[:2], icc[:2], rtol=1e-9)
    assert dev.state[2] == 1.0  # unlimited: full SET
    assert dev.state[0] < dev.state[1] < 1.0
    # the cap never lowers a cell already above it
    w_before = dev.state
    dev.apply(3.5, 1.0, 1e-9)
    np.testing.assert_array_equal(dev.state, w_before)


def test_compliance_of_a_sweep_leaves_about_icc_over_v() -> None:
    # the 25 µA characterisation compliance reaches ~2.3 µS (see profiles.py)
    dev = DeviceArray(CLEAN, (1,), seed=0)
    for v in np.arange(0.1, 6.01, 0.1):
        dev.apply(v, 0.05, 25e-6)
    g = dev.conductance()[0]
    assert 1.5e-6 < g < 3e-6


def test_nonmonotonic_set_events_lower_the_state() -> None:
    dev = DeviceArray(CLEAN.replace(p_nonmonotonic=1.0), (5,), seed=0)
    dev.state = 0.5
    dev.apply(3.5, 1e-3)
    assert np.all(dev.state < 0.5)
    half = DeviceArray(CLEAN.replace(p_nonmonotonic=0.3), (4000,), seed=1)
    half.state = 0.5
    half.apply(3.5, 1e-3)
    assert abs(np.mean(half.state < 0.5) - 0.3) < 0.03
    # RESET events are not affected
    dev.apply(-3.0, 1e-3)
    assert np.all(dev.state < 0.45)


# -- variability and defects --------------------------------------------------------------------


def test_device_to_device_spreads_match_the_profile() -> None:
    prof = PROFILES["typical"].replace(d2d_vth_sigma=0.1, d2d_g_sigma=0.3)
    dev = DeviceArray(prof, (100, 100), seed=4)
    assert abs(np.std(np.log(dev.v_set)) - 0.1) < 0.005
    assert abs(np.median(dev.v_set) - prof.v_set) < 0.02
    assert np.all(dev.v_reset < 0)
    assert abs(np.std(np.log(dev.g_off)) - 0.3) < 0.01
    assert np.all(dev.g_on >= 1.5 * dev.g_off)


def test_cycle_to_cycle_level_spread_is_log_normal_level_sigma() -> None:
    prof = CLEAN.replace(level_sigma=0.4, c2c_sigma=0.3)
    dev = DeviceArray(prof, (4000,), seed=6)
    levels = []
    for _ in range(3):  # full SET / RESET cycles redraw the level
        dev.apply(4.0, 0.05)
        dev.apply(-4.0, 0.05)
        levels.append(np.log(dev.conductance() / dev.g_off))
    for lv in levels:
        assert abs(lv.std() - 0.4) < 0.02
    # successive cycles are independent draws
    assert abs(np.corrcoef(levels[0], levels[1])[0, 1]) < 0.05


def test_a_tiny_pulse_barely_moves_the_level() -> None:
    prof = CLEAN.replace(level_sigma=0.4)
    dev = DeviceArray(prof, (2000,), seed=6)
    before = dev.level
    dev.apply(3.05, 1e-6)  # Δw ~ 1e-9
    assert np.max(np.abs(dev.level - before)) < 0.01


def test_stuck_cells_stay_pinned() -> None:
    prof = PROFILES["typical"].replace(p_stuck_on=0.1, p_stuck_off=0.1)
    dev = DeviceArray(prof, (100, 100), seed=8)
    assert abs(dev.stuck_on.mean() - 0.1) < 0.01
    assert abs(dev.stuck_off.mean() - 0.1) < 0.01
    assert not np.any(dev.stuck_on & dev.stuck_off)
    for v in (5.0, -5.0, 5.0):
        dev.apply(v, 0.1)
        assert np.all(dev.state[dev.stuck_on] == 1.0)
        assert np.all(dev.state[dev.stuck_off] == 0.0)
    dev.state = 0.5
    assert np.all(dev.state[dev.stuck_on] == 1.0)
    free = ~(dev.stuck_on | dev.stuck_off)
    assert np.all(dev.state[free] == 0.5)


def test_same_seed_same_device_and_history() -> None:
    def run(seed: int) -> tuple[np.ndarray, np.ndarray]:
        dev = DeviceArray("poor", (10, 10), seed=seed)
        rng = np.random.default_rng(99)
        for _ in range(20):
            dev.apply(rng.uniform(-4, 5, (10, 10)), 1e-3, 250e-6)
        return dev.state, dev.conductance()

    a, b, c = run(11), run(11), run(12)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_state_for_conductance_inverts_the_read() -> None:
    dev = DeviceArray(PROFILES["typical"], (10, 10), seed=2)
    target = np.full(dev.shape, 10e-6)
    w = dev.state_for_conductance(target)
    free = ~(dev.stuck_on | dev.stuck_off)
    dev.set_state(free, w)
    np.testing.assert_allclose(dev.conductance()[free], 10e-6, rtol=1e-9)


def test_cell_params_override_profile_fields_per_cell() -> None:
    dev = DeviceArray(CLEAN, (2,), seed=0, cell_params={"v_set": [2.0, 4.0]})
    dev.apply(3.0, 1e-3)
    assert dev.state[0] > 0 and dev.state[1] == 0.0
    with pytest.raises(ValueError, match="unknown field"):
        DeviceArray(CLEAN, (2,), cell_params={"g_on": 1.0})
    with pytest.raises(ValueError, match="v_reset"):
        DeviceArray(CLEAN, (2,), cell_params={"v_reset": [1.0, -1.0]})
    assert "level_sigma" in CELL_PARAMS


def test_apply_validates_duration() -> None:
    dev = DeviceArray(CLEAN, (1,))
    with pytest.raises(ValueError, match="duration"):
        dev.apply(4.0, -1.0)
    with pytest.raises(ValueError, match="non-zero"):
        dev.conductance(0.0)


def test_a_held_level_switches_alike_in_one_call_or_in_pieces() -> None:
    """One event per held level: 50 ms at 3.4 V in one call, or 33 ms + 17 ms (a source delay
    then the reading), moves the state by the same Δw (same ξ, same thresholds)."""
    prof = PROFILES["typical"].replace(level_sigma=0.0, p_nonmonotonic=0.0)
    whole = DeviceArray(prof, (50,), seed=3)
    split = DeviceArray(prof, (50,), seed=3)
    v = np.full(50, 3.4)
    assert whole.apply(v, 0.05)
    split.apply(v, 0.0333)
    split.apply(v, 0.0167)
    assert np.ptp(whole.state) > 0.01  # the cells' c2c factors differ
    np.testing.assert_allclose(split.state, whole.state, rtol=1e-12, atol=1e-12)
    # a read between two pulses at the same level ends the event: the next pulse redraws ξ
    again = DeviceArray(prof, (50,), seed=3)
    again.apply(v, 0.0333)
    assert not again.apply(np.full(50, 0.1), 1e-3)
    again.apply(v, 0.0167)
    assert not np.allclose(again.state, whole.state, rtol=1e-6)
