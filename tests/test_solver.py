"""Tests of the passive-crossbar circuit solver (sim_backends.solver).

References: badcrossbar 1.1.0 (an independent nodal solver with the same geometry), closed-form
results for zero line resistance, Kirchhoff's laws, and the analytic single-device solution.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sim_backends import solver as S
from sim_backends.solver import (
    ConvergenceError,
    CrossbarCircuit,
    End,
    LineEnds,
    single_cell_bias,
)

# badcrossbar's import calls logging.basicConfig (INFO to stdout) and forces its missing-cairo
# ImportWarning to "always": keep the root logger as it was and swallow that warning.
_root = logging.getLogger()
_handlers, _level = list(_root.handlers), _root.level
with warnings.catch_warnings(record=True):
    badcrossbar = pytest.importorskip("badcrossbar")
_root.handlers[:] = _handlers
_root.setLevel(_level)
logging.getLogger("badcrossbar").setLevel(logging.WARNING)

# read voltages −0.3…0.3 V (no subnormal products: |V| is 0 or ≥ 1 µV)
VOLTS = st.one_of(st.just(0.0), st.floats(1e-6, 0.3), st.floats(-0.3, -1e-6))
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _random_state(rows: int, cols: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """G 1–100 µS and read voltages 0.05–0.3 V (device voltages stay well away from 0, where any
    solver's node-voltage rounding would dominate a relative device-current comparison)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(1e-6, 1e-4, (rows, cols)), rng.uniform(0.05, 0.3, rows)


def _bcb(v: np.ndarray, g: np.ndarray, r_row: float, r_col: float):
    """badcrossbar's solution: rows driven at their left ends, columns grounded at the bottom."""
    v2 = v[:, None] if v.ndim == 1 else v
    return badcrossbar.compute(v2, 1.0 / g, r_i_word_line=r_row, r_i_bit_line=r_col)


def _mvm_ends(rows: int, cols: int, v: np.ndarray) -> tuple[LineEnds, LineEnds]:
    return LineEnds.driven(v), LineEnds.uniform(cols, End.VGROUND)


def _sinh_law(g: np.ndarray, a: float):
    def law(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return g * np.sinh(a * v) / a, g * np.cosh(a * v)

    return law


# -- badcrossbar reference -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rows", "cols", "r_row", "r_col"),
    [(10, 10, 2.0, 3.0), (32, 32, 1.0, 0.5), (128, 128, 1.0, 1.0), (7, 13, 5.0, 0.25)],
)
def test_matches_badcrossbar_with_line_resistance(rows, cols, r_row, r_col):
    g, v = _random_state(rows, cols, seed=rows * 1000 + cols)
    ref = _bcb(v, g, r_row, r_col)
    sol = CrossbarCircuit(rows, cols, r_row=r_row, r_col=r_col).solve(g, *_mvm_ends(rows, cols, v))
    np.testing.assert_allclose(sol.column_currents, ref.currents.output[0], rtol=1e-9)
    np.testing.assert_allclose(sol.i_device, ref.currents.device, rtol=1e-9)
    np.testing.assert_allclose(sol.v_row, ref.voltages.word_line, rtol=1e-9)
    np.testing.assert_allclose(sol.v_col, ref.voltages.bit_line, rtol=1e-9, atol=1e-15)
    # line resistance really matters here: the ideal V·G is off by far more than the tolerance
    assert np.max(np.abs(sol.column_currents / (v @ g) - 1)) > 1e-6


@pytest.mark.parametrize(("r_row", "r_col"), [(0.0, 3.0), (3.0, 0.0)])
def test_matches_badcrossbar_with_one_line_set_ideal(r_row, r_col):
    g, v = _random_state(9, 12, seed=7)
    ref = _bcb(v, g, r_row, r_col)
    sol = CrossbarCircuit(9, 12, r_row=r_row, r_col=r_col).solve(g, *_mvm_ends(9, 12, v))
    np.testing.assert_allclose(sol.column_currents, ref.currents.output[0], rtol=1e-9)
    np.testing.assert_allclose(sol.i_device, ref.currents.device, rtol=1e-9)


def test_batch_matches_badcrossbar_multiple_vectors():
    rng = np.random.default_rng(3)
    g = rng.uniform(1e-6, 1e-4, (10, 10))
    v = rng.uniform(0.0, 0.3, (25, 10))  # 25 vectors > 10 DRIVE ends: transfer-matrix path
    ref = _bcb(v.T, g, 1.0, 1.0).currents.output  # (25, 10)
    system = CrossbarCircuit(10, 10, r_row=1.0, r_col=1.0).factorize(
        g, np.full(10, End.DRIVE), np.full(10, End.VGROUND)
    )
    np.testing.assert_allclose(system.solve_batch(v), ref, rtol=1e-9)


# -- zero resistance: exact ------------------------------------------------------------------------
@FAST
@given(
    g=arrays(np.float64, (6, 5), elements=st.floats(1e-7, 1e-3)),
    v=arrays(np.float64, (6,), elements=VOLTS),
    sense=st.sampled_from([End.VGROUND, End.GROUND]),
)
def test_zero_resistance_column_currents_are_exactly_vg(g, v, sense):
    sol = CrossbarCircuit(6, 5).solve(g, LineEnds.driven(v), LineEnds.uniform(5, sense))
    # rtol 1e-12; the atol only covers sums that cancel (mixed-sign V), where the summation order
    # alone decides the last bits: it is 1e-12 of the uncancelled magnitude |V|·G.
    atol = 1e-12 * float(np.max(np.abs(v) @ g))
    np.testing.assert_allclose(sol.column_currents, v @ g, rtol=1e-12, atol=atol)
    vp = np.abs(v)  # non-negative read voltages (no cancellation): plain rtol 1e-12
    solp = CrossbarCircuit(6, 5).solve(g, LineEnds.driven(vp), LineEnds.uniform(5, sense))
    np.testing.assert_allclose(solp.column_currents, vp @ g, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(sol.v_row, np.repeat(v[:, None], 5, axis=1))
    np.testing.assert_array_equal(sol.v_col, 0.0)
    np.testing.assert_array_equal(sol.i_device, g * v[:, None])
    np.testing.assert_allclose(sol.i_row_left, g.sum(axis=1) * v, rtol=1e-12)


def test_zero_resistance_batch_is_exactly_vg():
    rng = np.random.default_rng(11)
    g = rng.uniform(1e-7, 1e-3, (10, 10))
    v = rng.uniform(-0.3, 0.3, (40, 10))
    system = CrossbarCircuit(10, 10).factorize(g, np.full(10, End.DRIVE), np.full(10, End.VGROUND))
    assert system.n_unknowns == 0  # every line collapsed and pinned: nothing to solve
    np.testing.assert_allclose(system.solve_batch(v), v @ g, rtol=1e-12)


def test_source_resistance_on_ideal_lines_matches_divider():
    # Ideal lines, r_source > 0: each row is one node behind its source resistance.
    rng = np.random.default_rng(5)
    g = rng.uniform(1e-5, 1e-3, (4, 6))
    v = np.array([0.2, -0.1, 0.3, 0.05])
    r_s = 250.0
    sol = CrossbarCircuit(4, 6, r_source=r_s).solve(
        g, LineEnds.driven(v), LineEnds.uniform(6, End.VGROUND)
    )
    v_row = v * (1 / r_s) / (1 / r_s + g.sum(axis=1))
    np.testing.assert_allclose(sol.v_row[:, 0], v_row, rtol=1e-12)
    np.testing.assert_allclose(sol.column_currents, v_row @ g, rtol=1e-12)


def test_sense_resistance_on_ideal_lines_matches_divider():
    rng = np.random.default_rng(6)
    g = rng.uniform(1e-5, 1e-3, (5, 3))
    v = rng.uniform(0.0, 0.3, 5)
    r_sense = 1e3
    sol = CrossbarCircuit(5, 3, r_sense=r_sense).solve(
        g, LineEnds.driven(v), LineEnds.uniform(3, End.VGROUND)
    )
    v_col = (v @ g) / (g.sum(axis=0) + 1 / r_sense)
    np.testing.assert_allclose(sol.v_col[0], v_col, rtol=1e-12)
    np.testing.assert_allclose(sol.column_currents, v_col / r_sense, rtol=1e-12)


@pytest.mark.parametrize("which", ["r_row", "r_col", "r_source", "r_sense"])
def test_zero_resistance_is_the_limit_of_small_resistance(which):
    # Merged/pinned nodes (exact zero) are the r → 0 limit: the deviation of a small resistance r
    # from the r = 0 answer falls linearly with r (first-order perturbation), down to 1e-4 Ω.
    # (A "tiny resistor" stand-in instead would be ill-conditioned: at 1e-9 Ω it is off by 1e-6.)
    g, v = _random_state(8, 8, seed=21)
    base = {"r_row": 1.0, "r_col": 2.0, "r_source": 5.0, "r_sense": 7.0}
    zero = CrossbarCircuit(8, 8, **{**base, which: 0.0}).solve(g, *_mvm_ends(8, 8, v))
    dev = []
    for r in (1e-2, 1e-3, 1e-4):
        small = CrossbarCircuit(8, 8, **{**base, which: r}).solve(g, *_mvm_ends(8, 8, v))
        dev.append(small.column_currents - zero.column_currents)
    np.testing.assert_allclose(dev[1], dev[0] / 10, rtol=1e-3)
    np.testing.assert_allclose(dev[2], dev[0] / 100, rtol=1e-3)
    assert np.max(np.abs(dev[0] / zero.column_currents)) > 1e-6  # the effect is really there


def test_source_resistance_adds_in_series_with_first_segment():
    # DRIVE end = r_source in series with the end segment: with one column (no other row
    # segments) r_source = R, r_row = r equals r_source = 0, r_row = R + r.
    g, v = _random_state(6, 1, seed=2)
    a = CrossbarCircuit(6, 1, r_row=2.0, r_col=1.0, r_source=3.0).solve(g, *_mvm_ends(6, 1, v))
    b = CrossbarCircuit(6, 1, r_row=5.0, r_col=1.0).solve(g, *_mvm_ends(6, 1, v))
    np.testing.assert_allclose(a.column_currents, b.column_currents, rtol=1e-12)


# -- geometry of the far ends -----------------------------------------------------------------------
def test_right_and_top_ends_mirror_left_and_bottom():
    g, v = _random_state(7, 9, seed=4)
    c = CrossbarCircuit(7, 9, r_row=1.5, r_col=2.5, r_source=3.0, r_sense=4.0)
    ref = c.solve(g, LineEnds.driven(v), LineEnds.uniform(9, End.VGROUND))
    floating_r, floating_c = LineEnds.uniform(7, End.FLOAT), LineEnds.uniform(9, End.FLOAT)
    mirrored = c.solve(
        g[::-1, ::-1],
        floating_r,
        floating_c,
        row_right=LineEnds.driven(v[::-1]),
        col_top=LineEnds.uniform(9, End.VGROUND),
    )
    np.testing.assert_allclose(mirrored.i_col_top[::-1], ref.i_col_bottom, rtol=1e-10)
    np.testing.assert_allclose(mirrored.i_row_right[::-1], ref.i_row_left, rtol=1e-10)
    np.testing.assert_allclose(mirrored.i_device[::-1, ::-1], ref.i_device, rtol=1e-10)
    assert np.all(mirrored.i_row_left == 0) and np.all(mirrored.i_col_bottom == 0)


def test_driving_both_ends_reduces_ir_drop():
    g, v = _random_state(16, 16, seed=8)
    c = CrossbarCircuit(16, 16, r_row=5.0, r_col=5.0)
    one = c.solve(g, *_mvm_ends(16, 16, v))
    both = c.solve(g, *_mvm_ends(16, 16, v), row_right=LineEnds.driven(v))
    ideal = v @ g
    assert np.all(np.abs(both.column_currents - ideal) < np.abs(one.column_currents - ideal))
    # each row is fed from both ends; the far (right) half gets more from the right source
    assert np.all(both.i_row_right > 0) and np.all(both.i_row_left > 0)


# -- single-cell access schemes --------------------------------------------------------------------
R_SEL, C_SEL, V_SEL = 3, 6, 0.3


@pytest.fixture
def cell_g() -> np.ndarray:
    return np.random.default_rng(9).uniform(1e-5, 1e-4, (10, 10))


def _access(g, scheme, **res):
    left, bottom = single_cell_bias(10, 10, R_SEL, C_SEL, V_SEL, scheme)
    return CrossbarCircuit(10, 10, **res).solve(g, left, bottom)


@pytest.mark.parametrize(("scheme", "frac"), [("v/2", 1 / 2), ("v/3", 1 / 3)])
def test_half_selected_cells_see_fraction_of_v(cell_g, scheme, frac):
    sol = _access(cell_g, scheme)
    vd = sol.v_row - sol.v_col
    others_r = np.arange(10) != R_SEL
    others_c = np.arange(10) != C_SEL
    assert vd[R_SEL, C_SEL] == pytest.approx(V_SEL, rel=1e-12)
    np.testing.assert_allclose(vd[R_SEL, others_c], frac * V_SEL, rtol=1e-12)  # selected row
    np.testing.assert_allclose(vd[others_r, C_SEL], frac * V_SEL, rtol=1e-12)  # selected column
    unselected = vd[np.ix_(others_r, others_c)]
    np.testing.assert_allclose(unselected, 0.0 if frac == 0.5 else -V_SEL / 3, atol=1e-15)
    # the TIA measures the selected cell plus the half-selected cells of its column
    expected = V_SEL * cell_g[R_SEL, C_SEL] + frac * V_SEL * cell_g[others_r, C_SEL].sum()
    assert sol.column_currents[C_SEL] == pytest.approx(expected, rel=1e-12)


def test_grounded_scheme_measures_the_cell_alone(cell_g):
    sol = _access(cell_g, "ground")
    vd = sol.v_row - sol.v_col
    assert sol.column_currents[C_SEL] == pytest.approx(V_SEL * cell_g[R_SEL, C_SEL], rel=1e-12)
    np.testing.assert_allclose(vd[R_SEL, np.arange(10) != C_SEL], V_SEL, rtol=1e-12)
    np.testing.assert_array_equal(vd[np.arange(10) != R_SEL, C_SEL], 0.0)


def test_floating_scheme_shows_sneak_current(cell_g):
    sol = _access(cell_g, "float")
    own = V_SEL * cell_g[R_SEL, C_SEL]
    sneak = sol.column_currents[C_SEL] - own
    # series-parallel sneak network: G_row → (floating columns) → (floating rows) → G_col
    assert sneak > 0.5 * own
    # only two terminals are connected: what the row sources, the column sinks
    assert sol.i_row_left[R_SEL] == pytest.approx(sol.column_currents[C_SEL], rel=1e-12)
    assert np.count_nonzero(sol.i_row_left) == 1 and np.count_nonzero(sol.i_col_bottom) == 1
    # the sneak shrinks when the other cells are insulating
    g_off = np.full_like(cell_g, 1e-9)
    g_off[R_SEL, C_SEL] = cell_g[R_SEL, C_SEL]
    sol_off = _access(g_off, "float")
    assert sol_off.column_currents[C_SEL] - own < 1e-3 * own


def test_floating_scheme_sneak_matches_series_parallel_formula():
    # Uniform G, ideal lines: the selected row drives (cols-1) cells in parallel into floating
    # columns, those reach (rows-1) floating rows through (rows-1)(cols-1) cells, which return
    # through (rows-1) cells of the selected column: series conductances.
    n, g0 = 10, 2e-5
    g = np.full((n, n), g0)
    sol = CrossbarCircuit(n, n).solve(g, *single_cell_bias(n, n, 0, 0, V_SEL, "float"))
    m = n - 1
    g_sneak = 1 / (1 / (m * g0) + 1 / (m * m * g0) + 1 / (m * g0))
    assert sol.column_currents[0] == pytest.approx(V_SEL * (g0 + g_sneak), rel=1e-12)


# -- Kirchhoff ---------------------------------------------------------------------------------------
@FAST
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 7),
    cols=st.integers(1, 7),
    res=st.tuples(*(st.sampled_from([0.0, 0.5, 3.0, 40.0]) for _ in range(4))),
)
def test_kirchhoff_total_current_is_zero_for_random_end_modes(seed, rows, cols, res):
    rng = np.random.default_rng(seed)
    g = rng.uniform(1e-6, 1e-3, (rows, cols))
    ends = [
        LineEnds(rng.integers(0, 4, n), rng.uniform(-0.3, 0.3, n)) for n in (rows, cols, rows, cols)
    ]
    c = CrossbarCircuit(rows, cols, *res)
    try:
        sol = c.solve(g, ends[0], ends[1], row_right=ends[2], col_top=ends[3])
    except ValueError as exc:  # all ends floating, or a line pinned at both ends
        assert "floating" in str(exc) or "zero-resistance loop" in str(exc)
        assume(False)
    terminals = np.concatenate([sol.i_row_left, sol.i_row_right, sol.i_col_bottom, sol.i_col_top])
    # relative to the terminal currents, floored at 0.1 % of the largest current the voltages
    # could drive (max|V|·ΣG): where almost nothing flows (e.g. a driven row whose columns all
    # float) the currents are pure rounding of node voltages.
    v_max = max(float(np.max(np.abs(e.applied()), initial=0.0)) for e in ends)
    scale = max(np.abs(terminals).sum() + np.abs(sol.i_device).sum(), 1e-3 * v_max * g.sum())
    assume(scale > 0)
    assert abs(terminals.sum()) <= 1e-12 * scale
    # per line: what enters through its ends leaves through its devices
    np.testing.assert_allclose(
        sol.i_row_left + sol.i_row_right, sol.i_device.sum(axis=1), rtol=0, atol=1e-11 * scale
    )
    np.testing.assert_allclose(
        sol.i_col_bottom + sol.i_col_top, -sol.i_device.sum(axis=0), rtol=0, atol=1e-11 * scale
    )
    # floating ends carry no current
    for e, i in zip(ends, (sol.i_row_left, sol.i_col_bottom, sol.i_row_right, sol.i_col_top)):
        assert np.all(i[e.mode == End.FLOAT] == 0)
    np.testing.assert_allclose(sol.i_device, g * (sol.v_row - sol.v_col), rtol=1e-12)


