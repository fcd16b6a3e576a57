"""Keithley 6487 driver: exact bus traffic (pymeasure expected_protocol), safety refusals that
write nothing, and hypothesis properties of the reading parser and the sweep helpers."""

from __future__ import annotations

import logging
import math
import pickle
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymeasure.adapters import Adapter
from pymeasure.test import expected_protocol
from pyvisa import constants as visa_constants
from pyvisa import errors as visa_errors

from instruments.errors import (
    ComplianceError,
    ConnectionLost,
    GarbledReply,
    InstrumentError,
    InstrumentErrorQueue,
    InstrumentTimeout,
    InterlockOpen,
    SafetyLimitError,
    SafetyLimits,
    StopRequested,
    fault_message,
)
from instruments.keithley6487 import (
    MEAS_BFL,
    MEAS_VSC,
    STB_MSB,
    Identity,
    Keithley6487,
    Reading,
    parse_readings,
)
from instruments.keithley6487_limits import CURRENT_LIMITS, snap_compliance
from instruments.keithley6487_procedures import measure_at, measure_burst, sweep, sweep_points
from instruments.sweep_plan import cyclic_points, plan_segments

LIMITS = SafetyLimits(max_voltage=8.0, max_compliance=2.5e-3)
OK = '0,"No error"'
IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 6487,4126713,A04  Feb  4 2005 16:52:50/A02  /E"


@contextmanager
def protocol(pairs, limits: SafetyLimits = LIMITS, polls=()):
    """``expected_protocol`` of the driver; ``polls`` are the status bytes its serial polls
    (pyvisa ``read_stb()`` on the session, not a message) return, all of which must be read."""
    with expected_protocol(Keithley6487, pairs, limits=limits) as inst:
        serial_poll = inst.adapter.connection.read_stb
        serial_poll.side_effect = list(polls)
        yield inst
    assert serial_poll.call_count == len(polls)


def fail_write(inst, command: str, exc: Exception) -> None:
    """Make the write of ``command`` reach the instrument, then raise ``exc`` on the host (a
    VISA timeout after the bytes went out)."""
    send = inst.adapter._write

    def _write(cmd, **kwargs):
        send(cmd, **kwargs)
        if cmd == command:
            raise exc

    inst.adapter._write = _write


# ------------------------------------------------------------------ construction, limits


def test_limits_are_mandatory_and_typed():
    with pytest.raises(TypeError):
        Keithley6487(Adapter())  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Keithley6487(Adapter(), limits=(8.0, 1e-3))  # type: ignore[arg-type]


def test_safety_limits_validate_themselves():
    with pytest.raises(ValueError):
        SafetyLimits(max_voltage=0.0, max_compliance=1e-3)
    with pytest.raises(ValueError):
        SafetyLimits(max_voltage=5.0, max_compliance=math.inf)
    with pytest.raises(TypeError):
        SafetyLimits(max_voltage=True, max_compliance=1e-3)  # type: ignore[arg-type]
    assert SafetyLimits(8, 1e-3).check_voltage(-8) == -8.0
    with pytest.raises(SafetyLimitError) as info:
        SafetyLimits(8, 1e-3).check_voltage(8.5, "bias")
    assert (info.value.setting, info.value.value, info.value.limit) == ("bias", 8.5, 8)


def test_changing_limits_rearms_the_checks():
    with protocol([("SOUR:VOLT 9", None), ("SYST:ERR?", OK)]) as inst:
        with pytest.raises(SafetyLimitError):
            inst.source_voltage = 9
        inst.limits = SafetyLimits(max_voltage=10.0, max_compliance=2.5e-3)
        inst.source_voltage = 9
        assert inst.limits.max_voltage == 10.0


# ------------------------------------------------------------------ identification, errors


def test_id_is_the_raw_idn_string():
    with protocol([("*IDN?", IDN)]) as inst:
        assert inst.id == IDN


def test_identity_is_parsed():
    with protocol([("*IDN?", IDN)]) as inst:
        ident = inst.identity
    assert ident == Identity(
        "KEITHLEY INSTRUMENTS INC.", "6487", "4126713", "A04  Feb  4 2005 16:52:50/A02  /E"
    )
    assert ident.model == "6487" and ident.serial == "4126713"


def test_identity_garbled_raises_naming_the_reply():
    with protocol([("*IDN?", "KEITHLEY,6487")]) as inst:
        with pytest.raises(GarbledReply, match="KEITHLEY,6487") as info:
            _ = inst.identity
    assert info.value.command == "*IDN?"


def test_reset_and_clear():
    with protocol([("*RST", None), ("*CLS", None)]) as inst:
        inst.reset()
        inst.clear()


def test_check_errors_on_empty_queue_returns_empty_list():
    with protocol([("SYST:ERR?", OK)]) as inst:
        assert inst.check_errors() == []


def test_check_errors_raises_with_first_code_and_all_messages():
    pairs = [
        ("SYST:ERR?", '-113,"Undefined header"'),
        ("SYST:ERR?", '-221,"Settings conflict"'),
        ("SYST:ERR?", OK),
    ]
    with protocol(pairs) as inst:
        with pytest.raises(InstrumentErrorQueue) as info:
            inst.check_errors("SOUR:VOLT 3.0")
    err = info.value
    assert err.code == -113
    assert err.errors == ((-113, "Undefined header"), (-221, "Settings conflict"))
    assert err.instrument == "Keithley 6487" and err.command == "SOUR:VOLT 3.0"
    assert str(err) == (
        'Keithley 6487: \'SOUR:VOLT 3.0\' -> -113,"Undefined header"; then -221,"Settings conflict"'
    )


def test_property_error_names_instrument_command_and_fault():
    pairs = [("SOUR:VOLT 3", None), ("SYST:ERR?", '-113,"Undefined header"'), ("SYST:ERR?", OK)]
    with protocol(pairs) as inst:
        with pytest.raises(InstrumentErrorQueue) as info:
            inst.source_voltage = 3
    assert str(info.value) == "Keithley 6487: 'SOUR:VOLT 3' -> -113,\"Undefined header\""
    assert info.value.code == -113


def test_check_errors_garbled_entry():
    with protocol([("SYST:ERR?", "garbage")]) as inst:
        with pytest.raises(GarbledReply, match="garbage"):
            inst.check_errors()


def test_check_errors_bounded_when_the_queue_never_empties():
    pairs = [("SYST:ERR?", '-363,"Input buffer overrun"')] * 32
    with protocol(pairs) as inst:
        with pytest.raises(InstrumentErrorQueue, match="still not empty") as info:
            inst.check_errors()
    assert len(info.value.errors) == 32


def test_instrument_errors_pickle_with_their_attributes():
    err = InstrumentErrorQueue(
        "x", instrument="K", command="C", code=-113, errors=[(-113, "Undefined header")]
    )
    back = pickle.loads(pickle.dumps(err))
    assert (back.instrument, back.command, back.code, back.errors) == (
        "K",
        "C",
        -113,
        ((-113, "Undefined header"),),
    )
    safety = pickle.loads(pickle.dumps(SafetyLimitError("m", setting="s", value=9.0, limit=8.0)))
    assert (safety.setting, safety.value, safety.limit, str(safety)) == ("s", 9.0, 8.0, "m")
    assert fault_message("K", None, "dead") == "K: dead"


# ------------------------------------------------------------------ transport failures


class _ScriptedAdapter(Adapter):
    """Records writes; raises the given exceptions on write/read."""

    def __init__(self, write_exc=None, read_exc=None):
        super().__init__()
        self.written: list[str] = []
        self.write_exc, self.read_exc = write_exc, read_exc

    def _write(self, command, **kwargs):
        self.written.append(command)
        if self.write_exc is not None:
            raise self.write_exc

    def _read(self, **kwargs):
        raise self.read_exc


def test_read_timeout_becomes_instrument_timeout_naming_the_command():
    adapter = _ScriptedAdapter(read_exc=visa_errors.VisaIOError(visa_constants.VI_ERROR_TMO))
    inst = Keithley6487(adapter, limits=LIMITS)
    with pytest.raises(InstrumentTimeout) as info:
        inst.check_errors()
    assert info.value.command == "SYST:ERR?"
    assert "Keithley 6487: 'SYST:ERR?' -> timeout" in str(info.value)


