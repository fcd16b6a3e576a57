"""Issue 17, item 5: the smaller things — a map colour scale that stays put, target / error views
and achieved versus target, resuming a programming run, a warning before a deployment
reprograms the array (and the map refreshed after it), the calibration table (full names, no
duplicates, explained notes, rows, conditions), the inference panel (the whole test set, honest
columns, the device chosen by name, digits, models kept across restarts), and an empty history
plot without invented ticks."""

from __future__ import annotations

import shutil
import sys
import types

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QMessageBox

from crossbar.progress import Progress
from gui.testing import open_main_window
from gui.workers import process_events_for


def wait(window, timeout: float = 120) -> None:
    assert window.runner.wait_idle(timeout)


# -- crossbar panel ------------------------------------------------------------------------------


def test_map_colour_scale_does_not_rescale_on_every_read(window) -> None:
    xb = window.crossbar_panel
    assert xb.scale_mode.currentData() == "fixed"
    assert xb.colour_levels() == (4.0, 8.0)  # 10 kΩ … 100 MΩ, the device's decades
    assert xb.read_all()
    wait(window)
    assert xb.colour_levels() == (4.0, 8.0)  # a read does not rescale the map
    xb.fit_btn.click()  # fitted to this map, then kept
    assert xb.scale_mode.currentData() == "locked"
    fitted = xb.colour_levels()
    assert fitted == xb._fitted_levels("R", np.log10(1 / xb.g_map)) != (4.0, 8.0)
    xb.set_selection({(0, 0)})
    xb.amplitude.setValue(3.4)
    xb.repeat.setValue(6)
    assert xb.pulse_selected(+1)  # the cell SETs: its R leaves the fitted range
    wait(window)
    assert xb.colour_levels() == fitted
    xb.scale_mode.setCurrentIndex(xb.scale_mode.findData("auto"))
    assert xb.colour_levels() == xb._fitted_levels("R", np.log10(1 / xb.g_map)) != fitted


def test_target_and_error_views_and_achieved_versus_target(window) -> None:
    xb = window.crossbar_panel
    xb.select_block(1, 1, 1, 2)
    xb.target_us.setValue(10.0)
    assert xb.program_selected()
    wait(window)
    rep = xb.last_program
    xb.quantity.setCurrentIndex(xb.quantity.findData("T"))
    img = xb.displayed_image()
    assert np.isnan(img[0, 0]) and img[1, 1] == np.log10(10e-6)
    xb.quantity.setCurrentIndex(xb.quantity.findData("E"))
    img = xb.displayed_image()
    for c in rep.cells:
        assert img[c.row, c.col] == xb.g_map[c.row, c.col] / 10e-6 - 1
    assert "%" in str(xb.colorbar.axis._tickLevels)  # the error scale reads in percent
    xs, ys = xb.prog_points["converged"].getOriginalDataset()
    done = [c for c in rep.cells if c.converged]
    np.testing.assert_array_equal(xs, [c.target for c in done])
    np.testing.assert_array_equal(ys, [c.final for c in done])
    xb._hovered(1, 1)
    assert "target 10 µS" in xb.hover_label.text()


def test_resume_programming_skips_the_cells_already_done(window, qtbot) -> None:
    xb = window.crossbar_panel
    cells = {(5, c) for c in range(6)}
    xb.set_selection(cells)
    xb.target_us.setValue(15.0)
    assert xb.program_selected()
    qtbot.waitUntil(lambda: len({k for k, h in xb.history.items() if h}) >= 3, timeout=60_000)
    window.abort()
    wait(window)
    first = xb.last_program
    assert first is not None and first.aborted and xb.resume_btn.isEnabled()
    done = {(c.row, c.col) for c in first.cells if c.converged}
    assert done and done != cells
    assert xb.resume_programming()
    wait(window)
    second = xb.last_program
    redone = {(c.row, c.col) for c in second.cells}
    assert redone == cells - done  # the converged cells are not restarted
    assert second.skipped == done
    assert "already done, skipped" in xb.program_label.text()