def test_floating_everything_is_rejected():
    c = CrossbarCircuit(3, 3, r_row=1.0, r_col=1.0)
    f3 = LineEnds.uniform(3, End.FLOAT)
    with pytest.raises(ValueError, match="floating lines"):
        c.solve(np.full((3, 3), 1e-5), f3, f3)


def test_isolated_floating_line_is_rejected_and_named():
    g = np.full((3, 3), 1e-5)
    g[1, :] = 0.0  # row 1 touches nothing, and its ends float
    left = LineEnds(np.array([End.DRIVE, End.FLOAT, End.DRIVE]), np.array([0.1, 0.0, 0.2]))
    with pytest.raises(ValueError, match="row 1"):
        CrossbarCircuit(3, 3, r_row=1.0).solve(g, left, LineEnds.uniform(3, End.VGROUND))


def test_floating_line_reached_through_devices_is_solved():
    # row 1 floats but is joined to the grounded columns through its devices: it settles at 0 V.
    g = np.full((3, 3), 1e-5)
    left = LineEnds(np.array([End.DRIVE, End.FLOAT, End.DRIVE]), np.array([0.1, 0.0, 0.2]))
    sol = CrossbarCircuit(3, 3).solve(g, left, LineEnds.uniform(3, End.VGROUND))
    np.testing.assert_allclose(sol.v_row[1], 0.0, atol=1e-18)
    np.testing.assert_allclose(sol.column_currents, 1e-5 * 0.3, rtol=1e-12)


