"""Fault injection: every operation × fault on the simulated bench, through the real CLI.

One test per cell of the table (operation ∈ sweep, read-map, program, infer × fault ∈ timeout,
garbled, connection_lost, error_code, compliance; the harness is :mod:`bench.faults`): the fault
is placed in the middle of the operation (a clean dry run measures its transaction window), the
CLI runs in-process with a bench TOML that configures it, and the test asserts

* the CLI's exit code and ONE stderr line naming the instrument, the command and the fault;
* records lost = 0: every reading / sweep point / MVM vector the backend handed on before the
  fault is in the HDF5 file (and nothing else);
* the end state on the twins: the 6487 source off (its command stream ends with
  ``SOUR:VOLT:STAT OFF``), both AWG channels stopped at 0 V, the switch matrix released (last DIO
  word has ENABLE low; the ShiftRegisterMatrix model shows every line FLOAT).

Compliance: a sweep records flagged points and completes (exit 0); a read map or a
program-and-verify read stops with ComplianceError (exit 1) after recording the reading; in an
inference run it is the programming stage's verify reads that can hit it (the AD2 has no current
limit; the MVM's analogue, a clipped TIA capture, is tested directly below).

A lost 6487 cannot be switched off over its dead bus: that cell asserts the array is isolated
(matrix released), the switch-off was attempted, and the message says so.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest
from fakes import sim_config

from bench.faults import (
    FAULTS,
    PROGRAM_TARGETS,
    Probe,
    Workspace,
    fault_instrument,
    run_case,
    run_cli,
    write_bench,
)
from crossbar.core import Crossbar
from crossbar.datastore import DataStore, read_mvm, read_records
from crossbar.policy import CrossbarPolicy
from crossbar.programming import converged_cells
from instruments.errors import ComplianceError, InstrumentError
from lab import open_backend

NAMES = {"keithley": "Keithley 6487", "ad2": "Analog Discovery 2"}
FAULT_WORDS = {
    "timeout": ("timeout", "timed out"),
    "garbled": ("unparseable", "garbled"),
    "connection_lost": ("connection lost", "Device communication failure"),
    "error_code": ('-222,"Parameter data out of range"', "InvalidParameter0"),
    "compliance": ("in compliance",),
}
ENABLE_PIN = 3


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("faults"))


def _cells() -> list:
    out = []
    for op in ("sweep", "read-map", "program", "infer"):
        for fault in FAULTS:
            marks = [pytest.mark.slow] if op == "infer" else []
            out.append(pytest.param(op, fault, marks=marks, id=f"{op}-{fault}"))
    return out


def assert_one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def assert_safe_end(r) -> None:
    """Outputs off and the array isolated, on the twins' recorded streams and state."""
    h = r.handles
    # switch matrix: the shift-register model shows every line floating, ENABLE low
    assert h.sim_bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)
    assert not h.sim_bench.matrix.enabled
    assert h.sim_bench.awg == [0.0, 0.0]  # both AWG buses at 0 V
    ad2_lost = r.fault == "connection_lost" and r.instrument == "ad2"
    calls = h.dwf_library.calls
    if not ad2_lost:
        dio = [args for name, args in calls if name == "digitalIO.outputSet"]
        assert dio[-1][0] & (1 << ENABLE_PIN) == 0  # the last DIO word released the matrix
        for ch in (0, 1):
            conf = [args for name, args in calls if name == "analogOut.configure" and args[0] == ch]
            assert conf[-1] == (ch, 0)  # stopped
            assert not h.dwf_library.device.analogOut.channel_state[ch].enabled
    else:  # unplugged: nothing answers; its outputs are dead (see sim_backends.ad2_twin)
        assert calls[-1][0] != "" and "Analog Discovery 2 could not be reached" in r.message
    k = h.adapter
    if r.fault == "connection_lost" and r.instrument == "keithley":
        # the bus is dead: the switch-off was attempted, the array is isolated, and the
        # message tells the operator that the 6487 could not be reached
        assert "SOUR:VOLT:STAT OFF" in k.failed
        assert "Keithley 6487 could not be reached to switch it off" in r.message
    else:
        assert not k.output_on
        assert [c for c in k.commands if c.startswith("SOUR:VOLT:STAT")][-1] == "SOUR:VOLT:STAT OFF"
        assert k.commands[-1] == "SYST:ZCH ON"  # shutdown completed


