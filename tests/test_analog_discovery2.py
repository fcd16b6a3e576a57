"""AnalogDiscovery2 driver against the fake pydwf library: call sequences, safety, close paths.

The fake's classes are checked against pydwf's real ones with ``inspect.signature`` so the call
sequences asserted here are ones the real library accepts.
"""

from __future__ import annotations

import inspect
import logging
import math

import numpy as np
import pydwf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydwf import (
    DwfAnalogOutFunction,
    DwfAnalogOutIdle,
    DwfDigitalOutIdle,
    DwfDigitalOutType,
    DwfErrorCode,
    DwfLibraryError,
    DwfTriggerSource,
)
from pydwf.core.api.device_enumeration import DeviceEnumeration

from instruments.analog_discovery2 import AnalogDiscovery2
from instruments.errors import (
    ConnectionLost,
    InstrumentError,
    InstrumentTimeout,
    SafetyLimitError,
    SafetyLimits,
)
from sim_backends.clock import VirtualClock
from sim_backends.fake_pydwf import (
    FakeAnalogIn,
    FakeAnalogIO,
    FakeAnalogOut,
    FakeDeviceControl,
    FakeDeviceEnumeration,
    FakeDeviceInfo,
    FakeDigitalIO,
    FakeDigitalOut,
    FakeDwfDevice,
    FakeDwfLibrary,
)

C = pydwf.DwfAnalogOutNode.Carrier
LIMITS = SafetyLimits(max_voltage=4.0, max_compliance=1e-3)

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return type(a) is type(b) and a == b


def capture_setup(
    enabled: dict, ranges: list, rate: float, n: int, trigger, position_s: float
) -> list:
    """Expected calls of a scope capture up to its start: channel enables, ranges (V span) per
    requested channel, sample rate (Hz), buffer size (samples), single acquisition, trigger
    source and position (s), ``configure(False, True)``."""
    return [
        *[("analogIn.channelEnableSet", (ch, on)) for ch, on in enabled.items()],
        *[("analogIn.channelRangeSet", (ch, span)) for ch, span in ranges],
        ("analogIn.frequencySet", (rate,)),
        ("analogIn.bufferSizeSet", (n,)),
        ("analogIn.acquisitionModeSet", (pydwf.DwfAcquisitionMode.Single,)),
        ("analogIn.triggerSourceSet", (trigger,)),
        ("analogIn.triggerPositionSet", (position_s,)),
        ("analogIn.configure", (False, True)),
    ]


def assert_calls(actual: list, expected: list) -> None:
    """Exact names and args in order (arrays by value, floats to 1e-12)."""
    names = [n for n, _ in actual]
    assert names == [n for n, _ in expected], names
    for (name, got), (_, want) in zip(actual, expected, strict=True):
        assert len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want)), (
            name,
            got,
            want,
        )


def make(lib: FakeDwfLibrary | None = None, **kw) -> tuple[FakeDwfLibrary, AnalogDiscovery2]:
    lib = FakeDwfLibrary() if lib is None else lib
    clock = VirtualClock()
    ad2 = AnalogDiscovery2(
        lib, limits=kw.pop("limits", LIMITS), clock=clock.now, sleep=clock.sleep, **kw
    )
    ad2.clock = clock  # for the tests
    return lib, ad2


@pytest.fixture
def opened() -> tuple[FakeDwfLibrary, AnalogDiscovery2, int]:
    lib, ad2 = make()
    ad2.open()
    return lib, ad2, len(lib.calls)


# --------------------------------------------------------------------------------------------
# the fake cannot drift from pydwf
# --------------------------------------------------------------------------------------------

PAIRS = [
    (FakeDwfLibrary, pydwf.DwfLibrary),
    (FakeDeviceEnumeration, DeviceEnumeration),
    (FakeDeviceControl, pydwf.DeviceControl),
    (FakeDwfDevice, pydwf.DwfDevice),
    (FakeAnalogOut, pydwf.AnalogOut),
    (FakeAnalogIn, pydwf.AnalogIn),
    (FakeAnalogIO, pydwf.AnalogIO),
    (FakeDigitalIO, pydwf.DigitalIO),
    (FakeDigitalOut, pydwf.DigitalOut),
]
# Test-only additions, not part of pydwf.
FAKE_ONLY = {"fail_after", "device", "supply_output", "pins", "owned_mask", "idle_bit"}
# What the driver calls plus what INSTRUMENTS.md lists: the fake must offer all of it.
REQUIRED = {
    FakeDeviceEnumeration: {"enumerateDevices", "serialNumber", "deviceType"},
    FakeDeviceControl: {"open"},
    FakeDwfDevice: {"close"},
    FakeAnalogOut: {
        "nodeEnableSet",
        "nodeFunctionSet",
        "nodeAmplitudeSet",
        "nodeOffsetSet",
        "nodeFrequencySet",
        "nodeDataSet",
        "nodeDataInfo",
        "runSet",
        "repeatSet",
        "waitSet",
        "idleSet",
        "configure",
        "status",
    },  # fmt: skip
    FakeAnalogIn: {
        "channelEnableSet",
        "channelRangeSet",
        "frequencySet",
        "bufferSizeSet",
        "bufferSizeInfo",
        "acquisitionModeSet",
        "triggerSourceSet",
        "triggerLevelSet",
        "triggerPositionSet",
        "configure",
        "status",
        "statusData",
        "statusSample",
    },  # fmt: skip
    FakeAnalogIO: {"channelNodeSet", "enableSet"},
    FakeDigitalIO: {"outputEnableSet", "outputSet", "status", "inputStatus"},
    FakeDigitalOut: {
        "reset",
        "configure",
        "status",
        "internalClockInfo",
        "dataInfo",
        "enableSet",
        "typeSet",
        "idleSet",
        "dividerSet",
        "dataSet",
        "runSet",
        "repeatSet",
    },
}


