"""Bayesian optimisation over a finite candidate grid: BoTorch ``SingleTaskGP`` + analytic LogEI.

The one implementation behind both searches of the project:

* METHODS section 4, :mod:`calibration.fabrication` — the next fabrications among the 8,064
  grid configurations (five encoded variables, an explicit RBF kernel, seeded fit);
* METHODS section 3, :mod:`inference.training` — BayesMulti's search of the training noise
  ``(p1, p2)`` on the triangle grid (step 0.01, inputs normalised to the triangle's box).

The surrogate is a ``SingleTaskGP`` with a standardised outcome, fitted by ``fit_gpytorch_mll``
(maximum a-posteriori); the acquisition is ``LogExpectedImprovement`` over the best observation,
evaluated on **every** candidate (marginals only, never the n × n joint) — exact for a finite
grid, no gradient optimiser and no penalty for constraints the grid already respects. A batch
of k > 1 points is chosen by sequential greedy *kriging believer* (:func:`select`).

torch is imported on first use (importing :mod:`calibration` stays cheap); these GPs are tiny
(tens of points, thousands of candidates), so they run single-threaded (:func:`torch_threads`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["fit_gp", "propose", "score_grid", "select", "torch_threads", "unseen"]

#: Two candidates closer than this (max-abs difference, in the GP's input units) are the same.
SAME_POINT_ATOL = 1e-9


@contextmanager
def torch_threads(n: int | None = 1) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)`` (restored after; None: unchanged).

    Tiny networks and GPs: thread start-up and contention cost more than they save, and one
    thread does not stall when other processes hold the cores.
    """
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def fit_gp(
    x: ArrayLike,
    y: ArrayLike,
    *,
    bounds: ArrayLike | None = None,
    kernel: Callable[[int], Any] | None = None,
    seed: int | None = None,
) -> Any:
    """Fit a ``SingleTaskGP`` (outcome standardised) to inputs x (n, d) and outcomes y (n,).

    Args:
        x, y: observations (float64).
        bounds: (2, d) lower/upper input bounds; given, inputs are normalised to [0, 1]^d by a
            ``Normalize`` input transform (None: inputs used as they are).
        kernel: ``kernel(d)`` builds the covariance module (None: BoTorch's default).
        seed: torch seed of the fit, in a forked RNG (None: the global RNG, not reseeded).

    Returns:
        The fitted model in eval mode.
    """
    import torch

    with warnings.catch_warnings():
        # botorch/gpytorch warn on import (torch.jit deprecation) and on tiny data sets.
        warnings.simplefilter("ignore")
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms import Normalize, Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood

        with torch.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            tx = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)
            ty = torch.as_tensor(np.asarray(y, dtype=float).reshape(-1, 1), dtype=torch.float64)
            d = tx.shape[-1]
            model = SingleTaskGP(
                tx,
                ty,
                covar_module=None if kernel is None else kernel(d),
                input_transform=None
                if bounds is None
                else Normalize(d=d, bounds=torch.as_tensor(bounds, dtype=torch.float64)),
                outcome_transform=Standardize(m=1),
            )
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    model.eval()
    return model


def score_grid(model: Any, xg: Any, best_f: float) -> tuple[Any, Any, Any]:
    """Marginal posterior mean, std and log EI over ``best_f`` at every row of ``xg``.

    ``xg`` is a float64 torch tensor (n, d); the three results are tensors of shape (n,).
    """
    import torch
    from botorch.acquisition.analytic import LogExpectedImprovement

    with torch.no_grad():
        batched = xg.unsqueeze(-2)  # n × 1 × d: marginals only, never the n × n joint
        post = model.posterior(batched)
        mean = post.mean.reshape(-1)
        std = post.variance.clamp_min(0).sqrt().reshape(-1)
        log_ei = LogExpectedImprovement(model, best_f=best_f)(batched)
    return mean, std, log_ei


def unseen(candidates: np.ndarray, seen: ArrayLike) -> np.ndarray:
    """Bool (n,): the candidates that equal no row of ``seen`` (within :data:`SAME_POINT_ATOL`)."""
    out = np.ones(len(candidates), dtype=bool)
    for row in np.asarray(seen, dtype=float).reshape(-1, candidates.shape[1]):
        out &= ~np.all(np.isclose(candidates, row, rtol=0, atol=SAME_POINT_ATOL), axis=1)
    return out


def select(
    model: Any,
    xg: Any,
    best_f: float,
    k: int,
    allowed: np.ndarray,
    log_ei: Any | None = None,
) -> list[int]:
    """``k`` distinct candidate indices by LogEI, greedy kriging believer for k > 1.

    Pick the allowed candidate with the highest LogEI (the first on ties), pretend it was
    observed at its posterior mean (``condition_on_observations``, hyperparameters kept),
    rescore the grid, repeat. ``log_ei``: the model's scores of ``xg`` if already computed.
    """
    import torch

    if log_ei is None:
        _, _, log_ei = score_grid(model, xg, best_f)
    blocked = torch.as_tensor(~np.asarray(allowed, dtype=bool))
    chosen: list[int] = []
    current, current_best = model, float(best_f)
    for step in range(int(k)):
        i = int(torch.argmax(log_ei.masked_fill(blocked, -math.inf)))
        chosen.append(i)
        blocked[i] = True
        if step + 1 < k:
            xi = xg[i : i + 1]
            with torch.no_grad():
                yi = current.posterior(xi).mean.reshape(1, 1)
            current = current.condition_on_observations(X=xi, Y=yi)
            current_best = max(current_best, float(yi))
            _, _, log_ei = score_grid(current, xg, current_best)
    return chosen


def propose(
    x_seen: ArrayLike,
    y_seen: Sequence[float] | np.ndarray,
    candidates: np.ndarray,
    *,
    bounds: ArrayLike | None = None,
    kernel: Callable[[int], Any] | None = None,
    seed: int | None = None,
) -> tuple[int, float]:
    """One BO step: fit the GP to the observations, return the unseen candidate with the
    highest LogEI as ``(index into candidates, log_ei)``. Observations are maximised.

    Raises:
        ValueError: every candidate has been observed.
    """
    import torch

    allowed = unseen(candidates, x_seen)
    if not allowed.any():
        raise ValueError("every candidate has been observed")
    model = fit_gp(x_seen, y_seen, bounds=bounds, kernel=kernel, seed=seed)
    xg = torch.as_tensor(np.asarray(candidates, dtype=float), dtype=torch.float64)
    _, _, log_ei = score_grid(model, xg, float(np.max(y_seen)))
    (i,) = select(model, xg, float(np.max(y_seen)), 1, allowed, log_ei)
    return i, float(log_ei[i])
