"""Bench configuration: which backend, which instruments, how they are wired, what is allowed.

A bench is described by a TOML file (or the built-in name ``"sim"``, the package file
``crossbar/benches/sim.toml``)::

    [bench]
    name = "lab-2"
    backend = "instruments"          # "instruments" | "twins" | "physics"

    [instruments]
    keithley_resource = "GPIB0::22::INSTR"
    keithley_timeout_ms = 10000
    ad2_serial = ""                  # "" = the only AD2 connected

    [wiring]
    data_pin = 0                     # DIO pins of the switch-matrix shift register
    clk_pin = 1
    latch_pin = 2
    enable_pin = 3
    tia_gain_ohm = 10000.0           # transimpedance of TIA1/TIA2 (V per A)
    pulse_instrument = "ad2"         # who drives programming pulses above the AWG's ±5 V
    row_drivers = 2                  # rows driven at once in an MVM (the AD2's 2 AWG channels)

    [crossbar]
    rows = 10
    cols = 10
    line_resistance_ohm = 0.0

    [limits]
    max_voltage = 6.0                # V, every source
    max_compliance = 1e-3            # A, the 6487's current limit
    max_read_voltage = 0.3           # V, reads and MVM inputs

    [simulation]                     # twins and physics backends only
    profile = "optimized"            # a preset, or the path of a profile JSON (*.json)
    seed = 0
    latency_s = 0.003                # GPIB transaction latency of the 6487 twin

    line_frequency_hz = 60           # mains of the simulated 6487: 50 or 60 Hz
    [simulation.device]              # optional: device fields that replace the profile's
    drift_nu = 0.05                  # (any field of crossbar.device_params.DeviceParameters)

    [simulation.faults.keithley]     # optional fault injection (see sim_backends.faults)
    timeout_after = 50
    interlock_open = false           # the 6487's fixture lid open

Loading is strict: an unknown section or key, a value of the wrong type or out of range raises
:class:`BenchConfigError` naming the file, the section, the key and what is allowed, e.g.
``bench.toml: [wiring] pulse_instrument = "awg": allowed "ad2", "keithley"``.

Validation is pydantic's (v2): the type, range and choices of every key are declared once on
its dataclass field (``Annotated[int, Field(ge=…, le=…)]``, ``Literal`` choices, strict types,
``extra="forbid"``, model validators for the rules between keys); :func:`parse_bench_config`
validates a document against them and translates the first ``ValidationError`` into the
one-line message above. The sections stay plain frozen dataclasses for the code that builds or
``dataclasses.replace``-s them (not validated there, as before).

This module only describes the bench; :func:`lab.open_backend` builds it.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from crossbar.device_params import DEVICE_FIELDS, DeviceParameters, cross_field_problems
from instruments.errors import SafetyLimits

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "BACKENDS",
    "BUILTIN_BENCHES",
    "PULSE_INSTRUMENTS",
    "BenchConfig",
    "BenchConfigError",
    "BenchSection",
    "CrossbarSection",
    "DeviceSection",
    "FaultSettings",
    "InstrumentsSection",
    "LimitsSection",
    "SimulationSection",
    "WiringSection",
    "allowed_text",
    "builtin_bench_path",
    "load_device_json",
    "load_bench_config",
    "parse_bench_config",
    "range_text",
    "toml_text",
]

Backend = Literal["instruments", "twins", "physics"]
PulseInstrument = Literal["ad2", "keithley"]
IoPath = Literal["fast", "legacy"]
FaultTarget = Literal["keithley", "ad2"]
LineFrequencyHz = Literal[50, 60]
BACKENDS: tuple[str, ...] = typing.get_args(Backend)
PULSE_INSTRUMENTS: tuple[str, ...] = typing.get_args(PulseInstrument)
BUILTIN_BENCHES = ("sim",)
_FAULT_TARGETS: tuple[str, ...] = typing.get_args(FaultTarget)

#: Instrument ceilings used to bound configuration values (INSTRUMENTS.md).
_KEITHLEY_MAX_V = 505.0
_KEITHLEY_MAX_I = 25e-3


class BenchConfigError(ValueError):
    """A bench file (or dict) that does not describe a valid bench; the message names the file,
    the ``[section] key`` and the allowed values."""


# Every section is a frozen dataclass whose fields declare, with pydantic, what a bench file may
# hold: unknown keys are errors, NaN and ±inf are not numbers, scalars are strict (no "10" for
# 10, no 1 for true, no 5.5 for an integer; integers are accepted for floats), ranges are
# Field(ge/gt/le) and choices Literal. The error message's "allowed …" is read back from the
# same declarations (allowed_text).
_VALIDATION = ConfigDict(extra="forbid", allow_inf_nan=False)


# The value types of the keys (strict; ranges closed unless ``gt``).
Text = Annotated[str, Field(strict=True)]
Name = Annotated[str, Field(strict=True, pattern=r"\S")]  # at least one non-blank character
Flag = Annotated[bool, Field(strict=True)]
Count = Annotated[int, Field(strict=True, ge=0)]  # seeds, transaction counts
Fraction = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]
Pin = Annotated[int, Field(strict=True, ge=0, le=15)]  # AD2 DIO
Size = Annotated[int, Field(strict=True, ge=1, le=256)]  # crossbar rows / columns
TimeoutMs = Annotated[int, Field(strict=True, ge=100, le=600_000)]
PollS = Annotated[float, Field(strict=True, gt=0.0, le=10.0)]
LatencyS = Annotated[float, Field(strict=True, ge=0.0, le=10.0)]
GainOhm = Annotated[float, Field(strict=True, ge=1.0, le=1e9)]
RowDrivers = Annotated[int, Field(strict=True, ge=1, le=1024)]
ScopeRangeV = Annotated[float, Field(strict=True, gt=0.0, le=50.0)]
SampleRateHz = Annotated[float, Field(strict=True, gt=0.0, le=100e6)]
ScopeSamples = Annotated[int, Field(strict=True, ge=16, le=8192)]
Nplc = Annotated[float, Field(strict=True, ge=0.01, le=6.0)]
LineOhm = Annotated[float, Field(strict=True, ge=0.0, le=1e6)]
MaxVoltageV = Annotated[float, Field(strict=True, gt=0.0, le=_KEITHLEY_MAX_V)]
MaxComplianceA = Annotated[float, Field(strict=True, gt=0.0, le=_KEITHLEY_MAX_I)]
ReadVoltageV = Annotated[float, Field(strict=True, gt=0.0, le=5.0)]
ErrorCode = Annotated[int, Field(strict=True, ge=-999, le=999)]


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchSection:
    """``[bench]``: the bench's name and which backend it builds."""

    __pydantic_config__ = _VALIDATION

    name: Name = "sim"
    backend: Backend = "twins"
    description: Text = ""


