"""The simulated crossbar: single-cell programming under V/2 and V/3, compliance, clock, seeds,
and the fast linear MVM path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_backends.array import SimulatedCrossbar
from sim_backends.clock import VirtualClock
from sim_backends.profiles import PROFILES
from sim_backends.solver import End, LineEnds, single_cell_bias

QUIET = PROFILES["optimized"].replace(read_noise=0.0)


def _others(a: np.ndarray, row: int, col: int) -> np.ndarray:
    mask = np.ones(a.shape, bool)
    mask[row, col] = False
    return a[mask]


@pytest.mark.parametrize("scheme", ["v/2", "v/3"])
def test_set_pulse_raises_only_the_selected_cell(scheme: str) -> None:
    xb = SimulatedCrossbar("optimized", seed=0)
    xb.devices.state = np.random.default_rng(1).uniform(0.0, 0.6, (10, 10))
    g0 = xb.true_conductance()
    res = xb.pulse_cell(3, 4, 3.5, 1e-3, scheme=scheme)
    g1 = xb.true_conductance()
    assert g1[3, 4] > 1.3 * g0[3, 4]  # one 1 ms pulse at 3.5 V: about ×1.5
    np.testing.assert_array_equal(_others(g1, 3, 4), _others(g0, 3, 4))
    # the selected cell saw the full pulse, the half-selected ones at most V/2
    v_dev = res.solution.v_row - res.solution.v_col
    assert v_dev[3, 4] == pytest.approx(3.5)
    assert np.max(np.abs(_others(v_dev, 3, 4))) <= 3.5 / 2 + 1e-9
    assert not res.compliance


def test_reset_pulse_lowers_the_selected_cell_only() -> None:
    # (a device without a cycle-to-cycle threshold spread: typical's can put a cell's RESET
    # threshold near -2.9 V, where one -3.3 V pulse barely moves it)
    xb = SimulatedCrossbar(QUIET, seed=1)
    xb.devices.state = 0.8
    g0 = xb.true_conductance()
    xb.pulse_cell(5, 2, -3.3, 1e-3, scheme="v/3")
    g1 = xb.true_conductance()
    free = ~(xb.devices.stuck_on | xb.devices.stuck_off)
    assert free[5, 2]
    assert g1[5, 2] < 0.8 * g0[5, 2]
    np.testing.assert_array_equal(_others(g1, 5, 2), _others(g0, 5, 2))


def test_repeated_pulses_walk_the_conductance_both_ways() -> None:
    xb = SimulatedCrossbar(QUIET.replace(level_sigma=0.0, c2c_sigma=0.0), seed=2)
    g = [xb.true_conductance()[0, 0]]
    for _ in range(5):
        xb.pulse_cell(0, 0, 3.5, 1e-3)
        g.append(xb.true_conductance()[0, 0])
    for _ in range(5):
        xb.pulse_cell(0, 0, -2.6, 1e-3)
        g.append(xb.true_conductance()[0, 0])
    assert np.all(np.diff(g[:6]) > 0)
    assert np.all(np.diff(g[5:]) < 0)
    assert g[-1] > xb.devices.g_off[0, 0]  # not yet at the floor: every pulse counted


def test_compliance_caps_the_state_reached_and_sets_the_flag() -> None:
    limited = SimulatedCrossbar(QUIET, seed=3)
    free = SimulatedCrossbar(QUIET, seed=3)
    for xb in (limited, free):
        xb.devices.set_state(np.ones((10, 10), bool), 0.0, level=0.0)
    res = limited.pulse_cell(2, 2, 4.0, 10e-3, i_compliance=25e-6)
    ref = free.pulse_cell(2, 2, 4.0, 10e-3)
    assert res.compliance and not ref.compliance
    g_lim, g_free = limited.true_conductance()[2, 2], free.true_conductance()[2, 2]
    assert g_lim < 0.05 * g_free
    # after the pulse the selected row's source carries exactly its limit at 4 V
    left, bottom = single_cell_bias(10, 10, 2, 2, 4.0, "v/2")
    after = limited.bias(left, bottom, noisy=False).solution
    assert after.i_row_left[2] == pytest.approx(25e-6, rel=1e-4)


def test_source_in_compliance_lowers_its_voltage_to_the_limit() -> None:
    xb = SimulatedCrossbar(QUIET, seed=4)
    xb.devices.set_state(np.ones((10, 10), bool), 0.0, level=0.0)
    xb.devices.set_state(np.eye(10, dtype=bool), 1.0, level=0.0)  # (1, 1) is ON: ~100 µS
    left, bottom = single_cell_bias(10, 10, 1, 1, 1.0, "ground")
    res = xb.bias(left, bottom, i_compliance=20e-6, compliance_terminal=("row_left", 1))
    assert res.compliance
    assert 0.0 < res.source_scale < 0.5
    assert abs(res.solution.i_row_left[1]) == pytest.approx(20e-6, rel=1e-6)
    # the devices saw the reduced voltage
    v_dev = res.solution.v_row - res.solution.v_col
    assert v_dev[1, 1] == pytest.approx(res.source_scale * 1.0, rel=1e-9)
    assert left.voltage[1] == 1.0  # the caller's biasing is left as it was
    with pytest.raises(ValueError, match="DRIVE"):
        xb.bias(left, bottom, i_compliance=1e-6, compliance_terminal=("col_bottom", 0))


def test_clock_advances_by_the_durations_only() -> None:
    clock = VirtualClock(10.0)
    xb = SimulatedCrossbar("optimized", seed=0, clock=clock)
    xb.read_cell(0, 0)
    assert clock.now() == 10.0
    r = xb.pulse_cell(0, 0, 3.5, 1e-3)
    xb.pulse_cell(0, 1, -2.5, 2e-3)
    assert r.time == pytest.approx(10.001)
    assert xb.clock is clock and clock.now() == pytest.approx(10.003)


def test_same_seed_gives_identical_results() -> None:
    def run(seed: int) -> tuple[np.ndarray, list[float], np.ndarray]:
        xb = SimulatedCrossbar("poor", seed=seed)
        reads = []
        for k in range(6):
            xb.pulse_cell(k, k, 4.0, 1e-3, i_compliance=250e-6)
            reads.append(xb.read_cell(k, k, 0.2))
        y = xb.mvm_linear(np.full((3, 10), 0.1))
        return xb.true_conductance(), reads, y

    a, b, c = run(7), run(7), run(8)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    np.testing.assert_array_equal(a[2], b[2])
    assert not np.array_equal(a[0], c[0])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 8))
def test_mvm_linear_is_v_times_g_without_line_resistance(seed: int, batch: int) -> None:
    xb = SimulatedCrossbar(QUIET, seed=seed % 7)
    rng = np.random.default_rng(seed)
    xb.devices.state = rng.random((10, 10))
    x = rng.uniform(-0.3, 0.3, (batch, 10))
    y = xb.mvm_linear(x)
    g = xb.true_conductance(float(np.max(np.abs(x))))
    np.testing.assert_allclose(y, x @ g, rtol=1e-9, atol=1e-18)
    assert y.shape == (batch, 10)


def test_mvm_linear_single_vector_noise_and_line_resistance() -> None:
    ideal = SimulatedCrossbar(QUIET, seed=0)
    ideal.devices.state = 0.9
    x = np.full(10, 0.2)
    y = ideal.mvm_linear(x, v_lin=0.2)
    assert y.shape == (10,)
    np.testing.assert_allclose(y, x @ ideal.true_conductance(0.2), rtol=1e-12)
    # line resistance drops some of the drive: less current than ideal
    lossy = SimulatedCrossbar(QUIET, seed=0, r_row=50.0, r_col=50.0)
    lossy.devices.state = 0.9
    y_lossy = lossy.mvm_linear(x, v_lin=0.2)
    assert np.all(y_lossy < y) and np.all(y_lossy > 0.5 * y)
    # read noise: relative Gaussian with the profile's sigma
    noisy = SimulatedCrossbar(PROFILES["typical"].replace(read_noise=0.05), seed=0)
    xs = np.full((400, 10), 0.2)
    ys = noisy.mvm_linear(xs)
    clean = noisy.mvm_linear(xs[:1], noisy=False)
    rel = ys / clean - 1.0
    assert abs(rel.std() - 0.05) < 0.004


def test_nonlinear_bias_matches_the_sinh_law_and_has_read_noise() -> None:
    xb = SimulatedCrossbar("typical", seed=5)
    rows = LineEnds.driven(np.full(10, 0.3))
    cols = LineEnds.uniform(10, End.VGROUND)
    sol = xb.bias(rows, cols, noisy=False).solution
    expected = xb.devices.current(np.full((10, 10), 0.3)).sum(axis=0)
    np.testing.assert_allclose(sol.column_currents, expected, rtol=1e-9)
    noisy = np.array([xb.bias(rows, cols).solution.column_currents for _ in range(200)])
    rel = noisy / expected - 1.0
    assert abs(rel.std() - PROFILES["typical"].read_noise) < 0.004


def test_ground_scheme_reads_the_cell_alone() -> None:
    xb = SimulatedCrossbar(QUIET, seed=6)
    xb.devices.state = np.random.default_rng(2).random((10, 10))
    i = xb.read_cell(4, 7, 0.1, scheme="ground", noisy=False)
    assert i == pytest.approx(xb.true_conductance(0.1)[4, 7] * 0.1, rel=1e-9)
    # floating unselected lines add sneak currents
    sneak = xb.read_cell(4, 7, 0.1, scheme="float", noisy=False)
    assert sneak > i


def test_a_reading_while_the_cell_switches_is_the_mean_of_start_and_end() -> None:
    """The meter integrates over the bias: when devices switch during it, the reading is the
    trapezoid of the currents at its start and its end; without switching, the start."""
    xb = SimulatedCrossbar(QUIET, seed=4)
    rows, cols = LineEnds.uniform(10, End.GROUND), LineEnds.uniform(10, End.GROUND)
    rows.mode[2], rows.voltage[2] = End.DRIVE, 3.4
    cols.mode[5] = End.VGROUND
    i_start = float(xb.devices.current(np.full((10, 10), 3.4))[2, 5])
    res = xb.bias(rows, cols, duration_s=0.02, noisy=False)
    i_end = float(xb.devices.current(np.full((10, 10), 3.4))[2, 5])
    assert i_end > 2 * i_start  # the cell SET during the bias
    assert res.solution.column_currents[5] == pytest.approx(0.5 * (i_start + i_end), rel=1e-9)
    held = xb.bias(rows, cols, duration_s=0.0, noisy=False)
    assert held.solution.column_currents[5] == pytest.approx(i_end, rel=1e-9)
