"""Keithley 6487 driver against a pyvisa-sim device (instruments/sim/keithley6487.yaml) through
pymeasure's VISAAdapter: identification, error queue, set/get round trips, a reading, and the
GPIB (LF) and RS-232 (CR) terminations."""

from __future__ import annotations

import pytest
import pyvisa

from instruments.errors import InstrumentErrorQueue, InstrumentTimeout, SafetyLimits
from instruments.keithley6487 import SIM_DEFINITION, SIM_RESOURCE, Identity, Keithley6487
from instruments.keithley6487_procedures import measure_at

SIM_LIBRARY = f"{SIM_DEFINITION}@sim"
IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 6487,4126713,A04  Feb  4 2005 16:52:50/A02  /E"
# 50 V on the bench, so the driver lets 20 V through and the (10 V range) device refuses it.
LIMITS = SafetyLimits(max_voltage=50.0, max_compliance=2.5e-3)


@pytest.fixture
def k6487():
    inst = Keithley6487(SIM_RESOURCE, limits=LIMITS, visa_library=SIM_LIBRARY, timeout=500)
    yield inst
    inst.adapter.close()


def test_sim_definition_ships_with_the_package():
    assert SIM_DEFINITION.is_file()
    assert SIM_DEFINITION.parent.joinpath("__init__.py").is_file()


def test_identity_is_parsed_over_gpib(k6487):
    assert k6487.id == IDN
    assert k6487.identity == Identity(
        "KEITHLEY INSTRUMENTS INC.", "6487", "4126713", "A04  Feb  4 2005 16:52:50/A02  /E"
    )


def test_error_queue_is_empty(k6487):
    assert k6487.check_errors() == []


def test_source_voltage_round_trip(k6487):
    k6487.source_voltage = 1.5
    assert k6487.source_voltage == 1.5
    k6487.source_voltage = -0.25
    assert k6487.source_voltage == -0.25


def test_current_limit_snaps_and_reads_back(k6487):
    k6487.source_current_limit = 1e-4
    assert k6487.source_current_limit == 2.5e-4


def test_boolean_settings_round_trip(k6487):
    k6487.source_enabled = True
    assert k6487.source_enabled is True
    k6487.source_enabled = False
    assert k6487.source_enabled is False
    k6487.zero_check_enabled = False
    assert k6487.zero_check_enabled is False
    assert k6487.interlock_tripped is False


def test_level_beyond_the_range_is_reported_through_the_error_queue(k6487):
    k6487.source_voltage = 2.0
    with pytest.raises(InstrumentErrorQueue) as info:
        k6487.source_voltage = 20.0  # within the bench limit, beyond the 10 V range
    assert info.value.code == -100
    assert info.value.command == "SOUR:VOLT 20"
    assert k6487.source_voltage == 2.0  # the device kept the old level
    assert k6487.check_errors() == []  # the queue was drained


def test_unknown_command_is_reported(k6487):
    k6487.write("SOUR:VOLT:BOGUS 1")
    with pytest.raises(
        InstrumentErrorQueue, match=r"'SOUR:VOLT:BOGUS 1' -> -100,\"Command error\""
    ):
        k6487.check_errors()


def test_data_elements_round_trip(k6487):
    k6487.data_elements = "READ,UNIT"
    assert k6487.data_elements == "READ,UNIT"
    k6487.data_elements = "read,vsource"
    assert k6487.data_elements == "READ,VSO"


def test_measure_at_parses_the_reading_with_its_unit_suffix(k6487):
    reading = measure_at(k6487, 1.0, compliance=1e-4, nplc=1)
    assert reading.current == -1.234567e-9
    assert reading.voltage_source == 1.0
    assert not reading.overflow and not reading.compliance
    assert k6487.source_enabled is True and k6487.zero_check_enabled is False
    assert k6487.source_current_limit == 2.5e-4 and k6487.nplc == 1.0


def test_zero_correct_then_shutdown(k6487):
    k6487.zero_correct()
    assert k6487.zero_correct_enabled is True and k6487.zero_check_enabled is False
    k6487.source_enabled = True
    with k6487:
        pass  # leaving the block runs shutdown()
    assert k6487.source_enabled is False and k6487.zero_check_enabled is True


def test_gpib_replies_end_with_lf():
    rm = pyvisa.ResourceManager(SIM_LIBRARY)
    try:
        res = rm.open_resource(SIM_RESOURCE, write_termination="\n", read_termination=None)
        res.write("*IDN?")
        assert res.read_raw() == IDN.encode() + b"\n"
    finally:
        rm.close()


def test_rs232_uses_cr_both_ways():
    rm = pyvisa.ResourceManager(SIM_LIBRARY)
    try:
        res = rm.open_resource("ASRL1::INSTR", timeout=300)
        res.write_raw(b"*IDN?\r")
        res.read_termination = "\r"
        assert res.read_raw() == IDN.encode() + b"\r"
    finally:
        rm.close()


def test_driver_defaults_to_cr_on_rs232():
    inst = Keithley6487("ASRL1::INSTR", limits=LIMITS, visa_library=SIM_LIBRARY, timeout=300)
    try:
        assert inst.identity.model == "6487"
        assert inst.check_errors() == []
    finally:
        inst.adapter.close()


def test_wrong_termination_times_out_as_instrument_timeout():
    inst = Keithley6487(
        "ASRL1::INSTR",
        limits=LIMITS,
        visa_library=SIM_LIBRARY,
        timeout=200,
        write_termination="\n",  # the device waits for CR: the query never completes
    )
    try:
        with pytest.raises(InstrumentTimeout) as info:
            _ = inst.identity
        assert info.value.command == "*IDN?"
    finally:
        inst.adapter.close()
