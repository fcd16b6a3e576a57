"""The hardware backend: every crossbar primitive with the instrument drivers.

:class:`InstrumentBackend` composes a :class:`~instruments.keithley6487.Keithley6487`, an
:class:`~instruments.analog_discovery2.AnalogDiscovery2` and the
:class:`~instruments.switch_matrix.SwitchMatrix` it drives. The same object runs the real bench
and the simulated one (the drivers talking to the twins); :func:`crossbar.bench.open_backend`
builds it from a :class:`~crossbar.config.BenchConfig`.

How each primitive uses the bench:

* **read_cell**: route the row to SMU_SOURCE and the column to SMU_SENSE, unselected lines per
  the biasing (V/2, V/3 buses are buffered dividers of the source), ``measure_at(v_read)``
  (NPLC from ``[wiring] read_nplc``, the largest 6487 current limit the bench allows).
  G = I / v_read; under V/2 and V/3 a second read with the row on the unselected-row bias bus
  cancels the half-selected cells' current (:meth:`InstrumentBackend.read_cell`). About 8 GPIB
  transactions and one routing (165 DIO words) per measurement; ``read_map`` measures that
  baseline once per column.
* **pulse**: |V| ≤ 5 V without a compliance: the AD2. AWG1 drives the selected row with a
  pulse from a baseline to V, the selected column is grounded. V/2: AWG2 holds V/2 on every
  unselected line and the baseline is V/2; V/3: the 6487 sources V (routed nowhere) so the
  BIAS_THIRD/BIAS_TWO_THIRDS buses hold V/3 (rows) and 2V/3 (columns), baseline V/3; ground and
  float: baseline 0. The baseline is set before routing, so while the pulse is armed no cell
  sees more than the scheme's half-select level. |V| > 5 V, or a compliance given: the 6487
  (``[wiring] pulse_instrument = "keithley"``): row on SMU_SOURCE, column on SMU_SENSE,
  current limit, ``SOUR:VOLT:STAT ON``, wait ``width``, ``OFF`` — widths are bus-timed (one
  transaction ≈ ms longer than asked). With ``pulse_instrument = "ad2"`` pulses beyond ±5 V are
  refused (SafetyLimitError).
* **iv_sweep**: route with the biasing, ``SENS:CURR:NPLC``, then per cycle
  ``keithley6487_procedures.sweep_points`` (built-in staircases for uniform runs, point by
  point for the rest; ``on_reading`` → ``on_point``). Source off and matrix released at the end.
* **mvm**: rows in groups of ``min(row_drivers, 2)`` (the AD2's two AWG channels), columns in
  pairs through TIA1/TIA2 (``V_out = −I·tia_gain``), every other line grounded; one scope
  capture (mean of ``scope_samples`` samples) per (row group, column pair, vector) and the
  currents of the row groups summed (superposition; exact here because every column is held
  at 0 V, so each cell sees only its own row's voltage). Captures per vector:
  ``ceil(rows/g)·ceil(cols/2)`` (25 on 10×10, fewer when a group's inputs are all 0); routings
  per batch: the same number (the loop over vectors is innermost).
* **shutdown**: 6487 shutdown (sweep abort, source off, zero check on), both AWGs to 0 V and
  off, matrix released; every step is tried even if the previous one failed; never raises.
  :meth:`close` also closes the AD2 and the 6487 session (``with`` blocks call it).

Every voltage and compliance is checked against the bench limits before anything reaches a
driver (the drivers check again).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from crossbar.backend import (
    Biasing,
    Capabilities,
    CellReading,
    CrossbarBackend,
    SweepPoint,
    SweepResult,
)
from crossbar.config import BenchConfig
from instruments import keithley6487_procedures as procedures
from instruments.errors import ComplianceError, GarbledReply, SafetyLimitError, fault_message
from instruments.keithley6487 import Reading
from instruments.keithley6487_limits import CURRENT_LIMITS
from instruments.switch_matrix import Bus

__all__ = ["AWG_MAX_V", "KEITHLEY_10V_RANGE", "InstrumentBackend", "WallClock"]

log = logging.getLogger(__name__)

AWG_MAX_V = 5.0  # V, AD2 waveform generator range
KEITHLEY_10V_RANGE = 10.1  # V, largest level on the 6487's 10 V source range
HIGH_RANGE_MAX_LIMIT = 2.5e-3  # A, largest 6487 current limit on its 50 V and 500 V ranges


def _written(x: float) -> float:
    """A level as the 6487 receives it (the driver writes ``%g``: 6 significant digits)."""
    return float(format(float(x), "g"))


class WallClock:
    """Real time: ``now()`` (s, monotonic) and a blocking ``sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, dt: float) -> None:
        time.sleep(max(0.0, dt))


