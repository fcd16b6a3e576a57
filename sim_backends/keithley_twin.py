"""A simulated Keithley 6487: a pymeasure ``Adapter`` that speaks the driver's SCPI subset.

:class:`Keithley6487Twin` is plugged into the real driver in place of the VISA adapter
(``Keithley6487(Keithley6487Twin(circuit), limits=...)``); it parses every command, keeps the
instrument state, and answers queries from a circuit: a :class:`~sim_backends.bench_sim.SimBench`
(the switch matrix routes the 6487's source and ammeter to crossbar lines) or, standalone, a
:class:`ResistorLoad`.

Modelled (facts from INSTRUMENTS.md; the twin's own assumptions are marked):

* ``*IDN?``, ``*RST``, ``*CLS``, ``*OPC?``; ``SYST:ERR?`` pops the error queue (10 entries,
  −350 "Queue overflow" when full); unknown or malformed headers → −113 "Undefined header";
  numbers out of range → −222 "Parameter data out of range"; values not in a set (or not
  numbers) → −224 "Illegal parameter value"; missing parameter → −109; a parameter on a
  command that takes none → −108; a query whose reply was not read, followed by a new
  command → −410 "Query INTERRUPTED".
* Source: ``SOUR:VOLT`` (within the range: ±10.1/50.5/505 V), ``SOUR:VOLT:RANG 10|50|500``,
  ``SOUR:VOLT:ILIM`` (snaps up to 25 µA, 250 µA, 2.5 mA, 25 mA; > 2.5 mA on 50/500 V → −221),
  ``SOUR:VOLT:STAT`` (operate; off = low-impedance 0 V), interlock (``SOUR:VOLT:INT``,
  ``:FAIL?``; off on 50/500 V → −221; the simulated lid is closed unless
  ``interlock_closed=False``).
* Sense: ``SENS:CURR:RANG`` (2 nA … 20 mA decades, setting it turns autorange off),
  ``:RANG:AUTO``, ``:NPLC`` (0.01 … 6), ``SENS:AVER[:COUN|:TCON]``, ``SENS:MED[:RANK]``; the
  ``SENS``/``CURR``/``DC`` nodes are optional as in the manual's ``RANG 2e-9``.
* Readings: ``READ?`` (= ``INIT`` + ``FETC?``), ``INIT``, ``FETC?``, ``MEAS?``;
  ``TRIG:COUN`` readings per ``INIT``; ``FORM:ELEM`` (READ, UNIT → ``A`` suffix, TIME, STAT,
  VSO) in the order given. The current is what the circuit gives (compliance-clamped by the
  source's limit: VSO −999), plus instrument noise ``σ = (noise_ppm·1e-6·range + floor) /
  sqrt(NPLC·averages)``. Beyond the range with autorange off the reading is the overflow
  sentinel ``+9.9E37``. With zero check on the input is shunted: readings are noise around
  0 A (``floor`` only). STAT (twin assumption): bit 0 overflow, bit 3 compliance.
* Buffer: ``TRAC:POIN``, ``TRAC:CLE``, ``TRAC:FEED SENS``, ``TRAC:FEED:CONT NEXT|NEV``,
  ``TRAC:POIN:ACT?``, ``TRAC:DATA?`` (all stored readings in the FORM:ELEM format).
* Built-in staircase sweep: ``SOUR:VOLT:SWE:STAR|STOP|STEP|CENT|SPAN|DEL``,
  ``SOUR:VOLT:SWE:INIT`` (arms, source to operate at the start level), ``INIT`` runs it (one
  buffer reading per step, downward when start > stop), ``SOUR:VOLT:SWE:STAT?`` is 1 while it
  runs, ``SOUR:VOLT:SWE:ABOR`` stops it. Every source/trigger/trace/INIT command (not queries)
  during the sweep → +840 "Not allowed with sweep on". Twin assumption: the sweep ignores
  ``TRIG:COUN`` (it runs every step) and leaves the source on at the last level.

Time (virtual clock): every transaction (one message written; a query's reply is part of it)
costs ``latency_s``; a reading costs ``NPLC/60 s × averages`` (+ ``TRIG:DEL``); a sweep step
``DEL + NPLC/60·averages + step_overhead_s``, elapsing while the host polls; a
``SOUR:VOLT:SWE:STAT?`` answered 1 charges ``poll_wait_s`` (the host's wait before its next
poll, which the driver spends in wall-clock ``time.sleep`` — pass it ``poll_interval=0``); a
read that times out costs ``timeout_s``. The device physics follows the same clock (the
circuit applies the present biasing for every elapsed interval).

Faults (:class:`~sim_backends.faults.FaultPlan`): timeouts and lost connections raise
``pyvisa.errors.VisaIOError`` (``VI_ERROR_TMO`` / ``VI_ERROR_CONN_LOST``) as a VISA adapter
would; garbled replies are random non-numeric bytes; error codes are queued; compliance forces
readings into compliance.

Records: :attr:`commands` (every message that reached the instrument, in order), :attr:`replies`,
:attr:`transactions`; state: :attr:`output_on`, :attr:`source_voltage`, :attr:`output_voltage`.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyvisa
from pymeasure.adapters import Adapter

from sim_backends.clock import VirtualClock
from sim_backends.faults import SCPI_ERRORS, FaultInjector, FaultPlan

__all__ = [
    "CURRENT_LIMITS",
    "CURRENT_RANGES",
    "IDN",
    "Keithley6487Twin",
    "ResistorLoad",
    "SmuCircuit",
]

IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 6487,4126713,A04  Feb  4 2005 16:52:50/A02  /E"
CURRENT_RANGES = (2e-9, 2e-8, 2e-7, 2e-6, 2e-5, 2e-4, 2e-3, 2e-2)
CURRENT_LIMITS = (25e-6, 2.5e-4, 2.5e-3, 25e-3)
SOURCE_RANGES = {10: 10.1, 50: 50.5, 500: 505.0}
OVERFLOW = 9.9e37
OVERRANGE = 1.05  # a range reads up to 105 % of its nominal value
STATUS_OVERFLOW = 1
STATUS_COMPLIANCE = 8
ELEMENT_ORDER = ("READ", "UNIT", "TIME", "STAT", "VSO")


class SmuCircuit(Protocol):
    """What the twin needs from the circuit it is wired to (SimBench implements it)."""

    def set_smu(self, voltage: float, on: bool, i_limit: float, *, at: float | None = None) -> None:
        """The 6487 source output: ``voltage`` V when ``on`` (current limit ``i_limit`` A),
        else a low-impedance 0 V; takes effect at virtual time ``at`` (default now)."""

    def measure_smu(self, duration_s: float, *, at: float | None = None) -> tuple[float, bool]:
        """Integrate the ammeter current over ``duration_s`` from ``at``: (A into the ammeter,
        source in compliance)."""


class ResistorLoad:
    """A standalone circuit: the 6487's source across ``resistance_ohm`` into its ammeter
    (for twin tests without a crossbar). Compliance clamps the current at the limit."""

    def __init__(self, resistance_ohm: float = 1e6) -> None:
        self.resistance_ohm = float(resistance_ohm)
        self.voltage = 0.0
        self.on = False
        self.i_limit = math.inf

    def set_smu(self, voltage: float, on: bool, i_limit: float, *, at: float | None = None) -> None:
        self.voltage, self.on, self.i_limit = float(voltage), bool(on), float(i_limit)

    def measure_smu(self, duration_s: float, *, at: float | None = None) -> tuple[float, bool]:
        v = self.voltage if self.on else 0.0
        i = v / self.resistance_ohm
        if self.on and abs(i) > self.i_limit:
            return math.copysign(self.i_limit, i), True
        return i, False


# --------------------------------------------------------------------------------------------
# Command parsing
# --------------------------------------------------------------------------------------------

_KEYWORDS = [
    "SOURce", "VOLTage", "RANGe", "ILIMit", "STATe", "INTerlock", "FAIL", "SYSTem", "ZCHeck",
    "ZCORrect", "ACQuire", "SENSe", "CURRent", "DC", "AUTO", "NPLCycles", "AVERage", "COUNt",
    "TCONtrol", "MEDian", "RANK", "FORMat", "ELEMents", "DATA", "SWEep", "STARt", "STOP",
    "STEP", "DELay", "CENTer", "SPAN", "INITiate", "ABORt", "TRIGger", "TRACe", "POINts",
    "ACTual", "CLEar", "FEED", "CONTrol", "ERRor", "NEXT", "ARM", "IMMediate", "LEVel",
    "AMPLitude", "FETCh", "READ", "MEASure", "UPPer", "LAYer", "SEQuence",
]  # fmt: skip
_FORMS: dict[str, str] = {}
for _kw in _KEYWORDS:
    _short = "".join(ch for ch in _kw if ch.isupper() or ch.isdigit())
    _FORMS[_short] = _short
    _FORMS[_kw.upper()] = _short
_DROP_ANYWHERE = {"LEV", "IMM", "AMPL", "UPP", "NEXT", "SEQ", "LAY"}

# canonical header -> (kind, parameter spec); kind: "set" (command with params), "cmd" (no
# params), "query" (query only), "both" (settable and queryable)
_COMMANDS = {
    "*IDN?": "query", "*RST": "cmd", "*CLS": "cmd", "*OPC?": "query", "*OPC": "cmd",
    "*WAI": "cmd", "*TRG": "cmd",
    "SOUR:VOLT": "both", "SOUR:VOLT:RANG": "both", "SOUR:VOLT:ILIM": "both",
    "SOUR:VOLT:STAT": "both", "SOUR:VOLT:INT": "both", "SOUR:VOLT:INT:FAIL?": "query",
    "SOUR:VOLT:SWE:STAR": "both", "SOUR:VOLT:SWE:STOP": "both", "SOUR:VOLT:SWE:STEP": "both",
    "SOUR:VOLT:SWE:CENT": "both", "SOUR:VOLT:SWE:SPAN": "both", "SOUR:VOLT:SWE:DEL": "both",
    "SOUR:VOLT:SWE:INIT": "cmd", "SOUR:VOLT:SWE:ABOR": "cmd", "SOUR:VOLT:SWE:STAT?": "query",
    "SYST:ZCH": "both", "SYST:ZCOR": "both", "SYST:ZCOR:ACQ": "cmd", "SYST:ERR?": "query",
    "SYST:CLE": "cmd",
    "RANG": "both", "RANG:AUTO": "both", "NPLC": "both", "AVER": "both", "AVER:COUN": "both",
    "AVER:TCON": "both", "MED": "both", "MED:RANK": "both",
    "FORM:ELEM": "both", "INIT": "cmd", "ABOR": "cmd", "READ?": "query", "FETC?": "query",
    "MEAS?": "query",
    "TRIG:COUN": "both", "TRIG:DEL": "both", "TRIG:SOUR": "both", "ARM:COUN": "both",
    "ARM:SOUR": "both",
    "TRAC:POIN": "both", "TRAC:POIN:ACT?": "query", "TRAC:CLE": "cmd", "TRAC:DATA?": "query",
    "TRAC:FEED": "both", "TRAC:FEED:CONT": "both",
}  # fmt: skip
# commands refused with +840 while a sweep runs (source, trigger, trace, INIT, READ?)
_SWEEP_LOCKED = ("SOUR", "TRIG", "ARM", "TRAC", "INIT", "READ?", "MEAS?", "SYST:ZCH", "*RST")


class _ScpiError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _canonical(header: str) -> str:
    """Canonical short header (optional nodes dropped) or raise _ScpiError(-113)."""
    h = header.strip().upper()
    query = h.endswith("?")
    if query:
        h = h[:-1]
    if h.startswith("*"):
        if not re.fullmatch(r"\*[A-Z]{3}", h):
            raise _ScpiError(-113)
        return h + ("?" if query else "")
    h = h.lstrip(":")
    if not h:
        raise _ScpiError(-113)
    nodes = []
    for node in h.split(":"):
        m = re.fullmatch(r"([A-Z]+)(\d*)", node)
        if m is None:
            raise _ScpiError(-113)
        word, suffix = m.groups()
        if suffix not in ("", "1"):
            raise _ScpiError(-113)
        short = _FORMS.get(word)
        if short is None:
            raise _ScpiError(-113)
        if short in _DROP_ANYWHERE:
            continue
        nodes.append(short)
    if nodes[:1] == ["SENS"]:
        nodes = nodes[1:]
    if nodes[:1] == ["CURR"] and len(nodes) > 1:
        nodes = nodes[1:]
        if nodes[:1] == ["DC"]:
            nodes = nodes[1:]
    if nodes == ["MEAS", "CURR"]:
        nodes = ["MEAS"]
    if nodes == ["SYST", "ERR"] and query:
        pass
    key = ":".join(nodes) + ("?" if query else "")
    if key.endswith("?"):
        base = key[:-1]
        kind = _COMMANDS.get(key) or _COMMANDS.get(base)
        if kind is None or kind in ("cmd", "set"):
            raise _ScpiError(-113)
        return key if key in _COMMANDS else base + "?"
    kind = _COMMANDS.get(key)
    if kind is None or kind == "query":
        raise _ScpiError(-113)
    return key


def _number(
    text: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    named: dict[str, float] | None = None,
) -> float:
    t = text.strip().upper()
    if named and t in named:
        return named[t]
    try:
        x = float(t)
    except ValueError:
        raise _ScpiError(-224) from None
    if not math.isfinite(x):
        raise _ScpiError(-224)
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise _ScpiError(-222)
    return x


def _boolean(text: str) -> bool:
    t = text.strip().upper()
    if t in ("ON", "1"):
        return True
    if t in ("OFF", "0"):
        return False
    raise _ScpiError(-224)


def _elements(text: str) -> tuple[str, ...]:
    items = [e.strip().upper() for e in re.split(r"[,\s]+", text.strip()) if e.strip()]
    if not items:
        raise _ScpiError(-109)
    long_forms = {
        "READING": "READ",
        "UNITS": "UNIT",
        "TIME": "TIME",
        "STATUS": "STAT",
        "VSOURCE": "VSO",
    }
    out: list[str] = []
    for item in items:
        if item == "ALL":
            names: tuple[str, ...] = ELEMENT_ORDER
        elif item in ("DEF", "DEFAULT"):
            names = ("READ", "UNIT", "TIME", "STAT")
        else:
            name = next(
                (s for lf, s in long_forms.items() if lf.startswith(item) and item.startswith(s)),
                None,
            )
            if name is None:
                raise _ScpiError(-224)
            names = (name,)
        for n in names:
            if n not in out:
                out.append(n)
    return tuple(out)


def _fmt(x: float) -> str:
    return f"{x:+.6E}"


@dataclass
class _Reading:
    current: float  # A (or the overflow sentinel)
    time: float  # s
    status: int
    vso: float  # V, or -999 in compliance


@dataclass
class _Sweep:
    levels: np.ndarray  # V per step
    t0: float  # virtual time the first step starts
    dt: float  # s per step
    delay: float  # s of settling in each step before the reading
    done: int = 0  # steps simulated so far

    @property
    def t_end(self) -> float:
        return self.t0 + self.dt * self.levels.size


# --------------------------------------------------------------------------------------------
# The twin
# --------------------------------------------------------------------------------------------


class Keithley6487Twin(Adapter):
    """Simulated 6487 behind a pymeasure Adapter (see the module docstring).

    :param circuit: what the source and ammeter are wired to (a SimBench or ResistorLoad);
        default a 1 MΩ :class:`ResistorLoad`.
    :param clock: the virtual clock charged for every transaction (default a new one).
    :param latency_s: bus latency per transaction, s (GPIB-like default 3 ms).
    :param faults: fault plan (see :mod:`sim_backends.faults`).
    :param seed: seed of the instrument noise.
    :param noise_ppm: rms noise at 1 PLC in ppm of the current range.
    :param noise_floor: rms noise floor at 1 PLC, A.
    :param poll_wait_s: host wait charged after a ``SOUR:VOLT:SWE:STAT?`` answered 1, s.
    :param step_overhead_s: per-step overhead of the built-in sweep, s.
    :param timeout_s: time a timed-out read costs (the VISA timeout), s.
    :param interlock_closed: the test fixture's interlock (lid) state.
    :param line_frequency: mains frequency for NPLC, Hz.
    """

    def __init__(
        self,
        circuit: SmuCircuit | None = None,
        *,
        clock: VirtualClock | None = None,
        latency_s: float = 3e-3,
        faults: FaultPlan | None = None,
        seed: int = 0,
        noise_ppm: float = 20.0,
        noise_floor: float = 5e-15,
        poll_wait_s: float = 0.1,
        step_overhead_s: float = 1e-3,
        timeout_s: float = 10.0,
        interlock_closed: bool = True,
        line_frequency: float = 60.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.circuit: SmuCircuit = circuit if circuit is not None else ResistorLoad()
        self.clock = clock if clock is not None else VirtualClock()
        self.latency_s = float(latency_s)
        self.faults = FaultInjector(faults)
        self.rng = np.random.default_rng(seed)
        self.noise_ppm = float(noise_ppm)
        self.noise_floor = float(noise_floor)
        self.poll_wait_s = float(poll_wait_s)
        self.step_overhead_s = float(step_overhead_s)
        self.timeout_s = float(timeout_s)
        self.interlock_closed = bool(interlock_closed)
        self.line_frequency = float(line_frequency)
        self.connection = _Connection()
        self.commands: list[str] = []
        self.replies: list[str] = []
        self.failed: list[str] = []  # messages that did not reach the instrument
        self.transactions = 0
        self.time_reference = self.clock.now()
        self._reply: str | None = None
        self._errors: deque[tuple[int, str]] = deque()
        self._reset_state()

    # ------------------------------------------------------------------ state
    def _reset_state(self) -> None:
        self.source_voltage = 0.0
        self.source_range = 10
        self.current_limit = 25e-3
        self.operate = False
        self.interlock_enabled = False
        self.zero_check = True
        self.zero_correct = False
        self.zero_offset = 0.0
        self.current_range = 2e-2
        self.autorange = True
        self.nplc = 6.0  # twin assumption: *RST integration time (60 Hz)
        self.average = False
        self.average_count = 10
        self.average_type = "REP"
        self.median = False
        self.median_rank = 1
        self.elements: tuple[str, ...] = ("READ", "UNIT", "TIME", "STAT")
        self.trigger_count = 1
        self.trigger_delay = 0.0
        self.trigger_source = "IMM"
        self.arm_count = 1
        self.arm_source = "IMM"
        self.buffer_points = 100
        self.buffer: list[_Reading] = []
        self.feed = "SENS"
        self.feed_control = "NEV"
        self.sweep_start = 0.0
        self.sweep_stop = 0.0
        self.sweep_step = 1.0
        self.sweep_delay = 0.0
        self.sweep_armed = False
        self._sweep: _Sweep | None = None
        self._last: list[_Reading] = []
        self._push_source()

    @property
    def output_on(self) -> bool:
        """True while the source is operating (interlock permitting)."""
        return self.operate and not self.interlock_tripped

    @property
    def interlock_tripped(self) -> bool:
        """The interlock stops the source (enabled or on 50/500 V, and the lid open)."""
        needed = self.interlock_enabled or self.source_range in (50, 500)
        return needed and not self.interlock_closed

    @property
    def output_voltage(self) -> float:
        """Voltage on the output terminal, V (0 when the source is off)."""
        return self.source_voltage if self.output_on else 0.0

    @property
    def sweep_running(self) -> bool:
        self._advance_sweep()
        return self._sweep is not None

    def _push_source(self, at: float | None = None) -> None:
        self.circuit.set_smu(self.source_voltage, self.output_on, self.current_limit, at=at)

    # ------------------------------------------------------------------ Adapter interface
    def _write(self, command: str, **kwargs) -> None:
        self.faults.transaction()
        if self.faults.connection_lost:
            self.failed.append(command)
            raise pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_connection_lost)
        self.transactions += 1
        self.clock.advance(self.latency_s)
        if self._reply is not None:
            self._reply = None
            self._queue_error(-410)
        self.commands.append(command)
        self._advance_sweep()
        code = self.faults.take_error()
        if code is not None:
            self._queue_error(code)
        for part in _split(command):
            self._execute(part)

    def _write_bytes(self, content: bytes, **kwargs) -> None:
        self._write(content.decode(errors="replace"), **kwargs)

    def _read(self, **kwargs) -> str:
        if self.faults.connection_lost:
            self.failed.append("<read>")
            raise pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_connection_lost)
        if self._reply is None or self.faults.take_timeout():
            self._reply = None
            self.clock.advance(self.timeout_s)
            raise pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_timeout)
        reply, self._reply = self._reply, None
        if self.faults.take_garbled():
            reply = self.faults.garbage(max(8, min(len(reply), 40)))
        self.replies.append(reply)
        return reply

    def _read_bytes(self, count: int, break_on_termchar: bool = False, **kwargs) -> bytes:
        return self._read().encode()

    def flush_read_buffer(self) -> None:
        self._reply = None

    def __repr__(self) -> str:
        return f"<Keithley6487Twin {len(self.commands)} commands, t={self.clock.now():.3f} s>"

    # ------------------------------------------------------------------ errors
    def _queue_error(self, code: int) -> None:
        entry = (code, SCPI_ERRORS.get(code, "Device-specific error"))
        if len(self._errors) >= 10:
            self._errors[-1] = (-350, SCPI_ERRORS[-350])
        else:
            self._errors.append(entry)

    @property
    def error_queue(self) -> list[tuple[int, str]]:
        """The queued (code, message) entries, oldest first (not consumed)."""
        return list(self._errors)

    # ------------------------------------------------------------------ execution
    def _execute(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        header, _, params = text.partition(" ")
        params = params.strip()
        try:
            key = _canonical(header)
            if (
                self._sweep is not None
                and key != "SOUR:VOLT:SWE:ABOR"
                and (not key.endswith("?") or key in ("READ?", "MEAS?"))
                and key.startswith(_SWEEP_LOCKED)
            ):
                raise _ScpiError(+840)
            if key.endswith("?"):
                if params and key not in ("SYST:ERR?",):
                    raise _ScpiError(-108)
                self._reply = self._query(key)
            else:
                self._command(key, params)
        except _ScpiError as err:
            self._queue_error(err.code)

    def _need(self, params: str) -> str:
        if not params:
            raise _ScpiError(-109)
        return params

    def _none(self, params: str) -> None:
        if params:
            raise _ScpiError(-108)

    def _command(self, key: str, p: str) -> None:  # noqa: C901 - one branch per command
        if key == "*RST":
            self._none(p)
            self._reset_state()
        elif key == "*CLS":
            self._none(p)
            self._errors.clear()
        elif key in ("*OPC", "*WAI", "*TRG"):
            self._none(p)
        elif key == "SYST:CLE":
            self._errors.clear()
        elif key == "SOUR:VOLT":
            v = _number(
                self._need(p),
                named={
                    "MIN": -SOURCE_RANGES[self.source_range],
                    "MAX": SOURCE_RANGES[self.source_range],
                    "DEF": 0.0,
                },
            )
            if abs(v) > SOURCE_RANGES[self.source_range] + 1e-12:
                raise _ScpiError(-222)
            self.source_voltage = v
            self._push_source()
        elif key == "SOUR:VOLT:RANG":
            v = abs(
                _number(
                    self._need(p), lo=-505.0, hi=505.0, named={"MIN": 10, "MAX": 500, "DEF": 10}
                )
            )
            rng = 10 if v <= 10.1 else 50 if v <= 50.5 else 500
            if rng != 10 and self.current_limit > 2.5e-3:
                self.current_limit = 2.5e-3  # the 50/500 V ranges allow at most 2.5 mA
            if abs(self.source_voltage) > SOURCE_RANGES[rng]:
                self.source_voltage = math.copysign(SOURCE_RANGES[rng], self.source_voltage)
            self.source_range = rng
            self._push_source()
        elif key == "SOUR:VOLT:ILIM":
            v = _number(
                self._need(p), lo=0.0, hi=25e-3, named={"MIN": 25e-6, "MAX": 25e-3, "DEF": 25e-3}
            )
            snapped = next(c for c in CURRENT_LIMITS if c >= v * (1 - 1e-9))
            if self.source_range != 10 and snapped > 2.5e-3:
                raise _ScpiError(-221)
            self.current_limit = snapped
            self._push_source()
        elif key == "SOUR:VOLT:STAT":
            self.operate = _boolean(self._need(p))
            self._push_source()
        elif key == "SOUR:VOLT:INT":
            on = _boolean(self._need(p))
            if not on and self.source_range != 10:
                raise _ScpiError(-221)
            self.interlock_enabled = on
            self._push_source()
        elif key in ("SOUR:VOLT:SWE:STAR", "SOUR:VOLT:SWE:STOP"):
            v = _number(self._need(p), lo=-505.0, hi=505.0)
            if key.endswith("STAR"):
                self.sweep_start = v
            else:
                self.sweep_stop = v
        elif key == "SOUR:VOLT:SWE:STEP":
            v = _number(self._need(p), lo=0.0, hi=1010.0)
            if v <= 0:
                raise _ScpiError(-222)
            self.sweep_step = v
        elif key == "SOUR:VOLT:SWE:CENT":
            c = _number(self._need(p), lo=-505.0, hi=505.0)
            span = self.sweep_stop - self.sweep_start
            self.sweep_start, self.sweep_stop = c - span / 2, c + span / 2
        elif key == "SOUR:VOLT:SWE:SPAN":
            s = _number(self._need(p), lo=0.0, hi=1010.0)
            c = (self.sweep_stop + self.sweep_start) / 2
            self.sweep_start, self.sweep_stop = c - s / 2, c + s / 2
        elif key == "SOUR:VOLT:SWE:DEL":
            self.sweep_delay = _number(self._need(p), lo=0.0, hi=999.9999)
        elif key == "SOUR:VOLT:SWE:INIT":
            self._none(p)
            self._arm_sweep()
        elif key == "SOUR:VOLT:SWE:ABOR":
            self._none(p)
            if self._sweep is not None or self.sweep_armed:
                self._sweep = None
                self.sweep_armed = False
                self.operate = False  # the manual: ABORt puts the source in standby
                self._push_source()
        elif key == "SYST:ZCH":
            self.zero_check = _boolean(self._need(p))
        elif key == "SYST:ZCOR":
            self.zero_correct = _boolean(self._need(p))
        elif key == "SYST:ZCOR:ACQ":
            self._none(p)
            if not self.zero_check:
                raise _ScpiError(-221)
            self.zero_offset = self._last[-1].current if self._last else 0.0
        elif key == "RANG":
            v = abs(
                _number(
                    self._need(p),
                    lo=-2.1e-2,
                    hi=2.1e-2,
                    named={"MIN": 2e-9, "MAX": 2e-2, "DEF": 2e-2},
                )
            )
            self.current_range = next(
                (r for r in CURRENT_RANGES if v <= r * OVERRANGE), CURRENT_RANGES[-1]
            )
            self.autorange = False
        elif key == "RANG:AUTO":
            self.autorange = _boolean(self._need(p))
        elif key == "NPLC":
            self.nplc = _number(
                self._need(p), lo=0.01, hi=6.0, named={"MIN": 0.01, "MAX": 6.0, "DEF": 6.0}
            )
        elif key == "AVER":
            self.average = _boolean(self._need(p))
        elif key == "AVER:COUN":
            self.average_count = int(_number(self._need(p), lo=2, hi=100))
        elif key == "AVER:TCON":
            t = self._need(p).upper()
            if t not in ("REP", "REPEAT", "MOV", "MOVING"):
                raise _ScpiError(-224)
            self.average_type = t[:3]
        elif key == "MED":
            self.median = _boolean(self._need(p))
        elif key == "MED:RANK":
            self.median_rank = int(_number(self._need(p), lo=1, hi=5))
        elif key == "FORM:ELEM":
            self.elements = _elements(self._need(p))
        elif key == "INIT":
            self._none(p)
            self._initiate()
        elif key == "ABOR":
            self._none(p)
        elif key == "TRIG:COUN":
            self.trigger_count = int(
                _number(self._need(p), lo=1, hi=2048, named={"MIN": 1, "MAX": 2048, "DEF": 1})
            )
        elif key == "TRIG:DEL":
            self.trigger_delay = _number(self._need(p), lo=0.0, hi=999.9999)
        elif key in ("TRIG:SOUR", "ARM:SOUR"):
            t = self._need(p).upper()
            allowed = (
                ("IMM", "TLIN") if key == "TRIG:SOUR" else ("IMM", "TIM", "BUS", "TLIN", "MAN")
            )
            short = next((a for a in allowed if t.startswith(a)), None)
            if short is None:
                raise _ScpiError(-224)
            if key == "TRIG:SOUR":
                self.trigger_source = short
            else:
                self.arm_source = short
        elif key == "ARM:COUN":
            t = self._need(p).upper()
            self.arm_count = -1 if t in ("INF", "INFINITY") else int(_number(t, lo=1, hi=2048))
        elif key == "TRAC:POIN":
            self.buffer_points = int(_number(self._need(p), lo=1, hi=3000))
        elif key == "TRAC:CLE":
            self._none(p)
            self.buffer = []
        elif key == "TRAC:FEED":
            t = self._need(p).upper()
            if t not in ("SENS", "SENS1", "SENSE", "SENSE1", "CALC", "CALC1", "CALCULATE"):
                raise _ScpiError(-224)
            self.feed = "SENS" if t.startswith("SENS") else "CALC"
        elif key == "TRAC:FEED:CONT":
            t = self._need(p).upper()
            if t.startswith("NEXT"):
                self.feed_control = "NEXT"
            elif t.startswith("NEV"):
                self.feed_control = "NEV"
            else:
                raise _ScpiError(-224)
        else:  # pragma: no cover - every canonical command is handled above
            raise _ScpiError(-113)

    def _query(self, key: str) -> str:  # noqa: C901 - one branch per query
        if key == "*IDN?":
            return IDN
        if key == "*OPC?":
            return "1"
        if key == "SYST:ERR?":
            code, message = self._errors.popleft() if self._errors else (0, "No error")
            return f'{code},"{message}"'
        if key == "SOUR:VOLT:SWE:STAT?":
            running = self.sweep_running
            if running:
                self.clock.advance(self.poll_wait_s)  # the host waits before polling again
            return "1" if running else "0"
        if key == "SOUR:VOLT:INT:FAIL?":
            return "1" if (self.operate and self.interlock_tripped) else "0"
        if key in ("READ?", "MEAS?"):
            self._initiate()  # MEAS? = CONF + READ?; the twin keeps the present setup
            return self._format(self._last)
        if key == "FETC?":
            if not self._last:
                raise _ScpiError(-230)
            return self._format(self._last)
        if key == "TRAC:DATA?":
            return self._format(self.buffer) if self.buffer else ""
        if key == "TRAC:POIN:ACT?":
            return str(len(self.buffer))
        values: dict[str, Callable[[], str]] = {
            "SOUR:VOLT?": lambda: _fmt(self.source_voltage),
            "SOUR:VOLT:RANG?": lambda: _fmt(self.source_range),
            "SOUR:VOLT:ILIM?": lambda: _fmt(self.current_limit),
            "SOUR:VOLT:STAT?": lambda: "1" if self.operate else "0",
            "SOUR:VOLT:INT?": lambda: "1" if self.interlock_enabled else "0",
            "SOUR:VOLT:SWE:STAR?": lambda: _fmt(self.sweep_start),
            "SOUR:VOLT:SWE:STOP?": lambda: _fmt(self.sweep_stop),
            "SOUR:VOLT:SWE:STEP?": lambda: _fmt(self.sweep_step),
            "SOUR:VOLT:SWE:CENT?": lambda: _fmt((self.sweep_start + self.sweep_stop) / 2),
            "SOUR:VOLT:SWE:SPAN?": lambda: _fmt(abs(self.sweep_stop - self.sweep_start)),
            "SOUR:VOLT:SWE:DEL?": lambda: _fmt(self.sweep_delay),
            "SYST:ZCH?": lambda: "1" if self.zero_check else "0",
            "SYST:ZCOR?": lambda: "1" if self.zero_correct else "0",
            "RANG?": lambda: _fmt(self.current_range * OVERRANGE),
            "RANG:AUTO?": lambda: "1" if self.autorange else "0",
            "NPLC?": lambda: _fmt(self.nplc),
            "AVER?": lambda: "1" if self.average else "0",
            "AVER:COUN?": lambda: str(self.average_count),
            "AVER:TCON?": lambda: self.average_type,
            "MED?": lambda: "1" if self.median else "0",
            "MED:RANK?": lambda: str(self.median_rank),
            "FORM:ELEM?": lambda: ",".join(self.elements),
            "TRIG:COUN?": lambda: str(self.trigger_count),
            "TRIG:DEL?": lambda: _fmt(self.trigger_delay),
            "TRIG:SOUR?": lambda: self.trigger_source,
            "ARM:COUN?": lambda: str(self.arm_count) if self.arm_count > 0 else "INF",
            "ARM:SOUR?": lambda: self.arm_source,
            "TRAC:POIN?": lambda: str(self.buffer_points),
            "TRAC:FEED?": lambda: self.feed,
            "TRAC:FEED:CONT?": lambda: self.feed_control,
        }
        fn = values.get(key)
        if fn is None:
            raise _ScpiError(-113)
        return fn()

    # ------------------------------------------------------------------ measuring
    @property
    def integration_s(self) -> float:
        """Time of one reading, s: NPLC / line frequency × the averaging count (repeating)."""
        n = self.average_count if self.average else 1
        return self.nplc / self.line_frequency * n

    def _noise_sigma(self, rng_a: float) -> float:
        n = self.average_count if self.average else 1
        base = self.noise_ppm * 1e-6 * rng_a + self.noise_floor
        return base / math.sqrt(max(self.nplc * n, 1e-9))

    def _reading(self, duration: float, at: float | None = None) -> _Reading:
        t = self.clock.now() if at is None else at
        if self.zero_check:
            i, compliance = 0.0, False
            self.circuit.measure_smu(duration, at=at)  # time passes for the circuit too
            sigma = self.noise_floor / math.sqrt(max(self.nplc, 1e-9))
            i = float(self.rng.normal(0.0, sigma))
        else:
            i, compliance = self.circuit.measure_smu(duration, at=at)
            if self.faults.compliance and self.output_on:
                i, compliance = math.copysign(self.current_limit, i or 1.0), True
            rng_a = self._range_for(i)
            i = i + float(self.rng.normal(0.0, self._noise_sigma(rng_a)))
            if self.zero_correct:
                i -= self.zero_offset
        status = 0
        if not self.zero_check and not self.autorange and abs(i) > self.current_range * OVERRANGE:
            i, status = OVERFLOW, STATUS_OVERFLOW
        elif not self.zero_check and self.autorange and abs(i) > CURRENT_RANGES[-1] * OVERRANGE:
            i, status = OVERFLOW, STATUS_OVERFLOW
        vso = self.output_voltage
        if compliance:
            status |= STATUS_COMPLIANCE
            vso = -999.0
        return _Reading(i, t + duration - self.time_reference, status, vso)

    def _range_for(self, i: float) -> float:
        if not self.autorange:
            return self.current_range
        return next((r for r in CURRENT_RANGES if abs(i) <= r * OVERRANGE), CURRENT_RANGES[-1])

    def _initiate(self) -> None:
        """INIT: run the armed sweep, or take TRIG:COUN readings (into the buffer with
        TRAC:FEED:CONT NEXT)."""
        if self.sweep_armed:
            self._start_sweep()
            return
        readings = []
        for _ in range(self.trigger_count):
            if self.trigger_delay > 0:
                self.clock.advance(self.trigger_delay)
            dur = self.integration_s
            readings.append(self._reading(dur))
            self.clock.advance(dur)
        self._last = readings
        self._store(readings)

    def _store(self, readings: list[_Reading]) -> None:
        if self.feed_control != "NEXT":
            return
        room = self.buffer_points - len(self.buffer)
        self.buffer.extend(readings[: max(room, 0)])
        if len(self.buffer) >= self.buffer_points:
            self.feed_control = "NEV"

    def _format(self, readings: list[_Reading]) -> str:
        parts = []
        unit = "UNIT" in self.elements
        for r in readings:
            for name in self.elements:
                if name == "READ":
                    parts.append(_fmt(r.current) + ("A" if unit else ""))
                elif name == "TIME":
                    parts.append(_fmt(r.time) + ("SECS" if unit else ""))
                elif name == "STAT":
                    parts.append(_fmt(r.status))
                elif name == "VSO":
                    parts.append(_fmt(r.vso) + ("V" if unit else ""))
        return ",".join(parts)

    # ------------------------------------------------------------------ sweep
    def _sweep_levels(self) -> np.ndarray:
        start, stop, step = self.sweep_start, self.sweep_stop, self.sweep_step
        n = int(round(abs(stop - start) / step)) + 1
        direction = 1.0 if stop >= start else -1.0
        return np.round(start + direction * step * np.arange(n), 9)

    def _arm_sweep(self) -> None:
        levels = self._sweep_levels()
        limit = SOURCE_RANGES[self.source_range]
        if np.max(np.abs(levels)) > limit + 1e-12:
            if np.max(np.abs(levels)) > 505.0:
                raise _ScpiError(-222)
            # the 6487 picks the lowest source range holding every point
            self.source_range = 50 if np.max(np.abs(levels)) <= 50.5 else 500
            if self.current_limit > 2.5e-3:
                raise _ScpiError(-221)
        self.sweep_armed = True
        self.source_voltage = float(levels[0])
        self.operate = True
        self._push_source()

    def _start_sweep(self) -> None:
        levels = self._sweep_levels()
        self.buffer = []
        dt = self.sweep_delay + self.integration_s + self.step_overhead_s
        self._sweep = _Sweep(levels, self.clock.now(), dt, self.sweep_delay)
        self.sweep_armed = False

    def _advance_sweep(self) -> None:
        """Simulate every sweep step whose time has come (the sweep runs in virtual time)."""
        sw = self._sweep
        if sw is None:
            return
        now = self.clock.now()
        while sw.done < sw.levels.size and sw.t0 + (sw.done + 1) * sw.dt <= now + 1e-12:
            k = sw.done
            t_k = sw.t0 + k * sw.dt
            self.source_voltage = float(sw.levels[k])
            self._push_source(at=t_k)
            reading = self._reading(self.integration_s, at=t_k + sw.delay)
            if len(self.buffer) < self.buffer_points:
                self.buffer.append(reading)
            self._last = [reading]
            sw.done += 1
        if sw.done >= sw.levels.size:
            self._sweep = None


class _Connection:
    """The twin's stand-in for a VISA session (pymeasure calls ``close`` on it)."""

    closed = False

    def close(self) -> None:
        self.closed = True


def _split(command: str) -> list[str]:
    """Split ``a;b`` compound messages (no quoting in the 6487's command set)."""
    return [c for c in command.split(";")]