@dataclass(frozen=True)
class InstrumentsSection:
    """``[instruments]``: how to reach the real instruments (backend "instruments").

    ``sweep_poll_s`` is the wait between status polls (serial polls) while a built-in sweep
    runs (the twins charge it to their virtual clock instead of sleeping);
    ``builtin_descending`` lets descending runs of an I-V sweep use the 6487's built-in
    staircase too (the manual says it can; unverified on the bench, so off by default).
    ``io_path``: ``"fast"`` loads the switch matrix with the AD2's pattern generator and skips
    routings and 6487 settings that are already in place (:mod:`instruments.switch_matrix`,
    :class:`crossbar.hardware.InstrumentBackend`); ``"legacy"`` is the previous path (one DIO
    word per USB call, every setting written per read), kept as the benchmarks' peer.
    """

    __pydantic_config__ = _VALIDATION

    keithley_resource: Name = "GPIB0::22::INSTR"
    keithley_timeout_ms: TimeoutMs = 10_000
    ad2_serial: Text = ""
    sweep_poll_s: PollS = 0.1
    builtin_descending: Flag = False
    io_path: IoPath = "fast"


@dataclass(frozen=True)
class WiringSection:
    """``[wiring]``: switch-matrix DIO pins, TIA gain, pulse and MVM drivers, scope settings.

    ``pulse_instrument``: which instrument applies programming pulses beyond the AWG's ±5 V:
    ``"keithley"`` (the 6487 source, up to ``limits.max_voltage``) or ``"ad2"`` (nothing beyond
    the AWG: pulses are limited to ±5 V). ``row_drivers``: rows driven at once in an MVM (the
    AD2 has 2 AWG channels; rows are applied in groups and the currents summed).
    """

    __pydantic_config__ = _VALIDATION

    data_pin: Pin = 0
    clk_pin: Pin = 1
    latch_pin: Pin = 2
    enable_pin: Pin = 3
    tia_gain_ohm: GainOhm = 10_000.0
    pulse_instrument: PulseInstrument = "ad2"
    row_drivers: RowDrivers = 2
    scope_range_v: ScopeRangeV = 5.0
    scope_sample_rate_hz: SampleRateHz = 1e6
    scope_samples: ScopeSamples = 1000
    read_nplc: Nplc = 1.0

    @property
    def pins(self) -> tuple[int, int, int, int]:
        """(data, clk, latch, enable) DIO pins."""
        return (self.data_pin, self.clk_pin, self.latch_pin, self.enable_pin)

    @model_validator(mode="after")
    def _distinct_pins(self) -> WiringSection:
        if len(set(self.pins)) != len(self.pins):
            raise ValueError(
                f"[wiring] data_pin, clk_pin, latch_pin, enable_pin = {list(self.pins)}: "
                "allowed four distinct DIO pins 0..15"
            )
        return self


