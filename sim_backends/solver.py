"""Passive-crossbar circuit solver: nodal analysis of a resistive crossbar with line resistance.

Geometry (identical to badcrossbar 1.1.0 when only the left row ends and the bottom column ends
are connected)::

                 col_top[0]          col_top[1]                 (top ends of the column lines)
                     |                   |
                   r_col               r_col
                     |                   |
 row_left[0] -r_row- R(0,0) --r_row-- R(0,1) --r_row- ... - R(0,cols-1) -r_row- row_right[0]
                     |  device (0,0)     |  device (0,1)
                   C(0,0)              C(0,1)
                     |                   |
                   r_col               r_col
                     |                   |
 row_left[1] -r_row- R(1,0) --r_row-- R(1,1) ...
                     .                   .
                   C(rows-1,0)         C(rows-1,1)
                     |                   |
                   r_col               r_col
                     |                   |
                 col_bottom[0]       col_bottom[1]             (bottom ends: next to the LAST row)

* Row ``i`` (a word line) has one node ``R(i, j)`` at every crosspoint; column ``j`` (a bit line)
  has one node ``C(i, j)`` at every crosspoint; device ``(i, j)`` (conductance ``g[i, j]`` or a
  :data:`DeviceLaw`) joins ``R(i, j)`` to ``C(i, j)``: ``2·rows·cols`` nodes in all.
* Every line has ``n+1`` segments of the same resistance: one between each pair of adjacent
  crosspoints and one from each END to the nearest crosspoint (``r_row`` for rows, ``r_col``
  for columns). badcrossbar uses exactly this for the left ends of the word lines and the bottom
  ends of the bit lines (its right and top ends are open, i.e. :attr:`End.FLOAT` here).
* An end terminal is a voltage source (``DRIVE``: ``voltage``; ``GROUND`` and ``VGROUND``: 0 V)
  behind its output resistance (``r_source`` for ``DRIVE``/``GROUND``, ``r_sense`` for
  ``VGROUND``), in series with the end segment. ``FLOAT`` ends are open.

Zero resistances (exact, no tiny resistors):

* ``r_row == 0`` (or ``r_col == 0``) merges all nodes of each row (column) line into one node.
* An end whose series resistance (terminal + end segment) is 0 pins its node to the terminal
  voltage: the node is eliminated from the unknowns and its terminal current is obtained from
  Kirchhoff's current law at that node. A line cannot be pinned at both ends (that would be a
  zero-resistance loop with an undefined current split): :class:`ValueError`.
* With every resistance zero and all rows driven / all columns at (virtual) ground, there are no
  unknowns at all and the column currents are exactly ``V @ G``.

Solvability: every set of lines joined through non-zero device conductances must contain at least
one connected (non-``FLOAT``) end; a line set that floats entirely has no defined potential and
raises :class:`ValueError` naming the lines. Non-linear devices use Newton iteration on the nodal
equations; see :meth:`CrossbarCircuit.solve`.

Terminal currents close each line's current balance exactly: the ends of a line together carry
what its devices draw (see :meth:`_Topology.end_currents`), so the currents into the array from
all terminals sum to zero to rounding of the device currents, even across tiny end resistances.

Units: siemens, ohms, volts, amperes throughout.

Factorisation (chosen automatically, all exact direct methods; timings measured on the project
machine, see ``bench/solver.py``):

* arrays with line resistance on both line sets and at most :data:`BAND_MAX_FLOPS` banded work
  (about 36×36): banded Cholesky (LAPACK ``pbtrf``) with the crosspoints numbered along the
  shorter dimension (bandwidth ``2·min(rows, cols)``); ~4× faster than SuperLU at 10×10;
* tiny systems (≤ :data:`DENSE_SMALL_UNKNOWNS` unknowns) and systems with both line sets
  collapsed (≤ :data:`DENSE_MAX_UNKNOWNS`; their matrix is dense anyway): dense Cholesky/LU;
* everything else: SuperLU (``scipy.sparse.linalg.splu``), on a nested-dissection ordering
  computed from the crossbar geometry when no line is collapsed (~2.5× faster than SuperLU's own
  MMD ordering at 128×128), else on MMD(AᵀA+A).

Newton Jacobians with a negative dI/dV somewhere are not positive definite: they use LU (dense
or SuperLU with threshold pivoting) instead of Cholesky. Topologies (node numbering, orderings,
sparsity patterns) are cached per geometry, resistances and end modes, so repeated solves of the
same circuit with new conductances or voltages skip that work (:func:`clear_caches`).

Small LAPACK calls run with one BLAS thread (threadpoolctl, if installed): multithreaded OpenBLAS
is ~6× slower on such small banded matrices.
"""

from __future__ import annotations

import contextlib
import enum
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike
from scipy.linalg import lapack
from scipy.sparse.csgraph import connected_components

__all__ = [
    "BAND_MAX_FLOPS",
    "DENSE_MAX_UNKNOWNS",
    "DENSE_SMALL_UNKNOWNS",
    "ConvergenceError",
    "CrossbarCircuit",
    "DeviceLaw",
    "End",
    "LineEnds",
    "LinearSystem",
    "Solution",
    "clear_caches",
    "single_cell_bias",
]

#: Banded Cholesky is used while ``unknowns × bandwidth²`` stays below this (≈ 36×36 arrays;
#: measured crossover with nested-dissection SuperLU between 32×32 and 40×40).
BAND_MAX_FLOPS = 1.5e7
#: Systems that cannot use the band path are factorised densely up to this many unknowns...
DENSE_SMALL_UNKNOWNS = 100
#: ...or, when both line sets are collapsed (every row node coupled to every column node, so
#: sparse fill is total), up to this many (dense: 1.2 ms vs SuperLU 6 ms at 128+128 unknowns).
DENSE_MAX_UNKNOWNS = 2000
_ND_LEAF = 8  # nested dissection: sub-rectangles of at most this many crosspoints are leaves


class End(enum.IntEnum):
    """How one end of a line is connected."""

    FLOAT = 0  # line end left open
    DRIVE = 1  # voltage source `voltage` (V) through r_source
    VGROUND = (
        2  # transimpedance-amplifier input: 0 V through r_sense; its current is the measured one
    )
    GROUND = 3  # tied to 0 V through r_source


_FLOAT, _DRIVE, _VGROUND = int(End.FLOAT), int(End.DRIVE), int(End.VGROUND)


CURRENT_FLOOR = 1e-30
"""Absolute residual current (A) below which a node counts as converged: far below any
instrument's resolution; subnormal drives (1e-311 V) converge instead of needing 0 A."""


class ConvergenceError(RuntimeError):
    """Newton iteration for non-linear devices did not converge within ``max_iter``."""


