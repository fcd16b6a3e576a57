"""Data sets for the inference study: two moons (the paper's hardware task) and sklearn digits.

Both are deterministic for a seed and split into train / validation / test sets. Features are
transformed with statistics fixed at training time (``feature_mean``, ``feature_std``), stored
with the data set and with every saved model so the same transform runs at deployment:
``x_model = (x_raw - feature_mean) / feature_std``.

Sizes (defaults):

* moons: 600 train / 200 validation / 400 test points (``make_moons`` noise 0.2), features
  standardised with the training mean and standard deviation.
* digits: the 1,797 sklearn 8×8 digits, stratified 60 / 20 / 20 % split (1,078 / 359 / 360),
  pixel values 0…16 scaled to [0, 1] (decision: ``feature_mean = 0``, ``feature_std = 16`` so
  the stored transform has the same form as for moons and inputs stay non-negative).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits, make_moons
from sklearn.model_selection import train_test_split

from inference.names import DATA_NAMES

MOONS_SIZES_DEFAULT = (600, 200, 400)  # train, validation, test points


@dataclass
class Dataset:
    """A split, transformed classification data set.

    ``x_*`` are float32 arrays (points × features) already transformed with
    ``(x - feature_mean) / feature_std``; ``y_*`` are int64 class labels 0…n_classes−1.
    """

    name: str
    seed: int
    noise: float | None  # make_moons noise (None for digits)
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_mean: np.ndarray
    feature_std: np.ndarray

    @property
    def n_features(self) -> int:
        """Number of input features."""
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes (from the labels of all splits)."""
        return int(max(self.y_train.max(), self.y_val.max(), self.y_test.max()) + 1)

    def transform(self, x_raw: np.ndarray) -> np.ndarray:
        """Apply the stored feature transform to raw features (float32 out)."""
        return (
            (np.asarray(x_raw, dtype=np.float64) - self.feature_mean) / self.feature_std
        ).astype(np.float32)


def make_moons_dataset(
    *,
    seed: int = 0,
    noise: float = 0.2,
    sizes: tuple[int, int, int] = MOONS_SIZES_DEFAULT,
) -> Dataset:
    """Two moons, split into (train, validation, test) = ``sizes`` points, standardised.

    Args:
        seed: random seed of ``make_moons`` (same seed → identical arrays).
        noise: standard deviation of the Gaussian noise added by ``make_moons`` (≥ 0).
        sizes: numbers of train / validation / test points (each ≥ 1).
    """
    if noise < 0 or not np.isfinite(noise):
        raise ValueError(f"moons noise must be a finite number >= 0, got {noise!r}")
    n_train, n_val, n_test = (int(s) for s in sizes)
    if min(n_train, n_val, n_test) < 1:
        raise ValueError(f"split sizes must all be >= 1, got {sizes!r}")
    x, y = make_moons(
        n_samples=n_train + n_val + n_test, noise=noise, shuffle=True, random_state=seed
    )
    mean = x[:n_train].mean(axis=0)
    std = x[:n_train].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return _split(x, y, n_train, n_val, mean, std, name="moons", seed=seed, noise=float(noise))


def make_digits_dataset(*, seed: int = 0, fractions: tuple[float, float] = (0.6, 0.2)) -> Dataset:
    """sklearn 8×8 digits (ships with sklearn), stratified split, pixels scaled to [0, 1].

    Args:
        seed: seed of the stratified shuffle split.
        fractions: (train, validation) fractions; the test set is the rest.
    """
    f_train, f_val = fractions
    if not (0 < f_train < 1 and 0 < f_val < 1 and f_train + f_val < 1):
        raise ValueError(f"fractions must be in (0, 1) and sum to < 1, got {fractions!r}")
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    idx = np.arange(len(y))
    idx_train, idx_rest = train_test_split(
        idx, train_size=f_train, stratify=y, random_state=seed, shuffle=True
    )
    rel_val = f_val / (1.0 - f_train)
    idx_val, idx_test = train_test_split(
        idx_rest, train_size=rel_val, stratify=y[idx_rest], random_state=seed, shuffle=True
    )
    order = np.concatenate([idx_train, idx_val, idx_test])
    mean = np.zeros(x.shape[1])
    std = np.full(x.shape[1], 16.0)  # decision: /16 scaling to [0, 1], stored as mean 0 / std 16
    return _split(
        x[order],
        y[order],
        len(idx_train),
        len(idx_val),
        mean,
        std,
        name="digits",
        seed=seed,
        noise=None,
    )


def load_dataset(name: str, *, seed: int = 0, noise: float = 0.2) -> Dataset:
    """Build a data set by name (``moons`` or ``digits``); ``noise`` applies to moons only."""
    if name == "moons":
        return make_moons_dataset(seed=seed, noise=noise)
    if name == "digits":
        return make_digits_dataset(seed=seed)
    raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(DATA_NAMES)}")


def _split(
    x: np.ndarray,
    y: np.ndarray,
    n_train: int,
    n_val: int,
    mean: np.ndarray,
    std: np.ndarray,
    *,
    name: str,
    seed: int,
    noise: float | None,
) -> Dataset:
    xt = ((x - mean) / std).astype(np.float32)
    y = np.asarray(y, dtype=np.int64)
    a, b = n_train, n_train + n_val
    return Dataset(
        name=name,
        seed=int(seed),
        noise=noise,
        x_train=xt[:a],
        y_train=y[:a],
        x_val=xt[a:b],
        y_val=y[a:b],
        x_test=xt[b:],
        y_test=y[b:],
        feature_mean=np.asarray(mean, dtype=np.float64),
        feature_std=np.asarray(std, dtype=np.float64),
    )
