"""Continuous scores and count pairs end to end: simulated with known energies, fitted,
detected from their columns, refused when bad, reported, saved and loaded back.

Fits are small (a 12-position site, a few thousand variants, 200 Adam steps and a short
polish), so the whole file runs in well under a minute on two cores.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from bpm.compiler.errors import BpmDataError
from bpm.runtime.observations import detect_kind, read_observations
from bpm.runtime.simulate import simulate, write

TINY = """model tiny
sequence x: dna[16]
energy G = matrix(x[2:14])
param r_max > 0 init 1.0
thermodynamic {
    empty : 0
    bound : G
}
output t = r_max * P(bound)
"""
PAIR = ["input_ct", "selected_ct"]
FIT = {"steps": 200, "polish": 100, "quiet": True, "threads": 2}
SEQS = ["ACGTACGTAC", "ACGTACGTAA", "ACGTACGTAG", "ACGTACGTAT", "ACGTACGTCC", "ACGTACGTCA"]


def _options(kind: str) -> dict:
    return {"count_columns": PAIR} if kind == "counts" else {}


def _r(fitted, truth) -> float:
    a = np.asarray(fitted) - np.mean(fitted, axis=1, keepdims=True)
    b = np.asarray(truth) - np.mean(truth, axis=1, keepdims=True)
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _read(frame: pd.DataFrame, **options):
    return read_observations(frame, alphabet="ACGT", **options)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The model as a file: a fit of a file records its source, so it loads back."""
    path = tmp_path_factory.mktemp("model") / "tiny.bpm"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def recovered(tiny):
    """Each kind simulated (3,000 library variants, seed 1) and fitted with ``fit``."""
    from bpm.runtime.fit import fit

    found = {}
    for kind in ("continuous", "counts"):
        table, truth = simulate(tiny, n=3000, measurement=kind, seed=1, mutation_rate=0.15)
        result = fit(tiny, table, data_options=_options(kind), **FIT)
        found[kind] = (table, truth, result)
    return found


# --- the simulator -------------------------------------------------------------------


def test_simulated_tables_have_the_layout_the_reader_detects():
    for kind, dy, columns in (
        ("continuous", False, ["x", "y", "set"]),
        ("continuous", True, ["x", "y", "dy", "set"]),
        ("counts", False, ["x", *PAIR, "set"]),
    ):
        table, truth = simulate(TINY, n=800, measurement=kind, dy=dy, seed=2)
        assert list(table.columns) == columns
        assert table["x"].is_unique  # one row per variant of the library
        assert truth.meta["measurement_kind"] == kind
        assert truth.meta["measurement"]["kind"] == kind
        assert truth.meta["unique_sequences"] == len(table)
        assert detect_kind(table.columns, count_columns=PAIR if kind == "counts" else None) == kind
        data = _read(table, **_options(kind))
        assert data.kind == kind
        assert len(data) + data.summary["zero_read_rows_set_aside"] == len(table)


def test_continuous_scores_are_log2_enrichments_around_the_wild_type():
    table, truth = simulate(TINY, n=2000, measurement="continuous", noise=0.0, seed=4)
    process = truth.meta["measurement"]
    assert process["noise_sd"] == 0 and process["t_wild_type"] > 0
    wild = table["x"] == truth.meta["wild_type"]
    if wild.any():
        assert abs(float(table.loc[wild, "y"].iloc[0])) < 1e-9
    assert (table["y"] < 0).any()  # variants worse than the wild type: negative scores
    noisy, _ = simulate(TINY, n=2000, measurement="continuous", noise=0.5, seed=4)
    assert abs(float((noisy["y"] - table["y"]).std()) - 0.5) < 0.05
    with_dy, _ = simulate(TINY, n=2000, measurement="continuous", dy=True, seed=4)
    assert (with_dy["dy"] > 0).all() and with_dy["dy"].std() > 0.05


def test_count_pair_reads_add_up_and_zero_input_rows_stay():
    table, truth = simulate(TINY, n=2000, measurement="counts", reads=3000, seed=5)
    process = truth.meta["measurement"]
    assert int(table["input_ct"].sum()) == process["reads_input"] == 1500
    assert int(table["selected_ct"].sum()) == process["reads_selected"] == 1500
    zero_input = int((table["input_ct"] == 0).sum())
    assert zero_input == process["zero_input_rows"] > 0  # kept in the table
    default, truth = simulate(TINY, n=500, measurement="counts", seed=5)
    assert truth.meta["reads"] == 20 * 500


def test_truth_json_records_the_process(tmp_path):
    table, truth = simulate(TINY, n=500, measurement="counts", seed=1)
    paths = write(table, truth, tmp_path / "pair.csv")
    doc = json.loads(paths["truth"].read_text())["simulation"]
    assert doc["measurement_kind"] == "counts"
    assert doc["measurement"]["s"] > 0 and "Multinomial" in doc["measurement"]["formula"]
    _, sorted_truth = simulate(TINY, n=500, seed=1)
    assert sorted_truth.meta["measurement_kind"] == "sortseq"
    assert "measurement" not in sorted_truth.meta  # the sort's record is unchanged


