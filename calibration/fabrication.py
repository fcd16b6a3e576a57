"""Bayesian optimisation of fabrication conditions (METHODS section 4).

Five variables describe a device's fabrication:

==================  ==========================================  ==========================
variable            meaning                                     default grid levels
==================  ==========================================  ==========================
perovskite          MAPbI3, MAPbBr3, FAPbI3, CsPbI3              all 4
nw_length_um        nanowire length, µm                          0.6 1 1.2 1.5 1.8 2 2.5 3
nw_diameter_nm      nanowire diameter, nm (10–300)               10 50 100 150 200 250 300
pb_ed_min           Pb electrodeposition time, min (5–30)        5 10 15 20 25 30
ag_thickness_nm     Ag top-electrode thickness, nm (50–600)      50 100 150 200 400 600
==================  ==========================================  ==========================

**Grid size (decision).** The paper's grid had 8,400 configurations but does not give the levels
of the last three variables. 8,400 = 2⁴·3·5²·7 is not a multiple of 4 types × 8 lengths = 32,
so no choice of levels reproduces it with the variables as specified. The default grid above has
4 × 8 × 7 × 6 × 6 = **8,064** configurations (the levels include every value of the shared
``conditions.csv`` that lies in the stated ranges). Any grid can be given as a JSON or TOML file
(:func:`read_grid`); keys missing from the file keep their default levels.

**Encoding.** Every variable is mapped to [0, 1]: numeric variables linearly between the grid's
lowest and highest level (history points outside the grid's range map outside [0, 1], which the
GP handles); the perovskite type numerically as ``index / 3`` in the fixed order
MAPbI3, MAPbBr3, FAPbI3, CsPbI3 (as the paper: numerical encoding of the categorical variable).

**Surrogate.** BoTorch ``SingleTaskGP`` on the encoded inputs with the usability as the outcome
(standardised by BoTorch's default ``Standardize`` transform, noise level inferred), kernel set
explicitly to ``ScaleKernel(RBFKernel(ard_num_dims=5))`` — the squared-exponential kernel of the
paper — with BoTorch's dimension-scaled log-normal lengthscale prior and a Gamma(2, 0.15)
outputscale prior; hyperparameters by ``fit_gpytorch_mll`` (maximum a-posteriori).

**Acquisition.** Analytic Expected Improvement over the best measured usability, evaluated in
log space with ``LogExpectedImprovement`` (numerically robust where EI underflows) on **every**
grid point; reported EI = exp(log EI). Grid points equal to a measured condition are excluded by
default (a repeat fabrication adds no information about the landscape's untried points).

**Batches (k > 1).** Sequential greedy *kriging believer*: pick the grid point with the highest
EI, pretend it was measured at its posterior mean (``condition_on_observations``, hyperparameters
kept), recompute EI over the grid, repeat. The k chosen points are then reported with their
posterior mean, std and EI under the model of the real history (not the fantasies), in descending
EI — the batch is meant to be fabricated together, the order is only a priority.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from calibration import grid_bo

PEROVSKITES = ("MAPbI3", "MAPbBr3", "FAPbI3", "CsPbI3")

#: Precursor or short names seen in lab notes -> perovskite. conditions.csv uses MAI, FAI, MABr
#: and CsPbI3 (the A-site precursor converting the Pb nanowires: MAI -> MAPbI3, FAI -> FAPbI3,
#: MABr -> MAPbBr3).
PEROVSKITE_ALIASES = {
    "mai": "MAPbI3",
    "mapbi3": "MAPbI3",
    "mabr": "MAPbBr3",
    "mapbbr3": "MAPbBr3",
    "fai": "FAPbI3",
    "fapbi3": "FAPbI3",
    "csi": "CsPbI3",
    "cspbi3": "CsPbI3",
}

NUMERIC_VARIABLES = ("nw_length_um", "nw_diameter_nm", "pb_ed_min", "ag_thickness_nm")
VARIABLES = ("perovskite",) + NUMERIC_VARIABLES
MAX_GRID_SIZE = 2_000_000  # configurations; the posterior over the grid is held in memory


class FabricationInputError(ValueError):
    """A history, conditions or grid file is unusable; the message names the file and why."""


# --------------------------------------------------------------------------------------------
# units


_QUANTITY_RE = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([^\d\s]*)\s*$")
_LENGTH_IN_NM = {
    "nm": 1.0,
    "um": 1e3,
    "µm": 1e3,
    "μm": 1e3,
    "micron": 1e3,
    "microns": 1e3,
    "mm": 1e6,
}
_TIME_IN_MIN = {
    "min": 1.0,
    "mins": 1.0,
    "minute": 1.0,
    "minutes": 1.0,
    "s": 1 / 60,
    "sec": 1 / 60,
    "h": 60.0,
    "hr": 60.0,
    "hrs": 60.0,
    "hour": 60.0,
    "hours": 60.0,
}


def _parse(text: object, table: dict[str, float], default_unit: str, what: str) -> float:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
        unit_factor = 1.0
    else:
        m = _QUANTITY_RE.match(str(text))
        if not m:
            raise ValueError(f"{text!r} is not a {what} (expected e.g. {_example(what)})")
        value = float(m.group(1))
        unit = m.group(2)
        key = unit if unit in table else unit.lower()
        if unit == "":
            unit_factor = 1.0
        elif key in table:
            unit_factor = table[key] / table[default_unit]
        else:
            raise ValueError(
                f"{text!r}: unknown unit {unit!r} for a {what} (known: {', '.join(table)})"
            )
    out = value * unit_factor
    if not math.isfinite(out) or out <= 0:
        raise ValueError(f"{text!r} is not a positive {what}")
    return out


def _example(what: str) -> str:
    return "'15min', '1h'" if what == "time" else "'1.5um', '200nm'"


def parse_length_um(text: str | float) -> float:
    """A length in µm from ``'1.5um'``, ``'1.5 µm'``, ``'200nm'``, or a bare number (µm).

    Raises:
        ValueError: not a positive length with a known unit (nm, um/µm, micron, mm).
    """
    return _parse(text, _LENGTH_IN_NM, "um", "length")


def parse_length_nm(text: str | float) -> float:
    """A length in nm from ``'200nm'``, ``'0.2um'``, or a bare number (nm)."""
    return _parse(text, _LENGTH_IN_NM, "nm", "length")


def parse_time_min(text: str | float) -> float:
    """A duration in minutes from ``'15min'``, ``'30s'``, ``'1h'``, or a bare number (min)."""
    return _parse(text, _TIME_IN_MIN, "min", "time")


def parse_perovskite(text: str) -> str:
    """The perovskite name for a name or precursor (MAI -> MAPbI3, FAI -> FAPbI3, …).

    Raises:
        ValueError: unknown perovskite.
    """
    key = str(text).strip().lower()
    if key in PEROVSKITE_ALIASES:
        return PEROVSKITE_ALIASES[key]
    raise ValueError(
        f"unknown perovskite {text!r} (known: {', '.join(PEROVSKITES)}; "
        f"precursors {', '.join(k for k in PEROVSKITE_ALIASES if k.isalpha() and len(k) <= 4)})"
    )


_PARSERS = {
    "perovskite": parse_perovskite,
    "nw_length_um": parse_length_um,
    "nw_diameter_nm": parse_length_nm,
    "pb_ed_min": parse_time_min,
    "ag_thickness_nm": parse_length_nm,
}


# --------------------------------------------------------------------------------------------
# conditions, grid, history


@dataclass(frozen=True)
class Conditions:
    """One fabrication: perovskite, nanowire length (µm) and diameter (nm), Pb ED time (min),
    Ag thickness (nm)."""

    perovskite: str
    nw_length_um: float
    nw_diameter_nm: float
    pb_ed_min: float
    ag_thickness_nm: float

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Grid:
    """The discrete candidate set: the Cartesian product of the levels of the five variables."""

    perovskite: tuple[str, ...] = PEROVSKITES
    nw_length_um: tuple[float, ...] = (0.6, 1.0, 1.2, 1.5, 1.8, 2.0, 2.5, 3.0)
    nw_diameter_nm: tuple[float, ...] = (10.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0)
    pb_ed_min: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
    ag_thickness_nm: tuple[float, ...] = (50.0, 100.0, 150.0, 200.0, 400.0, 600.0)
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in VARIABLES:
            levels = getattr(self, name)
            if len(levels) == 0:
                raise ValueError(f"grid variable {name} has no levels")
            if len(set(levels)) != len(levels):
                raise ValueError(f"grid variable {name} has repeated levels")
        unknown = [p for p in self.perovskite if p not in PEROVSKITES]
        if unknown:
            raise ValueError(f"grid perovskite {unknown[0]!r} is not one of {PEROVSKITES}")
        if self.size > MAX_GRID_SIZE:
            raise ValueError(f"grid has {self.size:,} configurations; at most {MAX_GRID_SIZE:,}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Levels per variable, in :data:`VARIABLES` order."""
        return tuple(len(getattr(self, n)) for n in VARIABLES)

    @property
    def size(self) -> int:
        """Number of configurations."""
        return int(np.prod(self.shape))

    def describe(self) -> str:
        """e.g. ``8,064 configurations (4 perovskites × 8 lengths × …)``."""
        words = ("perovskites", "lengths", "diameters", "Pb ED times", "Ag thicknesses")
        parts = " × ".join(f"{n} {w}" for n, w in zip(self.shape, words))
        return f"{self.size:,} configurations ({parts})"

    def level_indices(self) -> np.ndarray:
        """(size, 5) integer level indices of every configuration (C order)."""
        if "idx" not in self._cache:
            grids = np.indices(self.shape).reshape(len(VARIABLES), -1).T
            self._cache["idx"] = grids
        return self._cache["idx"]

    def encoded(self) -> np.ndarray:
        """(size, 5) encoded configurations in [0, 1]."""
        if "enc" not in self._cache:
            idx = self.level_indices()
            cols = [self._encode_perovskite(np.array(self.perovskite))[idx[:, 0]]]
            for j, name in enumerate(NUMERIC_VARIABLES, start=1):
                levels = np.asarray(getattr(self, name), dtype=float)
                cols.append(self._encode_numeric(name, levels)[idx[:, j]])
            self._cache["enc"] = np.stack(cols, axis=1)
        return self._cache["enc"]

    def encode(self, conditions: Sequence[Conditions]) -> np.ndarray:
        """(n, 5) encoding of arbitrary conditions (on or off the grid)."""
        if not conditions:
            return np.zeros((0, len(VARIABLES)))
        cols = [self._encode_perovskite(np.array([c.perovskite for c in conditions]))]
        for name in NUMERIC_VARIABLES:
            vals = np.array([getattr(c, name) for c in conditions], dtype=float)
            cols.append(self._encode_numeric(name, vals))
        return np.stack(cols, axis=1)

    def conditions(self, index: int) -> Conditions:
        """The configuration at a flat grid index."""
        i = self.level_indices()[index]
        values = [getattr(self, n)[int(k)] for n, k in zip(VARIABLES, i)]
        return Conditions(values[0], *(float(v) for v in values[1:]))

    def to_dict(self) -> dict[str, list]:
        return {n: list(getattr(self, n)) for n in VARIABLES}

    @staticmethod
    def _encode_perovskite(names: np.ndarray) -> np.ndarray:
        lookup = {p: i / (len(PEROVSKITES) - 1) for i, p in enumerate(PEROVSKITES)}
        return np.array([lookup[str(p)] for p in names], dtype=float)

    def _encode_numeric(self, name: str, values: np.ndarray) -> np.ndarray:
        levels = getattr(self, name)
        lo, hi = float(min(levels)), float(max(levels))
        return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)


