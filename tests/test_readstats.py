"""Read-voltage statistics of cyclic I-V data (calibration.readstats, xbar calibrate --read-stats)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.batch import JSON_KEYS
from calibration.readstats import BRANCHES, READ_STATS_KEYS, read_stats
from instruments.sweep_plan import cyclic_points
from xbar.cli import main

V = cyclic_points(4.0, -4.0, 0.1)  # 0 -> 4 -> 0 -> -4 -> 0 V, 161 points


def _sweep(g_branch: dict[str, np.ndarray], *, signed: bool = True) -> np.ndarray:
    """Currents (K, cycles) whose conductance is ``g_branch[name][c]`` on every point of that
    branch (HRS-like 1e-7 S elsewhere); the negative side signed (crossbar) or as magnitudes
    (the shared Keithley exports)."""
    cycles = len(next(iter(g_branch.values())))
    k_top, k_min = int(np.argmax(V)), int(np.argmin(V))
    where = {
        "hrs_pos": (V > 0) & (np.arange(V.size) <= k_top),
        "lrs_pos": (V > 0) & (np.arange(V.size) > k_top),
        "lrs_neg": (V < 0) & (np.arange(V.size) <= k_min),
        "hrs_neg": (V < 0) & (np.arange(V.size) > k_min),
    }
    g = np.full((V.size, cycles), 1e-7)
    for name, values in g_branch.items():
        g[where[name]] = values
    i = g * V[:, None]
    return i if signed else np.abs(i)


def test_each_branch_reads_its_own_state_with_sigma_median_drift_and_ratio() -> None:
    rng = np.random.default_rng(0)
    cyc = 12
    ln = {
        "hrs_pos": np.log(1e-7) + 0.3 * rng.standard_normal(cyc),
        "lrs_pos": np.log(2e-5) + 0.05 * np.arange(cyc),  # a pure trend: 0.05 per cycle
        "lrs_neg": np.log(1e-5) + 1.2 * rng.standard_normal(cyc),
        "hrs_neg": np.log(3e-7) + np.zeros(cyc),
    }
    i = _sweep({k: np.exp(v) for k, v in ln.items()})
    stats = read_stats(V, i, 0.2)
    for name in BRANCHES:
        b = stats.branch(name)
        assert b.v == pytest.approx(0.2 if name.endswith("_pos") else -0.2)
        assert b.n == cyc and b.n_clamped == 0
        assert b.sigma_ln_g == pytest.approx(np.std(ln[name], ddof=1), abs=1e-12)
        assert b.g_median == pytest.approx(np.exp(np.median(ln[name])), rel=1e-12)
    assert stats.branch("lrs_pos").drift_per_cycle == pytest.approx(0.05, abs=1e-12)
    assert stats.branch("hrs_neg").drift_per_cycle == pytest.approx(0.0, abs=1e-12)
    assert stats.on_off_ratio == pytest.approx(
        np.exp(np.median(ln["lrs_pos"]) - np.median(ln["hrs_pos"]))
    )
    # the exports' magnitudes below 0 V give the same figures as signed currents
    unsigned = read_stats(V, _sweep({k: np.exp(v) for k, v in ln.items()}, signed=False), 0.2)
    assert unsigned == stats


@settings(max_examples=40, deadline=None)
@given(
    ln_g=st.lists(st.floats(-20.0, -5.0), min_size=2, max_size=15),
    v_read=st.sampled_from([0.1, 0.2, 0.3, 0.5]),
)
def test_sigma_is_the_sample_std_of_ln_g_at_any_read_voltage(
    ln_g: list[float], v_read: float
) -> None:
    g = np.exp(np.array(ln_g))
    i = _sweep({"lrs_pos": g})
    b = read_stats(V, i, v_read).branch("lrs_pos")
    assert b.v == pytest.approx(v_read)
    assert b.n == len(ln_g)
    assert b.sigma_ln_g == pytest.approx(np.std(ln_g, ddof=1), rel=1e-9, abs=1e-12)


def test_clamped_reads_missing_points_and_no_point_near_the_read_voltage() -> None:
    cyc = 6
    i = _sweep({"lrs_pos": np.full(cyc, 2e-6), "hrs_pos": np.full(cyc, 1e-7)})
    top = 25e-6  # above every current of the sweep (8 µA at 4 V)
    k = int(np.flatnonzero((V > 0.19) & (V < 0.21))[1])  # 0.2 V on the way down
    i[k, :3] = top  # three readings at the source's limit: clamped, not conductances
    i[30:40, :] = top  # the SET branch in compliance, as a real sweep
    i[k, 3] = np.nan  # a missing point
    b = read_stats(V, i, 0.2).branch("lrs_pos")
    assert (b.n, b.n_clamped) == (2, 3)
    assert b.g_median == pytest.approx(2e-6)
    # a read voltage between two staircase points by more than half a step: no read
    coarse = cyclic_points(4.0, -4.0, 0.5)
    ic = np.tile((1e-6 * coarse)[:, None], (1, 4))
    assert math.isnan(read_stats(coarse, ic, 0.2).branch("hrs_pos").v)
    assert read_stats(coarse, ic, 0.5).branch("hrs_pos").n == 4
    # an up-only sweep has no negative branches; a single largest reading is not "clamped"
    up = cyclic_points(4.0, 0.0, 0.1)
    iu = np.tile((1e-6 * up)[:, None], (1, 3))
    st_up = read_stats(up, iu, 0.2)
    assert st_up.branch("lrs_neg").n == 0 and st_up.branch("hrs_pos").n_clamped == 0
    with pytest.raises(ValueError, match="v_read"):
        read_stats(V, i, 0.0)
    with pytest.raises(ValueError, match="cycle numbers"):
        read_stats(V, i, 0.2, cycle_numbers=[1, 2])


def _csv(path: Path, i: np.ndarray, v: np.ndarray = V) -> Path:
    header = ",".join(["voltage", *[f"current_cycle{c + 1}" for c in range(i.shape[1])]])
    rows = [",".join([repr(float(v[k])), *map(repr, map(float, i[k]))]) for k in range(v.size)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _device_with_set(path: Path, lrs_sigma: float, seed: int) -> Path:
    """A device whose SET branch rises with V (calibratable) and whose LRS read spreads."""
    rng = np.random.default_rng(seed)
    cyc = 8
    i = _sweep({"lrs_pos": 2e-5 * np.exp(lrs_sigma * rng.standard_normal(cyc))})
    up = (V > 0) & (np.arange(V.size) <= int(np.argmax(V)))
    i[up] = (1e-7 * np.exp(V[up]))[:, None] * V[up][:, None]
    return _csv(path, i)


def test_cli_read_stats_table_and_json(capsys, tmp_path: Path) -> None:
    files = [
        _device_with_set(tmp_path / "a.csv", 0.1, 1),
        _device_with_set(tmp_path / "b.csv", 1.0, 2),
    ]
    assert main(["calibrate", "--read-stats", "--json", *map(str, files)]) == 0
    data = json.loads(capsys.readouterr().out)
    for d in data:
        assert list(d) == [*JSON_KEYS, *READ_STATS_KEYS]
        assert d["v_read"] == 0.2
    by = {d["file"]: d for d in data}
    for name, path in (("a.csv", files[0]), ("b.csv", files[1])):
        from calibration.io import read_iv

        iv = read_iv(path)
        expect = read_stats(iv.voltage, iv.currents, 0.2).to_dict()
        assert by[name]["sigma_ln_g_lrs_pos"] == pytest.approx(expect["sigma_ln_g_lrs_pos"])
    assert by["b.csv"]["sigma_ln_g_lrs_pos"] > 5 * by["a.csv"]["sigma_ln_g_lrs_pos"]
    # the table has the read columns; another read voltage changes the figures
    assert main(["calibrate", "--read-stats", "--read-voltage", "0.3", str(files[1])]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0].split()
    assert head[8:12] == ["sigma_HRS", "sigma_LRS", "on/off", "drift_HRS"]
    # without --read-stats the JSON keys are exactly the section-1 ones
    assert main(["calibrate", "--json", str(files[0])]) == 0
    assert list(json.loads(capsys.readouterr().out)[0]) == list(JSON_KEYS)


@pytest.mark.parametrize("bad", ["0", "-0.2", "2", "abc"])
def test_cli_bad_read_voltage_is_one_line_exit_2(capsys, tmp_path: Path, bad: str) -> None:
    f = _device_with_set(tmp_path / "a.csv", 0.1, 1)
    with pytest.raises(SystemExit) as exc:
        main(["calibrate", "--read-stats", "--read-voltage", bad, str(f)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--read-voltage" in err[-1]


@pytest.mark.slow
def test_all_shared_files_with_read_stats(capsys, shared_iv_dir: Path) -> None:
    """The acceptance command: every one of the 30 real devices gets read statistics."""
    assert main(["calibrate", str(shared_iv_dir), "--read-stats", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 30
    for d in data:
        assert list(d) == [*JSON_KEYS, *READ_STATS_KEYS]
        assert d["n_reads_hrs_pos"] >= 10  # every file reads its HRS at +0.2 V on every cycle
    best = data[0]  # sorted by U: the binary-filament device, U 0.92
    assert best["usability"] == pytest.approx(0.919, abs=0.001)
    assert best["sigma_ln_g_lrs_pos"] == pytest.approx(0.048, abs=0.002)  # a steady LRS …
    assert best["sigma_ln_g_hrs_pos"] == pytest.approx(1.03, abs=0.01)  # … and a wandering HRS
    assert best["on_off_ratio"] == pytest.approx(445, rel=0.01)
    # the devices of U 0.47–0.79 whose LRS is read (5): LRS spread beyond their sigma_up in 4,
    # by more than 2x in 3 (the observation)
    mid = [d for d in data if 0.47 <= d["usability"] <= 0.8 and d["sigma_ln_g_lrs_pos"]]
    assert len(mid) == 5
    assert sum(d["sigma_ln_g_lrs_pos"] > d["sigma_up"] for d in mid) == 4
    assert sum(d["sigma_ln_g_lrs_pos"] > 2 * d["sigma_up"] for d in mid) == 3


@pytest.mark.slow
def test_live_calibration_gets_read_stats_too(capsys, tmp_path: Path) -> None:
    """The same figures for a live sweep of a cell of the simulated bench."""
    argv = ["calibrate", "--bench", "sim", "--cell", "3,4", "--cycles", "3", "--read-stats"]
    assert main([*argv, "--json", "--data", str(tmp_path / "c.h5")]) == 0
    (d,) = json.loads(capsys.readouterr().out)
    assert list(d) == [*JSON_KEYS, *READ_STATS_KEYS]
    assert d["n_reads_hrs_pos"] == d["n_reads_lrs_pos"] == 3
    # optimized under the 25 µA SET compliance: HRS ≈ 0.1 µS, LRS ≈ 2 µS (profiles.py)
    assert 5e-8 < d["g_median_hrs_pos"] < 2e-7 and 1e-6 < d["g_median_lrs_pos"] < 4e-6
    assert 10 < d["on_off_ratio"] < 40
