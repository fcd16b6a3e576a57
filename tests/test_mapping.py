"""Weight mapping (METHODS section 5): the algebra, the window, the placement messages."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import IdealCrossbar
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from crossbar.mapping import (
    MappingError,
    NetworkPlacement,
    currents_to_outputs,
    full_map,
    inputs_to_voltages,
    map_weights,
    place_network,
)

G_MIN, G_MAX = 2e-6, 80e-6


def test_map_weights_small_example_exact() -> None:
    w = np.array([[1.0, -2.0], [0.5, 0.0]])
    b = np.array([0.3, -0.1])
    m = map_weights(w, b, g_min=G_MIN, g_max=G_MAX, rows=0, cols=0, v_bias=0.3, x_max=1.0)
    # s_x = 0.3 V / 1 = 0.3; bias equivalents b·s_x/v_bias = b; max |W| = 2 -> k = 2 / 78 µS
    assert m.input_scale == pytest.approx(0.3)
    assert m.k == pytest.approx(2.0 / (G_MAX - G_MIN))
    t = m.targets
    assert t.shape == (3, 4)
    dg = G_MAX - G_MIN
    # output 0: G+ columns 0, G- column 1
    np.testing.assert_allclose(t[:, 0], [G_MIN + dg / 2, G_MIN, G_MIN + 0.3 * dg / 2])
    np.testing.assert_allclose(t[:, 1], [G_MIN, G_MIN + dg, G_MIN])
    np.testing.assert_allclose(t[:, 2], [G_MIN + 0.25 * dg, G_MIN, G_MIN])
    np.testing.assert_allclose(t[:, 3], [G_MIN, G_MIN, G_MIN + 0.05 * dg])
    w_back, b_back = m.effective_weights(t)
    np.testing.assert_allclose(w_back, w, rtol=1e-12)
    np.testing.assert_allclose(b_back, b, rtol=1e-12, atol=1e-15)


def _ideal_layer_outputs(m, x, rows=10, cols=10, x_max=None):
    xb = IdealCrossbar(np.full((rows, cols), G_MIN))
    xb.g[m.row_start : m.row_start + m.n_rows, m.col_start : m.col_start + m.n_cols] = m.targets
    v_in, s = inputs_to_voltages(x, 0.3, x_max=x_max)
    v = m.row_voltages(v_in, rows, input_scale=s)
    return currents_to_outputs(xb.mvm(v), m, s)


finite = st.floats(-5, 5, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    w=arrays(float, st.tuples(st.integers(1, 5), st.integers(1, 8)), elements=finite),
    data=st.data(),
)
def test_inverse_of_ideal_mvm_is_wx_plus_b(w: np.ndarray, data: st.DataObject) -> None:
    n_out, n_in = w.shape
    b = data.draw(arrays(float, (n_out,), elements=finite))
    x = data.draw(arrays(float, (4, n_in), elements=finite))
    x_max = data.draw(st.floats(0.5, 10))
    row0 = data.draw(st.integers(0, 10 - (n_in + 1)))
    col0 = data.draw(st.integers(0, 10 - 2 * n_out))
    m = map_weights(w, b, g_min=G_MIN, g_max=G_MAX, rows=row0, cols=col0, x_max=x_max)
    assert np.all(m.targets >= G_MIN) and np.all(m.targets <= G_MAX)
    want = x @ w.T + b
    scale = max(1.0, float(np.max(np.abs(want))))
    # reference scale (bias row at v_bias), inputs inside the calibration range
    xc = np.clip(x, -x_max, x_max)
    y = _ideal_layer_outputs(m, xc, x_max=x_max)
    np.testing.assert_allclose(y, xc @ w.T + b, rtol=1e-9, atol=1e-9 * scale)
    # a batch-derived input scale (bias row voltage v_bias·s/s_ref ≤ 0.3 V needs the batch max
    # ≥ x_max·v_bias/0.3): the bias row voltage follows and the algebra stays exact
    x_peak = float(np.max(np.abs(x)))
    if x_max * 0.2 / 0.3 <= x_peak:
        y2 = _ideal_layer_outputs(m, x, x_max=None)
        np.testing.assert_allclose(y2, want, rtol=1e-9, atol=1e-9 * scale)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0.01, 1.0),
    st.floats(1e-3, 1e3),
    arrays(float, (4, 3), elements=st.floats(-1e4, 1e4)),
)
def test_voltages_never_exceed_the_read_range(v_read_max, input_scale, x) -> None:
    """With a layer's range (``x_max = v_read_max / input_scale``, as the deployment passes it)
    no voltage exceeds ``v_read_max`` by even one ulp: the bench's read limit refuses it (a
    study on ``typical`` stopped on |V| = 0.30000000000000004 V)."""
    v, _ = inputs_to_voltages(x, v_read_max, x_max=v_read_max / input_scale)
    assert np.max(np.abs(v)) <= v_read_max
    # input_scale 4.625: x_max·s_x = 0.30000000000000004 before the second clip
    assert inputs_to_voltages(np.array([[1e9]]), 0.3, x_max=0.3 / 4.625)[0][0, 0] == 0.3


def test_inputs_to_voltages_scales_into_read_range() -> None:
    x = np.array([[1.0, -4.0], [2.0, 0.5]])
    v, s = inputs_to_voltages(x, 0.3)
    assert s == pytest.approx(0.3 / 4.0)
    assert np.max(np.abs(v)) == pytest.approx(0.3)
    v2, s2 = inputs_to_voltages(x, 0.3, x_max=2.0)
    assert s2 == pytest.approx(0.15)
    np.testing.assert_allclose(v2, [[0.15, -0.3], [0.3, 0.075]])  # -4 clipped to the range
    with pytest.raises(MappingError, match="x_max"):
        inputs_to_voltages(x, 0.3, x_max=0.0)


def test_bias_row_voltage_checked_against_read_limit() -> None:
    m = map_weights(np.ones((1, 2)), np.ones(1), g_min=G_MIN, g_max=G_MAX, x_max=1.0)
    v_in, s = inputs_to_voltages(np.array([[0.01, 0.02]]), 0.3)  # batch max 0.02 -> huge scale
    with pytest.raises(MappingError, match="bias row would be driven"):
        m.row_voltages(v_in, 10, input_scale=s)


def test_moons_network_default_placement() -> None:
    rng = np.random.default_rng(1)
    w1, b1 = rng.normal(size=(5, 2)), rng.normal(size=5)
    w2, b2 = rng.normal(size=(2, 5)), rng.normal(size=2)
    p = place_network([(w1, b1), (w2, b2)], shape=(10, 10), g_min=G_MIN, g_max=G_MAX)
    l1, l2 = p.layers
    assert (list(l1.rows), list(l1.cols)) == ([0, 1, 2], list(range(10)))
    assert (list(l2.rows), list(l2.cols)) == ([3, 4, 5, 6, 7, 8], [0, 1, 2, 3])
    full = full_map(p)
    assert full.shape == (10, 10)
    assert np.all(full[9] == G_MIN) and np.all(full[3:9, 4:] == G_MIN)
    np.testing.assert_array_equal(full[0:3, :], l1.targets)
    np.testing.assert_array_equal(full[3:9, 0:4], l2.targets)
    assert p.used_mask().sum() == 3 * 10 + 6 * 4
    assert np.all((full >= G_MIN) & (full <= G_MAX))
    assert np.all(p.full_map(park=5e-6)[9] == 5e-6)

    # the whole network on the ideal array: layer by layer, other rows at 0 V
    xb = IdealCrossbar(full)
    x = rng.normal(size=(7, 2))
    v, s = inputs_to_voltages(x, 0.3, x_max=3.0)
    p1 = p.layers[0]
    p1_check = map_weights(w1, b1, g_min=G_MIN, g_max=G_MAX, x_max=3.0)
    # the placement used x_max = 1; use its reference scale for exact bias handling
    v, s = inputs_to_voltages(x, 0.3, x_max=0.3 / p1.input_scale)
    h = currents_to_outputs(xb.mvm(p.row_voltages(0, v, input_scale=s)), p1, s)
    np.testing.assert_allclose(h, np.clip(x, -1, 1) @ w1.T + b1, rtol=1e-9, atol=1e-12)
    assert p1_check.input_scale == pytest.approx(0.1)
    h = np.maximum(h, 0)
    vh, sh = inputs_to_voltages(h, 0.3)
    y = currents_to_outputs(xb.mvm(p.row_voltages(1, vh, input_scale=sh)), l2, sh)
    np.testing.assert_allclose(y, h @ w2.T + b2, rtol=1e-9, atol=1e-12)


def test_placement_no_fit_messages() -> None:
    w1, b1 = np.ones((5, 2)), np.ones(5)
    w2, b2 = np.ones((2, 5)), np.ones(2)
    # Layer 1 starting at row 1 leaves row 0 unused; layer 2 then needs rows 4..9: fits exactly.
    place_network([(w1, b1), (w2, b2)], g_min=G_MIN, g_max=G_MAX, row_starts=[1, 4])
    with pytest.raises(MappingError) as exc:
        place_network([(w1, b1), (w2, b2)], g_min=G_MIN, g_max=G_MAX, row_starts=[0, 5])
    assert str(exc.value).startswith(
        "layer 2 needs 6 rows (5 inputs + 1 bias) starting at row 5; the array has 10 rows but "
        "only 5 are free from row 5 on"
    )
    with pytest.raises(MappingError) as exc:
        place_network([(w1, b1), (w2, b2)], g_min=G_MIN, g_max=G_MAX, row_starts=[0, 2])
    assert "layer 2 needs 6 rows (5 inputs + 1 bias) starting at row 2" in str(exc.value)
    assert "rows 0–2 are used by layer 1" in str(exc.value)
    wide = np.ones((6, 2))  # 6 outputs need 12 columns
    with pytest.raises(MappingError) as exc:
        place_network([(wide, np.ones(6))], g_min=G_MIN, g_max=G_MAX)
    assert str(exc.value) == (
        "layer 1 needs 12 columns (2 per output × 6 outputs) starting at column 0; the array "
        "has 10 columns"
    )
    with pytest.raises(MappingError, match="layer 2 has 5 inputs but layer 1 has 4 outputs"):
        place_network([(np.ones((4, 2)), None), (w2, b2)], g_min=G_MIN, g_max=G_MAX)
    with pytest.raises(MappingError, match="the given rows range"):
        map_weights(w1, b1, g_min=G_MIN, g_max=G_MAX, rows=range(0, 2))
    with pytest.raises(MappingError, match="g_min < g_max"):
        map_weights(w1, b1, g_min=G_MAX, g_max=G_MIN)
    with pytest.raises(MappingError):
        NetworkPlacement(
            shape=(10, 10),
            layers=(
                map_weights(w1, b1, g_min=G_MIN, g_max=G_MAX, rows=0),
                map_weights(w2, b2, g_min=G_MIN, g_max=G_MAX, rows=2),
            ),
        )


def test_no_bias_layer_and_all_zero_weights() -> None:
    m = map_weights(np.zeros((2, 3)), None, g_min=G_MIN, g_max=G_MAX)
    assert m.n_rows == 3 and m.bias_row is None
    assert np.all(m.targets == G_MIN)
    y = _ideal_layer_outputs(m, np.ones((2, 3)))
    np.testing.assert_allclose(y, 0.0, atol=1e-15)
