"""Device physics after programming: relaxation, power-law drift and dissolution on the bench's
clock; discrete switching; read noise relative to G and read disturb; line resistance in MVMs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_device_physics import CLEAN  # a device without spreads, noise or defects

from crossbar.config import load_bench_config, parse_bench_config, toml_text
from crossbar.core import Crossbar
from instruments.errors import SafetyLimits
from lab import open_backend, sim_handles_of
from sim_backends.array import SimulatedCrossbar
from sim_backends.device import DeviceArray
from sim_backends.physics_backend import PhysicsBackend
from sim_backends.profiles import PROFILES, DeviceProfile
from sim_backends.solver import CrossbarCircuit, End, LineEnds

LIMITS = SafetyLimits(max_voltage=6.0, max_compliance=1e-3)


def _physics(profile: DeviceProfile, seed: int = 0, r_line: float = 0.0) -> Crossbar:
    sim = SimulatedCrossbar(profile, seed=seed, r_row=r_line, r_col=r_line)
    return Crossbar(PhysicsBackend(sim, limits=LIMITS))


def _set_all(xb: Crossbar, amplitude: float = 3.6, pulses: int = 4) -> None:
    for r in range(10):
        for c in range(10):
            for _ in range(pulses):
                xb.pulse(r, c, amplitude, 1e-3, biasing="v/3", read_after=False)


def _read_map(xb: Crossbar) -> np.ndarray:
    return np.array(
        [[xb.read_cell(r, c, biasing="ground").conductance for c in range(10)] for r in range(10)]
    )


# -- drift and relaxation -------------------------------------------------------------------------


def test_drift_follows_the_power_law_and_a_fit_recovers_nu() -> None:
    prof = CLEAN.replace(drift_nu=0.05, drift_nu_sigma=0.015, drift_t0=1.0)
    xb = _physics(prof, seed=3)
    _set_all(xb)
    sim = xb.backend.sim
    t_prog = xb.backend.now()
    times = np.logspace(0.5, np.log10(3600.0), 10)  # 3 s … 1 h after the last pulse
    g = []
    for t in times:
        xb.backend.wait(t_prog + t - xb.backend.now())
        g.append(_read_map(xb))
    assert xb.backend.now() == pytest.approx(t_prog + 3600.0 + 100 * 1e-3)  # + the last map
    ln_g = np.log(np.array(g)).reshape(len(times), -1)
    # each cell's own clock started at its last pulse: its age is known to within the sweep
    slope = np.polyfit(np.log(times), ln_g, 1)[0]
    nu_true = sim.devices.drift_nu.ravel()
    np.testing.assert_allclose(-slope, nu_true, atol=2e-3)
    assert abs(np.mean(-slope) - prof.drift_nu) < 3 * prof.drift_nu_sigma / 10  # 3 SE of 100
    assert 0.8 * prof.drift_nu_sigma < np.std(-slope) < 1.2 * prof.drift_nu_sigma
    # the conductance only decays between the reads
    assert np.all(np.diff(ln_g, axis=0) < 0)


def test_relaxation_after_an_event_then_drift_restarts_at_the_next_event() -> None:
    prof = CLEAN.replace(relax_mean=0.3, relax_tau=1.0, drift_nu=0.02, drift_t0=1.0)
    dev = DeviceArray(prof, (4,), seed=0)
    dev.apply(np.array([3.3, 3.5, 3.7, 0.0]), 2e-3)  # three SET events of different size
    w = dev.state
    g0 = dev.conductance()
    dev.clock.advance(0.5)
    expected = np.log(g0) - w * 0.3 * (1 - np.exp(-0.5))  # t < t0: no drift yet
    np.testing.assert_allclose(np.log(dev.conductance()), expected, rtol=0, atol=1e-12)
    dev.clock.advance(99.5)  # t = 100 s: relaxation done, drift 0.02·ln(100)
    expected = np.log(g0) - w * 0.3 * (1 - np.exp(-100.0)) - 0.02 * np.log(100.0)
    expected[3] = np.log(g0[3])  # the cell that never switched neither relaxes nor drifts
    np.testing.assert_allclose(np.log(dev.conductance()), expected, atol=1e-12)
    # a tiny SET event continues from the drifted conductance (continuity), and restarts the
    # clock: right after it no drift, and the relaxation of the new event starts from 0
    before = dev.conductance()
    dev.apply(np.array([3.01, 0.0, 0.0, 0.0]), 1e-9)
    after = dev.conductance()
    assert after[0] == pytest.approx(before[0], rel=1e-6)
    np.testing.assert_allclose(after[1:], before[1:], rtol=1e-9)
    dev.clock.advance(100.0)
    drop = np.log(after[0] / dev.conductance()[0])
    assert drop == pytest.approx(dev.state[0] * 0.3 + 0.02 * np.log(100.0), rel=1e-6)


def test_retention_runs_on_the_sim_bench_virtual_clock(tmp_path) -> None:
    """An hour of retention on the built-in bench (twins): the virtual clock moves by the hour,
    the drift shows in the read, and nothing is simulated for the hour itself."""
    bench = tmp_path / "drift.toml"
    base = load_bench_config("sim").to_dict()
    # drift alone: no relaxation (the first read may come within relax_tau of the last pulse
    # now that a pulse-and-read step takes tens of ms of bench time)
    base["simulation"]["device"] = {
        "drift_nu": 0.06,
        "drift_nu_sigma": 0.0,
        "read_noise": 0.0,
        "relax_mean": 0.0,
        "relax_sigma": 0.0,
    }
    bench.write_text(toml_text(base))
    with Crossbar(open_backend(str(bench))) as xb:
        handles = sim_handles_of(xb.backend)
        for _ in range(5):
            xb.pulse(3, 4, 3.6, 1e-3, biasing="v/3", read_after=False)
        g0 = xb.read_cell(3, 4, biasing="ground").conductance
        t0 = xb.backend.now()
        applied = handles.sim_bench.applied_s
        xb.backend.wait(3600.0)
        g1 = xb.read_cell(3, 4, biasing="ground").conductance
        assert xb.backend.now() - t0 >= 3600.0
        assert handles.sim_bench.applied_s == applied  # the hour was not simulated step by step
        dev = handles.crossbar.devices
        age0 = t0 - dev.last_event[3, 4]  # the cell's age at the first read (its own event clock)
        predicted = ((age0 + 3600.0) / max(age0, 1.0)) ** -0.06
        assert g1 / g0 == pytest.approx(predicted, rel=0.01)


def test_ag_filament_dissolves_with_its_probability_and_time_constant() -> None:
    prof = CLEAN.replace(p_dissolve=0.5, dissolve_tau=100.0)
    dev = DeviceArray(prof, (4000,), seed=2)
    dev.apply(3.6, 5e-3)  # a SET event everywhere
    g_lrs = dev.conductance()
    assert np.all(g_lrs > 10 * CLEAN.g_off)
    dev.clock.advance(100.0)
    gone = dev.conductance() < 2 * CLEAN.g_off
    assert abs(gone.mean() - 0.5 * (1 - np.exp(-1.0))) < 0.03
    dev.clock.advance(1e4)
    gone = dev.conductance() < 2 * CLEAN.g_off
    assert abs(gone.mean() - 0.5) < 0.03
    np.testing.assert_allclose(dev.conductance()[gone], CLEAN.g_off, rtol=1e-9)  # the HRS
    # a RESET event leaves no filament to dissolve; a later SET redraws the fate
    dev.apply(-3.0, 5e-3)
    dev.clock.advance(1e5)
    np.testing.assert_allclose(dev.conductance(), CLEAN.g_off, rtol=1e-9)


def test_retention_terms_are_off_unless_the_profile_asks() -> None:
    """A profile without the new terms reads the same at any time (today's behaviour)."""
    dev = DeviceArray(
        PROFILES["optimized"].replace(
            relax_sigma=0.0, relax_mean=0.0, drift_nu=0.0, drift_nu_sigma=0.0
        ),
        (5, 5),
    )
    dev.apply(3.6, 5e-3)
    g = dev.conductance()
    dev.clock.advance(1e6)
    np.testing.assert_array_equal(dev.conductance(), g)


# -- discrete switching ---------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [2, 3, 5])
def test_discrete_mode_gives_the_configured_number_of_levels(levels: int) -> None:
    prof = CLEAN.replace(levels=levels)
    dev = DeviceArray(prof, (1,), seed=0)
    seen = []
    for v in [3.3] * 60 + [-2.5] * 60:  # small SET steps all the way up, then down
        dev.apply(v, 1e-3)
        seen.append(dev.conductance()[0])
    seen = np.array(seen)
    distinct = np.unique(np.round(np.log(seen), 9))
    assert distinct.size == levels
    expected = np.log(CLEAN.g_off) + np.linspace(0, 1, levels) * np.log(CLEAN.g_on / CLEAN.g_off)
    np.testing.assert_allclose(distinct, expected, atol=1e-9)
    # abrupt: every change is a jump of exactly one level
    jumps = np.abs(np.diff(np.log(seen)))
    step = np.log(CLEAN.g_on / CLEAN.g_off) / (levels - 1)
    np.testing.assert_allclose(jumps[jumps > 1e-9], step, rtol=1e-9)


def test_a_binary_filament_sets_fully_even_under_a_low_compliance() -> None:
    prof = CLEAN.replace(levels=2)
    dev = DeviceArray(prof, (2,), seed=0)
    dev.apply(3.5, 0.05, np.array([25e-6, np.inf]))
    np.testing.assert_allclose(dev.conductance(), CLEAN.g_on, rtol=1e-9)
    # the analog device stops at the compliance instead
    analog = DeviceArray(CLEAN, (1,), seed=0)
    analog.apply(3.5, 0.05, 25e-6)
    assert analog.conductance()[0] < 0.1 * CLEAN.g_on


# -- read noise relative to G, telegraph noise, read disturb -------------------------------------


def test_read_noise_is_relative_to_g_and_the_terminal_noise_is_kept() -> None:
    prof = CLEAN.replace(g_noise=0.05)
    xb = _physics(prof, seed=1)
    sim = xb.backend.sim
    sim.devices.set_state(np.ones((10, 10), bool), 0.5)
    g_true = sim.true_conductance(0.2)[4, 6]
    reads = np.array([xb.read_cell(4, 6, biasing="ground").conductance for _ in range(800)])
    rel = reads / g_true - 1
    assert abs(rel.std() - 0.05) < 0.005 and abs(rel.mean()) < 0.006
    # the meter noise of the terminal current (read_noise) is unchanged when asked for alone
    meter = _physics(CLEAN.replace(read_noise=0.05), seed=1)
    meter.backend.sim.devices.set_state(np.ones((10, 10), bool), 0.5)
    m = np.array([meter.read_cell(4, 6, biasing="ground").conductance for _ in range(800)])
    assert abs((m / g_true - 1).std() - 0.05) < 0.005


def test_random_telegraph_noise_flips_at_its_rate_between_two_levels() -> None:
    prof = CLEAN.replace(rtn_fraction=1.0, rtn_amplitude=0.2, rtn_tau=1.0)
    dev = DeviceArray(prof, (200,), seed=5)
    rng = np.random.default_rng(0)
    dt = 0.1
    f = dev.read_factors(rng, 400, dt)  # 400 reads of every cell, 0.1 s apart
    np.testing.assert_allclose(np.unique(np.round(f, 12)), [0.9, 1.1])
    flips = np.mean(f[1:] != f[:-1])
    assert abs(flips - 0.5 * (1 - np.exp(-2 * dt / 1.0))) < 0.005
    assert dev.clock.now() == 0.0  # reading evolves the telegraphs, not the clock
    quiet = DeviceArray(prof.replace(rtn_fraction=0.0), (200,), seed=5)
    assert quiet.read_factors(rng) is None  # nothing drawn when the profile has no such noise


def test_read_disturb_moves_the_state_by_its_amount_per_read() -> None:
    prof = CLEAN.replace(read_disturb=1e-3)
    xb = _physics(prof, seed=0)
    dev = xb.backend.sim.devices
    dev.set_state(np.ones((10, 10), bool), 0.4)
    for _ in range(50):
        xb.read_cell(2, 3, v_read=0.3, biasing="ground")
    w = dev.state
    # the selected row (driven) and its cells saw 0.3 V fifty times; every other cell 0 V
    disturbed = 0.4 + 50 * 1e-3 * 0.3 / CLEAN.v_set
    np.testing.assert_allclose(w[2], disturbed, rtol=1e-6)
    np.testing.assert_array_equal(np.delete(w, 2, axis=0), 0.4)


# -- line resistance ------------------------------------------------------------------------------


def test_the_sim_bench_has_line_resistance_on() -> None:
    cfg = load_bench_config("sim")
    assert cfg.crossbar.line_resistance_ohm == 0.5
    backend = open_backend("sim")
    try:
        circuit = sim_handles_of(backend).crossbar.circuit
        assert (circuit.r_row, circuit.r_col) == (0.5, 0.5)
    finally:
        backend.close()


def test_line_resistance_changes_mvm_results_as_the_solver_predicts() -> None:
    d = load_bench_config("sim").to_dict()
    d["bench"]["backend"] = "physics"
    d["simulation"]["device"] = {"read_noise": 0.0}
    cfg = parse_bench_config(d)
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.3, 0.3, (16, 10))
    states = rng.uniform(0.3, 1.0, (10, 10))
    outs = {}
    for r in (0.0, cfg.crossbar.line_resistance_ohm):
        line = dataclasses.replace(cfg.crossbar, line_resistance_ohm=r)
        backend = open_backend(dataclasses.replace(cfg, crossbar=line))
        sim = backend.sim
        sim.devices.set_state(np.ones((10, 10), bool), states)
        outs[r] = backend.mvm(x)
        g = sim.true_conductance(np.abs(x).max())  # the chord conductance of the linear path
        circuit = CrossbarCircuit(10, 10, r, r)
        system = circuit.factorize(g, np.full(10, int(End.DRIVE)), np.full(10, int(End.VGROUND)))
        np.testing.assert_allclose(outs[r], system.solve_batch(x), rtol=1e-9, atol=1e-18)
        one = circuit.solve(g, LineEnds.driven(x[0]), LineEnds.uniform(10, End.VGROUND))
        np.testing.assert_allclose(outs[r][0], one.column_currents, rtol=1e-9, atol=1e-18)
    # the same devices: the IR drop along 0.5 Ω lines changes the currents a little, not nil
    diff = np.abs(outs[0.5] - outs[0.0]) / np.abs(outs[0.0]).max()
    assert 1e-5 < diff.max() < 1e-2
