"""Keithley 6487 picoammeter / voltage source driver (pymeasure, SCPI over GPIB or RS-232).

The instrument and nothing else: every setting is a pymeasure ``Instrument.control`` /
``measurement`` with a strict validator, plus the reply parser, identification, reset, the error
queue, zero correction and shutdown. Everything that sets a voltage or a current limit checks
the bench's :class:`~instruments.errors.SafetyLimits` first and raises
:class:`~instruments.errors.SafetyLimitError` before a single byte reaches the bus. The
instrument's range and limit rules are in :mod:`instruments.keithley6487_limits`; measurement
sequences (``measure_at``, ``sweep``, ``sweep_points``) in
:mod:`instruments.keithley6487_procedures`; sweep lists in :mod:`instruments.sweep_plan`.

.. code-block:: python

    from instruments.errors import SafetyLimits
    from instruments.keithley6487 import Keithley6487
    from instruments.keithley6487_procedures import sweep_points
    from instruments.sweep_plan import cyclic_points

    with Keithley6487("GPIB0::22::INSTR", limits=SafetyLimits(8.0, 1e-3), timeout=10_000) as k:
        k.check_errors()
        k.zero_correct()
        readings = sweep_points(k, cyclic_points(6.0, -6.0, 0.1), compliance=2.5e-4,
                                on_reading=lambda i, r: writer.append(i, r))
    # leaving the block runs shutdown(): source off, zero check on

Facts come from /work/shared/paper/INSTRUMENTS.md and the 6487 reference manual (pages 6-5 to
6-11 and 13-4); the assumptions that are not verified on hardware are marked "Assumption".
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pyvisa
from pymeasure.instruments import Instrument, SCPIMixin
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from .errors import (
    ConnectionLost,
    GarbledReply,
    InstrumentError,
    InstrumentErrorQueue,
    InstrumentTimeout,
    InterlockOpen,
    SafetyLimits,
    StopRequested,
    fault_message,
)
from .keithley6487_limits import (
    BUFFER_MAX_POINTS,
    CURRENT_LIMITS,
    CURRENT_RANGE,
    DELAY_RANGE,
    HARDWARE_MAX_VOLTAGE,
    HIGH_RANGE_MAX_CURRENT_LIMIT,
    LINE_FREQUENCIES,
    MAX_SWEEP_POINTS,
    NPLC_RANGE,
    SOURCE_RANGE_MAX_LEVEL,
    SOURCE_RANGES,
    as_number,
    check_level,
    check_nplc,
    check_range_compliance,
    largest_limit_within,
    nplc_range,
    snap_compliance,
    source_range_for,
)

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = [
    "COMPLIANCE_VSO",
    "MEAS_BFL",
    "MEAS_INT",
    "MEAS_ROF",
    "MEAS_VSC",
    "STB_MSB",
    "Identity",
    "Keithley6487",
    "NAN_SENTINEL",
    "OVERFLOW_SENTINEL",
    "Reading",
    "SIM_DEFINITION",
    "SIM_RESOURCE",
    "normalise_elements",
    "parse_readings",
]

MODEL = "Keithley 6487"
#: pyvisa-sim definition of a 6487 (open with ``pyvisa.ResourceManager(f"{SIM_DEFINITION}@sim")``).
SIM_DEFINITION = Path(__file__).resolve().parent / "sim" / "keithley6487.yaml"
#: The GPIB resource the simulated 6487 answers on (``ASRL1::INSTR`` is its RS-232 twin).
SIM_RESOURCE = "GPIB0::22::INSTR"

#: Sentinels in replies: overflow, not-a-number, and the V-source value meaning "in compliance".
OVERFLOW_SENTINEL = 9.9e37
NAN_SENTINEL = 9.91e37
COMPLIANCE_VSO = -999.0

# Status model (Reference Manual section 10). Status byte (serial poll, ``*STB?``), p. 10-8:
# bit B0 = measurement summary bit (MSB): an event enabled in the measurement event enable
# register (``STAT:MEAS:ENAB``) has occurred. Measurement event register, pp. 10-13/10-14
# (``STAT:MEAS?`` reads and clears the event register, ``STAT:MEAS:COND?`` the live condition):
#: status byte bit B0, measurement summary (an enabled measurement event occurred)
STB_MSB = 1 << 0
#: B7 reading overflow (ROF)
MEAS_ROF = 1 << 7
#: B9 buffer full (BFL): "also set when a voltage sweep has been completed" (p. 10-14)
MEAS_BFL = 1 << 9
#: B11 output interlock asserted (INT): "the voltage source output cannot be turned on"
MEAS_INT = 1 << 11
#: B14 voltage source compliance (VSC): "the voltage source is in compliance"
MEAS_VSC = 1 << 14

#: FORM:ELEM short forms and their long forms (any abbreviation in between is accepted).
_ELEMENT_LONG = {
    "READ": "READING",
    "UNIT": "UNITS",
    "TIME": "TIME",
    "STAT": "STATUS",
    "VSO": "VSOURCE",
}
_ELEMENT_ORDER = ("READ", "UNIT", "TIME", "STAT", "VSO")
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_TOKEN_RE = {
    "READ": re.compile(rf"({_NUMBER})\s*(?:A)?", re.IGNORECASE),
    "TIME": re.compile(rf"({_NUMBER})\s*(?:S|SEC|SECS)?", re.IGNORECASE),
    "STAT": re.compile(rf"({_NUMBER})"),
    "VSO": re.compile(rf"({_NUMBER})\s*(?:V)?", re.IGNORECASE),
}
_ERROR_RE = re.compile(r'\s*([+-]?\d+)\s*,\s*"?(.*?)"?\s*')


# --------------------------------------------------------------------------------------------
# Readings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One reading of the 6487.

    :param current: measured current (A); ``±inf`` on overflow, ``nan`` for the NaN sentinel.
    :param voltage_source: V-source value (V) when VSO was requested, else None; ``nan`` when
        the source was in compliance (the instrument reports -999 instead of a value).
    :param time: timestamp (s) when TIME was requested, else None.
    :param status: status word when STAT was requested, else None.
    :param overflow: the reading was the overflow sentinel +9.9E37.
    :param compliance: the V-source was in compliance (current limit reached).
    """

    current: float
    voltage_source: float | None = None
    time: float | None = None
    status: int | None = None
    overflow: bool = False
    compliance: bool = False