def test_zero_resistance_loop_is_rejected():
    c = CrossbarCircuit(2, 2)  # ideal lines driven at both ends through r_source = 0
    with pytest.raises(ValueError, match="zero-resistance loop"):
        c.solve(
            np.full((2, 2), 1e-5),
            LineEnds.driven([0.1, 0.2]),
            LineEnds.uniform(2, End.VGROUND),
            row_right=LineEnds.driven([0.1, 0.2]),
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"r_row": -1.0}, "r_row"), ({"r_col": float("inf")}, "r_col"), ({"rows": 0}, "rows")],
)
def test_bad_circuit_parameters_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrossbarCircuit(**{"rows": 2, "cols": 2, **kwargs})


def test_bad_conductances_and_ends_are_rejected():
    c = CrossbarCircuit(2, 2)
    ends = (LineEnds.driven([0.1, 0.1]), LineEnds.uniform(2, End.VGROUND))
    with pytest.raises(ValueError, match="shape"):
        c.solve(np.ones((2, 3)), *ends)
    with pytest.raises(ValueError, match=">= 0"):
        c.solve(np.array([[1e-5, -1e-5], [1e-5, 1e-5]]), *ends)
    with pytest.raises(ValueError, match="expected 2"):
        c.solve(np.ones((2, 2)), LineEnds.driven([0.1]), ends[1])
    with pytest.raises(ValueError, match="End members"):
        LineEnds(np.array([0, 7]), np.zeros(2))