@dataclass
class LineEnds:
    """The connection of one end of every line (all rows' left ends, say)."""

    mode: np.ndarray  # int array (n,) of End values, one per line
    voltage: np.ndarray  # float array (n,), V, used where mode == DRIVE

    def __post_init__(self) -> None:
        self.mode = np.asarray(self.mode, dtype=np.int64).reshape(-1)
        self.voltage = np.asarray(self.voltage, dtype=np.float64).reshape(-1)
        if self.voltage.size == 1 and self.mode.size != 1:
            self.voltage = np.full(self.mode.size, float(self.voltage[0]))
        if self.mode.shape != self.voltage.shape:
            raise ValueError(
                f"LineEnds: mode has {self.mode.size} entries but voltage has {self.voltage.size}"
            )
        _check_modes(self.mode, "LineEnds.mode")
        if not np.all(np.isfinite(self.voltage[self.mode == _DRIVE])):
            raise ValueError("LineEnds: DRIVE voltages must be finite")

    @classmethod
    def uniform(cls, n: int, mode: End, voltage: float = 0.0) -> LineEnds:
        """``n`` line ends all in ``mode`` (``voltage`` in V, used if ``mode`` is DRIVE)."""
        return cls(np.full(n, int(mode), dtype=np.int64), np.full(n, float(voltage)))

    @classmethod
    def driven(cls, voltages: ArrayLike) -> LineEnds:
        """Every line end DRIVE at the given voltages (V)."""
        v = np.asarray(voltages, dtype=np.float64).reshape(-1)
        return cls(np.full(v.size, _DRIVE, dtype=np.int64), v.copy())

    def applied(self) -> np.ndarray:
        """Terminal source voltage of each end (V): ``voltage`` where DRIVE, else 0."""
        return np.where(self.mode == _DRIVE, self.voltage, 0.0)


@dataclass
class Solution:
    """Node voltages and branch currents of one solved crossbar state."""

    v_row: np.ndarray  # (rows, cols) V, row-line node voltage at each crosspoint
    v_col: np.ndarray  # (rows, cols) V, column-line node voltage at each crosspoint
    i_device: np.ndarray  # (rows, cols) A, current through each device from row line to column line
    i_row_left: np.ndarray  # (rows,) A, current from the terminal INTO the array (0 if FLOAT)
    i_row_right: np.ndarray  # (rows,)
    i_col_bottom: np.ndarray  # (cols,)
    i_col_top: np.ndarray  # (cols,)
    iterations: int  # Newton iterations used (0 for linear)

    @property
    def column_currents(self) -> np.ndarray:
        """(cols,) A flowing OUT of each column's bottom end into its TIA (= ``-i_col_bottom``)."""
        return -self.i_col_bottom

    @property
    def total_terminal_current(self) -> float:
        """Sum of all terminal currents into the array (A); 0 by Kirchhoff's current law."""
        return float(
            self.i_row_left.sum()
            + self.i_row_right.sum()
            + self.i_col_bottom.sum()
            + self.i_col_top.sum()
        )


# A non-linear device law: given the voltage across every device (rows, cols) in V (row node minus
# column node), return (current A, dI/dV S), both (rows, cols). Linear devices: None -> I = G*V.
DeviceLaw = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _check_modes(mode: np.ndarray, name: str) -> None:
    if mode.size and (mode.min() < 0 or mode.max() > 3):
        raise ValueError(f"{name}: values must be End members (0..3), got {np.unique(mode)}")


def _modes(mode: ArrayLike | None, n: int, name: str) -> np.ndarray:
    if mode is None:
        return np.zeros(n, dtype=np.int64)
    m = np.asarray(mode, dtype=np.int64).reshape(-1)
    if m.size != n:
        raise ValueError(f"{name}: expected {n} end modes, got {m.size}")
    return m  # values are checked when a new topology is built (cache miss)


