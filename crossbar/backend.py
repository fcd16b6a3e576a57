"""The one interface every crossbar backend implements.

Three implementations exist (chosen in one place, :mod:`crossbar.bench`, from the bench
configuration):

* the hardware backend over the instrument drivers (on real instruments, or on their simulated
  twins: the *simulated bench*, which exercises the whole driver stack);
* the physics backend, which calls the simulation directly (the fast path for Monte Carlo and
  training-time evaluation).

Everything above this layer (:class:`crossbar.core.Crossbar`, calibration, inference, the GUI)
talks to a :class:`CrossbarBackend` and does not know which one it has.

Conventions: rows are word lines (driven), columns are bit lines (sensed at virtual ground).
Voltages in V, currents in A, conductances in S, times in s. Cell indices are 0-based.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from instruments.errors import ComplianceError, SafetyLimitError, SafetyLimits


class Biasing(str, enum.Enum):
    """How unselected lines are held during single-cell access (METHODS section 5)."""

    V2 = "v/2"  # unselected rows and columns at V/2
    V3 = "v/3"  # unselected rows at V/3, unselected columns at 2V/3
    GROUND = "ground"  # unselected lines at 0 V
    FLOAT = "float"  # unselected lines left open (sneak paths)
    # unselected rows at 0 V, unselected columns at 2V/3: the selected cell's row mates see
    # V/3 (no SET), its column mates 0 V (the sensed current is the cell's alone), the other
    # cells -2V/3. For V >= 0 only (at V < 0 the others would see +2|V|/3 and SET).
    COLS_2V3 = "cols-2v/3"

    @property
    def positive_only(self) -> bool:
        """True for a scheme that must not be used at negative voltages."""
        return self is Biasing.COLS_2V3

    def check_polarity(self, voltages: object, what: str) -> None:
        """ValueError when this scheme is positive-only and ``voltages`` (V) has a value < 0."""
        if self.positive_only and np.any(np.asarray(voltages, dtype=float) < 0):
            raise ValueError(
                f"{what}: biasing {self.value!r} is for V >= 0 only (at V < 0 the unselected "
                "cells would see +2|V|/3 and SET); use v/3 for the negative points"
            )

    @classmethod
    def parse(cls, text: str | Biasing) -> Biasing:
        """Accept a Biasing or its text ("v/2", "v/3", "ground", "float", "cols-2v/3")."""
        if isinstance(text, Biasing):
            return text
        for b in cls:
            if b.value == str(text).lower():
                return b
        raise ValueError(f"unknown biasing {text!r}; choose one of {[b.value for b in cls]}")


@dataclass(frozen=True)
class CellReading:
    """One read of one cell at ``voltage`` (V): ``current`` (A), ``conductance`` = I/V (S)."""

    row: int
    col: int
    voltage: float
    current: float
    conductance: float
    compliance: bool = False
    time: float = 0.0  # s, backend clock


@dataclass(frozen=True)
class SweepPoint:
    """One point of an I-V sweep, delivered as soon as it is measured."""

    cycle: int  # 0-based cycle index
    index: int  # 0-based index in the voltage list
    voltage: float  # V, programmed
    current: float  # A, measured
    compliance: bool
    time: float  # s, backend clock


@dataclass
class SweepResult:
    """A cyclic I-V sweep of one cell: ``current[k, c]`` at ``voltage[k]`` in cycle ``c``."""

    row: int
    col: int
    voltage: np.ndarray  # (K,) V
    current: np.ndarray  # (K, cycles) A, NaN where not measured
    compliance: np.ndarray  # (K, cycles) bool
    compliance_limit: float  # A


@dataclass(frozen=True)
class Capabilities:
    """What a backend's bench can do (the crossbar layer adapts to it)."""

    rows: int
    cols: int
    row_drivers: int  # how many rows can be driven at once in an MVM (AWG channels)
    col_sensors: int  # how many columns can be sensed at once
    max_pulse_voltage: float  # V, largest pulse amplitude the bench can apply
    biasings: tuple[Biasing, ...] = tuple(Biasing)


ProgressFn = Callable[[int, int], None]  # (done, total)


