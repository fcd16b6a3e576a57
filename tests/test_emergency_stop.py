"""The emergency stop latches in the crossbar layer and holds for every long operation.

Property (hypothesis): on the simulated bench (the real drivers over the twins), each long
operation — I-V sweep, read map, program-and-verify, MVM batches, a deployment's inference — is
stopped at a random moment of its bench activity (the operator presses EMERGENCY STOP while the
instruments work). Then:

* the operation returns no result: it raises EmergencyStop with no partial data;
* every output is off and the switch matrix released;
* its data file is marked ``aborted`` with the time and the last record;
* every further operation is refused, before anything reaches the bench, until the stop is
  acknowledged; after acknowledging, the bench works again.
"""

from __future__ import annotations

import itertools
import json
import threading
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossbar.backend import EmergencyStop
from crossbar.characterise import CharacterisationPlan, characterise, run_step
from crossbar.core import Crossbar
from crossbar.datastore import DataStore, read_records
from instruments.sweep_plan import cyclic_points
from lab import open_backend
from sim_backends.bench_sim import SimBench

OPERATIONS: dict[str, Callable[[Crossbar, dict], object]] = {
    "sweep": lambda xb, ctx: xb.iv_sweep(3, 4, cyclic_points(1.0, -1.0, 0.25), compliance=1e-4),
    "read map": lambda xb, ctx: xb.read_map(biasing="ground"),
    "program": lambda xb, ctx: xb.program_map(ctx["targets"], max_pulses=6),
    "mvm": lambda xb, ctx: xb.mvm(ctx["inputs"], batch_size=4),
    "deploy": lambda xb, ctx: ctx["deploy"](xb),
    # characterisation steps through the same run as characterise() (the whole protocol maps
    # the window of all 100 cells first: too long to repeat per example)
    "characterise read noise": lambda xb, ctx: run_step(xb, ctx["plan"], "read_noise"),
    "characterise pulse response": lambda xb, ctx: run_step(xb, ctx["plan"], "pulse_response"),
}


@pytest.fixture(scope="module")
def context() -> dict:
    from inference.data import make_moons_dataset
    from inference.deploy import run_on_crossbar
    from inference.models import MOONS_SIZES
    from inference.training import train_erm

    data = make_moons_dataset(seed=0)
    model = train_erm(data, MOONS_SIZES, seed=0, epochs=40)
    targets = np.full((10, 10), np.nan)
    targets[1:3, 1:3] = [[8e-6, 12e-6], [6e-6, 15e-6]]
    return {
        "plan": CharacterisationPlan(
            cells=((1, 1), (2, 2)), n_reads=4, avg_reads=2, n_pulse_cells=1, n_pulses=4
        ),
        "targets": targets,
        "inputs": np.random.default_rng(0).uniform(0.0, 0.2, (12, 10)),
        # inference only (the array is not reprogrammed): the MVM batches the old code ran on
        "deploy": lambda xb: run_on_crossbar(
            xb, model, data.x_test[:8], data.y_test[:8], x_train=data.x_train, program=False
        ),
    }


class StopAfter:
    """Presses the emergency stop after ``n`` events of bench activity (instrument writes,
    readings, AWG and DIO changes: every :meth:`SimBench.sync`)."""

    def __init__(self, monkeypatch, n: int | None) -> None:
        self.n, self.events, self.xb = n, 0, None
        sync = SimBench.sync

        def counting(bench, until=None):
            self.events += 1
            if self.n is not None and self.events == self.n and self.xb is not None:
                self.xb.emergency_stop()
            return sync(bench, until)

        monkeypatch.setattr(SimBench, "sync", counting)


def _counts(h) -> tuple[int, int]:
    return len(h.adapter.commands), len(h.dwf_library.calls)


_RUN = itertools.count()


def _events(monkeypatch, name: str, context: dict, tmp_path: Path) -> int:
    probe = StopAfter(monkeypatch, None)
    path = tmp_path / f"probe-{next(_RUN)}.h5"
    with Crossbar(open_backend("sim"), datastore=DataStore(path)) as xb:
        probe.events = 0
        OPERATIONS[name](xb, context)
        return probe.events


@pytest.mark.parametrize("name", list(OPERATIONS))
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(when=st.floats(0.0, 0.999))
def test_an_emergency_stop_holds_for_every_long_operation(
    name, when, context, monkeypatch, tmp_path
) -> None:
    total = _events(monkeypatch, name, context, tmp_path)
    stop = StopAfter(monkeypatch, 1 + int(when * (total - 1)))
    backend = open_backend("sim")
    path = tmp_path / f"{name.replace(' ', '-')}-{next(_RUN)}.h5"
    ds = DataStore(path)
    xb = Crossbar(backend, datastore=ds)
    try:
        _stopped_run(name, context, xb, stop, path)
    finally:
        xb.close()