def test_empty_history_shows_no_invented_ticks(window) -> None:
    xb = window.crossbar_panel
    xb.set_focus(6, 6)
    hp = xb.hist_widget.getPlotItem()
    assert hp.getAxis("left").style["showValues"] is False  # no "2 S … 9 S"
    assert xb.hist_hint.isVisible()
    xb.set_selection({(6, 6)})
    assert xb.read_selected()
    wait(window)
    assert hp.getAxis("left").style["showValues"] is True and not xb.hist_hint.isVisible()


def stand_in_deploy(monkeypatch, cell=(0, 9), target=12e-6) -> list[dict]:
    """A fast inference.deploy whose run programs one cell (recorded in the data file; none
    when ``cell`` is None) and, fault-aware, reports one stuck cell avoided; returns the list
    each call's loop arguments (options, y_train, settle) go to."""

    from inference.deploy import DeployOptions

    calls: list[dict] = []

    def run_on_crossbar(crossbar, trained, x_test, y_test, *, x_train, progress, should_abort,
                        options, y_train, settle):  # fmt: skip
        calls.append({"options": options, "y_train": y_train, "settle": settle})
        if cell is not None:
            t = np.full(crossbar.shape, np.nan)
            t[cell] = target
            crossbar.program_map(t)
        out = np.eye(2)[np.asarray(y_test)] * 1.0
        progress(Progress(1, 1, "MVM"))
        return types.SimpleNamespace(
            software_accuracy=1.0,
            hardware_accuracy=1.0,
            outputs_software=out,
            outputs_hardware=out,
            labels=np.asarray(y_test),
            loop={"fault_aware": {"stuck_in_profile": [[1, 2]]}} if options.fault_aware else {},
        )

    fake = types.ModuleType("inference.deploy")
    fake.run_on_crossbar = run_on_crossbar
    fake.DeployOptions = DeployOptions
    monkeypatch.setitem(sys.modules, "inference.deploy", fake)
    return calls


def test_deploy_warns_before_reprogramming_and_refreshes_the_map(window, monkeypatch) -> None:
    from test_gui_inference import train

    stand_in_deploy(monkeypatch)
    inf = window.inference_panel
    train(window, "erm", epochs=40)
    asked = []

    def answer(reply):
        def question(parent, title, text, *a):
            asked.append(text)
            return reply

        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    inf.deploy_btn.click()
    assert asked and "overwritten" in asked[0]
    assert not window.runner.busy and inf.current.last is None  # declined: nothing ran
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    inf.deploy_btn.click()
    wait(window)
    assert inf.current.last is not None
    xb = window.crossbar_panel
    from crossbar.datastore import read_records

    rec = read_records(window.session.data_path)
    last = rec["conductance"][(rec["row"] == 0) & (rec["col"] == 9)][-1]
    assert xb.g_map[0, 9] == last  # the map shows what the deployment programmed


# -- calibration panel ---------------------------------------------------------------------------


def test_calibration_table_full_names_no_duplicates_and_rows(
    qtbot, tmp_path, shared_iv_files
) -> None:
    folder = tmp_path / "iv"
    folder.mkdir()
    for f in shared_iv_files[:4]:
        shutil.copy(f, folder / f.name)
    w = open_main_window(tmp_path, connect=False)
    qtbot.addWidget(w)
    try:
        cal = w.calibration_panel
        assert cal.calibrate_paths(sorted(folder.glob("*.xlsx"))[:2])
        wait(w)
        assert cal.calibrate_paths([folder])  # the folder after some of its files
        wait(w)
        assert cal.table.rowCount() == 4 and len(cal.devices) == 4  # not 6
        from gui.panels.calibration import FILE_COLUMN

        names = {cal.table.item(r, FILE_COLUMN).text() for r in range(4)}
        assert names == {f.name for f in shared_iv_files[:4]}  # whole names
        assert cal.table.textElideMode() == Qt.TextElideMode.ElideNone
        w.tabs.setCurrentWidget(cal)
        process_events_for(0.2)
        rows_shown = cal.table.viewport().height() // cal.table.rowHeight(0)
        assert rows_shown >= 12, rows_shown  # it showed about five
    finally:
        w.shutdown()


