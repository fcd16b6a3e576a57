"""Export what the GUI shows to files (no Qt here): I-V sweeps, maps, calibration tables,
programming results — and the same from a recorded HDF5 data file.

I-V sweeps are written in the layout of the Keithley exports that ``xbar calibrate`` reads
(:mod:`calibration.io`): a ``voltage`` column and one ``current_cycleN`` column per cycle, with
the signed current at full precision (``repr`` of the float: it reads back bit for bit; a
missing point is an empty cell), a ``compliance_cycleN`` column per cycle (1 where the source
was at its current limit) and, above the header, metadata lines ``# key: value`` (CSV) or
rows (xlsx) that the reader skips.

Maps and programming results are "long" CSV tables (one row per cell) with the same metadata
lines; the calibration table is one row per device with the ``conditions.csv`` columns joined
by file name.
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MAP_COLUMNS",
    "PROGRAM_COLUMNS",
    "export_data_file",
    "last_reads",
    "program_rows",
    "program_rows_from_records",
    "read_conditions",
    "write_calibration_csv",
    "write_iv",
    "write_map_csv",
    "write_program_csv",
]

#: Columns of a map export: cell, then the quantities (S, Ω, A; NaN = not read).
MAP_COLUMNS = (
    "row",
    "col",
    "conductance_S",
    "resistance_ohm",
    "current_A",
    "target_S",
    "error_rel",
)
#: Columns of a programming-results export.
PROGRAM_COLUMNS = (
    "row",
    "col",
    "target_S",
    "achieved_S",
    "error_rel",
    "pulses",
    "converged",
    "stuck",
    "aborted",
)


def _num(x: float) -> str:
    """Full precision (``repr``), empty for NaN/None."""
    if x is None:
        return ""
    v = float(x)
    return repr(v) if math.isfinite(v) else ""


def _meta_lines(metadata: Mapping[str, Any]) -> list[str]:
    stamp = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    items = {"exported by": "xbar gui", "exported at": stamp, **metadata}
    return [f"# {k}: {'' if v is None else v}" for k, v in items.items()]


def _write_rows(path: Path, meta: Mapping[str, Any], header: Sequence[str], rows) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        for line in _meta_lines(meta):
            w.writerow([line])
        w.writerow(header)
        for r in rows:
            w.writerow(r)
    return path


# -- I-V ----------------------------------------------------------------------------------------


def _iv_table(
    voltage: np.ndarray, current: np.ndarray, compliance: np.ndarray | None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    v = np.asarray(voltage, dtype=float).reshape(-1)
    i = np.asarray(current, dtype=float)
    if i.ndim == 1:
        i = i[:, None]
    if i.shape[0] != v.size:
        raise ValueError(f"voltage has {v.size} points, current {i.shape[0]}")
    flags = np.zeros(i.shape, dtype=bool) if compliance is None else np.asarray(compliance, bool)
    if flags.shape != i.shape:
        raise ValueError(f"compliance flags {flags.shape} do not match currents {i.shape}")
    n = i.shape[1]
    header = (
        ["voltage"]
        + [f"current_cycle{c + 1}" for c in range(n)]
        + [f"compliance_cycle{c + 1}" for c in range(n)]
    )
    return header, i, flags


def _iv_csv(path: Path, header: list[str], v: np.ndarray, i: np.ndarray, flags, meta) -> Path:
    rows = (
        [_num(v[k]), *(_num(x) for x in i[k]), *("1" if f else "0" for f in flags[k])]
        for k in range(v.size)
    )
    return _write_rows(path, meta, header, rows)


def _iv_xlsx(path: Path, header: list[str], v: np.ndarray, i: np.ndarray, flags, meta) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "I-V"
    for line in _meta_lines(meta):
        ws.append([line])
    ws.append(header)

    def cell(x: float) -> float | None:
        return float(x) if math.isfinite(float(x)) else None

    for k in range(v.size):
        ws.append([cell(v[k]), *(cell(x) for x in i[k]), *(int(f) for f in flags[k])])
    wb.save(path)
    return path


def write_iv(
    path: str | Path,
    voltage: np.ndarray,
    current: np.ndarray,
    compliance: np.ndarray | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """One sweep, as an Excel workbook for ``.xlsx`` (sheet ``I-V``: the metadata rows, the
    header, the data as IEEE doubles, a missing point an empty cell), else as CSV (see the
    module docstring). ``current`` (K, C) A, NaN = not measured; ``compliance`` (K, C) flags.
    Returns the path."""
    header, i, flags = _iv_table(voltage, current, compliance)
    v = np.asarray(voltage, dtype=float).reshape(-1)
    path = Path(path)
    write = _iv_xlsx if path.suffix.lower() == ".xlsx" else _iv_csv
    return write(path, header, v, i, flags, metadata or {})


# -- maps ---------------------------------------------------------------------------------------


def write_map_csv(
    path: str | Path,
    conductance: np.ndarray,
    *,
    current: np.ndarray | None = None,
    target: np.ndarray | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """The array's last reads, one row per cell: G (S), R = 1/G (Ω), the read current (A),
    the programming target (S) and the relative error G/target − 1 (empty where unknown)."""
    g = np.asarray(conductance, dtype=float)
    shape = g.shape
    cur = np.full(shape, np.nan) if current is None else np.asarray(current, dtype=float)
    tgt = np.full(shape, np.nan) if target is None else np.asarray(target, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(g > 0, 1.0 / g, np.nan)
        err = np.where(tgt > 0, g / tgt - 1.0, np.nan)
    rows = (
        [
            str(a),
            str(b),
            _num(g[a, b]),
            _num(r[a, b]),
            _num(cur[a, b]),
            _num(tgt[a, b]),
            _num(err[a, b]),
        ]
        for a in range(shape[0])
        for b in range(shape[1])
    )
    meta = {"array": f"{shape[0]}x{shape[1]}", **(metadata or {})}
    return _write_rows(Path(path), meta, MAP_COLUMNS, rows)


# -- programming --------------------------------------------------------------------------------


def program_rows(report: Any) -> list[dict[str, Any]]:
    """One dict per cell of a :class:`crossbar.programming.ProgramReport` (PROGRAM_COLUMNS)."""
    out = []
    for c in report.cells:
        out.append(
            {
                "row": c.row,
                "col": c.col,
                "target_S": c.target,
                "achieved_S": c.final,
                "error_rel": c.rel_error,
                "pulses": c.pulses,
                "converged": c.converged,
                "stuck": c.stuck,
                "aborted": c.aborted,
            }
        )
    return out


def program_rows_from_records(
    records: Mapping[str, np.ndarray],
    targets: np.ndarray | None = None,
    *,
    tol: float | None = None,
) -> list[dict[str, Any]]:
    """Programming results from a data file's ``/records``: per cell, its LAST program-verify
    run (a run starts at the verify read with no pulse before it): the achieved conductance
    (the run's last read) and the pulses applied. The data file does not hold the targets:
    ``targets`` (rows, cols) S adds target and error (and ``converged`` within ``tol``)."""
    op = np.asarray(records["operation"])
    sel = np.flatnonzero(op == "program-verify")
    runs: dict[tuple[int, int], list[float]] = {}
    pulses: dict[tuple[int, int], int] = {}
    for k in sel:
        cell = (int(records["row"][k]), int(records["col"][k]))
        if float(records["voltage"][k]) == 0.0:  # the initial read: a new run of this cell
            runs[cell] = []
            pulses[cell] = 0
        else:
            pulses[cell] = pulses.get(cell, 0) + 1
        runs.setdefault(cell, []).append(float(records["conductance"][k]))
    out = []
    for r, c in sorted(runs):
        g = runs[(r, c)][-1]
        t = float(targets[r, c]) if targets is not None else math.nan
        err = g / t - 1.0 if t > 0 else math.nan
        out.append(
            {
                "row": r,
                "col": c,
                "target_S": t,
                "achieved_S": g,
                "error_rel": err,
                "pulses": pulses.get((r, c), 0),
                "converged": (abs(err) <= tol) if (tol is not None and math.isfinite(err)) else "",
                "stuck": "",
                "aborted": "",
            }
        )
    return out


def _cell_text(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return _num(float(v))
    return "" if v is None else str(v)


def write_program_csv(
    path: str | Path, rows: Iterable[Mapping[str, Any]], metadata: Mapping[str, Any] | None = None
) -> Path:
    """Programming results (PROGRAM_COLUMNS; from :func:`program_rows` or
    :func:`program_rows_from_records`) as CSV."""
    body = ([_cell_text(r.get(k)) for k in PROGRAM_COLUMNS] for r in rows)
    return _write_rows(Path(path), metadata or {}, PROGRAM_COLUMNS, body)


# -- calibration table --------------------------------------------------------------------------


def read_conditions(path: str | Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    """A ``conditions.csv``: (its columns other than ``file``, {file name: {column: text}})."""
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "file" not in reader.fieldnames:
            raise ValueError(f"{Path(path).name}: no 'file' column")
        cols = [c for c in reader.fieldnames if c != "file"]
        table = {Path(row["file"]).name: {c: row.get(c) or "" for c in cols} for row in reader}
    return cols, table


def write_calibration_csv(
    path: str | Path,
    devices: Sequence[Any],
    *,
    conditions: tuple[list[str], dict[str, dict[str, str]]] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """One row per device (:class:`calibration.batch.DeviceCalibration`): the keys of
    ``to_json_dict`` (the figures of ``xbar calibrate --json``) at full precision, then the
    ``conditions`` columns joined by file name (empty for a device not listed)."""
    cond_cols, table = conditions if conditions is not None else ([], {})
    rows = []
    keys: list[str] = []
    for d in devices:
        js = d.to_json_dict()
        if not keys:
            keys = list(js)
        name = Path(str(d.name)).name
        extra = table.get(name, {})
        rows.append([_cell_text(js.get(k)) for k in keys] + [extra.get(c, "") for c in cond_cols])
    meta = {"devices": len(devices), **(metadata or {})}
    return _write_rows(Path(path), meta, keys + [f"{c}" for c in cond_cols], rows)


# -- from a data file ---------------------------------------------------------------------------


def last_reads(
    records: Mapping[str, np.ndarray], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(G S, I A) of every cell's last read (reads, reads after pulses, verify reads) in a data
    file's ``/records``; NaN where none."""
    g = np.full(shape, np.nan)
    i = np.full(shape, np.nan)
    op = np.asarray(records["operation"])
    keep = np.isin(op, ["read", "pulse", "program-verify", "form"])
    for k in np.flatnonzero(keep):
        r, c = int(records["row"][k]), int(records["col"][k])
        gk = float(records["conductance"][k])
        if 0 <= r < shape[0] and 0 <= c < shape[1] and math.isfinite(gk):
            g[r, c], i[r, c] = gk, float(records["current"][k])
    return g, i


def _array_shape(
    src: Path, rec: Mapping[str, np.ndarray], targets: np.ndarray | None
) -> tuple[int, int]:
    """The array's shape: from ``targets``, else the file's bench configuration, else the
    largest cell recorded."""
    import json

    from crossbar.datastore import open_read

    if targets is not None:
        return int(targets.shape[0]), int(targets.shape[1])
    try:
        with open_read(src) as f:
            cfg = json.loads(f.attrs.get("bench_config", "{}"))
        xb = cfg.get("crossbar", {})
        return int(xb["rows"]), int(xb["cols"])
    except (KeyError, ValueError, TypeError, OSError):
        rows = int(np.max(rec["row"])) + 1 if rec["row"].size else 0
        cols = int(np.max(rec["col"])) + 1 if rec["col"].size else 0
        return rows, cols


def export_data_file(
    h5path: str | Path, out_dir: str | Path, *, targets: np.ndarray | None = None
) -> list[Path]:
    """Write what a recorded data file holds: every I-V sweep as ``<name>.csv`` and
    ``<name>.xlsx`` (with the sweep's settings as metadata), the last read of every cell as
    ``map.csv`` and the programming results as ``programming.csv`` (targets from ``targets``,
    else empty). Returns the files written."""
    from crossbar.datastore import read_iv_groups, read_records

    src = Path(h5path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, g in read_iv_groups(src).items():
        meta = {"data file": src.name, "sweep": f"/iv/{name}"}
        for k in (
            "row",
            "col",
            "compliance_a",
            "reset_compliance_a",
            "biasing",
            "reset_biasing",
            "nplc",
            "delay_s",
        ):
            if k in g:
                meta[k] = g[k]
        for suffix in (".csv", ".xlsx"):
            written.append(
                write_iv(out / f"{name}{suffix}", g["voltage"], g["current"], g["compliance"], meta)
            )
    rec = read_records(src)
    if rec["time"].size:
        rows, cols = _array_shape(src, rec, targets)
        if rows > 0 and cols > 0:
            g, i = last_reads(rec, (rows, cols))
            if np.isfinite(g).any():
                written.append(
                    write_map_csv(
                        out / "map.csv",
                        g,
                        current=i,
                        target=targets,
                        metadata={"data file": src.name, "values": "last read of each cell"},
                    )
                )
        prog = program_rows_from_records(rec, targets)
        if prog:
            written.append(
                write_program_csv(
                    out / "programming.csv",
                    prog,
                    {"data file": src.name, "runs": "last program-verify run of each cell"},
                )
            )
    return written
