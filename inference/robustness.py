"""Accuracy versus usability: ERM against BayesMulti (the paper's figure-2/3-style study).

For each usability level U (default 1.0, 0.9, …, 0.1) both networks are evaluated on the *test*
set under the section-2 usability-only noise model (σ = −ln U), ``n_trials`` trials per level
(paper: 10), and the mean ± standard deviation over trials is reported. Device curves
(calibrated :class:`~calibration.profile.DeviceNoiseProfile`, e.g. from the I-V data files) add
one row per device under the profile-mode model (σ and the non-monotonic mapping).

Decisions:

* **Tuning** (decision, default ``"once"``): BayesMulti's (p1, p2) is found by one BO with the
  hardware objective at ``tune_usability`` (default 0.5), and that one model is tested at every
  level and on every device — as the paper's authors trained once and tested across devices.
  ``"per-level"`` tunes anew at every level (and device) with that level's noise known: an
  **oracle** (no deployment knows its test noise in advance); the table, the CSV name, the plot
  title and the JSON say so. ERM is one model (it has nothing to tune).
* **Common random numbers**: at each level both methods are evaluated with the same noise seed
  (``seed + level index``), so the comparison is paired.
* ``std`` is the population standard deviation over trials (``ddof=0``).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calibration.profile import DeviceNoiseProfile
from crossbar.progress import Progress, ProgressFn, notify

from .data import Dataset, load_dataset
from .models import DIGITS_SIZES, MOONS_SIZES
from .names import TUNE_MODES
from .noise import evaluate
from .training import TrainedModel, train_bayesmulti_many, train_erm

DEFAULT_USABILITIES: tuple[float, ...] = tuple(round(1.0 - 0.1 * k, 1) for k in range(10))
DEFAULT_TUNE = "once"  # BayesMulti tuned once, tested everywhere (see the module docstring)
DEFAULT_TUNE_USABILITY = 0.5  # the level of "once" tuning
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
    device: str = ""  # device-curve rows: the device's name ("" for a usability level)


@dataclass
class RobustnessStudy:
    """Everything one ``xbar robustness`` run produced."""

    dataset: Dataset
    erm: TrainedModel
    bayesmulti: dict[float | str, TrainedModel]  # level (or device name) -> model evaluated there
    rows: list[RobustnessRow]
    tune: str
    tune_usability: float | None
    elapsed_s: float
    settings: dict = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)

    @property
    def oracle(self) -> bool:
        """True when BayesMulti was tuned at every level with its test noise known."""
        return self.tune == "per-level"

    @property
    def tune_label(self) -> str:
        """One line saying how BayesMulti was tuned (and that per-level is an oracle)."""
        return tune_label(self.tune, self.tune_usability)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the tuning mode (and whether it is an oracle), settings, rows."""
        return {
            "format": "xbar-robustness/1",
            "tune": self.tune,
            "oracle": self.oracle,
            "tune_label": self.tune_label,
            "tune_usability": self.tune_usability,
            "settings": self.settings,
            "devices": self.devices,
            "erm": {"software_test_accuracy": self.erm.accuracies["test"]},
            "bayesmulti": {
                str(k): {"p1": m.p1, "p2": m.p2, "software_test_accuracy": m.accuracies["test"]}
                for k, m in self.bayesmulti.items()
            },
            "rows": [asdict(r) for r in self.rows],
            "acceptance": acceptance_figures(self.rows),
            "elapsed_s": self.elapsed_s,
        }

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, default=float))
        return path


def tune_label(tune: str, tune_usability: float | None) -> str:
    """``"BayesMulti tuned once at U=0.5 …"`` or the per-level oracle's label."""
    if tune == "per-level":
        return (
            "BayesMulti tuned per level with that level's test noise known "
            "(ORACLE: no deployment knows its noise in advance)"
        )
    u = DEFAULT_TUNE_USABILITY if tune_usability is None else tune_usability
    return f"BayesMulti tuned once at U={u:g}; that one model is tested at every level"


def _key(u: float) -> float:
    return round(float(u), 6)