DEFAULT_GRID = Grid()


@dataclass(frozen=True)
class History:
    """Measured fabrications: conditions and usability U in [0, 1], with optional labels."""

    conditions: tuple[Conditions, ...]
    usability: np.ndarray
    labels: tuple[str, ...] = ()
    source: str = "<history>"

    def __post_init__(self) -> None:
        if len(self.conditions) != len(self.usability):
            raise ValueError("history: conditions and usability differ in length")

    def __len__(self) -> int:
        return len(self.conditions)


@dataclass(frozen=True)
class Suggestion:
    """A suggested fabrication with the GP's prediction of its usability."""

    conditions: Conditions
    mean: float  # predicted usability (posterior mean)
    std: float  # posterior standard deviation of the usability
    ei: float  # expected improvement over the best measured usability
    grid_index: int

    def as_dict(self) -> dict[str, object]:
        return {**self.conditions.as_dict(), "mean": self.mean, "std": self.std, "ei": self.ei}


def read_grid(path: str | Path) -> Grid:
    """Read a grid from JSON or TOML: ``{variable: [levels…]}`` (units allowed in strings).

    Raises:
        FabricationInputError: naming the file and the problem.
    """
    path = Path(path)
    label = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FabricationInputError(f"{label}: cannot read the grid file ({exc.strerror})") from exc
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError as exc:  # Python 3.10
                raise FabricationInputError(
                    f"{label}: TOML grid files need Python >= 3.11; use JSON"
                ) from exc
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"))
    except FabricationInputError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise FabricationInputError(f"{label}: not valid {kind} ({exc})") from exc
    if not isinstance(data, dict):
        raise FabricationInputError(f"{label}: the grid must be a table of variable: [levels]")
    unknown = sorted(set(data) - set(VARIABLES))
    if unknown:
        raise FabricationInputError(
            f"{label}: unknown grid variable(s) {', '.join(unknown)} "
            f"(known: {', '.join(VARIABLES)})"
        )
    kwargs: dict[str, tuple] = {}
    for name, levels in data.items():
        if not isinstance(levels, list) or not levels:
            raise FabricationInputError(f"{label}: {name} must be a non-empty list of levels")
        try:
            kwargs[name] = tuple(_PARSERS[name](x) for x in levels)
        except ValueError as exc:
            raise FabricationInputError(f"{label}: {name}: {exc}") from exc
    try:
        return Grid(**kwargs)
    except ValueError as exc:
        raise FabricationInputError(f"{label}: {exc}") from exc


