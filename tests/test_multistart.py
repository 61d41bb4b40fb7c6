"""Several starts (issue 12, "Several optima, named"): the start plan, the kept fit, the
optima in numbers and words."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bpm.compiler import load
from bpm.compiler.errors import BpmError
from bpm.runtime import contract
from bpm.runtime.fit import fit
from bpm.runtime.multistart import record, start_plan
from bpm.runtime.optima import MARGIN_BITS, optima, optima_notes
from bpm.runtime.options import FitOptions
from bpm.runtime.simulate import simulate

LAC = "models/lac.bpm"
QUICK = dict(steps=60, polish=20, quiet=True)


@pytest.fixture(scope="module")
def lac_table():
    frame, _ = simulate(LAC, n=3000, mutation_rate=0.115, seed=5)
    return frame


def test_start_two_flips_every_learned_scalar_energy():
    module = load(LAC)()
    plan = start_plan(module, FitOptions(starts=4))
    assert [p["init"] for p in plan] == [{}, {"G_I": -contract.ENERGY_START}] * 2
    assert [p["seed"] for p in plan] == [0, 0, 1, 1]
    # an energy the caller started, or holds, is never flipped: the seeds vary instead
    for options in (FitOptions(starts=3, init={"G_I": -2.0}), FitOptions(starts=3, fix=("G_I",))):
        plan = start_plan(module, options)
        assert [p["init"] for p in plan] == [{}, {}, {}]
        assert [p["seed"] for p in plan] == [0, 1, 2]


def test_the_kept_fit_is_the_most_likely_start_bit_for_bit(lac_table):
    result = fit(LAC, lac_table, starts=2, **QUICK)
    plan = start_plan(load(LAC)(), FitOptions(starts=2))
    singles = [fit(LAC, lac_table, init=p["init"], seed=p["seed"], **QUICK) for p in plan]
    train = [s.metrics["training"]["nll"] for s in singles]
    winner = singles[int(np.argmin(train))]
    assert result.metrics == winner.metrics
    assert result.metrics["training"]["nll"] == min(train)
    for name, value in winner.params().items():
        assert torch.equal(result.params()[name], value), name
    assert result.dataset is not None and result.dataset.sizes() == winner.dataset.sizes()
    best = result.optima[0]
    assert best["name"].startswith("best: G_I = ")
    assert best["delta_train_nll"] == 0.0
    assert set(best["matrix_r"]) == {"G_C", "G_R"} and best["matrix_r"]["G_C"] == 1.0
    g = best["energies"]["G_I"]
    assert g["kT"] == pytest.approx(float(result.params()["G_I"]))
    assert g["kcal_per_mol"] == pytest.approx(g["kT"] * result.kT_kcal_per_mol)
    assert set(best["nll"]) == {"train", "val", "test"}
    assert any("starts reached the best optimum" in note for note in result.notes)


def test_a_model_without_scalar_energies_varies_the_seed():
    model = "models/simple_repression.bpm"
    frame, _ = simulate(model, n=2000, seed=1)
    plan = start_plan(load(model)(), FitOptions(starts=2))
    assert [(p["seed"], p["init"]) for p in plan] == [(0, {}), (1, {})]
    result = fit(model, frame, starts=2, steps=30, polish=0, quiet=True)
    singles = [fit(model, frame, seed=s, steps=30, polish=0, quiet=True) for s in (0, 1)]
    assert result.metrics["training"]["nll"] == min(s.metrics["training"]["nll"] for s in singles)
    assert result.optima and result.optima[0]["energies"] == {}


def test_several_starts_need_the_data_in_memory(lac_table):
    with pytest.raises(BpmError, match="in memory"):
        fit(LAC, lac_table, starts=2, mode="stream", quiet=True)


def _fake(module, params: dict, nll: float, index: int) -> dict:
    """A start's record with these parameters and training NLL (no fitting)."""
    module.set_params({k: torch.as_tensor(v, dtype=torch.float32) for k, v in params.items()})
    metrics = {s: {"nll": nll, "I_var_bits": 0.0} for s in ("training", "validation", "test")}
    state = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
    return {
        "module_state": state,
        "metrics": metrics,
        "start": {"index": index, "seed": 0, "init": {}},
    }


def test_a_mirror_optimum_within_the_margin_is_named():
    module = load(LAC)()
    rng = np.random.default_rng(0)
    crp, rnap = rng.normal(size=(26, 4)), rng.normal(size=(41, 4))
    base = {"G_C": crp, "G_R": rnap, "G_I": -4.0}
    fits = [
        _fake(module, base, 2.5900, 1),
        _fake(module, {**base, "G_C": -crp, "G_I": 3.0}, 2.5908, 2),
        _fake(module, {**base, "G_I": -3.9}, 2.5901, 3),  # the best again, within 0.3 kT
        _fake(module, {**base, "G_I": -1.0}, 2.5900 + 2 * MARGIN_BITS, 4),  # too far
    ]
    found = optima(module, fits)
    assert [o["starts"] for o in found] == [[1, 3], [2]]
    mirror = found[1]
    assert mirror["matrix_r"]["G_C"] == pytest.approx(-1.0)
    assert mirror["matrix_r"]["G_R"] == pytest.approx(1.0)
    assert mirror["delta_train_nll"] == pytest.approx(0.0008)
    assert mirror["energies"]["G_I"]["kT"] == pytest.approx(3.0)
    assert mirror["name"] == "G_I = +3.00 kT, G_C inverted (r = -1.00)"
    notes = optima_notes(found, fits)
    assert notes[0].startswith("2 of 4 starts reached the best optimum")
    assert "1 start(s) ended further away" in notes[0]
    assert "the G_C matrix inverted" in notes[1]
    assert "0.0008 bits/read worse" in notes[1]
    assert "do not fix the sign of G_I (a mirror solution)" in notes[1]


def test_a_record_round_trips_through_numpy(lac_table):
    single = fit(LAC, lac_table, steps=5, polish=0, quiet=True)
    kept = record(single)
    assert all(isinstance(v, np.ndarray) for v in kept["module_state"].values())
    assert kept["metrics"] == single.metrics
