"""Safety properties of the simulated bench under random user requests (hypothesis).

A random bench (voltage, compliance and read limits, pulse instrument) takes a random sequence of
requests — I-V sweeps, pulses (with and without a current limit), program-and-verify targets,
MVM inputs, cell reads — through the :class:`~crossbar.core.Crossbar` facade. Whatever happens:

1. nothing beyond the bench's limits ever reaches a bus: every SCPI command the 6487 twin
   received (``SOUR:VOLT x``, ``SOUR:VOLT:ILIM x``, sweep ``STAR``/``STOP``), every AWG level and
   pulse the AD2 fake was configured to play (offset + amplitude × waveform, reconstructed from
   its call log at each ``configure(ch, 1)``), and every level the simulated bench actually
   applied (6487 output while operating, AWG buses);
2. a refused request raises SafetyLimitError *before anything is written*: at the moment the
   error is raised, neither twin has received a single message or call for that request;
3. after the sequence (leaving the ``with Crossbar`` block) every output is off: 6487 not
   operating, AWG buses at 0 V, every crossbar line floating.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crossbar.config import load_bench_config, parse_bench_config
from crossbar.core import Crossbar
from instruments import errors as instrument_errors
from lab import open_backend
from sim_backends.bench_sim import SimBench

_SCPI = re.compile(r"^(SOUR:VOLT(?::SWE:STAR|:SWE:STOP|:ILIM)?)\s+(\S+)$")
_AWG_MAX = 5.0
REL = 1e-9  # float round-off on levels that were checked against the limit


# ------------------------------------------------------------------ strategies


@st.composite
def benches(draw):
    v_max = draw(st.floats(0.5, 15.0))
    compliance = draw(
        st.one_of(
            st.sampled_from([1e-5, 25e-6, 1e-4, 2.5e-4, 1e-3, 2.5e-3, 25e-3]),
            st.floats(1e-5, 25e-3),
        )
    )
    v_read = draw(st.floats(0.05, min(5.0, v_max)))
    pulses = draw(st.sampled_from(["ad2", "keithley"]))
    return v_max, compliance, v_read, pulses


cells = st.tuples(st.integers(0, 9), st.integers(0, 9))


def requests(v_max: float, compliance: float, v_read: float) -> st.SearchStrategy:
    """Requests with values anywhere, and often exactly at (or a hair beyond) the limits."""
    edge_v = [v_max, -v_max, v_max * (1 + 1e-7), v_read, -v_read, v_read * (1 + 1e-7), 5.0, 10.1]
    volts = st.one_of(st.floats(-15.0, 15.0, allow_nan=False), st.sampled_from(edge_v))
    edge_a = [compliance, compliance * (1 + 1e-7), 25e-6, 2.5e-4, 2.5e-3, 25e-3]
    amps = st.one_of(st.floats(1e-6, 3e-2), st.sampled_from(edge_a))
    return st.one_of(
        st.tuples(st.just("sweep"), cells, st.lists(volts, min_size=2, max_size=8), amps),
        st.tuples(
            st.just("pulse"), cells, volts, st.floats(1e-4, 1e-2), st.one_of(st.none(), amps)
        ),
        st.tuples(st.just("program"), cells, st.floats(1e-7, 5e-5), st.one_of(volts, st.just(4.0))),
        st.tuples(st.just("mvm"), st.integers(1, 2), st.floats(-1.0, 1.0), st.floats(0.0, 6.0)),
        st.tuples(st.just("read"), cells, st.one_of(st.floats(-1.0, 1.0), st.sampled_from(edge_v))),
    )


@st.composite
def scenarios(draw):
    bench = draw(benches())
    v_max, compliance, v_read, _ = bench
    return bench, draw(st.lists(requests(v_max, compliance, v_read), min_size=1, max_size=6))


# ------------------------------------------------------------------ bus observers


def _bench(v_max: float, compliance: float, v_read: float, pulses: str):
    d = load_bench_config("sim").to_dict()
    d["limits"] = {
        "max_voltage": v_max,
        "max_compliance": compliance,
        "max_read_voltage": v_read,
    }
    d["wiring"]["pulse_instrument"] = pulses
    d["simulation"]["device_noise"] = False
    return parse_bench_config(d, origin="hypothesis")


def assert_break_before_make(stream: list[int], wiring) -> None:
    """No CLK or LATCH rising edge while ENABLE stays high (the multiplexers would show a
    half-shifted code), and the stream ends released (ENABLE low)."""
    enable, prev = 1 << wiring.enable_pin, 0
    for k, word in enumerate(stream):
        for pin in (wiring.clk_pin, wiring.latch_pin):
            rising = word >> pin & 1 and not prev >> pin & 1
            assert not (rising and prev & enable and word & enable), (k, prev, word)
        prev = word
    assert not prev & enable


def scpi_levels(commands: list[str]) -> list[tuple[str, float]]:
    """(header, value) of every voltage / current-limit setting in the 6487 command stream."""
    out = []
    for message in commands:
        for part in message.split(";"):
            m = _SCPI.match(part.strip())
            if m:
                out.append((m.group(1), float(m.group(2))))
    return out


def awg_played_levels(calls: list[tuple[str, tuple]]) -> list[float]:
    """Extreme output levels of every AWG configuration started (``configure(ch, 1)``),
    reconstructed from the pydwf call log: offset + amplitude × [min, max] of the waveform
    (DC: the offset)."""
    state = {
        ch: {"offset": 0.0, "amplitude": 0.0, "data": np.zeros(1), "dc": True} for ch in (0, 1)
    }
    levels = []
    for name, args in calls:
        if not name.startswith("analogOut."):
            continue
        method = name.split(".", 1)[1]
        ch = args[0] if args else None
        if ch not in state:
            continue
        s = state[ch]
        if method == "nodeOffsetSet":
            s["offset"] = float(args[2])
        elif method == "nodeAmplitudeSet":
            s["amplitude"] = float(args[2])
        elif method == "nodeDataSet":
            s["data"] = np.asarray(args[2], dtype=float)
        elif method == "nodeFunctionSet":
            s["dc"] = "DC" in str(args[2])
        elif method == "configure" and args[1]:
            if s["dc"]:
                levels.append(s["offset"])
            else:
                levels += [
                    s["offset"] + s["amplitude"] * float(s["data"].min()),
                    s["offset"] + s["amplitude"] * float(s["data"].max()),
                ]
    return levels


class Applied:
    """Levels the simulated bench actually applied (6487 output while on, AWG buses)."""

    def __init__(self) -> None:
        self.smu: list[float] = []
        self.awg: list[float] = []


@pytest.fixture
def applied(monkeypatch) -> Applied:
    seen = Applied()
    set_smu, set_awg = SimBench.set_smu, SimBench.set_awg

    def smu(self, voltage, on, i_limit, *, at=None):
        if on:
            seen.smu.append(float(voltage))
        return set_smu(self, voltage, on, i_limit, at=at)

    def awg(self, channel, level, *, at=None):
        seen.awg.append(float(level))
        return set_awg(self, channel, level, at=at)

    monkeypatch.setattr(SimBench, "set_smu", smu)
    monkeypatch.setattr(SimBench, "set_awg", awg)
    return seen


class Refusals(list):
    """Bus traffic counts (6487 messages, failed messages, AD2 calls) at the moment each
    SafetyLimitError is created, on the twins in ``handles``."""

    handles = None


@pytest.fixture
def refusals(monkeypatch) -> Refusals:
    seen = Refusals()
    init = instrument_errors.SafetyLimitError.__init__

    def spy(self, *a, **k):
        h = seen.handles
        if h is not None:
            seen.append((len(h.adapter.commands), len(h.adapter.failed), len(h.dwf_library.calls)))
        init(self, *a, **k)

    monkeypatch.setattr(instrument_errors.SafetyLimitError, "__init__", spy)
    return seen


def _run(xb: Crossbar, req: tuple, rng: np.random.Generator) -> None:
    kind = req[0]
    if kind == "sweep":
        _, (r, c), v, compliance = req
        xb.iv_sweep(r, c, v, compliance=compliance, cycles=1)
    elif kind == "pulse":
        _, (r, c), amp, width, compliance = req
        xb.pulse(r, c, amp, width, compliance=compliance, read_after=False)
    elif kind == "program":
        _, (r, c), target, v_max = req
        xb.program_cell(r, c, target, v_max=abs(v_max) or 1.0, max_pulses=4)
    elif kind == "mvm":
        _, n, lo, scale = req
        x = rng.uniform(min(lo, 0.0), max(lo, 0.0) + 1e-3, (n, 10)) * scale
        xb.mvm(x)
    else:
        _, (r, c), v = req
        xb.read_cell(r, c, v_read=v)


# ------------------------------------------------------------------ the property


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios(), seed=st.integers(0, 99))
def test_random_requests_never_exceed_the_bench_limits(scenario, seed, applied, refusals):
    bench, reqs = scenario
    applied.smu.clear()
    applied.awg.clear()
    refusals.clear()
    v_max, compliance, v_read, pulses = bench
    cfg = _bench(v_max, compliance, v_read, pulses)
    rng = np.random.default_rng(seed)
    backend = open_backend(cfg)
    h = backend.sim_handles
    refusals.handles = h
    outcomes = []
    with Crossbar(backend) as xb:
        for req in reqs:
            before = (len(h.adapter.commands), len(h.adapter.failed), len(h.dwf_library.calls))
            refusals.clear()
            try:
                _run(xb, req, rng)
                outcomes.append((req[0], "ok"))
            except instrument_errors.SafetyLimitError:
                # refused before anything was written for this request
                assert refusals and refusals[0] == before, (req, before, refusals[:1])
                outcomes.append((req[0], "refused"))
            except (ValueError, IndexError, instrument_errors.InstrumentError) as exc:
                outcomes.append((req[0], type(exc).__name__))
    refusals.handles = None
    for kind, outcome in outcomes:
        event(f"{kind}: {outcome}")

    # 1. the 6487's command stream
    for header, value in scpi_levels(h.adapter.commands):
        if header == "SOUR:VOLT:ILIM":
            assert 0 < value <= compliance * (1 + REL), (header, value, compliance)
        else:
            assert abs(value) <= v_max * (1 + REL), (header, value, v_max)
    # ... the AD2's configured waveforms
    awg_limit = min(v_max, _AWG_MAX) * (1 + REL)
    for level in awg_played_levels(h.dwf_library.calls):
        assert abs(level) <= awg_limit, (level, v_max, outcomes)
    # ... and what the bench actually applied
    assert all(abs(v) <= v_max * (1 + REL) for v in applied.smu), (max(applied.smu), v_max)
    assert all(abs(v) <= awg_limit for v in applied.awg), (max(applied.awg), v_max)
    # ... and the switch matrix was break-before-make: on the pin stream the AD2 fake recorded
    # (DigitalIO writes and every sample its pattern generator played), no CLK or LATCH rising
    # edge while ENABLE was high
    assert_break_before_make(h.dwf_library.dio_stream, cfg.wiring)
    # 3. every output off at the end
    assert not h.adapter.output_on
    assert h.sim_bench.awg == [0.0, 0.0]
    assert h.sim_bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)
    assert h.adapter.current_limit <= max(compliance, 25e-3)  # twin state is a real 6487 limit
    assert math.isfinite(h.clock.now())


def test_observers_see_real_traffic(applied) -> None:
    """The parsers above are not vacuous: a pulse and a sweep show up in them."""
    backend = open_backend("sim")
    h = backend.sim_handles
    with Crossbar(backend) as xb:
        xb.pulse(0, 0, 3.0, 1e-3, read_after=False)  # AD2 pulse (V/2)
        xb.iv_sweep(0, 0, [0.0, 0.5, 1.0, 1.5], compliance=1e-4)  # built-in staircase
        xb.pulse(1, 1, 5.5, 1e-3, read_after=False)  # beyond the AWG: the 6487
    levels = awg_played_levels(h.dwf_library.calls)
    assert max(levels) == pytest.approx(3.0)
    scpi = scpi_levels(h.adapter.commands)
    assert ("SOUR:VOLT:SWE:STOP", 1.5) in scpi and ("SOUR:VOLT", 5.5) in scpi
    assert ("SOUR:VOLT:ILIM", 0.00025) in scpi
    assert max(applied.smu) == pytest.approx(5.5) and max(applied.awg) == pytest.approx(3.0)


def test_break_before_make_check_is_not_vacuous() -> None:
    """The stream check sees the pattern generator's edges, and fails on a chain shifted with
    ENABLE high."""
    backend = open_backend("sim")
    h = backend.sim_handles
    w = backend.config.wiring
    with Crossbar(backend) as xb:
        xb.read_cell(2, 3)
        xb.pulse(2, 3, 2.0, 1e-3, read_after=False)
    stream = h.dwf_library.dio_stream
    clk_edges = sum(
        1 for a, b in zip(stream, stream[1:]) if b >> w.clk_pin & 1 and not a >> w.clk_pin & 1
    )
    assert clk_edges >= 3 * 80  # three routings: the read, its differential baseline, the pulse
    assert_break_before_make(stream, w)
    enable = 1 << w.enable_pin
    with pytest.raises(AssertionError):
        assert_break_before_make([enable, enable | 1 << w.clk_pin, 0], w)


def test_refused_request_writes_nothing(refusals) -> None:
    backend = open_backend("sim")
    h = backend.sim_handles
    refusals.handles = h
    with Crossbar(backend) as xb:
        before = (len(h.adapter.commands), len(h.adapter.failed), len(h.dwf_library.calls))
        with pytest.raises(instrument_errors.SafetyLimitError):
            xb.iv_sweep(0, 0, [0.0, 7.0], compliance=1e-4)
        assert refusals == [before]
    refusals.handles = None