def test_dead_bus_becomes_connection_lost():
    adapter = _ScriptedAdapter(write_exc=visa_errors.VisaIOError(visa_constants.VI_ERROR_CONN_LOST))
    inst = Keithley6487(adapter, limits=LIMITS)
    with pytest.raises(ConnectionLost, match="'SOUR:VOLT:STAT ON' -> connection lost"):
        inst.source_enabled = True


# ------------------------------------------------------------------ properties


@pytest.mark.parametrize(
    ("name", "value", "pairs"),
    [
        ("source_voltage", -7.5, [("SOUR:VOLT -7.5", None), ("SYST:ERR?", OK)]),
        ("source_voltage", 0.001, [("SOUR:VOLT 0.001", None), ("SYST:ERR?", OK)]),
        (
            "source_voltage_range",
            50,
            [("SOUR:VOLT:ILIM 0.0025", None), ("SOUR:VOLT:RANG 50", None), ("SYST:ERR?", OK)],
        ),
        ("source_voltage_range", 10, [("SOUR:VOLT:RANG 10", None), ("SYST:ERR?", OK)]),
        ("source_current_limit", 1e-5, [("SOUR:VOLT:ILIM 2.5e-05", None), ("SYST:ERR?", OK)]),
        ("source_current_limit", 2.5e-4, [("SOUR:VOLT:ILIM 0.00025", None), ("SYST:ERR?", OK)]),
        ("source_current_limit", 3e-4, [("SOUR:VOLT:ILIM 0.0025", None), ("SYST:ERR?", OK)]),
        ("source_enabled", True, [("SOUR:VOLT:STAT ON", None)]),
        ("source_enabled", False, [("SOUR:VOLT:STAT OFF", None)]),
        ("interlock_enabled", True, [("SOUR:VOLT:INT ON", None), ("SYST:ERR?", OK)]),
        ("zero_check_enabled", False, [("SYST:ZCH OFF", None)]),
        ("zero_correct_enabled", True, [("SYST:ZCOR ON", None)]),
        ("current_range", 2e-9, [("SENS:CURR:RANG 2e-09", None)]),
        ("current_range", 2.1e-2, [("SENS:CURR:RANG 0.021", None)]),
        ("current_autorange", True, [("SENS:CURR:RANG:AUTO ON", None)]),
        ("nplc", 0.01, [("SENS:CURR:NPLC 0.01", None)]),
        ("nplc", 6, [("SENS:CURR:NPLC 6", None)]),
        ("filter_enabled", True, [("SENS:AVER ON", None)]),
        ("filter_count", 10, [("SENS:AVER:COUN 10", None)]),
        ("filter_type", "MOV", [("SENS:AVER:TCON MOV", None)]),
        ("data_elements", "READ,VSO", [("FORM:ELEM READ,VSO", None)]),
        ("data_elements", "reading, vsource", [("FORM:ELEM READ,VSO", None)]),
        ("data_elements", ["READ", "UNIT", "TIME"], [("FORM:ELEM READ,UNIT,TIME", None)]),
        ("data_elements", "ALL", [("FORM:ELEM READ,UNIT,TIME,STAT,VSO", None)]),
        ("trigger_count", 20, [("TRIG:COUN 20", None)]),
        ("buffer_points", 3000, [("TRAC:POIN 3000", None)]),
        ("sweep_start", -8, [("SOUR:VOLT:SWE:STAR -8", None)]),
        ("sweep_stop", 6, [("SOUR:VOLT:SWE:STOP 6", None)]),
        ("sweep_step", 0.05, [("SOUR:VOLT:SWE:STEP 0.05", None)]),
        ("sweep_delay", 0.5, [("SOUR:VOLT:SWE:DEL 0.5", None)]),
    ],
)
def test_property_setters_write_exact_commands(name, value, pairs):
    with protocol(pairs) as inst:
        setattr(inst, name, value)


@pytest.mark.parametrize(
    ("name", "pairs", "expected"),
    [
        ("source_voltage", [("SOUR:VOLT?", "+1.500000E+00")], 1.5),
        ("source_voltage_range", [("SOUR:VOLT:RANG?", "+5.000000E+01")], 50),
        ("source_current_limit", [("SOUR:VOLT:ILIM?", "+2.500000E-05")], 2.5e-5),
        ("source_enabled", [("SOUR:VOLT:STAT?", "1")], True),
        ("source_enabled", [("SOUR:VOLT:STAT?", "0")], False),
        ("source_enabled", [("SOUR:VOLT:STAT?", "ON")], True),
        ("interlock_enabled", [("SOUR:VOLT:INT?", "0")], False),
        ("interlock_tripped", [("SOUR:VOLT:INT:FAIL?", "1")], True),
        ("interlock_tripped", [("SOUR:VOLT:INT:FAIL?", "0")], False),
        ("zero_check_enabled", [("SYST:ZCH?", "1")], True),
        ("zero_correct_enabled", [("SYST:ZCOR?", "0")], False),
        ("current_range", [("SENS:CURR:RANG?", "+2.000000E-09")], 2e-9),
        ("current_autorange", [("SENS:CURR:RANG:AUTO?", "1")], True),
        ("nplc", [("SENS:CURR:NPLC?", "+6.000000E+00")], 6.0),
        ("filter_enabled", [("SENS:AVER?", "0")], False),
        ("filter_count", [("SENS:AVER:COUN?", "+1.000000E+01")], 10),
        ("filter_type", [("SENS:AVER:TCON?", "REP")], "REP"),
        ("filter_type", [("SENS:AVER:TCON?", "MOVing")], "MOV"),
        ("data_elements", [("FORM:ELEM?", "READ,VSO")], "READ,VSO"),
        ("trigger_count", [("TRIG:COUN?", "+1.000000E+00")], 1),
        ("buffer_points", [("TRAC:POIN?", "+1.000000E+02")], 100),
        ("buffer_count", [("TRAC:POIN:ACT?", "+5.000000E+00")], 5),
        ("sweep_start", [("SOUR:VOLT:SWE:STAR?", "-1.000000E+00")], -1.0),
        ("sweep_stop", [("SOUR:VOLT:SWE:STOP?", "+1.000000E+00")], 1.0),
        ("sweep_step", [("SOUR:VOLT:SWE:STEP?", "+1.000000E-01")], 0.1),
        ("sweep_delay", [("SOUR:VOLT:SWE:DEL?", "+0.000000E+00")], 0.0),
        ("sweep_running", [("SOUR:VOLT:SWE:STAT?", "1")], True),
    ],
)
def test_property_getters_parse_replies(name, pairs, expected):
    with protocol(pairs) as inst:
        value = getattr(inst, name)
    assert value == expected
    assert type(value) is type(expected)


def test_garbled_property_reply_raises():
    with protocol([("SOUR:VOLT?", "volts?")]) as inst:
        with pytest.raises(GarbledReply, match="volts"):
            _ = inst.source_voltage


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("source_voltage", 8.01, SafetyLimitError),
        ("source_voltage", -9, SafetyLimitError),
        ("source_voltage", math.nan, SafetyLimitError),
        ("source_voltage", math.inf, SafetyLimitError),
        ("source_voltage", True, TypeError),
        ("source_voltage", "5", TypeError),
        ("sweep_start", 8.5, SafetyLimitError),
        ("sweep_stop", -100, SafetyLimitError),
        ("source_current_limit", 3e-3, SafetyLimitError),  # beyond 2.5 mA bench limit
        ("source_current_limit", 0.0, SafetyLimitError),
        ("source_current_limit", -1e-5, SafetyLimitError),
        ("source_voltage_range", 20, ValueError),
        ("current_range", -1e-9, ValueError),
        ("current_range", 0.1, ValueError),
        ("nplc", 0.001, ValueError),
        ("nplc", 7, ValueError),
        ("filter_count", 1, ValueError),
        ("filter_count", 101, ValueError),
        ("filter_count", 2.5, ValueError),
        ("filter_type", "AVG", ValueError),
        ("data_elements", "READ,FOO", ValueError),
        ("sweep_step", 0, ValueError),
        ("sweep_step", -0.1, ValueError),
        ("sweep_delay", 1000, ValueError),
        ("trigger_count", 2049, ValueError),
    ],
)
def test_refused_settings_write_nothing(name, value, error):
    with protocol([]) as inst:
        with pytest.raises(error):
            setattr(inst, name, value)


