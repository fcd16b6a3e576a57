"""Vectorised, seeded model of an array of Ag/perovskite-nanowire/Au ECM memristors.

Every cell has a filament state ``w ∈ [0, 1]`` (0: HRS, 1: LRS), a log conductance-level offset
``δ`` and a log threshold offset ``ε`` (the cycle-to-cycle spreads each switching event leaves
behind). All operations are numpy-vectorised over the cells; all randomness comes from one seeded
generator.

Read regime (no state change between the thresholds)::

    I(V) = G(w) · e^δ · sinh(a·V) / a,      dI/dV = G(w) · e^δ · cosh(a·V)
    G(w) = G0_off^(1−w) · G0_on^w            (log-linear between the cell's window edges)

``G0`` is the low-field conductance, set so that the 0.1 V read conductance I/V of ``w = 0`` and
``w = 1`` (``δ = 0``) equals the cell's ``g_off`` and ``g_on``: ``G0 = g · 0.1a / sinh(0.1a)``.

Switching (VTEAM-like) for a voltage ``V`` held for ``t`` seconds, thresholds
``V_set·e^ε > 0 > V_reset·e^ε``::

    Δw = +k_on  · (V/V_set − 1)^α_on   · t · ξ     if V > V_set      (SET)
    Δw = −k_off · (V/V_reset − 1)^α_off · t · ξ    if V < V_reset    (RESET)
    Δw = 0 otherwise (reads, and half-selected cells at V/2, V/3 of a ±3 V pulse)

``ξ = exp(c2c_sigma · N(0, 1))`` per event (cycle-to-cycle spread of each event's change). The rate
is constant while ``V`` is held, so the update is the exact integral, clipped to ``[0, 1]``. With
probability ``p_nonmonotonic`` a SET event moves the state DOWN by ``|Δw|`` (the filament
ruptures while growing): the non-monotonic non-ideality; in a cyclic sweep it makes the
conductance along the SET branch drop now and then and shortens the LCIS (METHODS section 1).

An *event* is one voltage level held beyond a threshold: a sweep step, a pulse. Consecutive
``apply`` calls at the same voltage (within :data:`EVENT_TOL`) continue the event with its ξ,
its non-monotonic draw and its thresholds, so holding a level for 50 ms in one call or as
33 ms + 17 ms (a source delay, then the reading's integration) switches the cell alike; a call
where the cell does not switch (a read) or a new level starts a new event.

Level and threshold spread: each event updates ``δ`` and ``ε`` by an Ornstein-Uhlenbeck step in
the switching drive ``|Δw|`` (before clipping), ``x ← ρ·x + sqrt(1 − ρ²)·σ_x·N(0, 1)``,
``ρ = exp(−|Δw| / level_decorrelation)``, with ``σ_δ = level_sigma`` and ``σ_ε = c2c_vth_sigma``:
a full SET or RESET leaves a fresh log-normal conductance level and fresh thresholds, a tiny
pulse barely changes them, reads never do. This is what makes the cycle-to-cycle σ of METHODS
section 1.

Compliance: a SET cannot raise the conductance beyond the one at which the cell current at the
applied voltage equals ``i_compliance`` (the source's current limit stops the filament growth; a
conductance already above is not lowered).

Discrete switching (``levels = n ≥ 2``): ``w`` stays the filament's hidden configuration and the
conductance follows its level ``k = round(w·(n − 1))``, ``G = G0_off^(1−k/(n−1)) · G0_on^(k/(n−1))``
(``n = 2``: a binary filament): the conductance jumps abruptly when ``w`` crosses the midpoint
between two levels. Under compliance such a filament stops at the first level whose current
reaches the limit (it cannot stop between levels), so a binary cell SETs to its LRS whatever the
limit. ``levels = 0`` is the analog device (``G`` follows ``w``).

Time after a switching event (the array's clock: :meth:`DeviceArray.use_clock` shares the
bench's; alone, :meth:`apply` advances the array's own virtual clock). For ``t`` seconds since
the end of a cell's last switching event::

    ln G(t) = ln G_event − w·r·(1 − exp(−t/relax_tau)) − ν·ln(max(t, t0)/t0)

with ``r ~ N(relax_mean, relax_sigma²)`` drawn per event (the fast relaxation of the grown
filament; ``w`` the state the event left, so the HRS does not relax) and ``ν`` per cell
``~ N(drift_nu, drift_nu_sigma²)`` clipped at 0 (power-law drift, ``g(t) = g(t0)·(t/t0)^−ν``;
:attr:`DeviceArray.drift_nu` holds the cells' values). A SET event leaves an unstable filament
with probability ``p_dissolve``; it dissolves (``w → 0``) after an exponential time of mean
``dissolve_tau``. The next switching event of the cell first folds all of this into its state
(``w``, ``δ``: continuity), then starts a new event clock. A cell that never switched (or whose
state was set with :meth:`DeviceArray.set_state`) has no event: no relaxation, drift or
dissolution. Only time matters, so an hour of retention on a virtual clock costs no wall time.

Read noise relative to G (``g_noise``, random telegraph noise): :meth:`DeviceArray.read_factors`
draws the factor on each cell's ``G`` for one or a series of reads — white ``1 + g_noise·N(0,
1)`` per cell and read, and for the fluctuating cells (``rtn_fraction``, drawn at construction)
``± rtn_amplitude/2`` from a symmetric two-state Markov process with mean dwell ``rtn_tau``
evolved on the clock. :meth:`DeviceArray.reading` applies such a factor to every law evaluation
of one read (a circuit solve). :meth:`DeviceArray.disturb`: each read moves ``w`` by
``read_disturb·V/V_set`` (``V > 0``) or ``−read_disturb·V/V_reset`` (``V < 0``). None of these
draw random numbers unless the profile uses them, so profiles without them behave exactly as
before they existed.

Device-to-device variability, drawn at construction: ``V_set``, ``V_reset`` ×
``exp(d2d_vth_sigma · N)``; ``g_off``, ``g_on`` × ``exp(d2d_g_sigma · N)`` (``g_on ≥ 1.5·g_off``
kept); stuck-at-ON (``w ≡ 1``) and stuck-at-OFF (``w ≡ 0``) cells with probabilities
``p_stuck_on``, ``p_stuck_off`` (masks ``stuck_on``, ``stuck_off``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sim_backends.clock import VirtualClock
from sim_backends.profiles import DeviceProfile, get_profile

__all__ = ["CELL_PARAMS", "EVENT_TOL", "V_READ_REF", "DeviceArray"]

V_READ_REF = 0.1  # V, the read voltage at which g_off / g_on are specified
EVENT_TOL = 1e-3  # V, a held level within this of the event's level continues the event

#: Profile fields that may be given per cell (``cell_params``): vectorised what-if studies and
#: fitting, where one array holds many device types at once.
CELL_PARAMS = (
    "v_set",
    "v_reset",
    "read_noise",
    "c2c_sigma",
    "level_sigma",
    "c2c_vth_sigma",
    "p_nonmonotonic",
)


def _sinh_over_a(a: float, v: np.ndarray) -> np.ndarray:
    """sinh(a·v)/a, exact for a = 0 (= v)."""
    if a == 0.0:
        return np.array(v, dtype=float)
    return np.sinh(a * v) * (1.0 / a)


class DeviceArray:
    """An array of memristors with per-cell parameters and state (all operations vectorised).

    Args:
        profile: a :class:`DeviceProfile` or a preset name.
        shape: array shape, e.g. ``(10, 10)`` or ``(n,)``.
        seed: int seed, a ``np.random.Generator`` (used and advanced), or None (fresh entropy).
        cell_params: optional per-cell values (broadcast to ``shape``) replacing the profile's
            fields named in :data:`CELL_PARAMS` (validated like the profile's).
        clock: the clock whose ``now()`` (s) times retention and random telegraph noise
            (default: the array's own virtual clock, advanced by :meth:`apply`).
    """

    def __init__(
        self,
        profile: DeviceProfile | str,
        shape: tuple[int, ...] = (10, 10),
        seed: int | np.random.Generator | None = 0,
        *,
        cell_params: dict[str, ArrayLike] | None = None,
        clock: Any = None,
    ) -> None:
        self.profile = p = get_profile(profile)
        self.shape = tuple(int(s) for s in np.atleast_1d(shape))
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        rng, sh = self.rng, self.shape
        self._par = self._cell_params(cell_params or {})
        par = self._par
        # device-to-device parameters
        self.v_set = par["v_set"] * np.exp(p.d2d_vth_sigma * rng.standard_normal(sh))
        self.v_reset = par["v_reset"] * np.exp(p.d2d_vth_sigma * rng.standard_normal(sh))
        g_off = p.g_off * np.exp(p.d2d_g_sigma * rng.standard_normal(sh))
        g_on = p.g_on * np.exp(p.d2d_g_sigma * rng.standard_normal(sh))
        self._g_off = g_off
        self._g_on = np.maximum(g_on, 1.5 * g_off)  # keep a window in every cell
        a = float(p.nonlinearity)
        self.a = a
        ref = float(_sinh_over_a(a, np.array(V_READ_REF)) / V_READ_REF)  # sinh(0.1a)/(0.1a)
        self._ln_g0_off = np.log(self._g_off / ref)
        self._ln_ratio = np.log(self._g_on / self._g_off)
        u = rng.random(sh)
        self.stuck_on = u < p.p_stuck_on
        self.stuck_off = (u >= p.p_stuck_on) & (u < p.p_stuck_on + p.p_stuck_off)
        self._w = np.where(self.stuck_on, 1.0, 0.0)
        self._delta = par["level_sigma"] * rng.standard_normal(sh)
        self._eps = par["c2c_vth_sigma"] * rng.standard_normal(sh)  # log threshold offset (c2c)
        self._vth: tuple[np.ndarray, np.ndarray] | None = None
        self._free = ~(self.stuck_on | self.stuck_off)
        # the switching event each cell is in (level V, NaN: none), with its draws and thresholds
        self._ev_v = np.full(sh, np.nan)
        self._ev_xi = np.ones(sh)
        self._ev_flip = np.zeros(sh, dtype=bool)
        self._ev_vth = (np.ones(sh), -np.ones(sh))
        self._init_time_effects(rng, clock)

    def _cell_params(self, given: dict[str, ArrayLike]) -> dict[str, np.ndarray | float]:
        unknown = sorted(set(given) - set(CELL_PARAMS))
        if unknown:
            raise ValueError(
                f"cell_params: unknown field(s) {', '.join(unknown)}; allowed: {CELL_PARAMS}"
            )
        out: dict[str, np.ndarray | float] = {}
        for name in CELL_PARAMS:
            if name not in given:
                out[name] = float(getattr(self.profile, name))
                continue
            arr = np.broadcast_to(np.asarray(given[name], dtype=float), self.shape).copy()
            if name == "v_set":
                ok = np.all(arr > 0)
            elif name == "v_reset":
                ok = np.all(arr < 0)
            elif name == "p_nonmonotonic":
                ok = np.all((arr >= 0) & (arr <= 1))
            else:
                ok = np.all(arr >= 0)
            if not (ok and np.all(np.isfinite(arr))):
                raise ValueError(f"cell_params[{name!r}] has values out of range")
            out[name] = arr
        return out

    def cell_param(self, name: str) -> np.ndarray:
        """The per-cell value of a :data:`CELL_PARAMS` field (profile value broadcast)."""
        return np.broadcast_to(np.asarray(self._par[name], dtype=float), self.shape).copy()

    # -- time, retention and read-noise state ------------------------------------------------
    def _init_time_effects(self, rng: np.random.Generator, clock: Any) -> None:
        """Per-cell state of retention (relaxation, drift, dissolution) and read noise; random
        numbers are drawn only for the terms the profile uses (see the module docstring)."""
        p, sh = self.profile, self.shape
        self.clock = clock if clock is not None else VirtualClock()
        self._own_clock = clock is None
        self._levels = int(p.levels)
        self._timed = bool(p.relax_mean or p.relax_sigma or p.drift_nu or p.drift_nu_sigma) or (
            p.p_dissolve > 0
        )
        #: power-law drift exponent ν of every cell (d2d; the truth a measurement recovers)
        self.drift_nu = np.full(sh, float(p.drift_nu))
        if p.drift_nu_sigma > 0:
            self.drift_nu = np.maximum(
                self.drift_nu + p.drift_nu_sigma * rng.standard_normal(sh), 0
            )
        #: cells with a random-telegraph fluctuator
        self.rtn_cells = np.zeros(sh, dtype=bool)
        self._rtn_high = np.zeros(sh, dtype=bool)
        if p.rtn_fraction > 0 and p.rtn_amplitude > 0:
            self.rtn_cells = rng.random(sh) < p.rtn_fraction
            self._rtn_high = rng.random(sh) < 0.5
        self._rtn_t = np.nan  # s, when the telegraph states were last evolved
        self._t_ev = np.full(sh, np.nan)  # s, end of each cell's last switching event (NaN: none)
        self._relax = np.zeros(sh)  # ln G relaxation amplitude r of that event
        self._dis_after = np.full(sh, np.inf)  # s after that event when its filament dissolves
        self._factor: np.ndarray | None = None  # read-noise factor on G during a read

    def use_clock(self, clock: Any) -> None:
        """Time retention and telegraph noise on ``clock`` (``now()`` in s), which its owner
        advances; :meth:`apply` then no longer advances a clock itself."""
        self.clock = clock
        self._own_clock = False

    def now(self) -> float:
        """The array's time, s."""
        return float(self.clock.now())

    @property
    def last_event(self) -> np.ndarray:
        """Per cell, the time (s, the array's clock) its last switching event ended; NaN for a
        cell that never switched (or whose state was set directly). A copy."""
        return self._t_ev.copy()

    @property
    def levels(self) -> int:
        """Conductance levels of a discrete filament (0: analog)."""
        return self._levels

    def _quantised(self, w: np.ndarray) -> np.ndarray:
        """The conductance state of the filament state ``w``: ``w`` itself for an analog device,
        its nearest level for a discrete one."""
        if self._levels < 2:
            return w
        n = self._levels - 1
        return np.round(w * n) / n

    def _effective(self, t: float) -> tuple[np.ndarray, np.ndarray | float]:
        """(state after dissolution, ln G offset of relaxation and drift) at time ``t`` s."""
        if not self._timed:
            return self._w, 0.0
        p = self.profile
        since = t - self._t_ev
        has = np.isfinite(since)
        s = np.where(has, np.maximum(since, 0.0), 0.0)
        w = np.where(has & (s >= self._dis_after), 0.0, self._w)
        relax = self._quantised(w) * self._relax * -np.expm1(-s / p.relax_tau)
        drift = self.drift_nu * np.log(np.maximum(s, p.drift_t0) / p.drift_t0)
        return w, np.where(has, -(relax + drift), 0.0)

    def _fold(self, mask: np.ndarray, t: float) -> None:
        """Make the time effects at ``t`` part of the state of the ``mask`` cells (a switching
        event is about to start there)."""
        if not self._timed or not mask.any():
            return
        w, off = self._effective(t)
        self._w = np.where(mask, w, self._w)
        self._delta = np.where(mask, self._delta + off, self._delta)

    def _start_clocks(
        self, upd: np.ndarray, same: np.ndarray, on: np.ndarray, t_end: float
    ) -> None:
        """After an event: the updated cells' event clock starts at ``t_end`` with a fresh
        relaxation amplitude and filament fate (kept where the event continues)."""
        if not self._timed:
            return
        p, rng, sh = self.profile, self.rng, self.shape
        self._t_ev = np.where(upd, t_end, self._t_ev)
        if p.relax_mean or p.relax_sigma:
            r = p.relax_mean + p.relax_sigma * rng.standard_normal(sh)
            self._relax = np.where(upd & ~same, r, self._relax)
        if p.p_dissolve > 0:
            unstable = rng.random(sh) < p.p_dissolve
            after = np.where(unstable, rng.exponential(p.dissolve_tau, sh), np.inf)
            fate = np.where(on, after, np.inf)  # only a SET grows a filament that can dissolve
            self._dis_after = np.where(upd & ~same, fate, self._dis_after)

    def _forget_time(self, mask: np.ndarray) -> None:
        self._t_ev = np.where(mask, np.nan, self._t_ev)
        self._relax = np.where(mask, 0.0, self._relax)
        self._dis_after = np.where(mask, np.inf, self._dis_after)

    def read_factors(
        self, rng: np.random.Generator, n: int | None = None, dt: float = 0.0
    ) -> np.ndarray | None:
        """Multiplicative factors on every cell's ``G`` for reads now (``n`` None: one read,
        shape ``self.shape``) or for ``n`` reads ``dt`` s apart from now (shape ``(n, *shape)``):
        white ``g_noise`` and the random-telegraph levels (module docstring). None when the
        profile has neither (no random numbers drawn)."""
        p = self.profile
        white = p.g_noise > 0
        rtn = bool(self.rtn_cells.any())
        if not (white or rtn):
            return None
        k = 1 if n is None else int(n)
        out = np.ones((k, *self.shape))
        if white:
            out += p.g_noise * rng.standard_normal(out.shape)
        if rtn:
            out += p.rtn_amplitude * (self._telegraph(rng, k, dt) - 0.5)
        np.maximum(out, 1e-3, out=out)  # a conductance stays positive
        return out[0] if n is None else out

    def _telegraph(self, rng: np.random.Generator, n: int, dt: float) -> np.ndarray:
        """Telegraph states (1: high) of every cell at ``n`` reads ``dt`` s apart from now,
        evolved exactly from the last read (flip probability ``(1 − e^(−2Δt/τ))/2``)."""
        t0 = self.now()
        gaps = np.full(n, float(dt))
        gaps[0] = 0.0 if np.isnan(self._rtn_t) else max(t0 - self._rtn_t, 0.0)
        p_flip = 0.5 * -np.expm1(-2.0 * gaps / self.profile.rtn_tau)
        flips = rng.random((n, *self.shape)) < p_flip.reshape((n,) + (1,) * len(self.shape))
        states = self._rtn_high[None] ^ (np.cumsum(flips, axis=0) % 2).astype(bool)
        states &= self.rtn_cells
        self._rtn_high = np.where(self.rtn_cells, states[-1], self._rtn_high)
        self._rtn_t = t0 + (n - 1) * float(dt)
        return states.astype(float)

    @contextmanager
    def reading(self, factor: np.ndarray | None) -> Iterator[None]:
        """Within the block every conductance is multiplied by ``factor`` (one read's noise,
        from :meth:`read_factors`; None: noiseless)."""
        if factor is None:
            yield
            return
        self._factor = factor
        try:
            yield
        finally:
            self._factor = None

    def disturb(self, v: ArrayLike) -> None:
        """Read disturb of one read at the voltage ``v`` (V, per cell, or ``(n, *shape)`` for
        ``n`` reads): ``w`` moves by ``read_disturb·V/V_set`` (V > 0) or
        ``−read_disturb·V/V_reset`` (V < 0) per read; stuck cells stay pinned."""
        rd = self.profile.read_disturb
        if rd <= 0:
            return
        v = np.asarray(v, dtype=float)
        step = np.where(v > 0, v / self.v_set, -v / self.v_reset) * rd
        if step.ndim > len(self.shape):
            step = step.sum(axis=0)
        self._w = np.clip(self._w + np.where(self._free, step, 0.0), 0.0, 1.0)

    # -- state ---------------------------------------------------------------------------------
    @property
    def state(self) -> np.ndarray:
        """Filament state ``w`` per cell, in [0, 1] (a copy)."""
        return self._w.copy()

    @state.setter
    def state(self, w: ArrayLike) -> None:
        self.set_state(np.ones(self.shape, dtype=bool), w)

    @property
    def level(self) -> np.ndarray:
        """Log conductance-level offset ``δ`` per cell (a copy)."""
        return self._delta.copy()

    @property
    def g_on(self) -> np.ndarray:
        """Per-cell LRS read conductance at 0.1 V (w = 1, δ = 0), S."""
        return self._g_on.copy()

    @property
    def g_off(self) -> np.ndarray:
        """Per-cell HRS read conductance at 0.1 V (w = 0, δ = 0), S."""
        return self._g_off.copy()

    def set_state(self, mask: ArrayLike, w: ArrayLike, *, level: ArrayLike | None = None) -> None:
        """Set ``w`` (broadcast, clipped to [0, 1]) where ``mask``; stuck cells stay pinned.

        ``level`` optionally sets ``δ`` there too (0: exactly on the nominal curve). The cells
        have no switching event behind them then (no relaxation, drift or dissolution).
        """
        m = np.broadcast_to(np.asarray(mask, dtype=bool), self.shape)
        wv = np.clip(np.broadcast_to(np.asarray(w, dtype=float), self.shape), 0.0, 1.0)
        self._w = np.where(m, wv, self._w)
        self._forget_time(m)
        if level is not None:
            lv = np.broadcast_to(np.asarray(level, dtype=float), self.shape)
            self._delta = np.where(m, lv, self._delta)
        self._pin()

    def state_for_conductance(self, g: ArrayLike, v_read: float = V_READ_REF) -> np.ndarray:
        """State ``w`` (unclipped) at which each cell reads ``g`` (S) at ``v_read`` (current δ)."""
        ln_g0 = np.log(np.asarray(g, dtype=float) * v_read / _sinh_over_a(self.a, v_read))
        return (ln_g0 - self._delta - self._ln_g0_off) / self._ln_ratio

    def _pin(self) -> None:
        self._w[self.stuck_on] = 1.0
        self._w[self.stuck_off] = 0.0

    def _g0(self) -> np.ndarray:
        """Low-field conductance G(w)·e^δ per cell now (retention and, during a read, its noise
        factor included), S."""
        w, off = self._effective(self.now())
        g = np.exp(self._ln_g0_off + self._quantised(w) * self._ln_ratio + self._delta + off)
        return g if self._factor is None else g * self._factor

    # -- read regime ---------------------------------------------------------------------------
    def iv(self, v: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Noise-free current and dI/dV at the voltage across each cell (a solver DeviceLaw).

        ``v``: V, broadcastable to the array shape. Returns ``(I, dI/dV)`` in A and S.
        """
        v = np.broadcast_to(np.asarray(v, dtype=float), self.shape)
        g0 = self._g0()
        with np.errstate(over="ignore", invalid="ignore"):
            return g0 * _sinh_over_a(self.a, v), g0 * np.cosh(self.a * v)

    def current(self, v: ArrayLike) -> np.ndarray:
        """Noise-free current (A) at the voltage ``v`` (V, broadcast) across each cell."""
        return self._g0() * _sinh_over_a(self.a, np.asarray(v, dtype=float))

    def conductance(self, v_read: float = V_READ_REF) -> np.ndarray:
        """Noise-free read conductance I/V (S) of every cell at ``v_read`` (V, ≠ 0)."""
        if v_read == 0:
            raise ValueError("v_read must be non-zero (the conductance is I/V)")
        return self._g0() * (_sinh_over_a(self.a, np.array(float(v_read))) / v_read)

    def read(self, v: ArrayLike, rng: np.random.Generator | None = None) -> np.ndarray:
        """Current (A) at ``v`` with relative Gaussian read noise ``profile.read_noise`` (and the
        noise on G of :meth:`read_factors`, when the profile has it).

        ``rng``: the generator to draw the noise from (default: the array's own).
        """
        rng = self.rng if rng is None else rng
        with self.reading(self.read_factors(rng)):
            i = self.current(v)
        return i * (1.0 + self._par["read_noise"] * rng.standard_normal(i.shape))

    # -- switching -----------------------------------------------------------------------------
    def _thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """Current (c2c-perturbed) SET and RESET thresholds per cell, V."""
        if self._vth is None:
            scale = np.exp(self._eps)
            self._vth = (self.v_set * scale, self.v_reset * scale)
        return self._vth

    def apply(
        self, v: ArrayLike, duration_s: float, i_compliance: float | ArrayLike = np.inf
    ) -> bool:
        """Hold ``v`` (V, per cell or broadcast) across each cell for ``duration_s`` seconds.

        Cells beyond their thresholds switch (see the module docstring); ``i_compliance`` (A,
        scalar or per cell, > 0) caps the state a SET can reach. Returns whether any cell's
        state or level was updated. The array's own clock (if it has no shared one) advances by
        ``duration_s``.
        """
        if duration_s < 0:
            raise ValueError(f"duration_s must be >= 0, got {duration_s}")
        changed = self._switch(v, float(duration_s), i_compliance) if duration_s > 0 else False
        if self._own_clock:
            self.clock.advance(duration_s)
        return changed

    def _switch(self, v: ArrayLike, duration_s: float, i_compliance: float | ArrayLike) -> bool:
        """The switching of :meth:`apply` (``duration_s > 0``); see the module docstring."""
        v = np.asarray(v, dtype=float)
        if v.shape != self.shape:
            v = np.broadcast_to(v, self.shape)
        # a cell still at its event's level continues that event (same thresholds and draws)
        same = np.abs(v - self._ev_v) <= EVENT_TOL  # False where no event (NaN)
        v_set, v_reset = self._thresholds()
        if same.any():
            v_set = np.where(same, self._ev_vth[0], v_set)
            v_reset = np.where(same, self._ev_vth[1], v_reset)
        xs = v / v_set - 1.0  # > 0 beyond the SET threshold
        xr = v / v_reset - 1.0  # > 0 beyond the RESET threshold (v_reset < 0)
        on = xs > 0.0
        off = xr > 0.0
        if not (on.any() or off.any()):
            if not np.all(np.isnan(self._ev_v)):
                self._ev_v = np.full(self.shape, np.nan)
            return False  # nothing switches: no random numbers drawn either
        t0 = self.now()
        self._fold((on | off) & self._free, t0)
        p = self.profile
        rng = self.rng
        sh = self.shape
        rate = p.k_on * np.maximum(xs, 0.0) ** p.alpha_on - p.k_off * np.maximum(xr, 0.0) ** (
            p.alpha_off
        )
        par = self._par
        z = rng.standard_normal((3,) + sh)
        xi = np.where(same, self._ev_xi, np.exp(par["c2c_sigma"] * z[0]))
        dw = np.clip(rate * (duration_s * xi), -1.0, 1.0)
        flip = self._ev_flip
        if np.any(par["p_nonmonotonic"]):
            flip = np.where(same, flip, rng.random(sh) < par["p_nonmonotonic"])
            dw = np.where(on & flip, -dw, dw)
        switching = on | off
        self._ev_v = np.where(switching, v, np.nan)
        self._ev_xi = xi
        self._ev_flip = flip
        self._ev_vth = (v_set, v_reset)
        w_old = self._w
        w_new = np.clip(w_old + dw, 0.0, 1.0)
        # the level left behind (and the next thresholds) decorrelate with the switching drive
        # |Δw| (before clipping: a RESET pulse on a cell already at w = 0 still reshapes its gap)
        drive = np.abs(dw)
        rho = np.exp(-drive / p.level_decorrelation)
        kick = np.sqrt(1.0 - rho * rho)
        delta = rho * self._delta + (kick * par["level_sigma"]) * z[1]
        # compliance: growth stops where the current at v reaches the limit; the cap acts on the
        # conductance reached (state and level together) and never lowers one already above it
        icc = np.asarray(i_compliance, dtype=float)
        if np.any(np.isfinite(icc)):
            q = self._quantised
            ln_old = q(w_old) * self._ln_ratio + self._delta
            ln_new = q(w_new) * self._ln_ratio + delta
            capped = on & np.isfinite(icc) & (ln_new > ln_old)
            if capped.any():
                with np.errstate(divide="ignore", invalid="ignore"):  # used only where v > 0
                    ln_cap = np.log(icc / _sinh_over_a(self.a, v)) - self._ln_g0_off
                ln_lim = np.maximum(ln_old, ln_cap)
                w_lim = np.clip((ln_lim - delta) / self._ln_ratio, 0.0, 1.0)
                if self._levels >= 2:  # a discrete filament stops at the first level at the cap
                    n = self._levels - 1
                    k_cap = np.ceil(np.clip((ln_cap - delta) / self._ln_ratio, 0.0, 1.0) * n - 1e-9)
                    w_lim = np.where(ln_old >= ln_cap, q(w_old), k_cap / n)
                cut = capped & (ln_new > ln_lim)
                w_new = np.where(cut, np.minimum(w_new, w_lim), w_new)
        upd = switching & (drive > 0) & self._free
        self._w = np.where(upd, w_new, w_old)
        self._delta = np.where(upd, delta, self._delta)
        if np.any(par["c2c_vth_sigma"]):
            eps = rho * self._eps + (kick * par["c2c_vth_sigma"]) * z[2]
            self._eps = np.where(upd, eps, self._eps)
            self._vth = None
        self._start_clocks(upd, same, on, t0 + duration_s)
        return bool(upd.any())
