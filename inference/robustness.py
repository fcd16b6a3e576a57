"""Accuracy versus usability: ERM against BayesMulti (the paper's figure-2/3-style study).

For each usability level U (default 1.0, 0.9, …, 0.1) both networks are evaluated on the *test*
set under the section-2 usability-only noise model (σ = −ln U), ``n_trials`` trials per level
(paper: 10), and the mean ± standard deviation over trials is reported.

Decisions:

* **Tuning** (decision, default ``"per-level"``): the paper tunes BayesMulti for the target
  device, so at every usability level BayesMulti's (p1, p2) is found by BO with the hardware
  objective *at that level* (one trained model per level, validation set only). ``"single"``
  tunes once at ``tune_usability`` (default 0.5) and evaluates that one model at every level.
  ERM is one model (it has nothing to tune).
* **Common random numbers**: at each level both methods are evaluated with the same noise seed
  (``seed + level index``), so the comparison is paired.
* ``std`` is the population standard deviation over trials (``ddof=0``).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossbar.progress import Progress, ProgressFn, notify

from .data import Dataset, load_dataset
from .models import DIGITS_SIZES, MOONS_SIZES
from .names import TUNE_MODES
from .noise import evaluate
from .training import TrainedModel, train_bayesmulti_many, train_erm

DEFAULT_USABILITIES: tuple[float, ...] = tuple(round(1.0 - 0.1 * k, 1) for k in range(10))
DEFAULT_TUNE = "per-level"  # BayesMulti tuned at every level (see the module docstring)
DEFAULT_TUNE_USABILITY = 0.5  # the level of "single" tuning
SIZES_BY_DATA = {"moons": MOONS_SIZES, "digits": DIGITS_SIZES}


@dataclass(frozen=True)
class RobustnessRow:
    """One point of the curve: a method's test accuracy at one usability level."""

    usability: float
    method: str  # "ERM" or "BayesMulti"
    mean: float  # mean test accuracy over trials, in [0, 1]
    std: float  # population std over trials
    n_trials: int
    p1: float = 0.0  # the evaluated model's noise parameters (0 for ERM)
    p2: float = 0.0


@dataclass
class RobustnessStudy:
    """Everything one ``xbar robustness`` run produced."""

    dataset: Dataset
    erm: TrainedModel
    bayesmulti: dict[float, TrainedModel]  # usability level -> model evaluated there
    rows: list[RobustnessRow]
    tune: str
    tune_usability: float | None
    elapsed_s: float
    settings: dict = field(default_factory=dict)


def _key(u: float) -> float:
    return round(float(u), 6)


def _model_for(bm: TrainedModel | Mapping[float, TrainedModel], u: float) -> TrainedModel:
    if isinstance(bm, TrainedModel):
        return bm
    table = {_key(k): v for k, v in bm.items()}
    try:
        return table[_key(u)]
    except KeyError:
        raise ValueError(f"no BayesMulti model for usability {u}") from None


def robustness_curve(
    dataset: Dataset,
    erm_model: TrainedModel,
    bm_model: TrainedModel | Mapping[float, TrainedModel],
    usabilities: Sequence[float] = DEFAULT_USABILITIES,
    n_trials: int = 10,
    seed: int = 0,
) -> list[RobustnessRow]:
    """Test accuracy (mean, std over ``n_trials``) of both methods at each usability level.

    ``bm_model`` is one model for every level or a mapping level → model (per-level tuning).
    Rows come level by level, ERM first.
    """
    rows: list[RobustnessRow] = []
    for k, u in enumerate(usabilities):
        level_seed = int(seed) + k  # common random numbers for both methods
        for name, tm in (("ERM", erm_model), ("BayesMulti", _model_for(bm_model, u))):
            acc = evaluate(
                tm,
                dataset.x_test,
                dataset.y_test,
                usability=float(u),
                n_trials=n_trials,
                seed=level_seed,
            )
            rows.append(
                RobustnessRow(
                    float(u),
                    name,
                    float(acc.mean()),
                    float(acc.std()),
                    int(n_trials),
                    float(tm.p1),
                    float(tm.p2),
                )
            )
    return rows


