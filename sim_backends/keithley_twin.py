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
* Source: ``SOUR:VOLT`` (within the range: ±10.1/50.5/505 V), ``SOUR:VOLT:RANG 10|50|500``
  (switching to 50/500 V while the current limit is above 2.5 mA → −221 and the range is
  kept: twin assumption, the manual only says those ranges allow at most 2.5 mA),
  ``SOUR:VOLT:ILIM`` (snaps up to 25 µA, 250 µA, 2.5 mA, 25 mA; > 2.5 mA on 50/500 V → −221),
  ``SOUR:VOLT:STAT`` (operate; off = low-impedance 0 V), interlock (``SOUR:VOLT:INT``,
  ``:FAIL?`` = 1 while the interlock is asserted; off on 50/500 V → −221). The simulated lid
  is closed unless ``interlock_closed=False`` (or the fault plan's ``interlock_open``): then,
  on the 50/500 V ranges (or with the interlock enabled), the source cannot operate and its
  output is high impedance, on and off alike, with no error queued (Reference Manual Table
  14-5 note 7: "Asserted interlock indicates that voltage source cannot be placed in
  operate"); only ``:FAIL?`` and the measurement event INT bit tell.
* Sense: ``SENS:CURR:RANG`` (2 nA … 20 mA decades, setting it turns autorange off),
  ``:RANG:AUTO``, ``:NPLC`` (0.01 … 6 on 60 Hz mains, 0.01 … 5 on 50 Hz: ``line_frequency``,
  read back by ``SYST:LFR?``), ``SENS:AVER[:COUN|:TCON]``, ``SENS:MED[:RANK]``; the
  ``SENS``/``CURR``/``DC`` nodes are optional as in the manual's ``RANG 2e-9``.
* Status model (Reference Manual section 10): the measurement condition register
  (``STAT:MEAS:COND?``: VSC while the last reading was in compliance and the source is
  unchanged, INT while the interlock is asserted, BFL while the buffer is full), the event
  register latching them (``STAT:MEAS?`` reads and clears; ROF on overflow; BFL when the
  buffer fills or a sweep completes), its enable register (``STAT:MEAS:ENAB``), ``*SRE``,
  ``*STB?``, ``*CLS``, ``STAT:PRES``; the status byte (B0 measurement summary, B2 error
  available, B4 message available, B6 request service) by serial poll: the adapter's
  ``connection.read_stb()``, as on a pyvisa GPIB session (``serial_poll=False``: an RS-232
  session, where it raises VI_ERROR_NSUP_OPER). ``connection.clear()`` is a device clear:
  the input waiting to be read and any unread reply are dropped.
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
  runs, ``SOUR:VOLT:SWE:ABOR`` stops it. Every source/trigger/trace/INIT command during the
  sweep → +840 "Not allowed with sweep on", and so do the commands of the manual's list
  (p. 6-11: level, ``STAT``, ``RANG``, trigger counts/sources/delays, ``TRAC`` settings)
  once the sweep is armed. **Queries are not answered while the sweep runs**: the 6487
  executes commands one after another (``*WAI`` "is effectively a No-Op", p. 11-5), so a
  message holding a query — and every message after it — waits until the sweep ends; a read
  whose VISA timeout (``timeout_s``) ends before the sweep times out, and the reply comes
  later. Only a serial poll and a device clear reach the instrument meanwhile (the
  conservative reading of the manual; commands are still parsed, as its +840 list implies).
  Twin assumption: the sweep ignores ``TRIG:COUN`` (it runs every step) and leaves the source
  on at the last level.

Time (virtual clock): every transaction (one message written; a query's reply is part of it)
costs ``latency_s``; a reading costs ``NPLC/60 s × averages`` (+ ``TRIG:DEL``; in an ``INIT``
of ``TRIG:COUN`` > 1 readings, each one also ``step_overhead_s``: the trigger loop's
turn-around, a twin assumption of the same size as a sweep step's); a sweep step
``DEL + NPLC/line_frequency·averages + step_overhead_s``, elapsing while the host polls; a
serial poll is a transaction too, and one that finds no measurement summary charges
``poll_wait_s`` (the host's wait before its next poll, which the driver spends in wall-clock
``time.sleep`` — pass it ``poll_interval=0``); a read that times out costs ``timeout_s`` (the
VISA timeout; ``connection.timeout`` in ms, as on a pyvisa session). The device physics follows the same clock (the
circuit applies the present biasing for every elapsed interval).

Faults (:class:`~sim_backends.faults.FaultPlan`): timeouts and lost connections raise
``pyvisa.errors.VisaIOError`` (``VI_ERROR_TMO`` / ``VI_ERROR_CONN_LOST``) as a VISA adapter
would; garbled replies are random non-numeric bytes; error codes are queued; compliance forces
readings into compliance; ``interlock_open`` opens the simulated lid.

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

from instruments.keithley6487 import (
    MEAS_BFL,
    MEAS_INT,
    MEAS_ROF,
    MEAS_VSC,
    OVERFLOW_SENTINEL,
    STB_MSB,
    normalise_elements,
)
from instruments.keithley6487_limits import (
    BUFFER_MAX_POINTS,
    CURRENT_LIMITS,
    CURRENT_RANGE,
    CURRENT_RANGE_OVERRANGE,
    CURRENT_RANGES,
    DELAY_RANGE,
    HARDWARE_MAX_VOLTAGE,
    MAX_SWEEP_POINTS,
    NPLC_RANGE,
    SOURCE_RANGE_MAX_LEVEL,
    max_limit_on_range,
    nplc_range,
    source_range_for,
)
from sim_backends.clock import VirtualClock
from sim_backends.faults import SCPI_ERRORS, FaultInjector, FaultPlan

__all__ = ["IDN", "Keithley6487Twin", "ResistorLoad", "SmuCircuit"]

IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 6487,4126713,A04  Feb  4 2005 16:52:50/A02  /E"
OVERFLOW = OVERFLOW_SENTINEL
OVERRANGE = CURRENT_RANGE_OVERRANGE  # a range reads up to 105 % of its nominal value
STATUS_OVERFLOW = 1
STATUS_COMPLIANCE = 8
STB_EAV = 1 << 2  # status byte: error available
STB_MAV = 1 << 4  # message available
STB_RQS = 1 << 6  # request for service


class SmuCircuit(Protocol):
    """What the twin needs from the circuit it is wired to (SimBench implements it)."""

    def set_smu(self, voltage: float, on: bool, i_limit: float, *, at: float | None = None) -> None:
        """The 6487 source output: ``voltage`` V when ``on`` (current limit ``i_limit`` A),
        else a low-impedance 0 V; takes effect at virtual time ``at`` (default now)."""

    def set_smu_floating(self, floating: bool, *, at: float | None = None) -> None:
        """Whether the source output is in high impedance (its interlock asserted), from
        virtual time ``at`` (default now); overrides ``set_smu``'s level while True."""

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
        self.floating = False
        self.i_limit = math.inf

    def set_smu(self, voltage: float, on: bool, i_limit: float, *, at: float | None = None) -> None:
        self.voltage, self.on, self.i_limit = float(voltage), bool(on), float(i_limit)

    def set_smu_floating(self, floating: bool, *, at: float | None = None) -> None:
        self.floating = bool(floating)

    def measure_smu(self, duration_s: float, *, at: float | None = None) -> tuple[float, bool]:
        if self.floating:
            return 0.0, False
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
    "AMPLitude", "FETCh", "READ", "MEASure", "UPPer", "LAYer", "SEQuence", "STATus",
    "MEASurement", "EVENt", "CONDition", "ENABle", "PRESet", "LFRequency",
]  # fmt: skip
_FORMS: dict[str, str] = {}
for _kw in _KEYWORDS:
    _short = "".join(ch for ch in _kw if ch.isupper() or ch.isdigit())
    _FORMS[_short] = _short
    _FORMS[_kw.upper()] = _short
_DROP_ANYWHERE = {"LEV", "IMM", "AMPL", "UPP", "NEXT", "SEQ", "LAY", "EVEN"}

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
    "*STB?": "query", "*SRE": "both", "STAT:MEAS?": "query", "STAT:MEAS:COND?": "query",
    "STAT:MEAS:ENAB": "both", "STAT:PRES": "cmd", "SYST:LFR?": "query",
}  # fmt: skip
# commands refused with +840 while a sweep runs (source, trigger, trace, INIT, READ?)
_SWEEP_LOCKED = ("SOUR", "TRIG", "ARM", "TRAC", "INIT", "READ?", "MEAS?", "SYST:ZCH", "*RST")
# commands refused with +840 once a sweep is armed (Reference Manual p. 6-11's list)
_ARMED_LOCKED = {
    "SOUR:VOLT", "SOUR:VOLT:STAT", "SOUR:VOLT:RANG", "ARM:COUN", "ARM:SOUR", "TRIG:COUN",
    "TRIG:SOUR", "TRIG:DEL", "TRAC:FEED", "TRAC:FEED:CONT", "TRAC:POIN", "TRAC:CLE",
}  # fmt: skip


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
    """FORM:ELEM parameter -> element names (-109 if none, -224 if one is unknown)."""
    if not any(re.split(r"[,\s]+", text.strip())):
        raise _ScpiError(-109)
    try:
        return normalise_elements(text)
    except ValueError:
        raise _ScpiError(-224) from None


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
    :param timeout_s: the VISA timeout: what a timed-out read costs, s.
    :param interlock_closed: the test fixture's interlock (lid) state (the fault plan's
        ``interlock_open`` opens it).
    :param line_frequency: mains frequency, 50 or 60 Hz (NPLC time base, NPLC bound,
        ``SYST:LFR?``).
    :param serial_poll: the session can serial-poll (GPIB); False: an RS-232 session.
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
        serial_poll: bool = True,
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
        self.interlock_closed = bool(interlock_closed) and not self.faults.plan.interlock_open
        self.line_frequency = float(line_frequency)
        nplc_range(self.line_frequency)  # ValueError unless 50 or 60 Hz
        self.serial_poll = bool(serial_poll)
        self.connection = _Connection(self)
        self.commands: list[str] = []
        self.replies: list[str] = []
        self.failed: list[str] = []  # messages that did not reach the instrument
        self.transactions = 0
        self.serial_polls = 0
        self.device_clears = 0
        self.time_reference = self.clock.now()
        self._reply: str | None = None
        self._pending: list[str] = []  # messages waiting behind a query held by a sweep
        self._errors: deque[tuple[int, str]] = deque()
        # status model (not changed by *RST)
        self.meas_enable = 0
        self.meas_events = 0
        self.service_request_enable = 0
        self._vsc_now = False
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
        self.nplc = self.nplc_max  # twin assumption: *RST integration time (rate SLOW)
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
    def nplc_max(self) -> float:
        """Largest NPLC on this mains: 6 at 60 Hz, 5 at 50 Hz."""
        return nplc_range(self.line_frequency)[1]

    @property
    def output_on(self) -> bool:
        """True while the source is operating (interlock permitting)."""
        return self.operate and not self.interlock_tripped

    @property
    def output_floating(self) -> bool:
        """True while the interlock keeps the output in high impedance."""
        return self.interlock_tripped

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
        self._vsc_now = False  # a new source state: compliance is known at the next reading
        if self.operate and self.interlock_tripped:
            self._event(MEAS_INT)
        self.circuit.set_smu(self.source_voltage, self.output_on, self.current_limit, at=at)
        self.circuit.set_smu_floating(self.output_floating, at=at)

    # ------------------------------------------------------------------ status model
    def _event(self, bits: int) -> None:
        self.meas_events |= int(bits)

    @property
    def meas_condition(self) -> int:
        """The measurement condition register now (VSC, INT, BFL)."""
        bits = MEAS_VSC if (self._vsc_now and self.output_on) else 0
        if self.interlock_tripped:
            bits |= MEAS_INT
        if self.buffer_points and len(self.buffer) >= self.buffer_points:
            bits |= MEAS_BFL
        return bits

    @property
    def status_byte(self) -> int:
        """The status byte: B0 measurement summary, B2 error available, B4 message available,
        B6 request for service (any of them enabled in ``*SRE``)."""
        stb = STB_MSB if self.meas_events & self.meas_enable else 0
        if self._errors:
            stb |= STB_EAV
        if self._reply is not None:
            stb |= STB_MAV
        if stb & self.service_request_enable:
            stb |= STB_RQS
        return stb

    def _take_events(self) -> str:
        events, self.meas_events = self.meas_events, 0
        return str(events)

    def _clear_status(self) -> None:
        """``*CLS``: the error queue and the event registers."""
        self._errors.clear()
        self.meas_events = 0

    def _serial_poll(self) -> int:
        """One serial poll (a bus transaction): the status byte. One that finds no measurement
        summary charges ``poll_wait_s`` (the host's wait before its next poll)."""
        self._bus_transaction("<serial poll>")
        if not self.serial_poll:
            raise pyvisa.errors.VisaIOError(
                pyvisa.constants.StatusCode.error_nonsupported_operation
            )
        self.serial_polls += 1
        self._advance_sweep()
        stb = self.status_byte
        if not stb & STB_MSB:
            self.clock.advance(self.poll_wait_s)
        return stb

    def _device_clear(self) -> None:
        """Device clear (SDC): drop the input waiting to be read and any unread reply."""
        self._bus_transaction("<device clear>")
        self.device_clears += 1
        self._pending.clear()
        self._reply = None

    # ------------------------------------------------------------------ Adapter interface
    def _bus_transaction(self, what: str) -> None:
        """Count one transaction on the bus (a dead bus raises VI_ERROR_CONN_LOST)."""
        self.faults.transaction()
        if self.faults.connection_lost:
            self.failed.append(what)
            raise pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_connection_lost)
        self.transactions += 1
        self.clock.advance(self.latency_s)

    def _write(self, command: str, **kwargs) -> None:
        self._bus_transaction(command)
        self.commands.append(command)
        self._advance_sweep()
        code = self.faults.take_error()
        if code is not None:
            self._queue_error(code)
        if self._pending or (self._sweep is not None and _holds_query(command)):
            self._pending.append(command)  # read only when the sweep ends
            return
        self._process(command)

    def _process(self, command: str) -> None:
        """Read one message: a new one interrupts an unread reply (−410)."""
        if self._reply is not None:
            self._reply = None
            self._queue_error(-410)
        for part in _split(command):
            self._execute(part)

    def _write_bytes(self, content: bytes, **kwargs) -> None:
        self._write(content.decode(errors="replace"), **kwargs)

    def _read(self, **kwargs) -> str:
        if self.faults.connection_lost:
            self.failed.append("<read>")
            raise pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_connection_lost)
        if self._reply is None and self._pending and self._sweep is not None:
            wait = self._sweep.t_end - self.clock.now()
            if wait > self.timeout_s:  # the reply comes only when the sweep ends
                self.clock.advance(self.timeout_s)
                raise pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_timeout)
            self.clock.advance(max(wait, 0.0))
            self._advance_sweep()
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
            ) or (self.sweep_armed and key in _ARMED_LOCKED):
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

    def _command(self, key: str, params: str) -> None:
        """Execute a canonical command header with its parameter text (see _COMMAND_TABLE)."""
        handler = _COMMAND_TABLE.get(key)
        if handler is None:  # pragma: no cover - every canonical command has a handler
            raise _ScpiError(-113)
        handler(self, params)

    def _query(self, key: str) -> str:
        """The reply to a canonical query header (see _QUERY_TABLE)."""
        handler = _QUERY_TABLE.get(key)
        if handler is None:
            raise _ScpiError(-113)
        return handler(self)

    # ------------------------------------------------------------------ command handlers
    def _set_level(self, p: str) -> None:
        top = SOURCE_RANGE_MAX_LEVEL[self.source_range]
        v = _number(self._need(p), named={"MIN": -top, "MAX": top, "DEF": 0.0})
        if abs(v) > top + 1e-12:
            raise _ScpiError(-222)
        self.source_voltage = v
        self._push_source()

    def _set_source_range(self, p: str) -> None:
        named = {"MIN": 10, "MAX": 500, "DEF": 10}
        v = abs(
            _number(self._need(p), lo=-HARDWARE_MAX_VOLTAGE, hi=HARDWARE_MAX_VOLTAGE, named=named)
        )
        rng = source_range_for(v)
        if self.current_limit > max_limit_on_range(rng) * (1 + 1e-9):
            raise _ScpiError(-221)  # 50/500 V allow at most 2.5 mA: lower the limit first
        if abs(self.source_voltage) > SOURCE_RANGE_MAX_LEVEL[rng]:
            self.source_voltage = math.copysign(SOURCE_RANGE_MAX_LEVEL[rng], self.source_voltage)
        self.source_range = rng
        self._push_source()

    def _set_current_limit(self, p: str) -> None:
        lo, hi = CURRENT_LIMITS[0], CURRENT_LIMITS[-1]
        v = _number(self._need(p), lo=0.0, hi=hi, named={"MIN": lo, "MAX": hi, "DEF": hi})
        snapped = next(c for c in CURRENT_LIMITS if c >= v * (1 - 1e-9))
        if snapped > max_limit_on_range(self.source_range):
            raise _ScpiError(-221)
        self.current_limit = snapped
        self._push_source()

    def _set_nplc(self, p: str) -> None:
        lo, hi = NPLC_RANGE[0], self.nplc_max
        self.nplc = _number(self._need(p), lo=lo, hi=hi, named={"MIN": lo, "MAX": hi, "DEF": hi})

    def _set_interlock(self, p: str) -> None:
        on = _boolean(self._need(p))
        if not on and self.source_range != 10:
            raise _ScpiError(-221)
        self.interlock_enabled = on
        self._push_source()

    def _set_sweep_step(self, p: str) -> None:
        v = _number(self._need(p), lo=0.0, hi=2 * HARDWARE_MAX_VOLTAGE)
        if v <= 0:
            raise _ScpiError(-222)
        self.sweep_step = v

    def _set_sweep_center(self, p: str) -> None:
        c = _number(self._need(p), lo=-HARDWARE_MAX_VOLTAGE, hi=HARDWARE_MAX_VOLTAGE)
        span = self.sweep_stop - self.sweep_start
        self.sweep_start, self.sweep_stop = c - span / 2, c + span / 2

    def _set_sweep_span(self, p: str) -> None:
        s = _number(self._need(p), lo=0.0, hi=2 * HARDWARE_MAX_VOLTAGE)
        c = (self.sweep_stop + self.sweep_start) / 2
        self.sweep_start, self.sweep_stop = c - s / 2, c + s / 2

    def _abort_sweep(self) -> None:
        if self._sweep is not None or self.sweep_armed:
            self._sweep = None
            self.sweep_armed = False
            self.operate = False  # the manual: ABORt puts the source in standby
            self._push_source()

    def _acquire_zero(self) -> None:
        if not self.zero_check:
            raise _ScpiError(-221)
        self.zero_offset = self._last[-1].current if self._last else 0.0

    def _set_current_range(self, p: str) -> None:
        lo, hi = CURRENT_RANGES[0], CURRENT_RANGES[-1]
        top = CURRENT_RANGE[1]
        v = abs(_number(self._need(p), lo=-top, hi=top, named={"MIN": lo, "MAX": hi, "DEF": hi}))
        self.current_range = next((r for r in CURRENT_RANGES if v <= r * OVERRANGE), hi)
        self.autorange = False

    def _set_arm_count(self, p: str) -> None:
        t = self._need(p).upper()
        infinite = t in ("INF", "INFINITY")
        self.arm_count = -1 if infinite else int(_number(t, lo=1, hi=MAX_SWEEP_POINTS))

    # ------------------------------------------------------------------ query handlers
    def _pop_error(self) -> str:
        code, message = self._errors.popleft() if self._errors else (0, "No error")
        return f'{code},"{message}"'

    def _sweep_status(self) -> str:
        running = self.sweep_running
        if running:
            self.clock.advance(self.poll_wait_s)  # the host waits before polling again
        return "1" if running else "0"

    def _read_now(self) -> str:
        self._initiate()  # MEAS? = CONF + READ?; the twin keeps the present setup
        return self._format(self._last)

    def _fetch(self) -> str:
        if not self._last:
            raise _ScpiError(-230)
        return self._format(self._last)

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
        if status & STATUS_OVERFLOW:
            self._event(MEAS_ROF)
        self._vsc_now = bool(compliance)
        if compliance:
            status |= STATUS_COMPLIANCE
            vso = -999.0
            self._event(MEAS_VSC)
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
            if self.trigger_count > 1:  # the trigger loop's turn-around (as a sweep step's)
                self.clock.advance(self.step_overhead_s)
        self._last = readings
        self._store(readings)

    def _store(self, readings: list[_Reading]) -> None:
        if self.feed_control != "NEXT":
            return
        room = self.buffer_points - len(self.buffer)
        self.buffer.extend(readings[: max(room, 0)])
        if len(self.buffer) >= self.buffer_points:
            self.feed_control = "NEV"
            self._event(MEAS_BFL)

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
        top = float(np.max(np.abs(levels)))
        if top > SOURCE_RANGE_MAX_LEVEL[self.source_range] + 1e-12:
            if top > HARDWARE_MAX_VOLTAGE:
                raise _ScpiError(-222)
            # the 6487 picks the lowest source range holding every point
            self.source_range = source_range_for(top)
            if self.current_limit > max_limit_on_range(self.source_range):
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
            self._event(MEAS_BFL)  # "also set when a voltage sweep has been completed"
            pending, self._pending = self._pending, []
            for command in pending:  # the input held back by the sweep is read now
                self._process(command)


