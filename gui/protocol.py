"""I-V sweep protocols: the full live sweep as one value, named presets, remembered settings.

A :class:`SweepProtocol` holds every setting of :meth:`crossbar.core.Crossbar.iv_sweep` the
I-V panel offers (see :class:`crossbar.policy.SweepSettings`): the staircase, cycles, the SET
branch's compliance and biasing, the RESET branch's own compliance and biasing (None: the SET
branch's), the integration time and the time per point. No Qt here.

Built-in presets (:data:`BUILTIN_PRESETS`):

* ``"xbar calibrate (live default)"`` — the CLI's default live protocol, taken from the defaults
  of :func:`calibration.live.calibrate_cell` (cols-2v/3 at 25 µA for V ≥ 0, v/3 at 250 µA below
  0 V, 50 ms per point, 0.1 V steps, 10 cycles), so the two never drift apart;
* ``"quick look"`` — the same protocol at 0.5 V steps and 2 cycles;
* ``"one setting, ground"`` — one compliance and ``ground`` biasing throughout, bare readings.

User presets and the last protocol used are stored as JSON in the GUI settings.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BUILTIN_PRESETS",
    "CLI_PRESET",
    "SweepProtocol",
    "cli_default_protocol",
    "load_presets",
    "save_presets",
]

CLI_PRESET = "xbar calibrate (live default)"


_SWEEP_OPTIONS = (
    "compliance", "cycles", "nplc", "biasing", "delay", "reset_compliance", "reset_biasing"
)  # fmt: skip


@dataclass(frozen=True)
class SweepProtocol:
    """One I-V sweep protocol. Voltages V, currents A, times s."""

    v_pos: float = 6.0
    v_neg: float = -6.0
    step: float = 0.1
    cycles: int = 10
    compliance: float = 25e-6
    biasing: str = "cols-2v/3"
    reset_compliance: float | None = 250e-6  # None: the SET branch's compliance
    reset_biasing: str | None = "v/3"  # None: the SET branch's biasing
    nplc: float = 1.0
    point_time: float | None = 0.05  # None: the bare nplc reading (no settling delay)

    @property
    def split(self) -> bool:
        """True when the RESET branch (V < 0) has its own compliance or biasing."""
        return self.reset_compliance is not None or self.reset_biasing is not None

    @property
    def delay(self) -> float:
        """Settling delay before each reading (s): ``point_time`` − the reading's ``nplc``/60
        (0 without a point time). ValueError when the point time cannot hold the reading."""
        if self.point_time is None:
            return 0.0
        d = self.point_time - self.nplc / 60.0
        if d < -1e-12:
            raise ValueError(
                f"time per point {self.point_time * 1e3:g} ms cannot hold the {self.nplc:g}-PLC "
                f"reading ({self.nplc / 60 * 1e3:.4g} ms)"
            )
        return max(0.0, d)

    def sweep_options(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`crossbar.core.Crossbar.iv_sweep` the protocol sets:
        ``compliance``, ``cycles``, ``nplc``, ``biasing``, ``delay`` (s, from the point time; a
        ValueError as :attr:`delay`), ``reset_compliance`` and ``reset_biasing``."""
        return {key: getattr(self, key) for key in _SWEEP_OPTIONS}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepProtocol:
        """From a dict (unknown keys ignored, missing ones default; TypeError/ValueError on a
        value of the wrong kind)."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        kw: dict[str, Any] = {}
        for k, v in data.items():
            if k not in names:
                continue
            if v is None:
                kw[k] = None
            elif k == "cycles":
                kw[k] = int(v)
            elif k in ("biasing", "reset_biasing"):
                kw[k] = str(v)
            else:
                kw[k] = float(v)
        return cls(**kw)

    @classmethod
    def from_json(cls, text: str) -> SweepProtocol:
        return cls.from_dict(json.loads(text))


def cli_default_protocol() -> SweepProtocol:
    """The protocol of ``xbar calibrate --bench … --cell …`` (the defaults of
    :func:`calibration.live.calibrate_cell`)."""
    from calibration.live import calibrate_cell

    d = {k: p.default for k, p in inspect.signature(calibrate_cell).parameters.items()}

    def name(b: Any) -> str | None:
        return None if b is None else str(getattr(b, "name", b))

    return SweepProtocol(
        v_pos=float(d["v_max"]),
        v_neg=float(d["v_min"]),
        step=float(d["step"]),
        cycles=int(d["cycles"]),
        compliance=float(d["compliance"]),
        biasing=str(name(d["biasing"])),
        reset_compliance=d["reset_compliance"],
        reset_biasing=name(d["reset_biasing"]),
        nplc=float(d["nplc"]),
        point_time=d["point_time"],
    )


def _builtin() -> dict[str, SweepProtocol]:
    cli = cli_default_protocol()
    return {
        CLI_PRESET: cli,
        "quick look": dataclasses.replace(cli, step=0.5, cycles=2),
        "one setting, ground": SweepProtocol(
            step=0.1,
            cycles=3,
            compliance=25e-6,
            biasing="ground",
            reset_compliance=None,
            reset_biasing=None,
            point_time=None,
        ),
    }


BUILTIN_PRESETS: dict[str, SweepProtocol] = _builtin()


def load_presets(text: str) -> dict[str, SweepProtocol]:
    """User presets from their settings JSON ({name: protocol dict}); bad entries dropped."""
    try:
        raw = json.loads(text) if text else {}
    except ValueError:
        return {}
    out = {}
    if isinstance(raw, dict):
        for k, v in raw.items():
            try:
                out[str(k)] = SweepProtocol.from_dict(v)
            except (TypeError, ValueError, AttributeError):
                continue
    return out


def save_presets(presets: dict[str, SweepProtocol]) -> str:
    """The settings JSON of user presets."""
    return json.dumps({k: dataclasses.asdict(v) for k, v in presets.items()})
