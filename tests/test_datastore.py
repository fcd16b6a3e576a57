"""The HDF5 data file: round trip, crash safety (SIGKILL), CSV export, resume, I-V format."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.io import read_iv as read_iv_file
from crossbar.backend import CellReading, SweepPoint
from crossbar.datastore import (
    DataStore,
    DataStoreError,
    clear_write_flags,
    export_csv,
    read_iv_groups,
    read_mvm,
    read_records,
    to_jsonable,
)
from crossbar.datastore import _lookup3 as lookup3


def _write_n(ds: DataStore, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        ds.record(
            "pulse" if i % 3 else "read",
            time=0.5 * i,
            row=i % 10,
            col=(i // 10) % 10,
            voltage=3.0 + 0.01 * i,
            pulse_width=1e-3,
            read_voltage=0.2,
            current=1e-7 * (i + 1),
            conductance=5e-7 * (i + 1),
            compliance=(i % 7 == 0),
        )


def test_round_trip_fields_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with DataStore(
        path, metadata={"operator": "ana", "sample": "S12"}, bench_config={"rows": 10}
    ) as ds:
        _write_n(ds, 40)
        ds.record_reading(CellReading(2, 3, 0.2, 4e-6, 2e-5, False, 99.0))
        assert ds.count == 41
    rec = read_records(path)
    assert rec["time"].size == 41
    i = np.arange(40)
    np.testing.assert_array_equal(rec["time"][:40], 0.5 * i)
    np.testing.assert_array_equal(rec["row"][:40], i % 10)
    np.testing.assert_array_equal(rec["voltage"][:40], 3.0 + 0.01 * i)
    np.testing.assert_array_equal(rec["current"][:40], 1e-7 * (i + 1))
    np.testing.assert_array_equal(rec["compliance"][:40], i % 7 == 0)
    assert list(rec["operation"][:4]) == ["read", "pulse", "pulse", "read"]
    assert (rec["operation"][40], rec["row"][40], rec["col"][40]) == ("read", 2, 3)
    assert rec["conductance"][40] == 2e-5 and np.isnan(rec["pulse_width"][40])
    with DataStore.open_read(path) as f:
        assert json.loads(f.attrs["metadata"]) == {"operator": "ana", "sample": "S12"}
        assert json.loads(f.attrs["bench_config"]) == {"rows": 10}
        assert f.attrs["format"] == "xbar-datastore/1"
        assert f["records"].maxshape == (None,) and f["records"].chunks is not None


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(
        st.tuples(
            st.floats(allow_nan=False, allow_infinity=False, width=64),
            st.floats(-10, 10, allow_nan=False),
            st.booleans(),
        ),
        min_size=0,
        max_size=40,
    ),
    every=st.integers(1, 20),
)
def test_round_trip_exact_any_values(tmp_path_factory, values, every) -> None:
    path = tmp_path_factory.mktemp("h") / "x.h5"
    with DataStore(path, flush_every=every, flush_interval=1e9, mode="w") as ds:
        for t, v, c in values:
            ds.record("form", time=t, row=1, col=2, voltage=v, compliance=c)
    rec = read_records(path)
    assert rec["time"].size == len(values)
    for k, (t, v, c) in enumerate(values):
        assert (rec["time"][k], rec["voltage"][k], bool(rec["compliance"][k])) == (t, v, c)


def test_flush_batches(tmp_path: Path) -> None:
    path = tmp_path / "b.h5"
    ds = DataStore(path, flush_every=16, flush_interval=1e9)
    _write_n(ds, 15)
    assert ds.flushed_count == 0
    _write_n(ds, 1, start=15)
    assert ds.flushed_count == 16
    # a concurrent reader (SWMR) sees the flushed batch while the writer is open
    assert read_records(path)["time"].size == 16
    _write_n(ds, 5, start=16)
    ds.close()
    assert read_records(path)["time"].size == 21


def test_time_based_flush(tmp_path: Path) -> None:
    ds = DataStore(tmp_path / "t.h5", flush_every=1000, flush_interval=0.0)
    _write_n(ds, 3)
    assert ds.flushed_count == 3
    ds.close()


_CHILD = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {repo!r})
    from crossbar.datastore import DataStore
    ds = DataStore({path!r}, metadata={{"who": "child"}}, flush_every=16, flush_interval=1e9)
    n_total, kill_at = 1000, {kill_at}
    for i in range(n_total):
        ds.record("read", time=i * 0.25, row=i % 10, col=i // 10 % 10, voltage=0.2,
                  read_voltage=0.2, current=1e-9 * i, conductance=5e-9 * i)
        if ds.flushed_count and ds.flushed_count % 16 == 0 and i + 1 == ds.flushed_count:
            print("flushed", ds.flushed_count, flush=True)
        if i == kill_at:
            if {mvm}:
                import numpy as np
                ds.record_mvm(np.ones((2, 10)), np.full((2, 10), 3.0), time=1.0)
                ds.flush()
                print("flushed", ds.flushed_count, flush=True)
            print("dying", flush=True)
            {death}
    """
)


