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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from crossbar.backend import (
    Biasing,
    Capabilities,
    CellReading,
    CrossbarBackend,
    SweepPoint,
    SweepResult,
)
from instruments.errors import SafetyLimits

T_READ = 1e-3  # s of virtual time per read


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
        )
        self.t = 0.0
        self.pulses: list[tuple[int, int, float, float]] = []  # (row, col, V, s)
        self.reads: list[tuple[int, int, float]] = []  # (row, col, V)
        self.mvm_calls = 0
        self.shutdown_calls = 0
        self.on_pulse_hook: Callable[[int, int, float, float], None] | None = None

    def now(self) -> float:
        return self.t

    def read_cell(
        self, row: int, col: int, *, v_read: float = 0.2, biasing: Biasing = Biasing.V3
    ) -> CellReading:
        self.check_cell(row, col)
        self.check_voltage(v_read, "read voltage")
        Biasing.parse(biasing)
        self.t += T_READ
        self.reads.append((row, col, float(v_read)))
        g = float(self.g[row, col])
        return CellReading(row, col, float(v_read), v_read * g, g, False, self.t)

    def pulse(
        self,
        row: int,
        col: int,
        amplitude: float,
        width: float,
        *,
        biasing: Biasing = Biasing.V2,
        compliance: float | None = None,
    ) -> None:
        self.check_cell(row, col)
        self.check_voltage(amplitude, "pulse amplitude")
        if abs(amplitude) > self.capabilities.max_pulse_voltage:
            self.check_voltage(np.inf, "pulse amplitude beyond the bench's pulse capability")
        if compliance is not None:
            self.check_compliance(compliance, "pulse compliance")
        if not width > 0:
            raise ValueError(f"pulse width must be > 0 s, got {width}")
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

    def iv_sweep(
        self,
        row: int,
        col: int,
        voltages: Sequence[float],
        *,
        compliance: float,
        cycles: int = 1,
        nplc: float = 1.0,
        biasing: Biasing = Biasing.GROUND,
        on_point: Callable[[SweepPoint], None] | None = None,
        delay: float = 0.0,
    ) -> SweepResult:
        self.check_cell(row, col)
        v = np.asarray(voltages, dtype=float)
        self.check_voltage(v, "sweep voltages")
        self.check_compliance(compliance, "sweep compliance")
        cur = np.full((v.size, cycles), np.nan)
        comp = np.zeros((v.size, cycles), dtype=bool)
        for c in range(cycles):
            for k, vk in enumerate(v):
                i = vk * self.g[row, col]
                hit = abs(i) >= compliance
                i = float(np.clip(i, -compliance, compliance))
                self.t += nplc / 60.0
                cur[k, c], comp[k, c] = i, hit
                if on_point is not None:
                    on_point(SweepPoint(c, k, float(vk), i, bool(hit), self.t))
        return SweepResult(row, col, v, cur, comp, float(compliance))

    def mvm(self, row_voltages: np.ndarray) -> np.ndarray:
        v = np.atleast_2d(np.asarray(row_voltages, dtype=float))
        if v.shape[1] != self.g.shape[0]:
            raise ValueError(f"row_voltages must have {self.g.shape[0]} columns, got {v.shape}")
        self.check_voltage(v, "MVM row voltages")
        self.mvm_calls += 1
        self.t += T_READ * v.shape[0]
        return v @ self.g

    def shutdown(self) -> None:
        self.shutdown_calls += 1
