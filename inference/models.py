"""The networks: a plain MLP with optional multinomial noise injection (METHODS section 3).

``MultinomialNoise(p1, p2)`` multiplies each element by ``η ∈ {0, 0.5, 1}`` with probabilities
``p1, p2, 1 − p1 − p2``, rescaled by ``1 / E[η]`` so the expected value is unchanged. It is drawn
independently per element and per forward pass, in training mode only (identity in eval mode).

Where the noise goes (``noise_site``):

* ``"activations"`` (**decision** of METHODS section 3, as the authors' code does; default): on
  the output of every hidden layer after its activation, never after the output layer.
* ``"weights"`` (configurable alternative, the paper's theory multiplies parameters by η): every
  layer's weight matrix *and* bias vector (**decision**: biases are realised on devices too, as
  a bias row of the crossbar) are multiplied element-wise by a fresh η per forward pass. All
  layers, including the output layer, since the hardware noise hits every realised matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from calibration.grid_bo import torch_threads
from inference.names import NOISE_SITES

# The paper's hardware network: 2 inputs, one hidden layer of 5 ReLU units, 2 outputs.
# Placement on the 10×10 crossbar (differential column pairs, biases as an extra row driven at a
# fixed read voltage, METHODS section 5):
#   layer 1: rows 0–2 (x1, x2, bias) × columns 0–9 (5 hidden units × 2 columns G⁺/G⁻);
#   layer 2: rows 3–8 (5 hidden units + bias) × columns 0–3 (2 outputs × 2 columns).
# The two layers use disjoint row ranges of the one array; row 9 is unused (held at 0 V).
MOONS_SIZES: tuple[int, ...] = (2, 5, 2)
"""2-5-2 ReLU MLP that fits the 10×10 array (see the placement comment above)."""

# 64-32-10 MLP for the 8×8 digits. Software study only: 65 input rows (64 pixels + bias) and
# 64 columns (32 × 2) do not fit the 10×10 array.
DIGITS_SIZES: tuple[int, ...] = (64, 32, 10)
"""64-32-10 ReLU MLP for sklearn digits (does not fit the 10×10 array; software study only)."""

ACTIVATIONS = ("relu", "tanh")


def multinomial_eta(
    u: torch.Tensor, p1: float | torch.Tensor, p2: float | torch.Tensor
) -> torch.Tensor:
    """Map uniforms ``u`` in [0, 1) to ``η / E[η]``: η = 0 if u < p1, 0.5 if u < p1 + p2, else 1.

    ``p1``, ``p2`` may be floats or tensors broadcastable against ``u`` (one value per model in
    batched training).
    """
    p1 = torch.as_tensor(p1, dtype=u.dtype)
    p2 = torch.as_tensor(p2, dtype=u.dtype)
    # η = 0.5·[u ≥ p1] + 0.5·[u ≥ p1 + p2]: 0 below p1, 0.5 in [p1, p1 + p2), 1 above.
    scale = 0.5 / (0.5 * p2 + 1.0 - p1 - p2)  # includes the 1 / E[η] rescaling
    return ((u >= p1).to(u.dtype) + (u >= p1 + p2).to(u.dtype)) * scale


class MultinomialNoise(nn.Module):
    """Multiplicative multinomial noise η ∈ {0, 0.5, 1} with P = (p1, p2, 1 − p1 − p2).

    The output is ``x · η / E[η]`` with ``E[η] = 0.5·p2 + 1 − p1 − p2`` in training mode and ``x``
    in eval mode. Requires ``p1, p2 ≥ 0``, ``p1 + p2 ≤ 1`` (a probability distribution) and
    ``E[η] > 0`` (i.e. not ``p1 = 1``); otherwise ``ValueError``.
    """

    def __init__(self, p1: float, p2: float) -> None:
        super().__init__()
        p1, p2 = float(p1), float(p2)
        if not (math.isfinite(p1) and math.isfinite(p2)) or p1 < 0 or p2 < 0:
            raise ValueError(f"multinomial noise needs p1, p2 >= 0, got p1={p1!r}, p2={p2!r}")
        if p1 + p2 > 1.0 + 1e-12:
            raise ValueError(
                f"multinomial noise needs p1 + p2 <= 1 (P(eta=1) = 1 - p1 - p2 >= 0), "
                f"got p1 + p2 = {p1 + p2:.6g}"
            )
        mean = 0.5 * p2 + 1.0 - p1 - p2
        if mean <= 1e-9:
            raise ValueError(
                f"multinomial noise with p1={p1}, p2={p2} has E[eta] = {mean:.3g}: "
                "every element would be zeroed and the 1/E[eta] rescaling is undefined"
            )
        self.p1 = p1
        self.p2 = p2
        self.mean = mean

    @property
    def is_identity(self) -> bool:
        """True when η ≡ 1 (p1 = p2 = 0)."""
        return self.p1 == 0.0 and self.p2 == 0.0

    def sample(
        self,
        shape: Sequence[int] | torch.Size,
        *,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Draw η / E[η] of the given shape (torch's global RNG unless ``generator``)."""
        u = torch.rand(tuple(shape), dtype=dtype or torch.float32, generator=generator)
        return multinomial_eta(u, self.p1, self.p2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.is_identity:
            return x
        return x * self.sample(x.shape, dtype=x.dtype)

    def extra_repr(self) -> str:
        return f"p1={self.p1:.4g}, p2={self.p2:.4g}"


class MLP(nn.Module):
    """Fully connected network with bias, ``sizes = (inputs, hidden…, outputs)``.

    Args:
        sizes: layer widths, at least (inputs, outputs).
        activation: ``"relu"`` or ``"tanh"`` after every hidden layer (none after the output).
        noise: multinomial noise applied during training (None: ERM, no noise).
        noise_site: ``"activations"`` (default, after each hidden activation) or ``"weights"``
            (multiply every layer's weights and biases by η per forward pass).

    ``forward`` returns logits (points × outputs).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        noise: MultinomialNoise | None = None,
        noise_site: str = "activations",
    ) -> None:
        super().__init__()
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must be at least (inputs, outputs), all >= 1; got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if noise_site not in NOISE_SITES:
            raise ValueError(f"noise_site must be one of {NOISE_SITES}, got {noise_site!r}")
        self.sizes = sizes
        self.activation = activation
        self.noise_site = noise_site
        self.noise = noise
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def _act(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(h) if self.activation == "relu" else torch.tanh(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noisy = self.training and self.noise is not None and not self.noise.is_identity
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            if noisy and self.noise_site == "weights":
                w = layer.weight * self.noise.sample(layer.weight.shape, dtype=x.dtype)
                b = layer.bias * self.noise.sample(layer.bias.shape, dtype=x.dtype)
                x = F.linear(x, w, b)
            else:
                x = layer(x)
            if i < n - 1:
                x = self._act(x)
                if noisy and self.noise_site == "activations":
                    x = self.noise(x)
        return x

    def augmented_weights(self) -> list[np.ndarray]:
        """Each layer as one realised matrix ``[W | b]`` (outputs × (inputs + 1)), float64.

        **Decision** (METHODS section 2/5): the bias is the last column, i.e. the crossbar's bias
        row driven by a constant input of 1, and belongs to the same matrix for ``W_max``.
        """
        return [
            np.concatenate(
                [
                    layer.weight.detach().double().numpy(),
                    layer.bias.detach().double().numpy()[:, None],
                ],
                axis=1,
            )
            for layer in self.layers
        ]

    @torch.no_grad()
    def predict(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Class predictions (int64) of transformed features, in eval mode (no noise)."""
        was = self.training
        self.eval()
        try:
            with torch_threads(1):
                logits = self(torch.as_tensor(np.asarray(x), dtype=torch.float32))
        finally:
            self.train(was)
        return logits.argmax(dim=1).numpy().astype(np.int64)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Clean (software) accuracy in [0, 1]."""
        return float(np.mean(self.predict(x) == np.asarray(y)))