@dataclass(frozen=True)
class CrossbarSection:
    """``[crossbar]``: array size and line resistance (Ω per segment, simulation only)."""

    __pydantic_config__ = _VALIDATION

    rows: Size = 10
    cols: Size = 10
    line_resistance_ohm: LineOhm = 0.0


@dataclass(frozen=True)
class LimitsSection:
    """``[limits]``: the bench's safety limits (V, A) and the largest read/MVM voltage (V)."""

    __pydantic_config__ = _VALIDATION

    max_voltage: MaxVoltageV = 6.0
    max_compliance: MaxComplianceA = 1e-3
    max_read_voltage: ReadVoltageV = 0.3

    @property
    def safety(self) -> SafetyLimits:
        """As the drivers' :class:`~instruments.errors.SafetyLimits`."""
        return SafetyLimits(max_voltage=self.max_voltage, max_compliance=self.max_compliance)

    @model_validator(mode="after")
    def _read_within_limit(self) -> LimitsSection:
        if self.max_read_voltage > self.max_voltage:
            raise ValueError(
                f"[limits] max_read_voltage = {self.max_read_voltage!r}: allowed a number "
                f"<= max_voltage ({self.max_voltage:g})"
            )
        return self


@dataclass(frozen=True)
class FaultSettings:
    """One instrument's fault-injection plan (``[simulation.faults.keithley]`` or ``.ad2``);
    the twins' :class:`sim_backends.faults.FaultPlan` has these fields. Counts are transactions (bus
    messages on the 6487, pydwf calls on the AD2); absent = never. ``interlock_open`` (6487):
    the fixture lid is open; ``no_device`` (AD2): no AD2 is connected; ``open_row`` (AD2, the
    switch matrix it drives): that row's switch is stuck open."""

    __pydantic_config__ = _VALIDATION

    timeout_after: Count | None = None
    garbled_after: Count | None = None
    connection_lost_after: Count | None = None
    error_after: Count | None = None
    error_code: ErrorCode = -200
    compliance_after: Count | None = None
    timeout_rate: Fraction = 0.0
    garbled_rate: Fraction = 0.0
    seed: Count = 0
    interlock_open: Flag = False
    no_device: Flag = False
    open_row: Count | None = None

    @property
    def active(self) -> bool:
        """True when any fault is planned."""
        counts = ("timeout_after", "garbled_after", "connection_lost_after", "error_after")
        return (
            any(getattr(self, n) is not None for n in (*counts, "compliance_after", "open_row"))
            or self.timeout_rate > 0
            or self.garbled_rate > 0
            or self.interlock_open
            or self.no_device
        )


def _device_section() -> type:
    """``[simulation.device]``: every field of :class:`DeviceParameters`, optional (None: the
    profile's value), with the same declared type and range."""
    hints = typing.get_type_hints(DeviceParameters, include_extras=True)
    cls = dataclasses.make_dataclass(
        "DeviceSection",
        [(name, hints[name] | None, field(default=None)) for name in DEVICE_FIELDS],
        frozen=True,
        namespace={
            "__pydantic_config__": _VALIDATION,
            "__module__": __name__,
            "given": lambda self: {
                k: v for k, v in dataclasses.asdict(self).items() if v is not None
            },
        },
    )
    cls.__doc__ = (
        "``[simulation.device]``: device fields that replace those of ``[simulation] profile`` "
        "(see :class:`crossbar.device_params.DeviceParameters` for units and ranges); "
        "``given()`` returns the fields set, as a dict."
    )
    return cls


DeviceSection = _device_section()


