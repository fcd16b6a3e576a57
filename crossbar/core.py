"""The crossbar facade: every operation on the array, recorded as it is acquired.

:class:`Crossbar` wraps one :class:`~crossbar.backend.CrossbarBackend` (hardware, simulated bench
or physics) and an optional :class:`~crossbar.datastore.DataStore`. Scripts, calibration,
inference and the GUI use it rather than the backend, so that

* every read, pulse, sweep point, forming and program-verify step and every MVM batch is written
  to the data file the moment it is measured (through the backends' ``on_cell``/``on_point``
  callbacks);
* a run can be stopped from another thread with :meth:`Crossbar.abort`: the flag is checked
  between cells, sweep points, pulses and MVM batches, and once more when the operation ends;
  the operation then switches every output to 0 V and raises
  :class:`~crossbar.backend.OperationAborted` carrying what was acquired (the abort request is
  consumed by that raise);
* :meth:`Crossbar.emergency_stop` latches: the running operation stops at its next primitive
  (outputs off, lines released, the data file marked ``aborted`` with the time and the last
  record) and raises :class:`~crossbar.backend.EmergencyStop` with no result; every further
  operation is refused with that error until :meth:`Crossbar.reset_emergency_stop`;
* any error or Ctrl-C during an operation also switches outputs off before propagating, and the
  context manager always shuts the backend down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from crossbar import programming
from crossbar.backend import (
    BenchView,
    CellReading,
    CrossbarBackend,
    EmergencyStop,
    OperationAborted,
    StopRequested,
    SweepPoint,
    SweepResult,
)
from crossbar.biasing import Biasing, BiasScheme
from crossbar.datastore import DataStore
from crossbar.policy import CrossbarPolicy, SweepSettings
from crossbar.programming import CellProgramReport, ProgramReport, ProgramStep
from crossbar.progress import ProgressFn, notify

__all__ = ["Crossbar", "EmergencyStop", "FormReport", "OperationAborted"]


class _Stop(Exception):
    """Internal: raised inside a backend callback to unwind an aborted operation."""


_STOPS = (_Stop, StopRequested)


@dataclass
class FormReport:
    """Outcome of :meth:`Crossbar.form` on one cell."""

    row: int
    col: int
    formed: bool
    g_initial: float  # S
    g_final: float  # S
    pulses: int
    v_form: float | None  # V, amplitude of the pulse after which G rose (None: not formed)
    history: list[tuple[float, float, float]] = field(default_factory=list)  # (V, s, G S)


class Crossbar(BenchView):
    """All operations on one array, recorded to ``datastore`` (if given) as acquired.

    Args:
        backend: the bench (hardware, simulated or physics backend).
        datastore: where every operation is appended; None records nothing.
        differential_read: cancel the half-selected cells' current in V/2, V/3 reads (see
            :mod:`crossbar.policy`).
    """

    def __init__(
        self,
        backend: CrossbarBackend,
        *,
        datastore: DataStore | None = None,
        differential_read: bool = True,
        emergency: threading.Event | None = None,
    ) -> None:
        self.backend = backend
        self._abort = threading.Event()
        # ``emergency``: a latch shared with other crossbars (a study's benches share one, so
        # one stop reaches whichever bench is running); by default this crossbar's own
        self._estop = emergency if emergency is not None else threading.Event()
        # the emergency stop reaches inside every primitive; a plain abort is checked between
        # steps (cells, points, pulses, MVM batches), so an aborted run keeps its partial result
        self.policy = CrossbarPolicy(
            backend, differential_read=differential_read, should_stop=self._estop.is_set
        )
        self.datastore = datastore

    # -- emergency stop ----------------------------------------------------------------------
    def emergency_stop(self) -> None:
        """Latch the emergency stop (thread-safe). The running operation stops at its next
        primitive with every output off and no result; every further operation is refused
        until :meth:`reset_emergency_stop`. With no operation running, call :meth:`shutdown`
        as well (from the thread that owns the bench) to switch the outputs off now."""
        self._estop.set()

    def reset_emergency_stop(self) -> None:
        """Acknowledge the emergency stop: operations are accepted again (outputs stay off)."""
        self._estop.clear()
        self._abort.clear()

    @property
    def emergency_stopped(self) -> bool:
        """True while the emergency stop is latched."""
        return self._estop.is_set()

    def _stop_requested(self) -> bool:
        return self._estop.is_set() or self._abort.is_set()

    def _refuse_if_stopped(self, what: str) -> None:
        if self._estop.is_set():
            raise EmergencyStop(
                f"{what} refused: the emergency stop is latched (outputs off); acknowledge it "
                "first (reset_emergency_stop(), or Acknowledge in the GUI)"
            )

    # -- abort -------------------------------------------------------------------------------
    def abort(self) -> None:
        """Ask the running operation to stop (thread-safe; e.g. from a GUI Stop button)."""
        self._abort.set()

    def reset_abort(self) -> None:
        """Withdraw an abort request that no operation has consumed yet."""
        self._abort.clear()

    @property
    def abort_requested(self) -> bool:
        """True while an abort request is pending."""
        return self._abort.is_set()

    def _check(self) -> None:
        if self._stop_requested():
            raise _Stop

    @contextmanager
    def _operation(self, what: str, partial: Callable[[], object]) -> Iterator[None]:
        """Refused while the emergency stop is latched; outputs off on any exception; an abort
        becomes OperationAborted(partial=...), an emergency stop EmergencyStop (no result)."""
        self._refuse_if_stopped(what)
        try:
            yield
            self._check()  # a stop pressed during the operation's last step still stops it
        except _STOPS:
            self.backend.outputs_off()
            if self._estop.is_set():
                self._stopped(what)
            self._flush_quietly()
            self._abort.clear()
            raise OperationAborted(f"{what} aborted", partial=partial()) from None
        except Exception as exc:
            self.backend.outputs_off()
            if self._estop.is_set():  # whatever failed while the stop was latched (e.g. a bus
                self._stopped(what, exc)  # the GUI's shutdown cut): no result, a stop
            self._flush_quietly()
            raise
        except BaseException:  # Ctrl-C, SIGTERM: reported as themselves
            self.backend.outputs_off()
            self._flush_quietly()
            raise

    def _stopped(self, what: str, cause: BaseException | None = None) -> None:
        """Mark the data file aborted and raise EmergencyStop (no result)."""
        self._mark_aborted(what)
        self._flush_quietly()
        raise EmergencyStop(
            f"{what} stopped by the emergency stop; outputs off, no result"
        ) from cause

    def _mark_aborted(self, what: str) -> None:
        """Mark the data file ``aborted`` (never hides the stop behind a data-file error)."""
        if self.datastore is None or self.datastore.closed:
            return
        try:
            self.datastore.mark_aborted(f"emergency stop during {what}", self.backend.now())
        except Exception:  # noqa: BLE001 - the stop itself must be reported
            pass

    def _flush(self) -> None:
        if self.datastore is not None and not self.datastore.closed:
            self.datastore.flush()

    def _flush_quietly(self) -> None:
        try:
            self._flush()
        except Exception:  # never hide the original error behind a data-file error
            pass

    # -- single-cell operations --------------------------------------------------------------
    def read_cell(
        self, row: int, col: int, *, v_read: float = 0.2, biasing: BiasScheme | str = Biasing.V3
    ) -> CellReading:
        """Read one cell at ``v_read`` V (recorded as ``read``); see
        :meth:`CrossbarPolicy.read_cell <crossbar.policy.CrossbarPolicy.read_cell>`."""
        with self._operation("read", lambda: None):
            reading = self.policy.read_cell(row, col, v_read=v_read, biasing=biasing)
            if self.datastore is not None:
                self.datastore.record_reading(reading, "read")
            return reading

    def read_map(
        self,
        *,
        v_read: float = 0.2,
        biasing: BiasScheme | str = Biasing.V3,
        progress: ProgressFn | None = None,
    ) -> np.ndarray:
        """Read every cell (rows, cols) S; each read recorded as acquired. An abort raises
        OperationAborted with the partial map (NaN where not read). A read in compliance (the
        source hit its current limit: the current is clamped, the conductance unknown) is
        recorded with its compliance flag, then the map stops with
        :class:`~instruments.errors.ComplianceError` (outputs off)."""
        rows, cols = self.shape
        total = rows * cols
        partial = np.full((rows, cols), np.nan)
        done = [0]

        def on_cell(reading: CellReading) -> None:
            partial[reading.row, reading.col] = reading.conductance
            if self.datastore is not None:
                self.datastore.record_reading(reading, "read")
            done[0] += 1
            notify(progress, done[0], total, "read map")
            if reading.compliance:  # recorded (flagged) above; a clamped read is no conductance
                raise self.policy.compliance_error(reading, "read map")
            self._check()

        with self._operation("read map", lambda: partial.copy()):
            self._check()
            return self.policy.read_map(v_read=v_read, biasing=biasing, on_cell=on_cell)

    def pulse(
        self,
        row: int,
        col: int,
        amplitude: float,
        width: float,
        *,
        biasing: BiasScheme | str = Biasing.V2,
        compliance: float | None = None,
        read_after: bool = True,
        v_read: float = 0.2,
        read_biasing: BiasScheme | str = Biasing.V3,
    ) -> CellReading | None:
        """Apply one pulse (V, s; positive SET, negative RESET), optionally read after it.
        Recorded as ``pulse`` with the read-after in the same record. Returns the read or None."""
        with self._operation("pulse", lambda: None):
            self._check()
            t = self.backend.now()
            self.policy.pulse(row, col, amplitude, width, biasing=biasing, compliance=compliance)
            reading = None
            if read_after:
                reading = self.policy.read_cell(row, col, v_read=v_read, biasing=read_biasing)
            if self.datastore is not None:
                if reading is not None:
                    self.datastore.record_reading(
                        reading, "pulse", voltage=amplitude, pulse_width=width
                    )
                else:
                    self.datastore.record(
                        "pulse", time=t, row=row, col=col, voltage=amplitude, pulse_width=width
                    )
            return reading

    def iv_sweep(
        self,
        row: int,
        col: int,
        voltages: Sequence[float],
        *,
        compliance: float,
        cycles: int = 1,
        nplc: float = 1.0,
        biasing: BiasScheme | str = Biasing.GROUND,
        name: str | None = None,
        progress: ProgressFn | None = None,
        on_point: Callable[[SweepPoint], None] | None = None,
        delay: float = 0.0,
        reset_compliance: float | None = None,
        reset_biasing: BiasScheme | str | None = None,
    ) -> SweepResult:
        """Cyclic I-V sweep of one cell (the settings: :class:`~crossbar.policy.SweepSettings`,
        e.g. ``reset_compliance``/``reset_biasing`` for the points below 0 V). Each point is written
        to ``/iv/<name>`` and ``/records`` as measured; ``on_point`` (e.g. a live plot) sees it
        too. A bad request is refused before the data file is touched. An abort raises
        OperationAborted with the partial ``SweepResult``."""
        settings = SweepSettings(
            compliance, cycles, nplc, biasing, delay, reset_compliance, reset_biasing
        )
        plan = self.policy.plan_sweep(row, col, voltages, settings)
        v = plan.voltages
        total = v.size * plan.cycles
        cur = np.full((v.size, plan.cycles), np.nan)
        comp = np.zeros((v.size, plan.cycles), dtype=bool)
        writer = None
        self._refuse_if_stopped("I-V sweep")
        if self.datastore is not None:
            writer = self.datastore.begin_iv(
                row,
                col,
                v,
                cycles=plan.cycles,
                compliance_a=compliance,
                name=name,
                nplc=plan.nplc,
                biasing=plan.scheme.name,
                delay_s=plan.delay,
                reset_compliance_a=float(
                    compliance if reset_compliance is None else reset_compliance
                ),
                reset_biasing=plan.reset_scheme.name,
            )
        done = [0]

        def point(p: SweepPoint) -> None:
            cur[p.index, p.cycle] = p.current
            comp[p.index, p.cycle] = p.compliance
            if writer is not None:
                writer.point(p)
            if on_point is not None:
                on_point(p)
            done[0] += 1
            notify(progress, done[0], total, "I-V sweep")
            self._check()

        def partial() -> SweepResult:
            return SweepResult(row, col, v, cur.copy(), comp.copy(), plan.compliance_limit)

        with self._operation("I-V sweep", partial):
            self._check()
            return self.policy.run_sweep(plan, point)

    def form(
        self,
        row: int,
        col: int,
        *,
        v_start: float = 3.0,
        v_step: float = 0.25,
        v_max: float = 6.0,
        width: float = 10e-3,
        compliance: float = 1e-4,
        rise_factor: float = 10.0,
        g_formed: float | None = None,
        max_pulses: int = 30,
        v_read: float = 0.2,
        biasing: BiasScheme | str = Biasing.V3,
    ) -> FormReport:
        """Electroforming: a train of positive pulses with a current compliance until G rises.

        Starts at ``v_start`` (V, at the SET threshold of the ECM device) and steps the
        amplitude by ``v_step`` after every pulse up to ``v_max`` (capped by the bench), each
        pulse ``width`` s with the source limited at ``compliance`` A (the limit is what keeps
        the first filament from growing into a hard breakdown). After each pulse the cell is
        read at ``v_read``; forming succeeds when G ≥ ``rise_factor`` × the initial G (and
        ≥ ``g_formed`` S if given). Every pulse is recorded as ``form`` with its read-after.
        Stops after ``max_pulses``; an abort raises OperationAborted with the partial report.
        """
        cap = programming.pulse_cap(self.policy, v_max)
        b = Biasing.parse(biasing)
        rep: list[FormReport] = []

        with self._operation("forming", lambda: rep[0] if rep else None):
            first = self.policy.read_cell(row, col, v_read=v_read, biasing=b)
            if self.datastore is not None:
                self.datastore.record_reading(first, "form", voltage=0.0, pulse_width=0.0)
            g0 = first.conductance
            threshold = max(rise_factor * max(g0, 0.0), g_formed or 0.0)
            report = FormReport(row, col, False, g0, g0, 0, None)
            rep.append(report)
            amp = min(v_start, cap)
            for _ in range(max_pulses):
                self._check()
                self.policy.pulse(row, col, amp, width, biasing=b, compliance=compliance)
                reading = self.policy.read_cell(row, col, v_read=v_read, biasing=b)
                report.pulses += 1
                report.g_final = reading.conductance
                report.history.append((amp, width, reading.conductance))
                if self.datastore is not None:
                    self.datastore.record_reading(reading, "form", voltage=amp, pulse_width=width)
                if reading.conductance >= threshold and reading.conductance > 0:
                    report.formed, report.v_form = True, amp
                    break
                amp = min(amp + v_step, cap)
            self._flush()
            return report

    # -- program-and-verify ------------------------------------------------------------------
    def _record_step(self, step: ProgramStep) -> None:
        if self.datastore is not None:
            self.datastore.record_reading(
                step.reading, "program-verify", voltage=step.amplitude, pulse_width=step.width
            )

    def _programming(self, what: str, options: dict, run: Callable[..., object]) -> object:
        """Run ``run(policy, on_pulse=, should_abort=, **options)`` recording every step; an
        abort raises OperationAborted with the report so far."""
        user_cb = options.pop("on_pulse", None)

        def on_pulse(step: ProgramStep) -> None:
            self._record_step(step)
            if user_cb is not None:
                user_cb(step)

        rep: list = []
        with self._operation(what, lambda: rep[0] if rep else None):
            self._check()
            report = run(self.policy, on_pulse=on_pulse, should_abort=self._abort.is_set, **options)
            rep.append(report)
            if report.aborted:  # type: ignore[attr-defined]
                raise _Stop
            self._flush()
            return report

    def program_cell(
        self, row: int, col: int, target: float, **options: object
    ) -> CellProgramReport:
        """Program-and-verify one cell to ``target`` S (options: see
        :func:`crossbar.programming.program_cell`); every step recorded as ``program-verify``."""
        return self._programming(  # type: ignore[return-value]
            "program-and-verify",
            options,
            lambda policy, **kw: programming.program_cell(policy, row, col, target, **kw),
        )

    def program_map(
        self,
        targets: np.ndarray,
        *,
        skip: set[tuple[int, int]] | None = None,
        progress: ProgressFn | None = None,
        on_cell: Callable[[CellProgramReport], None] | None = None,
        **options: object,
    ) -> ProgramReport:
        """Program every non-NaN cell of ``targets`` (rows, cols) S; see
        :func:`crossbar.programming.program_map`. An abort raises OperationAborted whose
        ``partial`` is the ProgramReport so far (its cells can be passed as ``skip`` to resume)."""
        return self._programming(  # type: ignore[return-value]
            "program map",
            options,
            lambda policy, **kw: programming.program_map(
                policy, targets, progress=progress, skip=skip, on_cell=on_cell, **kw
            ),
        )

    # -- waiting ----------------------------------------------------------------------------
    def wait(self, seconds: float) -> None:
        """Let ``seconds`` s pass with the outputs off (retention; see
        :meth:`CrossbarPolicy.wait <crossbar.policy.CrossbarPolicy.wait>`); recorded as ``wait``
        with the duration in ``pulse_width``. An abort or emergency stop ends it."""
        with self._operation("wait", lambda: None):
            self._check()
            t0 = self.backend.now()
            self.policy.wait(seconds)
            if self.datastore is not None:
                self.datastore.record("wait", time=t0, pulse_width=float(seconds))

    # -- matrix-vector products --------------------------------------------------------------
    def mvm(
        self,
        row_voltages: np.ndarray,
        *,
        batch_size: int = 256,
        progress: ProgressFn | None = None,
    ) -> np.ndarray:
        """Column currents (batch, cols) A for row voltages (batch, rows) V (1-D: one vector,
        returns (cols,)). Runs in chunks of ``batch_size`` vectors, checking for an abort and
        recording each chunk (``/mvm`` inputs/outputs, plus one ``mvm`` record per vector with
        voltage = max|V|, current = Σ column currents). An abort raises OperationAborted with the
        currents computed so far (NaN rows for the rest)."""
        single = np.ndim(row_voltages) == 1
        v2 = self.policy.check_mvm(row_voltages)
        cols = self.shape[1]
        if batch_size < 1:
            raise ValueError("batch_size must be ≥ 1")
        out = np.full((v2.shape[0], cols), np.nan)
        with self._operation("MVM", lambda: out.copy()):
            for start in range(0, v2.shape[0], batch_size):
                self._check()
                chunk = v2[start : start + batch_size]
                cur = self.policy.mvm(chunk)
                out[start : start + chunk.shape[0]] = cur
                if self.datastore is not None:
                    t = self.backend.now()
                    self.datastore.record_mvm(chunk, cur, time=t)
                    vmax = np.max(np.abs(chunk), axis=1)
                    isum = cur.sum(axis=1)
                    for vm, i_tot in zip(vmax, isum):
                        self.datastore.record(
                            "mvm", time=t, voltage=vm, read_voltage=vm, current=i_tot
                        )
                notify(progress, min(start + batch_size, v2.shape[0]), v2.shape[0], "MVM")
            self._flush()
        return out[0] if single else out

    # -- lifecycle ---------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Switch the bench off (never raises) and flush the data file."""
        try:
            self.backend.shutdown()
        finally:
            self._flush_quietly()

    def close(self) -> None:
        """Shut down and close the data file."""
        try:
            self.shutdown()
        finally:
            if self.datastore is not None:
                self.datastore.close()

    def __enter__(self) -> Crossbar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
