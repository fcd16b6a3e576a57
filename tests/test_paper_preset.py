"""The ``paper`` preset: the paper's optimized device (METHODS §6) on the simulated bench.

Three constraints (docs/presets.md): §1 usability 0.90 ± 0.07 by the default live protocol,
read regime and programming behaviour inside the shared devices' range
(tests/test_presets_data.py), and the paper's hardware result testable: the moons network
trained with ERM loses about 45 % of its software accuracy on it (mean over bench seeds, 95 %
CI), programmed with the paper's own program-and-verify (METHODS §5: the amplitude ladder).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from scipy import stats

from crossbar.config import load_bench_config
from crossbar.core import Crossbar
from inference.data import make_moons_dataset
from inference.deploy import DeployOptions, run_on_crossbar
from inference.models import MOONS_SIZES
from inference.training import train_erm
from lab import open_backend
from xbar.cli import main


def erm_losses(
    backend: str, seeds: int, test_points: int = 200, algorithm: str = "ladder"
) -> np.ndarray:
    """Relative ERM loss (software → hardware) of the moons network on ``paper``, per seed,
    programmed with ``algorithm`` (``"ladder"``: the paper's program-and-verify, METHODS §5)."""
    moons = make_moons_dataset(seed=0)
    erm = train_erm(moons, MOONS_SIZES, seed=0)
    out = []
    for seed in range(seeds):
        cfg = load_bench_config("sim")
        cfg = dataclasses.replace(
            cfg,
            bench=dataclasses.replace(cfg.bench, backend=backend),
            simulation=dataclasses.replace(cfg.simulation, profile="paper", seed=seed),
        )
        with Crossbar(open_backend(cfg)) as xb:
            r = run_on_crossbar(
                xb,
                erm,
                moons.x_test[:test_points],
                moons.y_test[:test_points],
                x_train=moons.x_train,
                options=DeployOptions(algorithm=algorithm),
            )
        out.append(r.relative_degradation)
    return np.array(out)


def mean_ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval (Student t)."""
    half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean()), float(half)


@pytest.mark.slow
def test_erm_loses_about_45_percent_on_paper() -> None:
    """With the paper's program-and-verify (METHODS §5, the amplitude ladder) ERM loses about
    45 % (measured: 0.38 ± 0.10 over 10 bench seeds); the project's adaptive write-verify
    (issue 15, the default: full-amplitude pulses, width from the measured response) loses
    0.33 ± 0.11 on the same benches, its CI below 45 % (the saving over the ladder is not
    significant over 10 seeds)."""
    losses = erm_losses("physics", seeds=10)
    mean, half = mean_ci(losses)
    assert mean - half <= 0.45 <= mean + half, (mean, half, losses)
    assert 0.3 <= mean <= 0.55
    adaptive = erm_losses("physics", seeds=10, algorithm="adaptive")
    a_mean, a_half = mean_ci(adaptive)
    assert a_mean + a_half < 0.45, (a_mean, a_half, adaptive)  # clearly below the paper's loss


@pytest.mark.slow
def test_live_calibration_reproduces_the_paper_usability(tmp_path, capsys) -> None:
    cells = ["3,4", "5,7", "1,8", "7,1", "9,5"]
    argv = ["calibrate", "--bench", "sim", "--profile", "paper", "--data", str(tmp_path / "c.h5")]
    for c in cells:
        argv += ["--cell", c]
    assert main(argv) == 0
    out = capsys.readouterr().out
    median = float(re.search(r"median U over 5 cells: ([0-9.]+)", out).group(1))
    assert abs(median - 0.90) <= 0.07, out