def test_voltage_beyond_the_instrument_is_value_error_even_with_a_wide_bench_limit():
    with protocol([], limits=SafetyLimits(max_voltage=1000, max_compliance=25e-3)) as inst:
        with pytest.raises(ValueError, match="505") as info:
            inst.source_voltage = 600
    assert not isinstance(info.value, SafetyLimitError)


def test_compliance_snapping_never_exceeds_the_bench_limit():
    tight = SafetyLimits(max_voltage=8.0, max_compliance=1e-3)
    with protocol([("SOUR:VOLT:ILIM 0.00025", None), ("SYST:ERR?", OK)], limits=tight) as inst:
        inst.source_current_limit = 1e-4  # snaps to 250 µA <= 1 mA
        with pytest.raises(SafetyLimitError, match="snap it up to 0.0025"):
            inst.source_current_limit = 5e-4  # would snap to 2.5 mA > 1 mA


def test_interlock_off_on_high_range_raises_settings_conflict():
    pairs = [
        ("SOUR:VOLT:INT OFF", None),
        ("SYST:ERR?", '-221,"Settings conflict"'),
        ("SYST:ERR?", OK),
    ]
    with protocol(pairs) as inst:
        with pytest.raises(InstrumentErrorQueue) as info:
            inst.interlock_enabled = False
    assert info.value.code == -221 and info.value.command == "SOUR:VOLT:INT OFF"


# ------------------------------------------------------------------ zero correct

ZERO_CORRECT = [
    ("SYST:ZCH ON", None),
    ("RANG 2e-9", None),
    ("INIT", None),
    ("SYST:ZCOR:ACQ", None),
    ("SYST:ZCOR ON", None),
    ("RANG:AUTO ON", None),
    ("SYST:ZCH OFF", None),
    ("SYST:ERR?", OK),
]


def test_zero_correct_runs_the_manual_sequence_exactly():
    with protocol(ZERO_CORRECT) as inst:
        assert inst.zero_correct() is None


def test_zero_correct_error_is_raised():
    pairs = ZERO_CORRECT[:-1] + [("SYST:ERR?", '-230,"Data corrupt or stale"'), ("SYST:ERR?", OK)]
    with protocol(pairs) as inst:
        with pytest.raises(InstrumentErrorQueue) as info:
            inst.zero_correct()
    assert str(info.value) == (
        "Keithley 6487: 'zero_correct: SYST:ZCH ON ... SYST:ZCH OFF' -> "
        '-230,"Data corrupt or stale"'
    )


def test_abort_sweep():
    with protocol([("SOUR:VOLT:SWE:ABOR", None)]) as inst:
        inst.abort_sweep()


# ------------------------------------------------------------------ measure_at

MEASURE_1V = [
    ("SOUR:VOLT:ILIM 0.00025", None),
    ("SOUR:VOLT 1", None),
    ("SOUR:VOLT:STAT ON", None),
    ("SYST:ZCH OFF", None),
    ("FORM:ELEM READ,VSO", None),
    ("READ?", "+1.234567E-07A,+1.000000E+00"),
    ("STAT:MEAS:COND?", "0"),
    ("SYST:ERR?", OK),
]


def test_measure_at_sequence_and_reading():
    with protocol(MEASURE_1V) as inst:
        reading = measure_at(inst, 1.0, compliance=1e-4)
    assert reading == Reading(current=1.234567e-7, voltage_source=1.0)


def test_measure_at_sets_nplc_first():
    with protocol([("SENS:CURR:NPLC 1", None), *MEASURE_1V]) as inst:
        reading = measure_at(inst, 1, compliance=2.5e-4, nplc=1)
    assert reading.current == pytest.approx(1.234567e-7)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"voltage": 8.5, "compliance": 1e-4},
        {"voltage": -1e3, "compliance": 1e-4},
        {"voltage": math.nan, "compliance": 1e-4},
        {"voltage": 1.0, "compliance": 3e-3},
        {"voltage": 1.0, "compliance": 0},
    ],
)
def test_measure_at_refusals_write_nothing(kwargs):
    with protocol([]) as inst:
        with pytest.raises(SafetyLimitError):
            measure_at(inst, kwargs.pop("voltage"), **kwargs)


def test_measure_at_bad_nplc_writes_nothing():
    with protocol([]) as inst:
        with pytest.raises(ValueError):
            measure_at(inst, 1.0, compliance=1e-4, nplc=10)


def test_measure_at_refuses_25ma_above_10v_before_writing():
    wide = SafetyLimits(max_voltage=20.0, max_compliance=25e-3)
    with protocol([], limits=wide) as inst:
        with pytest.raises(ValueError, match="50/500 V range"):
            measure_at(inst, 15.0, compliance=25e-3)


READ_ONLY_1V = MEASURE_1V[-3:]  # READ?, STAT:MEAS:COND?, SYST:ERR?


def test_skip_unchanged_repeated_reads_send_only_the_queries():
    """With skip_unchanged, a second measure_at at the same settings writes nothing: its
    protocol is READ?, the VSC cross-check and the error check."""
    with protocol([("SENS:CURR:NPLC 1", None), *MEASURE_1V, *READ_ONLY_1V]) as inst:
        inst.skip_unchanged = True
        measure_at(inst, 1.0, compliance=1e-4, nplc=1)
        reading = measure_at(inst, 1.0, compliance=1e-4, nplc=1)
    assert reading == Reading(current=1.234567e-7, voltage_source=1.0)
    assert inst.skipped_writes == 6


def test_skip_unchanged_writes_only_what_changed():
    pairs = [
        *MEASURE_1V,
        ("SOUR:VOLT 2", None),  # the level changed; limit, operate, zero check, format did not
        ("READ?", "+2.0E-07A,+2.000000E+00"),
        ("STAT:MEAS:COND?", "0"),
        ("SYST:ERR?", OK),
        ("SOUR:VOLT:ILIM 0.0025", None),  # now the limit changed
        ("READ?", "+2.0E-07A,+2.000000E+00"),
        ("STAT:MEAS:COND?", "0"),
        ("SYST:ERR?", OK),
        ("SENS:CURR:NPLC 2", None),  # and the integration time
        ("READ?", "+2.0E-07A,+2.000000E+00"),
        ("STAT:MEAS:COND?", "0"),
        ("SYST:ERR?", OK),
    ]
    with protocol(pairs) as inst:
        inst.skip_unchanged = True
        measure_at(inst, 1.0, compliance=1e-4)
        measure_at(inst, 2.0, compliance=1e-4)
        measure_at(inst, 2.0, compliance=2e-3)
        measure_at(inst, 2.0, compliance=2e-3, nplc=2)


def test_skip_unchanged_forgets_after_an_error_or_another_command():
    """An error in the queue (some setting may have been refused) or a command that may change
    settings (here ``*RST``) makes the next measure_at write every setting again."""
    error = [
        ("READ?", "+1.234567E-07A,+1.000000E+00"),
        ("STAT:MEAS:COND?", "0"),
        ("SYST:ERR?", '-222,"Parameter data out of range"'),
        ("SYST:ERR?", OK),
    ]
    with protocol([*MEASURE_1V[:-3], *error, *MEASURE_1V, ("*RST", None), *MEASURE_1V]) as inst:
        inst.skip_unchanged = True
        with pytest.raises(InstrumentErrorQueue):
            measure_at(inst, 1.0, compliance=1e-4)
        measure_at(inst, 1.0, compliance=1e-4)
        inst.reset()
        measure_at(inst, 1.0, compliance=1e-4)


def test_skip_unchanged_never_skips_operate_on_the_high_ranges():
    """On 50/500 V the interlock may drop the source by itself: SOUR:VOLT:STAT ON is always
    written there (and the interlock checked after it)."""
    wide = SafetyLimits(max_voltage=20.0, max_compliance=2.5e-3)
    operate = [
        ("SOUR:VOLT:STAT ON", None),
        ("SOUR:VOLT:INT:FAIL?", "0"),
    ]
    pairs = [
        ("SOUR:VOLT:ILIM 0.0025", None),
        ("SOUR:VOLT:RANG 50", None),
        ("SYST:ERR?", OK),
        *operate,
        # the limit: not re-written, so no error check either (nothing was sent)
        *operate,  # same value, still written
    ]
    with protocol(pairs, limits=wide) as inst:
        inst.skip_unchanged = True
        inst.source_voltage_range = 50
        inst.source_enabled = True
        inst.source_current_limit = 2.5e-3  # unchanged: skipped
        inst.source_enabled = True


