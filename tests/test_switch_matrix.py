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
    encode_patterns,
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


def _open_bench(mode: str):
    wiring = SwitchWiring()
    sim = sim_for(wiring)
    lib = FakeDwfLibrary(on_dio=sim.on_word)
    ad2 = AnalogDiscovery2(lib, limits=LIMITS)
    ad2.open()
    return lib, ad2, SwitchMatrix(ad2, wiring, mode=mode), sim


@pytest.fixture(params=["pattern", "legacy"])
def bench(request):
    """Both ways of loading the chain (the pattern generator; one DIO word per call)."""
    lib, ad2, matrix, sim = _open_bench(request.param)
    yield lib, ad2, matrix, sim
    ad2.close()


@pytest.fixture
def legacy():
    lib, ad2, matrix, sim = _open_bench("legacy")
    yield lib, ad2, matrix, sim
    ad2.close()


@pytest.fixture
def pattern():
    lib, ad2, matrix, sim = _open_bench("pattern")
    yield lib, ad2, matrix, sim
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


def test_route_writes_each_word_once_through_dio(legacy) -> None:
    lib, ad2, matrix, _ = legacy
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


def test_failed_route_releases_and_reraises(legacy) -> None:
    lib, _, matrix, sim = legacy
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


# --------------------------------------------------------------------------------------------
# pattern mode: the AD2's pattern generator loads the chain
# --------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(case=wirings_and_routings())
def test_patterns_shift_and_latch_the_routing(case) -> None:
    """Played sample by sample (ENABLE held low, then raised), the three patterns leave the
    independent shift-register model holding exactly the routing."""
    wiring, rows, cols = case
    patterns = encode_patterns(rows, cols, wiring)
    assert set(patterns) == {wiring.data_pin, wiring.clk_pin, wiring.latch_pin}
    assert {len(p) for p in patterns.values()} == {2 * wiring.n_bits + 3}
    sim = sim_for(wiring)
    for k in range(2 * wiring.n_bits + 3):
        sim.on_word(sum(int(bits[k]) << pin for pin, bits in patterns.items()))
        assert not sim.enabled
    sim.on_word(1 << wiring.enable_pin)
    assert sim_routing(sim, wiring) == Routing(tuple(rows), tuple(cols))
    assert (sim.clock_edges, sim.latch_edges) == (wiring.n_bits, 1)


def test_pattern_route_call_sequence(pattern) -> None:
    """First routing: the pattern generator set up once; later ones five pydwf calls:
    ENABLE low, DATA's pattern, play, Done, ENABLE high."""
    lib, _, matrix, sim = pattern
    mark = len(lib.calls)
    matrix.select_cell(2, 3)
    first = [n for n, _ in lib.calls[mark:]]
    assert first == [
        "digitalIO.outputSet",
        "digitalIO.outputEnableSet",
        "digitalOut.internalClockInfo",
        "digitalOut.dataInfo",
        *[
            n
            for _ in range(3)
            for n in (
                "digitalOut.enableSet",
                "digitalOut.typeSet",
                "digitalOut.idleSet",
                "digitalOut.dividerSet",
                "digitalOut.dataSet",
            )
        ],
        "digitalOut.runSet",
        "digitalOut.repeatSet",
        "digitalOut.configure",
        "digitalOut.status",
        "digitalIO.outputSet",
    ]
    assert ("digitalOut.dividerSet", (0, 100)) in lib.calls[mark:]  # 100 MHz / 1 MHz
    assert ("digitalOut.runSet", (163e-6,)) in lib.calls[mark:]  # 2·80 + 3 samples at 1 MHz
    mark = len(lib.calls)
    target = matrix.select_cell(7, 1, (Bus.BIAS_THIRD, Bus.BIAS_TWO_THIRDS))
    data = encode_patterns(target.rows, target.cols, matrix.wiring)[0]
    assert lib.calls[mark:] == [
        ("digitalIO.outputSet", (0,)),
        ("digitalOut.dataSet", (0, data, False)),
        ("digitalOut.configure", (True,)),
        ("digitalOut.status", ()),
        ("digitalIO.outputSet", (0b1000,)),
    ]
    assert sim_routing(sim, matrix.wiring) == target == matrix.routing


