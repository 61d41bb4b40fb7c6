"""Fitting, reporting, saving and predicting (small subsamples; the lac targets are slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bpm.cli import main
from bpm.compiler.errors import BpmError
from bpm.runtime import fit, load_fit, predict

DATA = "data/lac_sortseq_kinney2010.csv.gz"
LAC = "models/lac.bpm"
FAST = dict(steps=100, quiet=True)


@pytest.fixture(scope="module")
def small():
    """5,000 sequences of the shipped data, with their published splits."""
    return pd.read_csv(DATA).sample(n=5000, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(small):
    return fit(LAC, small, seed=0, **FAST)


def test_converges_and_beats_a_constant_model(fitted):
    history = fitted.history
    assert history[-1]["train_nll"] < history[0]["train_nll"] - 0.05
    # A constant p(bin) carries no information about held-out reads: I_var <= ~0.
    assert fitted.metrics["test"]["I_var_bits"] > 0.1
    assert fitted.metrics["validation"]["I_var_bits"] > 0.1


def test_measurement_is_ordered(fitted):
    t = torch.logspace(-3, 0, 50)
    with torch.no_grad():
        p = fitted.measurement(t)
    assert torch.allclose(p.sum(1), torch.ones(50), atol=1e-5)
    # Brighter t never moves reads toward dimmer bins: P(bin >= k | t) non-decreasing.
    at_least = p.flip(1).cumsum(1).flip(1)
    assert (at_least[1:] >= at_least[:-1] - 1e-6).all()


def test_measurement_floor():
    """u = log(t + f): f = 0 is the plain log link; below the floor t stops mattering."""
    from bpm.runtime.measurement import OrdinalMeasurement

    # Built alike (the units start deterministic), they differ only in the floor.
    plain = OrdinalMeasurement(10, hidden=3, center=-5.0, scale=4.0, floor=0.0).double()
    floored = OrdinalMeasurement(10, hidden=3, center=-5.0, scale=4.0, floor=1e-3).double()
    assert "log_floor" not in dict(plain.named_parameters())
    assert plain.floor() == 0.0 and floored.floor() == pytest.approx(1e-3)
    t = torch.logspace(-8, 2, 41, dtype=torch.float64)
    with torch.no_grad():
        a, b = plain.log_probs(t), floored.log_probs(t)
        assert torch.allclose(plain.features(t), (torch.log(t) - plain.center) / plain.scale)
        assert torch.allclose(a[-5:], b[-5:], atol=1e-4)  # t >> f: the floor is invisible
        assert torch.allclose(b[0], b[4], atol=1e-6)  # t << f: all look like the floor
        assert not torch.allclose(a[0], a[4], atol=1e-3)
    at_least = b.exp().flip(1).cumsum(1).flip(1)
    assert (at_least[1:] >= at_least[:-1] - 1e-9).all()  # still ordered
    assert OrdinalMeasurement(10, transform="identity").floor() == 0.0
    assert OrdinalMeasurement(**plain.config()).floor() == 0.0  # saved and rebuilt as is


def test_same_seed_same_fit(small, fitted):
    again = fit(LAC, small, seed=0, **FAST)
    for name, value in fitted.params().items():
        assert torch.equal(value, again.params()[name]), name
    assert fitted.metrics == again.metrics


def test_outputs_exist_and_parse(fitted, tmp_path):
    out = fitted.save(tmp_path / "fit")
    info = json.loads((out / "summary.json").read_text())
    for key in (
        "model",
        "data",
        "n_train",
        "n_val",
        "n_test",
        "steps",
        "stages",
        "notes",
        "wall_seconds",
        "kT_kcal_per_mol",
        "metrics",
        "params",
        "data_validation",
    ):
        assert key in info, key
    assert set(info["metrics"]) == {"training", "validation", "test"}  # as FitResult.metrics
    assert "epochs" not in info and info["steps"] == fitted.steps
    assert info["stages"] == fitted.stages and info["notes"] == fitted.notes
    assert info["convergence"] == fitted.convergence
    # a 100-step fit stops short of the optimum, and says so (no other note)
    assert [n for n in fitted.notes if "not converged" not in n] == []
    assert sum(stage["iterations"] for stage in info["stages"]) == info["steps"]
    assert {"G_I", "G_I_kcal_per_mol", "t_sat", "G_C.offset_kcal_per_mol"} <= set(info["params"])
    assert "t_sat_kcal_per_mol" not in info["params"]
    assert info["measurement_floor"] == pytest.approx(fitted.measurement.floor())
    assert info["measurement_floor"] > 0
    assert info["n_train"] + info["n_val"] + info["n_test"] == 5000
    crp = pd.read_csv(out / "params" / "G_C.csv", index_col=0)
    # the letters, then lac's numbering of each position (x[1] is -74 relative to the TSS)
    assert list(crp.columns) == [*"ACGT", "numbered_position"]
    assert list(crp.index) == list(range(1, 27))
    assert list(crp["numbered_position"]) == list(range(-74, -48))
    crp = crp[list("ACGT")]
    assert np.allclose(crp.mean(axis=1), 0, atol=1e-5)
    crp_kT = pd.read_csv(out / "params" / "G_C_kT.csv", index_col=0)[list("ACGT")]
    assert np.allclose(crp, crp_kT * info["kT_kcal_per_mol"], atol=1e-5)
    for name in ("logo_G_C", "logo_G_R", "history", "measurement", "test_t_by_bin"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000
    assert "class lac" in (out / "model.py").read_text()


def test_gauge_fixed_matrices_reproduce_energies(fitted, tmp_path):
    out = fitted.save(tmp_path / "fit", plots=False)
    info = json.loads((out / "summary.json").read_text())
    crp = pd.read_csv(out / "params" / "G_C_kT.csv", index_col=0)
    seq = "A" * 75
    energy = crp["A"].sum() + info["params"]["G_C.offset"]
    with torch.no_grad():
        direct = fitted.module.energies(fitted.module.encode([seq]))["G_C"]
    assert abs(float(direct[0]) - energy) < 1e-4


def test_save_load_round_trip(fitted, small, tmp_path):
    out = fitted.save(tmp_path / "fit", plots=False)
    loaded = load_fit(out)
    seqs = small["x"].iloc[:50].tolist()
    a, b = fitted.predict(seqs), loaded.predict(seqs)
    pd.testing.assert_frame_equal(a, b)
    assert set(a.columns) >= {"sequence", "t", "P(empty)", "P(crp_rnap)", "most_likely_bin"}
    pd.testing.assert_frame_equal(predict(out, seqs), a)
    assert (loaded.steps, loaded.stages, loaded.notes) == (
        fitted.steps,
        fitted.stages,
        fitted.notes,
    )
    assert loaded.convergence == fitted.convergence


OLD_FIT = Path(__file__).parent / "data" / "fit_v1"


def test_a_fit_saved_before_the_layout_still_loads(tmp_path):
    """tests/data/fit_v1 was written by bpm before parameter_layout and summary's steps:
    its model.py carries _storage, summary.json ``epochs``. It loads, predicts what it
    predicted then, and saves again in today's format."""
    assert "_storage = {" in (OLD_FIT / "model.py").read_text()
    assert "parameter_layout" not in (OLD_FIT / "model.py").read_text()
    old = json.loads((OLD_FIT / "summary.json").read_text())
    assert "steps" not in old
    loaded = load_fit(OLD_FIT)
    assert loaded.steps == old["epochs"] and loaded.stages == [] and loaded.notes == []
    expected = pd.read_csv(OLD_FIT / "expected_predictions.csv")
    got = predict(OLD_FIT, expected["sequence"].tolist())
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-6)
    again = load_fit(loaded.save(tmp_path / "again", plots=False))
    assert json.loads((tmp_path / "again" / "summary.json").read_text())["steps"] == old["epochs"]
    pd.testing.assert_frame_equal(again.predict(expected["sequence"].tolist()), got)


