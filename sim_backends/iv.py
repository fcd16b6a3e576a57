"""Cyclic I-V sweeps of simulated devices, and fitting a device profile to measured sweeps.

``simulate_cyclic_iv`` produces exactly what METHODS section 1 consumes: one voltage staircase
``V[K]`` and currents ``I[K, cycles]``. ``fit_profile`` goes the other way: from a measured
device's sweeps it builds a :class:`DeviceProfile` whose simulated sweeps look like it (SET
voltage, conductance window, section-1 usability).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from instruments.sweep_plan import cyclic_points
from sim_backends.device import DeviceArray
from sim_backends.profiles import DeviceProfile, get_profile

__all__ = [
    "NOISE_FIELDS",
    "NOISE_KNOTS",
    "S_MAX",
    "FitReport",
    "IVFeatures",
    "cyclic_voltages",
    "fit_profile",
    "fit_profile_report",
    "iv_features",
    "measured_reset_voltage",
    "measured_set_voltage",
    "noise_path",
    "reset_branch",
    "set_branch",
    "simulate_cyclic_iv",
    "simulate_cyclic_iv_many",
]


def cyclic_voltages(v_max: float = 6.0, v_min: float = -6.0, step: float = 0.1) -> np.ndarray:
    """One cycle of the staircase 0 → +v_max → 0 → v_min → 0 V: the bench's
    :func:`~instruments.sweep_plan.cyclic_points` with the simulations' defaults (6 V, -6 V,
    0.1 V steps; ``v_min = 0``: up and back only; both apexes whole multiples of ``step``)."""
    return cyclic_points(v_max, v_min, step)


def simulate_cyclic_iv_many(
    profile: DeviceProfile | str,
    n_devices: int,
    *,
    cycles: int = 10,
    v_max: float = 6.0,
    v_min: float = -6.0,
    step: float = 0.1,
    compliance: float = 25e-6,
    dwell_s: float = 0.05,
    seed: int | np.random.Generator | None = 0,
    voltage: ArrayLike | None = None,
    devices: DeviceArray | None = None,
    include_stuck: bool = False,
    cell_params: dict[str, ArrayLike] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cyclic sweeps of ``n_devices`` independent cells at once (vectorised over the cells).

    At every point the source is set to ``V[k]``, the cell switches for ``dwell_s`` seconds
    (source delay, with the state growth capped by ``compliance`` A; the devices' own clock
    advances, so relaxation, drift and dissolution play out on the sweep's time scale), then the
    current is read with read noise (the devices' noise on G, then the meter noise
    ``read_noise``) and clamped at ±``compliance`` (a source in compliance reports its limit).
    ``voltage`` overrides the staircase built from ``v_max, v_min, step``. ``devices`` (a
    DeviceArray of shape ``(n_devices,)``) sweeps existing cells instead of new ones. New cells
    are working cells (no stuck-at faults, which have no switching to characterise) unless
    ``include_stuck``; ``cell_params`` gives per-device values of some profile fields (see
    :data:`sim_backends.device.CELL_PARAMS`), e.g. to sweep many device types in one run.

    The model cells are non-volatile: a sweep that never goes below V_reset (e.g. up-only,
    ``v_min = 0``) leaves them in the LRS after the first SET. Cost: about 0.1 s for 10 cycles
    of 241 points, nearly independent of ``n_devices`` up to a few hundred.

    Returns ``(V[K], I[n_devices, K, cycles])``.
    """
    v = (
        cyclic_voltages(v_max, v_min, step)
        if voltage is None
        else np.asarray(voltage, dtype=float).reshape(-1)
    )
    if not np.all(np.isfinite(v)):
        raise ValueError("the voltage staircase must be finite (drop missing points first)")
    if cycles < 1:
        raise ValueError(f"cycles must be >= 1, got {cycles}")
    if not compliance > 0:
        raise ValueError(f"compliance must be > 0 A, got {compliance}")
    if devices is None:
        prof = get_profile(profile)
        if not include_stuck:
            prof = prof.replace(p_stuck_on=0.0, p_stuck_off=0.0)
        devices = DeviceArray(prof, (int(n_devices),), seed, cell_params=cell_params)
    elif devices.shape != (int(n_devices),):
        raise ValueError(f"devices must have shape ({n_devices},), got {devices.shape}")
    rng = devices.rng
    noise = devices.cell_param("read_noise")[:, None, None]
    out = np.empty((devices.shape[0], v.size, cycles))
    v_cells = [np.full(devices.shape, vk) for vk in v]  # one array per point, reused every cycle
    for c in range(cycles):
        for k, vk in enumerate(v_cells):
            devices.apply(vk, dwell_s, compliance)
            with devices.reading(devices.read_factors(rng)):  # noise on G (if the profile has it)
                out[:, k, c] = devices.current(vk)
            devices.disturb(vk)
    if np.any(noise > 0):  # read noise is independent of the state: draw it all at once
        out *= 1.0 + noise * rng.standard_normal(out.shape)
    np.clip(out, -compliance, compliance, out=out)
    return v, out


