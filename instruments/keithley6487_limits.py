"""The Keithley 6487's source and sense rules, stated once.

Constants and pure functions, no bus traffic and no pymeasure: the driver's controls validate
with them, the crossbar backend and the CLI check a request with them before a bench is opened,
and the simulated 6487 (:mod:`sim_backends.keithley_twin`) enforces them.

Facts from /work/shared/paper/INSTRUMENTS.md (6487 reference manual): source ranges 10/50/500 V
holding ±10.1/±50.5/±505 V; current limits 25 µA, 250 µA, 2.5 mA and 25 mA, at most 2.5 mA on
the 50 and 500 V ranges; NPLC 0.01 to 6 on 60 Hz mains, 0.01 to 5 on 50 Hz (the driver reads
the line frequency, ``SYST:LFR?``, at connect; :func:`nplc_range`); trigger and sweep delays 0
to 999.9999 s; ``TRIG:COUN`` 1 to 2048; buffer 1 to 3000 readings. The driver writes numbers with ``%g``
(6 significant digits), so a level reaches the instrument as :func:`written_level` gives it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import SafetyLimitError

__all__ = [
    "BUFFER_MAX_POINTS",
    "CURRENT_LIMITS",
    "CURRENT_RANGE",
    "CURRENT_RANGES",
    "CURRENT_RANGE_OVERRANGE",
    "DELAY_RANGE",
    "HARDWARE_MAX_VOLTAGE",
    "HIGH_RANGE_MAX_CURRENT_LIMIT",
    "LINE_FREQUENCIES",
    "MAX_SWEEP_POINTS",
    "NPLC_RANGE",
    "SOURCE_RANGES",
    "SOURCE_RANGE_MAX_LEVEL",
    "as_number",
    "check_delay",
    "check_level",
    "check_nplc",
    "check_range_compliance",
    "format_level",
    "largest_limit_within",
    "max_limit_on_range",
    "nplc_range",
    "snap_compliance",
    "source_range_for",
    "written_level",
]

#: Source ranges (V) and the largest level each can output (V).
SOURCE_RANGES = (10, 50, 500)
SOURCE_RANGE_MAX_LEVEL = {10: 10.1, 50: 50.5, 500: 505.0}
#: Largest source level of the instrument (V, 500 V range).
HARDWARE_MAX_VOLTAGE = SOURCE_RANGE_MAX_LEVEL[500]
#: The only current limits the source has (A); a request snaps up to one of these.
CURRENT_LIMITS = (25e-6, 2.5e-4, 2.5e-3, 25e-3)
#: Largest current limit on the 50 V and 500 V ranges (A).
HIGH_RANGE_MAX_CURRENT_LIMIT = 2.5e-3
#: Nominal sense ranges (A, 2 nA ... 20 mA); each reads up to CURRENT_RANGE_OVERRANGE times it.
CURRENT_RANGES = (2e-9, 2e-8, 2e-7, 2e-6, 2e-5, 2e-4, 2e-3, 2e-2)
CURRENT_RANGE_OVERRANGE = 1.05
#: ``SENS:CURR:RANG`` parameter (A): the 6487 picks the lowest range whose full scale
#: (2.1e-9 ... 2.1e-2) holds the value.
CURRENT_RANGE = (0.0, 2.1e-2)
#: Integration time (power-line cycles; 6 at 60 Hz, the instrument allows only 5 at 50 Hz):
#: the widest range, for checks made before the line frequency is known; see nplc_range.
NPLC_RANGE = (0.01, 6.0)
#: Mains frequencies the 6487 runs on (Hz) and the largest NPLC on each (Reference Manual: rate
#: SLOW = 6 PLC at 60 Hz, 5 PLC at 50 Hz; INSTRUMENTS.md "0.01…6 (60 Hz; 5 at 50 Hz)").
LINE_FREQUENCIES = (50, 60)
_NPLC_MAX = {50: 5.0, 60: 6.0}
#: Trigger delay (``TRIG:DEL``) and built-in sweep delay per step (``SOUR:VOLT:SWE:DEL``), s.
DELAY_RANGE = (0.0, 999.9999)
#: Trigger count limit (TRIG:COUN 1..2048) bounds a built-in sweep; the buffer holds 3000.
MAX_SWEEP_POINTS = 2048
BUFFER_MAX_POINTS = 3000


def format_level(value: float) -> str:
    """The text a number is written to the bus as (``%g``, 6 significant digits)."""
    return format(float(value), "g")


def written_level(value: float) -> float:
    """The value the 6487 receives for ``value`` (``%g`` rounding; e.g. 7.0000004 -> 7.0)."""
    return float(format_level(value))


def as_number(value: object, setting: str, unit: str) -> float:
    """``value`` as float; TypeError (naming ``setting`` and ``unit``) for bools, strings,
    bytes and anything ``float()`` refuses."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{setting} must be a number in {unit}, got {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{setting} must be a number in {unit}, got {value!r}") from None


