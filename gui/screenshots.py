"""Populate every panel on a bench and save a PNG of each (``xbar gui --screenshots DIR``).

The run: connect to the bench; an I-V sweep (the ``xbar calibrate`` live protocol at 0.2 V
steps); read all, program a 2×2 block and pulse a cell on the crossbar; calibrate a few I-V
files (the shared data set if present, with its conditions) plus the measured sweep, and build a
fabrication history with suggestions; train ERM and BayesMulti and deploy both on the bench; run
every characterisation module (a short protocol) and assemble the deployment profile. Then each
tab (and sub-tab) is shown and the window grabbed.

Settings go to a temporary INI file and data files to a temporary folder unless given, so taking
screenshots never touches the user's settings.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from PyQt6.QtCore import Qt

from gui.panels.calibration import U_COLUMN
from gui.panels.characterisation import MODULES
from gui.protocol import CLI_PRESET
from gui.settings import Settings
from gui.workers import process_events_for

__all__ = [
    "EXAMPLE_STUDY",
    "SHOTS",
    "default_iv_data",
    "populate",
    "populate_characterisation",
    "populate_inference",
    "save_panel_pngs",
    "show_shot",
    "take_screenshots",
]

#: (file stem, attribute of the main window, the panel's sub-tab or None)
SHOTS = (
    ("iv_sweep", "iv_panel", None),
    ("crossbar", "crossbar_panel", None),
    ("calibration", "calibration_panel", 0),
    ("calibration_fabrication", "calibration_panel", 1),
    ("inference", "inference_panel", None),
    ("inference_deploy", "inference_panel", None),  # its controls scrolled to the deploy group
    # one per characterisation module, in the panel's tab order (MODULES)
    *(
        (f"characterisation_{key}", "characterisation_panel", i)
        for i, (key, *_) in enumerate(MODULES)
    ),
    ("study", "study_panel", None),
)

#: The study result the Study panel shows in screenshots: a real ``xbar study`` run shipped
#: with the docs (``$XBAR_STUDY`` overrides it).
EXAMPLE_STUDY = Path(__file__).resolve().parents[1] / "docs" / "examples" / "study-paper.json"


def default_iv_data() -> Path | None:
    """``$XBAR_IV_DATA`` or ``../shared/data/perovskite_iv`` beside the project, if it exists."""
    env = os.environ.get("XBAR_IV_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "perovskite_iv")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def _wait(window, what: str, timeout: float = 300.0) -> None:
    if not window.runner.wait_idle(timeout):
        raise TimeoutError(f"screenshots: '{what}' did not finish within {timeout:g} s")


def _run(window, what: str, started: bool, timeout: float = 300.0) -> None:
    if not started:
        raise RuntimeError(f"screenshots: could not start '{what}' (see the log)")
    _wait(window, what, timeout)


def populate(
    window,
    *,
    iv_data: str | Path | None = None,
    n_iv_files: int = 8,
    quick: bool = False,
    log=print,
) -> None:
    """Drive every panel of a connected ``window`` into a populated state.

    ``quick`` uses smaller sweeps and trainings (tests).
    """
    t0 = time.monotonic()
    if window.session is None:
        _run(window, "connect", window.connect_bench())
    if window.session is None:
        raise RuntimeError("screenshots: the bench did not connect (see the log)")
    if not window.session.is_simulated:
        raise RuntimeError("screenshots sweep and program cells: use a simulated bench")

    iv = window.iv_panel
    iv.apply_preset(CLI_PRESET)
    iv.set_cell(2, 3)
    iv.step.setValue(0.5 if quick else 0.2)
    iv.cycles.setValue(2 if quick else 5)
    _run(window, "I-V sweep", iv.start_sweep())
    log(f"  sweep done ({time.monotonic() - t0:.1f} s)")

    xb = window.crossbar_panel
    _run(window, "read all", xb.read_all())
    xb.select_block(4, 4, 5, 5)
    xb.target_us.setValue(10.0)
    _run(window, "program", xb.program_selected())
    xb.set_selection({(1, 7)})
    xb.amplitude.setValue(3.4)
    xb.repeat.setValue(3 if quick else 6)
    _run(window, "SET pulses", xb.pulse_selected(+1))
    xb.amplitude.setValue(2.6)
    _run(window, "RESET pulses", xb.pulse_selected(-1))
    xb.select_block(4, 4, 5, 5)
    xb.set_focus(4, 4)
    log(f"  crossbar done ({time.monotonic() - t0:.1f} s)")

    cal = window.calibration_panel
    iv_dir = Path(iv_data) if iv_data else default_iv_data()
    if iv_dir is not None and iv_dir.is_dir():
        files = sorted(iv_dir.glob("*.xlsx"))[: (3 if quick else n_iv_files)]
        cond = iv_dir / "conditions.csv"
        if cond.is_file():
            cal.load_conditions(cond)
        if files:
            _run(window, "calibration", cal.calibrate_paths(files))
        if cond.is_file() and not quick:
            _run(window, "fabrication history", cal.build_history(cond), 600)
            _run(window, "fabrication suggestions", cal.suggest())
    if iv.last is not None and cal.find_row("sweep ") < 0:
        cal.add_measured_sweep(iv.last)
    if cal.table.rowCount():
        cal.table.sortItems(U_COLUMN, Qt.SortOrder.DescendingOrder)
        cal.select_row(0)
    log(f"  calibration done ({time.monotonic() - t0:.1f} s)")

    populate_inference(window, quick=quick)
    log(f"  inference done ({time.monotonic() - t0:.1f} s)")

    populate_characterisation(window)
    log(f"  characterisation done ({time.monotonic() - t0:.1f} s)")

    study = Path(os.environ.get("XBAR_STUDY") or EXAMPLE_STUDY)
    if study.exists() and not window.study_panel.load(study):
        raise RuntimeError(f"screenshots: cannot load the study {study} (see the log)")


def populate_inference(window, *, quick: bool = False) -> None:
    """Train ERM and BayesMulti and deploy them on the bench."""
    inf = window.inference_panel
    inf.method.setCurrentIndex(inf.method.findData("erm"))
    if quick:
        inf.epochs.setValue(80)
    _run(window, "train ERM", inf.train())
    inf.method.setCurrentIndex(inf.method.findData("bayesmulti"))
    inf.target_u.setValue(0.5)
    inf.n_init.setValue(2 if quick else 3)
    inf.n_iter.setValue(1 if quick else 7)
    inf.eval_trials.setValue(3 if quick else 10)
    _run(window, "train BayesMulti", inf.train(), 900)
    rows = [len(inf.models) - 1] if quick else range(len(inf.models))
    inf.n_test.setValue(60 if quick else 200)
    for row in rows:
        inf.table.selectRow(row)
        _run(window, f"deploy {inf.models[row].name}", inf.deploy(), 900)


def populate_characterisation(window) -> None:
    """Run every characterisation module with a short protocol and assemble the profile."""
    ch = window.characterisation_panel
    ch.n_cells.setValue(6)
    ch.n_reads.setValue(10)
    ch.avg_reads.setValue(3)
    ch.settle.setText("1, 10, 100, 1000")
    ch.n_pulses.setValue(15)
    for key, *_ in MODULES[:-1]:
        _run(window, f"characterisation {key}", ch.run_module(key), 900)
    ch.assemble_profile()


#: shots whose panel's controls column is scrolled to show a widget (the attribute's name)
SCROLL_TO = {"inference_deploy": "deploy_btn"}


def show_shot(window, stem: str, attr: str, subtab: int | None) -> None:
    """Bring the panel of shot ``stem`` to the front as it is photographed."""
    panel = getattr(window, attr)
    window.tabs.setCurrentWidget(panel)
    if subtab is not None:
        panel.tabs.setCurrentIndex(subtab)
    scroll = getattr(panel, "controls_scroll", None)
    if scroll is not None:
        process_events_for(0.05)  # lay the column out before scrolling it
        if stem in SCROLL_TO:
            scroll.ensureWidgetVisible(getattr(panel, SCROLL_TO[stem]), 0, 0)
        else:
            scroll.verticalScrollBar().setValue(0)


def save_panel_pngs(window, out_dir: str | Path) -> list[Path]:
    """Show each panel (and the calibration sub-tabs) and save the window as ``<name>.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, attr, subtab in SHOTS:
        show_shot(window, stem, attr, subtab)
        process_events_for(0.3)
        path = out / f"{stem}.png"
        if not window.grab().save(str(path)):
            raise OSError(f"cannot write {path}")
        paths.append(path)
    window.calibration_panel.tabs.setCurrentIndex(0)
    return paths


def take_screenshots(
    out_dir: str | Path,
    *,
    bench: str = "sim",
    data_dir: str | Path | None = None,
    iv_data: str | Path | None = None,
    settings: Settings | None = None,
    quick: bool = False,
    size: tuple[int, int] = (1500, 960),
) -> list[Path]:
    """Open the window on ``bench``, populate it, save the PNGs; returns their paths."""
    from gui.app import MainWindow, create_app

    app = create_app()  # noqa: F841 - kept alive while the window lives
    tmp = tempfile.TemporaryDirectory(prefix="xbar-gui-shots-")
    try:
        settings = settings or Settings(Path(tmp.name) / "settings.ini")
        window = MainWindow(settings, bench=bench, data_dir=data_dir or Path(tmp.name) / "data")
        window.resize(*size)
        window.show()
        try:
            populate(window, iv_data=iv_data, quick=quick)
            return save_panel_pngs(window, out_dir)
        finally:
            window.close()
            window.deleteLater()
            process_events_for(0.05)
    finally:
        tmp.cleanup()
