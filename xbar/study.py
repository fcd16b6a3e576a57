"""``xbar study`` (and :func:`run_study` for scripts): does robust training (and the rest of the loop) shrink the hardware loss?

A grid of training methods × deployment-loop steps × bench seeds × training seeds, run on a
bench (the built-in simulated bench with a device preset, or any bench file):

1. for every bench seed, the device is characterised (``xbar characterise --quick`` by default:
   the deployment profile is *measured*, not read from the preset) — or a given profile is used;
2. for every (bench seed, training seed, method) a network is trained against that profile
   (:func:`inference.training.train_method`);
3. for every loop configuration (a set of the deployment steps switched on) the network is
   deployed on a fresh bench of that seed (the same device array every time) and its test
   points run through the crossbar (:func:`inference.deploy.run_on_crossbar`).

The result: per run, software and hardware accuracy and the relative loss ``(sw − hw) / sw``
(the paper's "% degradation"); per (method, configuration), means with 95 % confidence intervals
(Student t over the bench × training seeds); the ablation (what each step adds: the full loop
against the loop without that step, paired by seed); the paper's row (real 10×10 array: ERM
−45 %, BayesMulti −15 %) beside them. Runs go to worker processes (one bench seed and training
seed per task); a run is a pure function of its seeds.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from crossbar.progress import ProgressFn, notify

__all__ = [
    "PAPER",
    "STEPS",
    "StudyResult",
    "StudySpec",
    "ci95",
    "run_study",
]

#: The deployment-loop steps a study switches on and off (``DeployOptions`` fields).
STEPS = {
    "fault-aware": "fault_aware",
    "chip-in-loop": "chip_in_loop",
    "drift-compensation": "drift_compensation",
    "levels": "levels",
    "refresh": "refresh",
}

#: The paper's hardware result on its real 10×10 array: relative accuracy loss per method.
PAPER = {"erm": 0.45, "bayesmulti": 0.15}


def ci95(x: Sequence[float]) -> tuple[float, float]:
    """(mean, half-width of the 95 % confidence interval, Student t) of ``x``; NaN width for
    fewer than two values."""
    from scipy import stats

    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return math.nan, math.nan
    if a.size < 2:
        return float(a.mean()), math.nan
    half = stats.t.ppf(0.975, a.size - 1) * a.std(ddof=1) / math.sqrt(a.size)
    return float(a.mean()), float(half)


@dataclass(frozen=True)
class StudySpec:
    """What a study runs (see the module docstring).

    :param bench: ``"sim"`` or a bench TOML path.
    :param profile: the simulated device preset (simulated benches), e.g. ``"paper"``.
    :param methods: training methods (:data:`inference.names.METHODS`).
    :param configs: loop configurations, each a tuple of :data:`STEPS` names (``()``: none).
        Default: none, the full loop, and the full loop without each step (the ablation).
    :param bench_seeds, train_seeds: the seeds (simulated device arrays, training).
    :param test_points: test points per deployment.
    :param characterise: ``"quick"`` or ``"full"`` (measured per bench seed), or a deployment
        profile JSON path (used for every seed).
    :param settle: s between programming and inference (bench clock; drift happens there).
    :param workers: worker processes (1: in this process).
    :param data: the data set.
    :param training: options for :func:`inference.training.train_method` (epochs, n_iter…).
    """

    bench: str = "sim"
    profile: str | None = None
    methods: tuple[str, ...] = ("erm", "bayesmulti", "hwa", "bayesmulti+hwa", "linear")
    configs: tuple[tuple[str, ...], ...] | None = None
    bench_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    train_seeds: tuple[int, ...] = (0, 1, 2)
    test_points: int = 200
    characterise: str = "quick"
    settle: float = 0.0
    workers: int = 2
    data: str = "moons"
    training: dict[str, Any] = field(default_factory=dict)

    def loop_configs(self) -> list[tuple[str, ...]]:
        """The configurations to run (default: none, full, and leave-one-out)."""
        if self.configs is not None:
            return [tuple(c) for c in self.configs]
        full = tuple(STEPS)
        return [(), full, *[tuple(s for s in full if s != skip) for skip in full]]

    def check(self) -> None:
        """ValueError (one line) for a method or step the study does not know."""
        from inference.names import METHODS

        for m in self.methods:
            if m not in METHODS:
                raise ValueError(f"unknown method {m!r}: choose from {', '.join(METHODS)}")
        for cfg in self.loop_configs():
            for s in cfg:
                if s not in STEPS:
                    raise ValueError(f"unknown loop step {s!r}: choose from {', '.join(STEPS)}")
        if not self.bench_seeds or not self.train_seeds or not self.methods:
            raise ValueError("a study needs at least one bench seed, training seed and method")
        if self.test_points < 1:
            raise ValueError(f"test_points must be >= 1, got {self.test_points}")


@dataclass
class StudyResult:
    """Every run of a study and its summaries."""

    spec: StudySpec
    runs: list[dict[str, Any]]

    def summary(self) -> list[dict[str, Any]]:
        """Per (method, configuration): means and 95 % CIs of accuracy and relative loss."""
        rows = []
        for method in self.spec.methods:
            for cfg in self.spec.loop_configs():
                sel = [r for r in self.runs if r["method"] == method and tuple(r["loop"]) == cfg]
                if not sel:
                    continue
                row: dict[str, Any] = {"method": method, "loop": list(cfg), "runs": len(sel)}
                for key in ("software", "hardware", "loss"):
                    m, h = ci95([r[key] for r in sel])
                    row[key], row[f"{key}_ci95"] = m, h
                row["paper_loss"] = PAPER.get(method) if not cfg else None
                rows.append(row)
        return rows

    def ablation(self) -> list[dict[str, Any]]:
        """What each step adds to the full loop: loss without the step minus loss with the full
        loop, paired by (bench seed, training seed), per method (mean, 95 % CI)."""
        full = tuple(STEPS)
        out = []
        key = {(r["method"], tuple(r["loop"]), r["bench_seed"], r["train_seed"]): r["loss"]
               for r in self.runs}  # fmt: skip
        for method in self.spec.methods:
            for step in (*STEPS, "all"):
                without = () if step == "all" else tuple(s for s in full if s != step)
                diffs = [
                    key[(method, without, b, t)] - key[(method, full, b, t)]
                    for b in self.spec.bench_seeds
                    for t in self.spec.train_seeds
                    if (method, without, b, t) in key and (method, full, b, t) in key
                ]
                if diffs:
                    m, h = ci95(diffs)
                    out.append({"method": method, "step": step, "loss_saved": m, "ci95": h})
        return out

    def to_json(self) -> dict[str, Any]:
        spec = asdict(self.spec)
        spec["configs"] = [list(c) for c in self.spec.loop_configs()]
        return {
            "spec": spec,
            "paper": PAPER,
            "summary": self.summary(),
            "ablation": self.ablation(),
            "runs": self.runs,
        }

    def table(self) -> str:
        """The summary as a text table (accuracies and losses in %, ± the 95 % CI)."""

        def pct(m: float, h: float) -> str:
            if not math.isfinite(m):
                return "-"
            return f"{100 * m:5.1f}" + (f" ± {100 * h:4.1f}" if math.isfinite(h) else "")

        rows = self.summary()
        loops = ["+".join(r["loop"]) or "none" for r in rows]
        w = max([42, *map(len, loops)])  # the loop column fits its longest name
        head = f"{'method':<15} {'loop':<{w}} {'n':>3}  {'software %':>12}  {'hardware %':>12}"
        head += f"  {'rel. loss %':>12}  paper"
        lines = [head, "-" * len(head)]
        for r, loop in zip(rows, loops, strict=True):
            paper = f"{100 * r['paper_loss']:.0f}" if r["paper_loss"] is not None else ""
            lines.append(
                f"{r['method']:<15} {loop:<{w}} {r['runs']:>3}  "
                f"{pct(r['software'], r['software_ci95']):>12}  "
                f"{pct(r['hardware'], r['hardware_ci95']):>12}  "
                f"{pct(r['loss'], r['loss_ci95']):>12}  {paper}"
            )
        ab = self.ablation()
        if ab:
            lines += ["", "ablation: relative loss saved by each step of the full loop (points)"]
            for a in ab:
                lines.append(
                    f"  {a['method']:<15} {a['step']:<20} {pct(a['loss_saved'], a['ci95'])}"
                )
        return "\n".join(lines)

    def save(self, folder: str | Path) -> list[Path]:
        """``study.json``, ``study.csv`` (one row per run) and the figure-7b/7c plots."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        js = out / "study.json"
        js.write_text(json.dumps(self.to_json(), indent=1))
        csv = out / "study.csv"
        cols = ["method", "loop", "bench_seed", "train_seed", "software", "hardware", "loss"]
        lines = [",".join(cols)]
        for r in self.runs:
            lines.append(",".join(
                "+".join(r[c]) if c == "loop" else repr(r[c]) if isinstance(r[c], float)
                else str(r[c]) for c in cols
            ))  # fmt: skip
        csv.write_text("\n".join(lines) + "\n")
        return [js, csv, *_plots(self, out)]


