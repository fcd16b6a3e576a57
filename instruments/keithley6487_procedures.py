"""Measurement procedures of the Keithley 6487: one reading at a level, the built-in staircase
sweep, and an arbitrary voltage list (built-in runs where the list allows, point by point
elsewhere).

Each procedure takes a :class:`~instruments.keithley6487.Keithley6487` and drives it through
its validated controls. Every argument is checked against the bench's limits and the 6487's
rules (:mod:`instruments.keithley6487_limits`) first: nothing is written if one is refused.
A procedure sets a batch of controls inside :meth:`Keithley6487.deferred_error_check` and reads
the error queue once at the end of the batch, naming the batch in the error.

Compliance is read twice and cross-checked: the reading's VSO element (-999 in compliance,
Reference Manual p. 6-5) and the measurement event register's VSC bit (B14, p. 10-14). A
single reading (:func:`measure_at`) is checked against the live condition
(``STAT:MEAS:COND?``); a run (a built-in staircase, a point-by-point run) against the events
latched during it (``STAT:MEAS?`` read before and after). Where both agree the VSO flags
stand. Where they disagree the VSO rule is not trusted: a VSC without any VSO -999 flags the
single reading, or every reading of a built-in run (before it is delivered), as in compliance,
and fails a point-by-point run (whose readings were already delivered) with ComplianceError; a
VSO -999 without VSC keeps the flag (-999 is no source level). Every disagreement is logged and
appended to ``k.compliance_disagreements``.

A built-in sweep is waited for with the status model (serial poll of the status byte, see
:meth:`Keithley6487.wait_for_sweep`), never by querying while it runs; ``should_stop`` lets the
caller stop it at its next poll (the sweep is aborted with a device clear first).

.. code-block:: python

    from instruments.keithley6487_procedures import measure_at, sweep_points
    from instruments.sweep_plan import cyclic_points

    reading = measure_at(k, 0.2, compliance=2.5e-4, nplc=1)
    readings = sweep_points(k, cyclic_points(6.0, -6.0, 0.1), compliance=2.5e-4)
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence

import numpy as np

from .errors import ComplianceError, GarbledReply, fault_message
from .keithley6487 import MEAS_BFL, MEAS_VSC, Keithley6487, Reading
from .keithley6487_limits import (
    HARDWARE_MAX_VOLTAGE,
    MAX_SWEEP_POINTS,
    as_number,
    check_delay,
    check_range_compliance,
    format_level,
)
from .sweep_plan import builtin_parameters, plan_segments

__all__ = ["StopCheck", "measure_at", "measure_burst", "sweep", "sweep_points"]

log = logging.getLogger(__name__)

#: Called as ``emit(index, reading)`` for each reading of a run, in order.
_Emit = Callable[[int, Reading], None]
#: Called between the status polls of a built-in sweep; True stops (aborts) the sweep.
StopCheck = Callable[[], bool]


def _disagreement(k: Keithley6487, what: str, vsc: bool) -> None:
    """Log and record one disagreement between VSO = -999 and the VSC bit."""
    text = (
        f"{what}: the measurement status VSC bit says "
        f"{'compliance' if vsc else 'no compliance'} but "
        f"{'no reading' if vsc else 'a reading'} carried VSO = -999"
    )
    log.warning("%s: %s (the VSO = -999 rule is not confirmed)", k.name, text)
    k.compliance_disagreements.append(text)


def _in_compliance(reading: Reading) -> Reading:
    return dataclasses.replace(reading, compliance=True, voltage_source=math.nan)


def _reconcile(
    k: Keithley6487, readings: list[Reading], vsc: bool, what: str
) -> tuple[list[Reading], bool]:
    """Cross-check the readings' VSO flags with ``vsc``; returns the readings to keep (every
    one flagged when VSC saw compliance that no VSO showed) and whether they agreed."""
    flagged = any(r.compliance for r in readings)
    if flagged == vsc:
        return readings, True
    _disagreement(k, what, vsc)
    if vsc:
        return [_in_compliance(r) for r in readings], False
    return readings, False


def _configure_point(
    k: Keithley6487, voltage: float, compliance: float, *, single: bool = True
) -> None:
    """Limit, level, operate, zero check off and the data format (errors not checked); with
    ``single``, the trigger count back to 1 first."""
    if single:
        k.restore_single_trigger()
    with k.deferred_error_check():
        k.source_current_limit = compliance
        k.source_voltage = voltage
        k.source_enabled = True
        k.zero_check_enabled = False
        k.data_elements = "READ,VSO"


def _raise_if_compliance(k: Keithley6487, reading: Reading, voltage: float, raise_on: bool) -> None:
    if raise_on and reading.compliance:
        command = f"SOUR:VOLT {format_level(voltage)}"
        raise ComplianceError(
            fault_message(k.name, command, "source in compliance (current limit reached)"),
            instrument=k.name,
            command=command,
        )


def measure_at(
    k: Keithley6487,
    voltage: float,
    *,
    compliance: float,
    nplc: float | None = None,
    raise_on_compliance: bool = False,
) -> Reading:
    """Source ``voltage`` and take one reading.

    Checks the limits first (nothing is written if they refuse), then writes
    ``[SENS:CURR:NPLC n]``, ``SOUR:VOLT:ILIM c``, ``SOUR:VOLT v``, ``SOUR:VOLT:STAT ON``
    (+ ``SOUR:VOLT:INT:FAIL?`` on the 50/500 V ranges), ``SYST:ZCH OFF``,
    ``FORM:ELEM READ,VSO``, queries ``READ?`` and ``STAT:MEAS:COND?`` (the VSC cross-check,
    see the module docstring) and checks the error queue.

    The source is LEFT ON at ``voltage`` (a sweep continues from here); call
    ``k.shutdown()`` or ``k.source_off()`` when done. The source range is not changed: levels
    beyond ±10.1 V need ``k.source_voltage_range`` set first.

    :param k: the 6487.
    :param voltage: source level (V, |V| <= limits.max_voltage).
    :param compliance: current limit (A); snapped up to 25 µA/250 µA/2.5 mA/25 mA, refused
        if the snapped value exceeds limits.max_compliance.
    :param nplc: integration time (PLC, 0.01 to 6; 5 on 50 Hz mains) or None to keep the
        present one.
    :param raise_on_compliance: raise ComplianceError if the source was in compliance.
    :returns: the :class:`Reading` (current A, voltage_source V).
    """
    v = k.checked_voltage(voltage, "measure_at voltage")
    c = k.checked_compliance(compliance)
    check_range_compliance(abs(v), c)
    if nplc is not None:
        k.nplc = k.checked_nplc(nplc)
    _configure_point(k, v, c)
    reading = k.take_reading()
    vsc = bool(k.measurement_condition & MEAS_VSC)
    k.check_errors(f"measure_at: SOUR:VOLT:ILIM {format_level(c)} ... READ?")
    (reading,), _ = _reconcile(k, [reading], vsc, f"measure_at {format_level(v)} V")
    _raise_if_compliance(k, reading, v, raise_on_compliance)
    return reading


def measure_burst(
    k: Keithley6487,
    voltage: float,
    n: int,
    *,
    compliance: float,
    nplc: float | None = None,
) -> list[Reading]:
    """Source ``voltage`` and take ``n`` readings through the trigger model and the buffer: one
    ``INIT``, one ``TRAC:DATA?`` (Reference Manual, "Buffer": ``TRIG:COUN n``, ``TRAC:POIN n``,
    ``TRAC:FEED SENS``, ``TRAC:FEED:CONT NEXT``, ``INIT``, ``TRAC:DATA?``).

    Checks the limits first (nothing is written if they refuse), then writes
    ``[SENS:CURR:NPLC n]``, the point settings of :func:`measure_at` (limit, level, operate,
    zero check off, ``FORM:ELEM READ,VSO``), ``TRIG:COUN n``, ``TRAC:POIN n``, ``TRAC:CLE``,
    ``TRAC:FEED SENS``, ``TRAC:FEED:CONT NEXT``; reads ``STAT:MEAS?`` (clears the events),
    ``INIT``, then ``TRAC:DATA?`` — answered once the ``n`` readings are stored (the VISA
    timeout is raised to cover them) — ``STAT:MEAS?`` (the VSC cross-check over the burst) and
    the error queue. ``TRIG:COUN`` stays at ``n`` (the next :func:`measure_at` restores 1).

    With :attr:`Keithley6487.skip_unchanged`, a repeated burst at the same settings is seven
    transactions whatever ``n``: ``TRAC:CLE``, ``TRAC:FEED:CONT NEXT``, ``STAT:MEAS?``,
    ``INIT``, ``TRAC:DATA?``, ``STAT:MEAS?``, ``SYST:ERR?``; ``n`` single reads are 3·n.

    :param n: readings, 1 to 2048 (the trigger count's maximum).
    :returns: the ``n`` readings in order (current A, source V), compliance cross-checked.
    """
    if (
        isinstance(n, bool)
        or not isinstance(n, (int, np.integer))
        or not 1 <= n <= MAX_SWEEP_POINTS
    ):
        raise ValueError(f"n must be an int in [1, {MAX_SWEEP_POINTS}], got {n!r}")
    n = int(n)
    v = k.checked_voltage(voltage, "measure_burst voltage")
    c = k.checked_compliance(compliance)
    check_range_compliance(abs(v), c)
    if nplc is not None:
        k.nplc = k.checked_nplc(nplc)
    _configure_point(k, v, c, single=False)
    with k.deferred_error_check():
        k.trigger_count = n
        k.buffer_points = n
        k.clear_buffer()
        k.buffer_feed = "SENS"
        k.buffer_feed_control = "NEXT"
    _ = k.measurement_events  # clear: VSC from now on belongs to this burst
    k.initiate()
    # the reply comes once the n readings are in: up to 6 PLC at 50 Hz each, plus a second
    with k._visa_timeout(n * (6 / 50) + 1.0):
        text = k.buffer_data
    readings = k.parse_reply(str(text), "TRAC:DATA?")
    vsc = bool(k.measurement_events & MEAS_VSC)
    what = f"measure_burst: {n} readings at {format_level(v)} V (INIT, TRAC:DATA?)"
    k.check_errors(what)
    if len(readings) != n:
        raise GarbledReply(
            fault_message(k.name, "TRAC:DATA?", f"expected {n} readings, got {len(readings)}"),
            instrument=k.name,
            command="TRAC:DATA?",
        )
    readings, _ = _reconcile(k, readings, vsc, what)
    return readings


def _measure_points(
    k: Keithley6487, voltages: np.ndarray, compliance: float, delay: float, emit: _Emit
) -> None:
    """Point-by-point run: full configuration once (and ``STAT:MEAS?`` to clear the event
    register), then ``SOUR:VOLT v`` + ``READ?`` per point, each reading emitted at once; a
    ``delay`` > 0 is the instrument's trigger delay (``TRIG:DEL``, so every READ? settles
    ``delay`` s at the new level before integrating; set back to 0 at the end); at the end the
    events (``STAT:MEAS?``) for the VSC cross-check and the error queue."""
    seen: list[Reading] = []
    for index, v in enumerate(voltages):
        if index == 0:
            _configure_point(k, float(v), compliance)
            if delay > 0:
                k.trigger_delay = delay
            _ = k.measurement_events  # clear: VSC from now on belongs to this run
        else:
            with k.deferred_error_check():
                k.source_voltage = float(v)
        reading = k.take_reading()
        seen.append(reading)
        emit(index, reading)
    if delay > 0:
        k.trigger_delay = 0
    vsc = bool(k.measurement_events & MEAS_VSC)
    what = (
        f"sweep_points: SOUR:VOLT:ILIM {format_level(compliance)} ... "
        f"SOUR:VOLT {format_level(voltages[-1])}, READ?"
    )
    k.check_errors(what)
    _, agreed = _reconcile(k, seen, vsc, what)
    if not agreed and vsc:
        raise ComplianceError(
            fault_message(
                k.name,
                "STAT:MEAS?",
                f"V-source compliance (VSC) during the run of {len(seen)} points, but no reading "
                "carried VSO = -999: which readings are clamped is unknown",
            ),
            instrument=k.name,
            command="STAT:MEAS?",
        )


def _configure_builtin(
    k: Keithley6487, start: float, stop: float, step: float, delay: float, compliance: float
) -> int:
    """Write one built-in staircase's settings and buffer; returns its number of points."""
    n = builtin_parameters(start, stop, step)[3]
    with k.deferred_error_check():
        k.source_current_limit = compliance
        k.sweep_start = start
        k.sweep_stop = stop
        k.sweep_step = step
        k.sweep_delay = delay
        k.data_elements = "READ,VSO"
        k.trigger_count = n
        k.clear_buffer()
        k.buffer_points = n
        k.buffer_feed = "SENS"
        k.buffer_feed_control = "NEXT"
        k.zero_check_enabled = False
        k.measurement_event_enable = MEAS_BFL  # the sweep's end sets the summary bit
    return n


