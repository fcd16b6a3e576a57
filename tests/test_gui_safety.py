"""Abort, EMERGENCY STOP and closing the window leave every output of the bench off.

Asserted on the simulated bench's instrument twins (``backend.sim_handles``): the 6487 twin's
output state and recorded commands, the AWG levels and the switch matrix (released = ENABLE low,
every line floating).
"""

from __future__ import annotations

import numpy as np
import pytest

from gui.testing import bench_outputs, keithley_commands, open_main_window, outputs_all_off


def long_sweep(window) -> None:
    iv = window.iv_panel
    iv.set_cell(2, 2)
    iv.step.setValue(0.05)
    iv.cycles.setValue(6)
    assert iv.start_sweep()


def wait_points(qtbot, window, n: int = 20) -> None:
    qtbot.waitUntil(lambda: np.isfinite(window.iv_panel.current).sum() >= n, timeout=30_000)
    assert window.runner.busy, "the sweep ended before the test could stop it"


def test_abort_during_a_sweep_switches_outputs_off(window, qtbot) -> None:
    long_sweep(window)
    wait_points(qtbot, window)
    mark = len(keithley_commands(window.session.backend))
    window.abort()
    assert window.runner.wait_idle(30)
    backend = window.session.backend
    assert outputs_all_off(backend), bench_outputs(backend)
    after = keithley_commands(backend)[mark:]
    assert "SOUR:VOLT:STAT OFF" in after
    measured = np.isfinite(window.iv_panel.current).sum()
    assert 0 < measured < window.iv_panel.current.size  # stopped part-way
    assert window.iv_panel.result_label.text().startswith("(aborted)")
    assert any("aborted" in line for line in window.log_lines())
    assert window.op_label.text().endswith("aborted")


def test_emergency_stop_during_a_sweep(window, qtbot) -> None:
    long_sweep(window)
    wait_points(qtbot, window)
    backend = window.session.backend
    mark = len(keithley_commands(backend))
    window.estop.click()
    assert outputs_all_off(backend), bench_outputs(backend)  # already off when the click returns
    after = keithley_commands(backend)[mark:]
    assert "SOUR:VOLT:STAT OFF" in after and "SYST:ZCH ON" in after
    assert window.runner.wait_idle(30)
    assert outputs_all_off(backend)
    assert "EMERGENCY STOP" in window.chooser.status.text()
    # the stopped sweep shows no result
    assert window.iv_panel.last is None
    assert window.iv_panel.result_label.text() == "stopped: no result"
    assert not window.iv_panel.export_csv_btn.isEnabled()
    # latched: nothing runs until the stop is acknowledged, and nothing reaches the bench
    xb = window.crossbar_panel
    xb.set_selection({(0, 0)})
    mark = len(keithley_commands(backend))
    assert not xb.read_selected()
    assert len(keithley_commands(backend)) == mark
    assert any("Acknowledge" in line for line in window.log_lines())
    assert window.ack_button.isEnabled()
    window.ack_button.click()
    assert not window.ack_button.isEnabled()
    # acknowledged: the bench is usable again, a read works and leaves outputs off again
    assert xb.read_selected()
    assert window.runner.wait_idle(30)
    assert np.isfinite(xb.g_map[0, 0])
    assert outputs_all_off(backend)


def test_emergency_stop_during_programming(window, qtbot) -> None:
    xb = window.crossbar_panel
    xb.set_selection({(r, c) for r in range(10) for c in range(10)})
    xb.target_us.setValue(30.0)
    assert xb.program_selected()
    qtbot.waitUntil(lambda: sum(len(h) for h in xb.history.values()) >= 5, timeout=30_000)
    assert window.runner.busy
    window.emergency_stop()
    backend = window.session.backend
    assert outputs_all_off(backend), bench_outputs(backend)
    assert window.runner.wait_idle(30)
    # an emergency stop shows no result: no programming report, the label says so
    assert xb.last_program is None and xb.program_label.text() == "stopped: no result"
    assert outputs_all_off(backend)
    assert not xb.program_selected()  # refused until acknowledged
    window.acknowledge_stop()
    assert window.session.crossbar.emergency_stopped is False