def _params(func) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


@pytest.mark.parametrize(("fake", "real"), PAIRS, ids=[f.__name__ for f, _ in PAIRS])
def test_fake_methods_have_pydwf_signatures(fake: type, real: type) -> None:
    checked = 0
    for name in dir(fake):
        if name.startswith("_") or name in FAKE_ONLY:
            continue
        attr = inspect.getattr_static(fake, name)
        real_attr = inspect.getattr_static(real, name, None)
        assert real_attr is not None, f"{fake.__name__}.{name} does not exist in pydwf"
        if isinstance(attr, property):
            assert isinstance(real_attr, property), name
            continue
        assert _params(getattr(fake, name)) == _params(getattr(real, name)), name
        checked += 1
    assert REQUIRED.get(fake, set()) <= {n for n in dir(fake) if not n.startswith("_")}
    assert checked >= len(REQUIRED.get(fake, ()))


def test_fake_instruments_are_attributes_like_pydwf() -> None:
    lib = FakeDwfLibrary()
    dev = pydwf.utilities.openDwfDevice(lib)
    assert isinstance(dev, FakeDwfDevice) and dev.dwf is lib
    for attr, cls in [
        ("analogOut", FakeAnalogOut),
        ("analogIn", FakeAnalogIn),
        ("analogIO", FakeAnalogIO),
        ("digitalIO", FakeDigitalIO),
        ("digitalOut", FakeDigitalOut),
    ]:
        assert isinstance(getattr(dev, attr), cls)
    with dev:
        pass
    assert dev.closed and lib.calls[-1] == ("device.close", ())


def test_fake_fail_after_counts_calls_and_sticks() -> None:
    lib = FakeDwfLibrary()
    dev = lib.deviceControl.open(0)
    lib.fail_after(2)
    dev.digitalIO.outputSet(1)
    with pytest.raises(DwfLibraryError) as err:
        dev.digitalIO.outputSet(2)
    assert err.value.code == DwfErrorCode.UnknownError
    with pytest.raises(pydwf.PyDwfError):
        dev.digitalIO.status()
    assert [n for n, _ in lib.calls[-3:]] == ["digitalIO.outputSet"] * 2 + ["digitalIO.status"]
    assert dev.digitalIO.output == 1  # the failed call changed nothing
    lib.fail_after(1, DwfLibraryError(DwfErrorCode.InvalidParameter1, "bad"), sticky=False)
    with pytest.raises(DwfLibraryError):
        dev.digitalIO.outputSet(3)
    dev.digitalIO.outputSet(4)
    assert dev.digitalIO.output == 4


# --------------------------------------------------------------------------------------------
# open
# --------------------------------------------------------------------------------------------


def test_open_uses_opendwfdevice_enumeration_and_reads_buffer_sizes() -> None:
    lib, ad2 = make()
    assert ad2.open() is ad2 and ad2.is_open
    assert_calls(
        lib.calls,
        [
            ("deviceEnum.enumerateDevices", (pydwf.DwfEnumFilter.All,)),
            ("deviceEnum.deviceType", (0,)),
            ("deviceControl.open", (0, None)),
            ("analogIn.bufferSizeInfo", ()),
            ("analogOut.nodeDataInfo", (0, C)),
        ],
    )
    assert (ad2.scope_buffer_max, ad2.awg_samples_max) == (8192, 4096)
    n = len(lib.calls)
    ad2.open()  # idempotent
    assert len(lib.calls) == n


def test_open_selects_the_ad2_by_serial_suffix() -> None:
    devices = [
        FakeDeviceInfo(serial="210321AAAAAA"),
        FakeDeviceInfo(serial="210321BBBBBB"),
        FakeDeviceInfo(serial="210018CCCCCC", device_id=pydwf.DwfDeviceID.DDiscovery.value),
    ]
    lib = FakeDwfLibrary(devices)
    _, ad2 = make(lib, serial_number="bbbbbb")
    ad2.open()
    assert lib.device.info.serial == "210321BBBBBB"
    assert ("deviceControl.open", (1, None)) in lib.calls
    # Without a serial two AD2s are ambiguous; a Digital Discovery never counts.
    _, other = make(FakeDwfLibrary(devices[:1] + devices[2:]))
    other.open()
    with pytest.raises(ConnectionLost, match="Multiple matching"):
        make(FakeDwfLibrary(devices))[1].open()


def test_open_without_device_raises_connection_lost() -> None:
    _, ad2 = make(FakeDwfLibrary(devices=[]))
    with pytest.raises(ConnectionLost) as err:
        ad2.open()
    assert err.value.instrument == "Analog Discovery 2" and "No Digilent" in str(err.value)
    assert not ad2.is_open


def test_methods_need_an_open_device() -> None:
    lib, ad2 = make()
    with pytest.raises(InstrumentError, match="not open"):
        ad2.awg_dc(0, 1.0)
    assert lib.calls == []


# --------------------------------------------------------------------------------------------
# AWG
# --------------------------------------------------------------------------------------------


