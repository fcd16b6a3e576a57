"""The bench switch matrix: every crossbar line to one bus, set through the AD2's digital I/O.

Each of the crossbar's row and column lines goes through an analog multiplexer to one of the
buses in :class:`Bus`. The 4-bit selection codes sit in a chain of shift registers loaded over
three DIO pins (DATA, CLK, LATCH) plus an ENABLE pin: DATA is sampled on CLK rising edges, the
chain is copied to the multiplexers on a LATCH rising edge, and ENABLE low turns every
multiplexer off (all lines floating: "released"). The bit stream is line by line — rows
0…R−1, then columns 0…C−1 — each code MSB first, so row 0's first bit travels to the far end of
the chain; the board wires the chain to match.

Sequencing (:func:`encode_routing`): ENABLE goes low first and stays low while the codes are
shifted and latched, and only then goes high. So a routing change is break-before-make for the
whole array: no line ever sees a half-shifted code or two buses at once during the multiplexers'
own switching. Releasing (:func:`release_words`) is one word: every matrix pin low. The ENABLE
line needs a pull-down on the board so an unplugged or reset AD2 (undriven pins) also releases
the matrix.

Two ways of loading the chain (``SwitchMatrix(mode=…)``), both break-before-make:

* ``"pattern"`` (default): ENABLE low with one DigitalIO write, the whole shift-and-latch
  sequence (:func:`encode_patterns`: DATA, CLK, LATCH, two samples per bit then a LATCH pulse)
  played once by the AD2's pattern generator (``AnalogDiscovery2.dio_pattern``, DigitalOut
  custom patterns at ``shift_rate_hz``), then ENABLE high with one DigitalIO write once the
  pattern generator reports ``Done``. CLK and LATCH patterns never change, so after the first
  routing a routing is five pydwf calls: ``outputSet`` (ENABLE low), ``dataSet`` (DATA),
  ``configure``, ``status``, ``outputSet`` (ENABLE high). A routing equal to the one the
  matrix holds is not rewritten (while nothing else has touched the DIO pins:
  ``AnalogDiscovery2.dio_epoch``).
* ``"legacy"``: one DIO word per edge (:func:`encode_routing`, ``1 + 2·n_bits + 4`` words, one
  USB transaction each: 165 on 10×10), every routing written; kept as the benchmark peer.

Timing (estimates: the twins' clock charges them): a USB round trip per pydwf call (about
1 ms), the pattern's upload and play (2·n_bits + 3 samples at 1 MHz: 0.16 ms on 10×10).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from instruments.analog_discovery2 import AnalogDiscovery2

__all__ = [
    "BITS_PER_LINE",
    "Bus",
    "Routing",
    "SwitchMatrix",
    "SwitchWiring",
    "cell_routing",
    "encode_patterns",
    "encode_routing",
    "release_words",
]

log = logging.getLogger(__name__)

BITS_PER_LINE = 4
"""Selection bits per line (codes 0…15)."""
SHIFT_RATE_HZ = 1e6
"""Default pattern-generator sample rate loading the chain (two samples per bit: a 500 kHz
CLK), samples/s: far below what 74HC-class shift registers take at 3.3 V (tens of MHz) over
bench wiring, and an integer divider of the AD2's 100 MHz pattern clock."""
MODES = ("pattern", "legacy")


class Bus(enum.IntEnum):
    """The buses a line can be switched to (default 4-bit codes = the values)."""

    FLOAT = 0
    """No connection."""
    GND = 1
    """Bench ground."""
    SMU_SOURCE = 2
    """Keithley 6487 voltage-source output."""
    SMU_SENSE = 3
    """Keithley 6487 ammeter input (virtual ground)."""
    AWG1 = 4
    """AD2 waveform generator 1."""
    AWG2 = 5
    """AD2 waveform generator 2."""
    TIA1 = 6
    """Transimpedance amplifier feeding scope channel 1 (virtual ground)."""
    TIA2 = 7
    """Transimpedance amplifier feeding scope channel 2 (virtual ground)."""
    BIAS_HALF = 8
    """V/2 of the SMU source voltage, buffered."""
    BIAS_THIRD = 9
    """V/3 of the SMU source voltage, buffered."""
    BIAS_TWO_THIRDS = 10
    """2V/3 of the SMU source voltage, buffered."""


