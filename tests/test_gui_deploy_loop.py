"""The inference panel's deployment-loop switches (issue 15): the profile, one checkbox per step
of :class:`inference.deploy.DeployOptions`, the settle time; refusals in one log line; the steps
that ran in the result label."""

from __future__ import annotations

import numpy as np
import pytest
from test_gui_details import stand_in_deploy
from test_gui_inference import train
from test_inference_hardware_model import make_profile

from crossbar.deployment_profile import DeploymentProfile
from inference.deploy import DeployOptions

STEPS = ("fault_aware", "levels", "chip_in_loop", "drift_compensation", "refresh")


def stand_in(monkeypatch) -> list[dict]:
    """A fast inference.deploy recording every call's loop arguments (nothing programmed)."""
    return stand_in_deploy(monkeypatch, cell=None)


def check(inf, *steps: str) -> None:
    for key in steps:
        inf.loop_checks[key].setChecked(True)


def test_loop_switches_are_off_by_default(window) -> None:
    inf = window.inference_panel
    assert tuple(inf.loop_checks) == STEPS
    for key, cb in inf.loop_checks.items():
        assert not cb.isChecked(), key
        assert cb.toolTip(), key
    assert inf.settle.value() == 0.0 and inf.profile_path.text() == ""
    assert inf.loop_options((10, 10)) == {**dict.fromkeys(STEPS, False), "profile": None}
    # the defaults are DeployOptions' own: the loop off
    assert DeployOptions(**inf.loop_options((10, 10))) == DeployOptions()


@pytest.mark.parametrize("steps", [("fault_aware",), ("levels", "refresh")])
def test_a_step_needing_the_profile_without_one_logs_one_line_and_runs_nothing(
    window, monkeypatch, steps
) -> None:
    calls = stand_in(monkeypatch)
    inf = window.inference_panel
    entry = train(window, "erm", epochs=30)
    check(inf, *steps)
    before = len(window.log_lines())
    assert not inf.deploy()
    new = window.log_lines()[before:]
    assert len(new) == 1
    name = {"fault_aware": "Fault-aware placement", "levels": "Level-aware mapping"}[steps[0]]
    assert f"{name} needs the array's deployment profile" in new[0]
    assert "nothing deployed" in new[0]
    assert not window.runner.busy and calls == [] and entry.last is None


def test_a_bad_or_foreign_profile_file_logs_one_line_and_runs_nothing(
    window, monkeypatch, tmp_path
) -> None:
    calls = stand_in(monkeypatch)
    inf = window.inference_panel
    train(window, "erm", epochs=30)
    check(inf, "fault_aware", "levels")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    small = tmp_path / "small.json"
    make_profile(shape=(4, 4)).save(small)
    cases = (
        (tmp_path / "absent.json", "no such deployment profile"),
        (bad, "not a JSON deployment profile"),
        (small, "for a 4×4 array but the bench's is 10×10"),
    )
    for path, why in cases:
        inf.profile_path.setText(str(path))
        before = len(window.log_lines())
        assert not inf.deploy()
        new = window.log_lines()[before:]
        assert len(new) == 1, new
        assert "ERROR: Fault-aware placement and level-aware mapping" in new[0]
        assert why in new[0] and "nothing deployed" in new[0]
    assert calls == [] and not window.runner.busy


