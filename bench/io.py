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
  ascending runs only. ``ratio`` = peer / ours. ACCEPTANCE: the built-in path needs at most a
  tenth of the point-by-point transactions (row ``acceptance``: 1 = met).
* ``read-map-10x10``: ``read_map`` of the whole array at 0.2 V under V/3 (differential read:
  a baseline per column plus one read per cell), against the single-read ground scheme.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from bench._report import Row
from crossbar.config import load_bench_config, parse_bench_config
from crossbar.policy import CrossbarPolicy
from instruments.keithley6487 import parse_readings
from instruments.keithley6487_procedures import measure_at, sweep_points
from instruments.sweep_plan import cyclic_points
from lab import open_backend

DESCRIPTION = (
    "bus transactions and est. real-bench time on the twins: 121-point I-V sweep (built-in vs "
    "point by point), 10x10 read map"
)

COMPLIANCE = 2.5e-4  # A
NPLC = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="optimized", help="device profile (default optimized)")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed")
    parser.add_argument("--latency", type=float, default=None, help="6487 bus latency, s")
    parser.add_argument("--usb-latency", type=float, default=None, help="AD2 call latency, s")


def _open(args: argparse.Namespace) -> Any:
    d = load_bench_config("sim").to_dict()
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


def _map_rows(args: argparse.Namespace) -> list[Row]:
    out = {}
    for biasing in ("v/3", "ground"):
        backend = _open(args)
        h = backend.sim_handles
        backend.matrix.release()
        n0, d0, t0 = h.adapter.transactions, h.dwf_library.transactions, h.clock.now()
        w0 = time.perf_counter()
        CrossbarPolicy(backend).read_map(v_read=0.2, biasing=biasing)
        out[biasing] = (
            h.clock.now() - t0,
            h.adapter.transactions - n0,
            h.dwf_library.transactions - d0,
            time.perf_counter() - w0,
        )
        backend.close()
    case, peer = "read-map-10x10", "ground (single read per cell)"
    (t, n, d, w), (pt, pn, pd, _) = out["v/3"], out["ground"]
    return [
        Row(case, "est. time (v/3, differential)", t, "s", peer, pt, pt / t),
        Row(case, "6487 transactions", n, "", peer, pn, pn / n),
        Row(case, "AD2 pydwf calls (switch matrix)", d, "", peer, pd, pd / d),
        Row(case, "est. time per cell", t / 100, "s", peer, pt / 100, pt / t),
        Row(case, "simulation wall time", w, "s"),
    ]


def run(args: argparse.Namespace) -> list[Row]:
    """Measure both cases on fresh simulated benches (same seed and profile)."""
    return _iv_rows(args) + _map_rows(args)