def test_awg_dc_sequence_and_state(opened) -> None:
    lib, ad2, mark = opened
    ad2.awg_dc(1, -2.5)
    assert_calls(
        lib.calls[mark:],
        [
            ("analogOut.nodeFunctionSet", (1, C, DwfAnalogOutFunction.DC)),
            ("analogOut.nodeOffsetSet", (1, C, -2.5)),
            ("analogOut.runSet", (1, 0.0)),
            ("analogOut.repeatSet", (1, 0)),
            ("analogOut.nodeEnableSet", (1, C, 1)),
            ("analogOut.configure", (1, 1)),
        ],
    )
    state = lib.device.analogOut.channel_state[1]
    assert (state.enabled, state.running, state.offset) == (True, True, -2.5)
    assert np.array_equal(state.waveform(np.array([0.0, 1.0, 100.0])), [-2.5] * 3)


def _pulse_calls(ch, base, data, freq, amp, width, start=True):
    calls = [
        ("analogOut.configure", (ch, 0)),
        ("analogOut.idleSet", (ch, DwfAnalogOutIdle.Offset)),
        ("analogOut.nodeOffsetSet", (ch, C, base)),
        ("analogOut.nodeFunctionSet", (ch, C, DwfAnalogOutFunction.Custom)),
        ("analogOut.nodeDataSet", (ch, C, data)),
        ("analogOut.nodeFrequencySet", (ch, C, freq)),
        ("analogOut.nodeAmplitudeSet", (ch, C, amp)),
        ("analogOut.runSet", (ch, width)),
        ("analogOut.waitSet", (ch, 0.0)),
        ("analogOut.repeatSet", (ch, 1)),
        ("analogOut.nodeEnableSet", (ch, C, 1)),
    ]
    return calls + ([("analogOut.configure", (ch, 1))] if start else [])


def test_awg_pulse_sequence_and_shape(opened) -> None:
    lib, ad2, mark = opened
    ad2.awg_pulse(0, 3.0, 1e-3)
    assert_calls(lib.calls[mark:], _pulse_calls(0, 0.0, np.ones(16), 1e3, 3.0, 1e-3))
    state = lib.device.analogOut.channel_state[0]
    t = np.array([0.0, 0.5e-3, 0.999e-3, 1.001e-3, 1.0])
    assert np.allclose(state.waveform(t), [3.0, 3.0, 3.0, 0.0, 0.0])
    assert state.idle_level() == 0.0  # back to 0 V after the pulse


def test_awg_negative_pulse_on_a_baseline(opened) -> None:
    lib, ad2, mark = opened
    ad2.awg_pulse(1, -2.2, 200e-9, baseline=0.5)
    # 200 ns at 100 MS/s: a 20-sample period is too many, 16 is the cap; the sign is in the data.
    assert_calls(lib.calls[mark:], _pulse_calls(1, 0.5, -np.ones(16), 5e6, 2.7, 200e-9))
    state = lib.device.analogOut.channel_state[1]
    assert np.allclose(state.waveform(np.array([0.0, 150e-9, 250e-9])), [-2.2, -2.2, 0.5])


def test_short_pulse_uses_fewer_samples(opened) -> None:
    lib, ad2, mark = opened
    ad2.awg_pulse(0, 1.0, 120e-9)
    (data,) = [a[2] for n, a in lib.calls[mark:] if n == "analogOut.nodeDataSet"]
    assert data.size == 12  # 120 ns · 100 MS/s


def test_armed_pulse_waits_for_awg_start(opened) -> None:
    lib, ad2, mark = opened
    ad2.awg_pulse(0, 1.5, 1e-3, start=False)
    assert_calls(lib.calls[mark:], _pulse_calls(0, 0.0, np.ones(16), 1e3, 1.5, 1e-3, start=False))
    assert ad2.awg_pending(0) and not lib.device.analogOut.channel_state[0].running
    ad2.awg_start(0)
    assert lib.calls[-1] == ("analogOut.configure", (0, 1)) and not ad2.awg_pending(0)
    mark = len(lib.calls)
    ad2.awg_wait(0)
    assert lib.calls[mark:] == [("analogOut.status", (0,))]


@settings(max_examples=60, deadline=None)
@given(
    samples=st.lists(st.floats(-3.9, 3.9), min_size=1, max_size=300).map(np.array),
    rate=st.floats(1e3, 100e6),
)
def test_awg_arbitrary_normalises_and_reproduces_samples(samples: np.ndarray, rate: float) -> None:
    lib, ad2 = make()
    ad2.open()
    mark = len(lib.calls)
    ad2.awg_arbitrary(0, samples, rate)
    peak = float(np.max(np.abs(samples)))
    data = samples / peak if peak > 0 else np.zeros_like(samples)
    n = samples.size
    assert_calls(
        lib.calls[mark:],
        [
            ("analogOut.configure", (0, 0)),
            ("analogOut.idleSet", (0, DwfAnalogOutIdle.Offset)),
            ("analogOut.nodeOffsetSet", (0, C, 0.0)),
            ("analogOut.nodeFunctionSet", (0, C, DwfAnalogOutFunction.Custom)),
            ("analogOut.nodeDataSet", (0, C, data)),
            ("analogOut.nodeFrequencySet", (0, C, rate / n)),
            ("analogOut.nodeAmplitudeSet", (0, C, peak)),
            ("analogOut.runSet", (0, n / rate)),
            ("analogOut.waitSet", (0, 0.0)),
            ("analogOut.repeatSet", (0, 1)),
            ("analogOut.nodeEnableSet", (0, C, 1)),
            ("analogOut.configure", (0, 1)),
        ],
    )
    state = lib.device.analogOut.channel_state[0]
    t_mid = (np.arange(n) + 0.5) / rate
    assert np.allclose(state.waveform(t_mid), samples, atol=1e-12)
    assert state.waveform(np.array([(n + 0.5) / rate]))[0] == 0.0  # back to 0 V


