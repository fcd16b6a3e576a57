"""PhysicsBackend on the simulated array (sim_backends.array.SimulatedCrossbar, 'optimized')."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from calibration import io
from crossbar.backend import Biasing
from crossbar.core import Crossbar
from crossbar.datastore import DataStore, read_records
from crossbar.policy import CrossbarPolicy
from crossbar.programming import program_map
from instruments.errors import SafetyLimitError, SafetyLimits
from sim_backends import array
from sim_backends.physics_backend import PhysicsBackend
from sim_backends.profiles import PROFILES

LIMITS = SafetyLimits(max_voltage=6.0, max_compliance=25e-3)


def make(seed: int = 0, r: float = 0.0, **kw) -> tuple[object, PhysicsBackend]:
    sim = array.SimulatedCrossbar("optimized", (10, 10), seed=seed, r_row=r, r_col=r)
    return sim, PhysicsBackend(sim, limits=LIMITS, **kw)


def rel_err(measured: np.ndarray, true: np.ndarray) -> np.ndarray:
    return np.abs(measured / true - 1.0)


def test_construction_api_and_capabilities() -> None:
    sim, be = make()
    caps = be.capabilities
    assert (caps.rows, caps.cols, caps.row_drivers, caps.col_sensors) == (10, 10, 10, 10)
    assert caps.max_pulse_voltage == 6.0 and be.shape == (10, 10)
    assert caps.max_read_voltage == 6.0 and caps.read_compliance == LIMITS.max_compliance
    # any line level: every scheme of the table runs here
    assert {b.name for b in caps.biasings} == {b.name for b in Biasing}
    with pytest.raises(ValueError, match="read_averages"):
        PhysicsBackend(sim, limits=LIMITS, read_averages=0)


def test_crossbar_layer_does_not_import_the_simulation() -> None:
    """The simulation implements the crossbar contract, not the other way round: no module of
    crossbar/ imports sim_backends (not even under TYPE_CHECKING)."""
    offenders = []
    for path in sorted((REPO / "crossbar").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [(path.name, m) for m in names if m.startswith("sim_backends")]
    assert offenders == []


def test_read_schemes_against_true_conductance() -> None:
    sim, be = make()
    true = sim.true_conductance(0.2)
    err = {b: rel_err(CrossbarPolicy(be).read_map(v_read=0.2, biasing=b), true) for b in Biasing}
    # grounded: only the 1 % read noise; V/3 (differential): half-selected noise, a few %
    assert np.median(err[Biasing.GROUND]) < 0.015 and err[Biasing.GROUND].max() < 0.05
    # rows grounded, columns at 2V/3: no unselected cell feeds the sensed column either
    assert np.median(err[Biasing.COLS_2V3]) < 0.015 and err[Biasing.COLS_2V3].max() < 0.05
    assert np.median(err[Biasing.V3]) < 0.08
    assert np.median(err[Biasing.V2]) < 0.12
    # floating lines: the sneak paths add several times the cell's own conductance
    assert np.median(err[Biasing.FLOAT]) > 2.0
    for b in (Biasing.V3, Biasing.V2, Biasing.GROUND):
        assert np.mean(err[b]) < np.mean(err[Biasing.FLOAT])
    # averaging integrations brings a V/3 read within ~2 % (first 30 cells)
    be.read_averages = 16
    g16 = [
        CrossbarPolicy(be).read_cell(r, c, biasing=Biasing.V3).conductance
        for r in range(3)
        for c in range(10)
    ]
    e16 = rel_err(np.array(g16), true[:3].ravel())
    assert np.median(e16) < 0.025
    # without the differential correction a V/3 read of a uniform array sees 1 + 9/3 ≈ 4 × G
    be.read_averages = 1
    raw = CrossbarPolicy(be, differential_read=False).read_map(biasing=Biasing.V3) / true
    assert 3.5 < np.median(raw) < 4.5


def test_v3_beats_float_on_a_programmed_array() -> None:
    sim, be = make(seed=1)
    sim.devices.state = np.random.default_rng(1).uniform(0, 1, (10, 10))
    true = sim.true_conductance(0.2)
    e3 = rel_err(CrossbarPolicy(be).read_map(biasing=Biasing.V3), true)
    ef = rel_err(CrossbarPolicy(be).read_map(biasing=Biasing.FLOAT), true)
    eg = rel_err(CrossbarPolicy(be).read_map(biasing=Biasing.GROUND), true)
    assert np.mean(e3) < np.mean(ef) and np.median(e3) < np.median(ef) / 10
    assert np.median(eg) < 0.015


def test_pulse_switches_only_the_selected_cell() -> None:
    sim, be = make()
    g0 = sim.true_conductance(0.2)
    CrossbarPolicy(be).pulse(4, 6, 4.0, 1e-3, biasing=Biasing.V3)
    g1 = sim.true_conductance(0.2)
    assert g1[4, 6] > 2 * g0[4, 6]
    others = np.ones((10, 10), bool)
    others[4, 6] = False
    np.testing.assert_array_equal(g1[others], g0[others])  # half-selected at 4/3 V: no change
    assert be.now() == pytest.approx(1e-3)
    before = sim.true_conductance(0.2)[4, 6]
    CrossbarPolicy(be).pulse(4, 6, -3.0, 1e-3)
    assert sim.true_conductance(0.2)[4, 6] < before
    with pytest.raises(SafetyLimitError):
        CrossbarPolicy(be).pulse(0, 0, 6.5, 1e-3)
    with pytest.raises(SafetyLimitError):
        CrossbarPolicy(be).pulse(0, 0, 3.5, 1e-3, compliance=1.0)
    with pytest.raises(IndexError):
        CrossbarPolicy(be).pulse(10, 0, 3.0, 1e-3)


def test_pulse_compliance_limits_the_set() -> None:
    sim_a, be_a = make()
    sim_b, be_b = make()
    for _ in range(10):
        CrossbarPolicy(be_a).pulse(2, 2, 4.5, 1e-3, biasing=Biasing.V3)
        CrossbarPolicy(be_b).pulse(2, 2, 4.5, 1e-3, biasing=Biasing.V3, compliance=50e-6)
    ga, gb = sim_a.true_conductance(0.2)[2, 2], sim_b.true_conductance(0.2)[2, 2]
    assert gb < ga / 2
    assert be_b.last_pulse_compliance and not be_a.last_pulse_compliance


def test_iv_sweep_points_dwell_and_compliance() -> None:
    sim, be = make()
    v = np.concatenate([np.arange(0, 4.01, 0.5), np.arange(3.5, -0.01, -0.5)])
    g = sim.true_conductance(0.5)  # before the sweep switches the cell
    pts = []
    t0 = be.now()
    res = CrossbarPolicy(be).iv_sweep(
        3, 3, v, compliance=20e-6, cycles=2, nplc=1.0, on_point=pts.append
    )
    assert len(pts) == 2 * v.size and res.current.shape == (v.size, 2)
    assert be.now() - t0 == pytest.approx(2 * v.size / 60.0)
    assert [(p.cycle, p.index) for p in pts[:3]] == [(0, 0), (0, 1), (0, 2)]
    # low voltage: I ≈ V·G of the cell (HRS, first cycle, before any switching)
    assert res.current[1, 0] == pytest.approx(0.5 * g[3, 3], rel=0.05)
    # the cell SETs above ≈ 3 V and the source clamps at 20 µA: flagged, never above the limit
    assert res.compliance.any()
    assert np.all(np.abs(res.current[res.compliance]) <= 20e-6 * 1.05)
    assert not res.compliance[:3].any()


def test_mvm_equals_vg_within_read_noise() -> None:
    sim, be = make()
    sim.devices.state = np.random.default_rng(2).uniform(0, 1, (10, 10))
    v = np.random.default_rng(3).uniform(-0.3, 0.3, (400, 10))
    i = CrossbarPolicy(be).mvm(v)
    assert be.last_mvm_path == "linear" and i.shape == (400, 10)
    ref = v @ sim.true_conductance(float(np.max(np.abs(v))))
    rel = (i - ref) / np.sqrt(np.mean(ref**2))
    rms = float(np.sqrt(np.mean(rel**2)))
    assert rms < 0.02  # the 1 % read noise (relative to each output) plus chord linearisation
    # the non-linear path (one full solve per vector) agrees
    be.mvm_mode = "nonlinear"
    i_nl = CrossbarPolicy(be).mvm(v[:20])
    assert be.last_mvm_path == "nonlinear"
    assert np.sqrt(np.mean((i_nl - ref[:20]) ** 2) / np.mean(ref[:20] ** 2)) < 0.03
    assert CrossbarPolicy(be).mvm(v[0]).shape == (10,)


def test_mvm_with_line_resistance_differs_more() -> None:
    v = np.random.default_rng(3).uniform(0.0, 0.3, (200, 10))

    def mvm_error(r: float) -> float:
        sim, be = make(r=r)
        sim.devices.state = np.full((10, 10), 1.0)  # all LRS: the largest line currents
        ref = v @ sim.true_conductance(0.3)
        return float(np.sqrt(np.mean((CrossbarPolicy(be).mvm(v) - ref) ** 2) / np.mean(ref**2)))

    e0, e20 = mvm_error(0.0), mvm_error(20.0)
    assert e0 < 0.02 < e20


def test_mvm_path_selection_and_read_limit() -> None:
    sim, be = make(max_read_voltage=0.5)
    CrossbarPolicy(be).mvm(np.full((2, 10), 0.4))  # above the 0.3 V linear range: full solve
    assert be.last_mvm_path == "nonlinear"
    with pytest.raises(SafetyLimitError, match="read limit"):
        CrossbarPolicy(be).mvm(np.full((1, 10), 0.6))
    with pytest.raises(ValueError, match="row_voltages"):
        CrossbarPolicy(be).mvm(np.zeros((1, 9)))
    with pytest.raises(ValueError, match="mvm_mode"):
        PhysicsBackend(sim, limits=LIMITS, mvm_mode="fast")


def test_shutdown_and_clock() -> None:
    sim, be = make()
    CrossbarPolicy(be).read_cell(0, 0, biasing=Biasing.GROUND)
    assert be.outputs_on and be.now() == pytest.approx(1e-3)
    CrossbarPolicy(be).read_cell(0, 0, biasing=Biasing.V3)  # differential: two integrations
    assert be.now() == pytest.approx(3e-3)
    be.shutdown()
    be.shutdown()
    assert not be.outputs_on and be.shutdown_count == 2


def test_program_map_random_targets_optimized() -> None:
    # program-and-verify itself: the optimized device without its relaxation and drift after
    # programming (those move the programmed states afterwards; see the test below)
    steady = PROFILES["optimized"].replace(
        relax_mean=0.0, relax_sigma=0.0, drift_nu=0.0, drift_nu_sigma=0.0
    )
    sim = array.SimulatedCrossbar(steady, (10, 10), seed=0)
    be = PhysicsBackend(sim, limits=LIMITS)
    d = sim.devices
    ok = ~(d.stuck_on | d.stuck_off)
    lo, hi = 1.5 * d.g_off[ok].max(), 0.7 * d.g_on[ok].min()
    rng = np.random.default_rng(0)
    targets = np.exp(rng.uniform(np.log(lo), np.log(hi), (10, 10)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # program to ±3 % by the verify reads so that, with 1 % read noise, the TRUE
        # conductances land within ±5 %
        rep = program_map(be, targets, tol=0.03)
    true = sim.true_conductance(0.2)
    within = rel_err(true, targets) <= 0.05
    frac_true = float(within[ok].mean())
    assert rep.fraction_converged >= 0.95
    assert frac_true >= 0.95, rep.summary()
    assert rep.mean_pulses < 40
    assert max(abs(a) for c in rep.cells for a, _, _ in c.history) <= 4.0 + 1e-9


def test_programmed_states_relax_after_verify_as_the_profile_says() -> None:
    """On the optimized preset the verified states relax by w·r, r ~ N(0.03, 0.15²), within
    0.3 s, then drift with ν ≈ 0.01: the true conductances leave the verify tolerance."""
    sim, be = make(seed=0)
    d = sim.devices
    ok = ~(d.stuck_on | d.stuck_off)
    targets = np.exp(np.random.default_rng(0).uniform(np.log(2e-6), np.log(20e-6), (10, 10)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        program_map(be, targets, tol=0.03)
    be.wait(10.0)  # relaxation done (30 time constants), drift 0.01·ln 10
    w = d.state  # the filament states the last events left
    log_err = np.log(sim.true_conductance(0.2) / targets)[ok]
    prof = PROFILES["optimized"]
    expected_sd = np.sqrt((prof.relax_sigma * w[ok]) ** 2 + 0.03**2 / 3).mean()
    assert 0.6 * expected_sd < log_err.std() < 1.5 * expected_sd
    assert np.mean(rel_err(sim.true_conductance(0.2), targets)[ok] <= 0.05) < 0.8


def test_crossbar_on_physics_records_sweep_for_calibration(tmp_path: Path) -> None:
    sim, be = make()
    path = tmp_path / "phys.h5"
    v = np.concatenate([np.arange(0, 4.01, 0.25), np.arange(3.75, -4.01, -0.25), [-3.75]])
    with DataStore(path, metadata={"bench": "physics"}) as ds, Crossbar(be, datastore=ds) as cb:
        res = cb.iv_sweep(5, 5, v, compliance=25e-6, cycles=3, name="r5c5")
        m = cb.read_map(biasing="ground")
    assert be.shutdown_count == 1
    rec = read_records(path)
    assert (rec["operation"] == "iv").sum() == 3 * v.size
    assert (rec["operation"] == "read").sum() == 100
    # the map is read column by column
    np.testing.assert_array_equal(rec["conductance"][rec["operation"] == "read"], m.T.ravel())
    data = io.read_iv(path, name="/iv/r5c5")
    np.testing.assert_array_equal(data.currents, res.current)
    assert data.cycle_numbers == [1, 2, 3]
