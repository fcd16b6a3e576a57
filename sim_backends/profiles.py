"""Device profiles: every physical parameter of the simulated Ag/perovskite-nanowire/Au memristor.

A :class:`DeviceProfile` is an immutable bag of numbers read by :class:`sim_backends.device.
DeviceArray`; the model equations are documented there. Three named presets span the paper's
usability range (METHODS section 1): ``optimized`` (U ≈ 0.9), ``typical`` (U ≈ 0.5) and ``poor``
(U ≈ 0.15). Their ``target_usability`` is what the section-1 usability of ten simulated cyclic
sweeps (0 → +6 → 0 → −6 → 0 V, 0.1 V steps, 25 µA compliance, 50 ms per point) lands on; the
tests check it for several seeds.

Conductance window (decision): ``g_off`` = 0.1 µS and ``g_on`` = 100 µS, read at 0.1 V.

* Inference: a 10×10 array read at ≤ 0.3 V sinks at most 10 · 0.3 V · 100 µS = 0.3 mA per column
  (easy for a transimpedance amplifier; cell currents 30 nA … 30 µA), line resistances of a few Ω
  are negligible against ≥ 10 kΩ cells, and G_on/G_off = 1000 leaves a wide programmable window
  ``[G_min, G_max]`` (e.g. 1–100 µS) for differential weights, with the HRS as a near-zero.
* Compliance: an ECM cell's low-resistance state is set by the current the source lets
  through while the filament grows. In the model a SET stops where the cell carries ``I_cc``
  at the voltage it sees, i.e. at the 0.1 V read conductance ``≈ I_cc · a / sinh(a · V)``
  (the sinh law of :mod:`sim_backends.device`; ``≈ I_cc / V`` for an ohmic cell). With the
  paper's characterisation compliance (25 µA at V ≈ 3.1 V, a = 1 /V) that is ≈ 2.3 µS, a
  ×20 jump above the HRS: the cyclic sweep shows a clear SET and its hysteresis loop, but
  only visits the lower part of the window — physically right (the compliance is what
  protects the cell) and the reason why G_off ≈ 1 µS (the brief's first guess) does not work:
  the HRS would already carry 10 µA at 3 V and the 25 µA sweep would show a ×2 window.
  Programming pulses under the 6487's next limit (250 µA) reach ≈ 15–25 µS, unlimited (AWG)
  pulses the full ``g_on``.
* The HRS stays below the compliance up to V_set: ``g_off · sinh(a · V_set) / a`` = 1 µA.
* The non-linearity a = 1 /V makes the 0.3 V read 1.5 % super-linear (0.17 % at 0.1 V).

Kinetics (``optimized``, ``typical``): a 1 ms pulse at 3.5 V moves the state by ≈ 0.05
(≈ ×1.5 in conductance, the program-and-verify granularity), a 50 ms sweep step SETs within
0.1–0.2 V above threshold; half-selected cells (V/2 = 1.75 V of a 3.5 V pulse) are far below
threshold. ``poor`` switches 20× slower, has a near-ohmic HRS (a = 0.3 /V), a wide
cycle-to-cycle spread and 20 % non-monotonic SET events.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["PROFILES", "DeviceProfile", "get_profile"]


@dataclass(frozen=True)
class DeviceProfile:
    """Physical parameters of one device type (units and sensible ranges in the comments).

    Device-to-device (d2d) spreads are drawn once per cell when a ``DeviceArray`` is built;
    cycle-to-cycle (c2c) spreads at every switching event.
    """

    name: str = "custom"
    target_usability: float | None = None  # METHODS §1 U the preset was tuned to, [0, 1] or None
    # -- read regime: I = G(w)·sinh(a·V)/a, G log-linear in the state w between G_off and G_on
    g_off: float = 1e-7  # S, HRS (w = 0) conductance read at 0.1 V; 1e-11 … 1e-3
    g_on: float = 1e-4  # S, LRS (w = 1) conductance read at 0.1 V; > g_off, up to 1e-1
    nonlinearity: float = 1.0  # a, 1/V, sinh non-linearity; 0 (ohmic) … 4
    # -- switching (VTEAM-like): dw/dt = k_on·(V/V_set − 1)^α_on above V_set, −k_off·(…) below V_reset
    v_set: float = 3.0  # V, SET threshold (> 0); 0.2 … 10
    v_reset: float = -2.2  # V, RESET threshold (< 0); −10 … −0.2
    k_on: float = 2.0e3  # 1/s, SET rate prefactor (state units per second); 1e-3 … 1e9
    k_off: float = 1.5e3  # 1/s, RESET rate prefactor; 1e-3 … 1e9
    alpha_on: float = 2.0  # SET rate exponent; 1 … 10
    alpha_off: float = 2.0  # RESET rate exponent; 1 … 10
    # -- noise and variability
    read_noise: float = 0.01  # relative std of a current reading (Gaussian); 0 … 0.5
    c2c_sigma: float = 0.2  # log-normal σ of the factor on each switching event's Δw; 0 … 2
    level_sigma: float = 0.05  # log-normal σ of the conductance level reached by switching; 0 … 3
    level_decorrelation: float = 0.1  # Δw (state units) over which that level is redrawn; > 0
    c2c_vth_sigma: float = 0.0  # relative (log-normal) c2c spread of the thresholds; 0 … 0.5
    d2d_vth_sigma: float = 0.03  # relative (log-normal) d2d spread of V_set and V_reset; 0 … 0.5
    d2d_g_sigma: float = 0.1  # log-normal d2d spread of G_off and G_on; 0 … 2
    p_stuck_on: float = 0.0  # probability a cell is stuck at ON (w = 1); 0 … 1
    p_stuck_off: float = 0.0  # probability a cell is stuck at OFF (w = 0); 0 … 1
    p_nonmonotonic: float = 0.0  # probability a SET event lowers the state instead; 0 … 1

    def __post_init__(self) -> None:
        problems = []

        def bad(name: str, why: str) -> None:
            problems.append(f"{name} = {getattr(self, name)!r}: {why}")

        for name in (
            "g_off",
            "g_on",
            "k_on",
            "k_off",
            "alpha_on",
            "alpha_off",
            "level_decorrelation",
        ):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                bad(name, "must be a finite number > 0")
        for name in (
            "nonlinearity",
            "read_noise",
            "c2c_sigma",
            "level_sigma",
            "c2c_vth_sigma",
            "d2d_vth_sigma",
            "d2d_g_sigma",
        ):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                bad(name, "must be a finite number >= 0")
        for name in ("p_stuck_on", "p_stuck_off", "p_nonmonotonic"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0.0 <= v <= 1.0):
                bad(name, "must be a probability in [0, 1]")
        if not problems:
            if self.g_on <= self.g_off:
                bad("g_on", f"must exceed g_off = {self.g_off!r}")
            if self.p_stuck_on + self.p_stuck_off > 1.0:
                bad("p_stuck_off", "p_stuck_on + p_stuck_off must be <= 1")
        if not (math.isfinite(self.v_set) and self.v_set > 0):
            bad("v_set", "must be a finite voltage > 0")
        if not (math.isfinite(self.v_reset) and self.v_reset < 0):
            bad("v_reset", "must be a finite voltage < 0")
        if self.target_usability is not None and not 0.0 <= self.target_usability <= 1.0:
            bad("target_usability", "must be in [0, 1] or None")
        if problems:
            raise ValueError(f"invalid DeviceProfile {self.name!r}: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceProfile:
        """Build from :meth:`to_dict` output; missing keys take the defaults.

        Raises:
            ValueError: unknown keys (named in the message) or invalid values.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown DeviceProfile field(s): {', '.join(unknown)}; "
                f"known fields: {', '.join(sorted(known))}"
            )
        return cls(**data)

    def replace(self, **changes: Any) -> DeviceProfile:
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)


