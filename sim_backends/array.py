"""The simulated crossbar: device physics (:mod:`sim_backends.device`) in a resistive circuit
(:mod:`sim_backends.solver`), on a virtual clock.

This is the one physical object that the instruments' simulated twins and the fast physics
backend both drive. Every access is a *biasing*: the connection of every line end (DRIVE at a
voltage, VGROUND through a transimpedance amplifier, GROUND, FLOAT) held for some time.
:meth:`SimulatedCrossbar.bias` solves the non-linear circuit with the devices' I-V law, then lets
every device switch under the voltage it actually sees (half-selected cells of a V/2 or V/3 scheme
stay below threshold), and advances the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq

from sim_backends.clock import VirtualClock
from sim_backends.device import V_READ_REF, DeviceArray
from sim_backends.profiles import DeviceProfile, get_profile
from sim_backends.solver import (
    CrossbarCircuit,
    End,
    LinearSystem,
    LineEnds,
    Solution,
    single_cell_bias,
)

__all__ = ["TERMINALS", "BiasResult", "SimulatedCrossbar"]

#: Names of the four line-end groups, as used by ``compliance_terminal``.
TERMINALS = ("row_left", "row_right", "col_bottom", "col_top")


@dataclass(frozen=True)
class BiasResult:
    """The outcome of one :meth:`SimulatedCrossbar.bias`.

    ``solution`` holds node voltages (V) and currents (A) over the bias (for a read, what the
    meters see: the start, or the mean of start and end when devices switched during it; with
    ``noisy`` the currents carry read noise). ``compliance`` is True
    when the limited source could not deliver its voltage; ``source_scale`` is then the fraction
    of its programmed voltage it actually applied (1.0 otherwise). ``time`` is the clock after
    the bias (s).
    """

    solution: Solution
    compliance: bool
    source_scale: float = 1.0
    time: float = 0.0


class SimulatedCrossbar:
    """A ``rows × cols`` passive crossbar of simulated memristors.

    Args:
        profile: device profile or preset name (see :data:`sim_backends.profiles.PROFILES`).
        shape: ``(rows, cols)``.
        seed: seeds both the devices (parameters, switching noise) and the read noise; the same
            seed and the same calls give identical results.
        r_row, r_col: line resistance per segment (Ω); r_source, r_sense: source / TIA
            resistance (Ω) — see :class:`sim_backends.solver.CrossbarCircuit`.
        clock: the virtual clock to advance (a new one by default).
    """

    def __init__(
        self,
        profile: DeviceProfile | str = "optimized",
        shape: tuple[int, int] = (10, 10),
        *,
        seed: int = 0,
        r_row: float = 0.0,
        r_col: float = 0.0,
        r_source: float = 0.0,
        r_sense: float = 0.0,
        clock: VirtualClock | None = None,
    ) -> None:
        rows, cols = (int(x) for x in shape)
        self.profile = get_profile(profile)
        dev_seq, noise_seq = np.random.SeedSequence(seed).spawn(2)
        self.devices = DeviceArray(self.profile, (rows, cols), np.random.default_rng(dev_seq))
        self.rng = np.random.default_rng(noise_seq)
        self.circuit = CrossbarCircuit(rows, cols, r_row, r_col, r_source, r_sense)
        self.clock = clock if clock is not None else VirtualClock()
        self._lin_cache: tuple[np.ndarray, LinearSystem] | None = None

    @property
    def clock(self) -> Any:
        """The array's clock (``now()``, ``advance(dt)``, s); the devices time retention and
        telegraph noise on it. Setting it (the simulated bench gives its device-time view)
        gives it to the devices too."""
        return self._clock

    @clock.setter
    def clock(self, value: Any) -> None:
        self._clock = value
        self.devices.use_clock(value)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return (self.circuit.rows, self.circuit.cols)

    # -- physics --------------------------------------------------------------------------------
    def true_conductance(self, v_read: float = V_READ_REF) -> np.ndarray:
        """Noise-free read conductance I/V of every cell at ``v_read`` (V), shape (rows, cols), S."""
        return self.devices.conductance(v_read)

    def _solve(
        self,
        row_left: LineEnds,
        col_bottom: LineEnds,
        row_right: LineEnds | None,
        col_top: LineEnds | None,
    ) -> Solution:
        return self.circuit.solve(
            self.devices.conductance(),
            row_left,
            col_bottom,
            row_right,
            col_top,
            device=self.devices.iv,
        )

    def bias(
        self,
        row_left: LineEnds,
        col_bottom: LineEnds,
        *,
        row_right: LineEnds | None = None,
        col_top: LineEnds | None = None,
        duration_s: float = 0.0,
        i_compliance: float = np.inf,
        noisy: bool = True,
        compliance_terminal: tuple[str, int] | None = None,
        reading: bool = True,
    ) -> BiasResult:
        """Apply a biasing for ``duration_s`` seconds (0: an instantaneous read).

        1. Solve the non-linear circuit (devices' sinh law, Newton).
        2. Compliance: if the source at ``compliance_terminal`` (e.g. ``("row_left", r)``, a
           DRIVE end) would carry more than ``i_compliance`` (A, magnitude), its voltage is
           reduced (root-finding on the solve) until its current equals the limit, as a real
           source in compliance does; the devices see that reduced voltage and the result has
           ``compliance=True``. If even 0 V at that source exceeds the limit (other sources
           push the current), the source is left at 0 V.
        3. ``duration_s > 0``: every device switches under the voltage it sees (only cells beyond
           threshold change). A cell on the limited line stops growing when the line's total
           current would reach ``i_compliance`` (its share: the limit minus what the other cells
           of the line carry); if the source reaches its limit by the end of the bias,
           ``compliance`` is True too. The clock advances by ``duration_s``.
        4. ``noisy`` (a reading): every solve of the bias sees each cell's ``G`` times one draw
           of the devices' read noise on G (white ``g_noise``, telegraph noise;
           :meth:`~sim_backends.device.DeviceArray.read_factors`), the cells are disturbed by
           the voltage they saw (``read_disturb``), and device and terminal currents get the
           relative Gaussian meter noise ``read_noise``.

        The returned solution is the one at the start of the bias when no device changed, else
        the mean of the solutions at its start and its end (a meter integrating over the bias,
        by the trapezoid rule). ``reading=False`` (a hold whose result the caller discards):
        no end-of-bias solve, so the solution stays the start one and ``compliance`` reports
        only a source limited from the start.
        """
        if duration_s < 0:
            raise ValueError(f"duration_s must be >= 0, got {duration_s}")
        factor = self.devices.read_factors(self.rng) if noisy else None
        with self.devices.reading(factor):
            res = self._bias(
                row_left,
                col_bottom,
                row_right,
                col_top,
                duration_s,
                i_compliance,
                compliance_terminal,
                reading,
            )
        if noisy:
            self.devices.disturb(res.solution.v_row - res.solution.v_col)
        if noisy and self.profile.read_noise > 0:
            res = BiasResult(self._noisy(res.solution), res.compliance, res.source_scale, res.time)
        return res

    def _bias(
        self,
        row_left: LineEnds,
        col_bottom: LineEnds,
        row_right: LineEnds | None,
        col_top: LineEnds | None,
        duration_s: float,
        i_compliance: float,
        compliance_terminal: tuple[str, int] | None,
        reading: bool,
    ) -> BiasResult:
        """Steps 1–3 of :meth:`bias` (no meter noise)."""
        ends = {
            "row_left": row_left,
            "row_right": row_right,
            "col_bottom": col_bottom,
            "col_top": col_top,
        }
        sol = self._solve(row_left, col_bottom, row_right, col_top)
        in_compliance = False
        scale = 1.0
        cap = np.full(self.shape, np.inf)
        if compliance_terminal is not None and np.isfinite(i_compliance):
            group, index = compliance_terminal
            if group not in TERMINALS:
                raise ValueError(f"compliance_terminal group must be one of {TERMINALS}")
            end = ends[group]
            if end is None or not 0 <= index < end.mode.size:
                raise ValueError(f"compliance_terminal {compliance_terminal} is not connected")
            if end.mode[index] != End.DRIVE:
                raise ValueError(f"compliance_terminal {compliance_terminal} is not a DRIVE end")
            if not i_compliance > 0:
                raise ValueError(f"i_compliance must be > 0 A, got {i_compliance}")
            v0 = float(end.voltage[index])

            def solve_at(s: float) -> Solution:
                end.voltage[index] = s * v0
                try:
                    return self._solve(row_left, col_bottom, row_right, col_top)
                finally:
                    end.voltage[index] = v0

            current = _terminal_current(sol, group, index)
            if abs(current) > i_compliance:
                in_compliance = True

                def excess(s: float) -> float:
                    return abs(_terminal_current(solve_at(s), group, index)) - i_compliance

                if excess(0.0) >= 0:
                    scale = 0.0
                else:
                    scale = float(brentq(excess, 0.0, 1.0, xtol=1e-9, rtol=1e-9))
                sol = solve_at(scale)
            # a cell on the limited line may grow only until the line's total reaches the limit
            line = (index, slice(None)) if group.startswith("row") else (slice(None), index)
            i_line = np.abs(sol.i_device[line])
            others = max(abs(_terminal_current(sol, group, index)) - i_line.sum(), 0.0)
            cap[line] = np.maximum(i_compliance - others - (i_line.sum() - i_line), 1e-15)
        if duration_s > 0:
            changed = self.devices.apply(sol.v_row - sol.v_col, duration_s, cap)
            self.clock.advance(duration_s)
            if changed and reading:
                if scale < 1.0:
                    end_sol = solve_at(scale)
                else:
                    end_sol = self._solve(row_left, col_bottom, row_right, col_top)
                if (
                    compliance_terminal is not None
                    and np.isfinite(i_compliance)
                    and not in_compliance
                ):
                    # did the source reach its limit during the bias (the cell grew into it)?
                    reached = abs(_terminal_current(end_sol, group, index))
                    in_compliance = reached >= i_compliance * (1.0 - 1e-6)
                # a meter integrating over the bias: trapezoid rule over its start and end
                sol = _mean_solution(sol, end_sol)
        return BiasResult(
            solution=sol, compliance=in_compliance, source_scale=scale, time=self.clock.now()
        )

    def _noisy(self, sol: Solution) -> Solution:
        r = self.profile.read_noise
        rng = self.rng

        def n(x: np.ndarray) -> np.ndarray:
            return x * (1.0 + r * rng.standard_normal(x.shape))

        return Solution(
            v_row=sol.v_row,
            v_col=sol.v_col,
            i_device=n(sol.i_device),
            i_row_left=n(sol.i_row_left),
            i_row_right=n(sol.i_row_right),
            i_col_bottom=n(sol.i_col_bottom),
            i_col_top=n(sol.i_col_top),
            iterations=sol.iterations,
        )

    # -- conveniences for single-cell access ------------------------------------------------------
    def read_cell(
        self,
        row: int,
        col: int,
        v_read: float = V_READ_REF,
        scheme: str = "v/2",
        noisy: bool = True,
    ) -> float:
        """Current (A) into the selected column's TIA when cell (row, col) is read at ``v_read``
        V with the given scheme (``"v/2"``, ``"v/3"``, ``"ground"``, ``"float"``); sneak paths
        included, no state change."""
        left, bottom = single_cell_bias(*self.shape, row, col, v_read, scheme)
        res = self.bias(left, bottom, noisy=noisy)
        return float(res.solution.column_currents[col])

    def pulse_cell(
        self,
        row: int,
        col: int,
        voltage: float,
        width_s: float,
        scheme: str = "v/2",
        i_compliance: float = np.inf,
    ) -> BiasResult:
        """A programming pulse of ``voltage`` V for ``width_s`` s on cell (row, col); the
        unselected lines follow ``scheme``; ``i_compliance`` (A) limits the selected row's
        source."""
        left, bottom = single_cell_bias(*self.shape, row, col, voltage, scheme)
        return self.bias(
            left,
            bottom,
            duration_s=width_s,
            i_compliance=i_compliance,
            compliance_terminal=("row_left", row) if np.isfinite(i_compliance) else None,
        )

    # -- fast matrix-vector multiply --------------------------------------------------------------
    def mvm_linear(
        self,
        row_voltages: np.ndarray,
        *,
        v_lin: float | None = None,
        noisy: bool = True,
        t_step: float = 0.0,
    ) -> np.ndarray:
        """Column currents for many input vectors: ``(batch, rows)`` V → ``(batch, cols)`` A.

        Rows are driven at their left ends, columns held at virtual ground at their bottom ends
        (other ends open); devices are linearised at their chord conductance I/V at ``v_lin``
        (default: the largest |input| of the batch, or 0.1 V for an all-zero batch), so the
        result is exact for inputs at ±v_lin and 0 V. The circuit is factorised once per device
        state (cached). ``noisy``: the devices' read noise on G for every vector (first order
        in it: ``Σ_i V_i·G_ij·(f_ij − 1)`` added, the line resistance's effect on the small
        fluctuation neglected; telegraph states evolved ``t_step`` s per vector), read disturb
        (each cell at its row's voltage) and relative Gaussian meter noise on every output
        current. A 1-D input gives a 1-D output.
        """
        x = np.asarray(row_voltages, dtype=float)
        single = x.ndim == 1
        x2 = x.reshape(1, -1) if single else x
        rows, cols = self.shape
        if x2.ndim != 2 or x2.shape[1] != rows:
            raise ValueError(f"row_voltages must have shape (batch, {rows}), got {x.shape}")
        if v_lin is None:
            peak = float(np.max(np.abs(x2))) if x2.size else 0.0
            v_lin = peak if peak > 0 else V_READ_REF
        g = self.devices.conductance(v_lin)
        if self._lin_cache is None or not np.array_equal(self._lin_cache[0], g):
            system = self.circuit.factorize(
                g,
                np.full(rows, int(End.DRIVE)),
                np.full(cols, int(End.VGROUND)),
            )
            self._lin_cache = (g, system)
        out = np.asarray(self._lin_cache[1].solve_batch(x2), dtype=float)
        if noisy:
            factors = self.devices.read_factors(self.rng, x2.shape[0], t_step)
            if factors is not None:  # first order in the noise: Σ_i V_i·G_ij·(f_ij − 1)
                out = out + np.einsum("bi,bij->bj", x2, g * (factors - 1.0))
            self.devices.disturb(np.broadcast_to(x2[:, :, None], (x2.shape[0], rows, cols)))
        if noisy and self.profile.read_noise > 0:
            out = out * (1.0 + self.profile.read_noise * self.rng.standard_normal(out.shape))
        return out[0] if single else out


def _terminal_current(sol: Solution, group: str, index: int) -> float:
    return float(getattr(sol, "i_" + group)[index])


def _mean_solution(a: Solution, b: Solution) -> Solution:
    """The element-wise mean of two solutions (voltages and currents)."""
    return Solution(
        v_row=0.5 * (a.v_row + b.v_row),
        v_col=0.5 * (a.v_col + b.v_col),
        i_device=0.5 * (a.i_device + b.i_device),
        i_row_left=0.5 * (a.i_row_left + b.i_row_left),
        i_row_right=0.5 * (a.i_row_right + b.i_row_right),
        i_col_bottom=0.5 * (a.i_col_bottom + b.i_col_bottom),
        i_col_top=0.5 * (a.i_col_top + b.i_col_top),
        iterations=max(a.iterations, b.iterations),
    )
