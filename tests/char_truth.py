"""Truth harness of the characterisation: run :func:`crossbar.characterise.characterise` on the
simulated bench (twins) and compare every measured figure with the bench's hidden device.

Used by ``tests/test_characterise.py``; ``python tests/char_truth.py [--protocol quick|full|both] [--seeds 0 1]``
prints the table (measured vs true per device and seed).

The truths (docs/device-physics.md, "The true values a measurement is compared with"):

* read noise σ: the profile's ``read_sigma`` (white terms; the median over cells the
  measurement reports is not moved by the few telegraph cells);
* programming error σ: the true (noise-free) conductance of every programmed cell that
  converged and has not dissolved, at the moment of the measurement's averaged read right after
  program-and-verify, against its target: the standard deviation of G_true/target − 1;
* drift ν: the mean of the cells' own ν (``devices.drift_nu``) over the cells the measurement
  fitted (programmed, converged, not dissolved);
* stuck fraction: the fraction of cells stuck at ON or OFF;
* levels: the profile's ``levels`` (0: analog).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The inline device of the acceptance: values different from every preset (a 4-level filament
#: with stronger drift, more read noise, more stuck cells and a slow dissolution).
INLINE_DEVICE: dict[str, Any] = {
    "levels": 4,
    "g_on": 5e-5,
    "k_on": 5e3,
    "read_noise": 0.008,
    "g_noise": 0.02,
    "drift_nu": 0.06,
    "drift_nu_sigma": 0.015,
    "relax_mean": 0.02,
    "relax_sigma": 0.1,
    "relax_tau": 0.5,
    "p_stuck_on": 0.02,
    "p_stuck_off": 0.03,
    "p_dissolve": 0.15,
    "dissolve_tau": 20.0,
}

DEVICES: dict[str, tuple[str, dict[str, Any]]] = {
    "optimized": ("optimized", {}),
    "typical": ("typical", {}),
    "paper": ("paper", {}),
    "inline": ("optimized", INLINE_DEVICE),
}

#: acceptance bounds (issue 14)
REL_TOL = 0.20  # read noise σ, programming σ, mean drift ν: relative
STUCK_TOL = 0.02  # stuck fraction: absolute
LEVELS_TOL = 1


def bench_config(device: str, seed: int) -> Any:
    """The built-in ``sim`` bench (twins) with the device ``device`` (a key of
    :data:`DEVICES`) and ``seed``."""
    from crossbar.config import load_bench_config, parse_bench_config

    profile, inline = DEVICES[device]
    d = load_bench_config("sim").to_dict()
    d["simulation"]["profile"], d["simulation"]["seed"] = profile, int(seed)
    if inline:
        d["simulation"]["device"] = dict(inline)
    return parse_bench_config(d, origin=f"truth-{device}")


@dataclass
class Truth:
    """What the bench's hidden device is, and what the measurement said."""

    device: str
    seed: int
    quick: bool
    measured: dict[str, float] = field(default_factory=dict)
    true: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    bench_time: float = 0.0
    profile: Any = None
    #: bench-clock seconds seen from outside the characterisation: each program-and-verify
    #: (``per_cell``) and the averaged reads right after it (``right_after``)
    timing: dict[str, list[float]] = field(default_factory=dict)

    def errors(self) -> dict[str, str]:
        """The figures outside the acceptance bounds, with their values."""
        out = {}
        for k in ("read_sigma", "prog_sigma", "drift_nu"):
            m, t = self.measured[k], self.true[k]
            if not abs(m - t) <= REL_TOL * abs(t):
                out[k] = f"{m:.4g} vs {t:.4g}"
        if not abs(self.measured["stuck"] - self.true["stuck"]) <= STUCK_TOL + 1e-9:
            out["stuck"] = f"{self.measured['stuck']:.3f} vs {self.true['stuck']:.3f}"
        if not abs(self.measured["levels"] - self.true["levels"]) <= LEVELS_TOL:
            out["levels"] = f"{self.measured['levels']:g} vs {self.true['levels']:g}"
        return out


