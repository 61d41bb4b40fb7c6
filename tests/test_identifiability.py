"""Profile-likelihood intervals: the interval arithmetic, and coverage of a simulated truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bpm.runtime import fit
from bpm.runtime.contract import zero_mean_gauge
from bpm.runtime.identifiability import CHI2_95, identifiability, interval, profile_targets
from bpm.runtime.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
LAC = ROOT / "models" / "lac.bpm"
WILD_TYPE = (ROOT / "data" / "kinney2010" / "wild_type.txt").read_text().strip()
TRUTH = Path("/work/plan/lacfit")


def test_interval_of_a_quadratic_profile():
    values = np.linspace(0.5, 1.5, 21)
    nll = {float(v): 100.0 + 0.5 * ((v - 1.1) / 0.1) ** 2 for v in values}  # sd 0.1
    found = interval(nll, 1.0)
    half = np.sqrt(CHI2_95) * 0.1
    assert found["estimate"] == pytest.approx(1.1, abs=1e-6)
    assert found["low"] == pytest.approx(1.1 - half, abs=0.01)
    assert found["high"] == pytest.approx(1.1 + half, abs=0.01)
    assert found["closed"] and found["open"] == []


def test_an_interval_that_does_not_close_says_so():
    nll = {0.8: 12.0, 0.9: 9.5, 1.0: 9.0, 1.2: 8.9, 1.6: 8.95}
    found = interval(nll, 1.0)
    assert found["high"] == 1.6 and not found["closed"] and found["open"] == ["high"]


def test_lac_profiles_both_matrices_and_the_interaction():
    from bpm.compiler.loader import load

    assert profile_targets(load(LAC)()) == {"G_C": "scale", "G_R": "scale", "G_I": "energy"}


def recovery(n: int, seed: int, affine: bool, names=("G_R",), **options):
    """Simulate lac from a realistic truth, fit, profile; the interval and the truth's
    multiplier on the fitted table (the slope of true on fitted entries, zero-mean gauge)."""
    params = str(TRUTH) if TRUTH.exists() else None
    table, truth = simulate(
        LAC, n=n, wild_type=WILD_TYPE, mutation_rate=0.115, noise=0.5, seed=seed, params=params
    )
    gates = {"link": "affine", "gates": truth.meta["bin_edges_log_t"]} if affine else {}
    result = fit(LAC, table, quiet=True, threads=1, **gates)
    found = identifiability(result, names=list(names), **options)
    fitted = zero_mean_gauge(result.module.get_params(), result.module)
    multiplier = {}
    for name in names:
        a = np.asarray(fitted[name], float).ravel()
        b = np.asarray(truth.params[name], float).ravel()
        multiplier[name] = float(a @ b / (a @ a))
    return found, multiplier


def test_gated_affine_interval_is_narrow_and_covers_the_truth():
    found, truth = recovery(6000, seed=3, affine=True, processes=1, iterations=15, max_points=5)
    entry = found["energy_scale"]["G_R"]
    assert entry["closed"], entry
    assert entry["low"] <= truth["G_R"] <= entry["high"], (entry, truth)
    assert entry["high"] - entry["low"] < 0.35, entry
    assert found["seconds"] > 0


@pytest.mark.slow
def test_flexible_interval_covers_the_truth():
    found, truth = recovery(10_000, seed=3, affine=False, processes=2)
    entry = found["energy_scale"]["G_R"]
    assert entry["low"] <= truth["G_R"] <= entry["high"], (entry, truth)