def check_level(value: object, max_voltage: float, setting: str = "voltage") -> float:
    """A source level (V) as the 6487 is sent it (``%g``), if both the request and its written
    form are within the bench limit ``|V| <= max_voltage`` (else SafetyLimitError, also for a
    level that is not finite) and the instrument's ±505 V (else ValueError); TypeError for
    anything but a number. ``setting`` names the level in the messages."""
    v = as_number(value, setting, "V")
    if not math.isfinite(v):
        raise SafetyLimitError(
            f"{setting} = {value!r} V refused: not a finite number", setting=setting, value=v
        )
    sent = written_level(v)
    if max(abs(v), abs(sent)) > max_voltage:
        raise SafetyLimitError(
            f"{setting} = {v:g} V refused: beyond the bench limit |V| <= {max_voltage:g} V "
            "(SafetyLimits.max_voltage)",
            setting=setting,
            value=v,
            limit=max_voltage,
        )
    if abs(sent) > HARDWARE_MAX_VOLTAGE:
        raise ValueError(
            f"{setting} = {v:g} V is beyond the 6487's source (|V| <= {HARDWARE_MAX_VOLTAGE:g} V)"
        )
    return sent


def _in_range(value: object, bounds: tuple[float, float], setting: str, unit: str) -> float:
    x = as_number(value, setting, unit)
    lo, hi = bounds
    if not lo <= x <= hi:  # also refuses NaN
        raise ValueError(f"{setting} must be in [{lo:g}, {hi:g}] {unit}, got {value!r}")
    return x


def nplc_range(line_frequency: float | None = None) -> tuple[float, float]:
    """The NPLC range (power-line cycles) on ``line_frequency`` Hz mains: (0.01, 5) at 50 Hz,
    (0.01, 6) at 60 Hz; None (not known yet): :data:`NPLC_RANGE`. ValueError for a frequency
    that is neither 50 nor 60 Hz."""
    if line_frequency is None:
        return NPLC_RANGE
    hz = int(round(float(line_frequency)))
    if hz not in _NPLC_MAX or not math.isclose(float(line_frequency), hz, abs_tol=0.5):
        raise ValueError(f"line frequency must be 50 or 60 Hz, got {line_frequency!r}")
    return (NPLC_RANGE[0], _NPLC_MAX[hz])


def check_nplc(nplc: float, setting: str = "nplc", line_frequency: float | None = None) -> float:
    """``nplc`` (power-line cycles) as float if within :func:`nplc_range` of ``line_frequency``
    (0.01 to 6 at 60 Hz or unknown, 0.01 to 5 at 50 Hz); else ValueError."""
    return _in_range(nplc, nplc_range(line_frequency), setting, "PLC")


def check_delay(delay: float, setting: str = "delay") -> float:
    """A trigger or sweep delay (s) as float if within 0 to 999.9999 s; else ValueError."""
    return _in_range(delay, DELAY_RANGE, setting, "s")


def source_range_for(v_abs: float) -> int:
    """The lowest source range (10, 50 or 500 V) holding the level ``|V| = v_abs``; ValueError
    beyond 505 V."""
    v = abs(float(v_abs))
    for rng in SOURCE_RANGES:
        if v <= SOURCE_RANGE_MAX_LEVEL[rng]:
            return rng
    raise ValueError(f"{v_abs:g} V is beyond the 6487's source (|V| <= {HARDWARE_MAX_VOLTAGE:g} V)")


def max_limit_on_range(source_range: int) -> float:
    """Largest current limit (A) on a source range: 25 mA on 10 V, 2.5 mA on 50 and 500 V."""
    if source_range not in SOURCE_RANGES:
        raise ValueError(f"source range must be one of {SOURCE_RANGES} V, got {source_range!r}")
    return CURRENT_LIMITS[-1] if source_range == 10 else HIGH_RANGE_MAX_CURRENT_LIMIT


def check_range_compliance(v_abs: float, limit: float, what: str | None = None) -> None:
    """ValueError (to raise before anything is written) when the source range a level
    ``|V| = v_abs`` needs lacks the current limit ``limit`` (A): beyond 10.1 V the 50/500 V
    ranges allow at most 2.5 mA. ``what`` prefixes the message."""
    rng = source_range_for(v_abs)
    most = max_limit_on_range(rng)
    if limit > most:
        prefix = f"{what}: " if what else ""
        raise ValueError(
            f"{prefix}{v_abs:g} V needs the 6487's {rng} V range (the 50/500 V ranges allow a "
            f"current limit of at most {most:g} A); asked for {limit:g} A"
        )


def largest_limit_within(max_compliance: float) -> float | None:
    """The largest 6487 current limit (A) not above ``max_compliance``, or None when even
    25 µA is above it."""
    allowed = [c for c in CURRENT_LIMITS if c <= max_compliance]
    return max(allowed) if allowed else None


def snap_compliance(
    value: float,
    max_compliance: float,
    setting: str = "compliance",
    allowed: Sequence[float] = CURRENT_LIMITS,
) -> float:
    """The smallest allowed 6487 current limit >= ``value`` (A): what the instrument applies.

    The result is never above what the bench allows: SafetyLimitError (naming ``setting``) if
    ``value`` is not finite and > 0, exceeds ``max_compliance``, or snaps up beyond it. A
    request above the largest limit (25 mA) within the bench limit raises ValueError.
    """
    a = as_number(value, setting, "A")
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
            f"limits {', '.join(format_level(c) for c in allowed)} A",
            setting=setting,
            value=a,
            limit=max_compliance,
        )
    return snapped
