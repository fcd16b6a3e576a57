"""The Analog Discovery 2 twin: the fake pydwf library wired to the simulated bench.

:class:`TwinDwfLibrary` is a :class:`~sim_backends.fake_pydwf.FakeDwfLibrary` (same pydwf
names and signatures, so the real ``AnalogDiscovery2`` driver runs on it unchanged) whose hooks
drive a :class:`~sim_backends.bench_sim.SimBench`:

* DIO: every driven word goes to the bench's :class:`ShiftRegisterMatrix` (the switch-matrix
  routing, ENABLE low = all lines floating).
* AWG: ``configure(ch, start=1)`` of a DC (run-forever) output sets the AWG bus level; a
  one-shot output (``runSet(t) > 0``: the driver's pulses and arbitrary waveforms) is played at
  once: the waveform's levels are applied for their durations through ``SimBench.apply`` and
  the virtual clock advances by ``wait + run``; then the output returns to its idle level.
  Stopping (``start=0``) leaves the idle level (0 V when disabled).
* Scope: ``statusData`` returns the TIA1/TIA2 outputs (``SimBench.tia_voltages``: −I·gain,
  device and scope noise) over the acquisition, clipped to the channel's hardware range and
  quantised to 14 bits over it: the AD2 has a 5 V (±2.5 V) and a 50 V (±25 V) span and uses the
  smallest covering ``channelRangeSet``; the LSB is span / 2¹⁴. Twin limitation: a capture
  triggered on an AWG pulse records the steady state after the pulse, not the pulse itself.

Time: every pydwf call costs ``latency_s`` (USB round trip, default 1 ms) on the bench's virtual
clock; an acquisition is ``Done`` no earlier than ``buffer/frequency`` after it started. The
pattern generator (DigitalOut) charges per bit too: ``dataSet`` costs ``bit_upload_s`` per bit
(default 1 µs: 1 Mbit/s, a conservative figure — the AD2's USB 2.0 High-Speed link carries
480 Mbit/s and the WaveForms SDK packs the bits eight to a byte, so a 1024-bit pattern is one
short bulk transfer; Digilent's AD2 reference manual gives the USB 2.0 HS link and the 100 MHz
pattern clock with a 1 kbit per-pin buffer), and a played pattern (``configure(True)``) is
``Done`` no earlier than its run (samples × divider / 100 MHz) after it started (the
``status`` poll that sees ``Done`` waits for it). Pass
the driver ``clock=handles.clock.now, sleep=handles.clock.advance`` so its polling and
timeouts run on the same virtual clock.

Faults (:class:`~sim_backends.faults.FaultPlan`, counted in pydwf calls): a timeout is one call
failing with ``DwfLibraryError(ApiLockTimeout)`` (the driver raises ``InstrumentTimeout``); a
lost connection makes that call and every later one fail with
``DwfLibraryError(UnknownError)`` (``ConnectionLost``); an error code raises one
``DwfLibraryError`` with ``DwfErrorCode(error_code)`` (``UnknownError`` if the value is not a
pydwf code); a garbled reply is a capture of random samples. The AD2 has no current limit, so
``compliance_after`` does nothing here.

A lost connection is modelled as an unplugged AD2 (it is powered by its USB cable): from the
failing call on, its outputs are dead — both AWG buses at 0 V and the DIO pins undriven, so the
switch matrix's ENABLE pull-down (see ``instruments.switch_matrix``) floats every crossbar line.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydwf import DwfAnalogOutFunction, DwfErrorCode, DwfLibraryError

from sim_backends.bench_sim import SimBench
from sim_backends.fake_pydwf import AwgChannelState, FakeDeviceInfo, FakeDwfLibrary
from sim_backends.faults import FaultInjector, FaultPlan

__all__ = ["SCOPE_BITS", "SCOPE_SPANS", "TwinDwfLibrary", "quantise"]

SCOPE_BITS = 14
SCOPE_SPANS = (5.0, 50.0)  # V peak-to-peak: the AD2's two input ranges


def quantise(v: np.ndarray, range_v: float, bits: int = SCOPE_BITS) -> np.ndarray:
    """Clip ``v`` (V) to the AD2 hardware span covering ``range_v`` and round it to the
    ``bits``-bit grid (LSB = span / 2**bits, codes −2**(bits−1) … 2**(bits−1) − 1)."""
    span = next((s for s in SCOPE_SPANS if range_v <= s + 1e-12), SCOPE_SPANS[-1])
    lsb = span / 2**bits
    codes = np.clip(
        np.round(np.asarray(v, dtype=float) / lsb), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    )
    return codes * lsb


class TwinDwfLibrary(FakeDwfLibrary):
    """Fake pydwf library driving ``bench`` (see the module docstring).

    :param bench: the simulated bench.
    :param latency_s: virtual time per pydwf call, s.
    :param bit_upload_s: virtual time per pattern-generator bit uploaded (``dataSet``), s.
    :param faults: fault plan (counted in pydwf calls).
    :param seed: seed of the garbled captures.
    :param devices: enumerable devices (default one AD2).
    """

    def __init__(
        self,
        bench: SimBench,
        *,
        latency_s: float = 1e-3,
        bit_upload_s: float = 1e-6,
        faults: FaultPlan | None = None,
        seed: int = 0,
        devices: list[FakeDeviceInfo] | None = None,
    ) -> None:
        self.bench = bench
        self.clock = bench.clock
        self.latency_s = float(latency_s)
        self.bit_upload_s = float(bit_upload_s)
        self._dout_ready: float | None = None
        self.faults = FaultInjector(faults)
        self.rng = np.random.default_rng(seed)
        self._acq_start: float | None = None
        self._acq_ready: float | None = None
        self._capture: np.ndarray | None = None
        self._garble_capture = False
        self._gone = False
        super().__init__(
            devices,
            polls_until_done=1,
            source=self._source,
            on_output=self._on_output,
            on_dio=bench.on_dio,
        )

    # ------------------------------------------------------------------ every call
    def _record(self, name: str, args: tuple) -> None:
        self.clock.advance(self.latency_s)
        self.faults.transaction()
        if self.faults.connection_lost:
            self.calls.append((name, args))
            self._unplugged()
            raise DwfLibraryError(DwfErrorCode.UnknownError, "Device communication failure")
        if self.faults.take_timeout():
            self.calls.append((name, args))
            raise DwfLibraryError(DwfErrorCode.ApiLockTimeout, "API lock timeout (injected)")
        code = self.faults.take_error()
        if code is not None:
            self.calls.append((name, args))
            try:
                erc = DwfErrorCode(code)
            except ValueError:
                erc = DwfErrorCode.UnknownError
            raise DwfLibraryError(erc, f"injected error {code}")
        super()._record(name, args)
        if name == "analogIn.configure" and len(args) >= 2 and args[1]:
            self._start_acquisition()
        elif name == "analogIn.status" and args and args[0] and self._acq_ready is not None:
            wait = self._acq_ready - self.clock.now()
            if wait > 0:
                self.clock.advance(wait)  # the record takes buffer/frequency seconds
        elif name == "digitalOut.dataSet" and len(args) >= 2 and isinstance(args[1], str):
            self.clock.advance(len(args[1]) * self.bit_upload_s)  # the bits over USB
        elif name == "digitalOut.configure" and args and args[0]:
            dout = self.device.digitalOut
            self._dout_ready = self.clock.now() + dout.run * max(dout.repeat, 1)
        elif name == "digitalOut.status" and self._dout_ready is not None:
            wait = self._dout_ready - self.clock.now()
            if wait > 0:
                self.clock.advance(wait)  # the pattern plays for its run

    def _unplugged(self) -> None:
        """The device is gone: AWG outputs dead (0 V), DIO pins undriven (ENABLE pulled low)."""
        if self._gone:
            return
        self._gone = True
        for ch in range(2):
            self.bench.set_awg(ch, 0.0)
        self.bench.on_dio(0)

    @property
    def transactions(self) -> int:
        """pydwf calls made so far (each one USB transaction)."""
        return len(self.calls)

    # ------------------------------------------------------------------ scope
    def _analog_in(self) -> Any:
        return self.device.analogIn

    def _start_acquisition(self) -> None:
        ain = self._analog_in()
        self._acq_start = self.clock.now()
        self._acq_ready = self._acq_start + ain.buffer_size / ain.frequency
        self._capture = None
        self._garble_capture = False

    def _source(self, channel: int, n: int) -> np.ndarray:
        ain = self._analog_in()
        if self._capture is None or self._capture.shape[1] < n:
            start = self._acq_start if self._acq_start is not None else self.clock.now()
            self._capture = self.bench.tia_voltages(n, ain.frequency, at=start)
            self._garble_capture = self.faults.take_garbled()
            if self._acq_ready is not None and self._acq_ready > self.clock.now():
                self.clock.advance(self._acq_ready - self.clock.now())
        rng_v = float(ain.channel_range[channel])
        if self._garble_capture:
            span = next((s for s in SCOPE_SPANS if rng_v <= s + 1e-12), SCOPE_SPANS[-1])
            return quantise(self.rng.uniform(-span / 2, span / 2, n), rng_v)
        return quantise(self._capture[channel, :n], rng_v)

    # ------------------------------------------------------------------ AWG
    def _on_output(self, channel: int, state: AwgChannelState) -> None:
        bench = self.bench
        idle = state.idle_level()
        if not (state.running and state.enabled):
            bench.set_awg(channel, idle)
            return
        if state.run <= 0:  # runs until changed: a DC level (periodic shapes: their offset)
            bench.set_awg(channel, float(state.offset))
            return
        # one-shot waveform: idle during `wait`, the waveform for `run`, idle again
        bench.set_awg(channel, idle)
        if state.wait > 0:
            bench.apply(state.wait)
            self.clock.advance(state.wait)
        for level, duration in _segments(state):
            bench.set_awg(channel, level, at=bench.t_applied)
            bench.apply(duration, at=bench.t_applied)
        self.clock.advance(state.run)
        bench.set_awg(channel, idle)


def _segments(state: AwgChannelState) -> list[tuple[float, float]]:
    """The one-shot waveform as (level V, duration s) runs of equal consecutive levels."""
    m = max(int(state.data.size), 1) if state.function != DwfAnalogOutFunction.DC else 1
    m = min(m * max(int(round(state.run * state.frequency)), 1), 65536)
    t = state.wait + (np.arange(m) + 0.5) * (state.run / m)
    levels = np.asarray(state.waveform(t), dtype=float)
    change = np.flatnonzero(np.diff(levels) != 0) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [m]])
    dt = state.run / m
    return [(float(levels[s]), float((e - s) * dt)) for s, e in zip(starts, ends)]