def simulate_cyclic_iv(
    profile: DeviceProfile | str, **options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Cyclic I-V of one isolated device (a 1-cell DeviceArray, no circuit), cycle after cycle.

    ``options`` are the keyword arguments of :func:`simulate_cyclic_iv_many` (``cycles``,
    ``v_max``, ``v_min``, ``step``, ``compliance``, ``dwell_s``, ``seed``, ``voltage``), which
    describes the measurement model. Returns ``(V[K], I[K, cycles])`` (V, A): the input of
    METHODS section 1.
    """
    v, i = simulate_cyclic_iv_many(profile, 1, **options)
    return v, i[0]


# -- measured quantities ----------------------------------------------------------------------


def set_branch(voltage: ArrayLike) -> np.ndarray:
    """Indices of the SET branch of a staircase: ``0 … argmax(V)`` with ``V ≥ 1 mV``.

    The same decision as METHODS section 1 (first rise to the highest positive voltage).
    """
    v = np.asarray(voltage, dtype=float)
    idx = np.arange(int(np.argmax(np.where(np.isfinite(v), v, -np.inf))) + 1)
    return idx[np.isfinite(v[idx]) & (v[idx] >= 1e-3)]


def reset_branch(voltage: ArrayLike) -> np.ndarray:
    """Indices of the first descent from the top to the most negative voltage with ``V ≤ −1 mV``
    (empty for sweeps that never go negative)."""
    v = np.asarray(voltage, dtype=float)
    k_top = int(np.argmax(np.where(np.isfinite(v), v, -np.inf)))
    k_min = int(np.argmin(np.where(np.isfinite(v), v, np.inf)))
    if k_min <= k_top:
        return np.zeros(0, dtype=int)
    idx = np.arange(k_top, k_min + 1)
    return idx[np.isfinite(v[idx]) & (v[idx] <= -1e-3)]


def _largest_step(v: np.ndarray, i: np.ndarray, sign: float) -> np.ndarray:
    """Per cycle: the voltage of the point right after the largest step of ``sign·ln|I/V|``
    between consecutive valid points (NaN where there is no such positive step)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lng = sign * np.log(np.abs(i / v[:, None]))
    out = np.full(i.shape[1], np.nan)
    for c in range(i.shape[1]):  # cycles are few; each is vectorised
        ok = np.isfinite(lng[:, c])
        if ok.sum() < 2:
            continue
        d = np.diff(lng[ok, c])
        k = int(np.argmax(d))
        if d[k] > 0:
            out[c] = v[ok][k + 1]
    return out


def measured_set_voltage(voltage: ArrayLike, currents: ArrayLike) -> float:
    """The SET voltage of a device from cyclic I-V data, V (NaN if no cycle's conductance rises).

    Definition: on the SET branch (``0 … argmax(V)``, ``V ≥ 1 mV``) each cycle's SET voltage is
    the voltage of the point right after the largest step RISE of ``ln(I/V)`` between consecutive
    valid points — where the conductance jumps (an abrupt SET) or rises most steeply (a gradual
    one); the device's SET voltage is the median over cycles. Per-cycle jumps (not the mean
    curve) make it independent of how many cycles already switched, and the median robust to odd
    cycles.
    """
    v = np.asarray(voltage, dtype=float)
    i = np.asarray(currents, dtype=float)
    i = i[:, None] if i.ndim == 1 else i
    idx = set_branch(v)
    per_cycle = _largest_step(v[idx], i[idx], +1.0)
    return float(np.nanmedian(per_cycle)) if np.isfinite(per_cycle).any() else float("nan")


def measured_reset_voltage(voltage: ArrayLike, currents: ArrayLike) -> float:
    """The RESET voltage (V, < 0): on the first descent to the most negative voltage, restricted
    to ``|V| ≥ 0.2·|V_min|`` (near 0 V the conductance I/V of real data is dominated by offset
    currents), per cycle the voltage right after the largest step FALL of ``ln|I/V|``; the median
    over cycles. NaN for sweeps without a negative branch."""
    v = np.asarray(voltage, dtype=float)
    i = np.asarray(currents, dtype=float)
    i = i[:, None] if i.ndim == 1 else i
    idx = reset_branch(v)
    if idx.size:
        idx = idx[np.abs(v[idx]) >= 0.2 * np.abs(np.min(v[idx]))]
    if idx.size < 2:
        return float("nan")
    per_cycle = _largest_step(v[idx], i[idx], -1.0)
    return float(np.nanmedian(per_cycle)) if np.isfinite(per_cycle).any() else float("nan")


@dataclass(frozen=True)
class IVFeatures:
    """What :func:`iv_features` reads off a device's cyclic I-V (units in the comments)."""

    n_cycles: int  # cycles with any data
    step: float  # V, median staircase step
    v_set: float  # V, measured_set_voltage
    v_reset: float  # V (< 0) or NaN without a negative branch
    compliance: float  # A, largest |I| measured (the source limit if it was reached)
    g_off: float  # S, HRS conductance at 0.1 V read (see iv_features)
    g_on: float  # S, LRS conductance at 0.1 V read
    nonlinearity: float  # 1/V, sinh coefficient of the HRS below the SET


def _clean(voltage: ArrayLike, currents: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(voltage, dtype=float).reshape(-1)
    i = np.asarray(currents, dtype=float)
    i = i[:, None] if i.ndim == 1 else i
    if i.shape[0] != v.size:
        raise ValueError(f"currents must have shape ({v.size}, cycles), got {i.shape}")
    i = i[:, np.isfinite(i).any(axis=0)]
    keep = np.isfinite(v)
    v, i = v[keep], i[keep]
    if i.shape[1] == 0 or not (v > 1e-3).any():
        raise ValueError("no cycle with data, or no positive SET branch")
    return v, i


def _fit_nonlinearity(v: np.ndarray, lng: np.ndarray) -> float:
    """Least-squares ``a`` (1/V, 0 … 4) of ``ln G(V) = c + ln(sinh(aV)/(aV))``."""
    best, best_err = 0.0, np.inf
    for a in np.linspace(0.0, 4.0, 81):
        shape = np.log(np.sinh(a * v) / (a * v)) if a > 0 else np.zeros_like(v)
        r = lng - shape
        err = float(np.sum((r - r.mean()) ** 2))
        if err < best_err:
            best, best_err = float(a), err
    return best


def iv_features(voltage: ArrayLike, currents: ArrayLike) -> IVFeatures:
    """Read the physical parameters off a measured cyclic I-V (``V[K]``, ``I[K, cycles]``).

    * ``v_set``, ``v_reset``: :func:`measured_set_voltage`, :func:`measured_reset_voltage`.
    * ``compliance``: the largest |I| (a source in compliance reports its limit).
    * ``nonlinearity``: the sinh coefficient that best fits the shape of the median HRS
      ``ln G(V)`` on the SET branch between 0.4·V_set and the last point before the SET (the low
      end of real HRS branches is dominated by offset currents, so it is left out).
    * ``g_off``: that HRS fit extrapolated to the 0.1 V read; ``g_on``: the median ``I/V`` on
      the way back down from the top, between V_set/2 and V_set (the LRS the sweep left), read
      back to 0.1 V with the same non-linearity, and at least 2·``g_off``.
    """
    v, i = _clean(voltage, currents)
    steps = np.abs(np.diff(v))
    step = float(np.median(steps[steps > 0])) if (steps > 0).any() else 0.1
    v_set = measured_set_voltage(v, i)
    v_reset = measured_reset_voltage(v, i)
    icc = float(np.nanmax(np.abs(i)))
    if not np.isfinite(v_set):
        v_set = float(np.max(v))
    sb = set_branch(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = i / v[:, None]
        lng = np.where(g > 0, np.log(g), np.nan)
    hrs = sb[(v[sb] >= 0.4 * v_set) & (v[sb] < v_set - 0.5 * step)]
    if hrs.size < 3:
        hrs = sb[v[sb] < v_set - 0.5 * step][-3:]
    med = np.nanmedian(lng[hrs], axis=1) if hrs.size else np.zeros(0)
    ok = np.isfinite(med)
    a = _fit_nonlinearity(v[hrs][ok], med[ok]) if ok.sum() >= 3 else 0.0

    def to_read(ln_g: np.ndarray, vv: np.ndarray) -> float:
        """Median conductance converted to the 0.1 V read with non-linearity ``a``."""
        if a > 0:
            ln_g = ln_g - np.log(np.sinh(a * vv) / (a * vv)) + np.log(np.sinh(0.1 * a) / (0.1 * a))
        return float(np.exp(np.nanmedian(ln_g)))

    g_off = to_read(med[ok], v[hrs][ok]) if ok.any() else float(np.nanmedian(g[sb]))
    k_top = int(sb[-1]) if sb.size else 0
    back = np.arange(k_top, v.size)
    stop = np.flatnonzero(v[back] <= 0)
    back = back[: stop[0]] if stop.size else back
    lrs = back[(v[back] >= 0.5 * v_set) & (v[back] <= v_set)]
    if lrs.size:
        g_on = to_read(lng[lrs].ravel(), np.repeat(v[lrs], lng.shape[1]))
    else:
        g_on = np.nan
    if not np.isfinite(g_on) or g_on < 2.0 * g_off:
        g_on = 2.0 * g_off if not np.isfinite(g_on) else max(g_on, 2.0 * g_off)
    return IVFeatures(
        n_cycles=int(i.shape[1]),
        step=step,
        v_set=float(v_set),
        v_reset=float(v_reset),
        compliance=icc,
        g_off=g_off,
        g_on=float(g_on),
        nonlinearity=a,
    )


# -- fitting a profile -----------------------------------------------------------------------

#: The noise fields fit_profile tunes; they all grow with the badness ``s`` of the path below.
NOISE_FIELDS = ("read_noise", "c2c_sigma", "level_sigma", "c2c_vth_sigma", "p_nonmonotonic")
#: Knots of the noise path: s = 0 is the ``optimized`` preset's noise, s = 1 the ``typical``
#: preset's; beyond, every spread keeps growing (the ``poor`` preset owes its low usability
#: partly to its slow kinetics and ohmic HRS, which the path leaves to the data, so it is not a
#: knot).
NOISE_KNOTS: dict[str, tuple[float, ...]] = {
    "s": (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
    "level_sigma": (0.14, 0.5, 0.9, 1.3, 1.7, 2.1, 2.5),
    "c2c_vth_sigma": (0.0, 0.12, 0.15, 0.15, 0.15, 0.15, 0.15),
    "read_noise": (0.01, 0.03, 0.05, 0.07, 0.09, 0.11, 0.13),
    "p_nonmonotonic": (0.0, 0.02, 0.12, 0.22, 0.32, 0.42, 0.5),
    "c2c_sigma": (0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3),
}
S_MAX = NOISE_KNOTS["s"][-1]

UsabilityFn = Callable[[np.ndarray, np.ndarray], float]


def noise_path(s: float) -> dict[str, float]:
    """Noise parameters at badness ``s ∈ [0, S_MAX]`` (piecewise linear in :data:`NOISE_KNOTS`;
    every field is non-decreasing in ``s``)."""
    s = float(np.clip(s, 0.0, S_MAX))
    return {f: float(np.interp(s, NOISE_KNOTS["s"], NOISE_KNOTS[f])) for f in NOISE_FIELDS}


@dataclass(frozen=True)
class FitReport:
    """How well a fitted profile reproduces the measured device (see :func:`fit_profile`)."""

    profile: DeviceProfile
    features: IVFeatures
    badness: float  # s on the noise path
    usability_measured: float
    usability_simulated: float  # mean over the fit's simulated devices
    v_set_measured: float  # V
    v_set_simulated: float  # V, median over the fit's simulated devices


def fit_profile(voltage: ArrayLike, currents: ArrayLike, **options: Any) -> DeviceProfile:
    """Fit a :class:`DeviceProfile` to one measured device (``V[K]``, ``I[K, cycles]``).

    ``options`` are the keyword arguments of :func:`fit_profile_report` (``usability_fn``
    required), which describes the method; this returns only the profile.
    """
    return fit_profile_report(voltage, currents, **options).profile


def _decreasing(y: np.ndarray) -> np.ndarray:
    """Least-squares non-increasing fit of ``y`` (pool-adjacent-violators)."""
    blocks: list[list[float]] = []  # [sum, count]
    for val in y:
        blocks.append([float(val), 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
            s2, c2 = blocks.pop()
            blocks[-1][0] += s2
            blocks[-1][1] += c2
    return np.concatenate([np.full(int(c), s_ / c) for s_, c in blocks])


def _crossing(x: np.ndarray, y: np.ndarray, target: float) -> float:
    """``x`` where the non-increasing ``y(x)`` (piecewise linear) crosses ``target``, clipped."""
    if target >= y[0]:
        return float(x[0])
    if target <= y[-1]:
        return float(x[-1])
    k = int(np.flatnonzero(y <= target)[0])  # first point at or below the target
    y0, y1 = y[k - 1], y[k]
    t = 0.0 if y0 == y1 else (y0 - target) / (y0 - y1)
    return float(x[k - 1] + t * (x[k] - x[k - 1]))


def fit_profile_report(
    voltage: ArrayLike,
    currents: ArrayLike,
    *,
    usability_fn: UsabilityFn,
    base: DeviceProfile | str | None = None,
    seed: int = 0,
    compliance: float | None = None,
    dwell_s: float = 0.05,
    n_devices: int = 8,
    name: str = "fitted",
) -> FitReport:
    """Fit a profile to a measured device and report measured versus simulated figures.

    ``usability_fn(V, I) -> float`` computes the METHODS section-1 usability. It is a parameter
    (dependency injection) because sim_backends may not import the calibration package; callers
    pass ``lambda v, i: calibration.usability.usability(v, i).usability``.

    Method:

    1. :func:`iv_features` reads the SET/RESET voltages, the compliance (largest |I|, unless
       ``compliance`` A is given), the HRS/LRS conductances and the non-linearity off the data.
    2. Those replace the corresponding fields of ``base`` (default: the ``typical`` preset,
       which also supplies what one device cannot reveal: switching kinetics, device-to-device
       spreads, stuck-at rates).
    3. The noise fields (:data:`NOISE_FIELDS`) follow the one-parameter path :func:`noise_path`.
       Its parameter ``s`` is chosen where the mean section-1 usability of ``n_devices``
       simulated devices — swept with the file's own staircase, cycle count and compliance —
       equals the measured usability: a grid of ``s`` is simulated in one vectorised run, made
       monotone (isotonic regression) and interpolated.
    4. ``v_set`` is scaled (again a vectorised grid) until the simulated SET voltage
       (:func:`measured_set_voltage`, median over the devices) matches the measured one; then
       ``s``, ``v_set`` and ``s`` again are refined on finer grids.

    Only the usability and the SET voltage are matched; α_nm and σ separately are not (the
    path fixes how they trade off). Cost: six vectorised sweeps of up to 13 × ``n_devices``
    cells (a few seconds for 20 cycles of 240 points).
    """
    v, i = _clean(voltage, currents)
    feats = iv_features(v, i)
    if compliance is not None:
        feats = IVFeatures(**{**feats.__dict__, "compliance": float(compliance)})
    u_meas = float(usability_fn(v, i))
    v_top = float(np.max(v))
    v_bottom = float(np.min(v))
    base_p = get_profile(base if base is not None else "typical")
    v_reset = feats.v_reset
    if not (np.isfinite(v_reset) and 0.9 * v_bottom < v_reset < -0.1):
        v_reset = base_p.v_reset if v_bottom < base_p.v_reset else 0.5 * v_bottom
        v_reset = min(v_reset, -0.1)
    v_set_meas = feats.v_set
    prof = base_p.replace(
        name=name,
        target_usability=float(np.clip(u_meas, 0.0, 1.0)),
        g_off=feats.g_off,
        g_on=feats.g_on,
        nonlinearity=feats.nonlinearity,
        v_set=float(max(v_set_meas - feats.step, 0.05 * v_top, 0.05)),
        v_reset=float(v_reset),
    )
    n = int(n_devices)

    def run(blocks: list[dict[str, float]], p: DeviceProfile) -> np.ndarray:
        """Simulate ``n`` devices per parameter block: I[block, device, K, cycles]."""
        cp = {key: np.repeat([b[key] for b in blocks], n) for key in blocks[0]}
        _, sims = simulate_cyclic_iv_many(
            p,
            n * len(blocks),
            cycles=feats.n_cycles,
            voltage=v,
            compliance=feats.compliance,
            dwell_s=dwell_s,
            seed=seed,
            cell_params=cp,
        )
        return sims.reshape(len(blocks), n, v.size, feats.n_cycles)

    def mean_u(sims: np.ndarray) -> np.ndarray:
        out = np.empty(sims.shape[0])
        for b in range(sims.shape[0]):
            us = []
            for d in range(sims.shape[1]):
                try:
                    us.append(float(usability_fn(v, sims[b, d])))
                except ValueError:  # a degenerate simulated device counts as unusable
                    us.append(0.0)
            out[b] = np.mean(us)
        return out

    def set_v(sims: np.ndarray) -> np.ndarray:
        return np.array(
            [
                np.nanmedian([measured_set_voltage(v, sims[b, d]) for d in range(sims.shape[1])])
                for b in range(sims.shape[0])
            ]
        )

    def fit_s(p: DeviceProfile, grid: np.ndarray) -> float:
        u = mean_u(run([noise_path(x) for x in grid], p))
        return _crossing(grid, _decreasing(u), u_meas)

    def fit_v_set(p: DeviceProfile, factors: np.ndarray) -> DeviceProfile:
        blocks = [{"v_set": p.v_set * f, **noise_path(s)} for f in factors]
        vs = set_v(run(blocks, p))
        ok = np.isfinite(vs)
        if not (ok.any() and np.isfinite(v_set_meas)):
            return p
        err = np.abs(vs[ok] - v_set_meas) + 1e-3 * np.abs(factors[ok] - 1.0)  # ties: closest to 1
        f = factors[ok][int(np.argmin(err))]
        return p.replace(v_set=float(np.clip(p.v_set * f, 0.05, v_top)))

    # 3. coarse s, 4. v_set, then both again on finer grids
    s = fit_s(prof, np.linspace(0.0, S_MAX, 13))
    prof = fit_v_set(prof.replace(**noise_path(s)), np.linspace(0.7, 1.3, 13))
    s = fit_s(prof, np.linspace(max(0.0, s - 0.75), min(S_MAX, s + 0.75), 13))
    prof = fit_v_set(prof.replace(**noise_path(s)), np.linspace(0.88, 1.12, 13))
    s = fit_s(prof, np.linspace(max(0.0, s - 0.4), min(S_MAX, s + 0.4), 13))
    prof = prof.replace(**noise_path(s))
    final = run([noise_path(s)], prof)
    return FitReport(
        profile=prof,
        features=feats,
        badness=float(s),
        usability_measured=u_meas,
        usability_simulated=float(mean_u(final)[0]),
        v_set_measured=float(v_set_meas),
        v_set_simulated=float(set_v(final)[0]),
    )
