"""The AD2 twin: the real AnalogDiscovery2 + SwitchMatrix drivers over the fake pydwf library
wired to the simulated bench (routing, AWG levels and pulses, scope captures, clock, faults)."""

from __future__ import annotations

import numpy as np
import pytest

from instruments.analog_discovery2 import AnalogDiscovery2
from instruments.errors import ConnectionLost, InstrumentError, InstrumentTimeout, SafetyLimits
from instruments.switch_matrix import Bus, SwitchMatrix, SwitchWiring
from sim_backends.ad2_twin import SCOPE_BITS, quantise
from sim_backends.bench_sim import DEFAULT_BUS_CODES, build_sim_bench
from sim_backends.faults import FaultPlan
from sim_backends.solver import End

LIMITS = SafetyLimits(max_voltage=6.0, max_compliance=1e-3)


def bench(mode: str = "pattern", **kw):
    h = build_sim_bench("optimized", seed=3, **kw)
    ad2 = AnalogDiscovery2(
        h.dwf_library, limits=LIMITS, clock=h.clock.now, sleep=h.clock.advance
    ).open()
    matrix = SwitchMatrix(ad2, SwitchWiring(**(kw.get("pins") or {})), mode=mode)
    return h, ad2, matrix


def test_bus_codes_are_the_drivers() -> None:
    assert DEFAULT_BUS_CODES == {b.name: int(b) for b in Bus}


@pytest.mark.parametrize("mode", ["pattern", "legacy"])
def test_dio_routing_is_decoded_into_line_ends(mode: str) -> None:
    h, ad2, matrix = bench(mode)
    sb = h.sim_bench
    assert sb.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)
    matrix.select_cell(2, 7, (Bus.BIAS_THIRD, Bus.BIAS_TWO_THIRDS))
    rows, cols = sb.routing()
    assert rows == ["BIAS_THIRD"] * 2 + ["SMU_SOURCE"] + ["BIAS_THIRD"] * 7
    assert cols == ["BIAS_TWO_THIRDS"] * 7 + ["SMU_SENSE"] + ["BIAS_TWO_THIRDS"] * 2
    sb.set_smu(0.3, True, 2.5e-4)
    left, bottom = sb.line_ends()
    assert left.mode.tolist() == [End.DRIVE] * 10
    np.testing.assert_allclose(left.voltage, [0.1, 0.1, 0.3] + [0.1] * 7)
    assert bottom.mode[7] == End.VGROUND and bottom.mode[0] == End.DRIVE
    np.testing.assert_allclose(bottom.voltage[[0, 9]], 0.2)
    matrix.release()
    assert sb.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)
    assert not sb.matrix.enabled
    sets = [c for c in h.dwf_library.calls if c[0] == "digitalIO.outputSet"]
    if mode == "legacy":  # 1 + 2·80 + 4 DIO words per routing, one pydwf outputSet each
        assert len(sets) == 165 + 1
    else:  # ENABLE low, ENABLE high; the shift sequence played by the pattern generator
        assert len(sets) == 2 + 1
        assert sb.matrix.clock_edges == 80 and sb.matrix.latch_edges == 1


def test_pattern_routing_costs_calls_bits_and_play_time() -> None:
    """A routing on the twin's clock: 1 ms per pydwf call, 1 µs per uploaded bit; the pattern's
    run (163 samples at 1 MHz) is over before the status poll's 1 ms round trip ends."""
    h, ad2, matrix = bench()
    matrix.select_cell(0, 0)
    t0, n0 = h.clock.now(), len(h.dwf_library.calls)
    matrix.select_cell(5, 6)
    calls = len(h.dwf_library.calls) - n0
    assert calls == 5
    assert h.clock.now() - t0 == pytest.approx(5 * 1e-3 + 163 * 1e-6, rel=1e-9)
    h.dwf_library.latency_s = 1e-5  # a faster link: the poll waits for the run itself
    matrix.select_cell(5, 5)
    t0 = h.clock.now()
    matrix.select_cell(5, 6)  # DATA's pattern differs again: uploaded
    assert h.clock.now() - t0 == pytest.approx(2e-5 + 163e-6 + 163e-6 + 2e-5, rel=1e-9)
    t0 = h.clock.now()
    matrix.select_cell(5, 6)  # already routed: nothing sent, no time
    assert h.clock.now() == t0