class _Connection:
    """The twin's stand-in for a pyvisa session: ``read_stb()`` (serial poll), ``clear()``
    (device clear), ``timeout`` (ms, the VISA timeout) and ``close()`` (pymeasure calls it)."""

    closed = False

    def __init__(self, twin: Keithley6487Twin) -> None:
        self._twin = twin

    def read_stb(self) -> int:
        return self._twin._serial_poll()

    def clear(self) -> None:
        self._twin._device_clear()

    @property
    def timeout(self) -> float:
        return self._twin.timeout_s * 1000.0

    @timeout.setter
    def timeout(self, ms: float) -> None:
        self._twin.timeout_s = float(ms) / 1000.0

    def close(self) -> None:
        self.closed = True


def _split(command: str) -> list[str]:
    """Split ``a;b`` compound messages (no quoting in the 6487's command set)."""
    return [c for c in command.split(";")]


def _holds_query(command: str) -> bool:
    """True when a message holds a query (one of its parts ends its header with ``?``)."""
    return any(part.strip().partition(" ")[0].endswith("?") for part in _split(command))


# --------------------------------------------------------------------------------------------
# Command and query tables: canonical header -> handler
# --------------------------------------------------------------------------------------------

_Handler = Callable[[Keithley6487Twin, str], None]