def _model_for(bm: TrainedModel | Mapping[Any, TrainedModel], key: float | str) -> TrainedModel:
    if isinstance(bm, TrainedModel):
        return bm
    table = {(k if isinstance(k, str) else _key(k)): v for k, v in bm.items()}
    try:
        return table[key if isinstance(key, str) else _key(key)]
    except KeyError:
        what = f"device {key}" if isinstance(key, str) else f"usability {key}"
        raise ValueError(f"no BayesMulti model for {what}") from None


def robustness_curve(
    dataset: Dataset,
    erm_model: TrainedModel,
    bm_model: TrainedModel | Mapping[Any, TrainedModel],
    usabilities: Sequence[float] = DEFAULT_USABILITIES,
    n_trials: int = 10,
    seed: int = 0,
    devices: Sequence[DeviceNoiseProfile] = (),
) -> list[RobustnessRow]:
    """Test accuracy (mean, std over ``n_trials``) of both methods at each usability level,
    then on each device curve (profile mode).

    ``bm_model`` is one model for every level or a mapping level (or device name) → model
    (per-level tuning). Rows come level by level, then device by device, ERM first.
    """
    rows: list[RobustnessRow] = []
    cases: list[tuple[float | str, dict[str, Any]]] = [
        (float(u), {"usability": float(u)}) for u in usabilities
    ]
    cases += [(d.name, {"profile": d}) for d in devices]
    for k, (key, mode) in enumerate(cases):
        level_seed = int(seed) + k  # common random numbers for both methods
        for name, tm in (("ERM", erm_model), ("BayesMulti", _model_for(bm_model, key))):
            acc = evaluate(
                tm, dataset.x_test, dataset.y_test, n_trials=n_trials, seed=level_seed, **mode
            )
            device = mode.get("profile")
            rows.append(
                RobustnessRow(
                    float(device.usability) if device is not None else float(key),
                    name,
                    float(acc.mean()),
                    float(acc.std()),
                    int(n_trials),
                    float(tm.p1),
                    float(tm.p2),
                    device.name if device is not None else "",
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
    devices: Sequence[DeviceNoiseProfile] = (),
    n_init: int = 3,
    n_iter: int = 10,
    n_eval_trials: int = 30,
    seed: int = 0,
    noise_site: str = "activations",
    progress: ProgressFn | None = None,
) -> dict[float | str, TrainedModel]:
    """BayesMulti models for each level and device: one tuned at ``tune_usability`` for all
    (``"once"``), or each tuned at its own level / device curve (``"per-level"``, the oracle).
    Keys: the rounded level, the device name."""
    if tune not in TUNE_MODES:
        raise ValueError(f"tune must be one of {TUNE_MODES}, got {tune!r}")
    keys: list[float | str] = [_key(u) for u in usabilities] + [d.name for d in devices]
    if tune == "per-level":
        targets = [(float(u), None) for u in usabilities] + [(None, d) for d in devices]
    else:
        targets = [(float(tune_usability), None)]
    t0 = time.perf_counter()
    done = [0]
    n = len(targets)
    total_evals = n * (int(n_init) + int(n_iter))

    def say(text: str) -> None:
        notify(progress, done[0], total_evals, "BO", text)

    def on_eval(_: Progress) -> None:  # one candidate of one target evaluated
        done[0] += 1
        init_evals = n * int(n_init)
        elapsed = time.perf_counter() - t0
        if done[0] == init_evals:
            say(f"BO initial points done ({init_evals} candidates, {elapsed:.1f} s)")
        elif done[0] > init_evals and (done[0] - init_evals) % n == 0:
            r = (done[0] - init_evals) // n
            say(f"BO round {r}/{n_iter} done ({done[0]}/{total_evals} candidates, {elapsed:.1f} s)")

    # One BO per target, run in lockstep (each round trains every target's candidate at once).
    trained = train_bayesmulti_many(
        dataset,
        sizes,
        targets,
        n_init=n_init,
        n_iter=n_iter,
        n_eval_trials=n_eval_trials,
        seed=seed,
        noise_site=noise_site,
        progress=on_eval,
    )
    for (u, d), m in zip(targets, trained):
        where = f"U={u:.2f}" if d is None else f"device {d.name}"
        say(
            f"BayesMulti tuned at {where}: p1={m.p1:.2f} p2={m.p2:.2f} "
            f"objective={max(t['objective'] for t in m.bo_trace):.3f}"
        )
    say(f"BO for {n} target(s): {time.perf_counter() - t0:.1f} s")
    if tune == "once":
        return {k: trained[0] for k in keys}
    return dict(zip(keys, trained))


def run_study(
    data: str,
    *,
    usabilities: Sequence[float] = DEFAULT_USABILITIES,
    devices: Sequence[DeviceNoiseProfile] = (),
    n_trials: int = 10,
    seed: int = 0,
    progress: ProgressFn | None = None,
    **tuning: Any,
) -> RobustnessStudy:
    """Train ERM and BayesMulti on ``data`` (moons / digits) and measure the robustness curve
    at ``usabilities`` and on the ``devices``' curves.

    ``tuning``: the keywords of :func:`tune_bayesmulti` (tune — default ``"once"`` —,
    tune_usability, n_init, n_iter, n_eval_trials, noise_site); ``n_trials`` noise trials per
    level, ``seed`` for everything.
    """
    t0 = time.perf_counter()
    dataset = load_dataset(data, seed=seed)
    sizes = SIZES_BY_DATA[data]
    erm = train_erm(dataset, sizes, seed=seed)
    notify(
        progress, 0, 1, "ERM", f"ERM trained: software test accuracy {erm.accuracies['test']:.3f}"
    )
    bm = tune_bayesmulti(
        dataset, sizes, usabilities, devices=devices, seed=seed, progress=progress, **tuning
    )
    rows = robustness_curve(
        dataset, erm, bm, usabilities, n_trials=n_trials, seed=seed, devices=devices
    )
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
            float(tuning.get("tune_usability", DEFAULT_TUNE_USABILITY)) if tune == "once" else None
        ),
        elapsed_s=time.perf_counter() - t0,
        settings=settings,
        devices=[d.name for d in devices],
    )