def _stopped_run(name: str, context: dict, xb: Crossbar, stop: StopAfter, path: Path) -> None:
    backend, ds = xb.backend, xb.datastore
    h = backend.sim_handles
    stop.xb, stop.events = xb, 0
    with pytest.raises(EmergencyStop) as info:
        OPERATIONS[name](xb, context)
    # no result from the stopped operation
    assert info.value.partial is None and "emergency stop" in str(info.value)
    # every output off, the matrix released
    assert not h.adapter.output_on
    assert h.sim_bench.awg == [0.0, 0.0]
    assert h.sim_bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)
    # the data file is marked aborted, with the last record
    ds.flush()
    with DataStore.open_read(path) as f:
        marks = json.loads(f.attrs["aborted"])
    n_records = read_records(path)["time"].size
    assert len(marks) == 1 and "emergency stop" in marks[0]["reason"]
    assert marks[0]["bench_time_s"] == pytest.approx(backend.now(), abs=1.0)
    if n_records:
        assert marks[0]["last_record"]["index"] == n_records - 1
    else:
        assert marks[0]["last_record"] is None
    # refused until acknowledged, before anything reaches the bench
    before = _counts(h)
    for op in (
        lambda: xb.read_cell(0, 0),
        lambda: xb.mvm(np.zeros(10)),
        lambda: xb.pulse(0, 0, 1.0, 1e-3),
    ):
        with pytest.raises(EmergencyStop, match="acknowledge"):
            op()
    with pytest.raises(EmergencyStop, match="acknowledge"):
        xb.iv_sweep(0, 0, [0.0, 0.1], compliance=1e-4)
    assert _counts(h) == before and read_records(path)["time"].size == n_records
    assert xb.emergency_stopped
    xb.reset_emergency_stop()
    assert not xb.emergency_stopped
    assert xb.read_cell(0, 0, biasing="ground").conductance > 0


def test_a_deployment_stopped_in_its_last_mvm_batch_reports_nothing(
    context, monkeypatch, tmp_path
) -> None:
    """The failure a new user found: EMERGENCY STOP during a deployment's last MVM batch, and
    the deployment finished and reported a hardware accuracy. The stop is pressed at the last
    bench event the inference makes: the result never comes back."""
    total = _events(monkeypatch, "deploy", context, tmp_path)
    stop = StopAfter(monkeypatch, total)
    xb = Crossbar(open_backend("sim"))
    stop.xb, stop.events = xb, 0
    with pytest.raises(EmergencyStop):
        context["deploy"](xb)
    with pytest.raises(EmergencyStop):
        context["deploy"](xb)  # a second attempt is refused while latched
    xb.close()


@pytest.mark.slow
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(when=st.floats(0.0, 0.999))
def test_an_emergency_stop_holds_for_a_study(when, monkeypatch, tmp_path) -> None:
    """A study (one process) shares one latch among its benches: a stop at any bench event
    ends it with no result, every bench it opened switched off and released."""
    from xbar.study import StudySpec, run_study

    plan = tmp_path / "profile.json"
    if not plan.exists():  # a measured profile, so the study only trains and deploys
        with Crossbar(open_backend("sim")) as xb:
            profile = characterise(xb, CharacterisationPlan.quick(n_cells=4))
        profile.save(plan)
    spec = StudySpec(
        bench="sim",
        profile="optimized",
        methods=("erm",),
        configs=((),),
        bench_seeds=(0, 1),
        train_seeds=(0,),
        test_points=8,
        characterise=str(plan),
        workers=1,
        training={"epochs": 30},
    )
    opened: list = []
    real_open = SimBench.__init__

    def recording(bench, *a, **k):
        real_open(bench, *a, **k)
        opened.append(bench)

    monkeypatch.setattr(SimBench, "__init__", recording)
    probe = StopAfter(monkeypatch, None)
    run_study(spec)
    total, opened[:] = probe.events, []
    latch = threading.Event()
    stop = StopAfter(monkeypatch, 1 + int(when * (total - 1)))
    stop.xb = types.SimpleNamespace(emergency_stop=latch.set)
    with pytest.raises(EmergencyStop, match="emergency stop"):
        run_study(spec, stop=latch)
    assert opened
    for bench in opened:  # outputs off and the matrix released on every bench it opened
        assert not bench.smu_on
        assert bench.awg == [0.0, 0.0]
        assert bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)


def test_ctrl_c_in_a_one_process_study_stops_it_at_once(monkeypatch) -> None:
    """Ctrl-C (KeyboardInterrupt) in a task of a study run in this process ends the study there:
    the remaining bench seeds are not characterised (it used to be kept in the task's future
    while every other task still ran)."""
    import xbar.study as study

    calls: list[int] = []

    def interrupted(spec, seed, stop=None):
        calls.append(seed)
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "_profile", interrupted)
    spec = study.StudySpec(methods=("erm",), bench_seeds=(0, 1, 2), train_seeds=(0,), workers=1)
    with pytest.raises(KeyboardInterrupt):
        study.run_study(spec)
    assert calls == [0]
