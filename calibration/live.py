"""Live calibration: sweep a cell of the crossbar and grade it (METHODS section 1).

The sweeps go through the crossbar layer (so every point is written to the run's data file as
it is measured); the result is the same :class:`~calibration.batch.DeviceCalibration` a file
gives.

Timing: by default each point is one bare ``nplc`` reading (≈ 18 ms at 1 PLC on the 6487);
``point_time`` (s) stretches every point to that duration with a settling delay (the source's
sweep delay / trigger delay) — switching is a rate process, so the loops depend on it, e.g. to
match the 50 ms per point the simulated device profiles are defined by (measured: the simulated
``typical`` bench's five cells still graded 0.60 … 0.68 median over seeds 0–2 with it).

Biasing: ``ground`` by default (every other line at 0 V; the selected column's current is the
cell's alone). Its cost: the whole selected row is swept with the cell and shares the source's
current limit, so the row's programmed states are lost. ``v/3`` keeps the row (half-selected
cells see |V|/3 = 2 V, below SET ≈ 3 V and |RESET| ≈ 2.2 V) but the column's half-selected cells
add their leakage at V/3 to the measured current, which dilutes or (when one of them switches)
disturbs the cell's loops: U scatters more from cell to cell.
"""

from __future__ import annotations

from collections.abc import Callable

from calibration.batch import CalibrationOptions, DeviceCalibration, calibrate_arrays
from crossbar.backend import Biasing, SweepPoint
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
    biasing: Biasing | str = Biasing.GROUND,
    point_time: float | None = None,
    options: CalibrationOptions | None = None,
    on_point: Callable[[SweepPoint], None] | None = None,
) -> DeviceCalibration:
    """Cyclic I-V sweeps (0 → +v_max → 0 → v_min → 0 V in ``step`` V, ``cycles`` times, with
    ``compliance`` A, each point lasting ``point_time`` s — default the bare ``nplc`` reading)
    of
    cell (row, col), with the unselected lines per ``biasing`` (see the module docstring), then
    the section-1 figures.

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
    delay = 0.0 if point_time is None else point_time - nplc / 60.0
    if not 0.0 <= delay <= 999.0:
        raise ValueError(
            f"point_time {point_time:g} s must hold the {nplc:g}-PLC reading ({nplc / 60:.4g} s) "
            "and be at most 999 s"
        )
    voltages = cyclic_points(v_max, v_min, step)
    sweep = crossbar.iv_sweep(
        row,
        col,
        voltages,
        compliance=compliance,
        cycles=cycles,
        nplc=nplc,
        biasing=biasing,
        delay=delay,
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