def read_history(path: str | Path) -> History:
    """Read a history CSV: columns ``perovskite, nw_length_um, nw_diameter_nm, pb_ed_min,
    ag_thickness_nm, usability`` (optional ``file``; other columns ignored). Values may carry
    units (``1.5um``, ``200nm``, ``15min``); the perovskite may be a precursor name (MAI…).

    Raises:
        FabricationInputError: naming the file, row and column of the problem.
    """
    path = Path(path)
    label = path.name
    rows = _read_csv_rows(path)
    header = rows[0]
    missing = [c for c in VARIABLES + ("usability",) if c not in header]
    if missing:
        raise FabricationInputError(f"{label}: missing column(s) {', '.join(missing)}")
    col = {name: header.index(name) for name in header}
    conds, us, labels = [], [], []
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        cells = {name: (row[j].strip() if j < len(row) else "") for name, j in col.items()}
        values = {}
        for name in VARIABLES:
            try:
                values[name] = _PARSERS[name](cells[name])
            except ValueError as exc:
                raise FabricationInputError(f"{label}: row {n}, column {name}: {exc}") from exc
        text = cells["usability"]
        try:
            u = float(text)
        except ValueError:
            raise FabricationInputError(
                f"{label}: row {n}, column usability: {text!r} is not a number"
            ) from None
        if not 0.0 <= u <= 1.0:
            raise FabricationInputError(f"{label}: row {n}, column usability: {u} is not in [0, 1]")
        conds.append(Conditions(**values))
        us.append(u)
        labels.append(cells.get("file", f"row {n}"))
    if len(conds) < 2:
        raise FabricationInputError(f"{label}: {len(conds)} data row(s); need at least 2")
    return History(tuple(conds), np.array(us), tuple(labels), label)


