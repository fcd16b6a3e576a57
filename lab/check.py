"""Bench self-test: is this bench ready for a measurement? (``xbar check``.)

:func:`run_checks` opens the bench a :class:`~crossbar.config.BenchConfig` describes piece by
piece and checks, in order (each item passes, fails with what to do, or is skipped because an
item it needs failed):

1. **VISA library**: NI-VISA (the IVI binary) or pyvisa-py, which pyvisa (and so pymeasure)
   uses for the 6487's session; on a simulated bench the twin replaces the session.
2. **6487 identity and error queue**: ``*IDN?`` names a MODEL 6487, and ``SYST:ERR?`` finds
   nothing queued from before (read before the connect sequence's ``*CLS`` would hide it).
3. **line frequency**: ``SYST:LFR?`` is 50 or 60 Hz (the NPLC bound: 5 or 6 PLC).
4. **interlock**: with the interlock enabled on the 10 V range, ``SOUR:VOLT:INT:FAIL?`` is 0
   (an open interlock leaves the 50/500 V ranges in high impedance with no error).
5. **zero check**: zero correction (the manual's sequence), then a reading with the input
   shunted (``SYST:ZCH ON``) is within ±20 pA.
6. **AD2 found**: the WaveForms runtime (``pydwf.DwfLibrary()``) loads and an Analog
   Discovery 2 (with the bench's serial filter) opens.
7. **switch matrix walk**: every row, then every column, routed alone onto the 6487 (the
   others grounded) conducts at least 10 pA at the check voltage — a line whose switch or
   cable is open reads only noise.
8. **cell read**: one cell read at ≤ 0.1 V (differential V/3) gives a conductance of at
   least 100 pS (10 pA at 0.1 V), not in compliance.

On a simulated bench (``backend = "twins"``) faults can be injected by name (:data:`FAULTS`:
``interlock-open``, ``no-ad2``, ...), so that the check shows how each looks. Everything is
switched off and closed at the end, whatever failed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from crossbar.backend import CrossbarBackend
from crossbar.config import BenchConfig, BenchConfigError, FaultSettings
from crossbar.hardware import InstrumentBackend
from crossbar.policy import CrossbarPolicy
from instruments.errors import InstrumentError, InstrumentErrorQueue
from instruments.keithley6487 import Keithley6487
from instruments.keithley6487_limits import SOURCE_RANGE_MAX_LEVEL
from instruments.keithley6487_procedures import measure_at
from instruments.switch_matrix import Bus

from . import _ad2, _close_keithley, _compose, _keithley, _sim_handles, open_backend, resolve_config

__all__ = [
    "CHECK_VOLTAGE",
    "FAULTS",
    "MAX_ZERO_OFFSET",
    "MIN_LINE_CURRENT",
    "CheckItem",
    "CheckReport",
    "run_checks",
    "with_faults",
]

#: Largest voltage the check applies (V): well below any switching threshold.
CHECK_VOLTAGE = 0.1
#: Zero check: largest |reading| with the input shunted (A; 1 % of the 2 nA range).
MAX_ZERO_OFFSET = 20e-12
#: Matrix walk: smallest current a routed line must carry at CHECK_VOLTAGE (A; 100 pS).
MIN_LINE_CURRENT = 10e-12

#: Faults ``xbar check --fault NAME`` injects on a simulated bench: (instrument, fault settings
#: of ``[simulation.faults.<instrument>]``, what it simulates).
FAULTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "interlock-open": ("keithley", {"interlock_open": True}, "the 6487's interlock open"),
    "no-ad2": ("ad2", {"no_device": True}, "no Analog Discovery 2 connected"),
    "no-keithley": ("keithley", {"connection_lost_after": 0}, "the 6487 does not answer"),
    "keithley-error": (
        "keithley",
        {"error_after": 0, "error_code": -113},
        "an error waiting in the 6487's queue",
    ),
    "open-row": ("ad2", {"open_row": 0}, "row 0's matrix switch stuck open"),
}

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True)
class CheckItem:
    """One item of the self-test: ``status`` "pass", "fail" or "skip", ``detail`` what was
    found, ``advice`` what to do (for a failure)."""

    name: str
    status: str
    detail: str
    advice: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def line(self) -> str:
        """The item as one line: ``PASS  name  detail`` (``: advice`` for a failure)."""
        text = f"{self.status.upper():4}  {self.name:<22} {self.detail}"
        return f"{text} -> {self.advice}" if self.advice else text


@dataclass
class CheckReport:
    """The self-test of one bench: its items in order."""

    bench: str
    items: list[CheckItem] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no item failed (a skipped item follows a failed one)."""
        return all(item.status != FAIL for item in self.items)

    @property
    def failed(self) -> list[str]:
        """Names of the failed items."""
        return [item.name for item in self.items if item.status == FAIL]

    def to_dict(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "passed": self.passed,
            "failed": self.failed,
            "items": [dataclasses.asdict(item) for item in self.items],
        }