def test_the_switches_reach_deploy_options_and_the_label(window, monkeypatch, tmp_path) -> None:
    """Checked steps, the chosen profile file and the settle time go to run_on_crossbar with
    the training labels; the label lists the steps that ran."""
    calls = stand_in(monkeypatch)
    inf = window.inference_panel
    entry = train(window, "erm", epochs=30)
    path = tmp_path / "profile.json"
    make_profile().save(path)
    inf.profile_path.setText(str(path))
    check(inf, "fault_aware", "drift_compensation")
    inf.settle.setValue(3600.0)
    inf.n_test.setValue(12)
    assert inf.deploy()
    assert window.runner.wait_idle(60)
    (call,) = calls
    o = call["options"]
    assert (o.fault_aware, o.drift_compensation) == (True, True)
    assert (o.levels, o.chip_in_loop, o.refresh) == (False, False, False)
    assert isinstance(o.profile, DeploymentProfile) and o.profile.shape == (10, 10)
    assert call["settle"] == 3600.0
    np.testing.assert_array_equal(call["y_train"], entry.dataset.y_train)
    assert entry.last.steps == (
        "fault-aware placement (1 stuck cells avoided)",
        "drift compensation",
    )
    assert entry.last.settle == 3600.0
    assert (
        "deployment loop: fault-aware placement (1 stuck cells avoided), drift compensation; "
        "settled 3600 s before the MVMs"
    ) in inf.acc_label.text()


def test_the_profile_measured_in_characterisation_is_the_default(window, monkeypatch) -> None:
    calls = stand_in(monkeypatch)
    inf = window.inference_panel
    assert inf.profile_path.placeholderText() == "none: browse, or characterise the array"
    measured = make_profile()
    window.characterisation_panel.set_profile(measured)
    assert inf.profile_path.placeholderText() == (
        f"from Characterisation (bench 'test', {measured.created})"
    )
    train(window, "erm", epochs=30)
    check(inf, "levels")
    assert inf.deploy()
    assert window.runner.wait_idle(60)
    assert calls[0]["options"].profile is measured and calls[0]["options"].levels


def test_browse_remembers_the_profile_folder(window, monkeypatch, tmp_path) -> None:
    from PyQt6.QtWidgets import QFileDialog

    folder = tmp_path / "profiles"
    folder.mkdir()
    chosen = folder / "array.json"
    seen = []

    def dialog(parent, title, start, filters):
        seen.append((start, filters))
        return str(chosen), filters

    monkeypatch.setattr(QFileDialog, "getOpenFileName", dialog)
    inf = window.inference_panel
    inf.profile_browse.click()
    assert inf.profile_path.text() == str(chosen)
    assert "*.json" in seen[0][1]
    assert window.settings.last_dir("profiles") == str(folder)
    inf.profile_browse.click()
    assert seen[1][0] == str(folder)  # the next dialog opens there


def test_levels_and_refresh_deploy_on_the_simulated_bench(window, tmp_path) -> None:
    """(About 10 s.) A profile of three discrete levels (1, 6, 18 µS), level-aware mapping and
    refresh on: the real deployment on the simulated bench puts every programmed cell's target
    on a level, the bias row goes digital (40 cells, not 54) and the label lists both steps."""
    inf = window.inference_panel
    entry = train(window, "erm")
    levels = [1e-6, 6e-6, 18e-6]
    path = tmp_path / "levels.json"
    make_profile(pulse_response={"levels": 3, "level_conductances": levels}).save(path)
    inf.profile_path.setText(str(path))
    check(inf, "levels", "refresh")
    inf.n_test.setValue(40)
    assert inf.deploy()
    assert window.runner.wait_idle(600)
    d = entry.last
    assert d is not None, window.log_lines()[-3:]
    r = d.raw
    assert np.allclose(r.loop["levels"]["levels_s"], levels)
    assert [len(p["gain"]) for p in r.loop["levels"]["periphery"]] == [5, 2]
    targets = r.target_map[np.isfinite(r.target_map)]
    assert targets.size == 40 and r.programming["cells"] == 40
    assert np.all(np.isin(targets, levels))
    assert d.steps == ("level-aware mapping (3 levels)", "refresh")
    text = inf.acc_label.text()
    assert "deployment loop: level-aware mapping (3 levels), refresh" in text
    assert window.log_lines()[-1].endswith("; loop: level-aware mapping (3 levels), refresh")
    assert f"hardware accuracy {r.hardware_accuracy:.3f}" in text