def _run_builtin(
    k: Keithley6487,
    start: float,
    stop: float,
    step: float,
    *,
    delay: float,
    compliance: float,
    timeout: float | None,
    poll_interval: float,
    should_stop: StopCheck | None = None,
) -> list[Reading]:
    """Configure, run and read back one built-in staircase (arguments already checked)."""
    n = _configure_builtin(k, start, stop, step, delay, compliance)
    if timeout is None:
        timeout = 10.0 + n * (delay + 1.0)
    # Configuration errors stop us before the source is armed.
    k.check_errors(
        f"sweep: SOUR:VOLT:ILIM {format_level(compliance)} ... SYST:ZCH OFF, STAT:MEAS:ENAB"
    )
    _ = k.measurement_events  # clear: BFL and VSC from now on belong to this sweep
    k.arm_sweep()
    k.note_sweep_range(max(abs(start), abs(stop)))
    k.initiate()
    events = k.wait_for_sweep(timeout, poll_interval, points=n, should_stop=should_stop)
    text = k.buffer_data
    k.trigger_count = 1
    k.check_errors("sweep: SOUR:VOLT:SWE:INIT ... TRAC:DATA?, TRIG:COUN 1")
    readings = k.parse_reply(text, "TRAC:DATA?")
    if len(readings) != n:
        raise GarbledReply(
            fault_message(
                k.name, "TRAC:DATA?", f"expected {n} buffer readings, got {len(readings)}"
            ),
            instrument=k.name,
            command="TRAC:DATA?",
        )
    what = f"sweep {format_level(start)} -> {format_level(stop)} V ({n} points)"
    readings, _ = _reconcile(k, readings, bool(events & MEAS_VSC), what)
    return readings


