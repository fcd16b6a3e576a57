"""Figures of a crossbar inference run (the paper's figure 7b/7c), drawn with matplotlib (Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from inference.deploy import DeploymentResult  # noqa: E402

COLORS = {"erm": "#7f7f7f", "bayesmulti": "#d62728"}


def plot_deployment(
    results: Sequence[DeploymentResult], path: str | Path, *, title: str = ""
) -> Path:
    """One PNG: accuracy bars (software light, hardware dark), per-point view of 20 points, and
    the histogram of hardware-minus-software outputs for each result."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    ax = axes[0]
    labels = [r.method for r in results]
    x = np.arange(len(results))
    sw = [100 * r.software_accuracy for r in results]
    hw = [100 * r.hardware_accuracy for r in results]
    for i, r in enumerate(results):
        c = COLORS.get(r.method, "C0")
        ax.bar(x[i] - 0.18, sw[i], 0.36, color=c, alpha=0.4, label="software" if i == 0 else None)
        ax.bar(x[i] + 0.18, hw[i], 0.36, color=c, label="hardware" if i == 0 else None)
        ax.text(x[i] + 0.18, hw[i] + 1, f"{hw[i]:.0f} %", ha="center", fontsize=9)
        ax.text(x[i] - 0.18, sw[i] + 1, f"{sw[i]:.0f} %", ha="center", fontsize=9)
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 110)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("software vs crossbar")
    ax.legend(loc="lower right")

    ax = axes[1]
    n = min(20, min(r.n_points for r in results))
    for k, r in enumerate(results):
        ok_sw = (r.predictions_software[:n] == r.labels[:n]).astype(float)
        ok_hw = (r.predictions_hardware[:n] == r.labels[:n]).astype(float)
        y = k * 2.5
        c = COLORS.get(r.method, f"C{k}")
        ax.scatter(
            np.arange(n),
            np.full(n, y + 1),
            c=[c if v else "white" for v in ok_sw],
            edgecolors=c,
            s=60,
            label=f"{r.method} software",
        )
        ax.scatter(
            np.arange(n),
            np.full(n, y),
            marker="s",
            c=[c if v else "white" for v in ok_hw],
            edgecolors=c,
            s=60,
            label=f"{r.method} hardware",
        )
    ax.set_yticks(
        [k * 2.5 + d for k in range(len(results)) for d in (0, 1)],
        [f"{r.method} {w}" for r in results for w in ("hw", "sw")],
    )
    ax.set_xlabel("test point (filled = correct)")
    ax.set_xticks(range(0, n, 2))
    ax.set_title(f"per-point view, first {n} points")
    ax.set_ylim(-1, 2.5 * len(results))

    ax = axes[2]
    errs = [r.output_errors for r in results]
    lim = max(float(np.percentile(np.abs(e), 99)) for e in errs) or 1.0
    bins = np.linspace(-lim, lim, 41)
    for r, e in zip(results, errs, strict=True):
        ax.hist(
            e,
            bins=bins,
            alpha=0.55,
            color=COLORS.get(r.method, "C0"),
            label=f"{r.method}: σ = {np.std(e):.2f}",
        )
    ax.set_xlabel("hardware − software output (logit units)")
    ax.set_ylabel("count")
    ax.set_title("output error distribution")
    ax.legend()
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
