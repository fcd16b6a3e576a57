"""TEST DOUBLE — an ideal, noiseless, in-memory crossbar for algorithm tests.

:class:`IdealCrossbar` is NOT a device model and NOT a simulation of the bench: it exists so
that the crossbar-layer algorithms (mapping, program-and-verify, the data file, the facade) can
be tested against exact, predictable numbers. Devices are linear resistors (I = G·V) with a
conductance map; there are no sneak paths (every biasing scheme reads the exact conductance), no
line resistance and no noise. A pulse changes G deterministically:

* SET (amplitude ≥ ``v_set``): ``ln G += (ln g_on − ln G)·(1 − exp(−rate·(V − v_set)·width/1 ms))``
* RESET (amplitude ≤ −``v_reset``):
  ``ln G −= (ln G − ln g_off)·(1 − exp(−rate·(|V| − v_reset)·width/1 ms))``

(log-linear like a filament state), so stronger or longer pulses move G further, and G
saturates at the window edges. Cells listed
in ``stuck`` never change. Every operation is logged (``pulses``, ``reads``) and advances a
virtual clock, so tests can check what the algorithm asked for.

A read returns the sensed column's current ``Σ_i G[i, col]·V_i`` of the driven rows (floating
and grounded rows add nothing: no sneak paths, no line resistance), so the crossbar policy's
differential read recovers each cell's G exactly under every scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from crossbar.backend import (
    Capabilities,
    CrossbarBackend,
    Measurement,
    PointFn,
    StopFn,
    SweepSpec,
    check_stop,
)
from crossbar.biasing import LineLevels
from crossbar.config import BenchConfig, load_bench_config, parse_bench_config
from instruments.errors import SafetyLimits

T_READ = 1e-3  # s of virtual time per read


def sim_config(**changes: object) -> BenchConfig:
    """The built-in ``sim`` bench with ``section__key=value`` changes (e.g.
    ``faults__timeout_after=3``), parsed and checked as a bench file would be."""
    d = load_bench_config("sim").to_dict()
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        d.setdefault(section, {})[key] = value
    return parse_bench_config(d, origin="test")


class IdealCrossbar(CrossbarBackend):
    """TEST DOUBLE: ideal linear crossbar with a deterministic pulse response (see module doc)."""

    name = "ideal-test-double"

    def __init__(
        self,
        g: np.ndarray | None = None,
        *,
        shape: tuple[int, int] = (10, 10),
        g_off: float = 1e-6,
        g_on: float = 1e-4,
        v_set: float = 2.9,
        v_reset: float = 2.1,
        rate: float = 1.0,
        stuck: Iterable[tuple[int, int]] = (),
        limits: SafetyLimits | None = None,
        row_drivers: int | None = None,
        max_pulse_voltage: float | None = None,
    ) -> None:
        if g is None:
            g = np.full(shape, np.sqrt(g_off * g_on))
        self.g = np.array(g, dtype=float)
        rows, cols = self.g.shape
        self.g_off, self.g_on = float(g_off), float(g_on)
        self.v_set, self.v_reset, self.rate = float(v_set), float(v_reset), float(rate)
        self.stuck = {(int(r), int(c)) for r, c in stuck}
        self.limits = limits or SafetyLimits(max_voltage=6.0, max_compliance=1e-3)
        self.capabilities = Capabilities(
            rows=rows,
            cols=cols,
            row_drivers=rows if row_drivers is None else row_drivers,
            col_sensors=cols,
            max_pulse_voltage=(
                self.limits.max_voltage if max_pulse_voltage is None else max_pulse_voltage
            ),
            max_read_voltage=self.limits.max_voltage,
            read_compliance=self.limits.max_compliance,
        )
        self.t = 0.0
        self.pulses: list[tuple[int, int, float, float]] = []  # (row, col, V, s)
        self.reads: list[tuple[int, int, float]] = []  # (row, col, V)
        self.mvm_calls = 0
        self.shutdown_calls = 0
        self.releases = 0
        self.on_pulse_hook: Callable[[int, int, float, float], None] | None = None

    def now(self) -> float:
        return self.t

    def wait(self, seconds: float) -> None:
        self.t += float(seconds)

    def _column_current(self, lines: LineLevels, v: float) -> tuple[int, float]:
        col = lines.sensed_cols()[0]
        levels = np.array([line.level(v) for line in lines.rows])
        return col, float(levels @ self.g[:, col])

    def read(self, lines: LineLevels, voltage: float) -> Measurement:
        self.t += T_READ
        col, i = self._column_current(lines, voltage)
        self.reads.append((lines.source_rows()[0] if lines.source_rows() else -1, col, voltage))
        return Measurement(i, False, self.t)

    def pulse(
        self, lines: LineLevels, amplitude: float, width: float, *, compliance: float | None
    ) -> None:
        row, col = lines.source_rows()[0], lines.sensed_cols()[0]
        self.pulses.append((row, col, float(amplitude), float(width)))
        if self.on_pulse_hook is not None:
            self.on_pulse_hook(row, col, amplitude, width)
        self.t += width
        if (row, col) in self.stuck:
            return
        lg = np.log(self.g[row, col])
        scale = self.rate * width / 1e-3
        if amplitude >= self.v_set:
            frac = 1.0 - np.exp(-scale * (amplitude - self.v_set))
            self.g[row, col] = np.exp(lg + (np.log(self.g_on) - lg) * frac)
        elif amplitude <= -self.v_reset:
            frac = 1.0 - np.exp(-scale * (-amplitude - self.v_reset))
            self.g[row, col] = np.exp(lg - (lg - np.log(self.g_off)) * frac)

    def sweep(
        self, spec: SweepSpec, on_point: PointFn, *, should_stop: StopFn | None = None
    ) -> None:
        icc = spec.compliance
        for c in range(spec.cycles):
            for k, vk in enumerate(spec.voltages):
                _, i = self._column_current(spec.lines, float(vk))
                hit = abs(i) >= icc
                i = float(np.clip(i, -icc, icc))
                self.t += spec.delay + spec.nplc / 60.0
                on_point(c, k, Measurement(i, bool(hit), self.t))
                check_stop(should_stop)

    def mvm(self, row_voltages: np.ndarray, *, should_stop: StopFn | None = None) -> np.ndarray:
        check_stop(should_stop)
        v = np.atleast_2d(np.asarray(row_voltages, dtype=float))
        self.mvm_calls += 1
        self.t += T_READ * v.shape[0]
        return v @ self.g

    def release(self) -> None:
        self.releases += 1

    def shutdown(self) -> None:
        self.shutdown_calls += 1
