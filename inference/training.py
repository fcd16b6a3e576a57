"""Training (METHODS section 3 and issue 15): ERM, BayesMulti, hardware-aware training, the
linear control.

* :func:`train_erm` — the network trained without noise (the baseline).
* :func:`train_bayesmulti` — the same network and training with multinomial noise whose
  ``(p1, p2)`` is chosen by Bayesian optimisation: a BoTorch ``SingleTaskGP`` surrogate on the
  feasible triangle ``p1, p2 ≥ 0, p1 + p2 ≤ 0.95``, analytic ``LogExpectedImprovement``, ``n_init``
  random initial points then ``n_iter`` sequential iterations (paper: 3 + 10). Each candidate
  trains a model with that noise and is scored by the objective; the final model is the best
  candidate of the trace. The target hardware is any hardware model: a measured deployment
  profile (:class:`inference.hardware_model.DeploymentModel`), a usability or a device curve
  (:class:`inference.noise.UsabilityModel`).
* :func:`train_hwa` — hardware-aware training (aihwkit ``InferenceRPUConfig`` style): every
  training forward pass sees the weights realised by the hardware model (for a deployment
  profile: the G⁺/G⁻ targets of ``map_weights`` built in torch, sampled programming error, stuck
  cells, drift, read noise on the column currents), gradients through the targets.
* ``bayesmulti+hwa`` — BayesMulti whose every candidate is also trained hardware-aware.
* :func:`train_linear` — the linear-model control: logistic regression as one layer.
* :func:`train_method` — one entry point for all of them (``xbar train --method``, a study).

Decisions (METHODS section 3 and this module):

* **Objective** (decision, default ``"hardware"``): mean *validation* accuracy under the
  target's hardware model (a deployment profile, or the section-2 model at a usability or
  device curve), averaged over
  ``n_eval_trials`` noise trials. The noise seed is the same for every candidate (common random
  numbers) so candidates differ only by their training noise. Option ``"train_accuracy"``: the
  paper's objective, the clean (eval-mode) accuracy on the training set.
* **Hardware-aware training** (decision): more, smaller steps than ERM
  (:data:`HWA_HYPERPARAMETERS`); the restart with the lowest clean loss is kept, as for ERM.
* **Training** (decision): Adam on the cross-entropy, full batch by default (``batch_size`` for
  minibatches), Kaiming-normal weights and zero biases, ``restarts`` initialisations of which the
  one with the lowest clean training loss is kept (a 2-5-2 ReLU net otherwise lands in a poor
  local minimum for ~5 % of seeds). ERM and every BayesMulti candidate use the same procedure and
  the same training seed, so a candidate differs from ERM only by its noise.
* **Acquisition** (decision): LogEI scored on a candidate grid of the triangle (step 0.01,
  already-evaluated points excluded) rather than a gradient optimiser, which is exact enough for
  two variables and respects the triangle constraint without penalties (the grid BO of
  :mod:`calibration.grid_bo`, shared with the fabrication search).
* torch runs single-threaded during training (``num_threads=1``): these networks are tiny and
  threading overhead dominates on a 2-core machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from calibration import grid_bo
from calibration.grid_bo import torch_threads
from calibration.profile import DeviceNoiseProfile
from crossbar.progress import ProgressFn, notify

from .data import Dataset
from .models import MLP, MultinomialNoise, multinomial_eta
from .names import METHODS, OBJECTIVES
from .noise import Draws, UsabilityModel

P_TOTAL_MAX = 0.95  # feasible triangle p1 + p2 <= 0.95 (E[η] stays >= 0.05 + ...)

# Per-data-set training defaults (decision): full-batch Adam, a few hundred epochs.
HYPERPARAMETERS: dict[str, dict[str, float | int]] = {
    "moons": {"epochs": 300, "lr": 0.05, "restarts": 2},
    "digits": {"epochs": 200, "lr": 0.01, "restarts": 1},
}
_FALLBACK_HYPER = {"epochs": 300, "lr": 0.01, "restarts": 1}
# Hardware-aware training (decision): noisy gradients need more, smaller steps — on moons under
# the simulated `typical` profile 300 epochs at 0.05 reached 63 % modelled hardware accuracy,
# 1000 at 0.02 75 %, 2000 at 0.01 72 % (one seed, 200 trials).
HWA_HYPERPARAMETERS: dict[str, dict[str, float | int]] = {
    "moons": {"epochs": 1000, "lr": 0.02, "restarts": 2},
    "digits": {"epochs": 400, "lr": 0.005, "restarts": 1},
}


@dataclass
class TrainedModel:
    """A trained network plus everything needed to reproduce, deploy and report it."""

    model: MLP
    method: str  # "erm" or "bayesmulti"
    sizes: tuple[int, ...]
    activation: str
    noise_site: str
    p1: float
    p2: float
    data_name: str
    data_seed: int
    data_noise: float | None
    feature_mean: np.ndarray
    feature_std: np.ndarray
    accuracies: dict[str, float]  # software (clean) accuracy on train / val / test, in [0, 1]
    training: dict[str, Any]  # epochs, lr, seed, restarts, batch_size
    objective: str | None = None  # BO objective (BayesMulti only)
    target: dict[str, Any] | None = None  # {"usability": U} or {"profile": name, "sigma": σ, …}
    n_eval_trials: int | None = None
    bo_trace: list[dict[str, float]] = field(default_factory=list)  # p1, p2, objective, iteration

    def predict(self, x_raw: np.ndarray) -> np.ndarray:
        """Class predictions for raw (untransformed) features."""
        x = (np.asarray(x_raw, dtype=np.float64) - self.feature_mean) / self.feature_std
        return self.model.predict(x.astype(np.float32))

    def augmented_weights(self) -> list[np.ndarray]:
        """Each layer as ``[W | b]`` (see :meth:`MLP.augmented_weights`)."""
        return self.model.augmented_weights()

    @property
    def n_params(self) -> int:
        """Number of trainable parameters Θ."""
        return int(sum(p.numel() for p in self.model.parameters()))


def hyperparameters(data_name: str, hwa: bool = False) -> dict[str, float | int]:
    """Default epochs / lr / restarts for a data set name (``hwa``: of hardware-aware
    training)."""
    if hwa and data_name in HWA_HYPERPARAMETERS:
        return dict(HWA_HYPERPARAMETERS[data_name])
    return dict(HYPERPARAMETERS.get(data_name, _FALLBACK_HYPER))


NoiseSpec = tuple[float, float] | None  # (p1, p2) of the training noise, None for ERM


@dataclass(frozen=True)
class TrainingSettings:
    """How a network is trained (the same for ERM and every BayesMulti candidate).

    Adam for ``epochs`` passes (≥ 1) at learning rate ``lr`` (> 0); ``restarts`` initialisations
    (≥ 1), the lowest clean training loss wins; ``batch_size`` minibatches (None: full batch);
    training ``seed``; hidden ``activation`` and the training-noise site ``noise_site``.
    """

    epochs: int = 300
    lr: float = 0.01
    seed: int = 0
    restarts: int = 1
    batch_size: int | None = None
    activation: str = "relu"
    noise_site: str = "activations"

    def __post_init__(self) -> None:
        if int(self.epochs) < 1 or not (self.lr > 0) or int(self.restarts) < 1:
            raise ValueError(
                f"need epochs >= 1, lr > 0, restarts >= 1; "
                f"got {self.epochs}, {self.lr}, {self.restarts}"
            )

    @classmethod
    def for_dataset(
        cls,
        dataset: Dataset,
        epochs: int | None = None,
        lr: float | None = None,
        restarts: int | None = None,
        hwa: bool = False,
        **rest: Any,
    ) -> TrainingSettings:
        """Settings with ``None`` epochs / lr / restarts taken from :func:`hyperparameters`
        (of hardware-aware training with ``hwa``)."""
        h = hyperparameters(dataset.name, hwa)
        return cls(
            epochs=int(h["epochs"] if epochs is None else epochs),
            lr=float(h["lr"] if lr is None else lr),
            restarts=int(h["restarts"] if restarts is None else restarts),
            **rest,
        )

    def record(self) -> dict[str, Any]:
        """The ``training`` entry of a :class:`TrainedModel` (epochs, lr, seed, restarts,
        batch_size)."""
        return {
            "epochs": self.epochs,
            "lr": self.lr,
            "seed": int(self.seed),
            "restarts": self.restarts,
            "batch_size": self.batch_size,
        }


def fit_networks(
    dataset: Dataset,
    sizes: Sequence[int],
    noises: Sequence[NoiseSpec],
    *,
    noise_site: str = "activations",
    activation: str = "relu",
    epochs: int = 300,
    lr: float = 0.01,
    seed: int = 0,
    restarts: int = 1,
    batch_size: int | None = None,
    num_threads: int | None = 1,
    hardware: Any = None,
) -> list[MLP]:
    """Train one network per noise spec, all at once as a batched ensemble (eval mode on return).

    Every model (and every restart) is independent: its own parameters, its own torch
    ``Generator`` (seed ``seed * 1000 + restart``) for the initialisation and the training noise;
    the summed loss gives each model exactly its own gradient and Adam acts element-wise, so a
    model trains as it would alone whatever else is in the batch. Batching only removes the
    per-model Python overhead that dominates for these tiny networks.

    Args:
        dataset: training data (``x_train``, ``y_train``).
        sizes: layer widths.
        noises: one ``(p1, p2)`` (multinomial training noise) or None (ERM) per model.
        noise_site: ``"activations"`` or ``"weights"`` (see :mod:`inference.models`).
        epochs: passes over the training set (≥ 1); lr: Adam learning rate (> 0).
        seed: training seed; restart ``r`` of every model uses ``seed * 1000 + r``.
        restarts: initialisations per model (≥ 1); the lowest clean training loss wins.
        batch_size: minibatch size (None: full batch); minibatch order from ``seed``.
        num_threads: torch threads while training (default 1; None leaves the setting alone).
        hardware: a hardware model (:class:`inference.noise.HardwareModel`) whose
            realisation of the weights every training forward pass sees (hardware-aware
            training, aihwkit ``InferenceRPUConfig`` style), or None.

    Returns:
        One :class:`MLP` per entry of ``noises`` (with its :class:`MultinomialNoise` attached).
    """
    settings = TrainingSettings(
        epochs, lr, seed, restarts, batch_size, activation=activation, noise_site=noise_site
    )
    return _fit(dataset, sizes, noises, settings, num_threads, hardware)


def fit_network(
    dataset: Dataset,
    sizes: Sequence[int],
    *,
    noise: NoiseSpec | MultinomialNoise = None,
    **settings: Any,
) -> MLP:
    """Train one network: :func:`fit_networks` of ``[noise]`` with the same keywords (noise_site,
    activation, epochs, lr, seed, restarts, batch_size); ``noise`` is (p1, p2), a module or
    None."""
    if isinstance(noise, MultinomialNoise):
        noise = (noise.p1, noise.p2)
    return fit_networks(dataset, sizes, [noise], **settings)[0]


def _fit(
    dataset: Dataset,
    sizes: Sequence[int],
    noises: Sequence[NoiseSpec],
    settings: TrainingSettings,
    num_threads: int | None = 1,
    hardware: Any = None,
) -> list[MLP]:
    """:func:`fit_networks` with its settings gathered (training on ``num_threads`` threads)."""
    sizes = tuple(int(k) for k in sizes)
    # Validate every spec (and build the noise modules) before any work.
    modules = [None if nz is None else MultinomialNoise(*nz) for nz in noises]
    MLP(sizes, activation=settings.activation, noise_site=settings.noise_site)  # validates
    if not modules:
        return []
    with torch_threads(num_threads):
        ensemble = _Ensemble(sizes, modules, settings, hardware)
        ensemble.train(dataset, settings)
        return ensemble.best_models(dataset)


def _minibatches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int | None, order: torch.Generator
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch's batches: the whole set, or a permutation from ``order`` cut in minibatches."""
    n = x.shape[0]
    if batch_size is None or int(batch_size) >= n:
        return [(x, y)]
    b = int(batch_size)
    perm = torch.randperm(n, generator=order)
    return [(x[perm[s : s + b]], y[perm[s : s + b]]) for s in range(0, n, b)]


