"""The biasing table: a scheme is one entry, and every backend runs it.

A scheme added here (in the test only) through the public table is read and swept on both
backends: the simulated bench (the real drivers over the twins: the levels become switch-matrix
buses) and the physics backend (the levels become the solver's line ends). Nothing else in the
application is told about it.
"""

from __future__ import annotations

import numpy as np
import pytest

from crossbar.biasing import BIASINGS, FLOAT, GROUND, SENSE, Biasing, BiasScheme, drive
from crossbar.config import load_bench_config, parse_bench_config
from crossbar.core import Crossbar
from crossbar.policy import CrossbarPolicy
from lab import open_backend


@pytest.fixture
def rows_half():
    """Unselected rows at V/2, unselected columns grounded: the half-selected cells of the
    sensed column carry V/2 (so the read needs the differential correction), the rest of the
    selected row sees V."""
    scheme = BIASINGS.add(
        BiasScheme("rows-v/2", rows=drive(1 / 2), cols=GROUND, description="test only")
    )
    yield scheme
    BIASINGS.remove("rows-v/2")


def _bench(kind: str):
    d = load_bench_config("sim").to_dict()
    d["bench"]["backend"] = kind
    d["simulation"]["seed"] = 3
    return open_backend(parse_bench_config(d, origin=f"biasing-{kind}"))


def _sim(backend):
    handles = getattr(backend, "sim_handles", None)
    return handles.crossbar if handles is not None else backend.sim


@pytest.mark.parametrize("kind", ["twins", "physics"])
def test_a_new_scheme_reads_and_sweeps_on_both_backends(rows_half, kind: str) -> None:
    backend = _bench(kind)
    sim = _sim(backend)
    sim.devices.state = np.full(backend.shape, 0.5)
    g = sim.true_conductance(0.2)
    with Crossbar(backend) as xb:
        assert rows_half in xb.capabilities.biasings
        reads = [xb.read_cell(2, 6, v_read=0.2, biasing="rows-v/2") for _ in range(10)]
        # the differential read cancels the 9 half-selected cells at V/2 (≈ 4.5 G of sneak)
        assert np.mean([r.conductance for r in reads]) == pytest.approx(g[2, 6], rel=0.08)
        raw = CrossbarPolicy(backend, differential_read=False).read_cell(2, 6, biasing=rows_half)
        assert raw.conductance > 4 * g[2, 6]
        v = np.array([0.0, 0.1, 0.2, 0.3, 0.2, 0.1, 0.0])
        res = xb.iv_sweep(2, 6, v, compliance=25e-6, biasing="rows-v/2", cycles=2)
    assert res.current.shape == (v.size, 2) and not res.compliance.any()
    # the sensed column carries the cell's current plus the half-selected cells' at V/2
    expected = v * (g[2, 6] + 0.5 * (g[:, 6].sum() - g[2, 6]))
    np.testing.assert_allclose(res.current[:, 0], expected, rtol=0.1, atol=2e-9)
    if kind == "twins":
        h = backend.sim_handles
        assert h.sim_bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)  # released at the end
        assert not h.adapter.output_on


def test_the_new_scheme_routes_onto_the_half_bus(rows_half) -> None:
    """On the twins the unselected rows sit on BIAS_HALF and the columns on GND during the
    reading (the switch-matrix model decodes the DIO stream the driver sent)."""
    backend = _bench("twins")
    seen = []
    sim_bench = backend.sim_handles.sim_bench
    measure = sim_bench.measure_smu

    def spy(*a, **k):
        seen.append(sim_bench.routing())
        return measure(*a, **k)

    sim_bench.measure_smu = spy
    with Crossbar(backend, differential_read=False) as xb:
        xb.read_cell(4, 1, biasing="rows-v/2")
    rows, cols = seen[-1]
    assert rows[4] == "SMU_SOURCE" and cols[1] == "SMU_SENSE"
    assert {r for i, r in enumerate(rows) if i != 4} == {"BIAS_HALF"}
    assert {c for j, c in enumerate(cols) if j != 1} == {"GND"}


def test_a_scheme_the_hardware_cannot_apply_is_refused_before_the_bus() -> None:
    quarter = BIASINGS.add(BiasScheme("v/4", rows=drive(1 / 4), cols=drive(3 / 4)))
    try:
        backend = _bench("twins")
        h = backend.sim_handles
        n = (len(h.adapter.commands), h.dwf_library.transactions)
        assert quarter not in backend.capabilities.biasings  # no V/4 divider on the bench
        with pytest.raises(ValueError, match="cannot apply"):
            CrossbarPolicy(backend).read_cell(0, 0, biasing="v/4")
        assert (len(h.adapter.commands), h.dwf_library.transactions) == n
        physics = _bench("physics")
        assert quarter in physics.capabilities.biasings  # any level in the simulation
        backend.close()
    finally:
        BIASINGS.remove("v/4")


def test_table_rules() -> None:
    assert [b.name for b in Biasing] == ["v/2", "v/3", "ground", "float", "cols-2v/3"]
    assert Biasing.parse("V/3") is Biasing.V3 and Biasing.parse(Biasing.V2) is Biasing.V2
    with pytest.raises(ValueError, match="choose one of"):
        Biasing.parse("v/5")
    with pytest.raises(ValueError, match="exists already"):
        BIASINGS.add(BiasScheme("v/3", drive(1 / 3), drive(2 / 3)))
    assert Biasing.V3.baseline_fraction == pytest.approx(1 / 3)
    assert Biasing.GROUND.baseline_fraction is None and Biasing.COLS_2V3.baseline_fraction is None
    lines = Biasing.COLS_2V3.lines((3, 3), 1, 2)
    assert lines.rows == (GROUND, drive(1.0), GROUND)
    assert lines.cols == (drive(2 / 3), drive(2 / 3), SENSE)
    assert Biasing.FLOAT.lines((2, 2), 0, 0).rows[1] == FLOAT
    with pytest.raises(ValueError, match="V >= 0 only"):
        Biasing.COLS_2V3.check_polarity([0.5, -0.1], "sweep voltages")
