"""The one place a bench is built: :func:`open_backend`.

This package sits above both the crossbar layer and the simulation (ophyd-async style: the
simulated backends implement :mod:`crossbar.backend` themselves), so it is the only place the
application chooses between the instruments and a simulation.

From a :class:`~crossbar.config.BenchConfig` (or a bench file / built-in name):

* ``backend = "instruments"``: a pyvisa session to the Keithley 6487, ``pydwf.DwfLibrary()``
  for the Analog Discovery 2, the drivers and the switch matrix →
  :class:`~crossbar.hardware.InstrumentBackend`;
* ``backend = "twins"`` (the built-in ``sim`` bench): :func:`sim_backends.bench_sim.build_sim_bench`
  → the SAME drivers over the twins → :class:`~crossbar.hardware.InstrumentBackend`, with the
  twins' handles on ``backend.sim_handles`` (recorded command streams, the virtual clock, the
  simulated array);
* ``backend = "physics"``: :class:`sim_backends.physics_backend.PhysicsBackend` around a
  :class:`sim_backends.array.SimulatedCrossbar`, the fast path.

:func:`run_checks` (:mod:`lab.check`) opens the same pieces one by one for the bench
self-test (``xbar check``).

Opening an instrument bench resets the 6487 (``*RST``, ``*CLS``), runs its zero correction,
reads its mains frequency (the NPLC bound) and releases the switch matrix, so every session
starts from a known, safe state.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from crossbar.backend import CrossbarBackend
from crossbar.config import BenchConfig, BenchConfigError, load_bench_config, load_device_json
from crossbar.device_params import cross_field_problems
from crossbar.hardware import InstrumentBackend
from instruments.analog_discovery2 import AWG_MAX_VOLTAGE, AnalogDiscovery2
from instruments.errors import ConnectionLost, InstrumentError
from instruments.keithley6487 import Keithley6487
from instruments.switch_matrix import Bus, SwitchMatrix, SwitchWiring
from sim_backends.array import SimulatedCrossbar
from sim_backends.bench_sim import DEFAULT_BUS_CODES, SimHandles, build_sim_bench
from sim_backends.clock import VirtualClock
from sim_backends.faults import FaultPlan
from sim_backends.physics_backend import PhysicsBackend
from sim_backends.profiles import PROFILES, DeviceProfile, get_profile

__all__ = [
    "CheckReport",
    "device_profile",
    "open_backend",
    "resolve_config",
    "run_checks",
    "sim_handles_of",
    "simulated_profiles",
]

log = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    """``run_checks`` and ``CheckReport`` of :mod:`lab.check` (the bench self-test), loaded on
    first use: that module builds on this one."""
    if name in ("run_checks", "CheckReport"):
        from lab import check

        return getattr(check, name)
    raise AttributeError(f"module 'lab' has no attribute {name!r}")


def resolve_config(config: BenchConfig | str | Path) -> BenchConfig:
    """A BenchConfig as is; a built-in name or a TOML path loaded (BenchConfigError if bad)."""
    if isinstance(config, BenchConfig):
        return config
    return load_bench_config(config)


def open_backend(config: BenchConfig | str | Path = "sim") -> CrossbarBackend:
    """Build the backend a bench describes (see the module docstring).

    :param config: a BenchConfig, a built-in bench name (``"sim"``) or a bench TOML path.
    :raises BenchConfigError: invalid bench description (file, key and allowed values named).
    :raises InstrumentError: an instrument could not be reached (``ConnectionLost``) or
        reported an error while being initialised.
    """
    cfg = resolve_config(config)
    if cfg.backend == "instruments":
        return _open_instruments(cfg)
    if cfg.backend == "twins":
        return _open_twins(cfg)
    return _open_physics(cfg)


def simulated_profiles() -> tuple[str, ...]:
    """Names of the simulated device profiles a bench's ``[simulation] profile`` may name
    (for choosers that must not import the simulation themselves)."""
    return tuple(PROFILES)


def sim_handles_of(backend: CrossbarBackend) -> SimHandles | None:
    """The twins' handles of a backend opened on the simulated bench (else None)."""
    return getattr(backend, "sim_handles", None)