def test_line_ends_constructors():
    u = LineEnds.uniform(3, End.DRIVE, 0.2)
    np.testing.assert_array_equal(u.mode, [End.DRIVE] * 3)
    np.testing.assert_array_equal(u.voltage, [0.2] * 3)
    d = LineEnds.driven([0.1, -0.2])
    np.testing.assert_array_equal(d.mode, [1, 1])
    np.testing.assert_array_equal(d.applied(), [0.1, -0.2])
    gnd = LineEnds(np.array([End.GROUND, End.FLOAT]), np.array([5.0, 5.0]))
    np.testing.assert_array_equal(gnd.applied(), [0.0, 0.0])  # voltage only used for DRIVE


# -- non-linear devices ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rows", "cols", "res"),
    [
        (10, 10, (2.0, 3.0, 0.0, 0.0)),
        (10, 10, (0.0, 0.0, 50.0, 20.0)),
        (24, 16, (1.0, 0.0, 5.0, 0.0)),
    ],
)
def test_newton_sinh_converges_and_conserves_current(rows, cols, res):
    rng = np.random.default_rng(rows + cols)
    g = rng.uniform(1e-6, 1e-4, (rows, cols))
    v = rng.uniform(0.0, 0.6, rows)
    law = _sinh_law(g, 8.0)
    sol = CrossbarCircuit(rows, cols, *res).solve(g, *_mvm_ends(rows, cols, v), device=law)
    assert 1 <= sol.iterations <= 10
    np.testing.assert_array_equal(sol.i_device, law(sol.v_row - sol.v_col)[0])
    scale = np.abs(sol.i_row_left).sum()
    assert abs(sol.total_terminal_current) <= 1e-12 * scale
    np.testing.assert_allclose(sol.i_row_left, sol.i_device.sum(axis=1), rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(
        sol.column_currents, sol.i_device.sum(axis=0), rtol=0, atol=1e-12 * scale
    )
    lin = CrossbarCircuit(rows, cols, *res).solve(g, *_mvm_ends(rows, cols, v))
    assert np.all(sol.column_currents > lin.column_currents)  # sinh is super-linear


def test_newton_single_cell_without_resistance_follows_the_law_exactly():
    g = np.array([[3e-5]])
    law = _sinh_law(g, 6.0)
    for v in (-0.8, 0.05, 0.5, 1.2):
        sol = CrossbarCircuit(1, 1).solve(
            g, LineEnds.driven([v]), LineEnds.uniform(1, End.VGROUND), device=law
        )
        expected = 3e-5 * np.sinh(6.0 * v) / 6.0
        assert sol.i_device[0, 0] == expected
        assert sol.column_currents[0] == pytest.approx(expected, rel=1e-15)


def test_newton_single_cell_with_series_resistance_solves_the_scalar_equation():
    g = np.array([[1e-3]])
    a, v_in, r = 5.0, 1.0, 300.0
    sol = CrossbarCircuit(1, 1, r_source=r).solve(
        g, LineEnds.driven([v_in]), LineEnds.uniform(1, End.VGROUND), device=_sinh_law(g, a)
    )
    vd = sol.v_row[0, 0]
    i = sol.i_device[0, 0]
    assert i == pytest.approx(1e-3 * np.sinh(a * vd) / a, rel=1e-14)
    assert (v_in - vd) / r == pytest.approx(i, rel=1e-11)  # the source resistor carries it
    assert 0.2 < vd < 0.9  # a real divider, not a trivial solution


def test_newton_matches_linear_solver_for_linear_law():
    g, v = _random_state(12, 12, seed=31)
    c = CrossbarCircuit(12, 12, r_row=1.0, r_col=2.0)
    lin = c.solve(g, *_mvm_ends(12, 12, v))
    nl = c.solve(g, *_mvm_ends(12, 12, v), device=lambda x: (g * x, g))
    assert nl.iterations == 0  # the linear start is already the solution
    np.testing.assert_allclose(nl.column_currents, lin.column_currents, rtol=1e-12)


@pytest.mark.parametrize("res", [(0.0, 0.0, 1e3, 0.0), (1.0, 1.0, 1e3, 0.0)])
def test_newton_handles_negative_differential_conductance(res):
    # Peaked law I = G·V·exp(−(V/w)²) + g_leak·V: dI/dV < 0 beyond w/√2, so the Jacobian is not
    # positive definite (LU path: dense for ideal lines, SuperLU with pivoting otherwise). The
    # source resistance keeps the load line steeper than the negative slope: unique solution.
    g = np.full((10, 10), 1e-4)
    w, g_leak = 0.5, 1e-6

    def law(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = np.exp(-((x / w) ** 2))
        return g * x * e + g_leak * x, g * e * (1 - 2 * x**2 / w**2) + g_leak

    v = np.linspace(0.1, 0.9, 10)
    sol = CrossbarCircuit(10, 10, *res).solve(g, *_mvm_ends(10, 10, v), device=law)
    vd = sol.v_row - sol.v_col
    np.testing.assert_array_equal(sol.i_device, law(vd)[0])
    assert np.any(law(vd)[1] < 0)
    scale = np.abs(sol.i_row_left).sum()
    assert abs(sol.total_terminal_current) <= 1e-12 * scale
    np.testing.assert_allclose(sol.i_row_left, sol.i_device.sum(axis=1), rtol=0, atol=1e-12 * scale)


def test_newton_raises_when_not_converged():
    g = np.full((6, 6), 1e-4)
    with pytest.raises(ConvergenceError, match="did not converge in 1"):
        CrossbarCircuit(6, 6, r_row=10.0, r_col=10.0).solve(
            g, *_mvm_ends(6, 6, np.full(6, 1.5)), device=_sinh_law(g, 10.0), max_iter=1
        )


@pytest.mark.parametrize("v0", [2.225073858507e-311, 5e-324, 1e-200])
def test_newton_converges_for_subnormal_and_tiny_drives(v0):
    """A drive of 1e-311 V (found by the safety property) gives ~0 A, not a ConvergenceError."""
    g = np.full((10, 10), 1e-5)
    v = np.zeros(10)
    v[1] = v0
    sol = CrossbarCircuit(10, 10, 0.5, 0.5).solve(
        g, *_mvm_ends(10, 10, v), device=_sinh_law(g, 8.0)
    )
    assert np.all(np.abs(sol.column_currents) <= S.CURRENT_FLOOR + 1e-4 * abs(v0))


# -- batch == per vector ---------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [3, 40])  # fewer / more vectors than DRIVE ends
@pytest.mark.parametrize("res", [(1.0, 2.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0), (0.0, 1.0, 3.0, 5.0)])
def test_batch_equals_per_vector_solve(batch, res):
    rng = np.random.default_rng(batch)
    g = rng.uniform(1e-6, 1e-4, (8, 11))
    v = rng.uniform(-0.3, 0.3, (batch, 8))
    vc = rng.uniform(-0.1, 0.1, 11)  # some columns driven at their bottom end
    cmode = np.where(np.arange(11) % 3 == 0, End.DRIVE, End.VGROUND)
    c = CrossbarCircuit(8, 11, *res)
    system = c.factorize(g, np.full(8, End.DRIVE), cmode)
    out = system.solve_batch(v, col_bottom_v=vc)
    fulls = system.solve_batch(v, col_bottom_v=vc, full=True)
    assert out.shape == (batch, 11) and len(fulls) == batch
    for b in range(batch):
        one = c.solve(g, LineEnds.driven(v[b]), LineEnds(cmode, vc))
        np.testing.assert_allclose(out[b], one.column_currents, rtol=1e-9, atol=1e-18)
        np.testing.assert_allclose(fulls[b].i_device, one.i_device, rtol=1e-12, atol=1e-20)
        np.testing.assert_allclose(fulls[b].i_col_bottom, one.i_col_bottom, rtol=1e-12, atol=1e-20)
    np.testing.assert_allclose(
        system.solve_batch(v[0], col_bottom_v=vc), out[0], rtol=1e-9, atol=1e-18
    )


def test_all_factorisation_paths_agree(monkeypatch):
    g, v = _random_state(10, 10, seed=17)
    c = CrossbarCircuit(10, 10, r_row=1.0, r_col=2.0, r_source=3.0, r_sense=4.0)
    modes = (np.full(10, End.DRIVE), np.full(10, End.VGROUND))
    results = {}
    for band, dense_small, expect in [(1e12, 0, "band"), (0, 10**6, "dense"), (0, 0, "splu")]:
        S.clear_caches()
        monkeypatch.setattr(S, "BAND_MAX_FLOPS", band)
        monkeypatch.setattr(S, "DENSE_SMALL_UNKNOWNS", dense_small)
        system = c.factorize(g, *modes)
        assert system.method == expect
        results[expect] = system.solve_batch(v)
    S.clear_caches()
    np.testing.assert_allclose(results["dense"], results["band"], rtol=1e-12)
    np.testing.assert_allclose(results["splu"], results["band"], rtol=1e-12)


def test_automatic_method_choice():
    modes = (np.full(10, End.DRIVE), np.full(10, End.VGROUND))
    g = np.full((10, 10), 1e-5)
    assert CrossbarCircuit(10, 10, r_row=1, r_col=1).factorize(g, *modes).method == "band"
    assert CrossbarCircuit(10, 10, r_source=1).factorize(g, *modes).method == "dense"
    assert CrossbarCircuit(10, 10).factorize(g, *modes).method == "empty"
    m = np.full(64, End.DRIVE), np.full(64, End.VGROUND)
    big = CrossbarCircuit(64, 64, r_row=1, r_col=1).factorize(np.full((64, 64), 1e-5), *m)
    assert big.method == "splu"
