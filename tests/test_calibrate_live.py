"""Live calibration: cyclic sweeps of a cell on the simulated bench, graded by section 1."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from calibration.io import read_iv
from xbar.cli import main


@pytest.mark.slow
@pytest.mark.parametrize(("profile", "target"), [("optimized", 0.9), ("poor", 0.15)])
def test_live_sweep_reproduces_profile_usability(profile, target, tmp_path, capsys) -> None:
    data = tmp_path / "cal.h5"
    code = main(
        [
            "calibrate",
            "--bench",
            "sim",
            "--cell",
            "3,4",
            "--cycles",
            "10",
            "--profile",
            profile,
            "--data",
            str(data),
            "--json",
        ]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1
    assert rows[0]["n_cycles"] == 10
    assert abs(rows[0]["usability"] - target) <= 0.07
    # the sweep was written as acquired, in the format the file reader takes back
    iv = read_iv(data)
    assert iv.currents.shape == (241, 10)
    assert np.isfinite(iv.currents).all()
    with h5py.File(data, "r") as f:
        assert "iv" in f


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
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "cell (1, 2)" in captured.out and "cell (6, 3)" in captured.out
    assert "median U over 2 cells:" in captured.out
    assert "(v/3 biasing)" in captured.err
    with h5py.File(data, "r") as f:
        groups = [f["iv"][name] for name in sorted(f["iv"])]
        assert len(groups) == 2
        for g in groups:
            assert g.attrs["biasing"] == "v/3"
            assert g.attrs["delay_s"] == pytest.approx(0.05 - 1 / 60)
    # a point too short for its reading is refused before anything is swept
    assert main(["calibrate", "--bench", "sim", "--cell", "0,0", "--point-time", "0.001"]) == 2
    assert "must hold the --nplc 1 reading" in capsys.readouterr().err
