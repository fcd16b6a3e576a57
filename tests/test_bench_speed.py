"""Issue 18's acceptance as the benchmarks measure it: the fast io path against the legacy
peer in the same run, on the twins' virtual clock (estimated real-bench time, not wall time)."""

from __future__ import annotations

import argparse

import pytest

from bench import crossbar as bench_crossbar
from bench import io as bench_io


def _rows(rows) -> dict[tuple[str, str], object]:
    return {(r.case, r.metric): r for r in rows}


def test_read_map_acceptance_against_the_legacy_peer() -> None:
    rows = _rows(bench_io._map_rows(argparse.Namespace()))
    case = "read-map-10x10"
    time = rows[(case, "est. time (v/3, differential)")]
    calls = rows[(case, "AD2 pydwf calls per cell")]
    assert time.value <= 4.0 and time.peer_value > 20.0
    assert calls.value <= 10 and calls.peer_value == pytest.approx(181.51)  # 110 · 165 + 1
    assert rows[(case, "same readings (max |G/G_peer - 1|)")].value == 0.0
    err = rows[(case, "median |G_read/G_true - 1|")]
    assert err.value == err.peer_value
    assert rows[(case, "acceptance (<= 4 s, <= 10 calls/cell, same error)")].value == 1.0


def test_repeated_reads_are_bursts_with_the_same_readings() -> None:
    rows = _rows(bench_io._repeat_rows(argparse.Namespace(), n=10))
    assert rows[("read-repeat-10", "same readings (max |G/G_peer - 1|)")].value == 0.0
    k = rows[("read-repeat-10", "6487 transactions")]
    assert k.value < k.peer_value / 5


def test_pulse_and_read_step_acceptance() -> None:
    rows = _rows(bench_crossbar._step_case())
    step = rows[("pulse-and-read-step", "est. bench time per step")]
    assert step.value <= 60.0 and step.peer_value > 300.0
    assert rows[("pulse-and-read-step", "acceptance (<= 60 ms)")].value == 1.0


@pytest.mark.slow
def test_moons_programming_acceptance() -> None:
    rows = _rows(bench_crossbar._moons_case())
    t = rows[("program-moons-typical", "est. real-bench time")]
    assert t.value <= 120.0 and t.peer_value > 5 * t.value
    assert rows[("program-moons-typical", "cells programmed")].value == 54
