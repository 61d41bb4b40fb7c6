"""Standard errors from the Hessian, and the directions the data do not fix."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from bpm.compiler import load
from bpm.runtime.measurement import OrdinalMeasurement
from bpm.runtime.simulate import encode, simulate
from bpm.runtime.uncertainty import analyze, hessian

# k_a and k_b enter only through their product: a background level under occupancy.
PRODUCT = """model product
sequence x: dna[12]
energy G = matrix(x[0:12])
param k_a > 0
param k_b > 0
thermodynamic {
    empty : 0
    bound : G
}
output t = P(bound) + k_a * k_b
"""
WELL_POSED = (
    PRODUCT.replace("model product", "model basal")
    .replace("param k_b > 0\n", "")
    .replace("k_a * k_b", "k_a")
)
# The same with the background fixed: a background under occupancy trades off against the
# profiled link (k_a at 16,000 and 64,000 cells lands at 2.0 and 2.5, truth 0.2, and the
# fits stop short of an optimum), so only with k_a known do the fits reach their optima.
BACKGROUND_KNOWN = WELL_POSED.replace("param k_a > 0\n", "param k_a = 0.2\n")


def _fitted(text, n, seed=0, rounds=1, **truth):
    """A module and an affine-link measurement fitted by L-BFGS to simulated reads, to
    convergence (``rounds`` restarts of 300 iterations at most)."""
    cls = load(text)
    table, sim = simulate(cls, n=n, seed=seed, mutation_rate=0.2, params=truth)
    codes = encode(table["x"], "ACGT")
    counts = table.filter(like="ct_").to_numpy()
    module = cls().double()
    module.set_params({k: torch.as_tensor(v) for k, v in sim.params.items()})
    measurement = OrdinalMeasurement(counts.shape[1], hidden=0, floor=0.0).double()
    x = torch.as_tensor(codes).long()
    c = torch.as_tensor(counts).double()
    with torch.no_grad():
        measurement.background_mix.fill_(-6.0)
    measurement.set_cutpoints(torch.cumsum(c.sum(0), 0) / c.sum())
    params = list(module.parameters()) + list(measurement.parameters())
    opt = torch.optim.LBFGS(
        params,
        max_iter=300,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
    )

    def closure():
        opt.zero_grad()
        loss = -(c * measurement.log_probs(module(x))).sum() / c.sum()
        loss.backward()
        return loss

    for _ in range(rounds):  # L-BFGS restarts until it stops moving: a converged fit
        before = float(closure().detach())
        opt.step(closure)
        if before - float(closure().detach()) < 1e-13:
            break
    return module, measurement, (codes, counts), sim


@pytest.mark.slow
def test_structured_hessian_equals_plain_double_differentiation():
    cls = load("models/lac.bpm")
    table, sim = simulate(cls, n=1500, seed=1)
    module = cls().double()
    module.set_params({k: torch.as_tensor(v) for k, v in sim.params.items()})
    measurement = OrdinalMeasurement(10, hidden=2).double()
    codes = encode(table["x"], "ACGT")
    counts = table.filter(like="ct_").to_numpy()
    fast = hessian(module, measurement, (codes, counts))[0]
    x = torch.as_tensor(codes).long()
    c = torch.as_tensor(counts).double()
    plain = hessian(module, measurement, nll=lambda m, q: -(c * q.log_probs(m(x))).sum())[0]
    assert np.abs(fast - plain).max() < 1e-8 * np.abs(plain).max()


@pytest.mark.slow
def test_a_product_is_named_as_such():
    # 300 L-BFGS iterations stop short of the optimum (gradient 1.8e-4 bits per read, or
    # below 1e-4, as the floating-point order of a pass has it); restarts reach it
    module, measurement, data, _ = _fitted(PRODUCT, 20_000, rounds=5, k_a=0.3, k_b=0.5)
    result = analyze(module, measurement, data)
    assert result.status == "ok"
    assert result.unidentified == [
        "k_a and k_b appear only as their product k_a·k_b: the data fix the combination, not each"
    ]
    assert result.standard_errors["k_a"] == np.inf
    assert result.standard_errors["k_b"] == np.inf
    assert np.isfinite(result.standard_errors["G"]).all()
    assert np.isfinite(result.standard_errors["G.offset"])


@pytest.mark.slow
def test_kinetic_rate_and_offset_combination_is_found():
    """k_on * exp(-G_R) leaves k_on and the offset of G_R tied together."""
    module, measurement, data, _ = _fitted("models/open_complex.bpm", 3000)
    result = analyze(module, measurement, data)
    text = " ".join(result.unidentified)
    assert "k_on" in text and "G_R.offset" in text
    assert result.standard_errors["k_on"] == np.inf


@pytest.mark.slow
def test_standard_errors_shrink_like_one_over_root_n():
    # At the optima of four times the reads (both fits converged: gradient below
    # train.GRADIENT_TOL, no point declared stationary). With the background k_a learned
    # the fits stop short of an optimum where the floating-point order of a pass has them
    # stop, and k_a's standard error with them (8,000 against 32,000 reads: 1.24x to
    # 1.64x after 300 iterations, 0.46x to 0.98x after 1,500), so k_a is fixed here.
    small = analyze(*_fitted(BACKGROUND_KNOWN, 8_000, rounds=3)[:3])
    large = analyze(*_fitted(BACKGROUND_KNOWN, 32_000, rounds=3)[:3])
    assert small.status == "ok" and large.status == "ok"
    assert small.unidentified == [] and large.unidentified == []
    ratio = np.median(small.standard_errors["G"] / large.standard_errors["G"])
    assert 1.6 < ratio < 2.5  # sqrt(4) = 2
    ratio = small.standard_errors["G.offset"] / large.standard_errors["G.offset"]
    assert 1.6 < ratio < 2.5


@pytest.mark.slow
def test_standard_errors_match_the_spread_of_estimates():
    """The Hessian's standard errors agree with the scatter of refits on new reads.

    The reads are redrawn from the fitted model itself (a parametric bootstrap), so the
    likelihood is exactly right. ``simulate`` draws reads from cells with replacement
    (about as many reads as cells), so its reads of one cell are not independent; the
    scatter of refits on fresh simulations is then wider than any read-level
    likelihood's curvature says, whatever the standard errors' arithmetic.
    """
    module, measurement, (codes, counts), _ = _fitted(WELL_POSED, 8_000, seed=1, k_a=0.2)
    x = torch.as_tensor(codes).long()
    with torch.no_grad():
        p = measurement.log_probs(module(x)).exp()
    reads = torch.as_tensor(counts.sum(1))
    center = module.get_params()["G"].numpy()
    center = center - center.mean(1, keepdims=True)
    gen = torch.Generator().manual_seed(0)
    z = []
    for _ in range(6):
        rows = [
            torch.multinomial(p[i], int(reads[i]), replacement=True, generator=gen)
            for i in range(len(reads))
        ]
        c = torch.stack([r.bincount(minlength=p.shape[1]) for r in rows]).double()
        m, q = copy.deepcopy(module), copy.deepcopy(measurement)
        params = list(m.parameters()) + list(q.parameters())
        opt = torch.optim.LBFGS(
            params,
            max_iter=300,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-10,
            tolerance_change=1e-14,
        )

        def closure(m=m, q=q, c=c, opt=opt):
            opt.zero_grad()
            loss = -(c * q.log_probs(m(x))).sum() / c.sum()
            loss.backward()
            return loss

        for _ in range(3):
            opt.step(closure)
        g = m.get_params()["G"].numpy()
        se = analyze(m, q, (codes, c.numpy()), converged=True).standard_errors["G"]
        z.append(((g - g.mean(1, keepdims=True) - center) / se).ravel())
    rms = float(np.sqrt(np.nanmean(np.square(z))))
    assert 0.6 < rms < 1.5  # before the profiling fix: about 4


def test_pseudo_inverse_survives_a_zero_or_negative_diagonal():
    """A flat nuisance (diagonal 0 or -1e-12) must not wipe out the other directions."""
    from bpm.runtime.uncertainty import pinv_sym as _pinv_sym

    M = np.diag([4.0, 2.0, 0.0, -1e-12])
    M[0, 1] = M[1, 0] = 1.0
    inverse = _pinv_sym(M, 1e-12)
    assert np.allclose(inverse[:2, :2], np.linalg.inv(M[:2, :2]))
    assert np.allclose(inverse[2:, :], 0.0) and np.allclose(inverse[:, 2:], 0.0)


def _every_infinite_parameter_is_named(result):
    text = " ".join(result.unidentified)
    for name, se in result.standard_errors.items():
        if np.isinf(se).any():
            assert name in text, (name, result.unidentified)
    assert "fix only 0" not in text


def test_a_product_is_named_on_a_small_fit():
    module, measurement, data, _ = _fitted(PRODUCT, 3000, k_a=0.3, k_b=0.5)
    result = analyze(module, measurement, data)
    assert result.unidentified == [
        "k_a and k_b appear only as their product k_a·k_b: the data fix the combination, not each"
    ]
    _every_infinite_parameter_is_named(result)


def test_the_matrix_gauge_is_not_reported_as_a_flat_direction():
    """A matrix's per-position shifts against its offset are projected out, not flagged:
    on a converged fit every entry of G has a finite standard error."""
    module, measurement, data, _ = _fitted("models/open_complex.bpm", 3000, rounds=3)
    result = analyze(module, measurement, data)
    assert result.status == "ok"
    assert np.isfinite(result.standard_errors["G_R"]).all()
    assert "G_R" not in result.reasons


def test_a_converged_small_fit_reports_finite_standard_errors():
    # restarted until L-BFGS stops moving: after its first 300 iterations the fit can sit
    # by a weak saddle along k_open and k_init (gradient 5.5e-6 bits per read), as the
    # floating-point order of a pass has it
    module, measurement, data, _ = _fitted("models/open_complex.bpm", 3000, rounds=3)
    result = analyze(module, measurement, data)
    assert result.status == "ok" and result.negative_directions == 0
    assert result.gradient_norm < 1e-4
    assert np.isfinite(result.standard_errors["k_init"]) and result.standard_errors["k_init"] > 0
    assert np.isfinite(result.covariance).all()
    assert result.status_summary()["status"] == "ok" and result.why == ""


def test_a_fit_short_of_its_optimum_has_no_standard_errors():
    """Not converged (gradient 2.6e-3 bits per read): null standard errors, in words."""
    module, measurement, data, _ = _fitted(WELL_POSED, 3000, k_a=0.2)
    result = analyze(module, measurement, data)
    assert result.status == "not at an optimum"
    assert result.gradient_norm > 1e-4
    assert np.isnan(result.standard_errors["G"]).all() and np.isnan(result.standard_errors["k_a"])
    assert result.reasons == {n: "not at an optimum" for n in ("G", "G.offset", "k_a")}
    assert result.why in result.notes and "not at an optimum" in result.why
    assert "bits per read" in result.why
    # the fit's own word that it converged makes the point stationary, not the curvature
    told = analyze(module, measurement, data, converged=False)
    assert told.status == "not at an optimum" and "did not converge" in told.why


def test_a_saddle_has_no_standard_errors():
    """A point where the likelihood curves downward: 'not at an optimum', a saddle."""
    # A converged fit of a model the data fix entirely, its matrix then turned halfway to
    # its mirror image: every curvature is then clear of rel_tol (the weakest 7.5e-5 of
    # the largest). The open_complex fit flipped to -G_R that this test used put G_R's
    # weakest direction at 3e-8 to 3e-7 of the largest, on either side of rel_tol as the
    # floating-point order of a pass had it (G_R then read 'not identified').
    module, measurement, data, _ = _fitted(BACKGROUND_KNOWN, 3000, rounds=3)
    with torch.no_grad():
        module.energy_G.mul_(-0.5)
    result = analyze(module, measurement, data, converged=True)
    assert result.status == "not at an optimum"
    assert result.negative_directions >= 1 and "curves downward" in result.why
    assert result.reasons["G"] == "not at an optimum"
    assert np.isnan(result.standard_errors["G"]).all()


def test_unidentified_and_not_at_an_optimum_are_told_apart():
    """A product k_a·k_b short of its optimum: k_a, k_b 'not identified' (inf), the rest
    'not at an optimum' (nan)."""
    module, measurement, data, _ = _fitted(PRODUCT, 3000, k_a=0.3, k_b=0.5)
    # Moved off the optimum along G by a fixed step (the gradient then 1.5e-2 bits per
    # read): 300 L-BFGS iterations end below the 1e-4 tolerance (3.6e-5 or 8.1e-5, by the
    # floating-point order of a pass), where 'not at an optimum' hung on a weak saddle.
    step = torch.linspace(-1.0, 1.0, 48, dtype=torch.float64).reshape(12, 4)
    with torch.no_grad():
        module.energy_G.add_(0.05 * step)
    result = analyze(module, measurement, data)
    assert result.gradient_norm > 1e-3
    assert result.status == "not at an optimum"
    assert result.reasons["k_a"] == result.reasons["k_b"] == "not identified"
    assert result.standard_errors["k_a"] == np.inf
    assert result.reasons["G"] == "not at an optimum"
    assert np.isnan(result.standard_errors["G"]).all()


def test_every_unidentified_parameter_is_named_in_accurate_words():
    module, measurement, data, _ = _fitted("models/open_complex.bpm", 3000)
    result = analyze(module, measurement, data)
    _every_infinite_parameter_is_named(result)
    text = " ".join(result.unidentified)
    assert "k_on" in text and "G_R.offset" in text
    assert "combination(s) of these" not in text


def test_a_rate_and_an_offset_print_as_a_product_with_a_boltzmann_factor():
    from bpm.runtime.identifiability_words import combination as _combination
    from bpm.runtime.identifiability_words import group_message as _message

    # Moving log t_sat by +1 and G_R.offset by +1 leaves t_sat·exp(-G_R.offset) fixed.
    assert _combination("t_sat", 1.0, "lower", "G_R.offset", 1.0, "identity") == (
        "the combination t_sat·exp(-G_R.offset)"
    )
    names = ["a", "b", "c"]
    kinds = {"a": "lower", "b": "lower", "c": "identity"}
    one = np.array([1.0, -1.0, 1.0]) / np.sqrt(3)
    text = _message(names, np.outer(one, one), [0, 1, 2], names, kinds, 1)
    assert text.startswith("a, b and c are not separately identified")
    assert "a ×e^(1·s), b ×e^(-1·s), c +1·s kT" in text
    two = _message(names, np.eye(3), [0, 1, 2], names, kinds, 2)
    assert "2 independent directions" in two and "only 0" not in two


def test_a_scale_the_measurement_absorbs_exactly_is_not_identified_on_every_seed():
    """t_sat against the affine link's offset (floor at zero): profiling the offset out
    leaves t_sat's curvature at rounding level, of random sign. It must read as not
    identified every time, never as a huge finite error or a saddle (which, at lac's
    size, withheld every standard error of matched fits)."""
    from bpm.runtime.fit import fit
    from bpm.runtime.simulate import simulate

    one = (Path(__file__).resolve().parents[1] / "benchmarks" / "one_site.bpm").read_text()
    for seed in range(4):
        table, sim = simulate(one, n=6000, mutation_rate=0.2, seed=seed, noise=0.5)
        gates = sim.meta["bin_edges_log_t"]
        found = fit(one, table, seed=0, quiet=True, link="affine", gates=gates)
        found = found.analyze_uncertainty()
        assert found.status == "ok" and found.negative_directions == 0, (seed, found.why)
        assert found.standard_errors["t_sat"] == np.inf, seed
        assert found.reasons["t_sat"] == "not identified"
        assert np.isfinite(found.standard_errors["G"]).all()
