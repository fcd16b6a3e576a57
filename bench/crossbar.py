"""``xbar bench crossbar``: MVM throughput on the physics backend, programming and read-map cost
on the simulated bench (estimated real-bench time from the twins' virtual clock).

Cases:

* ``mvm-physics-batch1000``: 1000 MVMs (10×10, random row voltages within ±0.3 V, 5 Ω lines)
  through the physics backend's batched path, against a plain numpy loop that solves the same
  circuit (same solver, same linearised conductances) one vector at a time; ratio = our MVMs/s
  over the loop's.
* ``program-map-10x10-<profile>``: program-and-verify of a random 10×10 target map (1–20 µS)
  on the simulated bench (``typical``, ``optimized``), the adaptive algorithm against the
  amplitude ladder, bench seeds 1–3 (mean and per seed); mean pulses per cell, converged (% of
  the non-stuck cells), flagged and truly stuck, the fraction within ±5 % of target (true
  conductances) and the estimated real-bench time. ACCEPTANCE (issue 15, typical): ≥ 98 %
  converged, flagged ≤ truly stuck + 1 point, pulses ≤ half the ladder's.
* ``read-map-10x10``: a V/3 read map on the simulated bench; estimated real-bench time, on
  ``[instruments] io_path = "fast"`` against ``"legacy"`` (the previous path: 165 DIO words a
  routing, every 6487 setting per read), same seed, same readings asserted.
* ``pulse-and-read-step``: one program-and-verify step (a V/3 pulse on the AWG, a ground verify
  read), steady state, fast vs legacy. ACCEPTANCE (issue 18): ≤ 60 ms of bench time.
* ``program-moons-typical``: program-and-verify the ERM two-moons network's cells (as ``xbar
  demo`` deploys it) on the ``typical`` simulated bench, fast vs legacy; bench time, pulses per
  cell, converged fraction. ACCEPTANCE (issue 18): ≤ 120 s of bench time.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from bench._report import Row, compare
from crossbar.backend import Biasing
from crossbar.config import load_bench_config, parse_bench_config
from crossbar.core import Crossbar
from crossbar.policy import CrossbarPolicy
from lab import open_backend
from sim_backends.array import SimulatedCrossbar
from sim_backends.solver import End, LineEnds

DESCRIPTION = (
    "MVM throughput (physics backend), program/read-map, pulse-and-read and moons-programming "
    "cost (simulated bench, fast io path vs legacy)"
)


def _physics_backend(line_resistance: float):
    cfg = load_bench_config("sim")
    cfg = dataclasses.replace(
        cfg,
        bench=dataclasses.replace(cfg.bench, backend="physics"),
        crossbar=dataclasses.replace(cfg.crossbar, line_resistance_ohm=line_resistance),
    )
    return open_backend(cfg)


def _mvm_case(n: int = 1000) -> list[Row]:
    rng = np.random.default_rng(0)
    backend = _physics_backend(5.0)
    sim: SimulatedCrossbar = backend.sim
    sim.devices.state = rng.uniform(0.2, 0.8, size=sim.shape)
    v = rng.uniform(-0.3, 0.3, size=(n, sim.shape[0]))
    backend.mvm(v[:10])  # warm the factorisation cache
    t0 = time.perf_counter()
    ours = backend.mvm(v)
    t_ours = time.perf_counter() - t0

    # peer: the same circuit and linearised conductances, one solve per vector
    g = sim.devices.conductance(float(np.max(np.abs(v))))
    rows, cols = sim.shape
    cols_end = LineEnds.uniform(cols, End.VGROUND)
    t0 = time.perf_counter()
    peer = np.empty((n, cols))
    for k in range(n):
        peer[k] = sim.circuit.solve(g, LineEnds.driven(v[k]), cols_end).column_currents
    t_peer = time.perf_counter() - t0
    rel = float(np.max(np.abs(ours - peer)) / np.max(np.abs(peer)))
    return [
        Row(
            "mvm-physics-batch1000",
            "throughput",
            n / t_ours,
            "MVM/s",
            "numpy per-vector loop",
            n / t_peer,
            t_peer / t_ours,
        ),
        Row("mvm-physics-batch1000", "max_rel_diff_vs_peer (read noise incl.)", rel, "1"),
    ]


def _program_run(profile: str, algorithm: str, seed: int = 1) -> dict[str, float]:
    """Program random 10×10 targets (log-uniform 1–20 µS, ±5 %) on the simulated bench."""
    d = load_bench_config("sim").to_dict()
    d["simulation"]["profile"], d["simulation"]["seed"] = profile, seed
    backend = open_backend(parse_bench_config(d, origin="bench crossbar"))
    sim = backend.sim_handles.crossbar
    rng = np.random.default_rng(seed)
    targets = np.exp(rng.uniform(np.log(1e-6), np.log(20e-6), size=sim.shape))
    with Crossbar(backend) as xb:
        t0, w0 = xb.now(), time.perf_counter()
        report = xb.program_map(targets, tol=0.05, algorithm=algorithm)
        wall, est = time.perf_counter() - w0, xb.now() - t0
    dv = sim.devices
    free = ~(dv.stuck_on | dv.stuck_off)
    conv = np.zeros(sim.shape, bool)
    flagged = np.zeros(sim.shape, bool)
    for c in report.cells:
        conv[c.row, c.col], flagged[c.row, c.col] = c.converged, c.stuck
    g = sim.true_conductance(0.2)
    return {
        "pulses": report.mean_pulses,
        "converged": 100 * float(conv[free].mean()),
        "flagged": 100 * float(flagged.mean()),
        "stuck": 100 * float((~free).mean()),
        "within": 100 * float(np.mean(np.abs(g[free] / targets[free] - 1) <= 0.05)),
        "bench": est,
        "wall": wall,
    }


#: bench seeds of the program-map case (each a fresh simulated array and target map)
PROGRAM_SEEDS = (1, 2, 3)


def _program_seeds(profile: str, algorithm: str) -> dict[str, float]:
    """:func:`_program_run` over :data:`PROGRAM_SEEDS`: the mean of each figure, and each seed's
    pulses, converged and flagged as ``<key>@<seed>``."""
    runs = {s: _program_run(profile, algorithm, s) for s in PROGRAM_SEEDS}
    out = {k: float(np.mean([r[k] for r in runs.values()])) for k in runs[PROGRAM_SEEDS[0]]}
    for s, r in runs.items():
        out |= {f"{k}@{s}": r[k] for k in ("pulses", "converged", "flagged", "stuck")}
    return out


def _program_case() -> list[Row]:
    """Program-and-verify, adaptive (ours) against the amplitude ladder (the peer), on the
    ``typical`` and ``optimized`` simulated benches, mean over :data:`PROGRAM_SEEDS` and per
    seed. ACCEPTANCE (issue 15, typical): ≥ 98 % of the non-stuck cells converge, flagged stuck
    ≤ truly stuck + 1 point, mean pulses per cell ≤ half the ladder's."""
    rows = []
    for profile in ("typical", "optimized"):
        ours, peer = _program_seeds(profile, "adaptive"), _program_seeds(profile, "ladder")
        case, name = f"program-map-10x10-{profile}", "amplitude ladder"
        n = len(PROGRAM_SEEDS)
        rows += [
            compare(
                case, f"mean pulses per cell ({n} seeds)", "pulses", "pulses", ours, peer, name
            ),
            compare(
                case,
                f"converged (% of non-stuck cells, {n} seeds)",
                "%",
                "converged",
                ours,
                peer,
                name,
                ratio=False,
            ),
            compare(
                case, "flagged stuck (% of cells)", "%", "flagged", ours, peer, name, ratio=False
            ),
            Row(case, "truly stuck (% of cells)", ours["stuck"], "%"),
            compare(
                case, "non-stuck within ±5 % (true G)", "%", "within", ours, peer, name, ratio=False
            ),
            compare(case, "est. real-bench time", "s", "bench", ours, peer, name),
            Row(case, "simulation wall time", ours["wall"], "s"),
        ]
        for s in PROGRAM_SEEDS:
            for key, metric, unit, ratio in (
                ("pulses", "mean pulses per cell", "pulses", True),
                ("converged", "converged (% of non-stuck)", "%", False),
                ("flagged", "flagged stuck (% of cells)", "%", False),
            ):
                k = f"{key}@{s}"
                rows.append(
                    compare(case, f"seed {s}: {metric}", unit, k, ours, peer, name, ratio=ratio)
                )
            rows.append(Row(case, f"seed {s}: truly stuck (% of cells)", ours[f"stuck@{s}"], "%"))
        if profile == "typical":
            met = (
                ours["converged"] >= 98.0
                and ours["flagged"] <= ours["stuck"] + 1.0
                and ours["pulses"] <= 0.5 * peer["pulses"]
            )
            rows.append(Row(case, "acceptance (issue 15, mean over seeds)", float(met), "1=met"))
    return rows


