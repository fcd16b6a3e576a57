"""Characterise a device for computing: the measurements a deployed network's error comes from.

:func:`characterise` runs four procedures on any bench through the :class:`~crossbar.core.
Crossbar` facade, so every read, pulse, program-verify step and retention wait is written to the
data file as it is acquired, progress is reported, and an abort or emergency stop ends it safely
(outputs off). The result is a :class:`~crossbar.deployment_profile.DeploymentProfile`.

1. **window and stuck map** (every cell): a RESET ramp then a SET ramp, an averaged read after
   every pulse (G_min: the lowest read of the RESET ramp, G_max: the highest of the SET ramp — a
   filament may rupture on a strong pulse), then the RESET ramp again (the array is left in the
   HRS). A cell whose G_max/G_min < ``min_ratio`` is stuck.
2. **read noise** (the chosen cells): ``n_reads`` single reads at ``v_read`` → σ_read = std/mean
   of G per cell (median over cells) and how σ scales with G (slope of ln σ vs ln G).
3. **pulse response** (the first ``n_pulse_cells`` chosen cells that are not stuck): from a
   strong RESET, N identical SET pulses then N identical RESET pulses, the median of
   ``avg_reads`` reads after each; a train that does not traverse the cell's window (span
   ``traverse`` of its ln range) is repeated ``amplitude_step`` V stronger. Levels: every
   cell's reads as log positions normalised to its own range (0–1), all sorted and split at
   gaps > ``level_gap`` (:func:`count_levels`): n tight clusters are a filament of n levels
   (their conductances are kept), a cluster that fills the window an analog device (0 levels).
   Also the dynamic range, the non-linearity ν of each branch (G ∝ 1 − exp(−ν p/N),
   NeuroSim's form) and the asymmetry.
4. **programming statistics** (the chosen non-stuck cells): program-and-verify to targets —
   a discrete device's measured levels above its lowest, an analog device's ``n_targets``
   spread log-uniformly across the window the cells share (target k on cell i: k = i mod K) —
   then ``prog_reads`` reads averaged right after and ``avg_reads`` at ``settle_times`` s.
   σ_prog: the spread of achieved / target − 1 right after, over the cells whose verify
   converged and that have not dissolved (read < ½ target), the averaged read's own noise
   removed in quadrature; the relaxation between the first two reads (mean and spread over the
   cells); the drift exponent ν of g(t) = g(t₀)(t/t₀)^−ν fitted per cell over the settle reads
   of the cells that did not dissolve while settling (mean, spread); the fraction of converged
   cells that fell back to the HRS; the mean bench time of one cell's
   program-and-verify (a deployment's cells are programmed one after another: their ages at
   the MVMs) and how long the reads right after it take (the share of the converged cells
   dissolved by then: the dissolution's first point in time).

``CharacterisationPlan.quick()`` is the short protocol (fewer cells, reads, targets and settle
times) that still recovers the figures on the simulated bench in a few minutes of wall time
(tests/test_characterise.py checks both against the bench's hidden device).

Each procedure also runs on its own: :func:`run_step` (one of :data:`STEPS`; the GUI's
characterisation modules), and :func:`make_profile` assembles a profile from the steps' results.
The progress reports of every step carry the step's figures in ``Progress.values`` (per cell:
``row``, ``col`` and the step's numbers; per settle time: ``t`` and ``r<row>c<col>`` → G), for
live plots.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from scipy.optimize import least_squares

from crossbar.biasing import Biasing
from crossbar.core import Crossbar
from crossbar.deployment_profile import (
    DeploymentProfile,
    Programming,
    PulseResponse,
    ReadNoise,
    Window,
)
from crossbar.programming import pulse_cap
from crossbar.progress import ProgressFn, notify

__all__ = [
    "STEPS",
    "CharacterisationPlan",
    "characterise",
    "default_cells",
    "make_profile",
    "run_step",
]

#: The procedures of :func:`characterise`, in order, as :func:`run_step` names them.
STEPS = ("window", "read_noise", "pulse_response", "programming")


def default_cells(shape: tuple[int, int], n: int) -> list[tuple[int, int]]:
    """``n`` cells spread over the array: every k-th cell in row-major order, shifted by one
    column per row so rows and columns are both covered."""
    rows, cols = shape
    total = rows * cols
    n = max(1, min(int(n), total))
    picks = np.linspace(0, total - 1, n).round().astype(int)
    return [(int(p // cols), int((p % cols + p // cols) % cols)) for p in picks]


@dataclass(frozen=True)
class CharacterisationPlan:
    """The protocol (defaults: the full one; :meth:`quick` the short one). Voltages V, times s."""

    cells: tuple[tuple[int, int], ...] | None = None  # None: default_cells(shape, n_cells)
    n_cells: int = 20
    v_read: float = 0.2
    read_biasing: str = "ground"  # the verify reads' biasing (programming uses it too)
    n_reads: int = 40  # single reads per cell for the read noise
    avg_reads: int = 8  # reads averaged for every "G" of steps 1, 3, 4
    prog_reads: int = 32  # reads averaged right after program-and-verify (σ_prog)
    n_targets: int = 5
    tol: float = 0.03
    max_pulses: int = 60
    settle_times: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3600.0)
    n_pulse_cells: int = 3
    n_pulses: int = 30
    amplitude_set: float = 3.4
    amplitude_reset: float = -2.6
    pulse_width: float = 1e-3
    # the window map's SET and RESET ramps (V; each capped by the bench's pulse capability):
    # stepping up reaches cells whose threshold drew high after their last switching event
    window_set: tuple[float, ...] = (4.0, 4.5, 5.0)
    window_reset: tuple[float, ...] = (-3.0, -3.5, -4.0)
    window_width: float = 10e-3
    min_ratio: float = 2.0
    level_gap: float = 0.1  # levels: a gap in the window-normalised log positions (0–1)
    traverse: float = 0.6  # a pulse train must span this fraction of the cell's window (ln)
    amplitude_step: float = 0.1  # V, the next train's amplitude when one does not traverse

    @classmethod
    def quick(cls, **changes: object) -> CharacterisationPlan:
        """The short protocol: 10 cells, 20 reads, 3 targets, settle to 1000 s, 2 pulse cells."""
        base = cls(
            n_cells=10,
            n_reads=20,
            avg_reads=6,
            prog_reads=24,
            n_targets=3,
            settle_times=(1.0, 10.0, 100.0, 1000.0),
            n_pulse_cells=2,
            n_pulses=20,
        )
        return replace(base, **changes)  # type: ignore[arg-type]

    def chosen(self, shape: tuple[int, int]) -> list[tuple[int, int]]:
        """The cells of steps 2–4."""
        return list(self.cells) if self.cells else default_cells(shape, self.n_cells)


@dataclass
class _Run:
    xb: Crossbar
    plan: CharacterisationPlan
    progress: ProgressFn | None
    steps: int = 0
    total: int = 0
    log: dict[str, object] = field(default_factory=dict)

    def tick(self, stage: str, detail: str = "", **values: float) -> None:
        self.steps += 1
        notify(self.progress, self.steps, self.total, stage, detail, **values)

    def reads(self, r: int, c: int, n: int | None = None) -> np.ndarray:
        """``n`` (default ``avg_reads``) reads of a cell at ``v_read``, S."""
        p = self.plan
        k = p.avg_reads if n is None else n
        return np.array(
            [
                self.xb.read_cell(r, c, v_read=p.v_read, biasing=p.read_biasing).conductance
                for _ in range(k)
            ]
        )

    def g(self, r: int, c: int, n: int | None = None, median: bool = False) -> float:
        """Mean (or median) of ``n`` (default ``avg_reads``) reads of a cell, S."""
        reads = self.reads(r, c, n)
        return float(np.median(reads) if median else np.mean(reads))

    def ramp(
        self, r: int, c: int, amplitudes: Sequence[float], width: float, reads: int = 0
    ) -> list[float]:
        """One pulse per amplitude (V, each capped by the bench's pulse capability); with
        ``reads`` > 0 the mean of that many reads after each pulse (S), else nothing."""
        out = []
        for a in amplitudes:
            amp = math.copysign(min(abs(a), pulse_cap(self.xb.policy, abs(a))), a)
            self.xb.pulse(r, c, amp, width, biasing=Biasing.V3, read_after=False)
            if reads:
                out.append(self.g(r, c, reads))
        return out


def characterise(
    xb: Crossbar,
    plan: CharacterisationPlan | None = None,
    *,
    progress: ProgressFn | None = None,
) -> DeploymentProfile:
    """Run the four procedures (see the module docstring) and return the deployment profile."""
    p = plan or CharacterisationPlan()
    rows, cols = xb.shape
    cells = p.chosen((rows, cols))
    for r, c in cells:
        xb.policy.check_cell(r, c)
    t0 = xb.now()
    run = _Run(xb, p, progress)
    run.total = rows * cols + len(cells) * 2 + len(p.settle_times) + p.n_pulse_cells
    window = _window(run)
    noise = _read_noise(run, cells)
    pulse = _pulse_response(run, _pulse_cells(cells, window, p.n_pulse_cells), noise, window)
    programming = _programming(run, cells, window, noise, pulse)
    return make_profile(
        xb,
        p,
        window=window,
        read_noise=noise,
        programming=programming,
        pulse_response=pulse,
        bench_time=max(0.0, xb.now() - t0),
    )


def make_profile(
    xb: Crossbar,
    plan: CharacterisationPlan,
    *,
    window: Window,
    read_noise: ReadNoise,
    programming: Programming,
    pulse_response: PulseResponse,
    bench_time: float,
) -> DeploymentProfile:
    """The deployment profile of the four procedures' results (``bench_time`` s of bench
    clock they took)."""
    return DeploymentProfile(
        bench=xb.backend.name,
        shape=tuple(xb.shape),
        cells=plan.chosen(tuple(xb.shape)),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        bench_time=float(bench_time),
        protocol={k: v for k, v in asdict(plan).items() if k != "cells"},
        read_noise=read_noise,
        programming=programming,
        pulse_response=pulse_response,
        window=window,
    )


def run_step(
    xb: Crossbar,
    plan: CharacterisationPlan,
    step: str,
    *,
    progress: ProgressFn | None = None,
    window: Window | None = None,
    read_noise: ReadNoise | None = None,
    pulse_response: PulseResponse | None = None,
) -> Window | ReadNoise | Programming | PulseResponse:
    """Run one procedure of :func:`characterise` on its own (``step``: one of :data:`STEPS`)
    and return its result. ``pulse_response`` needs the read noise (and uses the window when
    given: stuck cells are skipped, a train must traverse the cell's window), ``programming``
    the window, the read noise and the pulse response (a discrete device is programmed to its
    measured levels): pass them (e.g. from earlier steps) or they are measured first, in the
    same run (their progress reported under their own stage)."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}: one of {', '.join(STEPS)}")
    rows, cols = xb.shape
    cells = plan.chosen((rows, cols))
    for r, c in cells:
        xb.policy.check_cell(r, c)
    run = _Run(xb, plan, progress)
    later = STEPS.index(step)
    need_window = step == "window" or (step == "programming" and window is None)
    need_noise = step == "read_noise" or (later > 1 and read_noise is None)
    need_pulse = step == "pulse_response" or (later > 2 and pulse_response is None)
    run.total = (
        (rows * cols if need_window else 0)
        + (len(cells) if need_noise else 0)
        + (plan.n_pulse_cells if need_pulse else 0)
        + (len(cells) + len(plan.settle_times) if step == "programming" else 0)
    )
    if need_window:
        window = _window(run)
        if step == "window":
            return window
    if need_noise:
        read_noise = _read_noise(run, cells)
        if step == "read_noise":
            return read_noise
    assert read_noise is not None
    if need_pulse:
        pulse_cells = _pulse_cells(cells, window, plan.n_pulse_cells)
        pulse_response = _pulse_response(run, pulse_cells, read_noise, window)
        if step == "pulse_response":
            return pulse_response
    assert window is not None and pulse_response is not None
    return _programming(run, cells, window, read_noise, pulse_response)


