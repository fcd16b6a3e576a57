"""The physics backend: every crossbar primitive computed directly on the simulated array.

This is the fast path (Monte Carlo, training-time evaluation, programming studies): no
instrument drivers, no bus traffic — each primitive becomes one or a few circuit solves of the
simulation (``sim_backends.array.SimulatedCrossbar``: non-linear devices, line resistance, read
noise, switching, compliance).

**Layering.** ``crossbar`` may not import ``sim_backends`` (import-linter contract), so the
simulation is *injected* and duck-typed. What is used of it:

* ``sim.bias(row_left, col_bottom, *, duration_s, i_compliance, noisy, compliance_terminal)``
  → result with ``.solution`` (``column_currents``, ``i_row_left`` …) and ``.compliance``;
* ``sim.mvm_linear(row_voltages (batch, rows))`` → (batch, cols) A;
* ``sim.clock.now()``; the array shape from ``sim.shape``, ``sim.devices.shape`` or
  ``sim.true_conductance()``;
* the solver's ``End`` enum and ``LineEnds`` class, through a :class:`SimApi`: pass one
  explicitly (``SimApi.from_module(sim_backends.solver)`` in :mod:`crossbar.bench`, which may
  import ``sim_backends``), or let :meth:`SimApi.from_sim` find them on the simulation object
  (attributes ``End``/``LineEnds``) or in the namespace of the module that defines its class.

**Single-cell access** (``read_cell``, ``pulse``, ``iv_sweep``): the selected row is driven at
``V``, the selected column held at (virtual) ground, unselected lines by the biasing scheme:
V/2 — unselected rows and columns at V/2; V/3 — unselected rows at V/3, unselected columns at
2V/3; ground — unselected lines grounded; float — unselected lines open (sneak paths).

*Reads* measure the selected column's current into its transimpedance amplifier. Under V/2
and V/3 the unselected cells of the selected column see V/2 (V/3) and their current flows into
the same amplifier, so a single measurement overstates G by ``Σ_i G_i,col·V_u/V`` (≈ 3× for a
uniform 10×10 array under V/3). With ``differential_read=True`` (default) the backend therefore
reads twice, with the selected row at ``V`` and at the unselected-row level ``V_u``, and reports
``G = (I(V) − I(V_u)) / (V − V_u)``: the half-selected contributions cancel (exactly for linear
devices and zero line resistance; to < 0.5 % for the sinh devices at 0.2 V) at the cost of two
integrations. The read noise of the simulation is relative to the *terminal* current, which the
half-selected cells dominate, so a V/3 read of a 10×10 array at 1 % read noise scatters by
≈ 8 % (V/2: ≈ 13 %) against ≈ 1 % for a grounded read; ``read_averages`` averages several
integrations. ``differential_read=False`` gives the raw ``I/V``.
Ground needs no correction (sneak currents go to ground); float has none available.

*Pulses* hold the biasing for the pulse width with the source's current limit on the selected
row's driver (``compliance``; None: the bench's ``max_compliance``). *I-V sweeps* hold each
point for ``nplc/60`` s with the same limit and report the column current, flagging points where
the source was in compliance.

**MVM**: all rows driven (the physics path has a driver per row), columns at virtual ground.
``mvm_mode="auto"`` (default) uses the simulation's linearised fast path ``mvm_linear``
(one transfer matrix for the whole batch) when every |V| ≤ ``linear_max_v`` (0.3 V, the MVM read
range: the sinh non-linearity of the devices is ≤ 1.5 % there and nothing can switch). Above it —
or with ``mvm_mode="nonlinear"`` — each vector is a full non-linear solve (``sim.bias`` with
read noise, held ``t_read`` s, so a too-large input can also disturb the devices, as on the real
array). ``"linear"`` forces the fast path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from crossbar.backend import (
    Biasing,
    Capabilities,
    CellReading,
    CrossbarBackend,
    SweepPoint,
    SweepResult,
)
from instruments.errors import SafetyLimitError, SafetyLimits

if TYPE_CHECKING:  # type hints only: crossbar must not import sim_backends at run time
    from sim_backends.array import SimulatedCrossbar

__all__ = ["PhysicsBackend", "SimApi"]

PLC_S = 1.0 / 60.0  # one power-line cycle at 60 Hz, s


@dataclass(frozen=True)
class SimApi:
    """The solver types the backend needs to describe line connections.

    ``End``: enum with ``FLOAT``, ``DRIVE``, ``VGROUND``, ``GROUND``; ``LineEnds``: class with
    ``LineEnds.uniform(n, mode, voltage)`` and attributes ``mode`` / ``voltage`` (arrays).
    """

    End: Any
    LineEnds: Any

    @classmethod
    def from_module(cls, module: ModuleType | Any) -> SimApi:
        """From any namespace holding ``End`` and ``LineEnds`` (e.g. ``sim_backends.solver``)."""
        try:
            return cls(End=module.End, LineEnds=module.LineEnds)
        except AttributeError as exc:
            raise TypeError(f"{module!r} has no End/LineEnds solver types") from exc

    @classmethod
    def from_sim(cls, sim: Any) -> SimApi:
        """Find the solver types on the simulation object or in its class's module."""
        if hasattr(sim, "End") and hasattr(sim, "LineEnds"):
            return cls(End=sim.End, LineEnds=sim.LineEnds)
        for klass in type(sim).__mro__:
            mod = sys.modules.get(klass.__module__)
            if mod is not None and hasattr(mod, "End") and hasattr(mod, "LineEnds"):
                return cls(End=mod.End, LineEnds=mod.LineEnds)
        raise TypeError(
            f"cannot find the solver's End/LineEnds for {type(sim).__name__}; pass "
            "api=SimApi.from_module(sim_backends.solver)"
        )