class _Ensemble:
    """``models × restarts`` independent MLPs as stacked parameters (dim 0 = model * restarts +
    restart), each with its own generator for initialisation and training noise; with a
    ``hardware`` model every noisy forward pass realises the layers through it."""

    def __init__(
        self,
        sizes: tuple[int, ...],
        modules: Sequence[MultinomialNoise | None],
        settings: TrainingSettings,
        hardware: Any = None,
    ) -> None:
        self.hardware = hardware
        self.sizes, self.modules = sizes, list(modules)
        self.activation, self.noise_site = settings.activation, settings.noise_site
        self.n_restarts = int(settings.restarts)
        r = range(self.n_restarts)
        self.p1 = torch.tensor([0.0 if nz is None else nz.p1 for nz in modules for _ in r])
        self.p2 = torch.tensor([0.0 if nz is None else nz.p2 for nz in modules for _ in r])
        self.gens = [
            torch.Generator().manual_seed(int(settings.seed) * 1000 + k) for _ in modules for k in r
        ]
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            std = math.sqrt(2.0 / a)  # Kaiming normal (ReLU gain), zero bias
            w = torch.stack([torch.randn((b, a), generator=g) * std for g in self.gens])
            self.weights.append(w.requires_grad_())
            self.biases.append(torch.zeros((len(self.gens), b), requires_grad=True))
        self.draws = Draws(self.gens)

    def _eta(self, shape: tuple[int, ...]) -> torch.Tensor:
        """A fresh multinomial η per model for a parameter or activation of ``shape``."""
        u = torch.stack([torch.rand(shape, generator=g) for g in self.gens])
        view = (-1, 1, 1) if len(shape) == 2 else (-1, 1)
        return multinomial_eta(u, self.p1.view(*view), self.p2.view(*view))

    def forward(self, x: torch.Tensor, noisy: bool) -> torch.Tensor:
        """Logits (M, N, classes) of every model for inputs x (N, in)."""
        act = torch.relu if self.activation == "relu" else torch.tanh
        n_layers = len(self.weights)
        h = x  # (N, in), broadcast over models by the first matmul
        for i in range(n_layers):
            w, b = self.weights[i], self.biases[i]
            if noisy and self.noise_site == "weights":
                w = w * self._eta(tuple(w.shape[1:]))
                b = b * self._eta(tuple(b.shape[1:]))
            if noisy and self.hardware is not None:
                h = self.hardware.train_layer(w, b, h, self.draws)
            else:
                h = torch.matmul(h, w.transpose(1, 2)) + b[:, None, :]
            if i < n_layers - 1:
                h = act(h)
                if noisy and self.noise_site == "activations":
                    h = h * self._eta(tuple(h.shape[1:]))
        return h

    def losses(self, x: torch.Tensor, y: torch.Tensor, noisy: bool) -> torch.Tensor:
        """Mean cross-entropy per model, shape (M,)."""
        logits = self.forward(x, noisy)  # (M, N, C); classes on dim 1 is the fast CPU layout
        ce = F.cross_entropy(
            logits.transpose(1, 2), y.expand(logits.shape[0], -1), reduction="none"
        )
        return ce.mean(dim=1)

    def train(self, dataset: Dataset, settings: TrainingSettings) -> None:
        """Adam on the summed loss (each model gets exactly its own gradient)."""
        opt = torch.optim.Adam(self.weights + self.biases, lr=float(settings.lr))
        x = torch.as_tensor(dataset.x_train, dtype=torch.float32)
        y = torch.as_tensor(dataset.y_train, dtype=torch.int64)
        noisy = bool((self.p1 > 0).any() or (self.p2 > 0).any() or self.hardware is not None)
        order = torch.Generator().manual_seed(int(settings.seed))
        for _ in range(int(settings.epochs)):
            for xb, yb in _minibatches(x, y, settings.batch_size, order):
                opt.zero_grad()
                self.losses(xb, yb, noisy).sum().backward()
                opt.step()

    def best_models(self, dataset: Dataset) -> list[MLP]:
        """Per model, the restart with the lowest clean training loss (the first on ties), as an
        :class:`MLP` in eval mode with its noise module attached."""
        x = torch.as_tensor(dataset.x_train, dtype=torch.float32)
        y = torch.as_tensor(dataset.y_train, dtype=torch.int64)
        with torch.no_grad():
            clean = self.losses(x, y, False).view(len(self.modules), self.n_restarts)
            pick = torch.nan_to_num(clean, nan=math.inf).argmin(dim=1)
        out = []
        for k, noise in enumerate(self.modules):
            j = k * self.n_restarts + int(pick[k])
            model = MLP(
                self.sizes, activation=self.activation, noise=noise, noise_site=self.noise_site
            )
            with torch.no_grad():
                for i, layer in enumerate(model.layers):
                    layer.weight.copy_(self.weights[i][j])
                    layer.bias.copy_(self.biases[i][j])
            model.eval()
            out.append(model)
        return out


