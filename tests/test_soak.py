"""Soak on the simulated bench (scaled down): memory stays flat, the data file is complete.

The full soak (10,000 MVMs and 1,000 program-and-verify operations) is ``xbar bench soak``;
this runs 1,000 MVMs and 100 operations through the same code (:func:`bench.soak.soak`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.faults import run_cli
from bench.soak import MAX_GROWTH_MB, rss_mb, soak
from crossbar.datastore import read_mvm, read_records


@pytest.mark.slow
def test_scaled_down_soak_memory_and_complete_data(tmp_path: Path) -> None:
    data = tmp_path / "soak.h5"
    r = soak(mvms=1_000, programs=100, batch=100, data=data, seed=1)
    assert r.mvms == 1_000 and r.programs == 100 and r.rounds == 10
    assert r.memory_growth_mb < MAX_GROWTH_MB, r
    assert r.rss_start_mb > 0  # measured (Linux /proc)
    # the data file holds every operation done
    rec = read_records(data)
    ops = rec["operation"]
    assert int(np.sum(ops == "mvm")) == 1_000
    assert read_mvm(data)["inputs"].shape == (1_000, 10)
    assert int(np.sum(ops == "program-verify")) == r.expected_verify > 100
    assert r.records == ops.size == 1_000 + r.expected_verify
    assert r.records_missing == 0
    # program-and-verify really worked throughout (each op moved a cell to a new target)
    assert r.converged >= 95
    # the twins' bus logs were emptied each round (they would otherwise dominate memory)
    assert r.twin_log_entries > 100_000


def test_small_soak_through_the_bench_command(tmp_path: Path) -> None:
    code, out, err = run_cli(
        ["bench", "soak", "--json", "--mvms", "20", "--programs", "3", "--batch", "10", "--data",
         str(tmp_path / "s.h5")]
    )  # fmt: skip
    assert code == 0, err
    rows = {r["metric"]: r for r in json.loads(out)}
    assert rows["memory_growth"]["unit"] == "MB" and rows["memory_growth"]["peer_value"] == 50.0
    assert rows["mvms"]["value"] == 20 and rows["programs"]["value"] == 3
    assert rows["records_missing"]["value"] == 0
    rec = read_records(tmp_path / "s.h5")
    assert rows["records"]["value"] == rec["operation"].size


def test_rss_is_measured() -> None:
    before = rss_mb()
    block = np.ones(20_000_000)  # 160 MB, touched
    after = rss_mb()
    assert after - before > 100
    del block


def test_soak_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        soak(mvms=-1, programs=0)