@dataclass(frozen=True)
class SimulationSection:
    """``[simulation]``: the simulated array and the twins (backends "twins" and "physics").

    ``profile`` names a device profile of :mod:`sim_backends.profiles` (a preset, checked when
    the backend is opened) or the path of a profile JSON (``*.json``: the fields of
    :class:`~crossbar.device_params.DeviceParameters`, as ``DeviceProfile.to_dict`` writes them;
    a relative path is relative to the bench file; validated when the file is loaded);
    ``device`` (the ``[simulation.device]`` table) replaces any of those fields. ``latency_s`` is
    the 6487 twin's bus latency per transaction (GPIB-like), and ``usb_latency_s`` the AD2
    twin's per pydwf call; ``device_noise`` turns the devices' read noise on;
    ``line_frequency_hz`` is the mains the 6487 twin runs on (50 or 60 Hz: its NPLC bound and
    time base); ``faults`` holds ``keithley`` and ``ad2`` fault plans.
    """

    __pydantic_config__ = _VALIDATION

    profile: Name = "optimized"
    seed: Count = 0
    latency_s: LatencyS = 0.003
    usb_latency_s: LatencyS = 0.001
    device_noise: Flag = True
    line_frequency_hz: LineFrequencyHz = 60
    device: DeviceSection = field(default_factory=DeviceSection)  # type: ignore[valid-type]
    faults: dict[FaultTarget, FaultSettings] = field(default_factory=dict)

    @property
    def profile_is_file(self) -> bool:
        """True when ``profile`` is the path of a profile JSON rather than a preset name."""
        return self.profile.lower().endswith(".json")


