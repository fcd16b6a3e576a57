"""The parameters of the simulated memristor: names, units, ranges — declared once.

A bench file may describe the simulated device (``[simulation] profile`` and
``[simulation.device]``, :mod:`crossbar.config`), and the simulation implements it
(:class:`sim_backends.profiles.DeviceProfile` subclasses :class:`DeviceParameters`; the model's
equations are in :mod:`sim_backends.device`). Like :mod:`crossbar.backend`, this is the contract
between the two: the bench configuration validates a device against these declarations before
anything is built, and the simulation validates every profile against the same ones.

Each field is a pydantic-annotated type with its allowed range (closed unless ``gt``/``lt``); a
comment gives its unit and meaning. :data:`DEVICE_FIELDS` lists them in order; the rules between
fields (``g_on > g_off``, stuck-cell probabilities summing to at most 1, ``levels`` 0 or ≥ 2) are
:func:`cross_field_problems`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import ConfigDict, Field

__all__ = ["DEVICE_FIELDS", "DeviceParameters", "cross_field_problems"]

_STRICT = dict(strict=True)
Conductance = Annotated[float, Field(gt=0.0, le=10.0, **_STRICT)]  # S
Rate = Annotated[float, Field(gt=0.0, le=1e12, **_STRICT)]  # 1/s
Exponent = Annotated[float, Field(gt=0.0, le=20.0, **_STRICT)]
Probability = Annotated[float, Field(ge=0.0, le=1.0, **_STRICT)]
Spread = Annotated[float, Field(ge=0.0, le=5.0, **_STRICT)]  # log-normal σ
RelSpread = Annotated[float, Field(ge=0.0, le=1.0, **_STRICT)]  # relative σ
TimeS = Annotated[float, Field(gt=0.0, le=1e8, **_STRICT)]  # s


@dataclass(frozen=True)
class DeviceParameters:
    """Every physical parameter of the simulated Ag/perovskite-nanowire/Au memristor.

    Device-to-device (d2d) spreads are drawn once per cell when an array is built; cycle-to-cycle
    (c2c) spreads at every switching event; read noise at every read. The defaults are a clean
    analog device without retention loss, read-noise terms beyond ``read_noise`` or defects.
    """

    __pydantic_config__ = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: Annotated[str, Field(strict=True, pattern=r"\S")] = "custom"
    # METHODS §1 usability the preset was tuned to (documentation and tests), or None
    target_usability: Annotated[float, Field(ge=0.0, le=1.0, **_STRICT)] | None = None

    # -- read regime: I = G·sinh(a·V)/a, ln G linear in the filament state w ∈ [0, 1]
    g_off: Conductance = 1e-7  # S, HRS (w = 0) conductance read at 0.1 V
    g_on: Conductance = 1e-4  # S, LRS (w = 1) conductance read at 0.1 V; > g_off
    nonlinearity: Annotated[float, Field(ge=0.0, le=4.0, **_STRICT)] = 1.0  # a, 1/V
    # discrete switching: 0 = analog (G follows w); n ≥ 2 = the filament holds n conductance
    # levels, log-spaced from G_off to G_on (2: binary), and jumps between them
    levels: Annotated[int, Field(ge=0, le=256, strict=True)] = 0

    # -- switching (VTEAM-like): dw/dt = k_on·(V/V_set − 1)^α_on above V_set, −k_off·(…) below V_reset
    v_set: Annotated[float, Field(gt=0.0, le=100.0, **_STRICT)] = 3.0  # V, SET threshold
    v_reset: Annotated[float, Field(ge=-100.0, lt=0.0, **_STRICT)] = -2.2  # V, RESET threshold
    k_on: Rate = 2.0e3  # 1/s, SET rate prefactor (state units per second)
    k_off: Rate = 1.5e3  # 1/s, RESET rate prefactor
    alpha_on: Exponent = 2.0  # SET rate exponent
    alpha_off: Exponent = 2.0  # RESET rate exponent

    # -- noise and variability of switching
    read_noise: RelSpread = 0.01  # relative σ of a measured (terminal) current, per reading
    c2c_sigma: Spread = 0.2  # log-normal σ of the factor on each switching event's Δw
    level_sigma: Spread = 0.05  # log-normal σ of the conductance level a switching event leaves
    level_decorrelation: Annotated[float, Field(gt=0.0, le=100.0, **_STRICT)] = 0.1  # Δw, state
    c2c_vth_sigma: RelSpread = 0.0  # relative (log-normal) c2c spread of the thresholds
    d2d_vth_sigma: RelSpread = 0.03  # relative (log-normal) d2d spread of V_set and V_reset
    d2d_g_sigma: Spread = 0.1  # log-normal d2d spread of G_off and G_on
    p_stuck_on: Probability = 0.0  # probability a cell is stuck at ON (w = 1)
    p_stuck_off: Probability = 0.0  # probability a cell is stuck at OFF (w = 0)
    p_nonmonotonic: Probability = 0.0  # probability a SET event lowers the state instead

    # -- after a switching event (time t since its end, on the bench's clock)
    # fast relaxation of the grown filament: ln G drops by w·r·(1 − exp(−t/relax_tau)), r drawn
    # per event from N(relax_mean, relax_sigma²) (w: the state the event left; the HRS, w = 0,
    # has no filament to relax)
    relax_mean: Annotated[float, Field(ge=-2.0, le=2.0, **_STRICT)] = 0.0  # ln G, > 0 lowers G
    relax_sigma: Annotated[float, Field(ge=0.0, le=3.0, **_STRICT)] = 0.0  # ln G, per event
    relax_tau: TimeS = 1.0  # s
    # power-law drift g(t) = g(t0)·(t/t0)^(−ν) for t > t0, ν per cell ~ N(drift_nu, sd²), ≥ 0
    drift_nu: Annotated[float, Field(ge=0.0, le=1.0, **_STRICT)] = 0.0
    drift_nu_sigma: Annotated[float, Field(ge=0.0, le=1.0, **_STRICT)] = 0.0  # d2d sd of ν
    drift_t0: TimeS = 1.0  # s
    # Ag filament: a SET event leaves an unstable filament with probability p_dissolve; it
    # dissolves (w → 0, the HRS) after an exponential time of mean dissolve_tau
    p_dissolve: Probability = 0.0
    dissolve_tau: TimeS = 60.0  # s

    # -- read noise at read voltage, relative to each cell's G (besides read_noise above)
    g_noise: RelSpread = 0.0  # white: relative σ of G, drawn per cell and per read
    rtn_fraction: Probability = 0.0  # cells with a random-telegraph fluctuator (d2d)
    rtn_amplitude: Annotated[float, Field(ge=0.0, le=1.0, **_STRICT)] = (
        0.0  # ΔG/G between its levels
    )
    rtn_tau: Annotated[float, Field(gt=0.0, le=1e6, **_STRICT)] = 1e-3  # s, mean dwell per level
    # read disturb: every read moves w by read_disturb·V/V_set (V > 0; V/V_reset towards the
    # HRS for V < 0), V the voltage the cell sees (state units per read)
    read_disturb: Annotated[float, Field(ge=0.0, le=0.01, **_STRICT)] = 0.0


#: The device fields, in declaration order.
DEVICE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(DeviceParameters))


def cross_field_problems(values: dict[str, Any]) -> list[str]:
    """The rules between fields that ``values`` (a complete device, field → value) breaks, each
    as ``"field = value: allowed …"``; empty when it is consistent."""
    problems = []
    g_off, g_on = values.get("g_off"), values.get("g_on")
    if _number(g_off) and _number(g_on) and not g_on > g_off:
        problems.append(f"g_on = {g_on!r}: allowed a number > g_off ({g_off:g})")
    on, off = values.get("p_stuck_on"), values.get("p_stuck_off")
    if _number(on) and _number(off) and on + off > 1.0:
        problems.append(f"p_stuck_off = {off!r}: allowed a number <= 1 - p_stuck_on ({1 - on:g})")
    if values.get("levels") == 1:
        problems.append("levels = 1: allowed 0 (analog) or an integer in [2, 256]")
    return problems


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
