"""The hardware backend: every crossbar primitive with the instrument drivers.

:class:`InstrumentBackend` composes a :class:`~instruments.keithley6487.Keithley6487`, an
:class:`~instruments.analog_discovery2.AnalogDiscovery2` and the
:class:`~instruments.switch_matrix.SwitchMatrix` it drives. The same object runs the real bench
and the simulated one (the drivers talking to the twins); :func:`lab.open_backend`
builds it from a :class:`~crossbar.config.BenchConfig`.

How each primitive uses the bench (the requests arrive validated by
:class:`crossbar.policy.CrossbarPolicy`; line levels map onto the switch-matrix buses: V →
SMU_SOURCE, sensed → SMU_SENSE, V/2, V/3, 2V/3 → the buffered dividers of the 6487's output
BIAS_HALF, BIAS_THIRD, BIAS_TWO_THIRDS, ground → GND, float → FLOAT):

* **read**: route the lines, ``measure_at(v)`` (NPLC from ``[wiring] read_nplc``, the largest
  6487 current limit the bench allows). With ``[instruments] io_path = "fast"`` (default) a
  routing is five pydwf calls (the AD2's pattern generator) and is skipped when already set,
  and the 6487's settings are written only when they change: a repeated read is three GPIB
  transactions (``READ?``, ``STAT:MEAS:COND?``, ``SYST:ERR?``). ``"legacy"``: every setting
  written (about 9 transactions) and one routing of 165 DIO words per measurement. The source
  stays on until :meth:`InstrumentBackend.release`.
* **read_many**: ``n`` readings at one setting in one 6487 burst (trigger model + buffer: one
  ``INIT``, one ``TRAC:DATA?``; ``measure_burst``) — averaged and repeated reads.
* **pulse**: |V| ≤ 5 V without a compliance: the AD2. AWG1 drives the selected row with a
  pulse from a baseline (the unselected rows' level) to V, the selected column is grounded.
  Unselected lines all at V/2: AWG2 holds V/2 on them; other divider levels: the 6487 sources
  V (routed nowhere) so the divider buses hold V/2, V/3, 2V/3. The baseline is set before
  routing, so while the pulse is armed no cell sees more than the scheme's half-select level.
  |V| > 5 V, or a compliance given: the 6487 (``[wiring] pulse_instrument = "keithley"``): row
  on SMU_SOURCE, column on SMU_SENSE, current limit, ``SOUR:VOLT:STAT ON``, wait ``width``,
  ``OFF`` — widths are bus-timed (one transaction ≈ ms longer than asked).
* **sweep**: route the lines, ``SENS:CURR:NPLC``, then per cycle
  ``keithley6487_procedures.sweep_points`` (built-in staircases for uniform runs, point by point for the
  rest; ``on_reading`` → ``on_point``). Source off and matrix released at the end.
* **levels beyond 10.1 V** (pulses and sweeps): the 6487's 50/500 V range, entered with a
  current limit of at most 2.5 mA written first (the driver does), the interlock checked after
  the source goes to operate (``SOUR:VOLT:INT:FAIL?``: an open interlock there leaves the
  source in high impedance with no error, so the operation is refused with InterlockOpen and
  the source switched off), and the 10 V range restored on every exit path (off on the 10 V
  range is a low-impedance 0 V; on 50/500 V with the interlock open it would be high-Z).
* **mvm**: rows in groups of ``min(row_drivers, 2)`` (the AD2's two AWG channels), columns in
  pairs through TIA1/TIA2 (``V_out = −I·tia_gain``), every other line grounded; one scope
  capture (mean of ``scope_samples`` samples) per (row group, column pair, vector) and the
  currents of the row groups summed (superposition; exact here because every column is held
  at 0 V, so each cell sees only its own row's voltage). Captures per vector:
  ``ceil(rows/g)·ceil(cols/2)`` (25 on 10×10, fewer when a group's inputs are all 0); routings
  per batch: the same number (the loop over vectors is innermost).
* **release**: matrix released, 6487 source off.
* **shutdown**: 6487 shutdown (sweep abort, source off, zero check on), both AWGs to 0 V and
  off, matrix released; every step is tried even if the previous one failed; never raises.
  :meth:`close` also closes the AD2 and the 6487 session (``with`` blocks call it).

Every voltage and compliance has been checked against the bench limits before a primitive is
called (the drivers check again). The integration-time range (:attr:`Capabilities.nplc_range`)
follows the mains the 6487 runs on, read at connect (:meth:`InstrumentBackend.read_line_frequency`:
at most 5 PLC at 50 Hz, 6 at 60 Hz).
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
    Capabilities,
    CellReading,
    CrossbarBackend,
    Measurement,
    StopFn,
    SweepSpec,
    check_stop,
)
from crossbar.biasing import SELECTED, Line, LineLevels
from crossbar.config import BenchConfig
from instruments import keithley6487_procedures as procedures
from instruments.analog_discovery2 import AWG_MAX_VOLTAGE, AWG_MIN_PULSE_S
from instruments.errors import ComplianceError, GarbledReply, fault_message
from instruments.keithley6487 import Reading
from instruments.keithley6487_limits import (
    CURRENT_LIMITS,
    DELAY_RANGE,
    HARDWARE_MAX_VOLTAGE,
    HIGH_RANGE_MAX_CURRENT_LIMIT,
    SOURCE_RANGE_MAX_LEVEL,
    largest_limit_within,
    nplc_range,
    source_range_for,
    written_level,
)
from instruments.switch_matrix import Bus

__all__ = ["InstrumentBackend", "WallClock", "routing"]

log = logging.getLogger(__name__)

#: the switch-matrix bus of each drive fraction (the 6487 output and its buffered dividers)
_DIVIDER_BUS = {
    1.0: Bus.SMU_SOURCE,
    1 / 2: Bus.BIAS_HALF,
    1 / 3: Bus.BIAS_THIRD,
    2 / 3: Bus.BIAS_TWO_THIRDS,
}
_FIXED_BUS = {"ground": Bus.GND, "float": Bus.FLOAT, "sense": Bus.SMU_SENSE}


def _bus(line: Line) -> Bus:
    """The switch-matrix bus that holds ``line`` (policy-validated: a bus exists)."""
    if line.kind == "drive":
        return next(b for f, b in _DIVIDER_BUS.items() if abs(f - line.fraction) < 1e-12)
    return _FIXED_BUS[line.kind]


def routing(lines: LineLevels) -> tuple[list[Bus], list[Bus]]:
    """The bus of every row and column line for an access through the 6487 (V → SMU_SOURCE,
    sensed → SMU_SENSE, V/2, V/3, 2V/3 → its dividers, ground → GND, float → FLOAT)."""
    return [_bus(line) for line in lines.rows], [_bus(line) for line in lines.cols]


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
    :param sim_handles: on the simulated bench, the twins' handles (recorded command streams,
        the virtual clock, the simulated array); None on a real bench.
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
        sim_handles: Any = None,
    ) -> None:
        self.keithley = keithley
        self.ad2 = ad2
        self.matrix = matrix
        self.config = config
        self.name = config.bench.name
        self.limits = config.safety_limits
        self.clock = clock if clock is not None else WallClock()
        self.poll_interval = (
            config.instruments.sweep_poll_s if poll_interval is None else float(poll_interval)
        )
        self._on_close = on_close
        self.sim_handles = sim_handles
        self._closed = False
        #: current limit of reads and of the 6487 feeding the bias dividers (A): the largest 6487
        #: limit the bench allows (None: none does)
        self.read_compliance = largest_limit_within(self.limits.max_compliance)
        #: mains frequency of the 6487 (Hz), read at connect; None until then
        self.line_frequency: float | None = None
        self.capabilities = self._capabilities(config)
        self._nplc: float | None = None
        self.stats = {"routings": 0, "captures": 0, "reads": 0, "pulses": 0}
        #: io_path "fast": skip-unchanged drivers, pattern routing, bursts, held pulses
        self._fast = config.instruments.io_path == "fast"

    def _capabilities(self, config: BenchConfig) -> Capabilities:
        rows, cols = config.shape
        keithley_pulses = config.wiring.pulse_instrument == "keithley"
        return Capabilities(
            rows=rows,
            cols=cols,
            row_drivers=min(config.wiring.row_drivers, 2, rows),
            col_sensors=2,
            max_pulse_voltage=(
                self.limits.max_voltage
                if keithley_pulses
                else min(AWG_MAX_VOLTAGE, self.limits.max_voltage)
            ),
            max_read_voltage=config.limits.max_read_voltage,
            read_compliance=self.read_compliance,
            drive_fractions=tuple(_DIVIDER_BUS),
            can_float=True,
            nplc_range=nplc_range(self.line_frequency),
            delay_range=DELAY_RANGE,
            compliance_levels=CURRENT_LIMITS,
            compliance_ceilings=(
                (SOURCE_RANGE_MAX_LEVEL[10], max(CURRENT_LIMITS)),
                (HARDWARE_MAX_VOLTAGE, HIGH_RANGE_MAX_CURRENT_LIMIT),
            ),
            pulse_width_range=(AWG_MIN_PULSE_S, 1000.0),
            written_level=written_level,  # the 6487 is written %g
        )

    def read_line_frequency(self) -> float:
        """Read the 6487's mains frequency (``SYST:LFR?``, 50 or 60 Hz) and narrow
        :attr:`capabilities` ``.nplc_range`` to it (at most 5 PLC at 50 Hz). Called at connect
        (:func:`lab.open_backend`); returns Hz."""
        self.line_frequency = self.keithley.read_line_frequency()
        self.capabilities = self._capabilities(self.config)
        return self.line_frequency

    # ------------------------------------------------------------------ basics
    def now(self) -> float:
        """Bench time, s (virtual on the simulated bench: the estimated real-bench time)."""
        return float(self.clock.now())

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` s pass (the twins' virtual clock on the simulated bench)."""
        self.clock.sleep(float(seconds))

    def _route_lines(self, lines: LineLevels) -> None:
        """Route ``lines`` onto the buses (see the module docstring)."""
        self._route(*routing(lines))

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
            self._off(keithley=keithley, awgs=awgs, release=release)

    def _off(
        self, *, keithley: bool = True, awgs: Sequence[int] = (), release: bool = True
    ) -> None:
        # release first: every line floats before any output changes level
        steps: list[tuple[str, Callable[[], None]]] = []
        if release:
            steps.append(("matrix release", self.matrix.release))
        if keithley:
            steps.append(("6487 source off", self.keithley.source_off))
        # io_path "fast": the AWGs stopped at 0 V (idle at a 0 V offset, two USB calls); the
        # full switch-off (disabled) is left to shutdown. "legacy": disabled every time.
        off = self.ad2.awg_idle_zero if self._fast else self.ad2.awg_off
        steps += [(f"AWG {ch + 1} off", lambda ch=ch: off(ch)) for ch in awgs]
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - cleanup must reach every step
                log.warning("%s: %s failed: %s", self.name, what, exc)

    def release(self) -> None:
        """Matrix released, 6487 source off (each step tried; never raises)."""
        self._off()

    # ------------------------------------------------------------------ reads
    def read(self, lines: LineLevels, voltage: float) -> Measurement:
        """Route ``lines``, ``measure_at(voltage)`` on the 6487 at :attr:`read_compliance`."""
        self._route_lines(lines)
        reading = procedures.measure_at(
            self.keithley,
            voltage,
            compliance=self.read_compliance,
            nplc=self._set_nplc(self.config.wiring.read_nplc),
        )
        self.stats["reads"] += 1
        return Measurement(_current(reading), bool(reading.compliance), self.now())

    def read_many(self, lines: LineLevels, voltage: float, n: int) -> list[Measurement]:
        """``n`` readings at one setting. ``io_path = "fast"``: route once, one burst through
        the 6487's trigger model and buffer (``measure_burst``: one ``INIT``, one
        ``TRAC:DATA?``); ``"legacy"``: ``n`` :meth:`read` s. Measurement times are spread over
        the burst (the buffer's readings arrive together)."""
        n = int(n)
        if self.config.instruments.io_path == "legacy" or n == 1:
            return [self.read(lines, voltage) for _ in range(n)]
        self._route_lines(lines)
        t0 = self.now()
        readings = procedures.measure_burst(
            self.keithley,
            voltage,
            n,
            compliance=self.read_compliance,
            nplc=self._set_nplc(self.config.wiring.read_nplc),
        )
        self.stats["reads"] += n
        t1 = self.now()
        return [
            Measurement(_current(r), bool(r.compliance), t0 + (t1 - t0) * (k + 1) / n)
            for k, r in enumerate(readings)
        ]

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
        self, lines: LineLevels, amplitude: float, width: float, *, compliance: float | None
    ) -> None:
        """One rectangular pulse of ``amplitude`` V for ``width`` s (AD2 for |V| ≤ 5 V without
        compliance, else the 6487; see the module docstring)."""
        amp, w = float(amplitude), float(width)
        if compliance is None and abs(amp) <= AWG_MAX_VOLTAGE:
            self._pulse_ad2(lines, amp, w)
        else:
            self._pulse_keithley(lines, amp, w, compliance)
        self.stats["pulses"] += 1

    def _pulse_ad2(self, lines: LineLevels, amp: float, width: float) -> None:
        unselected = [line for line in (*lines.rows, *lines.cols) if line != SELECTED]
        fractions = {line.fraction for line in unselected if line.kind == "drive"}
        others = [line for line in lines.rows if line != SELECTED]
        baseline = others[0].level(amp) if others else 0.0
        awg2 = fractions == {1 / 2}  # every biased line at V/2: AWG2 holds them
        uses_keithley = bool(fractions) and not awg2
        awgs: tuple[int, ...] = (0, 1) if awg2 else (0,)
        rows = [Bus.AWG1 if line == SELECTED else _bus(line) for line in lines.rows]
        cols = [Bus.GND if line.kind == "sense" else _bus(line) for line in lines.cols]
        if awg2:
            rows = [Bus.AWG2 if b is Bus.BIAS_HALF else b for b in rows]
            cols = [Bus.AWG2 if b is Bus.BIAS_HALF else b for b in cols]
        with self._session(keithley=uses_keithley, awgs=awgs):
            if awg2:
                self.ad2.awg_dc(1, amp / 2)
            if uses_keithley:  # the 6487 feeds the bias dividers (routed nowhere else)
                # A read may have left the cell routing latched (selected row on SMU_SOURCE,
                # other lines grounded): raising the source to the pulse amplitude under it
                # would pulse the whole row. Release first; the new routing connects later.
                self.matrix.release()
                self.keithley.source_current_limit = self.read_compliance
                self.keithley.source_voltage = amp
                self.keithley.source_enabled = True
            if self._fast:
                # armed with the output held at the baseline, routed, then played
                self.ad2.awg_pulse(0, amp, width, baseline=baseline, hold=True)
                self._route(rows, cols)
                self.ad2.awg_start(0)
            else:
                self.ad2.awg_dc(0, baseline)
                self._route(rows, cols)
                self.ad2.awg_pulse(0, amp, width, baseline=baseline)
            self.ad2.awg_wait(0, timeout_s=max(1.0, 10 * width))

    @staticmethod
    def _high_range(v_abs: float) -> int | None:
        """The 6487 source range a level beyond its 10 V range needs (None within it)."""
        rng = source_range_for(v_abs)
        return None if rng == 10 else rng

    @contextmanager
    def _source_range(self, v_abs: float) -> Iterator[int | None]:
        """Put the 6487 on the range ``|V| = v_abs`` needs for the block (the driver writes a
        current limit <= 2.5 mA first on 50/500 V) and back on the 10 V range on every exit
        path (source off, 0 V, ``SOUR:VOLT:RANG 10``; each step tried, failures logged).
        Yields the high range, or None within 10.1 V (nothing written)."""
        high = self._high_range(v_abs)
        if high is None:
            yield None
            return
        k = self.keithley
        try:
            k.source_off()
            k.source_voltage_range = high
            yield high
        finally:
            for what, step in (
                ("6487 source off", k.source_off),
                ("6487 to 0 V", lambda: setattr(k, "source_voltage", 0.0)),
                ("6487 10 V range", lambda: setattr(k, "source_voltage_range", 10)),
            ):
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - every step must be tried
                    log.warning("%s: %s failed: %s", self.name, what, exc)

    def _pulse_keithley(
        self, lines: LineLevels, amp: float, width: float, compliance: float | None
    ) -> None:
        limit = self.read_compliance if compliance is None else float(compliance)
        k = self.keithley
        if self._high_range(abs(amp)) is not None and compliance is None:
            limit = min(limit, HIGH_RANGE_MAX_CURRENT_LIMIT)  # 50/500 V: at most 2.5 mA
        with self._session():
            k.source_off()
            self._route_lines(lines)  # the selected column on SMU_SENSE: the current's return
            with self._source_range(abs(amp)):
                k.source_current_limit = limit
                k.source_voltage = amp
                k.source_enabled = True  # on 50/500 V: the interlock checked (InterlockOpen)
                self.clock.sleep(width)
                k.source_enabled = False

    # ------------------------------------------------------------------ I-V sweeps
    def sweep(
        self,
        spec: SweepSpec,
        on_point: Callable[[int, int, Measurement], None],
        *,
        should_stop: StopFn | None = None,
    ) -> None:
        """Staircase through the 6487 (built-in sweeps where the list allows), ``cycles``
        times; overflow readings are ±inf."""
        v = np.asarray(spec.voltages, dtype=float).ravel()
        k = self.keithley
        with self._session(), self._source_range(float(np.max(np.abs(v)))):
            k.source_off()
            self._route_lines(spec.lines)
            k.nplc = spec.nplc
            self._nplc = spec.nplc
            for cycle in range(int(spec.cycles)):

                def deliver(index: int, reading: Reading, cycle: int = cycle) -> None:
                    m = Measurement(_current(reading), bool(reading.compliance), self.now())
                    on_point(cycle, index, m)
                    check_stop(should_stop)

                procedures.sweep_points(
                    k,
                    v,
                    compliance=spec.compliance,
                    on_reading=deliver,
                    delay=float(spec.delay),
                    builtin_descending=self.config.instruments.builtin_descending,
                    poll_interval=self.poll_interval,
                    # polled while a built-in staircase runs: the driver aborts it (device
                    # clear, SWE:ABOR) and StopRequested comes through
                    should_stop=lambda: check_stop(should_stop) or False,
                )

    # ------------------------------------------------------------------ MVM
    def mvm(self, row_voltages: np.ndarray, *, should_stop: StopFn | None = None) -> np.ndarray:
        """Column currents (batch, cols) A for row voltages (batch, rows) V, |V| ≤ the read limit
        (see the module docstring for the grouping and the number of captures)."""
        v = np.atleast_2d(np.asarray(row_voltages, dtype=float))
        rows, cols = self.shape
        g = max(1, self.capabilities.row_drivers)
        row_groups = [list(range(s, min(s + g, rows))) for s in range(0, rows, g)]
        col_pairs = [list(range(s, min(s + 2, cols))) for s in range(0, cols, 2)]
        w = self.config.wiring
        out = np.zeros((v.shape[0], cols))
        awg_bus = (Bus.AWG1, Bus.AWG2)
        tia_bus = (Bus.TIA1, Bus.TIA2)
        with self._session(keithley=False, awgs=(0, 1)):
            self.keithley.source_off()
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
                        check_stop(should_stop)
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
