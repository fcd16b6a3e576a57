"""Reading cyclic I-V sweeps from files: Keithley Excel exports, CSV and HDF5.

Every reader returns :class:`IVData`: one voltage staircase ``V[k]`` (V) shared by all cycles and
a current matrix ``I[k, c]`` (A) with one column per cycle, NaN marking a missing point. Anything
that cannot be turned into that raises :class:`CalibrationInputError`, whose message starts with
the file name and says what is wrong, e.g.
``bad.csv: column current_cycle3, row 17: 'abc' is not a number``.

Accepted formats
----------------
* **Excel** (``.xlsx``, ``.xlsm``; read with openpyxl): the first sheet whose header row holds a
  ``voltage`` column and at least one ``current_cycleN`` column (the instrument exports often
  carry a second sheet of fabrication notes, and the data sheet is not always the first).
  The header row is the first row that contains ``voltage`` among the first 20 rows.
* **CSV** (``.csv``, ``.txt``; comma, semicolon or tab separated, UTF-8): the same columns.

For both: header names are matched case-insensitively; ``voltage`` (also ``voltage_v`` or
``voltage (V)``) and ``current_cycleN`` (also ``current_cycle_N``). Other columns, including
columns with an empty header, are ignored and listed in :attr:`IVData.ignored_columns`, except
``compliance_cycleN`` (the 0/1 compliance flags of the GUI's exports), which are known and not
read. Rows above the header (the GUI's ``# key: value`` metadata lines) are skipped. Cycle
numbers need not start at 1 nor be contiguous (exports often start at ``current_cycle2``).
Empty cells and the texts ``nan``, ``na``, ``n/a``, ``#n/a``, ``null``, ``none`` (any case) are
missing points; any other text is an error. Rows where every recognised cell is empty are dropped
(the exports pad sheets with thousands of empty styled rows). Currents clamped at the compliance
limit are kept as measured: on the SET branch a clamped current gives a falling conductance
``I_cc / V``, which ends the LCIS, which is what METHODS section 1 intends.

* **HDF5** (``.h5``, ``.hdf5``; read with h5py) — the format the crossbar layer writes for live
  sweeps (:func:`write_iv_hdf5` writes exactly this)::

      /iv/<name>/voltage   float64 (K,)    V, the staircase of one cycle
      /iv/<name>/current   float64 (K, C)  A, one column per cycle, NaN = missing point
      /iv/<name>.attrs["cycles"]  int64 (C,)  cycle numbers (optional; default 1..C)

  Any group (the root included) that holds a ``voltage`` dataset is one sweep, so a file may hold
  many (e.g. one per crossbar cell). Instead of the 2-D ``current`` a group may hold 1-D datasets
  ``current_cycleN`` (K,). A sweep in group ``/iv/r3c4`` of ``run.h5`` is named
  ``run.h5:/iv/r3c4``; a sweep at the root is named ``run.h5``.

Cycles with data
----------------
METHODS section 1 needs one cycle for ``Ḡ`` but σ̂ of a single cycle is identically 0 (every
residual is ``ln(G/Ḡ) = 0``), which would grade a one-shot sweep as noise-free. Decision: a
device needs at least ``min_cycles = 2`` cycles with any finite current; fewer is an error.
"""

from __future__ import annotations

import csv
import math
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from crossbar.datastore import IV_ROOT, write_iv_group

EXCEL_SUFFIXES = (".xlsx", ".xlsm")
CSV_SUFFIXES = (".csv", ".txt")
HDF5_SUFFIXES = (".h5", ".hdf5")
SUPPORTED_SUFFIXES = EXCEL_SUFFIXES + CSV_SUFFIXES + HDF5_SUFFIXES
MIN_CYCLES = 2  # cycles with data a device needs (see the module docstring)

