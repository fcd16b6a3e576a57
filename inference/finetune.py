"""Software fine-tuning of a network's later layers on measured activations (chip in the loop).

:func:`finetune_layers` takes the layers that are not yet programmed, the activations the
crossbar actually produced at their input (measured through the programmed layers) and the
labels, and adapts the layers to those activations: full-batch Adam on the cross-entropy with a
weak pull towards the trained weights (``anchor``, so the layers stay close to what training
found where the measurements say nothing). Deterministic (no sampling), float64, one thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from calibration.grid_bo import torch_threads
from crossbar.mapping import level_pairs

__all__ = ["LevelGrid", "finetune_layers", "fit_readout"]

Layer = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class LevelGrid:
    """The weights one layer can realise on a device of discrete ``levels`` (S) when its bias
    and a per-output scale are digital (``DeployOptions.levels``): every output's row of W,
    scaled to max |w| = 1, is held as ``(G⁺ − G⁻) / (top − bottom level)`` with (G⁺, G⁻) a pair
    of levels (:func:`crossbar.mapping.level_pairs`, as
    :func:`~crossbar.mapping.snap_to_levels` maps it)."""

    levels: tuple[float, ...]

    def realise(self, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(W, b) as the levels realise them; the gradient passes straight through (STE)."""
        _, diffs = level_pairs(self.levels)
        d = torch.as_tensor(diffs / (max(self.levels) - min(self.levels)), dtype=w.dtype)
        scale = w.abs().amax(dim=1, keepdim=True).detach().clamp(min=1e-30)
        u = w / scale
        q = d[(u[..., None] - d).abs().argmin(dim=-1)]
        return (u + (q - u).detach()) * scale, b


def finetune_layers(
    layers: list[Layer],
    h: np.ndarray,
    y: np.ndarray,
    activation: str,
    *,
    steps: int = 300,
    lr: float = 0.01,
    anchor: float = 1e-3,
    grids: Sequence[LevelGrid | None] | None = None,
) -> tuple[list[Layer], dict[str, Any]]:
    """Fine-tune ``layers`` ((W (out, in), b (out,)) each, network order) on inputs ``h`` (n, in)
    with labels ``y`` (n,); the activation (``relu``/``tanh``) follows every layer but the last.
    ``grids``: per layer, the :class:`LevelGrid` its weights are realised on (quantisation-aware:
    the forward pass uses the realised weights, the gradient passes straight through), or None.

    Returns the new layers and what happened: cross-entropy and accuracy on ``(h, y)`` before and
    after, and the number of steps.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    with torch_threads(1):
        x = torch.as_tensor(np.asarray(h, dtype=np.float64))
        t = torch.as_tensor(np.asarray(y, dtype=np.int64))
        w0 = [torch.as_tensor(np.asarray(w, dtype=np.float64)) for w, _ in layers]
        b0 = [torch.as_tensor(np.asarray(b, dtype=np.float64)) for _, b in layers]
        params = [p.clone().requires_grad_(True) for pair in zip(w0, b0) for p in pair]

        grid = list(grids) if grids is not None else [None] * len(layers)
        if len(grid) != len(layers):
            raise ValueError(f"need one grid per layer ({len(layers)}), got {len(grid)}")

        def forward() -> torch.Tensor:
            z = x
            for k in range(len(layers)):
                w, b = params[2 * k], params[2 * k + 1]
                if grid[k] is not None:
                    w, b = grid[k].realise(w, b)
                z = z @ w.T + b
                if k < len(layers) - 1:
                    z = torch.relu(z) if activation == "relu" else torch.tanh(z)
            return z

        def figures() -> tuple[float, float]:
            with torch.no_grad():
                z = forward()
                ce = float(torch.nn.functional.cross_entropy(z, t))
                acc = float((z.argmax(dim=1) == t).double().mean())
            return ce, acc

        ce0, acc0 = figures()
        opt = torch.optim.Adam(params, lr=lr)
        ref = [p.detach().clone() for p in params]
        for _ in range(int(steps)):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(forward(), t)
            if anchor > 0:
                loss = loss + anchor * sum(((p - r) ** 2).sum() for p, r in zip(params, ref))
            loss.backward()
            opt.step()
        ce1, acc1 = figures()
        out = [
            (params[2 * k].detach().numpy().copy(), params[2 * k + 1].detach().numpy().copy())
            for k in range(len(layers))
        ]
    return out, {
        "loss_before": ce0,
        "loss_after": ce1,
        "accuracy_before": acc0,
        "accuracy_after": acc1,
    }


def fit_readout(
    z: np.ndarray, y: np.ndarray, *, steps: int = 300, lr: float = 0.05
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Digital read-out calibration of measured logits ``z`` (n, classes): a gain and an offset
    per class, ``z' = gain·z + offset``, fitted to the labels ``y`` (cross-entropy, Adam from
    gain 1, offset 0). Returns (gain, offset, figures before/after as :func:`finetune_layers`)."""
    with torch_threads(1):
        x = torch.as_tensor(np.asarray(z, dtype=np.float64))
        t = torch.as_tensor(np.asarray(y, dtype=np.int64))
        scale = float(x.abs().max().clamp(min=1e-12))  # fit in units of the largest logit
        g = torch.ones(x.shape[1], dtype=torch.float64, requires_grad=True)
        c = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)

        def logits() -> torch.Tensor:
            return (g * x + c * scale) / scale * 4.0

        def figures() -> tuple[float, float]:
            with torch.no_grad():
                out = logits()
                ce = float(torch.nn.functional.cross_entropy(out, t))
                return ce, float((out.argmax(dim=1) == t).double().mean())

        ce0, acc0 = figures()
        opt = torch.optim.Adam([g, c], lr=lr)
        for _ in range(int(steps)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(logits(), t).backward()
            opt.step()
        ce1, acc1 = figures()
    gain = g.detach().numpy().copy()
    offset = c.detach().numpy().copy() * scale
    return (
        gain,
        offset,
        {
            "loss_before": ce0,
            "loss_after": ce1,
            "accuracy_before": acc0,
            "accuracy_after": acc1,
        },
    )