class InstrumentBackend(CrossbarBackend):
    """Crossbar primitives over the instrument drivers (see the module docstring).

    :param keithley: the 6487 driver (on a VISA resource or on the twin adapter).
    :param ad2: an open AnalogDiscovery2.
    :param matrix: the SwitchMatrix driven by ``ad2``.
    :param config: the bench configuration (limits, wiring, array size).
    :param clock: ``now()``/``sleep(dt)`` time source: wall time on the bench, the twins'
        virtual clock on the simulated bench.
    :param poll_interval: wall-clock wait between built-in sweep polls given to the driver, s
        (default ``[instruments] sweep_poll_s``; 0 on the twins, which charge the wait to their
        virtual clock).
    :param on_close: called once by :meth:`close` after the instruments are closed.
    :param differential_read: under V/2 and V/3, cancel the half-selected cells' current
        with a second read (see :meth:`read_cell`).
    """

    def __init__(
        self,
        keithley: Any,
        ad2: Any,
        matrix: Any,
        config: BenchConfig,
        *,
        clock: Any = None,
        poll_interval: float | None = None,
        on_close: Callable[[], None] | None = None,
        differential_read: bool = True,
    ) -> None:
        self.keithley = keithley
        self.ad2 = ad2
        self.matrix = matrix
        self.config = config
        self.name = config.bench.name
        self.limits = config.safety_limits
        self.max_read_voltage = config.limits.max_read_voltage
        self.clock = clock if clock is not None else WallClock()
        self.poll_interval = (
            config.instruments.sweep_poll_s if poll_interval is None else float(poll_interval)
        )
        self._on_close = on_close
        self.differential_read = bool(differential_read)
        self._closed = False
        rows, cols = config.shape
        keithley_pulses = config.wiring.pulse_instrument == "keithley"
        self.capabilities = Capabilities(
            rows=rows,
            cols=cols,
            row_drivers=min(config.wiring.row_drivers, 2, rows),
            col_sensors=2,
            max_pulse_voltage=(
                self.limits.max_voltage
                if keithley_pulses
                else min(AWG_MAX_V, self.limits.max_voltage)
            ),
        )
        allowed = [c for c in CURRENT_LIMITS if c <= self.limits.max_compliance]  # as the driver
        #: current limit used for reads and AD2-side bias sourcing (A): the largest 6487 limit
        #: the bench allows
        self.read_compliance = max(allowed) if allowed else self.limits.max_compliance
        self._nplc: float | None = None
        self.sim_handles: Any = None  # set by open_backend on the simulated bench
        self.stats = {"routings": 0, "captures": 0, "reads": 0, "pulses": 0}

    # ------------------------------------------------------------------ basics
    def now(self) -> float:
        """Bench time, s (virtual on the simulated bench: the estimated real-bench time)."""
        return float(self.clock.now())

    def _check_read_voltage(self, v: float | np.ndarray, what: str) -> None:
        vmax = float(np.max(np.abs(v))) if np.size(v) else 0.0
        if not math.isfinite(vmax) or vmax > self.max_read_voltage:
            raise SafetyLimitError(
                f"{what}: |V| = {vmax:g} V exceeds the bench read limit of "
                f"{self.max_read_voltage:g} V ([limits] max_read_voltage)",
                setting=what,
                value=vmax,
                limit=self.max_read_voltage,
            )
        self.check_voltage(v, what)
        self._check_written(v, self.max_read_voltage, what, "[limits] max_read_voltage")

    def check_voltage(self, v: float | np.ndarray, what: str) -> None:
        """The bench limit on the values as requested AND as the 6487 is sent them (``%g``, 6
        significant digits: a level at a non-round limit would be written rounded up and then
        refused by the driver in the middle of an operation, after the routing)."""
        super().check_voltage(v, what)
        self._check_written(v, self.limits.max_voltage, what, "[limits] max_voltage")

    @staticmethod
    def _check_written(v: float | np.ndarray, limit: float, what: str, name: str) -> None:
        arr = np.asarray(v, dtype=float).ravel()
        if arr.size == 0:
            return
        for x in (float(arr.max()), float(arr.min())):  # %g rounding is monotonic
            sent = _written(x)
            if abs(sent) > limit:
                raise SafetyLimitError(
                    f"{what}: {x:.10g} V would be written to the 6487 as {sent:g} V (6 significant "
                    f"digits), beyond the bench limit of {limit:.10g} V ({name})",
                    setting=what,
                    value=x,
                    limit=limit,
                )

    def _snap_compliance(self, compliance: float, what: str) -> float:
        """The 6487 limit a request snaps up to (A); SafetyLimitError if beyond the bench's."""
        snapped = next((c for c in CURRENT_LIMITS if c >= compliance * (1 - 1e-9)), None)
        if snapped is None or snapped > self.limits.max_compliance:
            raise SafetyLimitError(
                f"{what}: {compliance:g} A snaps up to the 6487 current limit "
                f"{snapped if snapped is not None else 'above 25 mA'} A, beyond the bench limit "
                f"{self.limits.max_compliance:g} A (the 6487 has 25 µA, 250 µA, 2.5 mA, 25 mA)",
                setting=what,
                value=compliance,
                limit=self.limits.max_compliance,
            )
        return snapped

    @staticmethod
    def _check_high_range(v_abs: float, limit: float, what: str) -> None:
        """ValueError (before anything is sent) for a current limit the 6487's 50/500 V ranges
        lack (> 2.5 mA) on a level beyond its 10 V range."""
        if v_abs > KEITHLEY_10V_RANGE and limit > HIGH_RANGE_MAX_LIMIT:
            raise ValueError(
                f"{what}: {v_abs:g} V needs the 6487's 50 V range, where the current limit is at "
                f"most {HIGH_RANGE_MAX_LIMIT:g} A (asked {limit:g} A)"
            )

    def _check_read_limit(self, what: str) -> None:
        """SafetyLimitError (before anything is sent) when no 6487 current limit fits the
        bench's ``max_compliance`` (below 25 µA): the 6487 cannot source reads or biases."""
        self._snap_compliance(self.read_compliance, what)

    def _route_cell(self, row: int, col: int, biasing: Biasing, *, source: Bus, sense: Bus) -> None:
        self.matrix.select_cell(row, col, biasing.value, source=source, sense=sense)
        self.stats["routings"] += 1

    def _route(self, rows: Sequence[Bus], cols: Sequence[Bus]) -> None:
        self.matrix.route(rows, cols)
        self.stats["routings"] += 1

    def _set_nplc(self, nplc: float) -> float | None:
        """NPLC to pass to ``measure_at`` (None when already set)."""
        if self._nplc is not None and math.isclose(self._nplc, nplc):
            return None
        self._nplc = float(nplc)
        return float(nplc)

    @contextmanager
    def _session(
        self, *, keithley: bool = True, awgs: Sequence[int] = (), release: bool = True
    ) -> Iterator[None]:
        """Leave the outputs used by an operation off (and the matrix released) on every exit
        path; a failure while cleaning up is logged, never masks the operation's own error."""
        try:
            yield
        finally:
            # release first: every line floats before any output changes level
            steps: list[tuple[str, Callable[[], None]]] = []
            if release:
                steps.append(("matrix release", self.matrix.release))
            if keithley:
                steps.append(("6487 source off", self._source_off))
            steps += [(f"AWG {ch + 1} off", lambda ch=ch: self.ad2.awg_off(ch)) for ch in awgs]
            for what, step in steps:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - cleanup must reach every step
                    log.warning("%s: %s failed: %s", self.name, what, exc)

    def _source_off(self) -> None:
        self.keithley.source_off()

    # ------------------------------------------------------------------ reads
    _UNSELECTED_ROW_BUS = {Biasing.V2: Bus.BIAS_HALF, Biasing.V3: Bus.BIAS_THIRD}
    _UNSELECTED_ROW_FRACTION = {Biasing.V2: 1 / 2, Biasing.V3: 1 / 3}

    def _measure(self, v: float) -> Reading:
        reading = procedures.measure_at(
            self.keithley,
            v,
            compliance=self.read_compliance,
            nplc=self._set_nplc(self.config.wiring.read_nplc),
        )
        self.stats["reads"] += 1
        return reading

    def _baseline(self, row: int, col: int, v: float, b: Biasing) -> Reading:
        """The selected column's current with the selected row at the unselected-row level
        (routed to that bias bus, the source still at ``v``): the half-selected cells' part."""
        self._route_cell(row, col, b, source=self._UNSELECTED_ROW_BUS[b], sense=Bus.SMU_SENSE)
        return self._measure(v)

    def _differential(self, b: Biasing) -> bool:
        return self.differential_read and b in self._UNSELECTED_ROW_BUS

    def _cell_reading(
        self, row: int, col: int, v: float, b: Biasing, r1: Reading, r0: Reading | None
    ) -> CellReading:
        i1 = _current(r1)
        if r0 is None:
            g = i1 / v
        else:
            v_u = v * self._UNSELECTED_ROW_FRACTION[b]
            g = (i1 - _current(r0)) / (v - v_u)
        compliance = bool(r1.compliance or (r0 is not None and r0.compliance))
        return CellReading(row, col, v, g * v, g, compliance, self.now())

    def read_cell(
        self, row: int, col: int, *, v_read: float = 0.2, biasing: Biasing = Biasing.V3
    ) -> CellReading:
        """Read one cell through the 6487 (see the module docstring).

        Ground/float: G = I / v_read. V/2, V/3 (with ``differential_read``): the half-selected
        cells of the selected column also carry current into the ammeter (V/3: ≈ 3× the cell's
        own on a uniform 10×10 array), so the cell is read twice — row on SMU_SOURCE (I₁) and
        row on the unselected-row bias bus (I₀, source unchanged) — and
        G = (I₁ − I₀) / (V − V_u) with V_u = V/2 or V/3. ``current`` is G·v_read (A).

        :raises SafetyLimitError: |v_read| beyond ``[limits] max_read_voltage`` (nothing sent).
        """
        self.check_cell(row, col)
        b = Biasing.parse(biasing)
        v = float(v_read)
        self._check_read_voltage(v, "read voltage")
        self._check_read_limit("read current limit")
        if v == 0:
            raise ValueError("v_read must be non-zero (G = I / v_read)")
        self._route_cell(row, col, b, source=Bus.SMU_SOURCE, sense=Bus.SMU_SENSE)
        r1 = self._measure(v)
        r0 = self._baseline(row, col, v, b) if self._differential(b) else None
        return self._cell_reading(row, col, v, b, r1, r0)

    def read_map(
        self,
        *,
        v_read: float = 0.2,
        biasing: Biasing = Biasing.V3,
        on_cell: Callable[[CellReading], None] | None = None,
    ) -> np.ndarray:
        """Read every cell; conductances (rows, cols) S. Column by column: under V/2 and V/3 the
        baseline I₀ does not depend on the selected row (every row sits at V_u), so it is
        measured once per column (rows + 1 reads per column). The source is switched off and
        the matrix released at the end (also on errors)."""
        b = Biasing.parse(biasing)
        v = float(v_read)
        self._check_read_voltage(v, "read voltage")
        self._check_read_limit("read current limit")
        if v == 0:
            raise ValueError("v_read must be non-zero (G = I / v_read)")
        rows, cols = self.shape
        out = np.full((rows, cols), np.nan)
        with self._session():
            for col in range(cols):
                r0 = self._baseline(0, col, v, b) if self._differential(b) else None
                for row in range(rows):
                    self._route_cell(row, col, b, source=Bus.SMU_SOURCE, sense=Bus.SMU_SENSE)
                    reading = self._cell_reading(row, col, v, b, self._measure(v), r0)
                    out[row, col] = reading.conductance
                    if on_cell is not None:
                        on_cell(reading)
        return out

    def compliance_error(self, reading: CellReading, what: str) -> ComplianceError:
        """The 6487 was in compliance (its current limit, :attr:`read_compliance`) while
        reading a cell: the current is clamped, so there is no conductance to report."""
        command = f"SOUR:VOLT {reading.voltage:g}; READ?"
        return ComplianceError(
            fault_message(
                self.keithley.name,
                command,
                f"source in compliance at the {self.read_compliance:g} A current limit reading "
                f"cell ({reading.row}, {reading.col}) during {what} (|G| beyond "
                f"{self.read_compliance / abs(reading.voltage):.3g} S: not measurable)",
            ),
            instrument=self.keithley.name,
            command=command,
        )

    # ------------------------------------------------------------------ pulses
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
        """One rectangular pulse of ``amplitude`` V for ``width`` s on a cell (AD2 for |V| ≤ 5 V
        without compliance, else the 6487; see the module docstring).

        :raises SafetyLimitError: amplitude beyond the bench limit or the bench's pulse
            capability, compliance outside (0, max_compliance] (nothing sent).
        """
        self.check_cell(row, col)
        b = Biasing.parse(biasing)
        amp = float(amplitude)
        self.check_voltage(amp, "pulse amplitude")
        cap = self.capabilities.max_pulse_voltage
        if abs(amp) > cap:
            raise SafetyLimitError(
                f"pulse amplitude: |V| = {abs(amp):g} V exceeds this bench's pulse capability "
                f"of {cap:g} V (the AWG's ±{AWG_MAX_V:g} V; [wiring] pulse_instrument = "
                f'"{self.config.wiring.pulse_instrument}")',
                setting="pulse amplitude",
                value=abs(amp),
                limit=cap,
            )
        if compliance is not None:
            self.check_compliance(compliance, "pulse compliance")
            snapped = self._snap_compliance(compliance, "pulse compliance")
            if abs(amp) > AWG_MAX_V:
                self._check_high_range(abs(amp), snapped, "pulse")
        w = float(width)
        if not (math.isfinite(w) and w > 0):
            raise ValueError(f"pulse width must be > 0 s, got {width!r}")
        if compliance is None and (b is Biasing.V3 or abs(amp) > AWG_MAX_V):
            self._check_read_limit("pulse current limit")  # the 6487 sources at read_compliance
        if compliance is None and abs(amp) <= AWG_MAX_V:
            self._pulse_ad2(row, col, amp, w, b)
        else:
            self._pulse_keithley(row, col, amp, w, b, compliance)
        self.stats["pulses"] += 1

    def _pulse_ad2(self, row: int, col: int, amp: float, width: float, b: Biasing) -> None:
        rows, cols = self.shape
        r = [Bus.FLOAT] * rows
        c = [Bus.FLOAT] * cols
        baseline = 0.0
        awgs: tuple[int, ...] = (0,)
        uses_keithley = False
        if b is Biasing.V2:
            r, c = [Bus.AWG2] * rows, [Bus.AWG2] * cols
            baseline = amp / 2
            awgs = (0, 1)
        elif b is Biasing.V3:
            r, c = [Bus.BIAS_THIRD] * rows, [Bus.BIAS_TWO_THIRDS] * cols
            baseline = amp / 3
            uses_keithley = True
        elif b is Biasing.GROUND:
            r, c = [Bus.GND] * rows, [Bus.GND] * cols
        r[row], c[col] = Bus.AWG1, Bus.GND
        with self._session(keithley=uses_keithley, awgs=awgs):
            if b is Biasing.V2:
                self.ad2.awg_dc(1, amp / 2)
            if uses_keithley:  # the 6487 feeds the V/3, 2V/3 dividers (routed nowhere else)
                # A read may have left the cell routing latched (selected row on SMU_SOURCE,
                # other lines grounded): raising the source to the pulse amplitude under it
                # would pulse the whole row. Release first; the new routing connects later.
                self.matrix.release()
                self.keithley.source_current_limit = self.read_compliance
                self.keithley.source_voltage = amp
                self.keithley.source_enabled = True
            self.ad2.awg_dc(0, baseline)
            self._route(r, c)
            self.ad2.awg_pulse(0, amp, width, baseline=baseline)
            self.ad2.awg_wait(0, timeout_s=max(1.0, 10 * width))

    def _pulse_keithley(
        self, row: int, col: int, amp: float, width: float, b: Biasing, compliance: float | None
    ) -> None:
        limit = self.read_compliance if compliance is None else float(compliance)
        k = self.keithley
        high = abs(amp) > KEITHLEY_10V_RANGE
        if high and compliance is None:  # the 50/500 V ranges have at most 2.5 mA
            limit = min(limit, HIGH_RANGE_MAX_LIMIT)
        with self._session():
            self._source_off()
            self._route_cell(row, col, b, source=Bus.SMU_SOURCE, sense=Bus.SMU_SENSE)
            if high:
                k.source_voltage_range = 50 if abs(amp) <= 50.5 else 500
            k.source_current_limit = limit
            k.source_voltage = amp
            k.source_enabled = True
            self.clock.sleep(width)
            k.source_enabled = False
            if high:
                k.source_voltage = 0.0
                k.source_voltage_range = 10

    # ------------------------------------------------------------------ I-V sweeps
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
        """Cyclic I-V sweep through the 6487 (built-in staircases where the list allows).

        ``SweepResult.compliance_limit`` is the limit the 6487 applied (the request snapped up
        to 25 µA / 250 µA / 2.5 mA / 25 mA). Overflow readings are ±inf.
        """
        self.check_cell(row, col)
        b = Biasing.parse(biasing)
        v = np.asarray(voltages, dtype=float).ravel()
        if v.size == 0:
            raise ValueError("voltages is empty")
        self.check_voltage(v, "sweep voltages")
        self.check_compliance(compliance, "sweep compliance")
        if isinstance(cycles, bool) or int(cycles) != cycles or cycles < 1:
            raise ValueError(f"cycles must be an int >= 1, got {cycles!r}")
        nplc = float(nplc)
        if not 0.01 <= nplc <= 6.0:
            raise ValueError(f"nplc must be in [0.01, 6], got {nplc!r}")
        snapped = self._snap_compliance(compliance, "sweep compliance")
        self._check_high_range(float(np.max(np.abs(v))), snapped, "sweep")
        current = np.full((v.size, int(cycles)), np.nan)
        comp = np.zeros((v.size, int(cycles)), dtype=bool)
        k = self.keithley
        high = float(np.max(np.abs(v))) > KEITHLEY_10V_RANGE
        with self._session():
            self._source_off()
            self._route_cell(row, col, b, source=Bus.SMU_SOURCE, sense=Bus.SMU_SENSE)
            k.nplc = nplc
            self._nplc = nplc
            if high:
                k.source_voltage_range = 50 if float(np.max(np.abs(v))) <= 50.5 else 500
            for cycle in range(int(cycles)):

                def deliver(index: int, reading: Reading, cycle: int = cycle) -> None:
                    i = _current(reading)
                    current[index, cycle] = i
                    comp[index, cycle] = bool(reading.compliance)
                    if on_point is not None:
                        on_point(
                            SweepPoint(
                                cycle,
                                index,
                                float(v[index]),
                                i,
                                bool(reading.compliance),
                                self.now(),
                            )
                        )

                procedures.sweep_points(
                    k,
                    v,
                    compliance=compliance,
                    on_reading=deliver,
                    delay=float(delay),
                    builtin_descending=self.config.instruments.builtin_descending,
                    poll_interval=self.poll_interval,
                )
            if high:
                self._source_off()
                k.source_voltage = 0.0
                k.source_voltage_range = 10
        return SweepResult(row, col, v, current, comp, float(snapped))

    # ------------------------------------------------------------------ MVM
    def mvm(self, row_voltages: np.ndarray) -> np.ndarray:
        """Column currents (batch, cols) A for row voltages (batch, rows) V, |V| ≤ the read limit
        (see the module docstring for the grouping and the number of captures)."""
        v = np.atleast_2d(np.asarray(row_voltages, dtype=float))
        rows, cols = self.shape
        if v.ndim != 2 or v.shape[1] != rows:
            raise ValueError(f"row_voltages must have shape (batch, {rows}), got {v.shape}")
        self._check_read_voltage(v, "MVM row voltages")  # ≤ 5 V by configuration: AWG range
        g = max(1, self.capabilities.row_drivers)
        row_groups = [list(range(s, min(s + g, rows))) for s in range(0, rows, g)]
        col_pairs = [list(range(s, min(s + 2, cols))) for s in range(0, cols, 2)]
        w = self.config.wiring
        out = np.zeros((v.shape[0], cols))
        awg_bus = (Bus.AWG1, Bus.AWG2)
        tia_bus = (Bus.TIA1, Bus.TIA2)
        with self._session(keithley=False, awgs=(0, 1)):
            self._source_off()
            for group in row_groups:
                active = np.flatnonzero(np.any(v[:, group] != 0, axis=1))
                if active.size == 0:
                    continue  # every input of this group is 0 V: no current to add
                for pair in col_pairs:
                    r = [Bus.GND] * rows
                    c = [Bus.GND] * cols
                    for k, i in enumerate(group):
                        r[i] = awg_bus[k]
                    for k, j in enumerate(pair):
                        c[j] = tia_bus[k]
                    self._route(r, c)  # break-before-make; AWG levels stay in the read range
                    for b in active:
                        for k, i in enumerate(group):
                            self.ad2.awg_dc(k, float(v[b, i]))
                        volts = self.ad2.scope_capture(
                            tuple(range(len(pair))),
                            range_v=w.scope_range_v,
                            sample_rate=w.scope_sample_rate_hz,
                            n_samples=w.scope_samples,
                            trigger_on_awg=None,
                        )
                        self.stats["captures"] += 1
                        self._check_capture(volts, pair)
                        out[b, pair] += -np.mean(volts, axis=1) / w.tia_gain_ohm
        return out

    def _check_capture(self, volts: np.ndarray, pair: Sequence[int]) -> None:
        """Refuse a TIA capture that cannot be a column current (the MVM's inputs are DC
        levels, so each channel must be flat: mean ± noise).

        * spread (standard deviation) beyond 1/20 of the scope span — 0.25 V on the 5 V span,
          ~500× the TIA/scope noise — is not a DC level: :class:`GarbledReply` (a corrupted
          capture, or a bench so noisy that the mean means nothing);
        * a sample at the edge of the scope span: the TIA output was clipped, so the column
          current is beyond ±span/2/gain: :class:`ComplianceError` (the MVM's "compliance hit":
          its current is out of the measurable range; lower the inputs or the TIA gain).
        """
        w = self.config.wiring
        span = 5.0 if w.scope_range_v <= 5.0 + 1e-12 else 50.0  # the AD2's two input spans
        v = np.asarray(volts, dtype=float).reshape(len(pair), -1)
        name = getattr(self.ad2, "name", "Analog Discovery 2")
        for k, col in enumerate(pair):
            command = f"analogIn.statusData({k}, {v.shape[1]})"
            spread = float(np.std(v[k]))
            if not np.all(np.isfinite(v[k])) or spread > span / 20:
                raise GarbledReply(
                    fault_message(
                        name,
                        command,
                        f"TIA{k + 1} capture (column {col}) is not a DC level: standard deviation "
                        f"{spread:.3g} V > {span / 20:g} V (garbled capture)",
                    ),
                    instrument=name,
                    command=command,
                )
            peak = float(np.max(np.abs(v[k])))
            if peak >= span / 2 * (1 - 1e-3):
                raise ComplianceError(
                    fault_message(
                        name,
                        command,
                        f"TIA{k + 1} output clipped at the scope's ±{span / 2:g} V (column {col} "
                        f"current beyond ±{span / 2 / w.tia_gain_ohm:.3g} A): MVM out of range",
                    ),
                    instrument=name,
                    command=command,
                )

    def captures_per_vector(self) -> int:
        """Scope captures one input vector needs (all row groups non-zero)."""
        rows, cols = self.shape
        g = max(1, self.capabilities.row_drivers)
        return math.ceil(rows / g) * math.ceil(cols / 2)

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """Matrix released (every line floating), 6487 shutdown (sweep abort, source off, zero
        check on), both AWGs to 0 V and off. Every step runs even if an earlier one fails;
        never raises."""
        steps: list[tuple[str, Callable[[], None]]] = [
            ("matrix release", self.matrix.release),
            ("6487 shutdown", self.keithley.shutdown),
            ("AWG 1 off", lambda: self.ad2.awg_off(0)),
            ("AWG 2 off", lambda: self.ad2.awg_off(1)),
        ]
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - shutdown must reach every step
                log.warning("%s: shutdown: %s failed: %s", self.name, what, exc)
        self._nplc = None

    def close(self) -> None:
        """Shut down, then close the AD2 and the 6487 session. Idempotent, never raises."""
        if self._closed:
            return
        self.shutdown()
        self._closed = True
        for what, step in (
            ("AD2 close", self.ad2.close),
            ("6487 adapter close", lambda: self.keithley.adapter.close()),
        ):
            try:
                step()
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: %s failed: %s", self.name, what, exc)
        if self._on_close is not None:
            try:
                self._on_close()
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: on_close failed: %s", self.name, exc)

    def __exit__(self, *exc: object) -> None:
        self.close()


def _current(reading: Reading) -> float:
    """A reading's current (A); overflow stays ±inf, NaN sentinel NaN."""
    return float(reading.current)
