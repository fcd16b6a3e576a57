"""Calibrating devices: METHODS section 1 applied to arrays, files and batches of files.

:func:`calibrate_arrays` is the one entry point every source of ``(V, I)`` goes through — files
here (:func:`calibrate_file`, :func:`calibrate_paths`) and, later, live sweeps from the crossbar
layer — so every source gets the same checks and the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from calibration.io import (
    MIN_CYCLES,
    CalibrationInputError,
    IVData,
    check_cycles,
    find_iv_files,
    read_iv_all,
)
from calibration.profile import DeviceNoiseProfile
from calibration.usability import SUMMARY_KEYS, UsabilityError, UsabilityResult, usability

#: The keys of one device in ``xbar calibrate --json`` and the summary CSV, in order: the file,
#: then the section-1 figures of :data:`calibration.usability.SUMMARY_KEYS`.
JSON_KEYS: tuple[str, ...] = ("file", *SUMMARY_KEYS)


@dataclass(frozen=True)
class CalibrationOptions:
    """The configurable decisions of METHODS section 1.

    Attributes:
        tolerated_decreases: non-rises tolerated inside the LCIS (≥ 0; the authors' code used 2).
        l_min_fraction: ``L_min = ceil(f · n_branch)``, 0 < f ≤ 1.
        sigma: ``"up"`` (χ² 95 % bound, default) or ``"hat"`` (ML estimate) in ``U``.
        min_cycles: cycles with data a device needs (default 2).
    """

    tolerated_decreases: int = 0
    l_min_fraction: float = 0.35
    sigma: Literal["up", "hat"] = "up"
    min_cycles: int = MIN_CYCLES


@dataclass(frozen=True)
class DeviceCalibration:
    """One calibrated device: its data and its section-1 figures."""

    name: str
    voltage: np.ndarray  # (K,), V
    currents: np.ndarray  # (K, cycles), A
    cycle_numbers: list[int]
    result: UsabilityResult
    options: CalibrationOptions
    source_format: str = "arrays"
    notes: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, object]:
        """The figures under exactly :data:`JSON_KEYS`; non-finite numbers become None."""
        summary = self.result.summary()
        out: dict[str, object] = {"file": self.name}
        for key in JSON_KEYS[1:]:
            value = summary[key]
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            out[key] = value
        return out

    def to_profile(self) -> DeviceNoiseProfile:
        """The noise profile the inference engine uses (σ = the σ chosen for ``U``).

        Raises:
            CalibrationInputError: σ is not finite (a single residual in the LCIS).
        """
        r = self.result
        if not math.isfinite(r.sigma):
            raise CalibrationInputError(
                f"{self.name}: σ is not finite ({r.n_residuals} residual(s) in the LCIS); "
                f"no noise profile can be written"
            )
        return DeviceNoiseProfile(
            name=self.name,
            sigma=float(r.sigma),
            alpha_nm=r.alpha_nm,
            usability=r.usability,
            lcis_start=r.lcis_start,
            lcis_length=r.lcis_length,
            l_min=r.l_min,
            mean_curve_v=list(r.branch_v),
            mean_curve_g=list(r.branch_g_mean),
        )


@dataclass
class BatchResult:
    """Calibrated devices and the failures (name, message) of a batch, in input order."""

    devices: list[DeviceCalibration] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def sorted_by_usability(self) -> list[DeviceCalibration]:
        """Devices by descending usability (ties keep input order)."""
        return sorted(self.devices, key=lambda d: -d.result.usability)


def calibrate_arrays(
    name: str,
    voltage: ArrayLike,
    currents: ArrayLike,
    options: CalibrationOptions | None = None,
    *,
    cycle_numbers: Sequence[int] | None = None,
    source_format: str = "arrays",
    notes: Sequence[str] = (),
) -> DeviceCalibration:
    """Calibrate one device from a voltage staircase and per-cycle currents.

    Args:
        name: device name used in messages and outputs.
        voltage: shape (K,), V.
        currents: shape (K, cycles) or (K,), A; NaN marks a missing point.
        options: section-1 decisions (defaults: METHODS).
        cycle_numbers: cycle number of each column (default 1..cycles).

    Raises:
        CalibrationInputError: naming the device and the problem (shape, fewer than
            ``options.min_cycles`` cycles with data, no positive SET branch, …).
    """
    opts = options or CalibrationOptions()
    v = np.asarray(voltage, dtype=float)
    i = np.asarray(currents, dtype=float)
    if i.ndim == 1:
        i = i[:, None]
    if v.ndim != 1 or i.ndim != 2 or i.shape[0] != v.size:
        raise CalibrationInputError(
            f"{name}: voltage (K,) and currents (K, cycles) needed, got {v.shape} and {i.shape}"
        )
    cycles = list(cycle_numbers) if cycle_numbers is not None else list(range(1, i.shape[1] + 1))
    if len(cycles) != i.shape[1]:
        raise CalibrationInputError(
            f"{name}: {len(cycles)} cycle numbers for {i.shape[1]} current columns"
        )
    check_cycles(name, i, cycles, opts.min_cycles)
    try:
        result = usability(
            v,
            i,
            tolerated_decreases=opts.tolerated_decreases,
            l_min_fraction=opts.l_min_fraction,
            sigma=opts.sigma,
        )
    except UsabilityError as exc:
        raise CalibrationInputError(f"{name}: {exc}") from exc
    return DeviceCalibration(name, v, i, cycles, result, opts, source_format, list(notes))


def calibrate_iv(iv: IVData, options: CalibrationOptions | None = None) -> DeviceCalibration:
    """Calibrate a sweep read by :mod:`calibration.io`."""
    notes = []
    if iv.ignored_columns:
        shown = ", ".join(iv.ignored_columns[:3]) + ("…" if len(iv.ignored_columns) > 3 else "")
        notes.append(
            f"{len(iv.ignored_columns)} column(s) holding data were ignored "
            f"(not 'voltage' or 'current_cycleN'): {shown}"
        )
    return calibrate_arrays(
        iv.name,
        iv.voltage,
        iv.currents,
        options,
        cycle_numbers=iv.cycle_numbers,
        source_format=iv.source_format,
        notes=notes,
    )


def calibrate_file(
    path: str | Path, options: CalibrationOptions | None = None
) -> list[DeviceCalibration]:
    """Calibrate every sweep of one file (one for Excel/CSV; one per group for HDF5)."""
    return [calibrate_iv(iv, options) for iv in read_iv_all(path, min_cycles=0)]


def calibrate_paths(
    paths: Iterable[str | Path],
    options: CalibrationOptions | None = None,
    *,
    jobs: int = 1,
) -> BatchResult:
    """Calibrate files and directories; a bad file is recorded and the batch goes on.

    Directories are expanded with :func:`calibration.io.find_iv_files`. In a multi-sweep HDF5
    file each sweep succeeds or fails on its own. ``jobs > 1`` reads and calibrates the files in
    that many worker processes (reading an Excel export dominates: 0.02–0.5 s per file); results
    keep the input order either way.
    """
    files = find_iv_files(paths)
    opts = [options] * len(files)
    if jobs > 1 and len(files) > 2:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            parts = list(pool.map(_calibrate_one, files, opts, chunksize=2))
    else:
        parts = [_calibrate_one(f, o) for f, o in zip(files, opts)]
    batch = BatchResult()
    for devices, failures in parts:
        batch.devices.extend(devices)
        batch.failures.extend(failures)
    return batch


def _calibrate_one(
    path: Path, options: CalibrationOptions | None
) -> tuple[list[DeviceCalibration], list[tuple[str, str]]]:
    try:
        sweeps = read_iv_all(path, min_cycles=0)
    except CalibrationInputError as exc:
        return [], [(Path(path).name, str(exc))]
    devices, failures = [], []
    for iv in sweeps:
        try:
            devices.append(calibrate_iv(iv, options))
        except CalibrationInputError as exc:
            failures.append((iv.name, str(exc)))
    return devices, failures