_VOLTAGE_RE = re.compile(r"^voltage(?:_v|\s*\(v\))?$", re.IGNORECASE)
_CURRENT_RE = re.compile(r"^current_cycle_?(\d+)$", re.IGNORECASE)
# the GUI's exports carry 0/1 compliance flags per cycle: known, not "ignored" data
_FLAG_RE = re.compile(r"^compliance_cycle_?(\d+)$", re.IGNORECASE)
_MISSING_TEXT = frozenset({"", "nan", "na", "n/a", "#n/a", "null", "none"})
_HEADER_SEARCH_ROWS = 20


class CalibrationInputError(ValueError):
    """A file or array cannot be calibrated; the message names the source and the problem."""


@dataclass(frozen=True)
class IVData:
    """One device's cyclic I-V sweep.

    Attributes:
        path: the file read.
        name: device name (the file's base name, or ``file:/group`` for an HDF5 sweep).
        voltage: staircase of one cycle, shape (K,), V (NaN where the cell was empty).
        currents: shape (K, cycles), A; NaN marks a missing point.
        cycle_numbers: the cycle number of each column (from ``current_cycleN``).
        source_format: ``"xlsx"``, ``"csv"`` or ``"hdf5"``.
        sheet: the Excel sheet read (None for other formats).
        ignored_columns: header texts of columns that were not read.
    """

    path: Path
    name: str
    voltage: np.ndarray
    currents: np.ndarray
    cycle_numbers: list[int]
    source_format: str
    sheet: str | None = None
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def cycles_with_data(self) -> list[int]:
        """Cycle numbers of the columns holding at least one finite current."""
        has = np.isfinite(self.currents).any(axis=0)
        return [c for c, h in zip(self.cycle_numbers, has) if h]


# --------------------------------------------------------------------------------------------
# public entry points


def read_iv(path: str | Path, *, name: str | None = None, min_cycles: int = MIN_CYCLES) -> IVData:
    """Read one device's sweep from an Excel, CSV or HDF5 file.

    Args:
        path: the file.
        name: for an HDF5 file holding several sweeps, the group path of the one to read
            (e.g. ``"/iv/r3c4"``); not needed when the file holds one sweep.
        min_cycles: cycles with data required (≥ 0; default 2, see the module docstring).

    Raises:
        CalibrationInputError: naming the file and the problem.
    """
    sweeps = read_iv_all(path, min_cycles=min_cycles)
    if name is None:
        if len(sweeps) > 1:
            names = ", ".join(s.name for s in sweeps[:5])
            raise CalibrationInputError(
                f"{Path(path).name}: holds {len(sweeps)} sweeps ({names}…); pass name= to pick one"
            )
        return sweeps[0]
    for s in sweeps:
        if s.name.endswith(":" + name) or s.name == name:
            return s
    raise CalibrationInputError(f"{Path(path).name}: no sweep named {name!r}")