def _bare(action: Callable[[Keithley6487Twin], None] | None = None) -> _Handler:
    """A command without parameters (-108 if given one)."""

    def handler(t: Keithley6487Twin, p: str) -> None:
        t._none(p)
        if action is not None:
            action(t)

    return handler


def _switch(attr: str, *, push: bool = False) -> _Handler:
    """An ON/OFF (1/0) setting stored in ``attr``; ``push`` applies the source state."""

    def handler(t: Keithley6487Twin, p: str) -> None:
        setattr(t, attr, _boolean(t._need(p)))
        if push:
            t._push_source()

    return handler


def _setting(
    attr: str,
    lo: float,
    hi: float,
    *,
    cast: Callable[[float], float] = float,
    named: dict[str, float] | None = None,
) -> _Handler:
    """A number within [lo, hi] (-222 outside) stored in ``attr`` as ``cast(value)``."""

    def handler(t: Keithley6487Twin, p: str) -> None:
        setattr(t, attr, cast(_number(t._need(p), lo=lo, hi=hi, named=named)))

    return handler


def _choice(attr: str, accepted: dict[str, str]) -> _Handler:
    """A keyword (exact forms in ``accepted``, -224 otherwise) stored as its short form."""

    def handler(t: Keithley6487Twin, p: str) -> None:
        word = t._need(p).upper()
        if word not in accepted:
            raise _ScpiError(-224)
        setattr(t, attr, accepted[word])

    return handler


