"""Accuracy versus usability (the figure-2-style study) and its acceptance criterion."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from calibration.profile import DeviceNoiseProfile
from inference.data import make_moons_dataset
from inference.models import MOONS_SIZES
from inference.noise import evaluate
from inference.robustness import (
    DEFAULT_USABILITIES,
    RobustnessRow,
    acceptance_figures,
    format_table,
    plot_robustness,
    robustness_curve,
    run_study,
    write_csv,
)
from inference.training import train_erm


def test_default_levels() -> None:
    assert DEFAULT_USABILITIES == (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


def test_curve_uses_paired_noise_and_the_right_model_per_level(tmp_path: Path) -> None:
    ds = make_moons_dataset(seed=0)
    a = train_erm(ds, MOONS_SIZES, epochs=120, seed=0)
    b = train_erm(ds, MOONS_SIZES, epochs=30, seed=1)
    levels = (1.0, 0.5)
    rows = robustness_curve(ds, a, {1.0: b, 0.5: a}, levels, n_trials=6, seed=3)
    assert [(r.usability, r.method) for r in rows] == [
        (1.0, "ERM"),
        (1.0, "BayesMulti"),
        (0.5, "ERM"),
        (0.5, "BayesMulti"),
    ]
    # level 1 (U = 0.5) uses seed 3 + 1 for both methods: the same model gives the same numbers
    assert rows[2].mean == rows[3].mean and rows[2].std == rows[3].std
    acc = evaluate(a, ds.x_test, ds.y_test, usability=0.5, n_trials=6, seed=4)
    assert rows[2].mean == pytest.approx(acc.mean()) and rows[2].std == pytest.approx(acc.std())
    assert rows[0].std < 1e-12 and rows[0].mean == pytest.approx(a.accuracies["test"])
    assert rows[1].mean == pytest.approx(b.accuracies["test"])
    with pytest.raises(ValueError, match="no BayesMulti model"):
        robustness_curve(ds, a, {1.0: b}, (1.0, 0.7), n_trials=2)
    # outputs
    csv_text = write_csv(rows, tmp_path / "r.csv").read_text().splitlines()
    assert csv_text[0] == "usability,method,mean,std,n_trials,p1,p2,device" and len(csv_text) == 5
    table = format_table(rows)
    assert "1.00" in table and "0.50" in table and "+0.0" in table
    png = plot_robustness(rows, tmp_path / "r.png", title="t", chance=0.5).read_bytes()
    assert png[:4] == b"\x89PNG"


def test_acceptance_figures() -> None:
    rows = []
    for u, e, b in [(1.0, 0.98, 0.97), (0.8, 0.90, 0.895), (0.5, 0.70, 0.80), (0.1, 0.5, 0.52)]:
        rows += [RobustnessRow(u, "ERM", e, 0.0, 10), RobustnessRow(u, "BayesMulti", b, 0.0, 10)]
    fig = acceptance_figures(rows)
    assert fig["worst_gap"] == pytest.approx(-0.5) and fig["worst_at"] == 0.8
    assert fig["best_gain"] == pytest.approx(10.0) and fig["best_at"] == 0.5


def _check_acceptance(study) -> None:
    fig = acceptance_figures(study.rows)
    print(format_table(study.rows))
    print(fig, f"{study.elapsed_s:.0f} s")
    # BayesMulti never more than 1 point below ERM at U <= 0.8, and >= 5 points above somewhere
    assert fig["worst_gap"] >= -1.0, fig
    assert fig["best_gain"] >= 5.0, fig
    means = {(r.usability, r.method): r.mean for r in study.rows}
    assert means[(1.0, "ERM")] >= 0.95 if study.settings["data"] == "moons" else True
    assert all(np.isfinite(r.std) for r in study.rows)


@pytest.mark.slow
def test_acceptance_moons() -> None:
    _check_acceptance(
        run_study("moons", n_trials=10, seed=0, n_init=3, n_iter=10, tune="per-level")
    )


@pytest.mark.slow
def test_acceptance_digits() -> None:
    _check_acceptance(
        run_study("digits", n_trials=10, seed=0, n_init=3, n_iter=10, tune="per-level")
    )


def _device(name: str, sigma: float, non_monotonic: bool) -> DeviceNoiseProfile:
    return DeviceNoiseProfile(
        name=name,
        sigma=sigma,
        alpha_nm=1.0,
        usability=math.exp(-sigma),
        lcis_start=0,
        lcis_length=2 if non_monotonic else 6,
        l_min=6,
        mean_curve_v=[0.1 * k for k in range(8)],
        mean_curve_g=[1e-6, 2e-6, 3e-6, 2.5e-6, 2e-6, 3.5e-6, 4e-6, 4e-6],
    )


def test_default_is_tune_once_and_the_one_model_is_tested_everywhere(tmp_path: Path) -> None:
    dev = _device("devB", 0.8, True)
    study = run_study(
        "moons", usabilities=(1.0, 0.5, 0.2), devices=[dev], n_trials=3, n_init=1, n_iter=0,
        n_eval_trials=2,
    )  # fmt: skip
    assert study.tune == "once" and not study.oracle and study.tune_usability == 0.5
    models = set(map(id, study.bayesmulti.values()))
    assert len(models) == 1 and set(study.bayesmulti) == {1.0, 0.5, 0.2, "devB"}
    (bm,) = {id(m): m for m in study.bayesmulti.values()}.values()
    assert bm.target["usability"] == 0.5  # tuned at the tune level, not at a test level
    assert {(r.usability, r.p1, r.p2) for r in study.rows if r.method == "BayesMulti"} == {
        (u, bm.p1, bm.p2) for u in (1.0, 0.5, 0.2, math.exp(-0.8))
    }
    dev_rows = [r for r in study.rows if r.device == "devB"]
    assert [r.method for r in dev_rows] == ["ERM", "BayesMulti"]
    acc = evaluate(bm, study.dataset.x_test, study.dataset.y_test, profile=dev, n_trials=3, seed=3)
    assert dev_rows[1].mean == pytest.approx(acc.mean())  # level index 3: seed 0 + 3
    table = format_table(study.rows, study.tune, study.tune_usability)
    assert table.splitlines()[0].startswith("BayesMulti tuned once at U=0.5")
    assert "device devB" in table and "ORACLE" not in table
    doc = json.loads(study.write_json(tmp_path / "r.json").read_text())
    assert (doc["tune"], doc["oracle"], doc["tune_usability"]) == ("once", False, 0.5)
    assert doc["devices"] == ["devB"] and len(doc["rows"]) == 8
    assert acceptance_figures(study.rows)["gaps"].keys() == {1.0, 0.5, 0.2}  # levels only


def test_per_level_tuning_is_labelled_an_oracle(tmp_path: Path) -> None:
    study = run_study(
        "moons", usabilities=(1.0, 0.3), n_trials=2, n_init=1, n_iter=0, n_eval_trials=2,
        tune="per-level",
    )  # fmt: skip
    assert study.oracle and study.tune_usability is None
    assert {k: m.target["usability"] for k, m in study.bayesmulti.items()} == {1.0: 1.0, 0.3: 0.3}
    assert "ORACLE" in format_table(study.rows, study.tune, study.tune_usability).splitlines()[0]
    doc = json.loads(study.write_json(tmp_path / "r.json").read_text())
    assert doc["tune"] == "per-level" and doc["oracle"] is True and "ORACLE" in doc["tune_label"]
    with pytest.raises(ValueError, match="tune must be one of"):
        run_study("moons", usabilities=(1.0,), n_trials=1, n_init=1, n_iter=0, tune="single")