class OperationAborted(RuntimeError):
    """A long operation (map read, sweep, programming, MVM batch) was stopped on request.

    Raised by :class:`crossbar.core.Crossbar` after every output has been switched off.
    ``partial`` holds what was acquired before the stop (e.g. a partial ``ProgramReport`` or a
    conductance map with NaN where not read), or None.
    """

    def __init__(self, message: str = "operation aborted", *, partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial


class CrossbarBackend(ABC):
    """Primitive operations on a crossbar. Implementations must check :attr:`limits` before
    anything reaches an instrument and switch every output off in :meth:`shutdown`."""

    limits: SafetyLimits
    capabilities: Capabilities
    name: str = "backend"

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the array."""
        return self.capabilities.rows, self.capabilities.cols

    # -- primitives -------------------------------------------------------------------------
    @abstractmethod
    def read_cell(
        self, row: int, col: int, *, v_read: float = 0.2, biasing: Biasing = Biasing.V3
    ) -> CellReading:
        """Read one cell at ``v_read`` (V, |v| ≤ limits) with unselected lines per ``biasing``."""

    def read_map(
        self,
        *,
        v_read: float = 0.2,
        biasing: Biasing = Biasing.V3,
        on_cell: Callable[[CellReading], None] | None = None,
    ) -> np.ndarray:
        """Read every cell; returns conductances (rows, cols) in S. ``on_cell`` sees each read
        as soon as it is made (so it can be written to the data file)."""
        rows, cols = self.shape
        out = np.empty((rows, cols))
        for r in range(rows):
            for c in range(cols):
                reading = self.read_cell(r, c, v_read=v_read, biasing=biasing)
                out[r, c] = reading.conductance
                if on_cell is not None:
                    on_cell(reading)
        return out

    @abstractmethod
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
        """Apply one rectangular pulse (V, s) to a cell: positive = SET, negative = RESET."""

    @abstractmethod
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
        """Cyclic I-V sweep of a cell through ``voltages`` (V), ``cycles`` times, with the
        source's current limit at ``compliance`` (A). Each point: ``delay`` s (0 … 999.9999) of
        settling at the new level, then an ``nplc``-PLC reading. ``on_point`` sees every point as
        measured."""

    @abstractmethod
    def mvm(self, row_voltages: np.ndarray) -> np.ndarray:
        """Matrix-vector products: ``row_voltages`` (batch, rows) V, |V| ≤ the read limit; columns
        at virtual ground. Returns column currents (batch, cols) A. Rows beyond the bench's drivers
        are applied in groups and the currents summed (superposition)."""

    @abstractmethod
    def shutdown(self) -> None:
        """Every source output off (0 V), switch matrix released. Safe to call repeatedly and on
        a broken connection (never raises)."""

    def outputs_off(self) -> None:
        """Put every output at 0 V after an aborted or failed operation, keeping the bench usable
        (the next operation switches outputs on again). Never raises. Default: :meth:`shutdown`;
        backends whose shutdown also releases resources override this."""
        try:
            self.shutdown()
        except Exception:  # shutdown must not raise; belt and braces for third-party backends
            pass

    def now(self) -> float:
        """Backend time, s (virtual on simulated benches: the estimated real-bench time)."""
        return 0.0

    # -- helpers shared by implementations --------------------------------------------------
    def check_cell(self, row: int, col: int) -> None:
        """Raise IndexError for a cell outside the array."""
        rows, cols = self.shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise IndexError(f"cell ({row}, {col}) is outside the {rows}×{cols} array")

    def check_voltage(self, v: float | np.ndarray, what: str) -> None:
        """Raise SafetyLimitError when any |v| exceeds the bench's max voltage."""
        vmax = float(np.max(np.abs(v))) if np.size(v) else 0.0
        if not np.isfinite(vmax) or vmax > self.limits.max_voltage:
            raise SafetyLimitError(
                f"{what}: |V| = {vmax:g} V exceeds the bench limit of {self.limits.max_voltage:g} V"
            )

    def check_compliance(self, i: float, what: str) -> None:
        """Raise SafetyLimitError for a compliance ≤ 0 or above the bench's max compliance."""
        if not (np.isfinite(i) and 0 < i <= self.limits.max_compliance):
            raise SafetyLimitError(
                f"{what}: compliance {i:g} A is outside (0, {self.limits.max_compliance:g}] A"
            )

    def compliance_error(self, reading: CellReading, what: str) -> ComplianceError:
        """The error for a read whose source hit its current limit during ``what`` (e.g. "read
        map", "program-and-verify read"): such a reading is a clamped current, not a
        conductance. Backends over instruments name the instrument and the command."""
        return ComplianceError(
            f"{self.name}: read of cell ({reading.row}, {reading.col}) at {reading.voltage:g} V "
            f"-> in compliance during {what} (the current limit clamped the reading)",
            instrument=self.name,
            command=f"read ({reading.row}, {reading.col}) at {reading.voltage:g} V",
        )

    def __enter__(self) -> CrossbarBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


@dataclass
class CellProgramReport:
    """Outcome of program-and-verify on one cell."""

    row: int
    col: int
    target: float  # S
    final: float  # S, last verify read
    pulses: int
    converged: bool
    stuck: bool  # G did not move over the whole budget
    history: list[tuple[float, float, float]] = field(
        default_factory=list
    )  # (amplitude V, width s, G S)
    aborted: bool = False  # stopped by an abort request before converging or using the budget

    @property
    def rel_error(self) -> float:
        """(final − target) / target."""
        return (self.final - self.target) / self.target