def with_faults(cfg: BenchConfig, names: Sequence[str]) -> BenchConfig:
    """``cfg`` with the named faults (:data:`FAULTS`) injected into its twins.

    :raises BenchConfigError: an unknown name, or faults asked of a bench that is not simulated
        (``backend = "twins"``)."""
    if not names:
        return cfg
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        allowed = ", ".join(FAULTS)
        raise BenchConfigError(f"fault {unknown[0]!r}: unknown; allowed {allowed}")
    if cfg.backend != "twins":
        raise BenchConfigError(
            f"fault {names[0]!r}: faults are injected only on a simulated bench "
            f'(backend = "twins"); {cfg.source} is backend = "{cfg.backend}"'
        )
    faults = dict(cfg.simulation.faults)
    for name in names:
        target, settings, _ = FAULTS[name]
        base = faults.get(target, FaultSettings())  # type: ignore[arg-type]
        faults[target] = dataclasses.replace(base, **settings)  # type: ignore[call-overload]
    sim = dataclasses.replace(cfg.simulation, faults=faults)
    return dataclasses.replace(cfg, simulation=sim)


def run_checks(
    config: BenchConfig | str,
    *,
    cell: tuple[int, int] = (0, 0),
    read_voltage: float = CHECK_VOLTAGE,
    faults: Sequence[str] = (),
) -> CheckReport:
    """Run the self-test (module docstring) on a bench; the instruments are closed at the end.

    :param config: a BenchConfig, "sim" or a bench TOML path.
    :param cell: (row, col) of the cell read by the last item.
    :param read_voltage: the cell read's voltage, V (0 < V ≤ 0.1 and the bench's read limit).
    :param faults: names of :data:`FAULTS` to inject (simulated benches only).
    :raises BenchConfigError: bad bench, fault, cell or voltage (before anything is opened).
    """
    cfg = with_faults(resolve_config(config), faults)
    rows, cols = cfg.shape
    if not (0 <= cell[0] < rows and 0 <= cell[1] < cols):
        raise BenchConfigError(f"cell {cell}: outside the {rows}x{cols} array of {cfg.source}")
    limit = min(CHECK_VOLTAGE, cfg.limits.max_read_voltage)
    if not (math.isfinite(read_voltage) and 0 < read_voltage <= limit):
        raise BenchConfigError(
            f"read voltage {read_voltage:g} V: allowed 0 < V <= {limit:g} V (the check's "
            f"{CHECK_VOLTAGE:g} V and the bench's read limit)"
        )
    session = _Session(cfg, cell, float(read_voltage))
    try:
        session.run()
    finally:
        session.close()
    return CheckReport(cfg.name, session.items)


# --------------------------------------------------------------------------------------------


class _Failed(Exception):
    """An item's failure: ``detail`` and ``advice``."""

    def __init__(self, detail: str, advice: str) -> None:
        super().__init__(detail)
        self.detail, self.advice = detail, advice


_Step = Callable[[], str]


