"""The measurement data file: every operation appended to HDF5 as it is acquired, never lost.

Layout (``format`` attribute ``xbar-datastore/1``)::

    /                      attrs: format, created (ISO 8601), metadata (JSON), bench_config (JSON),
                                  sessions (JSON list: one {started, metadata, bench_config}
                                  per writing session, for resumed files)
    /records               compound, (n,) extendable: one row per crosspoint operation
                           time (s, backend clock), operation (code, see OPERATIONS), row, col,
                           voltage (V, applied: pulse amplitude, sweep or read voltage),
                           pulse_width (s), read_voltage (V), current (A), conductance (S),
                           compliance (bool); NaN where a field does not apply
    /mvm/time (n,)  /mvm/inputs (n, rows) V  /mvm/outputs (n, cols) A     (extendable)
    /iv/<name>             one I-V sweep: voltage (K,) V, current (K, C) A (NaN until
                           measured, written point by point), compliance (K, C) bool;
                           attrs row, col, compliance_a (A), cycles (int64 (C,): the cycle
                           numbers 1..C), units_voltage, units_current — exactly the layout
                           :func:`write_iv_group` writes (for :meth:`DataStore.begin_iv` and
                           :func:`calibration.io.write_iv_hdf5`) and
                           :func:`calibration.io.read_iv` reads (it ignores ``compliance``);
                           :func:`read_iv_groups` gives the raw groups

**Crash safety.** The file is written with ``libver="latest"`` in SWMR (single-writer /
multiple-reader) mode: HDF5 then orders its metadata writes so the file on disk is always a
consistent file, and readers (:func:`open_read`, the GUI's live view) may open it while it is
being written. Records are buffered and flushed in small batches — every ``flush_every`` records
(16) or when ``flush_interval`` (0.5 s) has passed at the next write, and by :meth:`flush` /
:meth:`close` — so a crash of the program (SIGKILL, an exception, a segfault) loses at most the last unflushed
batch; with ``fsync=True`` every flush is also synced to disk (power cut, OS crash).
SWMR forbids creating new objects while in SWMR mode, so a new I-V group, the first MVM
dataset or the ``aborted`` mark closes and reopens the file (milliseconds; only for those rare
structural changes).

**Readers at any time.** Every open uses ``locking=False`` (HDF5's POSIX file lock off): with
the lock on, a reader in another process (the GUI's live view, a script) holds a shared lock
that makes the writer's reopen for such a structural change fail ("unable to lock file"), so a
reader could not be open during a run. The guard against a second *writer* does not depend on
that lock: HDF5 marks the superblock "open for writing" and refuses a second writer
(``tests/test_datastore.py::test_a_second_writer_is_refused_without_file_locks``). A reader sees
every record flushed so far (``/records`` grows in place; it calls ``refresh``); objects created
after it opened (a new I-V group) appear when it reopens the file.

A file left by a crashed writer is readable at once (:func:`read_records` opens it as an SWMR
reader). To append to it again (resume a program-map run), open it with ``recover=True``: this
clears the "open for writing" flags in the superblock, as ``h5clear -s`` does — only do this
when no other program is writing the file.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import re
import threading
import time as _time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from crossbar.backend import CellReading, SweepPoint

__all__ = [
    "FORMAT",
    "OPERATIONS",
    "RECORD_DTYPE",
    "DataStore",
    "DataStoreError",
    "IvWriter",
    "clear_write_flags",
    "export_csv",
    "IV_ROOT",
    "open_read",
    "read_iv_groups",
    "read_mvm",
    "read_records",
]

FORMAT = "xbar-datastore/1"
#: Operation codes stored in ``/records["operation"]``.
OPERATIONS = ("read", "pulse", "iv", "program-verify", "mvm", "form", "wait")
RECORD_FIELDS = (
    "time",
    "operation",
    "row",
    "col",
    "voltage",
    "pulse_width",
    "read_voltage",
    "current",
    "conductance",
    "compliance",
)
RECORD_DTYPE = np.dtype(
    [
        ("time", "f8"),
        ("operation", "S16"),
        ("row", "i4"),
        ("col", "i4"),
        ("voltage", "f8"),
        ("pulse_width", "f8"),
        ("read_voltage", "f8"),
        ("current", "f8"),
        ("conductance", "f8"),
        ("compliance", "?"),
    ]
)
_CHUNK = 1024
IV_ROOT = "iv"  # the group holding one subgroup per I-V sweep
_NAME_OK = re.compile(r"^[A-Za-z0-9_.\-]+$")


class DataStoreError(RuntimeError):
    """The data file cannot be created, opened or appended to (the message says why)."""


def to_jsonable(obj: Any, *, finite_only: bool = False) -> Any:
    """A JSON-serialisable copy of ``obj``: mappings (str keys), lists, numpy arrays and scalars
    as Python values, paths as str, enums as their value. ``finite_only``: NaN and ±inf become
    None (JSON has no such numbers)."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v, finite_only=finite_only) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, finite_only=finite_only) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), finite_only=finite_only)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return None if finite_only and not math.isfinite(obj) else obj
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "value") and hasattr(obj, "name") and not isinstance(obj, (str, bytes)):
        return to_jsonable(obj.value, finite_only=finite_only)  # enums
    return obj