# --------------------------------------------------------------------------------------------


def _wiring(cfg: BenchConfig) -> SwitchWiring:
    w = cfg.wiring
    return SwitchWiring(
        data_pin=w.data_pin,
        clk_pin=w.clk_pin,
        latch_pin=w.latch_pin,
        enable_pin=w.enable_pin,
        rows=cfg.crossbar.rows,
        cols=cfg.crossbar.cols,
    )


def device_profile(cfg: BenchConfig) -> DeviceProfile:
    """The simulated device a bench describes: ``[simulation] profile`` (a preset name, or the
    path of a profile JSON) with the fields of ``[simulation.device]`` replaced. A device
    changed inline is named ``"<profile>+inline"`` (unless it sets ``name``) and has no
    ``target_usability`` (unless it sets one).

    :raises BenchConfigError: unknown preset, unreadable or invalid profile JSON, or fields
        that together break a rule between fields (one line naming the field).
    """
    sim = cfg.simulation
    where = f'{cfg.source}: [simulation] profile = "{sim.profile}"'
    if sim.profile_is_file:
        base = DeviceProfile.from_dict(load_device_json(sim.profile, origin=where))
    else:
        try:
            base = get_profile(sim.profile)
        except KeyError:
            allowed = ", ".join(f'"{p}"' for p in sorted(PROFILES))
            raise BenchConfigError(
                f"{where}: allowed {allowed} or the path of a profile JSON (*.json)"
            ) from None
    given = sim.device.given()
    if not given:
        return base
    changes = {"name": f"{base.name}+inline", "target_usability": None, **given}
    problems = cross_field_problems({**base.to_dict(), **changes})
    if problems:
        raise BenchConfigError(f"{cfg.source}: [simulation.device] {problems[0]}")
    return base.replace(**changes)


def _compose(
    cfg: BenchConfig,
    keithley: Keithley6487,
    ad2: AnalogDiscovery2,
    handles: SimHandles | None = None,
) -> InstrumentBackend:
    """Initialise the opened instruments and wrap them (closing them if that fails): switch
    matrix released, 6487 reset (``*RST``, ``*CLS``, error queue), zero correction, and its
    mains frequency read (``SYST:LFR?``: the NPLC bound). ``handles``: the twins' (their
    virtual clock; the twins charge the sweep polls' waits themselves)."""
    legacy = cfg.instruments.io_path == "legacy"
    matrix = SwitchMatrix(ad2, _wiring(cfg), mode="legacy" if legacy else "pattern")
    keithley.skip_unchanged = not legacy  # settings written only when they change
    ad2.skip_unchanged = not legacy
    backend = InstrumentBackend(
        keithley,
        ad2,
        matrix,
        cfg,
        clock=None if handles is None else handles.clock,
        poll_interval=None if handles is None else 0.0,
        sim_handles=handles,
    )
    try:
        matrix.release()
        keithley.reset()
        keithley.write("*CLS")
        keithley.check_errors()
        keithley.zero_correct()
        backend.read_line_frequency()
    except BaseException:
        backend.close()
        raise
    return backend


def _sim_handles(cfg: BenchConfig) -> SimHandles:
    """The twins of a ``backend = "twins"`` bench, on the simulated crossbar (with its faults)."""
    sim = cfg.simulation
    faults = {target: FaultPlan.from_mapping(settings) for target, settings in sim.faults.items()}
    return build_sim_bench(
        device_profile(cfg),
        seed=sim.seed,
        shape=cfg.shape,
        line_resistance=cfg.crossbar.line_resistance_ohm,
        latency_s=sim.latency_s,
        usb_latency_s=sim.usb_latency_s,
        faults=faults or None,
        tia_gain=cfg.wiring.tia_gain_ohm,
        pins={
            "data_pin": cfg.wiring.data_pin,
            "clk_pin": cfg.wiring.clk_pin,
            "latch_pin": cfg.wiring.latch_pin,
            "enable_pin": cfg.wiring.enable_pin,
        },
        bus_codes={name: int(Bus[name]) for name in DEFAULT_BUS_CODES},
        poll_wait_s=cfg.instruments.sweep_poll_s,
        timeout_s=cfg.instruments.keithley_timeout_ms / 1000.0,
        device_noise=sim.device_noise,
        line_frequency=sim.line_frequency_hz,
    )