def _twins(io_path: str, profile: str = "optimized", seed: int = 0):
    d = load_bench_config("sim").to_dict()
    d["simulation"]["profile"], d["simulation"]["seed"] = profile, seed
    d["instruments"]["io_path"] = io_path
    return open_backend(parse_bench_config(d, origin="bench crossbar"))


def _read_case() -> list[Row]:
    out = {}
    for io_path in ("fast", "legacy"):
        backend = _twins(io_path)
        sim = backend.sim_handles.crossbar
        with Crossbar(backend) as xb:
            t0 = xb.now()
            g = xb.read_map(v_read=0.2, biasing=Biasing.V3)
            est = xb.now() - t0
        out[io_path] = (est, g, float(np.median(np.abs(g / sim.true_conductance(0.2) - 1))))
    (t, g, err), (pt, pg, perr) = out["fast"], out["legacy"]
    peer = "legacy io path"
    return [
        Row("read-map-10x10", "est. real-bench time (V/3)", t, "s", peer, pt, pt / t),
        Row("read-map-10x10", "median |G_read/G_true - 1|", err, "1", peer, perr, None),
        Row(
            "read-map-10x10",
            "same readings (max |G/G_peer - 1|)",
            float(np.max(np.abs(g / pg - 1))),
            "1",
        ),
    ]


