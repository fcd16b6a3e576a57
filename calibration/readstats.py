"""Read-voltage statistics of cyclic I-V data: what a device holds between switching events.

METHODS section 1 grades the SET branch at 0 … V_max. Deployment depends on something else: the
conductance a cell keeps at a small read voltage after each switching event. A cyclic sweep
``0 → +V_max → 0 → V_min → 0`` passes the read voltage four times per cycle, and each passage
reads the state the last event left (for a bipolar device; a device that does not switch reads
alike on every branch):

=========== ======================================== ======================
branch      where in the cycle                        state read
=========== ======================================== ======================
``hrs_pos`` rising from 0 to +V_max (before the SET)  left by the last RESET
``lrs_pos`` falling from +V_max to 0 (after the SET)  left by the SET
``lrs_neg`` falling from 0 to V_min (before RESET)    left by the SET
``hrs_neg`` rising from V_min to 0 (after RESET)      left by the RESET
=========== ======================================== ======================

Each branch is the contiguous run of points of one sign that ends at (``*_pos`` rising,
``lrs_neg``) or starts after (``lrs_pos``, ``hrs_neg``) the sweep's extreme voltage, so the
names hold whichever polarity the sweep visits first. On each branch the point nearest
``±v_read`` is used (within half the staircase step; else the branch has no read), and per
branch:

* ``n``: cycles with a valid read — ``G`` finite and > 0, and not clamped by the
  source's current limit: readings within 0.5 % of the largest ``|I|`` of the file are clamped
  when at least three readings share that level (a source in compliance reports its limit; a
  single largest reading is a measurement);
* ``sigma_ln_g``: cycle-to-cycle standard deviation of ``ln G`` (sample std, ``N − 1``; NaN
  below two reads);
* ``g_median``: median ``G``, S;
* ``drift_per_cycle``: least-squares slope of ``ln G`` against the cycle number (1/cycle: a
  trend from cycle to cycle, e.g. an HRS that creeps up as a filament residue accumulates;
  NaN below three reads).

Conductance ``G = I/V`` on the positive branches (a negative current at a positive read is an
offset artefact and not a read, as in METHODS section 1) and ``G = |I|/|V|`` on the negative
ones: the shared Keithley exports record the current's magnitude below 0 V, the crossbar layer
its signed value, and both give the same ``G``.

The device's ``on_off_ratio`` is ``g_median(lrs_pos) / g_median(hrs_pos)`` (NaN when either is
missing). :func:`read_stats` is a pure function of ``(V, I)``, so files and live sweeps get the
same figures (``xbar calibrate … --read-stats``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "BRANCHES",
    "DEFAULT_V_READ",
    "READ_STATS_KEYS",
    "BranchReadStats",
    "ReadStats",
    "read_stats",
]

#: Default read voltage, V: inside the 0.1–0.5 V read range of the shared exports, above the
#: 0.1 V point where the nA currents of a high-resistance state meet the offset currents of the
#: instruments, and the program-and-verify read voltage of :mod:`crossbar.programming`.
DEFAULT_V_READ = 0.2
#: Branch names in cycle order (module docstring).
BRANCHES = ("hrs_pos", "lrs_pos", "lrs_neg", "hrs_neg")
#: Clamped readings: within this fraction of the file's largest |I| (and at least
#: ``_CLAMP_MIN_COUNT`` of them).
_CLAMP_RTOL = 5e-3
_CLAMP_MIN_COUNT = 3


@dataclass(frozen=True)
class BranchReadStats:
    """Read statistics of one branch (see the module docstring; NaN where undefined)."""

    branch: str
    v: float  # V, the staircase voltage read (NaN: no point near ±v_read)
    n: int  # cycles with a valid, unclamped read
    n_clamped: int  # reads dropped because the source was in compliance
    g_median: float  # S
    sigma_ln_g: float  # cycle-to-cycle std of ln G (N − 1)
    drift_per_cycle: float  # slope of ln G per cycle, 1/cycle


@dataclass(frozen=True)
class ReadStats:
    """Read statistics of one device at ``v_read`` (V): one :class:`BranchReadStats` per
    branch of :data:`BRANCHES`, and the LRS/HRS ratio at +v_read."""

    v_read: float
    branches: tuple[BranchReadStats, ...]

    def branch(self, name: str) -> BranchReadStats:
        """The statistics of branch ``name`` (one of :data:`BRANCHES`)."""
        for b in self.branches:
            if b.branch == name:
                return b
        raise KeyError(f"unknown branch {name!r}; branches: {', '.join(BRANCHES)}")

    @property
    def on_off_ratio(self) -> float:
        """Median G of ``lrs_pos`` over median G of ``hrs_pos`` (NaN if either is missing)."""
        lrs, hrs = self.branch("lrs_pos").g_median, self.branch("hrs_pos").g_median
        return lrs / hrs if (math.isfinite(lrs) and math.isfinite(hrs) and hrs > 0) else math.nan

    def to_dict(self) -> dict[str, float | int | None]:
        """Flat figures under exactly :data:`READ_STATS_KEYS` (non-finite numbers as None)."""
        out: dict[str, float | int | None] = {"v_read": self.v_read}
        for b in self.branches:
            out[f"sigma_ln_g_{b.branch}"] = b.sigma_ln_g
            out[f"g_median_{b.branch}"] = b.g_median
            out[f"drift_per_cycle_{b.branch}"] = b.drift_per_cycle
            out[f"n_reads_{b.branch}"] = b.n
            out[f"n_clamped_{b.branch}"] = b.n_clamped
        out["on_off_ratio"] = self.on_off_ratio
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in out.items()
        }


#: Keys of :meth:`ReadStats.to_dict`, in order (``xbar calibrate --read-stats --json``).
READ_STATS_KEYS: tuple[str, ...] = (
    "v_read",
    *(
        f"{what}_{b}"
        for b in BRANCHES
        for what in ("sigma_ln_g", "g_median", "drift_per_cycle", "n_reads", "n_clamped")
    ),
    "on_off_ratio",
)


def read_stats(
    voltage: ArrayLike,
    currents: ArrayLike,
    v_read: float = DEFAULT_V_READ,
    *,
    cycle_numbers: ArrayLike | None = None,
) -> ReadStats:
    """Read-voltage statistics of one device (module docstring).

    Args:
        voltage: the staircase of one cycle, shape (K,), V (NaN: a missing point).
        currents: shape (K, cycles) or (K,), A (NaN: a missing reading).
        v_read: read voltage, V (> 0; the branches use ±v_read).
        cycle_numbers: the cycle number of each column (default 1 … cycles), for the drift.

    Raises:
        ValueError: ``v_read`` not > 0, or shapes that do not match.
    """
    if not (isinstance(v_read, int | float) and math.isfinite(v_read) and v_read > 0):
        raise ValueError(f"v_read must be a voltage > 0 V, got {v_read!r}")
    v = np.asarray(voltage, dtype=float).reshape(-1)
    i = np.asarray(currents, dtype=float)
    i = i[:, None] if i.ndim == 1 else i
    if i.ndim != 2 or i.shape[0] != v.size:
        raise ValueError(f"currents must have shape ({v.size}, cycles), got {i.shape}")
    cyc = (
        np.arange(1, i.shape[1] + 1, dtype=float)
        if cycle_numbers is None
        else np.asarray(cycle_numbers, dtype=float).reshape(-1)
    )
    if cyc.size != i.shape[1]:
        raise ValueError(f"{cyc.size} cycle numbers for {i.shape[1]} current columns")
    clamped = _clamped(i)
    half_step = _half_step(v)
    out = []
    for name, idx in zip(BRANCHES, _branch_indices(v)):
        target = v_read if name.endswith("_pos") else -v_read
        out.append(_branch_stats(name, v, i, clamped, cyc, idx, target, half_step))
    return ReadStats(v_read=float(v_read), branches=tuple(out))


def _clamped(i: np.ndarray) -> np.ndarray:
    """Readings clamped by the source's current limit (module docstring)."""
    a = np.abs(i)
    if not np.isfinite(a).any():
        return np.zeros(i.shape, dtype=bool)
    top = float(np.nanmax(a))
    near = np.isfinite(a) & (a >= (1.0 - _CLAMP_RTOL) * top)
    return near if int(near.sum()) >= _CLAMP_MIN_COUNT else np.zeros(i.shape, dtype=bool)