def test_awg_arbitrary_rejects_a_waveform_longer_than_the_buffer(opened) -> None:
    lib, ad2, mark = opened
    with pytest.raises(ValueError, match="outside the AWG buffer"):
        ad2.awg_arbitrary(0, np.zeros(4097), 1e6)
    assert len(lib.calls) == mark


def test_awg_off_drives_zero_then_disables(opened) -> None:
    lib, ad2, _ = opened
    applied = []
    lib.device.analogOut.on_output = lambda ch, s: applied.append(
        (ch, s.offset, s.enabled, s.running)
    )
    ad2.awg_dc(0, 3.0)
    mark = len(lib.calls)
    ad2.awg_off(0)
    assert_calls(
        lib.calls[mark:],
        [
            ("analogOut.nodeFunctionSet", (0, C, DwfAnalogOutFunction.DC)),
            ("analogOut.nodeOffsetSet", (0, C, 0.0)),
            ("analogOut.configure", (0, 1)),
            ("analogOut.nodeEnableSet", (0, C, 0)),
            ("analogOut.configure", (0, 0)),
        ],
    )
    assert applied == [(0, 3.0, True, True), (0, 0.0, True, True), (0, 0.0, False, False)]


# --------------------------------------------------------------------------------------------
# safety: refused before anything reaches the device
# --------------------------------------------------------------------------------------------

REFUSED = [
    ("dc over bench limit", lambda a: a.awg_dc(0, 4.01), SafetyLimitError),
    ("dc negative over limit", lambda a: a.awg_dc(1, -4.5), SafetyLimitError),
    ("dc nan", lambda a: a.awg_dc(0, float("nan")), SafetyLimitError),
    ("dc bad channel", lambda a: a.awg_dc(2, 1.0), ValueError),
    ("pulse amplitude", lambda a: a.awg_pulse(0, 4.2, 1e-6), SafetyLimitError),
    ("pulse baseline", lambda a: a.awg_pulse(0, 1.0, 1e-6, baseline=-4.1), SafetyLimitError),
    ("pulse too short", lambda a: a.awg_pulse(0, 1.0, 50e-9), ValueError),
    ("pulse zero width", lambda a: a.awg_pulse(0, 1.0, 0.0), ValueError),
    (
        "arbitrary peak",
        lambda a: a.awg_arbitrary(0, np.array([0.0, 4.5, 0.0]), 1e6),
        SafetyLimitError,
    ),
    ("arbitrary inf", lambda a: a.awg_arbitrary(0, np.array([0.0, np.inf]), 1e6), SafetyLimitError),
    ("arbitrary rate", lambda a: a.awg_arbitrary(0, np.zeros(4), 200e6), ValueError),
    ("arbitrary 2-D", lambda a: a.awg_arbitrary(0, np.zeros((2, 2)), 1e6), ValueError),
    ("supply V+ high", lambda a: a.supplies(5.1, -5.0), ValueError),
    ("supply V+ negative", lambda a: a.supplies(-0.1, -5.0), ValueError),
    ("supply V- positive", lambda a: a.supplies(5.0, 0.5), ValueError),
    ("supply V- low", lambda a: a.supplies(5.0, -5.5), ValueError),
    ("scope channel", lambda a: a.scope_capture((0, 2)), ValueError),
    ("scope duplicate", lambda a: a.scope_capture((1, 1)), ValueError),
    ("scope range", lambda a: a.scope_capture(range_v=60.0), ValueError),
    ("scope rate", lambda a: a.scope_capture(sample_rate=2e8), ValueError),
    ("scope buffer", lambda a: a.scope_capture(n_samples=9000), ValueError),
    ("scope trigger", lambda a: a.scope_capture(trigger_on_awg=3), ValueError),
    ("dio mask", lambda a: a.dio_write(1, 1 << 16), ValueError),
    ("dio bits type", lambda a: a.dio_write(1.5, 1), TypeError),
]


