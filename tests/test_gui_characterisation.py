"""The characterisation modules (issue 17): read noise, programming statistics, retention and
pulse response as panels with live plots, progress, abort and the deployment-profile result,
each running :func:`crossbar.characterise.run_step` on the bench."""

from __future__ import annotations

import numpy as np
import pytest

from crossbar.datastore import read_records
from crossbar.deployment_profile import load_deployment_profile
from gui.panels.characterisation import MODULES
from gui.testing import outputs_all_off


def small_protocol(ch) -> None:
    ch.n_cells.setValue(3)
    ch.n_reads.setValue(5)
    ch.avg_reads.setValue(2)
    ch.n_pulse_cells.setValue(1)
    ch.n_pulses.setValue(4)
    ch.settle.setText("1, 10")
    for key in ("programming", "retention"):
        getattr(ch, f"{key}_targets").setValue(2)


def test_read_noise_module_plots_live_and_shows_its_figure(window) -> None:
    ch = window.characterisation_panel
    small_protocol(ch)
    progress = []
    window.runner.progress.connect(progress.append)
    assert ch.run_module("read_noise")
    assert window.runner.wait_idle(60)
    res = ch.results["read_noise"]
    assert len(res.g_per_cell) == 3 and res.n_reads == 5
    live = [p for p in ch.live["read_noise"] if p.stage == "read noise"]
    assert [(int(p.values["row"]), int(p.values["col"])) for p in live] == ch.plan().chosen(
        (10, 10)
    )
    (item,) = ch.plots["read_noise"].getPlotItem().listDataItems()
    x, y = item.getOriginalDataset()
    np.testing.assert_allclose(x, res.g_per_cell)
    np.testing.assert_allclose(y, res.sigma_rel_per_cell)
    assert f"σ_read = {100 * res.sigma_rel:.3g} %" in ch.result_labels["read_noise"].text()
    assert progress and progress[-1].total == 3  # the status bar's progress
    window.session.datastore.flush()
    rec = read_records(window.session.data_path)
    assert int(np.sum(rec["operation"] == "read")) == 3 * 5  # recorded as acquired


def test_pulse_response_module_uses_the_read_noise_it_has(window) -> None:
    ch = window.characterisation_panel
    small_protocol(ch)
    assert ch.run_module("read_noise")
    assert window.runner.wait_idle(60)
    assert ch.run_module("pulse_response")
    assert window.runner.wait_idle(60)
    res = ch.results["pulse_response"]
    assert res.n_pulses == 4
    (curve,) = [it for it in ch.plots["pulse_response"].getPlotItem().listDataItems() if it.name()]
    x, y = curve.getOriginalDataset()
    np.testing.assert_array_equal(x, np.arange(1, 9))  # 4 SET then 4 RESET pulses
    assert np.all(y > 0)
    assert f"{res.levels} levels" in ch.result_labels["pulse_response"].text()
    assert [p.stage for p in ch.live["pulse_response"]] == ["pulse response"]  # noise reused


@pytest.mark.slow  # the window step reads every cell of the array (~15 s)
def test_every_module_and_the_assembled_profile(window, tmp_path) -> None:
    ch = window.characterisation_panel
    small_protocol(ch)
    assert not ch.assemble_btn.isEnabled()
    for key, *_ in MODULES[:-1]:
        assert ch.run_module(key), key
        assert window.runner.wait_idle(300), key
        assert key in ch.results, key
    assert ch.results["programming"].settle_times == []  # statistics only
    ret = ch.results["retention"]
    assert ret.settle_times == [1.0, 10.0]
    # retention plots G(t)/G(t0) per programmed cell at the settle times
    curves = ch.plots["retention"].getPlotItem().listDataItems()
    assert curves and all(list(c.getOriginalDataset()[0]) == [1.0, 10.0] for c in curves)
    assert "drift ν" in ch.result_labels["retention"].text()
    w = ch.results["window"]
    assert np.array(w.g_max).shape == (10, 10)
    assert ch.assemble_btn.isEnabled() and ch.assemble_profile()
    prof = ch.profile
    assert prof.programming == ret and prof.read_noise == ch.results["read_noise"]
    out = ch.save_profile(tmp_path / "profile.json")
    assert load_deployment_profile(out).model_dump(mode="json") == prof.model_dump(mode="json")
    assert "Deployment profile of bench 'sim'" in ch.profile_text.text()


def test_emergency_stop_during_a_characterisation_shows_no_result(window, qtbot) -> None:
    ch = window.characterisation_panel
    small_protocol(ch)
    assert ch.run_module("window")
    qtbot.waitUntil(lambda: len(ch.live.get("window", [])) >= 3, timeout=60_000)
    assert window.runner.busy
    window.emergency_stop()
    backend = window.session.backend
    assert outputs_all_off(backend)
    assert window.runner.wait_idle(60)
    assert "window" not in ch.results
    assert ch.result_labels["window"].text() == "stopped (emergency stop): no result"
    assert not ch.run_module("read_noise")  # refused until acknowledged
    assert window.ack_button.isEnabled() and window.stop_bar.isVisible()
    window.acknowledge_stop()
    assert ch.run_module("read_noise")
    assert window.runner.wait_idle(60)
    assert "read_noise" in ch.results


def _physics_crossbar():
    import dataclasses

    from crossbar.config import load_bench_config
    from crossbar.core import Crossbar
    from lab import open_backend

    cfg = load_bench_config("sim")
    cfg = dataclasses.replace(cfg, bench=dataclasses.replace(cfg.bench, backend="physics"))
    return Crossbar(open_backend(cfg))


def test_the_steps_one_by_one_give_the_whole_characterisation() -> None:
    """``run_step`` (the modules' entry point) runs exactly ``characterise``'s procedures: on
    two identical benches, the four steps in order give the same profile figures."""
    from crossbar.characterise import CharacterisationPlan, characterise, make_profile, run_step

    plan = CharacterisationPlan.quick(
        cells=((0, 0), (4, 7), (9, 3)),
        n_reads=4,
        avg_reads=2,
        n_targets=2,
        settle_times=(1.0, 10.0),
        n_pulse_cells=1,
        n_pulses=4,
    )
    whole = characterise(_physics_crossbar(), plan)
    xb = _physics_crossbar()
    reports = []
    w = run_step(xb, plan, "window", progress=reports.append)
    rn = run_step(xb, plan, "read_noise", progress=reports.append)
    pr = run_step(xb, plan, "pulse_response", window=w, read_noise=rn, progress=reports.append)
    prog = run_step(
        xb, plan, "programming", window=w, read_noise=rn, pulse_response=pr, progress=reports.append
    )
    steps = make_profile(
        xb, plan, window=w, read_noise=rn, programming=prog, pulse_response=pr, bench_time=0.0
    )
    for part in ("window", "read_noise", "programming", "pulse_response"):
        assert getattr(steps, part) == getattr(whole, part), part
    assert steps.cells == whole.cells and steps.protocol == whole.protocol
    # every report carries the step's figures for live plots
    stages = {p.stage for p in reports}
    assert stages == {"window", "read noise", "programming", "settling", "pulse response"}
    assert all(p.values for p in reports)
    with pytest.raises(ValueError, match="unknown step"):
        run_step(xb, plan, "forming")
