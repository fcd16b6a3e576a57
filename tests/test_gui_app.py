"""The ``xbar gui`` command, the main window's bench handling, and screenshots."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from PyQt6.QtGui import QImage

from gui.testing import open_main_window
from gui.workers import process_events_for
from xbar.cli import main


def test_xbar_help_does_not_import_qt() -> None:
    code = (
        "import sys\n"
        "from xbar.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('QT' if any(m.startswith(('PyQt6', 'pyqtgraph')) for m in sys.modules) else 'NOQT')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "gui" in out.stdout
    assert out.stdout.strip().endswith("NOQT")


def test_xbar_gui_help(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["gui", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--bench" in out and "--screenshots" in out


def test_xbar_gui_size_option(capsys) -> None:
    from gui.arguments import window_size

    assert window_size("1024x700") == (1024, 700) and window_size("1600×1000") == (1600, 1000)
    with pytest.raises(SystemExit) as exc:
        main(["gui", "--screenshots", "x", "--size", "800x600"])
    assert exc.value.code == 2
    assert "laid out for 1024x700" in capsys.readouterr().err


def test_xbar_gui_rejects_a_missing_bench_file(capsys, tmp_path) -> None:
    assert main(["gui", "--bench", str(tmp_path / "nope.toml")]) == 2
    assert "no such bench file" in capsys.readouterr().err


def test_window_connects_to_the_simulated_bench_and_records(qtbot, tmp_path) -> None:
    w = open_main_window(tmp_path)
    qtbot.addWidget(w)
    try:
        s = w.session
        assert s is not None and s.is_simulated and s.shape == (10, 10)
        assert s.data_path.parent == tmp_path / "data" and s.data_path.is_file()
        assert "connected" in w.chooser.status.text()
        assert w.chooser.connect_button.text() == "Disconnect"
        assert any(str(s.data_path) in line for line in w.log_lines())
        assert w.disconnect_bench()
        assert w.runner.wait_idle(30)
        assert w.session is None and s.closed and s.datastore.closed
    finally:
        w.shutdown()
    assert w.settings.bench == "sim"


def test_a_bad_bench_file_is_reported(qtbot, tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[bench]\nbackend = "awg"\n')
    w = open_main_window(tmp_path, connect=False)
    qtbot.addWidget(w)
    try:
        assert w.connect_bench(str(bad))
        assert w.runner.wait_idle(30)
        assert w.session is None
        assert "Cannot open bench" in w.log_lines()[-1] and "backend" in w.log_lines()[-1]
        assert "failed" in w.chooser.status.text()
    finally:
        w.shutdown()


@pytest.mark.slow
def test_screenshots_of_every_panel(qtbot, tmp_path, shared_iv_dir) -> None:
    from gui.screenshots import SHOTS, take_screenshots

    paths = take_screenshots(
        tmp_path / "shots", iv_data=shared_iv_dir, quick=True, size=(1024, 700)
    )
    assert [p.stem for p in paths] == [s[0] for s in SHOTS]
    assert sum(p.stem.startswith("characterisation_") for p in paths) == 6
    for p in paths:
        img = QImage(str(p))
        assert (img.width(), img.height()) == (1024, 700), p
        # a populated panel is not a blank window: many distinct colours
        ptr = img.convertToFormat(QImage.Format.Format_RGB32).constBits()
        ptr.setsize(img.width() * img.height() * 4)
        px = np.frombuffer(ptr, np.uint8).reshape(-1, 4)[::97]
        assert len(np.unique(px, axis=0)) > 50, p


def test_screenshots_refused_on_a_real_instrument_bench(capsys) -> None:
    example = REPO / "crossbar" / "benches" / "example_hardware.toml"
    assert main(["gui", "--bench", str(example), "--screenshots", "x"]) == 2
    err = capsys.readouterr().err
    assert "refused on the real-instrument bench" in err


def test_the_deploy_screenshot_shows_the_loop_switches(offline_window, qtbot) -> None:
    """At 1024×700 the Inference panel's deploy group is below the fold: its shot scrolls the
    controls column so the loop switches and the Run button are in view; the panel's own shot
    shows the top of the column (the data set)."""
    from gui.screenshots import show_shot

    w = offline_window
    w.resize(1024, 700)
    w.show()
    qtbot.waitExposed(w)
    inf = w.inference_panel
    show_shot(w, "inference_deploy", "inference_panel", None)
    process_events_for(0.1)
    for widget in (inf.deploy_btn, *inf.loop_checks.values()):
        assert not widget.visibleRegion().isEmpty(), widget.text()
    show_shot(w, "inference", "inference_panel", None)
    process_events_for(0.1)
    assert inf.controls_scroll.verticalScrollBar().value() == 0
    assert inf.deploy_btn.visibleRegion().isEmpty()


def test_each_screenshot_shows_the_tab_it_is_named_after(offline_window) -> None:
    """The screenshot names follow the panels' tab order (the characterisation modules were
    reordered once and the PNGs showed one module under another's name)."""
    from gui.screenshots import SHOTS

    for stem, attr, subtab in SHOTS:
        panel = getattr(offline_window, attr)
        assert offline_window.tabs.indexOf(panel) >= 0, stem
        if subtab is not None:
            title = panel.tabs.tabText(subtab).split(" (")[0].lower().replace(" ", "_")
            expected = "calibration" if title == "devices" else title
            assert stem.endswith(expected), (stem, title)