def tune_bayesmulti(
    dataset: Dataset,
    sizes: Sequence[int],
    usabilities: Sequence[float] = DEFAULT_USABILITIES,
    *,
    tune: str = DEFAULT_TUNE,
    tune_usability: float = DEFAULT_TUNE_USABILITY,
    n_init: int = 3,
    n_iter: int = 10,
    n_eval_trials: int = 30,
    seed: int = 0,
    noise_site: str = "activations",
    progress: ProgressFn | None = None,
) -> dict[float, TrainedModel]:
    """BayesMulti models for each level: tuned at that level, or one tuned at ``tune_usability``."""
    if tune not in TUNE_MODES:
        raise ValueError(f"tune must be one of {TUNE_MODES}, got {tune!r}")
    levels = [float(u) for u in usabilities] if tune == "per-level" else [float(tune_usability)]
    t0 = time.perf_counter()
    done = [0]
    total_evals = len(levels) * (int(n_init) + int(n_iter))

    def say(text: str) -> None:
        notify(progress, done[0], total_evals, "BO", text)

    def on_eval(_: Progress) -> None:  # one candidate of one level evaluated
        done[0] += 1
        init_evals = len(levels) * int(n_init)
        elapsed = time.perf_counter() - t0
        if done[0] == init_evals:
            say(f"BO initial points done ({init_evals} candidates, {elapsed:.1f} s)")
        elif done[0] > init_evals and (done[0] - init_evals) % len(levels) == 0:
            r = (done[0] - init_evals) // len(levels)
            say(f"BO round {r}/{n_iter} done ({done[0]}/{total_evals} candidates, {elapsed:.1f} s)")

    # One BO per level, run in lockstep (each round trains every level's candidate in one batch).
    trained = train_bayesmulti_many(
        dataset,
        sizes,
        [(u, None) for u in levels],
        n_init=n_init,
        n_iter=n_iter,
        n_eval_trials=n_eval_trials,
        seed=seed,
        noise_site=noise_site,
        progress=on_eval,
    )
    models = {_key(u): m for u, m in zip(levels, trained)}
    for u, m in zip(levels, trained):
        say(
            f"BayesMulti tuned at U={u:.2f}: p1={m.p1:.2f} p2={m.p2:.2f} "
            f"objective={max(t['objective'] for t in m.bo_trace):.3f}"
        )
    say(f"BO for {len(levels)} level(s): {time.perf_counter() - t0:.1f} s")
    if tune == "single":
        only = models[_key(tune_usability)]
        return {_key(u): only for u in usabilities}
    return models


def run_study(
    data: str,
    *,
    usabilities: Sequence[float] = DEFAULT_USABILITIES,
    n_trials: int = 10,
    seed: int = 0,
    progress: ProgressFn | None = None,
    **tuning: Any,
) -> RobustnessStudy:
    """Train ERM and BayesMulti on ``data`` (moons / digits) and measure the robustness curve.

    ``tuning``: the keywords of :func:`tune_bayesmulti` (tune, tune_usability, n_init, n_iter,
    n_eval_trials, noise_site); ``n_trials`` noise trials per level, ``seed`` for everything.
    """
    t0 = time.perf_counter()
    dataset = load_dataset(data, seed=seed)
    sizes = SIZES_BY_DATA[data]
    erm = train_erm(dataset, sizes, seed=seed)
    notify(
        progress, 0, 1, "ERM", f"ERM trained: software test accuracy {erm.accuracies['test']:.3f}"
    )
    bm = tune_bayesmulti(dataset, sizes, usabilities, seed=seed, progress=progress, **tuning)
    rows = robustness_curve(dataset, erm, bm, usabilities, n_trials=n_trials, seed=seed)
    tuned = next(iter(bm.values()))  # the BO settings as the models record them
    settings = {
        "data": data,
        "n_trials": n_trials,
        "seed": seed,
        "n_init": tuned.training["n_init"],
        "n_iter": tuned.training["n_iter"],
        "n_eval_trials": tuned.n_eval_trials,
        "noise_site": tuned.noise_site,
    }
    tune = tuning.get("tune", DEFAULT_TUNE)
    return RobustnessStudy(
        dataset=dataset,
        erm=erm,
        bayesmulti=bm,
        rows=rows,
        tune=tune,
        tune_usability=(
            float(tuning.get("tune_usability", DEFAULT_TUNE_USABILITY))
            if tune == "single"
            else None
        ),
        elapsed_s=time.perf_counter() - t0,
        settings=settings,
    )