def test_custom_pins_route_only_when_the_bench_agrees() -> None:
    pins = {"data_pin": 8, "clk_pin": 9, "latch_pin": 12, "enable_pin": 15}
    h, ad2, matrix = bench(pins=pins)
    matrix.select_cell(0, 0)
    assert h.sim_bench.routing()[0] == ["SMU_SOURCE"] + ["GND"] * 9
    h2 = build_sim_bench("optimized", seed=3)  # bench wired to the default pins
    ad2b = AnalogDiscovery2(h2.dwf_library, limits=LIMITS).open()
    SwitchMatrix(ad2b, SwitchWiring(**pins)).select_cell(0, 0)
    assert h2.sim_bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)


def test_awg_dc_levels_and_off() -> None:
    h, ad2, _ = bench()
    ad2.awg_dc(0, 1.25)
    ad2.awg_dc(1, -0.5)
    assert h.sim_bench.awg == [1.25, -0.5]
    ad2.awg_off(0)
    assert h.sim_bench.awg == [0.0, -0.5]
    ad2.close()
    assert h.sim_bench.awg == [0.0, 0.0]


def test_held_pulse_sits_at_the_baseline_plays_once_and_idles_at_zero() -> None:
    """awg_pulse(hold=True): the output holds the baseline (stopped, idle at the offset) until
    awg_start plays the pulse; then the baseline again; awg_idle_zero leaves 0 V."""
    h, ad2, _ = bench()
    levels: list[float] = []
    set_awg = h.sim_bench.set_awg

    def spy(channel, level, *, at=None):
        if channel == 0:
            levels.append(level)
        set_awg(channel, level, at=at)

    h.sim_bench.set_awg = spy
    ad2.skip_unchanged = True  # the fast path's fixed buffer frequency
    ad2.awg_pulse(0, 1.5, 1e-4, baseline=0.5, hold=True)
    assert h.sim_bench.awg[0] == 0.5 and ad2.awg_pending(0)
    t0 = h.sim_bench.t_applied
    ad2.awg_start(0)
    ad2.awg_wait(0)
    assert 1.5 in levels and h.sim_bench.awg[0] == 0.5
    # applied: the configure call's 1 ms at the baseline, then the pulse, its width long
    assert h.sim_bench.t_applied - t0 == pytest.approx(1e-3 + 1e-4)
    ad2.awg_idle_zero(0)
    assert h.sim_bench.awg[0] == 0.0


def test_awg_pulse_switches_the_selected_cell_only() -> None:
    h, ad2, matrix = bench()
    xb = h.crossbar
    xb.devices.state = np.full((10, 10), 0.2)
    g0 = xb.true_conductance().copy()
    # V/2 scheme with the AWGs: AWG2 at V/2 on every unselected line, AWG1 baseline V/2
    ad2.awg_dc(1, 2.0)
    ad2.awg_dc(0, 2.0)
    rows, cols = [Bus.AWG2] * 10, [Bus.AWG2] * 10
    rows[4], cols[6] = Bus.AWG1, Bus.GND
    matrix.route(rows, cols)
    t0 = h.clock.now()
    ad2.awg_pulse(0, 4.0, 1e-3, baseline=2.0)
    assert h.clock.now() - t0 >= 1e-3
    assert h.sim_bench.awg[0] == 2.0  # back at the baseline
    g1 = xb.true_conductance()
    # the state grew by about 0.1 (x2 in G nominally); G also carries the redrawn level
    # (log-normal, level_sigma), so the switching is asserted on the state
    assert xb.devices.state[4, 6] > 0.2 + 0.05
    assert g1[4, 6] > 1.2 * g0[4, 6]
    others = np.ones((10, 10), dtype=bool)
    others[4, 6] = False
    np.testing.assert_array_equal(g1[others], g0[others])  # half-selected (2 V) unchanged


