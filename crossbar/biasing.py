"""Biasing schemes: how every line of the array is held during single-cell access.

One table, :data:`BIASINGS`, holds every scheme the application knows (METHODS section 5). A
scheme is data: the level of the unselected rows and of the unselected columns, each a
:class:`Line` — driven at a fraction of the access voltage V, grounded, left floating — and a
polarity rule. :meth:`BiasScheme.lines` turns it into the :class:`LineLevels` of one access,
which is what a backend receives: the hardware backend maps each level onto a switch-matrix bus,
the physics backend onto the circuit's line ends. Adding a scheme is one entry::

    BIASINGS.add(BiasScheme("rows-v/2", rows=drive(1 / 2), cols=GROUND))

and every operation (reads with their differential correction, sweeps, pulses, programming)
can use it on every backend whose :class:`~crossbar.backend.Capabilities` can realise its levels.

Conventions: rows are word lines (driven), columns bit lines (sensed at virtual ground); the
selected row is driven at V, the selected column sensed (reads, sweeps) or grounded (pulses).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

__all__ = [
    "BIASINGS",
    "FLOAT",
    "GROUND",
    "SENSE",
    "BiasScheme",
    "Biasing",
    "Line",
    "LineLevels",
    "SchemeTable",
    "drive",
]

LineKind = Literal["drive", "ground", "float", "sense"]


@dataclass(frozen=True)
class Line:
    """How one line is held: ``drive`` at ``fraction`` × V, ``ground`` (0 V), ``float`` (open)
    or ``sense`` (virtual ground into the current meter)."""

    kind: LineKind
    fraction: float = 0.0

    def level(self, v: float) -> float:
        """The line's voltage (V) for an access at ``v`` V (0 for ground, float and sense)."""
        return self.fraction * v if self.kind == "drive" else 0.0

    def __str__(self) -> str:
        if self.kind != "drive":
            return self.kind
        return "V" if self.fraction == 1 else f"{self.fraction:.4g}V"


GROUND = Line("ground")
FLOAT = Line("float")
SENSE = Line("sense")


def drive(fraction: float) -> Line:
    """A line driven at ``fraction`` × V (``fraction`` finite, e.g. 1/3)."""
    f = float(fraction)
    if not np.isfinite(f):
        raise ValueError(f"a drive fraction must be finite, got {fraction!r}")
    return Line("drive", f)


SELECTED = drive(1.0)


@dataclass(frozen=True)
class LineLevels:
    """The connection of every row and column line for one access (levels are fractions of
    the access voltage)."""

    rows: tuple[Line, ...]
    cols: tuple[Line, ...]

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return len(self.rows), len(self.cols)

    def sensed_cols(self) -> list[int]:
        """Indices of the columns held at virtual ground into the meter."""
        return [j for j, line in enumerate(self.cols) if line.kind == "sense"]

    def source_rows(self) -> list[int]:
        """Indices of the rows driven at the full access voltage (the source's terminal)."""
        return [i for i, line in enumerate(self.rows) if line == SELECTED]

    def fractions(self) -> set[float]:
        """Every drive fraction used on a line."""
        return {line.fraction for line in (*self.rows, *self.cols) if line.kind == "drive"}

    def floats(self) -> bool:
        """True when some line is left floating."""
        return any(line.kind == "float" for line in (*self.rows, *self.cols))


@dataclass(frozen=True)
class BiasScheme:
    """One biasing scheme: unselected ``rows`` and ``cols`` held as given.

    :param name: the scheme's name, as in bench files, data files and the CLI (e.g. ``"v/3"``).
    :param rows: level of the unselected rows.
    :param cols: level of the unselected columns.
    :param positive_only: refused at V < 0 (the unselected cells would see a switching
        voltage there).
    :param description: one line for help texts.
    """

    name: str
    rows: Line
    cols: Line
    positive_only: bool = False
    description: str = ""

    @property
    def value(self) -> str:
        """The scheme's name (what bench files, data files and the CLI use)."""
        return self.name

    def __str__(self) -> str:
        return self.name

    @property
    def baseline_fraction(self) -> float | None:
        """Fraction f of V at which the unselected rows are driven when they feed current into
        the sensed column (0 < f < 1), else None. A read then subtracts the baseline measured
        with the selected row at f·V too (the differential read)."""
        if self.rows.kind == "drive" and 0 < self.rows.fraction < 1:
            return self.rows.fraction
        return None

    def check_polarity(self, voltages: object, what: str) -> None:
        """ValueError when this scheme is positive-only and ``voltages`` (V) has a value < 0."""
        if self.positive_only and np.any(np.asarray(voltages, dtype=float) < 0):
            raise ValueError(
                f"{what}: biasing {self.name!r} is for V >= 0 only (at V < 0 the unselected "
                "cells would see a switching voltage); use v/3 for the negative points"
            )

    def lines(
        self,
        shape: tuple[int, int],
        row: int,
        col: int,
        *,
        selected_row: Line = SELECTED,
        selected_col: Line = SENSE,
    ) -> LineLevels:
        """The LineLevels of an access to ``(row, col)`` on a ``shape`` array: the selected row
        at ``selected_row`` (default V), the selected column at ``selected_col`` (default
        sensed), every other line per this scheme."""
        rows, cols = shape
        r = [self.rows] * rows
        c = [self.cols] * cols
        r[row], c[col] = selected_row, selected_col
        return LineLevels(tuple(r), tuple(c))

    def baseline_lines(self, shape: tuple[int, int], row: int, col: int) -> LineLevels:
        """The differential read's baseline access: the selected row at the unselected rows'
        level, so the sensed column carries only the half-selected cells' current."""
        return self.lines(shape, row, col, selected_row=self.rows)