def write_history(path: str | Path, history: History, extra: Sequence[dict] = ()) -> Path:
    """Write a history CSV readable by :func:`read_history` (``extra``: more columns per row)."""
    path = Path(path)
    extra_keys = list(extra[0]) if extra else []
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", *VARIABLES, "usability", *extra_keys])
        for i, (c, u) in enumerate(zip(history.conditions, history.usability)):
            lab = history.labels[i] if i < len(history.labels) else f"row {i + 2}"
            more = [extra[i][k] for k in extra_keys] if extra else []
            w.writerow([lab, *[getattr(c, v) for v in VARIABLES], repr(float(u)), *more])
    return path


def _read_csv_rows(path: Path) -> list[list[str]]:
    label = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise FabricationInputError(f"{label}: not a UTF-8 text CSV file") from None
    except OSError as exc:
        raise FabricationInputError(f"{label}: cannot be read ({exc.strerror})") from exc
    rows = [[c.strip() for c in r] for r in csv.reader(text.splitlines())]
    if not rows or not any(rows[0]):
        raise FabricationInputError(f"{label}: the file is empty")
    return rows


# --------------------------------------------------------------------------------------------
# conditions.csv -> history


@dataclass
class HistoryBuild:
    """Result of :func:`build_history`: the history plus per-file figures and failures."""

    history: History
    details: list[dict[str, object]]
    failures: list[tuple[str, str]]


