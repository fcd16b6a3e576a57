"""I-V sweep panel on the simulated bench: live plot, usability, data file, responsiveness."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from calibration.usability import usability
from crossbar.datastore import read_iv_groups
from gui.panels.iv_sweep import staircase
from gui.testing import open_main_window


def small_sweep(panel, row: int = 1, col: int = 2, cycles: int = 2) -> np.ndarray:
    panel.apply_preset("one setting, ground")
    panel.set_cell(row, col)
    panel.v_pos.setValue(6.0)
    panel.v_neg.setValue(-6.0)
    panel.step.setValue(0.5)
    panel.cycles.setValue(cycles)
    panel.compliance.setValue(25.0)
    panel.nplc.setValue(1.0)
    return staircase(6.0, -6.0, 0.5)


def test_sweep_completes_plots_each_cycle_and_shows_usability(window) -> None:
    iv = window.iv_panel
    v = small_sweep(iv)
    batches = []  # live points reach the UI thread in batches while the sweep runs
    deliver = iv._on_points
    iv._on_points = lambda pts: (batches.append((len(pts), window.runner.busy)), deliver(pts))
    assert iv.start_sweep()
    assert window.runner.wait_idle(60)
    sweep = iv.last
    assert sweep is not None and sweep.error is None
    assert (sweep.row, sweep.col) == (1, 2)
    np.testing.assert_allclose(sweep.voltage, v)
    assert sweep.current.shape == (49, 2) and np.isfinite(sweep.current).all()
    # one curve per cycle, holding exactly the measured points, in distinct colours
    assert len(iv.curves) == 2
    for c in range(2):
        x, y = iv.curve_data(c)
        np.testing.assert_allclose(x, v)
        np.testing.assert_allclose(y, sweep.current[:, c])
    colours = {pg.mkPen(item.opts["pen"]).color().name() for item in iv.curves}
    assert len(colours) == 2
    # the sweep's METHODS §1 usability, from calibration.usability, is what the panel shows
    expected = usability(v, sweep.current)
    assert sweep.usability.usability == expected.usability
    assert f"U = {expected.usability:.3f}" in iv.result_label.text()
    # the UI thread was not blocked while points streamed in: they arrived in several batches,
    # drawn while the sweep still ran, every point once (counts, not wall-clock time)
    assert sum(n for n, _ in batches) == 98
    assert sum(1 for _, running in batches if running) >= 3, batches


def test_sweep_is_saved_in_the_session_data_file(window) -> None:
    iv = window.iv_panel
    small_sweep(iv, row=0, col=0)
    assert iv.start_sweep()
    assert window.runner.wait_idle(60)
    session = window.session
    session.datastore.flush()
    sweeps = read_iv_groups(session.data_path)
    assert iv.last.name in sweeps
    stored = sweeps[iv.last.name]
    np.testing.assert_allclose(stored["voltage"], iv.last.voltage)
    np.testing.assert_allclose(stored["current"], iv.last.current)
    assert any(
        str(session.data_path) in line and iv.last.name in line for line in window.log_lines()
    )


def test_log_scale_plots_the_magnitude(window) -> None:
    iv = window.iv_panel
    small_sweep(iv, cycles=1)
    assert iv.start_sweep()
    assert window.runner.wait_idle(60)
    iv.log_scale.setChecked(True)
    x, y = iv.curve_data(0)
    i = iv.last.current[:, 0]
    expected = np.where(np.abs(i) > 0, np.abs(i), np.nan)
    np.testing.assert_allclose(y, expected)
    assert iv.plot.getPlotItem().getAxis("left").logMode
    iv.log_scale.setChecked(False)
    np.testing.assert_allclose(iv.curve_data(0)[1], i)


def test_start_refused_without_a_bench(qtbot, tmp_path) -> None:
    w = open_main_window(tmp_path, connect=False)
    qtbot.addWidget(w)
    try:
        assert not w.iv_panel.start.isEnabled()
        assert w.iv_panel.start_sweep() is False
        assert "Connect a bench first." in w.log_lines()[-1]
    finally:
        w.shutdown()