def _default_codes() -> tuple[int, ...]:
    return tuple(int(b) for b in Bus)


@dataclass(frozen=True)
class SwitchWiring:
    """How the matrix is wired to the AD2 (filled in by the bench configuration).

    :param data_pin: DIO pin (0…15) driving the shift-register DATA input.
    :param clk_pin: DIO pin driving CLK (data sampled on the rising edge).
    :param latch_pin: DIO pin driving LATCH (codes applied on the rising edge).
    :param enable_pin: DIO pin driving ENABLE (low: every multiplexer off).
    :param rows: number of row lines (≥ 1).
    :param cols: number of column lines (≥ 1).
    :param codes: the 4-bit code of each :class:`Bus`, as a tuple indexed by ``Bus`` value or a
        ``{Bus: code}`` mapping (stored as the tuple); codes must be distinct, 0…15.
    """

    data_pin: int = 0
    clk_pin: int = 1
    latch_pin: int = 2
    enable_pin: int = 3
    rows: int = 10
    cols: int = 10
    codes: tuple[int, ...] = field(default_factory=_default_codes)

    def __post_init__(self) -> None:
        pins = (self.data_pin, self.clk_pin, self.latch_pin, self.enable_pin)
        if any(isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < 16 for p in pins):
            raise ValueError(f"switch-matrix pins must be DIO 0…15, got {pins}")
        if len(set(pins)) != 4:
            raise ValueError(f"switch-matrix pins must be distinct, got {pins}")
        for name in ("rows", "cols"):
            n = getattr(self, name)
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"SwitchWiring.{name} must be an int >= 1, got {n!r}")
        codes = self.codes
        if isinstance(codes, Mapping):
            missing = [b.name for b in Bus if b not in codes]
            if missing:
                raise ValueError(f"SwitchWiring.codes lacks a code for {missing}")
            codes = tuple(codes[b] for b in Bus)
        codes = tuple(codes)
        if len(codes) != len(Bus):
            raise ValueError(f"SwitchWiring.codes needs {len(Bus)} codes, got {len(codes)}")
        if any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < 16 for c in codes):
            raise ValueError(f"bus codes must be ints 0…15, got {codes}")
        if len(set(codes)) != len(codes):
            raise ValueError(f"bus codes must be distinct, got {codes}")
        object.__setattr__(self, "codes", codes)

    @property
    def mask(self) -> int:
        """DIO output-enable mask of the four matrix pins."""
        return sum(1 << p for p in (self.data_pin, self.clk_pin, self.latch_pin, self.enable_pin))

    @property
    def n_bits(self) -> int:
        """Length of the shift-register chain, bits."""
        return BITS_PER_LINE * (self.rows + self.cols)

    def code(self, bus: Bus) -> int:
        """The 4-bit code selecting ``bus``."""
        return self.codes[Bus(bus).value]

    def bus(self, code: int) -> Bus:
        """The bus selected by ``code`` (ValueError for an unused code)."""
        try:
            return Bus(self.codes.index(int(code)))
        except ValueError:
            raise ValueError(f"code {code!r} selects no bus in this wiring") from None


@dataclass(frozen=True)
class Routing:
    """Which bus every row and column line is connected to."""

    rows: tuple[Bus, ...]
    cols: tuple[Bus, ...]

    @classmethod
    def released(cls, wiring: SwitchWiring) -> Routing:
        """Every line floating."""
        return cls((Bus.FLOAT,) * wiring.rows, (Bus.FLOAT,) * wiring.cols)