#: conditions.csv column -> history variable (values parsed with units).
CONDITIONS_COLUMNS = {
    "perovskite": "perovskite",
    "nw_length": "nw_length_um",
    "nw_diameter": "nw_diameter_nm",
    "pb_ed": "pb_ed_min",
    "ag_thickness": "ag_thickness_nm",
}


def read_conditions(path: str | Path) -> list[tuple[str, Conditions]]:
    """Read ``conditions.csv``: ``(file, Conditions)`` per row.

    Uses the columns ``file, perovskite, nw_length, nw_diameter, pb_ed, ag_thickness`` (values
    with units, e.g. ``1.5um``, ``200nm``, ``15min``; perovskite by precursor MAI/FAI/MABr or by
    name). The ``reported_*`` columns are the authors' own numbers and are not read.
    """
    path = Path(path)
    label = path.name
    rows = _read_csv_rows(path)
    header = rows[0]
    missing = [c for c in ("file", *CONDITIONS_COLUMNS) if c not in header]
    if missing:
        raise FabricationInputError(f"{label}: missing column(s) {', '.join(missing)}")
    col = {name: header.index(name) for name in header}
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(row):
            continue
        values = {}
        for src, dst in CONDITIONS_COLUMNS.items():
            cell = row[col[src]] if col[src] < len(row) else ""
            try:
                values[dst] = _PARSERS[dst](cell)
            except ValueError as exc:
                raise FabricationInputError(f"{label}: row {n}, column {src}: {exc}") from exc
        out.append((row[col["file"]], Conditions(**values)))
    return out


def build_history(
    conditions_csv: str | Path,
    data_dir: str | Path | None = None,
    options: object | None = None,
) -> HistoryBuild:
    """Join ``conditions.csv`` with the usability of each raw file (METHODS section 1).

    Args:
        conditions_csv: the conditions table.
        data_dir: folder of the raw I-V files (default: the table's folder).
        options: :class:`calibration.batch.CalibrationOptions` (default METHODS).

    Rows whose file is missing or does not calibrate are left out and listed in ``failures``.
    """
    from calibration.batch import calibrate_file
    from calibration.io import CalibrationInputError

    conditions_csv = Path(conditions_csv)
    data_dir = Path(data_dir) if data_dir is not None else conditions_csv.parent
    conds, us, labels, details, failures = [], [], [], [], []
    for name, c in read_conditions(conditions_csv):
        path = data_dir / name
        try:
            devices = calibrate_file(path, options)
        except CalibrationInputError as exc:
            failures.append((name, str(exc)))
            continue
        r = devices[0].result
        conds.append(c)
        us.append(r.usability)
        labels.append(name)
        details.append({"alpha_nm": r.alpha_nm, "sigma_up": r.sigma_up, "sigma_hat": r.sigma_hat})
    history = History(tuple(conds), np.array(us), tuple(labels), conditions_csv.name)
    return HistoryBuild(history, details, failures)


