"""Hardware-noise model for evaluating a trained network (METHODS section 2, PerovskiteMemSim).

Every weight matrix of a network is realised on devices. Here a "matrix" is one layer's
augmented matrix ``[W | b]`` (outputs × (inputs + 1)): **decision** — the bias is the last column
(the crossbar's bias row, driven by a constant input of 1), so it shares the layer's ``W_max`` and
receives the same noise as the other weights. :meth:`inference.models.MLP.augmented_weights`
produces this form.

For one matrix with ``W_max = max |W|``:

* **Non-monotonic** (profile mode, only if ``L < L_min``): ``f = |w| / W_max`` is programmed as level
  ``j = round(f · (L_min − 1))`` along the mean curve from the LCIS start ``s``. If ``j < L`` the
  level is reached (``f`` unchanged); otherwise the realised fraction is
  ``(Ḡ[s+j] − Ḡ[s]) / (Ḡ_max − Ḡ[s])`` clipped to [0, 1], ``Ḡ_max = max Ḡ[s … s+L_min−1]``, indices
  beyond the branch using the last point. The weight becomes ``sign(w) · W_max · fraction``.
  **Decision**: ``round`` is round-half-up (``floor(x + 0.5)``), not numpy's half-to-even; when
  ``Ḡ_max = Ḡ[s]`` (no rise at all in the window) the realised fraction is 0 (the clip's limit).
  The mapping is deterministic: it is applied once, before the per-trial stochastic factor.
* **Stochastic**: ``w · exp(ε)``, ``ε ~ N(0, σ²)`` independently per weight and per trial.
* **Usability-only mode**: no device curve, ``α_nm = 1``, ``σ = −ln U``.

:class:`UsabilityModel` puts this model behind the interface the deployment-profile model
(:class:`inference.hardware_model.DeploymentModel`) has too, :class:`HardwareModel`
(``logits``, ``accuracy``, ``train_layer``, ``describe``);
:class:`Draws` gives both models their random numbers in torch, from one generator (trials) or
one per model (a batched training ensemble).

Random numbers: all ε of one call are drawn as a single ``(n_trials, total weights)`` block in
row-major order (trial by trial, matrices in order), so drawing the trials one at a time from the
same generator gives identical values. :func:`evaluate_per_trial` relies on this: it is the plain
Python-loop reference of :func:`evaluate` and returns exactly the same accuracies for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from calibration.grid_bo import torch_threads
from calibration.profile import DeviceNoiseProfile


def sigma_from_usability(usability: float) -> float:
    """σ = −ln U of the usability-only mode; U must be in (0, 1]."""
    u = float(usability)
    if not (math.isfinite(u) and 0.0 < u <= 1.0):
        raise ValueError(f"usability must be in (0, 1], got {usability!r}")
    return -math.log(u)


def _check_mode(usability: float | None, profile: DeviceNoiseProfile | None) -> float:
    if (usability is None) == (profile is None):
        raise ValueError("give exactly one of usability= or profile=")
    if profile is not None:
        return float(profile.sigma)
    return sigma_from_usability(usability)  # type: ignore[arg-type]


def nonmonotonic_fraction(
    f: np.ndarray,
    *,
    mean_curve_g: Sequence[float],
    lcis_start: int,
    lcis_length: int,
    l_min: int,
) -> np.ndarray:
    """Realised magnitude fraction for target fractions ``f`` in [0, 1] (METHODS section 2).

    Levels ``j = round_half_up(f · (L_min − 1))``; ``j < L`` keeps ``f``; otherwise
    ``(Ḡ[s+j] − Ḡ[s]) / (Ḡ_max − Ḡ[s])`` clipped to [0, 1] (indices beyond the curve use its last
    point; ``Ḡ_max = max Ḡ[s … s+L_min−1]``; 0 when ``Ḡ_max = Ḡ[s]``).
    """
    g = np.asarray(mean_curve_g, dtype=np.float64)
    if g.size == 0:
        raise ValueError("the non-monotonic mapping needs the device's mean curve (empty)")
    s, big_l, l_min = int(lcis_start), int(lcis_length), int(l_min)
    f = np.asarray(f, dtype=np.float64)
    j = np.floor(f * (l_min - 1) + 0.5).astype(np.int64)  # decision: round half up
    last = g.size - 1
    g_s = g[s]
    window = g[np.minimum(np.arange(s, s + l_min), last)]
    g_max = float(window.max())
    denom = g_max - g_s
    reached = g[np.minimum(s + j, last)]
    if denom > 0:
        other = np.clip((reached - g_s) / denom, 0.0, 1.0)
    else:
        other = np.zeros_like(f)
    return np.where(j < big_l, f, other)


def nonmonotonic_map(w: np.ndarray, profile: DeviceNoiseProfile) -> np.ndarray:
    """Deterministic non-monotonic programming of one matrix (identity if ``L ≥ L_min``)."""
    w = np.asarray(w, dtype=np.float64)
    if not profile.non_monotonic:
        return w.copy()
    w_max = float(np.max(np.abs(w))) if w.size else 0.0
    if w_max == 0.0:
        return w.copy()
    frac = nonmonotonic_fraction(
        np.abs(w) / w_max,
        mean_curve_g=profile.mean_curve_g,
        lcis_start=profile.lcis_start,
        lcis_length=profile.lcis_length,
        l_min=profile.l_min,
    )
    return np.sign(w) * w_max * frac


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def perturb_weights(
    weights: Sequence[np.ndarray],
    *,
    n_trials: int,
    rng: np.random.Generator | int | None,
    usability: float | None = None,
    profile: DeviceNoiseProfile | None = None,
) -> list[np.ndarray]:
    """Realise matrices on noisy devices, ``n_trials`` independent times (vectorised).

    Args:
        weights: one array per realised matrix (layers as ``[W | b]``, see module docstring);
            ``W_max`` is taken per array.
        n_trials: number of independent noise draws (≥ 1).
        rng: numpy Generator (or seed) the ε are drawn from.
        usability: usability-only mode, U in (0, 1] → ``σ = −ln U``, no non-monotonic mapping.
        profile: device-profile mode: σ from the profile and the non-monotonic mapping if
            ``L < L_min``. Exactly one of ``usability`` / ``profile``.

    Returns:
        One float64 array per input, shape ``(n_trials, *W.shape)``.
    """
    sigma = _check_mode(usability, profile)
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials!r}")
    n_trials = int(n_trials)
    rng = _as_rng(rng)
    mats = [np.asarray(w, dtype=np.float64) for w in weights]
    if profile is not None:
        mats = [nonmonotonic_map(w, profile) for w in mats]
    sizes = [w.size for w in mats]
    total = int(sum(sizes))
    # One block, row-major (trial by trial): identical to drawing trials one at a time.
    eps = rng.standard_normal((n_trials, total))
    if sigma == 0.0:
        factor = np.ones_like(eps)
    else:
        factor = np.exp(sigma * eps)
    out = []
    start = 0
    for w, n in zip(mats, sizes):
        block = factor[:, start : start + n].reshape((n_trials, *w.shape))
        out.append(w[None, ...] * block)
        start += n
    return out


def _weights_and_activation(model_or_weights, activation: str | None) -> tuple[list, str]:
    obj = model_or_weights
    if hasattr(obj, "model") and hasattr(obj.model, "augmented_weights"):
        obj = obj.model  # a TrainedModel
    if hasattr(obj, "augmented_weights"):
        return obj.augmented_weights(), activation or obj.activation
    return [np.asarray(w, dtype=np.float64) for w in obj], activation or "relu"


def _act(h: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(h, 0.0)
    if activation == "tanh":
        return np.tanh(h)
    raise ValueError(f"unknown activation {activation!r}")


def forward_batched(
    trial_weights: Sequence[np.ndarray],
    x: np.ndarray,
    activation: str = "relu",
    *,
    num_threads: int | None = 1,
) -> np.ndarray:
    """Logits of every trial at once: ``(n_trials, points, outputs)``, float64.

    ``trial_weights`` are ``[W | b]`` stacks of shape ``(n_trials, out, in + 1)``; ``x`` is
    ``(points, inputs)`` (transformed features). Batched matmuls over (trials, points) with torch
    (float64).
    """
    h = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    n_layers = len(trial_weights)
    with torch_threads(num_threads):
        for i, tw in enumerate(trial_weights):
            w = torch.from_numpy(np.asarray(tw, dtype=np.float64))
            w_t = w[:, :, :-1].transpose(1, 2).contiguous()  # (T, in, out)
            # First layer: (N, in) @ (T, in, out) broadcasts the shared inputs over trials.
            h = torch.matmul(h, w_t) + w[:, :, -1].unsqueeze(1)
            if i < n_layers - 1:
                h = torch.relu(h) if activation == "relu" else torch.tanh(h)
    return h.numpy()


def evaluate(
    model_or_weights,
    x: np.ndarray,
    y: np.ndarray,
    *,
    usability: float | None = None,
    profile: DeviceNoiseProfile | None = None,
    n_trials: int = 10,
    seed: int | np.random.Generator | None = 0,
    activation: str | None = None,
    per_trial: bool = False,
) -> np.ndarray:
    """Accuracy of a network under the section-2 hardware noise, one value per trial.

    Args:
        model_or_weights: an :class:`~inference.models.MLP`, a ``TrainedModel``, or a list of
            ``[W | b]`` matrices (then ``activation`` defaults to ReLU).
        x, y: transformed features (points × inputs) and int labels.
        usability / profile: the noise mode (exactly one), see :func:`perturb_weights`.
        n_trials: number of noise trials (paper: 10).
        seed: seed or Generator of the noise.
        per_trial: the reference computation, a Python loop over trials (same numbers for a
            seed; see :func:`evaluate_per_trial`).

    Returns:
        float64 array ``(n_trials,)`` of accuracies in [0, 1]. Vectorised: one draw for all
        trials, then batched matmuls over (trials, points).
    """
    weights, act = _weights_and_activation(model_or_weights, activation)
    rng = _as_rng(seed)
    if per_trial:
        return _accuracy_per_trial(weights, act, x, y, rng, n_trials, usability, profile)
    tw = perturb_weights(weights, n_trials=n_trials, rng=rng, usability=usability, profile=profile)
    logits = forward_batched(tw, x, act)
    pred = logits.argmax(axis=-1)
    return (pred == np.asarray(y)[None, :]).mean(axis=1)


def evaluate_per_trial(model_or_weights, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> np.ndarray:
    """Reference of :func:`evaluate` with a Python loop over trials (same numbers for a seed):
    ``evaluate(..., per_trial=True)`` with the same keywords.

    Used by the tests (equality) and the benchmark (the "per-trial python loop" peer).
    """
    return evaluate(model_or_weights, x, y, per_trial=True, **kwargs)


def _accuracy_per_trial(
    weights: list[np.ndarray],
    act: str,
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    n_trials: int,
    usability: float | None,
    profile: DeviceNoiseProfile | None,
) -> np.ndarray:
    y = np.asarray(y)
    acc = np.empty(int(n_trials))
    for t in range(int(n_trials)):
        tw = perturb_weights(weights, n_trials=1, rng=rng, usability=usability, profile=profile)
        h = np.asarray(x, dtype=np.float64)
        for i, w in enumerate(tw):
            h = np.concatenate([h, np.ones((h.shape[0], 1))], axis=1) @ w[0].T
            if i < len(tw) - 1:
                h = _act(h, act)
        acc[t] = np.mean(h.argmax(axis=1) == y)
    return acc


class Draws:
    """Random numbers for ``n`` trials or models: from one torch Generator (``n`` given), or from
    one Generator per model (a sequence of ``n``) so that each model of a batched ensemble draws
    exactly what it would draw alone. ``rand(shape)`` and ``randn(shape)`` return (n, *shape)."""

    def __init__(
        self,
        gens: torch.Generator | Sequence[torch.Generator],
        n: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if isinstance(gens, torch.Generator):
            if n is None or int(n) < 1:
                raise ValueError("one generator needs n >= 1 (the number of trials)")
            self.gen, self.gens, self.n = gens, None, int(n)
        else:
            self.gen, self.gens, self.n = None, list(gens), len(gens)
        self.dtype = dtype

    def _draw(self, fn: Any, shape: Sequence[int]) -> torch.Tensor:
        shape = tuple(int(s) for s in shape)
        if self.gens is None:
            return fn((self.n, *shape), generator=self.gen, dtype=self.dtype)
        return torch.stack([fn(shape, generator=g, dtype=self.dtype) for g in self.gens])

    def rand(self, shape: Sequence[int]) -> torch.Tensor:
        """Uniform [0, 1), (n, *shape)."""
        return self._draw(torch.rand, shape)

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        """Standard normal, (n, *shape)."""
        return self._draw(torch.randn, shape)


class HardwareModel:
    """A model of the hardware a network runs on: what training, BayesMulti's objective and a
    study need. Subclasses give :meth:`logits` (vectorised over trials), :meth:`train_layer`
    (the training-time realisation of one layer) and :meth:`describe`; :meth:`accuracy` is
    theirs in common."""

    def logits(self, net: Any, x: np.ndarray, *, n_trials: int = 10, seed: int = 0,
               **context: Any) -> np.ndarray:  # fmt: skip
        """Logits (n_trials, points, classes) of ``net`` on ``x`` (transformed features);
        ``context``: what the model needs besides (e.g. ``x_calib``)."""
        raise NotImplementedError

    def accuracy(self, net: Any, x: np.ndarray, y: np.ndarray, **options: Any) -> np.ndarray:
        """Accuracy per trial, (n_trials,) in [0, 1]; ``options`` as :meth:`logits`'."""
        out = self.logits(net, x, **options)
        return (out.argmax(axis=-1) == np.asarray(y)[None, :]).mean(axis=1)

    def train_layer(
        self, w: torch.Tensor, b: torch.Tensor, h: torch.Tensor, draws: Draws
    ) -> torch.Tensor:
        """One layer's outputs (M, N, out) of M models (w (M, out, in), b (M, out)) on inputs
        h ((N, in) or (M, N, in)), the weights realised as the model says."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-ready description: the kind and the parameters."""
        raise NotImplementedError