def _prefix_choice(attr: str, names: tuple[str, ...]) -> _Handler:
    """A keyword starting with one of ``names`` (-224 otherwise) stored as that name."""

    def handler(t: Keithley6487Twin, p: str) -> None:
        word = t._need(p).upper()
        short = next((name for name in names if word.startswith(name)), None)
        if short is None:
            raise _ScpiError(-224)
        setattr(t, attr, short)

    return handler


def _sweep_level(attr: str) -> _Handler:
    return _setting(attr, -HARDWARE_MAX_VOLTAGE, HARDWARE_MAX_VOLTAGE)


def _set_elements(t: Keithley6487Twin, p: str) -> None:
    t.elements = _elements(t._need(p))


def _clear_buffer(t: Keithley6487Twin) -> None:
    t.buffer = []


_COUNT_NAMED = {"MIN": 1, "MAX": MAX_SWEEP_POINTS, "DEF": 1}
_FEEDS = {"SENS": "SENS", "SENS1": "SENS", "SENSE": "SENS", "SENSE1": "SENS"}
_FEEDS.update({"CALC": "CALC", "CALC1": "CALC", "CALCULATE": "CALC"})
_FILTERS = {"REP": "REP", "REPEAT": "REP", "MOV": "MOV", "MOVING": "MOV"}

