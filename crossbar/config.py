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
    profile = "optimized"
    seed = 0
    latency_s = 0.003                # GPIB transaction latency of the 6487 twin

    [simulation.faults.keithley]     # optional fault injection (see sim_backends.faults)
    timeout_after = 50

Loading is strict: an unknown section or key, a value of the wrong type or out of range raises
:class:`BenchConfigError` naming the file, the section, the key and what is allowed, e.g.
``bench.toml: [wiring] pulse_instrument = "awg": allowed "ad2", "keithley"``.

This module only describes the bench; :func:`lab.open_backend` builds it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

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
    "FaultSettings",
    "InstrumentsSection",
    "LimitsSection",
    "SimulationSection",
    "WiringSection",
    "builtin_bench_path",
    "load_bench_config",
    "parse_bench_config",
]

BACKENDS = ("instruments", "twins", "physics")
PULSE_INSTRUMENTS = ("ad2", "keithley")
BUILTIN_BENCHES = ("sim",)

#: Instrument ceilings used to bound configuration values (INSTRUMENTS.md).
_KEITHLEY_MAX_V = 505.0
_KEITHLEY_MAX_I = 25e-3


class BenchConfigError(ValueError):
    """A bench file (or dict) that does not describe a valid bench; the message names the file,
    the ``[section] key`` and the allowed values."""


# --------------------------------------------------------------------------------------------
# Field checks: each returns the converted value or raises _Bad(allowed-description)
# --------------------------------------------------------------------------------------------


class _Bad(Exception):
    def __init__(self, allowed: str) -> None:
        super().__init__(allowed)
        self.allowed = allowed


