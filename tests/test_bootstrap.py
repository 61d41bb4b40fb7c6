"""The bootstrap (``fit(..., bootstrap=N)``): resamples, refits, report (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bpm.runtime.bootstrap import resample
from bpm.runtime.data import read_dataset
from bpm.runtime.fit import fit
from bpm.runtime.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
LAC = ROOT / "models" / "lac.bpm"


@pytest.fixture(scope="module")
def small():
    table, truth = simulate(LAC, n=3000, mutation_rate=0.115, seed=3, noise=0.5)
    return table, truth


def test_a_resample_draws_training_rows_with_their_reads_and_keeps_the_rest(small):
    data = read_dataset(small[0], length=75)
    again = resample(data, (0, 1))
    train = data.split == "training"
    assert (again.split == "training").sum() == train.sum()
    for split in ("validation", "test"):
        kept = again.subset(split)
        assert np.array_equal(kept.codes, data.subset(split).codes)
        assert np.array_equal(kept.counts, data.subset(split).counts)
    # every drawn row is an original training row with its own reads
    original = {
        bytes(c): tuple(n) for c, n in zip(data.codes[train], data.counts[train], strict=True)
    }
    drawn = again.subset("training")
    assert all(
        original[bytes(c)] == tuple(n) for c, n in zip(drawn.codes, drawn.counts, strict=True)
    )
    assert len({bytes(c) for c in drawn.codes}) < len(drawn)  # with replacement
    assert np.array_equal(resample(data, (0, 1)).codes, again.codes)  # seeded


def test_bootstrap_errors_are_the_spread_of_the_refits_in_the_report_gauge(small, tmp_path):
    result = fit(LAC, small[0], steps=40, polish=0, quiet=True, bootstrap=3, seed=0)
    found = result.bootstrap
    assert len(found.replicates) == 3 and not found.failed
    assert any("bootstrap: 3 of 3 refits" in n for n in result.notes)
    out = result.save(tmp_path / "fit", plots=True)
    info = json.loads((out / "summary.json").read_text())["bootstrap"]
    # independently: the refits' matrices in the zero-mean gauge, their sd and percentiles
    stack = np.stack([r["G_C"] - r["G_C"].mean(1, keepdims=True) for r in found.replicates])
    se = pd.read_csv(out / "params" / "G_C_bootstrap_se_kT.csv", index_col="position")
    assert np.allclose(se[list("ACGT")], stack.std(0, ddof=1), atol=1e-6)
    assert list(se["numbered_position"]) == [p - 75 for p in se.index]  # relative to the TSS
    low = pd.read_csv(out / "params" / "G_C_bootstrap_low_kT.csv", index_col="position")
    assert np.allclose(low[list("ACGT")], np.percentile(stack, 2.5, axis=0), atol=1e-6)
    g_i = np.array([float(r["G_I"]) for r in found.replicates])
    entry = info["params"]["G_I"]
    assert entry["se"] == pytest.approx(g_i.std(ddof=1), rel=1e-9)
    assert entry["high"] == pytest.approx(np.percentile(g_i, 97.5), rel=1e-9)
    assert entry["se_kcal_per_mol"] == pytest.approx(entry["se"] * result.kT_kcal_per_mol)
    offsets = np.array([r["G_C.offset"] + r["G_C"].mean(1).sum() for r in found.replicates])
    assert info["params"]["G_C.offset"]["se"] == pytest.approx(offsets.std(ddof=1), rel=1e-6)
    assert (out / "plots" / "bootstrap" / "errors_G_C.png").exists()


def test_bootstrap_is_not_a_minibatch_option():
    from bpm.runtime.options import FitOptions

    assert "bootstrap" in FitOptions(bootstrap=2, given=frozenset({"bootstrap"})).notes("stream")[0]


def test_refits_start_at_the_fit_and_go_straight_to_a_training_polish():
    from types import SimpleNamespace

    from bpm.runtime.bootstrap import refit_options
    from bpm.runtime.contract import learned_names, resolve_model
    from bpm.runtime.options import FitOptions

    module = resolve_model(LAC)[0]()
    fitted = SimpleNamespace(module=module)
    straight = refit_options(fitted, FitOptions(stop="training", polish=100, bootstrap=4))
    assert straight.steps == 1 and straight.bootstrap == 0 and straight.mode == "full"
    assert set(straight.init) == set(learned_names(module))
    assert np.array_equal(straight.init["G_C"], module.get_params()["G_C"].double().numpy())
    assert refit_options(fitted, FitOptions(stop="validation", bootstrap=4)).steps is None
    assert refit_options(fitted, FitOptions(stop="training", polish=0)).steps is None