def normalise_elements(elements: str | Sequence[str]) -> tuple[str, ...]:
    """Return element names as ``("READ", "VSO", ...)`` in the given order (ALL/DEF expanded)."""
    if isinstance(elements, str):
        items = [e for e in re.split(r"[,\s]+", elements.strip()) if e]
    else:
        items = [str(e).strip() for e in elements]
    out: list[str] = []
    for item in items:
        key = item.upper()
        if key in ("ALL",):
            names: tuple[str, ...] = _ELEMENT_ORDER
        elif key in ("DEF", "DEFAULT"):
            names = ("READ", "UNIT", "TIME", "STAT")
        else:
            short = next(
                (
                    s
                    for s, long in _ELEMENT_LONG.items()
                    if key.startswith(s) and long.startswith(key)
                ),
                None,
            )
            if short is None:
                raise ValueError(
                    f"unknown data element {item!r}; use READ, UNIT, TIME, STAT, VSO, ALL or DEF"
                )
            names = (short,)
        for name in names:
            if name not in out:
                out.append(name)
    if not out:
        raise ValueError("at least one data element is needed (e.g. 'READ,VSO')")
    return tuple(out)


def _elements_validator(value: str | Sequence[str], values: Sequence[str]) -> str:
    """pymeasure validator: normalise a FORM:ELEM list to e.g. ``"READ,VSO"``."""
    return ",".join(normalise_elements(value))


def _classify_current(x: float) -> tuple[float, bool, bool]:
    """Return ``(current, overflow, nan)`` for a READ value, mapping the sentinels."""
    if math.isclose(x, NAN_SENTINEL, rel_tol=1e-5):
        return math.nan, False, True
    if math.isclose(abs(x), OVERFLOW_SENTINEL, rel_tol=1e-5):
        return math.copysign(math.inf, x), True, False
    return x, False, False


def parse_readings(
    text: str,
    elements: str | Sequence[str] = "READ,VSO",
    *,
    strict: bool = False,
    instrument: str = MODEL,
    command: str | None = None,
) -> list[Reading]:
    """Parse a READ?/FETC?/TRAC:DATA? reply into :class:`Reading` objects.

    :param text: the reply, e.g. ``"+1.234567E-09A,+1.000000E+00,-2.1E-10,+2.0E+00"``.
    :param elements: the FORM:ELEM list in force (order as listed, manual p. 6-7); UNIT only
        allows unit suffixes. A reading parses with or without its ``A`` suffix (VSO ``V``, TIME
        ``SECS`` too), whatever UNIT says.
    :param strict: if True, an overflow (+9.9E37) or NaN (+9.91E37) reading raises
        :class:`InstrumentError` instead of being flagged.
    :param instrument: name used in error messages.
    :param command: the command whose reply this is (for error messages).
    :raises GarbledReply: the text does not parse (the message quotes it).
    """
    names = [n for n in normalise_elements(elements) if n != "UNIT"]
    if "READ" not in names:
        raise ValueError(f"elements {elements!r} lack READ; a Reading needs the current")
    shown = text if len(text) <= 200 else text[:200] + "..."

    def garbled(why: str) -> GarbledReply:
        return GarbledReply(
            fault_message(instrument, command, f"unparseable reply {shown!r} ({why})"),
            instrument=instrument,
            command=command,
        )

    body = text.strip()
    if not body:
        raise garbled("empty")
    tokens = [t.strip() for t in body.split(",")]
    if len(tokens) % len(names):
        raise garbled(f"{len(tokens)} values do not split into groups of {len(names)}")

    readings: list[Reading] = []
    for start in range(0, len(tokens), len(names)):
        fields: dict[str, float] = {}
        for name, token in zip(names, tokens[start : start + len(names)], strict=True):
            match = _TOKEN_RE[name].fullmatch(token)
            if match is None:
                raise garbled(f"bad {name} value {token!r}")
            value = float(match.group(1))
            if not math.isfinite(value):
                raise garbled(f"{name} value {token!r} is out of range")
            fields[name] = value
        current, overflow, is_nan = _classify_current(fields["READ"])
        if strict and (overflow or is_nan):
            fault = "overflow reading +9.9E37" if overflow else "NaN reading +9.91E37"
            raise InstrumentError(
                fault_message(instrument, command, f"{fault} in reply {shown!r}"),
                instrument=instrument,
                command=command,
            )
        voltage = fields.get("VSO")
        compliance = voltage is not None and math.isclose(voltage, COMPLIANCE_VSO, abs_tol=1e-6)
        status = None
        if "STAT" in fields:
            word = fields["STAT"]
            if word != int(word) or word < 0:
                raise garbled(f"status word {word!r} is not a non-negative integer")
            status = int(word)
        readings.append(
            Reading(
                current=current,
                voltage_source=math.nan if compliance else voltage,
                time=fields.get("TIME"),
                status=status,
                overflow=overflow,
                compliance=compliance,
            )
        )
    return readings


# --------------------------------------------------------------------------------------------
# Validators and reply processing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _VoltageBounds:
    """Per-instance ``values`` of the voltage controls: the setting's name and the bench's
    |V| limit (SafetyLimits.max_voltage; 0 refuses everything but 0 V)."""

    setting: str
    bench: float


def _checked_voltage(value: object, bounds: _VoltageBounds) -> float:
    """pymeasure validator of a source level: see :func:`check_level`."""
    return check_level(value, bounds.bench, bounds.setting)


@dataclass(frozen=True)
class _ComplianceBounds:
    """Per-instance ``values`` of the current-limit control."""

    setting: str
    bench: float  # A, SafetyLimits.max_compliance (0 refuses everything)
    allowed: tuple[float, ...] = CURRENT_LIMITS


def _compliance_validator(value: object, bounds: _ComplianceBounds) -> float:
    return snap_compliance(value, bounds.bench, bounds.setting, bounds.allowed)  # type: ignore[arg-type]


def _positive_step(value: object, values: tuple[float, float]) -> float:
    step = as_number(value, "sweep_step", "V")
    if not (math.isfinite(step) and values[0] < step <= values[1]):
        raise ValueError(f"sweep_step = {value!r} V must be > 0 and <= {values[1]:g} V")
    return step


def _elements_validator(value: str | Sequence[str], values: Sequence[str]) -> str:
    """pymeasure validator: normalise a FORM:ELEM list to e.g. ``"READ,VSO"``."""
    return ",".join(normalise_elements(value))


#: the query whose reply a ``get_process`` parser is looking at (set by :meth:`Keithley6487.write`),
#: so a garbled property reply names its command like every other fault
_QUERY: ContextVar[str | None] = ContextVar("keithley6487_query", default=None)


def _garbled(what: str, reply: object) -> GarbledReply:
    command = _QUERY.get()
    return GarbledReply(
        fault_message(MODEL, command, f"garbled reply: expected {what}, got {reply!r}"),
        instrument=MODEL,
        command=command,
    )


def _on_off(value: bool) -> str:
    return "ON" if value else "OFF"


def _to_bool(reply: object) -> bool:
    text = str(reply).strip().upper()
    if text in ("ON", "OFF"):
        return text == "ON"
    try:
        return bool(float(text))
    except ValueError:
        raise _garbled("a boolean (0/1/ON/OFF)", reply) from None


