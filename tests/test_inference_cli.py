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
    assert "BayesMulti tuned once at U=0.5; that one model is tested at every level" in out
    assert "ORACLE" not in out
    doc = json.loads((tmp_path / "robustness-moons.json").read_text())
    assert doc["tune"] == "once" and doc["oracle"] is False and len(doc["rows"]) == 20
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
        main(["robustness", "--tune", "once", "--tune-usability", "2", "--out", str(tmp_path)]) == 2
    )
    assert "error" in capsys.readouterr().err


def test_robustness_cli_per_level_is_an_oracle_and_devices_come_from_files(
    tmp_path: Path, capsys
) -> None:
    dev = DeviceNoiseProfile(
        name="devC", sigma=0.7, alpha_nm=1.0, usability=0.4966, lcis_start=0, lcis_length=4,
        l_min=4, mean_curve_v=[0.1, 0.2, 0.3, 0.4], mean_curve_g=[1e-6, 2e-6, 3e-6, 4e-6],
    )  # fmt: skip
    path = dev.save(tmp_path / "devC.json")
    argv = ["robustness", "--out", str(tmp_path), "--trials", "2", "--bo-init", "1",
            "--bo-iters", "0", "--eval-trials", "2", "--tune", "per-level", "--devices",
            str(path)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ORACLE" in out and "device devC" in out
    doc = json.loads((tmp_path / "robustness-moons.json").read_text())
    assert doc["oracle"] is True and doc["devices"] == ["devC"] and len(doc["rows"]) == 22
    assert main([*argv[:-1], str(tmp_path / "missing.xlsx")]) == 2
    assert "--devices" in capsys.readouterr().err


def _deployment_profile_file(tmp_path: Path, shape=(10, 10)) -> Path:
    from test_inference_hardware_model import make_profile

    return make_profile(
        shape, read_noise={"sigma_rel": 0.03}, programming={"converged_fraction": 0.8}
    ).save(tmp_path / f"dp{shape[0]}.json")


@pytest.mark.parametrize("method", ["hwa", "linear", "erm"])
def test_train_against_a_deployment_profile(tmp_path: Path, capsys, method: str) -> None:
    dp = _deployment_profile_file(tmp_path)
    stem = tmp_path / method
    argv = ["train", "--method", method, "--deployment-profile", str(dp), "--epochs", "40",
            "--drift-compensation", "--out", str(stem)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "target hardware: DeploymentModel(test 10x10" in out
    assert "test accuracy under the target hardware (100 trials)" in out
    back = load_model(stem)
    assert back.method == method
    if method == "hwa":
        assert back.target["kind"] == "deployment" and back.target["drift_compensation"] is True
        assert back.training["epochs"] == 40


def test_train_refuses_a_profile_of_another_array_and_hwa_without_a_target(
    tmp_path: Path, capsys
) -> None:
    small = _deployment_profile_file(tmp_path, (2, 2))
    base = ["train", "--method", "hwa", "--out", str(tmp_path / "x")]
    assert main([*base, "--deployment-profile", str(small)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "profile is for a 2x2 array" in err[0] and "2-5-2" in err[0]
    assert main(base) == 2
    assert "--method hwa needs a target" in capsys.readouterr().err
    assert main([*base, "--stuck", "profile"]) == 2
    assert "need --deployment-profile" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