def _shape_of(sim: Any) -> tuple[int, int]:
    shape = getattr(sim, "shape", None)
    if shape is None:
        devices = getattr(sim, "devices", None)
        shape = getattr(devices, "shape", None)
    if shape is None:
        shape = np.shape(sim.true_conductance())
    rows, cols = (int(s) for s in shape)
    return rows, cols


class PhysicsBackend(CrossbarBackend):
    """:class:`CrossbarBackend` computed directly on an injected simulation (see module doc).

    Args:
        sim: the simulated array (``SimulatedCrossbar``), duck-typed.
        limits: the bench's safety limits (max |V| for every primitive, max compliance).
        api: the solver's End/LineEnds (default: :meth:`SimApi.from_sim`).
        t_read: integration time of one read measurement, s (advances the sim clock).
        read_averages: noisy measurements averaged per read (≥ 1), like a longer integration:
            the read noise falls as 1/√n, the time grows n-fold.
        differential_read: cancel half-selected currents under V/2 and V/3 (module doc).
        mvm_mode: ``"auto"``, ``"linear"`` or ``"nonlinear"`` (module doc).
        linear_max_v: largest |V| the ``"auto"`` MVM sends to the linear fast path, V.
        max_read_voltage: optional cap on read and MVM voltages, V (None: ``limits`` only).
        name: shown in logs and the GUI.
    """

    def __init__(
        self,
        sim: SimulatedCrossbar | Any,
        *,
        limits: SafetyLimits,
        api: SimApi | ModuleType | None = None,
        t_read: float = 1e-3,
        read_averages: int = 1,
        differential_read: bool = True,
        mvm_mode: str = "auto",
        linear_max_v: float = 0.3,
        max_read_voltage: float | None = None,
        name: str = "physics",
    ) -> None:
        if mvm_mode not in ("auto", "linear", "nonlinear"):
            raise ValueError(f"mvm_mode must be 'auto', 'linear' or 'nonlinear', got {mvm_mode!r}")
        if not t_read > 0:
            raise ValueError(f"t_read must be > 0 s, got {t_read}")
        self.sim = sim
        self.limits = limits
        if api is None:
            self.api = SimApi.from_sim(sim)
        elif isinstance(api, SimApi):
            self.api = api
        else:
            self.api = SimApi.from_module(api)
        rows, cols = _shape_of(sim)
        self.capabilities = Capabilities(
            rows=rows,
            cols=cols,
            row_drivers=rows,
            col_sensors=cols,
            max_pulse_voltage=float(limits.max_voltage),
        )
        self.t_read = float(t_read)
        if int(read_averages) < 1:
            raise ValueError(f"read_averages must be >= 1, got {read_averages}")
        self.read_averages = int(read_averages)
        self.differential_read = bool(differential_read)
        self.mvm_mode = mvm_mode
        self.linear_max_v = float(linear_max_v)
        self.max_read_voltage = None if max_read_voltage is None else float(max_read_voltage)
        self.name = name
        self.outputs_on = False
        self.shutdown_count = 0
        self.last_pulse_compliance = False
        self.last_mvm_path = ""  # "linear" or "nonlinear": what the last mvm used

    # -- helpers -----------------------------------------------------------------------------
    def now(self) -> float:
        clock = getattr(self.sim, "clock", None)
        return float(clock.now()) if clock is not None else 0.0

    def _check_read_voltage(self, v: float | np.ndarray, what: str) -> None:
        self.check_voltage(v, what)
        if self.max_read_voltage is not None:
            vmax = float(np.max(np.abs(v))) if np.size(v) else 0.0
            if vmax > self.max_read_voltage:
                raise SafetyLimitError(
                    f"{what}: |V| = {vmax:g} V exceeds the read limit of "
                    f"{self.max_read_voltage:g} V",
                    setting=what,
                    value=vmax,
                    limit=self.max_read_voltage,
                )

    def _levels(self, v: float, biasing: Biasing) -> tuple[Any, float, Any, float]:
        """(row mode, row level, column mode, column level) of the unselected lines."""
        end = self.api.End
        if biasing is Biasing.V2:
            return end.DRIVE, v / 2, end.DRIVE, v / 2
        if biasing is Biasing.V3:
            return end.DRIVE, v / 3, end.DRIVE, 2 * v / 3
        if biasing is Biasing.GROUND:
            return end.GROUND, 0.0, end.GROUND, 0.0
        if biasing is Biasing.COLS_2V3:
            return end.GROUND, 0.0, end.DRIVE, 2 * v / 3
        return end.FLOAT, 0.0, end.FLOAT, 0.0

    def _ends(
        self, row: int, col: int, v: float, biasing: Biasing, *, sense: bool, v_sel: float | None
    ) -> tuple[Any, Any]:
        """LineEnds for single-cell access at ``v`` (unselected levels from ``v``); the selected
        row driven at ``v_sel`` (default ``v``); the selected column VGROUND if ``sense``."""
        end, line_ends = self.api.End, self.api.LineEnds
        rows, cols = self.shape
        rmode, rv, cmode, cv = self._levels(v, biasing)
        left = line_ends.uniform(rows, rmode, rv)
        bottom = line_ends.uniform(cols, cmode, cv)
        left.mode[row] = int(end.DRIVE)
        left.voltage[row] = v if v_sel is None else v_sel
        bottom.mode[col] = int(end.VGROUND if sense else end.GROUND)
        bottom.voltage[col] = 0.0
        return left, bottom

    def _column_current(
        self, row: int, col: int, v: float, biasing: Biasing, *, v_sel: float | None = None
    ) -> float:
        """Selected column's current (A), mean of ``read_averages`` noisy integrations."""
        left, bottom = self._ends(row, col, v, biasing, sense=True, v_sel=v_sel)
        total = 0.0
        for _ in range(self.read_averages):
            res = self.sim.bias(left, bottom, duration_s=self.t_read, noisy=True)
            total += float(np.asarray(res.solution.column_currents)[col])
        return total / self.read_averages

    # -- primitives --------------------------------------------------------------------------
    def read_cell(
        self, row: int, col: int, *, v_read: float = 0.2, biasing: Biasing = Biasing.V3
    ) -> CellReading:
        """Read at ``v_read`` V (≠ 0); see the module docstring for the differential V/2, V/3
        read. ``current`` is the cell's current estimate ``G·v_read`` (A)."""
        self.check_cell(row, col)
        biasing = Biasing.parse(biasing)
        self._check_read_voltage(v_read, "read voltage")
        if v_read == 0:
            raise ValueError("v_read must be non-zero (the conductance is I/V)")
        self.outputs_on = True
        i1 = self._column_current(row, col, v_read, biasing)
        if self.differential_read and biasing in (Biasing.V2, Biasing.V3):
            v_u = v_read / 2 if biasing is Biasing.V2 else v_read / 3
            i0 = self._column_current(row, col, v_read, biasing, v_sel=v_u)
            g = (i1 - i0) / (v_read - v_u)
        else:
            g = i1 / v_read
        return CellReading(row, col, float(v_read), g * v_read, g, False, self.now())

    def read_map(
        self,
        *,
        v_read: float = 0.2,
        biasing: Biasing = Biasing.V3,
        on_cell: Callable[[CellReading], None] | None = None,
    ) -> np.ndarray:
        """Every cell read one by one (the sneak-path physics differs per cell)."""
        return super().read_map(v_read=v_read, biasing=biasing, on_cell=on_cell)

    def pulse(
        self,
        row: int,
        col: int,
        amplitude: float,
        width: float,
        *,
        biasing: Biasing = Biasing.V2,
        compliance: float | None = None,
    ) -> None:
        """One pulse: biasing held ``width`` s, the selected row's source limited at
        ``compliance`` A (None: ``limits.max_compliance``). Sets ``last_pulse_compliance``."""
        self.check_cell(row, col)
        biasing = Biasing.parse(biasing)
        self.check_voltage(amplitude, "pulse amplitude")
        if not (np.isfinite(width) and width > 0):
            raise ValueError(f"pulse width must be > 0 s, got {width}")
        icc = self.limits.max_compliance if compliance is None else float(compliance)
        self.check_compliance(icc, "pulse compliance")
        self.outputs_on = True
        left, bottom = self._ends(row, col, float(amplitude), biasing, sense=False, v_sel=None)
        res = self.sim.bias(
            left,
            bottom,
            duration_s=float(width),
            i_compliance=icc,
            noisy=False,
            compliance_terminal=("row_left", int(row)),
        )
        self.last_pulse_compliance = bool(res.compliance)

    def iv_sweep(
        self,
        row: int,
        col: int,
        voltages: Sequence[float],
        *,
        compliance: float,
        cycles: int = 1,
        nplc: float = 1.0,
        biasing: Biasing = Biasing.GROUND,
        on_point: Callable[[SweepPoint], None] | None = None,
        delay: float = 0.0,
    ) -> SweepResult:
        """Point-by-point cyclic sweep; each point held ``delay`` s, then read over ``nplc/60`` s
        (1 PLC = 1/60 s), with the source limited at ``compliance`` A; current = selected
        column's current (its mean over the reading)."""
        self.check_cell(row, col)
        biasing = Biasing.parse(biasing)
        v = np.asarray(voltages, dtype=float).reshape(-1)
        if v.size == 0 or cycles < 1:
            raise ValueError("an I-V sweep needs ≥ 1 voltage and ≥ 1 cycle")
        self.check_voltage(v, "sweep voltages")
        self.check_compliance(compliance, "sweep compliance")
        if not (0 < nplc <= 60):
            raise ValueError(f"nplc must be in (0, 60], got {nplc}")
        if not 0.0 <= delay <= 999.9999:
            raise ValueError(f"delay must be in [0, 999.9999] s, got {delay}")
        cur = np.full((v.size, cycles), np.nan)
        comp = np.zeros((v.size, cycles), dtype=bool)
        self.outputs_on = True
        for c in range(cycles):
            for k, vk in enumerate(v):
                left, bottom = self._ends(row, col, float(vk), biasing, sense=True, v_sel=None)
                if delay > 0:  # the source delay: the level is held, nothing is read
                    self.sim.bias(
                        left,
                        bottom,
                        duration_s=float(delay),
                        i_compliance=float(compliance),
                        noisy=False,
                        compliance_terminal=("row_left", int(row)),
                        reading=False,
                    )
                res = self.sim.bias(  # the reading, integrated over nplc power-line cycles
                    left,
                    bottom,
                    duration_s=nplc * PLC_S,
                    i_compliance=float(compliance),
                    noisy=True,
                    compliance_terminal=("row_left", int(row)),
                )
                i = float(np.asarray(res.solution.column_currents)[col])
                hit = bool(res.compliance)
                cur[k, c], comp[k, c] = i, hit
                if on_point is not None:
                    on_point(SweepPoint(c, k, float(vk), i, hit, self.now()))
        self.outputs_on = False
        return SweepResult(row, col, v, cur, comp, float(compliance))

    def mvm(self, row_voltages: np.ndarray) -> np.ndarray:
        """Column currents (batch, cols) A; see the module docstring for the linear fast path
        and when the non-linear solve is used. 1-D input → (cols,)."""
        v = np.asarray(row_voltages, dtype=float)
        single = v.ndim == 1
        v2 = np.atleast_2d(v)
        rows, cols = self.shape
        if v2.ndim != 2 or v2.shape[1] != rows:
            raise ValueError(f"row_voltages must be (batch, {rows}), got {v.shape}")
        self._check_read_voltage(v2, "MVM row voltages")
        vmax = float(np.max(np.abs(v2))) if v2.size else 0.0
        linear = self.mvm_mode == "linear" or (
            self.mvm_mode == "auto" and vmax <= self.linear_max_v
        )
        self.outputs_on = True
        if linear:
            out = np.asarray(self.sim.mvm_linear(v2), dtype=float).reshape(v2.shape[0], cols)
            clock = getattr(self.sim, "clock", None)
            if clock is not None and hasattr(clock, "advance"):
                clock.advance(self.t_read * v2.shape[0])
            self.last_mvm_path = "linear"
        else:
            end, line_ends = self.api.End, self.api.LineEnds
            bottom = line_ends.uniform(cols, end.VGROUND, 0.0)
            out = np.empty((v2.shape[0], cols))
            for b in range(v2.shape[0]):
                left = line_ends.uniform(rows, end.DRIVE, 0.0)
                left.voltage[:] = v2[b]
                res = self.sim.bias(left, bottom, duration_s=self.t_read, noisy=True)
                out[b] = np.asarray(res.solution.column_currents, dtype=float)
            self.last_mvm_path = "nonlinear"
        return out[0] if single else out

    def shutdown(self) -> None:
        """Nothing to switch off in a simulation; marks the outputs off (never raises)."""
        self.outputs_on = False
        self.shutdown_count += 1
