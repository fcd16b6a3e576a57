"""Program-and-verify: bring cells to target conductances with incremental pulses.

The algorithm (METHODS section 5; ArC's *converge-to-state*, NeuRRAM's incremental pulses):

1. Read the cell (verify read at ``v_read``, unselected lines per ``biasing``).
2. Stop when ``|G − target| ≤ tol·target`` (relative tolerance, 5 % default).
3. Choose the direction: SET (positive pulse) when G is below the target, RESET (negative
   pulse) when above.
4. Amplitude: when the direction changes (and on the first pulse) start again at the start
   amplitude of that polarity (``v_set_start``, ``v_reset_start``: just below the switching
   thresholds, so the first pulses are gentle). After a **miss** — the last pulse closed less
   than ``min_progress`` of the gap to the target, measured in ln G (it did not move G enough,
   or moved it the wrong way) — step the amplitude up by ``v_step``; after a hit keep it. Amplitudes are capped at
   ``v_max`` and at the backend's limits (``limits.max_voltage`` and
   ``capabilities.max_pulse_voltage``), checked before every pulse.
5. Pulse, read, repeat — at most ``max_pulses`` pulses.

This is the ``"ladder"`` algorithm (the paper's, METHODS section 5). The default,
``"adaptive"`` (:class:`_Adaptive`), pulses at the cap and takes the pulse width from the
response it measures on the cell: a switching event redraws the cell's thresholds and level,
so near threshold the same pulse moves a cell tenfold more or not at all from one event to the
next, while at full amplitude the rate varies least and the width sets the move.

**Stuck cells.** A cell is declared stuck (and given up early) when the amplitude has been at
its cap for ``stuck_patience`` consecutive pulses in one direction and G moved toward the target
by less than ``stuck_rtol`` (relative) over them — a device that is stuck, or sits at the edge of
its window and cannot follow the target any further. At the end of the budget a non-converged
cell whose every read stayed within ``stuck_rtol`` of its first read is also stuck.

Defaults are for the paper's Ag/perovskite-nanowire/Au ECM device (SET ≈ +3 V, RESET ≈ −2.2 V):
start at +2.8 V / −2.0 V, 0.1 V steps, cap 4 V (NeuRRAM's range), 1 ms pulses, 60-pulse
budget; pulses under V/3 biasing, which keeps every unselected cell at |V|/3 (≤ 1.33 V at 4 V),
far below both thresholds (V/2 would put 2 V on half-selected cells, close to RESET); verify
reads at 0.2 V with the unselected lines grounded (no switching risk at 0.2 V, and the sneak
currents go to ground instead of into the sense amplifier).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

import numpy as np

from crossbar.backend import CellReading, CrossbarBackend
from crossbar.biasing import Biasing, BiasScheme
from crossbar.policy import CrossbarPolicy
from crossbar.progress import ProgressFn, notify
from instruments.errors import SafetyLimitError

__all__ = [
    "DEFAULTS",
    "CellProgramReport",
    "ProgramReport",
    "ProgramStep",
    "converged_cells",
    "pulse_cap",
    "program_cell",
    "program_map",
]

#: Default program-and-verify settings for the perovskite ECM device (see module docstring).
DEFAULTS = dict(
    tol=0.05,
    v_set_start=2.8,
    v_reset_start=2.0,
    v_step=0.1,
    v_max=4.0,
    width=1e-3,
    max_pulses=60,
    v_read=0.2,
    biasing=Biasing.V3,
    read_biasing=Biasing.GROUND,
    min_progress=0.3,
    stuck_rtol=0.02,
    stuck_patience=6,
    algorithm="adaptive",
)

#: program-and-verify algorithms: "adaptive" (default) and "ladder" (the amplitude ladder)
ALGORITHMS = ("adaptive", "ladder")

#: adaptive: the fraction of the remaining gap (in ln G) the next pulse aims to close
AIM = 0.5

#: adaptive: the fraction aimed at when the last pulse moved the cell as measured (within
#: :data:`SURE` of its aim): a reliable rate is not held back (:data:`AIM` otherwise: on a
#: cell whose every event redraws its level, a shorter aim overshoots less)
AIM_SURE = 0.8

#: adaptive: the band (ratio of the move to the aim) in which a measured rate counts as reliable
SURE = (0.5, 2.0)

#: adaptive: the largest move (in ln G) one pulse aims at: a larger drive redraws the cell's
#: thresholds and level, so the response it measured no longer holds
MAX_MOVE = 1.0

#: adaptive: within this gap (ln G) each event's level spread outweighs its drift, so the pulse
#: is sized by the spread it causes (:data:`SPREAD_AIM` · gap), measured per cell
FINE = 0.3

#: adaptive: the spread (ln G, as a fraction of the gap) a fine pulse aims at
SPREAD_AIM = 0.7

#: adaptive: the first pulse of a polarity, as a fraction of ``width`` (at full amplitude)
FIRST_WIDTH = 0.2

#: adaptive: pulses at full drive without a response before a kick (and after the second kick,
#: before the cell is given up as stuck)
KICK_PATIENCE = 2


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


@dataclass(frozen=True)
class ProgramStep:
    """One step of program-and-verify on one cell: the pulse just applied (``pulse`` ≥ 1) and
    the verify read after it, or the initial read (``pulse`` = 0, amplitude = width = 0)."""

    row: int
    col: int
    pulse: int
    amplitude: float  # V (positive SET, negative RESET)
    width: float  # s
    reading: CellReading


@dataclass
class ProgramReport:
    """Outcome of :func:`program_map`."""

    shape: tuple[int, int]
    targets: np.ndarray  # (rows, cols) S, NaN = not programmed
    cells: list[CellProgramReport] = field(default_factory=list)
    aborted: bool = False
    skipped: set[tuple[int, int]] = field(default_factory=set)

    @property
    def n_stuck(self) -> int:
        """Cells flagged stuck."""
        return sum(c.stuck for c in self.cells)

    @property
    def n_converged(self) -> int:
        """Cells that ended within tolerance."""
        return sum(c.converged for c in self.cells)

    @property
    def fraction_converged(self) -> float:
        """Converged cells / programmed non-stuck cells (NaN if there are none)."""
        ok = [c for c in self.cells if not c.stuck]
        return float(np.mean([c.converged for c in ok])) if ok else float("nan")

    @property
    def mean_pulses(self) -> float:
        """Mean number of pulses per programmed cell (NaN if none)."""
        return float(np.mean([c.pulses for c in self.cells])) if self.cells else float("nan")

    @property
    def total_pulses(self) -> int:
        """All pulses applied."""
        return sum(c.pulses for c in self.cells)

    def final_map(self) -> np.ndarray:
        """(rows, cols) S: last verify read of each programmed cell, NaN elsewhere."""
        out = np.full(self.shape, np.nan)
        for c in self.cells:
            out[c.row, c.col] = c.final
        return out

    def stuck_cells(self) -> list[tuple[int, int]]:
        """(row, col) of every stuck cell."""
        return [(c.row, c.col) for c in self.cells if c.stuck]

    def summary(self) -> str:
        """One line for logs and the GUI."""
        return (
            f"{len(self.cells)} cells programmed, {self.n_converged} converged "
            f"({100 * self.fraction_converged:.1f} % of non-stuck), {self.n_stuck} stuck, "
            f"{self.mean_pulses:.1f} pulses per cell" + (" (aborted)" if self.aborted else "")
        )


def pulse_cap(array: CrossbarPolicy | CrossbarBackend, v_max: float) -> float:
    """Largest pulse magnitude allowed (V): min(v_max, bench limit, bench pulse capability),
    rounded DOWN to 6 significant digits — instruments take levels as decimal text (the 6487:
    ``%g``, 6 digits), and a cap at a non-round limit (e.g. 0.9750079926 V) would otherwise be
    written rounded up, beyond the limit, and refused in the middle of programming."""
    cap = float(min(abs(v_max), array.limits.max_voltage, array.capabilities.max_pulse_voltage))
    if cap <= 0 or not np.isfinite(cap):
        return cap
    exact = Decimal(cap)  # the float's exact decimal value
    floored = exact.quantize(Decimal(1).scaleb(exact.adjusted() - 5), rounding=ROUND_FLOOR)
    return float(min(float(floored), cap))


def _progress(g: float, g_new: float, target: float, d: int) -> float:
    """Fraction of the gap to the target a pulse closed, measured in ln G (memristor conductance
    moves multiplicatively); negative when G moved the wrong way."""
    if g <= 0 or g_new <= 0:  # non-physical read (noise around 0): fall back to linear G
        gap = abs(target - g)
        return d * (g_new - g) / gap if gap > 0 else 1.0
    gap = abs(np.log(target / g))
    return float(d * np.log(g_new / g) / gap) if gap > 0 else 1.0


def program_cell(
    array: CrossbarPolicy | CrossbarBackend,
    row: int,
    col: int,
    target: float,
    *,
    tol: float = DEFAULTS["tol"],
    v_set_start: float = DEFAULTS["v_set_start"],
    v_reset_start: float = DEFAULTS["v_reset_start"],
    v_step: float = DEFAULTS["v_step"],
    v_max: float = DEFAULTS["v_max"],
    width: float = DEFAULTS["width"],
    max_pulses: int = DEFAULTS["max_pulses"],
    v_read: float = DEFAULTS["v_read"],
    biasing: BiasScheme | str = DEFAULTS["biasing"],
    read_biasing: BiasScheme | str = DEFAULTS["read_biasing"],
    compliance: float | None = None,
    min_progress: float = DEFAULTS["min_progress"],
    stuck_rtol: float = DEFAULTS["stuck_rtol"],
    stuck_patience: int = DEFAULTS["stuck_patience"],
    algorithm: str = DEFAULTS["algorithm"],
    prior: dict[int, float] | None = None,
    on_pulse: Callable[[ProgramStep], None] | None = None,
    should_abort: Callable[[], bool] | None = None,
) -> CellProgramReport:
    """Program one cell to ``target`` S within ``tol`` (relative); see the module docstring.

    ``v_set_start``/``v_reset_start`` are magnitudes (V; the RESET pulses are negative), ``v_max``
    caps both polarities. ``biasing`` holds the unselected lines during pulses (V/3 default),
    ``read_biasing`` during the verify reads (ground default: the sneak currents go to ground, so
    the read is the most accurate one; V/2, V/3 reads add the noise of the half-selected cells). ``width`` is the pulse width (s), ``compliance`` the SET/RESET current
    limit (A, None: the backend's default). ``on_pulse`` sees the initial read and every
    pulse + verify read as it happens. ``should_abort`` is checked before every pulse; an abort
    returns the report so far with ``aborted=True``. Raises ValueError for bad settings.

    A verify read in compliance (the read source hit its current limit: the cell conducts far
    more than any target, e.g. a short or a runaway SET) stops programming with
    :class:`~instruments.errors.ComplianceError` from ``backend.compliance_error`` after the
    read has been passed to ``on_pulse`` — pulsing on blind could damage the cell or its
    neighbours; the operator decides (a resumed map skips the cells already converged).

    ``algorithm``: ``"adaptive"`` (default: pulses at the cap, the width follows the cell's
    measured response) or ``"ladder"`` (fixed width, amplitude ladder). ``prior`` (adaptive):
    the SET (+1) and RESET (−1) rates (ln G per s of pulse) last measured; the run sizes its
    first pulses from them and writes its own back (:func:`program_map` passes one from cell to
    cell: neighbouring devices switch alike).
    """
    policy = CrossbarPolicy.of(array)
    target = float(target)
    _check_settings(
        target, tol, v_step, v_set_start, v_reset_start, width, max_pulses, stuck_patience
    )
    biasing, read_biasing = Biasing.parse(biasing), Biasing.parse(read_biasing)
    if biasing.positive_only:
        raise ValueError(
            f"pulse biasing {biasing.value!r} is for V >= 0 only and programming pulses both "
            "ways; use v/3"
        )
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    cap = pulse_cap(policy, v_max)
    start = {+1: min(abs(v_set_start), cap), -1: min(abs(v_reset_start), cap)}
    rule: _Ladder | _Adaptive
    if algorithm == "ladder":
        rule = _Ladder(start, v_step, cap, width, min_progress, stuck_rtol, stuck_patience)
    else:
        rule = _Adaptive(start, v_step, cap, width, stuck_rtol, stuck_patience, prior=prior)
    run = _Verify(
        policy,
        row,
        col,
        target,
        tol=tol,
        max_pulses=max_pulses,
        pulse=lambda a, w: policy.pulse(row, col, a, w, biasing=biasing, compliance=compliance),
        read=lambda: policy.read_cell(row, col, v_read=v_read, biasing=read_biasing),
        rule=rule,
        stuck_rtol=stuck_rtol,
        on_pulse=on_pulse,
        should_abort=should_abort,
    )
    return run.run()


@dataclass
class _Verify:
    """One program-and-verify run on one cell (see :func:`program_cell`): verify, pick the next
    pulse from ``rule``, pulse, verify again, until the target, the budget, an abort, or the
    rule gives the cell up as stuck."""

    policy: CrossbarPolicy
    row: int
    col: int
    target: float
    tol: float
    max_pulses: int
    pulse: Callable[[float, float], None]
    read: Callable[[], CellReading]
    rule: _Ladder | _Adaptive
    stuck_rtol: float
    on_pulse: Callable[[ProgramStep], None] | None
    should_abort: Callable[[], bool] | None

    def verify(self, pulse: int, amplitude: float, width: float) -> float:
        """A verify read, passed to ``on_pulse``; its G (S). ComplianceError if clamped."""
        reading = self.read()
        if self.on_pulse is not None:
            self.on_pulse(ProgramStep(self.row, self.col, pulse, amplitude, width, reading))
        if reading.compliance:  # passed to on_pulse (recorded) first: nothing measured is lost
            raise self.policy.compliance_error(reading, "program-and-verify")
        return reading.conductance

    def within(self, g: float) -> bool:
        return abs(g - self.target) <= self.tol * self.target

    def run(self) -> CellProgramReport:
        g0 = g = self.verify(0, 0.0, 0.0)
        reads = [g]
        report = CellProgramReport(self.row, self.col, self.target, g, 0, False, False)
        while not self.within(g) and report.pulses < self.max_pulses:
            if self.should_abort is not None and self.should_abort():
                report.aborted = True
                break
            d = 1 if g < self.target else -1
            amplitude, width = self.rule.next(d, g, self.target)
            self.pulse(amplitude, width)
            report.pulses += 1
            g_new = self.verify(report.pulses, amplitude, width)
            report.history.append((amplitude, width, g_new))
            self.rule.observe(d, g, g_new, self.target)
            g = g_new
            reads.append(g)
            if self.rule.gave_up(g) and not self.within(g):
                report.stuck = True
                break
        report.converged = self.within(g) and not report.stuck
        report.final = g
        if not report.converged and not report.stuck and not report.aborted and report.pulses:
            span = np.max(np.abs(np.asarray(reads) - g0)) / max(abs(g0), 1e-300)
            report.stuck = bool(span < self.stuck_rtol)
        return report


def _check_settings(
    target: float,
    tol: float,
    v_step: float,
    v_set_start: float,
    v_reset_start: float,
    width: float,
    max_pulses: int,
    stuck_patience: int,
) -> None:
    """ValueError for program-and-verify settings that make no sense."""
    if not (np.isfinite(target) and target > 0):
        raise ValueError(f"target conductance must be > 0 S, got {target}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if not (v_step > 0 and abs(v_set_start) > 0 and abs(v_reset_start) > 0):
        raise ValueError("v_step, v_set_start and v_reset_start must be non-zero")
    if not (width > 0 and max_pulses >= 0 and stuck_patience >= 1):
        raise ValueError("width must be > 0 s, max_pulses ≥ 0 and stuck_patience ≥ 1")


@dataclass
class _Ladder:
    """The amplitude ladder (the ``"ladder"`` algorithm): fixed width; the polarity's ``start``
    magnitude on a direction change, ``step`` more after a miss (a pulse that closed less than
    ``min_progress`` of the gap in ln G), never above ``cap``; stuck after ``patience``
    consecutive pulses at the cap that moved G by less than ``rtol``."""

    start: dict[int, float]
    step: float
    cap: float
    width: float
    min_progress: float
    rtol: float
    patience: int
    direction: int = 0
    amp: float = 0.0
    miss: bool = False
    at_cap: list[float] = field(default_factory=list)  # G before each consecutive at-cap pulse

    def next(self, d: int, g: float, target: float) -> tuple[float, float]:
        """(signed amplitude V, width s) of the next pulse in direction ``d``."""
        restarted = d != self.direction
        if restarted:
            self.direction, self.amp = d, self.start[d]
        elif self.miss:
            self.amp = min(self.amp + self.step, self.cap)
        # Safety: never ask for more than the bench allows (the policy checks again).
        if self.amp > self.cap * (1 + 1e-12):
            raise SafetyLimitError(f"pulse {d * self.amp:g} V beyond the cap {self.cap:g} V")
        self.at_cap = [*([] if restarted else self.at_cap), g] if self.amp >= self.cap else []
        return d * self.amp, self.width

    def observe(self, d: int, g: float, g_new: float, target: float) -> None:
        self.miss = _progress(g, g_new, target, d) < self.min_progress
        self._last = (d, g_new)

    def gave_up(self, g: float) -> bool:
        return _stuck_at_cap(self.at_cap, g, self.direction, self.patience, self.rtol)


@dataclass
class _Adaptive:
    """The ``"adaptive"`` algorithm: full amplitude, and the pulse width follows the cell's
    measured response.

    Every pulse is at ``cap``: there the switching rate depends least on the cell's threshold,
    which each switching event redraws (near threshold a 10 % shift changes the rate tenfold).
    The first pulse of a polarity lasts ``FIRST_WIDTH·width``; each pulse that moved the cell
    toward the target by at least a quarter of its aim measures the polarity's rate (ln G per s,
    a running geometric mean), and the next width moves ln G by :data:`AIM` of the remaining
    gap at that rate (:data:`AIM_SURE` after a pulse that moved as aimed; at most
    :data:`MAX_MOVE`; between ``width/1000`` and ``width·8``). A pulse that did less halves the
    rate (the next one is longer). Within :data:`FINE` of the target a pulse's own level spread
    outweighs its drift, so the width is sized for a spread of :data:`SPREAD_AIM` of the gap
    from the spread measured on the cell (ln G² per s).
    ``prior`` (from :func:`program_map`) passes the rates from cell to cell: neighbouring devices
    switch alike. A cell that does not move at the longest pulse for :data:`KICK_PATIENCE`
    pulses gets one full pulse the other way (a switching event redraws its thresholds, so a
    cell is not stranded) and is given up as stuck only if that happens twice."""

    start: dict[int, float]
    step: float
    cap: float
    width: float
    rtol: float
    patience: int
    prior: dict[int, float] | None = None  # learned rates (ln G per s), updated in place
    rate: dict[int, float] = field(default_factory=dict)  # ln G per s of pulse (0: not known)
    spread: dict[int, float] = field(default_factory=dict)  # ln G² per s (0: not known)
    aimed: float = 0.0  # ln G the last pulse aimed to move (0: a kick)
    fine: int = 0  # polarity of the last pulse if it was sized by its spread, else 0
    last_width: float = 0.0
    flat: int = 0  # consecutive pulses at full drive that did not move the cell
    kicks: int = 0
    kick_pending: bool = False
    sure: bool = False  # the last pulse moved the cell as aimed (a reliable rate)

    def __post_init__(self) -> None:
        known = self.prior or {}
        self.rate = {d: float(known.get(d, 0.0)) for d in (1, -1)}
        self.spread = {1: 0.0, -1: 0.0}

    @property
    def _w_max(self) -> float:
        return max(self.width, min(self.width * 8, 10e-3))

    @property
    def _w_min(self) -> float:
        return max(self.width / 1000, 1e-7)

    def _clamp(self, width: float) -> float:
        return min(self._w_max, max(self._w_min, width))

    def next(self, d: int, g: float, target: float) -> tuple[float, float]:
        """(signed amplitude V, width s) of the next pulse in direction ``d``."""
        # Safety: never ask for more than the bench allows (the policy checks again).
        if not (0 < self.cap < math.inf):
            raise SafetyLimitError(f"no pulse allowed: the cap is {self.cap:g} V")
        self.fine, self.aimed = 0, 0.0
        if self.kick_pending:  # one full-strength pulse the other way, then back to the target
            self.kick_pending = False
            self.last_width = self._w_max
            return -d * self.cap, self._w_max
        gap = abs(math.log(target / g)) if g > 0 else 1.0
        self.aimed = min((AIM_SURE if self.sure else AIM) * gap, MAX_MOVE)
        width = self.width * FIRST_WIDTH
        if self.rate[d] > 0:
            width = self.aimed / self.rate[d]
        if gap <= FINE and self.rate[d] > 0:  # sized by the drift, then by the spread measured
            self.fine, sigma = d, SPREAD_AIM * gap
            if self.spread[d] > 0:  # spread² ≈ k·width (ln G² per s); no longer than the drift's
                width = min(width, sigma * sigma / self.spread[d])
        self.last_width = self._clamp(width)
        return d * self.cap, self.last_width

    def observe(self, d: int, g: float, g_new: float, target: float) -> None:
        """Learn from the pulse just applied in direction ``d`` (G before and after, S)."""
        aimed, self.sure = self.aimed, False
        if aimed <= 0:  # a kick: nothing to learn
            return
        moved = d * math.log(g_new / g) if g > 0 and g_new > 0 else 0.0  # > 0: toward target
        if self.fine:
            m = min(abs(moved), 3 * SPREAD_AIM * abs(math.log(target / g)))
            k = max(m, 0.02) ** 2 / self.last_width
            self.spread[d] = k if self.spread[d] <= 0 else math.sqrt(self.spread[d] * k)
            return
        if d > 0 and moved < -1.0:  # the fresh filament dissolved: retry, learn nothing
            return
        if moved > max(0.25 * self.aimed, self.rtol):  # it responded: measure the rate
            self.flat, self.sure = 0, SURE[0] <= moved / aimed <= SURE[1]
            r = moved / self.last_width
            self.rate[d] = r if self.rate[d] <= 0 else math.sqrt(self.rate[d] * r)
            if self.prior is not None:
                self.prior[d] = self.rate[d]
            return
        if self.last_width < self._w_max:  # it did less than aimed: the next pulse is longer
            self.rate[d] = self.aimed / (2 * self.last_width)
            return
        self.flat += 1
        if self.flat >= KICK_PATIENCE and self.kicks < 2:
            self.kick_pending, self.flat, self.kicks = True, 0, self.kicks + 1

    def gave_up(self, g: float) -> bool:
        return self.kicks >= 2 and self.flat >= KICK_PATIENCE


def _stuck_at_cap(at_cap: list[float], g: float, d: int, patience: int, rtol: float) -> bool:
    """True when ``patience`` consecutive pulses at the cap moved G toward the target by less
    than ``rtol`` (relative)."""
    if len(at_cap) < patience:
        return False
    ref = at_cap[-patience]
    return d * (g - ref) / max(abs(ref), 1e-300) < rtol


def program_map(
    array: CrossbarPolicy | CrossbarBackend,
    targets: np.ndarray,
    *,
    progress: ProgressFn | None = None,
    should_abort: Callable[[], bool] | None = None,
    skip: set[tuple[int, int]] | None = None,
    on_pulse: Callable[[ProgramStep], None] | None = None,
    on_cell: Callable[[CellProgramReport], None] | None = None,
    **cell_options: object,
) -> ProgramReport:
    """Program every cell of ``targets`` (rows, cols) S, row by row; NaN = leave alone.

    ``skip``: cells not to touch (e.g. already done when resuming a run, or known stuck).
    ``progress`` (:class:`~crossbar.progress.Progress`) after each cell; ``on_cell`` gets each cell's report as soon as it
    is done; ``on_pulse`` every pulse (see :func:`program_cell`, which receives
    ``cell_options``). ``should_abort`` is checked between cells and between pulses; an abort
    stops at once and returns the partial report with ``aborted=True``.
    """
    policy = CrossbarPolicy.of(array)
    t = np.asarray(targets, dtype=float)
    if t.shape != policy.shape:
        raise ValueError(f"targets must have the array's shape {policy.shape}, got {t.shape}")
    valid = np.isfinite(t)
    if np.any(t[valid] <= 0):
        raise ValueError("target conductances must be > 0 S (NaN to skip a cell)")
    skip = {(int(r), int(c)) for r, c in (skip or set())}
    cells = [(int(r), int(c)) for r, c in np.argwhere(valid) if (int(r), int(c)) not in skip]
    report = ProgramReport(shape=policy.shape, targets=t.copy(), skipped=set(skip))
    total = len(cells)
    notify(progress, 0, total, "program")
    prior: dict[int, float] = {}  # adaptive: the measured rates, from cell to cell
    for done, (r, c) in enumerate(cells, start=1):
        if should_abort is not None and should_abort():
            report.aborted = True
            break
        cell = program_cell(
            policy,
            r,
            c,
            t[r, c],
            prior=prior,
            on_pulse=on_pulse,
            should_abort=should_abort,
            **cell_options,  # type: ignore[arg-type]
        )
        report.cells.append(cell)
        if on_cell is not None:
            on_cell(cell)
        if cell.aborted:
            report.aborted = True
            break
        notify(progress, done, total, "program", f"cell ({r}, {c})")
    return report


def converged_cells(
    records: dict[str, np.ndarray], targets: np.ndarray, *, tol: float = DEFAULTS["tol"]
) -> set[tuple[int, int]]:
    """Cells whose LAST ``program-verify`` read in ``records`` (from
    :func:`crossbar.datastore.read_records`) is within ``tol`` of ``targets`` (rows, cols) S —
    the ``skip`` set to resume an interrupted :func:`program_map` from its data file."""
    t = np.asarray(targets, dtype=float)
    op = np.asarray(records["operation"])
    sel = np.flatnonzero(op == "program-verify")
    last: dict[tuple[int, int], float] = {}
    for k in sel:  # records are in acquisition order: later reads overwrite earlier ones
        last[(int(records["row"][k]), int(records["col"][k]))] = float(records["conductance"][k])
    done = set()
    for (r, c), g in last.items():
        if 0 <= r < t.shape[0] and 0 <= c < t.shape[1] and np.isfinite(t[r, c]):
            if abs(g - t[r, c]) <= tol * t[r, c]:
                done.add((r, c))
    return done
