"""Shared exception types and bench safety limits for every instrument driver.

An :class:`InstrumentError` always names the instrument, the command and the fault, e.g.
``Keithley 6487: 'SOUR:VOLT 3' -> -113,"Undefined header"``; build such messages with
:func:`fault_message`. :class:`SafetyLimitError` is a :class:`ValueError` raised *before* anything
is written to the bus when a request exceeds the bench's :class:`SafetyLimits`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ComplianceError",
    "ConnectionLost",
    "GarbledReply",
    "InstrumentError",
    "InstrumentErrorQueue",
    "InstrumentTimeout",
    "InterlockOpen",
    "SafetyLimitError",
    "SafetyLimits",
    "StopRequested",
    "fault_message",
]


def fault_message(instrument: str, command: str | None, fault: str) -> str:
    """Return ``"<instrument>: '<command>' -> <fault>"`` (or ``"<instrument>: <fault>"``)."""
    if command is None:
        return f"{instrument}: {fault}"
    return f"{instrument}: {command!r} -> {fault}"


class InstrumentError(Exception):
    """An instrument reported or caused a fault.

    Attributes: ``instrument`` (str), ``command`` (str | None, the command that caused or preceded
    the fault), ``code`` (int | None, the instrument's error code where it gave one).
    """

    def __init__(
        self,
        message: str,
        *,
        instrument: str,
        command: str | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.instrument = instrument
        self.command = command
        self.code = code

    def _state(self) -> dict:
        return {"instrument": self.instrument, "command": self.command, "code": self.code}

    def __reduce__(self):
        # Keyword-only constructor arguments: the default Exception pickling would lose them.
        return (_rebuild, (type(self), self.message, self._state()))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[Exception], message: str, state: dict) -> Exception:
    """Unpickle an exception whose constructor takes keyword-only context."""
    return cls(message, **state)


class InstrumentErrorQueue(InstrumentError):
    """The SCPI error queue was not empty.

    ``code`` is the first error's code; ``errors`` holds every ``(code, message)`` read.
    """

    def __init__(
        self, message: str, *, errors: Sequence[tuple[int, str]] = (), **context: Any
    ) -> None:
        """``context``: ``instrument``, ``command``, ``code`` as for :class:`InstrumentError`."""
        super().__init__(message, **context)
        self.errors: tuple[tuple[int, str], ...] = tuple((int(c), str(m)) for c, m in errors)

    def _state(self) -> dict:
        return {**super()._state(), "errors": self.errors}


class InstrumentTimeout(InstrumentError):
    """The instrument did not answer (or finish an operation) in time."""


class GarbledReply(InstrumentError):
    """A reply could not be parsed; the message quotes the reply."""


class ConnectionLost(InstrumentError):
    """The bus or session to the instrument failed (cable, power, closed session)."""


class ComplianceError(InstrumentError):
    """The source hit its current limit (raised when the caller asked to raise, or when the
    instrument's two compliance indicators disagree so that no reading of a run can be
    trusted)."""


class InterlockOpen(InstrumentError):
    """The source's interlock is asserted (fixture lid open, interlock cable missing): on the
    Keithley 6487's 50/500 V ranges the source then stays in high impedance without any error
    in the error queue, so a driver checks ``SOUR:VOLT:INT:FAIL?`` after switching it on and
    raises this after switching it off again."""


class StopRequested(RuntimeError):
    """A driver procedure stopped early because its ``should_stop()`` callback returned True;
    the instrument was made safe first (e.g. a running built-in sweep aborted). Not an
    instrument fault: the caller (the crossbar layer's abort) asked for it."""


class SafetyLimitError(ValueError):
    """A request beyond the bench's configured limits, refused before anything was written.

    Attributes: ``setting`` (which setting), ``value`` (requested), ``limit`` (the bench limit).
    """

    def __init__(
        self,
        message: str,
        *,
        setting: str | None = None,
        value: float | None = None,
        limit: float | None = None,
    ) -> None:
        super().__init__(message)
        self.setting = setting
        self.value = value
        self.limit = limit

    def __reduce__(self):
        state = {"setting": self.setting, "value": self.value, "limit": self.limit}
        return (_rebuild, (type(self), str(self), state))


@dataclass(frozen=True)
class SafetyLimits:
    """The bench's limits, enforced by the drivers before anything reaches the bus.

    :param max_voltage: largest absolute source voltage allowed (V, > 0).
    :param max_compliance: largest current limit (compliance) allowed (A, > 0).
    """

    max_voltage: float
    max_compliance: float

    def __post_init__(self) -> None:
        for name in ("max_voltage", "max_compliance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"SafetyLimits.{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"SafetyLimits.{name} must be finite and > 0, got {value!r}")

    def check_voltage(self, value: float, setting: str = "voltage") -> float:
        """Return ``value`` as float if ``|value| <= max_voltage``; else raise SafetyLimitError."""
        v = _finite(value, setting, "V")
        if abs(v) > self.max_voltage:
            raise SafetyLimitError(
                f"{setting} = {v:g} V refused: beyond the bench limit |V| <= "
                f"{self.max_voltage:g} V (SafetyLimits.max_voltage)",
                setting=setting,
                value=v,
                limit=self.max_voltage,
            )
        return v

    def check_compliance(self, value: float, setting: str = "compliance") -> float:
        """Return ``value`` as float if ``0 < value <= max_compliance``; else raise."""
        a = _finite(value, setting, "A")
        if a <= 0:
            raise SafetyLimitError(
                f"{setting} = {a:g} A refused: a current limit must be > 0 A",
                setting=setting,
                value=a,
                limit=self.max_compliance,
            )
        if a > self.max_compliance:
            raise SafetyLimitError(
                f"{setting} = {a:g} A refused: beyond the bench limit "
                f"{self.max_compliance:g} A (SafetyLimits.max_compliance)",
                setting=setting,
                value=a,
                limit=self.max_compliance,
            )
        return a


def _finite(value: float, setting: str, unit: str) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{setting} must be a number in {unit}, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{setting} must be a number in {unit}, got {value!r}") from None
    if not math.isfinite(v):
        raise SafetyLimitError(
            f"{setting} = {value!r} {unit} refused: not a finite number", setting=setting, value=v
        )
    return v
