"""Usability of a memristor from cyclic I-V data (METHODS section 1).

A pure function from a voltage staircase ``V[k]`` and currents ``I[k, c]`` (one column per cycle)
to the section-1 figures: LCIS start/stop voltage and length, ``L_min``, ``α_nm``, ``N``,
``σ̂``, ``σ_up`` and the usability ``U = α_nm · exp(−σ)``.

Decisions of METHODS section 1, all kept as parameters here:

* SET branch = indices ``0 … argmax(V)`` (first rise to the highest positive voltage) with
  ``V ≥ 1e-3 V``.
* ``L_min = ceil(l_min_fraction · n_branch)`` with ``l_min_fraction = 0.35``.
* LCIS = longest contiguous run of strictly rising ``Ḡ``; ``tolerated_decreases`` non-rises may
  occur inside a run (default 0; the authors' code used 2); ties go to the first run.
* ``σ`` used in ``U`` is ``σ_up`` (the χ² upper bound) by default, or ``σ̂`` with ``sigma="hat"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import chi2

V_MIN_BRANCH = 1e-3  # V; branch points below this are dropped (no division by ~0)


class UsabilityError(ValueError):
    """The I-V data cannot be calibrated (the message says why)."""


@dataclass(frozen=True)
class UsabilityResult:
    """Section-1 figures of one device.

    Voltages in V, conductances in S; lengths count branch points.
    """

    n_cycles: int  # cycles with any data
    branch_points: int  # n_branch: SET-branch points with a valid mean conductance
    lcis_start: int  # index of the LCIS start within the branch arrays below
    lcis_start_v: float  # V
    lcis_stop_v: float  # V
    lcis_length: int  # L
    l_min: int  # L_min
    alpha_nm: float  # in [0, 1]
    n_residuals: int  # N
    sigma_hat: float  # ML std of the log residuals (≥ 0)
    sigma_up: float  # χ² 95 % upper bound of σ (≥ σ̂)
    sigma_choice: str  # "up" or "hat": which σ the usability uses
    usability: float  # U in [0, 1]
    branch_v: tuple[float, ...]  # SET-branch voltages kept, V
    branch_g_mean: tuple[float, ...]  # Ḡ at those voltages, S
    residuals: tuple[float, ...]  # r = ln(G / Ḡ) inside the LCIS

    @property
    def sigma(self) -> float:
        """The σ the usability was computed with."""
        return self.sigma_up if self.sigma_choice == "up" else self.sigma_hat

    def summary(self) -> dict[str, float | int]:
        """The scalar figures (no arrays), as a dict with the keys :data:`SUMMARY_KEYS`."""
        return {key: getattr(self, key) for key in SUMMARY_KEYS}


#: The scalar figures of a :class:`UsabilityResult` reported per device (field order), without
#: the branch arrays, the σ choice and the LCIS start index.
SUMMARY_KEYS: tuple[str, ...] = tuple(
    f.name
    for f in fields(UsabilityResult)
    if f.name not in ("branch_v", "branch_g_mean", "residuals", "sigma_choice", "lcis_start")
)


def lcis(values: ArrayLike, tolerated_decreases: int = 0) -> tuple[int, int]:
    """Longest contiguous strictly-rising run of ``values``.

    Returns ``(start, length)``; a run of one point has length 1; ties go to the first run.
    Up to ``tolerated_decreases`` non-rises (``values[k+1] <= values[k]``) may occur inside a run.
    An empty input gives ``(0, 0)``.
    """
    x = np.asarray(values, dtype=float)
    n = x.size
    if n == 0:
        return 0, 0
    if tolerated_decreases < 0:
        raise ValueError(f"tolerated_decreases must be >= 0, got {tolerated_decreases}")
    # bad[k] is True when step k -> k+1 is not a strict rise.
    bad = ~(x[1:] > x[:-1])
    best_start, best_len = 0, 1
    if tolerated_decreases == 0:
        # Runs between non-rises: vectorised via the positions of bad steps.
        cuts = np.flatnonzero(bad) + 1  # a new run starts at each cut
        starts = np.concatenate(([0], cuts))
        stops = np.concatenate((cuts, [n]))
        lengths = stops - starts
        i = int(np.argmax(lengths))  # argmax returns the first maximum: ties to the first
        return int(starts[i]), int(lengths[i])
    # Sliding window over steps with at most `tolerated_decreases` bad steps inside.
    left = 0
    n_bad = 0
    for right in range(n - 1):  # step index `right` joins the window
        n_bad += int(bad[right])
        while n_bad > tolerated_decreases:
            n_bad -= int(bad[left])
            left += 1
        length = right - left + 2  # points covered by steps left..right
        if length > best_len:
            best_start, best_len = left, length
    return best_start, best_len


def usability(
    voltage: ArrayLike,
    currents: ArrayLike,
    *,
    tolerated_decreases: int = 0,
    l_min_fraction: float = 0.35,
    sigma: Literal["up", "hat"] = "up",
) -> UsabilityResult:
    """Compute METHODS section 1 for one device.

    Args:
        voltage: staircase of one cycle, shape (K,), V.
        currents: currents, shape (K,) or (K, cycles), A; NaN marks a missing point.
        tolerated_decreases: non-rises tolerated inside the LCIS (≥ 0).
        l_min_fraction: fraction of branch points that makes ``L_min`` (0 < f ≤ 1).
        sigma: ``"up"`` (χ² bound, default) or ``"hat"`` (ML estimate) for the usability.

    Raises:
        UsabilityError: no positive branch, no cycle with data, or fewer than two valid points.
    """
    v, i = _checked(voltage, currents, tolerated_decreases, l_min_fraction, sigma)
    n_cycles, vb, g, g_mean = _set_branch(v, i)
    n_branch = int(g_mean.size)

    # 5. LCIS
    start, length = lcis(g_mean, tolerated_decreases)

    # 6. non-monotonic factor
    l_min = max(1, math.ceil(l_min_fraction * n_branch))
    alpha = min(1.0, length / l_min)

    # 7. log residuals inside the LCIS
    seg = slice(start, start + length)
    r = np.log(g[seg] / g_mean[seg, None])
    r = r[np.isfinite(r)]
    sigma_hat, sigma_up = _sigmas(r)

    s = sigma_up if sigma == "up" else sigma_hat
    u = alpha * math.exp(-s) if math.isfinite(s) else 0.0
    u = float(min(1.0, max(0.0, u)))
    return UsabilityResult(
        n_cycles=n_cycles,
        branch_points=n_branch,
        lcis_start=int(start),
        lcis_start_v=float(vb[start]),
        lcis_stop_v=float(vb[start + length - 1]),
        lcis_length=int(length),
        l_min=int(l_min),
        alpha_nm=float(alpha),
        n_residuals=int(r.size),
        sigma_hat=sigma_hat,
        sigma_up=sigma_up,
        sigma_choice=sigma,
        usability=u,
        branch_v=tuple(float(x) for x in vb),
        branch_g_mean=tuple(float(x) for x in g_mean),
        residuals=tuple(float(x) for x in r),
    )


def _checked(
    voltage: ArrayLike,
    currents: ArrayLike,
    tolerated_decreases: int,
    l_min_fraction: float,
    sigma: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The inputs as float arrays V (K,) and I (K, cycles); UsabilityError if unusable."""
    v = np.asarray(voltage, dtype=float)
    i = np.asarray(currents, dtype=float)
    if v.ndim != 1:
        raise UsabilityError(f"voltage must be one-dimensional, got shape {v.shape}")
    if i.ndim == 1:
        i = i[:, None]
    if i.ndim != 2 or i.shape[0] != v.size:
        raise UsabilityError(
            f"currents must have shape ({v.size}, cycles) to match the voltage, got {i.shape}"
        )
    if not 0.0 < l_min_fraction <= 1.0:
        raise UsabilityError(f"l_min_fraction must be in (0, 1], got {l_min_fraction}")
    if sigma not in ("up", "hat"):
        raise UsabilityError(f"sigma must be 'up' or 'hat', got {sigma!r}")
    if tolerated_decreases < 0:
        raise UsabilityError(f"tolerated_decreases must be >= 0, got {tolerated_decreases}")
    return v, i


