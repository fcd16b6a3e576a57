"""A calibrated device's noise profile: what the inference engine's hardware-noise model needs.

METHODS section 2 uses, from a device's section-1 calibration: σ (log-normal stochastic
spread), α_nm, the LCIS (start index ``s`` and length ``L``), ``L_min`` and the mean conductance
curve ``Ḡ`` along the SET branch. Saved as JSON so a profile measured on one machine can be used
for training on another.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

PROFILE_FORMAT = "xbar-device-profile/1"


class ProfileError(ValueError):
    """A device-profile file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class DeviceNoiseProfile:
    """Section-1 results of one device, in the form the section-2 noise model uses.

    Attributes:
        name: device or file name.
        sigma: σ used by the noise model (σ_up by default), dimensionless, ≥ 0.
        alpha_nm: non-monotonic factor in [0, 1].
        usability: U = α_nm · exp(−σ) in [0, 1].
        lcis_start: index ``s`` of the LCIS start in ``mean_curve_g`` (0-based).
        lcis_length: LCIS length ``L`` in points, ≥ 1.
        l_min: ``L_min`` in points, ≥ 1.
        mean_curve_v: SET-branch voltages of the mean curve, V.
        mean_curve_g: mean conductance ``Ḡ`` at those voltages, S (> 0).
    """

    name: str
    sigma: float
    alpha_nm: float
    usability: float
    lcis_start: int
    lcis_length: int
    l_min: int
    mean_curve_v: list[float] = field(default_factory=list)
    mean_curve_g: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            problems.append(f"sigma must be a finite number >= 0, got {self.sigma!r}")
        if not (0.0 <= self.alpha_nm <= 1.0):
            problems.append(f"alpha_nm must be in [0, 1], got {self.alpha_nm!r}")
        if not (0.0 <= self.usability <= 1.0):
            problems.append(f"usability must be in [0, 1], got {self.usability!r}")
        if self.lcis_length < 1 or self.l_min < 1:
            problems.append("lcis_length and l_min must be >= 1")
        if len(self.mean_curve_v) != len(self.mean_curve_g):
            problems.append("mean_curve_v and mean_curve_g must have the same length")
        if self.mean_curve_g and not (0 <= self.lcis_start < len(self.mean_curve_g)):
            problems.append(f"lcis_start {self.lcis_start} is outside the mean curve")
        if problems:
            raise ProfileError(f"device profile {self.name!r}: " + "; ".join(problems))

    @property
    def non_monotonic(self) -> bool:
        """True when the LCIS is shorter than L_min (the non-monotonic noise applies)."""
        return self.lcis_length < self.l_min

    def to_json(self) -> str:
        """Serialise with a format tag."""
        return json.dumps({"format": PROFILE_FORMAT, **asdict(self)}, indent=1)

    def save(self, path: str | Path) -> Path:
        """Write the profile as JSON; returns the path."""
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_json(cls, text: str, *, source: str = "<string>") -> DeviceNoiseProfile:
        """Parse a profile; raises ProfileError naming the source and the problem."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProfileError(
                f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})"
            ) from exc
        if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
            raise ProfileError(
                f"{source}: not a device profile (expected format {PROFILE_FORMAT!r})"
            )
        data.pop("format")
        names = {f for f in cls.__dataclass_fields__}
        missing = sorted(names - set(data) - {"mean_curve_v", "mean_curve_g"})
        unknown = sorted(set(data) - names)
        if missing or unknown:
            raise ProfileError(f"{source}: missing keys {missing}, unknown keys {unknown}")
        try:
            return cls(**data)
        except ProfileError as exc:
            raise ProfileError(f"{source}: {exc}") from exc
        except TypeError as exc:
            raise ProfileError(f"{source}: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> DeviceNoiseProfile:
        """Read a profile JSON file."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ProfileError(f"{path}: cannot read device profile ({exc.strerror})") from exc
        return cls.from_json(text, source=str(path))
