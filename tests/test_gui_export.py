"""Issue 17, item 2: export everywhere — I-V sweeps (CSV and xlsx in the Keithley layout
``xbar calibrate`` reads: signed current at full precision, compliance flags, metadata), maps,
the calibration table with the conditions joined, programming results — from visible buttons and
from the data file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from calibration.io import find_iv_files, read_iv
from gui.export import MAP_COLUMNS, PROGRAM_COLUMNS, write_iv
from xbar.cli import main as xbar


def table_rows(path: Path) -> tuple[list[str], list[dict[str, str]], list[str]]:
    """(header, rows, metadata lines) of an exported CSV."""
    lines = path.read_text(encoding="utf-8").splitlines()
    meta = [ln for ln in lines if ln.startswith("#") or ln.startswith('"#')]
    body = [ln for ln in lines if ln not in meta]
    reader = csv.DictReader(body)
    rows = list(reader)
    return list(reader.fieldnames or []), rows, meta


def calibrate_json(capsys, *paths: Path) -> list[dict]:
    capsys.readouterr()
    assert xbar(["calibrate", *map(str, paths), "--json"]) == 0
    out = capsys.readouterr()
    assert "ignored" not in out.err  # the compliance flags and the metadata are known
    return json.loads(out.out)


def measured_sweep(window):
    iv = window.iv_panel
    iv.apply_preset("quick look")  # the CLI's live protocol at 0.5 V steps, 2 cycles
    iv.set_cell(3, 4)
    assert iv.start_sweep()
    assert window.runner.wait_idle(120)
    assert iv.last is not None and iv.last.usability is not None
    return iv


def test_iv_export_round_trips_through_xbar_calibrate(window, tmp_path, capsys) -> None:
    iv = measured_sweep(window)
    sweep = iv.last
    assert iv.export_csv_btn.isEnabled() and iv.export_xlsx_btn.isEnabled()
    shown_u = sweep.usability.usability  # what the panel shows (and grades in Calibration)
    assert f"U = {shown_u:.3f}" in iv.result_label.text()
    csv_path = iv.export_sweep(tmp_path / "sweep.csv")
    xlsx_path = iv.export_sweep(tmp_path / "sweep.xlsx")
    results = calibrate_json(capsys, csv_path, xlsx_path)
    assert len(results) == 2
    for r in results:
        assert abs(r["usability"] - shown_u) <= 1e-9, r
    cal_row = window.calibration_panel.find_row(sweep.name)
    assert abs(window.calibration_panel.row_values(cal_row)["U"][1] - shown_u) <= 1e-9
    # the file holds the signed currents bit for bit, the flags and the metadata
    for path in (csv_path, xlsx_path):
        data = read_iv(path)
        np.testing.assert_array_equal(data.voltage, sweep.voltage)
        np.testing.assert_array_equal(data.currents, sweep.current)
        assert (data.currents < 0).any() and (data.currents > 0).any()
        assert data.ignored_columns == []
    header, rows, meta = table_rows(csv_path)
    n = sweep.current.shape[1]
    assert header == ["voltage"] + [f"current_cycle{c + 1}" for c in range(n)] + [
        f"compliance_cycle{c + 1}" for c in range(n)
    ]
    flags = np.array([[int(r[f"compliance_cycle{c + 1}"]) for c in range(n)] for r in rows])
    np.testing.assert_array_equal(flags.astype(bool), sweep.compliance)
    text = "\n".join(meta)
    for key in (
        "bench: sim (SIMULATED",
        "cycles: 2",
        "biasing (V >= 0): cols-2v/3",
        "biasing (V < 0): v/3",
        "usability U (METHODS 1)",
        "data file:",
    ):
        assert key in text, key
    # a folder of exports is found by `xbar calibrate DIR` despite the metadata lines
    assert find_iv_files([tmp_path]) == sorted([csv_path, xlsx_path])


def test_tiny_currents_keep_their_precision_and_sign(tmp_path) -> None:
    v = np.array([0.0, 0.1, 0.2, -0.1, 0.0])
    i = np.array([[0.0, 3.2e-11, 1.234567890123e-12, -4.5e-14, np.nan]]).T.repeat(2, axis=1)
    path = write_iv(tmp_path / "t.csv", v, i, metadata={"note": "tiny"})
    data = read_iv(path)
    np.testing.assert_array_equal(data.currents[:4], i[:4])  # bit for bit, sign kept
    assert np.isnan(data.currents[4]).all()  # a missing point is an empty cell


def test_plot_menu_exports_the_signed_data_not_the_plotted_magnitude(window, tmp_path) -> None:
    iv = measured_sweep(window)
    iv.log_scale.setChecked(True)  # the plot shows |I| now
    texts = [a.text() for a in iv.plot.scene().contextMenu]
    assert texts == ["Export sweep as CSV…", "Export sweep as xlsx…"]  # not pyqtgraph's
    iv.ask_save_file = lambda *a: str(tmp_path / "menu.csv")
    iv.plot.scene().contextMenu[0].trigger()
    np.testing.assert_array_equal(read_iv(tmp_path / "menu.csv").currents, iv.last.current)


def test_map_and_programming_exports(window, tmp_path) -> None:
    xb = window.crossbar_panel
    assert not xb.export_map_btn.isEnabled() and not xb.export_program_btn.isEnabled()
    assert xb.read_all()
    assert window.runner.wait_idle(120)
    xb.select_block(0, 0, 0, 1)
    xb.target_us.setValue(8.0)
    assert xb.program_selected()
    assert window.runner.wait_idle(120)
    assert xb.export_map_btn.isEnabled() and xb.export_program_btn.isEnabled()
    header, rows, meta = table_rows(xb.export_map(tmp_path / "map.csv"))
    assert tuple(header) == MAP_COLUMNS and len(rows) == 100
    g = np.array([float(r["conductance_S"]) for r in rows]).reshape(10, 10)
    np.testing.assert_array_equal(g, xb.g_map)
    r00 = rows[0]
    assert float(r00["resistance_ohm"]) == 1.0 / xb.g_map[0, 0]
    assert float(r00["target_S"]) == 8e-6
    assert float(r00["error_rel"]) == xb.g_map[0, 0] / 8e-6 - 1
    assert rows[5]["target_S"] == "" and rows[5]["error_rel"] == ""
    assert any("read voltage" in m for m in meta)
    header, rows, meta = table_rows(xb.export_programming(tmp_path / "prog.csv"))
    assert tuple(header) == PROGRAM_COLUMNS
    rep = {(c.row, c.col): c for c in xb.last_program.cells}
    assert {(int(r["row"]), int(r["col"])) for r in rows} == set(rep)
    for r in rows:
        c = rep[(int(r["row"]), int(r["col"]))]
        assert float(r["target_S"]) == c.target and float(r["achieved_S"]) == c.final
        assert float(r["error_rel"]) == c.rel_error and int(r["pulses"]) == c.pulses
        assert r["converged"] == ("1" if c.converged else "0")


def test_export_from_the_data_file(window, tmp_path, capsys) -> None:
    iv = measured_sweep(window)
    xb = window.crossbar_panel
    xb.set_selection({(2, 2)})
    xb.target_us.setValue(12.0)
    assert xb.program_selected()
    assert window.runner.wait_idle(120)
    written = window.export_data_file(window.session.data_path, tmp_path / "out")
    names = {p.name for p in written}
    assert {f"{iv.last.name}.csv", f"{iv.last.name}.xlsx", "map.csv", "programming.csv"} <= names
    data = read_iv(tmp_path / "out" / f"{iv.last.name}.csv")
    np.testing.assert_array_equal(data.currents, iv.last.current)
    (res,) = calibrate_json(capsys, tmp_path / "out" / f"{iv.last.name}.xlsx")
    assert abs(res["usability"] - iv.last.usability.usability) <= 1e-9
    _, rows, _ = table_rows(tmp_path / "out" / "programming.csv")
    c = xb.last_program.cells[0]
    (row,) = [r for r in rows if (int(r["row"]), int(r["col"])) == (2, 2)]
    assert float(row["achieved_S"]) == c.final and int(row["pulses"]) == c.pulses
    _, rows, _ = table_rows(tmp_path / "out" / "map.csv")
    assert float(rows[2 * 10 + 2]["conductance_S"]) == xb.g_map[2, 2]


def test_calibration_table_export_joins_the_conditions(
    offline_window, shared_iv_dir, shared_iv_files, tmp_path
) -> None:
    cal = offline_window.calibration_panel
    assert cal.load_conditions(shared_iv_dir / "conditions.csv")
    assert cal.calibrate_paths(shared_iv_files[:3])
    assert offline_window.runner.wait_idle(120)
    header, rows, meta = table_rows(cal.export_table(tmp_path / "cal.csv"))
    assert header[:2] == ["file", "n_cycles"] and "usability" in header
    assert "nw_length" in header and "perovskite" in header and "compliance_current_a" in header
    with (shared_iv_dir / "conditions.csv").open(newline="") as fh:
        cond = {Path(r["file"]).name: r for r in csv.DictReader(fh)}
    assert len(rows) == 3
    for r in rows:
        dev = next(d for d in cal.devices if d.name == r["file"])
        assert float(r["usability"]) == dev.result.usability
        assert r["nw_length"] == cond[r["file"]]["nw_length"]
        assert r["perovskite"] == cond[r["file"]]["perovskite"]
    us = [float(r["usability"]) for r in rows]
    assert us == sorted(us, reverse=True)
    # the table itself shows the conditions
    row = cal.find_row(rows[0]["file"])
    assert cal.condition_values(row)["nw_length"] == cond[rows[0]["file"]]["nw_length"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_buttons_ask_where_and_write(window, tmp_path, suffix) -> None:
    iv = measured_sweep(window)
    target = tmp_path / f"button{suffix}"
    iv.ask_save_file = lambda *a: str(target)
    (iv.export_csv_btn if suffix == ".csv" else iv.export_xlsx_btn).click()
    np.testing.assert_array_equal(read_iv(target).currents, iv.last.current)