def _accuracies(model: MLP, dataset: Dataset) -> dict[str, float]:
    return {
        "train": model.accuracy(dataset.x_train, dataset.y_train),
        "val": model.accuracy(dataset.x_val, dataset.y_val),
        "test": model.accuracy(dataset.x_test, dataset.y_test),
    }


def _wrap(
    model: MLP,
    dataset: Dataset,
    *,
    method: str,
    p1: float,
    p2: float,
    training: dict[str, Any],
    **extra: Any,
) -> TrainedModel:
    return TrainedModel(
        model=model,
        method=method,
        sizes=tuple(model.sizes),
        activation=model.activation,
        noise_site=model.noise_site,
        p1=float(p1),
        p2=float(p2),
        data_name=dataset.name,
        data_seed=int(dataset.seed),
        data_noise=dataset.noise,
        feature_mean=np.asarray(dataset.feature_mean, dtype=np.float64),
        feature_std=np.asarray(dataset.feature_std, dtype=np.float64),
        accuracies=_accuracies(model, dataset),
        training=training,
        **extra,
    )


def train_erm(
    dataset: Dataset,
    sizes: Sequence[int],
    *,
    epochs: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    activation: str = "relu",
    restarts: int | None = None,
    batch_size: int | None = None,
    num_threads: int | None = 1,
    _hardware: Any = None,
    _method: str = "erm",
    _record: dict[str, Any] | None = None,
) -> TrainedModel:
    """ERM baseline: the network trained without noise. ``None`` → per-data-set defaults.
    (The underscored keywords are :func:`train_hwa`'s: the same training with a hardware
    model's realisation in every forward pass.)"""
    settings = TrainingSettings.for_dataset(
        dataset, epochs, lr, restarts, hwa=_hardware is not None, seed=seed,
        batch_size=batch_size, activation=activation,
    )  # fmt: skip
    with torch_threads(num_threads):
        (model,) = _fit(dataset, sizes, [None], settings, hardware=_hardware)
    record = {**settings.record(), **(_record or {})}
    target = None if _hardware is None else _hardware.describe()
    return _wrap(model, dataset, method=_method, p1=0.0, p2=0.0, training=record, target=target)


