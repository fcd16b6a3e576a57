"""The physics backend: the crossbar primitives computed directly on the simulated array.

This is the fast path (Monte Carlo, training-time evaluation, programming studies): no
instrument drivers, no bus traffic — each primitive becomes one or a few circuit solves of
:class:`sim_backends.array.SimulatedCrossbar` (non-linear devices, line resistance, read noise,
switching, compliance). It implements :class:`crossbar.backend.CrossbarBackend` directly; the
rules (biasing levels, the differential read, limits) are the crossbar policy's, so every line
level arrives here as a :class:`~crossbar.biasing.LineLevels` and maps onto the solver's line
ends: drive → DRIVE at fraction × V, ground → GROUND, float → FLOAT, sensed → VGROUND (the
transimpedance amplifier; a pulse's sensed column is its return path, held at GROUND).

* **read**: the lines held ``t_read`` s with read noise, the sensed column's current (the mean
  of ``read_averages`` integrations: the noise falls as 1/√n, the time grows n-fold). The
  read noise of the simulation is relative to the *terminal* current, which half-selected cells
  dominate under V/2 and V/3, so such a read scatters more than a grounded one.
* **pulse**: the lines held the pulse width with the source's current limit on the selected
  row (None: the bench's ``max_compliance``).
* **sweep**: each point held ``delay`` s (no reading), then read over ``nplc`` power-line cycles
  (1 PLC = 1/60 s) under the current limit; the selected column's current (its mean over the
  reading), flagged where the source was in compliance.
* **mvm**: all rows driven, columns at virtual ground. ``mvm_mode="auto"`` (default) uses the
  simulation's linearised fast path ``mvm_linear`` (one transfer matrix for the whole batch)
  when every |V| ≤ ``linear_max_v`` (0.3 V, the MVM read range: the sinh non-linearity of the
  devices is ≤ 1.5 % there and nothing can switch). Above it — or with
  ``mvm_mode="nonlinear"`` — each vector is a full non-linear solve (read noise, held
  ``t_read`` s, so a too-large input can also disturb the devices, as on the real array).
  ``"linear"`` forces the fast path.
"""

from __future__ import annotations

import numpy as np

from crossbar.backend import (
    Capabilities,
    CrossbarBackend,
    Measurement,
    PointFn,
    StopFn,
    SweepSpec,
    check_stop,
)
from crossbar.biasing import Line, LineLevels
from instruments.errors import SafetyLimits
from sim_backends.array import SimulatedCrossbar
from sim_backends.solver import End, LineEnds

__all__ = ["PhysicsBackend"]

PLC_S = 1.0 / 60.0  # one power-line cycle at 60 Hz, s