@pytest.mark.parametrize(
    "death,mvm",
    [("os.kill(os.getpid(), 9)", False), ("os._exit(3)", False), ("os.kill(os.getpid(), 9)", True)],
)
def test_crash_safety_sigkill(tmp_path: Path, death: str, mvm: bool) -> None:
    path = tmp_path / "crash.h5"
    script = _CHILD.format(repo=str(REPO), path=str(path), kill_at=203, death=death, mvm=mvm)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    if "kill" in death:
        assert out.returncode == -signal.SIGKILL, out.stderr
    else:
        assert out.returncode == 3, out.stderr
    lines = out.stdout.split()
    assert "dying" in lines
    flushed = [int(lines[k + 1]) for k, w in enumerate(lines) if w == "flushed"]
    last = flushed[-1]
    assert last >= 192  # 12 batches of 16 before record 203
    rec = read_records(path)  # the file the killed writer left behind
    n = rec["time"].size
    assert n >= last
    i = np.arange(n)
    np.testing.assert_array_equal(rec["time"], i * 0.25)
    np.testing.assert_array_equal(rec["current"], 1e-9 * i)
    np.testing.assert_array_equal(rec["row"], i % 10)
    assert set(rec["operation"]) == {"read"}
    if mvm:
        m = read_mvm(path)
        np.testing.assert_array_equal(m["outputs"], np.full((2, 10), 3.0))
    # resuming the crashed file: refused without recover, then appended with it
    with pytest.raises(DataStoreError, match="not closed cleanly"):
        DataStore(path)
    with DataStore(path, recover=True, metadata={"who": "resume"}) as ds:
        _write_n(ds, 3)
    rec2 = read_records(path)
    assert rec2["time"].size == n + 3
    np.testing.assert_array_equal(rec2["time"][:n], rec["time"])
    with h5py.File(path, "r") as f:  # cleanly closed now: plain readers work
        sessions = json.loads(f.attrs["sessions"])
        assert [s["metadata"]["who"] for s in sessions] == ["child", "resume"]