class SchemeTable(Mapping[str, BiasScheme]):
    """The table of biasing schemes, by name, in the order they were added."""

    def __init__(self) -> None:
        self._schemes: dict[str, BiasScheme] = {}

    def __getitem__(self, name: str) -> BiasScheme:
        return self._schemes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._schemes)

    def __len__(self) -> int:
        return len(self._schemes)

    def schemes(self) -> list[BiasScheme]:
        """Every scheme, in table order."""
        return list(self._schemes.values())

    def add(self, scheme: BiasScheme) -> BiasScheme:
        """Add ``scheme`` (ValueError if its name is taken) and return it."""
        key = scheme.name.lower()
        if key in self._schemes:
            raise ValueError(f"a biasing scheme named {scheme.name!r} exists already")
        self._schemes[key] = replace(scheme, name=key)
        return self._schemes[key]

    def remove(self, name: str) -> None:
        """Remove the scheme called ``name`` (KeyError if there is none)."""
        del self._schemes[str(name).lower()]

    def parse(self, text: str | BiasScheme) -> BiasScheme:
        """A scheme from its name (case-insensitive) or itself; ValueError naming the choices."""
        if isinstance(text, BiasScheme):
            return text
        key = str(getattr(text, "value", text)).lower()
        if key in self._schemes:
            return self._schemes[key]
        raise ValueError(f"unknown biasing {text!r}; choose one of {list(self._schemes)}")


BIASINGS = SchemeTable()
"""Every biasing scheme the application knows (see the module docstring)."""


class _SchemeNames(type):
    """Iterating :class:`Biasing` gives every scheme of the table (added ones too)."""

    def __iter__(cls) -> Iterator[BiasScheme]:
        return iter(BIASINGS.schemes())

    def __len__(cls) -> int:
        return len(BIASINGS)


_V2 = BIASINGS.add(
    BiasScheme("v/2", drive(1 / 2), drive(1 / 2), description="unselected lines at V/2")
)
_V3 = BIASINGS.add(
    BiasScheme(
        "v/3",
        drive(1 / 3),
        drive(2 / 3),
        description="unselected rows at V/3, columns at 2V/3 (every unselected cell ±V/3)",
    )
)
_GROUND = BIASINGS.add(BiasScheme("ground", GROUND, GROUND, description="unselected lines at 0 V"))
_FLOAT = BIASINGS.add(
    BiasScheme("float", FLOAT, FLOAT, description="unselected lines open (sneak paths)")
)
# the selected cell's row mates see V/3 (no SET), its column mates 0 V (the sensed current is
# the cell's alone), the other cells -2V/3; at V < 0 they would see +2|V|/3 and SET
_COLS_2V3 = BIASINGS.add(
    BiasScheme(
        "cols-2v/3",
        GROUND,
        drive(2 / 3),
        positive_only=True,
        description="unselected rows at 0 V, columns at 2V/3 (V >= 0 only)",
    )
)


class Biasing(metaclass=_SchemeNames):
    """Names for the built-in schemes of :data:`BIASINGS` (``Biasing.V3`` …);
    ``Biasing.parse("v/3")`` looks any scheme up by name; ``for b in Biasing`` walks the table."""

    V2 = _V2
    V3 = _V3
    GROUND = _GROUND
    FLOAT = _FLOAT
    COLS_2V3 = _COLS_2V3

    parse = staticmethod(BIASINGS.parse)
