"""The contract between the crossbar layer and a bench: thin line-level primitives.

A backend does one thing: apply what it is told to the array and report what it measured.
Every access arrives as :class:`~crossbar.biasing.LineLevels` (each row and column driven at a
fraction of V, grounded, floating or sensed) with already-validated values: the rules — which
scheme, which voltages and current limits the bench allows, the differential read, sign-split
sweeps, cycles, read maps — live once, in :class:`crossbar.policy.CrossbarPolicy`, which checks
every request against the backend's :class:`Capabilities` before anything reaches it. So a
backend trusts its arguments and stays small:

* :meth:`CrossbarBackend.read`: route the lines, source V, integrate once, the sensed column's
  current;
* :meth:`CrossbarBackend.sweep`: route the lines, step V through a list (each point a settling
  delay then a reading), ``cycles`` times, under a current limit;
* :meth:`CrossbarBackend.pulse`: one rectangular pulse on the lines;
* :meth:`CrossbarBackend.mvm`: a batch of matrix-vector products (rows driven, columns at
  virtual ground);
* :meth:`CrossbarBackend.release`, :meth:`~CrossbarBackend.wait`,
  :meth:`~CrossbarBackend.shutdown`, :meth:`~CrossbarBackend.now`.

Implementations: the hardware backend over the instrument drivers
(:class:`crossbar.hardware.InstrumentBackend`, on real instruments or on their simulated
twins) and the physics backend on the simulation
(:class:`sim_backends.physics_backend.PhysicsBackend`); :func:`lab.open_backend` builds the one
a bench file names. Tests add recording doubles (``tests/fakes.py``).

Conventions: voltages in V, currents in A, conductances in S, times in s; cells 0-based.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from crossbar.biasing import Biasing, BiasScheme, LineLevels
from instruments.errors import ComplianceError, SafetyLimits, StopRequested

__all__ = [
    "Biasing",
    "Capabilities",
    "CellReading",
    "CrossbarBackend",
    "Measurement",
    "EmergencyStop",
    "OperationAborted",
    "PointFn",
    "StopRequested",
    "BenchView",
    "SweepPoint",
    "SweepResult",
    "SweepSpec",
    "check_stop",
]


@dataclass(frozen=True)
class Measurement:
    """One reading of the sensed line: ``current`` (A; ±inf on overflow), whether the source
    was in ``compliance`` (its current limit clamped the reading), ``time`` (s, backend clock)."""

    current: float
    compliance: bool = False
    time: float = 0.0


@dataclass(frozen=True)
class SweepSpec:
    """One backend sweep: connect ``lines`` and step the source through ``voltages`` (V)
    ``cycles`` times, its current limited at ``compliance`` A (a level of the source); each
    point: ``delay`` s at the new level, then an ``nplc``-PLC reading of the sensed column."""

    lines: LineLevels
    voltages: np.ndarray
    compliance: float
    nplc: float
    delay: float
    cycles: int = 1


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
    """What a bench can do; the policy validates every request against it.

    :param rows, cols: array size.
    :param row_drivers: rows driven at once in an MVM; ``col_sensors``: columns sensed at once.
    :param max_pulse_voltage: largest pulse magnitude the bench can apply (V).
    :param max_read_voltage: largest read and MVM input magnitude (V).
    :param read_compliance: current limit of reads and of pulses given no limit (A); None when
        no limit of the bench's source fits the bench's ``max_compliance`` (then reads are
        refused).
    :param drive_fractions: the fractions of V a line can be driven at (the hardware's bias
        buses); None: any.
    :param can_float: lines can be left open.
    :param nplc_range: integration time of a reading (power-line cycles), inclusive.
    :param delay_range: settling delay before a sweep reading (s), inclusive.
    :param compliance_levels: the source's discrete current limits (A), ascending; a request
        snaps up to the next one. None: any limit in (0, max_compliance].
    :param compliance_ceilings: ``(|V| up to, largest limit A)`` pairs, ascending in V: a
        source range's largest current limit (the 6487: 25 mA to 10.1 V, 2.5 mA beyond).
    :param pulse_width_range: shortest and longest pulse (s).
    :param written_level: a level (V) as the bench's source will be sent it (the 6487 takes
        ``%g``, 6 significant digits: :func:`instruments.keithley6487_limits.written_level`);
        a level is checked against the limits as it will be written. None: exact.
    """

    rows: int
    cols: int
    row_drivers: int
    col_sensors: int
    max_pulse_voltage: float
    max_read_voltage: float
    read_compliance: float | None
    drive_fractions: tuple[float, ...] | None = None
    can_float: bool = True
    nplc_range: tuple[float, float] = (0.01, 6.0)
    delay_range: tuple[float, float] = (0.0, 999.9999)
    compliance_levels: tuple[float, ...] | None = None
    compliance_ceilings: tuple[tuple[float, float], ...] = ()
    pulse_width_range: tuple[float, float] = (1e-9, 10.0)
    written_level: Callable[[float], float] | None = None

    def realises(self, lines: LineLevels) -> bool:
        """True when every level of ``lines`` is one this bench can apply."""
        if lines.floats() and not self.can_float:
            return False
        if self.drive_fractions is None:
            return True
        return all(any(abs(f - g) < 1e-12 for g in self.drive_fractions) for f in lines.fractions())

    def supports(self, scheme: BiasScheme) -> bool:
        """True when ``scheme`` (with its differential baseline) can run on this bench."""
        probe = scheme.lines((2, 2), 0, 0)
        return self.realises(probe) and self.realises(scheme.baseline_lines((2, 2), 0, 0))

    @property
    def biasings(self) -> tuple[BiasScheme, ...]:
        """The schemes of the table this bench can run."""
        return tuple(b for b in Biasing if self.supports(b))


class OperationAborted(RuntimeError):
    """A long operation (map read, sweep, programming, MVM batch) was stopped on request.

    Raised by :class:`crossbar.core.Crossbar` after every output has been switched off.
    ``partial`` holds what was acquired before the stop (e.g. a partial ``ProgramReport`` or a
    conductance map with NaN where not read), or None.
    """

    def __init__(self, message: str = "operation aborted", *, partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial


class EmergencyStop(OperationAborted):
    """The emergency stop is latched. The running operation stopped at its next primitive with
    every output off and returns no result (``partial`` is None); every further operation is
    refused with this error until :meth:`crossbar.core.Crossbar.reset_emergency_stop`."""


StopFn = Callable[[], bool]
"""``should_stop()``: True when the running primitive must stop at its next step."""

PointFn = Callable[[int, int, Measurement], None]
"""``on_point(cycle, index, measurement)``: a backend sweep's reading, passed on at once."""


