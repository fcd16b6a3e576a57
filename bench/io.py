"""``xbar bench io``: bus transactions and estimated real-bench time on the simulated bench.

Everything runs the real drivers over the instrument twins (``backend = "twins"``), whose
virtual clock charges the bus latency of every transaction (GPIB 3 ms, USB 1 ms by default),
the 6487's integration time and the host's waits, so the times are estimates for the real
bench, not the simulation's wall time.

Cases:

* ``iv-sweep-121``: a cyclic I-V sweep 0 → +3 → 0 → −3 → 0 V in 0.1 V steps (121 points,
  NPLC 1, 250 µA limit) on one cell. *Ours*: ``keithley6487_procedures.sweep_points`` with built-in
  staircases for every monotonic run (``builtin_descending``: 3 runs). Peers: *point-by-point*
  — one ``measure_at`` per point (limit, level, operate, zero check, format, ``READ?``, error
  check: the usual per-point loop); *point-by-point, lean* — configure once, then only
  ``SOUR:VOLT v`` + ``READ?`` per point and one error check (the fewest transactions a
  point list can take); and the driver's default on the bench, built-in staircases for the
  ascending runs only (all on ``io_path = "legacy"``: every setting written, so a per-point
  loop costs what it costs without the driver's settings cache). ``ratio`` = peer / ours. ACCEPTANCE: the built-in path needs at most a
  tenth of the point-by-point transactions (row ``acceptance``: 1 = met).
* ``read-map-10x10``: ``read_map`` of the whole array at 0.2 V under V/3 (differential read:
  a baseline per column plus one read per cell). *Ours*: ``[instruments] io_path = "fast"``
  (the switch matrix loaded by the AD2's pattern generator, five pydwf calls a routing, and
  skipped when already set; 6487 settings written only when they change). Peer: ``"legacy"``
  — the previous path, same bench and seed (165 DIO words a routing, every setting per read).
  Same readings asserted (row ``same readings``: the largest relative difference between the
  two maps; the twins draw the same noise, so it is 0 unless a reading changed). ACCEPTANCE
  (issue 18): ≤ 4 s of bench time and ≤ 10 pydwf calls per cell, the read error versus the true
  conductance unchanged. A second peer: the single-read ground scheme on the fast path.
* ``read-repeat-20``: 20 reads of one cell at one setting (V/3, differential: two bursts) —
  ``read_cell_repeated``: one 6487 burst per setting (trigger model + buffer: one ``INIT``, one
  ``TRAC:DATA?``) against 20 single reads on the legacy path.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from bench._report import Row, compare
from crossbar.config import load_bench_config, parse_bench_config
from crossbar.policy import CrossbarPolicy
from instruments.keithley6487 import parse_readings
from instruments.keithley6487_procedures import measure_at, sweep_points
from instruments.sweep_plan import cyclic_points
from lab import open_backend

DESCRIPTION = (
    "bus transactions and est. real-bench time on the twins: 121-point I-V sweep (built-in vs "
    "point by point), 10x10 read map and repeated reads (fast io path vs legacy)"
)

COMPLIANCE = 2.5e-4  # A
NPLC = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="optimized", help="device profile (default optimized)")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed")
    parser.add_argument("--latency", type=float, default=None, help="6487 bus latency, s")
    parser.add_argument("--usb-latency", type=float, default=None, help="AD2 call latency, s")


def _open(args: argparse.Namespace) -> Any:
    """The I-V case's bench: io_path "legacy", so the point-by-point peers cost what a plain
    per-point loop costs (the fast path's settings cache would shorten them too)."""
    d = load_bench_config("sim").to_dict()
    d["instruments"]["io_path"] = "legacy"
    d["simulation"]["profile"] = getattr(args, "profile", "optimized")
    d["simulation"]["seed"] = int(getattr(args, "seed", 0))
    if getattr(args, "latency", None) is not None:
        d["simulation"]["latency_s"] = float(args.latency)
    if getattr(args, "usb_latency", None) is not None:
        d["simulation"]["usb_latency_s"] = float(args.usb_latency)
    backend = open_backend(parse_bench_config(d, origin="bench io"))
    backend.matrix.select_cell(0, 0)  # the cell under test, as iv_sweep routes it
    backend.keithley.nplc = NPLC
    return backend


def _measure(args: argparse.Namespace, how: str, v: np.ndarray) -> tuple[int, float, float]:
    """(6487 transactions, est. bench time s, wall time s) of one way to sweep ``v``."""
    backend = _open(args)
    k, h = backend.keithley, backend.sim_handles
    n0, t0, w0 = h.adapter.transactions, h.clock.now(), time.perf_counter()
    if how in ("builtin", "builtin-ascending"):
        sweep_points(
            k,
            v,
            compliance=COMPLIANCE,
            builtin_descending=how == "builtin",
            poll_interval=0.0,
        )
    elif how == "points":
        for vk in v:
            measure_at(k, float(vk), compliance=COMPLIANCE)
    elif how == "points-lean":
        measure_at(k, float(v[0]), compliance=COMPLIANCE)
        for vk in v[1:]:
            k.write(f"SOUR:VOLT {float(vk):g}")
            parse_readings(k.ask("READ?"), "READ,VSO")
        k.check_errors()
    else:  # pragma: no cover
        raise ValueError(how)
    result = (h.adapter.transactions - n0, h.clock.now() - t0, time.perf_counter() - w0)
    backend.close()
    return result


def _iv_rows(args: argparse.Namespace) -> list[Row]:
    v = cyclic_points(3.0, -3.0, 0.1)
    assert v.size == 121
    ours = _measure(args, "builtin", v)
    peers = {
        "point-by-point": _measure(args, "points", v),
        "point-by-point, lean": _measure(args, "points-lean", v),
        "built-in ascending only": _measure(args, "builtin-ascending", v),
    }
    case = "iv-sweep-121"
    rows: list[Row] = []
    for peer, (n, t, _) in peers.items():
        rows.append(Row(case, "transactions", ours[0], "", peer, n, n / ours[0]))
        rows.append(Row(case, "est. time", ours[1], "s", peer, t, t / ours[1]))
    ratio = peers["point-by-point"][0] / ours[0]
    rows.append(Row(case, "acceptance (point-by-point / ours >= 10)", float(ratio >= 10), "1=met"))
    rows.append(Row(case, "simulation wall time", ours[2], "s"))
    return rows


def _open_path(args: argparse.Namespace, io_path: str) -> Any:
    d = load_bench_config("sim").to_dict()
    d["simulation"]["profile"] = getattr(args, "profile", "optimized")
    d["simulation"]["seed"] = int(getattr(args, "seed", 0))
    d["instruments"]["io_path"] = io_path
    if getattr(args, "latency", None) is not None:
        d["simulation"]["latency_s"] = float(args.latency)
    if getattr(args, "usb_latency", None) is not None:
        d["simulation"]["usb_latency_s"] = float(args.usb_latency)
    return open_backend(parse_bench_config(d, origin="bench io"))


def _read_map(args: argparse.Namespace, io_path: str, biasing: str) -> dict[str, Any]:
    backend = _open_path(args, io_path)
    h = backend.sim_handles
    n0, d0, t0 = h.adapter.transactions, h.dwf_library.transactions, h.clock.now()
    w0 = time.perf_counter()
    g = CrossbarPolicy(backend).read_map(v_read=0.2, biasing=biasing)
    out = {
        "time": h.clock.now() - t0,
        "gpib": h.adapter.transactions - n0,
        "dwf": h.dwf_library.transactions - d0,
        "wall": time.perf_counter() - w0,
        "g": g,
        "err": float(np.median(np.abs(g / h.crossbar.true_conductance(0.2) - 1))),
    }
    backend.close()
    return out


def _map_rows(args: argparse.Namespace) -> list[Row]:
    ours = _read_map(args, "fast", "v/3")
    legacy = _read_map(args, "legacy", "v/3")
    ground = _read_map(args, "fast", "ground")
    case, peer, gpeer = "read-map-10x10", "legacy io path (v/3)", "ground, single read (fast)"
    cells = ours["g"].size
    for d in (ours, legacy):
        d["per_cell"], d["dwf_per_cell"] = d["time"] / cells, d["dwf"] / cells
    same = float(np.max(np.abs(ours["g"] / legacy["g"] - 1)))
    met = (
        ours["time"] <= 4.0
        and ours["dwf_per_cell"] <= 10
        and abs(ours["err"] - legacy["err"]) <= 0.01 * max(legacy["err"], 1e-3)
    )
    return [
        compare(case, "est. time (v/3, differential)", "s", "time", ours, legacy, peer),
        compare(case, "est. time per cell", "s", "per_cell", ours, legacy, peer),
        compare(case, "AD2 pydwf calls per cell", "", "dwf_per_cell", ours, legacy, peer),
        compare(case, "6487 transactions", "", "gpib", ours, legacy, peer),
        compare(case, "median |G_read/G_true - 1|", "1", "err", ours, legacy, peer, ratio=False),
        Row(case, "same readings (max |G/G_peer - 1|)", same, "1", peer, 0.0, None),
        Row(case, "acceptance (<= 4 s, <= 10 calls/cell, same error)", float(met), "1=met"),
        compare(case, "est. time vs ground scheme", "s", "time", ours, ground, gpeer),
        compare(case, "simulation wall time", "s", "wall", ours, legacy, peer, ratio=False),
    ]


def _repeat_rows(args: argparse.Namespace, n: int = 20) -> list[Row]:
    out = {}
    for io_path in ("fast", "legacy"):
        backend = _open_path(args, io_path)
        h = backend.sim_handles
        n0, t0 = h.adapter.transactions, h.clock.now()
        rs = CrossbarPolicy(backend).read_cell_repeated(4, 6, n, v_read=0.2, biasing="v/3")
        g = np.array([r.conductance for r in rs])
        out[io_path] = (h.clock.now() - t0, h.adapter.transactions - n0, g)
        backend.close()
    (t, k, g), (pt, pk, pg) = out["fast"], out["legacy"]
    ours = {"time": t, "gpib": k, "std": float(np.std(g) / np.mean(g))}
    legacy = {"time": pt, "gpib": pk, "std": float(np.std(pg) / np.mean(pg))}
    case, peer = f"read-repeat-{n}", f"{n} single reads (legacy)"
    return [
        compare(case, "est. time (v/3, 2 bursts)", "s", "time", ours, legacy, peer),
        compare(case, "6487 transactions", "", "gpib", ours, legacy, peer),
        compare(case, "relative std of G", "1", "std", ours, legacy, peer, ratio=False),
        Row(case, "same readings (max |G/G_peer - 1|)", float(np.max(np.abs(g / pg - 1))), "1"),
    ]


def run(args: argparse.Namespace) -> list[Row]:
    """Measure every case on fresh simulated benches (same seed and profile)."""
    return _iv_rows(args) + _map_rows(args) + _repeat_rows(args)
