"""Program-and-verify on the ideal test double (tests/fakes.py)."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import IdealCrossbar
from hypothesis import given, settings
from hypothesis import strategies as st

from crossbar.programming import ProgramStep, program_cell, program_map, pulse_cap
from instruments.errors import SafetyLimits


def test_program_cell_up_and_down_converges() -> None:
    """The amplitude ladder (the algorithm before the adaptive one, still available)."""
    xb = IdealCrossbar(shape=(2, 2))  # cells start at 10 µS
    steps: list[ProgramStep] = []
    rep = program_cell(xb, 0, 1, 40e-6, on_pulse=steps.append, algorithm="ladder")
    assert rep.converged and not rep.stuck
    assert abs(rep.final - 40e-6) <= 0.05 * 40e-6
    assert rep.final == xb.g[0, 1]
    assert 1 <= rep.pulses <= 60 and rep.pulses == len(rep.history) == len(xb.pulses)
    # initial read + one step per pulse, in order
    assert [s.pulse for s in steps] == list(range(rep.pulses + 1))
    assert steps[0].amplitude == 0.0 and steps[1].amplitude == pytest.approx(2.8)
    # the SET ramp: 2.8, 2.9, 3.0 … in 0.1 V steps while the pulses miss
    amps = [a for _, _, a, _ in xb.pulses]
    assert amps[:3] == pytest.approx([2.8, 2.9, 3.0])
    rep2 = program_cell(xb, 0, 1, 3e-6, algorithm="ladder")
    assert rep2.converged and abs(rep2.rel_error) <= 0.05
    assert all(a < 0 for a, _, _ in rep2.history[:1])
    assert rep2.history[0][0] == pytest.approx(-2.0)  # RESET starts at −2.0 V


def test_direction_change_resets_amplitude() -> None:
    # a fast device and a tight tolerance: pulses overshoot, the direction flips and the
    # amplitude restarts at the start value of the new polarity
    xb = IdealCrossbar(shape=(1, 1), rate=5.0)
    rep = program_cell(xb, 0, 0, 20e-6, tol=0.02, max_pulses=200, algorithm="ladder")
    amps = [a for a, _, _ in rep.history]
    flips = [k for k in range(1, len(amps)) if np.sign(amps[k]) != np.sign(amps[k - 1])]
    assert flips, amps
    for k in flips:
        assert abs(amps[k]) == pytest.approx(2.8 if amps[k] > 0 else 2.0)
    assert rep.converged


def test_already_within_tolerance_needs_no_pulse() -> None:
    xb = IdealCrossbar(shape=(1, 1))
    rep = program_cell(xb, 0, 0, xb.g[0, 0] * 1.03)
    assert rep.converged and rep.pulses == 0 and xb.pulses == []


def test_budget_respected_and_not_stuck_when_moving() -> None:
    xb = IdealCrossbar(shape=(1, 1), rate=0.02)  # slow device: cannot reach in 10 pulses
    rep = program_cell(xb, 0, 0, 90e-6, max_pulses=10)
    assert rep.pulses == 10 and len(xb.pulses) == 10
    assert not rep.converged and not rep.stuck


def test_stuck_cell_detected_early() -> None:
    xb = IdealCrossbar(shape=(2, 2), stuck=[(1, 1)])
    rep = program_cell(xb, 1, 1, 50e-6, max_pulses=100, algorithm="ladder")
    assert rep.stuck and not rep.converged
    # ramp 2.8 → 4.0 V (13 pulses, the last at the cap) then 5 more at the cap
    assert rep.pulses == 18
    assert max(abs(a) for a, _, _ in rep.history) == pytest.approx(4.0)


def test_target_beyond_window_edge_is_stuck() -> None:
    xb = IdealCrossbar(shape=(1, 1), g_on=1e-4)
    rep = program_cell(xb, 0, 0, 300e-6, max_pulses=200)  # above g_on: saturates at the edge
    assert rep.stuck and not rep.converged
    assert rep.final == pytest.approx(1e-4, rel=0.02)


@settings(max_examples=40, deadline=None)
@given(
    vmax=st.floats(1.0, 6.0),
    pulse_vmax=st.floats(1.0, 6.0),
    v_max=st.floats(1.0, 8.0),
    target=st.floats(1.5e-6, 90e-6),
)
def test_amplitude_never_above_limits(vmax, pulse_vmax, v_max, target) -> None:
    xb = IdealCrossbar(
        shape=(1, 1),
        limits=SafetyLimits(max_voltage=vmax, max_compliance=1e-3),
        max_pulse_voltage=pulse_vmax,
    )
    cap = min(vmax, pulse_vmax, v_max)
    got = pulse_cap(xb, v_max)
    # rounded down to 6 significant digits (what a 6-digit instrument can be sent), never up
    assert cap * (1 - 1e-5) <= got <= cap
    assert float(f"{got:g}") <= cap
    rep = program_cell(xb, 0, 0, target, v_max=v_max, max_pulses=40)
    assert rep.pulses == len(xb.pulses) <= 40
    assert all(abs(a) <= cap + 1e-12 for _, _, a, _ in xb.pulses)
    if cap < 2.1:  # below both thresholds nothing can move: flagged, not looping forever
        assert rep.stuck or rep.converged


def test_program_map_converges_with_nan_skip_and_stuck() -> None:
    rng = np.random.default_rng(0)
    targets = np.exp(rng.uniform(np.log(2e-6), np.log(80e-6), size=(4, 5)))
    targets[0, 0] = np.nan
    xb = IdealCrossbar(shape=(4, 5), stuck=[(2, 2)])
    calls: list[tuple[int, int]] = []
    cells = []
    rep = program_map(
        xb,
        targets,
        progress=lambda p: calls.append((p.done, p.total)),
        on_cell=cells.append,
        skip={(3, 4)},
    )
    assert len(rep.cells) == 18 and rep.skipped == {(3, 4)}
    assert calls[0] == (0, 18) and calls[-1] == (18, 18)
    assert rep.stuck_cells() == [(2, 2)]
    assert rep.fraction_converged == 1.0
    assert rep.n_converged == 17
    final = rep.final_map()
    assert np.isnan(final[0, 0]) and np.isnan(final[3, 4])
    ok = np.isfinite(final) & ~np.isin(np.arange(20).reshape(4, 5), [12])
    rel = np.abs(final[ok] - targets[ok]) / targets[ok]
    assert np.all(rel <= 0.05)
    assert rep.mean_pulses == pytest.approx(np.mean([c.pulses for c in rep.cells]))
    assert rep.total_pulses == len(xb.pulses)
    assert xb.g[0, 0] == pytest.approx(1e-5) and xb.g[3, 4] == pytest.approx(1e-5)
    assert "17 converged" in rep.summary()


def test_program_map_abort_mid_map() -> None:
    xb = IdealCrossbar(shape=(3, 3))
    targets = np.full((3, 3), 50e-6)
    stop = {"flag": False}

    def on_cell(c):
        if (c.row, c.col) == (1, 0):
            stop["flag"] = True

    rep = program_map(xb, targets, should_abort=lambda: stop["flag"], on_cell=on_cell)
    assert rep.aborted
    assert [(c.row, c.col) for c in rep.cells] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert xb.g[2, 2] == pytest.approx(1e-5)  # never touched
    # abort between pulses inside a cell
    xb2 = IdealCrossbar(shape=(1, 1))
    n = {"k": 0}

    def should_abort() -> bool:
        n["k"] += 1
        return n["k"] > 3

    rep2 = program_map(xb2, np.full((1, 1), 90e-6), should_abort=should_abort)
    assert rep2.aborted and rep2.cells[0].aborted and rep2.cells[0].pulses == 2


def test_bad_inputs() -> None:
    xb = IdealCrossbar(shape=(2, 2))
    with pytest.raises(ValueError, match="target conductance"):
        program_cell(xb, 0, 0, -1e-6)
    with pytest.raises(ValueError, match="shape"):
        program_map(xb, np.ones((3, 3)))
    with pytest.raises(ValueError, match="> 0 S"):
        program_map(xb, np.zeros((2, 2)))


# ------------------------------------------------------------------ the adaptive algorithm


def test_adaptive_converges_up_and_down_in_fewer_pulses_than_the_ladder() -> None:
    pulses = {}
    for algorithm in ("ladder", "adaptive"):
        xb = IdealCrossbar(shape=(1, 3))
        reps = [
            program_cell(xb, 0, 0, 60e-6, algorithm=algorithm),
            program_cell(xb, 0, 1, 3e-6, algorithm=algorithm),
            program_cell(xb, 0, 2, 25e-6, tol=0.02, algorithm=algorithm),
        ]
        assert all(r.converged and not r.stuck for r in reps)
        assert all(r.final == pytest.approx(xb.g[0, r.col], rel=1e-12) for r in reps)
        pulses[algorithm] = sum(r.pulses for r in reps)
    assert pulses["adaptive"] < pulses["ladder"], pulses


def test_adaptive_pulses_at_the_cap_and_sizes_the_width_from_the_response() -> None:
    xb = IdealCrossbar(shape=(1, 2))  # SET threshold 2.9 V
    rep = program_cell(xb, 0, 0, 40e-6, tol=0.02, algorithm="adaptive")
    assert rep.converged
    amps = [a for a, _, _ in rep.history]
    widths = [w for _, w, _ in rep.history]
    assert amps == pytest.approx([4.0] * len(amps))  # every pulse at the cap (v_max)
    assert widths[0] == pytest.approx(2e-4)  # a fifth of the nominal width first
    assert len(set(widths)) > 1  # then the width follows the measured rate
    assert all(1e-6 <= w <= 8e-3 for w in widths)
    low = program_cell(xb, 0, 1, 40e-6, tol=0.02, v_max=3.5, algorithm="adaptive")
    assert low.converged and {a for a, _, _ in low.history} == {3.5}  # the cap follows v_max


def test_adaptive_lengthens_the_pulse_until_the_cell_responds() -> None:
    # a slow cell far from its target: 0.2 ms at 4 V barely moves it; each pulse aims at the
    # largest move (MAX_MOVE)
    xb = IdealCrossbar(np.array([[2e-6]]), rate=0.02)
    rep = program_cell(xb, 0, 0, 40e-6, tol=0.02, algorithm="adaptive")
    assert rep.converged and not rep.stuck
    widths = [w for _, w, _ in rep.history]
    assert widths[:4] == pytest.approx([2e-4, 4e-4, 8e-4, 1.6e-3])  # doubled while it lags


def test_adaptive_gives_up_a_stuck_cell_after_two_kicks() -> None:
    xb = IdealCrossbar(shape=(2, 2), stuck=[(1, 1)])
    rep = program_cell(xb, 1, 1, 50e-6, max_pulses=100, algorithm="adaptive")
    assert rep.stuck and not rep.converged
    amps = [a for a, _, _ in rep.history]
    kicks = [a for a in amps if a < 0]  # full-strength pulses the other way, then retry
    assert kicks == pytest.approx([-4.0, -4.0])
    assert rep.pulses < 40 and max(abs(a) for a in amps) == pytest.approx(4.0)


def test_program_map_passes_the_measured_rate_from_cell_to_cell() -> None:
    xb = IdealCrossbar(shape=(1, 4))
    targets = np.array([[40e-6, 40e-6, 40e-6, 40e-6]])
    rep = program_map(xb, targets, tol=0.02)
    first = [w for _, w, _ in rep.cells[0].history]
    later = [w for _, w, _ in rep.cells[3].history]
    assert first[0] == pytest.approx(2e-4) and later[0] > 2e-4  # sized from what was measured
    assert rep.cells[3].pulses < rep.cells[0].pulses
    assert all(c.converged for c in rep.cells)
