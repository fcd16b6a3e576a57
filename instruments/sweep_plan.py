"""Voltage lists of I-V sweeps and how the 6487 runs them.

:func:`cyclic_points` is THE cyclic staircase 0 → +v_max → 0 → v_min → 0 V (the CLI, the live
calibration, the simulated devices and the benchmarks all sweep it); :func:`plan_segments`
splits any voltage list into runs the 6487's built-in staircase sweep can execute and runs that
go point by point (:func:`instruments.keithley6487_procedures.sweep_points` executes the plan).
Pure numpy: no bus traffic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .keithley6487_limits import MAX_SWEEP_POINTS, written_level

__all__ = ["Segment", "builtin_parameters", "cyclic_points", "plan_segments"]


def cyclic_points(v_max: float, v_min: float, step: float) -> np.ndarray:
    """Voltages of a cyclic I-V sweep 0 → +v_max → 0 → v_min → 0 (V).

    :param v_max: positive apex (V, >= 0; 0 skips the positive lobe).
    :param v_min: negative apex (V, <= 0; 0 gives an up-only sweep 0 → v_max → 0).
    :param step: step (V, > 0); both apexes must be whole multiples of it.
    :returns: 1-D float array, starting and ending at 0 V, each point once; the points are
        ``k·step`` rounded to 12 decimals (no float drift, no -0.0).
    """
    v_max, v_min, step = float(v_max), float(v_min), float(step)
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be finite and > 0 V, got {step!r}")
    if not (math.isfinite(v_max) and v_max >= 0 and math.isfinite(v_min) and v_min <= 0):
        raise ValueError(f"need v_max >= 0 >= v_min, got v_max={v_max!r}, v_min={v_min!r}")
    if v_max == 0 and v_min == 0:
        raise ValueError("v_max and v_min are both 0 V: nothing to sweep")

    def steps_to(apex: float) -> int:
        ratio = abs(apex) / step
        n = round(ratio)
        if not math.isclose(ratio, n, rel_tol=1e-9, abs_tol=1e-9):
            raise ValueError(f"apex {apex:g} V is not a whole number of {step:g} V steps")
        return n

    n_up, n_down = steps_to(v_max), steps_to(v_min)
    ks = np.concatenate(
        [
            np.arange(0, n_up + 1),  # 0 → +v_max
            np.arange(n_up - 1, -1, -1),  # back to 0
            -np.arange(1, n_down + 1),  # 0 → v_min
            -np.arange(n_down - 1, -1, -1),  # back to 0
        ]
    )
    points = np.round(ks * step, 12)
    points[points == 0] = 0.0  # no -0.0
    return points


@dataclass(frozen=True)
class Segment:
    """A run of a sweep list: ``kind`` "builtin" (the 6487's staircase sweep) or "points"
    (point by point); ``first`` is the index of its first point in the list."""

    kind: Literal["builtin", "points"]
    first: int
    voltages: np.ndarray

    @property
    def count(self) -> int:
        return int(self.voltages.size)

    @property
    def start(self) -> float:
        return float(self.voltages[0])

    @property
    def stop(self) -> float:
        return float(self.voltages[-1])

    @property
    def step(self) -> float:
        """Absolute step (V) of a builtin segment."""
        if self.count < 2:
            return 0.0
        return abs(self.stop - self.start) / (self.count - 1)


def builtin_parameters(start: float, stop: float, step: float) -> tuple[float, float, float, int]:
    """The (start, stop, step) of a built-in staircase as the 6487 receives them (V, ``%g``)
    and its number of points.

    Raises ValueError when the span is not a whole number of steps once written to the bus
    (the 6487 runs only complete steps, manual p. 6-11, so the count would be ambiguous).
    """
    w_start, w_stop, w_step = written_level(start), written_level(stop), written_level(step)
    if not w_step > 0:
        raise ValueError(f"sweep step must be > 0 V, got {step!r}")
    ratio = abs(w_stop - w_start) / w_step
    n_steps = round(ratio)
    if not math.isclose(ratio, n_steps, rel_tol=1e-6, abs_tol=1e-6):
        raise ValueError(
            f"sweep span {w_start:g} V -> {w_stop:g} V is not a whole number of {w_step:g} V "
            f"steps ({ratio:.6g}); the 6487 only executes complete steps"
        )
    return w_start, w_stop, w_step, n_steps + 1


def _is_uniform_builtin(v: np.ndarray) -> bool:
    """True when the points are exactly what a built-in sweep with %g parameters produces."""
    try:
        start, stop, step, n = builtin_parameters(v[0], v[-1], abs(v[-1] - v[0]) / (v.size - 1))
    except ValueError:
        return False
    if n != v.size:
        return False
    direction = 1.0 if stop >= start else -1.0
    expected = start + direction * step * np.arange(n)
    return bool(np.allclose(expected, v, rtol=1e-6, atol=1e-6))


def _uniform_run_end(v: np.ndarray, i: int, builtin_descending: bool, max_points: int) -> int:
    """Index of the last point of the evenly stepped run starting at ``i`` (``i`` itself when
    the run does not go in an allowed direction)."""
    n = v.size
    if i + 1 >= n:
        return i
    d = v[i + 1] - v[i]
    if not (d > 0 or (builtin_descending and d < 0)):
        return i
    j = i + 1
    tol = max(1e-9, 1e-6 * abs(d))
    while j + 1 < n and abs((v[j + 1] - v[j]) - d) <= tol and j + 1 - i < max_points:
        j += 1
    return j


def plan_segments(
    voltages: Sequence[float] | np.ndarray,
    *,
    builtin_descending: bool = False,
    min_builtin_points: int = 3,
    max_builtin_points: int = MAX_SWEEP_POINTS,
) -> list[Segment]:
    """Split a voltage list into runs for :func:`~instruments.keithley6487_procedures.sweep_points`.

    Uniformly spaced ascending runs of at least ``min_builtin_points`` become "builtin"
    segments (at most ``max_builtin_points`` each); descending runs too when
    ``builtin_descending``; everything else is grouped into "points" segments. The segments
    concatenated give back the list in order.
    """
    v = np.asarray(voltages, dtype=float).ravel()
    segments: list[Segment] = []
    pending: list[int] = []

    def flush() -> None:
        if pending:
            segments.append(Segment("points", pending[0], v[pending[0] : pending[-1] + 1].copy()))
            pending.clear()

    i = 0
    while i < v.size:
        j = _uniform_run_end(v, i, builtin_descending, max_builtin_points)
        if j - i + 1 >= min_builtin_points and _is_uniform_builtin(v[i : j + 1]):
            flush()
            segments.append(Segment("builtin", i, v[i : j + 1].copy()))
            i = j + 1
        else:
            pending.append(i)
            i += 1
    flush()
    return segments
