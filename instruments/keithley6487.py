"""Keithley 6487 picoammeter / voltage source driver (pymeasure, SCPI over GPIB or RS-232).

Every setting is a pymeasure ``Instrument.control``/``measurement`` with a strict validator.
Everything that sets a voltage or a current limit checks the bench's
:class:`~instruments.errors.SafetyLimits` first and raises
:class:`~instruments.errors.SafetyLimitError` before a single byte reaches the bus.

.. code-block:: python

    from instruments.errors import SafetyLimits
    from instruments.keithley6487 import Keithley6487, cyclic_points

    with Keithley6487("GPIB0::22::INSTR", limits=SafetyLimits(8.0, 1e-3), timeout=10_000) as k:
        k.check_errors()
        k.zero_correct()
        readings = k.sweep_points(cyclic_points(6.0, -6.0, 0.1), compliance=2.5e-4,
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
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pyvisa
from pymeasure.instruments import Instrument, SCPIMixin
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from .errors import (
    ComplianceError,
    ConnectionLost,
    GarbledReply,
    InstrumentError,
    InstrumentErrorQueue,
    InstrumentTimeout,
    SafetyLimitError,
    SafetyLimits,
    fault_message,
)

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = [
    "COMPLIANCE_VSO",
    "CURRENT_LIMITS",
    "Identity",
    "Keithley6487",
    "MAX_SWEEP_POINTS",
    "NAN_SENTINEL",
    "OVERFLOW_SENTINEL",
    "Reading",
    "SIM_DEFINITION",
    "SIM_RESOURCE",
    "Segment",
    "cyclic_points",
    "parse_readings",
    "plan_segments",
    "snap_compliance",
]

MODEL = "Keithley 6487"
#: pyvisa-sim definition of a 6487 (open with ``pyvisa.ResourceManager(f"{SIM_DEFINITION}@sim")``).
SIM_DEFINITION = Path(__file__).resolve().parent / "sim" / "keithley6487.yaml"
#: The GPIB resource the simulated 6487 answers on (``ASRL1::INSTR`` is its RS-232 twin).
SIM_RESOURCE = "GPIB0::22::INSTR"

#: Largest source level of the instrument (V, 500 V range).
HARDWARE_MAX_VOLTAGE = 505.0
#: Source ranges (V) and the largest level each can output (V).
SOURCE_RANGES = (10, 50, 500)
SOURCE_RANGE_MAX_LEVEL = {10: 10.1, 50: 50.5, 500: 505.0}
#: The only current limits the source has (A); requests snap up to one of these.
CURRENT_LIMITS = (25e-6, 2.5e-4, 2.5e-3, 25e-3)
#: Largest current limit on the 50 V and 500 V ranges (A).
HIGH_RANGE_MAX_CURRENT_LIMIT = 2.5e-3
#: Sense current range parameter (A): the 6487 picks the lowest of its ranges 2 nA ... 20 mA
#: whose full scale (2.1e-9 ... 2.1e-2) holds the value; 2e-9 (used by the manual's zero-correct
#: sequence) selects the 2 nA range.
CURRENT_RANGE = (0.0, 2.1e-2)
#: Integration time (power-line cycles; 6 at 60 Hz, the instrument allows only 5 at 50 Hz).
NPLC_RANGE = (0.01, 6.0)
#: Built-in sweep delay per step (s).
SWEEP_DELAY_RANGE = (0.0, 999.9999)
#: Trigger count limit (TRIG:COUN 1..2048) bounds a built-in sweep; the buffer holds 3000.
MAX_SWEEP_POINTS = 2048
BUFFER_MAX_POINTS = 3000
#: Sentinels in replies: overflow, not-a-number, and the V-source value meaning "in compliance".
OVERFLOW_SENTINEL = 9.9e37
NAN_SENTINEL = 9.91e37
COMPLIANCE_VSO = -999.0

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


def _normalise_elements(elements: str | Sequence[str]) -> tuple[str, ...]:
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
    return ",".join(_normalise_elements(value))


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
    names = [n for n in _normalise_elements(elements) if n != "UNIT"]
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


def _fmt(value: float) -> str:
    """Format a number the way it is written to the bus (``%g``, 6 significant digits)."""
    return format(float(value), "g")


def _as_number(value: object, setting: str, unit: str) -> float:
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{setting} must be a number in {unit}, got {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{setting} must be a number in {unit}, got {value!r}") from None


@dataclass(frozen=True)
class _VoltageBounds:
    """Per-instance ``values`` of the voltage controls: bench and instrument limits."""

    setting: str
    bench: float  # |V| allowed by SafetyLimits (0 refuses everything but 0 V)
    hardware: float = HARDWARE_MAX_VOLTAGE


def _checked_voltage(value: object, bounds: _VoltageBounds) -> float:
    """Validate a source voltage: finite and within the bench limit (else SafetyLimitError),
    within the instrument's ±505 V (else ValueError). Returns the value as written (``%g``);
    the rounded value must respect the limit too."""
    setting = bounds.setting
    v = _as_number(value, setting, "V")
    if not math.isfinite(v):
        raise SafetyLimitError(
            f"{setting} = {value!r} V refused: not a finite number", setting=setting, value=v
        )
    sent = float(_fmt(v))
    if max(abs(v), abs(sent)) > bounds.bench:
        raise SafetyLimitError(
            f"{setting} = {v:g} V refused: beyond the bench limit |V| <= {bounds.bench:g} V "
            "(SafetyLimits.max_voltage)",
            setting=setting,
            value=v,
            limit=bounds.bench,
        )
    if abs(sent) > bounds.hardware:
        raise ValueError(
            f"{setting} = {v:g} V is beyond the 6487's source (|V| <= {bounds.hardware:g} V)"
        )
    return sent


@dataclass(frozen=True)
class _ComplianceBounds:
    """Per-instance ``values`` of the current-limit control."""

    setting: str
    bench: float  # A, SafetyLimits.max_compliance (0 refuses everything)
    allowed: tuple[float, ...] = CURRENT_LIMITS


def snap_compliance(
    value: float, max_compliance: float, setting: str = "compliance", allowed=CURRENT_LIMITS
) -> float:
    """Return the smallest allowed 6487 current limit >= ``value`` (A).

    The snapped value must not exceed the bench limit ``max_compliance``: the result is never
    above what the caller asked *and* the bench allows, or SafetyLimitError is raised (before any
    bus traffic). A request above the largest limit (25 mA) raises ValueError.
    """
    a = _as_number(value, setting, "A")
    if not math.isfinite(a) or a <= 0:
        raise SafetyLimitError(
            f"{setting} = {value!r} A refused: a current limit must be finite and > 0 A",
            setting=setting,
            value=a,
            limit=max_compliance,
        )
    if a > max_compliance:
        raise SafetyLimitError(
            f"{setting} = {a:g} A refused: beyond the bench limit {max_compliance:g} A "
            "(SafetyLimits.max_compliance)",
            setting=setting,
            value=a,
            limit=max_compliance,
        )
    candidates = [c for c in sorted(allowed) if c >= a * (1 - 1e-9)]
    if not candidates:
        raise ValueError(
            f"{setting} = {a:g} A is beyond the 6487's largest current limit {max(allowed):g} A"
        )
    snapped = candidates[0]
    if snapped > max_compliance * (1 + 1e-12):
        raise SafetyLimitError(
            f"{setting} = {a:g} A refused: the 6487 would snap it up to {snapped:g} A, beyond the "
            f"bench limit {max_compliance:g} A (SafetyLimits.max_compliance); the 6487 only has "
            f"limits {', '.join(_fmt(c) for c in allowed)} A",
            setting=setting,
            value=a,
            limit=max_compliance,
        )
    return snapped


def _compliance_validator(value: object, bounds: _ComplianceBounds) -> float:
    return snap_compliance(value, bounds.bench, bounds.setting, bounds.allowed)  # type: ignore[arg-type]


def _positive_step(value: object, values: tuple[float, float]) -> float:
    step = _as_number(value, "sweep_step", "V")
    if not (math.isfinite(step) and values[0] < step <= values[1]):
        raise ValueError(f"sweep_step = {value!r} V must be > 0 and <= {values[1]:g} V")
    return step


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


def _filter_type(reply: object) -> str:
    text = str(reply).strip().upper()
    for name in ("REP", "MOV"):
        if text.startswith(name):
            return name
    raise _garbled("REP or MOV", reply)


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


# --------------------------------------------------------------------------------------------
# Sweep planning helpers
# --------------------------------------------------------------------------------------------


def cyclic_points(v_max: float, v_min: float, step: float) -> np.ndarray:
    """Voltages of a cyclic I-V sweep 0 → +v_max → 0 → v_min → 0 (V).

    :param v_max: positive apex (V, >= 0; 0 skips the positive lobe).
    :param v_min: negative apex (V, <= 0; 0 gives an up-only sweep 0 → v_max → 0).
    :param step: step (V, > 0); both apexes must be whole multiples of it.
    :returns: 1-D float array, starting and ending at 0 V, each point once.
    """
    v_max, v_min, step = float(v_max), float(v_min), float(step)
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be finite and > 0 V, got {step!r}")
    if not (math.isfinite(v_max) and v_max >= 0 and math.isfinite(v_min) and v_min <= 0):
        raise ValueError(f"need v_max >= 0 >= v_min, got v_max={v_max!r}, v_min={v_min!r}")
    if v_max == 0 and v_min == 0:
        raise ValueError("v_max and v_min are both 0 V: nothing to sweep")

    def steps_to(apex: float) -> int:
        ratio = abs(apex) / step
        n = round(ratio)
        if not math.isclose(ratio, n, rel_tol=1e-9, abs_tol=1e-9):
            raise ValueError(f"apex {apex:g} V is not a whole number of {step:g} V steps")
        return n

    n_up, n_down = steps_to(v_max), steps_to(v_min)
    ks = np.concatenate(
        [
            np.arange(0, n_up + 1),  # 0 → +v_max
            np.arange(n_up - 1, -1, -1),  # back to 0
            -np.arange(1, n_down + 1),  # 0 → v_min
            -np.arange(n_down - 1, -1, -1),  # back to 0
        ]
    )
    points = np.round(ks * step, 12)
    points[points == 0] = 0.0  # no -0.0
    return points


@dataclass(frozen=True)
class Segment:
    """A run of a sweep list: ``kind`` "builtin" (the 6487's staircase sweep) or "points"
    (point by point); ``first`` is the index of its first point in the list."""

    kind: Literal["builtin", "points"]
    first: int
    voltages: np.ndarray

    @property
    def count(self) -> int:
        return int(self.voltages.size)

    @property
    def start(self) -> float:
        return float(self.voltages[0])

    @property
    def stop(self) -> float:
        return float(self.voltages[-1])

    @property
    def step(self) -> float:
        """Absolute step (V) of a builtin segment."""
        if self.count < 2:
            return 0.0
        return abs(self.stop - self.start) / (self.count - 1)


def _builtin_parameters(start: float, stop: float, step: float) -> tuple[str, str, str, int]:
    """Return the written (start, stop, step) strings and the point count of a staircase.

    Raises ValueError when the span is not a whole number of steps once written to the bus
    (the 6487 runs only complete steps, manual p. 6-11, so the count would be ambiguous).
    """
    s_start, s_stop, s_step = _fmt(start), _fmt(stop), _fmt(step)
    f_start, f_stop, f_step = float(s_start), float(s_stop), float(s_step)
    if not f_step > 0:
        raise ValueError(f"sweep step must be > 0 V, got {step!r}")
    ratio = abs(f_stop - f_start) / f_step
    n_steps = round(ratio)
    if not math.isclose(ratio, n_steps, rel_tol=1e-6, abs_tol=1e-6):
        raise ValueError(
            f"sweep span {s_start} V -> {s_stop} V is not a whole number of {s_step} V steps "
            f"({ratio:.6g}); the 6487 only executes complete steps"
        )
    return s_start, s_stop, s_step, n_steps + 1


def _is_uniform_builtin(v: np.ndarray) -> bool:
    """True when the points are exactly what a built-in sweep with %g parameters produces."""
    try:
        s_start, s_stop, s_step, n = _builtin_parameters(
            v[0], v[-1], abs(v[-1] - v[0]) / (v.size - 1)
        )
    except ValueError:
        return False
    if n != v.size:
        return False
    direction = 1.0 if float(s_stop) >= float(s_start) else -1.0
    expected = float(s_start) + direction * float(s_step) * np.arange(n)
    return bool(np.allclose(expected, v, rtol=1e-6, atol=1e-6))


def plan_segments(
    voltages: Sequence[float] | np.ndarray,
    *,
    builtin_descending: bool = False,
    min_builtin_points: int = 3,
    max_builtin_points: int = MAX_SWEEP_POINTS,
) -> list[Segment]:
    """Split a voltage list into runs for :meth:`Keithley6487.sweep_points`.

    Uniformly spaced ascending runs of at least ``min_builtin_points`` become "builtin"
    segments (at most ``max_builtin_points`` each); descending runs too when
    ``builtin_descending``; everything else is grouped into "points" segments. The segments
    concatenated give back the list in order.
    """
    v = np.asarray(voltages, dtype=float).ravel()
    n = v.size
    segments: list[Segment] = []
    pending: list[int] = []

    def flush() -> None:
        if pending:
            segments.append(Segment("points", pending[0], v[pending[0] : pending[-1] + 1].copy()))
            pending.clear()

    i = 0
    while i < n:
        j = i
        if i + 1 < n:
            d = v[i + 1] - v[i]
            if d > 0 or (builtin_descending and d < 0):
                j = i + 1
                tol = max(1e-9, 1e-6 * abs(d))
                while (
                    j + 1 < n
                    and abs((v[j + 1] - v[j]) - d) <= tol
                    and j + 1 - i < max_builtin_points
                ):
                    j += 1
        length = j - i + 1
        if length >= min_builtin_points and _is_uniform_builtin(v[i : j + 1]):
            flush()
            segments.append(Segment("builtin", i, v[i : j + 1].copy()))
            i = j + 1
        else:
            pending.append(i)
            i += 1
    flush()
    return segments


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
    queue after being set (pymeasure's ``check_set_errors``).
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
        self._trigger_count_dirty = False
        super().__init__(adapter, name, **kwargs)
        self.limits = limits

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
        self.source_current_limit_values = _ComplianceBounds(
            "source_current_limit", limits.max_compliance
        )

    def write(self, command: str, **kwargs) -> None:
        """Write a command; VISA/serial failures become ConnectionLost or InstrumentTimeout."""
        self._last_written = command
        _QUERY.set(command)
        if command != "SYST:ERR?":
            self._last_command = command
        try:
            super().write(command, **kwargs)
        except (pyvisa.errors.VisaIOError, pyvisa.errors.InvalidSession, OSError) as exc:
            raise self._transport_error(exc, command) from exc

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
        """Reset the instrument to its *RST defaults (``*RST``; source off, 10 V range)."""
        self.write("*RST")
        self._sweep_armed = False
        self._trigger_count_dirty = False

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
                    fault_message(self.name, "SYST:ERR?", f"unparseable error entry {reply!r}"),
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

    source_voltage = Instrument.control(
        "SOUR:VOLT?",
        "SOUR:VOLT %g",
        """Control the source level (float, V, -505 to 505 by range: ±10.1 V on the 10 V range,
        ±50.5 V on 50 V, ±505 V on 500 V). Refused with SafetyLimitError beyond
        ``limits.max_voltage`` before anything is written; the error queue is checked after
        setting (a level beyond the present range is an instrument error).""",
        validator=_checked_voltage,
        values=_VoltageBounds("source_voltage", 0.0),
        get_process=_to_float,
        check_set_errors=True,
        dynamic=True,
    )

    source_voltage_range = Instrument.control(
        "SOUR:VOLT:RANG?",
        "SOUR:VOLT:RANG %g",
        """Control the source range (int, V, strict 10, 50 or 500; *RST 10). The 50 V and
        500 V ranges always use the interlock and allow at most 2.5 mA current limit.""",
        validator=strict_discrete_set,
        values=SOURCE_RANGES,
        get_process=_to_int,
        check_set_errors=True,
    )

    source_current_limit = Instrument.control(
        "SOUR:VOLT:ILIM?",
        "SOUR:VOLT:ILIM %g",
        """Control the source current limit (compliance) (float, A; the 6487 has only 25e-6,
        2.5e-4, 2.5e-3 and 25e-3 A, max 2.5e-3 A on the 50/500 V ranges). A request snaps UP to
        the smallest limit >= the request; if that exceeds ``limits.max_compliance`` the request
        is refused with SafetyLimitError before anything is written.""",
        validator=_compliance_validator,
        values=_ComplianceBounds("source_current_limit", 0.0),
        get_process=_to_float,
        check_set_errors=True,
        dynamic=True,
    )

    source_enabled = _bool_control(
        "SOUR:VOLT:STAT",
        """Control whether the source is operating (bool; ON/OFF). Off, the output is a
        low-impedance 0 V.""",
    )

    interlock_enabled = _bool_control(
        "SOUR:VOLT:INT",
        """Control the interlock on the 10 V range (bool). It is always on for 50/500 V;
        turning it off there is error -221 "Settings conflict" (raised: errors are checked).""",
        check_set_errors=True,
    )

    interlock_tripped = Instrument.measurement(
        "SOUR:VOLT:INT:FAIL?",
        """Get whether the interlock stopped the source (bool).""",
        get_process=_to_bool,
        cast=str,
    )

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
        """Acquire and enable zero correction with the manual's sequence: ``SYST:ZCH ON``,
        ``RANG 2e-9``, ``INIT``, ``SYST:ZCOR:ACQ``, ``SYST:ZCOR ON``, ``RANG:AUTO ON``,
        ``SYST:ZCH OFF``; then checks the error queue. Leaves autorange on and zero check off."""
        if self._trigger_count_dirty:  # an aborted built-in sweep left TRIG:COUN n behind
            self._write_trigger_count(1)
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

    current_range = Instrument.control(
        "SENS:CURR:RANG?",
        "SENS:CURR:RANG %g",
        """Control the current measurement range (float, A, 0 to 2.1e-2; the 6487 picks the
        lowest range 2 nA ... 20 mA whose full scale 2.1e-9 ... 2.1e-2 A holds the value, e.g.
        2e-9 selects 2 nA). Setting it turns autorange off.""",
        validator=strict_range,
        values=CURRENT_RANGE,
        get_process=_to_float,
    )

    current_autorange = _bool_control(
        "SENS:CURR:RANG:AUTO",
        """Control current autoranging (bool).""",
    )

    nplc = Instrument.control(
        "SENS:CURR:NPLC?",
        "SENS:CURR:NPLC %g",
        """Control the integration time (float, power-line cycles, 0.01 to 6 at 60 Hz; the
        6487 accepts at most 5 at 50 Hz).""",
        validator=strict_range,
        values=NPLC_RANGE,
        get_process=_to_float,
    )

    filter_enabled = _bool_control(
        "SENS:AVER",
        """Control the averaging filter (bool).""",
    )

    filter_count = Instrument.control(
        "SENS:AVER:COUN?",
        "SENS:AVER:COUN %d",
        """Control the averaging filter count (int, readings, 2 to 100).""",
        validator=strict_discrete_set,
        values=range(2, 101),
        get_process=_to_int,
    )

    filter_type = Instrument.control(
        "SENS:AVER:TCON?",
        "SENS:AVER:TCON %s",
        """Control the averaging filter type (str, "REP" repeating or "MOV" moving).""",
        validator=strict_discrete_set,
        values=("REP", "MOV"),
        set_process=str,
        get_process=_filter_type,
        cast=str,
    )

    # ---------------------------------------------------------------- data format

    data_elements = Instrument.control(
        "FORM:ELEM?",
        "FORM:ELEM %s",
        """Control the data elements of READ?/FETC?/TRAC:DATA? replies (str, comma-separated
        subset of READ, UNIT, TIME, STAT, VSO, or ALL/DEF; e.g. "READ,VSO"). Replies list the
        elements in the order given (manual p. 6-7). Parse replies with :func:`parse_readings`.""",
        validator=_elements_validator,
        values=_ELEMENT_ORDER,
        get_process=lambda reply: ",".join(_normalise_elements(str(reply))),
        cast=str,
        maxsplit=0,
    )

    # ---------------------------------------------------------------- trigger model and buffer

    trigger_count = Instrument.control(
        "TRIG:COUN?",
        "TRIG:COUN %d",
        """Control the trigger count (int, readings per INIT, 1 to 2048).""",
        validator=strict_discrete_set,
        values=range(1, MAX_SWEEP_POINTS + 1),
        get_process=_to_int,
    )

    buffer_points = Instrument.control(
        "TRAC:POIN?",
        "TRAC:POIN %d",
        """Control the buffer size (int, readings, 1 to 3000).""",
        validator=strict_discrete_set,
        values=range(1, BUFFER_MAX_POINTS + 1),
        get_process=_to_int,
    )

    buffer_count = Instrument.measurement(
        "TRAC:POIN:ACT?",
        """Get the number of readings stored in the buffer (int).""",
        get_process=_to_int,
    )

    # ---------------------------------------------------------------- built-in sweep settings

    sweep_start = Instrument.control(
        "SOUR:VOLT:SWE:STAR?",
        "SOUR:VOLT:SWE:STAR %g",
        """Control the built-in sweep start level (float, V, -505 to 505), refused beyond
        ``limits.max_voltage`` before anything is written.""",
        validator=_checked_voltage,
        values=_VoltageBounds("sweep_start", 0.0),
        get_process=_to_float,
        dynamic=True,
    )

    sweep_stop = Instrument.control(
        "SOUR:VOLT:SWE:STOP?",
        "SOUR:VOLT:SWE:STOP %g",
        """Control the built-in sweep stop level (float, V, -505 to 505), refused beyond
        ``limits.max_voltage`` before anything is written.""",
        validator=_checked_voltage,
        values=_VoltageBounds("sweep_stop", 0.0),
        get_process=_to_float,
        dynamic=True,
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

    sweep_delay = Instrument.control(
        "SOUR:VOLT:SWE:DEL?",
        "SOUR:VOLT:SWE:DEL %g",
        """Control the built-in sweep delay between setting a step and reading (float, s,
        0 to 999.9999).""",
        validator=strict_range,
        values=SWEEP_DELAY_RANGE,
        get_process=_to_float,
    )

    sweep_running = Instrument.measurement(
        "SOUR:VOLT:SWE:STAT?",
        """Get whether a built-in sweep is running (bool).""",
        get_process=_to_bool,
        cast=str,
    )

    def source_off(self) -> None:
        """Switch the source off (``SOUR:VOLT:STAT OFF``), aborting first a built-in sweep this
        driver armed and did not see finish (``SOUR:VOLT:SWE:ABOR``): after a fault mid-sweep
        the 6487 would otherwise refuse the next sweep with +840 "Not allowed with sweep on"."""
        if self._sweep_armed:
            self.abort_sweep()
        self.source_enabled = False

    def abort_sweep(self) -> None:
        """Abort a running built-in sweep (``SOUR:VOLT:SWE:ABOR``; puts the source in standby)."""
        self.write("SOUR:VOLT:SWE:ABOR")
        self._sweep_armed = False

    # ---------------------------------------------------------------- measuring

    def _check_range_compliance(self, v_abs_max: float, compliance: float) -> None:
        """Refuse (before any bus traffic) a current limit the needed source range lacks."""
        if v_abs_max > SOURCE_RANGE_MAX_LEVEL[10] and compliance > HIGH_RANGE_MAX_CURRENT_LIMIT:
            raise ValueError(
                f"{v_abs_max:g} V needs the 50/500 V range, where the current limit is at most "
                f"{HIGH_RANGE_MAX_CURRENT_LIMIT:g} A; asked for {compliance:g} A"
            )

    def _compliance(self, compliance: float) -> float:
        return snap_compliance(compliance, self.limits.max_compliance, "compliance")

    def _voltage(self, voltage: float, setting: str) -> float:
        return _checked_voltage(voltage, _VoltageBounds(setting, self.limits.max_voltage))

    def _write_trigger_count(self, n: int) -> None:
        self.write(f"TRIG:COUN {n:d}")
        self._trigger_count_dirty = n != 1

    def _parse(self, text: str, command: str) -> list[Reading]:
        return parse_readings(
            text, "READ,VSO", strict=self.strict_readings, instrument=self.name, command=command
        )

    def _read_one(self) -> Reading:
        readings = self._parse(self._query("READ?"), "READ?")
        if len(readings) != 1:
            raise GarbledReply(
                fault_message(self.name, "READ?", f"expected 1 reading, got {len(readings)}"),
                instrument=self.name,
                command="READ?",
            )
        return readings[0]

    def _configure_point(self, voltage: float, compliance: float) -> None:
        """Set limit, level, operate, zero check off and the data format (no error check)."""
        if self._trigger_count_dirty:
            self._write_trigger_count(1)
        self.write(f"SOUR:VOLT:ILIM {_fmt(compliance)}")
        self.write(f"SOUR:VOLT {_fmt(voltage)}")
        self.write("SOUR:VOLT:STAT ON")
        self.write("SYST:ZCH OFF")
        self.write("FORM:ELEM READ,VSO")

    def _raise_if_compliance(self, reading: Reading, voltage: float, raise_on: bool) -> None:
        if raise_on and reading.compliance:
            raise ComplianceError(
                fault_message(
                    self.name,
                    f"SOUR:VOLT {_fmt(voltage)}",
                    "source in compliance (current limit reached)",
                ),
                instrument=self.name,
                command=f"SOUR:VOLT {_fmt(voltage)}",
            )

    def measure_at(
        self,
        voltage: float,
        *,
        compliance: float,
        nplc: float | None = None,
        raise_on_compliance: bool = False,
    ) -> Reading:
        """Source ``voltage`` and take one reading.

        Checks the limits first (nothing is written if they refuse), then writes
        ``[SENS:CURR:NPLC n]``, ``SOUR:VOLT:ILIM c``, ``SOUR:VOLT v``, ``SOUR:VOLT:STAT ON``,
        ``SYST:ZCH OFF``, ``FORM:ELEM READ,VSO``, queries ``READ?`` and checks the error queue.

        The source is LEFT ON at ``voltage`` (a sweep continues from here); call
        :meth:`shutdown` or set ``source_enabled = False`` when done. The source range is not
        changed: levels beyond ±10.1 V need ``source_voltage_range`` set first.

        :param voltage: source level (V, |V| <= limits.max_voltage).
        :param compliance: current limit (A); snapped up to 25 µA/250 µA/2.5 mA/25 mA, refused
            if the snapped value exceeds limits.max_compliance.
        :param nplc: integration time (PLC, 0.01 to 6) or None to keep the present one.
        :param raise_on_compliance: raise ComplianceError if the source was in compliance.
        :returns: the :class:`Reading` (current A, voltage_source V).
        """
        v = self._voltage(voltage, "measure_at voltage")
        c = self._compliance(compliance)
        self._check_range_compliance(abs(v), c)
        if nplc is not None:
            nplc = strict_range(_as_number(nplc, "nplc", "PLC"), NPLC_RANGE)
            self.write(f"SENS:CURR:NPLC {_fmt(nplc)}")
        self._configure_point(v, c)
        reading = self._read_one()
        self.check_errors(f"measure_at: SOUR:VOLT:ILIM {_fmt(c)} ... READ?")
        self._raise_if_compliance(reading, v, raise_on_compliance)
        return reading

    def _measure_points(
        self, voltages: np.ndarray, compliance: float, delay: float
    ) -> Iterator[Reading]:
        """Point-by-point run: full configuration once, then ``SOUR:VOLT v`` + ``READ?`` per
        point; a ``delay`` > 0 is the instrument's trigger delay (``TRIG:DEL``, so every READ?
        settles ``delay`` s at the new level before integrating; set back to 0 at the end); the
        error queue is checked at the end of the run."""
        for k, v in enumerate(voltages):
            if k == 0:
                self._configure_point(float(v), compliance)
                if delay > 0:
                    self.write(f"TRIG:DEL {_fmt(delay)}")
            else:
                self.write(f"SOUR:VOLT {_fmt(v)}")
            yield self._read_one()
        if delay > 0:
            self.write("TRIG:DEL 0")
        self.check_errors(
            f"sweep_points: SOUR:VOLT:ILIM {_fmt(compliance)} ... SOUR:VOLT {_fmt(voltages[-1])}, READ?"
        )

    def _run_builtin(
        self,
        start: float,
        stop: float,
        step: float,
        *,
        delay: float,
        compliance: float,
        timeout: float | None,
        poll_interval: float,
    ) -> list[Reading]:
        """Configure, run and read back one built-in staircase (arguments already checked)."""
        s_start, s_stop, s_step, n = _builtin_parameters(start, stop, step)
        if timeout is None:
            timeout = 10.0 + n * (delay + 1.0)
        self.write(f"SOUR:VOLT:ILIM {_fmt(compliance)}")
        self.write(f"SOUR:VOLT:SWE:STAR {s_start}")
        self.write(f"SOUR:VOLT:SWE:STOP {s_stop}")
        self.write(f"SOUR:VOLT:SWE:STEP {s_step}")
        self.write(f"SOUR:VOLT:SWE:DEL {_fmt(delay)}")
        self.write("FORM:ELEM READ,VSO")
        self._write_trigger_count(n)
        self.write("TRAC:CLE")
        self.write(f"TRAC:POIN {n:d}")
        self.write("TRAC:FEED SENS")
        self.write("TRAC:FEED:CONT NEXT")
        self.write("SYST:ZCH OFF")
        # Configuration errors stop us before the source is armed.
        self.check_errors(f"sweep: SOUR:VOLT:ILIM {_fmt(compliance)} ... SYST:ZCH OFF")
        self.write("SOUR:VOLT:SWE:INIT")
        self._sweep_armed = True
        self.write("INIT")
        deadline = time.monotonic() + timeout
        while _to_bool(self._query("SOUR:VOLT:SWE:STAT?")):
            if time.monotonic() >= deadline:
                try:
                    self.abort_sweep()
                except InstrumentError as exc:
                    log.warning("%s: could not abort the sweep (%s)", self.name, exc)
                raise InstrumentTimeout(
                    fault_message(
                        self.name,
                        "SOUR:VOLT:SWE:STAT?",
                        f"built-in sweep of {n} points still running after {timeout:g} s "
                        "(aborted with SOUR:VOLT:SWE:ABOR)",
                    ),
                    instrument=self.name,
                    command="SOUR:VOLT:SWE:STAT?",
                )
            if poll_interval > 0:
                time.sleep(poll_interval)
        self._sweep_armed = False
        text = self._query("TRAC:DATA?")
        self._write_trigger_count(1)
        self.check_errors("sweep: SOUR:VOLT:SWE:INIT ... TRAC:DATA?, TRIG:COUN 1")
        readings = self._parse(text, "TRAC:DATA?")
        if len(readings) != n:
            raise GarbledReply(
                fault_message(
                    self.name, "TRAC:DATA?", f"expected {n} buffer readings, got {len(readings)}"
                ),
                instrument=self.name,
                command="TRAC:DATA?",
            )
        return readings

    def sweep(
        self,
        start: float,
        stop: float,
        step: float,
        *,
        delay: float = 0.0,
        compliance: float,
        raise_on_compliance: bool = False,
        timeout: float | None = None,
        poll_interval: float = 0.05,
    ) -> list[Reading]:
        """Run the 6487's built-in staircase sweep and return one reading per step.

        Sequence: ``SOUR:VOLT:ILIM``, ``SOUR:VOLT:SWE:STAR/STOP/STEP/DEL``,
        ``FORM:ELEM READ,VSO``, ``TRIG:COUN n``, ``TRAC:CLE``, ``TRAC:POIN n``,
        ``TRAC:FEED SENS``, ``TRAC:FEED:CONT NEXT``, ``SYST:ZCH OFF``, error check,
        ``SOUR:VOLT:SWE:INIT`` (arms, source to operate), ``INIT``, poll ``SOUR:VOLT:SWE:STAT?``
        until 0, ``TRAC:DATA?``, ``TRIG:COUN 1``, error check.

        Assumption (INSTRUMENTS.md marks it unverified; manual pp. 6-9/6-10 not checked): the
        sweep takes ``TRIG:COUN n`` with ``TRAC:POIN n`` (as the manual's buffer example on
        p. 6-8 does), not ``ARM:COUN n``; ``TRAC:FEED SENS`` + ``TRAC:FEED:CONT NEXT`` enable
        the buffer in case ``SOUR:VOLT:SWE:INIT`` does not. ``TRIG:COUN 1`` is restored after
        the read-back so a later ``READ?`` takes one reading.

        Direction: STEP is always positive; the manual (pp. 6-8, 6-11) says a sweep runs
        downward when start > stop, so this method accepts both directions (not yet verified
        on our bench; :meth:`sweep_points` uses point-by-point for descending runs by default).
        The number of points is round(|stop - start| / step) + 1; the span must be a whole
        number of steps (the 6487 executes only complete steps). The 6487 picks the lowest
        source range holding every point.

        :param start: first level (V); :param stop: last level (V); :param step: step (V, > 0).
        :param delay: settling delay per step before the reading (s, 0 to 999.9999).
        :param compliance: current limit (A), snapped up as in :meth:`measure_at`.
        :param raise_on_compliance: raise ComplianceError if any reading was in compliance.
        :param timeout: seconds to wait for the sweep (default 10 + n·(delay + 1)); on expiry
            the sweep is aborted and InstrumentTimeout raised.
        :param poll_interval: seconds between ``SOUR:VOLT:SWE:STAT?`` polls.
        :returns: n readings, in sweep order. Leaves the source as the sweep left it.
        """
        v0 = self._voltage(start, "sweep start")
        v1 = self._voltage(stop, "sweep stop")
        c = self._compliance(compliance)
        s = _as_number(step, "sweep step", "V")
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"sweep step must be finite and > 0 V (always positive), got {step!r}")
        delay = strict_range(_as_number(delay, "sweep delay", "s"), SWEEP_DELAY_RANGE)
        _, _, _, n = _builtin_parameters(v0, v1, s)
        if n > MAX_SWEEP_POINTS:
            raise ValueError(f"a built-in sweep has at most {MAX_SWEEP_POINTS} points, asked {n}")
        self._check_range_compliance(max(abs(v0), abs(v1)), c)
        readings = self._run_builtin(
            v0, v1, s, delay=delay, compliance=c, timeout=timeout, poll_interval=poll_interval
        )
        for k, reading in enumerate(readings):
            self._raise_if_compliance(
                reading, v0 + math.copysign(k * s, v1 - v0), raise_on_compliance
            )
        return readings

    def sweep_points(
        self,
        voltages: Sequence[float] | np.ndarray,
        *,
        compliance: float,
        delay: float = 0.0,
        on_reading: Callable[[int, Reading], None] | None = None,
        builtin_descending: bool = False,
        raise_on_compliance: bool = False,
        timeout: float | None = None,
        poll_interval: float = 0.05,
    ) -> list[Reading]:
        """Measure at an arbitrary list of voltages, e.g. :func:`cyclic_points`.

        Every voltage and the compliance are checked first (nothing is written if one is
        refused). The list is split by :func:`plan_segments`: uniformly spaced ascending runs
        of >= 3 points use the built-in sweep (:meth:`sweep`, a handful of bus transactions);
        the rest (descending runs, odd points) go point by point: the first point of a run is
        configured as in :meth:`measure_at`, later points send only ``SOUR:VOLT v`` and
        ``READ?`` (``delay`` s apart), and the error queue is checked at the end of each run.

        :param voltages: levels (V), each |V| <= limits.max_voltage.
        :param compliance: current limit (A), snapped up as in :meth:`measure_at`.
        :param delay: settling delay before each reading (s, 0 to 999.9999).
        :param on_reading: called as ``on_reading(index, reading)`` as soon as each reading is
            available (point by point: at once; built-in runs: after the buffer read-back), so
            the caller can write data as it is acquired.
        :param builtin_descending: also run descending runs on the built-in sweep (the manual
            says it can; off until verified on the bench).
        :param raise_on_compliance: raise ComplianceError at the first reading in compliance
            (after on_reading got it).
        :param timeout: per built-in run, see :meth:`sweep`.
        :param poll_interval: see :meth:`sweep`.
        :returns: one reading per voltage, in order. The source is left on.
        """
        v = np.asarray(voltages, dtype=float).ravel()
        if v.size == 0:
            return []
        # Points that are not finite, or within the 6-digit rounding (5e-6) of the bench or
        # instrument limit, get the exact scalar check; it raises for the first bad one.
        edge = min(self.limits.max_voltage, HARDWARE_MAX_VOLTAGE) * (1 - 1e-5)
        for i in np.flatnonzero(~np.isfinite(v) | (np.abs(v) > edge)):
            self._voltage(v[i], f"sweep_points voltages[{i}]")
        c = self._compliance(compliance)
        delay = strict_range(_as_number(delay, "delay", "s"), SWEEP_DELAY_RANGE)
        self._check_range_compliance(float(np.max(np.abs(v))), c)

        readings: list[Reading] = []

        def emit(index: int, reading: Reading) -> None:
            readings.append(reading)
            if on_reading is not None:
                on_reading(index, reading)
            self._raise_if_compliance(reading, float(v[index]), raise_on_compliance)

        for segment in plan_segments(v, builtin_descending=builtin_descending):
            if segment.kind == "builtin":
                run = self._run_builtin(
                    segment.start,
                    segment.stop,
                    segment.step,
                    delay=delay,
                    compliance=c,
                    timeout=timeout,
                    poll_interval=poll_interval,
                )
                for k, reading in enumerate(run):
                    emit(segment.first + k, reading)
            else:
                for k, reading in enumerate(self._measure_points(segment.voltages, c, delay)):
                    emit(segment.first + k, reading)
        return readings

    cyclic_points = staticmethod(cyclic_points)

    # ---------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        """Bring the instrument to a safe state: abort a sweep this driver armed
        (``SOUR:VOLT:SWE:ABOR``), source off (``SOUR:VOLT:STAT OFF``), zero check on
        (``SYST:ZCH ON``). Never raises because of a dead bus: failures are logged and the next
        step is tried, so it is safe on every exit path (``with Keithley6487(...)`` calls it)."""
        commands = ["SOUR:VOLT:STAT OFF", "SYST:ZCH ON"]
        if self._sweep_armed:
            commands.insert(0, "SOUR:VOLT:SWE:ABOR")
        for command in commands:
            try:
                self.write(command)
            except Exception as exc:  # noqa: BLE001 - shutdown must reach every step
                log.warning(
                    "%s: shutdown could not send %r (%s); continuing", self.name, command, exc
                )
        self._sweep_armed = False
        super().shutdown()