def assert_no_records_lost(r, *, require_data: bool = True) -> None:
    assert r.records_lost == 0, (r.measured, r.in_file)
    assert r.records_extra == 0, (r.measured, r.in_file)
    if require_data:
        main = {k: v for k, v in r.measured.items() if k not in ("iv-points", "mvm-rows")}
        assert sum(main.values()) > 0  # the fault came mid-run, after some data


@pytest.mark.parametrize(("operation", "fault"), _cells())
def test_fault_cell(ws: Workspace, operation: str, fault: str) -> None:
    r = run_case(ws, operation, fault)
    assert r.fired, "the planned fault did not fire"
    assert_no_records_lost(r)
    assert_safe_end(r)
    if operation == "sweep" and fault == "compliance":
        # compliance is normal in a sweep: flagged points, the sweep completes
        assert r.exit_code == 0 and r.stderr == ""
        assert r.measured["iv"] == 2 * 241  # both cycles
        flags = read_records(r.data)["compliance"]
        n = int(np.count_nonzero(flags))
        assert n > 241 // 2  # every point after the fault (and the SET branch before it)
        assert f"{n} point(s) in compliance" in r.stdout
        return
    assert r.exit_code == 1
    line = assert_one_line(r.stderr)
    inst = NAMES[r.instrument]
    assert line.startswith(f"xbar {operation}: instrument fault: {inst}: '")
    assert re.search(r": '[^']+' -> ", line)  # the command
    assert any(w in line for w in FAULT_WORDS[fault]), line
    if fault == "compliance":
        assert "ComplianceError" not in line and "current limit" in line
        rec = read_records(r.data)
        assert rec["compliance"][-1]  # the reading that hit the limit is recorded, flagged


@pytest.mark.parametrize("operation", ["sweep", "read-map", "program"])
def test_other_instrument_connection_lost(ws: Workspace, operation: str) -> None:
    """Losing the AD2 (routing, AWGs) during a 6487 operation: the 6487 is switched off, the
    unplugged AD2's DIO pins float so the matrix's ENABLE pull-down releases every line."""
    r = run_case(ws, operation, "connection_lost", instrument="ad2")
    assert r.fired and r.exit_code == 1
    assert_no_records_lost(r, require_data=False)
    assert_safe_end(r)
    line = assert_one_line(r.stderr)
    assert "Analog Discovery 2: '" in line and "Device communication failure" in line


@pytest.mark.slow
def test_inference_keithley_connection_lost(ws: Workspace) -> None:
    r = run_case(ws, "infer", "connection_lost", instrument="keithley")
    assert r.fired and r.exit_code == 1
    assert_no_records_lost(r)
    assert_safe_end(r)


@pytest.mark.parametrize("fault", FAULTS)
def test_program_resumes_after_fault(ws: Workspace, tmp_path: Path, fault: str) -> None:
    """Fault mid-map, then ``xbar program --resume`` on a healthy bench completes the map from
    the data file: converged cells are skipped, the union is the whole map."""
    r = run_case(ws, "program", fault, run_dir=tmp_path / "run")
    assert r.exit_code == 1
    targets = np.loadtxt(ws.targets, delimiter=",")
    wanted = set(PROGRAM_TARGETS)
    before = read_records(r.data)
    done_before = converged_cells(before, targets, tol=0.05)
    assert done_before < wanted  # the fault came mid-map
    per_cell = _records_per_cell(before)

    clean = write_bench(tmp_path / "clean.toml")
    argv = ["program", "--bench", str(clean), "--targets", str(ws.targets), "--data", str(r.data)]
    code, out, err = run_cli([*argv, "--resume"])
    assert code == 0, err
    assert f"{len(done_before)} of {len(wanted)} cells already converged" in out
    after = read_records(r.data)
    assert converged_cells(after, targets, tol=0.05) == wanted  # the union is the whole map
    grown = _records_per_cell(after)
    for cell in done_before:  # skipped, not programmed again
        assert grown[cell] == per_cell[cell]
    for cell in wanted - done_before:
        assert grown[cell] > per_cell.get(cell, 0)
    # the first run's records are still there, in order, untouched
    n = before["time"].size
    assert np.array_equal(after["conductance"][:n], before["conductance"][:n])
    # a second resume has nothing left to do
    code, out, _ = run_cli([*argv, "--resume", "--json"])
    summary = json.loads(out)
    assert code == 0 and summary["programmed"] == 0 and summary["converged_total"] == len(wanted)


