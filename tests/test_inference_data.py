"""Data sets: two moons and sklearn digits, deterministic splits and stored transforms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.data import load_dataset, make_digits_dataset, make_moons_dataset


def test_moons_sizes_types_and_standardisation() -> None:
    ds = make_moons_dataset(seed=0)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (600, 200, 400)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.n_features == 2 and ds.n_classes == 2 and ds.noise == 0.2
    assert np.allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-6)
    assert np.allclose(ds.x_train.std(axis=0), 1.0, atol=1e-5)
    # classes are balanced-ish in every split
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert 0.4 < y.mean() < 0.6


@given(st.integers(0, 10_000), st.floats(0.0, 0.5))
@settings(max_examples=15, deadline=None)
def test_moons_deterministic_and_transform_consistent(seed: int, noise: float) -> None:
    a = make_moons_dataset(seed=seed, noise=noise, sizes=(50, 20, 30))
    b = make_moons_dataset(seed=seed, noise=noise, sizes=(50, 20, 30))
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    raw = a.x_val.astype(np.float64) * a.feature_std + a.feature_mean
    assert np.allclose(a.transform(raw), a.x_val, atol=1e-5)


def test_moons_seed_and_noise_change_the_data() -> None:
    a = make_moons_dataset(seed=0)
    assert not np.array_equal(a.x_train, make_moons_dataset(seed=1).x_train)
    assert not np.array_equal(a.x_train, make_moons_dataset(seed=0, noise=0.1).x_train)


def test_digits_split_and_scaling() -> None:
    ds = make_digits_dataset(seed=0)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (1078, 359, 360)
    assert ds.n_features == 64 and ds.n_classes == 10 and ds.noise is None
    for x in (ds.x_train, ds.x_val, ds.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.all(ds.feature_mean == 0) and np.all(ds.feature_std == 16)
    # stratified: every class in every split with roughly the same share
    for y in (ds.y_train, ds.y_val, ds.y_test):
        counts = np.bincount(y, minlength=10) / len(y)
        assert np.all(np.abs(counts - 0.1) < 0.02)
    again = make_digits_dataset(seed=0)
    assert np.array_equal(again.x_test, ds.x_test)
    assert not np.array_equal(make_digits_dataset(seed=1).y_train, ds.y_train)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        make_moons_dataset(noise=-0.1)
    with pytest.raises(ValueError):
        make_moons_dataset(sizes=(10, 0, 5))
    with pytest.raises(ValueError):
        make_digits_dataset(fractions=(0.8, 0.3))
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("mnist")