_COMMAND_TABLE: dict[str, _Handler] = {
    "*RST": _bare(Keithley6487Twin._reset_state),
    "*CLS": _bare(Keithley6487Twin._clear_status),
    "*SRE": _setting("service_request_enable", 0, 255, cast=int),
    "STAT:MEAS:ENAB": _setting("meas_enable", 0, 65535, cast=int),
    "STAT:PRES": _bare(lambda t: setattr(t, "meas_enable", 0)),
    "*OPC": _bare(),
    "*WAI": _bare(),
    "*TRG": _bare(),
    "SYST:CLE": lambda t, p: t._errors.clear(),
    "SOUR:VOLT": Keithley6487Twin._set_level,
    "SOUR:VOLT:RANG": Keithley6487Twin._set_source_range,
    "SOUR:VOLT:ILIM": Keithley6487Twin._set_current_limit,
    "SOUR:VOLT:STAT": _switch("operate", push=True),
    "SOUR:VOLT:INT": Keithley6487Twin._set_interlock,
    "SOUR:VOLT:SWE:STAR": _sweep_level("sweep_start"),
    "SOUR:VOLT:SWE:STOP": _sweep_level("sweep_stop"),
    "SOUR:VOLT:SWE:STEP": Keithley6487Twin._set_sweep_step,
    "SOUR:VOLT:SWE:CENT": Keithley6487Twin._set_sweep_center,
    "SOUR:VOLT:SWE:SPAN": Keithley6487Twin._set_sweep_span,
    "SOUR:VOLT:SWE:DEL": _setting("sweep_delay", *DELAY_RANGE),
    "SOUR:VOLT:SWE:INIT": _bare(Keithley6487Twin._arm_sweep),
    "SOUR:VOLT:SWE:ABOR": _bare(Keithley6487Twin._abort_sweep),
    "SYST:ZCH": _switch("zero_check"),
    "SYST:ZCOR": _switch("zero_correct"),
    "SYST:ZCOR:ACQ": _bare(Keithley6487Twin._acquire_zero),
    "RANG": Keithley6487Twin._set_current_range,
    "RANG:AUTO": _switch("autorange"),
    "NPLC": Keithley6487Twin._set_nplc,
    "AVER": _switch("average"),
    "AVER:COUN": _setting("average_count", 2, 100, cast=int),
    "AVER:TCON": _choice("average_type", _FILTERS),
    "MED": _switch("median"),
    "MED:RANK": _setting("median_rank", 1, 5, cast=int),
    "FORM:ELEM": _set_elements,
    "INIT": _bare(Keithley6487Twin._initiate),
    "ABOR": _bare(),
    "TRIG:COUN": _setting("trigger_count", 1, MAX_SWEEP_POINTS, cast=int, named=_COUNT_NAMED),
    "TRIG:DEL": _setting("trigger_delay", *DELAY_RANGE),
    "TRIG:SOUR": _prefix_choice("trigger_source", ("IMM", "TLIN")),
    "ARM:SOUR": _prefix_choice("arm_source", ("IMM", "TIM", "BUS", "TLIN", "MAN")),
    "ARM:COUN": Keithley6487Twin._set_arm_count,
    "TRAC:POIN": _setting("buffer_points", 1, BUFFER_MAX_POINTS, cast=int),
    "TRAC:CLE": _bare(_clear_buffer),
    "TRAC:FEED": _choice("feed", _FEEDS),
    "TRAC:FEED:CONT": _prefix_choice("feed_control", ("NEXT", "NEV")),
}