def read_iv_all(path: str | Path, *, min_cycles: int = MIN_CYCLES) -> list[IVData]:
    """Read every sweep of a file (one for Excel/CSV, one per sweep group for HDF5).

    Raises:
        CalibrationInputError: naming the file and the problem.
    """
    path = Path(path)
    label = path.name
    suffix = path.suffix.lower()
    if not path.exists():
        raise CalibrationInputError(f"{label}: no such file or directory ({path})")
    if path.is_dir():
        raise CalibrationInputError(f"{label}: is a directory, not a data file")
    if suffix not in SUPPORTED_SUFFIXES:
        raise CalibrationInputError(
            f"{label}: unsupported file type {path.suffix or '(no extension)'!r}; "
            f"expected one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if suffix in EXCEL_SUFFIXES:
        sweeps = [_read_excel(path)]
    elif suffix in CSV_SUFFIXES:
        sweeps = [_read_csv(path)]
    else:
        sweeps = _read_hdf5(path)
    for s in sweeps:
        check_values(s.name, s.voltage, s.currents)
        check_cycles(s.name, s.currents, s.cycle_numbers, min_cycles)
    return sweeps


#: Largest plausible |voltage| (V) and |current| (A) in an I-V file: orders of magnitude beyond
#: any source of the bench (the 6487: 505 V, 25 mA; the real exports stay within 8 V and
#: 0.1 A); larger values are corrupt data or the 6487's overflow sentinel (9.9e37).
MAX_ABS_VOLTAGE = 1e4
MAX_ABS_CURRENT = 1e3


def check_values(name: str, voltage: np.ndarray, currents: np.ndarray) -> None:
    """Raise CalibrationInputError for an infinite or implausibly large voltage or current
    (see :data:`MAX_ABS_VOLTAGE`, :data:`MAX_ABS_CURRENT`); NaN (missing) is fine."""
    for what, arr, limit, unit in (
        ("voltage", np.asarray(voltage, dtype=float), MAX_ABS_VOLTAGE, "V"),
        ("current", np.asarray(currents, dtype=float), MAX_ABS_CURRENT, "A"),
    ):
        with np.errstate(invalid="ignore"):
            bad = np.isinf(arr) | (np.abs(arr) > limit)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            where = f"point {idx[0] + 1}" + (f", cycle column {idx[1] + 1}" if len(idx) > 1 else "")
            raise CalibrationInputError(
                f"{name}: {what} {arr[idx]:g} {unit} at {where} is not plausible "
                f"(|{what}| <= {limit:g} {unit}): corrupt data or an overflow reading"
            )


def check_cycles(
    name: str, currents: np.ndarray, cycle_numbers: Sequence[int], min_cycles: int = MIN_CYCLES
) -> None:
    """Raise CalibrationInputError unless at least ``min_cycles`` columns hold a finite current."""
    has = np.isfinite(currents).any(axis=0) if currents.size else np.zeros(0, bool)
    n = int(has.sum())
    if n < min_cycles:
        with_data = [c for c, h in zip(cycle_numbers, has) if h]
        which = f" (cycle {', '.join(map(str, with_data))})" if with_data else ""
        raise CalibrationInputError(
            f"{name}: {n} cycle(s) with data{which}; need at least {min_cycles} "
            f"(σ of a single cycle is identically 0)"
        )


def find_iv_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories into the supported data files inside (sorted, not recursive).

    Files named explicitly are returned as given (even with an unsupported extension, so that the
    reader reports it). Inside a directory: ``.xlsx/.xlsm/.h5/.hdf5`` files, and ``.csv/.txt``
    files whose first line has a ``voltage`` column (so a ``conditions.csv`` next to the data is
    skipped); hidden files and Excel lock files (``~$…``) are skipped.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(p)
            continue
        for child in sorted(p.iterdir()):
            if not child.is_file() or child.name.startswith((".", "~$")):
                continue
            suffix = child.suffix.lower()
            if suffix in EXCEL_SUFFIXES + HDF5_SUFFIXES:
                out.append(child)
            elif suffix in CSV_SUFFIXES and _csv_has_voltage_header(child):
                out.append(child)
    return out


def write_iv_hdf5(
    path: str | Path,
    name: str,
    voltage: ArrayLike,
    currents: ArrayLike,
    *,
    cycles: Sequence[int] | None = None,
    attrs: dict[str, object] | None = None,
) -> str:
    """Write one sweep as group ``/iv/<name>`` of an HDF5 file (appending if it exists), in the
    layout of the crossbar data file (:func:`crossbar.datastore.write_iv_group`).

    Args:
        path: the HDF5 file.
        name: group name under ``/iv`` (no ``/``).
        voltage: shape (K,), V.
        currents: shape (K, C) or (K,), A; NaN = missing point.
        cycles: cycle numbers (C,); default 1..C.
        attrs: extra attributes stored on the group (e.g. cell, compliance_a).

    Returns:
        The group path written, e.g. ``"/iv/r3c4"``.
    """
    import h5py

    v = np.asarray(voltage, dtype=float)
    i = np.asarray(currents, dtype=float)
    if i.ndim == 1:
        i = i[:, None]
    if v.ndim != 1 or i.ndim != 2 or i.shape[0] != v.size:
        raise ValueError(f"voltage (K,) and currents (K, C) needed, got {v.shape} and {i.shape}")
    if "/" in name or not name:
        raise ValueError(f"sweep name must be non-empty without '/', got {name!r}")
    cyc = None if cycles is None else np.asarray(cycles, dtype=np.int64)
    if cyc is not None and cyc.shape != (i.shape[1],):
        raise ValueError(f"cycles must have {i.shape[1]} entries, got {cyc.shape}")
    with h5py.File(path, "a") as f:
        g = write_iv_group(f.require_group(IV_ROOT), name, v, i, cycles=cyc, attrs=attrs)
        return g.name


# --------------------------------------------------------------------------------------------
# tabular formats (Excel, CSV): a header row, then rows of cells


def _col_letter(j: int) -> str:
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


def _classify_header(
    header: Sequence[object],
) -> tuple[int | None, list[tuple[int, int]], list[tuple[int, str]]]:
    """Return (voltage column, [(column, cycle)], [(column, header text)] of other columns)."""
    v_col = None
    cur: list[tuple[int, int]] = []
    other: list[tuple[int, str]] = []
    for j, h in enumerate(header):
        text = "" if h is None else str(h).strip()
        if v_col is None and _VOLTAGE_RE.match(text):
            v_col = j
            continue
        m = _CURRENT_RE.match(text)
        if m:
            cur.append((j, int(m.group(1))))
        elif not _FLAG_RE.match(text):
            other.append((j, text or f"(empty header, column {_col_letter(j)})"))
    return v_col, cur, other


def _parse_table(
    label: str,
    rows: list[Sequence[object]],
    header_row: int,
    *,
    letters: bool,
    sheet: str | None,
) -> tuple[np.ndarray, np.ndarray, list[int], list[str]]:
    """Turn header + data rows into (voltage, currents, cycles, ignored column names).

    Row numbers in messages count from 1 at the file's first row (as a spreadsheet shows them).
    """
    v_col, cur, other = _classify_header(rows[header_row])
    where = f" (sheet {sheet!r})" if sheet else ""
    if v_col is None:
        raise CalibrationInputError(f"{label}: no 'voltage' column in the header{where}")
    if not cur:
        raise CalibrationInputError(f"{label}: no 'current_cycleN' column in the header{where}")
    cycles = [c for _, c in cur]
    dupes = sorted({c for c in cycles if cycles.count(c) > 1})
    if dupes:
        raise CalibrationInputError(f"{label}: duplicate column current_cycle{dupes[0]}")
    cols = [v_col] + [j for j, _ in cur]
    names = ["voltage"] + [f"current_cycle{c}" for c in cycles]
    data_rows = rows[header_row + 1 :]
    # other columns are reported only when they hold data (the exports have empty styled ones)
    ignored = [
        text for j, text in other if any(j < len(r) and r[j] not in (None, "") for r in data_rows)
    ]
    out = _cells_to_float(label, data_rows, cols, names, header_row, letters)
    keep = ~np.isnan(out).all(axis=1)
    out = out[keep]
    if out.shape[0] == 0:
        raise CalibrationInputError(f"{label}: no data rows below the header{where}")
    voltage = out[:, 0]
    if not np.isfinite(voltage).any():
        raise CalibrationInputError(f"{label}: column voltage holds no numbers")
    return voltage, out[:, 1:], cycles, ignored


def _cells_to_float(
    label: str,
    data_rows: list[Sequence[object]],
    cols: list[int],
    names: list[str],
    header_row: int,
    letters: bool,
) -> np.ndarray:
    """Cells of the chosen columns as a float matrix (NaN = missing); errors name the cell."""
    width = max(cols) + 1
    padded = [r if len(r) >= width else tuple(r) + (None,) * (width - len(r)) for r in data_rows]
    obj = np.array(padded, dtype=object).reshape(len(padded), -1)[:, cols] if padded else None
    if obj is None:
        return np.zeros((0, len(cols)))
    # Fast path: numbers, numeric texts and empty cells convert in one go; anything else falls
    # back to the cell-by-cell pass, which accepts the missing-value texts or names the cell.
    fast = obj.copy()
    fast[np.equal(fast, None) | np.equal(fast, "")] = np.nan
    try:
        return fast.astype(float)
    except (ValueError, TypeError):
        pass
    out = np.full(obj.shape, np.nan)
    for n in range(obj.shape[0]):
        for m in range(obj.shape[1]):
            x = _to_float(obj[n, m])
            if x is None:
                j = cols[m]
                col = f"{names[m]} ({_col_letter(j)})" if letters else names[m]
                raise CalibrationInputError(
                    f"{label}: column {col}, row {header_row + 2 + n}: {obj[n, m]!r} "
                    f"is not a number"
                )
            out[n, m] = x
    return out


def _to_float(x: object) -> float | None:
    """A cell as float (NaN for missing), or None when it is not a number."""
    if x is None:
        return math.nan
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        s = x.strip()
        if s.lower() in _MISSING_TEXT:
            return math.nan
        try:
            return float(s)
        except ValueError:
            return None
    return None  # dates, times, formulas' errors …


def _find_header(rows: list[Sequence[object]]) -> int | None:
    for n, row in enumerate(rows[:_HEADER_SEARCH_ROWS]):
        if any(isinstance(c, str) and _VOLTAGE_RE.match(c.strip()) for c in row):
            return n
    return None


def _read_excel(path: Path) -> IVData:
    import openpyxl

    label = path.name
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError) as exc:
        raise CalibrationInputError(
            f"{label}: cannot be read as an Excel workbook (truncated or corrupt file: "
            f"{type(exc).__name__}: {exc})"
        ) from exc
    titles = [ws.title for ws in wb.worksheets]
    try:
        candidates = []
        for ws in wb.worksheets:
            try:
                rows = list(ws.iter_rows(values_only=True))
            except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError) as exc:
                raise CalibrationInputError(
                    f"{label}: sheet {ws.title!r} cannot be read (truncated or corrupt file: "
                    f"{type(exc).__name__}: {exc})"
                ) from exc
            h = _find_header(rows)
            if h is not None:
                candidates.append((ws.title, rows, h))
                if any(_CURRENT_RE.match(str(c).strip()) for c in rows[h] if c is not None):
                    break
    finally:
        wb.close()
    if not candidates:
        sheets = ", ".join(repr(t) for t in titles)
        raise CalibrationInputError(f"{label}: no 'voltage' column in any sheet ({sheets})")
    title, rows, h = candidates[-1]
    voltage, currents, cycles, ignored = _parse_table(label, rows, h, letters=True, sheet=title)
    return IVData(path, label, voltage, currents, cycles, "xlsx", title, ignored)