def _int(lo: int | None = None, hi: int | None = None, *, optional: bool = False) -> Callable:
    def check(v: Any) -> int | None:
        span = _span(lo, hi)
        if optional and v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(f"an integer{span}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise _Bad(f"an integer{span}")
        return int(v)

    return check


def _float(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Callable:
    def check(v: Any) -> float:
        span = _span(lo, hi, lo_open=lo_open)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _Bad(f"a finite number{span}")
        x = float(v)
        if lo is not None and (x < lo or (lo_open and x == lo)):
            raise _Bad(f"a number{span}")
        if hi is not None and x > hi:
            raise _Bad(f"a number{span}")
        return x

    return check


def _str(*, nonempty: bool = False) -> Callable:
    def check(v: Any) -> str:
        if not isinstance(v, str) or (nonempty and not v.strip()):
            raise _Bad("a non-empty string" if nonempty else "a string")
        return v

    return check


def _choice(*allowed: str) -> Callable:
    def check(v: Any) -> str:
        if not isinstance(v, str) or v not in allowed:
            raise _Bad(", ".join(f'"{a}"' for a in allowed))
        return v

    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad("true or false")
    return v


def _span(lo: float | None, hi: float | None, *, lo_open: bool = False) -> str:
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f" {'>' if lo_open else '>='} {lo:g}"
    if lo is None:
        return f" <= {hi:g}"
    return f" in {'(' if lo_open else '['}{lo:g}, {hi:g}]"


def _check(fn: Callable) -> dict:
    return {"check": fn}


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchSection:
    """``[bench]``: the bench's name and which backend it builds."""

    name: str = field(default="sim", metadata=_check(_str(nonempty=True)))
    backend: str = field(default="twins", metadata=_check(_choice(*BACKENDS)))
    description: str = field(default="", metadata=_check(_str()))


@dataclass(frozen=True)
class InstrumentsSection:
    """``[instruments]``: how to reach the real instruments (backend "instruments").

    ``sweep_poll_s`` is the wait between ``SOUR:VOLT:SWE:STAT?`` polls while a built-in sweep
    runs (the twins charge it to their virtual clock instead of sleeping);
    ``builtin_descending`` lets descending runs of an I-V sweep use the 6487's built-in
    staircase too (the manual says it can; unverified on the bench, so off by default).
    """

    keithley_resource: str = field(default="GPIB0::22::INSTR", metadata=_check(_str(nonempty=True)))
    keithley_timeout_ms: int = field(default=10_000, metadata=_check(_int(100, 600_000)))
    ad2_serial: str = field(default="", metadata=_check(_str()))
    sweep_poll_s: float = field(default=0.1, metadata=_check(_float(0.0, 10.0, lo_open=True)))
    builtin_descending: bool = field(default=False, metadata=_check(_bool))


@dataclass(frozen=True)
class WiringSection:
    """``[wiring]``: switch-matrix DIO pins, TIA gain, pulse and MVM drivers, scope settings.

    ``pulse_instrument``: which instrument applies programming pulses beyond the AWG's ±5 V:
    ``"keithley"`` (the 6487 source, up to ``limits.max_voltage``) or ``"ad2"`` (nothing beyond
    the AWG: pulses are limited to ±5 V). ``row_drivers``: rows driven at once in an MVM (the
    AD2 has 2 AWG channels; rows are applied in groups and the currents summed).
    """

    data_pin: int = field(default=0, metadata=_check(_int(0, 15)))
    clk_pin: int = field(default=1, metadata=_check(_int(0, 15)))
    latch_pin: int = field(default=2, metadata=_check(_int(0, 15)))
    enable_pin: int = field(default=3, metadata=_check(_int(0, 15)))
    tia_gain_ohm: float = field(default=10_000.0, metadata=_check(_float(1.0, 1e9)))
    pulse_instrument: str = field(default="ad2", metadata=_check(_choice(*PULSE_INSTRUMENTS)))
    row_drivers: int = field(default=2, metadata=_check(_int(1, 1024)))
    scope_range_v: float = field(default=5.0, metadata=_check(_float(0.0, 50.0, lo_open=True)))
    scope_sample_rate_hz: float = field(
        default=1e6, metadata=_check(_float(0.0, 100e6, lo_open=True))
    )
    scope_samples: int = field(default=1000, metadata=_check(_int(16, 8192)))
    read_nplc: float = field(default=1.0, metadata=_check(_float(0.01, 6.0)))

    @property
    def pins(self) -> tuple[int, int, int, int]:
        """(data, clk, latch, enable) DIO pins."""
        return (self.data_pin, self.clk_pin, self.latch_pin, self.enable_pin)


@dataclass(frozen=True)
class CrossbarSection:
    """``[crossbar]``: array size and line resistance (Ω per segment, simulation only)."""

    rows: int = field(default=10, metadata=_check(_int(1, 256)))
    cols: int = field(default=10, metadata=_check(_int(1, 256)))
    line_resistance_ohm: float = field(default=0.0, metadata=_check(_float(0.0, 1e6)))


@dataclass(frozen=True)
class LimitsSection:
    """``[limits]``: the bench's safety limits (V, A) and the largest read/MVM voltage (V)."""

    max_voltage: float = field(
        default=6.0, metadata=_check(_float(0.0, _KEITHLEY_MAX_V, lo_open=True))
    )
    max_compliance: float = field(
        default=1e-3, metadata=_check(_float(0.0, _KEITHLEY_MAX_I, lo_open=True))
    )
    max_read_voltage: float = field(default=0.3, metadata=_check(_float(0.0, 5.0, lo_open=True)))

    @property
    def safety(self) -> SafetyLimits:
        """As the drivers' :class:`~instruments.errors.SafetyLimits`."""
        return SafetyLimits(max_voltage=self.max_voltage, max_compliance=self.max_compliance)


@dataclass(frozen=True)
class FaultSettings:
    """One instrument's fault-injection plan (``[simulation.faults.keithley]`` or ``.ad2``);
    the fields mirror :class:`sim_backends.faults.FaultPlan`. Counts are transactions (bus
    messages on the 6487, pydwf calls on the AD2); absent = never."""

    timeout_after: int | None = field(default=None, metadata=_check(_int(0, optional=True)))
    garbled_after: int | None = field(default=None, metadata=_check(_int(0, optional=True)))
    connection_lost_after: int | None = field(default=None, metadata=_check(_int(0, optional=True)))
    error_after: int | None = field(default=None, metadata=_check(_int(0, optional=True)))
    error_code: int = field(default=-200, metadata=_check(_int(-999, 999)))
    compliance_after: int | None = field(default=None, metadata=_check(_int(0, optional=True)))
    timeout_rate: float = field(default=0.0, metadata=_check(_float(0.0, 1.0)))
    garbled_rate: float = field(default=0.0, metadata=_check(_float(0.0, 1.0)))
    seed: int = field(default=0, metadata=_check(_int(0)))

    @property
    def active(self) -> bool:
        """True when any fault is planned."""
        return any(
            getattr(self, n) is not None
            for n in (
                "timeout_after",
                "garbled_after",
                "connection_lost_after",
                "error_after",
                "compliance_after",
            )
        ) or (self.timeout_rate > 0 or self.garbled_rate > 0)


@dataclass(frozen=True)
class SimulationSection:
    """``[simulation]``: the simulated array and the twins (backends "twins" and "physics").

    ``profile`` names a device profile of :mod:`sim_backends.profiles` (checked when the backend
    is opened); ``latency_s`` is the 6487 twin's bus latency per transaction (GPIB-like), and
    ``usb_latency_s`` the AD2 twin's per pydwf call; ``device_noise`` turns the devices' read
    noise on; ``faults`` holds ``keithley`` and ``ad2`` fault plans.
    """

    profile: str = field(default="optimized", metadata=_check(_str(nonempty=True)))
    seed: int = field(default=0, metadata=_check(_int(0)))
    latency_s: float = field(default=0.003, metadata=_check(_float(0.0, 10.0)))
    usb_latency_s: float = field(default=0.001, metadata=_check(_float(0.0, 10.0)))
    device_noise: bool = field(default=True, metadata=_check(_bool))
    faults: dict[str, FaultSettings] = field(default_factory=dict)


_FAULT_TARGETS = ("keithley", "ad2")


@dataclass(frozen=True)
class BenchConfig:
    """A whole bench (see the module docstring for the file format).

    ``source`` is the file it was loaded from (or ``"<dict>"`` / the built-in name).
    """

    bench: BenchSection = field(default_factory=BenchSection)
    instruments: InstrumentsSection = field(default_factory=InstrumentsSection)
    wiring: WiringSection = field(default_factory=WiringSection)
    crossbar: CrossbarSection = field(default_factory=CrossbarSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    simulation: SimulationSection = field(default_factory=SimulationSection)
    source: str = "<defaults>"

    @property
    def name(self) -> str:
        return self.bench.name

    @property
    def backend(self) -> str:
        return self.bench.backend

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.crossbar.rows, self.crossbar.cols

    @property
    def safety_limits(self) -> SafetyLimits:
        """The drivers' :class:`SafetyLimits` (max_voltage V, max_compliance A)."""
        return self.limits.safety

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (TOML/JSON-serialisable, ``None`` entries dropped) for data files;
        :func:`parse_bench_config` of it gives the same configuration back."""
        out: dict[str, Any] = {}
        for section in _SECTIONS:
            obj = getattr(self, section)
            d: dict[str, Any] = {}
            for f in dataclasses.fields(obj):
                value = getattr(obj, f.name)
                if f.name == "faults":
                    faults = {
                        k: {
                            g.name: getattr(v, g.name)
                            for g in dataclasses.fields(v)
                            if getattr(v, g.name) is not None
                        }
                        for k, v in value.items()
                    }
                    if faults:
                        d["faults"] = faults
                elif value is not None:
                    d[f.name] = value
            out[section] = d
        return out


_SECTIONS: dict[str, type] = {
    "bench": BenchSection,
    "instruments": InstrumentsSection,
    "wiring": WiringSection,
    "crossbar": CrossbarSection,
    "limits": LimitsSection,
    "simulation": SimulationSection,
}


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


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


def _build_section(cls: type, data: Any, where: str, origin: str) -> Any:
    if not isinstance(data, Mapping):
        raise BenchConfigError(f"{origin}: {where} must be a table, got {_show(data)}")
    fields_ = {f.name: f for f in dataclasses.fields(cls) if "check" in f.metadata}
    extra = {f.name for f in dataclasses.fields(cls)} - set(fields_)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in extra:
            continue
        if key not in fields_:
            allowed = ", ".join(sorted(set(fields_) | extra))
            raise BenchConfigError(f"{origin}: {where} unknown key {key!r}: allowed keys {allowed}")
        try:
            kwargs[key] = fields_[key].metadata["check"](value)
        except _Bad as bad:
            raise BenchConfigError(
                f"{origin}: {where} {key} = {_show(value)}: allowed {bad.allowed}"
            ) from None
    return kwargs


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
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        raw = data.get(name, {})
        kwargs = _build_section(cls, raw, f"[{name}]", origin)
        if name == "simulation":
            kwargs["faults"] = _parse_faults(raw.get("faults", {}), origin)
        sections[name] = cls(**kwargs)
    config = BenchConfig(**sections, source=origin)
    _check_consistency(config, origin)
    return config


def _parse_faults(raw: Any, origin: str) -> dict[str, FaultSettings]:
    if not isinstance(raw, Mapping):
        raise BenchConfigError(
            f"{origin}: [simulation] faults = {_show(raw)}: allowed a table with "
            + ", ".join(f"[simulation.faults.{t}]" for t in _FAULT_TARGETS)
        )
    out: dict[str, FaultSettings] = {}
    for target, plan in raw.items():
        if target not in _FAULT_TARGETS:
            raise BenchConfigError(
                f"{origin}: unknown section [simulation.faults.{target}]: allowed "
                + ", ".join(f"[simulation.faults.{t}]" for t in _FAULT_TARGETS)
            )
        where = f"[simulation.faults.{target}]"
        out[target] = FaultSettings(**_build_section(FaultSettings, plan, where, origin))
    return out


def _check_consistency(config: BenchConfig, origin: str) -> None:
    pins = config.wiring.pins
    if len(set(pins)) != len(pins):
        raise BenchConfigError(
            f"{origin}: [wiring] data_pin, clk_pin, latch_pin, enable_pin = {list(pins)}: "
            "allowed four distinct DIO pins 0..15"
        )
    lim = config.limits
    if lim.max_read_voltage > lim.max_voltage:
        raise BenchConfigError(
            f"{origin}: [limits] max_read_voltage = {lim.max_read_voltage!r}: allowed a number "
            f"<= max_voltage ({lim.max_voltage:g})"
        )
    if config.wiring.row_drivers > config.crossbar.rows:
        raise BenchConfigError(
            f"{origin}: [wiring] row_drivers = {config.wiring.row_drivers}: allowed an integer "
            f"in [1, {config.crossbar.rows}] (crossbar rows)"
        )


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
    return parse_bench_config(data, origin=origin)