def _set_branch(v: np.ndarray, i: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1-4: ``(n_cycles, vb (n,) V, G (n, cycles) S, Ḡ (n,) S)`` of the SET branch.

    Cycles without data are dropped; the branch is ``0 … argmax(V)`` (first maximum) with
    ``V ≥ 1 mV``; non-positive or non-finite conductances are NaN; points without any valid
    conductance are dropped. UsabilityError when fewer than two points remain.
    """
    # 1. drop cycles with no data at all
    has_data = np.isfinite(i).any(axis=0)
    i = i[:, has_data]
    n_cycles = i.shape[1]
    if n_cycles == 0:
        raise UsabilityError("no cycle has any current data")
    if not np.isfinite(v).any() or np.nanmax(v) < V_MIN_BRANCH:
        raise UsabilityError("no positive SET branch: the sweep never goes above 1 mV")

    # 2. SET branch: 0 … argmax(V) (first maximum), V ≥ 1 mV
    v_filled = np.where(np.isfinite(v), v, -np.inf)
    k_top = int(np.argmax(v_filled))
    idx = np.arange(k_top + 1)
    idx = idx[np.isfinite(v[idx]) & (v[idx] >= V_MIN_BRANCH)]
    vb = v[idx]

    # 3. conductance, invalid -> NaN
    with np.errstate(divide="ignore", invalid="ignore"):
        g = i[idx] / vb[:, None]
    g = np.where(np.isfinite(g) & (g > 0), g, np.nan)

    # 4. mean curve over cycles, drop points without one
    valid_counts = np.isfinite(g).sum(axis=1)
    keep = valid_counts > 0
    g = g[keep]
    vb = vb[keep]
    g_mean = np.nansum(g, axis=1) / valid_counts[keep] if keep.any() else np.zeros(0)
    if g_mean.size < 2:
        raise UsabilityError(
            f"the SET branch has {g_mean.size} point(s) with a positive current; need at least 2"
        )
    return n_cycles, vb, g, g_mean


def _sigmas(r: np.ndarray) -> tuple[float, float]:
    """``(σ̂, σ_up)`` of the finite log residuals ``r`` (step 8: χ² 5 % quantile, N−1 degrees
    of freedom). One residual cannot estimate a spread: σ̂ = 0, σ_up = ∞ (U = 0); none: NaN, ∞."""
    n_res = int(r.size)
    if n_res >= 2:
        sigma_hat = float(np.sqrt(np.mean((r - r.mean()) ** 2)))
        return sigma_hat, float(sigma_hat * math.sqrt(n_res / chi2.ppf(0.05, n_res - 1)))
    return (0.0 if n_res == 1 else float("nan")), float("inf")
