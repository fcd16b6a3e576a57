"""The Crossbar facade on the ideal test double: every operation recorded, abort, shutdown."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from fakes import IdealCrossbar

from crossbar.backend import OperationAborted
from crossbar.core import Crossbar
from crossbar.datastore import DataStore, read_iv_groups, read_mvm, read_records
from crossbar.programming import ProgramReport


@pytest.fixture
def bench(tmp_path: Path):
    g = np.linspace(2e-6, 60e-6, 12).reshape(3, 4)
    xb = IdealCrossbar(g.copy())
    ds = DataStore(tmp_path / "run.h5", metadata={"test": True}, bench_config={"kind": "ideal"})
    return xb, ds, Crossbar(xb, datastore=ds), tmp_path / "run.h5", g


def test_read_cell_and_map_recorded(bench) -> None:
    xb, ds, cb, path, g = bench
    r = cb.read_cell(1, 2, v_read=0.1)
    # the ideal array's differential V/3 read: exact to floating-point rounding
    assert r.conductance == pytest.approx(g[1, 2], rel=1e-12)
    assert r.current == pytest.approx(0.1 * g[1, 2])
    progress = []
    m = cb.read_map(v_read=0.2, progress=lambda p: progress.append((p.done, p.total)))
    np.testing.assert_allclose(m, g, rtol=1e-12)
    assert progress[-1] == (12, 12) and len(progress) == 12
    cb.close()
    rec = read_records(path)
    assert rec["time"].size == 13
    assert set(rec["operation"]) == {"read"}
    # a map is read column by column (the differential baseline once per column)
    np.testing.assert_allclose(rec["conductance"][1:], g.T.ravel(), rtol=1e-12)
    np.testing.assert_array_equal(rec["row"][1:], np.tile(np.arange(3), 4))
    np.testing.assert_array_equal(rec["col"][1:], np.repeat(np.arange(4), 3))
    np.testing.assert_array_equal(rec["read_voltage"], [0.1] + [0.2] * 12)
    assert np.all(np.diff(rec["time"]) > 0)
    assert xb.shutdown_calls == 1


def test_pulse_with_read_after(bench) -> None:
    xb, ds, cb, path, g = bench
    before = xb.g[0, 0]
    r = cb.pulse(0, 0, 3.4, 1e-3)
    assert r is not None and r.conductance > before
    assert cb.pulse(0, 1, -2.5, 2e-3, read_after=False) is None
    cb.close()
    rec = read_records(path)
    assert list(rec["operation"]) == ["pulse", "pulse"]
    assert (rec["voltage"][0], rec["pulse_width"][0], rec["read_voltage"][0]) == (3.4, 1e-3, 0.2)
    assert rec["conductance"][0] == r.conductance
    assert rec["voltage"][1] == -2.5 and np.isnan(rec["conductance"][1])


def test_iv_sweep_recorded_point_by_point(bench) -> None:
    xb, ds, cb, path, g = bench
    v = [0.0, 0.5, 1.0, 0.5, 0.0]
    seen = []
    res = cb.iv_sweep(2, 3, v, compliance=25e-6, cycles=2, name="r2c3", on_point=seen.append)
    assert len(seen) == 10
    np.testing.assert_allclose(res.current[:, 0], np.minimum(np.array(v) * g[2, 3], 25e-6))
    assert res.compliance[2, 0]  # 1 V × 60 µS = 60 µA > 25 µA
    cb.close()
    iv = read_iv_groups(path)["r2c3"]
    np.testing.assert_array_equal(iv["current"], res.current)
    assert iv["compliance_a"] == 25e-6 and iv["nplc"] == 1.0 and iv["biasing"] == "ground"
    rec = read_records(path)
    assert (rec["operation"] == "iv").sum() == 10


def test_program_cell_and_map_recorded(bench) -> None:
    xb, ds, cb, path, g = bench
    rep = cb.program_cell(0, 0, 20e-6)
    assert rep.converged
    targets = np.full((3, 4), np.nan)
    targets[1, :2] = [5e-6, 40e-6]
    done = []
    mrep = cb.program_map(targets, progress=lambda p: done.append(p.done))
    assert isinstance(mrep, ProgramReport) and mrep.fraction_converged == 1.0
    assert done == [0, 1, 2]
    cb.close()
    rec = read_records(path)
    pv = rec["operation"] == "program-verify"
    # one record per read: the initial read of each cell plus one per pulse
    assert pv.sum() == 3 + rep.pulses + mrep.total_pulses
    # the last record of cell (0,0) is its final verify read
    cell00 = pv & (rec["row"] == 0) & (rec["col"] == 0)
    assert rec["conductance"][cell00][-1] == rep.final
    # the initial read has no pulse; then each pulse's width as applied (adaptive: a fifth of
    # the nominal 1 ms first)
    assert rec["pulse_width"][cell00][0] == 0.0
    assert list(rec["pulse_width"][cell00][1:]) == [w for _, w, _ in rep.history]
    assert rep.history[0][1] == pytest.approx(2e-4)


def test_form_raises_conductance(tmp_path: Path) -> None:
    xb = IdealCrossbar(np.full((2, 2), 1e-9), g_off=1e-9, g_on=1e-4, v_set=3.6)
    with DataStore(tmp_path / "f.h5") as ds:
        cb = Crossbar(xb, datastore=ds)
        rep = cb.form(1, 1, v_start=3.0, v_step=0.25, compliance=1e-4)
    assert rep.formed and rep.g_final >= 10 * rep.g_initial
    # 3.0, 3.25, 3.5 do nothing (threshold 3.6); 3.75 V forms
    assert rep.pulses == 4 and rep.v_form == pytest.approx(3.75)
    assert [round(a, 2) for a, _, _ in rep.history] == [3.0, 3.25, 3.5, 3.75]
    rec = read_records(tmp_path / "f.h5")
    assert list(rec["operation"]) == ["form"] * 5
    np.testing.assert_allclose(rec["voltage"], [0.0, 3.0, 3.25, 3.5, 3.75])
    # a stuck cell never forms: the train stops at max_pulses and never exceeds v_max
    xb2 = IdealCrossbar(np.full((1, 1), 1e-9), stuck=[(0, 0)])
    rep2 = Crossbar(xb2).form(0, 0, max_pulses=8, v_max=4.0)
    assert not rep2.formed and rep2.pulses == 8
    assert max(a for _, _, a, _ in xb2.pulses) <= 4.0


def test_mvm_batches_recorded(bench) -> None:
    xb, ds, cb, path, g = bench
    rng = np.random.default_rng(3)
    v = rng.uniform(-0.3, 0.3, size=(10, 3))
    prog = []
    out = cb.mvm(v, batch_size=4, progress=lambda p: prog.append((p.done, p.total)))
    np.testing.assert_allclose(out, v @ g, rtol=1e-12)
    assert prog == [(4, 10), (8, 10), (10, 10)] and xb.mvm_calls == 3
    one = cb.mvm(v[0])
    assert one.shape == (4,)
    cb.close()
    m = read_mvm(path)
    np.testing.assert_array_equal(m["inputs"][:10], v)
    np.testing.assert_allclose(m["outputs"][:10], v @ g, rtol=1e-12)
    rec = read_records(path)
    assert (rec["operation"] == "mvm").sum() == 11
    np.testing.assert_allclose(rec["current"][:10], (v @ g).sum(axis=1), rtol=1e-12)


def test_abort_mid_map_switches_off_and_raises(bench) -> None:
    xb, ds, cb, path, g = bench

    def hook(row, col, amp, width):
        if (row, col) == (0, 2):
            cb.abort()  # e.g. the GUI's Stop button, from another thread

    xb.on_pulse_hook = hook
    targets = np.full((3, 4), 50e-6)
    with pytest.raises(OperationAborted) as exc:
        cb.program_map(targets)
    partial = exc.value.partial
    assert isinstance(partial, ProgramReport) and partial.aborted
    assert [(c.row, c.col) for c in partial.cells] == [(0, 0), (0, 1), (0, 2)]
    assert partial.cells[-1].aborted and partial.cells[-1].pulses == 1
    assert xb.shutdown_calls == 1  # outputs off
    assert not cb.abort_requested  # consumed
    assert xb.g[2, 3] == g[2, 3]
    # the flushed data holds every step made before the stop
    rec = read_records(path)
    assert (rec["operation"] == "program-verify").sum() == 3 + sum(c.pulses for c in partial.cells)
    # resume: skip what was done
    xb.on_pulse_hook = None
    done = {(c.row, c.col) for c in partial.cells if c.converged}
    rep = cb.program_map(targets, skip=done)
    assert len(rep.cells) == 12 - len(done)


def test_abort_read_map_and_mvm_partial(bench) -> None:
    xb, ds, cb, path, g = bench
    n = [0]

    def progress(p):
        n[0] = p.done
        if p.done == 5:
            cb.abort()

    with pytest.raises(OperationAborted) as exc:
        cb.read_map(progress=progress)
    part = exc.value.partial
    assert np.isfinite(part).sum() == 5 and n[0] == 5
    first5 = part.T.ravel()[:5]  # read column by column
    np.testing.assert_allclose(first5, g.T.ravel()[:5], rtol=1e-12)
    cb.abort()
    with pytest.raises(OperationAborted) as exc:
        cb.mvm(np.zeros((3, 3)))
    assert np.isnan(exc.value.partial).all()
    assert xb.shutdown_calls == 2


def test_abort_from_another_thread_during_iv(bench) -> None:
    xb, ds, cb, path, g = bench
    started = threading.Event()
    go_on = threading.Event()

    def on_point(p):
        if p.index == 3:
            started.set()
            go_on.wait(5)

    t = threading.Thread(target=lambda: (started.wait(5), cb.abort(), go_on.set()))
    t.start()
    with pytest.raises(OperationAborted) as exc:
        cb.iv_sweep(0, 0, np.linspace(0, 1, 20), compliance=1e-3, on_point=on_point)
    t.join()
    res = exc.value.partial
    assert np.isfinite(res.current[:, 0]).sum() == 4


def test_errors_and_ctrl_c_switch_outputs_off(tmp_path: Path) -> None:
    xb = IdealCrossbar(shape=(2, 2))
    cb = Crossbar(xb)
    with pytest.raises(IndexError):
        cb.read_cell(5, 0)
    assert xb.shutdown_calls == 1

    def interrupt(*a):
        raise KeyboardInterrupt

    xb.on_pulse_hook = interrupt
    with pytest.raises(KeyboardInterrupt):
        with Crossbar(xb) as cb2:
            cb2.pulse(0, 0, 3.0, 1e-3)
    assert xb.shutdown_calls == 3  # once for the failed op, once by the context manager
    from instruments.errors import SafetyLimitError

    with pytest.raises(SafetyLimitError):
        cb.pulse(0, 0, 7.0, 1e-3)
    assert xb.pulses == [(0, 0, 3.0, 1e-3)]  # the refused pulse never reached the array


def test_resume_program_map_from_the_data_file(tmp_path: Path) -> None:
    from crossbar.programming import converged_cells

    path = tmp_path / "resume.h5"
    targets = np.full((3, 4), 30e-6)
    xb = IdealCrossbar(shape=(3, 4))

    def hook(row, col, amp, width):
        if (row, col) == (1, 1):
            raise KeyboardInterrupt  # the run dies mid-map

    xb.on_pulse_hook = hook
    with DataStore(path) as ds, pytest.raises(KeyboardInterrupt):
        Crossbar(xb, datastore=ds).program_map(targets)
    done = converged_cells(read_records(path), targets)
    assert done == {(0, 0), (0, 1), (0, 2), (0, 3), (1, 0)}
    xb.on_pulse_hook = None
    n_before = len(xb.pulses)
    with DataStore(path) as ds:  # append to the same file
        rep = Crossbar(xb, datastore=ds).program_map(targets, skip=done)
    assert [(c.row, c.col) for c in rep.cells][0] == (1, 1) and len(rep.cells) == 7
    assert all(p[:2] not in done for p in xb.pulses[n_before:])
    assert converged_cells(read_records(path), targets) == {
        (r, c) for r in range(3) for c in range(4)
    }


def test_iv_sweep_refused_before_touching_the_file(bench) -> None:
    from instruments.errors import SafetyLimitError

    xb, ds, cb, path, g = bench
    with pytest.raises(SafetyLimitError):
        cb.iv_sweep(0, 0, [0.0, 7.0], compliance=1e-4, name="bad")
    with pytest.raises(SafetyLimitError):
        cb.iv_sweep(0, 0, [0.0, 1.0], compliance=1.0, name="bad")
    assert "bad" not in ds.file["iv"]
