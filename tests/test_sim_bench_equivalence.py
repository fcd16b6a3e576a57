"""The simulated bench (real drivers over the twins) and the physics backend agree.

Same profile and seed → the same simulated array; the two paths differ only by what the bench
adds: the 6487's and the scope's noise, the 14-bit quantisation, the row-group superposition of
the MVM and the differential V/3 read done with bus dividers instead of ideal sources. The
tolerances below are a few times that noise (device read noise 1 % per reading for the
``optimized`` profile, on every terminal current; 6487 noise 20 ppm of range; scope 0.5 mV rms
averaged over 1000 samples): the read maps are compared in units of the predicted σ of each
cell's reading.
"""

from __future__ import annotations

import numpy as np
import pytest

from crossbar.config import load_bench_config, parse_bench_config
from crossbar.policy import CrossbarPolicy
from lab import open_backend


def _config(backend: str, seed: int = 0):
    d = load_bench_config("sim").to_dict()
    d["bench"]["backend"] = backend
    d["simulation"]["seed"] = seed
    return parse_bench_config(d, origin=f"equivalence-{backend}")


@pytest.fixture(scope="module")
def pair():
    twins = open_backend(_config("twins", seed=7))
    physics = open_backend(_config("physics", seed=7))
    yield twins, physics
    twins.close()


def _sims(pair):
    twins, physics = pair
    return twins.sim_handles.crossbar, physics.sim


def test_same_seed_same_array(pair) -> None:
    a, b = _sims(pair)
    np.testing.assert_array_equal(a.true_conductance(), b.true_conductance())


def _set_states(pair, w: np.ndarray) -> np.ndarray:
    a, b = _sims(pair)
    a.devices.state = w
    b.devices.state = w
    # The same array read the same way draws the same read noise on both benches (same seed,
    # same order of reads): give the physics bench its own noise stream, so the comparison is
    # between two independent noisy reads, as the z-scores below assume.
    b.rng = np.random.default_rng(1234)
    np.testing.assert_array_equal(a.true_conductance(0.2), b.true_conductance(0.2))
    return a.true_conductance(0.2)


def _sigma_v3(sim, v: float, noise: float) -> np.ndarray:
    """Predicted σ (S) of one differential V/3 read of every cell: each reading carries the
    relative read noise ``noise`` on the whole terminal current, I₁ = I_cell(V) + Σ_{i≠r}
    I_i(V/3) and I₀ = Σ_i I_i(V/3), and G = (I₁ − I₀)/(2V/3)."""
    i_sel = sim.true_conductance(v) * v
    i_half = sim.true_conductance(v / 3) * v / 3
    i0 = np.broadcast_to(i_half.sum(axis=0), i_sel.shape)
    i1 = i_sel + i0 - i_half
    return noise * np.sqrt(i1**2 + i0**2) / (2 * v / 3)


def test_read_maps_agree_under_ground(pair) -> None:
    twins, physics = pair
    w = np.random.default_rng(0).uniform(0.2, 0.8, (10, 10))
    g = _set_states(pair, w)
    noise = _sims(pair)[0].devices.profile.read_noise
    m_t = CrossbarPolicy(twins).read_map(v_read=0.2, biasing="ground")
    m_p = CrossbarPolicy(physics).read_map(v_read=0.2, biasing="ground")
    z = (m_t - m_p) / (np.sqrt(2) * noise * g)  # single reads: σ = noise·G each
    assert np.max(np.abs(z)) < 4.5
    assert 0.6 < np.std(z) < 1.4
    assert abs(np.mean(z)) < 0.4  # no systematic difference
    assert np.median(np.abs(m_t / g - 1)) < 2 * noise


def test_read_maps_agree_under_v3(pair) -> None:
    twins, physics = pair
    w = np.full((10, 10), 0.5) + np.random.default_rng(1).uniform(-0.1, 0.1, (10, 10))
    g = _set_states(pair, w)
    noise = _sims(pair)[0].devices.profile.read_noise
    m_t = CrossbarPolicy(twins).read_map(v_read=0.2, biasing="v/3")
    m_p = CrossbarPolicy(physics).read_map(v_read=0.2, biasing="v/3")
    z = (m_t - m_p) / (np.sqrt(2) * _sigma_v3(_sims(pair)[0], 0.2, noise))
    assert np.max(np.abs(z)) < 5.0
    assert 0.5 < np.std(z) < 1.5
    assert abs(np.mean(z)) < 0.6  # the twins share one baseline per column: correlated
    assert np.median(np.abs(m_t / g - 1)) < 0.1  # ≈ 8 % rms: 1 % of a ~4× larger current


def test_mvm_agree(pair) -> None:
    """Errors relative to Σ|V_i|·G_ij (the column's current scale). The twins sum 5 row-group
    captures, each with 1 % device noise on its own column current, plus scope noise; the
    physics path has 1 % on the total and, in its default linear mode, the chord-conductance
    linearisation at max|V| (≤ 1.5 % at 0.3 V)."""
    twins, physics = pair
    _set_states(pair, np.random.default_rng(2).uniform(0.0, 1.0, (10, 10)))
    x = np.random.default_rng(3).uniform(-0.3, 0.3, (4, 10))
    scale = np.abs(x) @ _sims(pair)[0].true_conductance(0.2)
    y_t = CrossbarPolicy(twins).mvm(x)
    y_p = CrossbarPolicy(physics).mvm(x)
    assert physics.last_mvm_path == "linear"
    err = (y_t - y_p) / scale
    assert np.max(np.abs(err)) < 0.05
    assert abs(np.mean(err)) < 0.01
    mode = physics.mvm_mode
    physics.mvm_mode = "nonlinear"  # full non-linear solves, like every capture of the twins
    try:
        err = (CrossbarPolicy(twins).mvm(x) - CrossbarPolicy(physics).mvm(x)) / scale
    finally:
        physics.mvm_mode = mode
    assert np.max(np.abs(err)) < 0.05
    assert abs(np.mean(err)) < 0.01
