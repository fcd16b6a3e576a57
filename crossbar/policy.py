"""The crossbar policy: every rule about accessing the array, written once.

:class:`CrossbarPolicy` turns cell operations (read a cell, read the map, pulse, I-V sweep,
MVM) into a backend's line-level primitives (:mod:`crossbar.backend`), after checking every
request against the backend's :class:`~crossbar.backend.Capabilities` and the bench's safety
limits — before anything reaches the backend, so a refused request leaves no trace on a bus.
What lives here:

* **biasing**: the scheme's levels from the table in :mod:`crossbar.biasing`; a scheme the
  bench cannot realise is refused, a positive-only scheme is refused at V < 0;
* **the differential read**: under a scheme whose unselected rows are driven at f·V (V/2,
  V/3) the half-selected cells of the sensed column add their current, so a read is taken twice
  — selected row at V (I₁) and at f·V (I₀) — and G = (I₁ − I₀) / (V − f·V); a read map measures
  that baseline once per column (it does not depend on the selected row);
* **sign-split sweeps**: a sweep with its own current limit or biasing below 0 V runs one
  backend sweep per run of same-sign points;
* **limits**: voltages against ``[limits] max_voltage`` and ``max_read_voltage`` as the
  instrument will be sent them (``written_level``), current limits against ``max_compliance``
  after snapping to the source's levels and against its range ceilings, NPLC, delay and pulse
  width against their ranges.

:class:`~crossbar.core.Crossbar` (recording, abort, outputs off on errors) and
:mod:`crossbar.programming` work through a policy; scripts normally use the Crossbar.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from crossbar.backend import (
    BenchView,
    CellReading,
    CrossbarBackend,
    Measurement,
    StopFn,
    SweepPoint,
    SweepResult,
    SweepSpec,
    check_stop,
)
from crossbar.biasing import Biasing, BiasScheme, LineLevels
from instruments.errors import ComplianceError, SafetyLimitError

__all__ = ["CrossbarPolicy", "SweepPlan", "SweepRun", "SweepSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepSettings:
    """How to sweep: the source limited at ``compliance`` A (snapped up to the source's
    levels), ``cycles`` passes, each point ``delay`` s of settling (0 … 999.9999) then an
    ``nplc``-PLC reading, unselected lines per ``biasing``. ``reset_compliance`` (A) and
    ``reset_biasing``: the limit and biasing of the points below 0 V (the RESET branch: a
    cell's RESET can need more current than its SET was formed under, and a positive-only
    scheme needs another one there); with either given, each cycle runs as one backend sweep
    per run of same-sign points, the source off between them. None: one setting throughout."""

    compliance: float
    cycles: int = 1
    nplc: float = 1.0
    biasing: BiasScheme | str = Biasing.GROUND
    delay: float = 0.0
    reset_compliance: float | None = None
    reset_biasing: BiasScheme | str | None = None


@dataclass(frozen=True)
class SweepRun:
    """A run of consecutive sweep points sharing one setting: ``voltages[start:stop]`` under
    ``scheme`` with the source limited at ``limit`` A (as the source applies it)."""

    start: int
    stop: int
    scheme: BiasScheme
    limit: float


@dataclass(frozen=True)
class SweepPlan:
    """A validated cyclic I-V sweep (see :meth:`CrossbarPolicy.plan_sweep`)."""

    row: int
    col: int
    voltages: np.ndarray  # (K,) V
    cycles: int
    nplc: float
    delay: float  # s
    runs: tuple[SweepRun, ...]  # one run of all points when the sweep is not split
    split: bool  # one backend sweep per run and cycle
    compliance_limit: float  # A, the limit applied on the points at or above 0 V
    scheme: BiasScheme  # the biasing at or above 0 V
    reset_scheme: BiasScheme  # the biasing below 0 V
    reset_limit: float  # A, the limit below 0 V


class CrossbarPolicy(BenchView):
    """Validated cell operations over ``backend``'s primitives (see the module docstring).

    :param backend: the bench.
    :param differential_read: cancel the half-selected cells' current in reads under schemes
        that drive the unselected rows (V/2, V/3); False gives the raw I/V.
    :param should_stop: polled before every primitive and handed to the long ones (sweeps,
        MVMs, which poll it between their steps): True stops the operation there with
        :class:`~crossbar.backend.StopRequested` (the Crossbar's abort and emergency stop).
    """

    def __init__(
        self,
        backend: CrossbarBackend,
        *,
        differential_read: bool = True,
        should_stop: StopFn | None = None,
    ) -> None:
        self.backend = backend
        self.differential_read = bool(differential_read)
        self.should_stop = should_stop

    def _read(self, lines: LineLevels, v: float) -> Measurement:
        check_stop(self.should_stop)
        return self.backend.read(lines, v)

    @classmethod
    def of(cls, target: CrossbarPolicy | CrossbarBackend | object) -> CrossbarPolicy:
        """``target`` itself if it is a policy, its ``policy`` attribute (a Crossbar), or a new
        policy over ``target`` (a backend)."""
        if isinstance(target, CrossbarPolicy):
            return target
        policy = getattr(target, "policy", None)
        if isinstance(policy, CrossbarPolicy):
            return policy
        if isinstance(target, CrossbarBackend):
            return cls(target)
        raise TypeError(f"expected a CrossbarPolicy, Crossbar or CrossbarBackend, got {target!r}")

    def compliance_error(self, reading: CellReading, what: str) -> ComplianceError:
        """The backend's error for a read clamped by its current limit during ``what``."""
        return self.backend.compliance_error(reading, what)

    # -- validation --------------------------------------------------------------------------
    def check_cell(self, row: int, col: int) -> None:
        """IndexError for a cell outside the array."""
        rows, cols = self.shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise IndexError(f"cell ({row}, {col}) is outside the {rows}×{cols} array")

    def written(self, v: float) -> float:
        """``v`` as the bench's source will be sent it (``Capabilities.written_level``)."""
        written = self.capabilities.written_level
        return float(written(float(v))) if written is not None else float(v)

    def _check_magnitude(
        self, v: float | np.ndarray, limit: float, what: str, text: str, name: str
    ) -> None:
        arr = np.asarray(v, dtype=float).ravel()
        vmax = float(np.max(np.abs(arr))) if arr.size else 0.0
        if not math.isfinite(vmax) or vmax > limit:
            raise SafetyLimitError(
                f"{what}: |V| = {vmax:g} V exceeds {text} of {limit:g} V",
                setting=what,
                value=vmax,
                limit=limit,
            )
        if arr.size and self.capabilities.written_level is not None:
            for x in (float(arr.max()), float(arr.min())):  # the rounding is monotonic
                sent = self.written(x)
                if abs(sent) > limit:
                    raise SafetyLimitError(
                        f"{what}: {x:.10g} V would be written to the source as {sent:g} V, "
                        f"beyond the bench limit of {limit:.10g} V ({name})",
                        setting=what,
                        value=x,
                        limit=limit,
                    )

    def check_voltage(self, v: float | np.ndarray, what: str) -> None:
        """SafetyLimitError when any |v| (as written) exceeds the bench's max voltage."""
        self._check_magnitude(
            v, self.limits.max_voltage, what, "the bench limit", "[limits] max_voltage"
        )

    def check_read_voltage(self, v: float | np.ndarray, what: str) -> None:
        """SafetyLimitError when any |v| (as written) exceeds the bench's read limit."""
        self._check_magnitude(
            v,
            self.capabilities.max_read_voltage,
            what,
            "the bench read limit",
            "[limits] max_read_voltage",
        )
        self.check_voltage(v, what)

    def check_read_limit(self, what: str) -> float:
        """The current limit reads run at (A); SafetyLimitError when the bench has none."""
        limit = self.capabilities.read_compliance
        if limit is None:
            levels = self.capabilities.compliance_levels or ()
            raise SafetyLimitError(
                f"{what}: no current limit of the source "
                f"({', '.join(f'{c:g}' for c in levels)} A) fits the bench limit "
                f"{self.limits.max_compliance:g} A ([limits] max_compliance): the source "
                "cannot run reads or bias the lines",
                setting=what,
                value=min(levels) if levels else None,
                limit=self.limits.max_compliance,
            )
        return limit

    def limit_for(self, compliance: float, what: str, v_abs: float = 0.0) -> float:
        """The current limit (A) the source applies for a request of ``compliance`` A at levels
        up to ``v_abs`` V: snapped up to the source's next level.

        :raises SafetyLimitError: not in (0, max_compliance], or snapping beyond it.
        :raises ValueError: beyond the ceiling of the source range ``v_abs`` needs.
        """
        caps, bench = self.capabilities, self.limits.max_compliance
        i = float(compliance)
        if not (math.isfinite(i) and 0 < i <= bench):
            raise SafetyLimitError(
                f"{what}: compliance {i:g} A is outside (0, {bench:g}] A",
                setting=what,
                value=i,
                limit=bench,
            )
        snapped = i
        if caps.compliance_levels is not None:
            snapped = next((c for c in caps.compliance_levels if c >= i * (1 - 1e-9)), math.inf)
            if snapped > bench:
                levels = ", ".join(f"{c:g}" for c in caps.compliance_levels)
                raise SafetyLimitError(
                    f"{what}: {i:g} A snaps up to the source's current limit "
                    f"{snapped if math.isfinite(snapped) else 'beyond the largest'} A, beyond "
                    f"the bench limit {bench:g} A (the source has {levels} A)",
                    setting=what,
                    value=i,
                    limit=bench,
                )
        ceiling = self.ceiling_at(v_abs)
        if snapped > ceiling:
            raise ValueError(
                f"{what}: {v_abs:g} V needs a source range where the current limit is at most "
                f"{ceiling:g} A (asked {snapped:g} A)"
            )
        return snapped

    def ceiling_at(self, v_abs: float) -> float:
        """Largest current limit (A) of the source range that reaches ``v_abs`` V."""
        for v_top, i_max in self.capabilities.compliance_ceilings:
            if v_abs <= v_top:
                return i_max
        return math.inf

    def check_nplc(self, nplc: float) -> float:
        """``nplc`` as a float; ValueError outside the bench's range (PLC)."""
        return _in_range(nplc, self.capabilities.nplc_range, "nplc", "")

    def check_delay(self, delay: float) -> float:
        """``delay`` (s) as a float; ValueError outside the bench's range."""
        return _in_range(delay, self.capabilities.delay_range, "delay", " s")

    def check_width(self, width: float) -> float:
        """``width`` (s) as a float; ValueError when not a pulse width the bench can give."""
        lo, hi = self.capabilities.pulse_width_range
        w = float(width)
        if not (math.isfinite(w) and w > 0):
            raise ValueError(f"pulse width must be > 0 s, got {width!r}")
        if not lo <= w <= hi:
            raise ValueError(f"pulse width must be in [{lo:g}, {hi:g}] s, got {width!r}")
        return w

    def scheme(self, biasing: BiasScheme | str, voltages: object, what: str) -> BiasScheme:
        """The scheme called ``biasing``, refused (ValueError) when the bench cannot realise
        it or when it is positive-only and ``voltages`` (V) has a value < 0."""
        b = Biasing.parse(biasing)
        if not self.capabilities.supports(b):
            allowed = ", ".join(s.name for s in self.capabilities.biasings)
            raise ValueError(
                f"{what}: biasing {b.name!r} needs line levels this bench cannot apply "
                f"(it can run: {allowed})"
            )
        b.check_polarity(voltages, what)
        return b

    # -- reads -------------------------------------------------------------------------------
    def _read_setup(self, v_read: float, biasing: BiasScheme | str) -> tuple[float, BiasScheme]:
        v = float(v_read)
        self.check_read_voltage(v, "read voltage")
        self.check_read_limit("read current limit")
        if v == 0:
            raise ValueError("v_read must be non-zero (G = I / v_read)")
        return v, self.scheme(biasing, v, "read voltage")

    def _differential(self, scheme: BiasScheme) -> float | None:
        return scheme.baseline_fraction if self.differential_read else None

    def _reading(
        self, row: int, col: int, v: float, f: float | None, m1: Measurement, m0: Measurement | None
    ) -> CellReading:
        if m0 is None or f is None:
            g = m1.current / v
            compliance = m1.compliance
        else:
            g = (m1.current - m0.current) / (v - f * v)
            compliance = m1.compliance or m0.compliance
        return CellReading(row, col, v, g * v, g, bool(compliance), self.now())

    def read_cell(
        self, row: int, col: int, *, v_read: float = 0.2, biasing: BiasScheme | str = Biasing.V3
    ) -> CellReading:
        """Read one cell at ``v_read`` V (≠ 0, within the read limit); differential under
        V/2, V/3 (module docstring). ``current`` is G·v_read (A)."""
        self.check_cell(row, col)
        v, b = self._read_setup(v_read, biasing)
        m1 = self._read(b.lines(self.shape, row, col), v)
        f = self._differential(b)
        m0 = self._read(b.baseline_lines(self.shape, row, col), v) if f else None
        return self._reading(row, col, v, f, m1, m0)

    def read_cell_repeated(
        self,
        row: int,
        col: int,
        n: int,
        *,
        v_read: float = 0.2,
        biasing: BiasScheme | str = Biasing.V3,
    ) -> list[CellReading]:
        """``n`` reads of one cell at one setting (read-noise statistics, averaged reads): the
        backend's :meth:`~crossbar.backend.CrossbarBackend.read_many` — on the instrument bench
        one 6487 burst per line setting (the differential baseline a second burst, paired
        reading by reading)."""
        self.check_cell(row, col)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 2048:
            raise ValueError(f"n must be an int in [1, 2048], got {n!r}")
        v, b = self._read_setup(v_read, biasing)
        check_stop(self.should_stop)
        m1 = self.backend.read_many(b.lines(self.shape, row, col), v, int(n))
        f = self._differential(b)
        m0: list[Measurement | None] = [None] * int(n)
        if f:
            check_stop(self.should_stop)
            m0 = list(self.backend.read_many(b.baseline_lines(self.shape, row, col), v, int(n)))
        return [self._reading(row, col, v, f, a, z) for a, z in zip(m1, m0)]

    def read_map(
        self,
        *,
        v_read: float = 0.2,
        biasing: BiasScheme | str = Biasing.V3,
        on_cell: Callable[[CellReading], None] | None = None,
    ) -> np.ndarray:
        """Read every cell, column by column (the differential baseline once per column);
        conductances (rows, cols) S. ``on_cell`` sees each read as it is made. Lines released
        and the source off at the end (also on errors)."""
        v, b = self._read_setup(v_read, biasing)
        rows, cols = self.shape
        f = self._differential(b)
        out = np.full((rows, cols), np.nan)
        try:
            for col in range(cols):
                m0 = self._read(b.baseline_lines(self.shape, 0, col), v) if f else None
                for row in range(rows):
                    m1 = self._read(b.lines(self.shape, row, col), v)
                    reading = self._reading(row, col, v, f, m1, m0)
                    out[row, col] = reading.conductance
                    if on_cell is not None:
                        on_cell(reading)
        finally:
            self.backend.release()
        return out

    # -- pulses ------------------------------------------------------------------------------
    def pulse(
        self,
        row: int,
        col: int,
        amplitude: float,
        width: float,
        *,
        biasing: BiasScheme | str = Biasing.V2,
        compliance: float | None = None,
    ) -> None:
        """One rectangular pulse of ``amplitude`` V (positive SET, negative RESET) for ``width``
        s on a cell, unselected lines per ``biasing``, the source limited at ``compliance`` A
        (None: the bench's default pulse path).

        :raises SafetyLimitError: beyond the bench limit or its pulse capability, a compliance
            outside (0, max_compliance] (nothing sent).
        """
        self.check_cell(row, col)
        amp = float(amplitude)
        b = self.scheme(biasing, amp, "pulse amplitude")
        self.check_voltage(amp, "pulse amplitude")
        cap = self.capabilities.max_pulse_voltage
        if abs(amp) > cap:
            raise SafetyLimitError(
                f"pulse amplitude: |V| = {abs(amp):g} V exceeds this bench's pulse capability "
                f"of {cap:g} V",
                setting="pulse amplitude",
                value=abs(amp),
                limit=cap,
            )
        limit = None
        if compliance is not None:
            limit = self.limit_for(compliance, "pulse compliance", abs(amp))
        w = self.check_width(width)
        if compliance is None:
            self.check_read_limit("pulse current limit")
        check_stop(self.should_stop)
        self.backend.pulse(b.lines(self.shape, row, col), amp, w, compliance=limit)

    # -- I-V sweeps --------------------------------------------------------------------------
    def plan_sweep(
        self, row: int, col: int, voltages: Sequence[float] | np.ndarray, settings: SweepSettings
    ) -> SweepPlan:
        """Validate a cyclic I-V sweep (see :meth:`iv_sweep`) and plan its backend runs."""
        self.check_cell(row, col)
        st = settings
        v = np.asarray(voltages, dtype=float).reshape(-1)
        if v.size == 0:
            raise ValueError("an I-V sweep needs ≥ 1 voltage")
        if isinstance(st.cycles, bool) or int(st.cycles) != st.cycles or st.cycles < 1:
            raise ValueError(f"cycles must be an int >= 1, got {st.cycles!r}")
        self.check_voltage(v, "sweep voltages")
        split = st.reset_compliance is not None or st.reset_biasing is not None
        pos, neg = v[v >= 0], v[v < 0]
        b = self.scheme(st.biasing, pos if split else v, "sweep voltages")
        rb = b if st.reset_biasing is None else Biasing.parse(st.reset_biasing)
        rb = self.scheme(rb, neg, "sweep voltages below 0 V")
        if split:
            limit = self.limit_for(st.compliance, "sweep compliance", _peak(pos))
            r_icc = st.compliance if st.reset_compliance is None else st.reset_compliance
            what = "sweep compliance" if st.reset_compliance is None else "sweep reset compliance"
            r_limit = self.limit_for(r_icc, what, _peak(neg))
            runs = tuple(
                SweepRun(s, e, rb, r_limit) if n else SweepRun(s, e, b, limit)
                for s, e, n in _sign_runs(v)
            )
        else:
            limit = r_limit = self.limit_for(st.compliance, "sweep compliance", _peak(v))
            runs = (SweepRun(0, v.size, b, limit),)
        return SweepPlan(
            row=int(row),
            col=int(col),
            voltages=v,
            cycles=int(st.cycles),
            nplc=self.check_nplc(st.nplc),
            delay=self.check_delay(st.delay),
            runs=runs,
            split=split,
            compliance_limit=limit,
            scheme=b,
            reset_scheme=rb,
            reset_limit=r_limit,
        )

    def run_sweep(
        self, plan: SweepPlan, on_point: Callable[[SweepPoint], None] | None = None
    ) -> SweepResult:
        """Run a planned sweep; ``on_point`` sees every point as it is measured."""
        v = plan.voltages
        cur = np.full((v.size, plan.cycles), np.nan)
        comp = np.zeros((v.size, plan.cycles), dtype=bool)

        def point(cycle: int, index: int, m: Measurement) -> None:
            cur[index, cycle], comp[index, cycle] = m.current, m.compliance
            if on_point is not None:
                on_point(SweepPoint(cycle, index, float(v[index]), m.current, m.compliance, m.time))

        def run_once(run: SweepRun, cycles: int, first_cycle: int) -> None:
            def shifted(cycle: int, index: int, m: Measurement) -> None:
                point(first_cycle + cycle, run.start + index, m)

            lines = run.scheme.lines(self.shape, plan.row, plan.col)
            spec = SweepSpec(
                lines, v[run.start : run.stop], run.limit, plan.nplc, plan.delay, cycles
            )
            check_stop(self.should_stop)
            self.backend.sweep(spec, shifted, should_stop=self.should_stop)

        if plan.split:
            for cycle in range(plan.cycles):
                for run in plan.runs:
                    run_once(run, 1, cycle)
        else:
            run_once(plan.runs[0], plan.cycles, 0)
        return SweepResult(plan.row, plan.col, v, cur, comp, float(plan.compliance_limit))

    def iv_sweep(
        self,
        row: int,
        col: int,
        voltages: Sequence[float] | np.ndarray,
        *,
        on_point: Callable[[SweepPoint], None] | None = None,
        **settings: object,
    ) -> SweepResult:
        """Cyclic I-V sweep of a cell through ``voltages`` (V); ``settings`` are the fields of
        :class:`SweepSettings` (``compliance`` required). ``on_point`` sees every point as it is
        measured. The applied current limit is ``SweepResult.compliance_limit``."""
        plan = self.plan_sweep(row, col, voltages, SweepSettings(**settings))  # type: ignore[arg-type]
        return self.run_sweep(plan, on_point)

    # -- waiting ----------------------------------------------------------------------------
    def wait(self, seconds: float, *, step: float = 10.0) -> None:
        """Let ``seconds`` s pass with every line released and the sources off (retention), in
        waits of at most ``step`` s so a stop request ends it (virtual time on a simulated
        bench: an hour costs no wall time)."""
        t = float(seconds)
        if not (math.isfinite(t) and t >= 0):
            raise ValueError(f"a wait must be ≥ 0 s, got {seconds!r}")
        check_stop(self.should_stop)
        self.backend.release()
        while t > 0:
            check_stop(self.should_stop)
            dt = min(t, float(step))
            self.backend.wait(dt)
            t -= dt

    # -- matrix-vector products --------------------------------------------------------------
    def check_mvm(self, row_voltages: np.ndarray) -> np.ndarray:
        """``row_voltages`` as a (batch, rows) float array, within the read limit."""
        v = np.asarray(row_voltages, dtype=float)
        v2 = np.atleast_2d(v)
        rows = self.shape[0]
        if v2.ndim != 2 or v2.shape[1] != rows:
            raise ValueError(f"row_voltages must have {rows} entries per vector, got {v.shape}")
        self.check_read_voltage(v2, "MVM row voltages")
        return v2

    def mvm(self, row_voltages: np.ndarray) -> np.ndarray:
        """Column currents (batch, cols) A for row voltages (batch, rows) V (1-D: one vector,
        returns (cols,))."""
        single = np.ndim(row_voltages) == 1
        v2 = self.check_mvm(row_voltages)
        check_stop(self.should_stop)
        raw = self.backend.mvm(v2, should_stop=self.should_stop)
        out = np.asarray(raw, dtype=float).reshape(v2.shape[0], -1)
        return out[0] if single else out


def _peak(v: np.ndarray) -> float:
    """Largest |V| of ``v`` (0 for an empty array)."""
    return float(np.max(np.abs(v))) if v.size else 0.0


def _in_range(value: float, bounds: tuple[float, float], what: str, unit: str) -> float:
    """``value`` as a float; ValueError naming ``what`` when outside ``bounds`` (inclusive)."""
    lo, hi = bounds
    x = float(value)
    if not lo <= x <= hi:
        raise ValueError(f"{what} must be in [{lo:g}, {hi:g}]{unit}, got {value!r}")
    return x


def _sign_runs(v: np.ndarray) -> list[tuple[int, int, bool]]:
    """``(start, stop, negative)`` runs of consecutive points below 0 V or not."""
    neg = v < 0
    runs: list[tuple[int, int, bool]] = []
    start = 0
    for k in range(1, v.size + 1):
        if k == v.size or neg[k] != neg[start]:
            runs.append((start, k, bool(neg[start])))
            start = k
    return runs