def test_cli_patience_reaches_the_fit(small, tmp_path):
    path = tmp_path / "small.csv"
    small.iloc[:1500].to_csv(path, index=False)
    steps = {}
    for patience in ("1", "100"):
        out = tmp_path / patience
        args = ["fit", LAC, str(path), "-o", str(out), "--steps", "120", "--polish", "0"]
        assert main([*args, "--patience", patience, "--quiet", "--no-plots"]) == 0
        steps[patience] = json.loads((out / "summary.json").read_text())["steps"]
    assert steps["100"] == 120 and steps["1"] < 120


def test_cli_fit_and_predict(small, tmp_path, capsys):
    path = tmp_path / "small.csv"
    small.iloc[:1500].to_csv(path, index=False)
    out = tmp_path / "cli"
    code = main(["fit", LAC, str(path), "-o", str(out), "--steps", "20", "--polish", "5",
                 "--quiet", "--no-plots"])  # fmt: skip
    assert code == 0 and (out / "summary.json").exists()
    seqs = tmp_path / "seqs.txt"
    seqs.write_text("\n".join(small["x"].iloc[:3]) + "\n")
    assert main(["predict", str(out), str(seqs), "-o", str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 3
    capsys.readouterr()
    assert main(["predict", str(out), "ACGT"]) == 1
    assert "cannot encode" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "ACGT"]) == 1
    assert main(["fit", LAC, str(tmp_path / "missing.csv"), "--quiet"]) == 1