def _on_off(flag: bool) -> str:
    return "1" if flag else "0"


_QUERY_TABLE: dict[str, Callable[[Keithley6487Twin], str]] = {
    "*IDN?": lambda t: IDN,
    "*OPC?": lambda t: "1",
    "SYST:ERR?": Keithley6487Twin._pop_error,
    "SOUR:VOLT:SWE:STAT?": Keithley6487Twin._sweep_status,
    "SOUR:VOLT:INT:FAIL?": lambda t: _on_off(t.interlock_tripped),
    "*STB?": lambda t: str(t.status_byte),
    "*SRE?": lambda t: str(t.service_request_enable),
    "STAT:MEAS?": Keithley6487Twin._take_events,
    "STAT:MEAS:COND?": lambda t: str(t.meas_condition),
    "STAT:MEAS:ENAB?": lambda t: str(t.meas_enable),
    "SYST:LFR?": lambda t: f"{t.line_frequency:g}",
    "READ?": Keithley6487Twin._read_now,
    "MEAS?": Keithley6487Twin._read_now,
    "FETC?": Keithley6487Twin._fetch,
    "TRAC:DATA?": lambda t: t._format(t.buffer) if t.buffer else "",
    "TRAC:POIN:ACT?": lambda t: str(len(t.buffer)),
    "SOUR:VOLT?": lambda t: _fmt(t.source_voltage),
    "SOUR:VOLT:RANG?": lambda t: _fmt(t.source_range),
    "SOUR:VOLT:ILIM?": lambda t: _fmt(t.current_limit),
    "SOUR:VOLT:STAT?": lambda t: _on_off(t.operate),
    "SOUR:VOLT:INT?": lambda t: _on_off(t.interlock_enabled),
    "SOUR:VOLT:SWE:STAR?": lambda t: _fmt(t.sweep_start),
    "SOUR:VOLT:SWE:STOP?": lambda t: _fmt(t.sweep_stop),
    "SOUR:VOLT:SWE:STEP?": lambda t: _fmt(t.sweep_step),
    "SOUR:VOLT:SWE:CENT?": lambda t: _fmt((t.sweep_start + t.sweep_stop) / 2),
    "SOUR:VOLT:SWE:SPAN?": lambda t: _fmt(abs(t.sweep_stop - t.sweep_start)),
    "SOUR:VOLT:SWE:DEL?": lambda t: _fmt(t.sweep_delay),
    "SYST:ZCH?": lambda t: _on_off(t.zero_check),
    "SYST:ZCOR?": lambda t: _on_off(t.zero_correct),
    "RANG?": lambda t: _fmt(t.current_range * OVERRANGE),
    "RANG:AUTO?": lambda t: _on_off(t.autorange),
    "NPLC?": lambda t: _fmt(t.nplc),
    "AVER?": lambda t: _on_off(t.average),
    "AVER:COUN?": lambda t: str(t.average_count),
    "AVER:TCON?": lambda t: t.average_type,
    "MED?": lambda t: _on_off(t.median),
    "MED:RANK?": lambda t: str(t.median_rank),
    "FORM:ELEM?": lambda t: ",".join(t.elements),
    "TRIG:COUN?": lambda t: str(t.trigger_count),
    "TRIG:DEL?": lambda t: _fmt(t.trigger_delay),
    "TRIG:SOUR?": lambda t: t.trigger_source,
    "ARM:COUN?": lambda t: str(t.arm_count) if t.arm_count > 0 else "INF",
    "ARM:SOUR?": lambda t: t.arm_source,
    "TRAC:POIN?": lambda t: str(t.buffer_points),
    "TRAC:FEED?": lambda t: t.feed,
    "TRAC:FEED:CONT?": lambda t: t.feed_control,
}
