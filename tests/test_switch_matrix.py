"""Switch matrix: encoding against the simulator's independent shift-register model, the
single-cell routings, release and the error path through the AD2 driver."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossbar.biasing import Biasing
from crossbar.hardware import routing as hardware_routing
from instruments.analog_discovery2 import AnalogDiscovery2
from instruments.errors import ConnectionLost, SafetyLimits
from instruments.switch_matrix import (
    Bus,
    Routing,
    SwitchMatrix,
    SwitchWiring,
    cell_routing,
    encode_routing,
    release_words,
)
from sim_backends.fake_pydwf import FakeDwfLibrary, ShiftRegisterMatrix, decode_words

LIMITS = SafetyLimits(max_voltage=4.0, max_compliance=1e-3)


def sim_for(wiring: SwitchWiring) -> ShiftRegisterMatrix:
    return ShiftRegisterMatrix(
        data_pin=wiring.data_pin,
        clk_pin=wiring.clk_pin,
        latch_pin=wiring.latch_pin,
        enable_pin=wiring.enable_pin,
        rows=wiring.rows,
        cols=wiring.cols,
        float_code=wiring.code(Bus.FLOAT),
    )


def sim_routing(sim: ShiftRegisterMatrix, wiring: SwitchWiring) -> Routing:
    return Routing(tuple(wiring.bus(c) for c in sim.rows), tuple(wiring.bus(c) for c in sim.cols))


@st.composite
def wirings_and_routings(draw) -> tuple[SwitchWiring, list[Bus], list[Bus]]:
    pins = draw(st.lists(st.integers(0, 15), min_size=4, max_size=4, unique=True))
    rows = draw(st.integers(1, 12))
    cols = draw(st.integers(1, 12))
    codes = tuple(draw(st.permutations(range(16)))[: len(Bus)])
    wiring = SwitchWiring(*pins, rows=rows, cols=cols, codes=codes)
    bus = st.sampled_from(list(Bus))
    r = draw(st.lists(bus, min_size=rows, max_size=rows))
    c = draw(st.lists(bus, min_size=cols, max_size=cols))
    return wiring, r, c


@settings(max_examples=150, deadline=None)
@given(case=wirings_and_routings())
def test_encode_then_shift_register_decode_round_trips(case) -> None:
    wiring, rows, cols = case
    words = encode_routing(rows, cols, wiring)
    assert len(words) == 1 + 2 * wiring.n_bits + 4
    assert all(w & ~wiring.mask == 0 for w in words)  # only the four matrix pins move
    sim = sim_for(wiring)
    target = Routing(tuple(rows), tuple(cols))
    for word in words:
        sim.on_word(word)
        # Break-before-make: whenever the multiplexers are on, they show the full target.
        if sim.enabled:
            assert sim_routing(sim, wiring) == target
    assert sim.enabled and sim_routing(sim, wiring) == target
    assert (sim.clock_edges, sim.latch_edges) == (wiring.n_bits, 1)
    decoded = decode_words(
        words,
        data_pin=wiring.data_pin,
        clk_pin=wiring.clk_pin,
        latch_pin=wiring.latch_pin,
        enable_pin=wiring.enable_pin,
        rows=wiring.rows,
        cols=wiring.cols,
        float_code=wiring.code(Bus.FLOAT),
    )
    assert decoded == ([wiring.code(b) for b in rows], [wiring.code(b) for b in cols])


def test_first_words_of_a_default_routing() -> None:
    wiring = SwitchWiring()
    rows = [Bus.SMU_SOURCE] + [Bus.FLOAT] * 9  # row 0 code 2 = 0b0010, MSB first
    words = encode_routing(rows, [Bus.FLOAT] * 10, wiring)
    # all low; bits 0,0,1,0 of row 0 as (DATA, DATA|CLK) pairs on pins 0 (DATA) and 1 (CLK)
    assert words[:9] == [0, 0, 2, 0, 2, 1, 3, 0, 2]
    assert words[-4:] == [0, 4, 0, 8]  # all low, LATCH (pin 2) up and down, ENABLE (pin 3)
    assert release_words(wiring) == [0]


def test_decode_without_latch_is_none() -> None:
    wiring = SwitchWiring(rows=2, cols=2)
    words = encode_routing([Bus.GND] * 2, [Bus.GND] * 2, wiring)
    assert decode_words(words[:-4], rows=2, cols=2) is None
    assert decode_words(words, rows=2, cols=2) == ([1, 1], [1, 1])


# --------------------------------------------------------------------------------------------
# single-cell schemes
# --------------------------------------------------------------------------------------------

UNSELECTED = {
    "v/2": (Bus.BIAS_HALF, Bus.BIAS_HALF),
    "v/3": (Bus.BIAS_THIRD, Bus.BIAS_TWO_THIRDS),
    "ground": (Bus.GND, Bus.GND),
    "float": (Bus.FLOAT, Bus.FLOAT),
    "cols-2v/3": (Bus.GND, Bus.BIAS_TWO_THIRDS),
}


@pytest.fixture
def bench():
    wiring = SwitchWiring()
    sim = sim_for(wiring)
    lib = FakeDwfLibrary(on_dio=sim.on_word)
    ad2 = AnalogDiscovery2(lib, limits=LIMITS)
    ad2.open()
    yield lib, ad2, SwitchMatrix(ad2, wiring), sim
    ad2.close()


@pytest.mark.parametrize("scheme", list(UNSELECTED))
def test_select_cell_routings(bench, scheme: str) -> None:
    """Every built-in biasing scheme of the crossbar table routes onto the buses it needs."""
    lib, _, matrix, sim = bench
    lines = Biasing.parse(scheme).lines((10, 10), 3, 7)
    routing = matrix.route(*hardware_routing(lines))
    row_bias, col_bias = UNSELECTED[scheme]
    expected_rows = [row_bias] * 10
    expected_rows[3] = Bus.SMU_SOURCE
    expected_cols = [col_bias] * 10
    expected_cols[7] = Bus.SMU_SENSE
    assert routing == Routing(tuple(expected_rows), tuple(expected_cols)) == matrix.routing
    assert sim.rows == [int(b) for b in expected_rows]
    assert sim.cols == [int(b) for b in expected_cols]


def test_select_cell_with_awg_and_tia(bench) -> None:
    _, _, matrix, sim = bench
    matrix.select_cell(0, 9, source=Bus.AWG2, sense=Bus.TIA1)
    assert sim.rows == [Bus.AWG2] + [Bus.GND] * 9
    assert sim.cols == [Bus.GND] * 9 + [Bus.TIA1]


def test_route_writes_each_word_once_through_dio(bench) -> None:
    lib, ad2, matrix, _ = bench
    mark = len(lib.calls)
    rows = [Bus.AWG1, Bus.AWG2] + [Bus.GND] * 8
    cols = [Bus.TIA1, Bus.TIA2] + [Bus.FLOAT] * 8
    matrix.route(rows, cols)
    calls = lib.calls[mark:]
    words = encode_routing(rows, cols, matrix.wiring)
    assert [a[0] for n, a in calls if n == "digitalIO.outputSet"] == words
    assert [c for c in calls if c[0] != "digitalIO.outputSet"] == [
        ("digitalIO.outputEnableSet", (0b1111,))
    ]
    assert lib.device.digitalIO.enable_mask == 0b1111


def test_release_floats_every_line(bench) -> None:
    lib, _, matrix, sim = bench
    matrix.select_cell(1, 1, (Bus.BIAS_HALF, Bus.BIAS_HALF))
    assert sim.enabled
    mark = len(lib.calls)
    matrix.release()
    assert lib.calls[mark:] == [("digitalIO.outputSet", (0,))]
    assert not sim.enabled
    assert sim.rows == [Bus.FLOAT] * 10 and sim.cols == [Bus.FLOAT] * 10
    assert matrix.routing == Routing((Bus.FLOAT,) * 10, (Bus.FLOAT,) * 10)


def test_closing_the_ad2_releases_the_matrix(bench) -> None:
    _, ad2, matrix, sim = bench
    matrix.select_cell(4, 4, (Bus.BIAS_THIRD, Bus.BIAS_TWO_THIRDS))
    ad2.close()
    assert not sim.enabled and set(sim.rows + sim.cols) == {Bus.FLOAT}


def test_failed_route_releases_and_reraises(bench) -> None:
    lib, _, matrix, sim = bench
    matrix.select_cell(2, 2)
    lib.fail_after(40, sticky=False)  # dies in the middle of the shift sequence
    with pytest.raises(ConnectionLost):
        matrix.select_cell(5, 5, (Bus.BIAS_HALF, Bus.BIAS_HALF))
    assert lib.calls[-1] == ("digitalIO.outputEnableSet", (0b1111,))  # release re-enabled pins
    assert lib.device.digitalIO.output == 0 and not sim.enabled
    assert matrix.routing == Routing.released(matrix.wiring)


def test_failed_route_on_a_dead_device_leaves_routing_unknown(bench) -> None:
    lib, _, matrix, _ = bench
    lib.fail_after(10)
    with pytest.raises(ConnectionLost):
        matrix.select_cell(5, 5, (Bus.BIAS_HALF, Bus.BIAS_HALF))
    assert matrix.routing is None


HALF = (Bus.BIAS_HALF, Bus.BIAS_HALF)
BAD_CELLS = [
    ("row high", dict(row=10, col=0, unselected=HALF)),
    ("row negative", dict(row=-1, col=0, unselected=HALF)),
    ("col high", dict(row=0, col=10, unselected=HALF)),
    ("bool row", dict(row=True, col=0, unselected=HALF)),
    ("bus", dict(row=0, col=0, unselected=(Bus.BIAS_HALF, 16))),
]


@pytest.mark.parametrize("kwargs", [b[1] for b in BAD_CELLS], ids=[b[0] for b in BAD_CELLS])
def test_bad_cell_requests_write_nothing(bench, kwargs) -> None:
    lib, _, matrix, _ = bench
    mark = len(lib.calls)
    with pytest.raises(ValueError):
        matrix.select_cell(**kwargs)
    assert lib.calls[mark:] == [] and matrix.routing is None


def test_route_checks_lengths_and_values(bench) -> None:
    lib, _, matrix, _ = bench
    mark = len(lib.calls)
    with pytest.raises(ValueError, match="expected 10"):
        matrix.route([Bus.GND] * 9, [Bus.GND] * 10)
    with pytest.raises(ValueError, match="not a Bus"):
        matrix.route([Bus.GND] * 9 + [11], [Bus.GND] * 10)
    assert lib.calls[mark:] == []
    # Plain ints that are Bus values are accepted.
    assert matrix.route([1] * 10, [0] * 10).rows == (Bus.GND,) * 10


def test_cell_routing_is_pure_and_vectorisable() -> None:
    wiring = SwitchWiring(rows=3, cols=4)
    r = cell_routing(np.int64(2), 0, wiring, unselected=(Bus.BIAS_THIRD, Bus.BIAS_TWO_THIRDS))
    assert r.rows == (Bus.BIAS_THIRD, Bus.BIAS_THIRD, Bus.SMU_SOURCE)
    assert r.cols == (Bus.SMU_SENSE,) + (Bus.BIAS_TWO_THIRDS,) * 3


def test_wiring_validation() -> None:
    with pytest.raises(ValueError, match="distinct"):
        SwitchWiring(data_pin=1, clk_pin=1)
    with pytest.raises(ValueError, match="DIO 0"):
        SwitchWiring(enable_pin=16)
    with pytest.raises(ValueError, match="rows"):
        SwitchWiring(rows=0)
    with pytest.raises(ValueError, match="distinct"):
        SwitchWiring(codes=(0,) * len(Bus))
    with pytest.raises(ValueError, match="lacks"):
        SwitchWiring(codes={Bus.FLOAT: 0})
    mapped = SwitchWiring(codes={b: 15 - int(b) for b in Bus})
    assert mapped.codes[0] == 15 and mapped.code(Bus.GND) == 14 and mapped.bus(7) == Bus.BIAS_HALF
    assert SwitchWiring(4, 5, 6, 7).mask == 0xF0
    with pytest.raises(ValueError, match="selects no bus"):
        SwitchWiring().bus(12)