# --------------------------------------------------------------------------------------------
# the GP and EI


def _kernel(d: int):
    from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
    from gpytorch.kernels import ScaleKernel
    from gpytorch.priors import GammaPrior

    # RBF (squared exponential) with BoTorch's dimension-scaled lengthscale prior, wrapped in an
    # explicit ScaleKernel (signal variance) as the paper's SE kernel k = s² exp(-r²/2ℓ²).
    rbf = get_covar_module_with_dim_scaled_prior(ard_num_dims=d, use_rbf_kernel=True)
    return ScaleKernel(rbf, outputscale_prior=GammaPrior(2.0, 0.15))


def fit_gp(x: np.ndarray, y: np.ndarray, *, seed: int = 0):
    """Fit the section-4 surrogate: SingleTaskGP, RBF ScaleKernel, on encoded inputs x (n, d)
    and usabilities y (n,). Returns the fitted model (eval mode, float64)."""
    return grid_bo.fit_gp(x, y, kernel=_kernel, seed=seed)


def suggest(
    history: History,
    k: int = 1,
    grid: Grid = DEFAULT_GRID,
    *,
    seed: int = 0,
    exclude_measured: bool = True,
) -> list[Suggestion]:
    """The next ``k`` fabrications by Expected Improvement over the whole grid.

    Args:
        history: measured conditions and usabilities (≥ 2 rows).
        k: number of suggestions (1 … number of candidate grid points).
        grid: candidate configurations.
        seed: seeds the hyperparameter fit (results are deterministic for a seed).
        exclude_measured: leave out grid points equal to a measured condition.

    Returns:
        ``k`` distinct grid configurations with predicted mean, std and EI, by descending EI
        (see the module docstring for how batches are chosen).

    Raises:
        ValueError: fewer than 2 history rows, non-finite usability, k out of range.
    """
    import torch

    if len(history) < 2:
        raise ValueError(f"history has {len(history)} row(s); need at least 2")
    y = np.asarray(history.usability, dtype=float)
    if not np.isfinite(y).all():
        raise ValueError("history usability holds non-finite values")
    x = grid.encode(list(history.conditions))
    xg_np = grid.encoded()
    candidates = grid_bo.unseen(xg_np, x) if exclude_measured else np.ones(grid.size, bool)
    n_cand = int(candidates.sum())
    if not 1 <= k <= n_cand:
        raise ValueError(f"k must be in 1 … {n_cand} (candidate grid points), got {k}")
    with grid_bo.torch_threads(1):
        model = fit_gp(x, y, seed=seed)
        xg = torch.as_tensor(xg_np, dtype=torch.float64)
        best = float(y.max())
        mean0, std0, log_ei0 = grid_bo.score_grid(model, xg, best)
        chosen = grid_bo.select(model, xg, best, k, candidates, log_ei0)
    # reported under the model of the real history (not the kriging-believer fantasies)
    out = [
        Suggestion(
            grid.conditions(i),
            float(mean0[i]),
            float(std0[i]),
            float(torch.exp(log_ei0[i])),
            i,
        )
        for i in chosen
    ]
    return sorted(out, key=lambda s: -s.ei)


def predict_grid(history: History, grid: Grid = DEFAULT_GRID, *, seed: int = 0):
    """Posterior mean and std (usability) at every grid point, arrays of shape (grid.size,)."""
    import torch

    with grid_bo.torch_threads(1):
        model = fit_gp(grid.encode(list(history.conditions)), history.usability, seed=seed)
        xg = torch.as_tensor(grid.encoded(), dtype=torch.float64)
        mean, std, _ = grid_bo.score_grid(model, xg, float(np.max(history.usability)))
    return mean.numpy().copy(), std.numpy().copy()


def history_from_records(records: Iterable[tuple[Conditions, float]], source: str = "") -> History:
    """A History from ``(conditions, usability)`` pairs."""
    recs = list(records)
    return History(
        tuple(c for c, _ in recs), np.array([u for _, u in recs], dtype=float), (), source
    )