def _step_time(io_path: str, steps: int = 5) -> float:
    """Steady-state bench time of one pulse (V/3, AWG) + verify read (ground), s."""
    backend = _twins(io_path)
    policy = CrossbarPolicy(backend)
    policy.read_cell(3, 3, biasing=Biasing.GROUND)
    times = []
    for k in range(steps):
        t0 = backend.now()
        policy.pulse(3, 3, 1.5 + 0.05 * k, 1e-5, biasing=Biasing.V3)
        policy.read_cell(3, 3, biasing=Biasing.GROUND)
        times.append(backend.now() - t0)
    backend.close()
    return float(np.median(times[1:]))


def _step_case() -> list[Row]:
    t, pt = _step_time("fast"), _step_time("legacy")
    case = "pulse-and-read-step"
    return [
        Row(case, "est. bench time per step", 1e3 * t, "ms", "legacy io path", 1e3 * pt, pt / t),
        Row(case, "acceptance (<= 60 ms)", float(t <= 0.060), "1=met"),
    ]


def _moons_run(io_path: str) -> dict[str, float]:
    from inference.data import make_moons_dataset
    from inference.deploy import DeployOptions, place_model
    from inference.models import MOONS_SIZES
    from inference.training import train_erm

    ds = make_moons_dataset(seed=0)
    erm = train_erm(ds, MOONS_SIZES, seed=0)
    o = DeployOptions()
    backend = _twins(io_path, "typical", 0)
    sim = backend.sim_handles.crossbar
    with Crossbar(backend) as xb:
        placement = place_model(erm, ds.x_train, xb.shape, o)
        targets = np.full(xb.shape, np.nan)
        used = placement.used_mask()
        targets[used] = placement.full_map()[used]
        t0, w0 = xb.now(), time.perf_counter()
        report = xb.program_map(targets, tol=o.tol, max_pulses=o.max_pulses)
        bench_s, wall = xb.now() - t0, time.perf_counter() - w0
    g = sim.true_conductance(0.2)
    return {
        "bench": bench_s,
        "wall": wall,
        "cells": float(len(report.cells)),
        "pulses": float(report.mean_pulses),
        "converged": 100 * float(report.fraction_converged),
        "err": float(np.median(np.abs(g[used] / targets[used] - 1))),
    }


def _moons_case() -> list[Row]:
    ours, peer = _moons_run("fast"), _moons_run("legacy")
    case, name = "program-moons-typical", "legacy io path"
    return [
        Row(case, "cells programmed", ours["cells"], "cells"),
        compare(case, "est. real-bench time", "s", "bench", ours, peer, name),
        compare(case, "mean pulses per cell", "pulses", "pulses", ours, peer, name, ratio=False),
        compare(case, "converged", "%", "converged", ours, peer, name, ratio=False),
        compare(case, "median |G_true/target - 1|", "1", "err", ours, peer, name, ratio=False),
        Row(case, "acceptance (<= 120 s)", float(ours["bench"] <= 120.0), "1=met"),
        Row(case, "simulation wall time", ours["wall"], "s", name, peer["wall"], None),
    ]


def _accuracy_cases() -> list[Row]:
    """Read-map error per biasing scheme and MVM error against ideal V·G (physics backend)."""
    rows: list[Row] = []
    rng = np.random.default_rng(2)
    backend = _physics_backend(0.0)
    sim = backend.sim
    sim.devices.state = rng.uniform(0.2, 0.8, size=sim.shape)
    g_true = sim.true_conductance(0.2)
    for b in Biasing:
        g = CrossbarPolicy(backend).read_map(v_read=0.2, biasing=b)
        rows.append(
            Row(
                "read-map-10x10",
                f"median |G_read/G_true - 1| ({b.value}, physics)",
                float(np.median(np.abs(g / g_true - 1))),
                "1",
            )
        )
    v = rng.uniform(-0.3, 0.3, size=(200, sim.shape[0]))
    for r_line in (0.0, 5.0, 20.0):
        be = _physics_backend(r_line)
        be.sim.devices.state = sim.devices.state.copy()
        ideal = v @ be.sim.devices.conductance(0.3)
        i = be.mvm(v)
        err = float(np.sqrt(np.mean((i - ideal) ** 2)) / np.sqrt(np.mean(ideal**2)))
        rows.append(
            Row("mvm-vs-ideal", f"relative rms error vs V·G ({r_line:g} Ω lines)", err, "1")
        )
    return rows


def run(args: argparse.Namespace) -> list[Row]:
    return (
        _mvm_case()
        + _program_case()
        + _read_case()
        + _step_case()
        + _moons_case()
        + _accuracy_cases()
    )