def test_skip_unchanged_always_sends_source_off():
    with protocol([("SOUR:VOLT:STAT OFF", None), ("SOUR:VOLT:STAT OFF", None)]) as inst:
        inst.skip_unchanged = True
        inst.source_off()
        inst.source_off()


def test_skip_unchanged_is_off_by_default():
    with protocol([*MEASURE_1V, *MEASURE_1V]) as inst:
        measure_at(inst, 1.0, compliance=1e-4)
        measure_at(inst, 1.0, compliance=1e-4)
    assert inst.skipped_writes == 0


BURST_SETUP_1V = [
    ("SOUR:VOLT:ILIM 0.00025", None),
    ("SOUR:VOLT 1", None),
    ("SOUR:VOLT:STAT ON", None),
    ("SYST:ZCH OFF", None),
    ("FORM:ELEM READ,VSO", None),
    ("TRIG:COUN 3", None),
    ("TRAC:POIN 3", None),
]
BURST_3 = [
    ("TRAC:CLE", None),
    ("TRAC:FEED SENS", None),
    ("TRAC:FEED:CONT NEXT", None),
    ("STAT:MEAS?", "0"),
    ("INIT", None),
    ("TRAC:DATA?", "+1.0E-07,+1.0E+00,+1.1E-07,+1.0E+00,+1.2E-07,+1.0E+00"),
    ("STAT:MEAS?", "512"),  # BFL: the buffer filled
    ("SYST:ERR?", OK),
]


def test_measure_burst_one_init_one_trac_data():
    """n readings at one setting: the trigger model and the buffer (one INIT, one TRAC:DATA?),
    as the Reference Manual's buffer example."""
    with protocol([*BURST_SETUP_1V, *BURST_3]) as inst:
        readings = measure_burst(inst, 1.0, 3, compliance=1e-4)
    assert [r.current for r in readings] == pytest.approx([1.0e-7, 1.1e-7, 1.2e-7])
    assert not any(r.compliance for r in readings)


def test_measure_burst_repeated_with_skip_unchanged_is_seven_transactions():
    repeat = [pair for pair in BURST_3 if pair[0] != "TRAC:FEED SENS"]
    assert len(repeat) == 7
    with protocol([*BURST_SETUP_1V, *BURST_3, *repeat]) as inst:
        inst.skip_unchanged = True
        measure_burst(inst, 1.0, 3, compliance=1e-4)
        readings = measure_burst(inst, 1.0, 3, compliance=1e-4)
    assert len(readings) == 3


def test_measure_burst_then_measure_at_restores_one_trigger():
    single = [("TRIG:COUN 1", None), *READ_ONLY_1V]  # every other setting unchanged
    with protocol([*BURST_SETUP_1V, *BURST_3, *single]) as inst:
        inst.skip_unchanged = True
        measure_burst(inst, 1.0, 3, compliance=1e-4)
        measure_at(inst, 1.0, compliance=1e-4)


def test_measure_burst_flags_compliance_from_vsc():
    pairs = [*BURST_SETUP_1V, *BURST_3]
    pairs[len(BURST_SETUP_1V) + 6] = ("STAT:MEAS?", str(MEAS_VSC))
    with protocol(pairs) as inst:
        readings = measure_burst(inst, 1.0, 3, compliance=1e-4)
    assert all(r.compliance for r in readings)
    assert len(inst.compliance_disagreements) == 1


def test_measure_burst_short_reply_is_garbled():
    pairs = [*BURST_SETUP_1V, *BURST_3]
    pairs[len(BURST_SETUP_1V) + 5] = ("TRAC:DATA?", "+1.0E-07,+1.0E+00")
    with protocol(pairs) as inst:
        with pytest.raises(GarbledReply, match="expected 3 readings"):
            measure_burst(inst, 1.0, 3, compliance=1e-4)


@pytest.mark.parametrize("n", [0, 2049, 2.0, True])
def test_measure_burst_bad_count_writes_nothing(n):
    with protocol([]) as inst:
        with pytest.raises(ValueError):
            measure_burst(inst, 1.0, n, compliance=1e-4)


def in_compliance_1v(read: str, cond: int) -> list:
    """MEASURE_1V with the READ? reply and the condition register given."""
    return MEASURE_1V[:-3] + [("READ?", read), ("STAT:MEAS:COND?", str(cond)), ("SYST:ERR?", OK)]


def test_measure_at_flags_compliance_and_can_raise():
    pairs = in_compliance_1v("+2.500000E-04,-9.990000E+02", MEAS_VSC)
    with protocol(pairs) as inst:
        reading = measure_at(inst, 1.0, compliance=1e-4)
    assert reading.compliance and math.isnan(reading.voltage_source)
    assert inst.compliance_disagreements == []  # VSO -999 and VSC agree
    with protocol(pairs) as inst:
        with pytest.raises(ComplianceError, match="'SOUR:VOLT 1' -> source in compliance"):
            measure_at(inst, 1.0, compliance=1e-4, raise_on_compliance=True)


def test_measure_at_cross_checks_vso_with_the_vsc_condition_bit():
    """Item 3: the VSO = -999 rule is kept only where the measurement condition register's
    VSC bit (B14) agrees; VSC without -999 flags the reading as in compliance."""
    with protocol(in_compliance_1v("+2.500000E-04,+1.000000E+00", MEAS_VSC)) as inst:
        reading = measure_at(inst, 1.0, compliance=1e-4)
    assert reading.compliance and math.isnan(reading.voltage_source)
    assert inst.compliance_disagreements == [
        "measure_at 1 V: the measurement status VSC bit says compliance but no reading "
        "carried VSO = -999"
    ]
    # VSO -999 without VSC: still in compliance (-999 is no source level), disagreement noted
    with protocol(in_compliance_1v("+2.500000E-04,-9.990000E+02", 0)) as inst:
        reading = measure_at(inst, 1.0, compliance=1e-4)
    assert reading.compliance and len(inst.compliance_disagreements) == 1


def test_measure_at_raises_queued_errors():
    pairs = MEASURE_1V[:-1] + [
        ("SYST:ERR?", '-222,"Parameter data out of range"'),
        ("SYST:ERR?", OK),
    ]
    with protocol(pairs) as inst:
        with pytest.raises(InstrumentErrorQueue) as info:
            measure_at(inst, 1.0, compliance=1e-4)
    assert info.value.code == -222
    assert info.value.command == "measure_at: SOUR:VOLT:ILIM 0.00025 ... READ?"


def test_measure_at_multi_reading_reply_is_garbled():
    pairs = MEASURE_1V[:-3] + [("READ?", "+1E-9,+1,+2E-9,+1")]
    with protocol(pairs) as inst:
        with pytest.raises(GarbledReply, match="expected 1 reading"):
            measure_at(inst, 1.0, compliance=1e-4)


def test_strict_readings_raise_on_overflow():
    pairs = MEASURE_1V[:-3] + [("READ?", "+9.900000E+37,+1.000000E+00")]
    with protocol(pairs) as inst:
        inst.strict_readings = True
        with pytest.raises(InstrumentError, match="overflow"):
            measure_at(inst, 1.0, compliance=1e-4)


# ------------------------------------------------------------------ built-in sweep


def builtin_pairs(start, stop, step, n, data, *, ilim="0.00025", delay="0", events=MEAS_BFL):
    """Expected traffic of one built-in staircase: limit, sweep settings, format, trigger count,
    buffer, zero check off, BFL enabled, error check, events cleared, arm, INIT, (serial polls:
    not messages), the sweep's events, read-back, TRIG:COUN 1, error check."""
    return [
        (f"SOUR:VOLT:ILIM {ilim}", None),
        (f"SOUR:VOLT:SWE:STAR {start}", None),
        (f"SOUR:VOLT:SWE:STOP {stop}", None),
        (f"SOUR:VOLT:SWE:STEP {step}", None),
        (f"SOUR:VOLT:SWE:DEL {delay}", None),
        ("FORM:ELEM READ,VSO", None),
        (f"TRIG:COUN {n}", None),
        ("TRAC:CLE", None),
        (f"TRAC:POIN {n}", None),
        ("TRAC:FEED SENS", None),
        ("TRAC:FEED:CONT NEXT", None),
        ("SYST:ZCH OFF", None),
        ("STAT:MEAS:ENAB 512", None),
        ("SYST:ERR?", OK),
        ("STAT:MEAS?", "0"),
        ("SOUR:VOLT:SWE:INIT", None),
        ("INIT", None),
        ("STAT:MEAS?", str(events)),
        ("TRAC:DATA?", data),
        ("TRIG:COUN 1", None),
        ("SYST:ERR?", OK),
    ]


