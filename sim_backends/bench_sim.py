"""The simulated bench: the buses of the real bench around a simulated crossbar.

:class:`SimBench` holds what the instruments put on the bench's buses and what the switch
matrix connects to each crossbar line, and turns that into circuit-solver line ends:

* SMU_SOURCE: the 6487 source output — its level while operating, else a low-impedance 0 V
  (the source's current limit applies at the line routed there); high impedance (open) while
  the 6487's interlock holds it (``set_smu_floating(True)``), and so are the dividers;
* SMU_SENSE: the 6487 ammeter input (virtual ground; its current is what the 6487 reads);
* AWG1, AWG2: the AD2's waveform generators (their present level);
* TIA1, TIA2: transimpedance amplifiers into scope channels 1/2 (virtual ground,
  ``V_out = −I·tia_gain``);
* BIAS_HALF, BIAS_THIRD, BIAS_TWO_THIRDS: buffered dividers of the SMU source output
  (V/2, V/3, 2V/3);
* GND: ground; FLOAT (and unused codes): open.

The routing comes from a :class:`~sim_backends.fake_pydwf.ShiftRegisterMatrix` fed with the
AD2's DIO words, so the twin sees exactly what the driver shifted in (ENABLE low: every line
floating). Bus codes and DIO pins are plain data passed in (this package does not import the
drivers; :data:`DEFAULT_BUS_CODES` equals ``instruments.switch_matrix.Bus``, which a test checks).

Time: the bench keeps ``t_applied``, the virtual time up to which the devices have experienced
the bus levels. Every state change first applies the present biasing for the time elapsed since
(:meth:`SimBench.sync`; skipped while no two driven levels differ by a switching threshold, so
reads cost no solves), measurements integrate over their own interval, and the instrument twins
advance the shared clock. A line set left entirely floating carries no current.

:func:`build_sim_bench` wires everything: a :class:`SimulatedCrossbar`, the SimBench, the
Keithley 6487 twin adapter and the fake pydwf library of the AD2 twin.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq

from sim_backends.clock import VirtualClock
from sim_backends.fake_pydwf import ShiftRegisterMatrix
from sim_backends.faults import FaultPlan
from sim_backends.solver import End, LineEnds

__all__ = [
    "DEFAULT_BUS_CODES",
    "DEFAULT_PINS",
    "SimBench",
    "SimHandles",
    "build_sim_bench",
]

#: Bus name -> 4-bit multiplexer code (same numbers as ``instruments.switch_matrix.Bus``).
DEFAULT_BUS_CODES: dict[str, int] = {
    "FLOAT": 0,
    "GND": 1,
    "SMU_SOURCE": 2,
    "SMU_SENSE": 3,
    "AWG1": 4,
    "AWG2": 5,
    "TIA1": 6,
    "TIA2": 7,
    "BIAS_HALF": 8,
    "BIAS_THIRD": 9,
    "BIAS_TWO_THIRDS": 10,
}
#: Switch-matrix DIO pins (same defaults as ``instruments.switch_matrix.SwitchWiring``).
DEFAULT_PINS: dict[str, int] = {"data_pin": 0, "clk_pin": 1, "latch_pin": 2, "enable_pin": 3}

_BUS_NAMES = tuple(DEFAULT_BUS_CODES)
_SENSE = ("SMU_SENSE",)
_TIA = ("TIA1", "TIA2")


class _DeviceClock:
    """The crossbar's view of time: the bench's ``t_applied`` (advancing it is the bench's job,
    so a crossbar that advances its clock in ``bias`` cannot double-count time)."""

    def __init__(self, bench: SimBench) -> None:
        self._bench = bench

    def now(self) -> float:
        return self._bench.t_applied

    def advance(self, dt: float) -> None:
        if dt < 0:
            raise ValueError(f"a clock cannot go backwards (dt = {dt} s)")

    sleep = advance


class SimBench:
    """Bus state of the simulated bench around ``crossbar`` (see the module docstring).

    :param crossbar: the simulated array (``sim_backends.array.SimulatedCrossbar``).
    :param tia_gain: transimpedance of TIA1/TIA2, Ω (V/A).
    :param bus_codes: bus name -> multiplexer code (names as in :data:`DEFAULT_BUS_CODES`).
    :param pins: DIO pins ``data_pin``, ``clk_pin``, ``latch_pin``, ``enable_pin``.
    :param clock: the bench's virtual clock (shared with the instrument twins).
    :param bits_per_line: multiplexer code width, bits.
    :param scope_noise_v: rms noise per scope sample at the TIA outputs, V.
    :param tia_rail_v: TIA output saturation, ±V.
    :param device_noise: include the devices' read noise in measurements.
    :param seed: seed of the TIA/scope noise.
    :param open_row: a row whose switch is stuck open (floats whatever is routed), or None.
    """

    def __init__(
        self,
        crossbar: Any,
        *,
        tia_gain: float = 1e4,
        bus_codes: Mapping[str, int] | None = None,
        pins: Mapping[str, int] | None = None,
        clock: VirtualClock | None = None,
        bits_per_line: int = 4,
        scope_noise_v: float = 5e-4,
        tia_rail_v: float = 5.0,
        device_noise: bool = True,
        seed: int = 0,
        open_row: int | None = None,
    ) -> None:
        self.crossbar = crossbar
        rows, cols = _shape_of(crossbar)
        self.rows, self.cols = rows, cols
        self.tia_gain = float(tia_gain)
        if not (math.isfinite(self.tia_gain) and self.tia_gain > 0):
            raise ValueError(f"tia_gain must be > 0 Ω, got {tia_gain!r}")
        codes = dict(DEFAULT_BUS_CODES if bus_codes is None else bus_codes)
        unknown = set(codes) - set(_BUS_NAMES)
        if unknown:
            raise ValueError(f"unknown bus names {sorted(unknown)}; known: {list(_BUS_NAMES)}")
        self.bus_codes = codes
        self.pins = {**DEFAULT_PINS, **(pins or {})}
        self.clock = clock if clock is not None else VirtualClock()
        self.scope_noise_v = float(scope_noise_v)
        self.tia_rail_v = float(tia_rail_v)
        self.device_noise = bool(device_noise)
        self.rng = np.random.default_rng(seed)
        self.matrix = ShiftRegisterMatrix(
            **self.pins,
            rows=rows,
            cols=cols,
            bits_per_line=bits_per_line,
            float_code=codes.get("FLOAT", 0),
        )
        self._role = np.full(1 << bits_per_line, -1, dtype=np.int64)  # code -> bus index
        for name, code in codes.items():
            self._role[int(code)] = _BUS_NAMES.index(name)
        if open_row is not None and not 0 <= int(open_row) < rows:
            raise ValueError(f"open_row must be a row index in [0, {rows}), got {open_row!r}")
        self.open_row = None if open_row is None else int(open_row)
        # bus state
        self.smu_level = 0.0
        self.smu_on = False
        self.smu_floating = False
        self.smu_limit = math.inf
        self.awg = [0.0, 0.0]
        self.t_applied = self.clock.now()
        self.solves = 0
        self.applied_s = 0.0  # s of biasing that was actually simulated (could switch)
        thr = _switching_threshold(crossbar)
        self.switch_threshold = thr

    # ------------------------------------------------------------------ bus levels
    @property
    def smu_output(self) -> float:
        """Voltage on the SMU_SOURCE bus, V (0 with the source off)."""
        return self.smu_level if self.smu_on else 0.0

    def bus_levels(self) -> dict[str, float]:
        """Present level of every driven bus, V."""
        v = self.smu_output
        return {
            "GND": 0.0,
            "SMU_SOURCE": v,
            "AWG1": self.awg[0],
            "AWG2": self.awg[1],
            "BIAS_HALF": v / 2,
            "BIAS_THIRD": v / 3,
            "BIAS_TWO_THIRDS": 2 * v / 3,
        }

    def routing(self) -> tuple[list[str], list[str]]:
        """Bus name connected to every row and column line ("FLOAT" for unused codes and a
        stuck-open switch)."""
        names = [_BUS_NAMES[i] if i >= 0 else "FLOAT" for i in self._roles().tolist()]
        return names[: self.rows], names[self.rows :]

    def _codes(self) -> np.ndarray:
        return np.asarray(self.matrix.rows + self.matrix.cols, dtype=np.int64)

    def _roles(self) -> np.ndarray:
        """Bus index connected to every row then column line (−1: open)."""
        roles = self._role[self._codes()]
        if self.open_row is not None:
            roles[self.open_row] = -1
        return roles

    def line_ends(self, smu_scale: float = 1.0) -> tuple[LineEnds, LineEnds]:
        """(row left ends, column bottom ends) for the solver from routing and bus levels;
        ``smu_scale`` scales the SMU source and the bias buses derived from it (a source in
        compliance delivers only part of its level, and the dividers follow its output)."""
        roles = self._roles()
        levels = self.bus_levels()
        if self.smu_floating:  # the source (and the dividers it feeds) in high impedance
            for name in ("SMU_SOURCE", "BIAS_HALF", "BIAS_THIRD", "BIAS_TWO_THIRDS"):
                del levels[name]
        if smu_scale != 1.0:
            for name in ("SMU_SOURCE", "BIAS_HALF", "BIAS_THIRD", "BIAS_TWO_THIRDS"):
                if name in levels:
                    levels[name] *= smu_scale
        mode_of = np.full(len(_BUS_NAMES) + 1, int(End.FLOAT), dtype=np.int64)
        volt_of = np.zeros(len(_BUS_NAMES) + 1)
        for i, name in enumerate(_BUS_NAMES):
            if name in ("SMU_SENSE", "TIA1", "TIA2"):
                mode_of[i] = int(End.VGROUND)
            elif name == "GND":
                mode_of[i] = int(End.GROUND)
            elif name in levels:
                mode_of[i] = int(End.DRIVE)
                volt_of[i] = levels[name]
        idx = np.where(roles >= 0, roles, len(_BUS_NAMES))
        mode, volt = mode_of[idx], volt_of[idx]
        return (
            LineEnds(mode[: self.rows], volt[: self.rows]),
            LineEnds(mode[self.rows :], volt[self.rows :]),
        )

    def _lines_on(self, *names: str) -> tuple[np.ndarray, np.ndarray]:
        roles = self._roles()
        wanted = [_BUS_NAMES.index(n) for n in names if n in _BUS_NAMES]
        on = np.isin(roles, wanted)
        return on[: self.rows], on[self.rows :]

    def _source_terminal(self) -> tuple[str, int] | None:
        rows, cols = self._lines_on("SMU_SOURCE")
        if rows.any():
            return ("row_left", int(np.flatnonzero(rows)[0]))
        if cols.any():
            return ("col_bottom", int(np.flatnonzero(cols)[0]))
        return None

    def _could_switch(self, row_left: LineEnds, col_bottom: LineEnds) -> bool:
        driven = np.concatenate(
            [
                row_left.voltage[row_left.mode == End.DRIVE],
                col_bottom.voltage[col_bottom.mode == End.DRIVE],
                [0.0],
            ]
        )
        return float(driven.max() - driven.min()) >= self.switch_threshold

    # ------------------------------------------------------------------ time
    def sync(self, until: float | None = None) -> None:
        """Apply the present biasing from ``t_applied`` up to ``until`` (default: now)."""
        t = self.clock.now() if until is None else float(until)
        dt = t - self.t_applied
        if dt <= 0:
            return
        self._hold(dt, noisy=False)
        self.t_applied = t

    def _hold(self, duration: float, *, noisy: bool) -> Any:
        """Solve the present biasing held for ``duration`` s; None when nothing is connected
        (or, for a noiseless hold, when no level could switch a device).

        The 6487's current limit acts at the line routed to SMU_SOURCE. When that source is in
        compliance its output drops, and so do the V/2, V/3, 2V/3 buses (buffered dividers of
        that output): the bench finds the output fraction ``s`` at which the source current
        equals the limit (root-finding on noiseless instantaneous solves), then holds the
        biasing at ``s`` with the limit passed to the crossbar (so cells on the limited line
        stop growing at the limit). The result carries ``compliance=True`` in that case.
        """
        row_left, col_bottom = self.line_ends()
        if np.all(row_left.mode == End.FLOAT) and np.all(col_bottom.mode == End.FLOAT):
            return None
        if not noisy and not self._could_switch(row_left, col_bottom):
            return None
        terminal = self._source_terminal()
        limit = self.smu_limit if (self.smu_on and terminal is not None) else math.inf
        self.solves += 1
        if self._could_switch(row_left, col_bottom):
            self.applied_s += duration
        scale = 1.0
        if math.isfinite(limit) and self._bias_buses_routed():
            scale = self._compliance_scale(terminal, limit)
            if scale < 1.0:
                row_left, col_bottom = self.line_ends(scale)
        result = self.crossbar.bias(
            row_left,
            col_bottom,
            duration_s=duration,
            i_compliance=limit,
            noisy=noisy and self.device_noise,
            compliance_terminal=terminal if math.isfinite(limit) else None,
            reading=noisy,
        )
        if scale < 1.0 and not result.compliance:
            result = _with_compliance(result)
        return result

    def _bias_buses_routed(self) -> bool:
        rows, cols = self._lines_on("BIAS_HALF", "BIAS_THIRD", "BIAS_TWO_THIRDS")
        return bool(rows.any() or cols.any())

    def _compliance_scale(self, terminal: tuple[str, int], limit: float) -> float:
        """Fraction of the SMU output (and of the buses derived from it) at which the source
        current equals ``limit``; 1.0 when the source is not in compliance."""
        group, index = terminal

        def current(scale: float) -> float:
            left, bottom = self.line_ends(scale)
            sol = self.crossbar.bias(left, bottom, duration_s=0.0, noisy=False).solution
            return abs(float(getattr(sol, "i_" + group)[index]))

        if current(1.0) <= limit:
            return 1.0
        if current(0.0) >= limit:
            return 0.0
        return float(brentq(lambda s: current(s) - limit, 0.0, 1.0, xtol=1e-9, rtol=1e-9))

    def apply(self, duration_s: float, *, at: float | None = None) -> None:
        """Hold the present biasing for ``duration_s`` s starting at ``at`` (default the later
        of now and ``t_applied``): devices switch as the levels make them."""
        if duration_s < 0:
            raise ValueError(f"duration_s must be >= 0, got {duration_s}")
        self.sync(at)
        if duration_s > 0:
            self._hold(duration_s, noisy=False)
            self.t_applied += duration_s

    # ------------------------------------------------------------------ state changes
    def set_smu(self, voltage: float, on: bool, i_limit: float, *, at: float | None = None) -> None:
        """The 6487 source: ``voltage`` V while ``on``, current limit ``i_limit`` A."""
        self.sync(at)
        self.smu_level, self.smu_on, self.smu_limit = float(voltage), bool(on), float(i_limit)

    def set_smu_floating(self, floating: bool, *, at: float | None = None) -> None:
        """The 6487 source in high impedance (its interlock holds it) while ``floating``."""
        if bool(floating) != self.smu_floating:
            self.sync(at)
            self.smu_floating = bool(floating)

    def set_awg(self, channel: int, level: float, *, at: float | None = None) -> None:
        """AWG ``channel`` (0 = AWG1, 1 = AWG2) output level, V."""
        self.sync(at)
        self.awg[int(channel)] = float(level)

    def on_dio(self, word: int) -> None:
        """Feed one DIO word (bit i = DIO i) to the switch-matrix model. The present biasing
        is applied up to now first when the word changes the routing (LATCH edge, ENABLE)."""
        m = self.matrix
        latch_edge = (word >> m.latch_pin) & 1 and not (m._last >> m.latch_pin) & 1
        enable_change = bool((word >> m.enable_pin) & 1) != m.enabled
        if latch_edge or enable_change:
            self.sync()
        m.on_word(word)

    # ------------------------------------------------------------------ measurements
    def measure_smu(
        self, duration_s: float, i_limit: float | None = None, *, at: float | None = None
    ) -> tuple[float, bool]:
        """Integrate over ``duration_s`` s from ``at`` (default now): (current into the 6487
        ammeter A — the sum of the currents out of the lines routed to SMU_SENSE — and whether
        the source was in compliance). ``i_limit`` overrides the source's limit (A)."""
        self.sync(at)
        if i_limit is not None:
            self.smu_limit = float(i_limit)
        result = self._hold(max(duration_s, 0.0), noisy=True)
        self.t_applied += max(duration_s, 0.0)
        if result is None:
            return 0.0, False
        sol = result.solution
        rows, cols = self._lines_on(*_SENSE)
        i_in = float(np.sum(sol.i_row_left[rows]) + np.sum(sol.i_col_bottom[cols]))
        return -i_in, bool(result.compliance)

    def line_currents(self, *names: str, duration_s: float = 0.0) -> np.ndarray:
        """Current (A) out of the array into each named bus, one value per name (noisy solve
        over ``duration_s``)."""
        self.sync()
        result = self._hold(duration_s, noisy=True)
        self.t_applied += duration_s
        out = np.zeros(len(names))
        if result is None:
            return out
        sol = result.solution
        for k, name in enumerate(names):
            rows, cols = self._lines_on(name)
            out[k] = -(np.sum(sol.i_row_left[rows]) + np.sum(sol.i_col_bottom[cols]))
        return out

    def tia_voltages(self, n: int, sample_rate: float, *, at: float | None = None) -> np.ndarray:
        """(2, n) TIA1/TIA2 output samples, V: ``−I·tia_gain`` (I out of the lines routed to
        each TIA, one noisy solve over the capture) plus ``scope_noise_v`` rms per sample,
        clipped at ``±tia_rail_v``."""
        n = int(n)
        duration = n / float(sample_rate)
        self.sync(at)
        result = self._hold(duration, noisy=True)
        self.t_applied += duration
        i = np.zeros(2)
        if result is not None:
            sol = result.solution
            for k, name in enumerate(_TIA):
                rows, cols = self._lines_on(name)
                i[k] = -(np.sum(sol.i_row_left[rows]) + np.sum(sol.i_col_bottom[cols]))
        v = -i[:, None] * self.tia_gain + self.scope_noise_v * self.rng.standard_normal((2, n))
        return np.clip(v, -self.tia_rail_v, self.tia_rail_v)