class PhysicsBackend(CrossbarBackend):
    """:class:`CrossbarBackend` computed directly on a simulated array (see module doc).

    Args:
        sim: the simulated array.
        limits: the bench's safety limits (max |V| for every primitive, max compliance).
        t_read: integration time of one read measurement, s (advances the sim clock).
        read_averages: noisy measurements averaged per read (≥ 1).
        mvm_mode: ``"auto"``, ``"linear"`` or ``"nonlinear"`` (module doc).
        linear_max_v: largest |V| the ``"auto"`` MVM sends to the linear fast path, V.
        max_read_voltage: cap on read and MVM voltages, V (None: ``limits.max_voltage``).
        row_drivers: rows the bench drives at once in an MVM (None: every row); the
            simulation applies every row at once, which superposition makes equivalent.
        max_pulse_voltage: largest pulse the bench can give, V (None: ``limits.max_voltage``).
        name: shown in logs and the GUI.
        bench_config: the bench configuration this backend was built from (kept for the GUI
            and the data file), or None.
    """

    def __init__(
        self,
        sim: SimulatedCrossbar,
        *,
        limits: SafetyLimits,
        t_read: float = 1e-3,
        read_averages: int = 1,
        mvm_mode: str = "auto",
        linear_max_v: float = 0.3,
        max_read_voltage: float | None = None,
        row_drivers: int | None = None,
        max_pulse_voltage: float | None = None,
        name: str = "physics",
        bench_config: object = None,
    ) -> None:
        if mvm_mode not in ("auto", "linear", "nonlinear"):
            raise ValueError(f"mvm_mode must be 'auto', 'linear' or 'nonlinear', got {mvm_mode!r}")
        if not t_read > 0:
            raise ValueError(f"t_read must be > 0 s, got {t_read}")
        if int(read_averages) < 1:
            raise ValueError(f"read_averages must be >= 1, got {read_averages}")
        self.sim = sim
        self.limits = limits
        rows, cols = sim.shape
        v_max = float(limits.max_voltage)
        self.capabilities = Capabilities(
            rows=rows,
            cols=cols,
            row_drivers=rows if row_drivers is None else min(int(row_drivers), rows),
            col_sensors=cols,
            max_pulse_voltage=v_max if max_pulse_voltage is None else min(max_pulse_voltage, v_max),
            max_read_voltage=v_max if max_read_voltage is None else float(max_read_voltage),
            read_compliance=float(limits.max_compliance),
        )
        self.t_read = float(t_read)
        self.read_averages = int(read_averages)
        self.mvm_mode = mvm_mode
        self.linear_max_v = float(linear_max_v)
        self.name = name
        self.bench_config = bench_config
        self.outputs_on = False
        self.shutdown_count = 0
        self.last_pulse_compliance = False
        self.last_mvm_path = ""  # "linear" or "nonlinear": what the last mvm used

    # -- helpers -----------------------------------------------------------------------------
    def now(self) -> float:
        """The simulation's clock, s."""
        return float(self.sim.clock.now())

    def wait(self, seconds: float) -> None:
        """Advance the simulation's clock by ``seconds`` s (nothing applied meanwhile)."""
        self.sim.clock.advance(float(seconds))

    @staticmethod
    def _ends(lines: tuple[Line, ...], v: float, *, sense: int) -> LineEnds:
        """Solver line ends for ``lines`` at access voltage ``v``; sensed lines as ``sense``."""
        ends = LineEnds.uniform(len(lines), End.FLOAT, 0.0)
        for i, line in enumerate(lines):
            if line.kind == "drive":
                ends.mode[i], ends.voltage[i] = int(End.DRIVE), line.fraction * v
            elif line.kind == "ground":
                ends.mode[i] = int(End.GROUND)
            elif line.kind == "sense":
                ends.mode[i] = sense
            ends.voltage[i] = line.level(v)
        return ends

    def _line_ends(
        self, lines: LineLevels, v: float, *, sense: int = int(End.VGROUND)
    ) -> tuple[LineEnds, LineEnds]:
        return self._ends(lines.rows, v, sense=sense), self._ends(lines.cols, v, sense=sense)

    @staticmethod
    def _terminal(lines: LineLevels) -> tuple[str, int]:
        """The source's terminal: the row driven at the full voltage."""
        return ("row_left", lines.source_rows()[0])

    # -- primitives --------------------------------------------------------------------------
    def read(self, lines: LineLevels, voltage: float) -> Measurement:
        """The sensed column's current (A), mean of ``read_averages`` noisy integrations."""
        self.outputs_on = True
        left, bottom = self._line_ends(lines, voltage)
        col = lines.sensed_cols()[0]
        total = 0.0
        for _ in range(self.read_averages):
            res = self.sim.bias(left, bottom, duration_s=self.t_read, noisy=True)
            total += float(np.asarray(res.solution.column_currents)[col])
        return Measurement(total / self.read_averages, False, self.now())

    def pulse(
        self, lines: LineLevels, amplitude: float, width: float, *, compliance: float | None
    ) -> None:
        """The lines held ``width`` s, the selected row's source limited at ``compliance`` A
        (None: ``limits.max_compliance``). Sets ``last_pulse_compliance``."""
        icc = self.limits.max_compliance if compliance is None else float(compliance)
        self.outputs_on = True
        left, bottom = self._line_ends(lines, float(amplitude), sense=int(End.GROUND))
        res = self.sim.bias(
            left,
            bottom,
            duration_s=float(width),
            i_compliance=icc,
            noisy=False,
            compliance_terminal=self._terminal(lines),
        )
        self.last_pulse_compliance = bool(res.compliance)

    def sweep(
        self, spec: SweepSpec, on_point: PointFn, *, should_stop: StopFn | None = None
    ) -> None:
        """Point by point: each point held ``delay`` s, then read over ``nplc/60`` s with the
        source limited at ``compliance`` A."""
        v = np.asarray(spec.voltages, dtype=float).reshape(-1)
        col = spec.lines.sensed_cols()[0]
        terminal = self._terminal(spec.lines)
        icc = float(spec.compliance)
        self.outputs_on = True
        for c in range(int(spec.cycles)):
            for k, vk in enumerate(v):
                left, bottom = self._line_ends(spec.lines, float(vk))
                if spec.delay > 0:  # the source delay: the level is held, nothing is read
                    self.sim.bias(
                        left,
                        bottom,
                        duration_s=float(spec.delay),
                        i_compliance=icc,
                        noisy=False,
                        compliance_terminal=terminal,
                        reading=False,
                    )
                res = self.sim.bias(  # the reading, integrated over nplc power-line cycles
                    left,
                    bottom,
                    duration_s=spec.nplc * PLC_S,
                    i_compliance=icc,
                    noisy=True,
                    compliance_terminal=terminal,
                )
                i = float(np.asarray(res.solution.column_currents)[col])
                on_point(c, k, Measurement(i, bool(res.compliance), self.now()))
                check_stop(should_stop)
        self.outputs_on = False

    def mvm(self, row_voltages: np.ndarray, *, should_stop: StopFn | None = None) -> np.ndarray:
        """Column currents (batch, cols) A; see the module docstring for the linear fast path
        and when the non-linear solve is used."""
        v2 = np.atleast_2d(np.asarray(row_voltages, dtype=float))
        rows, cols = self.shape
        vmax = float(np.max(np.abs(v2))) if v2.size else 0.0
        linear = self.mvm_mode == "linear" or (
            self.mvm_mode == "auto" and vmax <= self.linear_max_v
        )
        check_stop(should_stop)
        self.outputs_on = True
        if linear:
            out = np.asarray(self.sim.mvm_linear(v2, t_step=self.t_read), dtype=float)
            out = out.reshape(v2.shape[0], cols)
            self.sim.clock.advance(self.t_read * v2.shape[0])
            self.last_mvm_path = "linear"
            return out
        bottom = LineEnds.uniform(cols, End.VGROUND, 0.0)
        out = np.empty((v2.shape[0], cols))
        for b in range(v2.shape[0]):
            check_stop(should_stop)
            left = LineEnds.uniform(rows, End.DRIVE, 0.0)
            left.voltage[:] = v2[b]
            res = self.sim.bias(left, bottom, duration_s=self.t_read, noisy=True)
            out[b] = np.asarray(res.solution.column_currents, dtype=float)
        self.last_mvm_path = "nonlinear"
        return out

    def release(self) -> None:
        """Nothing is connected between accesses in a simulation; marks the outputs off."""
        self.outputs_on = False

    def shutdown(self) -> None:
        """Nothing to switch off in a simulation; marks the outputs off (never raises)."""
        self.outputs_on = False
        self.shutdown_count += 1
