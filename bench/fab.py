"""``xbar bench fab``: Bayesian optimisation of fabrication against random search.

Case ``fab-bo-synthetic``: a synthetic usability landscape over the default grid (8,064
configurations) with a known optimum — a smooth function of the encoded variables (a main
Gaussian bump U ≈ 0.93 and a weaker second bump, so there is a local optimum) — observed with
Gaussian noise (σ = 0.02). For each of 20 seeds: BO starts from 5 random configurations, then asks
:func:`calibration.fabrication.suggest` for 1 configuration per iteration; we count the
evaluations (initial points included) until a top-1 % configuration (by the noise-free value) has
been evaluated, capped at 60 (a failure counts as 60). Random search draws configurations without
replacement (uncapped), simulated in the same run.

Random search is cheap, so its median is estimated over 2,000 runs (its 20-run median scatters
from about 35 to 100 between seed sets, which would make the ratio a coin toss); the 20-run
median on the BO seeds and the exact median (first success without replacement,
P(T > n) = C(N−m, n) / C(N, n)) are reported too. ratio = random median / BO median
(acceptance: ≥ 3).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from bench._report import Row

DESCRIPTION = "fabrication BO vs random search on a synthetic usability landscape"

N_INIT = 5
NOISE = 0.02
TOP_FRACTION = 0.01
RANDOM_RUNS = 2000

# Optimum and widths in the encoded space (perovskite, length, diameter, Pb ED, Ag), all in [0, 1].
_X_MAIN = np.array([1 / 3, 0.6, 0.45, 0.55, 0.3])
_W_MAIN = np.array([0.45, 0.3, 0.3, 0.3, 0.35])
_X_SIDE = np.array([1.0, 0.1, 0.9, 0.2, 0.8])
_W_SIDE = 0.2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, default=20, help="independent runs (default 20)")
    p.add_argument("--cap", type=int, default=60, help="BO evaluation cap (default 60)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")


def synthetic_landscape(encoded: np.ndarray) -> np.ndarray:
    """Noise-free usability in [0.05, 0.93] at encoded configurations (n, 5)."""
    x = np.asarray(encoded, dtype=float)
    main = np.exp(-0.5 * np.sum(((x - _X_MAIN) / _W_MAIN) ** 2, axis=1))
    side = np.exp(-0.5 * np.sum(((x - _X_SIDE) / _W_SIDE) ** 2, axis=1))
    return 0.05 + 0.88 * main + 0.35 * side * (1 - main)


def random_search_evals(truth: np.ndarray, seed: int) -> int:
    """Evaluations random search (without replacement) needs to hit a top-1 % configuration."""
    top = truth >= np.quantile(truth, 1 - TOP_FRACTION)
    order = np.random.default_rng(seed).permutation(truth.size)
    return int(np.flatnonzero(top[order])[0]) + 1


def random_search_exact_median(n_total: int, n_top: int) -> int:
    """Exact median of the first-hit position when drawing without replacement."""
    p_miss = 1.0
    for n in range(1, n_total + 1):
        p_miss *= (n_total - n_top - (n - 1)) / (n_total - (n - 1))
        if p_miss <= 0.5:
            return n
    return n_total


def bo_evals(seed: int, cap: int = 60) -> int:
    """Evaluations BO needs to hit a top-1 % configuration (``cap`` when it does not)."""
    from calibration.fabrication import DEFAULT_GRID, History, suggest

    grid = DEFAULT_GRID
    truth = synthetic_landscape(grid.encoded())
    top = truth >= np.quantile(truth, 1 - TOP_FRACTION)
    rng = np.random.default_rng(10_000 + seed)
    measured = list(rng.choice(grid.size, size=N_INIT, replace=False))
    observed = list(truth[measured] + rng.normal(0, NOISE, size=N_INIT))
    for n, i in enumerate(measured, start=1):
        if top[i]:
            return n
    while len(measured) < cap:
        history = History(tuple(grid.conditions(i) for i in measured), np.clip(observed, 0.0, 1.0))
        (s,) = suggest(history, 1, grid, seed=seed)
        measured.append(s.grid_index)
        observed.append(float(truth[s.grid_index] + rng.normal(0, NOISE)))
        if top[s.grid_index]:
            return len(measured)
    return cap


def run(args: argparse.Namespace) -> list[Row]:
    from calibration.fabrication import DEFAULT_GRID

    seeds = range(getattr(args, "seeds", 20))
    cap = getattr(args, "cap", 60)
    jobs = max(1, getattr(args, "jobs", 2))
    truth = synthetic_landscape(DEFAULT_GRID.encoded())
    t0 = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            bo = list(pool.map(bo_evals, seeds, [cap] * len(seeds)))
    else:
        bo = [bo_evals(s, cap) for s in seeds]
    wall = time.perf_counter() - t0
    rnd_20 = [random_search_evals(truth, 20_000 + s) for s in seeds]
    rnd = [random_search_evals(truth, 20_000 + s) for s in range(RANDOM_RUNS)]
    n_top = int(np.sum(truth >= np.quantile(truth, 1 - TOP_FRACTION)))
    exact = random_search_exact_median(truth.size, n_top)
    bo_med = float(np.median(bo))
    rnd_med = float(np.median(rnd))
    case = "fab-bo-synthetic"
    return [
        Row(
            case,
            f"median evaluations to a top-1% configuration ({len(bo)} BO runs)",
            bo_med,
            "evals",
            f"random search ({RANDOM_RUNS} runs)",
            rnd_med,
            rnd_med / bo_med,
        ),
        Row(
            case,
            f"random search median on the {len(rnd_20)} BO seeds",
            bo_med,
            "evals",
            "random search",
            float(np.median(rnd_20)),
            float(np.median(rnd_20)) / bo_med,
        ),
        Row(
            case,
            "random search exact median",
            bo_med,
            "evals",
            "random (exact)",
            float(exact),
            exact / bo_med,
        ),
        Row(case, f"BO runs that hit the cap of {cap}", float(sum(b >= cap for b in bo)), "runs"),
        Row(
            case,
            "BO evaluations, best seed / worst seed",
            float(min(bo)),
            "evals",
            "worst",
            float(max(bo)),
        ),
        Row(
            case,
            f"top-1% configurations / grid size {DEFAULT_GRID.size}",
            float(n_top),
            "configurations",
        ),
        Row(case, f"wall time, {len(bo)} BO runs on {jobs} process(es)", wall, "s"),
    ]