class _Session:
    """The pieces opened so far and the items found; each step returns its detail or raises
    _Failed (an instrument error becomes a failure with the step's advice)."""

    def __init__(self, cfg: BenchConfig, cell: tuple[int, int], read_voltage: float) -> None:
        self.cfg = cfg
        self.cell = cell
        self.read_voltage = read_voltage
        self.items: list[CheckItem] = []
        self.handles: Any = None
        self.keithley: Keithley6487 | None = None
        self.ad2: Any = None
        self.backend: CrossbarBackend | None = None

    # ---------------------------------------------------------------- running
    def run(self) -> None:
        instruments = self.cfg.backend != "physics"
        k = "6487 identity"
        steps: list[tuple[str, _Step, tuple[str, ...], str]] = [
            ("VISA library", self.visa, (), _VISA_ADVICE),
            (k, self.identity, ("VISA library",), _IDENTITY_ADVICE),
            ("line frequency", self.line_frequency, (k,), "check the 6487's mains supply"),
            ("interlock", self.interlock, (k,), _INTERLOCK_ADVICE),
            ("zero check", self.zero_check, (k,), _ZERO_ADVICE),
            ("AD2 found", self.find_ad2, (), _AD2_ADVICE),
            ("switch matrix walk", self.matrix_walk, (k, "AD2 found"), _WALK_ADVICE),
            (f"cell read {self.cell}", self.cell_read, ("switch matrix walk",), _READ_ADVICE),
        ]
        for name, step, needs, advice in steps:
            if not instruments and name != steps[-1][0]:
                self._add(name, SKIP, 'no instruments on this bench (backend = "physics")')
                continue
            missing = [n for n in needs if instruments and not self._passed(n)]
            if missing:
                self._add(name, SKIP, f"needs: {', '.join(missing)}")
                continue
            try:
                self._add(name, PASS, step())
            except _Failed as failed:
                self._add(name, FAIL, failed.detail, failed.advice)
            except (InstrumentError, OSError, RuntimeError, ValueError) as exc:
                self._add(name, FAIL, " ".join(str(exc).split()), advice)

    def _add(self, name: str, status: str, detail: str, advice: str = "") -> None:
        self.items.append(CheckItem(name, status, detail, advice))

    def _passed(self, name: str) -> bool:
        return any(item.name == name and item.passed for item in self.items)

    # ---------------------------------------------------------------- the items
    def visa(self) -> str:
        found = _visa_libraries()
        text = ", ".join(found) if found else "none"
        if self.cfg.backend == "twins":
            return f"simulated bench: the 6487 twin replaces the VISA session (here: {text})"
        if not found:
            raise _Failed("no VISA library: neither NI-VISA (IVI) nor pyvisa-py", _VISA_ADVICE)
        return f"{text}; pyvisa uses {found[0]}"

    def identity(self) -> str:
        if self.cfg.backend == "twins":
            self.handles = _sim_handles(self.cfg)
        self.keithley = _keithley(self.cfg, self.handles)
        who = self.keithley.identity
        if who.model != "6487":
            raise _Failed(
                f"{self.cfg.instruments.keithley_resource} is {who.manufacturer} {who.model}, "
                "not a Keithley 6487",
                "set [instruments] keithley_resource to the 6487's address",
            )
        detail = f"{who.manufacturer} MODEL {who.model} #{who.serial} (firmware {who.firmware})"
        try:
            self.keithley.check_errors("before this session")
        except InstrumentErrorQueue as exc:
            queued = "; ".join(f'{c},"{m}"' for c, m in exc.errors)
            raise _Failed(
                f"{detail}; errors queued before this session: {queued} (now read and cleared)",
                "they came from an earlier program or a front-panel action: run the check again; "
                "if they come back, look them up in the 6487 manual's error list",
            ) from None
        return f"{detail}; error queue empty"

    def line_frequency(self) -> str:
        hz = self._k().read_line_frequency()
        return f"{hz:g} Hz: NPLC 0.01 to {5 if hz == 50 else 6}"

    def interlock(self) -> str:
        k = self._k()
        k.interlock_enabled = True  # 10 V range: the interlock is optional there
        try:
            tripped = k.interlock_tripped
        finally:
            k.interlock_enabled = False
        if tripped:
            raise _Failed(
                "open (SOUR:VOLT:INT:FAIL? = 1): on the 50/500 V ranges (levels beyond "
                f"{SOURCE_RANGE_MAX_LEVEL[10]:g} V) the source would stay in high impedance",
                _INTERLOCK_ADVICE,
            )
        return "closed (SOUR:VOLT:INT:FAIL? = 0): the 50/500 V ranges can operate"

    def zero_check(self) -> str:
        k = self._k()
        k.zero_correct()
        k.zero_check_enabled = True
        k.data_elements = "READ,VSO"
        offset = k.take_reading().current
        if not abs(offset) <= MAX_ZERO_OFFSET:
            raise _Failed(
                f"{offset:.3g} A with the input shunted (allowed ±{MAX_ZERO_OFFSET:g} A)",
                _ZERO_ADVICE,
            )
        return f"zero corrected; {offset:.2g} A with the input shunted"

    def find_ad2(self) -> str:
        self.ad2 = _ad2(self.cfg, self.handles)
        serial = self.cfg.instruments.ad2_serial or "the only one connected"
        version = self.ad2.runtime_version()
        return f"WaveForms runtime {version}; Analog Discovery 2 opened (serial: {serial})"

    def _compose(self) -> InstrumentBackend:
        if self.backend is None:
            self.backend = _compose(self.cfg, self._k(), self.ad2, self.handles)
            self.keithley = self.ad2 = None  # the backend owns them now
        assert isinstance(self.backend, InstrumentBackend)
        return self.backend

    def matrix_walk(self) -> str:
        b = self._compose()
        rows, cols = b.shape
        lines = [("row", i) for i in range(rows)] + [("column", j) for j in range(cols)]
        currents = []
        try:
            for kind, i in lines:
                currents.append(abs(self._line_current(b, kind, i, rows, cols)))
        finally:
            b.release()
        weak = [(kind, i, c) for (kind, i), c in zip(lines, currents) if not c >= MIN_LINE_CURRENT]
        if weak:
            listed = ", ".join(f"{kind} {i}: {c:.2g} A" for kind, i, c in weak[:4])
            raise _Failed(
                f"{len(weak)} of {len(lines)} lines carry no current at "
                f"{CHECK_VOLTAGE:g} V ({listed}; needed >= {MIN_LINE_CURRENT:g} A)",
                _WALK_ADVICE,
            )
        low = min(range(len(lines)), key=currents.__getitem__)
        return (
            f"{len(lines)} lines conduct at {CHECK_VOLTAGE:g} V (smallest: "
            f"{lines[low][0]} {lines[low][1]}, {currents[low]:.2g} A)"
        )

    def _line_current(self, b: InstrumentBackend, kind: str, i: int, rows: int, cols: int) -> float:
        """Route one line onto the 6487 (a row on its source with every column on its ammeter,
        or a column on the ammeter with every row on the source), the others grounded; read."""
        if kind == "row":
            r = [Bus.SMU_SOURCE if k == i else Bus.GND for k in range(rows)]
            c = [Bus.SMU_SENSE] * cols
        else:
            r = [Bus.SMU_SOURCE] * rows
            c = [Bus.SMU_SENSE if k == i else Bus.GND for k in range(cols)]
        b.matrix.route(r, c)
        reading = measure_at(b.keithley, CHECK_VOLTAGE, compliance=b.read_compliance, nplc=1)
        return math.inf if reading.compliance else reading.current

    def cell_read(self) -> str:
        if self.cfg.backend == "physics":
            self.backend = open_backend(self.cfg)
            b = self.backend
        else:
            b = self._compose()
        r, c = self.cell
        try:
            reading = CrossbarPolicy(b).read_cell(r, c, v_read=self.read_voltage)
        finally:
            b.release()
        g = reading.conductance
        floor = MIN_LINE_CURRENT / self.read_voltage
        if reading.compliance or not (math.isfinite(g) and g >= floor):
            state = "in compliance" if reading.compliance else f"G = {g:.3g} S"
            raise _Failed(
                f"{state} at {self.read_voltage:g} V (a cell conducts {floor:g} S or more)",
                _READ_ADVICE,
            )
        return f"G = {g:.4g} S at {self.read_voltage:g} V (I = {reading.current:.3g} A, v/3)"

    # ---------------------------------------------------------------- helpers
    def _k(self) -> Keithley6487:
        if self.backend is not None:
            return self.backend.keithley  # type: ignore[attr-defined]
        assert self.keithley is not None
        return self.keithley

    def close(self) -> None:
        """Everything off and closed (never raises)."""
        if isinstance(self.backend, InstrumentBackend):
            self.backend.close()
        elif self.backend is not None:
            self.backend.shutdown()
        if self.keithley is not None:
            _close_keithley(self.keithley)
        if self.ad2 is not None:
            self.ad2.close()