def _to_json(obj: dict | str) -> str:
    if isinstance(obj, str):
        json.loads(obj)  # must already be JSON
        return obj
    return json.dumps(to_jsonable(obj), sort_keys=True, default=str)


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# -- superblock status flags (h5clear -s) ---------------------------------------------------------


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


# lookup3's mix and final rounds: (x, y, z, k) is x -= y; x ^= rot(y, k); y += z, and (x, y, k)
# is x ^= y; x -= rot(y, k), on the state (a, b, c) = (0, 1, 2).
_MIX = ((0, 2, 1, 4), (1, 0, 2, 6), (2, 1, 0, 8), (0, 2, 1, 16), (1, 0, 2, 19), (2, 1, 0, 4))
_FINAL = ((2, 1, 14), (0, 2, 11), (1, 0, 25), (2, 1, 16), (0, 2, 4), (1, 0, 14), (2, 1, 24))
_M32 = 0xFFFFFFFF


def _lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` — HDF5's metadata checksum."""
    n = len(data)
    s = [(0xDEADBEEF + n + initval) & _M32] * 3
    i = 0
    while n > 12:
        for j in range(3):
            s[j] = (s[j] + int.from_bytes(data[i + 4 * j : i + 4 * j + 4], "little")) & _M32
        for x, y, z, k in _MIX:
            s[x] = ((s[x] - s[y]) & _M32) ^ _rot(s[y], k)
            s[y] = (s[y] + s[z]) & _M32
        n -= 12
        i += 12
    if n == 0:
        return s[2]
    tail = data[i:] + b"\0" * (12 - n)
    for j in range(3):
        s[j] = (s[j] + int.from_bytes(tail[4 * j : 4 * j + 4], "little")) & _M32
    for x, y, k in _FINAL:
        s[x] = ((s[x] ^ s[y]) - _rot(s[y], k)) & _M32
    return s[2]


def clear_write_flags(path: str | Path) -> int:
    """Clear the "file open for writing" flags a crashed writer left in an HDF5 superblock
    (version 2 or 3, as written with ``libver="latest"``); like ``h5clear -s``. Returns the flags
    found (0: nothing to do). Only use on a file no program is writing."""
    path = Path(path)
    with path.open("r+b") as fh:
        head = bytearray(fh.read(64))
        if head[:8] != b"\x89HDF\r\n\x1a\n":
            raise DataStoreError(f"{path}: not an HDF5 file (no superblock at offset 0)")
        version = head[8]
        if version < 2:
            return 0  # version 0/1 superblocks have no status flags in this form
        size_off = head[9]
        n = 12 + 4 * size_off
        flags = head[11]
        stored = int.from_bytes(head[n : n + 4], "little")
        if _lookup3(bytes(head[:n])) != stored:
            raise DataStoreError(f"{path}: superblock checksum mismatch; refusing to patch it")
        if flags == 0:
            return 0
        head[11] = 0
        head[n : n + 4] = _lookup3(bytes(head[:n])).to_bytes(4, "little")
        fh.seek(0)
        fh.write(head[: n + 4])
        fh.flush()
    return int(flags)


# -- reading --------------------------------------------------------------------------------------


def open_read(path: str | Path) -> h5py.File:
    """Open a data file read-only — also one being written right now, or left by a crashed
    writer (as an SWMR reader). Raises DataStoreError with the reason otherwise."""
    path = Path(path)
    if not path.exists():
        raise DataStoreError(f"{path}: no such data file")
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as first:
        try:
            return h5py.File(path, "r", libver="latest", swmr=True, locking=False)
        except OSError:
            raise DataStoreError(
                f"{path}: cannot open ({first}); if a writer crashed outside SWMR mode, "
                "clear_write_flags(path) makes it readable"
            ) from first


def _records_dict(arr: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in RECORD_FIELDS:
        col = arr[name]
        if name == "operation":
            col = np.char.decode(col, "ascii").astype("U16")
        out[name] = np.asarray(col)
    return out


def read_records(path: str | Path) -> dict[str, np.ndarray]:
    """Every record of a data file as columns: ``{field: (n,) array}`` (operation as str)."""
    with open_read(path) as f:
        if "records" not in f:
            return _records_dict(np.zeros(0, RECORD_DTYPE))
        ds = f["records"]
        if hasattr(ds, "refresh"):
            try:
                ds.refresh()
            except Exception:  # refresh only applies to SWMR readers
                pass
        return _records_dict(ds[...])


def read_mvm(path: str | Path) -> dict[str, np.ndarray]:
    """MVM results: ``{"time": (n,), "inputs": (n, rows) V, "outputs": (n, cols) A}``."""
    with open_read(path) as f:
        if "mvm" not in f:
            return {"time": np.zeros(0), "inputs": np.zeros((0, 0)), "outputs": np.zeros((0, 0))}
        g = f["mvm"]
        return {k: g[k][...] for k in ("time", "inputs", "outputs")}


def read_iv_groups(path: str | Path, name: str | None = None) -> dict[str, dict[str, Any]]:
    """The raw ``/iv/<name>`` groups of a data file (only ``name`` if given), as dicts:
    ``{name: {"voltage" (K,) V, "current" (K, C) A, "compliance" (K, C) bool or None,
    "n_cycles", and every attribute: "row", "col", "compliance_a", "cycles" …}}``.

    Low-level access to this module's layout (compliance flags, attributes, a file being
    written); :func:`calibration.io.read_iv` is the I-V reader for calibration."""
    out: dict[str, dict[str, Any]] = {}
    with open_read(path) as f:
        if IV_ROOT not in f:
            return out
        names = [name] if name is not None else list(f[IV_ROOT])
        for n in names:
            g = f[IV_ROOT][n]
            out[n] = {
                "voltage": g["voltage"][...],
                "current": g["current"][...],
                "compliance": g["compliance"][...] if "compliance" in g else None,
                **{k: _attr(g.attrs[k]) for k in g.attrs},
                "n_cycles": int(g["current"].shape[1]),
            }
    return out


def write_iv_group(
    parent: h5py.Group,
    name: str,
    voltage: np.ndarray,
    current: np.ndarray,
    *,
    cycles: Sequence[int] | None = None,
    compliance: np.ndarray | None = None,
    chunked: bool = False,
    attrs: Mapping[str, Any] | None = None,
) -> h5py.Group:
    """Create the sweep group ``parent/name`` in this module's I-V layout (module docstring).

    Args:
        parent: the ``/iv`` group (or any group).
        name: the new group's name.
        voltage: (K,) V; current: (K, C) A, NaN = not measured.
        cycles: cycle numbers (C,), default 1..C, stored as attribute ``cycles`` (int64).
        compliance: (K, C) bool flags, stored as dataset ``compliance`` when given.
        chunked: one chunk per cycle column (for point-by-point writing).
        attrs: more attributes (HDF5-storable values).
    """
    k, c = current.shape
    chunks = (k, 1) if chunked else None
    g = parent.create_group(name)
    g.create_dataset("voltage", data=voltage)
    g.create_dataset("current", data=current, chunks=chunks)
    if compliance is not None:
        g.create_dataset("compliance", data=compliance, chunks=chunks)
    g.attrs["cycles"] = (
        np.arange(1, c + 1, dtype=np.int64) if cycles is None else np.asarray(cycles, np.int64)
    )
    g.attrs["units_voltage"] = "V"
    g.attrs["units_current"] = "A"
    for key, value in (attrs or {}).items():
        g.attrs[key] = value
    return g


def _attr(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def export_csv(h5path: str | Path, csv_path: str | Path) -> Path:
    """Write ``/records`` as CSV (header = field names; floats with 17 significant digits, so
    the values read back exactly; booleans as 0/1). Returns the CSV path."""
    rec = read_records(h5path)
    csv_path = Path(csv_path)
    n = rec["time"].size
    with csv_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(RECORD_FIELDS)
        for i in range(n):
            row = []
            for name in RECORD_FIELDS:
                v = rec[name][i]
                if name == "operation":
                    row.append(str(v))
                elif name in ("row", "col"):
                    row.append(str(int(v)))
                elif name == "compliance":
                    row.append("1" if v else "0")
                else:
                    row.append(repr(float(v)))
            w.writerow(row)
    return csv_path


# -- writing --------------------------------------------------------------------------------------


class IvWriter:
    """Writes one I-V sweep into ``/iv/<name>`` point by point (from :meth:`DataStore.begin_iv`).
    Use :meth:`point` as the sweep's ``on_point`` callback."""

    def __init__(self, store: DataStore, name: str, row: int, col: int, voltages: np.ndarray):
        self.store, self.name, self.row, self.col = store, name, row, col
        self.voltage = voltages
        self.points = 0

    def point(self, p: SweepPoint) -> None:
        """Store one measured point (and append an ``iv`` record)."""
        self.store._iv_point(self, p)
        self.points += 1


class DataStore:
    """Append-as-acquired HDF5 data file (see the module docstring for layout and guarantees).

    Args:
        path: the .h5 file.
        metadata: run metadata (JSON-serialisable dict: operator, sample, purpose …).
        bench_config: the bench configuration (dict or JSON text), stored as a JSON attribute.
        mode: ``"a"`` (default) create, or append to an existing data file (resume); ``"w"``
            truncate; ``"x"`` create, fail if the file exists.
        flush_every: records per flush batch (≥ 1).
        flush_interval: s; a write after this long since the last flush flushes.
        recover: when appending, clear the write flags a crashed writer left (see
            :func:`clear_write_flags`); without it such a file raises DataStoreError.
        fsync: also ``fsync`` the file at every flush, so a flushed batch survives a power cut
            or OS crash, not only the death of this process (costs a disk sync per batch).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        metadata: dict | None = None,
        bench_config: dict | str | None = None,
        mode: str = "a",
        flush_every: int = 16,
        flush_interval: float = 0.5,
        recover: bool = False,
        fsync: bool = False,
    ) -> None:
        if mode not in ("a", "w", "x"):
            raise ValueError(f"mode must be 'a', 'w' or 'x', got {mode!r}")
        if flush_every < 1 or not flush_interval >= 0:
            raise ValueError("flush_every must be ≥ 1 and flush_interval ≥ 0 s")
        self.path = Path(path)
        self.metadata = dict(metadata or {})
        self.bench_config_json = _to_json(bench_config if bench_config is not None else {})
        self.flush_every = int(flush_every)
        self.flush_interval = float(flush_interval)
        self.fsync = bool(fsync)
        self._lock = threading.RLock()
        self._buffer: list[tuple] = []
        self._pending = 0
        self._last_flush = _time.monotonic()
        self.flushed_count = 0  # records on disk (flushed)
        self._f: h5py.File | None = None
        self._closed = False
        exists = self.path.exists()
        if mode == "x" and exists:
            raise DataStoreError(f"{self.path}: exists already (mode 'x')")
        if mode == "a" and exists:
            self._open_existing(recover)
        else:
            self._create()
        self._iv_count = len(self._f[IV_ROOT]) if IV_ROOT in self._f else 0  # type: ignore[index]

    # -- file handling -----------------------------------------------------------------------
    def _session(self) -> dict:
        return {
            "started": _now_iso(),
            "metadata": to_jsonable(self.metadata),
            "bench_config": json.loads(self.bench_config_json),
        }

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            f = h5py.File(self.path, "w", libver="latest", locking=False)
        except OSError as exc:
            raise DataStoreError(f"{self.path}: cannot create data file ({exc})") from exc
        f.attrs["format"] = FORMAT
        f.attrs["created"] = _now_iso()
        f.attrs["metadata"] = _to_json(self.metadata)
        f.attrs["bench_config"] = self.bench_config_json
        f.attrs["sessions"] = json.dumps([self._session()])
        for k, v in self.metadata.items():  # simple values also as attributes, for HDF viewers
            if isinstance(v, (str, int, float, bool, np.generic)) and k not in f.attrs:
                f.attrs[k] = v
        f.create_dataset(
            "records", shape=(0,), maxshape=(None,), chunks=(_CHUNK,), dtype=RECORD_DTYPE
        )
        f.create_group(IV_ROOT)
        f.flush()
        f.swmr_mode = True
        self._f = f

    def _open_existing(self, recover: bool) -> None:
        try:
            f = h5py.File(self.path, "a", libver="latest", locking=False)
        except OSError as exc:
            if "already open for write" in str(exc) and recover:
                clear_write_flags(self.path)
                f = h5py.File(self.path, "a", libver="latest", locking=False)
            elif "already open for write" in str(exc):
                raise DataStoreError(
                    f"{self.path}: the file was not closed cleanly (a crashed run?) or another "
                    "program is writing it; if none is, open it with recover=True to resume"
                ) from exc
            else:
                raise DataStoreError(f"{self.path}: cannot open for appending ({exc})") from exc
        if f.attrs.get("format") != FORMAT or "records" not in f:
            f.close()
            raise DataStoreError(f"{self.path}: not an xbar data file (format {FORMAT!r})")
        sessions = json.loads(f.attrs.get("sessions", "[]"))
        sessions.append(self._session())
        f.attrs["sessions"] = json.dumps(sessions)
        if "iv" not in f:
            f.create_group(IV_ROOT)
        f.flush()
        f.swmr_mode = True
        self._f = f

    def _restructure(self) -> h5py.File:
        """Close and reopen outside SWMR mode (to create objects); caller re-enables SWMR."""
        self._flush_locked()
        assert self._f is not None
        self._f.close()
        self._f = h5py.File(self.path, "a", libver="latest", locking=False)
        return self._f

    def _swmr_on(self) -> None:
        assert self._f is not None
        self._f.flush()
        self._f.swmr_mode = True

    @property
    def file(self) -> h5py.File:
        """The open h5py file (for readers in the same process; do not create objects)."""
        self._check_open()
        assert self._f is not None
        return self._f

    def _check_open(self) -> None:
        if self._closed or self._f is None:
            raise DataStoreError(f"{self.path}: data store is closed")

    # -- records -----------------------------------------------------------------------------
    def record(
        self,
        operation: str,
        *,
        time: float,
        row: int = -1,
        col: int = -1,
        voltage: float = np.nan,
        pulse_width: float = np.nan,
        read_voltage: float = np.nan,
        current: float = np.nan,
        conductance: float = np.nan,
        compliance: bool = False,
    ) -> None:
        """Append one record (see the module docstring for the fields; NaN = not applicable)."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; use one of {OPERATIONS}")
        rec = (
            float(time),
            operation.encode("ascii"),
            int(row),
            int(col),
            float(voltage),
            float(pulse_width),
            float(read_voltage),
            float(current),
            float(conductance),
            bool(compliance),
        )
        with self._lock:
            self._check_open()
            self._buffer.append(rec)
            self._pending += 1
            self._maybe_flush()

    def record_reading(
        self,
        reading: CellReading,
        operation: str = "read",
        *,
        voltage: float | None = None,
        pulse_width: float = np.nan,
    ) -> None:
        """Append a read (or a pulse/program-verify step whose read-after is ``reading``:
        pass the pulse amplitude as ``voltage`` and its ``pulse_width``)."""
        self.record(
            operation,
            time=reading.time,
            row=reading.row,
            col=reading.col,
            voltage=reading.voltage if voltage is None else voltage,
            pulse_width=pulse_width,
            read_voltage=reading.voltage,
            current=reading.current,
            conductance=reading.conductance,
            compliance=reading.compliance,
        )

    def _maybe_flush(self) -> None:
        if (
            self._pending >= self.flush_every
            or _time.monotonic() - self._last_flush >= self.flush_interval
        ):
            self._flush_locked()

    def _flush_locked(self) -> None:
        f = self._f
        if f is None:
            return
        if self._buffer:
            ds = f["records"]
            n = ds.shape[0]
            arr = np.array(self._buffer, dtype=RECORD_DTYPE)
            ds.resize((n + arr.size,))
            ds[n:] = arr
            self._buffer.clear()
            self.flushed_count = n + arr.size
        f.flush()
        if self.fsync:
            os.fsync(f.id.get_vfd_handle())
        self._pending = 0
        self._last_flush = _time.monotonic()

    def flush(self) -> None:
        """Write everything buffered to disk now."""
        with self._lock:
            self._check_open()
            self._flush_locked()

    @property
    def count(self) -> int:
        """Records written so far (flushed + buffered)."""
        return self.flushed_count + len(self._buffer)

    # -- MVM ---------------------------------------------------------------------------------
    def record_mvm(self, inputs: np.ndarray, outputs: np.ndarray, *, time: float) -> None:
        """Append a batch of MVMs: ``inputs`` (batch, rows) V, ``outputs`` (batch, cols) A."""
        x = np.atleast_2d(np.asarray(inputs, dtype=float))
        y = np.atleast_2d(np.asarray(outputs, dtype=float))
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"inputs and outputs differ in batch size: {x.shape} vs {y.shape}")
        with self._lock:
            self._check_open()
            f = self._f
            assert f is not None
            if "mvm" not in f:
                f = self._restructure()
                g = f.create_group("mvm")
                g.create_dataset("time", shape=(0,), maxshape=(None,), chunks=(256,), dtype="f8")
                for name, a in (("inputs", x), ("outputs", y)):
                    g.create_dataset(
                        name,
                        shape=(0, a.shape[1]),
                        maxshape=(None, a.shape[1]),
                        chunks=(256, a.shape[1]),
                        dtype="f8",
                    )
                self._swmr_on()
            g = f["mvm"]
            if g["inputs"].shape[1] != x.shape[1] or g["outputs"].shape[1] != y.shape[1]:
                raise DataStoreError(
                    f"MVM shape {x.shape[1]}→{y.shape[1]} differs from the file's "
                    f"{g['inputs'].shape[1]}→{g['outputs'].shape[1]}"
                )
            n = g["time"].shape[0]
            b = x.shape[0]
            for name, a in (("time", np.full(b, float(time))), ("inputs", x), ("outputs", y)):
                ds = g[name]
                ds.resize(n + b, axis=0)
                ds[n:] = a
            self._pending += b
            self._maybe_flush()

    # -- I-V sweeps --------------------------------------------------------------------------
    def begin_iv(
        self,
        row: int,
        col: int,
        voltages: Sequence[float],
        *,
        cycles: int,
        compliance_a: float,
        name: str | None = None,
        **attrs: Any,
    ) -> IvWriter:
        """Create ``/iv/<name>`` for a sweep (current NaN-filled) and return its writer.
        ``name`` defaults to ``sweep_NNNN_rRcC``; extra ``attrs`` (nplc, biasing …) are stored."""
        v = np.asarray(voltages, dtype=float).reshape(-1)
        if cycles < 1 or v.size == 0:
            raise ValueError("an I-V sweep needs ≥ 1 voltage and ≥ 1 cycle")
        with self._lock:
            self._check_open()
            if name is None:
                name = f"sweep_{self._iv_count:04d}_r{row}c{col}"
            if not _NAME_OK.match(name):
                raise ValueError(f"sweep name {name!r}: use letters, digits, '_', '-', '.'")
            f = self._restructure()
            try:
                if name in f[IV_ROOT]:
                    raise DataStoreError(f"{self.path}: sweep /iv/{name} exists already")
                extra = {
                    k: a if isinstance(a, (int, float, str, bool)) else json.dumps(to_jsonable(a))
                    for k, a in attrs.items()
                }
                write_iv_group(
                    f[IV_ROOT],
                    name,
                    v,
                    np.full((v.size, cycles), np.nan),
                    compliance=np.zeros((v.size, cycles), bool),
                    chunked=True,
                    attrs={"row": int(row), "col": int(col), "compliance_a": float(compliance_a)}
                    | extra,
                )
            finally:
                self._swmr_on()
            self._iv_count += 1
            return IvWriter(self, name, int(row), int(col), v)

    def _iv_point(self, w: IvWriter, p: SweepPoint) -> None:
        with self._lock:
            self._check_open()
            f = self._f
            assert f is not None
            g = f[IV_ROOT][w.name]
            g["current"][p.index, p.cycle] = p.current
            g["compliance"][p.index, p.cycle] = p.compliance
            g_val = p.current / p.voltage if p.voltage != 0 else np.nan
            reading = CellReading(w.row, w.col, p.voltage, p.current, g_val, p.compliance, p.time)
            self.record_reading(reading, "iv")  # the point's voltage is also its read voltage

    # -- lifecycle ---------------------------------------------------------------------------
    def mark_aborted(self, reason: str, bench_time: float) -> None:
        """Mark the file ``aborted`` (root attribute, JSON): the wall time (ISO 8601), the bench
        time (s), ``reason`` and the last record written (its index and fields), after flushing
        every buffered record. Each call appends to the list in ``aborted``."""
        with self._lock:
            self._check_open()
            self._flush_locked()
            last: dict[str, Any] | None = None
            n = self.flushed_count
            if n:
                row = self._f["records"][n - 1]  # type: ignore[index]
                last = {"index": n - 1} | _records_dict(np.asarray([row]))  # one record
                last = {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in last.items()}
            entry = {
                "time": _now_iso(),
                "bench_time_s": float(bench_time),
                "reason": str(reason),
                "last_record": to_jsonable(last),
            }
            f = self._restructure()  # attributes are written outside SWMR mode
            try:
                marks = json.loads(f.attrs.get("aborted", "[]"))
                f.attrs["aborted"] = json.dumps([*marks, entry])
            finally:
                self._swmr_on()

    def close(self) -> None:
        """Flush and close (safe to call twice)."""
        with self._lock:
            if self._closed:
                return
            try:
                self._flush_locked()
            finally:
                if self._f is not None:
                    self._f.close()
                self._closed = True

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def __enter__(self) -> DataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def open_read(cls, path: str | Path) -> h5py.File:
        """Open a data file read-only (see :func:`open_read`)."""
        return open_read(path)

    @staticmethod
    def read_records(path: str | Path) -> dict[str, np.ndarray]:
        """See :func:`read_records`."""
        return read_records(path)