#: index of the first pair after INIT in builtin_pairs (the post-sweep ``STAT:MEAS?``)
AFTER_INIT = 17


def buffer(points):
    return ",".join(f"{i:+.6E},{v:+.6E}" for i, v in points)


def test_sweep_exact_protocol_waits_by_serial_poll_and_reads_the_buffer():
    """Item 1: the end of the sweep is awaited by serial poll (the status byte's measurement
    summary bit, set by the enabled BFL event), never by a query while the sweep runs."""
    data = "+1.0E-09,+0.000000E+00,+2.0E-09,+2.500000E-01,+3.0E-09,+5.000000E-01"
    pairs = builtin_pairs("0", "0.5", "0.25", 3, data, delay="0.1")
    with protocol(pairs, polls=(0, 0, STB_MSB)) as inst:
        readings = sweep(inst, 0, 0.5, 0.25, delay=0.1, compliance=2e-4, poll_interval=0)
    assert [r.current for r in readings] == [1e-9, 2e-9, 3e-9]
    assert [r.voltage_source for r in readings] == [0.0, 0.25, 0.5]
    assert "SOUR:VOLT:SWE:STAT?" not in [cmd for cmd, _ in pairs]
    assert not inst.adapter.connection.clear.called  # no abort, no device clear


def test_sweep_without_serial_poll_waits_on_the_event_register():
    """On an interface without serial poll (RS-232) the wait queries STAT:MEAS? until BFL."""
    data = buffer([(1e-9, 0.0), (2e-9, 0.5), (3e-9, 1.0)])
    pairs = builtin_pairs("0", "1", "0.5", 3, data)
    pairs[AFTER_INIT:AFTER_INIT] = [("STAT:MEAS?", "0"), ("STAT:MEAS?", str(MEAS_VSC))]
    with protocol(pairs) as inst:
        inst.adapter.connection.read_stb = None  # no serial poll on this session
        readings = sweep(inst, 0, 1, 0.5, compliance=1e-4, poll_interval=0)
    # the VSC seen on the second poll is kept with the BFL of the last: no reading had VSO -999
    assert all(r.compliance for r in readings)
    assert len(inst.compliance_disagreements) == 1


def test_sweep_downward_uses_positive_step():
    data = buffer([(1e-9, 1.0), (5e-10, 0.5), (0.0, 0.0)])
    with protocol(builtin_pairs("1", "0", "0.5", 3, data), polls=(STB_MSB,)) as inst:
        readings = sweep(inst, 1.0, 0.0, 0.5, compliance=1e-4, poll_interval=0)
    assert [r.voltage_source for r in readings] == [1.0, 0.5, 0.0]


def test_sweep_point_count_rounds_float_noise():
    data = buffer([(0.0, 0.1 * k) for k in range(11)])
    with protocol(builtin_pairs("0", "1", "0.1", 11, data), polls=(STB_MSB,)) as inst:
        readings = sweep(
            inst, 0.0, 0.1 * 10, 0.30000000000000004 / 3, compliance=1e-4, poll_interval=0
        )
    assert len(readings) == 11


#: a 3-point built-in sweep still running when its 0 s timeout expires, and its abort
TIMED_OUT_SWEEP = builtin_pairs("0", "1", "0.5", 3, "unused")[:AFTER_INIT] + [
    ("SOUR:VOLT:SWE:ABOR", None)
]


def time_out_a_sweep(inst) -> InstrumentTimeout:
    """Run the sweep of TIMED_OUT_SWEEP; returns the InstrumentTimeout it must raise."""
    with pytest.raises(InstrumentTimeout, match="still running after 0 s") as info:
        sweep(inst, 0, 1, 0.5, compliance=1e-4, timeout=0, poll_interval=0)
    return info.value


def test_sweep_timeout_aborts_with_a_device_clear_and_raises():
    with protocol(TIMED_OUT_SWEEP, polls=(0,)) as inst:
        assert time_out_a_sweep(inst).command == "serial poll"
        inst.adapter.connection.clear.assert_called_once_with()  # before SOUR:VOLT:SWE:ABOR
    assert not inst.sweep_armed


def test_sweep_stops_at_the_next_poll_when_asked():
    """should_stop is polled between serial polls; True aborts (device clear, ABOR) and raises
    StopRequested; the source is then switched off by the caller as on every exit path."""
    asked = iter([False, True])
    pairs = [*TIMED_OUT_SWEEP, ("SOUR:VOLT:STAT OFF", None)]
    with protocol(pairs, polls=(0, 0)) as inst:
        with pytest.raises(StopRequested, match="3 points stopped"):
            sweep(
                inst, 0, 1, 0.5, compliance=1e-4, poll_interval=0, should_stop=lambda: next(asked)
            )
        inst.adapter.connection.clear.assert_called_once_with()
        inst.source_off()


def test_after_failed_sweep_next_read_restores_trigger_count():
    with protocol([*TIMED_OUT_SWEEP, ("TRIG:COUN 1", None), *MEASURE_1V], polls=(0,)) as inst:
        time_out_a_sweep(inst)
        assert measure_at(inst, 1.0, compliance=1e-4).voltage_source == 1.0


def test_shutdown_aborts_a_sweep_left_running():
    """INIT went out but the host saw a timeout: the sweep may be running, so shutdown clears
    the device and aborts it before switching the source off."""
    pairs = builtin_pairs("0", "1", "0.5", 3, "unused")[:AFTER_INIT] + [
        ("SOUR:VOLT:SWE:ABOR", None),
        ("SOUR:VOLT:STAT OFF", None),
        ("SYST:ZCH ON", None),
    ]
    with protocol(pairs) as inst:
        fail_write(inst, "INIT", visa_errors.VisaIOError(visa_constants.VI_ERROR_TMO))
        with pytest.raises(InstrumentTimeout, match="'INIT' -> timeout"):
            sweep(inst, 0, 1, 0.5, compliance=1e-4, poll_interval=0)
        inst.shutdown()
        inst.adapter.connection.clear.assert_called_once_with()
    assert inst.isShutdown


def test_sweep_flag_is_set_before_the_arming_write():
    """Item 6: SOUR:VOLT:SWE:INIT reached the instrument but the write failed on the host:
    the sweep counts as armed, so source_off sends SOUR:VOLT:SWE:ABOR before STAT OFF (else
    +840 "Not allowed with sweep on" and the source stays on)."""
    pairs = builtin_pairs("0", "1", "0.5", 3, "unused")[: AFTER_INIT - 1] + [
        ("SOUR:VOLT:SWE:ABOR", None),
        ("SOUR:VOLT:STAT OFF", None),
    ]
    with protocol(pairs) as inst:
        fail_write(inst, "SOUR:VOLT:SWE:INIT", visa_errors.VisaIOError(visa_constants.VI_ERROR_TMO))
        with pytest.raises(InstrumentTimeout):
            sweep(inst, 0, 1, 0.5, compliance=1e-4, poll_interval=0)
        assert inst.sweep_armed
        inst.source_off()
        assert not inst.adapter.connection.clear.called  # INIT never went out: not running


def test_a_garbled_event_register_aborts_the_sweep_and_names_the_query():
    """A garbled STAT:MEAS? reply names its command; the wait aborts the sweep at once, so a
    later source_off only switches off."""
    pairs = builtin_pairs("0", "1", "0.5", 3, "unused")[:AFTER_INIT] + [
        ("STAT:MEAS?", "maybe"),
        ("SOUR:VOLT:SWE:ABOR", None),
        ("SOUR:VOLT:STAT OFF", None),
    ]
    with protocol(pairs, polls=(STB_MSB,)) as inst:
        with pytest.raises(GarbledReply, match=r"'STAT:MEAS\?' -> garbled reply"):
            sweep(inst, 0, 1, 0.5, compliance=1e-4, poll_interval=0)
        inst.source_off()  # nothing armed any more: only the switch-off