def _visa_libraries() -> list[str]:
    """The VISA implementations pyvisa can use here, in its order of preference."""
    from pyvisa.ctwrapper import IVIVisaLibrary
    from pyvisa.highlevel import get_wrapper_class

    found = []
    paths = IVIVisaLibrary.get_library_paths()
    if paths:
        found.append(f"NI-VISA/IVI ({paths[0]})")
    try:
        get_wrapper_class("py")
        found.append("pyvisa-py")
    except ValueError:
        pass
    return found


_VISA_ADVICE = (
    "install NI-VISA (ni.com/visa) or `pip install pyvisa-py` (with `pip install pyserial` for "
    "RS-232, linux-gpib or gpib-ctypes for GPIB); see the README's real-bench section"
)
_IDENTITY_ADVICE = (
    "check the 6487 is on, its GPIB address / RS-232 settings match [instruments] "
    "keithley_resource, and the cable; `python -m pyvisa info` lists what VISA sees"
)
_INTERLOCK_ADVICE = (
    "close the test fixture's lid or plug the interlock cable into the 6487's INTERLOCK "
    "connector; it is needed for every level beyond 10.1 V"
)
_ZERO_ADVICE = (
    "let the 6487 warm up (1 h), keep the input capped or connected to a quiet cable, and run "
    "the check again"
)
_AD2_ADVICE = (
    "install the Digilent WaveForms runtime (digilent.com: WaveForms, with Adept Runtime), "
    "plug the AD2 in (USB), close the WaveForms application (it holds the device) and check "
    "[instruments] ad2_serial"
)
_WALK_ADVICE = (
    "a line that carries nothing has an open switch, cable or probe: check the switch-matrix "
    "board and the crossbar's contacts of the lines named"
)
_READ_ADVICE = (
    "check the cell's contacts; a cell in compliance conducts more than the read limit allows "
    "(a short): inspect it before applying anything else"
)
