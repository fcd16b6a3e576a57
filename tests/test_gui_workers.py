"""The GUI's worker machinery, settings and sweep staircase (no bench needed)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossbar.backend import OperationAborted
from crossbar.progress import Progress
from gui.panels.iv_sweep import staircase
from gui.settings import Settings
from gui.workers import Task, TaskAborted, TaskRunner


@pytest.fixture
def runner(qtbot):
    r = TaskRunner(update_interval_ms=50)
    yield r
    r.stop(5.0)


def test_task_runs_off_the_ui_thread_and_delivers_its_result(runner) -> None:
    seen = {}

    def fn(ctx):
        seen["thread"] = threading.get_ident()
        ctx.progress(Progress(3, 4))
        return 42

    done = []
    assert runner.submit(Task("t", fn, on_done=done.append))
    assert runner.busy
    assert not runner.submit(Task("second", lambda ctx: 0))  # one operation at a time
    assert runner.wait_idle(10)
    assert done == [42]
    assert seen["thread"] != threading.get_ident()
    assert not runner.busy


def test_items_are_batched_at_the_update_interval(runner) -> None:
    batches: list[list[int]] = []
    stamps: list[float] = []

    def fn(ctx):
        for i in range(400):
            ctx.emit(i)
            time.sleep(0.001)
        return None

    def on_items(items):
        batches.append(items)
        stamps.append(time.perf_counter())

    runner.submit(Task("emit", fn, on_items=on_items))
    assert runner.wait_idle(20)
    flat = [i for b in batches for i in b]
    assert flat == list(range(400))  # nothing lost, order kept
    # ~0.5 s of emitting in 50 ms batches: far fewer redraws than points
    assert 3 <= len(batches) <= 40
    gaps = np.diff(stamps[:-1])  # the last batch is flushed at completion
    assert gaps.size == 0 or gaps.min() > 0.03


def test_abort_calls_the_hook_and_reports_the_partial_result(runner) -> None:
    hooked = threading.Event()
    started = threading.Event()

    def fn(ctx):
        started.set()
        while not hooked.is_set():
            time.sleep(0.005)
        raise OperationAborted("stopped", partial=[1, 2, 3])

    aborted = []
    runner.submit(Task("abortable", fn, on_aborted=aborted.append, abort_hook=hooked.set))
    assert started.wait(5)
    runner.abort()
    assert runner.wait_idle(10)
    assert aborted == [[1, 2, 3]]


def test_context_check_raises_task_aborted(runner) -> None:
    started = threading.Event()

    def fn(ctx):
        started.set()
        while True:
            ctx.check()
            time.sleep(0.002)

    outcomes = []
    runner.finished.connect(lambda name, outcome: outcomes.append(outcome))
    runner.submit(Task("loop", fn, on_aborted=lambda p: outcomes.append(("partial", p))))
    assert started.wait(5)
    runner.abort()
    assert runner.wait_idle(10)
    assert outcomes == [("partial", None), "aborted"]
    assert issubclass(TaskAborted, RuntimeError)


def test_errors_reach_the_ui_thread(runner) -> None:
    errors = []

    def fn(ctx):
        raise ValueError("bad cell")

    runner.submit(Task("fails", fn, on_error=errors.append))
    assert runner.wait_idle(10)
    assert len(errors) == 1 and isinstance(errors[0], ValueError) and "bad cell" in str(errors[0])


def test_settings_persist_in_the_given_file(tmp_path) -> None:
    path = tmp_path / "gui.ini"
    s = Settings(path)
    assert s.bench == "sim"
    assert s.get("plot/iv_log") is False
    s.bench = str(tmp_path / "lab.toml")
    s.data_dir = tmp_path / "data"
    s.set("plot/iv_log", True)
    s.set("read/v_read", 0.15)
    s.sync()
    t = Settings(path)
    assert t.bench == str(tmp_path / "lab.toml")
    assert t.data_dir == tmp_path / "data"
    assert t.get("plot/iv_log") is True
    assert t.get("read/v_read") == pytest.approx(0.15)
    assert path.is_file()


def test_staircase_shape() -> None:
    v = staircase(6.0, -6.0, 0.5)
    assert v[0] == 0 and v[-1] == 0
    assert v.max() == 6.0 and v.min() == -6.0
    assert v.size == 49  # 0, 12 up, 12 down, 12 down, 12 up
    assert int(np.argmax(v)) == 12
    assert np.allclose(np.abs(np.diff(v)), 0.5)
    up = staircase(4.0, 0.0, 1.0)
    np.testing.assert_allclose(up, [0, 1, 2, 3, 4, 3, 2, 1, 0])
    with pytest.raises(ValueError):
        staircase(1.0, -1.0, 0.0)


@settings(max_examples=60, deadline=None)
@given(
    vpos=st.floats(0.0, 6.0),
    vneg=st.floats(-6.0, 0.0),
    step=st.floats(0.01, 2.0),
)
def test_staircase_properties(vpos: float, vneg: float, step: float) -> None:
    v = staircase(vpos, vneg, step)
    assert v[0] == 0.0 and v[-1] == 0.0
    assert v.max() == pytest.approx(vpos, abs=1e-9) if vpos > 0 else v.max() == 0.0
    assert v.min() == pytest.approx(vneg, abs=1e-9) if vneg < 0 else v.min() == 0.0
    assert np.all(np.abs(np.diff(v)) <= step + 1e-9)
    if vpos > 0:  # the SET branch (METHODS section 1) is the first rise to the maximum
        k = int(np.argmax(v))
        assert np.all(np.diff(v[: k + 1]) > 0)
