"""The Keithley 6487 twin: SCPI behaviour, the real driver over it, its virtual clock, faults."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pyvisa
from hypothesis import given, settings
from hypothesis import strategies as st

from instruments.errors import (
    ConnectionLost,
    GarbledReply,
    InstrumentErrorQueue,
    InstrumentTimeout,
    InterlockOpen,
    SafetyLimitError,
    SafetyLimits,
    StopRequested,
)
from instruments.keithley6487 import MEAS_BFL, MEAS_INT, Keithley6487, parse_readings
from instruments.keithley6487_procedures import measure_at, measure_burst, sweep, sweep_points
from instruments.sweep_plan import cyclic_points
from sim_backends.faults import FaultPlan
from sim_backends.keithley_twin import IDN, Keithley6487Twin, ResistorLoad

LIMITS = SafetyLimits(max_voltage=8.0, max_compliance=2.5e-3)


def twin(r: float = 1e6, **kw) -> Keithley6487Twin:
    return Keithley6487Twin(ResistorLoad(r), **kw)


def ask(t: Keithley6487Twin, command: str) -> str:
    t.write(command)
    return t.read()


def errors(t: Keithley6487Twin) -> list[int]:
    out = []
    while True:
        code = int(ask(t, "SYST:ERR?").split(",")[0])
        if code == 0:
            return out
        out.append(code)


# ------------------------------------------------------------------------------ raw SCPI


def test_idn_and_empty_error_queue() -> None:
    t = twin()
    assert ask(t, "*IDN?") == IDN
    assert ask(t, "SYST:ERR?") == '0,"No error"'


def test_garbage_gives_113_and_syst_err_pops_in_order() -> None:
    t = twin()
    t.write("FOO:BAR 3")
    t.write("SOURC:VOLT 1")  # not a short or long form
    t.write("SOUR:VOLT 20")  # beyond the 10 V range
    t.write("SOUR:VOLT:STAT MAYBE")
    t.write("FORM:ELEM READ,BOGUS")
    t.write("SOUR:VOLT:ILIM 1")
    t.write("SOUR:VOLT")  # missing parameter
    t.write("TRAC:CLE 3")  # parameter not allowed
    assert ask(t, "SYST:ERR?") == '-113,"Undefined header"'
    assert errors(t) == [-113, -222, -224, -224, -222, -109, -108]
    assert t.source_voltage == 0.0 and not t.operate  # nothing bad was applied


def test_error_queue_overflows_at_ten_with_350() -> None:
    t = twin()
    for _ in range(13):
        t.write("NOPE")
    assert errors(t) == [-113] * 9 + [-350]


def test_long_forms_and_optional_nodes() -> None:
    t = twin()
    t.write("SOURce:VOLTage:LEVel:IMMediate:AMPLitude 1.5")
    t.write("SENSe1:CURRent:DC:NPLCycles 2")
    t.write(":sens:curr:rang:auto off")
    assert t.source_voltage == 1.5 and t.nplc == 2.0 and not t.autorange
    assert float(ask(t, "SOUR:VOLT?")) == 1.5
    assert float(ask(t, "NPLC?")) == 2.0
    assert errors(t) == []


@settings(max_examples=40, deadline=None)
@given(
    forms=st.lists(st.sampled_from(["short", "long"]), min_size=3, max_size=3),
    upper=st.lists(st.booleans(), min_size=3, max_size=3),
    v=st.floats(-10.1, 10.1, allow_nan=False),
)
def test_any_mix_of_short_and_long_forms_sets_the_level(forms, upper, v) -> None:
    words = [("SOUR", "SOURce"), ("VOLT", "VOLTage"), ("LEV", "LEVel")]
    nodes = [w[0] if f == "short" else w[1] for w, f in zip(words, forms)]
    nodes = [n.upper() if u else n.lower() for n, u in zip(nodes, upper)]
    t = twin()
    t.write(":".join(nodes) + f" {v:.6g}")
    assert errors(t) == []
    assert t.source_voltage == pytest.approx(float(f"{v:.6g}"))


def test_ilim_clamps_and_vso_reports_minus_999() -> None:
    t = twin(1e3)  # 1 V across 1 kΩ wants 1 mA
    for c in ("SOUR:VOLT:ILIM 2e-5", "SOUR:VOLT 1", "SOUR:VOLT:STAT ON", "SYST:ZCH OFF"):
        t.write(c)
    t.write("FORM:ELEM READ,UNIT,VSO")
    assert float(ask(t, "SOUR:VOLT:ILIM?")) == 25e-6  # 20 µA snapped up to 25 µA
    reply = ask(t, "READ?")
    current, vso = reply.split(",")
    assert current.endswith("A")
    assert float(current[:-1]) == pytest.approx(25e-6, rel=1e-3)
    assert float(vso.rstrip("V")) == -999.0
    t.write("SOUR:VOLT:ILIM 2.5e-3")
    current, vso = ask(t, "READ?").split(",")
    assert float(current[:-1]) == pytest.approx(1e-3, rel=1e-3)
    assert float(vso.rstrip("V")) == 1.0


def test_form_elem_all_gives_time_status_and_units() -> None:
    t = twin(1e3, latency_s=1e-3)
    for c in ("SOUR:VOLT:ILIM 2e-5", "SOUR:VOLT 1", "SOUR:VOLT:STAT ON", "SYST:ZCH OFF"):
        t.write(c)
    t.write("NPLC 0.6")
    t.write("FORM:ELEM ALL")
    assert ask(t, "FORM:ELEM?") == "READ,UNIT,TIME,STAT,VSO"
    reply = ask(t, "READ?")
    current, stamp, status, vso = reply.split(",")
    assert current.endswith("A") and stamp.endswith("SECS") and vso.endswith("V")
    (r,) = parse_readings(reply, "READ,UNIT,TIME,STAT,VSO")
    assert r.time == pytest.approx(t.clock.now())  # end of the 0.6 PLC integration
    assert r.status == 8 and r.compliance  # twin's status word: bit 3 = compliance
    t.write("FORM:ELEM VSO,READ")  # the order given is the order sent
    vso, current = ask(t, "READ?").split(",")
    assert float(vso) == -999.0 and float(current) == pytest.approx(25e-6, rel=1e-3)


def test_overflow_sentinel_beyond_a_fixed_range() -> None:
    t = twin(1e6)  # 1 µA
    for c in ("SOUR:VOLT 1", "SOUR:VOLT:STAT ON", "SYST:ZCH OFF", "RANG 2e-9", "FORM:ELEM READ"):
        t.write(c)
    assert ask(t, "READ?") == "+9.900000E+37"
    t.write("RANG:AUTO ON")
    assert float(ask(t, "READ?")) == pytest.approx(1e-6, rel=1e-3)


def test_zero_check_reads_about_zero() -> None:
    t = twin(1e6)
    for c in ("SOUR:VOLT 1", "SOUR:VOLT:STAT ON", "FORM:ELEM READ"):
        t.write(c)
    assert abs(float(ask(t, "READ?"))) < 1e-13  # zero check is on after *RST
    t.write("SYST:ZCH OFF")
    assert float(ask(t, "READ?")) == pytest.approx(1e-6, rel=1e-3)


def test_nplc_noise_falls_as_one_over_sqrt_nplc() -> None:
    t = twin(1e6, noise_ppm=200.0)  # 1 µA on the 2 µA range: σ = 0.4 nA at 1 PLC
    for c in ("SOUR:VOLT 1", "SOUR:VOLT:STAT ON", "SYST:ZCH OFF", "FORM:ELEM READ"):
        t.write(c)
    t.write("TRIG:COUN 2000")

    def spread(nplc: float) -> float:
        t.write(f"NPLC {nplc}")
        values = np.array([float(x) for x in ask(t, "READ?").split(",")])
        assert values.size == 2000
        assert np.mean(values) == pytest.approx(1e-6, rel=1e-3)
        return float(np.std(values))

    s_fast, s_slow = spread(0.06), spread(6.0)
    assert s_fast / s_slow == pytest.approx(10.0, rel=0.1)  # sqrt(6 / 0.06)
    assert s_slow == pytest.approx(200e-6 * 2e-6 / math.sqrt(6), rel=0.1)


def test_builtin_sweep_fills_the_buffer_and_refuses_840_while_running() -> None:
    t = twin(1e4, latency_s=3e-3, poll_wait_s=0.05)
    for c in (
        "SOUR:VOLT:ILIM 2.5e-3",
        "SOUR:VOLT:SWE:STAR 0",
        "SOUR:VOLT:SWE:STOP 1",
        "SOUR:VOLT:SWE:STEP 0.1",
        "SOUR:VOLT:SWE:DEL 0.01",
        "NPLC 1",
        "FORM:ELEM READ,VSO",
        "TRIG:COUN 11",
        "TRAC:CLE",
        "TRAC:POIN 11",
        "TRAC:FEED SENS",
        "TRAC:FEED:CONT NEXT",
        "SYST:ZCH OFF",
        "STAT:MEAS:ENAB 512",
        "SOUR:VOLT:SWE:INIT",
    ):
        t.write(c)
    assert t.output_on and t.source_voltage == 0.0  # SWE:INIT puts the source in operate
    t.write("SOUR:VOLT 2")  # armed: the manual's p. 6-11 list is locked out already
    t.write("INIT")
    t0 = t.clock.now()
    t.write("SOUR:VOLT 2")
    t.write("TRAC:CLE")
    t.write("INIT")
    polls = 1
    while not t.connection.read_stb() & 1:  # serial poll: the measurement summary bit
        polls += 1
    step = 0.01 + 1 / 60 + 1e-3
    assert polls == pytest.approx(11 * step / (0.05 + 3e-3), abs=2)
    assert t.clock.now() - t0 == pytest.approx(11 * step, abs=0.05 + 2 * 3e-3)
    assert t.meas_events & MEAS_BFL and t.serial_polls == polls
    assert errors(t) == [840, 840, 840, 840]
    values = np.array([float(x) for x in ask(t, "TRAC:DATA?").split(",")]).reshape(-1, 2)
    assert values.shape == (11, 2)
    np.testing.assert_allclose(values[:, 1], np.linspace(0, 1, 11), atol=1e-9)
    np.testing.assert_allclose(values[:, 0], values[:, 1] / 1e4, atol=2e-8)
    assert int(ask(t, "TRAC:POIN:ACT?")) == 11
    assert t.source_voltage == 1.0  # a completed sweep leaves the last level


def test_descending_sweep_and_abort() -> None:
    t = twin(1e4, poll_wait_s=0.05)
    for c in ("SOUR:VOLT:SWE:STAR 1", "SOUR:VOLT:SWE:STOP -1", "SOUR:VOLT:SWE:STEP 0.5"):
        t.write(c)
    for c in ("SYST:ZCH OFF", "FORM:ELEM READ,VSO", "TRAC:POIN 5", "SOUR:VOLT:SWE:INIT", "INIT"):
        t.write(c)
    while ask(t, "SOUR:VOLT:SWE:STAT?") == "1":
        pass
    values = np.array([float(x) for x in ask(t, "TRAC:DATA?").split(",")]).reshape(-1, 2)
    np.testing.assert_allclose(values[:, 1], [1, 0.5, 0, -0.5, -1], atol=1e-12)
    t.write("SOUR:VOLT:SWE:INIT")
    t.write("INIT")
    t.write("SOUR:VOLT:SWE:ABOR")
    assert ask(t, "SOUR:VOLT:SWE:STAT?") == "0"
    assert not t.output_on  # ABORt puts the source in standby
    assert errors(t) == []


def test_interlock_on_the_high_ranges() -> None:
    t = twin(interlock_closed=False)
    t.write("SOUR:VOLT:RANG 50")  # *RST limit 25 mA: not allowed on 50 V
    assert errors(t) == [-221] and t.source_range == 10
    t.write("SOUR:VOLT:ILIM 2.5e-3")
    t.write("SOUR:VOLT:RANG 50")
    t.write("SOUR:VOLT:INT OFF")
    t.write("SOUR:VOLT:STAT ON")
    assert errors(t) == [-221]  # only the interlock switch-off: an open lid queues nothing
    assert not t.output_on and ask(t, "SOUR:VOLT:INT:FAIL?") == "1"
    assert t.circuit.floating  # high impedance, not 0 V
    assert int(ask(t, "STAT:MEAS?")) & MEAS_INT
    t.write("SOUR:VOLT:RANG 10")
    assert t.output_on and ask(t, "SOUR:VOLT:INT:FAIL?") == "0" and not t.circuit.floating


def test_adapter_plumbing_bytes_flush_and_close() -> None:
    t = twin()
    t.write_bytes(b"*IDN?")
    assert t.read_bytes(-1) == IDN.encode()
    t.write("*IDN?")
    t.flush_read_buffer()
    t.write("*IDN?")
    assert t.read() == IDN
    t.close()
    assert t.connection.closed
    assert t.commands == ["*IDN?", "*IDN?", "*IDN?"]


def test_unread_query_is_interrupted_410() -> None:
    t = twin()
    t.write("*IDN?")
    t.write("*RST")
    assert errors(t) == [-410]


# ------------------------------------------------------------------------------ the driver


def test_driver_round_trip_measure_sweep_and_shutdown() -> None:
    t = twin(1e4, poll_wait_s=0.05)
    k = Keithley6487(t, limits=LIMITS)
    assert k.identity.model == "6487"
    k.zero_correct()
    r = measure_at(k, 1.0, compliance=2.5e-4, nplc=1)
    assert r.current == pytest.approx(1e-4, rel=1e-4) and r.voltage_source == 1.0
    assert not r.compliance
    k.source_voltage = 2.5
    assert k.source_voltage == 2.5
    points = cyclic_points(2.0, -2.0, 0.1)
    seen: list[int] = []
    readings = sweep_points(
        k,
        points,
        compliance=2.5e-4,
        on_reading=lambda i, _: seen.append(i),
        builtin_descending=True,
        poll_interval=0,
    )
    assert seen == list(range(points.size))
    currents = np.array([x.current for x in readings])
    np.testing.assert_allclose(currents, points / 1e4, atol=3e-8)
    assert [x.voltage_source for x in readings] == pytest.approx(list(points))
    assert t.commands.count("SOUR:VOLT:SWE:INIT") == 3  # three monotonic runs
    k.shutdown()
    assert t.commands[-2:] == ["SOUR:VOLT:STAT OFF", "SYST:ZCH ON"]
    assert not t.output_on
    assert max(abs(float(c.split()[1])) for c in t.commands if c.startswith("SOUR:VOLT ")) <= 8.0


def test_burst_fills_the_buffer_like_the_manual_and_costs_its_readings() -> None:
    """TRIG:COUN n + TRAC:FEED:CONT NEXT + INIT: n readings into the buffer (BFL once full),
    TRAC:DATA? returns them all; the clock charges n × (1 PLC + the trigger loop's 1 ms)."""
    t = twin(1e4)
    k = Keithley6487(t, limits=LIMITS)
    measure_at(k, 1.0, compliance=2.5e-4, nplc=1)
    t0, n0 = t.clock.now(), len(t.commands)
    readings = measure_burst(k, 1.0, 20, compliance=2.5e-4)
    assert len(readings) == 20 and len(t.buffer) == 20 and t.feed_control == "NEV"
    np.testing.assert_allclose([r.current for r in readings], 1e-4, rtol=1e-4)
    assert t.commands[n0:].count("INIT") == 1 and t.commands[n0:].count("TRAC:DATA?") == 1
    sent = len(t.commands) - n0
    expected = sent * t.latency_s + 20 * (1 / 60 + t.step_overhead_s)
    assert t.clock.now() - t0 == pytest.approx(expected, rel=1e-9)


def test_driver_reports_compliance_through_vso() -> None:
    t = twin(1e3)
    k = Keithley6487(t, limits=LIMITS)
    r = measure_at(k, 2.0, compliance=25e-6, nplc=0.1)
    assert r.compliance and math.isnan(r.voltage_source)
    assert r.current == pytest.approx(25e-6, rel=1e-3)


def test_driver_overflow_reading() -> None:
    t = twin(1e6)
    k = Keithley6487(t, limits=LIMITS)
    k.current_range = 2e-9
    r = measure_at(k, 1.0, compliance=2.5e-4)
    assert r.overflow and r.current == math.inf


def test_safety_refusal_reaches_no_bus() -> None:
    t = twin()
    k = Keithley6487(t, limits=LIMITS)
    with pytest.raises(SafetyLimitError):
        measure_at(k, 9.0, compliance=1e-4)
    with pytest.raises(SafetyLimitError):
        sweep_points(k, [0, 5, 10], compliance=1e-4)
    assert t.commands == []


def test_driver_error_queue_after_a_bad_setting() -> None:
    t = twin()
    k = Keithley6487(t, limits=SafetyLimits(max_voltage=400.0, max_compliance=2.5e-3))
    with pytest.raises(InstrumentErrorQueue) as info:
        k.source_voltage = 20.0  # beyond the 10 V range: the instrument refuses it
    assert info.value.code == -222
    assert t.source_voltage == 0.0


# ------------------------------------------------------------------------------ the clock


def test_each_transaction_costs_latency_and_readings_integration() -> None:
    t = twin(latency_s=3e-3)
    assert t.clock.now() == 0.0
    ask(t, "*IDN?")
    assert t.clock.now() == pytest.approx(3e-3)
    k = Keithley6487(t, limits=LIMITS)
    n0, t0 = t.transactions, t.clock.now()
    measure_at(k, 0.5, compliance=2.5e-4, nplc=2)
    n = t.transactions - n0
    # NPLC, ILIM, SOUR:VOLT, STAT ON, ZCH OFF, FORM:ELEM, READ?, STAT:MEAS:COND?, SYST:ERR?
    assert n == 9
    assert t.clock.now() - t0 == pytest.approx(n * 3e-3 + 2 / 60)


def test_builtin_sweep_time_on_the_clock() -> None:
    t = twin(1e4, latency_s=1e-3, poll_wait_s=0.02)
    k = Keithley6487(t, limits=LIMITS)
    k.nplc = 1
    t0 = t.clock.now()
    sweep(k, 0.0, 3.0, 0.1, compliance=2.5e-4, poll_interval=0)
    elapsed = t.clock.now() - t0
    n = 31
    assert elapsed >= n * (1 / 60 + 1e-3)
    assert elapsed <= n * (1 / 60 + 1e-3) + 0.02 + t.transactions * 1e-3 + 1e-9


# ------------------------------------------------------------------------------ faults


def test_timeout_surfaces_as_instrument_timeout_and_costs_the_timeout() -> None:
    t = twin(faults=FaultPlan(timeout_after=0), timeout_s=2.0)
    k = Keithley6487(t, limits=LIMITS)
    with pytest.raises(InstrumentTimeout) as info:
        _ = k.identity
    assert info.value.command == "*IDN?"
    assert t.clock.now() == pytest.approx(2.0 + 3e-3)
    assert k.identity.model == "6487"  # one-shot


def test_garbled_reply_surfaces_as_garbled_reply() -> None:
    t = twin(faults=FaultPlan(garbled_after=3, seed=4))
    k = Keithley6487(t, limits=LIMITS)
    with pytest.raises(GarbledReply):
        measure_at(k, 0.1, compliance=2.5e-4)  # 5 writes, then READ? (the 6th) is garbled
    assert t.faults.fired[0][1] == "garbled"


def test_connection_lost_after_n_transactions() -> None:
    t = twin(faults=FaultPlan(connection_lost_after=5))
    k = Keithley6487(t, limits=LIMITS)
    with pytest.raises(ConnectionLost):
        measure_at(k, 0.1, compliance=2.5e-4, nplc=1)
    with pytest.raises(ConnectionLost):
        _ = k.identity
    k.shutdown()  # never raises on a dead bus
    assert len(t.commands) == 5
    assert t.failed[-2:] == ["SOUR:VOLT:STAT OFF", "SYST:ZCH ON"]


def test_injected_error_code_is_queued() -> None:
    t = twin(faults=FaultPlan(error_after=2, error_code=-350))
    k = Keithley6487(t, limits=LIMITS)
    with pytest.raises(InstrumentErrorQueue) as info:
        measure_at(k, 0.1, compliance=2.5e-4)
    assert info.value.code == -350


def test_forced_compliance_hits() -> None:
    t = twin(1e6, faults=FaultPlan(compliance_after=0))
    k = Keithley6487(t, limits=LIMITS)
    r = measure_at(k, 0.1, compliance=2.5e-4)
    assert r.compliance and r.current == pytest.approx(2.5e-4, rel=1e-4)


# ------------------------------------------------------------------ the manual's hard cases
# Reference Manual facts the twin models (items 1-6 of issue 16); each test below fails with
# the driver as it was before it (SOUR:VOLT:SWE:STAT? polling, no interlock check, range before
# limit, sweep flag set after the arming write).

WIDE = SafetyLimits(max_voltage=20.0, max_compliance=2.5e-3)


def armed_sweep(t: Keithley6487Twin, points: int) -> None:
    """Arm and start a 0 -> 1 V built-in sweep of ``points`` steps at 1 PLC on the raw twin."""
    for c in (
        "SOUR:VOLT:ILIM 2.5e-3",
        "SOUR:VOLT:SWE:STAR 0",
        "SOUR:VOLT:SWE:STOP 1",
        f"SOUR:VOLT:SWE:STEP {1 / (points - 1)}",
        "NPLC 1",
        "FORM:ELEM READ,VSO",
        f"TRAC:POIN {points}",
        "TRAC:FEED:CONT NEXT",
        "SYST:ZCH OFF",
        "SOUR:VOLT:SWE:INIT",
        "INIT",
    ):
        t.write(c)


def test_a_query_during_a_sweep_is_answered_only_when_it_ends() -> None:
    """Commands are executed one after another (*WAI "is effectively a No-Op"): a query sent
    while the sweep runs, and everything sent after it, wait for its end; a VISA timeout
    shorter than that fails the read. A serial poll and a device clear still get through."""
    t = twin(1e4, latency_s=1e-3, timeout_s=2.0)
    armed_sweep(t, 301)  # 301 x (1/60 + 1 ms) = 5.3 s
    t_end = t._sweep.t_end
    t.write("*IDN?")
    with pytest.raises(pyvisa.errors.VisaIOError):
        t.read()  # 2 s VISA timeout
    assert t.sweep_running and t.clock.now() < t_end
    assert not t.connection.read_stb() & 1  # the serial poll is answered at once
    t.connection.timeout = 10_000  # ms, as on a pyvisa session
    assert t.read() == IDN and t.clock.now() >= t_end  # the reply came with the sweep's end
    assert not t.sweep_running and int(ask(t, "TRAC:POIN:ACT?")) == 301
    # an abort sent behind a held query is not read either, until a device clear drops it
    armed_sweep(t, 301)
    t.write("*IDN?")
    t.write("SOUR:VOLT:SWE:ABOR")
    t.clock.advance(1.0)
    assert t.sweep_running and t.output_on
    t.connection.clear()
    t.write("SOUR:VOLT:SWE:ABOR")
    assert not t.sweep_running and not t.output_on and t.device_clears == 1
    assert errors(t) == []


def test_driver_waits_for_a_sweep_longer_than_the_visa_timeout() -> None:
    """Item 1: a 201-point built-in sweep (3.6 s) with a 2 s VISA timeout completes: the
    driver waits by serial poll. (Polling SOUR:VOLT:SWE:STAT? timed out on the first poll.)"""
    t = twin(1e4, latency_s=1e-3, poll_wait_s=0.1, timeout_s=2.0)
    k = Keithley6487(t, limits=LIMITS)
    k.nplc = 1
    t0 = t.clock.now()
    readings = sweep(k, 0.0, 2.0, 0.01, compliance=2.5e-4, poll_interval=0)
    assert len(readings) == 201
    np.testing.assert_allclose([r.voltage_source for r in readings], np.linspace(0, 2, 201))
    np.testing.assert_allclose(
        [r.current for r in readings], np.linspace(0, 2, 201) / 1e4, atol=3e-8
    )
    assert t.clock.now() - t0 >= 201 * (1 / 60 + 1e-3)
    assert "SOUR:VOLT:SWE:STAT?" not in t.commands and t.serial_polls >= 30
    assert errors(t) == [] and not k.sweep_armed


def test_driver_stops_a_long_sweep_at_its_next_poll() -> None:
    """Item 1, abort: should_stop() is asked between serial polls; True clears the device,
    aborts the sweep (SOUR:VOLT:SWE:ABOR: source to standby) and raises StopRequested, long
    before the sweep would have ended."""
    t = twin(1e4, latency_s=1e-3, poll_wait_s=0.1, timeout_s=2.0)
    k = Keithley6487(t, limits=LIMITS)
    k.nplc = 1
    polls = iter(range(1000))
    with pytest.raises(StopRequested):
        sweep(k, 0.0, 2.0, 0.001, compliance=2.5e-4, poll_interval=0,
              should_stop=lambda: next(polls) >= 3)  # fmt: skip
    assert t.serial_polls == 4 and t.device_clears == 1
    assert not t.sweep_running and not t.output_on
    assert t.clock.now() < 2001 * (1 / 60 + 1e-3) / 10
    assert errors(t) == []


def test_driver_without_serial_poll_sizes_the_visa_timeout_from_the_sweep() -> None:
    """Item 1 on RS-232 (no serial poll): STAT:MEAS? with the VISA timeout raised to the time
    the sweep may take: its reply, held until the sweep ends, arrives within it."""
    t = twin(1e4, latency_s=1e-3, timeout_s=2.0, serial_poll=False)
    k = Keithley6487(t, limits=LIMITS)
    k.nplc = 1
    readings = sweep(k, 0.0, 2.0, 0.01, compliance=2.5e-4, poll_interval=0)
    assert len(readings) == 201 and t.timeout_s == 2.0  # restored
    assert t.commands.count("STAT:MEAS?") == 2  # the clearing read and the one held reply


def test_open_interlock_on_the_50v_range_is_refused_and_switched_off() -> None:
    """Item 2: on the 50/500 V ranges an open interlock keeps the source in high impedance
    with nothing in the error queue; the driver checks SOUR:VOLT:INT:FAIL? after switching
    the source on and refuses (InterlockOpen) after switching it off."""
    t = twin(1e4, interlock_closed=False)
    k = Keithley6487(t, limits=WIDE)
    k.source_current_limit = 2.5e-4
    k.source_voltage_range = 50
    with pytest.raises(InterlockOpen, match="interlock open on the 50 V range"):
        measure_at(k, 15.0, compliance=2.5e-4)
    assert not t.operate and t.commands[-1] == "SOUR:VOLT:STAT OFF"
    assert "READ?" not in t.commands
    k.source_voltage_range = 10
    assert t.output_voltage == 0.0 and not t.circuit.floating  # off = low-impedance 0 V again


def test_open_interlock_refuses_a_builtin_sweep_beyond_10v() -> None:
    """Item 2 for the built-in sweep: SOUR:VOLT:SWE:INIT puts the source in operate on the
    lowest range holding every level (50 V here); the driver checks the interlock then."""
    t = twin(1e4, faults=FaultPlan(interlock_open=True))
    k = Keithley6487(t, limits=WIDE)
    k.reset()
    with pytest.raises(InterlockOpen):
        sweep(k, 0.0, 12.0, 1.0, compliance=2.5e-4, poll_interval=0)
    assert not t.sweep_armed and not t.sweep_running and not t.operate
    assert "INIT" not in t.commands and t.commands[-2:] == [
        "SOUR:VOLT:SWE:ABOR",
        "SOUR:VOLT:STAT OFF",
    ]
    assert errors(t) == []


def test_limit_written_before_switching_to_the_50v_range() -> None:
    """Item 5: after *RST the limit is 25 mA, which the 50/500 V ranges do not allow: the
    driver writes a limit <= 2.5 mA (the largest the bench allows) before the range."""
    t = twin()
    k = Keithley6487(t, limits=SafetyLimits(max_voltage=20.0, max_compliance=1e-3))
    k.reset()
    k.source_voltage_range = 50
    assert t.commands[-3:] == ["SOUR:VOLT:ILIM 0.00025", "SOUR:VOLT:RANG 50", "SYST:ERR?"]
    assert t.source_range == 50 and t.current_limit == 2.5e-4
    k.source_voltage_range = 500  # the limit it set is within 2.5 mA: not written again
    assert t.commands[-2:] == ["SOUR:VOLT:RANG 500", "SYST:ERR?"] and t.source_range == 500


def test_nplc_is_bounded_by_the_line_frequency() -> None:
    """Item 4: at most 5 PLC on 50 Hz mains (6 on 60 Hz); the driver reads SYST:LFR?."""
    t = twin(line_frequency=50.0)
    k = Keithley6487(t, limits=LIMITS)
    assert k.read_line_frequency() == 50.0 and k.line_frequency == 50.0
    with pytest.raises(ValueError, match="not in range"):
        k.nplc = 6
    with pytest.raises(ValueError):
        measure_at(k, 0.1, compliance=2.5e-4, nplc=5.5)
    assert t.commands == ["SYST:LFR?"]  # refused before the bus
    k.nplc = 5
    assert t.nplc == 5.0 and errors(t) == []
    t.write("NPLC 6")  # the instrument refuses it too
    assert errors(t) == [-222] and t.nplc == 5.0
    assert Keithley6487(twin(), limits=LIMITS).read_line_frequency() == 60.0


class _ArmingWriteTimesOut(Keithley6487Twin):
    """A twin whose SOUR:VOLT:SWE:INIT reaches the instrument but the host's write times out."""

    def _write(self, command: str, **kwargs) -> None:
        super()._write(command, **kwargs)
        if command == "SOUR:VOLT:SWE:INIT":
            raise pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_timeout)