@pytest.mark.parametrize(("action", "exc"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refusals_reach_nothing(opened, action, exc) -> None:
    lib, ad2, mark = opened
    with pytest.raises(exc):
        action(ad2)
    assert lib.calls[mark:] == []


def test_awg_hardware_range_applies_even_with_a_looser_bench_limit() -> None:
    lib, ad2 = make(limits=SafetyLimits(max_voltage=10.0, max_compliance=1e-3))
    ad2.open()
    mark = len(lib.calls)
    with pytest.raises(SafetyLimitError) as err:
        ad2.awg_dc(0, 6.0)
    assert err.value.limit == 5.0 and lib.calls[mark:] == []
    ad2.awg_dc(0, 5.0)
    assert lib.device.analogOut.channel_state[0].offset == 5.0


@settings(max_examples=80, deadline=None)
@given(v=st.floats(-20, 20, allow_nan=False), max_v=st.floats(0.1, 8.0))
def test_awg_dc_limit_property(v: float, max_v: float) -> None:
    lib, ad2 = make(limits=SafetyLimits(max_voltage=max_v, max_compliance=1e-3))
    ad2.open()
    mark = len(lib.calls)
    if abs(v) <= min(max_v, 5.0):
        ad2.awg_dc(0, v)
        assert lib.device.analogOut.channel_state[0].offset == v
    else:
        with pytest.raises(SafetyLimitError):
            ad2.awg_dc(0, v)
        assert lib.calls[mark:] == []


# --------------------------------------------------------------------------------------------
# scope
# --------------------------------------------------------------------------------------------


def _source(channel: int, n: int) -> np.ndarray:
    return channel + np.arange(n) * 1e-3


def test_scope_capture_free_running_when_no_waveform_is_armed() -> None:
    lib, ad2 = make(FakeDwfLibrary(source=_source, polls_until_done=3))
    ad2.open()
    mark = len(lib.calls)
    data = ad2.scope_capture((1,), range_v=50.0, sample_rate=2e6, n_samples=400)
    assert data.shape == (1, 400) and np.array_equal(data[0], _source(1, 400))
    assert_calls(
        lib.calls[mark:],
        [
            *capture_setup(
                {0: False, 1: True}, [(1, 50.0)], 2e6, 400, DwfTriggerSource.None_, 0.5 * 400 / 2e6
            ),
            ("analogIn.status", (True,)),
            ("analogIn.status", (True,)),
            ("analogIn.status", (True,)),
            ("analogIn.statusData", (1, 400)),
        ],
    )
    assert ad2.clock.now() == pytest.approx(2e-3)  # two 1 ms poll waits, no real sleeping


def test_scope_capture_triggers_on_the_armed_awg_pulse(opened) -> None:
    lib, ad2, _ = opened
    lib.device.analogIn.source = _source
    ad2.awg_pulse(1, 2.0, 10e-6, start=False)
    mark = len(lib.calls)
    data = ad2.scope_capture(
        (1, 0), trigger_on_awg=1, n_samples=100, sample_rate=1e7, pretrigger=0.1
    )
    assert np.array_equal(data, np.vstack([_source(1, 100), _source(0, 100)]))
    assert_calls(
        lib.calls[mark:],
        [
            *capture_setup(
                {0: True, 1: True},
                [(1, 5.0), (0, 5.0)],
                1e7,
                100,
                DwfTriggerSource.AnalogOut2,
                0.4 * 100 / 1e7,
            ),
            ("analogIn.status", (False,)),
            ("analogOut.configure", (1, 1)),
            ("analogIn.status", (True,)),
            ("analogIn.statusData", (1, 100)),
            ("analogIn.statusData", (0, 100)),
        ],
    )
    assert not ad2.awg_pending(1)
    # The pulse was played once; a second capture does not replay it.
    mark = len(lib.calls)
    ad2.scope_capture((0,), trigger_on_awg=1)
    assert ("analogOut.configure", (1, 1)) not in lib.calls[mark:]
    assert ("analogIn.triggerSourceSet", (DwfTriggerSource.None_,)) in lib.calls[mark:]


def test_scope_capture_times_out_on_the_injected_clock() -> None:
    lib, ad2 = make(FakeDwfLibrary(polls_until_done=None))
    ad2.open()
    mark = len(lib.calls)
    with pytest.raises(InstrumentTimeout) as err:
        ad2.scope_capture(timeout_s=0.01)
    assert 0.01 <= ad2.clock.now() <= 0.0125
    polls = [c for c in lib.calls[mark:] if c == ("analogIn.status", (True,))]
    assert 10 <= len(polls) <= 12
    assert lib.calls[-1] == ("analogIn.configure", (False, False))  # acquisition stopped
    assert not any(n == "analogIn.statusData" for n, _ in lib.calls[mark:])
    assert err.value.instrument == "Analog Discovery 2" and "Done" in err.value.command


def test_scope_sample_sets_up_the_channel_once(opened) -> None:
    lib, ad2, mark = opened
    lib.device.analogIn.source = lambda ch, n: np.full(n, 0.125 * (ch + 1))
    assert ad2.scope_sample(1) == 0.25
    assert ad2.scope_sample(1) == 0.25
    assert_calls(
        lib.calls[mark:],
        [
            ("analogIn.channelEnableSet", (1, True)),
            ("analogIn.channelRangeSet", (1, 5.0)),
            ("analogIn.configure", (True, False)),
            ("analogIn.status", (False,)),
            ("analogIn.statusSample", (1,)),
            ("analogIn.status", (False,)),
            ("analogIn.statusSample", (1,)),
        ],
    )


# --------------------------------------------------------------------------------------------
# digital I/O and supplies
# --------------------------------------------------------------------------------------------


def test_dio_write_sets_levels_before_enabling_and_caches_the_mask(opened) -> None:
    lib, ad2, mark = opened
    seen = []
    lib.device.digitalIO.on_dio = seen.append
    ad2.dio_write(0b1010, 0b1111)
    ad2.dio_write(0b0101, 0b1111)
    ad2.dio_write(0xFF, 0b0011)
    assert_calls(
        lib.calls[mark:],
        [
            ("digitalIO.outputSet", (0b1010,)),
            ("digitalIO.outputEnableSet", (0b1111,)),
            ("digitalIO.outputSet", (0b0101,)),
            ("digitalIO.outputSet", (0b0011,)),
            ("digitalIO.outputEnableSet", (0b0011,)),
        ],
    )
    assert seen == [0, 0b1010, 0b0101, 0b0011, 0b0011]


def test_dio_read_returns_driven_and_external_levels(opened) -> None:
    lib, ad2, _ = opened
    lib.device.digitalIO.input_levels = 0b1100_0000_0000_0001
    ad2.dio_write(0b0110, 0b0111)
    mark = len(lib.calls)
    # Pin 0 is driven low, so the external level on it is not seen.
    assert ad2.dio_read() == 0b1100_0000_0000_0110
    assert lib.calls[mark:] == [("digitalIO.status", ()), ("digitalIO.inputStatus", ())]


def test_supplies_sequence(opened) -> None:
    lib, ad2, mark = opened
    ad2.supplies(5.0, -3.3)
    assert lib.device.analogIO.supply_output() == (5.0, -3.3)
    ad2.supplies_off()
    assert lib.device.analogIO.supply_output() == (0.0, 0.0)
    assert_calls(
        lib.calls[mark:],
        [
            ("analogIO.channelNodeSet", (0, 0, 1.0)),
            ("analogIO.channelNodeSet", (0, 1, 5.0)),
            ("analogIO.channelNodeSet", (1, 0, 1.0)),
            ("analogIO.channelNodeSet", (1, 1, -3.3)),
            ("analogIO.enableSet", (True,)),
            ("analogIO.enableSet", (False,)),
            ("analogIO.channelNodeSet", (0, 0, 0.0)),
            ("analogIO.channelNodeSet", (1, 0, 0.0)),
        ],
    )


# --------------------------------------------------------------------------------------------
# close and error paths
# --------------------------------------------------------------------------------------------

CLOSE_CALLS = [
    ("analogOut.nodeFunctionSet", (0, C, DwfAnalogOutFunction.DC)),
    ("analogOut.nodeOffsetSet", (0, C, 0.0)),
    ("analogOut.configure", (0, 1)),
    ("analogOut.nodeFunctionSet", (1, C, DwfAnalogOutFunction.DC)),
    ("analogOut.nodeOffsetSet", (1, C, 0.0)),
    ("analogOut.configure", (1, 1)),
    ("analogOut.nodeEnableSet", (0, C, 0)),
    ("analogOut.configure", (0, 0)),
    ("analogOut.nodeEnableSet", (1, C, 0)),
    ("analogOut.configure", (1, 0)),
    ("digitalIO.outputSet", (0,)),
    ("digitalIO.outputEnableSet", (0,)),
    ("analogIO.enableSet", (False,)),
    ("analogIO.channelNodeSet", (0, 0, 0.0)),
    ("analogIO.channelNodeSet", (1, 0, 0.0)),
    ("device.close", ()),
]


def test_exception_in_with_block_leaves_the_bench_safe() -> None:
    lib, ad2 = make()
    with pytest.raises(RuntimeError, match="boom"):
        with ad2:
            ad2.awg_dc(0, 2.5)
            ad2.awg_pulse(1, -3.0, 1e-3, baseline=0.5)
            ad2.supplies(5.0, -5.0)
            ad2.dio_write(0b1000, 0b1111)
            mark = len(lib.calls)
            raise RuntimeError("boom")
    assert_calls(lib.calls[mark:], CLOSE_CALLS)
    dev = lib.device
    for state in dev.analogOut.channel_state:
        assert (state.offset, state.enabled, state.running, state.idle_level()) == (
            0,
            False,
            False,
            0,
        )
    assert (dev.digitalIO.output, dev.digitalIO.enable_mask) == (0, 0)
    assert dev.analogIO.supply_output() == (0.0, 0.0) and not dev.analogIO.enabled
    assert dev.closed and not ad2.is_open


def test_close_is_idempotent(opened) -> None:
    lib, ad2, mark = opened
    ad2.close()
    ad2.close()
    assert_calls(lib.calls[mark:], CLOSE_CALLS)


def test_close_on_a_dead_device_tries_every_step_and_never_raises(opened, caplog) -> None:
    lib, ad2, mark = opened
    lib.fail_after(1)  # the device is gone
    with caplog.at_level(logging.WARNING, logger="instruments.analog_discovery2"):
        ad2.close()
    assert [n for n, _ in lib.calls[mark:]] == [
        "analogOut.nodeFunctionSet",
        "analogOut.nodeFunctionSet",
        "analogOut.nodeEnableSet",
        "analogOut.nodeEnableSet",
        "digitalIO.outputSet",
        "analogIO.enableSet",
        "device.close",
    ]
    assert not ad2.is_open
    assert len(caplog.records) == 7 and "AWG 1 to 0 V" in caplog.records[0].getMessage()
    n = len(lib.calls)
    ad2.close()
    assert len(lib.calls) == n


def test_connection_lost_mid_operation_then_close(opened) -> None:
    lib, ad2, mark = opened
    lib.fail_after(3)
    with pytest.raises(ConnectionLost) as err:
        ad2.awg_dc(0, 1.0)
    assert err.value.command == "analogOut.runSet(0, 0)"
    assert err.value.code == DwfErrorCode.UnknownError.value
    assert "Analog Discovery 2: 'analogOut.runSet(0, 0)' -> " in str(err.value)
    ad2.close()  # still safe
    assert not ad2.is_open and lib.calls[-1] == ("device.close", ())


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (DwfErrorCode.InvalidParameter2, InstrumentError),
        (DwfErrorCode.ApiLockTimeout, InstrumentTimeout),
        (DwfErrorCode.UnknownError, ConnectionLost),
    ],
)
def test_pydwf_errors_are_translated(opened, code, cls) -> None:
    lib, ad2, _ = opened
    lib.fail_after(1, DwfLibraryError(code, "injected"), sticky=False)
    with pytest.raises(InstrumentError) as err:
        ad2.dio_write(1, 1)
    assert type(err.value) is cls and err.value.code == code.value
    assert err.value.command == "digitalIO.outputSet(1)"
    ad2.dio_write(1, 1)  # the mask cache was dropped: the enable is written again
    assert lib.calls[-1] == ("digitalIO.outputEnableSet", (1,))