def test_sweep_configuration_error_stops_before_arming():
    pairs = builtin_pairs("0", "1", "0.5", 3, "unused")[:13] + [
        ("SYST:ERR?", '+840,"Not allowed with sweep on"'),
        ("SYST:ERR?", OK),
        ("SOUR:VOLT:STAT OFF", None),  # shutdown: no SOUR:VOLT:SWE:ABOR, nothing was armed
        ("SYST:ZCH ON", None),
    ]
    with protocol(pairs) as inst:
        with pytest.raises(InstrumentErrorQueue) as info:
            sweep(inst, 0, 1, 0.5, compliance=1e-4, poll_interval=0)
        inst.shutdown()
    assert info.value.code == 840
    assert info.value.command == "sweep: SOUR:VOLT:ILIM 0.00025 ... SYST:ZCH OFF, STAT:MEAS:ENAB"


def test_zero_correct_after_a_failed_sweep_restores_trigger_count():
    with protocol([*TIMED_OUT_SWEEP, ("TRIG:COUN 1", None), *ZERO_CORRECT], polls=(0,)) as inst:
        time_out_a_sweep(inst)
        inst.zero_correct()


def test_sweep_wrong_buffer_count_is_garbled():
    data = buffer([(1e-9, 0.0), (2e-9, 0.5)])
    with protocol(builtin_pairs("0", "1", "0.5", 3, data), polls=(STB_MSB,)) as inst:
        with pytest.raises(GarbledReply, match="expected 3 buffer readings, got 2"):
            sweep(inst, 0, 1, 0.5, compliance=1e-4, poll_interval=0)


def test_sweep_compliance_can_raise_after_readback():
    data = buffer([(1e-9, 0.0), (2.5e-4, -999), (2.5e-4, -999)])
    pairs = builtin_pairs("0", "1", "0.5", 3, data, events=MEAS_BFL | MEAS_VSC)
    with protocol(pairs, polls=(STB_MSB,)) as inst:
        with pytest.raises(ComplianceError):
            sweep(inst, 0, 1, 0.5, compliance=1e-4, poll_interval=0, raise_on_compliance=True)
        assert inst.compliance_disagreements == []


def test_sweep_compliance_cross_checked_with_the_vsc_event():
    """Item 3: VSC latched during the sweep but no reading carried VSO -999: which readings
    were clamped is unknown, so every one is flagged (before any is delivered)."""
    data = buffer([(1e-9, 0.0), (2.5e-4, 0.5), (2.5e-4, 1.0)])
    pairs = builtin_pairs("0", "1", "0.5", 3, data, events=MEAS_BFL | MEAS_VSC)
    with protocol(pairs, polls=(STB_MSB,)) as inst:
        readings = sweep(inst, 0, 1, 0.5, compliance=1e-4, poll_interval=0)
    assert [r.compliance for r in readings] == [True, True, True]
    assert "sweep 0 -> 1 V (3 points)" in inst.compliance_disagreements[0]
    # -999 without VSC: the flags stand, the disagreement is noted
    data = buffer([(1e-9, 0.0), (2.5e-4, -999), (2.5e-4, 1.0)])
    with protocol(builtin_pairs("0", "1", "0.5", 3, data), polls=(STB_MSB,)) as inst:
        readings = sweep(inst, 0, 1, 0.5, compliance=1e-4, poll_interval=0)
    assert [r.compliance for r in readings] == [False, True, False]
    assert len(inst.compliance_disagreements) == 1


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((0, 9, 1), {"compliance": 1e-4}, SafetyLimitError),
        ((-9, 0, 1), {"compliance": 1e-4}, SafetyLimitError),
        ((0, 1, 0.5), {"compliance": 5e-3}, SafetyLimitError),
        ((0, 1, 0.3), {"compliance": 1e-4}, ValueError),  # not a whole number of steps
        ((0, 1, 0), {"compliance": 1e-4}, ValueError),
        ((0, 1, -0.5), {"compliance": 1e-4}, ValueError),
        ((0, 1, 0.0001), {"compliance": 1e-4}, ValueError),  # 10001 points > 2048
        ((0, 1, 0.5), {"compliance": 1e-4, "delay": -1}, ValueError),
    ],
)
def test_sweep_refusals_write_nothing(args, kwargs, error):
    with protocol([]) as inst:
        with pytest.raises(error):
            sweep(inst, *args, **kwargs)


# ------------------------------------------------------------------ sweep_points


def test_sweep_points_mixes_builtin_and_point_by_point_and_streams_readings():
    volts = cyclic_points(0.5, -0.5, 0.25)  # 0 .25 .5 | .25 0 -.25 | -.5 -.25 0
    assert volts.tolist() == [0, 0.25, 0.5, 0.25, 0, -0.25, -0.5, -0.25, 0]
    pairs = [
        *builtin_pairs("0", "0.5", "0.25", 3, buffer([(0, 0), (1e-9, 0.25), (2e-9, 0.5)])),
        ("SOUR:VOLT:ILIM 0.00025", None),
        ("SOUR:VOLT 0.25", None),
        ("SOUR:VOLT:STAT ON", None),
        ("SYST:ZCH OFF", None),
        ("FORM:ELEM READ,VSO", None),
        ("STAT:MEAS?", "0"),
        ("READ?", "+1.1E-09A,+2.500000E-01"),
        ("SOUR:VOLT 0", None),
        ("READ?", "+0.0E+00A,+0.000000E+00"),
        ("SOUR:VOLT -0.25", None),
        ("READ?", "-1.1E-09A,-2.500000E-01"),
        ("STAT:MEAS?", "0"),
        ("SYST:ERR?", OK),
        *builtin_pairs("-0.5", "0", "0.25", 3, buffer([(-2e-9, -0.5), (-1e-9, -0.25), (0, 0)])),
    ]
    seen: list[tuple[int, float, int]] = []
    with protocol(pairs, polls=(STB_MSB, STB_MSB)) as inst:
        readings = sweep_points(
            inst,
            volts,
            compliance=2e-4,
            poll_interval=0,
            on_reading=lambda i, r: seen.append((i, r.voltage_source, inst.adapter._index)),
        )
    assert [r.voltage_source for r in readings] == volts.tolist()
    assert [s[0] for s in seen] == list(range(9))
    # Point-by-point readings reach the callback before the next command is sent: the
    # protocol index at callback time is just past that point's READ?.
    read_indices = [k + 1 for k, (cmd, _) in enumerate(pairs) if cmd == "READ?"]
    assert [s[2] for s in seen[3:6]] == read_indices


def test_sweep_points_descending_on_builtin_when_asked():
    volts = [1.0, 0.5, 0.0]
    data = buffer([(3e-9, 1.0), (2e-9, 0.5), (1e-9, 0.0)])
    with protocol(builtin_pairs("1", "0", "0.5", 3, data), polls=(STB_MSB,)) as inst:
        readings = sweep_points(
            inst, volts, compliance=1e-4, builtin_descending=True, poll_interval=0
        )
    assert [r.current for r in readings] == [3e-9, 2e-9, 1e-9]


def test_sweep_points_refuses_any_point_beyond_the_limit_before_writing():
    volts = np.concatenate([cyclic_points(6, -6, 0.5), [8.5]])
    with protocol([]) as inst:
        with pytest.raises(SafetyLimitError, match=r"voltages\[49\] = 8.5 V"):
            sweep_points(inst, volts, compliance=1e-4)
    with protocol([]) as inst:
        with pytest.raises(SafetyLimitError):
            sweep_points(inst, [0.0, math.nan], compliance=1e-4)
    with protocol([]) as inst:
        with pytest.raises(SafetyLimitError):
            sweep_points(inst, [0.0, 1.0], compliance=0.02)


def test_sweep_points_empty_list_does_nothing():
    with protocol([]) as inst:
        assert sweep_points(inst, [], compliance=1e-4) == []