def acceptance_figures(rows: Sequence[RobustnessRow], max_usability: float = 0.8) -> dict:
    """Gaps BayesMulti − ERM in accuracy points (×100).

    Returns ``worst_gap`` (the minimum gap over levels ≤ ``max_usability``), ``worst_at``,
    ``best_gain`` (the maximum gap over all levels) and ``best_at``.
    """
    by = {}
    for r in rows:
        by.setdefault(_key(r.usability), {})[r.method] = r.mean
    gaps = {u: 100.0 * (m["BayesMulti"] - m["ERM"]) for u, m in by.items() if len(m) == 2}
    low = {u: g for u, g in gaps.items() if u <= max_usability + 1e-9}
    worst_at = min(low, key=low.get) if low else None
    best_at = max(gaps, key=gaps.get) if gaps else None
    return {
        "worst_gap": low[worst_at] if low else float("nan"),
        "worst_at": worst_at,
        "best_gain": gaps[best_at] if gaps else float("nan"),
        "best_at": best_at,
        "gaps": gaps,
    }


def format_table(rows: Sequence[RobustnessRow]) -> str:
    """A plain-text table: usability, ERM mean ± std, BayesMulti mean ± std, gap, (p1, p2)."""
    by: dict[float, dict[str, RobustnessRow]] = {}
    for r in rows:
        by.setdefault(_key(r.usability), {})[r.method] = r
    lines = [f"{'U':>5}  {'ERM':>15}  {'BayesMulti':>15}  {'gap (pts)':>9}  p1, p2"]
    for u in sorted(by, reverse=True):
        e, b = by[u].get("ERM"), by[u].get("BayesMulti")
        es = f"{e.mean:.3f} ± {e.std:.3f}" if e else "-"
        bs = f"{b.mean:.3f} ± {b.std:.3f}" if b else "-"
        gap = f"{100 * (b.mean - e.mean):+.1f}" if (e and b) else "-"
        pp = f"{b.p1:.2f}, {b.p2:.2f}" if b else "-"
        lines.append(f"{u:>5.2f}  {es:>15}  {bs:>15}  {gap:>9}  {pp}")
    return "\n".join(lines)


def write_csv(rows: Sequence[RobustnessRow], path: str | Path) -> Path:
    """Write the rows as CSV (header: the RobustnessRow fields)."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(RobustnessRow.__dataclass_fields__))
        writer.writeheader()
        for r in rows:
            writer.writerow(asdict(r))
    return path


def plot_robustness(
    rows: Sequence[RobustnessRow],
    path: str | Path,
    *,
    title: str = "",
    chance: float | None = None,
) -> Path:
    """Accuracy vs usability (1.0 → 0.1 left to right), mean ± std error bars, PNG.

    Uses matplotlib's Agg canvas directly (no global backend switch).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    styles = {"ERM": ("tab:gray", "s", -0.006), "BayesMulti": ("tab:red", "o", 0.006)}
    for method, (color, marker, dx) in styles.items():
        rs = sorted((r for r in rows if r.method == method), key=lambda r: -r.usability)
        if not rs:
            continue
        u = np.array([r.usability for r in rs])
        ax.errorbar(
            u + dx,
            [r.mean for r in rs],
            yerr=[r.std for r in rs],
            color=color,
            marker=marker,
            capsize=3,
            lw=1.6,
            ms=5,
            label=method,
        )
    if chance is not None:
        ax.axhline(chance, color="k", ls=":", lw=1, label=f"chance ({chance:.2f})")
    ax.set_xlim(1.05, 0.05)  # the paper's x-axis runs from usability 1 down to 0.1
    ax.set_ylim(0.0, 1.02)
    ax.set_xticks(np.round(np.arange(1.0, 0.05, -0.1), 1))
    ax.set_xlabel("usability U (σ = −ln U)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    return path