# ----------------------------------------------------------------------------------------------
# Bayesian optimisation of (p1, p2)


def triangle_grid(step: float = 0.01, total_max: float = P_TOTAL_MAX) -> np.ndarray:
    """All grid points ``(p1, p2)`` with spacing ``step``, ``p1, p2 ≥ 0``, ``p1 + p2 ≤ total_max``."""
    k = int(round(total_max / step))
    i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
    keep = (i + j) <= k
    return np.stack([i[keep] * step, j[keep] * step], axis=1)


def random_triangle_points(n: int, rng: np.random.Generator, total_max: float = P_TOTAL_MAX):
    """``n`` points uniform in the triangle (reflection of the unit square's upper half)."""
    u = rng.random((n, 2))
    flip = u.sum(axis=1) > 1.0
    u[flip] = 1.0 - u[flip]
    return u * total_max


def propose_next(
    x_seen: np.ndarray,
    y_seen: np.ndarray,
    candidates: np.ndarray,
    *,
    total_max: float = P_TOTAL_MAX,
) -> tuple[np.ndarray, float]:
    """Fit a SingleTaskGP to the observations and return the candidate maximising LogEI.

    Returns ``(point, log_ei)``. Observations are maximised. Already-seen points are excluded.
    Inputs are normalised to the triangle's box ``[0, total_max]²`` (see
    :func:`calibration.grid_bo.propose`).
    """
    bounds = [[0.0, 0.0], [total_max, total_max]]
    with torch_threads(1):  # a 2-D GP on a dozen points is fastest single-threaded
        i, log_ei = grid_bo.propose(x_seen, y_seen, candidates, bounds=bounds)
    return candidates[i], log_ei