def _plots(result: StudyResult, out: Path) -> list[Path]:
    """Figure 7b (accuracy per method and loop, with CIs) and 7c (output errors)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result.summary()
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 4))
    x = np.arange(len(rows))
    for k, (key, colour) in enumerate((("software", "#888888"), ("hardware", "#c03030"))):
        ax.bar(
            x + (k - 0.5) * 0.38,
            [100 * r[key] for r in rows],
            0.38,
            yerr=[100 * (r[f"{key}_ci95"] if math.isfinite(r[f"{key}_ci95"]) else 0) for r in rows],
            color=colour,
            label=key,
            capsize=2,
        )
    labels = [f"{r['method']}\n{'+'.join(s[:5] for s in r['loop']) or 'none'}" for r in rows]
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    p7b = _finish_figure(
        fig, ax, "software vs hardware accuracy (mean ± 95 % CI)", out / "figure7b.png"
    )
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in result.spec.methods:
        errs = np.concatenate(
            [np.asarray(r["output_errors"]) for r in result.runs
             if r["method"] == method and not r["loop"] and r.get("output_errors") is not None]
            or [np.zeros(0)]
        )  # fmt: skip
        if errs.size:
            ax.hist(errs, bins=60, histtype="step", label=method, density=True)
    ax.set_xlabel("hardware − software output")
    ax.set_ylabel("density")
    p7c = _finish_figure(
        fig, ax, "output errors without the loop (figure 7c)", out / "figure7c.png"
    )
    return [p7b, p7c]


def _finish_figure(fig: Any, ax: Any, title: str, path: Path) -> Path:
    """Legend and ``title`` on ``ax``, ``fig`` saved as the PNG ``path`` (120 dpi) and closed."""
    import matplotlib.pyplot as plt

    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# -- running --------------------------------------------------------------------------------------


def _bench_config(spec: StudySpec, seed: int) -> Any:
    from crossbar.config import load_bench_config, parse_bench_config

    d = load_bench_config(spec.bench).to_dict()
    d["simulation"]["seed"] = int(seed)
    if spec.profile is not None:
        d["simulation"]["profile"] = spec.profile
    return parse_bench_config(d, origin=str(spec.bench))


def _crossbar(spec: StudySpec, seed: int, stop: threading.Event | None = None) -> Any:
    from crossbar.core import Crossbar
    from lab import open_backend

    return Crossbar(open_backend(_bench_config(spec, seed)), emergency=stop)


def _profile(spec: StudySpec, seed: int, stop: threading.Event | None = None) -> Any:
    """The deployment profile of bench ``seed``: measured, or the given file."""
    from crossbar.characterise import CharacterisationPlan, characterise
    from crossbar.deployment_profile import load_deployment_profile

    if spec.characterise not in ("quick", "full"):
        return load_deployment_profile(spec.characterise)
    plan = CharacterisationPlan.quick() if spec.characterise == "quick" else CharacterisationPlan()
    with _crossbar(spec, seed, stop) as xb:
        return characterise(xb, plan)


def _deploy_options(profile: Any, loop: Sequence[str]) -> Any:
    from inference.deploy import DeployOptions

    base = DeployOptions()
    known = {f for f in base.__dataclass_fields__}
    changes = {STEPS[s]: True for s in loop if STEPS[s] in known}
    if "profile" in known:
        changes["profile"] = profile
    for s in STEPS.values():  # a step not in this configuration is off
        if s in known and s not in changes:
            changes[s] = False
    return replace(base, **changes)


def _task(
    spec: StudySpec,
    bench_seed: int,
    train_seed: int,
    profile: Any,
    stop: threading.Event | None = None,
) -> list[dict]:
    """Every method and loop configuration of one (bench seed, training seed)."""
    from inference.data import load_dataset
    from inference.deploy import run_on_crossbar
    from inference.hardware_model import DeploymentModel
    from inference.robustness import SIZES_BY_DATA
    from inference.training import train_method

    data = load_dataset(spec.data, seed=0)  # one data set; the seeds vary training and device
    sizes = SIZES_BY_DATA[spec.data]
    n = int(spec.test_points)
    runs = []
    for method in spec.methods:
        trained = train_method(
            method,
            data,
            sizes,
            hardware=DeploymentModel(profile),
            seed=train_seed,
            **spec.training,
        )
        for loop in spec.loop_configs():
            with _crossbar(spec, bench_seed, stop) as xb:
                result = run_on_crossbar(
                    xb,
                    trained,
                    data.x_test[:n],
                    data.y_test[:n],
                    x_train=data.x_train,
                    options=_deploy_options(profile, loop),
                    y_train=data.y_train,
                    **({"settle": spec.settle} if spec.settle else {}),
                )
            runs.append(
                {
                    "method": method,
                    "loop": list(loop),
                    "bench_seed": int(bench_seed),
                    "train_seed": int(train_seed),
                    "software": result.software_accuracy,
                    "hardware": result.hardware_accuracy,
                    "loss": result.relative_degradation,
                    "programming": result.programming,
                    "output_errors": result.output_errors.tolist() if not loop else None,
                }
            )
    return runs


def run_study(
    spec: StudySpec,
    *,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> StudyResult:
    """Run every (bench seed, training seed) of ``spec``; see the module docstring.

    ``stop``: an emergency-stop latch. In one process (``workers=1``) every bench of the study
    shares it, so setting it stops the running characterisation or deployment at its next
    primitive (outputs off); with worker processes it is checked whenever a task ends, and the
    tasks not yet started are cancelled. Either way the study raises
    :class:`~crossbar.backend.EmergencyStop` and returns no result.
    """
    spec.check()
    seeds = [(b, t) for b in spec.bench_seeds for t in spec.train_seeds]
    total = len(spec.bench_seeds) + len(seeds)
    done = 0
    profiles: dict[int, Any] = {}
    runs: list[dict] = []
    inproc = stop if spec.workers <= 1 else None  # an Event does not cross to spawned workers
    with _pool(spec.workers) as pool:
        jobs = {pool.submit(_profile, spec, b, inproc): b for b in spec.bench_seeds}
        for fut in as_completed(jobs):
            _check_study_stop(stop, pool)
            profiles[jobs[fut]] = fut.result()
            done += 1
            notify(progress, done, total, "characterise", f"bench seed {jobs[fut]}")
        _check_study_stop(stop, pool)
        tasks = {pool.submit(_task, spec, b, t, profiles[b], inproc): (b, t) for b, t in seeds}
        for fut in as_completed(tasks):
            _check_study_stop(stop, pool)
            runs += fut.result()
            done += 1
            b, t = tasks[fut]
            notify(progress, done, total, "deploy", f"bench seed {b}, training seed {t}")
    _check_study_stop(stop, None)
    order = {m: k for k, m in enumerate(spec.methods)}
    runs.sort(key=lambda r: (order[r["method"]], r["bench_seed"], r["train_seed"], r["loop"]))
    return StudyResult(spec, runs)


def _check_study_stop(stop: threading.Event | None, pool: Any) -> None:
    """EmergencyStop (no result) once ``stop`` is set; the pool's pending tasks are cancelled."""
    if stop is None or not stop.is_set():
        return
    from crossbar.backend import EmergencyStop

    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    raise EmergencyStop("study stopped by the emergency stop; outputs off, no result")


class _InProcess:
    """A stand-in pool that runs tasks at submit time (``workers=1``)."""

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Nothing to cancel: every task ran when it was submitted."""

    def submit(self, fn: Callable, *args: Any) -> Any:
        from concurrent.futures import Future

        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - delivered through the future (Ctrl-C is not)
            fut.set_exception(exc)
        return fut

    def __enter__(self) -> _InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _pool(workers: int) -> Any:
    if workers <= 1:
        return _InProcess()
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for k, v in env.items():
        os.environ.setdefault(k, v)
    return ProcessPoolExecutor(max_workers=int(workers), mp_context=get_context("spawn"))
