"""MultinomialNoise and the MLP (METHODS section 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.models import DIGITS_SIZES, MLP, MOONS_SIZES, MultinomialNoise, multinomial_eta


def test_eta_frequencies_and_mean_preserved() -> None:
    torch.manual_seed(0)
    noise = MultinomialNoise(0.2, 0.3)
    noise.train()
    x = torch.ones(400_000)
    out = noise(x)
    mean_eta = 0.5 * 0.3 + 1 - 0.2 - 0.3  # 0.65
    eta = (out * mean_eta).numpy()
    # only the three levels, each with its probability (binomial sd ~ 1e-3 at n = 4e5)
    assert set(np.round(np.unique(eta), 6)) == {0.0, 0.5, 1.0}
    assert abs(np.mean(eta == 0.0) - 0.2) < 0.005
    assert abs(np.mean(np.isclose(eta, 0.5)) - 0.3) < 0.005
    assert abs(np.mean(eta == 1.0) - 0.5) < 0.005
    # the 1/E[η] rescaling keeps the expected activation
    assert abs(float(out.mean()) - 1.0) < 0.01


def test_mean_activation_preserved_on_real_inputs() -> None:
    torch.manual_seed(1)
    x = torch.rand(1000, 20) * 3.0
    noise = MultinomialNoise(0.4, 0.4).train()
    draws = torch.stack([noise(x) for _ in range(50)])
    assert torch.allclose(draws.mean(), x.mean(), rtol=0.01)


def test_eval_mode_is_identity() -> None:
    noise = MultinomialNoise(0.5, 0.3).eval()
    x = torch.randn(100, 7)
    assert torch.equal(noise(x), x)


def test_each_forward_pass_redraws() -> None:
    noise = MultinomialNoise(0.3, 0.3).train()
    x = torch.ones(1000)
    assert not torch.equal(noise(x), noise(x))


@pytest.mark.parametrize(
    "p1,p2",
    [(-0.1, 0.2), (0.2, -0.01), (0.7, 0.4), (1.0, 0.0), (float("nan"), 0.1), (0.5, math.inf)],
)
def test_bad_probabilities_raise(p1: float, p2: float) -> None:
    with pytest.raises(ValueError, match="p1|E\\[eta\\]"):
        MultinomialNoise(p1, p2)


@given(st.floats(0, 0.95), st.floats(0, 0.95))
@settings(max_examples=50, deadline=None)
def test_eta_values_cover_the_three_levels(p1: float, p2: float) -> None:
    if p1 + p2 > 0.95:
        p1, p2 = p1 / 2, p2 / 2
    u = torch.linspace(0, 0.999999, 1001)
    eta = multinomial_eta(u, p1, p2) * (0.5 * p2 + 1 - p1 - p2)
    expected = np.where(u.numpy() < p1, 0.0, np.where(u.numpy() < p1 + p2, 0.5, 1.0))
    assert np.allclose(eta.numpy(), expected, atol=1e-6)


def test_mlp_noise_on_activations_only_in_training() -> None:
    torch.manual_seed(0)
    model = MLP((4, 16, 3), noise=MultinomialNoise(0.5, 0.0))
    x = torch.randn(8, 4)
    model.eval()
    a, b = model(x), model(x)
    assert torch.equal(a, b)
    model.train()
    assert not torch.equal(model(x), model(x))
    # the output layer gets no noise: a zero hidden layer still gives exactly the output bias
    with torch.no_grad():
        model.layers[0].weight.zero_()
        model.layers[0].bias.zero_()
    assert torch.allclose(model(x), model.layers[1].bias.expand(8, 3))


def test_mlp_noise_on_weights() -> None:
    torch.manual_seed(0)
    model = MLP((3, 5, 2), noise=MultinomialNoise(0.0, 1.0), noise_site="weights")
    # p2 = 1: every weight and bias is multiplied by 0.5 / 0.5 = 1 -> same as clean
    x = torch.randn(6, 3)
    model.train()
    out_train = model(x)
    model.eval()
    assert torch.allclose(out_train, model(x))
    model2 = MLP((3, 5, 2), noise=MultinomialNoise(0.5, 0.0), noise_site="weights").train()
    assert not torch.equal(model2(x), model2(x))


def test_sizes_and_placement_constants() -> None:
    assert MOONS_SIZES == (2, 5, 2)
    # layer l uses (inputs + 1 bias) rows and 2 * outputs columns; layers on disjoint rows
    rows = sum(a + 1 for a in MOONS_SIZES[:-1])
    cols = max(2 * b for b in MOONS_SIZES[1:])
    assert (rows, cols) == (9, 10)  # fits the 10x10 array
    assert sum(a + 1 for a in DIGITS_SIZES[:-1]) > 10  # digits is software-only
    model = MLP(MOONS_SIZES)
    assert [w.shape for w in model.augmented_weights()] == [(5, 3), (2, 6)]


def test_mlp_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError):
        MLP((3,))
    with pytest.raises(ValueError):
        MLP((3, 2), activation="sigmoid")
    with pytest.raises(ValueError):
        MLP((3, 2), noise_site="inputs")
