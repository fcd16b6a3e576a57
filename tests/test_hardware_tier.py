"""The hardware tier: a real bench, checked end to end (``pytest -m hardware --bench FILE``).

Without ``--bench`` every test here is skipped with the reason (``tests/conftest.py``), so the
README's ``python -m pytest -q`` runs everything else. With a real bench's TOML they run, in
this order, on the bench's ``[instruments]``:

* the self-test (``xbar check``'s items, :func:`lab.check.run_checks`) passes;
* one short I-V sweep at read level (0 → 0.1 → 0 → −0.1 → 0 V: built-in staircases, so the
  serial-poll wait of a built-in sweep runs on the real 6487), recorded to a data file;
* one read map at 0.1 V, recorded and read back;
* one program-and-verify of a single cell to 1.3× (or 1/1.3×) its present conductance;
* and, throughout, the 6487's two compliance indicators (VSO = −999 and the VSC bit) never
  disagree (``compliance_disagreements``: what issue 16 asks to confirm on a first real run).

Every test leaves the outputs off and the matrix released (the bench is closed after each).
The cell is ``XBAR_CHECK_CELL`` (``R,C``, default ``0,0``). ``--bench sim`` runs the tier on
the simulated bench; ``tests/test_check.py`` does that in CI, so the tier itself is tested.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

from crossbar.config import BenchConfig, load_bench_config
from crossbar.core import Crossbar
from crossbar.datastore import DataStore, read_records
from instruments.sweep_plan import cyclic_points
from lab import open_backend
from lab.check import CHECK_VOLTAGE, run_checks

pytestmark = pytest.mark.hardware


def _cell() -> tuple[int, int]:
    r, c = os.environ.get("XBAR_CHECK_CELL", "0,0").split(",")
    return int(r), int(c)


@pytest.fixture(scope="module")
def bench(hardware_bench: str) -> BenchConfig:
    return load_bench_config(hardware_bench)


@pytest.fixture
def crossbar(bench: BenchConfig, tmp_path) -> Iterator[tuple[Crossbar, DataStore]]:
    """The bench with a data file; closed (outputs off) after the test, which then checks the
    compliance indicators never disagreed."""
    with DataStore(tmp_path / "tier.h5") as store, open_backend(bench) as backend:
        xb = Crossbar(backend, datastore=store)
        yield xb, store
        keithley = getattr(backend, "keithley", None)
        if keithley is not None:
            assert keithley.compliance_disagreements == []


def test_self_test_passes(bench: BenchConfig) -> None:
    report = run_checks(bench, cell=_cell())
    assert report.passed, "\n".join(item.line() for item in report.items)
    if bench.backend != "physics":  # every item ran (none skipped)
        assert {item.status for item in report.items} == {"pass"}


def test_one_short_sweep(crossbar, tmp_path) -> None:
    xb, store = crossbar
    v = cyclic_points(CHECK_VOLTAGE, -CHECK_VOLTAGE, CHECK_VOLTAGE / 2)
    limit = xb.backend.capabilities.read_compliance
    result = xb.iv_sweep(*_cell(), v, compliance=limit, nplc=1.0, biasing="ground")
    assert result.current.shape == (v.size, 1)
    assert np.all(np.isfinite(result.current)) and not result.compliance.any()
    # the current follows the voltage's sign (a resistive cell at read level)
    i = result.current[:, 0]
    assert np.all(i[v > 0] > 0) and np.all(i[v < 0] < 0)
    store.flush()


def test_one_read_map(crossbar, tmp_path) -> None:
    xb, store = crossbar
    g = xb.read_map(v_read=CHECK_VOLTAGE)
    rows, cols = xb.backend.shape
    assert g.shape == (rows, cols) and np.all(np.isfinite(g))
    store.flush()
    records = read_records(tmp_path / "tier.h5")
    reads = records["operation"] == "read"
    assert int(np.count_nonzero(reads)) == rows * cols  # written as acquired, one per cell
    on_file = np.full((rows, cols), np.nan)
    on_file[records["row"][reads], records["col"][reads]] = records["conductance"][reads]
    np.testing.assert_allclose(on_file, g)


def test_one_program_and_verify(crossbar) -> None:
    xb, _ = crossbar
    r, c = _cell()
    g0 = xb.read_cell(r, c, v_read=CHECK_VOLTAGE).conductance
    assert g0 > 0
    target = g0 * 1.3 if g0 < 1e-4 else g0 / 1.3
    report = xb.program_cell(r, c, target, tol=0.1, max_pulses=60)
    assert report.pulses >= 1 and len(report.history) == report.pulses
    amplitudes = [a for a, _, _ in report.history]
    assert max(abs(a) for a in amplitudes) <= xb.backend.limits.max_voltage
    assert report.converged, (
        f"cell ({r}, {c}) from {g0:.3g} S to {target:.3g} S: final {report.final:.3g} S "
        f"after {report.pulses} pulses"
    )
