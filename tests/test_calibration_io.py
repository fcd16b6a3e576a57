"""Reading I-V files (calibration/io.py) and calibrating arrays (calibration/batch.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibration.batch import (
    JSON_KEYS,
    CalibrationOptions,
    calibrate_arrays,
    calibrate_file,
    calibrate_paths,
)
from calibration.io import (
    CalibrationInputError,
    find_iv_files,
    read_iv,
    read_iv_all,
    write_iv_hdf5,
)
from calibration.usability import usability

V = [0.0, 0.5, 1.0, 1.5, 2.0, 1.0, 0.0, -1.0, 0.0]


def _currents(n_cycles: int = 3) -> np.ndarray:
    rng = np.random.default_rng(1)
    g = np.array([1, 1, 2, 3, 4, 3, 2, 1, 1], dtype=float)[:, None] * 1e-6
    return g * np.abs(np.array(V))[:, None] * np.exp(rng.normal(0, 0.1, (len(V), n_cycles)))


def _num(x: float) -> str:
    return repr(float(x))


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join("" if c is None else str(c) for c in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _good_csv(path: Path, cycles: tuple[int, ...] = (1, 2, 3)) -> Path:
    i = _currents(len(cycles))
    rows = [[v, *map(_num, i[k])] for k, v in enumerate(V)]
    return _write_csv(path, ["voltage", *[f"current_cycle{c}" for c in cycles]], rows)


def _write_xlsx(path: Path, header: list[object], rows: list[list[object]]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "notes"
    ws.append(["AAO_time", "Pb_time"])
    ws.append(["20min", "15min"])
    data = wb.create_sheet("data")
    data.append(header)
    for r in rows:
        data.append(r)
    wb.save(path)
    return path


# ---------------------------------------------------------------------------------------------
# formats


def test_csv_roundtrip_and_calibration_equals_arrays(tmp_path: Path) -> None:
    path = _good_csv(tmp_path / "dev.csv", cycles=(2, 3, 5))
    iv = read_iv(path)
    assert iv.source_format == "csv" and iv.name == "dev.csv"
    assert iv.cycle_numbers == [2, 3, 5]
    np.testing.assert_array_equal(iv.voltage, V)
    np.testing.assert_array_equal(iv.currents, _currents(3))
    (dev,) = calibrate_file(path)
    assert dev.result == usability(np.array(V), _currents(3))
    assert list(dev.to_json_dict()) == list(JSON_KEYS)


def test_excel_sheet_choice_missing_texts_and_ignored_columns(tmp_path: Path) -> None:
    i = _currents(2)
    rows = [[v, i[k, 0], "NaN" if k == 3 else i[k, 1], 99.0] for k, v in enumerate(V)]
    rows += [[None, None, None, None]] * 50  # padded empty rows, as in the exports
    path = _write_xlsx(
        tmp_path / "dev.xlsx", ["voltage", "current_cycle2", "current_cycle7", None], rows
    )
    iv = read_iv(path)
    assert iv.sheet == "data" and iv.source_format == "xlsx"
    assert iv.cycle_numbers == [2, 7]
    assert iv.currents.shape == (len(V), 2)
    assert math.isnan(iv.currents[3, 1])
    assert iv.ignored_columns == ["(empty header, column D)"]
    (dev,) = calibrate_file(path)
    assert "1 column(s) holding data were ignored" in dev.notes[0]


def test_hdf5_both_layouts_and_multi_sweep_files(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "run.h5"
    i = _currents(3)
    assert write_iv_hdf5(path, "r1c1", V, i, cycles=[4, 5, 6]) == "/iv/r1c1"
    write_iv_hdf5(path, "r1c2", V, i[:, :2] * 2)
    with h5py.File(path, "a") as f:
        g = f.create_group("legacy")
        g["voltage"] = V
        g["current_cycle3"] = i[:, 0]
        g["current_cycle1"] = i[:, 1]
    sweeps = read_iv_all(path)
    assert [s.name for s in sweeps] == ["run.h5:/iv/r1c1", "run.h5:/iv/r1c2", "run.h5:/legacy"]
    assert sweeps[0].cycle_numbers == [4, 5, 6]
    assert sweeps[1].cycle_numbers == [1, 2]
    assert sweeps[2].cycle_numbers == [1, 3]
    np.testing.assert_array_equal(sweeps[2].currents, i[:, [1, 0]])
    np.testing.assert_array_equal(read_iv(path, name="/iv/r1c2").currents, i[:, :2] * 2)
    with pytest.raises(CalibrationInputError, match="run.h5: holds 3 sweeps"):
        read_iv(path)
    assert [d.name for d in calibrate_file(path)] == [s.name for s in sweeps]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.lists(
            st.one_of(st.none(), st.floats(-1e-2, 1e-2, allow_nan=False)), min_size=4, max_size=4
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from([",", ";", "\t"]),
)
def test_csv_parsing_property(tmp_path: Path, rows: list[list[float | None]], sep: str) -> None:
    # voltage always present so no row is dropped; currents may be empty cells
    table = [[0.1 * (k + 1), *r[1:]] for k, r in enumerate(rows)]
    text = sep.join(["voltage", "current_cycle2", "current_cycle3", "current_cycle9"]) + "\n"
    text += "\n".join(sep.join("" if c is None else repr(c) for c in r) for r in table)
    path = tmp_path / "p.csv"
    path.write_text(text)
    iv = read_iv(path, min_cycles=0)
    expected = np.array([[np.nan if c is None else c for c in r] for r in table], dtype=float)
    np.testing.assert_array_equal(iv.voltage, expected[:, 0])
    np.testing.assert_array_equal(iv.currents, expected[:, 1:])
    assert iv.cycle_numbers == [2, 3, 9]


@pytest.mark.parametrize("n_shared", [3])
def test_real_files_messy_layouts(shared_iv_files: list[Path], n_shared: int) -> None:
    by_name = {p.name: p for p in shared_iv_files}
    starts_at_2 = by_name[
        "I-V_data_1.5um_length_200nm_diameter_BT_2V_NA_third_etch_15min_Pb_ED_3h_180C_MAI_no_"
        "200nm_Ag_memory_6V_carbon_paste_no_wait.xlsx"
    ]
    iv = read_iv(starts_at_2)
    assert iv.cycle_numbers[0] == 2 and 6 not in iv.cycle_numbers  # cycles 2…5, 7…
    assert iv.currents.shape[0] == 244  # the 16,385 padded sheet rows are dropped
    text_nan = by_name[
        "I-V_data_1.2um_length_200nm_diameter_BT_4V_NA_third_etch_15min_Pb_ED_10h_180+210C_FAI_"
        "PMMA_200nm_Ag_memory_6V_probe_no_wait.xlsx"
    ]
    assert np.isnan(read_iv(text_nan).currents).sum() >= 2  # 'NaN' texts in the sheet
    up_only = by_name[
        "I-V_data_1.2um_length_250nm_diameter_BT_4V_20s_third_etch_15min_Pb_ED_3h_180C_MAI_no_"
        "200nm_Ag_memory_6V_carbon_paste_no_wait.xlsx"
    ]
    iv = read_iv(up_only)
    assert np.nanmin(iv.voltage) == 0.0 and np.nanmax(iv.voltage) == pytest.approx(6.0)
    data_second_sheet = by_name[
        "I-V_data_1.2um_length_200nm_diameter_BT_4V_NA_third_etch_15min_Pb_ED_1h_180C_MAI_no_"
        "100nm_Ag_memory_5V_carbon_paste_no_wait.xlsx"
    ]
    iv = read_iv(data_second_sheet)
    assert iv.sheet == "I-V_data_20min_AAO_15min_Pb_ED_"
    assert len(iv.cycle_numbers) == 97 and len(iv.ignored_columns) == 47


def test_find_iv_files_skips_conditions_tables(tmp_path: Path) -> None:
    _good_csv(tmp_path / "a.csv")
    _write_csv(tmp_path / "conditions.csv", ["file", "perovskite"], [["a.csv", "MAI"]])
    (tmp_path / "b.xlsx").write_bytes(b"")
    (tmp_path / "~$b.xlsx").write_bytes(b"")
    (tmp_path / "notes.md").write_text("x")
    assert [p.name for p in find_iv_files([tmp_path])] == ["a.csv", "b.xlsx"]
    assert find_iv_files([tmp_path / "notes.md"]) == [tmp_path / "notes.md"]


# ---------------------------------------------------------------------------------------------
# each kind of bad input: the message names the file and the problem


def test_no_voltage_column(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "novolt.csv", ["bias", "current_cycle1", "current_cycle2"], [[0.1, 1e-9, 1e-9]]
    )
    with pytest.raises(CalibrationInputError, match=r"^novolt\.csv: no 'voltage' column"):
        read_iv(path)
    xlsx = _write_xlsx(tmp_path / "novolt.xlsx", ["bias", "current_cycle1"], [[0.1, 1e-9]])
    with pytest.raises(
        CalibrationInputError,
        match=r"^novolt\.xlsx: no 'voltage' column in any sheet \('notes', 'data'\)",
    ):
        read_iv(xlsx)


def test_no_positive_branch(tmp_path: Path) -> None:
    v = [0.0, -0.5, -1.0, -0.5, 0.0]
    rows = [[x, 1e-9, 2e-9] for x in v]
    path = _write_csv(tmp_path / "neg.csv", ["voltage", "current_cycle1", "current_cycle2"], rows)
    with pytest.raises(CalibrationInputError, match=r"^neg\.csv: no positive SET branch"):
        calibrate_file(path)
    batch = calibrate_paths([path])
    assert batch.devices == [] and batch.failures[0][0] == "neg.csv"


def test_fewer_than_two_cycles_with_data(tmp_path: Path) -> None:
    i = _currents(1)
    rows = [[v, _num(i[k, 0]), None] for k, v in enumerate(V)]
    path = _write_csv(tmp_path / "one.csv", ["voltage", "current_cycle4", "current_cycle5"], rows)
    with pytest.raises(
        CalibrationInputError,
        match=r"^one\.csv: 1 cycle\(s\) with data \(cycle 4\); need at least 2",
    ):
        read_iv(path)
    with pytest.raises(CalibrationInputError, match=r"^one\.csv: 1 cycle\(s\) with data"):
        calibrate_file(path)
    assert read_iv(path, min_cycles=1).cycle_numbers == [4, 5]
    with pytest.raises(CalibrationInputError, match=r"^live r2c3: 1 cycle\(s\) with data"):
        calibrate_arrays("live r2c3", V, i)
    one = calibrate_arrays("x", V, i, CalibrationOptions(min_cycles=1))
    assert one.result.sigma_hat == 0.0


def test_text_where_a_number_belongs(tmp_path: Path) -> None:
    i = _currents(3)
    rows = [[v, *map(_num, i[k])] for k, v in enumerate(V)]
    rows[2][3] = "abc"  # file row 4 (header is row 1)
    xrows = [[v, *i[k]] for k, v in enumerate(V)]
    xrows[5][0] = "1,5 V"
    header = ["voltage", "current_cycle1", "current_cycle2", "current_cycle3"]
    for write, name, table, message in (
        (_write_csv, "bad.csv", rows, "column current_cycle3, row 4: 'abc' is not a number"),
        (_write_xlsx, "bad.xlsx", xrows, "column voltage (A), row 7: '1,5 V' is not a number"),
    ):
        with pytest.raises(CalibrationInputError) as exc:
            read_iv(write(tmp_path / name, header, table))
        assert str(exc.value) == f"{name}: {message}"


def test_truncated_or_corrupt_files(tmp_path: Path) -> None:
    i = _currents(3)
    full = _write_xlsx(
        tmp_path / "full.xlsx",
        ["voltage", "current_cycle1", "current_cycle2"],
        [[v, *i[k, :2]] for k, v in enumerate(V)],
    )
    data = full.read_bytes()
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        CalibrationInputError, match=r"^cut\.xlsx: cannot be read as an Excel workbook \(truncated"
    ):
        read_iv(cut)
    h5 = tmp_path / "cut.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(CalibrationInputError, match=r"^cut\.h5: cannot be read as an HDF5 file"):
        read_iv(h5)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01voltage")
    with pytest.raises(CalibrationInputError, match=r"^bin\.csv: not a .*text CSV file"):
        read_iv(binary)


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "sweep.dat"
    path.write_text("voltage,current_cycle1\n")
    with pytest.raises(
        CalibrationInputError, match=r"^sweep\.dat: unsupported file type '\.dat'; expected one of"
    ):
        read_iv(path)
    with pytest.raises(CalibrationInputError, match=r"^gone\.csv: no such file"):
        read_iv(tmp_path / "gone.csv")


def test_hdf5_bad_layouts(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("iv/a")
        g["voltage"] = V
        g["current"] = np.ones((3, 2))
        f.create_group("iv/b")["voltage"] = np.array([b"x"] * 3)
    with pytest.raises(
        CalibrationInputError,
        match=r"^odd\.h5:/iv/a: dataset current must have shape \(9, cycles\)",
    ):
        read_iv_all(path)
    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()
    with pytest.raises(CalibrationInputError, match=r"^empty\.h5: no group holds a 'voltage'"):
        read_iv(empty)


def test_parallel_batch_equals_serial(tmp_path: Path) -> None:
    paths = [_good_csv(tmp_path / f"d{k}.csv", cycles=(1, 2, 3 + k)) for k in range(3)]
    bad = _write_csv(tmp_path / "bad.csv", ["voltage", "current_cycle1"], [[0.1, "x"]])
    serial = calibrate_paths([*paths, bad])
    parallel = calibrate_paths([*paths, bad], jobs=2)
    assert [d.name for d in parallel.devices] == ["d0.csv", "d1.csv", "d2.csv"]
    assert [d.result for d in parallel.devices] == [d.result for d in serial.devices]
    assert parallel.failures == serial.failures
    assert parallel.failures[0][0] == "bad.csv"
