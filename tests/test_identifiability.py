"""Profile-likelihood intervals after a fit (bpm.runtime.identifiability)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bpm.runtime.fit import fit
from bpm.runtime.identifiability_profile import HALF_CHI2_95, interval
from bpm.runtime.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]

ONE = (ROOT / "benchmarks" / "one_site.bpm").read_text()
#: Two tables on the same positions, only their sum seen: neither's size is determined.
TWO = ONE.replace("model one", "model two").replace(
    "energy G = matrix(x[0:12])", "energy G = matrix(x[0:12])\nenergy H = matrix(x[0:12])"
)
TWO = TWO.replace("bound : G", "bound : G + H")


def truth_multiplier(fitted, true) -> float:
    """The true size in multiples of the fitted table (zero-mean gauge): 1 / the slope of
    fitted on true entries."""
    a = fitted - fitted.mean(1, keepdims=True)
    b = true - true.mean(1, keepdims=True)
    return float((b * b).sum() / (a * b).sum())


def test_interval_of_a_quadratic_profile_is_exact():
    # NLL = 2 (v - 1.3)^2 + 5: the 95% interval is 1.3 +- sqrt(1.92 / 2)
    values = [0.2, 0.55, 0.9, 1.1, 1.45, 1.8, 2.6]
    found = interval([(v, 2 * (v - 1.3) ** 2 + 5) for v in values])
    half = math.sqrt(HALF_CHI2_95 / 2)
    assert found["minimum"] == pytest.approx(1.3, abs=1e-9)
    assert found["minimum_nll"] == pytest.approx(5.0, abs=1e-9)
    assert found["low"] == pytest.approx(1.3 - half, abs=1e-9)
    assert found["high"] == pytest.approx(1.3 + half, abs=1e-9)


def test_interval_is_open_where_the_profile_never_rises_far_enough():
    found = interval([(v, 0.1 * v) for v in (0.0, 1.0, 2.0, 4.0, 40.0)])
    assert found["low"] is None and found["minimum"] == 0.0
    assert found["high"] == pytest.approx(HALF_CHI2_95 / 0.1)
    flat = interval([(v, 7.0) for v in (0.5, 1.0, 2.0)])
    assert flat["low"] is None and flat["high"] is None


@pytest.fixture(scope="module")
def pinned():
    """Matched process, affine link at the simulation's gates: the scale is pinned."""
    table, sim = simulate(ONE, n=6000, mutation_rate=0.2, seed=0, noise=0.5)
    gates = sim.meta["bin_edges_log_t"]
    result = fit(ONE, table, seed=0, quiet=True, link="affine", gates=gates, identifiability=True)
    return result, sim


def test_pinned_scale_interval_contains_the_truth(pinned):
    result, sim = pinned
    found = result.identifiability
    entry = found["energy_scale"]["G"]
    true = truth_multiplier(result.module.get_params()["G"].double().numpy(), sim.params["G"])
    assert entry["estimate"] == 1.0 and found["level"] == 0.95
    assert entry["low"] is not None and entry["high"] is not None
    assert entry["low"] < true < entry["high"]
    assert 0.9 < entry["low"] < 1.0 < entry["high"] < 1.1  # closed and narrow
    assert found["at_optimum"]
    # every point of the profile is a refit: none below its minimum, the estimate inside
    rises = [rise for _, rise in entry["points"]]
    assert min(rises) >= -1e-9 and len(rises) >= 4
    assert not found["notes"]


def test_summary_json_holds_the_intervals(pinned, tmp_path):
    result, _ = pinned
    result.save(tmp_path / "fit", plots=False)
    saved = json.loads((tmp_path / "fit" / "summary.json").read_text())["identifiability"]
    entry = saved["energy_scale"]["G"]
    assert set(entry) >= {"estimate", "low", "high", "units", "search_limits", "points"}
    assert entry["low"] == pytest.approx(result.identifiability["energy_scale"]["G"]["low"])
    assert saved["profile"] == {}  # the model has no learned scalar energy


def test_a_refit_stopped_by_the_stall_rule_has_settled(monkeypatch):
    """A profile refit ends as a fit run to the training optimum does (L-BFGS's own
    tolerances, or the stall rule): both count as settled; only the cap does not."""
    import copy

    from bpm.runtime import identifiability_profile as ip

    table, _ = simulate(ONE, n=3000, mutation_rate=0.2, seed=2, noise=0.5)
    result = fit(ONE, table, seed=0, quiet=True, steps=100)
    train = result.dataset.subset("training")
    target = ip.targets(result.module)[0]
    profile = ip.Profile(
        copy.deepcopy(result.module),
        copy.deepcopy(result.measurement),
        result.output,
        train.codes,
        train.counts,
        target,
    )
    stops = []

    def recorded(*args, **kwargs):
        stage = run_stage(*args, **kwargs)
        stops.append(stage.stopped)
        return stage

    run_stage = ip.run_stage
    monkeypatch.setattr(ip, "run_stage", recorded)
    profile.place(1.1)
    _, settled = profile.refit(200)
    assert stops == ["stalled"] and settled
    _, settled = profile.refit(10)  # one step: neither stalled nor converged
    assert stops[-1] == "iterations" and not settled


