"""The affine measurement process: probabilities, stability, saving, and what gates recover."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bpm.compiler.errors import BpmError
from bpm.runtime import fit
from bpm.runtime.contract import zero_mean_gauge
from bpm.runtime.load import build_measurement, load_fit
from bpm.runtime.measurement import OrdinalMeasurement
from bpm.runtime.measurement_affine import AffineMeasurement
from bpm.runtime.simulate import simulate
from bpm.runtime.start import start_measurement

ROOT = Path(__file__).resolve().parents[1]
LAC = ROOT / "models" / "lac.bpm"
WILD_TYPE = (ROOT / "data" / "kinney2010" / "wild_type.txt").read_text().strip()
GATES = [-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0]


def processes(dtype):
    gated = AffineMeasurement(10, gates=GATES, sigma=0.3).to(dtype)
    free = AffineMeasurement(10, learn_slope=True, sigma=0.3).to(dtype)
    for m in (gated, free):
        with torch.no_grad():
            m.background_mix.fill_(-30.0)  # nearly no background: the tails are the probit's
    return gated, free


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_probabilities_sum_to_one_and_move_up_with_t(dtype):
    t = torch.logspace(-12, 12, 400, dtype=dtype)
    for m in processes(dtype):
        with torch.no_grad():
            p = m(t)
        assert torch.allclose(p.sum(1), torch.ones_like(t), atol=1e-5)
        assert (p >= 0).all()
        above = torch.flip(torch.cumsum(torch.flip(p, [1]), 1), [1])  # P(bin >= k | t)
        assert (torch.diff(above, dim=0) >= -1e-6).all()
        assert float(p[0, 0]) > 0.99 and float(p[-1, -1]) > 0.99  # dim: bin 0, bright: last


def test_log_space_matches_the_plain_probit_in_float64():
    m = AffineMeasurement(10, gates=GATES, sigma=0.7, floor=0.01).double()
    with torch.no_grad():
        m.background_mix.fill_(-50.0)
    t = torch.logspace(-3, 2, 50, dtype=torch.float64)
    with torch.no_grad():
        p = m(t)
    mu = torch.log(t + 0.01)
    edges = torch.tensor([-np.inf, *GATES, np.inf], dtype=torch.float64)
    cdf = torch.special.ndtr((edges[None, :] - mu[:, None]) / 0.7)
    assert torch.allclose(p, torch.diff(cdf, dim=1), atol=1e-12)


def test_gradients_are_finite_in_float32_for_extreme_t():
    t = torch.tensor([0.0, 1e-38, 1e-20, 1e-6, 1.0, 1e6, 1e20, 1e38]).requires_grad_()
    for m in processes(torch.float32):
        counts = torch.rand(len(t), 10)
        (counts * m.log_probs(t)).sum().backward()
        assert torch.isfinite(t.grad).all()
        assert all(torch.isfinite(p.grad).all() for p in m.parameters())
        t.grad = None


def test_gates_fix_the_cutpoints_and_a_takes_their_place():
    gated, free = processes(torch.float32)
    assert torch.equal(gated.cutpoints(), torch.tensor(GATES))
    names = {n for n, _ in gated.named_parameters()}
    assert "offset" in names and "first_cut" not in names and "log_slope" not in names
    assert {"first_cut", "raw_gaps", "log_slope"} <= {n for n, _ in free.named_parameters()}


def test_start_matches_the_read_fractions_and_checks_the_gates():
    t0 = torch.exp(torch.randn(5000, generator=torch.Generator().manual_seed(0)) * 0.2)
    totals = torch.full((10,), 100.0)
    with pytest.raises(BpmError, match="10 bins.*9 inner gates; 3 gates"):
        start_measurement(t0, totals, hidden=8, transform="auto", link="affine", gates=[0, 1, 2])
    gates = [float(g) for g in np.linspace(-2, 2, 9)]
    m = start_measurement(t0, totals, hidden=8, transform="auto", link="affine", gates=gates)
    with torch.no_grad():
        predicted = m(t0).mean(0)
    assert torch.allclose(predicted, torch.full((10,), 0.1), atol=0.03)
    assert 0.5 < m.sigma() < 2.0  # the gates span about +-1.3 sd of the latent brightness
    flexible = start_measurement(t0, totals, hidden=8, transform="auto")
    assert isinstance(flexible, OrdinalMeasurement)


def test_config_round_trips_and_old_configs_are_flexible():
    m = AffineMeasurement(10, gates=GATES, learn_slope=True)
    again = build_measurement(m.config())
    again.load_state_dict(m.state_dict())
    t = torch.logspace(-3, 3, 20)
    with torch.no_grad():
        assert torch.equal(again(t), m(t))
    old = OrdinalMeasurement(10, hidden=3).config()
    assert "kind" not in old and isinstance(build_measurement(old), OrdinalMeasurement)
    with pytest.raises(BpmError, match="unknown measurement process kind"):
        build_measurement({"kind": "psychic", "n_bins": 10})


def test_a_gated_fit_saves_and_loads_with_its_process(tmp_path):
    table, truth = simulate(LAC, n=3000, wild_type=WILD_TYPE, mutation_rate=0.115, seed=5)
    gates = truth.meta["bin_edges_log_t"]
    result = fit(LAC, table, link="affine", gates=gates, steps=30, polish=0, quiet=True)
    assert isinstance(result.measurement, AffineMeasurement) and result.measurement.gated
    result.save(tmp_path / "fit", plots=False)
    loaded = load_fit(tmp_path / "fit")
    assert isinstance(loaded.measurement, AffineMeasurement)
    assert loaded.measurement.config() == result.measurement.config()
    t = torch.logspace(-4, 2, 30)
    with torch.no_grad():
        assert torch.allclose(loaded.measurement(t), result.measurement(t))
    assert loaded.predict(table["x"][:5].tolist())["t"].tolist() == pytest.approx(
        result.predict(table["x"][:5].tolist())["t"].tolist()
    )


def kinney2010() -> dict:
    """The published lac matrices (kT) and G_I = -2.83 kcal/mol: a realistic truth."""
    kcal = 0.6163314136449999
    out = {"G_I": -2.83 / kcal}
    for name, file in (("G_C", "crp"), ("G_R", "rnap")):
        frame = pd.read_csv(ROOT / "data" / "kinney2010" / f"{file}_energy_matrix.csv")
        out[name] = frame[list("ACGT")].to_numpy(dtype=float) / kcal
    return out


def recovery(n: int, seed: int, **simulation):
    """Simulate lac, fit the affine link at the recorded gates; sigma and matrix scales."""
    table, truth = simulate(
        LAC,
        n=n,
        wild_type=WILD_TYPE,
        mutation_rate=0.115,
        noise=0.5,
        seed=seed,
        params=kinney2010(),
        **simulation,
    )
    result = fit(
        LAC, table, link="affine", gates=truth.meta["bin_edges_log_t"], quiet=True, threads=1
    )
    fitted = zero_mean_gauge(result.module.get_params(), result.module)
    scales = {}
    for name in ("G_C", "G_R"):
        a = np.asarray(fitted[name], float).ravel()
        b = np.asarray(truth.params[name], float).ravel()
        scales[name] = (float(np.corrcoef(a, b)[0, 1]), float(a @ b / (b @ b)))
    if "G_I" in truth.params:
        scales["G_I error"] = float(fitted["G_I"]) - float(truth.params["G_I"])
    return result.measurement.sigma(), scales


@pytest.mark.parametrize(
    "simulation", [{}, {"floor": 0.02, "background": 0.1}], ids=["plain", "floor-background"]
)
def test_gates_recover_the_noise_and_the_energy_scale(simulation):
    """The matched process: 15,000 cells at noise 0.5, the published lac matrices (the
    floor is 1% of the median t; a floor near the saturated t of most lac variants
    would leave the data little to fit)."""
    sigma, scales = recovery(15_000, seed=0, **simulation)
    assert sigma == pytest.approx(0.5, rel=0.1)
    for name in ("G_C", "G_R"):
        r, scale = scales[name]
        assert r > 0.95, name
        assert 0.9 <= scale <= 1.1, (name, scale)


@pytest.mark.slow
def test_gates_recover_the_interaction_at_50000_cells():
    """Issue 12's target for the matched process: scale 0.9-1.1, |G_I error| <= 0.3 kT."""
    sigma, scales = recovery(50_000, seed=0)
    assert sigma == pytest.approx(0.5, rel=0.05)
    for name in ("G_C", "G_R"):
        r, scale = scales[name]
        assert r >= 0.99 and 0.9 <= scale <= 1.1, (name, r, scale)
    assert abs(scales["G_I error"]) <= 0.3


