"""Weights to conductances and back (METHODS section 5).

A dense layer ``y = W x + b`` (``W``: (out, in), ``b``: (out,)) is realised on a block of the
array:

* **Differential pairs.** Output ``j`` uses two adjacent columns, ``col_start + 2j`` (G⁺) and
  ``col_start + 2j + 1`` (G⁻); the layer's weight is ``w = k·(G⁺ − G⁻)``.
* **Scale factor.** ``k = w_max / (g_max − g_min)`` (S⁻¹ in weight units) where ``w_max`` is the
  largest weight magnitude of the layer, biases included in their conductance-equivalent form
  (below). A positive weight is stored as ``G⁺ = g_min + w/k``, ``G⁻ = g_min``; a negative one as
  ``G⁺ = g_min``, ``G⁻ = g_min + |w|/k``. Every conductance is therefore in ``[g_min, g_max]``
  and the largest weight uses the whole window.
* **Inputs.** Row ``row_start + i`` carries input ``x_i`` as a read voltage ``V_i = s_x·x_i``
  (``s_x``: the input scale, V per input unit). :func:`inputs_to_voltages` picks ``s_x`` so that
  ``max|x|·s_x ≤ v_read_max`` (0.3 V default, far below SET ≈ +3 V and RESET ≈ −2.2 V), either
  over the batch or, better for repeatable hardware runs, over a fixed calibration range
  ``x_max``.
* **Bias row.** The row after the inputs is driven at the fixed read voltage ``v_bias``. Its
  conductance pair stores the bias in the same units as the inputs: ``G⁺ − G⁻ = b·s_x / (k·v_bias)``
  where ``s_x`` is the layer's *reference* input scale :attr:`LayerMapping.input_scale` (chosen
  at mapping time from ``x_max``). With inputs at that scale the bias row sits at ``v_bias``
  exactly. If a caller uses another scale ``s`` (e.g. one derived from the batch),
  :meth:`LayerMapping.row_voltages` drives the bias row at ``v_bias·s / input_scale`` so that the
  algebra below stays exact (and checks it against ``v_read_max``).

With the columns at virtual ground, the column currents are ``I_c = Σ_r V_r G_rc``, so for output
``j``::

    I⁺_j − I⁻_j = Σ_i s·x_i·W_ji/k + (v_bias·s/s_ref)·(b_j·s_ref/(k·v_bias)) = s·(W x + b)_j / k

and :func:`currents_to_outputs` returns ``y_j = k·(I⁺_j − I⁻_j) / s`` — exactly ``W x + b`` on
an ideal array. (Note the factor: with ``w = k·ΔG``, ``k`` multiplies the current difference;
dividing by ``k·s`` would give ``(W x + b)/k²``.) The ``g_min`` baselines cancel in the
difference.

**Placement.** The layers of a network share the one array on *disjoint row ranges* (columns may
overlap because the rows of the other layers are held at 0 V while one layer computes).
:class:`NetworkPlacement` checks the fit and explains a failure. A layer may also sit on any chosen
rows and columns, in any order (``rows=[…]``, ``cols=[…]`` of :func:`map_weights`; ``slots`` of
:func:`place_network`), e.g. around stuck cells (:mod:`crossbar.fault_placement`); the algebra
is the same. Unused cells are parked at
``g_min`` by :meth:`NetworkPlacement.full_map` (the least conductive programmable state, which
minimises sneak currents and the energy of the MVMs; any other parking value can be passed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "LayerMapping",
    "MappingError",
    "NetworkPlacement",
    "currents_to_outputs",
    "full_map",
    "inputs_to_voltages",
    "level_pairs",
    "map_weights",
    "place_network",
    "snap_to_levels",
]

#: Default largest read voltage (V) an input or the bias row is driven at.
V_READ_MAX = 0.3


class MappingError(ValueError):
    """A weight matrix cannot be mapped or a network does not fit on the array."""


def _ordinal(i: int) -> str:
    return f"layer {i + 1}"


@dataclass(frozen=True)
class LayerMapping:
    """One layer mapped onto a block of the array (see the module docstring for the algebra).

    Attributes:
        weights: W, (out, in).
        bias: b, (out,), or None (no bias row).
        g_min, g_max: conductance window, S (0 ≤ g_min < g_max).
        k: scale factor, weight units per S: ``w = k·(G⁺ − G⁻)``.
        input_scale: reference input scale s_x, V per input unit.
        v_bias: voltage of the bias row at the reference input scale, V.
        row_start: first array row (inputs at row_start … row_start+in−1, then the bias row).
        col_start: first array column (output j at col_start+2j (G⁺) and col_start+2j+1 (G⁻)).
        targets: target conductances of the block, (n_rows, 2·out), S.
        row_index: the array rows of the block when they are not ``row_start …`` in order (inputs
            then the bias row), e.g. chosen around stuck cells; None: contiguous.
        col_index: the array columns likewise (output j on ``col_index[2j]`` (G⁺) and
            ``col_index[2j+1]`` (G⁻)); None: contiguous.
    """

    weights: np.ndarray
    bias: np.ndarray | None
    g_min: float
    g_max: float
    k: float
    input_scale: float
    v_bias: float
    row_start: int
    col_start: int
    targets: np.ndarray = field(repr=False)
    row_index: tuple[int, ...] | None = None
    col_index: tuple[int, ...] | None = None

    @property
    def n_in(self) -> int:
        """Number of inputs."""
        return int(self.weights.shape[1])

    @property
    def n_out(self) -> int:
        """Number of outputs."""
        return int(self.weights.shape[0])

    @property
    def has_bias(self) -> bool:
        """True when the layer has a bias row."""
        return self.bias is not None

    @property
    def n_rows(self) -> int:
        """Rows used: inputs plus one bias row."""
        return self.n_in + (1 if self.has_bias else 0)

    @property
    def n_cols(self) -> int:
        """Columns used: two per output."""
        return 2 * self.n_out

    @property
    def rows(self) -> Sequence[int]:
        """Array rows used (inputs, then the bias row)."""
        if self.row_index is not None:
            return self.row_index
        return range(self.row_start, self.row_start + self.n_rows)

    @property
    def cols(self) -> Sequence[int]:
        """Array columns used (G⁺ and G⁻ of output 0, then of output 1, …)."""
        if self.col_index is not None:
            return self.col_index
        return range(self.col_start, self.col_start + self.n_cols)

    @property
    def contiguous(self) -> bool:
        """True when the block is one rectangle ``row_start…`` × ``col_start…`` in order."""
        return self.row_index is None and self.col_index is None

    @property
    def bias_row(self) -> int | None:
        """Array row of the bias, or None."""
        return int(self.rows[self.n_in]) if self.has_bias else None

    def block(self, array: np.ndarray) -> np.ndarray:
        """The layer's cells (n_rows, n_cols) of a (rows, cols) array, in block order."""
        return np.asarray(array)[np.ix_(list(self.rows), list(self.cols))]

    def effective_weights(self, g_block: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(W, b) realised by a measured conductance block (n_rows, 2·out) S — the inverse map:
        ``W = k·(G⁺ − G⁻)`` on the input rows, ``b = k·v_bias·(G⁺ − G⁻)/s_x`` on the bias row."""
        g_block = np.asarray(g_block, dtype=float)
        if g_block.shape != (self.n_rows, self.n_cols):
            raise MappingError(
                f"conductance block must be {(self.n_rows, self.n_cols)}, got {g_block.shape}"
            )
        diff = self.k * (g_block[:, 0::2] - g_block[:, 1::2])  # (n_rows, out)
        w = diff[: self.n_in].T.copy()
        b = diff[self.n_in] * self.v_bias / self.input_scale if self.has_bias else None
        return w, b

    def row_voltages(
        self,
        v_inputs: np.ndarray,
        n_rows_array: int,
        *,
        input_scale: float | None = None,
        v_read_max: float | None = None,
    ) -> np.ndarray:
        """Full-array row voltages (batch, n_rows_array) V for this layer's MVM.

        ``v_inputs`` (batch, in) V from :func:`inputs_to_voltages`; ``input_scale`` is the scale
        they were made with (default: the reference :attr:`input_scale`). The bias row is driven
        at ``v_bias·input_scale/self.input_scale``; every other row of the array is at 0 V.
        Raises MappingError if the bias row would exceed ``v_read_max`` (default: max(v_bias,
        0.3 V)).
        """
        v_in = np.atleast_2d(np.asarray(v_inputs, dtype=float))
        if v_in.shape[1] != self.n_in:
            raise MappingError(f"layer expects {self.n_in} inputs, got {v_in.shape[1]}")
        if max(self.rows) >= n_rows_array:
            raise MappingError(
                f"layer rows {min(self.rows)}–{max(self.rows)} do not fit an "
                f"array of {n_rows_array} rows"
            )
        s = self.input_scale if input_scale is None else float(input_scale)
        out = np.zeros((v_in.shape[0], n_rows_array))
        out[:, list(self.rows[: self.n_in])] = v_in
        if self.has_bias:
            vb = self.v_bias * s / self.input_scale
            limit = max(self.v_bias, V_READ_MAX) if v_read_max is None else float(v_read_max)
            if abs(vb) > limit * (1 + 1e-12):
                raise MappingError(
                    f"bias row would be driven at {vb:.4g} V (v_bias {self.v_bias:g} V × input "
                    f"scale {s:g} / reference {self.input_scale:g}), above the read limit "
                    f"{limit:g} V; use the mapping's input scale (x_max) instead"
                )
            out[:, self.bias_row] = vb
        return out

    def outputs(self, col_currents: np.ndarray, input_scale: float | None = None) -> np.ndarray:
        """Layer outputs y (batch, out) from column currents; see :func:`currents_to_outputs`."""
        return currents_to_outputs(col_currents, self, input_scale)


def map_weights(
    weights: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    g_min: float,
    g_max: float,
    rows: slice | range | int | list[int] | tuple[int, ...] = 0,
    cols: int | list[int] | tuple[int, ...] = 0,
    v_bias: float = 0.2,
    x_max: float = 1.0,
    v_read_max: float = V_READ_MAX,
) -> LayerMapping:
    """Map one layer ``y = W x + b`` to target conductances (METHODS section 5).

    Args:
        weights: W, (out, in), finite.
        bias: b, (out,), or None for no bias row.
        g_min, g_max: programmable window, S.
        rows: placement of the layer's rows: a start row, or a range/slice whose length must be
            in + 1 (in without bias), or a list/tuple of that many array rows in any order
            (inputs, then the bias row; e.g. chosen around stuck cells).
        cols: first column (two per output), or a list/tuple of 2·out array columns (G⁺ and G⁻
            of output 0, then of output 1, …).
        v_bias: voltage of the bias row at the reference input scale, V (0 < v_bias ≤ v_read_max).
        x_max: calibration range of the inputs, max|x| expected; the reference input scale is
            ``s_x = v_read_max / x_max`` V per unit.
        v_read_max: largest read voltage, V.

    Returns the :class:`LayerMapping` with ``targets`` (in+1, 2·out) in [g_min, g_max] and the
    metadata to invert the mapping.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2 or w.size == 0:
        raise MappingError(f"weights must be a non-empty (out, in) matrix, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise MappingError("weights must be finite")
    n_out, n_in = w.shape
    b = None
    if bias is not None:
        b = np.asarray(bias, dtype=float).reshape(-1)
        if b.shape != (n_out,):
            raise MappingError(f"bias must have {n_out} entries (one per output), got {b.size}")
        if not np.all(np.isfinite(b)):
            raise MappingError("bias must be finite")
    if not (np.isfinite(g_min) and np.isfinite(g_max) and 0 <= g_min < g_max):
        raise MappingError(f"need 0 ≤ g_min < g_max, got g_min={g_min:g} S, g_max={g_max:g} S")
    if not (0 < v_read_max and 0 < v_bias <= v_read_max):
        raise MappingError(f"need 0 < v_bias ≤ v_read_max, got {v_bias:g} V and {v_read_max:g} V")
    if not (np.isfinite(x_max) and x_max > 0):
        raise MappingError(f"x_max must be > 0, got {x_max:g}")
    s_x = v_read_max / x_max
    n_rows = n_in + (1 if b is not None else 0)
    row_index = col_index = None
    if isinstance(rows, (list, tuple)):
        row_index = tuple(int(r) for r in rows)
        if len(row_index) != n_rows:
            raise MappingError(
                f"the layer needs {n_rows} rows; the given rows {rows} hold {len(rows)}"
            )
        start = min(row_index)
    else:
        start = _row_start(rows, n_rows, n_in, b is not None)
    if isinstance(cols, (list, tuple)):
        col_index = tuple(int(c) for c in cols)
        if len(col_index) != 2 * n_out:
            raise MappingError(
                f"the layer needs {2 * n_out} columns (2 per output); the given columns {cols} "
                f"hold {len(cols)}"
            )
        c0 = min(col_index)
    else:
        c0 = int(cols)
    if start < 0 or c0 < 0:
        raise MappingError(f"rows and columns must be ≥ 0, got row {start}, column {c0}")

    # Conductance-equivalent weights: input rows carry W^T, the bias row b·s_x/v_bias.
    weq = w.T
    if b is not None:
        weq = np.vstack([weq, (b * s_x / v_bias)[None, :]])
    w_max = float(np.max(np.abs(weq)))
    k = w_max / (g_max - g_min) if w_max > 0 else 1.0 / (g_max - g_min)
    dg = weq / k  # (n_rows, out), |dg| ≤ g_max − g_min
    g_plus = g_min + np.maximum(dg, 0.0)
    g_minus = g_min + np.maximum(-dg, 0.0)
    targets = np.empty((n_rows, 2 * n_out))
    targets[:, 0::2] = g_plus
    targets[:, 1::2] = g_minus
    np.clip(targets, g_min, g_max, out=targets)  # rounding only
    return LayerMapping(
        weights=w.copy(),
        bias=None if b is None else b.copy(),
        g_min=float(g_min),
        g_max=float(g_max),
        k=float(k),
        input_scale=float(s_x),
        v_bias=float(v_bias),
        row_start=start,
        col_start=c0,
        targets=targets,
        row_index=row_index,
        col_index=col_index,
    )


def level_pairs(levels: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Every (G⁺, G⁻) pair of a device's discrete levels (S) that realises a distinct difference
    ``G⁺ − G⁻``, the pair of the smallest ``G⁺ + G⁻`` for each (least current; the lowest level
    for zero): ``(pairs (m, 2) S, differences (m,) S)``, ordered by difference."""
    lv = np.sort(np.asarray(levels, dtype=float).ravel())
    if lv.size < 2 or not np.all(np.isfinite(lv)) or lv[0] < 0 or np.any(np.diff(lv) <= 0):
        raise MappingError(f"need at least 2 distinct levels >= 0 S, got {list(lv)}")
    gp, gm = (a.ravel() for a in np.meshgrid(lv, lv, indexing="ij"))
    order = np.lexsort((gp + gm, np.round((gp - gm) / lv[-1], 12)))
    diffs = np.round((gp - gm) / lv[-1], 12)[order]
    first = np.r_[True, diffs[1:] != diffs[:-1]]
    pairs = np.stack([gp[order][first], gm[order][first]], axis=1)
    return pairs, pairs[:, 0] - pairs[:, 1]


def snap_to_levels(mapping: LayerMapping, levels: Sequence[float]) -> LayerMapping:
    """``mapping`` with every weight's (G⁺, G⁻) the pair of ``levels`` (S) whose difference is
    nearest ``w/k`` (:func:`level_pairs`): targets a device of discrete levels can hold. The
    mapping should have been made with ``g_min, g_max`` = the lowest and highest level, so
    that ``k`` spans them; the weights and ``k`` are kept (the realised weights are
    ``k·(G⁺ − G⁻)``)."""
    pairs, diffs = level_pairs(levels)
    t = mapping.targets
    dg = t[:, 0::2] - t[:, 1::2]  # (rows, outputs) = w_eq / k
    pick = np.abs(dg[..., None] - diffs).argmin(axis=-1)
    targets = np.empty_like(t)
    targets[:, 0::2], targets[:, 1::2] = pairs[pick, 0], pairs[pick, 1]
    lo, hi = float(pairs.min()), float(pairs.max())
    return replace(mapping, targets=targets, g_min=lo, g_max=hi)


def _row_start(rows: slice | range | int, n_rows: int, n_in: int, has_bias: bool) -> int:
    what = f"{n_rows} rows ({n_in} inputs" + (" + 1 bias)" if has_bias else ")")
    if isinstance(rows, (int, np.integer)):
        start = int(rows)
    else:
        r = range(*rows.indices(10**9)) if isinstance(rows, slice) else rows
        if r.step != 1:
            raise MappingError(f"rows must be contiguous (step 1), got {rows}")
        if len(r) != n_rows:
            raise MappingError(f"the layer needs {what}; the given rows {rows} hold {len(r)}")
        start = r.start
    if start < 0:
        raise MappingError(f"row start must be ≥ 0, got {start}")
    return start


def inputs_to_voltages(
    x: np.ndarray, v_read_max: float = V_READ_MAX, *, x_max: float | None = None
) -> tuple[np.ndarray, float]:
    """Scale inputs into read voltages: ``V = s_x·x`` with ``s_x = v_read_max / x_max``.

    ``x`` (batch, in). ``x_max`` is the calibration range of |x| (use the layer's, i.e.
    ``mapping.input_scale`` ⇔ ``x_max = v_read_max / mapping.input_scale``, to keep the bias row at
    its fixed voltage); None takes ``max|x|`` over the batch (an all-zero batch gets s_x for
    x_max = 1). Inputs beyond ``x_max`` are clipped to ±x_max so no voltage exceeds
    ``v_read_max``. Returns (voltages (batch, in) V, s_x V per unit).
    """
    xa = np.atleast_2d(np.asarray(x, dtype=float))
    if not np.all(np.isfinite(xa)):
        raise MappingError("inputs must be finite")
    if not v_read_max > 0:
        raise MappingError(f"v_read_max must be > 0, got {v_read_max:g}")
    if x_max is None:
        m = float(np.max(np.abs(xa))) if xa.size else 0.0
        x_max = m if m > 0 else 1.0
    elif not x_max > 0:
        raise MappingError(f"x_max must be > 0, got {x_max:g}")
    s_x = v_read_max / x_max
    # clipped again after scaling: x_max·s_x can round to v_read_max + 1 ulp (x_max =
    # v_read_max / input_scale), which the bench's read limit refuses
    v = np.clip(np.clip(xa, -x_max, x_max) * s_x, -v_read_max, v_read_max)
    return v, float(s_x)


def currents_to_outputs(
    col_currents: np.ndarray, mapping: LayerMapping, input_scale: float | None = None
) -> np.ndarray:
    """Layer outputs ``y_j = k·(I⁺_j − I⁻_j) / s_x`` (batch, out) — ``W x + b`` on an ideal array.

    ``col_currents`` (batch, n) A, either the full array's columns or just the layer's 2·out
    columns (then ``n == 2·out`` and the block starts at column 0 of the given array).
    ``input_scale`` is the s_x the inputs were driven with (default: the mapping's reference).
    """
    i = np.atleast_2d(np.asarray(col_currents, dtype=float))
    cols = list(mapping.cols)
    if i.shape[1] == mapping.n_cols and max(cols) >= i.shape[1]:
        cols = list(range(mapping.n_cols))
    if max(cols) >= i.shape[1]:
        raise MappingError(
            f"layer uses columns {min(cols)}–{max(cols)}; currents have {i.shape[1]}"
        )
    block = i[:, cols]
    s = mapping.input_scale if input_scale is None else float(input_scale)
    return mapping.k * (block[:, 0::2] - block[:, 1::2]) / s


@dataclass(frozen=True)
class NetworkPlacement:
    """A network's layers placed on disjoint row ranges of one ``shape`` array."""

    shape: tuple[int, int]
    layers: tuple[LayerMapping, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))
        validate_placement(self.shape, self.layers)

    @property
    def g_min(self) -> float:
        """Smallest g_min of the layers (S)."""
        return min(m.g_min for m in self.layers)

    def full_map(self, park: float | None = None) -> np.ndarray:
        """(rows, cols) target conductances, S: every layer's block, unused cells at ``park``
        (default: the smallest ``g_min`` of the layers — parked in the low state)."""
        value = self.g_min if park is None else float(park)
        out = np.full(self.shape, value)
        for m in self.layers:
            out[np.ix_(list(m.rows), list(m.cols))] = m.targets
        return out

    def used_mask(self) -> np.ndarray:
        """(rows, cols) bool, True on cells that belong to a layer."""
        mask = np.zeros(self.shape, dtype=bool)
        for m in self.layers:
            mask[np.ix_(list(m.rows), list(m.cols))] = True
        return mask

    def layer_mask(self, layer: int) -> np.ndarray:
        """(rows, cols) bool, True on the cells of ``layer`` (0-based)."""
        m = self.layers[layer]
        mask = np.zeros(self.shape, dtype=bool)
        mask[np.ix_(list(m.rows), list(m.cols))] = True
        return mask

    def with_layer(self, layer: int, mapping: LayerMapping) -> NetworkPlacement:
        """A copy with ``layer`` (0-based) replaced by ``mapping`` (checked)."""
        layers = list(self.layers)
        layers[layer] = mapping
        return NetworkPlacement(shape=self.shape, layers=tuple(layers))

    def row_voltages(
        self, layer: int, v_inputs: np.ndarray, *, input_scale: float | None = None
    ) -> np.ndarray:
        """Full-array row voltages (batch, rows) V for ``layer`` (0-based); other rows at 0 V."""
        return self.layers[layer].row_voltages(v_inputs, self.shape[0], input_scale=input_scale)


def full_map(placement: NetworkPlacement, park: float | None = None) -> np.ndarray:
    """(rows, cols) target map of a placed network, unused cells at ``park`` (default g_min);
    see :meth:`NetworkPlacement.full_map`."""
    return placement.full_map(park)


def validate_placement(shape: tuple[int, int], layers: Sequence[LayerMapping]) -> None:
    """Raise MappingError explaining why ``layers`` do not fit a ``shape`` array (disjoint row
    ranges, columns within the array)."""
    n_rows, n_cols = shape
    taken = np.full(n_rows, -1)
    for idx, m in enumerate(layers):
        if not m.contiguous:
            _validate_indexed(shape, idx, m, taken)
            continue
        what = f"{m.n_rows} rows ({m.n_in} inputs" + (" + 1 bias)" if m.has_bias else ")")
        start, stop = m.row_start, m.row_start + m.n_rows
        if stop > n_rows or np.any(taken[start:stop] >= 0):
            free_total = int(np.sum(taken < 0))
            free_from = int(np.sum(taken[min(start, n_rows) :] < 0))
            others = sorted({int(t) for t in taken[start : min(stop, n_rows)] if t >= 0})
            clash = (
                "; rows "
                + ", ".join(
                    f"{_range_text(np.flatnonzero(taken == o))} are used by {_ordinal(o)}"
                    for o in others
                )
                if others
                else ""
            )
            raise MappingError(
                f"{_ordinal(idx)} needs {what} starting at row {start}; the array has "
                f"{n_rows} rows but only {free_from} are free from row {start} on "
                f"({free_total} free in all){clash}"
            )
        if m.col_start + m.n_cols > n_cols:
            raise MappingError(
                f"{_ordinal(idx)} needs {m.n_cols} columns (2 per output × {m.n_out} outputs) "
                f"starting at column {m.col_start}; the array has {n_cols} columns"
            )
        taken[start:stop] = idx


def _validate_indexed(shape: tuple[int, int], idx: int, m: LayerMapping, taken: np.ndarray) -> None:
    """The checks of :func:`validate_placement` for a layer on chosen rows and columns."""
    rows, cols = [int(r) for r in m.rows], [int(c) for c in m.cols]
    if len(rows) != m.n_rows or len(set(rows)) != len(rows):
        raise MappingError(f"{_ordinal(idx)} needs {m.n_rows} distinct rows, got {rows}")
    if len(cols) != m.n_cols or len(set(cols)) != len(cols):
        raise MappingError(f"{_ordinal(idx)} needs {m.n_cols} distinct columns, got {cols}")
    if min(rows) < 0 or max(rows) >= shape[0] or min(cols) < 0 or max(cols) >= shape[1]:
        raise MappingError(
            f"{_ordinal(idx)} uses rows {rows} and columns {cols}; the array is "
            f"{shape[0]}x{shape[1]}"
        )
    clash = sorted({int(taken[r]) for r in rows if taken[r] >= 0})
    if clash:
        raise MappingError(
            f"{_ordinal(idx)} uses rows {rows}, some of them already used by "
            + ", ".join(_ordinal(o) for o in clash)
        )
    taken[rows] = idx


def _range_text(idx: np.ndarray) -> str:
    return f"{idx.min()}–{idx.max()}" if idx.size > 1 else f"{idx.min()}"


def place_network(
    layers: Sequence[tuple[np.ndarray, np.ndarray | None]],
    *,
    shape: tuple[int, int] = (10, 10),
    g_min: float,
    g_max: float,
    row_starts: Sequence[int] | None = None,
    col_starts: Sequence[int] | None = None,
    v_bias: float = 0.2,
    x_max: Sequence[float] | float = 1.0,
    v_read_max: float = V_READ_MAX,
    slots: Sequence[tuple[Sequence[int], Sequence[int]]] | None = None,
    windows: Sequence[tuple[float, float]] | None = None,
) -> NetworkPlacement:
    """Map every (W, b) of a network and place the layers on consecutive row ranges.

    Default placement packs the layers from row 0 down (layer 1 first), all from column 0: the
    two-moons 2-5-2 network lands on rows 0–2 × cols 0–9 and rows 3–8 × cols 0–3 of a 10×10
    array. ``x_max`` is the input calibration range, one per layer or shared. ``slots`` gives
    each layer's array rows and columns instead (e.g. chosen around stuck cells by
    :func:`crossbar.fault_placement.choose_slots`); ``windows`` each layer's own (g_min, g_max)
    S instead of the shared one. Raises MappingError with an explanation when the network does
    not fit.
    """
    n = len(layers)
    xm = [float(x_max)] * n if np.isscalar(x_max) else [float(v) for v in x_max]  # type: ignore[arg-type]
    if len(xm) != n:
        raise MappingError(f"x_max needs one value per layer ({n}), got {len(xm)}")
    for name, given in (("slots", slots), ("windows", windows)):
        if given is not None and len(given) != n:
            raise MappingError(f"{name} needs one entry per layer ({n}), got {len(given)}")
    maps: list[LayerMapping] = []
    next_row = 0
    for i, (w, b) in enumerate(layers):
        w = np.asarray(w, dtype=float)
        start: int | list[int] = next_row if row_starts is None else int(row_starts[i])
        c0: int | list[int] = 0 if col_starts is None else int(col_starts[i])
        if slots is not None:
            start, c0 = [int(r) for r in slots[i][0]], [int(c) for c in slots[i][1]]
        lo, hi = (g_min, g_max) if windows is None else windows[i]
        m = map_weights(
            w,
            b,
            g_min=lo,
            g_max=hi,
            rows=start,
            cols=c0,
            v_bias=v_bias,
            x_max=xm[i],
            v_read_max=v_read_max,
        )
        if i > 0 and m.n_in != maps[-1].n_out:
            raise MappingError(
                f"{_ordinal(i)} has {m.n_in} inputs but {_ordinal(i - 1)} has {maps[-1].n_out} "
                "outputs"
            )
        maps.append(m)
        next_row = m.row_start + m.n_rows
        # Check as we go so the message names the first layer that does not fit.
        validate_placement((int(shape[0]), int(shape[1])), maps)
    return NetworkPlacement(shape=(int(shape[0]), int(shape[1])), layers=tuple(maps))