def characterise_with_truth(
    device: str, seed: int, *, quick: bool = True, plan: Any = None
) -> Truth:
    """Characterise the bench (``quick`` or the full protocol, or ``plan``) and record the
    truths while it runs (see the module docstring)."""
    import crossbar.characterise as ch
    from crossbar.core import Crossbar
    from lab import device_profile, open_backend

    cfg = bench_config(device, seed)
    prof = device_profile(cfg)
    backend = open_backend(cfg)
    arr = backend.sim_handles.crossbar
    devs = arr.devices
    if plan is None:
        plan = ch.CharacterisationPlan.quick() if quick else ch.CharacterisationPlan()
    v_read = plan.v_read
    after: dict[tuple[int, int], list[float]] = {}  # cell -> [target, converged, G_true]
    state: dict[str, Any] = {"cell": None, "reads": [], "t_end": 0.0}
    timing: dict[str, list[float]] = {"per_cell": [], "right_after": []}

    with Crossbar(backend) as xb:
        orig_prog, orig_read = xb.program_cell, xb.read_cell

        def program_cell(r: int, c: int, target: float, **kw: Any) -> Any:
            t0 = xb.now()
            rep = orig_prog(r, c, target, **kw)
            timing["per_cell"].append(xb.now() - t0)
            after[(r, c)] = [target, float(rep.converged)]
            state["cell"], state["reads"], state["t_end"] = (r, c), [], xb.now()
            return rep

        def read_cell(r: int, c: int, **kw: Any) -> Any:
            out = orig_read(r, c, **kw)
            if state["cell"] == (r, c):  # the averaged read right after program-and-verify
                state["reads"].append(float(arr.true_conductance(v_read)[r, c]))
                if len(state["reads"]) == plan.prog_reads:  # the true G over that read
                    after[(r, c)] += [float(np.mean(state["reads"])), min(state["reads"])]
                    timing["right_after"].append(xb.now() - state["t_end"])
                    state["cell"] = None
            return out

        xb.program_cell = program_cell  # type: ignore[method-assign]
        xb.read_cell = read_cell  # type: ignore[method-assign]
        w0 = time.perf_counter()
        result = ch.characterise(xb, plan)
        wall = time.perf_counter() - w0

    stuck = devs.stuck_on | devs.stuck_off
    g_end = arr.true_conductance(v_read)
    errs, nus = [], []
    for (r, c), (target, conv, g_true, g_low) in after.items():
        if conv and g_low >= 0.5 * target:  # converged, not dissolved
            errs.append(g_true / target - 1)
            if g_end[r, c] >= 0.5 * g_true:  # nor dissolved while settling
                nus.append(devs.drift_nu[r, c])
    t = Truth(device, seed, plan.n_cells < 20)
    t.wall, t.bench_time, t.profile, t.timing = wall, result.bench_time, result, timing
    t.true = {
        "read_sigma": prof.read_sigma,
        "prog_sigma": float(np.std(errs, ddof=1)) if len(errs) > 1 else math.nan,
        "drift_nu": float(np.mean(nus)) if nus else math.nan,
        "drift_nu_profile": prof.drift_nu,
        "stuck": float(stuck.mean()),
        "levels": float(prof.levels),
        "n_prog": float(len(errs)),
    }
    pr = result.programming
    t.measured = {
        "read_sigma": result.read_noise.sigma_rel,
        "prog_sigma": pr.sigma_rel,
        "drift_nu": pr.drift_nu_mean,
        "drift_nu_profile": pr.drift_nu_mean,
        "stuck": result.window.stuck_fraction,
        "levels": float(result.pulse_response.levels),
        "n_prog": pr.converged_fraction,
    }
    return t


def table(rows: list[Truth]) -> str:
    """Markdown table: measured / true per figure."""
    head = (
        "| device | seed | protocol | σ_read meas/true | σ_prog meas/true | ν meas/true "
        "(profile) | stuck meas/true | levels meas/true | wall s | bench s | misses |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for t in rows:
        m, tr = t.measured, t.true
        miss = ", ".join(t.errors()) or "—"
        lines.append(
            f"| {t.device} | {t.seed} | {'quick' if t.quick else 'full'} "
            f"| {m['read_sigma']:.4f} / {tr['read_sigma']:.4f} "
            f"| {m['prog_sigma']:.4f} / {tr['prog_sigma']:.4f} "
            f"| {m['drift_nu']:.4f} / {tr['drift_nu']:.4f} ({tr['drift_nu_profile']:.3g}) "
            f"| {m['stuck']:.2f} / {tr['stuck']:.2f} "
            f"| {m['levels']:g} / {tr['levels']:g} "
            f"| {t.wall:.0f} | {t.bench_time:.0f} | {miss} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the truth table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", nargs="+", default=list(DEVICES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--protocol", choices=("quick", "full", "both"), default="quick")
    args = ap.parse_args(argv)
    rows = []
    for quick in {"quick": (True,), "full": (False,), "both": (True, False)}[args.protocol]:
        for d in args.devices:
            for s in args.seeds:
                rows.append(characterise_with_truth(d, s, quick=quick))
                print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    raise SystemExit(main())