def _records_per_cell(rec: dict) -> dict[tuple[int, int], int]:
    sel = rec["operation"] == "program-verify"
    cells = zip(rec["row"][sel].tolist(), rec["col"][sel].tolist())
    out: dict[tuple[int, int], int] = {}
    for cell in cells:
        out[cell] = out.get(cell, 0) + 1
    return out


# ------------------------------------------------------------------ MVM faults, directly


@pytest.mark.parametrize("fault", ["timeout", "garbled", "connection_lost", "error_code"])
def test_mvm_batches_before_an_ad2_fault_are_all_recorded(tmp_path: Path, fault: str) -> None:
    """Crossbar.mvm in chunks: the chunks measured before an AD2 fault are in the file."""
    from bench.faults import fault_plan

    x = np.random.default_rng(3).uniform(0.0, 0.3, (24, 10))
    with Probe():
        clean = open_backend("sim")
        a0 = clean.sim_handles.dwf_library.faults.count
        Crossbar(clean).mvm(x[:12], batch_size=4)  # calls per 12 vectors
        per12 = clean.sim_handles.dwf_library.faults.count - a0
        clean.close()
    cfg = sim_config(simulation__faults={"ad2": fault_plan(fault, a0 + per12 + per12 // 3, "ad2")})
    data = tmp_path / "mvm.h5"
    with Probe() as probe:
        b = open_backend(cfg)
        xb = Crossbar(b, datastore=DataStore(data))
        with pytest.raises(InstrumentError) as info, xb:
            xb.mvm(x, batch_size=4)
    assert "Analog Discovery 2" in str(info.value)
    assert 12 <= probe.mvm_vectors < 24
    rec = read_records(data)
    assert int(np.sum(rec["operation"] == "mvm")) == probe.mvm_vectors
    m = read_mvm(data)
    assert np.array_equal(m["inputs"], x[: probe.mvm_vectors])
    h = b.sim_handles
    assert h.sim_bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)
    assert h.sim_bench.awg == [0.0, 0.0] and not h.adapter.output_on


def test_mvm_clipped_tia_is_a_compliance_error(tmp_path: Path) -> None:
    """The MVM's compliance hit: a column current beyond the TIA/scope range (here a 100 MΩ
    TIA) clips the capture; the MVM stops with ComplianceError instead of a wrong number."""
    cfg = sim_config(wiring__tia_gain_ohm=1e8)
    data = tmp_path / "clip.h5"
    b = open_backend(cfg)
    xb = Crossbar(b, datastore=DataStore(data))
    with pytest.raises(ComplianceError) as info, xb:
        xb.mvm(np.full((3, 10), 0.3))
    msg = str(info.value)
    assert msg.startswith("Analog Discovery 2: 'analogIn.statusData(") and "clipped" in msg
    assert read_mvm(data)["inputs"].shape[0] == 0  # nothing wrong was recorded
    assert b.sim_handles.sim_bench.awg == [0.0, 0.0]
    assert b.sim_handles.sim_bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)


def test_garbled_capture_is_refused_not_returned() -> None:
    """A garbled scope capture (random samples) is refused: GarbledReply naming the AD2."""
    from instruments.errors import GarbledReply

    b = open_backend("sim")
    a0 = b.sim_handles.dwf_library.faults.count
    b.close()
    cfg = sim_config(simulation__faults={"ad2": {"garbled_after": a0, "seed": 2}})
    with open_backend(cfg) as b2, pytest.raises(GarbledReply) as info:
        CrossbarPolicy(b2).mvm(np.full((1, 10), 0.1))
    assert "not a DC level" in str(info.value) and info.value.instrument == "Analog Discovery 2"


# ------------------------------------------------------------------ signals and the bench table


def test_sigterm_stops_with_outputs_off_and_data_kept(tmp_path: Path, monkeypatch) -> None:
    """SIGTERM (a scheduler stopping an overnight job) is handled like Ctrl-C: outputs off,
    data flushed, one line, exit 130."""
    orig = CrossbarPolicy._reading
    calls = {"n": 0}

    def reading(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 20:
            os.kill(os.getpid(), signal.SIGTERM)
        return orig(self, *a, **k)

    monkeypatch.setattr(CrossbarPolicy, "_reading", reading)
    data = tmp_path / "map.h5"
    with Probe() as probe:
        code, out, err = run_cli(["read-map", "--bench", "sim", "--data", str(data)])
    assert code == 130
    assert assert_one_line(err) == (
        "xbar read-map: interrupted by signal SIGTERM; outputs switched off"
    )
    assert int(np.sum(read_records(data)["operation"] == "read")) == 19
    h = probe.backend.sim_handles
    assert not h.adapter.output_on and h.sim_bench.routing()[0] == ["FLOAT"] * 10
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_bench_faults_table_json() -> None:
    code, out, err = run_cli(
        ["bench", "faults", "--json", "--operations", "read-map", "--faults", "timeout,compliance"]
    )
    assert code == 0 and err == "", err  # the runs' own warnings stay inside their runs
    rows = json.loads(out)
    cases = {r["case"] for r in rows}
    assert cases == {"read-map-timeout", "read-map-compliance"}
    lost = [r for r in rows if r["metric"] == "records_lost"]
    assert len(lost) == 2 and all(r["value"] == 0 for r in lost)
    assert all(r["value"] == 1 for r in rows if r["metric"] == "outputs_off")
    assert {r["value"] for r in rows if r["metric"] == "exit_code"} == {1}


def test_fault_instrument_choice() -> None:
    assert fault_instrument("infer", "compliance") == "keithley"
    assert fault_instrument("infer", "timeout") == "ad2"
    assert fault_instrument("read-map", "garbled") == "keithley"


def test_program_resumes_after_the_process_is_killed(ws: Workspace, tmp_path: Path) -> None:
    """SIGKILL mid-map (no cleanup at all): every verify read is flushed as it is made, so the
    file holds the run up to the kill; ``--resume`` recovers the file left open and completes
    the map."""
    import subprocess
    import sys
    import time

    data = tmp_path / "killed.h5"
    argv = ["program", "--bench", "sim", "--targets", str(ws.targets), "--data", str(data)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "xbar", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        seen = 0
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if data.exists():
                try:
                    seen = int(np.sum(read_records(data)["operation"] == "program-verify"))
                except Exception:  # noqa: BLE001 - the file is being created
                    continue
                if seen >= 40:
                    break
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.kill()  # SIGKILL: no handler, no cleanup, no flush
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = read_records(data)
    n_killed = int(np.sum(killed["operation"] == "program-verify"))
    assert n_killed >= seen >= 40  # everything seen on disk before the kill is still there
    targets = np.loadtxt(ws.targets, delimiter=",")
    done = converged_cells(killed, targets, tol=0.05)
    assert done < set(PROGRAM_TARGETS)
    code, out, err = run_cli([*argv, "--resume"])
    assert code == 0, err
    after = read_records(data)
    assert converged_cells(after, targets, tol=0.05) == set(PROGRAM_TARGETS)
    assert np.array_equal(after["conductance"][:n_killed], killed["conductance"][:n_killed])