def test_awg_wait_times_out_when_the_output_never_finishes(opened) -> None:
    lib, ad2, _ = opened
    ad2.awg_dc(0, 1.0)  # continuous: status stays Triggered
    assert lib.device.analogOut.status(0) == pydwf.DwfState.Triggered
    with pytest.raises(InstrumentTimeout):
        ad2.awg_wait(0, timeout_s=0.005)
    assert ad2.clock.now() >= 0.005


def test_pulse_offset_plus_amplitude_beyond_5v_is_refused_before_the_bus() -> None:
    """Item 7: a pulse is the carrier node's offset (baseline) plus amplitude (step), and the
    AWG's ±5 V holds both together: 3 V -> -1.5 V needs offset 3 + amplitude 4.5 = 7.5 V.
    Refused with no pydwf call; the fake shows what the bus would have got (a wrong level)."""
    lib, wide = make(limits=SafetyLimits(max_voltage=5.0, max_compliance=1e-3))
    wide.open()
    mark = len(lib.calls)
    with pytest.raises(SafetyLimitError, match=r"\|3\| \+ \|-4.5\| = 7.5 V"):
        wide.awg_pulse(0, -1.5, 1e-3, baseline=3.0)
    assert len(lib.calls) == mark
    # what the unchecked calls would have played: the amplitude cut to 5 - 3 = 2 V
    out = lib.device.analogOut
    for name, args in _pulse_calls(0, 3.0, -np.ones(16), 1e3, 4.5, 1e-3):
        getattr(out, name.split(".")[1])(*args)
    state = out.channel_state[0]
    assert state.out_of_range and state.waveform(np.array([0.5e-3]))[0] == pytest.approx(1.0)
    # baseline and pulse of the same sign fit whatever their sizes (|b| + |a - b| = |a|)
    mark = len(lib.calls)
    wide.awg_pulse(1, 5.0, 1e-3, baseline=2.5)
    assert_calls(lib.calls[mark:], _pulse_calls(1, 2.5, np.ones(16), 1e3, 2.5, 1e-3))
    assert not out.channel_state[1].out_of_range
    assert out.channel_state[1].waveform(np.array([0.5e-3]))[0] == pytest.approx(5.0)