# -- 1. window and stuck map --------------------------------------------------------------------


def _window(run: _Run) -> Window:
    p, xb = run.plan, run.xb
    rows, cols = xb.shape
    g_min = np.zeros((rows, cols))
    g_max = np.zeros((rows, cols))
    for r in range(rows):
        for c in range(cols):
            k = max(2, p.avg_reads // 3)
            g_min[r, c] = min(run.ramp(r, c, p.window_reset, p.window_width, k))
            g_max[r, c] = max(run.ramp(r, c, p.window_set, p.window_width, k))
            # back to the HRS: a row of cells left at G_max would load the source of a read
            run.ramp(r, c, p.window_reset, p.window_width)
            run.tick(
                "window", f"cell ({r}, {c})", row=r, col=c, g_min=g_min[r, c], g_max=g_max[r, c]
            )
    lo = np.maximum(g_min, 1e-15)
    stuck = [(int(r), int(c)) for r, c in np.argwhere(g_max / lo < p.min_ratio)]
    return Window(
        g_min=np.clip(g_min, 0.0, 1.0).tolist(),
        g_max=np.clip(g_max, 0.0, 1.0).tolist(),
        stuck=stuck,
        stuck_fraction=len(stuck) / (rows * cols),
        min_ratio=p.min_ratio,
    )


# -- 2. read noise ------------------------------------------------------------------------------


def _read_noise(run: _Run, cells: Sequence[tuple[int, int]]) -> ReadNoise:
    p, xb = run.plan, run.xb
    sig, mean = [], []
    for r, c in cells:
        g = np.array(
            [
                xb.read_cell(r, c, v_read=p.v_read, biasing=p.read_biasing).conductance
                for _ in range(p.n_reads)
            ]
        )
        mean.append(float(np.mean(g)))
        sig.append(float(np.std(g, ddof=1) / abs(np.mean(g))) if np.mean(g) != 0 else 1.0)
        run.tick("read noise", f"cell ({r}, {c})", row=r, col=c, g=mean[-1], sigma_rel=sig[-1])
    m, s = np.array(mean), np.array(sig)
    ok = (m > 0) & (s > 0)
    slope = 0.0
    if ok.sum() >= 3 and np.ptp(np.log(m[ok])) > 0.5:
        slope = float(np.polyfit(np.log(m[ok]), np.log(s[ok] * m[ok]), 1)[0])
    return ReadNoise(
        v_read=p.v_read,
        biasing=p.read_biasing,
        n_reads=p.n_reads,
        sigma_rel=float(min(1.0, np.median(s))),
        sigma_rel_per_cell=np.clip(s, 0.0, 1.0).tolist(),
        g_per_cell=np.clip(m, 0.0, 1.0).tolist(),
        slope=slope,
    )


# -- 3. pulse response --------------------------------------------------------------------------


def _pulse_cells(
    cells: Sequence[tuple[int, int]], window: Window | None, n: int
) -> list[tuple[int, int]]:
    """The first ``n`` chosen cells that are not stuck (the first ``n`` if too few)."""
    stuck = set(window.stuck) if window is not None else set()
    free = [rc for rc in cells if rc not in stuck]
    return (free + [rc for rc in cells if rc in stuck])[: max(0, n)]


def _train(run: _Run, r: int, c: int, amplitude: float) -> np.ndarray:
    """``n_pulses`` identical pulses of ``amplitude`` V (capped by the bench), an averaged read
    after each, S."""
    p, xb = run.plan, run.xb
    amp = math.copysign(min(abs(amplitude), pulse_cap(xb.policy, abs(amplitude))), amplitude)
    out = []
    for _ in range(p.n_pulses):
        xb.pulse(r, c, amp, p.pulse_width, biasing=Biasing.V3, read_after=False)
        out.append(run.g(r, c, median=True))  # a filament that jumps during the read: one side
    return np.array(out)


def _traversing(
    run: _Run, r: int, c: int, start: float, sign: float, span: float
) -> tuple[np.ndarray, float]:
    """A train of identical pulses that traverses the cell's window, from its HRS (SET,
    ``sign`` > 0) or its LRS (RESET; a strong SET ramp first): from ``start`` V the amplitude
    steps up by ``amplitude_step`` (to the bench's cap) until the train's reads span at least
    ``traverse`` of ``span`` (ln of the cell's window). Returns (reads S, amplitude V)."""
    p = run.plan
    amp = abs(start)
    cap = pulse_cap(run.xb.policy, max(abs(a) for a in (*p.window_set, *p.window_reset)))
    while True:
        run.ramp(r, c, p.window_reset if sign > 0 else p.window_set, p.window_width)
        g = _train(run, r, c, sign * amp)
        moved = float(np.ptp(np.log(np.maximum(g, 1e-15))))
        if moved >= p.traverse * span or amp + 1e-9 >= cap:
            return g, sign * amp
        amp = min(amp + p.amplitude_step, cap)


def _pulse_response(
    run: _Run, cells: Sequence[tuple[int, int]], noise: ReadNoise, window: Window | None = None
) -> PulseResponse:
    p = run.plan
    trains, amps = [], []
    for r, c in cells:
        if window is not None and window.g_min[r][c] > 0 and window.g_max[r][c] > 0:
            span = math.log(window.g_max[r][c] / window.g_min[r][c])
        else:
            span = math.log(p.min_ratio)
        up, a_up = _traversing(run, r, c, p.amplitude_set, +1.0, span)
        down, a_down = _traversing(run, r, c, p.amplitude_reset, -1.0, span)
        trains.append((up, down))
        amps.append((a_up, a_down))
        run.tick(
            "pulse response",
            f"cell ({r}, {c})",
            row=r,
            col=c,
            **{f"set{i}": g for i, g in enumerate(up)},
            **{f"reset{i}": g for i, g in enumerate(down)},
        )
    levels, level_g = count_levels(
        [np.concatenate([u, d]) for u, d in trains], gap=p.level_gap, min_ratio=p.min_ratio
    )
    g_all = np.concatenate([np.concatenate([u, d]) for u, d in trains]) if trains else np.zeros(0)
    g_pos = g_all[g_all > 0]
    g_min = float(g_pos.min()) if g_pos.size else 0.0
    g_max = float(g_pos.max()) if g_pos.size else 0.0
    nu_set = float(np.median([nonlinearity(u) for u, _ in trains])) if trains else 0.0
    nu_reset = float(np.median([nonlinearity(-d) for _, d in trains])) if trains else 0.0
    return PulseResponse(
        amplitude_set=float(np.median([a for a, _ in amps])) if amps else p.amplitude_set,
        amplitude_reset=float(np.median([a for _, a in amps])) if amps else p.amplitude_reset,
        width=p.pulse_width,
        n_pulses=p.n_pulses,
        levels=levels,
        level_conductances=[min(1.0, g) for g in level_g],
        dynamic_range=max(1.0, g_max / g_min) if g_min > 0 else 1.0,
        g_min=min(1.0, g_min),
        g_max=min(1.0, g_max),
        nonlinearity_set=nu_set,
        nonlinearity_reset=nu_reset,
        asymmetry=abs(nu_set - nu_reset),
    )


def count_levels(
    trains: Sequence[np.ndarray], gap: float = 0.1, min_ratio: float = 2.0, span: float = 0.3
) -> tuple[int, list[float]]:
    """Conductance levels of a device from pulse trains that traverse its window (one array of
    reads, S, per cell): each cell's reads as log positions normalised to its own range (0: its
    lowest read, 1: its highest), all cells' positions sorted and split where two neighbours
    are more than ``gap`` apart; a lone read (a cluster of one, e.g. caught mid-jump) is no
    level, nor a cluster of one cell's reads when there are several cells (a jump of an analog
    cell that happened to pause). A filament of n levels gives n tight clusters, further apart
    than they are wide; an analog device fills the window, so a cluster whose 5–95 % range is
    wider than ``span``, two neighbouring clusters closer than either is wide, or more clusters
    than 1/gap mean analog: 0 levels. Cells whose reads span less than ``min_ratio`` (they did
    not switch) are left out; none left: 1 level. Returns (levels, the median G of each
    level's reads, S)."""
    pos, gs, who = [], [], []
    for g in trains:
        x = np.log(np.maximum(np.asarray(g, dtype=float), 1e-15))
        rng = float(np.ptp(x)) if x.size else 0.0
        if rng < math.log(min_ratio):
            continue
        pos.append((x - x.min()) / rng)
        gs.append(np.asarray(g, dtype=float))
        who.append(np.full(x.size, len(who)))
    if not pos:
        return 1, []
    u, g_all, cell = np.concatenate(pos), np.concatenate(gs), np.concatenate(who)
    order = np.argsort(u)
    u, g_all, cell = u[order], g_all[order], cell[order]
    cuts = np.flatnonzero(np.diff(u) > gap) + 1
    need = min(2, len(pos))  # a level is where every filament can rest: seen in two cells
    groups = [
        k
        for k in np.split(np.arange(u.size), cuts)
        if k.size >= 2 and np.unique(cell[k]).size >= need  # not a lone jump, not chance
    ]
    edges = np.array([np.percentile(u[k], [5, 95]) for k in groups]).reshape(-1, 2)
    width = edges[:, 1] - edges[:, 0]
    apart = edges[1:, 0] - edges[:-1, 1]  # the empty space between neighbouring levels
    blurred = np.any(apart <= np.maximum(width[1:], width[:-1]))
    if len(groups) > 1.0 / gap or np.any(width > span) or blurred:
        return 0, []
    return len(groups), [float(np.median(g_all[k])) for k in groups]


# -- 4. programming statistics ------------------------------------------------------------------


def _targets(
    window: Window, cells: Sequence[tuple[int, int]], n: int, pulse: PulseResponse | None = None
) -> list[float]:
    """The program-and-verify targets: a discrete device's measured levels above its lowest
    (``pulse``), else ``n`` targets log-spaced inside the window every chosen non-stuck cell
    reaches."""
    if pulse is not None and pulse.levels >= 2 and len(pulse.level_conductances) >= 2:
        return [float(g) for g in pulse.level_conductances[1:]]
    stuck = set(window.stuck)
    free = [(r, c) for r, c in cells if (r, c) not in stuck] or list(cells)
    lo = max(window.g_min[r][c] for r, c in free)
    hi = min(window.g_max[r][c] for r, c in free)
    if not (hi > lo > 0):
        lo, hi = (
            float(np.median([window.g_min[r][c] for r, c in free])),
            float(np.median([window.g_max[r][c] for r, c in free])),
        )
    a, b = math.log(lo) + 0.15 * math.log(hi / lo), math.log(hi) - 0.15 * math.log(hi / lo)
    return [float(x) for x in np.exp(np.linspace(a, b, n))] if n > 1 else [math.sqrt(lo * hi)]


def _programming(
    run: _Run,
    cells: Sequence[tuple[int, int]],
    window: Window,
    noise: ReadNoise,
    pulse: PulseResponse | None = None,
) -> Programming:
    p, xb = run.plan, run.xb
    targets = _targets(window, cells, p.n_targets, pulse)
    stuck = set(window.stuck)
    todo = [
        (r, c, targets[i % len(targets)]) for i, (r, c) in enumerate(cells) if (r, c) not in stuck
    ]
    achieved: list[list[float]] = []
    programmed_at, pulses, converged, lowest, took, reading = [], [], [], [], [], []
    for r, c, target in todo:
        started = xb.now()
        rep = xb.program_cell(
            r,
            c,
            target,
            tol=p.tol,
            max_pulses=p.max_pulses,
            v_read=p.v_read,
            read_biasing=p.read_biasing,
        )
        programmed_at.append(xb.now())
        took.append(programmed_at[-1] - started)
        pulses.append(rep.pulses)
        converged.append(rep.converged)
        first = run.reads(r, c, p.prog_reads)
        reading.append(xb.now() - programmed_at[-1])
        achieved.append([float(np.mean(first))])
        lowest.append(float(np.min(first)))
        run.tick(
            "programming",
            f"cell ({r}, {c}) → {target:.3g} S",
            row=r,
            col=c,
            target=target,
            achieved=achieved[-1][0],
            pulses=rep.pulses,
        )
    times: list[list[float]] = [[xb.now() - t] for t in programmed_at]
    start = xb.now()
    for ts in p.settle_times:
        xb.wait(max(0.0, start + ts - xb.now()))
        for k, (r, c, _) in enumerate(todo):
            achieved[k].append(run.g(r, c))
            times[k].append(xb.now() - programmed_at[k])
        run.tick(
            "settling",
            f"{ts:g} s",
            t=ts,
            **{f"r{r}c{c}": achieved[k][-1] for k, (r, c, _) in enumerate(todo)},
        )
    prog = _programming_figures(p, todo, targets, achieved, times, pulses, converged, lowest, noise)
    seconds = float(np.mean(took)) if took else 0.0
    after = float(np.mean(reading)) if reading else 0.0
    return prog.model_copy(
        update={"seconds_per_cell": max(0.0, seconds), "seconds_right_after": max(0.0, after)}
    )


#: a programmed cell one of whose reads right after program-and-verify falls below this
#: fraction of its target, or whose averaged read while settling falls below this fraction of
#: the one right after, has dissolved (fallen to the HRS)
DISSOLVED = 0.5


def _programming_figures(
    p: CharacterisationPlan,
    todo: list[tuple[int, int, float]],
    targets: list[float],
    achieved: list[list[float]],
    times: list[list[float]],
    pulses: list[int],
    converged: list[bool],
    lowest: list[float],
    noise: ReadNoise,
) -> Programming:
    """The figures of the programming step. σ_prog is the spread of achieved/target − 1 of the
    averaged read right after program-and-verify over the cells whose verify converged and
    that have not dissolved (no read below half the target; the averaged read's own variance
    removed); the drift ν is fitted
    per cell over the settle reads of those cells that did not dissolve while settling (mean
    and spread over the cells); ``dissolved_fraction`` is the share of the converged cells that
    fell to the HRS by the last settle read (``dissolved_by_settle``: by each settle read)."""
    read_var = noise.sigma_rel**2 / p.prog_reads  # the averaged read's own relative variance
    n_cols = 1 + len(p.settle_times)
    a = np.array(achieved, dtype=float).reshape(-1, n_cols)
    tg = np.array([t for _, _, t in todo], dtype=float)
    conv = np.array(converged, dtype=bool)
    err = a[:, 0] / tg - 1 if a.size else np.zeros(0)
    at_once = np.array(lowest, dtype=float) < DISSOLVED * tg
    fell = a[:, 1:] < DISSOLVED * a[:, :1]  # (cells, settle reads): below half of right after
    by_settle = np.logical_or.accumulate(fell, axis=1) | at_once[:, None]
    later = fell.any(axis=1)
    use = conv & ~at_once

    def spread(e: np.ndarray) -> float:
        if e.size < 2:
            return 0.0
        return float(math.sqrt(max(0.0, float(np.var(e, ddof=1)) - read_var)))

    by_target = [spread(err[use & np.isclose(tg, t)]) for t in targets]
    nus = []
    for k in np.flatnonzero(use & ~later):
        g, t = np.array(achieved[k][1:]), np.array(times[k][1:])
        good = (g > 0) & (t > 0)
        if good.sum() >= 3:
            nus.append(-float(np.polyfit(np.log(t[good]), np.log(g[good]), 1)[0]))
    fine = use & ~later
    rel = a[fine, 1] / a[fine, 0] - 1 if a.shape[1] > 1 else np.zeros(0)
    relax = float(np.mean(rel)) if rel.size else 0.0
    # the two reads' own relative variances (avg_reads, prog_reads reads averaged)
    reads_var = noise.sigma_rel**2 * (1.0 / p.avg_reads + 1.0 / p.prog_reads)
    relax_var = float(np.var(rel, ddof=1)) - reads_var if rel.size > 1 else 0.0
    nu = np.array(nus) if nus else np.zeros(1)
    nu_sd = float(np.std(nu, ddof=1)) if nu.size > 1 else 0.0
    return Programming(
        tol=p.tol,
        targets=targets,
        sigma_rel=min(1.0, spread(err[use])),
        sigma_rel_by_target=[min(1.0, s) for s in by_target],
        mean_pulses=float(np.mean(pulses)) if pulses else 0.0,
        converged_fraction=float(np.mean(conv)) if conv.size else 0.0,
        settle_times=list(p.settle_times),
        relaxation_rel=float(np.clip(relax, -1.0, 10.0)),
        relaxation_std=float(min(10.0, math.sqrt(max(0.0, relax_var)))),
        drift_nu_mean=float(np.clip(np.mean(nu), -1.0, 1.0)),
        drift_nu_std=float(np.clip(nu_sd, 0.0, 1.0)),
        dissolved_fraction=float(np.mean((at_once | later)[conv])) if conv.any() else 0.0,
        dissolved_by_settle=[
            float(np.mean(col[conv])) if conv.any() else 0.0 for col in by_settle.T
        ],
        dissolved_right_after=float(np.mean(at_once[conv])) if conv.any() else 0.0,
    )


def nonlinearity(g: np.ndarray) -> float:
    """ν of a monotonic train G(p), p = 1…N, fitted as G = G₁ + ΔG·(1 − e^(−ν x)) / (1 − e^(−ν)),
    x = (p − 1)/(N − 1) in [0, 1] (NeuroSim's form; 0: linear; > 0: saturating, the common case
    of filamentary devices; < 0: accelerating, e.g. a SET that grows exponentially in G)."""
    y = np.asarray(g, dtype=float)
    n = y.size
    if n < 3 or np.ptp(y) <= 0:
        return 0.0
    x = np.linspace(0.0, 1.0, n)
    y = (y - y[0]) / (y[-1] - y[0]) if y[-1] != y[0] else (y - y.min()) / np.ptp(y)

    def curve(nu: float) -> np.ndarray:
        if abs(nu) < 1e-9:
            return x
        return np.expm1(-nu * x) / np.expm1(-nu)

    grid = np.linspace(-20.0, 20.0, 161)
    start = grid[int(np.argmin([np.sum((curve(v) - y) ** 2) for v in grid]))]
    fit = least_squares(lambda q: curve(float(q[0])) - y, x0=[start], bounds=([-30.0], [30.0]))
    return float(fit.x[0])