def _check_lines(lines: Sequence[Bus], n: int, what: str) -> tuple[Bus, ...]:
    if len(lines) != n:
        raise ValueError(f"{what}: expected {n} buses, got {len(lines)}")
    try:
        return tuple(Bus(b) for b in lines)
    except ValueError:
        raise ValueError(f"{what}: {list(lines)!r} holds a value that is not a Bus") from None


def encode_routing(rows: Sequence[Bus], cols: Sequence[Bus], wiring: SwitchWiring) -> list[int]:
    """The DIO words (bit i = DIO i, only the four matrix pins used) that apply a routing.

    One word per edge: all pins low (ENABLE low: released); for each bit of the stream (rows
    0…R−1 then columns 0…C−1, each code MSB first) DATA with CLK low, then CLK high; all low;
    LATCH high; LATCH low; ENABLE high. ``1 + 2·n_bits + 4`` words.
    """
    bits = _stream_bits(rows, cols, wiring)
    data_words = bits << wiring.data_pin
    shift = np.column_stack([data_words, data_words | (1 << wiring.clk_pin)]).ravel()
    latch, enable = 1 << wiring.latch_pin, 1 << wiring.enable_pin
    return [0, *(int(w) for w in shift), 0, latch, 0, enable]


def _stream_bits(rows: Sequence[Bus], cols: Sequence[Bus], wiring: SwitchWiring) -> np.ndarray:
    r = _check_lines(rows, wiring.rows, "rows")
    c = _check_lines(cols, wiring.cols, "cols")
    codes = np.array([wiring.code(b) for b in (*r, *c)], dtype=np.int64)
    return ((codes[:, None] >> np.arange(BITS_PER_LINE - 1, -1, -1)) & 1).ravel()


def encode_patterns(
    rows: Sequence[Bus], cols: Sequence[Bus], wiring: SwitchWiring
) -> dict[int, str]:
    """The pattern-generator samples (``{pin: "01…"}``, first sample first) that shift and latch
    a routing: per bit of the stream (as :func:`encode_routing`) DATA with CLK low, then CLK
    high; then all low; LATCH high; all low. ``2·n_bits + 3`` samples per pin. ENABLE is not in
    the pattern: the caller holds it low around it (DigitalIO)."""
    bits = _stream_bits(rows, cols, wiring)
    n = bits.size
    data = "".join(f"{b}{b}" for b in bits) + "000"
    clk = "01" * n + "000"
    latch = "00" * n + "010"
    return {wiring.data_pin: data, wiring.clk_pin: clk, wiring.latch_pin: latch}


def release_words(wiring: SwitchWiring) -> list[int]:
    """The DIO words that release the matrix (ENABLE low: every line floating): ``[0]``."""
    return [0]


def cell_routing(
    row: int,
    col: int,
    wiring: SwitchWiring,
    *,
    unselected: tuple[Bus, Bus] = (Bus.GND, Bus.GND),
    source: Bus = Bus.SMU_SOURCE,
    sense: Bus = Bus.SMU_SENSE,
) -> Routing:
    """Routing for single-cell access to ``(row, col)``: the selected row to ``source``, the
    selected column to ``sense``, the other rows and columns to the two buses of ``unselected``
    (which biasing scheme needs which buses is the crossbar layer's business:
    :mod:`crossbar.hardware`)."""
    if (
        isinstance(row, bool)
        or not isinstance(row, (int, np.integer))
        or not 0 <= row < wiring.rows
    ):
        raise ValueError(f"row must be an int in [0, {wiring.rows - 1}], got {row!r}")
    if (
        isinstance(col, bool)
        or not isinstance(col, (int, np.integer))
        or not 0 <= col < wiring.cols
    ):
        raise ValueError(f"col must be an int in [0, {wiring.cols - 1}], got {col!r}")
    row_bias, col_bias = unselected
    rows = [row_bias] * wiring.rows
    cols = [col_bias] * wiring.cols
    rows[int(row)] = source
    cols[int(col)] = sense
    return Routing(_check_lines(rows, wiring.rows, "rows"), _check_lines(cols, wiring.cols, "cols"))