def test_emergency_stop_when_idle(window) -> None:
    backend = window.session.backend
    mark = len(keithley_commands(backend))
    window.emergency_stop()
    assert "SOUR:VOLT:STAT OFF" in keithley_commands(backend)[mark:]
    assert outputs_all_off(backend)
    assert window.estop.isVisible() and window.estop.isEnabled()


def test_closing_the_window_during_a_sweep_shuts_the_bench_down(qtbot, tmp_path) -> None:
    w = open_main_window(tmp_path)
    qtbot.addWidget(w)
    long_sweep(w)
    wait_points(qtbot, w)
    session = w.session
    backend = session.backend
    w.close()
    assert outputs_all_off(backend), bench_outputs(backend)
    assert w.session is None and session.closed
    assert session.datastore.closed
    assert "SYST:ZCH ON" in keithley_commands(backend)


def test_abort_during_deployment_switches_outputs_off(window, qtbot) -> None:
    inf = window.inference_panel
    inf.method.setCurrentIndex(inf.method.findData("erm"))
    inf.epochs.setValue(60)
    assert inf.train()
    assert window.runner.wait_idle(60)
    assert inf.deploy()
    qtbot.waitUntil(
        lambda: window.progress.maximum() > 0 and window.progress.value() >= 2, timeout=30_000
    )
    assert window.runner.busy
    window.abort()
    assert window.runner.wait_idle(30)
    backend = window.session.backend
    assert outputs_all_off(backend), bench_outputs(backend)
    assert inf.current.last is None  # no result from an aborted run
    assert any("Deployment aborted" in line for line in window.log_lines())


@pytest.mark.slow  # programs the network's cells on the simulated bench first
def test_emergency_stop_during_a_deployments_inference_shows_no_result(window, qtbot) -> None:
    """What a new user found: EMERGENCY STOP during a deployment's MVM batches, and the
    deployment finished and showed a hardware accuracy. Now it shows nothing and the bench waits
    for the stop to be acknowledged."""
    from test_gui_inference import train

    inf = window.inference_panel
    entry = train(window, "erm", epochs=40)
    inf.n_test.setValue(40)
    assert inf.deploy()
    qtbot.waitUntil(lambda: "MVM layer" in window.op_label.text(), timeout=300_000)
    window.emergency_stop()
    backend = window.session.backend
    assert outputs_all_off(backend), bench_outputs(backend)
    assert window.runner.wait_idle(60)
    assert entry.last is None  # no deployment result shown
    assert "hardware accuracy" not in inf.acc_label.text()
    assert not inf.deploy()  # refused while latched
    window.acknowledge_stop()
    assert not window.session.crossbar.emergency_stopped


def test_emergency_stop_during_a_deployments_programming_shows_no_result(
    window, qtbot, monkeypatch
) -> None:
    """The deployment's programming phase (a stand-in deployment that programs the whole array
    through the crossbar layer, as inference.deploy does first) stopped: no result, the map
    keeps what was measured, and nothing runs until the stop is acknowledged."""
    import sys
    import types

    from test_gui_inference import train

    from inference.deploy import DeployOptions

    def run_on_crossbar(crossbar, trained, x_test, y_test, *, x_train, progress, should_abort,
                        options, y_train, settle):  # fmt: skip
        crossbar.program_map(np.full(crossbar.shape, 20e-6), progress=progress)
        raise AssertionError("the emergency stop should have ended the programming")

    fake = types.ModuleType("inference.deploy")
    fake.run_on_crossbar = run_on_crossbar
    fake.DeployOptions = DeployOptions
    monkeypatch.setitem(sys.modules, "inference.deploy", fake)
    inf = window.inference_panel
    entry = train(window, "erm", epochs=30)
    assert inf.deploy()
    qtbot.waitUntil(lambda: window.progress.value() >= 2, timeout=60_000)
    window.emergency_stop()
    assert outputs_all_off(window.session.backend)
    assert window.runner.wait_idle(60)
    assert entry.last is None
    assert "no result" in inf.acc_label.text() and "hardware accuracy" not in inf.acc_label.text()
    assert not inf.deploy()  # refused while latched
    assert window.stop_bar.isVisible() and window.ack_button.isEnabled()
    window.acknowledge_stop()
    assert not window.stop_bar.isVisible()