def point_run(second_read: str, *end) -> list:
    """A point-by-point run at 1 V then 0.5 V: configuration, events cleared, two reads."""
    return [
        ("SOUR:VOLT:ILIM 0.00025", None),
        ("SOUR:VOLT 1", None),
        ("SOUR:VOLT:STAT ON", None),
        ("SYST:ZCH OFF", None),
        ("FORM:ELEM READ,VSO", None),
        ("STAT:MEAS?", "0"),
        ("READ?", "+1.0E-06,+1.000000E+00"),
        ("SOUR:VOLT 0.5", None),
        ("READ?", second_read),
        *end,
    ]


def test_sweep_points_raise_on_compliance_after_delivering_the_reading():
    got = []
    with protocol(point_run("+2.5E-04,-999")) as inst:
        with pytest.raises(ComplianceError):
            sweep_points(
                inst,
                [1.0, 0.5, 2.0],
                compliance=1e-4,
                raise_on_compliance=True,
                on_reading=lambda i, r: got.append(i),
            )
    assert got == [0, 1]


def test_point_run_with_vsc_but_no_vso_fails_after_delivering_its_readings():
    """Item 3 on a point-by-point run: its readings are delivered as acquired, so a VSC event
    that no VSO -999 shows fails the run (ComplianceError) once the events are read."""
    pairs = point_run("+2.5E-04,+5.000000E-01", ("STAT:MEAS?", str(MEAS_VSC)), ("SYST:ERR?", OK))
    got = []
    with protocol(pairs) as inst:
        with pytest.raises(ComplianceError, match="no reading carried VSO = -999"):
            sweep_points(inst, [1.0, 0.5], compliance=1e-4, on_reading=lambda i, r: got.append(i))
    assert got == [0, 1] and len(inst.compliance_disagreements) == 1


# ------------------------------------------------------------------ shutdown, context manager


def test_shutdown_switches_source_off_and_zero_check_on():
    with protocol([("SOUR:VOLT:STAT OFF", None), ("SYST:ZCH ON", None)]) as inst:
        inst.shutdown()
    assert inst.isShutdown


def test_shutdown_on_a_dead_bus_logs_and_tries_every_step(caplog):
    adapter = _ScriptedAdapter(write_exc=OSError("cable pulled"))
    inst = Keithley6487(adapter, limits=LIMITS)
    with caplog.at_level(logging.WARNING, logger="instruments.keithley6487"):
        inst.shutdown()  # must not raise
    assert adapter.written == ["SOUR:VOLT:STAT OFF", "SYST:ZCH ON"]
    assert sum("shutdown could not send" in r.message for r in caplog.records) == 2
    assert inst.isShutdown


def test_context_manager_shuts_down_on_error():
    with protocol([("SOUR:VOLT:STAT OFF", None), ("SYST:ZCH ON", None)]) as inst:
        with pytest.raises(RuntimeError):
            with inst:
                raise RuntimeError("operator abort")
    assert inst.isShutdown


# ------------------------------------------------------------------ parser (hypothesis)

currents = st.floats(min_value=-2.1e-2, max_value=2.1e-2, allow_nan=False, allow_subnormal=False)
voltages = st.floats(min_value=-505, max_value=505, allow_nan=False, allow_subnormal=False)
number_formats = st.sampled_from(["{:+.6E}", "{:.9g}", "{:e}", "{!r}"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(currents, voltages), min_size=1, max_size=20),
    number_formats,
    st.sampled_from(["", "A"]),
    st.sampled_from([",", ", "]),
)
def test_parse_round_trips_formatted_numbers(pairs, fmt, suffix, sep):
    text = sep.join(f"{fmt.format(i)}{suffix}{sep}{fmt.format(v)}" for i, v in pairs)
    readings = parse_readings(text, "READ,VSO")
    assert len(readings) == len(pairs)
    for reading, (i, v) in zip(readings, pairs, strict=True):
        assert reading.current == float(fmt.format(i))
        assert reading.voltage_source == float(fmt.format(v))
        assert not reading.overflow and not reading.compliance
        assert reading.time is None and reading.status is None


@given(currents, st.floats(0, 1e5), st.integers(0, 2**16))
def test_parse_honours_element_order_time_and_status(i, t, stat):
    text = f"{t:+.6E},{i:+.6E}A,{float(stat):+.6E}"
    (reading,) = parse_readings(text, "TIME,READ,UNIT,STAT")
    assert reading.current == float(f"{i:+.6E}")
    assert reading.time == float(f"{t:+.6E}")
    assert reading.status == stat and reading.voltage_source is None


@given(st.sampled_from(["+9.9E37", "+9.900000E+37", "-9.900000E+37"]), voltages)
def test_parse_flags_overflow(sentinel, v):
    (reading,) = parse_readings(f"{sentinel}A,{v:+.6E}", "READ,VSO")
    assert reading.overflow and math.isinf(reading.current)
    assert math.copysign(1, reading.current) == math.copysign(1, float(sentinel))
    with pytest.raises(InstrumentError, match="overflow"):
        parse_readings(f"{sentinel}A,{v:+.6E}", "READ,VSO", strict=True)


@given(st.sampled_from(["+9.91E37", "+9.910000E+37"]))
def test_parse_nan_sentinel(sentinel):
    (reading,) = parse_readings(sentinel, "READ")
    assert math.isnan(reading.current) and not reading.overflow
    with pytest.raises(InstrumentError, match="NaN") as info:
        parse_readings(sentinel, "READ", strict=True, command="READ?")
    assert info.value.command == "READ?"


@given(currents, st.sampled_from(["-999", "-9.990000E+02", "-999.0"]))
def test_parse_compliance_sentinel(i, vso):
    (reading,) = parse_readings(f"{i:+.6E},{vso}", "READ,VSO")
    assert reading.compliance and math.isnan(reading.voltage_source)
    assert reading.current == float(f"{i:+.6E}")


@given(st.text(max_size=60))
def test_parse_garbage_raises_only_garbled_reply(text):
    try:
        readings = parse_readings(text, "READ,VSO")
    except GarbledReply as exc:
        assert exc.instrument == "Keithley 6487"
        assert "unparseable reply" in str(exc)
    else:
        assert all(isinstance(r, Reading) for r in readings)


@given(
    st.lists(st.tuples(currents, voltages), min_size=1, max_size=5),
    st.data(),
    st.sampled_from(list("xyz#?;@!")),
)
def test_parse_corrupted_token_names_the_reply(pairs, data, junk):
    tokens = [tok for i, v in pairs for tok in (f"{i:+.6E}", f"{v:+.6E}")]
    k = data.draw(st.integers(0, len(tokens) - 1))
    pos = data.draw(st.integers(0, len(tokens[k])))
    tokens[k] = tokens[k][:pos] + junk + tokens[k][pos:]
    text = ",".join(tokens)
    with pytest.raises(GarbledReply) as info:
        parse_readings(text, "READ,VSO", command="TRAC:DATA?")
    assert text[:150] in str(info.value)
    assert "'TRAC:DATA?' -> unparseable reply" in str(info.value)


def test_parse_rejects_wrong_value_count_and_empty():
    with pytest.raises(GarbledReply, match="groups of 2"):
        parse_readings("+1E-9,+1,+2E-9", "READ,VSO")
    with pytest.raises(GarbledReply, match="empty"):
        parse_readings("  ", "READ,VSO")
    with pytest.raises(GarbledReply, match="status word"):
        parse_readings("+1E-9,+1.5", "READ,STAT")
    with pytest.raises(ValueError, match="lack READ"):
        parse_readings("+1", "VSO")
    with pytest.raises(GarbledReply, match="out of range"):
        parse_readings("1e999,+1", "READ,VSO")


# ------------------------------------------------------------------ helpers (hypothesis)


@given(st.floats(min_value=1e-9, max_value=0.03), st.sampled_from([2.5e-5, 1e-4, 2.5e-3, 0.025]))
def test_snap_compliance_is_smallest_allowed_at_or_above_request(request, bench):
    try:
        snapped = snap_compliance(request, bench)
    except SafetyLimitError:
        assert request > bench or min(c for c in CURRENT_LIMITS if c >= request) > bench
    except ValueError:
        assert request > max(CURRENT_LIMITS)
    else:
        assert snapped in CURRENT_LIMITS and request <= snapped <= bench
        assert all(c < request * (1 - 1e-9) for c in CURRENT_LIMITS if c < snapped)


