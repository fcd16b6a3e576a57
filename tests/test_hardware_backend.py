"""InstrumentBackend over the twins (the built-in ``sim`` bench): real drivers, simulated array.

Assertions are on the simulated array's true state and on the command streams the twins
recorded (``backend.sim_handles.adapter.commands``, ``.dwf_library.calls``)."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import sim_config

from crossbar.backend import Biasing, SweepPoint
from crossbar.config import BenchConfigError, load_bench_config, parse_bench_config
from crossbar.hardware import InstrumentBackend
from crossbar.policy import CrossbarPolicy
from instruments.errors import (
    ConnectionLost,
    InstrumentError,
    InstrumentTimeout,
    InterlockOpen,
    SafetyLimitError,
)
from instruments.sweep_plan import cyclic_points
from lab import open_backend


@pytest.fixture
def backend():
    b = open_backend("sim")
    yield b
    b.close()


def uniform(backend, w: float) -> np.ndarray:
    xb = backend.sim_handles.crossbar
    xb.devices.state = np.full(backend.shape, w)
    return xb.true_conductance(0.2).copy()


def sources(commands: list[str]) -> list[float]:
    return [float(c.split()[1]) for c in commands if c.startswith("SOUR:VOLT ")]


def assert_safe(backend) -> None:
    h = backend.sim_handles
    assert not h.adapter.output_on
    assert h.sim_bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)
    assert h.sim_bench.awg == [0.0, 0.0]


def test_open_sim_gives_an_instrument_backend_on_the_twins(backend) -> None:
    assert isinstance(backend, InstrumentBackend)
    h = backend.sim_handles
    assert h.adapter.commands[:2] == ["*RST", "*CLS"]
    assert "SYST:ZCOR ON" in h.adapter.commands
    assert backend.capabilities.rows == 10 and backend.capabilities.row_drivers == 2
    assert backend.capabilities.max_pulse_voltage == 6.0  # pulse_instrument = "keithley"
    assert backend.now() == h.clock.now() > 0


def test_read_cell_is_the_true_conductance_under_v3(backend) -> None:
    g = uniform(backend, 0.5)
    # 1 % read noise on currents ≈ 4× the cell's own (9 half-selected cells at V/3): the
    # differential read has ≈ 8 % rms; reading 10 times brings it to ≈ 2.5 %
    for cell in [(0, 0), (4, 7), (9, 9)]:
        reads = [
            CrossbarPolicy(backend).read_cell(*cell, v_read=0.2, biasing=Biasing.V3)
            for _ in range(10)
        ]
        assert np.mean([r.conductance for r in reads]) == pytest.approx(g[cell], rel=0.08)
        r = reads[0]
        assert r.current == pytest.approx(r.conductance * 0.2)
        assert not r.compliance
    raw = CrossbarPolicy(backend, differential_read=False)  # the single read's sneak bias
    single = raw.read_cell(4, 7, biasing=Biasing.V3)
    assert single.conductance > 3 * g[4, 7]  # 9 half-selected cells at V/3 add ~3 G


def test_read_map_and_time(backend) -> None:
    g = uniform(backend, 0.5)
    cells = []
    t0 = backend.now()
    m = CrossbarPolicy(backend).read_map(v_read=0.2, biasing="v/3", on_cell=cells.append)
    assert len(cells) == 100
    assert np.median(np.abs(m / g - 1)) < 0.1  # ≈ 8 % rms per differential read
    assert abs(np.mean(m / g - 1)) < 0.03  # unbiased
    elapsed = backend.now() - t0
    # 110 readings of 1 PLC (1/60 s each on the twin's 60 Hz mains) are the floor; routing over
    # the pattern generator (five USB calls) and the 6487's transactions come on top
    assert 110 / 60 < elapsed < 6.0
    assert_safe(backend)


def test_repeated_reads_skip_routing_and_unchanged_settings(backend) -> None:
    """io_path "fast" (the sim bench's default): a second read of the same lines at the same
    level sends no pydwf call and only READ?, the VSC cross-check and the error check."""
    h = backend.sim_handles
    lines = Biasing.parse("v/3").lines(backend.shape, 2, 3)
    backend.read(lines, 0.2)
    n, c = len(h.adapter.commands), len(h.dwf_library.calls)
    backend.read(lines, 0.2)
    assert len(h.dwf_library.calls) == c
    assert h.adapter.commands[n:] == ["READ?", "STAT:MEAS:COND?", "SYST:ERR?"]
    other = Biasing.parse("v/3").lines(backend.shape, 3, 3)
    backend.read(other, 0.25)  # another cell and level: one routing, one level written
    assert [name for name, _ in h.dwf_library.calls[c:]] == [
        "digitalIO.outputSet",
        "digitalOut.dataSet",
        "digitalOut.configure",
        "digitalOut.status",
        "digitalIO.outputSet",
    ]
    assert h.adapter.commands[n + 3 :] == [
        "SOUR:VOLT 0.25",
        "READ?",
        "STAT:MEAS:COND?",
        "SYST:ERR?",
    ]


def test_legacy_io_path_writes_everything_every_time() -> None:
    with open_backend(sim_config(instruments__io_path="legacy")) as b:
        h = b.sim_handles
        lines = Biasing.parse("v/3").lines(b.shape, 2, 3)
        b.read(lines, 0.2)
        n, c = len(h.adapter.commands), len(h.dwf_library.calls)
        b.read(lines, 0.2)
        assert len(h.dwf_library.calls) - c == 1 + 2 * 80 + 4
        assert len(h.adapter.commands) - n == 8  # limit, level, operate, ZCH, FORM, 3 queries


@pytest.mark.parametrize("biasing", ["ground", "v/3"])
def test_repeated_reads_are_one_burst_per_setting_with_the_legacy_values(biasing) -> None:
    """read_cell_repeated: one INIT and one TRAC:DATA? per line setting (the differential
    baseline a second burst) on io_path "fast"; the same readings (same seed) as n single reads
    on "legacy", in about a tenth of the bench time (20 PLC of integration are the floor)."""
    out = {}
    for path in ("fast", "legacy"):
        with open_backend(sim_config(instruments__io_path=path)) as b:
            h = b.sim_handles
            t0, n0 = b.now(), len(h.adapter.commands)
            rs = CrossbarPolicy(b).read_cell_repeated(4, 6, 20, biasing=biasing)
            sent = h.adapter.commands[n0:]
            out[path] = ([r.conductance for r in rs], b.now() - t0, sent)
    (g_fast, t_fast, sent), (g_legacy, t_legacy, _) = out["fast"], out["legacy"]
    bursts = 2 if biasing == "v/3" else 1
    assert sent.count("INIT") == sent.count("TRAC:DATA?") == bursts
    assert "READ?" not in sent
    np.testing.assert_allclose(g_fast, g_legacy, rtol=1e-12)
    assert t_fast < t_legacy / 8
    assert t_fast > bursts * 20 / 60  # never below the integration time itself


def test_read_cell_repeated_refuses_bad_counts(backend) -> None:
    with pytest.raises(ValueError):
        CrossbarPolicy(backend).read_cell_repeated(0, 0, 0)


def test_pulse_and_read_step_bench_time() -> None:
    """A program-and-verify step (V/3 pulse on the AWG, ground verify read) on the twins'
    clock: at most 60 ms on io_path "fast" (held pulse, pattern routing, settings written only
    when they change), against the legacy path's; the pulse ends with the AWG at 0 V and the
    matrix released."""
    out = {}
    for path in ("fast", "legacy"):
        with open_backend(sim_config(instruments__io_path=path)) as b:
            h, policy = b.sim_handles, CrossbarPolicy(b)
            policy.read_cell(3, 3, biasing="ground")
            times = []
            for k in range(4):
                t0 = b.now()
                policy.pulse(3, 3, 1.5 + 0.1 * k, 1e-5, biasing="v/3")
                assert h.sim_bench.awg == [0.0, 0.0]
                assert h.sim_bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)
                policy.read_cell(3, 3, biasing="ground")
                times.append(b.now() - t0)
            out[path] = max(times[1:])  # steady state
    assert out["fast"] <= 0.060
    assert out["legacy"] > 5 * out["fast"]


def test_pulse_set_raises_g_and_spares_half_selected(backend) -> None:
    g0 = uniform(backend, 0.2)
    n0 = len(backend.sim_handles.adapter.commands)
    CrossbarPolicy(backend).pulse(
        3, 3, 4.2, 1e-3, biasing=Biasing.V2
    )  # half-selected cells see 2.1 V
    g1 = backend.sim_handles.crossbar.true_conductance(0.2)
    assert g1[3, 3] > 2 * g0[3, 3]
    mask = np.ones((10, 10), dtype=bool)
    mask[3, 3] = False
    np.testing.assert_array_equal(g1[mask], g0[mask])
    assert sources(backend.sim_handles.adapter.commands[n0:]) == []  # the AD2 did it
    awg = [c for c in backend.sim_handles.dwf_library.calls if c[0] == "analogOut.runSet"]
    assert awg[-1][1] == (0, 1e-3)  # AWG1 played one 1 ms run
    assert_safe(backend)


def test_pulse_reset_under_v3_uses_the_dividers(backend) -> None:
    uniform(backend, 0.9)
    g0 = backend.sim_handles.crossbar.true_conductance(0.2).copy()
    n0 = len(backend.sim_handles.adapter.commands)
    CrossbarPolicy(backend).pulse(5, 2, -3.5, 2e-3, biasing="v/3")
    g1 = backend.sim_handles.crossbar.true_conductance(0.2)
    assert g1[5, 2] < 0.5 * g0[5, 2]
    mask = np.ones((10, 10), dtype=bool)
    mask[5, 2] = False
    np.testing.assert_array_equal(g1[mask], g0[mask])
    assert sources(backend.sim_handles.adapter.commands[n0:]) == [-3.5]
    assert_safe(backend)


def test_pulse_above_5v_goes_through_the_keithley(backend) -> None:
    g0 = uniform(backend, 0.1)
    h = backend.sim_handles
    n0 = len(h.adapter.commands)
    CrossbarPolicy(backend).pulse(1, 8, 5.5, 5e-3, biasing="v/3", compliance=2.5e-4)
    new = h.adapter.commands[n0:]
    assert "SOUR:VOLT:ILIM 0.00025" in new and sources(new) == [5.5]
    i_on = new.index("SOUR:VOLT:STAT ON")
    assert "SOUR:VOLT:STAT OFF" in new[i_on:]
    assert new.index("SOUR:VOLT 5.5") < i_on
    assert h.crossbar.true_conductance(0.2)[1, 8] > 2 * g0[1, 8]
    assert_safe(backend)


def test_pulse_beyond_the_awg_refused_when_the_bench_has_only_the_ad2() -> None:
    with open_backend(sim_config(wiring__pulse_instrument="ad2")) as b:
        assert b.capabilities.max_pulse_voltage == 5.0
        h = b.sim_handles
        n_k, n_d = len(h.adapter.commands), h.dwf_library.transactions
        with pytest.raises(SafetyLimitError, match="pulse capability"):
            CrossbarPolicy(b).pulse(0, 0, 5.5, 1e-3)
        assert (len(h.adapter.commands), h.dwf_library.transactions) == (n_k, n_d)


def test_iv_sweep_shape_compliance_and_points(backend) -> None:
    uniform(backend, 0.0)
    v = cyclic_points(6.0, -6.0, 0.25)
    points: list[SweepPoint] = []
    res = CrossbarPolicy(backend).iv_sweep(
        2, 5, v, compliance=25e-6, cycles=2, nplc=0.1, biasing="ground", on_point=points.append
    )
    assert res.current.shape == (v.size, 2) and res.compliance.shape == (v.size, 2)
    assert res.compliance_limit == 25e-6
    assert not np.isnan(res.current).any()
    assert res.compliance.any()  # the SET near +3 V hits the 25 µA limit
    # ground: the column carries only the cell's current, the source limits the whole row
    flagged = res.current[res.compliance]
    assert np.all(np.abs(flagged) <= 25e-6 * 1.05)
    assert [(p.cycle, p.index) for p in points] == [(c, k) for c in range(2) for k in range(v.size)]
    assert all(p.voltage == pytest.approx(v[p.index]) for p in points)
    np.testing.assert_allclose([p.current for p in points[: v.size]], res.current[:, 0])
    times = [p.time for p in points]
    assert times == sorted(times)
    assert backend.sim_handles.adapter.commands.count("SOUR:VOLT:SWE:INIT") == 6  # 3 runs × 2
    assert_safe(backend)


def test_mvm_matches_v_g_with_25_captures_per_vector(backend) -> None:
    g = uniform(backend, 0.5)
    x = np.random.default_rng(1).uniform(0.0, 0.3, (3, 10))
    x[2, :2] = 0.0  # the first row group is all zero for the last vector: skipped
    c0 = backend.stats["captures"]
    y = CrossbarPolicy(backend).mvm(x)
    assert y.shape == (3, 10)
    ideal = np.array(
        [
            backend.sim_handles.crossbar.devices.current(np.tile(r[:, None], (1, 10))).sum(0)
            for r in x
        ]
    )
    np.testing.assert_allclose(y, ideal, rtol=0.03)
    assert backend.captures_per_vector() == 25
    assert backend.stats["captures"] - c0 == 3 * 25 - 5
    assert_safe(backend)
    assert np.all(np.abs(x @ g - y) / (x @ g) < 0.05)


def test_shutdown_leaves_everything_off_and_is_repeatable(backend) -> None:
    h = backend.sim_handles
    CrossbarPolicy(backend).read_cell(0, 0)
    h.adapter.write("SOUR:VOLT:STAT ON")  # something left on behind the backend's back
    backend.ad2.awg_dc(1, 0.5)
    backend.shutdown()
    backend.shutdown()
    assert h.adapter.commands[-2:] == ["SOUR:VOLT:STAT OFF", "SYST:ZCH ON"]
    assert_safe(backend)


def test_exception_inside_with_still_shuts_down() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with open_backend("sim") as b:
            h = b.sim_handles
            CrossbarPolicy(b).read_cell(1, 1)
            h.adapter.write("SOUR:VOLT:STAT ON")
            raise RuntimeError("boom")
    assert not h.adapter.output_on
    assert "SOUR:VOLT:STAT OFF" in h.adapter.commands[-3:]
    assert h.sim_bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)
    assert h.dwf_library.device.closed


def test_requests_beyond_limits_raise_before_any_command(backend) -> None:
    h = backend.sim_handles

    def counts():
        return len(h.adapter.commands), h.dwf_library.transactions

    before = counts()
    with pytest.raises(SafetyLimitError):
        CrossbarPolicy(backend).read_cell(0, 0, v_read=0.5)  # read limit 0.3 V
    with pytest.raises(SafetyLimitError):
        CrossbarPolicy(backend).pulse(0, 0, 6.5, 1e-3)  # bench limit 6 V
    with pytest.raises(SafetyLimitError):
        CrossbarPolicy(backend).pulse(0, 0, 3.0, 1e-3, compliance=1e-3)  # snaps to 2.5 mA > 1 mA
    with pytest.raises(SafetyLimitError):
        CrossbarPolicy(backend).iv_sweep(0, 0, [0, 3, 7], compliance=1e-4)
    with pytest.raises(SafetyLimitError):
        CrossbarPolicy(backend).iv_sweep(0, 0, [0, 1], compliance=2e-3)
    with pytest.raises(SafetyLimitError):
        CrossbarPolicy(backend).mvm(np.full((1, 10), 0.31))
    with pytest.raises(IndexError):
        CrossbarPolicy(backend).read_cell(10, 0)
    assert counts() == before
    assert max((abs(v) for v in sources(h.adapter.commands)), default=0.0) <= 6.0


def test_timeout_fault_surfaces_and_shutdown_still_runs() -> None:
    cfg = sim_config()
    d = cfg.to_dict()
    d["simulation"]["faults"] = {"keithley": {"timeout_after": 40}}
    with open_backend(parse_bench_config(d)) as b:
        h = b.sim_handles
        with pytest.raises(InstrumentTimeout):
            for _ in range(10):
                CrossbarPolicy(b).read_cell(0, 0, biasing="ground")
        b.shutdown()
        assert not h.adapter.output_on


def test_connection_lost_shutdown_never_raises() -> None:
    cfg = sim_config()
    d = cfg.to_dict()
    d["simulation"]["faults"] = {"keithley": {"connection_lost_after": 30}}
    b = open_backend(parse_bench_config(d))
    with pytest.raises(ConnectionLost):
        for _ in range(10):
            CrossbarPolicy(b).read_cell(0, 0, biasing="ground")
    b.shutdown()
    b.close()
    assert b.sim_handles.sim_bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)


def test_physics_backend_and_bad_profile() -> None:
    b = open_backend(sim_config(bench__backend="physics"))
    assert type(b).__name__ == "PhysicsBackend"
    assert b.shape == (10, 10) and b.bench_config.backend == "physics"
    with pytest.raises(BenchConfigError, match=r'\[simulation\] profile = "great": allowed'):
        open_backend(sim_config(simulation__profile="great"))


def test_instruments_backend_without_instruments_raises_connection_lost() -> None:
    cfg = sim_config(bench__backend="instruments", instruments__keithley_timeout_ms=100)
    with pytest.raises(InstrumentError) as info:
        open_backend(cfg)
    assert isinstance(info.value, ConnectionLost)
    assert "Keithley 6487" in str(info.value) or "WaveForms" in str(info.value)


def test_programming_a_cell_leaves_its_row_and_column_alone() -> None:
    """Regression: a V/3 AD2 pulse right after a grounded verify read used to raise the 6487 to
    the pulse amplitude while the read routing was still latched, pulsing the whole row."""
    from crossbar.programming import program_cell
    from lab import open_backend

    backend = open_backend("sim")
    sim = backend.sim_handles.crossbar
    g0 = sim.true_conductance(0.2)
    report = program_cell(backend, 0, 0, 10e-6, tol=0.03)
    g1 = sim.true_conductance(0.2)
    assert report.converged
    others = np.ones_like(g0, dtype=bool)
    others[0, 0] = False
    assert np.max(np.abs(g1[others] / g0[others] - 1)) < 0.01
    assert abs(g1[0, 0] / 10e-6 - 1) < 0.05


# ------------------------------------------------------------------ 50/500 V ranges, mains


def high_voltage_bench(**faults):
    """The sim bench allowed 20 V (the 6487's 50 V range), with keithley faults."""
    d = load_bench_config("sim").to_dict()
    d["limits"]["max_voltage"] = 20.0
    if faults:
        d["simulation"]["faults"] = {"keithley": faults}
    return parse_bench_config(d, origin="test")


def test_pulse_beyond_10v_writes_the_limit_before_the_range_and_returns_to_10v() -> None:
    """Item 5: after connect the 6487 has its *RST 25 mA limit, which the 50 V range refuses
    (−221 on the twin); the limit within 2.5 mA goes first, and the 10 V range comes back."""
    with open_backend(high_voltage_bench()) as b:
        h = b.sim_handles
        n0 = len(h.adapter.commands)
        CrossbarPolicy(b).pulse(3, 3, 12.0, 2e-3, biasing="v/3", compliance=2.5e-4)
        new = h.adapter.commands[n0:]
        assert new.index("SOUR:VOLT:ILIM 0.00025") < new.index("SOUR:VOLT:RANG 50")
        assert (
            new.index("SOUR:VOLT:RANG 50")
            < new.index("SOUR:VOLT 12")
            < new.index("SOUR:VOLT:STAT ON")
        )
        assert new.index("SOUR:VOLT:STAT ON") < new.index("SOUR:VOLT:INT:FAIL?")
        assert new.index("SOUR:VOLT:RANG 10") > new.index("SOUR:VOLT:INT:FAIL?")
        assert h.adapter.source_range == 10 and h.adapter.error_queue == []
        assert_safe(b)


def test_pulse_and_sweep_beyond_10v_refused_with_the_interlock_open() -> None:
    """Item 2: the interlock is open (fault ``interlock_open``): on the 50 V range the source
    would stay high-Z and the pulse apply nothing; InterlockOpen instead, outputs off, back on
    the 10 V range (where off is a low-impedance 0 V)."""
    with open_backend(high_voltage_bench(interlock_open=True)) as b:
        h = b.sim_handles
        g0 = h.crossbar.true_conductance(0.2).copy()
        with pytest.raises(InterlockOpen, match="interlock open on the 50 V range"):
            CrossbarPolicy(b).pulse(3, 3, 12.0, 2e-3, biasing="v/3", compliance=2.5e-4)
        assert h.adapter.source_range == 10 and not h.adapter.output_floating
        assert_safe(b)
        with pytest.raises(InterlockOpen):
            CrossbarPolicy(b).iv_sweep(
                3, 3, cyclic_points(12.0, -12.0, 1.0), compliance=2.5e-4, biasing="ground"
            )
        assert h.adapter.source_range == 10 and not h.adapter.sweep_running
        assert_safe(b)
        np.testing.assert_array_equal(h.crossbar.true_conductance(0.2), g0)
        # within 10.1 V the interlock is not needed: a read works
        assert CrossbarPolicy(b).read_cell(3, 3, biasing="ground").conductance > 0


def test_nplc_range_follows_the_line_frequency_read_at_connect() -> None:
    """Item 4: SYST:LFR? at connect; on 50 Hz mains the capabilities allow at most 5 PLC and
    a 6 PLC sweep is refused before the bus."""
    with open_backend(sim_config(simulation__line_frequency_hz=50)) as b:
        h = b.sim_handles
        assert "SYST:LFR?" in h.adapter.commands and b.line_frequency == 50.0
        assert b.capabilities.nplc_range == (0.01, 5.0)
        n = len(h.adapter.commands)
        with pytest.raises(ValueError, match="nplc"):
            CrossbarPolicy(b).iv_sweep(0, 0, [0.0, 0.1, 0.0], compliance=2.5e-4, nplc=6)
        assert len(h.adapter.commands) == n
    with open_backend("sim") as b:
        assert b.capabilities.nplc_range == (0.01, 6.0)