def bayes_opt_many(
    objective_many: Callable[[list[tuple[int, float, float]]], list[float]],
    n_problems: int,
    *,
    n_init: int = 3,
    n_iter: int = 10,
    seed: int = 0,
    total_max: float = P_TOTAL_MAX,
    grid_step: float = 0.01,
    progress: ProgressFn | None = None,
) -> list[list[dict[str, float]]]:
    """Run ``n_problems`` independent BO searches of (p1, p2) in lockstep; maximises.

    Each problem ``k`` has its own numpy Generator (seed ``seed``), ``n_init`` uniform random
    points in the triangle, then ``n_iter`` LogEI steps on its own GP, so each search is the same
    as if it ran alone. Lockstep only lets ``objective_many`` evaluate one candidate of every
    problem in a single batch: it receives ``[(k, p1, p2), …]`` and returns the scores in order.

    Returns one trace per problem, in evaluation order, entries
    ``{"iteration", "p1", "p2", "objective", "phase"}`` (phase "init" or "bo").
    ``progress`` gets a :class:`~crossbar.progress.Progress` after each evaluation: stage
    ``"BO"``, done = the problem's iteration, values ``problem``, ``p1``, ``p2``, ``score``.
    """
    if int(n_init) < 1 or int(n_iter) < 0 or int(n_problems) < 1:
        raise ValueError(
            f"need n_init >= 1, n_iter >= 0, n_problems >= 1; got {n_init}, {n_iter}, {n_problems}"
        )
    total = int(n_init) + int(n_iter)
    rngs = [np.random.default_rng(seed) for _ in range(int(n_problems))]
    candidates = triangle_grid(grid_step, total_max)
    traces: list[list[dict[str, float]]] = [[] for _ in range(int(n_problems))]

    def run(points: list[tuple[int, np.ndarray]], phase: str) -> None:
        batch = [(k, float(round(pt[0], 6)), float(round(pt[1], 6))) for k, pt in points]
        scores = objective_many(batch)
        for (k, p1, p2), score in zip(batch, scores):
            trace = traces[k]
            trace.append(
                {
                    "iteration": len(trace) + 1,
                    "p1": p1,
                    "p2": p2,
                    "objective": float(score),
                    "phase": phase,
                }
            )
            notify(
                progress,
                len(trace),
                total,
                "BO",
                f"p1={p1:.2f} p2={p2:.2f} objective={float(score):.3f}",
                problem=k,
                p1=p1,
                p2=p2,
                score=float(score),
            )

    run(
        [
            (k, pt)
            for k in range(int(n_problems))
            for pt in random_triangle_points(int(n_init), rngs[k], total_max)
        ],
        "init",
    )
    for _ in range(int(n_iter)):
        points = []
        for k, trace in enumerate(traces):
            xs = np.array([[t["p1"], t["p2"]] for t in trace])
            ys = np.array([t["objective"] for t in trace])
            try:
                point, _ = propose_next(xs, ys, candidates, total_max=total_max)
            except Exception:  # noqa: BLE001 - a failed GP fit must not end the search
                point = random_triangle_points(1, rngs[k], total_max)[0]
            points.append((k, point))
        run(points, "bo")
    return traces


def bayes_opt_noise(
    objective: Callable[[float, float], float],
    *,
    progress: ProgressFn | None = None,
    **options: Any,
) -> list[dict[str, float]]:
    """Maximise ``objective(p1, p2)`` over the triangle: one search of :func:`bayes_opt_many`
    (``options``: its n_init, n_iter, seed, total_max, grid_step, progress)."""

    def many(batch: list[tuple[int, float, float]]) -> list[float]:
        return [float(objective(p1, p2)) for _, p1, p2 in batch]

    return bayes_opt_many(many, 1, progress=progress, **options)[0]