def _with_compliance(result: Any) -> Any:
    """A copy of a crossbar BiasResult flagged as in compliance."""
    try:
        return dataclasses.replace(result, compliance=True)
    except TypeError:
        result.compliance = True
        return result


def _shape_of(crossbar: Any) -> tuple[int, int]:
    shape = getattr(crossbar, "shape", None)
    if shape is None:
        shape = np.shape(crossbar.true_conductance())
    rows, cols = (int(s) for s in shape)
    return rows, cols


def _switching_threshold(crossbar: Any) -> float:
    """Smallest |V| that can switch any device (0 if unknown: every hold is simulated)."""
    devices = getattr(crossbar, "devices", None)
    try:
        v_set = np.asarray(devices.v_set, dtype=float)
        v_reset = np.asarray(devices.v_reset, dtype=float)
        return float(min(v_set.min(), (-v_reset).min()))
    except (AttributeError, TypeError, ValueError):
        return 0.0


# --------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------


@dataclass
class SimHandles:
    """Everything :func:`build_sim_bench` made: hand ``adapter`` to ``Keithley6487`` and
    ``dwf_library`` to ``AnalogDiscovery2``; assert on ``adapter.commands`` and
    ``dwf_library.calls``; ``clock`` is the shared virtual clock (estimated bench time)."""

    adapter: Any  # Keithley6487Twin
    dwf_library: Any  # TwinDwfLibrary
    sim_bench: SimBench
    crossbar: Any  # SimulatedCrossbar
    clock: VirtualClock
    config: dict[str, Any] = field(default_factory=dict)