@dataclass(frozen=True)
class BenchConfig:
    """A whole bench (see the module docstring for the file format).

    ``source`` is the file it was loaded from (or ``"<dict>"`` / the built-in name).
    """

    __pydantic_config__ = _VALIDATION

    bench: BenchSection = field(default_factory=BenchSection)
    instruments: InstrumentsSection = field(default_factory=InstrumentsSection)
    wiring: WiringSection = field(default_factory=WiringSection)
    crossbar: CrossbarSection = field(default_factory=CrossbarSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    simulation: SimulationSection = field(default_factory=SimulationSection)
    source: str = "<defaults>"

    @property
    def name(self) -> str:
        """The bench's name (``[bench] name``)."""
        return self.bench.name

    @property
    def backend(self) -> str:
        """Which backend the bench builds (``[bench] backend``)."""
        return self.bench.backend

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.crossbar.rows, self.crossbar.cols

    @property
    def safety_limits(self) -> SafetyLimits:
        """The drivers' :class:`SafetyLimits` (max_voltage V, max_compliance A)."""
        return self.limits.safety

    @model_validator(mode="after")
    def _row_drivers_within_rows(self) -> BenchConfig:
        if self.wiring.row_drivers > self.crossbar.rows:
            raise ValueError(
                f"[wiring] row_drivers = {self.wiring.row_drivers}: allowed an integer "
                f"in [1, {self.crossbar.rows}] (crossbar rows)"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (TOML/JSON-serialisable, ``None`` entries dropped) for data files;
        :func:`parse_bench_config` of it gives the same configuration back."""
        out = _ADAPTER.dump_python(self, exclude_none=True, exclude={"source"})
        for table in ("faults", "device"):
            if not out["simulation"][table]:
                del out["simulation"][table]
        return out


_ADAPTER = TypeAdapter(BenchConfig)
_SECTIONS: dict[str, type] = {
    name: kind for name, kind in typing.get_type_hints(BenchConfig).items() if name != "source"
}


# --------------------------------------------------------------------------------------------
# Parsing: pydantic validates, the first error becomes the one-line message
# --------------------------------------------------------------------------------------------


def parse_bench_config(data: Mapping[str, Any], *, origin: str = "<dict>") -> BenchConfig:
    """Validate a parsed TOML document (nested dicts) into a :class:`BenchConfig`.

    :param origin: the file name used in error messages.
    :raises BenchConfigError: unknown section/key, wrong type, value out of range, or
        inconsistent values (duplicate DIO pins, read limit above the voltage limit).
    """
    if not isinstance(data, Mapping):
        raise BenchConfigError(f"{origin}: the bench description must be a table")
    unknown = [k for k in data if k not in _SECTIONS]
    if unknown:
        allowed = ", ".join(f"[{s}]" for s in _SECTIONS)
        raise BenchConfigError(f"{origin}: unknown section [{unknown[0]}]: allowed {allowed}")
    try:
        return _ADAPTER.validate_python({**data, "source": origin})
    except ValidationError as exc:
        first = min(exc.errors(), key=lambda err: _reading_order(err, data))
        raise BenchConfigError(f"{origin}: {_message(first)}") from None


def _reading_order(err: Mapping[str, Any], data: Mapping[str, Any]) -> tuple[float, ...]:
    """Rank of an error as a reader meets it: sections in :data:`_SECTIONS` order, keys in the
    file's order, fault tables after their section's keys; consistency rules after every key."""
    loc = tuple(err["loc"])
    sections = list(_SECTIONS)
    if err["type"] == "value_error" or not loc:
        return (len(sections), sections.index(loc[0]) if loc else len(sections))
    rank: list[float] = [sections.index(loc[0])]
    node = data[loc[0]]
    for part in loc[1:]:
        if part == "[key]":  # the table's name itself is wrong: before anything inside it
            rank[-1] -= 0.5
            break
        keys = (
            sorted(node, key=lambda k: k in ("faults", "device"))
            if isinstance(node, Mapping)
            else []
        )
        rank.append(keys.index(part) if part in keys else -1)
        node = node.get(part) if isinstance(node, Mapping) else None
    return tuple(rank)


def _message(err: Mapping[str, Any]) -> str:
    """One pydantic error as ``[section] key = value: allowed …`` (or the section's problem)."""
    kind, loc, value = err["type"], tuple(err["loc"]), err["input"]
    if kind == "value_error":  # a model validator's consistency rule: its own message
        return str(err["ctx"]["error"])
    faults = ", ".join(f"[simulation.faults.{t}]" for t in _FAULT_TARGETS)
    if loc[:2] == ("simulation", "device"):
        if len(loc) == 2:
            return f"[simulation] device = {_show(value)}: allowed a table [simulation.device]"
        where, cls, key = "[simulation.device]", DeviceSection, loc[2:]
    elif loc[:2] == ("simulation", "faults"):
        if len(loc) == 2:
            return f"[simulation] faults = {_show(value)}: allowed a table with {faults}"
        if loc[-1] == "[key]":
            return f"unknown section [simulation.faults.{loc[2]}]: allowed {faults}"
        where, cls, key = f"[simulation.faults.{loc[2]}]", FaultSettings, loc[3:]
    else:
        where, cls, key = f"[{loc[0]}]", _SECTIONS[loc[0]], loc[1:]
    if not key:
        return f"{where} must be a table, got {_show(value)}"
    if kind == "unexpected_keyword_argument":
        allowed = ", ".join(sorted(f.name for f in dataclasses.fields(cls)))
        return f"{where} unknown key {key[0]!r}: allowed keys {allowed}"
    return f"{where} {key[0]} = {_show(value)}: allowed {allowed_text(cls, key[0], kind)}"


def allowed_text(cls: type, key: str, kind: str = "") -> str:
    """What field ``key`` of the pydantic-annotated dataclass ``cls`` accepts, from its
    declaration (type, choices, bounds), e.g. ``"a number in [0, 1]"``; ``kind`` is the pydantic
    error type (a wrong type says "a finite number")."""
    of, constraints = _declared(cls, key)

    def meta(name: str) -> Any:
        return next((getattr(m, name) for m in constraints if hasattr(m, name)), None)

    if typing.get_origin(of) is Literal:
        return ", ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in typing.get_args(of))
    if of is bool:
        return "true or false"
    if of is str:
        return "a non-empty string" if meta("pattern") else "a string"
    lo_open = meta("gt") is not None
    hi_open = meta("lt") is not None
    span = range_text(
        meta("gt") if lo_open else meta("ge"),
        meta("lt") if hi_open else meta("le"),
        lo_open,
        hi_open,
    )
    if of is int:
        return f"an integer{span}"
    wrong_type = kind in ("float_type", "finite_number", "float_parsing")
    return f"{'a finite number' if wrong_type else 'a number'}{span}"


def _declared(cls: type, key: str) -> tuple[Any, list[Any]]:
    """A field's value type (an optional value: what it is when present) and its pydantic
    constraints (Ge, Gt, Le, pattern …)."""
    hint = typing.get_type_hints(cls, include_extras=True)[key]
    if type(None) in typing.get_args(hint):
        (hint,) = (t for t in typing.get_args(hint) if t is not type(None))
    if typing.get_origin(hint) is not Annotated:
        return hint, []
    of, *extras = typing.get_args(hint)
    return of, [m for extra in extras for m in getattr(extra, "metadata", [extra])]


def range_text(
    lo: float | None,
    hi: float | None,
    lo_open: bool = False,
    hi_open: bool = False,
    unit: str = "",
) -> str:
    """The allowed range of a number as message text, with a leading space: ``" in (0, 5]"``,
    ``" >= 0"``, ``" <= 1 V"`` (``unit`` as given, e.g. ``" V"``); ``""`` when unbounded."""
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f" {'>' if lo_open else '>='} {lo:g}{unit}"
    if lo is None:
        return f" {'<' if hi_open else '<='} {hi:g}{unit}"
    return f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}{unit}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)


def toml_text(data: Mapping[str, Any], prefix: str = "") -> str:
    """A bench description (nested dicts, e.g. :meth:`BenchConfig.to_dict`) as TOML text:
    scalars as ``key = value``, nested dicts as ``[section]`` / ``[section.sub]`` tables.
    Valid or not: :func:`parse_bench_config` judges the content."""
    lines: list[str] = []
    tables = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    out = f"[{prefix}]\n" if prefix and lines else ""
    out += "".join(line + "\n" for line in lines)
    for key, value in tables:
        out += "\n" + toml_text(value, f"{prefix}.{key}" if prefix else key)
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)
    return str(value)


