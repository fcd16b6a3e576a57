"""Fabrication BO (calibration/fabrication.py, METHODS section 4) and ``xbar fab``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration.fabrication import (
    DEFAULT_GRID,
    PEROVSKITES,
    Conditions,
    FabricationInputError,
    Grid,
    History,
    build_history,
    parse_length_nm,
    parse_length_um,
    parse_perovskite,
    parse_time_min,
    read_conditions,
    read_grid,
    read_history,
    suggest,
    write_history,
)
from xbar.cli import main

# ---------------------------------------------------------------------------------------------
# unit parsers

positive = st.floats(1e-3, 1e4, allow_nan=False, allow_infinity=False)
spaces = st.sampled_from(["", " ", "  "])


@given(positive, spaces, st.sampled_from(["um", "µm", "μm", "UM", "micron"]))
def test_length_um_round_trip(x: float, sp: str, unit: str) -> None:
    assert parse_length_um(f"{sp}{x!r}{sp}{unit}{sp}") == pytest.approx(x, rel=1e-12)


@given(positive, spaces)
def test_length_units_convert(x: float, sp: str) -> None:
    assert parse_length_um(f"{x!r}{sp}nm") == pytest.approx(x / 1000, rel=1e-12)
    assert parse_length_nm(f"{x!r}{sp}um") == pytest.approx(x * 1000, rel=1e-12)
    assert parse_length_nm(f"{x!r}nm") == pytest.approx(x, rel=1e-12)
    assert parse_length_nm(x) == x and parse_length_nm(repr(x)) == x  # bare number: nm


@given(
    positive,
    st.sampled_from([("min", 1.0), ("s", 1 / 60), ("h", 60.0), ("hrs", 60.0), ("MIN", 1.0)]),
)
def test_time_units(x: float, unit: tuple[str, float]) -> None:
    assert parse_time_min(f"{x!r}{unit[0]}") == pytest.approx(x * unit[1], rel=1e-12)


@given(st.text(max_size=12))
def test_parsers_reject_garbage_with_value_error(text: str) -> None:
    for parse in (parse_length_um, parse_length_nm, parse_time_min):
        try:
            out = parse(text)
        except ValueError as exc:
            assert repr(text)[:10] in str(exc) or "unknown unit" in str(exc)
        else:  # only well-formed positive quantities get through
            assert out > 0 and math.isfinite(out)


def test_parser_errors_are_clear() -> None:
    with pytest.raises(ValueError, match=r"'1.5 furlong': unknown unit 'furlong'"):
        parse_length_um("1.5 furlong")
    with pytest.raises(ValueError, match=r"'-3nm' is not a positive length"):
        parse_length_nm("-3nm")
    with pytest.raises(ValueError, match=r"'abc' is not a time"):
        parse_time_min("abc")
    with pytest.raises(ValueError, match=r"unknown perovskite 'CsPbBr3'"):
        parse_perovskite("CsPbBr3")
    assert [parse_perovskite(p) for p in ("MAI", "fai", " MABr ", "CsPbI3", "MAPbI3")] == [
        "MAPbI3",
        "FAPbI3",
        "MAPbBr3",
        "CsPbI3",
        "MAPbI3",
    ]


# ---------------------------------------------------------------------------------------------
# conditions.csv and history files


def test_conditions_csv_parsed(shared_iv_dir: Path) -> None:
    rows = read_conditions(shared_iv_dir / "conditions.csv")
    assert len(rows) == 30
    name, c = rows[0]
    assert name.endswith("_no_wait_2.xlsx")
    assert c == Conditions("MAPbI3", 1.5, 200.0, 10.0, 100.0)
    assert {c.perovskite for _, c in rows} == set(PEROVSKITES)
    assert {c.nw_length_um for _, c in rows} == {0.7, 1.0, 1.2, 1.5, 1.6, 1.8, 2.0, 2.5, 3.0}
    assert {c.nw_diameter_nm for _, c in rows} == {5.0, 50.0, 200.0, 250.0, 300.0}
    assert {c.pb_ed_min for _, c in rows} == {8.0, 10.0, 15.0, 18.0, 20.0, 25.0}
    assert {c.ag_thickness_nm for _, c in rows} == {100.0, 150.0, 200.0, 600.0}
    files = {p.name for p in shared_iv_dir.glob("*.xlsx")}
    assert {n for n, _ in rows} == files


def _history_csv(path: Path, rows: list[list[object]], header: list[str] | None = None) -> Path:
    header = header or [
        "perovskite",
        "nw_length_um",
        "nw_diameter_nm",
        "pb_ed_min",
        "ag_thickness_nm",
        "usability",
    ]
    path.write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")
    return path


def test_history_round_trip_and_units(tmp_path: Path) -> None:
    path = _history_csv(
        tmp_path / "h.csv",
        [["MAI", "1.5um", "200nm", "15min", "0.2um", 0.5], ["FAPbI3", 2, 100, 10, 600, 0.25]],
    )
    h = read_history(path)
    assert h.conditions == (
        Conditions("MAPbI3", 1.5, 200.0, 15.0, 200.0),
        Conditions("FAPbI3", 2.0, 100.0, 10.0, 600.0),
    )
    assert h.usability.tolist() == [0.5, 0.25]
    again = read_history(write_history(tmp_path / "h2.csv", h))
    assert again.conditions == h.conditions and again.usability.tolist() == [0.5, 0.25]


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (
            [["MAI", 1, 2, 3, 0.5]],
            ["perovskite", "nw_length_um", "nw_diameter_nm", "pb_ed_min", "usability"],
            r"^h\.csv: missing column\(s\) ag_thickness_nm$",
        ),
        (
            [["MAI", 1, 2, 3, 4, "high"], ["MAI", 1, 2, 3, 4, 0.1]],
            None,
            r"^h\.csv: row 2, column usability: 'high' is not a number$",
        ),
        (
            [["MAI", 1, 2, 3, 4, 0.1], ["XYZ", 1, 2, 3, 4, 0.1]],
            None,
            r"^h\.csv: row 3, column perovskite: unknown perovskite 'XYZ'",
        ),
        (
            [["MAI", 1, 2, 3, 4, 1.5], ["MAI", 1, 2, 3, 4, 0.1]],
            None,
            r"^h\.csv: row 2, column usability: 1\.5 is not in \[0, 1\]$",
        ),
        (
            [["MAI", "1.5 parsec", 2, 3, 4, 0.1]],
            None,
            r"^h\.csv: row 2, column nw_length_um: '1.5 parsec': unknown unit",
        ),
        ([["MAI", 1, 2, 3, 4, 0.1]], None, r"^h\.csv: 1 data row\(s\); need at least 2$"),
    ],
)
def test_bad_history_files(tmp_path: Path, rows, header, message) -> None:
    path = _history_csv(tmp_path / "h.csv", rows, header)
    with pytest.raises(FabricationInputError, match=message):
        read_history(path)


# ---------------------------------------------------------------------------------------------
# grid


def test_default_grid_size_and_encoding() -> None:
    g = DEFAULT_GRID
    assert g.shape == (4, 8, 7, 6, 6) and g.size == 8064
    assert g.describe().startswith("8,064 configurations (4 perovskites × 8 lengths")
    enc = g.encoded()
    assert enc.shape == (8064, 5) and enc.min() == 0.0 and enc.max() == 1.0
    assert len(np.unique(enc, axis=0)) == 8064
    c = g.conditions(1234)
    np.testing.assert_allclose(g.encode([c])[0], enc[1234])


def test_grid_files(tmp_path: Path) -> None:
    js = tmp_path / "g.json"
    js.write_text(
        json.dumps(
            {
                "perovskite": ["MAI", "CsPbI3"],
                "nw_length_um": ["1um", "2um"],
                "pb_ed_min": ["0.5h", 45],
            }
        )
    )
    g = read_grid(js)
    assert g.perovskite == ("MAPbI3", "CsPbI3") and g.nw_length_um == (1.0, 2.0)
    assert g.pb_ed_min == (30.0, 45.0) and g.nw_diameter_nm == DEFAULT_GRID.nw_diameter_nm
    assert g.size == 2 * 2 * 7 * 2 * 6
    toml = tmp_path / "g.toml"
    toml.write_text('ag_thickness_nm = ["100nm", "0.3um"]\n')
    assert read_grid(toml).ag_thickness_nm == (100.0, 300.0)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nw_width": [1]}))
    with pytest.raises(FabricationInputError, match=r"^bad\.json: unknown grid variable"):
        read_grid(bad)
    bad.write_text(json.dumps({"nw_length_um": [1, 1]}))
    with pytest.raises(FabricationInputError, match=r"^bad\.json: .*repeated levels"):
        read_grid(bad)
    bad.write_text("{")
    with pytest.raises(FabricationInputError, match=r"^bad\.json: not valid JSON"):
        read_grid(bad)


# ---------------------------------------------------------------------------------------------
# suggestions


def _landscape_history(n: int, seed: int) -> tuple[History, np.ndarray]:
    from bench.fab import synthetic_landscape

    truth = synthetic_landscape(DEFAULT_GRID.encoded())
    rng = np.random.default_rng(seed)
    idx = rng.choice(DEFAULT_GRID.size, size=n, replace=False)
    y = np.clip(truth[idx] + rng.normal(0, 0.02, n), 0, 1)
    return History(tuple(DEFAULT_GRID.conditions(int(i)) for i in idx), y), truth


def test_suggest_returns_k_distinct_points_sorted_by_ei() -> None:
    history, _ = _landscape_history(12, seed=3)
    out = suggest(history, k=5, seed=0)
    assert len(out) == 5
    assert len({s.grid_index for s in out}) == 5
    assert len({s.conditions for s in out}) == 5
    assert [s.ei for s in out] == sorted((s.ei for s in out), reverse=True)
    measured = set(history.conditions)
    for s in out:
        assert s.conditions == DEFAULT_GRID.conditions(s.grid_index)
        assert s.conditions not in measured
        assert math.isfinite(s.mean) and math.isfinite(s.std) and s.std > 0 and s.ei >= 0
    again = suggest(history, k=5, seed=0)
    assert [s.grid_index for s in again] == [s.grid_index for s in out]  # deterministic
    with pytest.raises(ValueError, match="k must be in 1"):
        suggest(history, k=0)


def test_suggestion_moves_toward_the_optimum() -> None:
    from bench.fab import _X_MAIN

    enc = DEFAULT_GRID.encoded()
    for seed in (1, 2, 3):
        history, truth = _landscape_history(15, seed)
        (s,) = suggest(history, k=1, seed=seed)
        hist_idx = [
            int(np.flatnonzero((enc == DEFAULT_GRID.encode([c])[0]).all(1))[0])
            for c in history.conditions
        ]
        d_hist = np.linalg.norm(enc[hist_idx] - _X_MAIN, axis=1)
        d_new = np.linalg.norm(enc[s.grid_index] - _X_MAIN)
        # closer to the optimum than the typical measured point, and predicted good
        assert d_new < np.median(d_hist)
        assert truth[s.grid_index] > np.median(history.usability)


def test_suggest_on_a_small_custom_grid() -> None:
    grid = Grid(
        perovskite=("MAPbI3",),
        nw_length_um=(1.0, 2.0, 3.0),
        nw_diameter_nm=(100.0,),
        pb_ed_min=(10.0,),
        ag_thickness_nm=(100.0, 200.0),
    )
    h = History(
        (
            Conditions("MAPbI3", 1.0, 100.0, 10.0, 100.0),
            Conditions("MAPbBr3", 3.0, 100.0, 10.0, 200.0),
        ),
        np.array([0.2, 0.6]),
    )
    out = suggest(h, k=4, grid=grid)  # 6 points, the first measured one excluded
    assert len(out) == 4 and all(s.conditions.perovskite == "MAPbI3" for s in out)
    assert Conditions("MAPbI3", 1.0, 100.0, 10.0, 100.0) not in [s.conditions for s in out]
    with pytest.raises(ValueError, match=r"k must be in 1 … 5"):
        suggest(h, k=6, grid=grid)


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_suggest_and_grid(capsys, tmp_path: Path) -> None:
    history, _ = _landscape_history(10, seed=5)
    path = write_history(tmp_path / "h.csv", history)
    assert main(["fab", "suggest", "--history", str(path), "-k", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["grid_size"] == 8064 and doc["history_rows"] == 10
    assert [list(s) for s in doc["suggestions"]] == [
        [
            "perovskite",
            "nw_length_um",
            "nw_diameter_nm",
            "pb_ed_min",
            "ag_thickness_nm",
            "mean",
            "std",
            "ei",
        ]
    ] * 3
    assert main(["fab", "suggest", "--history", str(path), "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("grid: 8,064 configurations")
    assert len([ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]) == 2
    assert main(["fab", "grid"]) == 0
    assert "8,064 configurations" in capsys.readouterr().out
    bad = _history_csv(tmp_path / "bad.csv", [["MAI", 1, 2, 3, 4, "x"], ["MAI", 1, 2, 3, 4, 0.1]])
    assert main(["fab", "suggest", "--history", str(bad)]) == 2
    assert "bad.csv: row 2, column usability: 'x' is not a number" in capsys.readouterr().err


@pytest.mark.slow
def test_history_from_the_shared_data(capsys, shared_iv_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "history.csv"
    assert main(["fab", "history", "--data", str(shared_iv_dir), "--out", str(out)]) == 0
    assert "30 rows" in capsys.readouterr().out
    h = read_history(out)
    assert len(h) == 30 and np.all((h.usability >= 0) & (h.usability <= 1))
    assert h.usability.max() == pytest.approx(0.92, abs=0.01)
    names = [n for n, _ in read_conditions(shared_iv_dir / "conditions.csv")]
    assert sorted(h.labels) == sorted(names)  # every row calibrated (exit code 0 too)
    (s,) = suggest(h, k=1)
    assert s.conditions not in set(h.conditions) and math.isfinite(s.mean)


def test_history_build_reports_missing_and_bad_files(capsys, tmp_path: Path) -> None:
    v = np.concatenate([np.arange(0, 21) * 0.1, np.arange(19, -1, -1) * 0.1])
    rng = np.random.default_rng(0)
    i = (1e-6 * np.exp(v) * v)[:, None] * np.exp(rng.normal(0, 0.05, (v.size, 3)))
    lines = ["voltage,current_cycle1,current_cycle2,current_cycle3"]
    lines += [",".join(repr(float(x)) for x in (v[k], *i[k])) for k in range(v.size)]
    (tmp_path / "good.csv").write_text("\n".join(lines))
    (tmp_path / "bad.csv").write_text("voltage,current_cycle1\n0.1,oops\n")
    header = "file,nw_length,nw_diameter,pb_ed,perovskite,ag_thickness,reported_usability"
    rows = [
        "good.csv,1.2um,200nm,15min,MABr,200nm,0.99",
        "bad.csv,1um,50nm,10min,MAI,100nm,0.5",
        "gone.xlsx,2um,50nm,20min,FAI,600nm,0.5",
    ]
    (tmp_path / "conditions.csv").write_text("\n".join([header, *rows]) + "\n")
    built = build_history(tmp_path / "conditions.csv")
    assert built.history.labels == ("good.csv",)
    assert built.history.conditions == (Conditions("MAPbBr3", 1.2, 200.0, 15.0, 200.0),)
    assert 0.8 < built.history.usability[0] <= 1.0  # from the file, not reported_usability
    assert [f[0] for f in built.failures] == ["bad.csv", "gone.xlsx"]
    assert "bad.csv: column current_cycle1, row 2: 'oops' is not a number" in built.failures[0][1]
    out = tmp_path / "h.csv"
    assert main(["fab", "history", "--data", str(tmp_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "gone.xlsx: no such file or directory" in err
    assert out.read_text().count("\n") == 2  # header + the one good row
