"""The grid BO helper shared by fabrication (section 4) and BayesMulti (section 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration import grid_bo

GRID = np.linspace(0.0, 1.0, 41)[:, None]  # 1-D candidates, step 0.025


def _objective(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * ((x[:, 0] - 0.7) / 0.15) ** 2)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=0, max_size=10),
    st.floats(0.0, 0.9e-9),
)
def test_unseen_excludes_exactly_the_observed_points(seen: list[int], jitter: float) -> None:
    observed = GRID[seen] + jitter  # within the tolerance: still the same point
    allowed = grid_bo.unseen(GRID, observed)
    assert set(np.flatnonzero(~allowed)) == set(seen)
    far = GRID[seen] + 1e-6  # beyond the tolerance: a different point
    assert grid_bo.unseen(GRID, far).all()


def test_propose_picks_an_unseen_point_near_the_optimum() -> None:
    idx = [0, 10, 20, 30, 40]
    x, y = GRID[idx], _objective(GRID[idx])
    i, log_ei = grid_bo.propose(x, y, GRID, seed=0)
    assert i not in idx and np.isfinite(log_ei)
    assert abs(GRID[i, 0] - 0.7) <= 0.15  # EI's best candidate is near the true maximum
    again = grid_bo.propose(x, y, GRID, seed=0)
    assert again == (i, log_ei)  # deterministic for a seed


def test_propose_with_bounds_normalises_and_refuses_a_fully_seen_grid() -> None:
    scaled = GRID * 4.0  # inputs in [0, 4]: the Normalize transform maps them to [0, 1]
    idx = [0, 13, 27, 40]
    i, _ = grid_bo.propose(scaled[idx], _objective(GRID[idx]), scaled, bounds=[[0.0], [4.0]])
    j, _ = grid_bo.propose(GRID[idx], _objective(GRID[idx]), GRID)
    assert i == j  # the same search in other units
    with pytest.raises(ValueError, match="every candidate has been observed"):
        grid_bo.propose(GRID, _objective(GRID), GRID)


def test_select_gives_k_distinct_allowed_points() -> None:
    idx = [0, 20, 40]
    model = grid_bo.fit_gp(GRID[idx], _objective(GRID[idx]), seed=1)
    xg = torch.as_tensor(GRID, dtype=torch.float64)
    allowed = grid_bo.unseen(GRID, GRID[idx])
    allowed[25:30] = False
    best = float(_objective(GRID[idx]).max())
    chosen = grid_bo.select(model, xg, best, 5, allowed)
    assert len(set(chosen)) == 5 and all(allowed[c] for c in chosen)
    mean, std, log_ei = grid_bo.score_grid(model, xg, best)
    assert mean.shape == std.shape == log_ei.shape == (41,)
    assert bool((std >= 0).all())
    assert chosen[0] == int(torch.argmax(log_ei.masked_fill(torch.as_tensor(~allowed), -np.inf)))


def test_torch_threads_sets_and_restores() -> None:
    before = torch.get_num_threads()
    with grid_bo.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with grid_bo.torch_threads(None):
        assert torch.get_num_threads() == before
