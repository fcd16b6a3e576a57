"""``xbar bench solver``: the circuit solver against badcrossbar 1.1.0 (same run, same inputs).

Cases (conductances 1–100 µS, read voltages 0–0.3 V, 1 Ω line segments, rows driven at their left
ends, columns held at 0 V at their bottom ends — badcrossbar's model):

* ``solver-10x10-batch100``: one conductance state, 100 input vectors. Ours: ``factorize`` +
  ``solve_batch`` (column currents); badcrossbar: ``compute`` with the 100 vectors as the
  columns of ``applied_voltages`` and ``all_currents=False`` (it also returns output currents
  only).
* ``solver-128x128-single``: one vector.

``time_per_vector`` is the best of ``--repeats`` runs (each the mean of enough calls to last
≥ 50 ms, so µs-scale calls are not timer- or noise-bound) divided by the number of vectors, with
the solver's topology cache warm (the steady state when the same circuit is solved again with new
conductances or voltages; the cache holds no conductances or voltages). ``time_per_vector_cold``
clears the cache before every run. ``max_rel_diff`` is the largest relative difference of the
column currents from badcrossbar's; the bench fails if it reaches 1e-9.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np

from bench._report import Row

DESCRIPTION = "circuit solver vs badcrossbar 1.1.0"
PEER = "badcrossbar 1.1.0"
R_LINE = 1.0  # Ω per segment, word and bit lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (best of)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")


def _best(
    fn: Callable[[], object], repeats: int, before: Callable[[], None] | None = None
) -> float:
    """Best of ``repeats`` runs of the mean time per call (s); a run loops ``fn`` until it has
    lasted ≥ 50 ms (one call for slow functions), so µs-scale calls are not timer/noise bound.
    ``before`` (if given) runs before every call, inside the timed loop."""

    def once() -> None:
        if before is not None:
            before()
        fn()

    t0 = time.perf_counter()
    once()
    calls = max(1, int(0.05 / max(time.perf_counter() - t0, 1e-9)))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            once()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def _import_badcrossbar() -> ModuleType:
    """Import badcrossbar without its side effects: on import it forces ImportWarnings to
    "always" (the missing-cairo warning) and calls ``logging.basicConfig`` (INFO to stdout)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with warnings.catch_warnings(record=True):
        import badcrossbar
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("badcrossbar").setLevel(logging.WARNING)  # no per-call INFO logging cost
    return badcrossbar


def _case(
    name: str, rows: int, cols: int, batch: int, rng: np.random.Generator, repeats: int
) -> list[Row]:
    badcrossbar = _import_badcrossbar()

    from sim_backends.solver import CrossbarCircuit, End, clear_caches

    g = rng.uniform(1e-6, 1e-4, (rows, cols))
    v = rng.uniform(0.0, 0.3, (batch, rows))
    circuit = CrossbarCircuit(rows, cols, r_row=R_LINE, r_col=R_LINE)
    row_mode = np.full(rows, End.DRIVE)
    col_mode = np.full(cols, End.VGROUND)
    resistances = 1.0 / g
    applied = np.ascontiguousarray(v.T)  # badcrossbar: (rows, examples)

    def ours() -> np.ndarray:
        return circuit.factorize(g, row_mode, col_mode).solve_batch(v)

    def peer() -> np.ndarray:
        sol = badcrossbar.compute(
            applied,
            resistances,
            r_i_word_line=R_LINE,
            r_i_bit_line=R_LINE,
            node_voltages=False,
            all_currents=False,
        )
        return sol.currents.output

    ours_i, peer_i = ours(), peer()  # also warms both up
    diff = float(np.max(np.abs(ours_i - peer_i) / np.abs(peer_i)))
    if not diff < 1e-9:
        raise AssertionError(f"{name}: solver differs from badcrossbar by {diff:.3e} (>= 1e-9)")

    t_peer = _best(peer, repeats) / batch
    t_warm = _best(ours, repeats) / batch
    t_cold = _best(ours, repeats, before=clear_caches) / batch
    return [
        Row(name, "time_per_vector", t_warm, "s", PEER, t_peer, t_peer / t_warm),
        Row(name, "time_per_vector_cold", t_cold, "s", PEER, t_peer, t_peer / t_cold),
        Row(name, "max_rel_diff", diff, "1", PEER, None, None),
    ]


def run(args: argparse.Namespace) -> list[Row]:
    repeats = max(1, int(getattr(args, "repeats", 3)))
    rng = np.random.default_rng(getattr(args, "seed", 0))
    rows = _case("solver-10x10-batch100", 10, 10, 100, rng, repeats)
    rows += _case("solver-128x128-single", 128, 128, 1, rng, repeats)
    return rows
