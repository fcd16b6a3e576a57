"""Driver for the Digilent Analog Discovery 2 (AD2) through pydwf.

The pydwf library object is injected (``pydwf.DwfLibrary()`` on the bench, a fake in tests and
simulation), so nothing here loads the WaveForms runtime. The driver covers what the crossbar
bench uses: the two AWG channels (DC levels, single rectangular pulses, one-shot arbitrary
waveforms), the two scope channels (single triggered captures, quick samples), the 16 static
digital I/O pins (the switch matrix) and the ±5 V supplies.

Safety: every AWG voltage is checked against the bench's ``SafetyLimits.max_voltage`` and the
AWG's ±5 V range — which holds a node's offset and amplitude *together*: a pulse from a
baseline is the carrier node's offset (the baseline) plus its amplitude (the step), so
``|baseline| + |amplitude − baseline| ≤ 5 V`` — and supply voltages against 0…+5 V / −5…0 V,
*before* any call reaches the device (``SafetyLimitError``, a ``ValueError``). ``close()`` (also on leaving a ``with`` block,
even through an exception) drives both AWG outputs to 0 V and disables them, releases the DIO
pins (switch matrix floating), turns the supplies off and closes the device; it never raises.

Errors from pydwf become :class:`~instruments.errors.InstrumentError` (bad parameter, code =
``DwfErrorCode`` value), :class:`~instruments.errors.InstrumentTimeout` (API lock timeout) or
:class:`~instruments.errors.ConnectionLost` (anything else: the runtime cannot talk to the
device), each naming the pydwf call that failed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
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
    DwfErrorCode,
    DwfLibraryError,
    DwfState,
    DwfTriggerSource,
    PyDwfError,
)
from pydwf.utilities import openDwfDevice

from instruments.errors import (
    ConnectionLost,
    InstrumentError,
    InstrumentTimeout,
    SafetyLimitError,
    SafetyLimits,
    fault_message,
)

__all__ = [
    "AWG_CHANNELS",
    "AWG_MAX_RATE",
    "AWG_MAX_VOLTAGE",
    "AWG_MIN_PULSE_S",
    "AnalogDiscovery2",
    "DIO_PATTERN_MAX_RATE",
    "DIO_PINS",
    "SCOPE_CHANNELS",
    "SCOPE_MAX_RANGE",
    "SCOPE_MAX_RATE",
    "SUPPLY_MAX_VOLTAGE",
]

log = logging.getLogger(__name__)

AWG_CHANNELS = (0, 1)
"""AWG channel indices (W1, W2)."""
SCOPE_CHANNELS = (0, 1)
"""Scope channel indices (1+/1−, 2+/2−)."""
AWG_MAX_VOLTAGE = 5.0
"""AWG hardware output range, ±V; a node's |offset| + amplitude must stay within it (the AD2
Reference Manual's "±5 V" arbitrary function generator; issue 16 item 7)."""
AWG_MAX_RATE = 100e6
"""AWG sample rate limit, samples/s."""
AWG_MIN_PULSE_S = 100e-9
"""Shortest pulse accepted, s (the AWG's ~12 MHz analog bandwidth distorts shorter ones)."""
SCOPE_MAX_RATE = 100e6
"""Scope sample rate limit, samples/s."""
SCOPE_MAX_RANGE = 50.0
"""Largest scope range (full-scale peak-to-peak span), V: the ±25 V input range."""
DIO_PINS = 16
"""Static digital I/O pins (DIO 0…15, 3.3 V CMOS)."""
DIO_PATTERN_MAX_RATE = 100e6
"""Pattern generator (DigitalOut) sample rate limit, samples/s: its 100 MHz clock, divider 1."""
SUPPLY_MAX_VOLTAGE = 5.0
"""The supplies span 0…+5 V (V+) and −5…0 V (V−)."""

_CARRIER = DwfAnalogOutNode.Carrier
_AWG_TRIGGER = {0: DwfTriggerSource.AnalogOut1, 1: DwfTriggerSource.AnalogOut2}
_PULSE_MAX_SAMPLES = 16
_HELD_PULSE_FREQUENCY = 1e3  # Hz: buffer repetition of a constant pulse (16 samples: 16 kS/s)
#: AnalogOut settings the device keeps until changed or reset (skip_unchanged may skip them)
_AWG_SETTINGS = frozenset(
    {
        "nodeFunctionSet",
        "nodeOffsetSet",
        "nodeAmplitudeSet",
        "nodeFrequencySet",
        "nodeDataSet",
        "nodeEnableSet",
        "runSet",
        "waitSet",
        "repeatSet",
        "idleSet",
    }
)
_PARAMETER_ERRORS = {
    DwfErrorCode.InvalidParameter0,
    DwfErrorCode.InvalidParameter1,
    DwfErrorCode.InvalidParameter2,
    DwfErrorCode.InvalidParameter3,
    DwfErrorCode.InvalidParameter4,
    DwfErrorCode.NotSupported,
    DwfErrorCode.AlreadyOpened,
}