def sweep(
    k: Keithley6487,
    start: float,
    stop: float,
    step: float,
    *,
    delay: float = 0.0,
    compliance: float,
    raise_on_compliance: bool = False,
    timeout: float | None = None,
    poll_interval: float = 0.05,
    should_stop: StopCheck | None = None,
) -> list[Reading]:
    """Run the 6487's built-in staircase sweep and return one reading per step.

    Sequence: ``SOUR:VOLT:ILIM``, ``SOUR:VOLT:SWE:STAR/STOP/STEP/DEL``,
    ``FORM:ELEM READ,VSO``, ``TRIG:COUN n``, ``TRAC:CLE``, ``TRAC:POIN n``,
    ``TRAC:FEED SENS``, ``TRAC:FEED:CONT NEXT``, ``SYST:ZCH OFF``, ``STAT:MEAS:ENAB 512``
    (buffer full), error check, ``STAT:MEAS?`` (clears the events), ``SOUR:VOLT:SWE:INIT``
    (arms, source to operate; ``SOUR:VOLT:INT:FAIL?`` when the levels need the 50/500 V
    range), ``INIT``, serial polls until the status byte's measurement summary bit is set,
    ``STAT:MEAS?`` (the sweep's events: VSC cross-check), ``TRAC:DATA?``, ``TRIG:COUN 1``,
    error check.

    Assumption (INSTRUMENTS.md marks it unverified; manual pp. 6-9/6-10 not checked): the
    sweep takes ``TRIG:COUN n`` with ``TRAC:POIN n`` (as the manual's buffer example on
    p. 6-8 does), not ``ARM:COUN n``; ``TRAC:FEED SENS`` + ``TRAC:FEED:CONT NEXT`` enable
    the buffer in case ``SOUR:VOLT:SWE:INIT`` does not. ``TRIG:COUN 1`` is restored after
    the read-back so a later ``READ?`` takes one reading.

    Direction: STEP is always positive; the manual (pp. 6-8, 6-11) says a sweep runs
    downward when start > stop, so this accepts both directions (not yet verified on our
    bench; :func:`sweep_points` uses point-by-point for descending runs by default).
    The number of points is round(|stop - start| / step) + 1; the span must be a whole
    number of steps (the 6487 executes only complete steps). The 6487 picks the lowest
    source range holding every point.

    :param k: the 6487.
    :param start: first level (V); :param stop: last level (V); :param step: step (V, > 0).
    :param delay: settling delay per step before the reading (s, 0 to 999.9999).
    :param compliance: current limit (A), snapped up as in :func:`measure_at`.
    :param raise_on_compliance: raise ComplianceError if any reading was in compliance.
    :param timeout: seconds to wait for the sweep (default 10 + n·(delay + 1)); on expiry
        the sweep is aborted (device clear, ``SOUR:VOLT:SWE:ABOR``) and InstrumentTimeout
        raised.
    :param poll_interval: seconds between status polls.
    :param should_stop: ``should_stop() -> bool``, called between status polls; True aborts
        the sweep the same way and raises :class:`~instruments.errors.StopRequested`.
    :returns: n readings, in sweep order. Leaves the source as the sweep left it.
    """
    v0 = k.checked_voltage(start, "sweep start")
    v1 = k.checked_voltage(stop, "sweep stop")
    c = k.checked_compliance(compliance)
    s = as_number(step, "sweep step", "V")
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"sweep step must be finite and > 0 V (always positive), got {step!r}")
    delay = check_delay(delay, "sweep delay")
    n = builtin_parameters(v0, v1, s)[3]
    if n > MAX_SWEEP_POINTS:
        raise ValueError(f"a built-in sweep has at most {MAX_SWEEP_POINTS} points, asked {n}")
    check_range_compliance(max(abs(v0), abs(v1)), c)
    readings = _run_builtin(
        k,
        v0,
        v1,
        s,
        delay=delay,
        compliance=c,
        timeout=timeout,
        poll_interval=poll_interval,
        should_stop=should_stop,
    )
    for index, reading in enumerate(readings):
        level = v0 + math.copysign(index * s, v1 - v0)
        _raise_if_compliance(k, reading, level, raise_on_compliance)
    return readings


