"""Fault-aware placement: which rows and columns of the array each layer of a network uses.

A network's layers share one array on disjoint rows (see :mod:`crossbar.mapping`); any rows and
any columns will do, in any order (inputs on the chosen rows, the bias on the last one; output
``j`` on the chosen columns ``2j`` (G⁺) and ``2j + 1`` (G⁻)). :func:`choose_slots` picks them
from a measured device profile (:class:`~crossbar.deployment_profile.DeploymentProfile`):

* **stuck cells** (the profile's stuck map, plus cells whose measured window cannot hold a
  useful part of the wanted window) are never used: a layer's block contains none of them;
* **window**: each layer's conductance window is the wanted ``[g_min, g_max]`` narrowed to what
  its weakest cell reaches — ``g_hi = min(g_max, margin_hi · min G_max)``, ``g_lo = max(g_min,
  margin_lo · max G_min)`` over the block's cells — so that no target lies outside a cell's
  reach; among the blocks free of stuck cells the search takes the one that narrows the windows
  least (cost: Σ over layers of ln(g_max/g_hi) + ln(g_lo/g_min)), ties going to the lowest
  rows and columns (a clean, uniform array keeps the default placement's rows and columns).

The search is exhaustive over column sets and row sets for small arrays (bounded by
``max_combinations`` per layer), layer orders included, with branch and bound.
:class:`~crossbar.mapping.MappingError` (one line) when no choice avoids the stuck cells.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crossbar.mapping import MappingError

__all__ = ["MARGIN_HI", "MARGIN_LO", "Slot", "choose_slots", "excluded_cells"]

#: A layer's largest target stays this far below its weakest cell's measured G_max. (0.9 was
#: tried: on the paper preset, physics bench, ERM, bench seeds 0-2, fault-aware + chip in the
#: loop + drift compensation reached 0.54/0.56/0.53 hardware accuracy with it, 0.56/0.88/0.83
#: with 1.0 and 0.79/0.77/0.81 without narrowing, against 0.65/0.78/0.78 without the loop.)
MARGIN_HI = 1.0
#: A layer's smallest target stays this far above its cells' largest measured G_min.
MARGIN_LO = 1.2


@dataclass(frozen=True)
class Slot:
    """Where one layer goes and why (conductances in S)."""

    rows: tuple[int, ...]  # inputs, then the bias row
    cols: tuple[int, ...]  # G⁺, G⁻ of output 0, then output 1, …
    g_min: float
    g_max: float
    weakest: tuple[int, int]  # the block's cell with the lowest measured G_max
    reason: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "rows": list(self.rows),
            "cols": list(self.cols),
            "g_min": self.g_min,
            "g_max": self.g_max,
            "weakest_cell": list(self.weakest),
            "reason": self.reason,
        }


def excluded_cells(
    stuck: np.ndarray, window_min: np.ndarray, window_max: np.ndarray, g_min: float, g_max: float
) -> np.ndarray:
    """(rows, cols) bool: the stuck cells plus those whose window cannot hold a useful range
    (``margin_hi·G_max < 2·g_min`` or ``margin_lo·G_min > g_max / 2``)."""
    bad = np.asarray(stuck, dtype=bool).copy()
    bad |= MARGIN_HI * np.asarray(window_max) < 2.0 * g_min
    bad |= MARGIN_LO * np.asarray(window_min) > 0.5 * g_max
    return bad


def choose_slots(
    dims: Sequence[tuple[int, int]],
    stuck: np.ndarray,
    window_min: np.ndarray,
    window_max: np.ndarray,
    *,
    g_min: float,
    g_max: float,
    max_combinations: int = 300,
) -> list[Slot]:
    """Rows and columns for layers of ``dims`` ((rows, cols) per layer, network order) on an
    array with the measured ``stuck`` map and per-cell windows (S); see the module docstring."""
    stuck = np.asarray(stuck, dtype=bool)
    wmin = np.asarray(window_min, dtype=float)
    wmax = np.asarray(window_max, dtype=float)
    n_rows, n_cols = stuck.shape
    if wmin.shape != stuck.shape or wmax.shape != stuck.shape:
        raise MappingError(
            f"the windows must be {stuck.shape} like the stuck map, got {wmin.shape}, {wmax.shape}"
        )
    bad = excluded_cells(stuck, wmin, wmax, g_min, g_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_hi = np.maximum(0.0, np.log(g_max / np.maximum(MARGIN_HI * wmax, 1e-30)))
        d_lo = np.maximum(0.0, np.log(np.maximum(MARGIN_LO * wmin, 1e-30) / g_min))
    for i, (r, c) in enumerate(dims):
        if r > n_rows or c > n_cols:
            raise MappingError(
                f"layer {i + 1} needs {r} rows × {c} columns; the array is {n_rows}x{n_cols}"
            )
    if sum(r for r, _ in dims) > n_rows:
        raise MappingError(
            f"the layers need {sum(r for r, _ in dims)} rows in all; the array has {n_rows}"
        )
    best: list = [math.inf, None]

    def col_sets(c: int) -> list[tuple[int, ...]]:
        if math.comb(n_cols, c) <= max_combinations:
            return list(itertools.combinations(range(n_cols), c))
        order = np.lexsort((np.arange(n_cols), d_hi.sum(axis=0), bad.sum(axis=0)))
        return [tuple(sorted(int(k) for k in order[:c]))]

    cols_of = {c: col_sets(c) for c in {c for _, c in dims}}

    def search(order: list[int], k: int, free: np.ndarray, cost: float, chosen: dict) -> None:
        if cost >= best[0]:
            return
        if k == len(order):
            best[0], best[1] = cost, dict(chosen)
            return
        li = order[k]
        r_need, c_need = dims[li]
        last = k == len(order) - 1
        for cols in cols_of[c_need]:
            cl = list(cols)
            ok = free & ~bad[:, cl].any(axis=1)
            if ok.sum() < r_need:
                continue
            hi_row = d_hi[:, cl].max(axis=1)
            lo_row = d_lo[:, cl].max(axis=1)
            cand = [int(r) for r in np.flatnonzero(ok)]
            cand.sort(key=lambda r: (hi_row[r] + lo_row[r], r))
            combos = (
                [tuple(cand[:r_need])]
                if last
                else itertools.islice(itertools.combinations(cand, r_need), max_combinations)
            )
            for rows in combos:
                rl = list(rows)
                c_layer = float(hi_row[rl].max() + lo_row[rl].max())
                chosen[li] = (tuple(sorted(rows)), cols)
                nxt = free.copy()
                nxt[rl] = False
                search(order, k + 1, nxt, cost + c_layer, chosen)
                del chosen[li]

    orders = list(itertools.permutations(range(len(dims))))[:24]
    for order in orders:
        search(list(order), 0, np.ones(n_rows, dtype=bool), 0.0, {})
        if best[0] == 0.0:
            break
    if best[1] is None:
        raise MappingError(_no_fit(dims, stuck, bad))
    slots = []
    for i in range(len(dims)):
        rows, cols = best[1][i]
        block = np.ix_(list(rows), list(cols))
        g_hi = float(min(g_max, MARGIN_HI * wmax[block].min()))
        g_lo = float(max(g_min, MARGIN_LO * wmin[block].max()))
        wr, wc = np.unravel_index(int(np.argmin(wmax[block])), (len(rows), len(cols)))
        weakest = (int(rows[wr]), int(cols[wc]))
        avoided = [(int(r), int(c)) for r, c in np.argwhere(bad) if r in rows or c in cols]
        why = (
            f"layer {i + 1}: rows {list(rows)}, columns {list(cols)}, no stuck or unusable cell "
            f"in the block"
            + (f" (avoids {_cells(avoided)} on these lines)" if avoided else "")
            + f"; window {g_lo * 1e6:.3g}–{g_hi * 1e6:.3g} µS"
            + (
                f", narrowed to the weakest cell {weakest} (G_max {wmax[weakest] * 1e6:.3g} µS)"
                if g_hi < g_max
                else ""
            )
        )
        slots.append(Slot(tuple(rows), tuple(cols), g_lo, g_hi, weakest, why))
    return slots


def _cells(cells: list[tuple[int, int]]) -> str:
    shown = ", ".join(f"({r}, {c})" for r, c in cells[:8])
    return shown + (f" and {len(cells) - 8} more" if len(cells) > 8 else "")


def _no_fit(dims: Sequence[tuple[int, int]], stuck: np.ndarray, bad: np.ndarray) -> str:
    """The one-line reason no placement avoids the excluded cells."""
    n_rows, n_cols = stuck.shape
    widest = max(range(len(dims)), key=lambda i: dims[i][1])
    r_need, c_need = dims[widest]
    clean = int(np.sum(~bad.any(axis=1))) if c_need == n_cols else None
    extra = int(bad.sum() - stuck.sum())
    what = f"{int(stuck.sum())} stuck cells" + (
        f" and {extra} cells whose window is too narrow" if extra else ""
    )
    detail = (
        f"; layer {widest + 1} needs {r_need} rows × all {n_cols} columns free of them and only "
        f"{clean} rows are"
        if clean is not None
        else ""
    )
    need = " + ".join(f"{r}×{c}" for r, c in dims)
    return (
        f"the network's layers ({need} cells, rows × columns) do not fit the {n_rows}x{n_cols} "
        f"array after excluding its {what} ({_cells([tuple(map(int, x)) for x in np.argwhere(bad)])})"
        f"{detail}"
    )