def build_sim_bench(
    profile: Any = "optimized",
    *,
    seed: int = 0,
    shape: tuple[int, int] = (10, 10),
    line_resistance: float = 0.0,
    latency_s: float = 3e-3,
    usb_latency_s: float = 1e-3,
    faults: FaultPlan | Mapping[str, Any] | None = None,
    tia_gain: float = 1e4,
    pins: Mapping[str, int] | None = None,
    bus_codes: Mapping[str, int] | None = None,
    poll_wait_s: float = 0.1,
    timeout_s: float = 10.0,
    device_noise: bool = True,
    r_source: float = 0.0,
    r_sense: float = 0.0,
    clock: VirtualClock | None = None,
    line_frequency: float = 60.0,
) -> SimHandles:
    """Build the simulated bench: crossbar, SimBench, Keithley 6487 twin, AD2 twin library.

    :param profile: device profile name or ``DeviceProfile``.
    :param seed: seeds the devices (and, offset, the instrument noise).
    :param shape: (rows, cols).
    :param line_resistance: Ω per line segment (rows and columns).
    :param latency_s: 6487 bus latency per transaction, s.
    :param usb_latency_s: AD2 latency per pydwf call, s.
    :param faults: one FaultPlan for both twins, or ``{"keithley": plan, "ad2": plan}``
        (plans or mappings / objects with the FaultPlan fields).
    :param tia_gain: TIA transimpedance, Ω.
    :param pins: switch-matrix DIO pins (``data_pin``…``enable_pin``).
    :param bus_codes: bus name -> code (default :data:`DEFAULT_BUS_CODES`).
    :param poll_wait_s: host wait between built-in sweep polls charged by the 6487 twin, s.
    :param timeout_s: what a timed-out 6487 read costs, s.
    :param device_noise: devices' read noise on.
    :param r_source: output resistance of every driving bus, Ω.
    :param r_sense: input resistance of the virtual grounds, Ω.
    :param clock: the virtual clock (default a new one at 0 s).
    :param line_frequency: the mains frequency the 6487 twin runs on, 50 or 60 Hz.

    Faults beyond the transaction counts: the 6487 plan's ``interlock_open`` opens its
    fixture lid; the AD2 plan's ``no_device`` leaves no AD2 to enumerate and ``open_row``
    sticks that row's switch open.
    """
    from sim_backends.ad2_twin import TwinDwfLibrary
    from sim_backends.array import SimulatedCrossbar
    from sim_backends.keithley_twin import Keithley6487Twin

    clock = clock if clock is not None else VirtualClock()
    k_plan, a_plan = _split_faults(faults)
    crossbar = SimulatedCrossbar(
        profile,
        tuple(shape),
        seed=seed,
        r_row=line_resistance,
        r_col=line_resistance,
        r_source=r_source,
        r_sense=r_sense,
        clock=None,
    )
    bench = SimBench(
        crossbar,
        tia_gain=tia_gain,
        bus_codes=bus_codes,
        pins=pins,
        clock=clock,
        device_noise=device_noise,
        seed=seed + 1,
        open_row=None if a_plan is None else a_plan.open_row,
    )
    _attach_device_clock(crossbar, bench)
    adapter = Keithley6487Twin(
        bench,
        clock=clock,
        latency_s=latency_s,
        faults=k_plan,
        seed=seed + 2,
        poll_wait_s=poll_wait_s,
        timeout_s=timeout_s,
        line_frequency=line_frequency,
    )
    library = TwinDwfLibrary(
        bench,
        latency_s=usb_latency_s,
        faults=a_plan,
        seed=seed + 3,
        devices=[] if a_plan is not None and a_plan.no_device else None,
    )
    return SimHandles(
        adapter=adapter,
        dwf_library=library,
        sim_bench=bench,
        crossbar=crossbar,
        clock=clock,
        config={
            "profile": getattr(profile, "name", profile),
            "seed": seed,
            "shape": tuple(shape),
            "line_resistance": line_resistance,
            "latency_s": latency_s,
            "usb_latency_s": usb_latency_s,
            "tia_gain": tia_gain,
            "line_frequency": line_frequency,
        },
    )


def _attach_device_clock(crossbar: Any, bench: SimBench) -> None:
    """Give the crossbar the bench's device-time view (if it keeps a clock attribute)."""
    for attr in ("clock", "_clock"):
        if hasattr(crossbar, attr):
            try:
                setattr(crossbar, attr, _DeviceClock(bench))
            except AttributeError:
                pass
            return


def _split_faults(faults: Any) -> tuple[FaultPlan | None, FaultPlan | None]:
    if faults is None:
        return None, None
    if isinstance(faults, FaultPlan):
        return faults, faults
    if isinstance(faults, Mapping) and set(faults) <= {"keithley", "ad2"}:
        k, a = faults.get("keithley"), faults.get("ad2")
        return (
            None if k is None else FaultPlan.from_mapping(k),
            None if a is None else FaultPlan.from_mapping(a),
        )
    plan = FaultPlan.from_mapping(faults)
    return plan, plan
