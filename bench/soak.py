"""Soak: a long run on the simulated bench in one process — memory growth, time, complete data.

``xbar bench soak [--mvms 10000] [--programs 1000] [--json]`` opens the bench (default the
built-in ``sim``: the real drivers over the twins) with a data file and runs, interleaved,
``--mvms`` matrix-vector products (``Crossbar.mvm`` in batches of ``--batch`` vectors, inputs
uniform in [0, max_read_voltage]) and ``--programs`` program-and-verify operations
(``Crossbar.program_cell`` on cells taken in turn, each alternating between a low and a high
target, so every operation pulses). Then:

* ``memory_growth``: resident set size (``/proc/self/statm``) at the end minus after a warm-up
  round (the first round's one-time allocations — caches, h5py chunks, lazy imports — are not
  growth); acceptance: < 50 MB. ``--tracemalloc`` also reports the Python heap's growth
  (slower: every allocation is traced);
* ``records_missing``: the data file's ``mvm`` records and ``/mvm`` rows must equal the MVMs
  done, and its ``program-verify`` records the verify reads the reports counted (pulses + the
  initial read of each operation) — must be 0;
* wall time, bench (virtual) time, records.

The twins record every bus message and pydwf call they receive (``adapter.commands``,
``dwf_library.calls`` …) for tests to assert on; over 10,000 MVMs that log alone is millions of
entries. It is test instrumentation, not the application, so the soak empties it after each
round (``twin_log_entries`` reports how many entries that was).
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench._report import Row

DESCRIPTION = "long run on the simulated bench: MVMs + program-and-verify, memory growth (MB)"

#: the acceptance limit of the memory growth, MB
MAX_GROWTH_MB = 50.0
#: the two targets each programmed cell alternates between, S
TARGETS = (3e-6, 1.2e-5)

__all__ = ["MAX_GROWTH_MB", "SoakResult", "rss_mb", "run", "soak"]


def rss_mb() -> float:
    """Resident set size of this process, MB (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


@dataclass
class SoakResult:
    """What a soak did and measured (sizes in MB, times in s)."""

    mvms: int
    programs: int
    rounds: int
    rss_start_mb: float  # after the warm-up round
    rss_end_mb: float
    rss_peak_mb: float
    heap_growth_mb: float | None  # tracemalloc, when enabled
    wall_s: float
    bench_s: float
    records: int
    mvm_records: int
    mvm_rows: int
    verify_records: int
    expected_verify: int
    twin_log_entries: int
    converged: int
    data: Path

    @property
    def memory_growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_start_mb

    @property
    def records_missing(self) -> int:
        return (
            max(self.mvms - self.mvm_records, 0)
            + max(self.mvms - self.mvm_rows, 0)
            + max(self.expected_verify - self.verify_records, 0)
        )


def _trim_twin_logs(backend) -> int:
    """Empty the twins' recorded bus logs (test instrumentation); returns the entries dropped."""
    h = getattr(backend, "sim_handles", None)
    if h is None:
        return 0
    n = 0
    for log in (h.dwf_library.calls, h.adapter.commands, h.adapter.replies, h.adapter.failed):
        n += len(log)
        log.clear()
    return n


def soak(
    *,
    mvms: int = 10_000,
    programs: int = 1_000,
    batch: int = 100,
    bench: str = "sim",
    data: Path | None = None,
    heap: bool = False,
    seed: int = 0,
    log=None,
) -> SoakResult:
    """Run the soak (see the module docstring) and return its figures."""
    from crossbar.core import Crossbar
    from crossbar.datastore import DataStore, read_mvm, read_records
    from lab import open_backend

    if mvms < 0 or programs < 0 or batch < 1:
        raise ValueError("need mvms >= 0, programs >= 0 and batch >= 1")
    tmp = None
    if data is None:
        tmp = tempfile.TemporaryDirectory(prefix="xbar-soak-")
        data = Path(tmp.name) / "soak.h5"
    rng = np.random.default_rng(seed)
    backend = open_backend(bench)
    rows, cols = backend.shape
    v_max = float(getattr(backend, "max_read_voltage", 0.2))
    store = DataStore(data, metadata={"operation": "soak"}, mode="w")
    xb = Crossbar(backend, datastore=store)
    n_batches = -(-mvms // batch)
    rounds = max(n_batches, 1 if programs else 0)
    done_mvm = done_prog = expected_verify = converged = dropped = 0
    visits = np.zeros((rows, cols), dtype=np.int64)
    rss_start = rss_peak = 0.0
    heap_start = 0
    t0 = time.perf_counter()
    b0 = xb.now()
    try:
        with xb:
            for k in range(rounds):
                n = min(batch, mvms - done_mvm)
                if n > 0:
                    x = rng.uniform(0.0, v_max, (n, rows))
                    xb.mvm(x, batch_size=batch)
                    done_mvm += n
                # spread the program operations evenly over the rounds
                p = (programs * (k + 1)) // rounds - (programs * k) // rounds
                for _ in range(p):
                    cell = divmod(done_prog % (rows * cols), cols)
                    target = TARGETS[int(visits[cell] % 2)]
                    visits[cell] += 1
                    rep = xb.program_cell(*cell, target)
                    expected_verify += rep.pulses + 1
                    converged += int(rep.converged)
                    done_prog += 1
                dropped += _trim_twin_logs(backend)
                if k == 0:  # after the warm-up round
                    gc.collect()
                    rss_start = rss_peak = rss_mb()
                    if heap:
                        tracemalloc.start()
                        heap_start = tracemalloc.get_traced_memory()[0]
                rss_peak = max(rss_peak, rss_mb())
                if log is not None and (k + 1) % max(rounds // 10, 1) == 0:
                    log(
                        f"soak: round {k + 1}/{rounds}: {done_mvm} MVMs, {done_prog} programs, "
                        f"RSS {rss_mb():.1f} MB, {time.perf_counter() - t0:.0f} s"
                    )
            bench_s = xb.now() - b0
        gc.collect()
        rss_end = rss_mb()
        heap_growth = None
        if heap:
            heap_growth = (tracemalloc.get_traced_memory()[0] - heap_start) / 1e6
            tracemalloc.stop()
        wall = time.perf_counter() - t0
        close = getattr(backend, "close", None)
        if close is not None:
            close()
        rec = read_records(data)
        ops = rec["operation"]
        result = SoakResult(
            mvms=done_mvm,
            programs=done_prog,
            rounds=rounds,
            rss_start_mb=rss_start,
            rss_end_mb=rss_end,
            rss_peak_mb=max(rss_peak, rss_end),
            heap_growth_mb=heap_growth,
            wall_s=wall,
            bench_s=bench_s,
            records=int(ops.size),
            mvm_records=int(np.sum(ops == "mvm")),
            mvm_rows=int(read_mvm(data)["inputs"].shape[0]),
            verify_records=int(np.sum(ops == "program-verify")),
            expected_verify=expected_verify,
            twin_log_entries=dropped,
            converged=converged,
            data=data,
        )
    finally:
        if tmp is not None:
            tmp.cleanup()
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mvms", type=int, default=10_000, help="MVMs (vectors) to run (10000)")
    p.add_argument("--programs", type=int, default=1_000,
                   help="program-and-verify operations (1000)")  # fmt: skip
    p.add_argument("--batch", type=int, default=100, help="vectors per Crossbar.mvm call (100)")
    p.add_argument("--bench", default="sim",
                   help='"sim" (twins, default) or a bench TOML (e.g. backend = "physics")')  # fmt: skip
    p.add_argument("--data", metavar="FILE.h5", help="keep the data file here (default: temp)")
    p.add_argument("--tracemalloc", action="store_true", help="also trace the Python heap")


def run(args: argparse.Namespace) -> list[Row]:
    import sys

    r = soak(
        mvms=args.mvms,
        programs=args.programs,
        batch=args.batch,
        bench=args.bench,
        data=Path(args.data) if args.data else None,
        heap=args.tracemalloc,
        log=lambda m: print(m, file=sys.stderr),
    )
    rows = [
        Row("soak", "memory_growth", r.memory_growth_mb, "MB", "limit", MAX_GROWTH_MB,
            r.memory_growth_mb / MAX_GROWTH_MB),
        Row("soak", "rss_peak", r.rss_peak_mb, "MB"),
        Row("soak", "wall_time", r.wall_s, "s"),
        Row("soak", "bench_time", r.bench_s, "s"),
        Row("soak", "mvms", float(r.mvms), "MVMs"),
        Row("soak", "programs", float(r.programs), "operations"),
        Row("soak", "records", float(r.records), "records"),
        Row("soak", "records_missing", float(r.records_missing), "records"),
        Row("soak", "converged", float(r.converged), "operations"),
        Row("soak", "twin_log_entries", float(r.twin_log_entries), "entries"),
    ]  # fmt: skip
    if r.heap_growth_mb is not None:
        rows.insert(1, Row("soak", "heap_growth", r.heap_growth_mb, "MB"))
    return rows