def acceptance_figures(rows: Sequence[RobustnessRow], max_usability: float = 0.8) -> dict:
    """Gaps BayesMulti − ERM in accuracy points (×100).

    Returns ``worst_gap`` (the minimum gap over levels ≤ ``max_usability``), ``worst_at``,
    ``best_gain`` (the maximum gap over all levels) and ``best_at``.
    """
    by: dict[float, dict[str, float]] = {}
    for r in rows:
        if not r.device:
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


def format_table(rows: Sequence[RobustnessRow], tune: str | None = None,
                 tune_usability: float | None = None) -> str:  # fmt: skip
    """A plain-text table: usability (or device), ERM mean ± std, BayesMulti mean ± std, gap,
    (p1, p2); with ``tune`` a first line says how BayesMulti was tuned (the oracle flagged)."""
    by: dict[tuple[str, float], dict[str, RobustnessRow]] = {}
    for r in rows:
        by.setdefault((r.device, _key(r.usability)), {})[r.method] = r
    lines = [tune_label(tune, tune_usability)] if tune is not None else []
    lines.append(f"{'U':>5}  {'ERM':>15}  {'BayesMulti':>15}  {'gap (pts)':>9}  p1, p2")
    order = sorted((k for k in by if not k[0]), key=lambda k: -k[1])
    order += [k for k in by if k[0]]
    for device, u in order:
        e, b = by[(device, u)].get("ERM"), by[(device, u)].get("BayesMulti")
        es = f"{e.mean:.3f} ± {e.std:.3f}" if e else "-"
        bs = f"{b.mean:.3f} ± {b.std:.3f}" if b else "-"
        gap = f"{100 * (b.mean - e.mean):+.1f}" if (e and b) else "-"
        pp = f"{b.p1:.2f}, {b.p2:.2f}" if b else "-"
        name = f"  device {device}" if device else ""
        lines.append(f"{u:>5.2f}  {es:>15}  {bs:>15}  {gap:>9}  {pp}{name}")
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
        rs = sorted(
            (r for r in rows if r.method == method and not r.device), key=lambda r: -r.usability
        )
        dev = [r for r in rows if r.method == method and r.device]
        if dev:
            ax.scatter(
                [r.usability + dx for r in dev],
                [r.mean for r in dev],
                color=color,
                marker="x",
                s=30,
                label=f"{method} (devices)",
            )
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
