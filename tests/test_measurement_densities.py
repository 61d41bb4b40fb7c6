"""The continuous and count-pair measurement processes against independent computations:
each noise density integrates to one with the mean it claims, the beta-binomial against
scipy's, and the monotone link keeps E[y | t] and the selected fraction rising with t."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import betabinom, cauchy, norm

from bpm.runtime.measurement_continuous import ContinuousMeasurement
from bpm.runtime.measurement_counts import CountPairMeasurement


def _density(m: ContinuousMeasurement, y: torch.Tensor, t: float) -> torch.Tensor:
    obs = torch.stack([torch.ones_like(y), y, torch.zeros_like(y)], 1)
    return m.log_likelihood(torch.full_like(y, t), obs).exp()


@pytest.mark.parametrize("noise", ["gaussian", "cauchy", "skewt"])
def test_each_noise_is_a_density_in_the_units_of_y(noise):
    m = ContinuousMeasurement(transform="log", y_mean=-2.0, y_std=1.7, noise=noise).double()
    with torch.no_grad():
        m.log_scale.copy_(torch.tensor([-0.3, 0.2, -0.05]))
        m.raw_tails.copy_(torch.tensor([[0.4, 0.1], [1.5, -0.2]]))
    y = torch.linspace(-400.0, 400.0, 800_001, dtype=torch.float64)
    dy = float(y[1] - y[0])
    for t in (0.05, 0.5, 3.0):
        p = _density(m, y, t).detach()
        mass = float(p.sum()) * dy
        # Cauchy tails beyond +-400 standard-ish units hold about 2 s / (pi 400) of the mass
        assert mass == pytest.approx(1.0, abs=6e-3 if noise == "cauchy" else 1e-5)
        if noise != "cauchy":  # the mean is E[y | t]: yhat
            mean = float((y * p).sum()) * dy
            with torch.no_grad():
                yhat = float(m.mean(torch.tensor([t], dtype=torch.float64)))
            assert mean == pytest.approx(yhat, abs=2e-3)


def test_gaussian_and_cauchy_match_scipy_with_measured_errors():
    for noise, ref in (("gaussian", norm), ("cauchy", cauchy)):
        m = ContinuousMeasurement(transform="log", y_mean=1.0, y_std=2.0, noise=noise).double()
        t = torch.tensor([0.3, 1.0, 4.0], dtype=torch.float64)
        y = torch.tensor([0.5, -1.0, 3.0], dtype=torch.float64)
        dy = torch.tensor([0.0, 0.5, 1.5], dtype=torch.float64)
        obs = torch.stack([torch.ones(3, dtype=torch.float64), y, dy], 1)
        got = m.log_likelihood(t, obs).detach().numpy()
        with torch.no_grad():
            loc = m.mean(t).numpy()
            s = (m.noise_scale(m.standardized_mean(t)) * m.y_std).numpy()
        scale = np.sqrt(s**2 + dy.numpy() ** 2)
        np.testing.assert_allclose(got, ref.logpdf(y.numpy(), loc, scale), rtol=1e-10)


def test_padding_rows_weigh_nothing():
    m = ContinuousMeasurement()
    obs = torch.tensor([[1.0, 0.3, 0.0], [0.0, 0.0, 0.0]])
    ll = m.log_likelihood(torch.tensor([0.5, 0.5]), obs).detach()
    assert float(ll[1]) == 0.0 and math.isfinite(float(ll[0]))


def test_the_mean_rises_with_t_whatever_the_link_weights():
    torch.manual_seed(3)
    m = ContinuousMeasurement(hidden=4, transform="log", center=-1.0, scale=2.0)
    with torch.no_grad():
        for p in m.link.parameters():
            p.add_(torch.randn_like(p) * 2)
    t = torch.logspace(-4, 2, 500)
    assert bool((torch.diff(m.mean(t)) >= -1e-6).all())
    c = CountPairMeasurement(hidden=4, transform="log", center=-1.0, scale=2.0)
    with torch.no_grad():
        for p in c.parameters():
            p.add_(torch.randn_like(p) * 2)
    assert bool((torch.diff(c.selected_fraction(t)) >= -1e-6).all())


def test_count_pair_is_the_beta_binomial_in_read_order():
    c = CountPairMeasurement(transform="log").double()
    with torch.no_grad():
        c.log_kappa.fill_(math.log(7.0))
    t = torch.tensor([0.2, 1.0, 5.0, 1.0], dtype=torch.float64)
    counts = torch.tensor([[10.0, 3.0], [0.0, 4.0], [250.0, 40.0], [0.0, 0.0]], dtype=torch.float64)
    got = c.log_likelihood(t, counts).detach().numpy()
    p = c.selected_fraction(t).detach().numpy()
    n, k = counts.sum(1).numpy(), counts[:, 1].numpy()
    expected = betabinom.logpmf(k, n, 7.0 * p, 7.0 * (1 - p))
    # read order: the binomial coefficient left out
    log_choose = [
        math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)
        for a, b in zip(n, k, strict=True)
    ]
    np.testing.assert_allclose(got, expected - np.array(log_choose), rtol=1e-9, atol=1e-12)
