"""``xbar calibrate``: JSON, table, batches with bad files, reports and noise profiles."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from calibration.batch import JSON_KEYS
from calibration.profile import DeviceNoiseProfile
from xbar.cli import main

V = np.concatenate([np.arange(0, 41) * 0.1, np.arange(39, -41, -1) * 0.1, np.arange(-39, 1) * 0.1])


def _device_csv(path: Path, noise: float, seed: int, n_cycles: int = 4) -> Path:
    """A SET-like sweep: G rises with V on the up branch, log-normal noise per point."""
    rng = np.random.default_rng(seed)
    g = 1e-6 * np.exp(np.clip(V, 0, None))
    i = g[:, None] * V[:, None] * np.exp(rng.normal(0, noise, (V.size, n_cycles)))
    header = ",".join(["voltage", *[f"current_cycle{c + 1}" for c in range(n_cycles)]])
    lines = [header] + [
        ",".join([repr(float(V[k])), *map(repr, map(float, i[k]))]) for k in range(V.size)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def three_devices(tmp_path: Path) -> list[Path]:
    return [
        _device_csv(tmp_path / "quiet.csv", 0.02, 1),
        _device_csv(tmp_path / "noisy.csv", 0.5, 2),
        _device_csv(tmp_path / "medium.csv", 0.15, 3),
    ]


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_has_exactly_the_keys(capsys, three_devices: list[Path]) -> None:
    code, out, err = _run(capsys, ["calibrate", "--json", *map(str, three_devices)])
    assert code == 0, err
    data = json.loads(out)
    assert [d["file"] for d in data] == ["quiet.csv", "medium.csv", "noisy.csv"]
    for d in data:
        assert list(d) == list(JSON_KEYS)
        assert set(d) == {
            "file",
            "n_cycles",
            "branch_points",
            "lcis_start_v",
            "lcis_stop_v",
            "lcis_length",
            "l_min",
            "alpha_nm",
            "n_residuals",
            "sigma_hat",
            "sigma_up",
            "usability",
        }
        assert 0.0 <= d["usability"] <= 1.0
        assert d["n_cycles"] == 4 and d["branch_points"] == 40
    assert data[0]["usability"] > 0.9 > data[2]["usability"]


def test_table_is_sorted_by_usability(capsys, three_devices: list[Path]) -> None:
    code, out, _ = _run(capsys, ["calibrate", *map(str, three_devices)])
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["U", "alpha_nm"] and lines[0].split()[-1] == "file"
    rows = [ln.split() for ln in lines[2:]]
    u = [float(r[0]) for r in rows]
    assert u == sorted(u, reverse=True) and len(u) == 3
    assert [r[-1] for r in rows] == ["quiet.csv", "medium.csv", "noisy.csv"]


def test_batch_goes_on_past_a_bad_file_and_exits_2(
    capsys, tmp_path: Path, three_devices: list[Path]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("voltage,current_cycle1,current_cycle2\n0.1,1e-9,abc\n")
    odd = tmp_path / "sweep.dat"
    odd.write_text("x")
    argv = ["calibrate", "--json", str(three_devices[0]), str(bad), str(odd), str(three_devices[1])]
    code, out, err = _run(capsys, argv)
    assert code == 2
    assert [d["file"] for d in json.loads(out)] == ["quiet.csv", "noisy.csv"]
    assert (
        "xbar calibrate: error: bad.csv: column current_cycle2, row 2: 'abc' is not a number" in err
    )
    assert "xbar calibrate: error: sweep.dat: unsupported file type '.dat'" in err
    assert "2 of 4 device(s) failed" in err


def test_directories_are_expanded(capsys, tmp_path: Path, three_devices: list[Path]) -> None:
    (tmp_path / "conditions.csv").write_text("file,perovskite\nquiet.csv,MAI\n")
    code, out, _ = _run(capsys, ["calibrate", "--json", str(tmp_path)])
    assert code == 0
    assert sorted(d["file"] for d in json.loads(out)) == ["medium.csv", "noisy.csv", "quiet.csv"]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run(capsys, ["calibrate", str(empty)])
    assert code == 2 and "no I-V files found" in err


def test_options_reach_the_calculation(capsys, tmp_path: Path) -> None:
    # the hand case A of test_usability: Ḡ = 1, 3, 2, 4 on 0.5 … 2 V
    v = [0.0, 0.5, 1.0, 1.5, 2.0, 1.0, 0.0]
    g = [[0, 0], [1, 1], [2, 4], [3, 1], [2, 6], [0, 0], [0, 0]]
    lines = ["voltage,current_cycle1,current_cycle2"] + [
        f"{x!r},{a * x!r},{b * x!r}" for x, (a, b) in zip(v, g)
    ]
    path = tmp_path / "hand.csv"
    path.write_text("\n".join(lines))
    (d0,) = json.loads(_run(capsys, ["calibrate", "--json", str(path)])[1])
    assert d0["lcis_length"] == 2 and d0["usability"] == pytest.approx(0.4350753238, abs=1e-9)
    (d1,) = json.loads(
        _run(capsys, ["calibrate", "--json", "--tolerated-decreases", "1", str(path)])[1]
    )
    assert d1["lcis_length"] == 4 and d1["usability"] == pytest.approx(0.4380312192, abs=1e-9)
    (d2,) = json.loads(
        _run(
            capsys, ["calibrate", "--json", "--sigma", "hat", "--lmin-fraction", "1.0", str(path)]
        )[1]
    )
    assert d2["l_min"] == 4 and d2["alpha_nm"] == 0.5
    assert d2["usability"] == pytest.approx(0.5 * np.exp(-d0["sigma_hat"]), abs=1e-12)
    with pytest.raises(SystemExit) as exc:
        main(["calibrate", "--lmin-fraction", "0", str(path)])
    assert exc.value.code == 2


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_report_pngs_and_csv_match_json(capsys, tmp_path: Path, three_devices: list[Path]) -> None:
    rep = tmp_path / "rep"
    code, out, err = _run(
        capsys, ["calibrate", "--json", "--report", str(rep), *map(str, three_devices[:2])]
    )
    assert code == 0, err
    data = json.loads(out)
    for name in ("quiet", "noisy"):
        png = rep / f"{name}.png"
        assert png.stat().st_size > 40_000
        w, h = _png_size(png)
        assert w > 1000 and h > 700
    with (rep / "calibration_summary.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(JSON_KEYS)
    assert len(rows) == len(data) == 2
    for row, d in zip(rows, data):
        assert row["file"] == d["file"]
        for key in JSON_KEYS[1:]:
            assert float(row[key]) == d[key]  # written with repr: exact


def test_profiles_round_trip(capsys, tmp_path: Path, three_devices: list[Path]) -> None:
    out_dir = tmp_path / "profiles"
    code, out, _ = _run(
        capsys, ["calibrate", "--json", "--profile-out", str(out_dir), *map(str, three_devices)]
    )
    assert code == 0
    for d in json.loads(out):
        prof = DeviceNoiseProfile.load(out_dir / f"{Path(d['file']).stem}.profile.json")
        assert prof.name == d["file"]
        assert prof.sigma == d["sigma_up"]
        assert prof.alpha_nm == d["alpha_nm"] and prof.usability == d["usability"]
        assert prof.lcis_length == d["lcis_length"] and prof.l_min == d["l_min"]
        assert len(prof.mean_curve_g) == d["branch_points"]
        assert prof.mean_curve_v[prof.lcis_start] == d["lcis_start_v"]
        assert all(g > 0 for g in prof.mean_curve_g)
    code, out, _ = _run(
        capsys,
        [
            "calibrate",
            "--json",
            "--sigma",
            "hat",
            "--profile-out",
            str(out_dir),
            str(three_devices[0]),
        ],
    )
    (d,) = json.loads(out)
    assert DeviceNoiseProfile.load(out_dir / "quiet.profile.json").sigma == d["sigma_hat"]


@pytest.mark.slow
def test_all_shared_files_through_the_cli(capsys, shared_iv_dir: Path) -> None:
    code, out, err = _run(capsys, ["calibrate", "--json", str(shared_iv_dir)])
    assert code == 0, err
    data = json.loads(out)
    assert len(data) == 30  # conditions.csv is skipped
    u = [d["usability"] for d in data]
    assert all(0.0 <= x <= 1.0 for x in u) and u == sorted(u, reverse=True)
    assert max(u) == pytest.approx(0.92, abs=0.01) and min(u) < 0.05
