"""Live calibration: sweep a cell of the crossbar and grade it (METHODS section 1).

The sweeps go through the crossbar layer (so every point is written to the run's data file as
it is measured); the result is the same :class:`~calibration.batch.DeviceCalibration` a file
gives.

The default protocol measures a cell of the array as the device profiles are defined on an
isolated device (0.1 V steps, 50 ms per point, 25 µA compliance on the SET branch):

* Timing: each point lasts ``point_time`` = 50 ms, a settling delay (the source's sweep delay /
  trigger delay) then the ``nplc`` reading. Switching is a rate process, so the loops depend on
  it. ``point_time=None``: the bare reading (≈ 17 ms at 1 PLC).
* Biasing of the SET branch (V ≥ 0): ``cols-2v/3`` — unselected rows at 0 V, unselected columns
  at 2V/3. The cell's column mates see 0 V, so the sensed current is the cell's alone (as with
  ``ground``); its row mates see V/3 ≤ 2 V, so they do not SET and draw only their small HRS
  current from the source (with ``ground`` the whole row SETs with the cell and shares its
  current limit: the first mate to SET drives the source into compliance and cuts the cell's
  loop short); the other cells see −2V/3 (RESET-direction: a programmed pattern elsewhere in
  the array is not kept). With ``v/3`` the 9 column mates add their leakage at V/3 to the
  sensed current, which dilutes the cell's cycle-to-cycle spread.
* RESET branch (V < 0): ``reset_biasing`` ``v/3`` (every unselected cell within ±2 V) and
  ``reset_compliance`` 250 µA: a cell's RESET can need more current than the compliance its SET
  was formed under; with 25 µA there too, the source holds such a cell below its RESET voltage
  and it stays in the LRS for the rest of the run.

Measured with these defaults on the built-in simulated bench (0.5 Ω line resistance; ``xbar
calibrate --bench sim --profile P --seed S --cycles 10`` on cells (3, 4), (5, 7), (1, 8), (7, 1),
(9, 5); median U): ``optimized`` 0.898 (seed 0), ``typical`` 0.509 (seed 0), ``poor`` 0.126
(seed 0), ``paper`` 0.853 / 0.888 / 0.858 (seeds 0 / 1 / 2); isolated devices of the profiles
grade 0.865 ± 0.023, 0.489 ± 0.056, 0.144 ± 0.066 and 0.883 ± 0.035 (mean ± sd of one device). A single cell scatters as its device does (a poor cell 0.12 … 0.27),
and a cell whose row holds a stuck-ON cell reads low (that cell, at V/3, drives the source into
compliance).
"""

from __future__ import annotations

from collections.abc import Callable

from calibration.batch import CalibrationOptions, DeviceCalibration, calibrate_arrays
from crossbar.backend import Biasing, SweepPoint
from crossbar.core import Crossbar
from instruments.sweep_plan import cyclic_points


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
    reset_compliance: float | None = 250e-6,
    nplc: float = 1.0,
    biasing: Biasing | str = Biasing.COLS_2V3,
    reset_biasing: Biasing | str | None = Biasing.V3,
    point_time: float | None = 0.05,
    options: CalibrationOptions | None = None,
    on_point: Callable[[SweepPoint], None] | None = None,
) -> DeviceCalibration:
    """Cyclic I-V sweeps (0 → +v_max → 0 → v_min → 0 V in ``step`` V, ``cycles`` times) of
    cell (row, col), then the section-1 figures. Points at V ≥ 0: ``compliance`` A and
    ``biasing``; below 0 V: ``reset_compliance`` A and ``reset_biasing`` (None: the same as
    the SET branch). Each point lasts ``point_time`` s (None: the bare ``nplc`` reading). See
    the module docstring for the defaults.

    Raises ValueError for a bad sweep (non-positive step, v_max ≤ 0, v_min > 0, cycles < 2, a
    positive-only biasing on negative points) and SafetyLimitError (before anything is sent)
    beyond the bench's limits.
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
        reset_compliance=reset_compliance,
        reset_biasing=reset_biasing,
        name=None,  # the data file's own unique name: a repeat run appends, never collides
        on_point=on_point,
    )
    return calibrate_arrays(
        f"cell ({row}, {col})",
        sweep.voltage,
        sweep.current,
        options,
        source_format="live",
    )