def _fmt_arg(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"<{value.size} samples>"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


class AnalogDiscovery2:
    """One Analog Discovery 2 on the bench.

    :param dwf_library: the pydwf library object (``pydwf.DwfLibrary()``; a fake in tests).
    :param serial_number: open the AD2 whose 12-digit serial ends with this (case-insensitive);
        ``None``: the only AD2 connected.
    :param limits: the bench limits; ``limits.max_voltage`` bounds every AWG voltage.
    :param name: instrument name used in error messages.
    :param clock: monotonic time source, s (injectable so tests need not wait).
    :param sleep: ``sleep(seconds)`` used between status polls.
    :param poll_interval_s: wait between status polls, s.

    Use as a context manager (``with AnalogDiscovery2(...) as ad2:``) or call :meth:`open` and
    :meth:`close`.
    """

    def __init__(
        self,
        dwf_library: Any,
        *,
        serial_number: str | None = None,
        limits: SafetyLimits,
        name: str = "Analog Discovery 2",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval_s: float = 1e-3,
    ) -> None:
        if not isinstance(limits, SafetyLimits):
            raise TypeError(f"limits must be a SafetyLimits, got {limits!r}")
        self._dwf = dwf_library
        self.serial_number = serial_number
        self.limits = limits
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self.poll_interval_s = float(poll_interval_s)
        self._device: Any = None
        self._scope_buffer = (1, 0)
        self._awg_samples = (1, 0)
        self._awg_pending = dict.fromkeys(AWG_CHANNELS, False)
        self._scope_enabled: set[int] = set()
        self._dio_mask: int | None = None
        self._dout: dict[str, Any] = {}
        #: skip an AnalogOut setting (function, offset, amplitude, frequency, data, enable, run,
        #: wait, repeat, idle) equal to what this session last wrote on that channel, and a
        #: DigitalIO ``outputSet`` of the word last written: the device holds them until changed
        #: (off by default; ``lab.open_backend`` turns it on for ``io_path = "fast"``)
        self.skip_unchanged = False
        self._written: dict[tuple, Any] = {}
        self._awg_stopped = dict.fromkeys(AWG_CHANNELS, False)  # known stopped (not running)
        #: bumped by every change of the DIO pins' drive (writes, patterns, release, open,
        #: close) and by every failed pydwf call (state unknown): a caller that remembers what
        #: it wrote (the switch matrix) may skip a rewrite only while the epoch is unchanged
        self.dio_epoch = 0

    # ------------------------------------------------------------------ session ------------
    def __enter__(self) -> AnalogDiscovery2:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._device is not None

    @property
    def scope_buffer_max(self) -> int:
        """Largest scope record the open device allows, samples."""
        return self._scope_buffer[1]

    @property
    def awg_samples_max(self) -> int:
        """Largest AWG custom waveform the open device allows, samples."""
        return self._awg_samples[1]

    def runtime_version(self) -> str:
        """The WaveForms runtime's version (``DwfLibrary.getVersion()``), e.g. "3.21.3"."""
        try:
            return str(self._dwf.getVersion())
        except PyDwfError as exc:
            raise self._translate(exc, "getVersion()") from exc

    def open(self) -> AnalogDiscovery2:
        """Open the AD2 (``pydwf.utilities.openDwfDevice``, filtered to Analog Discovery 2 and
        ``serial_number``) and read the scope/AWG buffer sizes. Idempotent; returns ``self``.

        Raises ConnectionLost when no (or no unique) matching device answers.
        """
        if self._device is not None:
            return self
        command = f"openDwfDevice(serial_number_filter={self.serial_number!r})"
        try:
            device = openDwfDevice(
                self._dwf,
                serial_number_filter=self.serial_number,
                device_id_filter=DwfDeviceID.Discovery2.value,
            )
        except PyDwfError as exc:
            raise self._translate(exc, command) from exc
        self._device = device
        self._awg_pending = dict.fromkeys(AWG_CHANNELS, False)
        self._scope_enabled = set()
        self._dio_mask = None
        self._dout = {}
        self._written = {}
        self._awg_stopped = dict.fromkeys(AWG_CHANNELS, False)
        self.dio_epoch += 1
        try:
            lo, hi = self._call("analogIn", "bufferSizeInfo")
            self._scope_buffer = (int(lo), int(hi))
            lo, hi = self._call("analogOut", "nodeDataInfo", 0, _CARRIER)
            self._awg_samples = (int(lo), int(hi))
        except Exception:
            self._close_quietly(device)
            self._device = None
            raise
        return self

    def close(self) -> None:
        """Make the bench safe and close the device; idempotent, never raises.

        Order: both AWG outputs to 0 V (DC), then both disabled; DIO outputs low and undriven
        (the switch matrix's ENABLE low: every crossbar line floating); supplies off; device
        closed. A failing step (dead device) is logged and the next one still runs.
        """
        device = self._device
        if device is None:
            return
        self._written = {}  # a safety path assumes nothing: every call is sent
        steps: list[tuple[str, Callable[[], None]]] = [
            *[(f"AWG {ch + 1} to 0 V", lambda ch=ch: self._awg_zero(ch)) for ch in AWG_CHANNELS],
            *[(f"AWG {ch + 1} off", lambda ch=ch: self._awg_disable(ch)) for ch in AWG_CHANNELS],
            ("DIO release", self.dio_release),
            ("supplies off", self.supplies_off),
        ]
        try:
            for what, step in steps:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - close must not raise
                    log.warning("%s: close: %s failed: %s", self.name, what, exc)
        finally:
            self._close_quietly(device)
            self._device = None
            self._dio_mask = None
            self._dout = {}
            self._written = {}
            self.dio_epoch += 1
            self._awg_pending = dict.fromkeys(AWG_CHANNELS, False)
            self._scope_enabled = set()

    def _close_quietly(self, device: Any) -> None:
        try:
            device.close()
        except Exception as exc:  # noqa: BLE001 - close must not raise
            log.warning("%s: device.close() failed: %s", self.name, exc)

    # ------------------------------------------------------------------ plumbing -----------
    def _require_open(self) -> Any:
        if self._device is None:
            raise InstrumentError(
                fault_message(self.name, None, "not open (call open() or use 'with')"),
                instrument=self.name,
            )
        return self._device

    def _call(self, api: str, method: str, *args: Any) -> Any:
        """``device.<api>.<method>(*args)`` with pydwf errors translated (a setting equal to the
        one last written is skipped under :attr:`skip_unchanged`)."""
        device = self._require_open()
        key = value = None
        if api == "analogOut" and method in _AWG_SETTINGS:
            key = (method, args[0], *(args[1:2] if method.startswith("node") else ()))
            value = tuple(
                tuple(np.asarray(a, dtype=float).tolist()) if isinstance(a, np.ndarray) else a
                for a in args
            )
        elif api == "digitalIO" and method == "outputSet":
            key, value = ("dio", method), args
        if key is not None and self.skip_unchanged and self._written.get(key) == value:
            return None
        if key is not None:
            self._written.pop(key, None)
        try:
            result = getattr(getattr(device, api), method)(*args)
        except PyDwfError as exc:
            self.dio_epoch += 1  # a failed call leaves the pins' state unknown
            self._written = {}
            self._awg_stopped = dict.fromkeys(AWG_CHANNELS, False)
            command = f"{api}.{method}({', '.join(_fmt_arg(a) for a in args)})"
            raise self._translate(exc, command) from exc
        if key is not None:
            self._written[key] = value
        if api == "analogOut" and method == "configure":
            self._awg_stopped[args[0]] = not args[1]
        return result

    def _translate(self, exc: PyDwfError, command: str) -> InstrumentError:
        code = exc.code if isinstance(exc, DwfLibraryError) else None
        message = fault_message(self.name, command, str(exc))
        value = None if code is None else int(code.value)
        if code in _PARAMETER_ERRORS:
            return InstrumentError(message, instrument=self.name, command=command, code=value)
        if code == DwfErrorCode.ApiLockTimeout:
            return InstrumentTimeout(message, instrument=self.name, command=command, code=value)
        return ConnectionLost(message, instrument=self.name, command=command, code=value)

    def _wait_until(self, poll: Callable[[], bool], deadline: float, what: str) -> None:
        """Poll until ``poll()`` is true; InstrumentTimeout once the clock passes ``deadline``."""
        while not poll():
            if self._clock() >= deadline:
                raise InstrumentTimeout(
                    fault_message(self.name, what, "timed out"),
                    instrument=self.name,
                    command=what,
                )
            self._sleep(self.poll_interval_s)

    # ------------------------------------------------------------------ checks -------------
    @staticmethod
    def _check_awg_channel(channel: int) -> int:
        if isinstance(channel, bool) or channel not in AWG_CHANNELS:
            raise ValueError(f"AWG channel must be one of {AWG_CHANNELS}, got {channel!r}")
        return int(channel)

    def _check_awg_voltage(self, value: float, setting: str) -> float:
        v = self.limits.check_voltage(value, setting)
        if abs(v) > AWG_MAX_VOLTAGE:
            raise SafetyLimitError(
                f"{setting} = {v:g} V refused: beyond the AWG range ±{AWG_MAX_VOLTAGE:g} V",
                setting=setting,
                value=v,
                limit=AWG_MAX_VOLTAGE,
            )
        return v

    @staticmethod
    def _positive(value: float, name: str, upper: float | None = None, unit: str = "") -> float:
        v = float(value)
        if not (math.isfinite(v) and v > 0) or (upper is not None and v > upper):
            span = f"(0, {upper:g}] {unit}" if upper is not None else f"> 0 {unit}"
            raise ValueError(f"{name} must be in {span}, got {value!r}")
        return v

    # ------------------------------------------------------------------ AWG ----------------
    def awg_dc(self, channel: int, volts: float) -> None:
        """Hold AWG ``channel`` (0 or 1) at a DC level of ``volts`` V (|V| ≤ min(5,
        max_voltage)) until changed.

        Calls: nodeFunctionSet(DC), nodeOffsetSet(volts), runSet(0) (run forever),
        repeatSet(0), nodeEnableSet(1), configure(start=1).
        """
        ch = self._check_awg_channel(channel)
        v = self._check_awg_voltage(volts, f"AWG {ch + 1} DC level")
        self._require_open()
        self._awg_pending[ch] = False
        self._call("analogOut", "nodeFunctionSet", ch, _CARRIER, DwfAnalogOutFunction.DC)
        self._call("analogOut", "nodeOffsetSet", ch, _CARRIER, v)
        self._call("analogOut", "runSet", ch, 0.0)
        self._call("analogOut", "repeatSet", ch, 0)
        self._call("analogOut", "nodeEnableSet", ch, _CARRIER, 1)
        self._call("analogOut", "configure", ch, 1)

    def awg_pulse(
        self,
        channel: int,
        amplitude: float,
        width_s: float,
        *,
        baseline: float = 0.0,
        start: bool = True,
        hold: bool = False,
    ) -> None:
        """One rectangular pulse on AWG ``channel``: ``baseline`` V → ``amplitude`` V for
        ``width_s`` s → ``baseline`` V (both levels |V| ≤ min(5, max_voltage), and
        ``|baseline| + |amplitude − baseline| ≤ 5 V``: the node's offset plus its amplitude must
        fit the AWG's ±5 V; width ≥ 100 ns).

        Implementation (chosen over the ``Pulse`` function, whose level/duty semantics depend on
        symmetry and frequency): the ``Custom`` function with a constant buffer of ±1,
        amplitude ``|amplitude − baseline|`` and offset ``baseline``, played once
        (``runSet(width_s)``, ``repeatSet(1)``, ``waitSet(0)``) with ``idleSet(Offset)`` so the
        output sits at ``baseline`` before and after. The channel is stopped first
        (``configure(ch, 0)``) so no intermediate setting reaches the output. With
        ``start=False`` the pulse is armed but not played: :meth:`awg_start` or
        :meth:`scope_capture` (``trigger_on_awg=channel``) plays it. With ``hold`` it is armed
        too, and ``configure(ch, 0)`` after the settings applies them with the channel stopped:
        the output idles at the offset, i.e. holds ``baseline`` until :meth:`awg_start` plays
        the pulse (no DC level needed before it).

        With :attr:`skip_unchanged`, the first ``configure(ch, 0)`` is left out when this
        session knows the channel is stopped, and settings equal to the last written are not
        resent: a pulse that changes only its levels is a few USB calls.
        """
        ch = self._check_awg_channel(channel)
        level = self._check_awg_voltage(amplitude, f"AWG {ch + 1} pulse amplitude")
        base = self._check_awg_voltage(baseline, f"AWG {ch + 1} pulse baseline")
        width = self._positive(width_s, "pulse width_s", unit="s")
        if width < AWG_MIN_PULSE_S:
            raise ValueError(f"pulse width_s must be >= {AWG_MIN_PULSE_S:g} s, got {width_s!r}")
        step = level - base
        if abs(base) + abs(step) > AWG_MAX_VOLTAGE * (1 + 1e-12):
            raise SafetyLimitError(
                f"AWG {ch + 1} pulse {base:g} V -> {level:g} V refused: offset + amplitude "
                f"|{base:g}| + |{step:g}| = {abs(base) + abs(step):g} V is beyond the AWG "
                f"range ±{AWG_MAX_VOLTAGE:g} V (a baseline and a pulse of the same sign fit)",
                setting=f"AWG {ch + 1} pulse offset + amplitude",
                value=abs(base) + abs(step),
                limit=AWG_MAX_VOLTAGE,
            )
        self._require_open()
        n = int(np.clip(math.floor(width * AWG_MAX_RATE + 1e-6), 1, _PULSE_MAX_SAMPLES))
        n = max(n, self._awg_samples[0])
        data = np.full(n, -1.0 if step < 0 else 1.0)
        self._awg_pending[ch] = False
        if not (self.skip_unchanged and self._awg_stopped[ch]):
            self._call("analogOut", "configure", ch, 0)
        self._call("analogOut", "idleSet", ch, DwfAnalogOutIdle.Offset)
        self._call("analogOut", "nodeOffsetSet", ch, _CARRIER, base)
        self._call("analogOut", "nodeFunctionSet", ch, _CARRIER, DwfAnalogOutFunction.Custom)
        self._call("analogOut", "nodeDataSet", ch, _CARRIER, data)
        # the buffer is constant ±1, so its repetition frequency shapes nothing (the run sets
        # the width); under skip_unchanged a fixed one is used, so a new width is one call
        freq = _HELD_PULSE_FREQUENCY if self.skip_unchanged else 1.0 / width
        self._call("analogOut", "nodeFrequencySet", ch, _CARRIER, freq)
        self._call("analogOut", "nodeAmplitudeSet", ch, _CARRIER, abs(step))
        self._call("analogOut", "runSet", ch, width)
        self._call("analogOut", "waitSet", ch, 0.0)
        self._call("analogOut", "repeatSet", ch, 1)
        self._call("analogOut", "nodeEnableSet", ch, _CARRIER, 1)
        if hold:
            self._call("analogOut", "configure", ch, 0)  # applied, stopped: output at baseline
            self._awg_pending[ch] = True
            return
        self._start_or_arm(ch, start)

    def awg_idle_zero(self, channel: int) -> None:
        """Stop AWG ``channel`` with its output at 0 V, still enabled: ``idleSet(Offset)``,
        ``nodeOffsetSet(0)``, ``configure(ch, 0)`` (a stopped channel idles at its offset).
        With :attr:`skip_unchanged` two USB calls after a pulse; :meth:`awg_off` also disables
        the channel (five)."""
        ch = self._check_awg_channel(channel)
        self._awg_pending[ch] = False
        self._call("analogOut", "idleSet", ch, DwfAnalogOutIdle.Offset)
        self._call("analogOut", "nodeOffsetSet", ch, _CARRIER, 0.0)
        self._call("analogOut", "configure", ch, 0)

    def awg_arbitrary(
        self,
        channel: int,
        samples: np.ndarray,
        sample_rate: float,
        *,
        start: bool = True,
    ) -> None:
        """Play ``samples`` (V, 1-D, every |V| ≤ min(5, max_voltage)) once on AWG ``channel`` at
        ``sample_rate`` samples/s (≤ 100 MS/s); the output returns to 0 V afterwards.

        Custom function: ``nodeDataSet`` gets ``samples / max|samples|`` (±1), amplitude
        ``max|samples|``, offset 0, buffer frequency ``sample_rate / len``, one run of
        ``len / sample_rate`` s, idle at the offset (0 V). The length must fit the AWG buffer
        (:attr:`awg_samples_max`, 4096 on the default AD2 configuration). ``start`` as in
        :meth:`awg_pulse`.
        """
        ch = self._check_awg_channel(channel)
        arr = np.asarray(samples, dtype=float)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"samples must be a non-empty 1-D array, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise SafetyLimitError(
                f"AWG {ch + 1} waveform refused: samples contain NaN or inf",
                setting=f"AWG {ch + 1} waveform",
            )
        peak = float(np.max(np.abs(arr)))
        self._check_awg_voltage(peak, f"AWG {ch + 1} waveform peak |V|")
        rate = self._positive(sample_rate, "sample_rate", AWG_MAX_RATE, "samples/s")
        self._require_open()
        lo, hi = self._awg_samples
        if not lo <= arr.size <= hi:
            raise ValueError(f"waveform of {arr.size} samples outside the AWG buffer [{lo}, {hi}]")
        data = arr / peak if peak > 0 else np.zeros_like(arr)
        self._awg_pending[ch] = False
        self._call("analogOut", "configure", ch, 0)
        self._call("analogOut", "idleSet", ch, DwfAnalogOutIdle.Offset)
        self._call("analogOut", "nodeOffsetSet", ch, _CARRIER, 0.0)
        self._call("analogOut", "nodeFunctionSet", ch, _CARRIER, DwfAnalogOutFunction.Custom)
        self._call("analogOut", "nodeDataSet", ch, _CARRIER, data)
        self._call("analogOut", "nodeFrequencySet", ch, _CARRIER, rate / arr.size)
        self._call("analogOut", "nodeAmplitudeSet", ch, _CARRIER, peak)
        self._call("analogOut", "runSet", ch, arr.size / rate)
        self._call("analogOut", "waitSet", ch, 0.0)
        self._call("analogOut", "repeatSet", ch, 1)
        self._call("analogOut", "nodeEnableSet", ch, _CARRIER, 1)
        self._start_or_arm(ch, start)

    def _start_or_arm(self, ch: int, start: bool) -> None:
        if start:
            self._call("analogOut", "configure", ch, 1)
        else:
            self._awg_pending[ch] = True

    def awg_start(self, channel: int) -> None:
        """Play the waveform configured on AWG ``channel`` (``configure(ch, 1)``)."""
        ch = self._check_awg_channel(channel)
        self._call("analogOut", "configure", ch, 1)
        self._awg_pending[ch] = False

    def awg_pending(self, channel: int) -> bool:
        """True while a pulse/waveform configured with ``start=False`` waits to be played."""
        return self._awg_pending[self._check_awg_channel(channel)]

    def awg_wait(self, channel: int, timeout_s: float = 1.0) -> None:
        """Poll ``analogOut.status(ch)`` until the one-shot output is ``Done`` (InstrumentTimeout
        after ``timeout_s`` s)."""
        ch = self._check_awg_channel(channel)
        timeout = self._positive(timeout_s, "timeout_s", unit="s")
        deadline = self._clock() + timeout
        self._wait_until(
            lambda: self._call("analogOut", "status", ch) == DwfState.Done,
            deadline,
            f"analogOut.status({ch}) == Done",
        )
        self._awg_stopped[ch] = True  # a finished one-shot idles: nothing plays

    def awg_off(self, channel: int) -> None:
        """Drive AWG ``channel`` to 0 V, then disable and stop it.

        Calls: nodeFunctionSet(DC), nodeOffsetSet(0), configure(1) (0 V replaces any running
        waveform), nodeEnableSet(0), configure(0).
        """
        ch = self._check_awg_channel(channel)
        self._forget(ch)  # a safety path assumes nothing: every call is sent
        self._awg_zero(ch)
        self._awg_disable(ch)

    def _forget(self, channel: int | str) -> None:
        """Forget what was written on AWG ``channel`` (``"outputSet"``: the DIO word)."""
        self._written = {k: v for k, v in self._written.items() if k[1] != channel}

    def _awg_zero(self, ch: int) -> None:
        self._awg_pending[ch] = False
        self._call("analogOut", "nodeFunctionSet", ch, _CARRIER, DwfAnalogOutFunction.DC)
        self._call("analogOut", "nodeOffsetSet", ch, _CARRIER, 0.0)
        self._call("analogOut", "configure", ch, 1)

    def _awg_disable(self, ch: int) -> None:
        self._call("analogOut", "nodeEnableSet", ch, _CARRIER, 0)
        self._call("analogOut", "configure", ch, 0)

    # ------------------------------------------------------------------ scope --------------
    def scope_capture(
        self,
        channels: Sequence[int] = (0, 1),
        *,
        range_v: float = 5.0,
        sample_rate: float = 1e6,
        n_samples: int = 1000,
        trigger_on_awg: int | None = 0,
        timeout_s: float = 1.0,
        pretrigger: float = 0.0,
    ) -> np.ndarray:
        """One single-shot capture; returns volts, shape ``(len(channels), n_samples)``.

        :param channels: scope channels (0, 1), in the order of the returned rows.
        :param range_v: full-scale peak-to-peak span, V, (0, 50]; the AD2 has a 5 V (±2.5 V)
            and a 50 V (±25 V) range and takes the smallest that covers the request.
        :param sample_rate: samples/s, (0, 100e6].
        :param n_samples: samples per channel, 1 … :attr:`scope_buffer_max` (8192 by default).
        :param trigger_on_awg: AWG channel to synchronise with. If a waveform is armed there
            (``start=False``), the scope triggers on ``AnalogOut{ch+1}``, is armed, waits for
            ``Armed`` (``status(False)``) and then starts that AWG channel, so the record begins
            with the waveform. If nothing is armed there (or ``None``), the capture triggers at
            once (``DwfTriggerSource.None_``) and records the present steady state — restarting
            a finished pulse just to trigger on it would apply it to the device twice.
        :param timeout_s: InstrumentTimeout (after stopping the acquisition) if not ``Done``.
        :param pretrigger: fraction of the record before the trigger, [0, 1).

        Calls: channelEnableSet for both channels, channelRangeSet per requested channel,
        frequencySet, bufferSizeSet, acquisitionModeSet(Single), triggerSourceSet,
        triggerPositionSet((0.5 − pretrigger)·n/rate), configure(False, True), status(True)
        until Done, statusData(ch, n) per channel.
        """
        chans = self._check_scope_channels(channels)
        rng = self._positive(range_v, "range_v", SCOPE_MAX_RANGE, "V")
        rate = self._positive(sample_rate, "sample_rate", SCOPE_MAX_RATE, "samples/s")
        timeout = self._positive(timeout_s, "timeout_s", unit="s")
        if not 0.0 <= float(pretrigger) < 1.0:
            raise ValueError(f"pretrigger must be in [0, 1), got {pretrigger!r}")
        awg = None if trigger_on_awg is None else self._check_awg_channel(trigger_on_awg)
        self._require_open()
        n = int(n_samples)
        if n != n_samples or not 1 <= n <= self._scope_buffer[1]:
            raise ValueError(
                f"n_samples must be an integer in [1, {self._scope_buffer[1]}], got {n_samples!r}"
            )
        start_awg = awg if awg is not None and self._awg_pending[awg] else None
        source = DwfTriggerSource.None_ if start_awg is None else _AWG_TRIGGER[start_awg]
        self._configure_capture(chans, rng, rate, n, source, (0.5 - float(pretrigger)) * n / rate)
        deadline = self._clock() + timeout
        self._call("analogIn", "configure", False, True)
        self._wait_for_capture(deadline, start_awg)
        return np.vstack([self._call("analogIn", "statusData", ch, n) for ch in chans])

    def _configure_capture(
        self,
        chans: tuple[int, ...],
        rng: float,
        rate: float,
        n: int,
        source: DwfTriggerSource,
        trigger_position_s: float,
    ) -> None:
        """Enable exactly ``chans`` at ``rng`` V span; rate, buffer, single acquisition and
        the trigger (source, position s) of one capture."""
        for ch in SCOPE_CHANNELS:
            self._call("analogIn", "channelEnableSet", ch, ch in chans)
        self._scope_enabled = set(chans)
        for ch in chans:
            self._call("analogIn", "channelRangeSet", ch, rng)
        self._call("analogIn", "frequencySet", rate)
        self._call("analogIn", "bufferSizeSet", n)
        self._call("analogIn", "acquisitionModeSet", DwfAcquisitionMode.Single)
        self._call("analogIn", "triggerSourceSet", source)
        self._call("analogIn", "triggerPositionSet", trigger_position_s)

    def _wait_for_capture(self, deadline: float, start_awg: int | None) -> None:
        """Wait (until ``deadline``) for the started acquisition to finish; with ``start_awg``
        first wait for it to be armed and start that AWG channel's pending waveform. On a
        timeout the acquisition is stopped and InstrumentTimeout re-raised."""
        try:
            if start_awg is not None:
                self._wait_until(
                    lambda: (
                        self._call("analogIn", "status", False)
                        in (DwfState.Armed, DwfState.Triggered, DwfState.Done)
                    ),
                    deadline,
                    "analogIn.status(False) == Armed",
                )
                self.awg_start(start_awg)
            self._wait_until(
                lambda: self._call("analogIn", "status", True) == DwfState.Done,
                deadline,
                "analogIn.status(True) == Done",
            )
        except InstrumentTimeout:
            try:
                self._call("analogIn", "configure", False, False)
            except InstrumentError as exc:
                log.warning("%s: stopping the timed-out acquisition failed: %s", self.name, exc)
            raise

    def scope_sample(self, channel: int, *, range_v: float | None = None) -> float:
        """Present voltage on scope ``channel``, V (``status(False)`` + ``statusSample``).

        If the channel is not enabled yet (or ``range_v`` is given) it is first enabled with
        ``range_v`` (default 5 V span) and the settings applied (``configure(True, False)``).
        """
        (ch,) = self._check_scope_channels((channel,))
        if range_v is not None or ch not in self._scope_enabled:
            rng = self._positive(5.0 if range_v is None else range_v, "range_v", SCOPE_MAX_RANGE)
            self._call("analogIn", "channelEnableSet", ch, True)
            self._call("analogIn", "channelRangeSet", ch, rng)
            self._call("analogIn", "configure", True, False)
            self._scope_enabled.add(ch)
        self._call("analogIn", "status", False)
        return float(self._call("analogIn", "statusSample", ch))

    @staticmethod
    def _check_scope_channels(channels: Sequence[int]) -> tuple[int, ...]:
        chans = tuple(channels)
        if (
            not chans
            or len(set(chans)) != len(chans)
            or any(isinstance(c, bool) or c not in SCOPE_CHANNELS for c in chans)
        ):
            raise ValueError(
                f"scope channels must be distinct values from {SCOPE_CHANNELS}, got {channels!r}"
            )
        return tuple(int(c) for c in chans)

    # ------------------------------------------------------------------ digital I/O --------
    @staticmethod
    def _check_word(value: int, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int bit mask, got {value!r}")
        if not 0 <= int(value) < 1 << DIO_PINS:
            raise ValueError(f"{name} must be in [0, 0xFFFF] (DIO 0…15), got {value!r}")
        return int(value)

    def dio_write(self, bits: int, mask: int) -> None:
        """Drive the DIO pins in ``mask`` to the levels in ``bits`` (bit i = DIO i); pins
        outside ``mask`` are undriven.

        Calls ``outputSet(bits & mask)`` and then, only when ``mask`` differs from the last one
        written in this session, ``outputEnableSet(mask)``: levels are set before pins start
        driving (no glitch), and a stream of words on the same pins (the switch matrix's shift
        sequence) costs one USB transaction per word.
        """
        b = self._check_word(bits, "bits")
        m = self._check_word(mask, "mask")
        self.dio_epoch += 1
        try:
            self._call("digitalIO", "outputSet", b & m)
            if m != self._dio_mask:
                self._call("digitalIO", "outputEnableSet", m)
                self._dio_mask = m
        except Exception:
            self._dio_mask = None
            raise

    def dio_read(self) -> int:
        """Levels on all 16 DIO pins (bit i = DIO i): ``status()`` then ``inputStatus()``."""
        self._call("digitalIO", "status")
        return int(self._call("digitalIO", "inputStatus")) & ((1 << DIO_PINS) - 1)

    def dio_release(self) -> None:
        """All DIO outputs low, then undriven: ``outputSet(0)``, ``outputEnableSet(0)``; if the
        pattern generator was used in this session, ``digitalOut.reset()`` after them (its pins
        idle low until then, and return to DigitalIO, now undriven).

        Low first, so the switch matrix's ENABLE line is actively pulled low (every crossbar line
        floating) before the pins go high-impedance; the board's pull-down keeps it there.
        """
        self._dio_mask = None
        self.dio_epoch += 1
        self._forget("outputSet")
        self._call("digitalIO", "outputSet", 0)
        self._call("digitalIO", "outputEnableSet", 0)
        self._dio_mask = 0
        if self._dout:
            self._dout = {}
            self._call("digitalOut", "reset")

    def dio_pattern(
        self, patterns: Mapping[int, str], rate_hz: float, *, timeout_s: float = 1.0
    ) -> None:
        """Play bit patterns once on DIO pins through the pattern generator (DigitalOut) and wait
        until it is done.

        :param patterns: ``{pin: "0101…"}``, one character per sample, the first played first;
            all the same length, at most ``digitalOut.dataInfo`` (1024 on the AD2) samples.
        :param rate_hz: samples/s, (0, 100e6] (the 100 MHz clock divided by an integer).
        :param timeout_s: InstrumentTimeout if not ``Done`` by then.

        The pins become the pattern generator's (custom type, idle low, they override DigitalIO
        there) until :meth:`dio_release`. Settings are written only when they differ from what
        this session wrote last: the first call writes ``internalClockInfo``, then per pin
        ``enableSet``, ``typeSet(Custom)``, ``idleSet(Low)``, ``dividerSet``, and ``runSet``,
        ``repeatSet(1)``; every call writes ``dataSet`` of each pin whose pattern changed, then
        ``configure(True)`` and polls ``status()`` until ``Done`` — three USB transactions when
        one pin's pattern changes.
        """
        pins: dict[int, str] = {}
        for pin, bits in patterns.items():
            if isinstance(pin, bool) or not isinstance(pin, (int, np.integer)):
                raise TypeError(f"pattern pins must be ints, got {pin!r}")
            if not 0 <= int(pin) < DIO_PINS:
                raise ValueError(f"pattern pin must be DIO 0…15, got {pin!r}")
            pins[int(pin)] = str(bits)
        lengths = {len(b) for b in pins.values()}
        if not pins or len(lengths) != 1 or any(set(b) - {"0", "1"} for b in pins.values()):
            raise ValueError("patterns must be equal-length, non-empty strings of 0/1 per pin")
        (n,) = lengths
        rate = self._positive(rate_hz, "rate_hz", DIO_PATTERN_MAX_RATE, "samples/s")
        timeout = self._positive(timeout_s, "timeout_s", unit="s")
        self._require_open()
        self.dio_epoch += 1
        try:
            self._dio_pattern(pins, n, rate, timeout)
        except Exception:
            self._dout = {}  # state unknown: rewrite everything next time
            raise

    def _dio_pattern(self, pins: dict[int, str], n: int, rate: float, timeout: float) -> None:
        cache = self._dout
        if "clock" not in cache:
            cache["clock"] = float(self._call("digitalOut", "internalClockInfo"))
            cache["max_bits"] = int(self._call("digitalOut", "dataInfo", next(iter(pins))))
        if n > cache["max_bits"]:
            raise ValueError(f"pattern of {n} samples exceeds the {cache['max_bits']}-bit buffer")
        divider = max(1, round(cache["clock"] / rate))
        run = n * divider / cache["clock"]
        for pin, bits in pins.items():
            setup = cache.setdefault(("setup", pin), set())
            for key, method, args in (
                ("enable", "enableSet", (pin, True)),
                ("type", "typeSet", (pin, DwfDigitalOutType.Custom)),
                ("idle", "idleSet", (pin, DwfDigitalOutIdle.Low)),
                (("divider", divider), "dividerSet", (pin, divider)),
            ):
                if key not in setup:
                    if isinstance(key, tuple):
                        setup -= {k for k in setup if isinstance(k, tuple)}
                    self._call("digitalOut", method, *args)
                    setup.add(key)
            if cache.get(("data", pin)) != bits:
                cache.pop(("data", pin), None)
                self._call("digitalOut", "dataSet", pin, bits)
                cache[("data", pin)] = bits
        if cache.get("run") != run:
            cache.pop("run", None)
            self._call("digitalOut", "runSet", run)
            cache["run"] = run
        if "repeat" not in cache:
            self._call("digitalOut", "repeatSet", 1)
            cache["repeat"] = 1
        deadline = self._clock() + timeout + run
        self._call("digitalOut", "configure", True)
        self._wait_until(
            lambda: self._call("digitalOut", "status") == DwfState.Done,
            deadline,
            "digitalOut.status() == Done",
        )

    # ------------------------------------------------------------------ supplies -----------
    def supplies(self, v_plus: float, v_minus: float) -> None:
        """Turn on the supplies: V+ = ``v_plus`` (0…+5 V), V− = ``v_minus`` (−5…0 V).

        Calls (INSTRUMENTS.md): channelNodeSet(0, 0, 1), (0, 1, v_plus), (1, 0, 1),
        (1, 1, v_minus), then enableSet(True). Out-of-range values raise SafetyLimitError (a
        ValueError) before anything is sent. (250 mW per supply on USB power.)
        """
        vp = self._check_supply(v_plus, 0.0, SUPPLY_MAX_VOLTAGE, "V+ supply")
        vm = self._check_supply(v_minus, -SUPPLY_MAX_VOLTAGE, 0.0, "V- supply")
        self._call("analogIO", "channelNodeSet", 0, 0, 1.0)
        self._call("analogIO", "channelNodeSet", 0, 1, vp)
        self._call("analogIO", "channelNodeSet", 1, 0, 1.0)
        self._call("analogIO", "channelNodeSet", 1, 1, vm)
        self._call("analogIO", "enableSet", True)

    def supplies_off(self) -> None:
        """Master-disable the supplies, then disable both channels."""
        self._call("analogIO", "enableSet", False)
        self._call("analogIO", "channelNodeSet", 0, 0, 0.0)
        self._call("analogIO", "channelNodeSet", 1, 0, 0.0)

    @staticmethod
    def _check_supply(value: float, lo: float, hi: float, setting: str) -> float:
        if isinstance(value, bool):
            raise TypeError(f"{setting} must be a number in V, got {value!r}")
        v = float(value)
        if not (math.isfinite(v) and lo <= v <= hi):
            limit = hi if hi > 0 else lo
            raise SafetyLimitError(
                f"{setting} = {value!r} V refused: the AD2 supply spans [{lo:g}, {hi:g}] V",
                setting=setting,
                value=v,
                limit=limit,
            )
        return v