@settings(max_examples=60, deadline=None)
@given(level=st.floats(-4.0, 4.0), base=st.floats(-4.0, 4.0))
def test_every_pulse_the_driver_sends_plays_the_level_asked(level: float, base: float) -> None:
    """Property: the driver either refuses a pulse before the bus or the fake plays exactly
    ``level`` during it and ``base`` after it (never a cut amplitude)."""
    lib, ad2 = make()
    ad2.open()
    mark = len(lib.calls)
    try:
        ad2.awg_pulse(0, level, 1e-3, baseline=base)
    except SafetyLimitError:
        assert abs(base) + abs(level - base) > 5.0 and len(lib.calls) == mark
        return
    state = lib.device.analogOut.channel_state[0]
    assert not state.out_of_range
    assert state.waveform(np.array([0.5e-3, 1.5e-3])) == pytest.approx([level, base], abs=1e-9)


# --------------------------------------------------------------------------------------------
# pattern generator (DigitalOut)
# --------------------------------------------------------------------------------------------


def test_dio_pattern_plays_once_and_skips_unchanged_settings(opened) -> None:
    lib, ad2, mark = opened
    ad2.dio_pattern({4: "0110", 5: "0011"}, 25e6)
    assert lib.calls[mark:] == [
        ("digitalOut.internalClockInfo", ()),
        ("digitalOut.dataInfo", (4,)),
        ("digitalOut.enableSet", (4, True)),
        ("digitalOut.typeSet", (4, DwfDigitalOutType.Custom)),
        ("digitalOut.idleSet", (4, DwfDigitalOutIdle.Low)),
        ("digitalOut.dividerSet", (4, 4)),
        ("digitalOut.dataSet", (4, "0110", False)),
        ("digitalOut.enableSet", (5, True)),
        ("digitalOut.typeSet", (5, DwfDigitalOutType.Custom)),
        ("digitalOut.idleSet", (5, DwfDigitalOutIdle.Low)),
        ("digitalOut.dividerSet", (5, 4)),
        ("digitalOut.dataSet", (5, "0011", False)),
        ("digitalOut.runSet", (4 * 4 / 100e6,)),
        ("digitalOut.repeatSet", (1,)),
        ("digitalOut.configure", (True,)),
        ("digitalOut.status", ()),
    ]
    # the pins' levels sample by sample (bit 4, bit 5), then idle low
    assert lib.dio_stream[-4:] == [0b010000, 0b110000, 0b100000, 0]
    mark = len(lib.calls)
    ad2.dio_pattern({4: "0110", 5: "0111"}, 25e6)
    assert [n for n, _ in lib.calls[mark:]] == [
        "digitalOut.dataSet",
        "digitalOut.configure",
        "digitalOut.status",
    ]


