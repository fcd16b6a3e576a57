"""Calibration panel: shared files, measured sweeps, section-1 figures, fabrication."""

from __future__ import annotations

import numpy as np

from calibration.fabrication import read_history, suggest
from calibration.io import read_iv
from calibration.usability import usability
from gui.testing import open_main_window


def test_calibrating_a_shared_file_shows_its_usability(offline_window, shared_iv_files) -> None:
    cal = offline_window.calibration_panel
    path = shared_iv_files[0]
    assert cal.calibrate_paths([path])
    assert offline_window.runner.wait_idle(60)
    assert cal.table.rowCount() == 1
    iv = read_iv(path)
    expected = usability(iv.voltage, iv.currents)
    row = cal.row_values(0)
    text, value = row["U"]
    assert value == expected.usability
    assert text == f"{expected.usability:.3f}"
    assert row["α_nm"][1] == expected.alpha_nm
    assert row["σ_up"][1] == expected.sigma_up
    assert row["L / L_min"][0] == f"{expected.lcis_length} / {expected.l_min}"
    assert row["N"][1] == expected.n_residuals
    assert row["file"][0] == path.name
    # the device is selected and its section-1 figures drawn: the LCIS is highlighted
    dev = cal.selected_device()
    assert dev is not None and dev.result.usability == expected.usability
    s, L = expected.lcis_start, expected.lcis_length
    lcis_curves = [it for it in cal.p_g.listDataItems() if it.name() == f"LCIS, L = {L}"]
    assert len(lcis_curves) == 1
    x, _ = lcis_curves[0].getData()
    np.testing.assert_allclose(x, expected.branch_v[s : s + L])
    assert f"U = {expected.usability:.4f}" in cal.numbers.text()


def test_batch_of_files_sorted_by_usability(offline_window, shared_iv_files) -> None:
    cal = offline_window.calibration_panel
    files = shared_iv_files[:4]
    assert cal.calibrate_paths(files)
    assert offline_window.runner.wait_idle(120)
    assert cal.table.rowCount() == 4
    us = [cal.row_values(r)["U"][1] for r in range(4)]
    assert us == sorted(us, reverse=True)  # the best device first after a batch
    expected = sorted(
        (usability(read_iv(f).voltage, read_iv(f).currents).usability for f in files), reverse=True
    )
    np.testing.assert_allclose(us, expected)
    assert cal.selected_device().result.usability == us[0]


def test_report_png_of_the_selected_device(offline_window, shared_iv_files, tmp_path) -> None:
    cal = offline_window.calibration_panel
    cal.calibrate_paths(shared_iv_files[:1])
    assert offline_window.runner.wait_idle(60)
    out = cal.save_report(cal.selected_device(), tmp_path / "dev.png")
    assert out.is_file() and out.stat().st_size > 20_000


def test_measured_sweep_is_graded_like_a_file(qtbot, tmp_path) -> None:
    w = open_main_window(tmp_path)
    qtbot.addWidget(w)
    try:
        iv = w.iv_panel
        iv.set_cell(5, 5)
        iv.step.setValue(0.5)
        iv.cycles.setValue(3)
        assert iv.start_sweep()
        assert w.runner.wait_idle(60)
        cal = w.calibration_panel
        row = cal.find_row(iv.last.name)
        assert row >= 0  # measured sweeps are added automatically
        assert cal.row_values(row)["U"][1] == iv.last.usability.usability
        assert cal.row_device(row).source_format == "measured"
    finally:
        w.shutdown()


HISTORY = """file,perovskite,nw_length_um,nw_diameter_nm,pb_ed_min,ag_thickness_nm,usability
a,MAPbI3,1.5,200,10,100,0.28
b,MAPbI3,1.5,200,15,200,0.22
c,MAPbI3,1.8,50,20,200,0.35
d,FAPbI3,1.2,200,15,200,0.61
e,MAPbBr3,1.2,200,15,200,0.47
f,MAPbI3,0.6,100,25,400,0.12
"""


def test_fabrication_suggestions_from_a_history(offline_window, tmp_path) -> None:
    cal = offline_window.calibration_panel
    path = tmp_path / "history.csv"
    path.write_text(HISTORY)
    assert cal.load_history(path)
    assert cal.history_table.rowCount() == 6
    assert cal.suggest_btn.isEnabled()
    cal.n_suggest.setValue(2)
    assert cal.suggest()
    assert offline_window.runner.wait_idle(120)
    expected = suggest(read_history(path), 2)
    t = cal.suggest_table
    assert t.rowCount() == 2
    for i, s in enumerate(expected):
        assert t.item(i, 1).text() == s.conditions.perovskite
        assert float(t.item(i, 2).text()) == s.conditions.nw_length_um
        assert t.item(i, 6).text() == f"{s.mean:.3f}"
    # the plot shows the six measured usabilities and the two predictions
    items = cal.fab_plot.getPlotItem().listDataItems()
    measured = [it for it in items if it.name() == "measured (history, sorted)"][0]
    np.testing.assert_allclose(measured.getData()[1], sorted([0.28, 0.22, 0.35, 0.61, 0.47, 0.12]))
    predicted = [it for it in items if it.name() == "suggested: predicted U ± std"][0]
    np.testing.assert_allclose(predicted.getData()[1], [s.mean for s in expected])


def test_bad_history_file_is_reported(offline_window, tmp_path) -> None:
    cal = offline_window.calibration_panel
    path = tmp_path / "bad.csv"
    path.write_text("perovskite,usability\nMAPbI3,0.5\n")
    assert not cal.load_history(path)
    assert "missing column" in offline_window.log_lines()[-1]