def test_failed_arming_write_is_still_aborted_before_switching_off() -> None:
    """Item 6: the sweep is marked armed before SOUR:VOLT:SWE:INIT is written, so after a
    failed write source_off sends SOUR:VOLT:SWE:ABOR first: no +840, the source goes off."""
    t = _ArmingWriteTimesOut(ResistorLoad(1e4))
    k = Keithley6487(t, limits=LIMITS)
    with pytest.raises(InstrumentTimeout):
        sweep(k, 0.0, 1.0, 0.5, compliance=2.5e-4, poll_interval=0)
    assert t.sweep_armed and t.output_on  # the instrument did arm: source in operate
    k.source_off()
    assert not t.output_on and not t.sweep_armed
    assert errors(t) == []  # no +840 "Not allowed with sweep on"


def test_twin_compliance_indicators_agree() -> None:
    """Item 3 on the twin: VSO = -999 and the VSC bit agree for single reads and sweeps."""
    t = twin(1e3)
    k = Keithley6487(t, limits=LIMITS)
    assert measure_at(k, 1.0, compliance=25e-6).compliance
    readings = sweep(k, 0.0, 1.0, 0.1, compliance=25e-6, poll_interval=0)
    flags = [r.compliance for r in readings]
    assert flags == [v > 0.025 + 1e-9 for v in np.linspace(0, 1, 11)]  # 25 µA at 25 mV
    assert not measure_at(k, 0.01, compliance=25e-6).compliance
    assert k.compliance_disagreements == []
