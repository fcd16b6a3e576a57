"""Live calibration: sweep a cell of the crossbar and grade it (METHODS section 1).

The sweeps go through the crossbar layer (so every point is written to the run's data file as
it is measured); the result is the same :class:`~calibration.batch.DeviceCalibration` a file
gives.
"""

from __future__ import annotations

from collections.abc import Callable

from calibration.batch import CalibrationOptions, DeviceCalibration, calibrate_arrays
from crossbar.backend import SweepPoint
from crossbar.core import Crossbar
from instruments.keithley6487 import cyclic_points


def calibrate_cell(
    crossbar: Crossbar,
    row: int,
    col: int,
    *,
    cycles: int = 10,
    v_max: float = 6.0,
    v_min: float = -6.0,
    step: float = 0.1,
    compliance: float = 25e-6,
    nplc: float = 1.0,
    options: CalibrationOptions | None = None,
    on_point: Callable[[SweepPoint], None] | None = None,
) -> DeviceCalibration:
    """Cyclic I-V sweeps (0 → +v_max → 0 → v_min → 0 V in ``step`` V, ``cycles`` times, with
    ``compliance`` A) of cell (row, col), then the section-1 figures.

    Raises ValueError for a bad sweep (non-positive step, v_max ≤ 0, v_min > 0, cycles < 2) and
    SafetyLimitError (before anything is sent) beyond the bench's limits.
    """
    if not step > 0:
        raise ValueError(f"step must be > 0 V, got {step:g}")
    if not v_max > 0:
        raise ValueError(f"v_max must be > 0 V (the SET branch), got {v_max:g}")
    if v_min > 0:
        raise ValueError(f"v_min must be <= 0 V, got {v_min:g}")
    if cycles < 2:
        raise ValueError(f"calibration needs at least 2 cycles, got {cycles}")
    voltages = cyclic_points(v_max, v_min, step)
    sweep = crossbar.iv_sweep(
        row,
        col,
        voltages,
        compliance=compliance,
        cycles=cycles,
        nplc=nplc,
        name=f"cell-{row}-{col}",
        on_point=on_point,
    )
    return calibrate_arrays(
        f"cell ({row}, {col})",
        sweep.voltage,
        sweep.current,
        options,
        source_format="live",
    )