def test_arbitrary_waveform_plays_its_levels() -> None:
    h, ad2, matrix = bench()
    xb = h.crossbar
    xb.devices.state = np.full((10, 10), 0.2)
    g0 = xb.true_conductance().copy()
    matrix.select_cell(1, 1, source=Bus.AWG1, sense=Bus.GND)
    t0 = h.clock.now()
    ad2.awg_arbitrary(0, np.r_[np.zeros(10), np.full(10, 4.0), np.zeros(10)], 10_000.0)
    assert h.clock.now() - t0 >= 30 / 10_000.0
    g1 = xb.true_conductance()
    assert g1[1, 1] > g0[1, 1]  # 1 ms at 4 V: SET
    assert np.all(g1[1, [0, 2, 3]] > g0[1, [0, 2, 3]])  # ground scheme: the whole row sees 4 V
    np.testing.assert_array_equal(g1[2:], g0[2:])


def test_scope_capture_is_minus_i_gain_on_the_14_bit_grid() -> None:
    h, ad2, matrix = bench(device_noise=False)
    rows, cols = [Bus.GND] * 10, [Bus.GND] * 10
    rows[3], cols[0], cols[1] = Bus.AWG1, Bus.TIA1, Bus.TIA2
    matrix.route(rows, cols)
    ad2.awg_dc(0, 0.25)
    t0 = h.clock.now()
    v = ad2.scope_capture((0, 1), range_v=5.0, sample_rate=1e6, n_samples=2000, trigger_on_awg=None)
    assert h.clock.now() - t0 >= 2000 / 1e6
    lsb = 5.0 / 2**SCOPE_BITS
    codes = v / lsb
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-6)
    i_cells = h.crossbar.devices.current(np.full((10, 10), 0.25))[3, :2]
    np.testing.assert_allclose(v.mean(axis=1), -i_cells * 1e4, rtol=2e-3, atol=2 * lsb)
    assert 2e-4 < v[0].std() < 1e-3  # scope noise 0.5 mV rms (+ quantisation)
    wide = ad2.scope_capture((0,), range_v=20.0, n_samples=100, trigger_on_awg=None)
    codes = wide / (50.0 / 2**SCOPE_BITS)
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-6)


def test_quantise_clips_to_the_hardware_span() -> None:
    q = quantise(np.array([-3.0, 0.0, 1e-4, 3.0]), 4.0)
    lsb = 5.0 / 2**14
    assert q[0] == -2.5 and q[-1] == pytest.approx(2.5 - lsb)
    assert q[2] == pytest.approx(lsb * round(1e-4 / lsb))


def test_each_pydwf_call_costs_usb_latency() -> None:
    h, ad2, _ = bench(usb_latency_s=2e-3)
    n0, t0 = h.dwf_library.transactions, h.clock.now()
    ad2.dio_write(0b1010, 0xF)
    ad2.awg_dc(0, 0.1)
    n = h.dwf_library.transactions - n0
    assert n == 2 + 6
    assert h.clock.now() - t0 == pytest.approx(n * 2e-3)


def test_fault_connection_lost() -> None:
    h, ad2, _ = bench(faults={"ad2": FaultPlan(connection_lost_after=40)})
    ad2.awg_dc(0, 0.1)
    with pytest.raises(ConnectionLost):
        for _ in range(40):
            ad2.dio_write(1, 1)
    with pytest.raises(ConnectionLost):
        ad2.awg_dc(0, 0.0)
    ad2.close()  # never raises
    assert not ad2.is_open


def test_fault_timeout_and_error_code() -> None:
    h, ad2, _ = bench(faults={"ad2": FaultPlan(timeout_after=20, error_after=30, error_code=17)})
    with pytest.raises(InstrumentTimeout):
        for _ in range(30):
            ad2.dio_write(0, 1)
    with pytest.raises(InstrumentError) as info:
        for _ in range(30):
            ad2.dio_write(0, 1)
    assert info.value.code == 17 and not isinstance(info.value, ConnectionLost)


def test_fault_garbled_capture() -> None:
    h, ad2, matrix = bench(device_noise=False, faults={"ad2": FaultPlan(garbled_after=0, seed=1)})
    v = ad2.scope_capture((0, 1), n_samples=1000, trigger_on_awg=None)
    assert v.std() > 0.5  # random samples over ±2.5 V instead of ~0 V
    v = ad2.scope_capture((0, 1), n_samples=1000, trigger_on_awg=None)
    assert v.std() < 2e-3  # one-shot