def best_of_trace(trace: Sequence[dict[str, float]]) -> dict[str, float]:
    """The entry with the highest objective (the first one on ties)."""
    if not trace:
        raise ValueError("empty BO trace")
    return max(trace, key=lambda t: (t["objective"], -t["iteration"]))


Target = Any  # (usability, profile) or a hardware model (inference.noise.HardwareModel)


def hardware_of(target: Target) -> Any:
    """The hardware model of a BO target: a model as is; ``(usability, profile)`` as the
    section-2 :class:`~inference.noise.UsabilityModel`; ``(None, None)`` → None (no target)."""
    if hasattr(target, "accuracy") and hasattr(target, "describe"):
        return target
    usability, profile = target
    if usability is not None and profile is not None:
        raise ValueError("give at most one of usability= and profile= per target")
    if usability is None and profile is None:
        return None
    return UsabilityModel(usability, profile)


def _check_targets(targets: Sequence[Target], objective: str, n_eval_trials: int, hwa: bool):
    """The targets' hardware models (None where there is none), checked."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    models = [hardware_of(t) for t in targets]
    for hw in models:
        if hw is None and objective == "hardware":
            raise ValueError(
                "the hardware objective needs a target: usability=, profile= or hardware="
            )
        if hw is None and hwa:
            raise ValueError("hardware-aware training needs a hardware model (hardware=)")
    if int(n_eval_trials) < 1:
        raise ValueError(f"n_eval_trials must be >= 1, got {n_eval_trials}")
    return models


class _CandidateScores:
    """BayesMulti's BO objective for :func:`bayes_opt_many`: trains one candidate per entry of
    a batch ``[(target, p1, p2), …]`` (one ensemble per target with hardware-aware training,
    one for all otherwise) and scores it; keeps each target's best model (the first of equal
    scores)."""

    def __init__(
        self,
        dataset: Dataset,
        sizes: Sequence[int],
        models: Sequence[Any],
        settings: TrainingSettings,
        objective: str,
        n_eval_trials: int,
        hwa: bool = False,
    ) -> None:
        self.dataset, self.sizes, self.models = dataset, sizes, list(models)
        self.settings, self.objective, self.n_eval_trials = settings, objective, int(n_eval_trials)
        self.hwa = bool(hwa)
        self.best_score = [-math.inf for _ in self.models]
        self.best_model: list[MLP | None] = [None for _ in self.models]

    def score(self, k: int, model: MLP) -> float:
        """The objective of a trained candidate for target ``k``."""
        ds = self.dataset
        if self.objective != "hardware":
            return model.accuracy(ds.x_train, ds.y_train)
        accs = self.models[k].accuracy(
            model,
            ds.x_val,
            ds.y_val,
            x_calib=ds.x_train,
            n_trials=self.n_eval_trials,
            seed=int(self.settings.seed) + 7919,  # common random numbers for every candidate
        )
        return float(np.mean(accs))

    def trained(self, k: int, trace: list[dict[str, float]], training: dict) -> TrainedModel:
        """Target ``k``'s result: its best model with the (p1, p2) of its trace's best entry."""
        top = best_of_trace(trace)
        hw = self.models[k]
        record = dict(training)
        if self.hwa:
            record["hardware_noise"] = hw.describe()
        return _wrap(
            self.best_model[k],
            self.dataset,
            method="bayesmulti+hwa" if self.hwa else "bayesmulti",
            p1=top["p1"],
            p2=top["p2"],
            training=record,
            objective=self.objective,
            target=None if hw is None else hw.describe(),
            n_eval_trials=self.n_eval_trials,
            bo_trace=trace,
        )

    def _train(self, batch: list[tuple[int, float, float]]) -> list[MLP]:
        if not self.hwa:
            return _fit(self.dataset, self.sizes, [(p1, p2) for _, p1, p2 in batch], self.settings)
        out: list[MLP | None] = [None] * len(batch)
        for k in dict.fromkeys(k for k, _, _ in batch):  # one ensemble per target's hardware
            idx = [j for j, (kk, _, _) in enumerate(batch) if kk == k]
            noises = [(batch[j][1], batch[j][2]) for j in idx]
            for j, m in zip(idx, _fit(self.dataset, self.sizes, noises, self.settings, 1,
                                      self.models[k])):  # fmt: skip
                out[j] = m
        return out  # type: ignore[return-value]

    def __call__(self, batch: list[tuple[int, float, float]]) -> list[float]:
        models = self._train(batch)
        scores = []
        for (k, _, _), model in zip(batch, models):
            value = self.score(k, model)
            if value > self.best_score[k]:  # strict: the first of equal scores is kept
                self.best_score[k], self.best_model[k] = value, model
            scores.append(value)
        return scores


def train_bayesmulti_many(
    dataset: Dataset,
    sizes: Sequence[int],
    targets: Sequence[Target],
    *,
    n_init: int = 3,
    n_iter: int = 10,
    objective: str = "hardware",
    n_eval_trials: int = 30,
    seed: int = 0,
    progress: ProgressFn | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    activation: str = "relu",
    noise_site: str = "activations",
    restarts: int | None = None,
    batch_size: int | None = None,
    num_threads: int | None = 1,
    hwa: bool = False,
) -> list[TrainedModel]:
    """BayesMulti for several targets at once (one BO per target).

    The searches run in lockstep (:func:`bayes_opt_many`) so each round trains one candidate per
    target in a single batched ensemble; every result equals :func:`train_bayesmulti` run alone
    for that target.

    Args:
        dataset: the data (validation set scores the hardware objective).
        sizes: layer widths.
        targets: per search, a hardware model (:class:`inference.hardware_model.
            DeploymentModel` of a measured deployment profile, a :class:`~inference.noise.
            UsabilityModel`) or ``(usability, profile)``: a target usability U in (0, 1]
            (usability-only noise, σ = −ln U) or a calibrated device curve (σ and the
            non-monotonic mapping); ``(None, None)`` only with ``"train_accuracy"``.
        n_init, n_iter: random initial points and BO iterations (paper 3 + 10).
        objective: ``"hardware"`` (default, decision: mean validation accuracy under the
            target's hardware model over ``n_eval_trials`` trials) or ``"train_accuracy"``
            (the paper's: clean training accuracy).
        n_eval_trials: noise trials averaged by the hardware objective.
        seed: training seed of every candidate; also seeds the initial points and the
            objective's noise.
        progress: a :class:`~crossbar.progress.Progress` (values ``problem`` = target index,
            ``p1``, ``p2``, ``score``) after each candidate.
        epochs, lr, restarts: None → per-data-set defaults (:data:`HYPERPARAMETERS`).
        activation, noise_site, batch_size: see :class:`TrainingSettings`.
        num_threads: torch threads of the search (training itself runs single-threaded).
        hwa: BayesMulti + hardware-aware training: every candidate also sees the target's
            hardware realisation of its weights in training (method ``"bayesmulti+hwa"``).

    Returns:
        Per target, the best candidate's :class:`TrainedModel` with the whole BO trace.
    """
    models = _check_targets(targets, objective, n_eval_trials, hwa)
    settings = TrainingSettings.for_dataset(
        dataset,
        epochs,
        lr,
        restarts,
        hwa=hwa,
        seed=seed,
        batch_size=batch_size,
        activation=activation,
        noise_site=noise_site,
    )
    scores = _CandidateScores(dataset, sizes, models, settings, objective, n_eval_trials, hwa)
    with torch_threads(num_threads):
        traces = bayes_opt_many(
            scores, len(targets), n_init=n_init, n_iter=n_iter, seed=seed, progress=progress
        )
    training = {**settings.record(), "n_init": int(n_init), "n_iter": int(n_iter)}
    return [scores.trained(k, traces[k], training) for k in range(len(targets))]


def train_bayesmulti(
    dataset: Dataset,
    sizes: Sequence[int],
    *,
    usability: float | None = None,
    profile: DeviceNoiseProfile | None = None,
    hardware: Any = None,
    progress: ProgressFn | None = None,
    **options: Any,
) -> TrainedModel:
    """BayesMulti: multinomial-noise training with (p1, p2) chosen by Bayesian optimisation.

    The search for one target, :func:`train_bayesmulti_many`; ``options`` are its keywords
    (n_init, n_iter, objective, n_eval_trials, seed, epochs, lr, activation, noise_site,
    restarts, batch_size, num_threads, hwa).

    Args:
        dataset: the data (validation set scores the hardware objective).
        sizes: layer widths.
        usability: target usability U in (0, 1] (usability-only noise, σ = −ln U), or
        profile: a calibrated device curve (σ and the non-monotonic mapping), or
        hardware: a hardware model, e.g. the :class:`~inference.hardware_model.DeploymentModel`
            of a measured deployment profile; at most one of the three (exactly one for
            ``objective="hardware"``).
        progress: a :class:`~crossbar.progress.Progress` after each candidate (see
            :func:`bayes_opt_many`).

    Returns:
        The best candidate's :class:`TrainedModel` with the whole BO trace.
    """
    if hardware is not None and (usability is not None or profile is not None):
        raise ValueError("give one target: usability=, profile= or hardware=")
    targets = [hardware if hardware is not None else (usability, profile)]
    return train_bayesmulti_many(dataset, sizes, targets, progress=progress, **options)[0]


def train_hwa(
    dataset: Dataset, sizes: Sequence[int], *, hardware: Any, **settings: Any
) -> TrainedModel:
    """Hardware-aware training (the field's standard baseline, aihwkit ``InferenceRPUConfig``
    style): ERM's loss, but every training forward pass realises the weights through
    ``hardware`` (a :class:`~inference.hardware_model.DeploymentModel`: G⁺/G⁻ targets, sampled
    programming error, stuck cells, drift, read noise; or a :class:`~inference.noise.
    UsabilityModel`: log-normal weight noise). ``settings``: :func:`train_erm`'s keywords
    (None → :data:`HWA_HYPERPARAMETERS`). Method ``"hwa"``."""
    if hardware is None or not hasattr(hardware, "train_layer"):
        raise ValueError("hardware-aware training needs a hardware model (hardware=)")
    described = hardware.describe()
    return train_erm(
        dataset, sizes, _hardware=hardware, _method="hwa", _record={"hardware_noise": described},
        **settings,
    )  # fmt: skip


def train_linear(dataset: Dataset, *, c: float = 1.0, seed: int = 0) -> TrainedModel:
    """The linear-model control: multinomial logistic regression (scikit-learn, L2 penalty
    ``C = c``) on the transformed features, as a one-layer network (inputs → classes, realised
    on the crossbar as one layer). Two classes become the symmetric pair of logits ±z/2.
    Method ``"linear"``."""
    from sklearn.linear_model import LogisticRegression

    if not (math.isfinite(c) and c > 0):
        raise ValueError(f"the regularisation C must be > 0, got {c}")
    x, y = np.asarray(dataset.x_train, dtype=np.float64), np.asarray(dataset.y_train)
    n_classes = int(max(np.max(y), np.max(dataset.y_test), np.max(dataset.y_val))) + 1
    clf = LogisticRegression(C=float(c), max_iter=5000, random_state=int(seed)).fit(x, y)
    w, b = clf.coef_, clf.intercept_
    if w.shape[0] == 1:  # binary: one score z = w·x + b → logits (−z/2, +z/2)
        w, b = np.vstack([-w / 2, w / 2]), np.array([-b[0] / 2, b[0] / 2])
    model = MLP((x.shape[1], n_classes))
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.as_tensor(w))
        model.layers[0].bias.copy_(torch.as_tensor(b))
    model.eval()
    record = {"model": "logistic regression (scikit-learn)", "C": float(c), "seed": int(seed)}
    return _wrap(model, dataset, method="linear", p1=0.0, p2=0.0, training=record)


def train_method(
    method: str,
    dataset: Dataset,
    sizes: Sequence[int],
    *,
    hardware: Any = None,
    objective: str = "hardware",
    seed: int = 0,
    progress: ProgressFn | None = None,
    **options: Any,
) -> TrainedModel:
    """Train one of :data:`inference.names.METHODS` — the entry point of a study's grid.

    Args:
        method: ``"erm"``, ``"bayesmulti"``, ``"hwa"``, ``"bayesmulti+hwa"`` or ``"linear"``.
        dataset: the data; ``sizes`` the layer widths (ignored by ``"linear"``).
        hardware: the hardware model BayesMulti's objective is evaluated under and HWA
            injects (e.g. ``DeploymentModel(profile)``); needed by every method but ERM and
            linear (BayesMulti with ``objective="train_accuracy"`` may go without).
        objective: BayesMulti's BO objective, ``"hardware"`` or ``"train_accuracy"``.
        seed: training seed (and the BO's).
        options: epochs, lr, restarts, batch_size, num_threads (every network); n_init,
            n_iter, n_eval_trials, noise_site (BayesMulti); c (linear).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if method == "linear":
        return train_linear(dataset, c=float(options.get("c", 1.0)), seed=seed)
    net = {k: options[k] for k in ("epochs", "lr", "restarts", "batch_size", "num_threads")
           if k in options}  # fmt: skip
    if method == "erm":
        return train_erm(dataset, sizes, seed=seed, **net)
    if method == "hwa":
        return train_hwa(dataset, sizes, hardware=hardware, seed=seed, **net)
    bo = {k: options[k] for k in ("n_init", "n_iter", "n_eval_trials", "noise_site")
          if k in options}  # fmt: skip
    target = [hardware if hardware is not None else (None, None)]
    return train_bayesmulti_many(
        dataset, sizes, target, objective=objective, seed=seed, progress=progress,
        hwa=method == "bayesmulti+hwa", **bo, **net,
    )[0]  # fmt: skip


def robustness_radius(p1: float, p2: float, n_params: int, score: float) -> float:
    """Theorem 1's bound on the number of parameters that may be perturbed (diagnostic).

    ``r ≤ [ln(1.5 − f) − Θ·ln(1 − p2)] / [ln p1 − ln(1 − p2)]`` with Θ = ``n_params`` and
    ``f`` = ``score`` the clean model's score in [0.5, 1]. Returns 0 when ``p1 = 0`` (the
    denominator is −∞). Computed exactly as METHODS section 3 states it; a negative value means
    the bound guarantees nothing. Requires ``p1 + p2 < 1``.
    """
    if not (0 <= p1 and 0 <= p2 and p1 + p2 < 1):
        raise ValueError(f"need p1, p2 >= 0 and p1 + p2 < 1, got {p1}, {p2}")
    if not (0.0 <= score <= 1.0):
        raise ValueError(f"score must be in [0, 1], got {score}")
    if p1 == 0.0:
        return 0.0
    num = math.log(1.5 - score) - n_params * math.log(1.0 - p2)
    den = math.log(p1) - math.log(1.0 - p2)
    return num / den
