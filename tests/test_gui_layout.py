"""Issue 17, item 1: controls that stay visible on a 1024×700 screen.

Every panel (and sub-panel) is shown at 1024×700: EMERGENCY STOP, Acknowledge stop, Abort and
the status bar lie inside the window with their text unelided (geometry and fontMetrics), the
window is really that size (it used to refuse to go below 1132×799), and the plots that were
clipped at the minimum size (the history plot's right axis, the decision-boundary plot) lie
inside their views.
"""

from __future__ import annotations

import pytest
from PyQt6.QtCore import QPoint, QRect
from PyQt6.QtWidgets import QLabel, QPushButton, QWidget

from gui.app import MIN_SIZE
from gui.workers import process_events_for

W, H = MIN_SIZE


def rect_in_window(window, widget: QWidget) -> QRect:
    top_left = widget.mapTo(window, QPoint(0, 0))
    return QRect(top_left, widget.size())


def assert_inside(window, widget: QWidget, what: str) -> None:
    assert widget.isVisible(), f"{what} is not visible"
    r = rect_in_window(window, widget)
    assert window.rect().contains(r), f"{what} at {r} is outside the window {window.rect()}"
    assert r.width() > 0 and r.height() > 0, what


def assert_text_fits(widget: QPushButton | QLabel, what: str, padding: int = 8) -> None:
    """The widest line of the widget's text fits its width (nothing elided or clipped)."""
    fm = widget.fontMetrics()
    lines = widget.text().split("\n")
    need = max(fm.horizontalAdvance(line) for line in lines)
    assert need + padding <= widget.width(), f"{what}: {widget.text()!r} needs {need} px"


def views(window):
    """Every panel, and every sub-tab of the panels that have them."""
    for panel in window.panels:
        window.tabs.setCurrentWidget(panel)
        inner = getattr(panel, "tabs", None)
        if inner is None:
            yield panel.title
            continue
        for i in range(inner.count()):
            inner.setCurrentIndex(i)
            yield f"{panel.title} / {inner.tabText(i)}"


@pytest.fixture
def small(window):
    window.resize(W, H)
    process_events_for(0.2)
    return window


def test_the_window_fits_a_1024x700_screen(small) -> None:
    w = small
    hint = w.minimumSizeHint()
    assert hint.width() <= W and hint.height() <= H, hint
    assert (w.width(), w.height()) == (W, H)


def test_every_panel_keeps_stop_abort_and_status_on_screen(small, qtbot) -> None:
    w = small
    seen = []
    for view in views(w):
        process_events_for(0.05)
        seen.append(view)
        assert (w.width(), w.height()) == (W, H), f"{view} made the window grow"
        for widget, what in (
            (w.estop, "EMERGENCY STOP"),
            (w.ack_button, "Acknowledge stop"),
            (w.abort_button, "Abort"),
            (w.statusBar(), "status bar"),
            (w.op_label, "operation label"),
            (w.progress, "progress bar"),
            (w.log_view, "log"),
        ):
            assert_inside(w, widget, f"{view}: {what}")
        assert_text_fits(w.estop, f"{view}: EMERGENCY STOP", padding=24)
        assert_text_fits(w.ack_button, f"{view}: Acknowledge stop")
        assert_text_fits(w.abort_button, f"{view}: Abort")
        # the status bar's text of a running operation is not cut either
        w.op_label.setText("Running: I-V sweep of cell (9, 9)")
        assert_text_fits(w.op_label, f"{view}: status")
    assert len(seen) == 1 + 1 + 2 + 1 + 6 + 1  # I-V, crossbar, calibration ×2, inference,
    # 6 characterisation modules, study


def test_latched_stop_bar_keeps_everything_on_screen(small) -> None:
    w = small
    w.emergency_stop()
    process_events_for(0.1)
    assert w.stop_bar.isVisible() and "Acknowledge stop" in w.stop_bar_label.text()
    for widget, what in ((w.estop, "stop"), (w.ack_button, "ack"), (w.abort_button, "abort")):
        assert_inside(w, widget, what)
    assert w.ack_button.isEnabled()
    w.acknowledge_stop()
    assert not w.stop_bar.isVisible()


def _scene_rect_inside(plot_widget, item) -> bool:
    view = plot_widget.viewport().rect()
    r = plot_widget.mapFromScene(item.sceneBoundingRect()).boundingRect()
    return view.contains(r)


def test_plots_clipped_at_the_minimum_size_are_inside_their_views(small) -> None:
    w = small
    xb = w.crossbar_panel
    w.tabs.setCurrentWidget(xb)
    xb.plot_tabs.setCurrentIndex(0)
    process_events_for(0.2)
    hp = xb.hist_widget.getPlotItem()
    assert _scene_rect_inside(xb.hist_widget, hp.getAxis("right")), "history's right axis"
    assert xb.hist_widget.width() >= 250
    # the programming summary is scrolled into view when a run ends
    xb.set_selection({(0, 0)})
    assert xb.program_selected()
    assert w.runner.wait_idle(120)
    process_events_for(0.1)
    assert "1 cells programmed" in xb.program_label.text()
    assert_inside(w, xb.program_label, "programming summary")
    assert w.rect().contains(rect_in_window(w, xb.controls_area))
    inf = w.inference_panel
    w.tabs.setCurrentWidget(inf)
    process_events_for(0.2)
    assert _scene_rect_inside(inf.plots, inf.p_db), "decision-boundary plot"
    assert _scene_rect_inside(inf.plots, inf.p_bo), "BO plot"
    assert inf.p_db.getViewBox().width() > 100