def test_simulator_refuses_settings_of_another_kind():
    with pytest.raises(BpmDataError, match="measurement must be one of"):
        simulate(TINY, n=100, measurement="bins")
    with pytest.raises(BpmDataError, match="dy"):
        simulate(TINY, n=100, measurement="counts", dy=True)
    with pytest.raises(BpmDataError, match="background"):
        simulate(TINY, n=100, measurement="continuous", background=0.1)


# --- recovery ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["continuous", "counts"])
def test_fit_recovers_the_site_matrix(recovered, kind):
    """Measured (seeds 1-3): r 0.998-0.999 continuous, 0.973-0.993 counts (the count
    pair carries 0.04-0.09 bits per read); a sign flip or a scrambled matrix gives r near
    -1 or 0. The scale is loosely held by the monotone link (measured 0.74-1.03 of the
    truth's), so it is only checked to be the truth's order."""
    _, truth, result = recovered[kind]
    fitted = result.module.get_params()["G"].detach().double().numpy()
    assert _r(fitted, truth.params["G"]) >= (0.97 if kind == "continuous" else 0.9)
    centered = fitted - fitted.mean(axis=1, keepdims=True)
    true = truth.params["G"] - truth.params["G"].mean(axis=1, keepdims=True)
    assert 0.5 < np.linalg.norm(centered) / np.linalg.norm(true) < 1.6
    assert result.measurement.kind == kind


@pytest.mark.parametrize("kind", ["continuous", "counts"])
def test_metrics_of_each_kind(recovered, kind):
    result = recovered[kind][2]
    for split in ("training", "validation", "test"):
        metrics = result.metrics[split]
        for key in ("nll", "I_var_bits", "I_pred_bits"):
            assert np.isfinite(metrics[key]), (split, key)
        assert ("R2" in metrics) == (kind == "continuous")
    test = result.metrics["test"]
    if kind == "continuous":
        assert 0.7 < test["R2"] <= 1 and test["I_pred_bits"] > 1
    else:
        assert test["I_var_bits"] > 0 and test["I_pred_bits"] > 0