def _checked_levels(k: Keithley6487, v: np.ndarray) -> None:
    """Refuse the list if any level is refused (the exact scalar check raises for the first
    bad one); only points that are not finite or within the 6-digit rounding (5e-6) of the
    bench or instrument limit need it."""
    edge = min(k.limits.max_voltage, HARDWARE_MAX_VOLTAGE) * (1 - 1e-5)
    for i in np.flatnonzero(~np.isfinite(v) | (np.abs(v) > edge)):
        k.checked_voltage(v[i], f"sweep_points voltages[{i}]")


def sweep_points(
    k: Keithley6487,
    voltages: Sequence[float] | np.ndarray,
    *,
    compliance: float,
    delay: float = 0.0,
    on_reading: Callable[[int, Reading], None] | None = None,
    builtin_descending: bool = False,
    raise_on_compliance: bool = False,
    timeout: float | None = None,
    poll_interval: float = 0.05,
    should_stop: StopCheck | None = None,
) -> list[Reading]:
    """Measure at an arbitrary list of voltages, e.g. :func:`~instruments.sweep_plan.cyclic_points`.

    Every voltage and the compliance are checked first (nothing is written if one is
    refused). The list is split by :func:`~instruments.sweep_plan.plan_segments`: uniformly
    spaced ascending runs of >= 3 points use the built-in sweep (:func:`sweep`, a handful of
    bus transactions); the rest (descending runs, odd points) go point by point: the first
    point of a run is configured as in :func:`measure_at`, later points send only
    ``SOUR:VOLT v`` and ``READ?`` (``delay`` s apart), and the error queue is checked at the
    end of each run.

    :param k: the 6487.
    :param voltages: levels (V), each |V| <= limits.max_voltage.
    :param compliance: current limit (A), snapped up as in :func:`measure_at`.
    :param delay: settling delay before each reading (s, 0 to 999.9999).
    :param on_reading: called as ``on_reading(index, reading)`` as soon as each reading is
        available (point by point: at once; built-in runs: after the buffer read-back), so
        the caller can write data as it is acquired.
    :param builtin_descending: also run descending runs on the built-in sweep (the manual
        says it can; off until verified on the bench).
    :param raise_on_compliance: raise ComplianceError at the first reading in compliance
        (after on_reading got it).
    :param timeout: per built-in run, see :func:`sweep`.
    :param poll_interval: see :func:`sweep`.
    :param should_stop: see :func:`sweep` (checked while a built-in run is waited for).
    :returns: one reading per voltage, in order. The source is left on.
    """
    v = np.asarray(voltages, dtype=float).ravel()
    if v.size == 0:
        return []
    _checked_levels(k, v)
    c = k.checked_compliance(compliance)
    delay = check_delay(delay)
    check_range_compliance(float(np.max(np.abs(v))), c)

    readings: list[Reading] = []
    for segment in plan_segments(v, builtin_descending=builtin_descending):

        def emit(offset: int, reading: Reading, first: int = segment.first) -> None:
            readings.append(reading)
            if on_reading is not None:
                on_reading(first + offset, reading)
            _raise_if_compliance(k, reading, float(v[first + offset]), raise_on_compliance)

        if segment.kind == "builtin":
            run = _run_builtin(
                k,
                segment.start,
                segment.stop,
                segment.step,
                delay=delay,
                compliance=c,
                timeout=timeout,
                poll_interval=poll_interval,
                should_stop=should_stop,
            )
            for offset, reading in enumerate(run):
                emit(offset, reading)
        else:
            _measure_points(k, segment.voltages, c, delay, emit)
    return readings