def _keithley(cfg: BenchConfig, handles: SimHandles | None = None) -> Keithley6487:
    """The 6487 driver: on the twin's adapter, or on a VISA session to ``keithley_resource``
    (ConnectionLost when pyvisa cannot open it: no VISA library, unknown resource, ...)."""
    limits = cfg.safety_limits
    if handles is not None:
        return Keithley6487(handles.adapter, limits=limits)
    inst = cfg.instruments
    try:
        return Keithley6487(inst.keithley_resource, limits=limits, timeout=inst.keithley_timeout_ms)
    except InstrumentError:
        raise
    except Exception as exc:  # pyvisa: no backend, unknown resource, ...
        raise ConnectionLost(
            f"Keithley 6487: cannot open {inst.keithley_resource!r} ({exc})",
            instrument="Keithley 6487",
        ) from exc


def _ad2(cfg: BenchConfig, handles: SimHandles | None = None) -> AnalogDiscovery2:
    """The AD2 driver, opened: on the twin's pydwf library, or on ``pydwf.DwfLibrary()`` (the
    WaveForms runtime; ConnectionLost when it cannot be loaded or no AD2 answers)."""
    limits = cfg.safety_limits
    serial = cfg.instruments.ad2_serial or None
    if handles is not None:
        ad2 = AnalogDiscovery2(
            handles.dwf_library,
            serial_number=serial,
            limits=limits,
            clock=handles.clock.now,
            sleep=handles.clock.advance,
        )
        return ad2.open()
    import pydwf  # the WaveForms runtime is loaded only for a real bench

    try:
        library = pydwf.DwfLibrary()
    except pydwf.PyDwfError as exc:
        raise ConnectionLost(
            f"Analog Discovery 2: the WaveForms runtime (libdwf) cannot be loaded ({exc})",
            instrument="Analog Discovery 2",
        ) from exc
    return AnalogDiscovery2(library, serial_number=serial, limits=limits).open()


def _close_keithley(keithley: Keithley6487) -> None:
    """Shut the 6487 down and close its session (never raises)."""
    keithley.shutdown()
    try:
        keithley.adapter.close()
    except Exception as exc:  # noqa: BLE001 - closing must not mask the original error
        log.warning("Keithley 6487: closing the session failed: %s", exc)


def _open_instruments(cfg: BenchConfig) -> InstrumentBackend:
    keithley = _keithley(cfg)
    try:
        ad2 = _ad2(cfg)
    except BaseException:
        _close_keithley(keithley)
        raise
    return _compose(cfg, keithley, ad2)


def _open_twins(cfg: BenchConfig) -> InstrumentBackend:
    handles = _sim_handles(cfg)
    keithley = _keithley(cfg, handles)
    ad2 = _ad2(cfg, handles)
    return _compose(cfg, keithley, ad2, handles)


def _open_physics(cfg: BenchConfig) -> PhysicsBackend:
    sim = cfg.simulation
    crossbar = SimulatedCrossbar(
        device_profile(cfg),
        cfg.shape,
        seed=sim.seed,
        r_row=cfg.crossbar.line_resistance_ohm,
        r_col=cfg.crossbar.line_resistance_ohm,
        clock=VirtualClock(),
    )
    return PhysicsBackend(
        crossbar,
        limits=cfg.safety_limits,
        max_read_voltage=cfg.limits.max_read_voltage,
        row_drivers=cfg.wiring.row_drivers,
        max_pulse_voltage=(
            cfg.limits.max_voltage if cfg.wiring.pulse_instrument == "keithley" else AWG_MAX_VOLTAGE
        ),
        name=cfg.bench.name,
        bench_config=cfg,
    )