def test_resume_appends_and_keeps_first_metadata(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    with DataStore(path, metadata={"run": 1}, bench_config='{"bench": "a"}') as ds:
        _write_n(ds, 10)
    with DataStore(path, metadata={"run": 2}) as ds:
        _write_n(ds, 5, start=10)
    rec = read_records(path)
    np.testing.assert_array_equal(rec["time"], 0.5 * np.arange(15))
    with DataStore.open_read(path) as f:
        assert json.loads(f.attrs["metadata"]) == {"run": 1}
        assert len(json.loads(f.attrs["sessions"])) == 2
    with pytest.raises(DataStoreError, match="exists already"):
        DataStore(path, mode="x")
    with DataStore(path, mode="w") as ds:  # explicit truncation
        pass
    assert read_records(path)["time"].size == 0
    (tmp_path / "other.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DataStoreError):
        DataStore(tmp_path / "other.h5")


def test_csv_export_matches(tmp_path: Path) -> None:
    path = tmp_path / "c.h5"
    with DataStore(path) as ds:
        _write_n(ds, 23)
        ds.record("mvm", time=1.0, voltage=0.3, current=1.234567890123e-5)
    csv_path = export_csv(path, tmp_path / "c.csv")
    rec = read_records(path)
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24
    for k, row in enumerate(rows):
        assert row["operation"] == rec["operation"][k]
        assert int(row["row"]) == rec["row"][k] and int(row["col"]) == rec["col"][k]
        assert bool(int(row["compliance"])) == bool(rec["compliance"][k])
        for f in ("time", "voltage", "pulse_width", "read_voltage", "current", "conductance"):
            a, b = float(row[f]), float(rec[f][k])
            assert (a == b) or (np.isnan(a) and np.isnan(b)), (k, f, a, b)


def test_iv_group_matches_calibration_reader(tmp_path: Path) -> None:
    path = tmp_path / "iv.h5"
    v = np.array([0.0, 1.0, 2.0, 1.0, 0.0, -1.0, 0.0])
    with DataStore(path) as ds:
        w = ds.begin_iv(3, 4, v, cycles=3, compliance_a=25e-6, name="r3c4")
        for c in range(2):  # two of three cycles measured
            for k, vk in enumerate(v):
                w.point(SweepPoint(c, k, vk, 1e-6 * vk * (c + 1), vk >= 2.0, 0.1 * k))
        # half-written sweep visible while the file is open (SWMR reader)
        live = read_iv_groups(path, "r3c4")["r3c4"]
        assert np.isnan(live["current"][:, 2]).all()
    got = read_iv_groups(path)["r3c4"]
    np.testing.assert_array_equal(got["voltage"], v)
    np.testing.assert_array_equal(got["current"][:, 1], 2e-6 * v)
    assert np.isnan(got["current"][:, 2]).all()
    assert got["compliance"][2, 0] and not got["compliance"][1, 0]
    assert (got["row"], got["col"], got["compliance_a"]) == (3, 4, 25e-6)
    assert got["cycles"] == [1, 2, 3] and got["n_cycles"] == 3
    rec = read_records(path)
    assert (rec["operation"] == "iv").sum() == 14
    # the calibration reader accepts the file
    data = read_iv_file(path, name="/iv/r3c4")
    np.testing.assert_array_equal(data.voltage, v)
    np.testing.assert_array_equal(data.currents[:, 0], 1e-6 * v)
    assert data.cycle_numbers == [1, 2, 3]
    assert data.cycles_with_data == [1, 2]


def test_mvm_datasets_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    with DataStore(path) as ds:
        ds.record_mvm(np.ones((3, 10)), 2 * np.ones((3, 10)), time=1.0)
        ds.record_mvm(np.zeros((1, 10)), np.zeros((1, 10)), time=2.0)
        with pytest.raises(DataStoreError, match="differs"):
            ds.record_mvm(np.ones((1, 9)), np.ones((1, 10)), time=3.0)
        with pytest.raises(ValueError, match="unknown operation"):
            ds.record("erase", time=0.0)
    m = read_mvm(path)
    np.testing.assert_array_equal(m["time"], [1.0, 1.0, 1.0, 2.0])
    assert m["inputs"].shape == (4, 10) and m["outputs"][0, 0] == 2.0
    ds.close()  # twice is fine
    with pytest.raises(DataStoreError, match="closed"):
        ds.record("read", time=0.0)


def test_clear_write_flags_on_clean_file_is_noop(tmp_path: Path) -> None:
    path = tmp_path / "n.h5"
    with DataStore(path) as ds:
        _write_n(ds, 2)
    assert clear_write_flags(path) == 0
    assert read_records(path)["time"].size == 2
    assert os.path.getsize(path) > 0


def test_fsync_mode_writes_the_same(tmp_path: Path) -> None:
    with DataStore(tmp_path / "s.h5", fsync=True, flush_every=4) as ds:
        _write_n(ds, 10)
        assert ds.flushed_count == 8
    rec = read_records(tmp_path / "s.h5")
    np.testing.assert_array_equal(rec["time"], 0.5 * np.arange(10))


def test_lookup3_known_vectors() -> None:
    """HDF5's metadata checksum is Bob Jenkins' hashlittle (vectors from lookup3.c's driver5)."""
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


def test_to_jsonable_numpy_paths_and_non_finite() -> None:
    import enum

    class Mode(enum.Enum):
        FAST = "fast"

    value = {
        1: [np.float32(1.5), np.int64(3), np.bool_(True), Path("/x/y"), Mode.FAST],
        "a": np.array([[1.0, np.nan], [np.inf, 2.0]]),
        "t": (float("-inf"), "s", None),
    }
    kept = to_jsonable(value)
    assert kept["1"] == [1.5, 3, True, "/x/y", "fast"]
    assert [type(x) for x in kept["1"][:3]] == [float, int, bool]  # numpy scalars as Python's
    assert kept["a"][0][0] == 1.0 and np.isnan(kept["a"][0][1])
    assert kept["a"][1] == [float("inf"), 2.0]
    assert kept["t"] == [float("-inf"), "s", None]
    assert to_jsonable(value, finite_only=True) == {
        "1": [1.5, 3, True, "/x/y", "fast"],
        "a": [[1.0, None], [None, 2.0]],
        "t": [None, "s", None],
    }
    json.dumps(to_jsonable(value, finite_only=True), allow_nan=False)  # strict JSON


# ------------------------------------------------------------------ a reader beside the writer

_READER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from crossbar.datastore import open_read
    f = open_read({path!r})  # opened once, kept open for the whole run
    for line in sys.stdin:   # one line per step of the writer
        if line.strip() == "reopen":
            f.close()
            f = open_read({path!r})
        d = f["records"]
        d.refresh()
        print(d.shape[0], float(d[-1]["time"]) if d.shape[0] else -1, sorted(f["iv"]), flush=True)
    """
)


def test_a_reader_in_another_process_sees_every_record_while_the_writer_restructures(
    tmp_path: Path,
) -> None:
    """The GUI's live view or a script opens the file while a run writes it: every record
    flushed so far is visible at each step, across the writer's structural changes (a new I-V
    group, the first MVM datasets, the aborted mark) that close and reopen the file."""
    path = tmp_path / "live.h5"
    ds = DataStore(path, flush_every=4)
    _write_n(ds, 4)
    ds.flush()
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER.format(repo=str(REPO), path=str(path))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def seen(command: str = "step") -> tuple[int, float, list]:
        reader.stdin.write(command + "\n")
        reader.stdin.flush()
        n, last, *groups = reader.stdout.readline().split(maxsplit=2)
        return int(n), float(last), groups

    try:
        assert seen()[:2] == (4, 1.5)
        w = ds.begin_iv(0, 1, [0.0, 0.5, 1.0], cycles=1, compliance_a=1e-4, name="s1")
        w.point(SweepPoint(0, 0, 0.0, 0.0, False, 10.0))
        _write_n(ds, 7, start=4)
        ds.flush()
        assert seen()[:2] == (4 + 1 + 7, 5.0)  # the sweep point and the 7 records, in order
        ds.record_mvm(np.ones((3, 10)), np.zeros((3, 10)), time=11.0)
        ds.record("mvm", time=11.0, voltage=1.0, read_voltage=1.0, current=0.0)
        ds.flush()
        assert seen()[:2] == (13, 11.0)
        ds.mark_aborted("test", bench_time=12.0)
        _write_n(ds, 1, start=30)
        ds.flush()
        assert seen()[:2] == (14, 15.0)
        n, _, groups = seen("reopen")  # objects made after it opened appear on reopening
        assert n == 14 and "s1" in groups[0]
    finally:
        reader.stdin.close()
        reader.wait(30)
        ds.close()
    assert reader.returncode == 0, reader.stderr.read()
    with DataStore.open_read(path) as f:
        mark = json.loads(f.attrs["aborted"])
    assert mark[0]["reason"] == "test" and mark[0]["bench_time_s"] == 12.0
    assert mark[0]["last_record"]["index"] == 12 and mark[0]["last_record"]["operation"] == "mvm"


def test_a_second_writer_is_refused_without_file_locks(tmp_path: Path) -> None:
    """The writer opens the file with HDF5's POSIX lock off (so readers may be open); a second
    writer is still refused, by the superblock's "open for writing" flag."""
    path = tmp_path / "one-writer.h5"
    second = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from crossbar.datastore import DataStore, DataStoreError
        try:
            DataStore({str(path)!r})
        except DataStoreError as exc:
            print("refused:", exc)
        """
    )
    with DataStore(path) as ds:
        _write_n(ds, 3)
        ds.flush()
        out = subprocess.run([sys.executable, "-c", second], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("refused:") and "another program" in out.stdout
    assert read_records(path)["time"].size == 3


# ------------------------------------------------------------------ why lookup3 stays


def _crashed_file(path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        from crossbar.datastore import DataStore
        ds = DataStore({str(path)!r})
        ds.record("read", time=1.0, row=0, col=0, voltage=0.2, read_voltage=0.2,
                  current=1e-6, conductance=5e-6)
        ds.flush()
        os._exit(9)
        """
    )
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 9