def _half_step(v: np.ndarray) -> float:
    steps = np.abs(np.diff(v[np.isfinite(v)]))
    steps = steps[steps > 0]
    return 0.5 * float(np.median(steps)) if steps.size else 0.0


def _run(fin: np.ndarray, signs: np.ndarray, k: int, sign: int, direction: int) -> np.ndarray:
    """Positions (into ``fin``) of the contiguous run of ``sign`` from ``k`` walking
    ``direction`` (−1: backwards, the run ending at k; +1: forwards, the run starting at k)."""
    out = []
    j = k
    while 0 <= j < fin.size and signs[j] == sign:
        out.append(j)
        j += direction
    return np.array(sorted(out), dtype=int)


def _branch_indices(v: np.ndarray) -> list[np.ndarray]:
    """Staircase indices of the four branches, in :data:`BRANCHES` order (empty if absent)."""
    fin = np.flatnonzero(np.isfinite(v))
    empty = np.zeros(0, dtype=int)
    if fin.size == 0:
        return [empty] * 4
    vf = v[fin]
    signs = np.sign(vf).astype(int)
    k_top, k_min = int(np.argmax(vf)), int(np.argmin(vf))
    runs = [
        _run(fin, signs, k_top, 1, -1) if vf[k_top] > 0 else empty,
        _run(fin, signs, k_top + 1, 1, +1) if vf[k_top] > 0 else empty,
        _run(fin, signs, k_min, -1, -1) if vf[k_min] < 0 else empty,
        _run(fin, signs, k_min + 1, -1, +1) if vf[k_min] < 0 else empty,
    ]
    return [fin[r] if r.size else empty for r in runs]


def _branch_stats(
    name: str,
    v: np.ndarray,
    i: np.ndarray,
    clamped: np.ndarray,
    cyc: np.ndarray,
    idx: np.ndarray,
    target: float,
    half_step: float,
) -> BranchReadStats:
    nan = math.nan
    if idx.size == 0:
        return BranchReadStats(name, nan, 0, 0, nan, nan, nan)
    k = int(idx[np.argmin(np.abs(v[idx] - target))])
    if abs(v[k] - target) > half_step + 1e-9:
        return BranchReadStats(name, nan, 0, 0, nan, nan, nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = i[k] / v[k] if target > 0 else np.abs(i[k] / v[k])
    valid = np.isfinite(g) & (g > 0)
    n_clamped = int(np.sum(valid & clamped[k]))
    ok = valid & ~clamped[k]
    lng = np.log(g[ok])
    n = int(lng.size)
    sigma = float(np.std(lng, ddof=1)) if n >= 2 else nan
    med = float(np.exp(np.median(lng))) if n else nan
    drift = nan
    if n >= 3 and np.ptp(cyc[ok]) > 0:
        drift = float(np.polyfit(cyc[ok], lng, 1)[0])
    return BranchReadStats(name, float(v[k]), n, n_clamped, med, sigma, drift)