def test_cli_prints_the_notes_of_options_it_could_not_use(small, tmp_path, capsys):
    """--batch-size means nothing to a full-batch fit of a small table: said once, under
    --quiet too."""
    path = tmp_path / "small.csv"
    small.iloc[:600].to_csv(path, index=False)
    args = ["fit", LAC, str(path), "--steps", "2", "--polish", "0", "--batch-size", "64"]
    assert main([*args, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("batch_size=64 does not apply to a full-batch fit") == 1
    notes = json.loads(captured.out)["notes"]
    assert notes[0].startswith("option batch_size=64 does not apply to a full-batch fit of ")
    assert notes[0].endswith("(minibatches from 100,000 rows, unless steps is given); ignored")
    assert all("not converged" in note for note in notes[1:])


def test_user_errors(small):
    with pytest.raises(BpmError, match="G_X.*not parameters of the model"):
        fit(LAC, small.iloc[:300], init={"G_X": 1.0}, steps=2, quiet=True)
    with pytest.raises(BpmError, match="no output 'y'"):
        fit(LAC, small.iloc[:300], output="y", steps=2, quiet=True)
    with pytest.raises(BpmError, match="not found"):
        fit("models/nope.bpm", small.iloc[:300], steps=2, quiet=True)


def test_fixed_parameter_stays_fixed(small):
    result = fit(LAC, small.iloc[:1500], init={"G_I": -4.0}, fix=("G_I",), steps=20, quiet=True)
    assert float(result.params()["G_I"]) == pytest.approx(-4.0)
    with pytest.raises(BpmError, match="fix names"):
        fit(LAC, small.iloc[:300], fix=("G_Z",), steps=2, quiet=True)


def test_polish_improves_the_adam_fit(small):
    """The L-BFGS stage starts from Adam's best state; stopped on the validation reads it
    keeps its best validation state, run to the training optimum it fits training better."""
    adam = fit(LAC, small, seed=0, steps=100, polish=0, quiet=True)
    both = fit(LAC, small, seed=0, steps=100, polish=60, stop="validation", quiet=True)
    assert both.metrics["validation"]["nll"] <= adam.metrics["validation"]["nll"] + 1e-6
    trained = fit(LAC, small, seed=0, steps=100, polish=60, quiet=True)
    assert trained.metrics["training"]["nll"] < both.metrics["training"]["nll"]
    assert both.steps > adam.steps
    assert any(h.get("stage") == "lbfgs" for h in both.history)


def test_profile_keeps_the_most_likely_value(small):
    from bpm.runtime import profile

    result = profile(LAC, small.iloc[:2000], "G_I", [-1.0, -4.0], release=False,
                     steps=30, polish=10, quiet=True)  # fmt: skip
    assert [row["value"] for row in result.profile] == [-1.0, -4.0]
    best = min(result.profile, key=lambda row: row["train_nll"])
    assert float(result.params()["G_I"]) == pytest.approx(best["value"])
    assert result.metrics["training"]["nll"] == pytest.approx(best["train_nll"])


def test_kinetic_model_fits(small):
    result = fit("models/open_complex.bpm", small, seed=0, **FAST)
    assert result.metrics["test"]["I_var_bits"] > 0.05
    assert result.params()["G_R"].shape == (41, 4)


def _pearson_zero_mean(a, b):
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def lac_fit():
    return fit(LAC, DATA, seed=0, quiet=True)


@pytest.mark.slow
def test_lac_matrices_and_information(lac_fit):
    """The headline: the 2010 matrices (same gauge) and the held-out information."""
    kT = lac_fit.kT_kcal_per_mol
    params = lac_fit.params()
    kinney = {
        name: pd.read_csv(f"data/kinney2010/{file}_energy_matrix.csv")[list("ACGT")].to_numpy()
        for name, file in (("G_C", "crp"), ("G_R", "rnap"))
    }
    for name, published in kinney.items():
        assert _pearson_zero_mean(params[name].numpy() * kT, published) >= 0.99, name
    assert lac_fit.metrics["test"]["I_var_bits"] >= 0.68


@pytest.mark.slow
def test_lac_interaction_energy(lac_fit):
    """Kinney et al. (2010): -3.3 +/- 0.4 kcal/mol; the target is -3.3 +/- 0.6."""
    assert -3.9 <= float(lac_fit.params()["G_I"]) * lac_fit.kT_kcal_per_mol <= -2.7


def test_error_bars_are_drawn(fitted, tmp_path):
    """With an uncertainty analysis the plots add error bars: per matrix and the scalars."""
    from bpm.runtime.plots import plot_all

    fitted.analyze_uncertainty()
    names = {p.name for p in plot_all(fitted, tmp_path)}
    assert {"errors_G_C.png", "errors_G_R.png", "errors_scalars.png"} <= names
    for name in ("errors_G_C.png", "errors_scalars.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_uncertainty_is_reported(fitted, tmp_path):
    """Standard errors land in summary.json (null where not identified) and beside each matrix."""
    import json
    import math

    found = fitted.analyze_uncertainty()
    fitted.save(tmp_path, plots=False)
    info = json.loads((tmp_path / "summary.json").read_text())
    errors = info["standard_errors"]
    scalars = {k: v for k, v in found.standard_errors.items() if not hasattr(v, "shape")}
    assert set(scalars) <= set(errors)
    for name, se in scalars.items():
        assert errors[name] is None if not math.isfinite(se) else errors[name] == pytest.approx(se)
    assert info["unidentified"] == found.unidentified
    for name in ("G_C", "G_R"):
        table = pd.read_csv(tmp_path / "params" / f"{name}_se.csv", index_col="position")
        assert list(table.columns) == [*"ACGT", "numbered_position"]  # lac numbers its bases
        table = table[list("ACGT")]
        kT = pd.read_csv(tmp_path / "params" / f"{name}_se_kT.csv", index_col="position")
        kT = kT[list("ACGT")]
        values = table.to_numpy()
        assert np.allclose(
            values, kT.to_numpy() * info["kT_kcal_per_mol"], atol=1e-5, equal_nan=True
        )
        assert (np.isnan(values) | (values >= 0)).all()  # nan: the fit is not at a minimum
    # a 100-step fit is not at an optimum: no standard errors, and it says why
    status = info["standard_error_status"]
    assert found.status == status["status"] == "not at an optimum"
    assert all(v is None for v in errors.values())
    assert set(info["standard_error_reasons"].values()) <= {"not at an optimum", "not identified"}
    assert "optimum" in status["why"]