def _to_float(reply: object) -> float:
    if isinstance(reply, float):
        return reply
    try:
        return float(str(reply).strip())
    except ValueError:
        raise _garbled("a number", reply) from None


def _to_int(reply: object) -> int:
    value = _to_float(reply)
    if value != int(value):
        raise _garbled("an integer", reply)
    return int(value)


def _choice_control(command: str, docs: str, names: tuple[str, ...]):
    """A control taking one of ``names`` (short forms); replies may use a long form."""

    def parse(reply: object) -> str:
        text = str(reply).strip().upper()
        for name in names:
            if text.startswith(name):
                return name
        raise _garbled(" or ".join(names), reply)

    return Instrument.control(
        f"{command}?",
        f"{command} %s",
        docs,
        validator=strict_discrete_set,
        values=names,
        set_process=str,
        get_process=parse,
        cast=str,
    )


def _bool_control(name: str, docs: str, **kwargs):
    return Instrument.control(
        f"{name}?",
        f"{name} %s",
        docs,
        validator=strict_discrete_set,
        values=(True, False),
        set_process=_on_off,
        get_process=_to_bool,
        cast=str,
        **kwargs,
    )


def _voltage_control(command: str, setting: str, docs: str, **kwargs):
    """A source level (V, ``%g``), refused beyond ``limits.max_voltage`` before anything is
    written (the bench bound is set per instance by :attr:`Keithley6487.limits`)."""
    return Instrument.control(
        f"{command}?",
        f"{command} %g",
        docs,
        validator=_checked_voltage,
        values=_VoltageBounds(setting, 0.0),
        get_process=_to_float,
        dynamic=True,
        **kwargs,
    )


def _range_control(command: str, fmt: str, docs: str, values, **kwargs):
    """A numeric setting checked against ``values`` (a (lo, hi) range or a ``range``)."""
    return Instrument.control(
        f"{command}?",
        f"{command} {fmt}",
        docs,
        validator=strict_discrete_set if isinstance(values, range) else strict_range,
        values=values,
        get_process=_to_int if isinstance(values, range) else _to_float,
        **kwargs,
    )


#: settings the driver may skip re-writing with the value it wrote last (skip_unchanged): they
#: change only by command (the source's operate state only by command on the 10 V range, where
#: the interlock is off after *RST; on 50/500 V it is never skipped)
CACHED_SETTINGS = (
    "SOUR:VOLT",
    "SOUR:VOLT:ILIM",
    "SOUR:VOLT:RANG",
    "SOUR:VOLT:STAT",
    "SENS:CURR:NPLC",
    "SYST:ZCH",
    "FORM:ELEM",
    "TRIG:COUN",
    "TRIG:DEL",
    "TRAC:POIN",
    "TRAC:FEED",
)
#: commands that leave every cached setting as it is (any other command forgets them all)
_NEUTRAL_PREFIXES = ("*CLS", "INIT", "TRAC:", "STAT:", "ABOR")


class Identity(NamedTuple):
    """Parsed ``*IDN?``: manufacturer, model (e.g. "6487"), serial, firmware."""

    manufacturer: str
    model: str
    serial: str
    firmware: str


# --------------------------------------------------------------------------------------------
# The instrument
# --------------------------------------------------------------------------------------------