@given(
    st.integers(0, 40),
    st.integers(0, 40),
    st.sampled_from([0.01, 0.05, 0.1, 0.25]),
)
def test_cyclic_points_shape(n_up, n_down, step):
    if n_up == 0 and n_down == 0:
        with pytest.raises(ValueError):
            cyclic_points(0, 0, step)
        return
    v_max, v_min = n_up * step, -n_down * step
    pts = cyclic_points(v_max, v_min, step)
    assert pts[0] == 0 and pts[-1] == 0
    assert pts.max() == pytest.approx(v_max) and pts.min() == pytest.approx(v_min)
    assert len(pts) == 2 * (n_up + n_down) + 1
    assert np.allclose(np.abs(np.diff(pts)), step)


def test_cyclic_points_rejects_uneven_apex():
    with pytest.raises(ValueError, match="whole number"):
        cyclic_points(1.0, -1.0, 0.3)
    with pytest.raises(ValueError):
        cyclic_points(-1.0, -1.0, 0.1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-60, 60), min_size=0, max_size=60),
    st.booleans(),
)
def test_plan_segments_reassemble_the_list(ks, descending):
    volts = np.array(ks, dtype=float) * 0.1
    segments = plan_segments(volts, builtin_descending=descending)
    joined = np.concatenate([s.voltages for s in segments]) if segments else np.array([])
    assert np.array_equal(joined, volts)
    assert [s.first for s in segments] == list(np.cumsum([0] + [s.count for s in segments])[:-1])
    for seg in segments:
        if seg.kind == "builtin":
            d = np.diff(seg.voltages)
            assert seg.count >= 3 and np.allclose(d, d[0])
            assert d[0] > 0 or (descending and d[0] < 0)


def test_plan_segments_of_a_cyclic_sweep():
    segments = plan_segments(cyclic_points(1.0, -1.0, 0.1))
    assert [(s.kind, s.first, s.count) for s in segments] == [
        ("builtin", 0, 11),
        ("points", 11, 19),
        ("builtin", 30, 11),
    ]
    assert segments[0].step == pytest.approx(0.1)
    both = plan_segments(cyclic_points(1.0, -1.0, 0.1), builtin_descending=True)
    assert [s.kind for s in both] == ["builtin", "builtin", "builtin"]
    assert [s.count for s in both] == [11, 20, 10]


def test_plan_segments_caps_builtin_length():
    segments = plan_segments(np.arange(5000) * 0.001)
    assert [s.count for s in segments] == [2048, 2048, 904]


# ------------------------------------------------------------------ 50/500 V ranges, mains

WIDE = SafetyLimits(max_voltage=20.0, max_compliance=2.5e-3)
TO_50V = [("SOUR:VOLT:ILIM 0.0025", None), ("SOUR:VOLT:RANG 50", None), ("SYST:ERR?", OK)]


def test_range_switch_writes_a_limit_within_2_5ma_first_only_when_needed():
    """Item 5: the 50/500 V ranges allow at most 2.5 mA; the driver writes the largest 6487
    limit within 2.5 mA and the bench limit before the range, unless its own last limit is."""
    pairs = [
        ("SOUR:VOLT:ILIM 0.00025", None),
        ("SYST:ERR?", OK),
        ("SOUR:VOLT:RANG 50", None),
        ("SYST:ERR?", OK),
        ("SOUR:VOLT:RANG 10", None),
        ("SYST:ERR?", OK),
        ("SOUR:VOLT:ILIM 0.025", None),
        ("SYST:ERR?", OK),
        ("SOUR:VOLT:ILIM 0.0025", None),
        ("SOUR:VOLT:RANG 500", None),
        ("SYST:ERR?", OK),
    ]
    with protocol(pairs, limits=SafetyLimits(max_voltage=20.0, max_compliance=25e-3)) as inst:
        inst.source_current_limit = 2e-4
        inst.source_voltage_range = 50  # 250 µA is within 2.5 mA: no limit written
        with pytest.raises(ValueError, match="at most 0.0025 A"):  # refused, nothing written
            inst.source_current_limit = 25e-3
        inst.source_voltage_range = 10
        inst.source_current_limit = 25e-3
        inst.source_voltage_range = 500
    with protocol([], limits=SafetyLimits(max_voltage=20.0, max_compliance=1e-5)) as inst:
        with pytest.raises(SafetyLimitError):  # no 6487 limit within the bench's: nothing sent
            inst.source_voltage_range = 50


def test_interlock_is_checked_after_switching_on_at_50v():
    """Item 2: SOUR:VOLT:INT:FAIL? follows SOUR:VOLT:STAT ON on the 50/500 V ranges; an
    asserted interlock switches the source off and raises InterlockOpen."""
    pairs = [
        *TO_50V,
        ("SOUR:VOLT:STAT ON", None),
        ("SOUR:VOLT:INT:FAIL?", "0"),
        ("SOUR:VOLT:STAT ON", None),
        ("SOUR:VOLT:INT:FAIL?", "1"),
        ("SOUR:VOLT:STAT OFF", None),
    ]
    with protocol(pairs, limits=WIDE) as inst:
        inst.source_voltage_range = 50
        inst.source_enabled = True  # closed: nothing more
        with pytest.raises(InterlockOpen) as info:
            inst.source_enabled = True
    assert info.value.command == "SOUR:VOLT:INT:FAIL?"
    with protocol([("SOUR:VOLT:STAT ON", None)]) as inst:
        inst.source_enabled = True  # the 10 V range: no interlock query


def test_measure_at_on_the_50v_range_stops_at_an_open_interlock():
    pairs = [
        *TO_50V,
        ("SOUR:VOLT:ILIM 0.00025", None),
        ("SOUR:VOLT 15", None),
        ("SOUR:VOLT:STAT ON", None),
        ("SOUR:VOLT:INT:FAIL?", "1"),
        ("SOUR:VOLT:STAT OFF", None),
    ]
    with protocol(pairs, limits=WIDE) as inst:
        inst.source_voltage_range = 50
        with pytest.raises(InterlockOpen, match="high impedance"):
            measure_at(inst, 15.0, compliance=2.5e-4)


def test_builtin_sweep_beyond_10v_checks_the_interlock_after_arming():
    """The sweep picks the 50 V range itself (p. 6-11); after SOUR:VOLT:SWE:INIT the driver
    checks the interlock and, if asserted, aborts the armed sweep and switches off."""
    pairs = builtin_pairs("0", "12", "1", 13, "unused")[: AFTER_INIT - 1] + [
        ("SOUR:VOLT:INT:FAIL?", "1"),
        ("SOUR:VOLT:SWE:ABOR", None),
        ("SOUR:VOLT:STAT OFF", None),
    ]
    with protocol(pairs, limits=WIDE) as inst:
        with pytest.raises(InterlockOpen, match="50 V range"):
            sweep(inst, 0, 12, 1, compliance=1e-4, poll_interval=0)
    assert not inst.sweep_armed


def test_line_frequency_bounds_nplc():
    """Item 4: SYST:LFR? at connect; 5 PLC at most on 50 Hz mains, refused before the bus."""
    with protocol([("SYST:LFR?", "50"), ("SENS:CURR:NPLC 5", None)]) as inst:
        assert inst.read_line_frequency() == 50.0
        with pytest.raises(ValueError):
            inst.nplc = 6
        with pytest.raises(ValueError, match=r"\[0.01, 5\] PLC"):
            measure_at(inst, 1.0, compliance=1e-4, nplc=6)
        inst.nplc = 5
    with protocol([("SYST:LFR?", "+6.000000E+01"), ("SENS:CURR:NPLC 6", None)]) as inst:
        assert inst.read_line_frequency() == 60.0
        inst.nplc = 6
    with protocol([("SYST:LFR?", "55")]) as inst:
        with pytest.raises(GarbledReply, match="not 50 or 60 Hz"):
            inst.read_line_frequency()


def test_serial_poll_only_on_gpib_sessions():
    """An RS-232 session's read_stb would be a *STB? query (held back by a running sweep):
    the driver uses serial poll only where the session is GPIB."""
    from pyvisa.constants import InterfaceType

    with protocol([]) as inst:
        inst.adapter.connection.interface_type = InterfaceType.asrl
        assert inst.read_status_byte() is None
    with protocol([], polls=(STB_MSB,)) as inst:
        inst.adapter.connection.interface_type = InterfaceType.gpib
        assert inst.read_status_byte() == STB_MSB