def check_stop(should_stop: StopFn | None) -> None:
    """Raise :class:`~instruments.errors.StopRequested` when ``should_stop`` (if given) says so:
    a backend primitive stops between two of its steps (sweep points, polls of a built-in sweep,
    MVM captures); the crossbar layer turns it into :class:`OperationAborted` or
    :class:`EmergencyStop`."""
    if should_stop is not None and should_stop():
        raise StopRequested


class CrossbarBackend(ABC):
    """Line-level primitives on one bench (see the module docstring). Arguments arrive
    validated by :class:`crossbar.policy.CrossbarPolicy`; a backend switches every output off
    in :meth:`shutdown` and never raises there."""

    limits: SafetyLimits
    capabilities: Capabilities
    name: str = "backend"

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the array."""
        return self.capabilities.rows, self.capabilities.cols

    @abstractmethod
    def read(self, lines: LineLevels, voltage: float) -> Measurement:
        """Connect ``lines``, source ``voltage`` V (limit: ``capabilities.read_compliance``),
        take one reading of the sensed column. The source may stay on (see :meth:`release`)."""

    def read_many(self, lines: LineLevels, voltage: float, n: int) -> list[Measurement]:
        """``n`` readings of the sensed column at one setting (``lines``, ``voltage`` V), in
        order. The default takes ``n`` :meth:`read` s; a bench with a faster way (the 6487's
        trigger model and buffer: :class:`crossbar.hardware.InstrumentBackend`) overrides it."""
        return [self.read(lines, voltage) for _ in range(int(n))]

    @abstractmethod
    def sweep(
        self, spec: SweepSpec, on_point: PointFn, *, should_stop: StopFn | None = None
    ) -> None:
        """Run ``spec`` (see :class:`SweepSpec`): every reading passed at once to
        ``on_point(cycle, index, measurement)``. ``should_stop`` is polled between points (and
        while a built-in sweep runs): True raises :class:`StopRequested`. Source off and lines
        released at the end, on every path."""

    @abstractmethod
    def pulse(
        self, lines: LineLevels, amplitude: float, width: float, *, compliance: float | None
    ) -> None:
        """One rectangular pulse of ``amplitude`` V for ``width`` s on ``lines`` (the sensed
        column is the pulse current's return, at ground), the source limited at ``compliance`` A (None: the bench's default
        pulse path and limit, ``capabilities.read_compliance`` where a limit applies)."""

    @abstractmethod
    def mvm(self, row_voltages: np.ndarray, *, should_stop: StopFn | None = None) -> np.ndarray:
        """Column currents (batch, cols) A for row voltages (batch, rows) V, columns at
        virtual ground. Rows beyond the bench's drivers are applied in groups and the currents
        summed (superposition). ``should_stop`` is polled between the bench's steps (captures):
        True raises :class:`StopRequested` (outputs off)."""

    @abstractmethod
    def release(self) -> None:
        """End of a run of accesses: every line floating, the sources at 0 V/off. Never
        raises (a failing step is logged)."""

    @abstractmethod
    def shutdown(self) -> None:
        """Every source output off (0 V), every line released. Safe to call repeatedly and on
        a broken connection (never raises)."""

    @abstractmethod
    def wait(self, seconds: float) -> None:
        """Let ``seconds`` s pass with the outputs as they are (virtual time on a simulated
        bench, so an hour of retention costs no wall time)."""

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


class BenchView:
    """What an object over a backend (the policy, the Crossbar facade) tells about its bench."""

    backend: CrossbarBackend

    @property
    def capabilities(self) -> Capabilities:
        """The backend's capabilities."""
        return self.backend.capabilities

    @property
    def limits(self) -> SafetyLimits:
        """The bench's safety limits."""
        return self.backend.limits

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.backend.shape

    @property
    def name(self) -> str:
        """The backend's name."""
        return self.backend.name

    def now(self) -> float:
        """Backend time, s (virtual on simulated benches)."""
        return self.backend.now()