# Presets (see the module docstring). Measured section-1 usability over seeds 0…39 (10 cycles,
# ±6 V, 25 µA): optimized 0.92 ± 0.01, typical 0.50 ± 0.05, poor 0.14 ± 0.06 (mean ± sd); the
# spread is the estimator's own: ten cycles give σ̂ to about ±10–20 %.
PROFILES: dict[str, DeviceProfile] = {
    "optimized": DeviceProfile(
        name="optimized",
        target_usability=0.9,
        read_noise=0.01,
        c2c_sigma=0.1,
        level_sigma=0.08,
        c2c_vth_sigma=0.0,
        d2d_vth_sigma=0.02,
        d2d_g_sigma=0.05,
        p_stuck_on=0.0,
        p_stuck_off=0.0,
        p_nonmonotonic=0.0,
    ),
    "typical": DeviceProfile(
        name="typical",
        target_usability=0.5,
        read_noise=0.03,
        c2c_sigma=0.3,
        level_sigma=0.5,
        c2c_vth_sigma=0.12,
        d2d_vth_sigma=0.05,
        d2d_g_sigma=0.2,
        p_stuck_on=0.01,
        p_stuck_off=0.01,
        p_nonmonotonic=0.02,
    ),
    "poor": DeviceProfile(
        name="poor",
        target_usability=0.15,
        nonlinearity=0.3,
        k_on=100.0,
        read_noise=0.04,
        c2c_sigma=0.5,
        level_sigma=0.4,
        c2c_vth_sigma=0.06,
        d2d_vth_sigma=0.1,
        d2d_g_sigma=0.4,
        p_stuck_on=0.03,
        p_stuck_off=0.03,
        p_nonmonotonic=0.2,
    ),
}


def get_profile(name: str | DeviceProfile) -> DeviceProfile:
    """The preset called ``name`` (a DeviceProfile is returned unchanged).

    Raises:
        KeyError: unknown name; the message lists the presets.
    """
    if isinstance(name, DeviceProfile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(
            f"unknown device profile {name!r}; available: {', '.join(sorted(PROFILES))}"
        ) from None