def test_no_supported_python_api_clears_a_crashed_writers_flags(tmp_path: Path) -> None:
    """Why crossbar.datastore carries its own lookup3: h5py cannot append to a file whose
    writer died (every public open mode, with or without locks, is refused), and it exposes no
    way to clear the superblock's status flags (HDF5 keeps that in the private
    "clear_status_flags" property that only its command-line tool h5clear sets). h5clear is part
    of the HDF5 C distribution, not of any Python package, so a lab PC with the Python stack
    cannot be assumed to have it."""
    path = tmp_path / "crashed.h5"
    _crashed_file(path)
    for kw in (
        {},
        {"locking": False},
        {"libver": "latest"},
        {"libver": "latest", "locking": False},
    ):
        for mode in ("a", "r+"):
            with pytest.raises(OSError, match="already open for write"):
                h5py.File(path, mode, **kw)
    assert not [n for n in dir(h5py.h5p.PropFAID) if "clear" in n.lower() or "status" in n]
    assert not [n for n in dir(h5py.h5f) if "clear" in n.lower()]
    assert clear_write_flags(path) == 5  # our patch: write + SWMR-write flags cleared
    with h5py.File(path, "a") as f:  # HDF5 checks the superblock checksum we wrote
        assert f["records"].shape == (1,)


@pytest.mark.skipif(
    not __import__("shutil").which("h5clear"),
    reason="h5clear (Debian package hdf5-tools, installed by scripts/install.sh) is not on PATH",
)
def test_the_patch_is_byte_identical_to_h5clear(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.h5", tmp_path / "theirs.h5"
    _crashed_file(ours)
    theirs.write_bytes(ours.read_bytes())
    clear_write_flags(ours)
    subprocess.run(["h5clear", "-s", str(theirs)], check=True, timeout=60)
    assert ours.read_bytes() == theirs.read_bytes()