@pytest.mark.parametrize("kind", ["ordinal", "affine"])
def test_a_background_share_run_to_zero_keeps_finite_second_derivatives(kind):
    """A fit can drive the background's mixing logit far negative (a one-site fit reached
    -713): the likelihood's curvature there must be finite (torch's logsigmoid gives nan)
    so that the Hessian of the whole fit is not nan."""
    from bpm.runtime.measurement import OrdinalMeasurement
    from bpm.runtime.measurement_affine import AffineMeasurement

    measurement = OrdinalMeasurement(4, hidden=0) if kind == "ordinal" else AffineMeasurement(4)
    measurement = measurement.double()
    with torch.no_grad():
        measurement.background_mix.fill_(-713.0)
    t = torch.linspace(0.05, 3.0, 16, dtype=torch.float64)
    counts = torch.ones(16, 4, dtype=torch.float64)
    for log_probs in (measurement.log_probs, getattr(measurement, "log_probs_stable", None)):
        if log_probs is None:
            continue
        nll = -(counts * log_probs(t)).sum()
        (grad,) = torch.autograd.grad(nll, measurement.background_mix, create_graph=True)
        (curvature,) = torch.autograd.grad(grad, measurement.background_mix)
        assert torch.isfinite(grad) and torch.isfinite(curvature), kind
