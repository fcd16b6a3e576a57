"""The deployment profile: what a device does at read voltage after programming.

Written by :func:`crossbar.characterise.characterise` (``xbar characterise``), read by the
deployment noise model. It is distinct from the usability profile of METHODS §1 (a SET-branch
statistic of cyclic sweeps): these are the figures a deployed network's error comes from —
read noise, how far program-and-verify lands from its target, relaxation and drift after
programming, how many levels a filament holds, and which cells are stuck. JSON, validated with
pydantic: a missing or out-of-range field, or an unknown one, is one line naming the field and
what is allowed (:class:`DeploymentProfileError`).

Units: conductances S, voltages V, times s; ``*_rel`` figures are relative (fractions of G).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "FORMAT",
    "DeploymentProfile",
    "DeploymentProfileError",
    "PulseResponse",
    "Programming",
    "ReadNoise",
    "Window",
    "load_deployment_profile",
]

FORMAT = "xbar-deployment-profile/1"

Conductance = Annotated[float, Field(ge=0.0, le=1.0)]  # S
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Cell = tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]


class DeploymentProfileError(ValueError):
    """A deployment-profile file that cannot be used; the message is one line naming the file,
    the field and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ReadNoise(_Strict):
    """Repeated reads of each cell at ``v_read``: relative spread of one read of G."""

    v_read: Annotated[float, Field(gt=0.0, le=5.0)]  # V
    biasing: str
    n_reads: Annotated[int, Field(ge=2)]
    sigma_rel: Fraction  # median over cells of std(G)/mean(G) of single reads
    sigma_rel_per_cell: list[Fraction]
    g_per_cell: list[Conductance]  # S, the mean read of each cell
    slope: float  # d ln σ_abs / d ln G over the cells: 1 = noise relative to G, 0 = absolute


class Programming(_Strict):
    """Program-and-verify to targets across the window, then settle reads (averaged)."""

    tol: Annotated[float, Field(gt=0.0, le=1.0)]
    targets: list[Conductance]  # S
    sigma_rel: Fraction  # σ of achieved/target − 1 right after verify (read noise removed)
    sigma_rel_by_target: list[Fraction]
    mean_pulses: Annotated[float, Field(ge=0.0)]
    converged_fraction: Fraction
    settle_times: list[Annotated[float, Field(gt=0.0)]]  # s after programming
    relaxation_rel: Annotated[float, Field(ge=-1.0, le=10.0)]  # mean G(t1)/G(0) − 1
    drift_nu_mean: Annotated[float, Field(ge=-1.0, le=1.0)]  # g ∝ t^−ν
    drift_nu_std: Annotated[float, Field(ge=0.0, le=1.0)]
    dissolved_fraction: Fraction  # programmed cells that fell to the HRS while settling
    #: the same share by each settle time (cumulative, one per ``settle_times``; [] in older
    #: profiles): when the filaments dissolve, not only how many
    dissolved_by_settle: list[Fraction] = []
    #: mean bench time of one cell's program-and-verify, s (the pulses and verify reads of
    #: :meth:`Crossbar.program_cell`; 0 in older profiles: unknown). A deployment programs its
    #: cells one after another, so a cell's age at the MVMs is the time the later cells take.
    seconds_per_cell: Annotated[float, Field(ge=0.0)] = 0.0
    #: the spread of G(t1)/G(0) − 1 over the cells (the reads' own noise removed; 0 in older
    #: profiles: every cell relaxes by the mean)
    relaxation_std: Annotated[float, Field(ge=0.0, le=10.0)] = 0.0
    #: the share of the converged cells already dissolved during the reads right after
    #: program-and-verify (one read below half the target), and how long those reads took, s
    #: (0 in older profiles: unknown): the dissolution before the first settle time
    dissolved_right_after: Fraction = 0.0
    seconds_right_after: Annotated[float, Field(ge=0.0)] = 0.0


class PulseResponse(_Strict):
    """Potentiation (SET) then depression (RESET) trains of identical pulses, read after each."""

    amplitude_set: Annotated[float, Field(gt=0.0, le=50.0)]  # V
    amplitude_reset: Annotated[float, Field(lt=0.0, ge=-50.0)]  # V
    width: Annotated[float, Field(gt=0.0, le=10.0)]  # s
    n_pulses: Annotated[int, Field(ge=2)]
    levels: Annotated[int, Field(ge=0)]  # levels of a discrete filament; 0: analog
    level_conductances: list[Conductance] = []  # S, where those levels are (median read)
    dynamic_range: Annotated[float, Field(ge=1.0)]  # G_max / G_min of the trains
    g_min: Conductance
    g_max: Conductance
    nonlinearity_set: float  # NeuroSim-style ν of G(p) ∝ 1 − exp(−ν p/N); 0 = linear
    nonlinearity_reset: float
    asymmetry: Annotated[float, Field(ge=0.0)]  # |ν_set − ν_reset|

    @property
    def levels_text(self) -> str:
        """``"3 levels"``, or ``"0 levels (analog)"``."""
        return f"{self.levels} levels" + (" (analog)" if self.levels == 0 else "")


class Window(_Strict):
    """Every cell after strong RESET and strong SET pulses: its reachable window."""

    g_min: list[list[Conductance]]  # S, (rows, cols)
    g_max: list[list[Conductance]]
    stuck: list[Cell]
    stuck_fraction: Fraction
    min_ratio: Annotated[float, Field(gt=1.0)]  # G_max/G_min below this: stuck


class DeploymentProfile(_Strict):
    """Everything :func:`crossbar.characterise.characterise` measured (see the module doc)."""

    format: Literal["xbar-deployment-profile/1"] = FORMAT
    bench: str
    shape: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]
    cells: list[Cell]
    created: str
    bench_time: Annotated[float, Field(ge=0.0)]  # s of bench time the characterisation took
    protocol: dict[str, Any]
    read_noise: ReadNoise
    programming: Programming
    pulse_response: PulseResponse
    window: Window

    def save(self, path: str | Path) -> Path:
        """Write the profile as JSON (UTF-8); returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return p

    @classmethod
    def from_dict(cls, data: Any, *, origin: str = "<dict>") -> DeploymentProfile:
        """Validate a parsed document; DeploymentProfileError (one line) if it is not one."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise DeploymentProfileError(f"{origin}: {_message(exc.errors()[0])}") from None


def load_deployment_profile(path: str | Path) -> DeploymentProfile:
    """Read and validate a deployment-profile JSON file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeploymentProfileError(f"{p}: no such deployment profile") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeploymentProfileError(f"{p}: not a JSON deployment profile ({exc})") from None
    return DeploymentProfile.from_dict(data, origin=str(p))


def _message(err: dict[str, Any]) -> str:
    """``field.path = value: what is allowed`` for one pydantic error."""
    where = ".".join(str(x) for x in err.get("loc", ())) or "profile"
    if err["type"] == "missing":
        return f"{where}: missing (required)"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown field"
    allowed = err.get("msg", "invalid").replace("Input should be", "allowed")
    value = err.get("input")
    shown = (
        json.dumps(value) if isinstance(value, (int, float, str, bool)) else type(value).__name__
    )
    return f"{where} = {shown}: {allowed}"