class SlowFarProfile:
    """A stand-in for :class:`~bpm.runtime.identifiability_profile.Profile` whose true
    profile is 2 v^2 (95% bounds +-0.98), and whose refits beyond |v| = 0.9 stop at their
    cap 1 nat too high, falling, and settle on the next call."""

    def __init__(self):
        from bpm.runtime.identifiability_profile import Target

        self.target = Target("q", "energy", ("q",), 0.0, -8.0, 8.0, 0.25)
        self.iterations, self.last_drop, self.value, self.excess = 0, math.inf, 0.0, 0.0

    def at(self, value, state, before=None):
        self.value, self.excess = value, (1.0 if abs(value) > 0.9 else 0.0)
        self.iterations += 10
        self.last_drop = 0.5 if self.excess else 0.0
        return 2 * value**2 + self.excess, not self.excess

    def refit(self, iterations):
        self.iterations += 10
        self.last_drop, self.excess = self.excess, 0.0
        return 2 * self.value**2, True

    def state(self):
        return {"value": self.value}


def test_a_point_still_falling_at_its_cap_is_refitted_until_it_settles():
    from bpm.runtime.identifiability_profile import walk

    for direction in (1, -1):
        profile = SlowFarProfile()
        points = [(0.0, 0.0)]
        assert walk(profile, direction, points, profile.state(), 0.0) == "closed"
        bound = interval(points)["high" if direction > 0 else "low"]
        assert bound == pytest.approx(direction * math.sqrt(HALF_CHI2_95 / 2), abs=0.02)
        assert all(nll == pytest.approx(2 * v**2) for v, nll in points)  # settled values


def test_an_unidentified_scale_is_open_and_said_in_words(capsys):
    table, _ = simulate(TWO, n=4000, mutation_rate=0.2, seed=3, noise=0.5)
    result = fit(TWO, table, seed=0, quiet=False, steps=100, identifiability=True)
    found = result.identifiability
    for name in ("G", "H"):
        entry = found["energy_scale"][name]
        assert entry["low"] is None and entry["high"] is None
        assert set(entry["open"]) == {"low", "high"}
        spread = [v for v, _ in entry["points"]]
        assert min(spread) < 0.8 and max(spread) > 1.5  # searched, and flat out there
        assert max(rise for _, rise in entry["points"]) < HALF_CHI2_95
    words = capsys.readouterr().err
    assert "the data fix the G table's overall size only to (not bounded below)" in words
    assert any("H table" in note for note in result.notes)


def test_identifiability_off_and_the_command_line_option():
    from bpm.runtime.option_flags import add_arguments, from_arguments
    from bpm.runtime.options import FitOptions

    table, _ = simulate(ONE, n=1500, mutation_rate=0.2, seed=1, noise=0.5)
    result = fit(ONE, table, seed=0, quiet=True, steps=50, polish=20)
    assert result.identifiability is None  # off by default
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert from_arguments(parser.parse_args(["--identifiability", "on"])).identifiability is True
    assert from_arguments(parser.parse_args(["--identifiability", "off"])).identifiability is False
    assert FitOptions().identifiability is False


@pytest.mark.slow
def test_lac_mismatched_flexible_interval_covers_the_true_scale():
    """Issue 12: the flexible link on gated data; its interval must hold the truth.

    Was a strict xfail (2026-12-02: the RNAP interval ended at 1.22 times the fitted
    table, the truth at 1.25). Since refits still falling at their cap are refitted on
    (``identifiability_profile.settle``), measured 2026-12-03: RNAP (open) to 1.23, truth
    1.15; the CRP scale and G_I open on both sides (20,000 cells under the flexible link
    do not bound them), which holds the truth by saying so."""
    lac = ROOT / "models" / "lac.bpm"
    real = fit(lac, ROOT / "data" / "lac_sortseq_kinney2010.csv.gz", quiet=True)
    truth = {k: v.double().numpy() for k, v in real.module.get_params().items()}
    wild = (ROOT / "data" / "kinney2010" / "wild_type.txt").read_text().strip()
    table, sim = simulate(
        ROOT / "models" / "lac.bpm", n=20000, wild_type=wild, mutation_rate=0.115,
        params=truth, noise=0.5, seed=101,
    )  # fmt: skip
    result = fit(ROOT / "models" / "lac.bpm", table, seed=0, quiet=True, identifiability=True)
    params = result.module.get_params()
    for site in ("G_C", "G_R"):
        entry = result.identifiability["energy_scale"][site]
        true = truth_multiplier(params[site].double().numpy(), sim.params[site])
        assert (entry["low"] is None or entry["low"] < true) and (
            entry["high"] is None or true < entry["high"]
        ), (site, true, entry["low"], entry["high"])
    g_i = result.identifiability["profile"]["G_I"]
    assert (g_i["low"] is None or g_i["low"] < sim.params["G_I"]) and (
        g_i["high"] is None or sim.params["G_I"] < g_i["high"]
    )
    assert np.isfinite(result.identifiability["fit_nll"])
