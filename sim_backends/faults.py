"""Fault injection for the instrument twins: timeouts, garbled replies, lost connections,
instrument error codes and compliance hits, planned per instrument and fully seeded.

A :class:`FaultPlan` says *when* faults happen, in transactions of the instrument concerned
(one SCPI message on the 6487 twin — a query and its reply are one transaction; one pydwf call
on the AD2 twin). A :class:`FaultInjector` (one per twin) counts the transactions and tells the
twin what to do. What each fault looks like on each twin:

==================  ===================================================  =====================
fault               Keithley 6487 twin                                   AD2 twin
==================  ===================================================  =====================
timeout             the read raises ``pyvisa`` ``VisaIOError``            the scope never
                    (``VI_ERROR_TMO``): the driver raises                 finishes: the driver
                    ``InstrumentTimeout``                                 raises
                                                                          ``InstrumentTimeout``
garbled reply       the reply is random bytes instead of numbers         the capture returns
                                                                          random samples
connection lost     this and every later transaction raises              pydwf
                    ``VisaIOError`` (``VI_ERROR_CONN_LOST``)              ``DwfLibraryError``
                                                                          on every later call
error code          ``error_code`` is queued (read by ``SYST:ERR?``)     one ``DwfLibraryError``
                                                                          with that code
compliance          every later reading is in compliance                 (no current limit)
                    (clamped, VSO −999)
interlock open      the fixture lid is open: on the 50/500 V ranges      —
                    the source stays high-Z, ``SOUR:VOLT:INT:FAIL?`` 1
no device           —                                                    enumeration finds no
                                                                          AD2: opening it fails
open row            —                                                    that row's switch is
                                                                          stuck open (the line
                                                                          floats whatever is
                                                                          routed to it)
==================  ===================================================  =====================

Counts: ``*_after = N`` fires at the first eligible transaction after N transactions (the
(N+1)-th; ``0`` = the very first). Timeouts and garbled replies are one-shot; ``*_rate`` adds
independent per-transaction probabilities (seeded by ``seed``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from crossbar.config import FaultSettings

__all__ = ["SCPI_ERRORS", "FaultInjector", "FaultPlan"]

#: Messages of the SCPI / 6487 error codes the twins produce or inject.
SCPI_ERRORS: dict[int, str] = {
    -100: "Command error",
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -200: "Execution error",
    -221: "Settings conflict",
    -222: "Parameter data out of range",
    -224: "Illegal parameter value",
    -230: "Data corrupt or stale",
    -350: "Queue overflow",
    -410: "Query INTERRUPTED",
    -420: "Query UNTERMINATED",
    +840: "Not allowed with sweep on",
}


@dataclass(frozen=True)
class FaultPlan(FaultSettings):
    """When faults happen on one twin (counts in transactions; None = never).

    :param timeout_after: the first read (6487) / acquisition (AD2) after N transactions times
        out (once).
    :param garbled_after: the first reply / capture after N transactions is garbage (once).
    :param connection_lost_after: transaction N+1 and every later one fail (a dead bus).
    :param error_after: after N transactions the instrument reports ``error_code`` (once).
    :param error_code: the SCPI code queued (6487) or the ``DwfErrorCode`` value raised (AD2).
    :param compliance_after: every reading after N transactions is in compliance (6487).
    :param timeout_rate: probability (0…1) that any read times out.
    :param garbled_rate: probability (0…1) that any reply is garbled.
    :param seed: seed of the random faults and of the garbage bytes.
    :param interlock_open: the 6487's interlock (fixture lid) is open (6487).
    :param no_device: no Analog Discovery 2 is connected (AD2).
    :param open_row: the switch-matrix switch of this row is stuck open (AD2 plan: the matrix
        is driven by the AD2), None = none.

    The fields (names, types, defaults) are those of the bench file's
    :class:`crossbar.config.FaultSettings`, declared once there.
    """

    def __post_init__(self) -> None:
        for name in (
            "timeout_after",
            "garbled_after",
            "connection_lost_after",
            "error_after",
            "compliance_after",
            "open_row",
        ):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError(f"FaultPlan.{name} must be None or an int >= 0, got {v!r}")
        for name in ("timeout_rate", "garbled_rate"):
            v = getattr(self, name)
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"FaultPlan.{name} must be in [0, 1], got {v!r}")

    @classmethod
    def from_mapping(cls, data: Any) -> FaultPlan:
        """Build from a mapping or any object with the same attribute names (e.g. a bench
        configuration's fault settings); None gives the empty plan."""
        if data is None:
            return cls()
        names = [f.name for f in fields(cls)]
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(names))
            if unknown:
                raise ValueError(f"unknown FaultPlan keys {unknown}; allowed {names}")
            return cls(**data)
        return cls(**{n: getattr(data, n) for n in names if hasattr(data, n)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    """Counts one twin's transactions and decides which planned fault fires.

    The twin calls :meth:`transaction` once per transaction (it raises nothing itself; the twin
    turns the answer into its own kind of failure) and the ``take_*`` methods at the points where
    a fault of that kind can show.
    """

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.plan = plan or FaultPlan()
        self.rng = np.random.default_rng(self.plan.seed)
        self.count = 0  # transactions so far (including the current one)
        self._one_shots_done: set[str] = set()  # the one-shot faults that have fired
        self.fired: list[tuple[int, str]] = []  # (transaction, kind) of every fault that fired

    def transaction(self) -> None:
        """Count one transaction."""
        self.count += 1

    def _due(self, after: int | None) -> bool:
        return after is not None and self.count > after

    @property
    def connection_lost(self) -> bool:
        """True from transaction ``connection_lost_after + 1`` on."""
        lost = self._due(self.plan.connection_lost_after)
        if lost and not any(kind == "connection_lost" for _, kind in self.fired):
            self.fired.append((self.count, "connection_lost"))
        return lost

    def _one_shot(self, kind: str, after: int | None) -> bool:
        """True (once) at the first call after ``after`` transactions."""
        if kind in self._one_shots_done or not self._due(after):
            return False
        self._one_shots_done.add(kind)
        return True

    def _take(self, kind: str, after: int | None, rate: float) -> bool:
        """Whether fault ``kind`` fires now: its one-shot after ``after`` transactions, else
        with probability ``rate`` (0…1); a fault that fires is logged in :attr:`fired`."""
        hit = self._one_shot(kind, after) or (rate > 0 and self.rng.random() < rate)
        if hit:
            self.fired.append((self.count, kind))
        return hit

    def take_timeout(self) -> bool:
        """Whether the present read times out (consumes the one-shot timeout)."""
        return self._take("timeout", self.plan.timeout_after, self.plan.timeout_rate)

    def take_garbled(self) -> bool:
        """Whether the present reply is garbled (consumes the one-shot fault)."""
        return self._take("garbled", self.plan.garbled_after, self.plan.garbled_rate)

    def take_error(self) -> int | None:
        """The error code to report now (once), or None."""
        if self._one_shot("error", self.plan.error_after):
            self.fired.append((self.count, "error"))
            return int(self.plan.error_code)
        return None

    @property
    def compliance(self) -> bool:
        """True when readings must be forced into compliance."""
        return self._due(self.plan.compliance_after)

    def garbage(self, n: int = 16) -> str:
        """``n`` random printable non-numeric bytes (a garbled reply)."""
        alphabet = np.array(list("#$%&'()*/:;<=>?@[]^_`{|}~GHJKLMNOPQRSTVWXYZ"))
        return "".join(self.rng.choice(alphabet, size=n))