def _check_resistance(value: float, name: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite resistance >= 0 Ω, got {value}")
    return value


# -- BLAS threads -------------------------------------------------------------------------------
_BLAS_THREADS: list[tuple[Callable[[], int], Callable[[int], object]]] | None = None


def _blas_thread_setters() -> list[tuple[Callable[[], int], Callable[[int], object]]]:
    """(get, set) thread-count functions of every loaded BLAS (threadpoolctl; [] without it)."""
    global _BLAS_THREADS
    if _BLAS_THREADS is None:
        found = []
        try:
            from threadpoolctl import ThreadpoolController

            for lib in ThreadpoolController().lib_controllers:
                if lib.user_api != "blas":
                    continue
                try:  # direct C entry points of OpenBLAS: ~0.2 µs instead of ~5 µs a call
                    get = lib._get_symbol("openblas_get_num_threads")
                    put = lib._get_symbol("openblas_set_num_threads")
                    if get is None or put is None:
                        raise AttributeError
                    found.append((get, put))
                except Exception:
                    found.append((lib.get_num_threads, lib.set_num_threads))
        except Exception:  # threadpoolctl missing or failing: leave BLAS threading alone
            found = []
        _BLAS_THREADS = found
    return _BLAS_THREADS


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run small LAPACK factorisations with one BLAS thread.

    Multithreaded OpenBLAS is ~6× slower than one thread on the small banded/dense matrices of
    arrays up to ~36×36. The thread count is restored on exit (it is a process-wide setting: a
    BLAS call in another thread meanwhile may run single-threaded too).
    """
    libs = _blas_thread_setters()
    old = [get() for get, _ in libs]
    for _, put in libs:
        put(1)
    try:
        yield
    finally:
        for (_, put), n in zip(libs, old, strict=True):
            put(n)


# -- orderings ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _band_positions(rows: int, cols: int) -> np.ndarray:
    """Banded position of every node (given as R(i,j) = i·cols+j, C(i,j) = rows·cols + i·cols+j):
    crosspoints numbered along the shorter dimension, R then C at each, so the nodal matrix has
    bandwidth 2·min(rows, cols). Uncollapsed topologies number their nodes this way."""
    n = rows * cols
    ii, jj = np.divmod(np.arange(n), cols)
    cell = ii * cols + jj if cols <= rows else jj * rows + ii
    pos = np.concatenate([2 * cell, 2 * cell + 1])
    pos.flags.writeable = False
    return pos


def _halve(
    cut: np.ndarray,
    pos: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    chain: np.ndarray,
    digit: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One nested-dissection cut of the boxes of the nodes in ``cut``, at the middle line of
    their span ``[lo, hi)`` along ``pos`` (each node's row or column index): ``digit`` gets 1
    for the second half (0 for the first stays), 2 for ``chain`` nodes on the line, 3 for the
    separator. Returns the nodes' new ``lo``, ``hi`` and which nodes lie on the line."""
    m = (lo + hi) // 2
    first, second, on = cut & (pos < m), cut & (pos > m), cut & (pos == m)
    digit[second] = 1
    digit[on] = np.where(chain[on], 2, 3)
    return np.where(second, m + 1, lo), np.where(first, m, hi), on


@functools.lru_cache(maxsize=16)
def _nd_positions(rows: int, cols: int) -> np.ndarray:
    """Nested-dissection factor position of every node (numbering as in :func:`_band_positions`).

    The crosspoint rectangle is cut recursively across its longer side. A vertical cut at column
    ``m`` is separated by the row nodes R(·, m) alone (column m's own nodes then form a chain
    joined only to that separator, ordered just before it); a horizontal cut at row ``m`` by the
    column nodes C(m, ·). Each node's key collects one base-4 digit per level (0/1: first or
    second half, 2: chain, 3: separator); sorting by key gives the post-order.
    """
    n = rows * cols
    idx = np.arange(2 * n)
    is_c = idx >= n
    ii, jj = np.divmod(idx % n, cols)
    i0, i1 = np.zeros(2 * n, dtype=np.int64), np.full(2 * n, rows)
    j0, j1 = np.zeros(2 * n, dtype=np.int64), np.full(2 * n, cols)
    active = np.ones(2 * n, dtype=bool)
    key = np.zeros(2 * n, dtype=np.int64)
    for _ in range(30):  # 4**30 < 2**63; each level halves the longer side
        h, w = i1 - i0, j1 - j0
        active &= h * w > _ND_LEAF
        if not active.any():
            break
        digit = np.zeros(2 * n, dtype=np.int64)
        j0, j1, mid = _halve(active & (w >= h), jj, j0, j1, is_c, digit)  # vertical cuts
        i0, i1, midh = _halve(active & (w < h), ii, i0, i1, ~is_c, digit)  # horizontal cuts
        active &= ~(mid | midh)
        key = key * 4 + digit
    order = np.lexsort((2 * (idx % n) + is_c, key))
    pos = np.empty(2 * n, dtype=np.int64)
    pos[order] = np.arange(2 * n)
    pos.flags.writeable = False
    return pos


# -- factorisations -----------------------------------------------------------------------------
class _Factor:
    """A factorised square system; ``solve(rhs)`` with rhs (n, k) in free-node order."""

    def __init__(
        self, kind: str, f: object, pos: np.ndarray | None, order: np.ndarray | None = None
    ) -> None:
        self.kind, self.f, self.pos, self.order = kind, f, pos, order

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        if self.kind == "empty":
            return np.zeros(rhs.shape)
        b = rhs if self.order is None else rhs[self.order]
        if self.kind == "splu":
            x = self.f.solve(np.asfortranarray(b))  # type: ignore[attr-defined]
        elif self.kind == "band":  # level-2 loops: BLAS threads make no difference here
            x, _ = lapack.dpbtrs(self.f, b, lower=0)
        else:
            with _one_blas_thread():
                if self.kind == "chol":
                    x = sla.cho_solve(self.f, b, check_finite=False)
                else:
                    x = sla.lu_solve(self.f, b, check_finite=False)
        return x if self.pos is None else x[self.pos]


_SINGULAR = (
    "singular nodal matrix: some node has no conductive path to a connected end "
    "(zero conductances or dI/dV isolate it)"
)


class _Assembler:
    """Builds and factorises the free-node matrix for one topology and one method.

    Entries are precomputed once as a static part (line segments, finite ends) plus device
    entries ``sign · g[k]`` at fixed slots, so a new conductance state costs one bincount.
    """

    def __init__(self, topo: _Topology, method: str) -> None:
        self.method = method
        n = topo.n_free
        si, sj, sv = topo.st_fi, topo.st_fj, topo.st_v
        di, dj, dk, ds = topo.dev_i, topo.dev_j, topo.dev_k, topo.dev_s
        self.pos: np.ndarray | None = None
        if method == "band":
            # uncollapsed lines: the node numbering is already banded (free index = node index)
            psi, psj, pdi, pdj = si, sj, di, dj
            b = int(max(np.max(psj - psi, initial=0), np.max(pdj - pdi, initial=0)))
            self.bw = b
            ms, md = psi <= psj, pdi <= pdj  # upper triangle, LAPACK 'U' band storage
            size = (b + 1) * n
            self.size = size
            self.static = np.bincount(
                (b + psi[ms] - psj[ms]) * n + psj[ms], weights=sv[ms], minlength=size
            )
            self.slot = (b + pdi[md] - pdj[md]) * n + pdj[md]
            self.dk, self.ds = dk[md], ds[md]
        elif method in ("dense", "dense_lu"):
            self.size = n * n
            self.static = np.bincount(si * n + sj, weights=sv, minlength=self.size)
            self.slot, self.dk, self.ds = di * n + dj, dk, ds
        elif method in ("splu", "splu_lu"):
            nd = not (topo.row_collapsed or topo.col_collapsed)
            self.permc = "NATURAL" if nd else "MMD_AT_PLUS_A"
            if nd:  # map the nested-dissection order onto the banded node numbering
                pos = np.empty(n, dtype=np.int64)
                pos[_band_positions(topo.rows, topo.cols)] = _nd_positions(topo.rows, topo.cols)
                self.pos = pos
            else:
                pos = np.arange(n)
            key = np.concatenate([pos[sj] * n + pos[si], pos[dj] * n + pos[di]])
            uniq, inv = np.unique(key, return_inverse=True)
            self.size = uniq.size
            self.indices = (uniq % n).astype(np.int32)
            self.indptr = np.concatenate(
                [[0], np.cumsum(np.bincount(uniq // n, minlength=n))]
            ).astype(np.int32)
            self.static = np.bincount(inv[: si.size], weights=sv, minlength=self.size)
            self.slot, self.dk, self.ds = inv[si.size :], dk, ds
        elif method != "empty":
            raise AssertionError(method)
        self.n = n
        self.order = None if self.pos is None else np.argsort(self.pos)

    def values(self, gd: np.ndarray) -> np.ndarray:
        return self.static + np.bincount(
            self.slot, weights=self.ds * gd[self.dk], minlength=self.size
        )

    def factor(self, gd: np.ndarray) -> _Factor:
        m, n = self.method, self.n
        if m == "empty":
            return _Factor("empty", None, None)
        vals = self.values(gd)
        try:
            if m == "band":
                with _one_blas_thread():
                    c, info = lapack.dpbtrf(vals.reshape(self.bw + 1, n), lower=0)
                if info != 0:
                    raise ValueError(f"{_SINGULAR} (banded Cholesky pivot {info} not positive)")
                return _Factor("band", c, self.pos, self.order)
            if m == "dense":
                with _one_blas_thread():
                    return _Factor(
                        "chol", sla.cho_factor(vals.reshape(n, n), check_finite=False), None
                    )
            if m == "dense_lu":
                with _one_blas_thread():
                    lu = sla.lu_factor(vals.reshape(n, n), check_finite=False)
                if np.any(np.diag(lu[0]) == 0):
                    raise ValueError(_SINGULAR)
                return _Factor("lu", lu, None)
            a = sp.csc_matrix((vals, self.indices, self.indptr), shape=(n, n))
            opts = {"SymmetricMode": True, "DiagPivotThresh": 0.0 if m == "splu" else 0.1}
            f = spla.splu(a, permc_spec=self.permc, options=opts)
            return _Factor("splu", f, self.pos, self.order)
        except (np.linalg.LinAlgError, RuntimeError) as exc:  # not positive definite / singular
            raise ValueError(f"{_SINGULAR} ({exc})") from exc


class _Topology:
    """Node numbering, end connections and fixed (line/end) conductances of one configuration.

    Ends are numbered in one flat array of length ``E = 2·rows + 2·cols``:
    ``[row_left (rows), row_right (rows), col_bottom (cols), col_top (cols)]``. Instances are
    cached per configuration (:func:`_topology_cached`) and must not be mutated.
    """

    def __init__(
        self,
        rows: int,
        cols: int,
        r_row: float,
        r_col: float,
        r_source: float,
        r_sense: float,
        modes: np.ndarray,
    ) -> None:
        self.rows, self.cols = rows, cols
        for value, name in ((r_row, "r_row"), (r_col, "r_col"), (r_source, "r_source")):
            _check_resistance(value, name)  # again: the circuit's fields may have been reassigned
        _check_resistance(r_sense, "r_sense")
        n = rows * cols
        self.row_collapsed = r_row == 0.0
        self.col_collapsed = r_col == 0.0
        ii, jj = np.divmod(np.arange(n), cols)
        n_rn = rows if self.row_collapsed else n
        n_cn = cols if self.col_collapsed else n
        self.n_nodes = n_rn + n_cn
        if self.row_collapsed or self.col_collapsed:
            self.row_node = ii if self.row_collapsed else np.arange(n)
            self.col_node = n_rn + (jj if self.col_collapsed else np.arange(n))
        else:  # number the nodes in banded order (see _band_positions)
            bp = _band_positions(rows, cols)
            self.row_node, self.col_node = bp[:n], bp[n:]

        # Ends: node each end attaches to, its series resistance, and the opposite end of its line.
        rr, cc = np.arange(rows), np.arange(cols)
        rn = self.row_node.reshape(rows, cols)
        cn = self.col_node.reshape(rows, cols)
        self.end_node = np.concatenate([rn[:, 0], rn[:, -1], cn[-1, :], cn[0, :]])
        # Per line (rows then columns): its two ends (left/bottom = a, right/top = b).
        self.line_end_a = np.concatenate([rr, 2 * rows + cc])
        self.line_end_b = np.concatenate([rr + rows, 2 * rows + cols + cc])
        self.n_ends = 2 * (rows + cols)
        _check_modes(modes, "end modes")
        self.modes = modes
        seg = np.concatenate([np.full(2 * rows, r_row), np.full(2 * cols, r_col)])
        term = np.where(modes == _VGROUND, r_sense, r_source)
        r_end = seg + term
        active = modes != _FLOAT
        self.pinned_end = active & (r_end == 0.0)
        self.any_pinned = bool(self.pinned_end.any())
        self.finite_end = active & (r_end > 0.0)
        self.end_g = np.zeros(self.n_ends)
        self.end_g[self.finite_end] = 1.0 / r_end[self.finite_end]
        self.drive_ends = np.flatnonzero(modes == _DRIVE)
        left = self.drive_ends < rows
        self.drive_left_rows = self.drive_ends[left]  # DRIVE row-left ends (row indices)...
        self.drive_left_cols = np.flatnonzero(left)  # ...and their columns in transfer_matrix()
        ga, gb = self.end_g[self.line_end_a], self.end_g[self.line_end_b]
        pa, pb = self.pinned_end[self.line_end_a], self.pinned_end[self.line_end_b]
        gsum = np.where(ga + gb > 0, ga + gb, 1.0)
        self.line_w_a = np.where(pa, 1.0, np.where(pb, 0.0, ga / gsum))
        self.line_w_b = np.where(pb, 1.0, np.where(pa, 0.0, gb / gsum))
        self.not_drive = modes != _DRIVE

        # Pinned nodes (only possible on collapsed lines).
        pe = np.flatnonzero(self.pinned_end)
        pn = self.end_node[pe]
        if np.unique(pn).size != pn.size:
            both = pe[np.bincount(pn, minlength=self.n_nodes)[pn] > 1]
            raise ValueError(
                "zero-resistance loop: these line ends are tied to sources with zero total "
                f"resistance at both ends of their line ({_end_names(both, rows, cols)}); give "
                "r_source/r_sense or the line resistance a non-zero value, or leave one end FLOAT"
            )
        self.node_pin_end = np.full(self.n_nodes, -1)
        self.node_pin_end[pn] = pe
        free = self.node_pin_end < 0
        self.free_nodes = np.flatnonzero(free)
        self.pinned_nodes = pn
        self.n_free = self.free_nodes.size
        self.fidx = np.full(self.n_nodes, -1)
        self.fidx[self.free_nodes] = np.arange(self.n_free)
        self.line_active = np.concatenate(
            [
                active[:rows] | active[rows : 2 * rows],
                active[2 * rows : 2 * rows + cols] | active[-cols:],
            ]
        )

        # Static conductance entries (line segments + finite ends), full node numbering.
        si, sj, sv = [], [], []
        for collapsed, a, b, r in (
            (self.row_collapsed, rn[:, :-1].ravel(), rn[:, 1:].ravel(), r_row),
            (self.col_collapsed, cn[:-1, :].ravel(), cn[1:, :].ravel(), r_col),
        ):
            if not collapsed and a.size:
                g = np.full(a.size, 1.0 / r)
                si += [a, b, a, b]
                sj += [a, b, b, a]
                sv += [g, g, -g, -g]
        fe = np.flatnonzero(self.finite_end)
        si.append(self.end_node[fe])
        sj.append(self.end_node[fe])
        sv.append(self.end_g[fe])
        st_i, st_j, st_v = np.concatenate(si), np.concatenate(sj), np.concatenate(sv)
        # Pinned nodes are collapsed lines (no segments); their finite ends touch only their own
        # (dropped) row, so every kept static entry lies between free nodes.
        keep = free[st_i] & free[st_j]
        self.st_fi, self.st_fj, self.st_v = self.fidx[st_i[keep]], self.fidx[st_j[keep]], st_v[keep]
        # Injection of finite ends into free nodes: rhs[fidx[node], e] = end_g[e] · u[e].
        fe_free = fe[free[self.end_node[fe]]]
        inj_i, inj_e, inj_v = self.fidx[self.end_node[fe_free]], fe_free, self.end_g[fe_free]

        # Device k joins a = row_node[k] and b = col_node[k]: entries in free numbering.
        a, b = self.row_node, self.col_node
        fa, fb = free[a], free[b]
        kff = np.flatnonzero(fa & fb)
        ka = np.flatnonzero(fa & ~fb)  # a free, b pinned
        kb = np.flatnonzero(fb & ~fa)  # b free, a pinned
        self.dev_fa, self.dev_fb = self.fidx[a], self.fidx[b]
        ia, ib = self.dev_fa, self.dev_fb
        self.dev_i = np.concatenate([ia[kff], ib[kff], ia[kff], ib[kff], ia[ka], ib[kb]])
        self.dev_j = np.concatenate([ia[kff], ib[kff], ib[kff], ia[kff], ia[ka], ib[kb]])
        self.dev_k = np.concatenate([kff, kff, kff, kff, ka, kb])
        one = np.ones(kff.size)
        self.dev_s = np.concatenate([one, one, -one, -one, np.ones(ka.size + kb.size)])
        # A device from free node a to pinned node b (pinned by end e) injects g·u_e into a.
        self.kinj_i = np.concatenate([ia[ka], ib[kb]])
        self.kinj_e = np.concatenate([self.node_pin_end[b[ka]], self.node_pin_end[a[kb]]])
        self.kinj_k = np.concatenate([ka, kb])
        self.k_static = sp.csr_matrix((inj_v, (inj_i, inj_e)), shape=(self.n_free, self.n_ends))
        self.k_dense = self.k_static.toarray() if self.n_free * self.n_ends <= 250_000 else None
        self.banded = not (self.row_collapsed or self.col_collapsed)
        bw = 2 * min(rows, cols)
        self.band_flops = self.n_free * bw * bw
        self._assemblers: dict[str, _Assembler] = {}
        self._static_csr: sp.csr_matrix | None = None

    def method(self, spd: bool) -> str:
        """Factorisation method for this topology (``spd``: matrix known positive definite)."""
        if self.n_free == 0:
            return "empty"
        if spd and self.banded and self.band_flops <= BAND_MAX_FLOPS:
            return "band"
        both_collapsed = self.row_collapsed and self.col_collapsed
        if self.n_free <= DENSE_SMALL_UNKNOWNS or (
            both_collapsed and self.n_free <= DENSE_MAX_UNKNOWNS
        ):
            return "dense" if spd else "dense_lu"
        return "splu" if spd else "splu_lu"

    def factor(self, gd: np.ndarray, spd: bool = True) -> _Factor:
        m = self.method(spd)
        if m not in self._assemblers:
            self._assemblers[m] = _Assembler(self, m)
        return self._assemblers[m].factor(gd)

    def injection(self, gd: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """K (n_free, E): right-hand side = K @ u for end voltages u (E, batch)."""
        if not self.kinj_k.size:
            return self.k_dense if self.k_dense is not None else self.k_static
        extra = sp.csr_matrix(
            (gd[self.kinj_k], (self.kinj_i, self.kinj_e)), shape=(self.n_free, self.n_ends)
        )
        if self.k_dense is not None:
            return self.k_dense + extra.toarray()
        return self.k_static + extra

    def static_csr(self) -> sp.csr_matrix:
        """Line-segment and finite-end conductances between free nodes (sparse, free x free)."""
        if self._static_csr is None:
            self._static_csr = sp.csr_matrix(
                (self.st_v, (self.st_fi, self.st_fj)), shape=(self.n_free, self.n_free)
            )
        return self._static_csr

    def check_anchored(self, gd: np.ndarray) -> None:
        """Raise ValueError if some set of lines joined by non-zero devices has no connected end."""
        if self.line_active.all():
            return
        rows, cols = self.rows, self.cols
        nz = gd != 0
        if nz.all():
            if self.line_active.any():
                return
            comps = np.zeros(rows + cols, dtype=np.int64)
        else:
            k = np.flatnonzero(nz)
            ii, jj = np.divmod(k, cols)
            graph = sp.coo_matrix(
                (np.ones(k.size), (ii, rows + jj)), shape=(rows + cols, rows + cols)
            )
            _, comps = connected_components(graph, directed=False)
        anchored = np.bincount(comps, weights=self.line_active.astype(float)) > 0
        bad = ~anchored[comps]
        if bad.any():
            names = [f"row {i}" for i in np.flatnonzero(bad[:rows])]
            names += [f"col {j}" for j in np.flatnonzero(bad[rows:])]
            shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
            raise ValueError(
                "floating lines: these lines are connected (through non-zero devices) to no "
                f"non-FLOAT end, so their potential is undefined: {shown}"
            )

    def node_voltages(self, v_f: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Full node voltages (n_nodes, batch) from free-node solution and end voltages (E, batch)."""
        if not self.any_pinned:
            return v_f
        v = np.empty((self.n_nodes, u.shape[1]))
        v[self.free_nodes] = v_f
        v[self.pinned_nodes] = u[self.node_pin_end[self.pinned_nodes]]
        return v

    def end_currents(self, v: np.ndarray, u: np.ndarray, i_dev: np.ndarray) -> np.ndarray:
        """Current from every terminal into the array (E, batch), A.

        Each line's ends together carry exactly what the line's devices draw (KCL over the whole
        line, its internal segments cancel); device currents are accurate to rounding because
        they come from large voltage differences, whereas ``g_end·(u − v_node)`` loses digits
        when the drop across a small end resistance is tiny. So: finite ends start from
        ``g_end·(u − v_node)`` and the line's KCL mismatch is shared between its ends in
        proportion to their conductances (the correction of the line potential that closes the
        balance); a pinned end (zero resistance) takes all of it, i.e. its current is the line's
        device current minus the other end's. Floating ends carry 0.
        """
        rows, cols = self.rows, self.cols
        i_end = self.end_g[:, None] * (u - v[self.end_node])
        d = i_dev.reshape(rows, cols, -1)
        line_out = np.concatenate([d.sum(axis=1), -d.sum(axis=0)])  # (rows+cols, batch)
        ea, eb = self.line_end_a, self.line_end_b
        mismatch = line_out - i_end[ea] - i_end[eb]
        i_end[ea] += self.line_w_a[:, None] * mismatch
        i_end[eb] += self.line_w_b[:, None] * mismatch
        return i_end

    def column_currents(self, v: np.ndarray, u: np.ndarray, i_dev: np.ndarray) -> np.ndarray:
        """(cols, batch) A out of the bottom ends: ``-i_col_bottom`` of :meth:`end_currents`."""
        rows, cols = self.rows, self.cols
        lo, hi = 2 * rows, 2 * rows + cols
        g = self.end_g
        i_b = g[lo:hi, None] * (u[lo:hi] - v[self.end_node[lo:hi]])
        i_t = g[hi:, None] * (u[hi:] - v[self.end_node[hi:]])
        col_in = i_dev.reshape(rows, cols, -1).sum(axis=0)  # = −(current leaving the column)
        return self.line_w_a[rows:, None] * (col_in + i_b + i_t) - i_b


@functools.lru_cache(maxsize=8)
def _topology_cached(
    rows: int, cols: int, resist: tuple[float, float, float, float], modes: bytes
) -> _Topology:
    m = np.frombuffer(modes, dtype=np.int64)
    return _Topology(rows, cols, *resist, m)


def clear_caches() -> None:
    """Forget cached topologies and orderings (they are reused across calls with the same
    geometry, resistances and end modes; benchmarks clear them to time cold calls)."""
    _topology_cached.cache_clear()
    _band_positions.cache_clear()
    _nd_positions.cache_clear()


def _end_names(ends: np.ndarray, rows: int, cols: int) -> str:
    out = []
    for e in ends:
        if e < rows:
            out.append(f"row {e} left")
        elif e < 2 * rows:
            out.append(f"row {e - rows} right")
        elif e < 2 * rows + cols:
            out.append(f"col {e - 2 * rows} bottom")
        else:
            out.append(f"col {e - 2 * rows - cols} top")
    return ", ".join(out)


class LinearSystem:
    """A factorised linear crossbar (one conductance state, fixed end modes); reuse for many input
    vectors.

    Made by :meth:`CrossbarCircuit.factorize`. :meth:`solve_batch` uses the one factorisation for
    all vectors: with more vectors than DRIVE ends it solves once for unit voltages at every DRIVE
    end (one matrix right-hand side) and applies the resulting transfer matrix to all vectors
    (superposition, exact up to rounding); otherwise it solves the vectors themselves as one
    matrix right-hand side.
    """

    def __init__(self, topo: _Topology, gd: np.ndarray) -> None:
        self._topo = topo
        self._gd = gd
        self._factor = topo.factor(gd, spd=True)
        self._k = topo.injection(gd)
        self._transfer: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return self._topo.rows

    @property
    def cols(self) -> int:
        return self._topo.cols

    @property
    def n_unknowns(self) -> int:
        """Number of unknown node voltages in the factorised system."""
        return self._topo.n_free

    @property
    def method(self) -> str:
        """Factorisation used: ``"band"``, ``"dense"``, ``"splu"`` or ``"empty"`` (no unknowns)."""
        return self._topo.method(True)

    def _end_voltages(
        self,
        row_left_v: ArrayLike,
        col_bottom_v: ArrayLike | None,
        row_right_v: ArrayLike | None,
        col_top_v: ArrayLike | None,
    ) -> tuple[np.ndarray, bool]:
        """End-voltage matrix (E, batch) — zero except at DRIVE ends — and whether input was 1-D."""
        topo = self._topo
        rows, cols = topo.rows, topo.cols
        rl = np.asarray(row_left_v, dtype=np.float64)
        single = rl.ndim == 1
        if rl.ndim == 1:
            rl = rl[None, :]
        if rl.ndim != 2 or rl.shape[1] != rows:
            raise ValueError(f"row_left_v: expected shape (batch, {rows}), got {rl.shape}")
        batch = rl.shape[0]
        u = np.zeros((topo.n_ends, batch))
        u[:rows] = rl.T
        for arr, lo, n, name in (
            (row_right_v, rows, rows, "row_right_v"),
            (col_bottom_v, 2 * rows, cols, "col_bottom_v"),
            (col_top_v, 2 * rows + cols, cols, "col_top_v"),
        ):
            if arr is None:
                continue
            a = np.asarray(arr, dtype=np.float64)
            if a.shape not in ((n,), (batch, n)):
                raise ValueError(f"{name}: expected shape ({n},) or ({batch}, {n}), got {a.shape}")
            u[lo : lo + n] = a.T if a.ndim == 2 else a[:, None]
        u[topo.not_drive] = 0.0
        if not np.isfinite(u).all():
            raise ValueError("DRIVE voltages must be finite")
        return u, single

    def _solve_nodes(self, u: np.ndarray) -> np.ndarray:
        return self._topo.node_voltages(self._factor.solve(self._k @ u), u)

    def transfer_matrix(self) -> np.ndarray:
        """(cols, n_drive) A/V: column currents per volt at each DRIVE end (end order: row_left,
        row_right, col_bottom, col_top)."""
        if self._transfer is None:
            d = self._topo.drive_ends
            u = np.zeros((self._topo.n_ends, d.size))
            u[d, np.arange(d.size)] = 1.0
            k = self._k[:, d]  # = K @ u
            self._transfer = self._column_currents(u, k if isinstance(k, np.ndarray) else k @ u[d])
        return self._transfer

    def _column_currents(self, u: np.ndarray, rhs: np.ndarray | None = None) -> np.ndarray:
        topo = self._topo
        if rhs is None:
            v = self._solve_nodes(u)
        else:
            v = topo.node_voltages(self._factor.solve(rhs), u)
        i_dev = self._gd[:, None] * (v[topo.row_node] - v[topo.col_node])
        return topo.column_currents(v, u, i_dev)

    def solve_batch(
        self,
        row_left_v: np.ndarray,
        col_bottom_v: np.ndarray | None = None,
        row_right_v: np.ndarray | None = None,
        col_top_v: np.ndarray | None = None,
        *,
        full: bool = False,
    ) -> np.ndarray | list[Solution]:
        """Solve many input vectors with the one factorisation.

        ``row_left_v``: (batch, rows) V at the row-left ends (used where those ends are DRIVE,
        ignored elsewhere); the other arrays likewise, each (batch, n) or (n,) for every vector,
        None for 0 V. A 1-D ``row_left_v`` is a single vector. Returns the column currents
        (batch, cols) A flowing out of the bottom ends into the TIAs (``(cols,)`` for 1-D
        input), or a list of one :class:`Solution` per vector if ``full``.
        """
        topo = self._topo
        if not full and row_right_v is None and col_bottom_v is None and col_top_v is None:
            # common MVM call: only the row-left voltages vary (other DRIVE ends are at 0 V)
            rl = np.asarray(row_left_v, dtype=np.float64)
            if rl.ndim in (1, 2) and rl.shape[-1] == topo.rows:
                rl2 = rl.reshape(-1, topo.rows)
                if rl2.shape[0] > topo.drive_ends.size:
                    sel = topo.drive_left_rows
                    vd = rl2[:, sel]
                    if not np.isfinite(vd).all():
                        raise ValueError("DRIVE voltages must be finite")
                    out = vd @ self.transfer_matrix()[:, topo.drive_left_cols].T
                    return out[0] if rl.ndim == 1 else out
        u, single = self._end_voltages(row_left_v, col_bottom_v, row_right_v, col_top_v)
        if not full:
            d = topo.drive_ends
            if u.shape[1] > d.size:
                out = u[d].T @ self.transfer_matrix().T
            else:
                out = self._column_currents(u).T
            return out[0] if single else out
        v = self._solve_nodes(u)
        i_dev = self._gd[:, None] * (v[topo.row_node] - v[topo.col_node])
        return _solutions(topo, v, i_dev, topo.end_currents(v, u, i_dev), 0)


def _solutions(
    topo: _Topology, v: np.ndarray, i_dev: np.ndarray, i_end: np.ndarray, iterations: int
) -> list[Solution]:
    rows, cols = topo.rows, topo.cols
    shape = (rows, cols, -1)
    vr = v[topo.row_node].reshape(shape)
    vc = v[topo.col_node].reshape(shape)
    idv = i_dev.reshape(shape)
    r2 = 2 * rows
    return [
        Solution(
            v_row=vr[:, :, b].copy(),
            v_col=vc[:, :, b].copy(),
            i_device=idv[:, :, b].copy(),
            i_row_left=i_end[:rows, b].copy(),
            i_row_right=i_end[rows:r2, b].copy(),
            i_col_bottom=i_end[r2 : r2 + cols, b].copy(),
            i_col_top=i_end[r2 + cols :, b].copy(),
            iterations=iterations,
        )
        for b in range(v.shape[1])
    ]


@dataclass
class CrossbarCircuit:
    """A passive ``rows × cols`` crossbar with uniform line resistances (geometry: module
    docstring; badcrossbar's ``r_i_word_line``/``r_i_bit_line`` are ``r_row``/``r_col``)."""

    rows: int
    cols: int
    r_row: float = 0.0  # Ω, each row segment between adjacent crosspoints and at each row end
    r_col: float = 0.0  # Ω, each column segment; bottom end next to row rows-1, top to row 0
    r_source: float = 0.0  # Ω, output resistance of DRIVE/GROUND ends
    r_sense: float = 0.0  # Ω, input resistance of VGROUND ends

    def __post_init__(self) -> None:
        if int(self.rows) < 1 or int(self.cols) < 1:
            raise ValueError(f"crossbar needs rows, cols >= 1, got {self.rows}×{self.cols}")
        self.rows, self.cols = int(self.rows), int(self.cols)
        self.r_row = _check_resistance(self.r_row, "r_row")
        self.r_col = _check_resistance(self.r_col, "r_col")
        self.r_source = _check_resistance(self.r_source, "r_source")
        self.r_sense = _check_resistance(self.r_sense, "r_sense")

    def _topology(self, modes: np.ndarray) -> _Topology:
        return _topology_cached(
            self.rows,
            self.cols,
            (self.r_row, self.r_col, self.r_source, self.r_sense),
            np.ascontiguousarray(modes, dtype=np.int64).tobytes(),
        )

    def _conductance(self, g: ArrayLike) -> np.ndarray:
        gd = np.asarray(g, dtype=np.float64)
        if gd.shape != (self.rows, self.cols):
            raise ValueError(f"g must have shape {(self.rows, self.cols)}, got {gd.shape}")
        if not (gd.min() >= 0 and np.isfinite(gd.max())):  # also False for NaN
            raise ValueError("g must be finite conductances >= 0 S")
        return gd.ravel()

    def factorize(
        self,
        g: np.ndarray,
        row_left_mode: np.ndarray,
        col_bottom_mode: np.ndarray,
        row_right_mode: np.ndarray | None = None,
        col_top_mode: np.ndarray | None = None,
    ) -> LinearSystem:
        """Factorise the linear crossbar for conductances ``g`` (rows, cols) S (≥ 0) and fixed end
        modes (int arrays of :class:`End`; None: all FLOAT).

        Raises ValueError for a line set that floats entirely or a zero-resistance loop.
        """
        r, c = self.rows, self.cols
        modes = np.concatenate(
            [
                _modes(row_left_mode, r, "row_left_mode"),
                _modes(row_right_mode, r, "row_right_mode"),
                _modes(col_bottom_mode, c, "col_bottom_mode"),
                _modes(col_top_mode, c, "col_top_mode"),
            ]
        )
        gd = self._conductance(g)
        topo = self._topology(modes)
        topo.check_anchored(gd)
        return LinearSystem(topo, gd)

    def solve(
        self,
        g: np.ndarray,
        row_left: LineEnds,
        col_bottom: LineEnds,
        row_right: LineEnds | None = None,
        col_top: LineEnds | None = None,
        device: DeviceLaw | None = None,
        *,
        tol: float = 1e-12,
        max_iter: int = 50,
    ) -> Solution:
        """Solve the crossbar for one set of end connections (None: all FLOAT).

        ``g``: (rows, cols) S ≥ 0, the device conductances when ``device`` is None (I = G·V).
        With a ``device`` law, ``g`` is only checked for its shape; the currents come from the
        law. Newton iteration then starts from the linear solution with G = dI/dV at 0 V and
        stops when every node's residual current (KCL mismatch) is at most ``tol`` × the largest
        branch current (device or terminal) plus a rounding bound (16 ε × the sum of the
        magnitudes of the currents meeting at that node) plus an absolute floor of
        :data:`CURRENT_FLOOR` (1e-30 A, far below any instrument; it lets subnormal drives such
        as 1e-311 V converge instead of asking for a residual of exactly 0 A). Steps are halved (up to 30 times)
        while they do not lower the residual. Raises :class:`ConvergenceError` after
        ``max_iter`` iterations without convergence, ValueError for a line set that floats
        entirely or a zero-resistance loop.
        """
        r, c = self.rows, self.cols
        if row_right is None:
            row_right = LineEnds.uniform(r, End.FLOAT)
        if col_top is None:
            col_top = LineEnds.uniform(c, End.FLOAT)
        for ends, n, name in (
            (row_left, r, "row_left"),
            (row_right, r, "row_right"),
            (col_bottom, c, "col_bottom"),
            (col_top, c, "col_top"),
        ):
            if ends.mode.size != n:
                raise ValueError(f"{name}: expected {n} line ends, got {ends.mode.size}")
        modes = np.concatenate([row_left.mode, row_right.mode, col_bottom.mode, col_top.mode])
        u = np.concatenate(
            [row_left.applied(), row_right.applied(), col_bottom.applied(), col_top.applied()]
        )[:, None]
        topo = self._topology(modes)
        if device is None:
            gd = self._conductance(g)
            topo.check_anchored(gd)
            system = LinearSystem(topo, gd)
            v = system._solve_nodes(u)
            i_dev = gd[:, None] * (v[topo.row_node] - v[topo.col_node])
            return _solutions(topo, v, i_dev, topo.end_currents(v, u, i_dev), 0)[0]
        if np.shape(g) != (r, c):
            raise ValueError(f"g must have shape {(r, c)}, got {np.shape(g)}")
        return self._newton(topo, u, device, tol, max_iter)

    # -- non-linear devices ------------------------------------------------------------------------
    def _law(self, device: DeviceLaw, vd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i, di = device(vd.reshape(self.rows, self.cols))
        i = np.asarray(i, dtype=np.float64)
        di = np.asarray(di, dtype=np.float64)
        if i.shape != (self.rows, self.cols) or di.shape != (self.rows, self.cols):
            raise ValueError(
                f"device law must return two arrays of shape {(self.rows, self.cols)}, "
                f"got {i.shape} and {di.shape}"
            )
        if not (np.isfinite(i).all() and np.isfinite(di).all()):
            raise ConvergenceError("device law returned a non-finite current or dI/dV")
        return i.ravel(), di.ravel()

    def _newton(
        self, topo: _Topology, u: np.ndarray, device: DeviceLaw, tol: float, max_iter: int
    ) -> Solution:
        _, g0 = self._law(device, np.zeros(self.rows * self.cols))
        topo.check_anchored(g0)
        u0 = u[:, 0]
        lin_factor = topo.factor(g0, spd=bool((g0 >= 0).all()))
        v_f = lin_factor.solve(topo.injection(g0) @ u)[:, 0]
        a_static = topo.static_csr()
        abs_static = abs(a_static)
        b_static = topo.k_static @ u0
        abs_b = np.abs(b_static)
        v_full = np.zeros(topo.n_nodes)
        if topo.any_pinned:
            v_full[topo.pinned_nodes] = u0[topo.node_pin_end[topo.pinned_nodes]]
        fa, fb = topo.dev_fa, topo.dev_fb
        ma, mb = fa >= 0, fb >= 0
        fa, fb = fa[ma], fb[mb]
        nf = topo.n_free
        eps = np.finfo(float).eps

        def residual(vf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            """Node residual currents (A), device I and dI/dV, and the tolerance per node (A)."""
            v = v_full.copy()
            v[topo.free_nodes] = vf
            i_dev, di = self._law(device, v[topo.row_node] - v[topo.col_node])
            r = a_static @ vf - b_static
            r += np.bincount(fa, weights=i_dev[ma], minlength=nf)
            r -= np.bincount(fb, weights=i_dev[mb], minlength=nf)
            ai = np.abs(i_dev)
            terms = abs_static @ np.abs(vf) + abs_b
            terms += np.bincount(fa, weights=ai[ma], minlength=nf)
            terms += np.bincount(fb, weights=ai[mb], minlength=nf)
            i_end = topo.end_g * (u0 - v[topo.end_node])
            scale = max(np.max(ai, initial=0.0), np.max(np.abs(i_end), initial=0.0))
            return r, i_dev, di, tol * scale + 16 * eps * terms + CURRENT_FLOOR

        r, i_dev, di, bound = residual(v_f)
        it = 0
        while not (np.abs(r) <= bound).all():
            if it >= max_iter:
                raise ConvergenceError(
                    f"Newton iteration did not converge in {max_iter} iterations: largest node "
                    f"residual {np.max(np.abs(r)):.3e} A (tolerance {np.max(bound):.3e} A)"
                )
            jac = topo.factor(di, spd=bool((di >= 0).all()))
            dv = -jac.solve(r[:, None])[:, 0]
            it += 1
            norm = np.max(np.abs(r))
            step = 1.0
            for _ in range(30):  # backtracking: the first step that lowers the residual
                try:
                    trial = residual(v_f + step * dv)
                except ConvergenceError:  # the law overflowed at this trial point
                    trial = None
                if trial is not None and np.max(np.abs(trial[0])) < norm:
                    break
                step *= 0.5
            else:  # no decrease found: take the full Newton step
                step = 1.0
                trial = residual(v_f + dv)
            v_f = v_f + step * dv
            r, i_dev, di, bound = trial
        v = v_full.copy()
        v[topo.free_nodes] = v_f
        v, i_dev2 = v[:, None], i_dev[:, None]
        return _solutions(topo, v, i_dev2, topo.end_currents(v, u, i_dev2), it)[0]


def single_cell_bias(
    rows: int, cols: int, row: int, col: int, voltage: float, scheme: str
) -> tuple[LineEnds, LineEnds]:
    """(row_left, col_bottom) ends to access cell (row, col) at ``voltage`` V.

    The selected row is DRIVE at ``voltage``, the selected column VGROUND (its current is the
    measured one). Unselected lines by ``scheme``: ``"v/2"`` rows and columns DRIVE at V/2;
    ``"v/3"`` rows at V/3 and columns at 2V/3; ``"ground"`` GROUND; ``"float"`` FLOAT.
    """
    schemes = {
        "v/2": (End.DRIVE, voltage / 2, End.DRIVE, voltage / 2),
        "v/3": (End.DRIVE, voltage / 3, End.DRIVE, 2 * voltage / 3),
        "ground": (End.GROUND, 0.0, End.GROUND, 0.0),
        "float": (End.FLOAT, 0.0, End.FLOAT, 0.0),
    }
    if scheme not in schemes:
        raise ValueError(f"unknown bias scheme {scheme!r}: use one of {sorted(schemes)}")
    if not (0 <= row < rows and 0 <= col < cols):
        raise ValueError(f"cell ({row}, {col}) outside a {rows}×{cols} array")
    rmode, rv, cmode, cv = schemes[scheme]
    left = LineEnds.uniform(rows, rmode, rv)
    left.mode[row], left.voltage[row] = End.DRIVE, voltage
    bottom = LineEnds.uniform(cols, cmode, cv)
    bottom.mode[col], bottom.voltage[col] = End.VGROUND, 0.0
    return left, bottom
