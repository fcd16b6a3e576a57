"""Issue 17, item 3: the full sweep protocol in the I-V panel — compliance lines and marked
clamped points, the RESET branch's own compliance and biasing, the time per point, invalid
combinations refused before Start (with the bench's own ranges), named presets and settings
remembered across restarts."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from crossbar.datastore import read_iv_groups
from gui.protocol import BUILTIN_PRESETS, CLI_PRESET, SweepProtocol, cli_default_protocol
from gui.testing import open_main_window


def test_cli_preset_is_the_live_calibration_default() -> None:
    p = BUILTIN_PRESETS[CLI_PRESET]
    assert p == cli_default_protocol()
    assert (p.biasing, p.compliance, p.reset_biasing, p.reset_compliance) == (
        "cols-2v/3",
        25e-6,
        "v/3",
        250e-6,
    )
    assert p.point_time == 0.05 and p.step == 0.1 and p.cycles == 10
    assert p.delay == 0.05 - 1 / 60


def test_sweep_options_are_the_iv_sweep_keywords_of_the_protocol() -> None:
    p = SweepProtocol(compliance=30e-6, cycles=3, nplc=0.6, point_time=0.05, reset_biasing=None)
    assert p.sweep_options() == {
        "compliance": 30e-6,
        "cycles": 3,
        "nplc": 0.6,
        "biasing": "cols-2v/3",
        "delay": 0.05 - 0.6 / 60,
        "reset_compliance": 250e-6,
        "reset_biasing": None,
    }


def test_the_sweep_runs_the_full_protocol_and_marks_compliance(window, monkeypatch) -> None:
    iv = window.iv_panel
    assert iv.preset.currentText() == CLI_PRESET  # a fresh start offers the CLI's protocol
    iv.apply_preset("quick look")
    iv.set_cell(4, 6)
    xb = window.session.crossbar
    calls = []
    original = xb.iv_sweep

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(xb, "iv_sweep", spy)
    assert iv.start_sweep()
    assert window.runner.wait_idle(120)
    (kw,) = calls
    assert kw["biasing"] == "cols-2v/3" and kw["compliance"] == 25e-6
    assert kw["reset_biasing"] == "v/3" and kw["reset_compliance"] == 250e-6
    assert abs(kw["delay"] - (0.05 - 1 / 60)) < 1e-15 and kw["nplc"] == 1.0
    # the data file holds the RESET settings and the delay, as the CLI's live sweep writes them
    window.session.datastore.flush()
    g = read_iv_groups(window.session.data_path, iv.last.name)[iv.last.name]
    assert g["reset_biasing"] == "v/3" and g["reset_compliance_a"] == 250e-6
    # dashed compliance lines at the applied limits, over each branch's voltages
    pos, neg = (c.getOriginalDataset() for c in iv.limit_curves)
    np.testing.assert_allclose(pos[0], [0.0, 6.0])
    np.testing.assert_allclose(pos[1], [25e-6, 25e-6])
    np.testing.assert_allclose(neg[0], [-6.0, 0.0])
    np.testing.assert_allclose(neg[1], [-250e-6, -250e-6])
    # every point measured at compliance is marked, and only those
    sweep = iv.last
    assert sweep.n_at_compliance > 0
    k, c = np.nonzero(sweep.compliance)
    x, y = iv.clamped_points()
    np.testing.assert_array_equal(np.sort(x), np.sort(sweep.voltage[k]))
    np.testing.assert_array_equal(np.sort(y), np.sort(sweep.current[k, c]))
    assert f"{sweep.n_at_compliance} point(s) at compliance" in iv.result_label.text()
    # in log mode the marks and lines follow |I|
    iv.log_scale.setChecked(True)
    np.testing.assert_array_equal(np.sort(iv.clamped_points()[1]), np.sort(np.abs(y)))
    assert iv.limit_curves[1].getOriginalDataset()[1][0] == 250e-6
    for item in (iv.clamped, *iv.limit_curves):  # drawn on the log axis too
        assert item.opts["logMode"] == [False, True]


def test_positive_only_biasing_is_refused_before_start(window) -> None:
    iv = window.iv_panel
    iv.apply_preset(CLI_PRESET)
    assert iv.start.isEnabled() and iv.problem == ""
    cols = iv.biasing.findText("cols-2v/3")
    # with one setting for both branches, cols-2v/3 cannot be chosen at all …
    iv.reset_own.setChecked(False)
    assert not iv.biasing.model().item(cols).isEnabled()
    # … and where it is still selected, the reason shows and Start stays disabled
    assert "for V >= 0 only" in iv.problem and not iv.start.isEnabled()
    assert iv.problem_label.isVisible() or iv.problem_label.text() == iv.problem
    assert not iv.start_sweep()
    # the RESET branch never offers a positive-only scheme
    iv.reset_own.setChecked(True)
    assert not iv.reset_biasing.model().item(iv.reset_biasing.findText("cols-2v/3")).isEnabled()
    assert iv.biasing.model().item(cols).isEnabled() and iv.start.isEnabled()
    # a sweep that stays at V >= 0 may use it with one setting
    iv.reset_own.setChecked(False)
    iv.v_neg.setValue(0.0)
    assert iv.biasing.model().item(cols).isEnabled() and iv.problem == ""


def test_ranges_come_from_the_bench(window) -> None:
    iv = window.iv_panel
    caps = window.session.crossbar.policy.capabilities
    assert (iv.nplc.minimum(), iv.nplc.maximum()) == caps.nplc_range  # was 0.01 … 10
    assert iv.compliance.maximum() == window.session.max_compliance * 1e6
    iv.compliance.setValue(30.0)  # the 6487 snaps a limit up to its next level
    assert "applied: 250 µA" in iv.limit_label.text()
    iv.point_ms.setValue(5.0)  # cannot hold a 1-PLC reading (16.7 ms)
    assert "cannot hold" in iv.problem and not iv.start.isEnabled()


def test_presets_and_settings_are_remembered(qtbot, tmp_path) -> None:
    w = open_main_window(tmp_path, connect=False)
    qtbot.addWidget(w)
    iv = w.iv_panel
    iv.apply_preset("one setting, ground")
    iv.cycles.setValue(4)
    iv.compliance.setValue(100.0)
    assert iv.preset.currentText() == "(custom)"
    iv.save_preset("my loops")
    iv.set_cell(7, 2)
    iv.point_ms.setValue(80.0)
    expected = iv.protocol()
    w.shutdown()
    w2 = open_main_window(tmp_path, connect=False)  # same settings file: a restart
    qtbot.addWidget(w2)
    try:
        iv2 = w2.iv_panel
        assert iv2.protocol() == expected
        assert (iv2.row.value(), iv2.col.value()) == (7, 2)
        ground = BUILTIN_PRESETS["one setting, ground"]
        assert iv2.presets()["my loops"] == replace(ground, cycles=4, compliance=100e-6)
        assert iv2.apply_preset("my loops") and iv2.protocol().compliance == 100e-6
    finally:
        w2.shutdown()
