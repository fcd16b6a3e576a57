"""``xbar train`` and ``xbar robustness`` end to end (small settings)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from calibration.profile import DeviceNoiseProfile
from inference.storage import load_model
from xbar.cli import main


def test_train_erm_writes_a_loadable_model(tmp_path: Path, capsys) -> None:
    stem = tmp_path / "models" / "erm"
    assert main(["train", "--method", "erm", "--data", "moons", "--out", str(stem)]) == 0
    out = capsys.readouterr().out
    assert "software accuracy" in out and "saved" in out
    back = load_model(stem)
    assert back.method == "erm" and back.sizes == (2, 5, 2)
    assert back.accuracies["test"] >= 0.95
    assert f"test {back.accuracies['test']:.3f}" in out


def test_train_bayesmulti_with_profile(tmp_path: Path, capsys) -> None:
    prof = DeviceNoiseProfile(
        name="devA",
        sigma=0.5,
        alpha_nm=1.0,
        usability=0.6065,
        lcis_start=0,
        lcis_length=4,
        l_min=4,
        mean_curve_v=[0.1, 0.2, 0.3, 0.4],
        mean_curve_g=[1e-6, 2e-6, 3e-6, 4e-6],
    )
    path = prof.save(tmp_path / "dev.json")
    stem = tmp_path / "bm"
    argv = [
        "train",
        "--method",
        "bayesmulti",
        "--profile",
        str(path),
        "--bo-init",
        "2",
        "--bo-iters",
        "1",
        "--epochs",
        "60",
        "--out",
        str(stem),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("BO ") == 3 and "devA" in out
    back = load_model(stem.with_suffix(".json"))
    assert back.method == "bayesmulti" and back.target["profile"] == "devA"
    assert len(back.bo_trace) == 3
    assert (back.p1, back.p2) in {(t["p1"], t["p2"]) for t in back.bo_trace}


@pytest.mark.parametrize("usability", ["0", "1.5", "-0.2", "nan"])
def test_train_rejects_bad_usability(tmp_path: Path, capsys, usability: str) -> None:
    argv = [
        "train",
        "--method",
        "bayesmulti",
        "--usability",
        usability,
        "--out",
        str(tmp_path / "x"),
    ]
    assert main(argv) == 2
    assert "--usability must be in (0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_train_rejects_missing_and_bad_profiles(tmp_path: Path, capsys) -> None:
    base = ["train", "--method", "bayesmulti", "--out", str(tmp_path / "x"), "--profile"]
    assert main([*base, str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "xbar-device-profile/1", "name": "d", "sigma": -1}))
    assert main([*base, str(bad)]) == 2
    assert "bad device profile" in capsys.readouterr().err


def test_robustness_cli_writes_csv_and_png(tmp_path: Path, capsys) -> None:
    argv = [
        "robustness",
        "--data",
        "moons",
        "--out",
        str(tmp_path),
        "--trials",
        "3",
        "--bo-init",
        "1",
        "--bo-iters",
        "0",
        "--eval-trials",
        "3",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "BayesMulti - ERM at U <= 0.8" in out
    rows = list(csv.DictReader((tmp_path / "robustness-moons.csv").open()))
    assert len(rows) == 20
    assert {r["method"] for r in rows} == {"ERM", "BayesMulti"}
    assert sorted({float(r["usability"]) for r in rows}) == pytest.approx(
        [0.1 * k for k in range(1, 11)]
    )
    assert all(0.0 <= float(r["mean"]) <= 1.0 and int(r["n_trials"]) == 3 for r in rows)
    png = (tmp_path / "robustness-moons.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_robustness_cli_rejects_bad_arguments(tmp_path: Path, capsys) -> None:
    assert main(["robustness", "--trials", "0", "--out", str(tmp_path)]) == 2
    assert (
        main(["robustness", "--tune", "single", "--tune-usability", "2", "--out", str(tmp_path)])
        == 2
    )
    assert "error" in capsys.readouterr().err
