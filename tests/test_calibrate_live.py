"""Live calibration: cyclic sweeps of a cell on the simulated bench, graded by section 1."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from calibration.io import read_iv
from calibration.live import calibrate_cell
from crossbar.core import Crossbar
from lab import open_backend
from xbar.cli import main


@pytest.mark.slow
@pytest.mark.parametrize(
    ("profile", "target", "cells"),
    [
        ("optimized", 0.9, ["3,4"]),
        ("typical", 0.5, ["3,4", "5,7", "1,8"]),
        ("poor", 0.15, ["3,4"]),
    ],
)
def test_live_sweep_reproduces_profile_usability(profile, target, cells, tmp_path, capsys) -> None:
    """The acceptance command with the default protocol, seed 0. Measured (5-cell medians,
    seeds 0/1/2): optimized 0.928/0.936/0.923, typical 0.501/0.526/0.542, poor
    0.086/0.095/0.139."""
    data = tmp_path / "cal.h5"
    argv = ["calibrate", "--bench", "sim", "--cycles", "10", "--profile", profile, "--seed", "0"]
    for cell in cells:
        argv += ["--cell", cell]
    assert main([*argv, "--data", str(data), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(cells)
    assert all(r["n_cycles"] == 10 for r in rows)
    median = float(np.median([r["usability"] for r in rows]))
    assert abs(median - target) <= 0.07, [r["usability"] for r in rows]
    # the sweeps were written as acquired, in the format the file reader takes back
    with h5py.File(data, "r") as f:
        names = sorted(f["iv"])
    assert len(names) == len(cells)
    iv = read_iv(data, name=f"/iv/{names[0]}")
    assert iv.currents.shape == (241, 10)
    assert np.isfinite(iv.currents).all()


def test_live_needs_cell_and_valid_numbers(capsys) -> None:
    assert main(["calibrate", "--bench", "sim"]) == 2
    assert "--cell" in capsys.readouterr().err
    assert main(["calibrate", "--bench", "sim", "--cell", "10,0"]) == 2
    assert "outside the 10x10 array" in capsys.readouterr().err
    assert main(["calibrate", "--bench", "sim", "--cell", "0,0", "--vmax", "60"]) == 2
    assert "exceeds the bench limit" in capsys.readouterr().err
    assert main(["calibrate", "--bench", "sim", "--cell", "0,0", "--cycles", "1"]) == 2
    assert "--cycles must be >= 2" in capsys.readouterr().err


def test_live_several_cells_biasing_and_point_time(tmp_path, capsys) -> None:
    """Two cells in one run (a short staircase): one row each in the table, their median,
    both sweeps in the data file with the biasing and the settling delay recorded."""
    data = tmp_path / "two.h5"
    argv = [
        "calibrate",
        "--bench",
        "sim",
        "--cell",
        "1,2",
        "--cell",
        "6,3",
        "--cycles",
        "3",
        "--step",
        "0.5",
        "--biasing",
        "v/3",
        "--point-time",
        "0.05",
        "--data",
        str(data),
    ]
    argv_again = list(argv)
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "cell (1, 2)" in captured.out and "cell (6, 3)" in captured.out
    assert "median U over 2 cells:" in captured.out
    assert "(v/3 biasing, v/3 below 0 V)" in captured.err
    with h5py.File(data, "r") as f:
        groups = [f["iv"][name] for name in sorted(f["iv"])]
        assert len(groups) == 2
        for g in groups:
            assert g.attrs["biasing"] == "v/3"
            assert g.attrs["reset_biasing"] == "v/3"
            assert g.attrs["compliance_a"] == pytest.approx(25e-6)
            assert g.attrs["reset_compliance_a"] == pytest.approx(250e-6)
            assert g.attrs["delay_s"] == pytest.approx(0.05 - 1 / 60)
    # a point too short for its reading is refused before anything is swept
    assert main(["calibrate", "--bench", "sim", "--cell", "0,0", "--point-time", "0.001"]) == 2
    assert "must hold the --nplc 1 reading" in capsys.readouterr().err
    # the same cells again into the same data file: appended as new sweeps, nothing lost
    assert main(argv_again) == 0
    assert "median U over 2 cells:" in capsys.readouterr().out
    with h5py.File(data, "r") as f:
        assert len(f["iv"]) == 4
    # a positive-only scheme on the RESET branch is refused before anything is swept
    argv = ["calibrate", "--bench", "sim", "--cell", "0,0", "--reset-biasing", "cols-2v/3"]
    assert main(argv) == 2
    assert "--reset-biasing cols-2v/3 is for V >= 0 only" in capsys.readouterr().err


def test_default_protocol_routes_and_limits_each_branch(tmp_path) -> None:
    """On the sim bench's twins: SET-branch points (V >= 0) run with the unselected rows at
    0 V, the unselected columns at 2V/3 and 25 uA; RESET-branch points under v/3 with 250 uA;
    every point lasts 50 ms of bench time."""
    seen = []
    be = open_backend("sim")
    h = be.sim_handles
    t0 = h.clock.now()
    with Crossbar(be) as xb:

        def probe(p) -> None:
            rows, cols = h.sim_bench.routing()
            seen.append((p.voltage, rows, cols, h.sim_bench.smu_limit, p.time))

        dev = calibrate_cell(xb, 2, 6, cycles=2, step=1.0, on_point=probe)
    assert dev.result.n_cycles == 2
    assert len(seen) == 2 * 25
    for v, rows, cols, limit, _ in seen:
        others_r = rows[:2] + rows[3:]
        others_c = cols[:6] + cols[7:]
        assert rows[2] == "SMU_SOURCE" and cols[6] == "SMU_SENSE"
        if v >= 0:
            assert set(others_r) == {"GND"} and set(others_c) == {"BIAS_TWO_THIRDS"}, v
            assert limit == pytest.approx(25e-6)
        else:
            assert set(others_r) == {"BIAS_THIRD"} and set(others_c) == {"BIAS_TWO_THIRDS"}, v
            assert limit == pytest.approx(250e-6)
    elapsed = h.clock.now() - t0  # 50 points of 50 ms, plus the bus traffic around them
    assert 2.5 <= elapsed < 5.0, elapsed
    # the SET-branch scheme is refused where it would SET the other cells
    with Crossbar(open_backend("sim")) as xb:
        with pytest.raises(ValueError, match="for V >= 0 only"):
            calibrate_cell(xb, 0, 0, cycles=2, step=1.0, reset_biasing="cols-2v/3")
        with pytest.raises(ValueError, match="for V >= 0 only"):
            xb.pulse(0, 0, -2.0, 1e-3, biasing="cols-2v/3")