@pytest.mark.parametrize("kind,column", [("continuous", "y_hat"), ("counts", "selected_fraction")])
def test_predicted_measurement_and_the_saved_fit_load_back(recovered, tmp_path, kind, column):
    from bpm.runtime.load import load_fit, predict
    from bpm.runtime.report import write_report

    table, _, result = recovered[kind]
    sequences = list(table["x"][:50])
    before = predict(result, sequences)
    assert column in before.columns and np.isfinite(before[column]).all()
    if kind == "counts":
        assert ((before[column] > 0) & (before[column] < 1)).all()
    rank = np.corrcoef(before["t"].rank(), before[column].rank())[0, 1]
    assert rank > 0.99  # monotone in t
    write_report(result, tmp_path / "fit", plots=False)
    summary = json.loads((tmp_path / "fit" / "summary.json").read_text())
    assert summary["measurement_kind"] == kind
    loaded = load_fit(tmp_path / "fit")
    assert loaded.measurement.kind == kind
    after = predict(loaded, sequences)
    np.testing.assert_allclose(after[column], before[column], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(after["t"], before["t"], rtol=1e-5)


@pytest.mark.parametrize("kind", ["continuous", "counts"])
def test_cli_fit_reports_the_measurement_kind(tiny, tmp_path, kind):
    from bpm.cli.main import main

    model = tiny
    table, truth = simulate(TINY, n=600, measurement=kind, seed=3, dy=kind == "continuous")
    data = write(table, truth, tmp_path / "data.csv")["data"]
    args = ["fit", str(model), str(data), "-o", str(tmp_path / "fit"), "--no-plots"]
    args += ["--steps", "20", "--polish", "10", "--threads", "2"]
    if kind == "counts":
        args += ["--counts", ",".join(PAIR)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(args) == 0
    lines = [line for line in err.getvalue().splitlines() if line.startswith("measurement:")]
    assert lines and kind in lines[0], err.getvalue()[-2000:]
    assert ("standard errors 'dy'" in lines[0]) == (kind == "continuous")
    summary = json.loads((tmp_path / "fit" / "summary.json").read_text())
    assert summary["measurement_kind"] == kind


# --- detection -----------------------------------------------------------------------


def test_kind_from_the_columns():
    assert detect_kind(["x", "ct_0", "ct_1", "set"]) == "sortseq"
    assert detect_kind(["x", "y", "set"]) == "continuous"
    assert detect_kind(["x", "a", "b"], count_columns=["a", "b"]) == "counts"
    assert detect_kind(["x", "a", "b", "c"], count_columns=["a", "b", "c"]) == "sortseq"
    assert detect_kind(["x", "y", "ct_0"], "continuous") == "continuous"


def test_both_or_neither_kind_is_refused_with_what_to_pass():
    with pytest.raises(BpmDataError) as both:
        detect_kind(["x", "y", "ct_0", "ct_1"])
    assert all(word in str(both.value) for word in ("ct_0", "'y'", "--measurement"))
    with pytest.raises(BpmDataError) as neither:
        detect_kind(["x", "score", "set"])
    text = str(neither.value)
    assert all(word in text for word in ("'score'", "--counts", "--y-column"))


def test_counts_without_two_columns_is_refused():
    for columns in (None, ["a"], ["a", "b", "c"]):
        with pytest.raises(BpmDataError, match="--counts REFERENCE,SELECTED"):
            detect_kind(["x", "a", "b", "c"], "counts", columns)


# --- bad inputs ----------------------------------------------------------------------


def test_bad_scores_are_refused_with_their_rows():
    frame = pd.DataFrame({"x": SEQS, "y": ["1", "a", "2", "3", "b", "4"]})
    with pytest.raises(BpmDataError, match=r"non-numeric 'y' in 2 rows \(1, 4"):
        _read(frame)
    frame = pd.DataFrame({"x": SEQS, "y": [1, np.nan, 2, np.inf, 3, -np.inf]})
    with pytest.raises(BpmDataError) as bad:
        _read(frame)
    assert "non-numeric 'y' in 1 row (1" in str(bad.value)
    assert "infinite 'y' in 2 rows (3, 5" in str(bad.value)
    frame = pd.DataFrame({"x": SEQS, "y": np.arange(6.0), "dy": [0.1, -0.2, 0, 0.1, 0.1, 0.1]})
    with pytest.raises(BpmDataError, match=r"negative 'dy' .* in 1 row \(1"):
        _read(frame)


def test_negative_scores_are_read():
    frame = pd.DataFrame({"x": SEQS, "y": -np.arange(6.0) - 0.5, "dy": 0.1})
    data = _read(frame)
    assert data.kind == "continuous" and len(data) == 6
    assert data.summary["score_range"] == [-5.5, -0.5]
    assert data.summary["error_column"] == "dy"


def test_bad_count_pairs_are_refused_with_columns_and_rows():
    frame = pd.DataFrame({"x": SEQS, "a": 1})
    with pytest.raises(BpmDataError, match=r"no column\(s\) \['b'\]"):
        _read(frame, count_columns=["a", "b"])
    frame = pd.DataFrame({"x": SEQS, "tot": 5, "ex": [1, 6, 2, 3, 7, 0]})
    with pytest.raises(BpmDataError, match=r"'ex' above 'tot' in 2 rows \(1, 4"):
        _read(frame, count_columns=["tot", "ex"], pair="nested")
    assert len(_read(frame, count_columns=["tot", "ex"], pair="separate")) == 6


def test_zero_read_rows_are_set_aside_and_counted_nothing_silently():
    frame = pd.DataFrame({"x": SEQS, "a": [0, 0, 3, 4, 5, 6], "b": [0, 2, 3, 0, 0, 1]})
    data = _read(frame, count_columns=["a", "b"])
    summary = data.summary
    assert summary["zero_read_rows_set_aside"] == 1  # row 0: no reads at all
    assert summary["rows_read"] == 6 == len(data) + summary["zero_read_rows_set_aside"]
    assert summary["sequences"] == len(data) == 5
    assert summary["zero_reference_rows"] >= 1  # row 1: no input, 2 selected reads, kept
    assert "ACGTACGTAA" in list(data.sequences)
    nested = _read(frame.assign(b=[0, 0, 3, 0, 0, 1]), count_columns=["a", "b"], pair="nested")
    assert nested.summary["zero_read_rows_set_aside"] == 2
    assert len(nested) + 2 == 6


def test_zero_reference_rows_count_only_the_rows_kept():
    """A row without any reads is set aside, not also counted as a kept zero-reference
    row (so counted once)."""
    frame = pd.DataFrame({"x": SEQS, "a": [0, 0, 3, 4, 5, 6], "b": [0, 2, 3, 0, 0, 1]})
    assert _read(frame, count_columns=["a", "b"]).summary["zero_reference_rows"] == 1


def test_reading_a_score_table_without_an_alphabet_defaults_like_a_sort():
    data = read_observations(pd.DataFrame({"x": SEQS, "y": np.arange(6.0)}))
    assert data.kind == "continuous"


def test_uncertainty_of_a_continuous_fit(recovered):
    result = recovered["continuous"][2]
    result.analyze_uncertainty()
    assert result.uncertainty is not None


def test_distributed_refuses_a_count_pair(recovered, tiny, tmp_path):
    """Streamed minibatches read sort-seq tables only: a count pair must be refused, not
    encoded as a two-bin sort (as distributed.run once did, before the kind check)."""
    from bpm.compiler.errors import BpmError
    from bpm.runtime.fit import fit

    path = tmp_path / "pair.csv"
    recovered["counts"][0].to_csv(path, index=False)
    with pytest.raises(BpmError, match="full batch"):
        fit(tiny, path, processes=2, steps=2, polish=0, quiet=True, data_options=_options("counts"))