def _sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _csv_has_voltage_header(path: Path) -> bool:
    """True when one of the first rows (metadata lines may come first) has a voltage column."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as fh:
            lines = [fh.readline() for _ in range(_HEADER_SEARCH_ROWS)]
    except OSError:
        return False
    for line in lines:
        cells = next(csv.reader([line], delimiter=_sniff_delimiter(line)), [])
        if any(_VOLTAGE_RE.match(c.strip()) for c in cells):
            return True
    return False


def _read_csv(path: Path) -> IVData:
    label = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CalibrationInputError(
            f"{label}: not a UTF-8 text CSV file (byte {exc.start} cannot be decoded)"
        ) from exc
    except OSError as exc:
        raise CalibrationInputError(f"{label}: cannot be read ({exc.strerror})") from exc
    if "\x00" in text:
        raise CalibrationInputError(f"{label}: not a text CSV file (it holds NUL bytes)")
    lines = text.splitlines()
    if not lines:
        raise CalibrationInputError(f"{label}: the file is empty")
    h = _find_header([[c.strip() for c in r] for r in csv.reader(lines[:_HEADER_SEARCH_ROWS])])
    delimiter = _sniff_delimiter(lines[h if h is not None else 0])
    rows = list(csv.reader(lines, delimiter=delimiter))
    h = _find_header(rows)
    if h is None:
        raise CalibrationInputError(f"{label}: no 'voltage' column in the header")
    voltage, currents, cycles, ignored = _parse_table(label, rows, h, letters=False, sheet=None)
    return IVData(path, label, voltage, currents, cycles, "csv", None, ignored)


# --------------------------------------------------------------------------------------------
# HDF5


def _read_hdf5(path: Path) -> list[IVData]:
    import h5py

    label = path.name
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CalibrationInputError(
            f"{label}: cannot be read as an HDF5 file (truncated or not HDF5: {exc})"
        ) from exc
    out: list[IVData] = []
    with f:
        groups: list[h5py.Group] = []

        def visit(_name: str, obj: object) -> None:
            if isinstance(obj, h5py.Group) and isinstance(obj.get("voltage"), h5py.Dataset):
                groups.append(obj)

        if isinstance(f.get("voltage"), h5py.Dataset):
            groups.append(f)
        f.visititems(visit)
        if not groups:
            raise CalibrationInputError(
                f"{label}: no group holds a 'voltage' dataset (expected /iv/<name>/voltage and "
                f"/iv/<name>/current)"
            )
        for g in groups:
            where = label if g.name == "/" else f"{label}:{g.name}"
            out.append(_read_hdf5_group(path, where, g))
    return out


def _numeric(where: str, ds: object, what: str) -> np.ndarray:
    import h5py

    if not isinstance(ds, h5py.Dataset):
        raise CalibrationInputError(f"{where}: {what} is not a dataset")
    if ds.dtype.kind not in "fiu":
        raise CalibrationInputError(f"{where}: dataset {what} holds {ds.dtype} values, not numbers")
    return np.asarray(ds[()], dtype=float)


def _read_hdf5_group(path: Path, where: str, g: object) -> IVData:
    v = _numeric(where, g["voltage"], "voltage")
    if v.ndim != 1:
        raise CalibrationInputError(f"{where}: dataset voltage must be 1-D, got shape {v.shape}")
    if "current" in g:
        i = _numeric(where, g["current"], "current")
        if i.ndim == 1:
            i = i[:, None]
        if i.ndim != 2 or i.shape[0] != v.size:
            raise CalibrationInputError(
                f"{where}: dataset current must have shape ({v.size}, cycles), got {i.shape}"
            )
        if "cycles" in g.attrs:
            cycles = [int(c) for c in np.atleast_1d(g.attrs["cycles"])]
            if len(cycles) != i.shape[1]:
                raise CalibrationInputError(
                    f"{where}: attribute cycles has {len(cycles)} entries for "
                    f"{i.shape[1]} current columns"
                )
        else:
            cycles = list(range(1, i.shape[1] + 1))
    else:
        cols = sorted(
            (int(m.group(1)), k) for k in g.keys() if (m := _CURRENT_RE.match(k)) is not None
        )
        if not cols:
            raise CalibrationInputError(
                f"{where}: no 'current' dataset and no 'current_cycleN' datasets"
            )
        arrays = []
        for _c, k in cols:
            a = _numeric(where, g[k], k)
            if a.shape != v.shape:
                raise CalibrationInputError(
                    f"{where}: dataset {k} has shape {a.shape}, voltage has {v.shape}"
                )
            arrays.append(a)
        i = np.stack(arrays, axis=1)
        cycles = [c for c, _ in cols]
    if not np.isfinite(v).any():
        raise CalibrationInputError(f"{where}: dataset voltage holds no finite numbers")
    return IVData(path, where, v, i, cycles, "hdf5", None, [])
