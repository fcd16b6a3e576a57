"""Crossbar panel on the simulated bench: read all, selection, pulses, programming, targets."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QEvent, QPointF, Qt
from PyQt6.QtGui import QMouseEvent
from PyQt6.QtWidgets import QApplication

from crossbar.datastore import read_records


def test_read_all_fills_the_map_with_the_backends_reads(window, monkeypatch) -> None:
    xb = window.crossbar_panel
    policy = window.session.crossbar.policy  # where the crossbar reads the map
    returned = []
    original = policy.read_map

    def spy(**kwargs):
        out = original(**kwargs)
        returned.append(np.array(out, copy=True))
        return out

    monkeypatch.setattr(policy, "read_map", spy)
    assert np.isnan(xb.g_map).all()
    xb.v_read.setValue(0.2)
    assert xb.read_all()
    assert window.runner.wait_idle(60)
    assert len(returned) == 1
    g = returned[0]
    assert g.shape == (10, 10)
    assert np.isfinite(xb.g_map).all()
    np.testing.assert_array_equal(xb.g_map, g)
    np.testing.assert_allclose(xb.i_map, g * 0.2)
    # the default view is R on a log colour scale: the image holds log10(1/G)
    xb.quantity.setCurrentIndex(xb.quantity.findData("R"))
    np.testing.assert_allclose(xb.displayed_image(), np.log10(1.0 / g))
    xb.quantity.setCurrentIndex(xb.quantity.findData("G"))
    np.testing.assert_allclose(xb.displayed_image(), np.log10(g))
    # and every read is in the data file
    window.session.datastore.flush()
    rec = read_records(window.session.data_path)
    reads = rec["operation"] == "read"
    assert reads.sum() == 100
    stored = np.full((10, 10), np.nan)
    stored[rec["row"][reads], rec["col"][reads]] = rec["conductance"][reads]
    np.testing.assert_array_equal(stored, g)
    # hovering a cell describes it
    xb._hovered(3, 4)
    assert "cell (3, 4)" in xb.hover_label.text() and "R = " in xb.hover_label.text()


def _send_mouse(view, kind, pos, buttons) -> None:
    button = Qt.MouseButton.LeftButton
    ev = QMouseEvent(
        kind,
        pos,
        view.viewport().mapToGlobal(pos.toPoint()).toPointF(),
        button if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton,
        buttons,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(view.viewport(), ev)


def _cell_pos(panel, r: int, c: int) -> QPointF:
    scene = panel.image.mapToScene(QPointF(c + 0.5, r + 0.5))
    return QPointF(panel.map_widget.mapFromScene(scene))


def test_click_and_drag_select_cells(window, qtbot) -> None:
    xb = window.crossbar_panel
    window.tabs.setCurrentWidget(xb)
    view = xb.map_widget
    qtbot.wait(50)
    a, b = _cell_pos(xb, 2, 3), _cell_pos(xb, 4, 6)
    left = Qt.MouseButton.LeftButton
    _send_mouse(view, QEvent.Type.MouseButtonPress, a, left)
    for t in np.linspace(0.1, 1.0, 8):
        _send_mouse(view, QEvent.Type.MouseMove, a + (b - a) * float(t), left)
    _send_mouse(view, QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton)
    expected = {(r, c) for r in range(2, 5) for c in range(3, 7)}
    assert xb.selection == expected
    assert xb.focus == (4, 6)
    # a click selects one cell and shows its history; the I-V panel follows
    c = _cell_pos(xb, 7, 1)
    _send_mouse(view, QEvent.Type.MouseButtonPress, c, left)
    _send_mouse(view, QEvent.Type.MouseButtonRelease, c, Qt.MouseButton.NoButton)
    assert xb.selection == {(7, 1)}
    assert (window.iv_panel.row.value(), window.iv_panel.col.value()) == (7, 1)


def test_pulses_with_read_after_build_the_cell_history(window) -> None:
    xb = window.crossbar_panel
    xb.set_selection({(0, 0)})
    xb.set_focus(0, 0)
    xb.amplitude.setValue(3.4)
    xb.width_ms.setValue(1.0)
    xb.repeat.setValue(3)
    assert xb.pulse_selected(+1)
    assert window.runner.wait_idle(60)
    xb.amplitude.setValue(2.6)
    xb.repeat.setValue(2)
    assert xb.pulse_selected(-1)
    assert window.runner.wait_idle(60)
    n, g, amp = xb.history_arrays(0, 0)
    np.testing.assert_array_equal(n, np.arange(5))
    np.testing.assert_allclose(amp, [3.4, 3.4, 3.4, -2.6, -2.6])
    assert np.all(np.isfinite(g)) and np.all(g > 0)
    assert xb.g_map[0, 0] == g[-1]
    # the history plot shows G against pulse number and the amplitudes on the second axis
    x, y = xb.hist_curve.getOriginalDataset()
    np.testing.assert_allclose(x, n)
    np.testing.assert_allclose(y, g)
    assert xb.hist_widget.getPlotItem().getAxis("left").logMode  # G on a log axis
    pts = xb.amp_bars.getData()
    np.testing.assert_allclose(pts[1], amp)
    window.session.datastore.flush()
    rec = read_records(window.session.data_path)
    pulses = rec["operation"] == "pulse"
    np.testing.assert_allclose(rec["voltage"][pulses], amp)
    np.testing.assert_allclose(rec["conductance"][pulses], g)


def test_programming_a_2x2_block_converges_without_blocking_the_ui(window) -> None:
    xb = window.crossbar_panel
    xb.select_block(3, 3, 4, 4)
    xb.target_us.setValue(10.0)
    xb.tolerance.setValue(5.0)
    batches = []
    deliver = xb._on_items
    xb._on_items = lambda items: (batches.append(len(items)), deliver(items))
    assert xb.program_selected()
    assert window.runner.wait_idle(120)
    rep = xb.last_program
    assert rep is not None and not rep.aborted
    assert {(c.row, c.col) for c in rep.cells} == {(3, 3), (3, 4), (4, 3), (4, 4)}
    assert all(c.converged for c in rep.cells), rep.summary()
    for c in rep.cells:
        assert abs(c.final - 10e-6) <= 0.05 * 10e-6
        assert xb.g_map[c.row, c.col] == c.final
        n, g, amp = xb.history_arrays(c.row, c.col)
        assert g[-1] == c.final
        assert int(np.count_nonzero(amp)) == c.pulses
    assert "4 cells programmed, 4 converged" in xb.program_label.text()
    # the UI was not blocked: the steps arrived in several batches while programming ran
    assert sum(batches) == sum(len(xb.history_arrays(c.row, c.col)[0]) for c in rep.cells)
    assert len(batches) >= 3, batches


def test_target_map_files(window, tmp_path) -> None:
    xb = window.crossbar_panel
    t = np.full((10, 10), np.nan)
    t[0, :3] = [5e-6, 8e-6, 12e-6]
    csv = tmp_path / "targets.csv"
    np.savetxt(csv, t, delimiter=",")
    assert xb.load_targets(csv)
    np.testing.assert_array_equal(np.isfinite(xb.target_map), np.isfinite(t))
    np.testing.assert_allclose(xb.target_map[0, :3], t[0, :3])
    assert xb.program_map_btn.isEnabled()
    npy = tmp_path / "targets.npy"
    np.save(npy, t * 2)
    assert xb.load_targets(npy)
    np.testing.assert_allclose(xb.target_map[0, :3], 2 * t[0, :3])
    bad = tmp_path / "bad.csv"
    np.savetxt(bad, np.ones((3, 3)), delimiter=",")
    assert not xb.load_targets(bad)
    assert "shape (3, 3)" in window.log_lines()[-1]
    neg = tmp_path / "neg.npy"
    np.save(neg, -np.ones((10, 10)))
    assert not xb.load_targets(neg)
    assert "must be > 0" in window.log_lines()[-1]