def test_ignored_columns_note_is_explained(offline_window, tmp_path) -> None:
    v = np.r_[np.arange(0, 6.01, 0.5), np.arange(5.5, -0.01, -0.5)]
    rng = np.random.default_rng(1)
    lines = ["voltage,current_cycle1,current_cycle2,time_s"]
    for k, x in enumerate(v):
        g = 1e-6 * (1 + x)
        lines.append(f"{x},{g * x * rng.uniform(0.9, 1.1)},{g * x * rng.uniform(0.9, 1.1)},{k}")
    path = tmp_path / "dev.csv"
    path.write_text("\n".join(lines) + "\n")
    cal = offline_window.calibration_panel
    assert cal.calibrate_paths([path])
    wait(offline_window)
    text = cal.numbers.text()
    assert "1 column(s) holding data were ignored" in text
    assert "do not enter U" in text and "#c00000" not in text  # explained, not an alarm


# -- inference panel -----------------------------------------------------------------------------


def test_inference_defaults_columns_and_the_device_chosen_by_name(window, shared_iv_files) -> None:
    from test_gui_inference import train

    inf = window.inference_panel
    assert inf.n_test.value() == 400  # the whole moons test set, not 20
    headers = [inf.table.horizontalHeaderItem(j).text() for j in range(inf.table.columnCount())]
    assert "software acc. (test set)" in headers and "hardware acc. (deployed)" in headers
    cal = window.calibration_panel
    assert cal.calibrate_paths(shared_iv_files[:2])
    wait(window)
    a, b = cal.row_device(0), cal.row_device(1)
    cal.select_row(0)  # the row last clicked is device a …
    assert inf.choose_device(b.name)  # … but the BO uses the device chosen here
    entry = train(window, "bayesmulti", n_init=1, n_iter=0, trials=1, epochs=20)
    assert entry.model.target["profile"] == b.name
    assert a.name != b.name


def test_digits_train_in_the_panel(window) -> None:
    from test_gui_inference import train

    inf = window.inference_panel
    inf.data_name.setCurrentIndex(inf.data_name.findData("digits"))
    assert not inf.data_noise.isEnabled()
    entry = train(window, "erm", epochs=20)
    assert entry.model.sizes == (64, 5, 10) and entry.dataset.name == "digits"
    assert entry.boundary is None and "No 2-D picture" in inf.p_db.titleLabel.text
    assert inf.n_test.maximum() == len(entry.dataset.y_test)


def test_models_are_kept_across_restarts(qtbot, tmp_path) -> None:
    from test_gui_inference import train

    w = open_main_window(tmp_path)
    qtbot.addWidget(w)
    entry = train(w, "erm", epochs=30)
    assert entry.path is not None
    names = [m.name for m in w.inference_panel.models]
    w.shutdown()
    w2 = open_main_window(tmp_path, connect=False)  # same settings and data folder
    qtbot.addWidget(w2)
    try:
        w2.tabs.setCurrentWidget(w2.inference_panel)
        qtbot.waitUntil(lambda: len(w2.inference_panel.models) == 1, timeout=60_000)
        wait(w2)
        back = w2.inference_panel.models[0]
        assert back.name == names[0]
        x = entry.dataset.x_test[:50] * entry.dataset.feature_std + entry.dataset.feature_mean
        np.testing.assert_array_equal(back.model.predict(x), entry.model.predict(x))
    finally:
        w2.shutdown()