def builtin_bench_path(name: str) -> Path:
    """Path of the built-in bench file ``crossbar/benches/<name>.toml``."""
    if name not in BUILTIN_BENCHES:
        raise BenchConfigError(
            f"unknown built-in bench {name!r}: allowed "
            + ", ".join(f'"{b}"' for b in BUILTIN_BENCHES)
            + " or the path of a .toml file"
        )
    ref = resources.files("crossbar").joinpath("benches", f"{name}.toml")
    return Path(str(ref))


def load_bench_config(path_or_name: str | Path = "sim") -> BenchConfig:
    """Load a bench: a built-in name (``"sim"``) or the path of a TOML file.

    :raises BenchConfigError: missing file, TOML syntax error, or invalid content (the message
        names the file, the key and the allowed values).
    """
    if isinstance(path_or_name, str) and path_or_name in BUILTIN_BENCHES:
        path = builtin_bench_path(path_or_name)
        origin = f"{path_or_name} ({path.name})"
    else:
        path = Path(path_or_name)
        origin = str(path_or_name)
        if not path.is_file():
            hint = ", ".join(f'"{b}"' for b in BUILTIN_BENCHES)
            raise BenchConfigError(
                f"{origin}: no such bench file (give a .toml path or a built-in name: {hint})"
            )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BenchConfigError(f"{origin}: not valid TOML ({exc})") from None
    cfg = parse_bench_config(data, origin=origin)
    sim = cfg.simulation
    if sim.profile_is_file:  # relative to the bench file, checked now
        device = Path(sim.profile)
        if not device.is_absolute():
            device = path.parent / device
        load_device_json(device, origin=f'{origin}: [simulation] profile = "{sim.profile}"')
        cfg = dataclasses.replace(cfg, simulation=dataclasses.replace(sim, profile=str(device)))
    return cfg


_DEVICE_ADAPTER = TypeAdapter(DeviceSection)


def load_device_json(path: str | Path, *, origin: str | None = None) -> dict[str, Any]:
    """The device fields of a profile JSON (an object of
    :class:`~crossbar.device_params.DeviceParameters` fields, as ``DeviceProfile.to_dict``
    writes it; absent fields take their defaults), each checked against its declaration and
    the whole against the rules between fields.

    :param origin: how the file is named in messages (default: its path).
    :raises BenchConfigError: unreadable file, not a JSON object, an unknown field or a value
        out of range (one line naming the field and what is allowed).
    """
    where = origin or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchConfigError(
            f"{where}: cannot read the device profile ({exc.strerror or exc})"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchConfigError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BenchConfigError(f"{where}: a device profile is a JSON object of device fields")
    try:
        _DEVICE_ADAPTER.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key, value = err["loc"][0], err["input"]
        if err["type"] == "unexpected_keyword_argument":
            raise BenchConfigError(
                f"{where}: unknown device field {key!r}: allowed fields "
                + ", ".join(sorted(DEVICE_FIELDS))
            ) from None
        raise BenchConfigError(
            f"{where}: {key} = {_show(value)}: "
            f"allowed {allowed_text(DeviceSection, key, err['type'])}"
        ) from None
    merged = {**dataclasses.asdict(DeviceParameters()), **data}
    problems = cross_field_problems(merged)
    if problems:
        raise BenchConfigError(f"{where}: {problems[0]}")
    return dict(data)