def test_unchanged_routing_is_not_rewritten(pattern) -> None:
    lib, ad2, matrix, sim = pattern
    matrix.select_cell(4, 4)
    mark = len(lib.calls)
    assert matrix.select_cell(4, 4) == matrix.routing
    assert lib.calls[mark:] == []
    assert matrix.counts == {"routes": 2, "written": 1}
    ad2.dio_write(0, 0b1111)  # someone else touched the pins: the routing is rewritten
    matrix.select_cell(4, 4)
    # ENABLE low, play, Done, ENABLE high (DATA's pattern is already uploaded)
    assert len(lib.calls) - mark == 1 + 4 and sim.enabled
    matrix.release()  # released: the next identical routing is written again
    mark = len(lib.calls)
    matrix.select_cell(4, 4)
    assert [n for n, _ in lib.calls[mark:]] == [
        "digitalIO.outputSet",
        "digitalOut.configure",
        "digitalOut.status",
        "digitalIO.outputSet",
    ]


def test_legacy_routing_is_always_written(legacy) -> None:
    lib, _, matrix, _ = legacy
    matrix.select_cell(4, 4)
    mark = len(lib.calls)
    matrix.select_cell(4, 4)
    assert len(lib.calls) - mark == 1 + 2 * 80 + 4


def test_failed_pattern_route_releases_and_reraises(pattern) -> None:
    lib, _, matrix, sim = pattern
    matrix.select_cell(2, 2)
    lib.fail_after(2, sticky=False)  # the DATA upload fails
    with pytest.raises(ConnectionLost):
        matrix.select_cell(5, 5, (Bus.BIAS_HALF, Bus.BIAS_HALF))
    assert lib.calls[-1] == ("digitalIO.outputSet", (0,))
    assert not sim.enabled and matrix.routing == Routing.released(matrix.wiring)
    mark = len(lib.calls)  # the pattern generator's state is unknown: set up again
    matrix.select_cell(5, 5)
    assert ("digitalOut.enableSet", (0, True)) in lib.calls[mark:] and sim.enabled


def test_pattern_release_on_close_returns_pins_to_digital_io(pattern) -> None:
    lib, ad2, matrix, sim = pattern
    matrix.select_cell(1, 1)
    ad2.close()
    names = [n for n, _ in lib.calls]
    i = names.index("digitalOut.reset")
    assert names[i - 2 : i] == ["digitalIO.outputSet", "digitalIO.outputEnableSet"]
    assert lib.dio_stream[-1] == 0 and not sim.enabled
    assert lib.device.digitalOut.owned_mask == 0


ACTIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("cell"),
            st.integers(0, 9),
            st.integers(0, 9),
            st.sampled_from(list(UNSELECTED.values())),
        ),
        st.tuples(st.just("release")),
        st.tuples(st.just("dio"), st.integers(0, 15)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(actions=ACTIONS)
def test_break_before_make_holds_on_the_recorded_dio_stream(actions) -> None:
    """On the fake's recorded pin stream (DigitalIO writes and every sample the pattern
    generator plays): no CLK or LATCH rising edge while ENABLE is high, and whenever ENABLE is
    high the multiplexers show a whole routing the matrix was asked for."""
    lib, ad2, matrix, _ = _open_bench("pattern")
    w = matrix.wiring
    asked: list[Routing] = []
    for action in actions:
        if action[0] == "cell":
            asked.append(matrix.select_cell(action[1], action[2], action[3]))
        elif action[0] == "release":
            matrix.release()
        else:
            ad2.dio_write(action[1] & ~(1 << w.enable_pin), w.mask)  # pins moved elsewhere
    ad2.close()
    sim, prev = sim_for(w), 0
    for word in lib.dio_stream:
        enabled_before = bool(prev >> w.enable_pin & 1)
        for pin in (w.clk_pin, w.latch_pin):
            rising = word >> pin & 1 and not prev >> pin & 1
            assert not (rising and enabled_before and word >> w.enable_pin & 1)
        sim.on_word(word)
        if sim.enabled:
            assert sim_routing(sim, w) in asked
        prev = word
    assert not sim.enabled
