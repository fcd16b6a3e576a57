"""A fake pydwf library: the Analog Discovery 2 without the WaveForms runtime or the hardware.

The classes mirror pydwf 1.1.x: :class:`FakeDwfLibrary` (``deviceEnum``, ``deviceControl``),
:class:`FakeDwfDevice` (``analogOut``, ``analogIn``, ``analogIO``, ``digitalIO``), and the four
instrument sub-APIs. Every public method has exactly pydwf's name and signature (parameter
names, order, defaults), so code written against pydwf runs unchanged, including
``pydwf.utilities.openDwfDevice(FakeDwfLibrary(), serial_number_filter=...)``.

What the fake adds for tests and simulators:

* ``calls``: one shared log ``[(name, args), ...]`` of every call made on the library, its
  enumeration/control APIs and every device it opened, e.g.
  ``("analogOut.nodeOffsetSet", (0, DwfAnalogOutNode.Carrier, 2.0))``. ``args`` holds every
  parameter value in signature order with defaults filled in (arrays are copied). A call that
  fails (fault injection, closed device, bad argument) is recorded before it raises.
* :meth:`FakeDwfLibrary.fail_after`: the n-th later call raises a pydwf ``PyDwfError``
  (by default a ``DwfLibraryError`` "device communication failure"), and with ``sticky`` every
  call after it too — a dead or unplugged device.
* AnalogOut keeps the per-channel state (:class:`AwgChannelState`, ``channel_state[ch]``) and
  calls ``on_output(ch, state)`` whenever ``configure(ch, start)`` starts (1) or stops (0) a
  channel; a node whose |offset| + amplitude exceeds the ±5 V output range plays with its
  amplitude cut to what is left (5 V − |offset|: the range holds both together; how the runtime
  reacts exactly, clamp or clip, is unverified — a twin assumption, chosen so that such a
  waveform silently applies a wrong level, which a test can catch); AnalogIn finishes an acquisition after ``polls_until_done`` ``status(True)`` polls
  once triggered (``None``: never) and returns ``source(channel, n)`` from ``statusData``;
  DigitalIO keeps ``output`` and ``enable_mask`` and calls ``on_dio(pins)`` with the driven pin
  levels on every ``outputSet`` and ``outputEnableSet``.
* :class:`ShiftRegisterMatrix`: an independent model of the bench switch matrix's shift-register
  chain, fed edge by edge from the DIO pins (plug ``matrix.on_word`` into ``on_dio``).

Only numpy and pydwf's enums/exceptions are imported (they load without the runtime).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydwf import (
    DwfAcquisitionMode,
    DwfAnalogOutFunction,
    DwfAnalogOutIdle,
    DwfAnalogOutNode,
    DwfDeviceID,
    DwfDigitalOutIdle,
    DwfDigitalOutType,
    DwfEnumConfigInfo,
    DwfEnumFilter,
    DwfErrorCode,
    DwfLibraryError,
    DwfState,
    DwfTriggerSource,
    PyDwfError,
)
from pydwf.core.auxiliary.dwf_function_signatures import dwf_version as _DWF_VERSION

__all__ = [
    "AwgChannelState",
    "FakeAnalogIO",
    "FakeAnalogIn",
    "FakeAnalogOut",
    "FakeDeviceControl",
    "FakeDeviceEnumeration",
    "FakeDeviceInfo",
    "FakeDigitalIO",
    "FakeDigitalOut",
    "FakeDwfDevice",
    "FakeDwfLibrary",
    "ShiftRegisterMatrix",
    "decode_words",
]

Call = tuple[str, tuple]
Source = Callable[[int, int], np.ndarray]

# Analog Discovery 2 hardware (default configuration 1): see INSTRUMENTS.md.
AD2_SCOPE_CHANNELS = 2
AD2_AWG_CHANNELS = 2
AD2_SCOPE_BUFFER = (16, 8192)  # AnalogIn.bufferSizeInfo() -> (min, max) samples
AD2_AWG_SAMPLES = (1, 4096)  # AnalogOut.nodeDataInfo() -> (min, max) custom samples
AD2_AWG_MAX_V = 5.0
AD2_DIO_PINS = 16
AD2_DOUT_CLOCK_HZ = 100e6  # DigitalOut.internalClockInfo(): the pattern generator's 100 MHz
AD2_DOUT_BITS = 1024  # DigitalOut.dataInfo(ch): custom bits per channel (default config)
AD2_DOUT_DIVIDER = (1, 2**30)  # DigitalOut.dividerInfo(ch)
AD2_SUPPLY_MAX_V = 5.0


def _recorded(fn: Callable) -> Callable:
    """Record every call of a sub-API method on the owning library's ``calls`` log.

    ``functools.wraps`` keeps ``__wrapped__``, so ``inspect.signature`` shows the real signature.
    """
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = tuple(
            np.array(v, copy=True) if isinstance(v, np.ndarray) else v
            for v in list(bound.arguments.values())[1:]
        )
        self._library._record(f"{self._prefix}.{fn.__name__}", values)
        self._check_usable()
        return fn(self, *args, **kwargs)

    return wrapper


def _invalid(message: str, code: DwfErrorCode = DwfErrorCode.InvalidParameter0) -> DwfLibraryError:
    return DwfLibraryError(code, message)


class _SubAPI:
    """Common plumbing: the owning library (call log, fault injection) and a name prefix."""

    _prefix = "?"

    def __init__(self, library: FakeDwfLibrary, device: FakeDwfDevice | None = None) -> None:
        self._library = library
        self._device = device

    def _check_usable(self) -> None:
        if self._device is not None and self._device.closed:
            raise _invalid("Invalid device handle (the device was closed).")


class _StaticIO(_SubAPI):
    """AnalogIO / DigitalIO plumbing: ``reset`` restores the power-on registers (then
    :meth:`_after_reset`); ``configure`` and ``status`` have nothing to do for static I/O."""

    def __init__(self, library: FakeDwfLibrary, device: FakeDwfDevice) -> None:
        super().__init__(library, device)
        self._reset_state()

    def _reset_state(self) -> None:
        raise NotImplementedError

    def _after_reset(self) -> None:
        return None

    @_recorded
    def reset(self) -> None:
        self._reset_state()
        self._after_reset()

    @_recorded
    def configure(self) -> None:
        return None

    @_recorded
    def status(self) -> None:
        return None


# --------------------------------------------------------------------------------------------
# Library, enumeration, control
# --------------------------------------------------------------------------------------------


@dataclass
class FakeDeviceInfo:
    """One enumerable device: 12-character serial, DwfDeviceID value, hardware version."""

    serial: str = "210321ABCDEF"
    device_id: int = DwfDeviceID.Discovery2.value
    version: int = 3
    name: str = "Analog Discovery 2"
    user_name: str = "Discovery2"
    is_opened: bool = False


class FakeDeviceEnumeration(_SubAPI):
    """Mirror of ``pydwf.DeviceEnumeration`` over ``FakeDwfLibrary.devices``."""

    _prefix = "deviceEnum"

    @property
    def dwf(self) -> FakeDwfLibrary:
        return self._library

    def _info(self, device_index: int) -> FakeDeviceInfo:
        devices = self._library.devices
        if not 0 <= device_index < len(devices):
            raise _invalid(f"Device index {device_index} out of range.")
        return devices[device_index]

    @_recorded
    def enumerateDevices(self, enum_filter: DwfEnumFilter | None = None) -> int:
        return len(self._library.devices)

    @_recorded
    def serialNumber(self, device_index: int) -> str:
        serial = self._info(device_index).serial
        if len(serial) != 12:
            raise PyDwfError(f"Serial number isn't 12 characters: {serial!r}")
        return serial

    @_recorded
    def deviceType(self, device_index: int) -> tuple[int, int]:
        info = self._info(device_index)
        return (info.device_id, info.version)

    @_recorded
    def deviceName(self, device_index: int) -> str:
        return self._info(device_index).name

    @_recorded
    def userName(self, device_index: int) -> str:
        return self._info(device_index).user_name

    @_recorded
    def deviceIsOpened(self, device_index: int) -> bool:
        return self._info(device_index).is_opened

    @_recorded
    def enumerateConfigurations(self, device_index: int) -> int:
        self._info(device_index)
        return 1

    @_recorded
    def configInfo(self, config_index: int, info: DwfEnumConfigInfo) -> int | str:
        if config_index != 0:
            raise _invalid(f"Configuration index {config_index} out of range.")
        table: dict[DwfEnumConfigInfo, int | str] = {
            DwfEnumConfigInfo.TooltipText: "Fake Analog Discovery 2 configuration",
            DwfEnumConfigInfo.OtherInfoText: "",
            DwfEnumConfigInfo.AnalogInChannelCount: AD2_SCOPE_CHANNELS,
            DwfEnumConfigInfo.AnalogOutChannelCount: AD2_AWG_CHANNELS,
            DwfEnumConfigInfo.AnalogIOChannelCount: 2,
            DwfEnumConfigInfo.DigitalInChannelCount: AD2_DIO_PINS,
            DwfEnumConfigInfo.DigitalOutChannelCount: AD2_DIO_PINS,
            DwfEnumConfigInfo.DigitalIOChannelCount: AD2_DIO_PINS,
            DwfEnumConfigInfo.AnalogInBufferSize: AD2_SCOPE_BUFFER[1],
            DwfEnumConfigInfo.AnalogOutBufferSize: AD2_AWG_SAMPLES[1],
            DwfEnumConfigInfo.DigitalInBufferSize: 4096,
            DwfEnumConfigInfo.DigitalOutBufferSize: 1024,
        }
        return table[info]


class FakeDeviceControl(_SubAPI):
    """Mirror of ``pydwf.DeviceControl``: ``open`` returns a :class:`FakeDwfDevice`."""

    _prefix = "deviceControl"

    @property
    def dwf(self) -> FakeDwfLibrary:
        return self._library

    @_recorded
    def open(self, device_index: int, config_index: int | None = None) -> FakeDwfDevice:
        devices = self._library.devices
        if not 0 <= device_index < len(devices):
            raise _invalid(f"Device index {device_index} out of range.")
        if config_index not in (None, 0):
            raise _invalid(f"Configuration index {config_index} out of range.")
        info = devices[device_index]
        if info.is_opened:
            raise _invalid("Device already opened.", DwfErrorCode.AlreadyOpened)
        info.is_opened = True
        device = FakeDwfDevice(self._library, info)
        self._library.opened.append(device)
        return device

    @_recorded
    def closeAll(self) -> None:
        for device in self._library.opened:
            device._mark_closed()


class FakeDwfLibrary:
    """Stand-in for ``pydwf.DwfLibrary()``.

    :param devices: the enumerable devices (default: one Analog Discovery 2, serial
        ``210321ABCDEF``).
    :param polls_until_done: AnalogIn ``status(True)`` polls after the trigger until
        ``DwfState.Done`` (≥ 1; ``None``: the acquisition never finishes).
    :param source: ``source(channel, n) -> ndarray`` of n scope samples in V (default zeros).
    :param on_output: ``on_output(channel, AwgChannelState)`` when an AWG channel starts/stops.
    :param on_dio: ``on_dio(pins)`` with the driven DIO pin levels (bit i = pin i) on each write.

    The hooks and settings are copied into every device opened afterwards; change them on
    ``library.device`` (the last opened device) to affect an open session.
    """

    def __init__(
        self,
        devices: Sequence[FakeDeviceInfo] | None = None,
        *,
        polls_until_done: int | None = 1,
        source: Source | None = None,
        on_output: Callable[[int, AwgChannelState], None] | None = None,
        on_dio: Callable[[int], None] | None = None,
    ) -> None:
        self.devices: list[FakeDeviceInfo] = (
            [FakeDeviceInfo()] if devices is None else list(devices)
        )
        self.polls_until_done = polls_until_done
        self.source = source
        self.on_output = on_output
        self.on_dio = on_dio
        self.calls: list[Call] = []
        #: every set of DIO pin levels the device drove, in order (DigitalIO writes and each
        #: change of a pattern played by DigitalOut): the stream a property test checks
        self.dio_stream: list[int] = []
        self.opened: list[FakeDwfDevice] = []
        self._countdown: int | None = None
        self._fault: BaseException | type[BaseException] | None = None
        self._sticky = True
        self._dead = False
        self.deviceEnum = FakeDeviceEnumeration(self)
        self.deviceControl = FakeDeviceControl(self)

    # -- pydwf.DwfLibrary mirror ----------------------------------------------------------------
    def getVersion(self) -> str:
        self._record("getVersion", ())
        return _DWF_VERSION

    # -- fake-only ------------------------------------------------------------------------------
    @property
    def device(self) -> FakeDwfDevice:
        """The most recently opened device (``LookupError`` if none was opened)."""
        if not self.opened:
            raise LookupError("no device has been opened on this FakeDwfLibrary")
        return self.opened[-1]

    def fail_after(
        self,
        n_calls: int,
        exc: BaseException | type[BaseException] | None = None,
        *,
        sticky: bool = True,
    ) -> None:
        """Make the ``n_calls``-th later call (1 = the next one) raise ``exc``.

        ``exc`` defaults to ``DwfLibraryError(DwfErrorCode.UnknownError, "Device communication
        failure")``. With ``sticky`` (default) every call after that one raises too (a dead
        device); otherwise only that one call fails.
        """
        if n_calls < 1:
            raise ValueError(f"n_calls must be >= 1, got {n_calls}")
        self._countdown = int(n_calls)
        self._fault = exc
        self._sticky = sticky
        self._dead = False

    def _record(self, name: str, args: tuple) -> None:
        self.calls.append((name, args))
        if self._dead:
            raise self._make_fault()
        if self._countdown is not None:
            self._countdown -= 1
            if self._countdown == 0:
                self._countdown = None
                self._dead = self._sticky
                raise self._make_fault()

    def _make_fault(self) -> BaseException:
        fault = self._fault
        if fault is None:
            return DwfLibraryError(DwfErrorCode.UnknownError, "Device communication failure")
        if isinstance(fault, type):
            return fault("injected fault")
        return fault


# --------------------------------------------------------------------------------------------
# Device
# --------------------------------------------------------------------------------------------


class FakeDwfDevice:
    """Mirror of ``pydwf.DwfDevice`` with the four instruments the bench uses."""

    def __init__(self, library: FakeDwfLibrary, info: FakeDeviceInfo) -> None:
        self._library = library
        self.info = info
        self.closed = False
        self.analogOut = FakeAnalogOut(library, self)
        self.analogIn = FakeAnalogIn(library, self)
        self.analogIO = FakeAnalogIO(library, self)
        self.digitalIO = FakeDigitalIO(library, self)
        self.digitalOut = FakeDigitalOut(library, self)

    def __enter__(self) -> FakeDwfDevice:
        return self

    def __exit__(self, *dummy) -> None:
        self.close()

    @property
    def dwf(self) -> FakeDwfLibrary:
        return self._library

    def close(self) -> None:
        """Close the device; later calls on its instruments raise ``DwfLibraryError``."""
        self._library._record("device.close", ())
        if self.closed:
            raise _invalid("Invalid device handle (the device was closed).")
        self._mark_closed()

    def reset(self) -> None:
        self._library._record("device.reset", ())
        if self.closed:
            raise _invalid("Invalid device handle (the device was closed).")
        for ch in range(AD2_AWG_CHANNELS):
            self.analogOut.channel_state[ch] = AwgChannelState()
        self.analogIn._reset_state()
        self.analogIO._reset_state()
        self.digitalIO._reset_state()
        self.digitalOut._reset_state()

    def _mark_closed(self) -> None:
        self.closed = True
        self.info.is_opened = False

    def _pin_levels(self, pattern: dict[int, int] | None = None) -> int:
        """Driven DIO levels (bit i = pin i): pins whose DigitalOut channel is enabled follow
        the pattern generator (``pattern`` while it plays, else the channel's idle level), the
        others DigitalIO's ``output & enable_mask``; undriven pins read 0 (pull-downs)."""
        dout = self.digitalOut
        owned = dout.owned_mask
        word = self.digitalIO.pins & ~owned
        for ch in range(AD2_DIO_PINS):
            if owned >> ch & 1:
                level = pattern[ch] if pattern is not None and ch in pattern else dout.idle_bit(ch)
                word |= level << ch
        return word

    def _emit_dio(self, word: int) -> None:
        self._library.dio_stream.append(int(word))
        on_dio = self.digitalIO.on_dio
        if on_dio is not None:
            on_dio(int(word))


# --------------------------------------------------------------------------------------------
# AnalogOut (AWG)
# --------------------------------------------------------------------------------------------


@dataclass
class AwgChannelState:
    """The carrier-node settings of one AWG channel (volts, hertz, seconds)."""

    enabled: bool = False
    function: DwfAnalogOutFunction = DwfAnalogOutFunction.DC
    offset: float = 0.0
    amplitude: float = 0.0
    frequency: float = 1000.0
    data: np.ndarray = field(default_factory=lambda: np.zeros(0))
    run: float = 0.0
    wait: float = 0.0
    repeat: int = 0
    idle: DwfAnalogOutIdle = DwfAnalogOutIdle.Offset
    trigger_source: DwfTriggerSource = DwfTriggerSource.None_
    running: bool = False

    def _shape(self, phase: np.ndarray) -> np.ndarray:
        """Normalised waveform (−1…1) at phase in [0, 1)."""
        if self.function == DwfAnalogOutFunction.DC:
            return np.zeros_like(phase)
        if self.function in (DwfAnalogOutFunction.Custom, DwfAnalogOutFunction.Play):
            if self.data.size == 0:
                return np.zeros_like(phase)
            idx = np.minimum((phase * self.data.size).astype(int), self.data.size - 1)
            return self.data[idx]
        if self.function == DwfAnalogOutFunction.Sine:
            return np.sin(2 * np.pi * phase)
        if self.function == DwfAnalogOutFunction.Square:
            return np.where(phase < 0.5, 1.0, -1.0)
        raise NotImplementedError(f"fake AWG has no model for {self.function!r}")

    def idle_level(self) -> float:
        """Output while not running, V (0 when the channel is disabled)."""
        if not self.enabled or self.idle == DwfAnalogOutIdle.Disable:
            return 0.0
        if self.idle == DwfAnalogOutIdle.Initial:
            return float(self.offset + self.applied_amplitude * self._shape(np.zeros(1))[0])
        return float(self.offset)

    @property
    def out_of_range(self) -> bool:
        """True when |offset| + amplitude exceeds the AWG's ±5 V (the amplitude is cut)."""
        shaped = self.function != DwfAnalogOutFunction.DC
        return shaped and abs(self.offset) + self.amplitude > AD2_AWG_MAX_V * (1 + 1e-12)

    @property
    def applied_amplitude(self) -> float:
        """The amplitude the output stage applies: cut to 5 V − |offset| when out of range."""
        if self.out_of_range:
            return max(AD2_AWG_MAX_V - abs(self.offset), 0.0)
        return self.amplitude

    def waveform(self, t: np.ndarray) -> np.ndarray:
        """Output voltage (V) at times ``t`` (s) after the channel was started.

        Models one run: ``wait`` at the idle level, then ``run`` seconds of waveform (forever if
        ``run`` is 0), then the idle level (``repeat`` > 1 is not modelled). A disabled channel
        outputs 0 V; a stopped one the idle level.
        """
        t = np.asarray(t, dtype=float)
        idle = np.full(t.shape, self.idle_level())
        if not (self.enabled and self.running):
            return idle
        tau = t - self.wait
        active = tau >= 0 if self.run == 0 else (tau >= 0) & (tau < self.run)
        phase = np.mod(np.maximum(tau, 0.0) * self.frequency, 1.0)
        level = self.offset + self.applied_amplitude * self._shape(phase)
        return np.where(active, level, idle)


class FakeAnalogOut(_SubAPI):
    """Mirror of ``pydwf.AnalogOut`` (carrier node only)."""

    _prefix = "analogOut"

    def __init__(self, library: FakeDwfLibrary, device: FakeDwfDevice) -> None:
        super().__init__(library, device)
        self.channel_state: list[AwgChannelState] = [
            AwgChannelState() for _ in range(AD2_AWG_CHANNELS)
        ]
        self.on_output: Callable[[int, AwgChannelState], None] | None = library.on_output

    def _channels(self, channel_index: int, allow_all: bool = False) -> list[int]:
        if allow_all and channel_index == -1:
            return list(range(AD2_AWG_CHANNELS))
        if not 0 <= channel_index < AD2_AWG_CHANNELS:
            raise _invalid(f"AnalogOut channel {channel_index} out of range.")
        return [channel_index]

    @staticmethod
    def _carrier(node: DwfAnalogOutNode) -> None:
        if node != DwfAnalogOutNode.Carrier:
            raise _invalid(f"The fake AnalogOut models the carrier node only, not {node!r}.")

    @staticmethod
    def _volts(value: float, what: str) -> float:
        v = float(value)
        if not (np.isfinite(v) and abs(v) <= AD2_AWG_MAX_V):
            raise _invalid(f"AnalogOut {what} {v!r} V outside ±{AD2_AWG_MAX_V} V.")
        return v

    @_recorded
    def count(self) -> int:
        return AD2_AWG_CHANNELS

    @_recorded
    def reset(self, channel_index: int) -> None:
        for ch in self._channels(channel_index, allow_all=True):
            self.channel_state[ch] = AwgChannelState()

    @_recorded
    def nodeEnableSet(self, channel_index: int, node: DwfAnalogOutNode, mode: int) -> None:
        self._carrier(node)
        for ch in self._channels(channel_index, allow_all=True):
            self.channel_state[ch].enabled = bool(mode)

    @_recorded
    def nodeEnableGet(self, channel_index: int, node: DwfAnalogOutNode) -> int:
        self._carrier(node)
        return int(self.channel_state[self._channels(channel_index)[0]].enabled)

    @_recorded
    def nodeFunctionSet(
        self, channel_index: int, node: DwfAnalogOutNode, func: DwfAnalogOutFunction
    ) -> None:
        self._carrier(node)
        self.channel_state[self._channels(channel_index)[0]].function = DwfAnalogOutFunction(func)

    @_recorded
    def nodeAmplitudeSet(
        self, channel_index: int, node: DwfAnalogOutNode, amplitude: float
    ) -> None:
        self._carrier(node)
        state = self.channel_state[self._channels(channel_index)[0]]
        state.amplitude = self._volts(amplitude, "amplitude")

    @_recorded
    def nodeOffsetSet(self, channel_index: int, node: DwfAnalogOutNode, offset: float) -> None:
        self._carrier(node)
        self.channel_state[self._channels(channel_index)[0]].offset = self._volts(offset, "offset")

    @_recorded
    def nodeFrequencySet(
        self, channel_index: int, node: DwfAnalogOutNode, frequency: float
    ) -> None:
        self._carrier(node)
        f = float(frequency)
        if not (np.isfinite(f) and f >= 0):
            raise _invalid(f"AnalogOut frequency {f!r} Hz invalid.")
        self.channel_state[self._channels(channel_index)[0]].frequency = f

    @_recorded
    def nodeDataInfo(self, channel_index: int, node: DwfAnalogOutNode) -> tuple[float, float]:
        self._carrier(node)
        self._channels(channel_index)
        return (float(AD2_AWG_SAMPLES[0]), float(AD2_AWG_SAMPLES[1]))

    @_recorded
    def nodeDataSet(self, channel_index: int, node: DwfAnalogOutNode, data: np.ndarray) -> None:
        self._carrier(node)
        arr = np.asarray(data, dtype=np.float64).ravel()
        if not AD2_AWG_SAMPLES[0] <= arr.size <= AD2_AWG_SAMPLES[1]:
            raise _invalid(f"AnalogOut custom data of {arr.size} samples out of range.")
        if not np.all(np.isfinite(arr)) or np.max(np.abs(arr)) > 1.0 + 1e-12:
            raise _invalid("AnalogOut custom data must be finite and within ±1.")
        self.channel_state[self._channels(channel_index)[0]].data = arr.copy()

    @_recorded
    def runSet(self, channel_index: int, run_duration: float) -> None:
        self.channel_state[self._channels(channel_index)[0]].run = float(run_duration)

    @_recorded
    def waitSet(self, channel_index: int, wait_duration: float) -> None:
        self.channel_state[self._channels(channel_index)[0]].wait = float(wait_duration)

    @_recorded
    def repeatSet(self, channel_index: int, repeat: int) -> None:
        self.channel_state[self._channels(channel_index)[0]].repeat = int(repeat)

    @_recorded
    def idleSet(self, channel_index: int, idle: DwfAnalogOutIdle) -> None:
        self.channel_state[self._channels(channel_index)[0]].idle = DwfAnalogOutIdle(idle)

    @_recorded
    def triggerSourceSet(self, channel_index: int, trigger_source: DwfTriggerSource) -> None:
        state = self.channel_state[self._channels(channel_index)[0]]
        state.trigger_source = DwfTriggerSource(trigger_source)

    @_recorded
    def configure(self, channel_index: int, start: int) -> None:
        if start not in (0, 1, 3):
            raise _invalid(
                f"AnalogOut configure start={start!r} invalid.", DwfErrorCode.InvalidParameter2
            )
        for ch in self._channels(channel_index, allow_all=True):
            if start == 3:
                continue
            state = self.channel_state[ch]
            state.running = bool(start)
            if self.on_output is not None:
                self.on_output(ch, dataclasses.replace(state, data=state.data.copy()))
            if start == 1 and self._device is not None:
                self._device.analogIn._awg_started(ch)

    @_recorded
    def status(self, channel_index: int) -> DwfState:
        state = self.channel_state[self._channels(channel_index)[0]]
        if not state.running:
            return DwfState.Ready
        if state.run > 0 and state.repeat >= 1:
            return DwfState.Done  # a finite run completes instantly in the fake
        return DwfState.Triggered


# --------------------------------------------------------------------------------------------
# AnalogIn (scope)
# --------------------------------------------------------------------------------------------


class FakeAnalogIn(_SubAPI):
    """Mirror of ``pydwf.AnalogIn`` (single acquisitions).

    An acquisition starts with ``configure(…, start=True)``; it triggers at once for
    ``DwfTriggerSource.None_`` (and any source the fake does not model), or when AWG channel k
    starts while armed with ``AnalogOut{k+1}``; ``polls_until_done`` ``status(True)`` polls after
    the trigger it is ``Done``. ``statusData`` then returns ``source(channel, count)``.
    """

    _prefix = "analogIn"

    def __init__(self, library: FakeDwfLibrary, device: FakeDwfDevice) -> None:
        super().__init__(library, device)
        self.source: Source | None = library.source
        self.polls_until_done: int | None = library.polls_until_done
        self._reset_state()

    def _reset_state(self) -> None:
        self.channel_enabled = [False] * AD2_SCOPE_CHANNELS
        self.channel_range = [5.0] * AD2_SCOPE_CHANNELS
        self.frequency = 20e6
        self.buffer_size = AD2_SCOPE_BUFFER[1]
        self.acquisition_mode = DwfAcquisitionMode.Single
        self.trigger_source = DwfTriggerSource.None_
        self.trigger_level = 0.0
        self.trigger_position = 0.0
        self.armed = False
        self.triggered = False
        self.done = False
        self._polls = 0

    def _channel(self, channel_index: int) -> int:
        if not 0 <= channel_index < AD2_SCOPE_CHANNELS:
            raise _invalid(f"AnalogIn channel {channel_index} out of range.")
        return channel_index

    def _samples(self, channel_index: int, count: int) -> np.ndarray:
        if self.source is None:
            return np.zeros(count)
        out = np.asarray(self.source(channel_index, count), dtype=np.float64)
        if out.shape != (count,):
            raise ValueError(f"source returned shape {out.shape}, expected ({count},)")
        return out

    def _awg_started(self, awg_channel: int) -> None:
        wanted = (DwfTriggerSource.AnalogOut1, DwfTriggerSource.AnalogOut2)[awg_channel]
        if self.armed and self.trigger_source == wanted:
            self.triggered = True

    @_recorded
    def reset(self) -> None:
        self._reset_state()

    @_recorded
    def channelCount(self) -> int:
        return AD2_SCOPE_CHANNELS

    @_recorded
    def channelEnableSet(self, channel_index: int, channel_enable: bool) -> None:
        self.channel_enabled[self._channel(channel_index)] = bool(channel_enable)

    @_recorded
    def channelRangeSet(self, channel_index: int, channel_range: float) -> None:
        r = float(channel_range)
        if not (np.isfinite(r) and 0 < r <= 50.0):
            raise _invalid(f"AnalogIn range {r!r} V invalid.", DwfErrorCode.InvalidParameter1)
        self.channel_range[self._channel(channel_index)] = r

    @_recorded
    def frequencySet(self, sample_frequency: float) -> None:
        f = float(sample_frequency)
        if not (np.isfinite(f) and 0 < f <= 100e6):
            raise _invalid(f"AnalogIn sample frequency {f!r} Hz invalid.")
        self.frequency = f

    @_recorded
    def bufferSizeInfo(self) -> tuple[int, int]:
        return AD2_SCOPE_BUFFER

    @_recorded
    def bufferSizeSet(self, buffer_size: int) -> None:
        # Like the hardware, out-of-range sizes are clipped.
        self.buffer_size = int(np.clip(int(buffer_size), *AD2_SCOPE_BUFFER))

    @_recorded
    def acquisitionModeSet(self, acquisition_mode: DwfAcquisitionMode) -> None:
        self.acquisition_mode = DwfAcquisitionMode(acquisition_mode)

    @_recorded
    def triggerSourceSet(self, trigger_source: DwfTriggerSource) -> None:
        self.trigger_source = DwfTriggerSource(trigger_source)

    @_recorded
    def triggerLevelSet(self, trigger_detector_level: float) -> None:
        self.trigger_level = float(trigger_detector_level)

    @_recorded
    def triggerPositionSet(self, trigger_position: float) -> None:
        self.trigger_position = float(trigger_position)

    @_recorded
    def configure(self, reconfigure: bool, start: bool) -> None:
        if start:
            self.armed = True
            self.done = False
            self._polls = 0
            self.triggered = self.trigger_source not in (
                DwfTriggerSource.AnalogOut1,
                DwfTriggerSource.AnalogOut2,
            )
        else:
            self.armed = False
            self.triggered = False

    @_recorded
    def status(self, read_data_flag: bool) -> DwfState:
        if self.done:
            return DwfState.Done
        if not self.armed:
            return DwfState.Ready
        if not self.triggered:
            return DwfState.Armed
        if read_data_flag:
            self._polls += 1
            if self.polls_until_done is not None and self._polls >= self.polls_until_done:
                self.done = True
                self.armed = False
                return DwfState.Done
        return DwfState.Triggered

    @_recorded
    def statusData(self, channel_index: int, count: int) -> np.ndarray:
        ch = self._channel(channel_index)
        if not self.done:
            raise _invalid("AnalogIn statusData before the acquisition is done.")
        if not self.channel_enabled[ch]:
            raise _invalid(f"AnalogIn channel {ch} is not enabled.")
        if not 0 < count <= self.buffer_size:
            raise _invalid(f"AnalogIn count {count} outside the buffer of {self.buffer_size}.")
        return self._samples(ch, count)

    @_recorded
    def statusSample(self, channel_index: int) -> float:
        ch = self._channel(channel_index)
        if not self.channel_enabled[ch]:
            raise _invalid(f"AnalogIn channel {ch} is not enabled.")
        return float(self._samples(ch, 1)[-1])


# --------------------------------------------------------------------------------------------
# AnalogIO (power supplies)
# --------------------------------------------------------------------------------------------


class FakeAnalogIO(_StaticIO):
    """Mirror of ``pydwf.AnalogIO`` for the AD2 supplies: channel 0 = V+, 1 = V−; node 0 =
    enable, node 1 = voltage. ``supply_output()`` gives the voltages actually present."""

    _prefix = "analogIO"

    def _reset_state(self) -> None:
        self.nodes: dict[tuple[int, int], float] = {
            (0, 0): 0.0,
            (0, 1): 0.0,
            (1, 0): 0.0,
            (1, 1): 0.0,
        }
        self.enabled = False

    def supply_output(self) -> tuple[float, float]:
        """(V+, V−) in V as present on the pins (0 V where disabled)."""

        def out(ch: int) -> float:
            return self.nodes[(ch, 1)] if self.enabled and self.nodes[(ch, 0)] else 0.0

        return (out(0), out(1))

    def _node(self, channel_index: int, node_index: int) -> tuple[int, int]:
        key = (channel_index, node_index)
        if key not in self.nodes:
            raise _invalid(f"AnalogIO channel {channel_index} node {node_index} does not exist.")
        return key

    @_recorded
    def enableSet(self, master_enable: bool) -> None:
        self.enabled = bool(master_enable)

    @_recorded
    def enableGet(self) -> bool:
        return self.enabled

    @_recorded
    def channelNodeSet(self, channel_index: int, node_index: int, node_value: float) -> None:
        key = self._node(channel_index, node_index)
        v = float(node_value)
        if node_index == 1:
            lo, hi = (0.0, AD2_SUPPLY_MAX_V) if channel_index == 0 else (-AD2_SUPPLY_MAX_V, 0.0)
            if not lo <= v <= hi:
                raise _invalid(f"Supply {channel_index} voltage {v!r} V outside [{lo}, {hi}].")
        self.nodes[key] = v

    @_recorded
    def channelNodeGet(self, channel_index: int, node_index: int) -> float:
        return self.nodes[self._node(channel_index, node_index)]

    @_recorded
    def channelNodeStatus(self, channel_index: int, node_index: int) -> float:
        key = self._node(channel_index, node_index)
        if node_index == 1:
            return self.supply_output()[channel_index]
        return self.nodes[key]


# --------------------------------------------------------------------------------------------
# DigitalIO (static I/O)
# --------------------------------------------------------------------------------------------


class FakeDigitalIO(_StaticIO):
    """Mirror of ``pydwf.DigitalIO`` (16 pins).

    ``output`` and ``enable_mask`` hold the registers; ``input_levels`` the levels external
    circuits put on undriven pins. ``on_dio(pins)`` receives ``output & enable_mask`` (undriven
    pins read 0, i.e. the bench's pull-downs) after every ``outputSet`` and ``outputEnableSet``.
    """

    _prefix = "digitalIO"

    def __init__(self, library: FakeDwfLibrary, device: FakeDwfDevice) -> None:
        self.on_dio: Callable[[int], None] | None = library.on_dio
        self.input_levels = 0
        super().__init__(library, device)

    def _reset_state(self) -> None:
        self.output = 0
        self.enable_mask = 0

    @property
    def pins(self) -> int:
        """Driven pin levels: ``output & enable_mask``."""
        return self.output & self.enable_mask

    def _notify(self) -> None:
        if self._device is not None:
            self._device._emit_dio(self._device._pin_levels())
        elif self.on_dio is not None:
            self.on_dio(self.pins)

    _after_reset = _notify

    @staticmethod
    def _word(value: int) -> int:
        v = int(value)
        if not 0 <= v < 1 << 32:
            raise _invalid(f"DigitalIO word {value!r} is not an unsigned 32-bit value.")
        return v & ((1 << AD2_DIO_PINS) - 1)

    @_recorded
    def outputEnableSet(self, output_enable: int) -> None:
        self.enable_mask = self._word(output_enable)
        self._notify()

    @_recorded
    def outputEnableGet(self) -> int:
        return self.enable_mask

    @_recorded
    def outputSet(self, output: int) -> None:
        self.output = self._word(output)
        self._notify()

    @_recorded
    def outputGet(self) -> int:
        return self.output

    @_recorded
    def inputStatus(self) -> int:
        undriven = ~self.enable_mask & ((1 << AD2_DIO_PINS) - 1)
        return self.pins | (self.input_levels & undriven)


# --------------------------------------------------------------------------------------------
# DigitalOut (pattern generator)
# --------------------------------------------------------------------------------------------


@dataclass
class DoutChannelState:
    """One pattern-generator channel (= DIO pin): enable, type, idle level, divider, data."""

    enabled: bool = False
    output_type: DwfDigitalOutType = DwfDigitalOutType.Pulse
    idle: DwfDigitalOutIdle = DwfDigitalOutIdle.Init
    divider: int = 1
    data: str = ""


class FakeDigitalOut(_SubAPI):
    """Mirror of ``pydwf.DigitalOut`` (the pattern generator), the custom-pattern subset.

    Model (a twin assumption where the WaveForms SDK reference is silent): a DIO pin whose
    channel is enabled (``enableSet(ch, True)``) is driven by the pattern generator — its idle
    level while stopped or done (``Init``/``Low``: 0, ``High``: 1, ``Zet``: undriven, reads 0 on
    the bench's pull-downs), the pattern while running — and overrides DigitalIO on that pin;
    the other pins stay DigitalIO's. Only the ``Custom`` type plays (``dataSet`` bits, the first
    character first, one per ``divider`` ticks of the 100 MHz clock); a ``Pulse``-type enabled
    channel sits at its idle level. ``configure(True)`` plays ``repeat`` (≥ 1; 0 = forever,
    played once here and reported ``Running``) runs of ``run`` s at once, feeding every change
    of the pin levels to ``on_dio`` (and ``library.dio_stream``); ``status()`` is then ``Done``.
    :attr:`last_run_s` is the played duration (the twin charges it to its clock).
    """

    _prefix = "digitalOut"

    def __init__(self, library: FakeDwfLibrary, device: FakeDwfDevice) -> None:
        super().__init__(library, device)
        self._reset_state()

    def _reset_state(self) -> None:
        self.channels = [DoutChannelState() for _ in range(AD2_DIO_PINS)]
        self.run = 0.0
        self.repeat = 0
        self.running = False
        self.forever = False
        self.last_run_s = 0.0

    @property
    def owned_mask(self) -> int:
        """Pins driven by the pattern generator (its enabled channels)."""
        return sum(1 << ch for ch, c in enumerate(self.channels) if c.enabled)

    def idle_bit(self, channel_index: int) -> int:
        """The level (0/1) an enabled channel drives while not playing."""
        return int(self.channels[channel_index].idle == DwfDigitalOutIdle.High)

    def _channel(self, channel_index: int) -> DoutChannelState:
        if isinstance(channel_index, bool) or not 0 <= int(channel_index) < AD2_DIO_PINS:
            raise _invalid(f"DigitalOut channel {channel_index!r} out of range.")
        return self.channels[int(channel_index)]

    def _notify(self, pattern: dict[int, int] | None = None) -> None:
        if self._device is not None:
            self._device._emit_dio(self._device._pin_levels(pattern))

    # -- instrument control --------------------------------------------------------------------
    @_recorded
    def reset(self) -> None:
        self._reset_state()
        self._notify()

    @_recorded
    def configure(self, start: bool) -> None:
        if not start:
            self.running = False
            self._notify()
            return
        self._play()

    @_recorded
    def status(self) -> DwfState:
        if self.forever:
            return DwfState.Running
        return DwfState.Done if self.last_run_s > 0 or self.running else DwfState.Ready

    # -- settings ------------------------------------------------------------------------------
    @_recorded
    def internalClockInfo(self) -> float:
        return AD2_DOUT_CLOCK_HZ

    @_recorded
    def dataInfo(self, channel_index: int) -> int:
        self._channel(channel_index)
        return AD2_DOUT_BITS

    @_recorded
    def enableSet(self, channel_index: int, enable_flag: bool) -> None:
        self._channel(channel_index).enabled = bool(enable_flag)
        self._notify()

    @_recorded
    def typeSet(self, channel_index: int, output_type: DwfDigitalOutType) -> None:
        self._channel(channel_index).output_type = DwfDigitalOutType(output_type)

    @_recorded
    def idleSet(self, channel_index: int, idle_mode: DwfDigitalOutIdle) -> None:
        self._channel(channel_index).idle = DwfDigitalOutIdle(idle_mode)
        self._notify()

    @_recorded
    def dividerSet(self, channel_index: int, divider: int) -> None:
        d = int(divider)
        if not AD2_DOUT_DIVIDER[0] <= d <= AD2_DOUT_DIVIDER[1]:
            raise _invalid(
                f"DigitalOut divider {divider!r} invalid.", DwfErrorCode.InvalidParameter2
            )
        self._channel(channel_index).divider = d

    @_recorded
    def dataSet(self, channel_index: int, bits: str, tristate: bool = False) -> None:
        if tristate:
            raise _invalid("DigitalOut tristate data is not modelled.", DwfErrorCode.NotSupported)
        if not isinstance(bits, str) or not bits or set(bits) - {"0", "1"}:
            raise _invalid(f"DigitalOut data {bits!r} is not a string of 0/1.")
        if len(bits) > AD2_DOUT_BITS:
            raise _invalid(
                f"DigitalOut data of {len(bits)} bits exceeds {AD2_DOUT_BITS}.",
                DwfErrorCode.InvalidParameter2,
            )
        self._channel(channel_index).data = bits

    @_recorded
    def runSet(self, run_duration: float) -> None:
        r = float(run_duration)
        if not (np.isfinite(r) and r >= 0):
            raise _invalid(f"DigitalOut run {run_duration!r} s invalid.")
        self.run = r

    @_recorded
    def repeatSet(self, repeat: int) -> None:
        if int(repeat) < 0:
            raise _invalid(f"DigitalOut repeat {repeat!r} invalid.")
        self.repeat = int(repeat)

    # -- playing -------------------------------------------------------------------------------
    def _play(self) -> None:
        """Emit every change of the pin levels over the run(s), in time order."""
        custom = {
            ch: c
            for ch, c in enumerate(self.channels)
            if c.enabled and c.output_type == DwfDigitalOutType.Custom and c.data
        }
        self.forever = self.run == 0 or self.repeat == 0
        run = self.run
        if run == 0:  # forever: one period of the longest channel
            run = max(
                (len(c.data) * c.divider / AD2_DOUT_CLOCK_HZ for c in custom.values()), default=0.0
            )
        repeats = max(self.repeat, 1)
        ticks = int(round(run * AD2_DOUT_CLOCK_HZ))
        events: dict[int, dict[int, int]] = {}
        for ch, c in custom.items():
            n = -(-ticks // c.divider)  # samples started within the run
            for k in range(n):
                events.setdefault(k * c.divider, {})[ch] = int(c.data[k % len(c.data)])
        self.running = True
        levels: dict[int, int] = {}
        last = None
        for _ in range(repeats):
            for t in sorted(events):
                levels.update(events[t])
                word = self._device._pin_levels(levels) if self._device is not None else 0
                if word != last:
                    self._notify(dict(levels))
                    last = word
        self.running = False
        self.last_run_s = run * repeats
        self._notify()  # back to the idle levels


# --------------------------------------------------------------------------------------------
# The switch matrix's shift-register chain
# --------------------------------------------------------------------------------------------


class ShiftRegisterMatrix:
    """Edge-by-edge model of the bench switch matrix (independent of ``instruments``).

    A chain of ``bits_per_line·(rows+cols)`` shift-register stages: DATA is sampled on each CLK
    rising edge, the chain is copied to the multiplexer latches on each LATCH rising edge, and
    every multiplexer is off (all lines floating) while ENABLE is low. The bit stream is read in
    the order it was shifted: line 0 (row 0) first, rows then columns, each line's code MSB
    first — so the first bit shifted ends in the last stage of the chain.

    :attr:`rows` / :attr:`cols` are the bus codes seen by each line (``float_code`` while
    ENABLE is low). Feed it with :meth:`on_word` (e.g. as ``FakeDigitalIO.on_dio``).
    """

    def __init__(
        self,
        *,
        data_pin: int = 0,
        clk_pin: int = 1,
        latch_pin: int = 2,
        enable_pin: int = 3,
        rows: int = 10,
        cols: int = 10,
        bits_per_line: int = 4,
        float_code: int = 0,
    ) -> None:
        self.data_pin, self.clk_pin = data_pin, clk_pin
        self.latch_pin, self.enable_pin = latch_pin, enable_pin
        self.n_rows, self.n_cols = rows, cols
        self.bits_per_line = bits_per_line
        self.float_code = float_code
        n_lines = rows + cols
        self.chain = np.zeros(bits_per_line * n_lines, dtype=np.int64)  # oldest bit first
        self.latched = np.full(n_lines, float_code, dtype=np.int64)
        self.enabled = False
        self.clock_edges = 0
        self.latch_edges = 0
        self._last = 0

    def _bit(self, word: int, pin: int) -> int:
        return (word >> pin) & 1

    def on_word(self, word: int) -> None:
        """Apply one new set of pin levels (bit i = DIO pin i)."""
        prev, self._last = self._last, int(word)
        if self._bit(word, self.clk_pin) and not self._bit(prev, self.clk_pin):
            self.chain = np.roll(self.chain, -1)
            self.chain[-1] = self._bit(word, self.data_pin)
            self.clock_edges += 1
        if self._bit(word, self.latch_pin) and not self._bit(prev, self.latch_pin):
            weights = 1 << np.arange(self.bits_per_line - 1, -1, -1)
            self.latched = self.chain.reshape(-1, self.bits_per_line) @ weights
            self.latch_edges += 1
        self.enabled = bool(self._bit(word, self.enable_pin))

    def _lines(self) -> list[int]:
        if not self.enabled:
            return [self.float_code] * (self.n_rows + self.n_cols)
        return [int(c) for c in self.latched]

    @property
    def rows(self) -> list[int]:
        """Bus code connected to each row line (``float_code`` while disabled)."""
        return self._lines()[: self.n_rows]

    @property
    def cols(self) -> list[int]:
        """Bus code connected to each column line (``float_code`` while disabled)."""
        return self._lines()[self.n_rows :]


def decode_words(words: Sequence[int], **wiring: Any) -> tuple[list[int], list[int]] | None:
    """Feed ``words`` to a fresh :class:`ShiftRegisterMatrix` (keyword args as its constructor).

    Returns ``(rows, cols)`` bus codes after the last word, or ``None`` if no LATCH rising edge
    occurred (nothing was ever routed).
    """
    matrix = ShiftRegisterMatrix(**wiring)
    for word in words:
        matrix.on_word(word)
    if matrix.latch_edges == 0:
        return None
    return matrix.rows, matrix.cols