class Keithley6487(SCPIMixin, Instrument):
    """Keithley 6487 picoammeter / voltage source.

    :param adapter: pymeasure adapter, VISA resource string or GPIB address.
    :param name: instrument name used in logs and error messages.
    :param limits: the bench's :class:`SafetyLimits` (mandatory): every voltage and current
        limit is checked against them before anything is written.
    :param kwargs: passed to :class:`~pymeasure.adapters.VISAAdapter` for a resource string,
        e.g. ``timeout=10_000`` (ms; READ? at 6 PLC with filtering takes seconds) or
        ``visa_library=f"{SIM_DEFINITION}@sim"``. Terminations default to LF on GPIB
        (LF + EOI, manual p. 9-16) and CR on RS-232 (assumption: the front-panel RS-232
        terminator set to CR; pass ``read_termination``/``write_termination`` otherwise).

    Error checks: configuration methods end with :meth:`check_errors`; of the properties, only
    the settings that can conflict with instrument state (``source_voltage``,
    ``source_voltage_range``, ``source_current_limit``, ``interlock_enabled``) check the error
    queue after being set (pymeasure's ``check_set_errors``), except inside
    :meth:`deferred_error_check`, where the caller checks once after a batch of settings.

    State the driver keeps so that every exit path is safe: whether it armed a built-in sweep
    that it has not seen finish (:attr:`sweep_armed`, set *before* ``SOUR:VOLT:SWE:INIT`` is
    written so that a failed write is still aborted; :meth:`source_off` and :meth:`shutdown`
    abort it, with a device clear first when the sweep may be running), whether ``TRIG:COUN``
    may be other than 1 (:meth:`restore_single_trigger`), the source range and current limit it
    last set (so it writes a limit <= 2.5 mA before switching to 50/500 V, and checks the
    interlock after switching the source on there; the range is assumed to be the *RST 10 V
    until this driver sets it — ``lab.open_backend`` resets the instrument on connect) and the
    line frequency (:meth:`read_line_frequency`: the NPLC bound is 5 on 50 Hz mains).

    Compliance (Reference Manual p. 6-5: "a value of -999 returned for the voltage source
    element indicates that the source was in compliance", stated for buffer readings) is
    cross-checked with the measurement event register's VSC bit (B14) by the procedures; every
    disagreement is logged and kept in :attr:`compliance_disagreements`. To confirm on a first
    real run: a ``READ?`` in compliance returns VSO -999 (the manual states it only for buffer
    recall), VSC latches during a built-in sweep in compliance, and the list stays empty.
    """

    #: When True, overflow / NaN readings raise InstrumentError instead of being flagged.
    strict_readings: bool = False

    def __init__(self, adapter, name: str = MODEL, *, limits: SafetyLimits, **kwargs) -> None:
        if not isinstance(limits, SafetyLimits):
            raise TypeError(f"limits must be a SafetyLimits, got {limits!r}")
        kwargs.setdefault("gpib", {"read_termination": "\n", "write_termination": "\n"})
        kwargs.setdefault("asrl", {"read_termination": "\r", "write_termination": "\r"})
        self._last_command: str | None = None  # last command other than SYST:ERR?
        self._last_written: str | None = None
        self._sweep_armed = False
        self._sweep_started = False  # INIT written for an armed sweep (it may be running)
        self._trigger_count_dirty = False
        self._deferred_checks = 0
        self._range = 10  # source range (V) this driver last set (*RST: 10)
        self._limit: float | None = None  # current limit (A) this driver last set (None: *RST)
        #: skip writing a setting of CACHED_SETTINGS with the value this driver last wrote
        #: (off by default; ``lab.open_backend`` turns it on for ``io_path = "fast"``)
        self.skip_unchanged = False
        self._settings: dict[str, str] = {}
        self._interlock_written = False  # SOUR:VOLT:INT ON written since *RST
        self._last_write_skipped = False
        #: writes skipped because the setting already had that value
        self.skipped_writes = 0
        #: mains frequency (Hz) read by :meth:`read_line_frequency`; None until then
        self.line_frequency: float | None = None
        #: every run where VSO = -999 and the VSC event disagreed (see the class docstring)
        self.compliance_disagreements: list[str] = []
        super().__init__(adapter, name, **kwargs)
        self.limits = limits
        self.nplc_values = NPLC_RANGE

    # ---------------------------------------------------------------- limits and transport

    @property
    def limits(self) -> SafetyLimits:
        """The bench's safety limits (SafetyLimits); setting them re-arms every check."""
        return self._limits

    @limits.setter
    def limits(self, limits: SafetyLimits) -> None:
        if not isinstance(limits, SafetyLimits):
            raise TypeError(f"limits must be a SafetyLimits, got {limits!r}")
        self._limits = limits
        self.source_voltage_values = _VoltageBounds("source_voltage", limits.max_voltage)
        self.sweep_start_values = _VoltageBounds("sweep_start", limits.max_voltage)
        self.sweep_stop_values = _VoltageBounds("sweep_stop", limits.max_voltage)
        self._source_current_limit_values = _ComplianceBounds(
            "source_current_limit", limits.max_compliance
        )

    def checked_voltage(self, voltage: float, setting: str) -> float:
        """``voltage`` (V) as the 6487 is sent it (``%g``) if the bench and the instrument allow
        it; else SafetyLimitError (bench limit, not finite), ValueError (beyond ±505 V) or
        TypeError, naming ``setting`` (:func:`check_level`). Writes nothing."""
        return check_level(voltage, self.limits.max_voltage, setting)

    def checked_compliance(self, compliance: float, setting: str = "compliance") -> float:
        """The current limit (A) a request snaps up to, checked against the bench limit (see
        :func:`~instruments.keithley6487_limits.snap_compliance`). Writes nothing."""
        return snap_compliance(compliance, self.limits.max_compliance, setting)

    def write(self, command: str, **kwargs) -> None:
        """Write a command; VISA/serial failures become ConnectionLost or InstrumentTimeout.

        With :attr:`skip_unchanged`, a setting of :data:`CACHED_SETTINGS` equal to what this
        driver last wrote is not sent (counted in :attr:`skipped_writes`); any other command
        that may change settings, a failed write and an error in the queue forget them all.
        ``SOUR:VOLT:STAT OFF`` is always sent (the safe state is never assumed)."""
        header, _, value = command.strip().partition(" ")
        cached = header in CACHED_SETTINGS and bool(value)
        if (
            self.skip_unchanged
            and cached
            and self._settings.get(header) == value
            and (header != "SOUR:VOLT:STAT" or (self._operate_cacheable() and value != "OFF"))
        ):
            self.skipped_writes += 1
            self._last_write_skipped = True
            return
        self._last_write_skipped = False
        self._last_written = command
        _QUERY.set(command)
        if command != "SYST:ERR?":
            self._last_command = command
        try:
            super().write(command, **kwargs)
        except (pyvisa.errors.VisaIOError, pyvisa.errors.InvalidSession, OSError) as exc:
            self._settings.clear()
            raise self._transport_error(exc, command) from exc
        except BaseException:
            self._settings.clear()
            raise
        self._note_written(header, value, cached)

    def _operate_cacheable(self) -> bool:
        """The operate state changes only by command: 10 V range, interlock not enabled."""
        return self._range == 10 and not self._interlock_written

    def _note_written(self, header: str, value: str, cached: bool) -> None:
        if header == "*RST":
            self._interlock_written = False
        elif header == "SOUR:VOLT:INT":
            self._interlock_written = value.strip().upper() not in ("OFF", "0")
        if cached:
            self._settings[header] = value
        elif not (header.endswith("?") or header.startswith(_NEUTRAL_PREFIXES)):
            self._settings.clear()

    def forget_settings(self) -> None:
        """Forget the settings written (the next write of each is sent): call after anything
        that may change the instrument's state behind this driver (front panel, another
        program, a power cycle)."""
        self._settings.clear()

    def read(self, **kwargs) -> str:
        """Read a reply; a VISA timeout becomes InstrumentTimeout, other failures
        ConnectionLost (both name the last command)."""
        try:
            return super().read(**kwargs)
        except (pyvisa.errors.VisaIOError, pyvisa.errors.InvalidSession, OSError) as exc:
            raise self._transport_error(exc, self._last_written) from exc

    def _transport_error(self, exc: Exception, command: str | None) -> InstrumentError:
        if (
            isinstance(exc, pyvisa.errors.VisaIOError)
            and exc.error_code == pyvisa.constants.StatusCode.error_timeout
        ):
            return InstrumentTimeout(
                fault_message(self.name, command, "timeout: no reply within the VISA timeout"),
                instrument=self.name,
                command=command,
            )
        return ConnectionLost(
            fault_message(self.name, command, f"connection lost ({exc})"),
            instrument=self.name,
            command=command,
        )

    def _query(self, command: str) -> str:
        self.write(command)
        return self.read().strip()

    def check_set_errors(self) -> list:
        """pymeasure's hook after setting a control declared with ``check_set_errors``: read the
        error queue (:meth:`check_errors`), unless inside :meth:`deferred_error_check`."""
        if self._deferred_checks or self._last_write_skipped:
            return []  # nothing was sent since the last check of this setting: no new error
        return self.check_errors()

    @contextmanager
    def deferred_error_check(self) -> Iterator[None]:
        """Inside the block, controls that check the error queue after being set do not: the
        caller sets a batch and checks the queue once (one ``SYST:ERR?`` instead of one per
        setting). Nothing is checked on leaving the block."""
        self._deferred_checks += 1
        try:
            yield
        finally:
            self._deferred_checks -= 1

    # ---------------------------------------------------------------- identification, errors

    @property
    def identity(self) -> Identity:
        """Get the parsed ``*IDN?``: (manufacturer, model, serial, firmware); model without the
        ``MODEL`` prefix, e.g. ``Identity("KEITHLEY INSTRUMENTS INC.", "6487", "4126713",
        "A04  Feb  4 2005 16:52:50/A02  /E")``."""
        reply = self._query("*IDN?")
        parts = [p.strip() for p in reply.split(",", 3)]
        if len(parts) != 4 or not all(parts[:3]):
            raise GarbledReply(
                fault_message(self.name, "*IDN?", f"unparseable identification {reply!r}"),
                instrument=self.name,
                command="*IDN?",
            )
        manufacturer, model, serial, firmware = parts
        model = re.sub(r"^MODEL\s+", "", model, flags=re.IGNORECASE)
        return Identity(manufacturer, model, serial, firmware)

    def reset(self) -> None:
        """Reset the instrument to its *RST defaults (``*RST``; source off, 10 V range, one
        trigger, no sweep armed)."""
        self.write("*RST")
        self._sweep_armed = self._sweep_started = False
        self._trigger_count_dirty = False
        self._range, self._limit = 10, None

    def check_errors(self, command: str | None = None) -> list:
        """Read ``SYST:ERR?`` until ``0,"No error"``; raise if anything was queued.

        :param command: the command named in the error message (default: the last command
            written before this check).
        :returns: an empty list when the queue was empty (pymeasure's convention).
        :raises InstrumentErrorQueue: with ``code`` of the first error and ``errors`` holding all
            ``(code, message)`` pairs read.
        :raises GarbledReply: a ``SYST:ERR?`` reply did not parse.
        """
        context = command if command is not None else self._last_command
        errors: list[tuple[int, str]] = []
        emptied = False
        for _ in range(32):  # the 6487 queue holds 10 entries; 32 bounds a babbling bus
            reply = self._query("SYST:ERR?")
            match = _ERROR_RE.fullmatch(reply)
            if match is None:
                raise GarbledReply(
                    fault_message(
                        self.name, "SYST:ERR?", f"garbled reply: unparseable error entry {reply!r}"
                    ),
                    instrument=self.name,
                    command="SYST:ERR?",
                )
            code, message = int(match.group(1)), match.group(2)
            if code == 0:
                emptied = True
                break
            log.error("%s: %r -> %d,%r", self.name, context, code, message)
            errors.append((code, message))
        if errors:
            self._settings.clear()  # some setting was refused: the state is not what was written
            text = "; then ".join(f'{c},"{m}"' for c, m in errors)
            if not emptied:
                text += " (queue still not empty after 32 reads)"
            raise InstrumentErrorQueue(
                fault_message(self.name, context, text),
                instrument=self.name,
                command=context,
                code=errors[0][0],
                errors=errors,
            )
        return []

    # ---------------------------------------------------------------- voltage source

    source_voltage = _voltage_control(
        "SOUR:VOLT",
        "source_voltage",
        """Control the source level (float, V, -505 to 505 by range: ±10.1 V on the 10 V range,
        ±50.5 V on 50 V, ±505 V on 500 V). Refused with SafetyLimitError beyond
        ``limits.max_voltage`` before anything is written; the error queue is checked after
        setting (a level beyond the present range is an instrument error).""",
        check_set_errors=True,
    )

    _source_voltage_range = Instrument.control(
        "SOUR:VOLT:RANG?",
        "SOUR:VOLT:RANG %g",
        """The raw source-range control (see :attr:`source_voltage_range`).""",
        validator=strict_discrete_set,
        values=SOURCE_RANGES,
        get_process=_to_int,
        check_set_errors=True,
    )

    @property
    def source_voltage_range(self) -> int:
        """Control the source range (int, V, strict 10, 50 or 500; *RST 10). The 50 V and 500 V
        ranges always use the interlock and allow at most a 2.5 mA current limit: before
        switching to them, this driver writes ``SOUR:VOLT:ILIM`` (the largest 6487 limit within
        2.5 mA and the bench limit) unless the limit it last set is already within 2.5 mA (after
        *RST it is 25 mA). Errors are checked once after the range (and that limit)."""
        return self._source_voltage_range

    @source_voltage_range.setter
    def source_voltage_range(self, rng: int) -> None:
        value = strict_discrete_set(rng, SOURCE_RANGES)
        with self.deferred_error_check():
            if value != 10 and (self._limit is None or self._limit > HIGH_RANGE_MAX_CURRENT_LIMIT):
                limit = largest_limit_within(
                    min(HIGH_RANGE_MAX_CURRENT_LIMIT, self.limits.max_compliance)
                )
                if limit is None:  # the bench allows no 6487 limit at all (< 25 µA)
                    self.checked_compliance(CURRENT_LIMITS[0], "source_current_limit")
                self.source_current_limit = limit
            self._source_voltage_range = value
        self._range = int(value)
        self.check_set_errors()

    _source_current_limit = Instrument.control(
        "SOUR:VOLT:ILIM?",
        "SOUR:VOLT:ILIM %g",
        """The raw current-limit control (see :attr:`source_current_limit`).""",
        validator=_compliance_validator,
        values=_ComplianceBounds("source_current_limit", 0.0),
        get_process=_to_float,
        check_set_errors=True,
        dynamic=True,
    )

    @property
    def source_current_limit(self) -> float:
        """Control the source current limit (compliance) (float, A; the 6487 has only 25e-6,
        2.5e-4, 2.5e-3 and 25e-3 A, max 2.5e-3 A on the 50/500 V ranges). A request snaps UP to
        the smallest limit >= the request; if that exceeds ``limits.max_compliance`` the request
        is refused with SafetyLimitError, and above 2.5 mA on the 50/500 V ranges (as this
        driver set them) with ValueError, before anything is written."""
        return self._source_current_limit

    @source_current_limit.setter
    def source_current_limit(self, limit: float) -> None:
        snapped = self.checked_compliance(limit, "source_current_limit")
        if self._range != 10:
            check_range_compliance(
                SOURCE_RANGE_MAX_LEVEL[self._range], snapped, "source_current_limit"
            )
        self._source_current_limit = limit
        self._limit = snapped

    _source_enabled = _bool_control(
        "SOUR:VOLT:STAT",
        """The raw operate control (see :attr:`source_enabled`).""",
    )

    @property
    def source_enabled(self) -> bool:
        """Control whether the source is operating (bool; ON/OFF). Off, the output is a
        low-impedance 0 V on the 10 V range. Switching it on while the range this driver set is
        50 or 500 V is followed by :meth:`check_interlock` (an open interlock there keeps the
        source in high impedance with no error: InterlockOpen after switching it off)."""
        return self._source_enabled

    @source_enabled.setter
    def source_enabled(self, on: bool) -> None:
        self._source_enabled = on
        if on is True and self._range != 10:
            self.check_interlock()

    interlock_enabled = _bool_control(
        "SOUR:VOLT:INT",
        """Control the interlock on the 10 V range (bool). It is always on for 50/500 V;
        turning it off there is error -221 "Settings conflict" (raised: errors are checked).""",
        check_set_errors=True,
    )

    interlock_tripped = Instrument.measurement(
        "SOUR:VOLT:INT:FAIL?",
        """Get whether the interlock is asserted (bool; Reference Manual Table 14-5: "1 =
        interlock asserted ... the voltage source cannot be placed in operate").""",
        get_process=_to_bool,
        cast=str,
    )

    def check_interlock(self) -> None:
        """Query ``SOUR:VOLT:INT:FAIL?``; if the interlock is asserted, switch the source off
        (:meth:`source_off`) and raise :class:`InterlockOpen`. On the 50/500 V ranges the 6487
        reports an open interlock nowhere else: the source just stays in high impedance, so a
        pulse or sweep would apply nothing, and "off" would be high-Z instead of 0 V."""
        if not self.interlock_tripped:
            return
        try:
            self.source_off()
        except InstrumentError as exc:
            log.warning("%s: could not switch the source off (%s)", self.name, exc)
        raise InterlockOpen(
            fault_message(
                self.name,
                "SOUR:VOLT:INT:FAIL?",
                f"interlock open on the {self._range} V range: the source stays in high "
                "impedance (switched off); close the test fixture's lid or connect the "
                "interlock cable, or keep every level within 10.1 V",
            ),
            instrument=self.name,
            command="SOUR:VOLT:INT:FAIL?",
        )

    def note_sweep_range(self, top: float) -> None:
        """Note that an armed built-in sweep reaching ``|V| = top`` put the source on the lowest
        range holding it (manual p. 6-11: "fixed at the lowest range required"); on 50/500 V
        the interlock is then checked (:meth:`check_interlock`). Writes nothing on 10 V."""
        self._range = max(self._range, source_range_for(top))
        if self._range != 10:
            self.check_interlock()

    def source_off(self) -> None:
        """Switch the source off (``SOUR:VOLT:STAT OFF``), aborting first a built-in sweep this
        driver armed and did not see finish (``SOUR:VOLT:SWE:ABOR``, after a device clear if it
        may be running): after a fault mid-sweep the 6487 would otherwise refuse the switch-off
        and the next sweep with +840 "Not allowed with sweep on"."""
        if self._sweep_armed:
            self.abort_sweep()
        self._source_enabled = False

    # ---------------------------------------------------------------- line frequency, status

    line_frequency_query = Instrument.measurement(
        "SYST:LFR?",
        """Get the mains frequency the 6487 detected (float, Hz: 50 or 60).""",
        get_process=_to_float,
    )

    def read_line_frequency(self) -> float:
        """Read the mains frequency (``SYST:LFR?``, 50 or 60 Hz) and bound :attr:`nplc` by it:
        at most 5 PLC on 50 Hz, 6 on 60 Hz. GarbledReply for any other reply. Returns Hz."""
        hz = self.line_frequency_query
        if not any(math.isclose(hz, f, abs_tol=0.5) for f in LINE_FREQUENCIES):
            raise GarbledReply(
                fault_message(self.name, "SYST:LFR?", f"line frequency {hz!r} is not 50 or 60 Hz"),
                instrument=self.name,
                command="SYST:LFR?",
            )
        self.line_frequency = float(round(hz))
        self.nplc_values = nplc_range(self.line_frequency)
        return self.line_frequency

    def checked_nplc(self, nplc: float, setting: str = "nplc") -> float:
        """``nplc`` (PLC) if within the bound of the line frequency read (5 at 50 Hz, 6 at 60 Hz
        or not read yet); else ValueError. Writes nothing."""
        return check_nplc(nplc, setting, self.line_frequency)

    measurement_event_enable = Instrument.control(
        "STAT:MEAS:ENAB?",
        "STAT:MEAS:ENAB %d",
        """Control the measurement event enable register (int, 0 to 65535): the events whose
        occurrence sets the status byte's measurement summary bit (e.g. MEAS_BFL).""",
        validator=strict_discrete_set,
        values=range(0, 1 << 16),
        get_process=_to_int,
    )

    measurement_events = Instrument.measurement(
        "STAT:MEAS?",
        """Get the measurement event register (int; reading it clears it): the events since the
        last read (MEAS_BFL buffer full / sweep done, MEAS_VSC source compliance, MEAS_INT
        interlock asserted, MEAS_ROF overflow).""",
        get_process=_to_int,
    )

    measurement_condition = Instrument.measurement(
        "STAT:MEAS:COND?",
        """Get the measurement condition register (int): the conditions now (e.g. MEAS_VSC
        while the source is in compliance).""",
        get_process=_to_int,
    )

    def _connection_call(self, what: str, call: Callable[[], object]) -> object:
        """``call()`` on the VISA session; failures become ConnectionLost / InstrumentTimeout
        naming ``what``."""
        try:
            return call()
        except (pyvisa.errors.VisaIOError, pyvisa.errors.InvalidSession, OSError) as exc:
            raise self._transport_error(exc, what) from exc

    def read_status_byte(self) -> int | None:
        """The status byte by serial poll (pyvisa ``read_stb()`` on the session): a bus-level
        operation the 6487 answers even while a built-in sweep keeps it from reading commands.
        None when the interface has no serial poll: a session that is not GPIB (RS-232, where
        a VISA library would emulate it with ``*STB?``, a query held back by a running sweep),
        or one that reports the operation unsupported."""
        connection = getattr(self.adapter, "connection", None)
        read_stb = getattr(connection, "read_stb", None)
        kind = getattr(connection, "interface_type", None)
        gpib = pyvisa.constants.InterfaceType.gpib
        if read_stb is None or (isinstance(kind, pyvisa.constants.InterfaceType) and kind != gpib):
            return None
        try:
            return int(read_stb())  # type: ignore[arg-type]
        except pyvisa.errors.VisaIOError as exc:
            if exc.error_code == pyvisa.constants.StatusCode.error_nonsupported_operation:
                return None
            raise self._transport_error(exc, "serial poll") from exc
        except (pyvisa.errors.InvalidSession, OSError) as exc:
            raise self._transport_error(exc, "serial poll") from exc

    def device_clear(self) -> None:
        """Send a device clear (pyvisa ``clear()``: GPIB SDC): the 6487 empties its input
        buffer and output queue and drops commands waiting to be processed (Keithley's
        "DCL/SDC" description), so the next command is read at once. Settings are kept."""
        self._settings.clear()
        clear = getattr(getattr(self.adapter, "connection", None), "clear", None)
        if clear is not None:
            self._connection_call("device clear", clear)
        self.flush_read_buffer()

    def flush_read_buffer(self) -> None:
        """Drop a reply the adapter may still hold (after a device clear)."""
        flush = getattr(self.adapter, "flush_read_buffer", None)
        if flush is not None:
            flush()

    # ---------------------------------------------------------------- zero check / correct

    zero_check_enabled = _bool_control(
        "SYST:ZCH",
        """Control zero check (bool). It must be off to measure; on is the safe idle state.""",
    )

    zero_correct_enabled = _bool_control(
        "SYST:ZCOR",
        """Control whether the acquired zero correction is applied (bool).""",
    )

    def zero_correct(self) -> None:
        """Acquire and enable zero correction with the manual's sequence, verbatim: ``SYST:ZCH
        ON``, ``RANG 2e-9``, ``INIT``, ``SYST:ZCOR:ACQ``, ``SYST:ZCOR ON``, ``RANG:AUTO ON``,
        ``SYST:ZCH OFF``; then checks the error queue. Leaves autorange on and zero check off."""
        self.restore_single_trigger()
        for command in (
            "SYST:ZCH ON",
            "RANG 2e-9",
            "INIT",
            "SYST:ZCOR:ACQ",
            "SYST:ZCOR ON",
            "RANG:AUTO ON",
            "SYST:ZCH OFF",
        ):
            self.write(command)
        self.check_errors("zero_correct: SYST:ZCH ON ... SYST:ZCH OFF")

    # ---------------------------------------------------------------- sense

    current_range = _range_control(
        "SENS:CURR:RANG",
        "%g",
        """Control the current measurement range (float, A, 0 to 2.1e-2; the 6487 picks the
        lowest range 2 nA ... 20 mA whose full scale 2.1e-9 ... 2.1e-2 A holds the value, e.g.
        2e-9 selects 2 nA). Setting it turns autorange off.""",
        CURRENT_RANGE,
    )

    current_autorange = _bool_control(
        "SENS:CURR:RANG:AUTO",
        """Control current autoranging (bool).""",
    )

    nplc = _range_control(
        "SENS:CURR:NPLC",
        "%g",
        """Control the integration time (float, power-line cycles: 0.01 to 6 on 60 Hz mains,
        0.01 to 5 on 50 Hz once :meth:`read_line_frequency` has read the mains frequency).""",
        NPLC_RANGE,
        dynamic=True,
    )

    filter_enabled = _bool_control(
        "SENS:AVER",
        """Control the averaging filter (bool).""",
    )

    filter_count = _range_control(
        "SENS:AVER:COUN",
        "%d",
        """Control the averaging filter count (int, readings, 2 to 100).""",
        range(2, 101),
    )

    filter_type = _choice_control(
        "SENS:AVER:TCON",
        """Control the averaging filter type (str, "REP" repeating or "MOV" moving).""",
        ("REP", "MOV"),
    )

    # ---------------------------------------------------------------- readings

    data_elements = Instrument.control(
        "FORM:ELEM?",
        "FORM:ELEM %s",
        """Control the data elements of READ?/FETC?/TRAC:DATA? replies (str, comma-separated
        subset of READ, UNIT, TIME, STAT, VSO, or ALL/DEF; e.g. "READ,VSO"). Replies list the
        elements in the order given (manual p. 6-7). Parse replies with :func:`parse_readings`.""",
        validator=_elements_validator,
        values=_ELEMENT_ORDER,
        get_process=lambda reply: ",".join(normalise_elements(str(reply))),
        cast=str,
        maxsplit=0,
    )

    def initiate(self) -> None:
        """Start the trigger model (``INIT``): take ``trigger_count`` readings, or run the
        armed built-in sweep (noted before the write: from then on the sweep may be running,
        and an abort starts with a device clear)."""
        if self._sweep_armed:
            self._sweep_started = True
        self.write("INIT")

    def parse_reply(self, text: str, command: str) -> list[Reading]:
        """Parse a ``READ?``/``TRAC:DATA?`` reply in the ``READ,VSO`` format the procedures
        set, honouring :attr:`strict_readings`; GarbledReply names ``command``."""
        return parse_readings(
            text, "READ,VSO", strict=self.strict_readings, instrument=self.name, command=command
        )

    def take_reading(self) -> Reading:
        """Take one reading (``READ?``) in the ``READ,VSO`` format: current A, source V.
        GarbledReply unless the reply holds exactly one reading."""
        readings = self.parse_reply(self._query("READ?"), "READ?")
        if len(readings) != 1:
            raise GarbledReply(
                fault_message(self.name, "READ?", f"expected 1 reading, got {len(readings)}"),
                instrument=self.name,
                command="READ?",
            )
        return readings[0]

    # ---------------------------------------------------------------- trigger model and buffer

    _trigger_count = _range_control(
        "TRIG:COUN",
        "%d",
        """Control the trigger count (int, readings per INIT, 1 to 2048).""",
        range(1, MAX_SWEEP_POINTS + 1),
    )

    @property
    def trigger_count(self) -> int:
        """Control the trigger count (int, readings per INIT, 1 to 2048). A count other than 1
        is noted, so that :meth:`restore_single_trigger` can undo it."""
        return self._trigger_count

    @trigger_count.setter
    def trigger_count(self, count: int) -> None:
        self._trigger_count = count
        self._trigger_count_dirty = count != 1

    def restore_single_trigger(self) -> None:
        """Write ``TRIG:COUN 1`` if this driver left another count (e.g. a built-in sweep that
        was aborted before restoring it), so that ``READ?`` takes one reading."""
        if self._trigger_count_dirty:
            self.trigger_count = 1

    trigger_delay = _range_control(
        "TRIG:DEL",
        "%g",
        """Control the trigger delay before each reading (float, s, 0 to 999.9999).""",
        DELAY_RANGE,
    )

    buffer_points = _range_control(
        "TRAC:POIN",
        "%d",
        """Control the buffer size (int, readings, 1 to 3000).""",
        range(1, BUFFER_MAX_POINTS + 1),
    )

    buffer_count = Instrument.measurement(
        "TRAC:POIN:ACT?",
        """Get the number of readings stored in the buffer (int).""",
        get_process=_to_int,
    )

    buffer_feed = _choice_control(
        "TRAC:FEED",
        """Control what feeds the buffer (str, "SENS" the readings or "CALC" the math
        results).""",
        ("SENS", "CALC"),
    )

    buffer_feed_control = _choice_control(
        "TRAC:FEED:CONT",
        """Control buffer filling (str, "NEXT" store the next readings until full, "NEV"
        never).""",
        ("NEXT", "NEV"),
    )

    buffer_data = Instrument.measurement(
        "TRAC:DATA?",
        """Get the buffer's readings as the raw reply (str, in the ``data_elements`` format;
        parse with :meth:`parse_reply`).""",
        cast=str,
        maxsplit=0,
    )

    def clear_buffer(self) -> None:
        """Clear the reading buffer (``TRAC:CLE``)."""
        self.write("TRAC:CLE")

    # ---------------------------------------------------------------- built-in sweep

    sweep_start = _voltage_control(
        "SOUR:VOLT:SWE:STAR",
        "sweep_start",
        """Control the built-in sweep start level (float, V, -505 to 505), refused beyond
        ``limits.max_voltage`` before anything is written.""",
    )

    sweep_stop = _voltage_control(
        "SOUR:VOLT:SWE:STOP",
        "sweep_stop",
        """Control the built-in sweep stop level (float, V, -505 to 505), refused beyond
        ``limits.max_voltage`` before anything is written.""",
    )

    sweep_step = Instrument.control(
        "SOUR:VOLT:SWE:STEP?",
        "SOUR:VOLT:SWE:STEP %g",
        """Control the built-in sweep step (float, V, > 0 to 1010; always positive, the
        direction follows start/stop).""",
        validator=_positive_step,
        values=(0.0, 2 * HARDWARE_MAX_VOLTAGE),
        get_process=_to_float,
    )

    sweep_delay = _range_control(
        "SOUR:VOLT:SWE:DEL",
        "%g",
        """Control the built-in sweep delay between setting a step and reading (float, s,
        0 to 999.9999).""",
        DELAY_RANGE,
    )

    sweep_running = Instrument.measurement(
        "SOUR:VOLT:SWE:STAT?",
        """Get whether a built-in sweep is running (bool). Not for waiting on a sweep: the 6487
        may answer a query only when the sweep ends (see :meth:`wait_for_sweep`).""",
        get_process=_to_bool,
        cast=str,
    )

    @property
    def sweep_armed(self) -> bool:
        """Get whether this driver armed a built-in sweep it has not seen finish (bool)."""
        return self._sweep_armed

    def arm_sweep(self) -> None:
        """Arm the built-in sweep (``SOUR:VOLT:SWE:INIT``: the source goes to operate at the
        start level); :meth:`initiate` runs it, :meth:`wait_for_sweep` waits for its end. The
        sweep is noted as armed *before* the write, so that a write that fails after reaching
        the instrument is still followed by ``SOUR:VOLT:SWE:ABOR`` (:meth:`source_off`)."""
        self._sweep_armed = True
        self.write("SOUR:VOLT:SWE:INIT")

    def wait_for_sweep(
        self,
        timeout: float,
        poll_interval: float,
        points: int,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        """Wait for the running built-in sweep of ``points`` steps to end; return the
        measurement event register read at its end (``STAT:MEAS?``: MEAS_BFL, MEAS_VSC ...).

        The 6487 executes commands one after another (Reference Manual p. 11-5: ``*WAI`` "is
        effectively a No-Op"), so a query sent while the sweep runs may be answered only when it
        ends, and a sweep longer than the VISA timeout would time out on its first query. The
        wait therefore uses the status model: the procedure enables MEAS_BFL (buffer full, "also
        set when a voltage sweep has been completed", p. 10-14) in ``STAT:MEAS:ENAB``, and this
        polls the status byte by serial poll (:meth:`read_status_byte`, answered while the
        instrument is busy) until its measurement summary bit (B0, p. 10-8) is set. Where the
        interface has no serial poll (RS-232), it queries ``STAT:MEAS?`` with the VISA timeout
        raised to the time left, so a reply held back until the sweep ends still arrives.

        :param timeout: seconds to wait (wall clock); on expiry the sweep is aborted (device
            clear, ``SOUR:VOLT:SWE:ABOR``) and InstrumentTimeout raised.
        :param poll_interval: seconds between polls (0: poll at once again).
        :param points: steps of the sweep (for messages).
        :param should_stop: called between polls; when it returns True (or raises) the sweep
            is aborted the same way and :class:`StopRequested` raised (or its exception).
        """
        deadline = time.monotonic() + timeout
        events = 0
        try:
            while True:
                stb = self.read_status_byte()
                if stb is None:
                    with self._visa_timeout(max(deadline - time.monotonic(), 0.0)):
                        events |= self.measurement_events
                    if events & MEAS_BFL:
                        break
                elif stb & STB_MSB:
                    events |= self.measurement_events
                    break
                if should_stop is not None and should_stop():
                    raise StopRequested(f"{self.name}: built-in sweep of {points} points stopped")
                if time.monotonic() >= deadline:
                    raise InstrumentTimeout(
                        fault_message(
                            self.name,
                            "serial poll" if stb is not None else "STAT:MEAS?",
                            f"built-in sweep of {points} points still running after {timeout:g} s "
                            "(aborted: device clear, SOUR:VOLT:SWE:ABOR)",
                        ),
                        instrument=self.name,
                        command="serial poll" if stb is not None else "STAT:MEAS?",
                    )
                if poll_interval > 0:
                    time.sleep(poll_interval)
        except BaseException:
            try:
                self.abort_sweep()
            except InstrumentError as exc:
                log.warning("%s: could not abort the sweep (%s)", self.name, exc)
            raise
        self._sweep_armed = self._sweep_started = False
        return events

    @contextmanager
    def _visa_timeout(self, seconds: float) -> Iterator[None]:
        """Raise the session's VISA timeout to ``seconds`` (never lower it) for one query."""
        connection = getattr(self.adapter, "connection", None)
        before = getattr(connection, "timeout", None)
        if not isinstance(before, (int, float)) or before >= seconds * 1000:
            yield
            return
        connection.timeout = seconds * 1000 + 1000  # type: ignore[union-attr]
        try:
            yield
        finally:
            connection.timeout = before  # type: ignore[union-attr]

    def abort_sweep(self) -> None:
        """Abort a built-in sweep (``SOUR:VOLT:SWE:ABOR``; puts the source in standby), after a
        device clear when it may be running (the 6487 would otherwise read the abort only after
        the commands and queries waiting ahead of it)."""
        if self._sweep_started:
            try:
                self.device_clear()
            except InstrumentError as exc:
                log.warning("%s: device clear failed (%s)", self.name, exc)
        self.write("SOUR:VOLT:SWE:ABOR")
        self._sweep_armed = self._sweep_started = False

    # ---------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        """Bring the instrument to a safe state: abort a sweep this driver armed
        (device clear if it may be running, ``SOUR:VOLT:SWE:ABOR``), source off
        (``SOUR:VOLT:STAT OFF``), zero check on
        (``SYST:ZCH ON``). Never raises because of a dead bus: failures are logged and the next
        step is tried, so it is safe on every exit path (``with Keithley6487(...)`` calls it)."""
        self._settings.clear()  # a safety path assumes nothing: every command is sent
        commands = ["SOUR:VOLT:STAT OFF", "SYST:ZCH ON"]
        if self._sweep_armed:
            commands.insert(0, "SOUR:VOLT:SWE:ABOR")
        if self._sweep_started:
            try:
                self.device_clear()
            except Exception as exc:  # noqa: BLE001 - shutdown must reach every step
                log.warning("%s: shutdown could not clear the device (%s)", self.name, exc)
        for command in commands:
            try:
                self.write(command)
            except Exception as exc:  # noqa: BLE001 - shutdown must reach every step
                log.warning(
                    "%s: shutdown could not send %r (%s); continuing", self.name, command, exc
                )
        self._sweep_armed = self._sweep_started = False
        super().shutdown()