class UsabilityModel(HardwareModel):
    """The section-2 model (METHODS §2) as a :class:`HardwareModel`: usability-only (σ = −ln U)
    or a calibrated device curve (σ and the non-monotonic mapping). Exactly one of
    ``usability`` / ``device``. Its numbers are :func:`evaluate`'s for the same seed."""

    def __init__(
        self, usability: float | None = None, device: DeviceNoiseProfile | None = None
    ) -> None:
        self.sigma = _check_mode(usability, device)
        self.usability = None if usability is None else float(usability)
        self.device = device

    def logits(self, net: Any, x: np.ndarray, *, n_trials: int = 10, seed: int = 0,
               **context: Any) -> np.ndarray:  # fmt: skip
        """:func:`perturb_weights` then :func:`forward_batched` (``context``, e.g. x_calib, is
        not needed by this model)."""
        weights, act = _weights_and_activation(net, None)
        tw = perturb_weights(
            weights, n_trials=n_trials, rng=_as_rng(seed), usability=self.usability,
            profile=self.device,
        )  # fmt: skip
        return forward_batched(tw, x, act)

    def train_layer(
        self, w: torch.Tensor, b: torch.Tensor, h: torch.Tensor, draws: Draws
    ) -> torch.Tensor:
        """Outputs (M, N, out) with every weight and bias multiplied by exp(σ·ε), ε ~ N(0, 1)
        per element and model (the stochastic part of the model; the deterministic
        non-monotonic mapping of a device curve is not applied in training)."""
        fw = torch.exp(self.sigma * draws.randn(w.shape[1:]).to(w.dtype))
        fb = torch.exp(self.sigma * draws.randn(b.shape[1:]).to(b.dtype))
        return torch.matmul(h, (w * fw).transpose(1, 2)) + (b * fb)[:, None, :]

    def describe(self) -> dict[str, Any]:
        """JSON-ready: ``{"kind": "usability", "usability", "sigma"}`` or the device curve's
        name, σ, usability and whether the non-monotonic mapping applies."""
        if self.device is None:
            return {"kind": "usability", "usability": self.usability, "sigma": self.sigma}
        return {
            "kind": "device-curve",
            "profile": self.device.name,
            "sigma": float(self.device.sigma),
            "usability": float(self.device.usability),
            "non_monotonic": bool(self.device.non_monotonic),
        }

    def __repr__(self) -> str:
        what = f"U={self.usability:g}" if self.device is None else f"device {self.device.name}"
        return f"UsabilityModel({what}, σ={self.sigma:.3g})"