class SwitchMatrix:
    """The switch matrix, driven through an :class:`AnalogDiscovery2`'s digital I/O.

    :param ad2: an open AnalogDiscovery2 (``dio_write``, ``dio_pattern``, ``dio_epoch``).
    :param wiring: pins, array size and bus codes of this bench.
    :param mode: ``"pattern"`` (the pattern generator, unchanged routings skipped) or
        ``"legacy"`` (one DIO word per USB call, every routing written); module docstring.
    :param shift_rate_hz: pattern-generator samples/s in ``"pattern"`` mode.
    """

    def __init__(
        self,
        ad2: AnalogDiscovery2,
        wiring: SwitchWiring,
        *,
        mode: str = "pattern",
        shift_rate_hz: float = SHIFT_RATE_HZ,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.ad2 = ad2
        self.wiring = wiring
        self.mode = mode
        self.shift_rate_hz = float(shift_rate_hz)
        self._routing: Routing | None = None
        self._epoch: object = None
        #: routings asked for / actually written (the rest were already set)
        self.counts = {"routes": 0, "written": 0}

    @property
    def routing(self) -> Routing | None:
        """The last routing applied (all FLOAT after :meth:`release`); ``None`` before the first
        one, or when a write failed and the state is unknown."""
        return self._routing

    def _write(self, words: Sequence[int]) -> None:
        mask = self.wiring.mask
        for word in words:
            self.ad2.dio_write(word, mask)

    def _held(self, target: Routing) -> bool:
        """True when the matrix holds ``target`` and nothing touched the pins since."""
        return (
            self.mode == "pattern"
            and self._routing == target
            and self._epoch == getattr(self.ad2, "dio_epoch", None)
            and self._epoch is not None
        )

    def _load(self, target: Routing) -> None:
        if self.mode == "legacy":
            self._write(encode_routing(target.rows, target.cols, self.wiring))
            return
        w = self.wiring
        self._write([0])  # ENABLE low: every line floating (break)
        self.ad2.dio_pattern(encode_patterns(target.rows, target.cols, w), self.shift_rate_hz)
        self._write([1 << w.enable_pin])  # ENABLE high once the codes are latched (make)

    def route(self, rows: Sequence[Bus], cols: Sequence[Bus]) -> Routing:
        """Connect row line i to ``rows[i]`` and column line j to ``cols[j]``.

        Lengths must equal ``wiring.rows`` / ``wiring.cols``. If a DIO write fails the matrix is
        released (best effort) and the error re-raised.
        """
        target = Routing(
            _check_lines(rows, self.wiring.rows, "rows"),
            _check_lines(cols, self.wiring.cols, "cols"),
        )
        self.counts["routes"] += 1
        if self._held(target):
            return target
        self._routing = None
        try:
            self._load(target)
        except Exception:
            try:
                self.release()
            except Exception as exc:  # noqa: BLE001 - the first error is the one to report
                log.warning("switch matrix: release after a failed route failed: %s", exc)
            raise
        self._routing = target
        self._epoch = getattr(self.ad2, "dio_epoch", None)
        self.counts["written"] += 1
        return target

    def select_cell(
        self,
        row: int,
        col: int,
        unselected: tuple[Bus, Bus] = (Bus.GND, Bus.GND),
        *,
        source: Bus = Bus.SMU_SOURCE,
        sense: Bus = Bus.SMU_SENSE,
    ) -> Routing:
        """Route for single-cell access (see :func:`cell_routing`) and return the routing."""
        target = cell_routing(
            row, col, self.wiring, unselected=unselected, source=source, sense=sense
        )
        return self.route(target.rows, target.cols)

    def release(self) -> None:
        """Every multiplexer off: all lines floating (always written: one DIO word)."""
        self._routing = None
        self._write(release_words(self.wiring))
        self._routing = Routing.released(self.wiring)
        self._epoch = getattr(self.ad2, "dio_epoch", None)
