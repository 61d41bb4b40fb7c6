"""The information metrics (bpm.runtime.information) against cases whose answer is known:
Gaussians with exact mutual information and entropy, a Gaussian mixture integrated
numerically, independence, and brute-force versions of the NPEET estimators."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.special import digamma

from bpm.runtime import information

N = 20_000


def gaussian_pair(rho: float, n: int = N, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    return x, rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(n)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8, 0.95])
def test_mi_continuous_bivariate_gaussian(rho):
    x, y = gaussian_pair(rho, seed=1)
    found, se = information.mi_continuous(x, y, rng=1)
    truth = -0.5 * math.log2(1 - rho**2)
    assert abs(found - truth) < 0.03
    assert 0 < se < 0.03


def test_mi_continuous_is_nearly_invariant_under_a_monotone_transform():
    x, y = gaussian_pair(0.8, seed=2)
    plain = information.mi_continuous(x, y, rng=2, uncertainty=False)[0]
    bent = information.mi_continuous(np.sinh(x), 3 * y + 1, rng=2, uncertainty=False)[0]
    assert abs(bent - plain) < 0.04
    assert abs(bent + 0.5 * math.log2(1 - 0.64)) < 0.04


def test_mi_continuous_cap_and_reproducibility():
    x, y = gaussian_pair(0.6, n=60_000, seed=3)
    a = information.mi_continuous(x, y, rng=5, max_rows=20_000)
    assert a == information.mi_continuous(x, y, rng=5, max_rows=20_000)
    assert abs(a[0] + 0.5 * math.log2(1 - 0.36)) < 0.04


def test_entropy_of_a_gaussian_sample():
    rng = np.random.default_rng(4)
    sigma = 2.5
    y = sigma * rng.standard_normal(N)
    found, se = information.entropy_continuous(y, rng=4)
    assert abs(found - 0.5 * math.log2(2 * math.pi * math.e * sigma**2)) < 0.02
    assert 0 < se < 0.02
    # As I_var takes it: 10,000 values, fuzzed
    found, se = information.continuous_entropy_for_I_var(y, rng=4)
    assert abs(found - 0.5 * math.log2(2 * math.pi * math.e * sigma**2)) < 0.03


def test_entropy_moves_by_log2_of_a_change_of_scale():
    y = np.random.default_rng(5).standard_normal(3000)
    h1 = information.continuous_entropy_for_I_var(y, rng=9)[0]
    h7 = information.continuous_entropy_for_I_var(7.0 * y + 3.0, rng=9)[0]
    assert h7 - h1 == pytest.approx(math.log2(7.0), abs=1e-9)


def mixture_information(mus, probs) -> float:
    """I[x; label] in bits for x | label ~ N(mu_label, 1), by quadrature."""
    mus, probs = np.asarray(mus, float), np.asarray(probs, float)

    def density(x):
        return float(np.sum(probs * np.exp(-0.5 * (x - mus) ** 2)) / math.sqrt(2 * math.pi))

    def integrand(x):
        f = density(x)
        return -f * math.log2(f) if f > 0 else 0.0

    h_x = integrate.quad(integrand, mus.min() - 12, mus.max() + 12, limit=200)[0]
    return h_x - 0.5 * math.log2(2 * math.pi * math.e)


@pytest.mark.parametrize(
    "mus, probs", [([0.0, 1.5], [0.5, 0.5]), ([-1.0, 0.5, 2.5], [0.2, 0.5, 0.3])]
)
def test_mi_mixed_gaussian_mixture(mus, probs):
    rng = np.random.default_rng(6)
    labels = rng.choice(len(mus), size=N, p=probs)
    x = np.asarray(mus)[labels] + rng.standard_normal(N)
    found, se = information.mi_mixed(x, labels, rng=6)
    assert abs(found - mixture_information(mus, probs)) < 0.02
    assert 0 < se < 0.02


def test_independence_gives_about_zero():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal(N), rng.standard_normal(N)
    assert abs(information.mi_continuous(x, y, rng=7)[0]) < 0.02
    assert abs(information.mi_mixed(x, rng.integers(0, 3, N), rng=7)[0]) < 0.02


def test_count_matrix_agrees_with_the_listed_reads():
    rng = np.random.default_rng(8)
    n = 3000
    x = rng.standard_normal(n)
    counts = rng.poisson(np.exp(np.column_stack([x, np.zeros(n), -x])))
    by_matrix = information.mi_mixed_counts(x, counts, rng=3, max_reads=None)
    reads_x = np.concatenate([[x[i]] * counts[i, b] for i in range(n) for b in range(3)])
    reads_bin = np.concatenate([[b] * counts[i, b] for i in range(n) for b in range(3)])
    listed = information.mi_mixed(reads_x, reads_bin, rng=3, max_reads=None)
    assert by_matrix == pytest.approx(listed, rel=1e-12)
    # the per-row weights of mi_mixed are the same reads again
    weighted = information.mi_mixed(
        np.repeat(x, 3), np.tile([0, 1, 2], n), counts.reshape(-1), rng=3, max_reads=None
    )
    assert weighted == pytest.approx(listed, rel=1e-12)
    # a cap on the reads draws them without listing them, and estimates about the same
    capped = information.mi_mixed_counts(x, counts, rng=3, max_reads=4000)
    assert abs(capped[0] - listed[0]) < 3 * (capped[1] + listed[1])


def test_r_squared_is_the_squared_pearson_correlation():
    x, y = gaussian_pair(0.7, n=500, seed=9)
    assert information.r_squared(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)
    assert math.isnan(information.r_squared([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(information.r_squared([1.0], [2.0]))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_is_refused(bad):
    x, y = gaussian_pair(0.5, n=100)
    x[17] = bad
    for call in (
        lambda: information.mi_continuous(x, y),
        lambda: information.mi_continuous(y, x),
        lambda: information.entropy_continuous(x),
        lambda: information.mi_mixed(x, (y > 0).astype(int)),
        lambda: information.mi_mixed_counts(x, np.ones((100, 2))),
        lambda: information.r_squared(x, y),
    ):
        with pytest.raises(ValueError, match="NaN or infinite"):
            call()
    counts = np.ones((100, 2))
    counts[3, 1] = math.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        information.mi_mixed_counts(y, counts)
    with pytest.raises(ValueError, match="lengths differ"):
        information.mi_continuous(y, y[:50])


def test_tiny_and_degenerate_inputs():
    few = np.arange(5.0)
    assert all(math.isnan(v) for v in information.mi_continuous(few, few))
    assert all(math.isnan(v) for v in information.entropy_continuous(few))
    assert all(math.isnan(v) for v in information.mi_mixed(few, [0, 1, 0, 1, 0]))
    found, se = information.mi_continuous(np.arange(6.0), np.ones(6), uncertainty=True)
    assert (found, se) == (0.0, 0.0)
    # tied predictions (many sequences alike): the fuzz keeps the estimate finite
    x = np.repeat(np.arange(10.0), 200)
    assert math.isfinite(information.mi_continuous(x, x + np.sin(x), rng=1)[0])
    assert information.entropy_continuous(np.ones(50))[0] == -math.inf


# Brute-force NPEET (O(N^2), max-norm) for the internals: the sorted and tree versions
# must give exactly its numbers, including on values far from zero (rounding at the edges).


def brute_kth(a: np.ndarray, k: int) -> np.ndarray:
    d = np.abs(a[:, None] - a[None, :])
    return np.sort(d, axis=1)[:, k]


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_internals_match_brute_force(offset):
    rng = np.random.default_rng(10)
    n, k = 400, 5
    x = offset + rng.standard_normal(n)
    y = 0.6 * x + rng.standard_normal(n)
    d = np.maximum(np.abs(x[:, None] - x[None, :]), np.abs(y[:, None] - y[None, :]))
    eps = np.sort(d, axis=1)[:, k]
    n_x = (np.abs(x[:, None] - x[None, :]) < eps[:, None]).sum(1)
    n_y = (np.abs(y[:, None] - y[None, :]) < eps[:, None]).sum(1)
    ksg = digamma(k) + digamma(n) - digamma(n_x).mean() - digamma(n_y).mean()
    assert information._ksg_nats(x, y, k) == pytest.approx(ksg, abs=1e-12)

    def kl(a):
        return digamma(len(a)) - digamma(k) + math.log(2) + np.log(brute_kth(a, k)).mean()

    assert information._entropy_nats(y, 7) == pytest.approx(
        digamma(n) - digamma(7) + math.log(2) + np.log(brute_kth(y, 7)).mean(), abs=1e-12
    )
    labels = (y > np.median(y) + 0.3).astype(int)
    micd = abs(kl(x) - sum((labels == b).mean() * kl(x[labels == b]) for b in (0, 1)))
    assert information._mixed_nats(x, labels, k) == pytest.approx(micd, abs=1e-12)