@pytest.mark.parametrize(
    ("patterns", "rate", "error"),
    [
        ({}, 1e6, ValueError),
        ({0: "01", 1: "011"}, 1e6, ValueError),
        ({0: "0a"}, 1e6, ValueError),
        ({16: "01"}, 1e6, ValueError),
        ({True: "01"}, 1e6, TypeError),
        ({0: "01"}, 0.0, ValueError),
        ({0: "01"}, 200e6, ValueError),
    ],
)
def test_dio_pattern_refuses_bad_requests_before_any_call(opened, patterns, rate, error) -> None:
    lib, ad2, mark = opened
    with pytest.raises(error):
        ad2.dio_pattern(patterns, rate)
    assert lib.calls[mark:] == []


def test_dio_pattern_longer_than_the_buffer_is_refused(opened) -> None:
    lib, ad2, _ = opened
    with pytest.raises(ValueError, match="1024-bit buffer"):
        ad2.dio_pattern({0: "01" * 513}, 1e6)
    assert not any(n == "digitalOut.configure" for n, _ in lib.calls)


def test_skip_unchanged_awg_settings_and_dio_words(opened) -> None:
    """With skip_unchanged, AnalogOut settings and DIO words equal to the last ones written are
    not sent again (the device holds them); configure and status always are."""
    lib, ad2, mark = opened
    ad2.skip_unchanged = True
    ad2.awg_pulse(0, 2.0, 1e-5, baseline=0.5)
    mark = len(lib.calls)
    ad2.awg_pulse(0, 2.5, 1e-5, baseline=0.5)  # only the amplitude changed
    assert lib.calls[mark:] == [
        ("analogOut.configure", (0, 0)),
        ("analogOut.nodeAmplitudeSet", (0, C, 2.0)),
        ("analogOut.configure", (0, 1)),
    ]
    ad2.dio_write(0b1000, 0b1111)
    mark = len(lib.calls)
    ad2.dio_write(0b1000, 0b1111)
    assert lib.calls[mark:] == []
    lib.fail_after(1, sticky=False)  # a failed call: nothing is assumed any more
    with pytest.raises(ConnectionLost):
        ad2.awg_dc(1, 0.1)
    mark = len(lib.calls)
    ad2.dio_write(0b1000, 0b1111)
    ad2.awg_pulse(0, 2.5, 1e-5, baseline=0.5)
    names = [n for n, _ in lib.calls[mark:]]
    assert names[0] == "digitalIO.outputSet" and len(names) == 1 + 12  # the full pulse again


def test_skip_unchanged_is_off_by_default(opened) -> None:
    lib, ad2, _ = opened
    ad2.awg_dc(0, 1.0)
    mark = len(lib.calls)
    ad2.awg_dc(0, 1.0)
    assert len(lib.calls) - mark == 6


def test_held_pulse_call_sequence_with_skip_unchanged(opened) -> None:
    """A held pulse after another: only the changed levels, the stopped-apply and the play; the
    channel known stopped (a one-shot seen Done), so no stop first."""
    lib, ad2, _ = opened
    ad2.skip_unchanged = True
    ad2.awg_pulse(0, 2.0, 1e-5, baseline=0.5, hold=True)
    ad2.awg_start(0)
    ad2.awg_wait(0)
    ad2.awg_idle_zero(0)
    mark = len(lib.calls)
    ad2.awg_pulse(0, 2.5, 1e-5, baseline=0.5, hold=True)
    ad2.awg_start(0)
    ad2.awg_wait(0)
    ad2.awg_idle_zero(0)
    assert lib.calls[mark:] == [
        ("analogOut.nodeOffsetSet", (0, C, 0.5)),
        ("analogOut.nodeAmplitudeSet", (0, C, 2.0)),
        ("analogOut.configure", (0, 0)),
        ("analogOut.configure", (0, 1)),
        ("analogOut.status", (0,)),
        ("analogOut.nodeOffsetSet", (0, C, 0.0)),
        ("analogOut.configure", (0, 0)),
    ]


def test_skip_unchanged_new_width_is_one_call(opened) -> None:
    """The pulse buffer is constant, so under skip_unchanged its repetition frequency is fixed:
    a new width only resends runSet (the legacy path also resends the frequency)."""
    lib, ad2, _ = opened
    ad2.skip_unchanged = True
    ad2.awg_pulse(0, 2.0, 1e-5, baseline=0.5, hold=True)
    mark = len(lib.calls)
    ad2.awg_pulse(0, 2.0, 3e-5, baseline=0.5, hold=True)
    assert lib.calls[mark:] == [
        ("analogOut.runSet", (0, 3e-5)),
        ("analogOut.configure", (0, 0)),
    ]


def test_skip_unchanged_never_applies_to_the_safety_paths(opened) -> None:
    """awg_off, dio_release and close assume nothing: every call is sent again."""
    lib, ad2, _ = opened
    ad2.skip_unchanged = True
    ad2.awg_off(0)
    mark = len(lib.calls)
    ad2.awg_off(0)
    assert len(lib.calls) - mark == 5
    ad2.dio_release()
    mark = len(lib.calls)
    ad2.dio_release()
    assert [n for n, _ in lib.calls[mark:]] == ["digitalIO.outputSet", "digitalIO.outputEnableSet"]
    mark = len(lib.calls)
    ad2.close()
    names = [n for n, _ in lib.calls[mark:]]
    assert names.count("analogOut.nodeOffsetSet") == 2 and "digitalIO.outputSet" in names
