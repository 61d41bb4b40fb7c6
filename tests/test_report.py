"""params/*.csv read as labelled: every site's energy recomputed from the tables alone.

A reader who knows nothing of strands or storage order takes ``G_kT.csv`` (rows:
positions of the full sequence, columns: the letter found there), ``G_pairs_kT.csv``
(``position_i, position_j, letter_i, letter_j, energy``) and the offset, and gets the
module's own ``energies(x)``: for forward and ``revcomp`` sites, additive and pair
terms, in the zero-mean and the wild-type gauge.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from bpm.compiler.errors import BpmError
from bpm.runtime import fit
from bpm.runtime.contract import complement
from bpm.runtime.report import write_report
from bpm.runtime.site_tables import report_tables
from bpm.runtime.tables import gauge_name, read_tables

MODEL = """
model strands
sequence x: dna[40]
energy G_fwd  = matrix(x[0:10])
energy G_rev  = matrix(revcomp(x[20:30]))
energy G_nn   = neighbor(x[10:20])
energy G_pair = pairwise(x[30:36])
energy G_nnr  = neighbor(revcomp(x[2:8]))
energy G_I init -1.5
energy mu = -2
param r > 0
thermodynamic {
    empty : 0
    fwd   : G_fwd + mu
    rev   : G_rev + mu
    both  : G_fwd + G_rev + 2*mu + G_I
    nn    : G_nn
    pair  : G_pair
    nnr   : G_nnr
}
output t = r * (P(fwd) + P(both) + P(nn) + P(pair) + P(nnr))
"""
SITES = ("G_fwd", "G_rev", "G_nn", "G_pair", "G_nnr")
WILD_TYPE = "ACGTTGCAAC" * 4


def library(n: int, seed: int) -> pd.DataFrame:
    """Mutagenized copies of WILD_TYPE (about 20% per position) with random read counts."""
    rng = np.random.default_rng(seed)
    wt = np.array(list(WILD_TYPE))
    seqs = np.where(rng.random((n, 40)) < 0.2, rng.choice(list("ACGT"), (n, 40)), wt)
    counts = rng.poisson(1.0, (n, 4))
    counts[counts.sum(1) == 0, 0] = 1
    frame = pd.DataFrame(counts, columns=[f"ct_{k}" for k in range(4)])
    frame["x"] = ["".join(s) for s in seqs]
    frame["set"] = rng.choice(["training", "validation", "test"], n, p=[0.6, 0.2, 0.2])
    return frame


@pytest.fixture(scope="module")
def fitted():
    """A 5-step fit, then random parameters everywhere (so every table is non-trivial)."""
    result = fit(MODEL, library(400, 0), steps=5, polish=0, seed=0, quiet=True)
    module = result.module
    generator = torch.Generator().manual_seed(1)
    module.set_params(
        {
            name: torch.randn(value.shape, generator=generator)
            for name, value in module.get_params().items()
            if name.split(".")[0] in SITES
        }
    )
    return result


def read_back(directory, name: str, codes: np.ndarray, letters: str = "ACGT") -> np.ndarray:
    """A site's energy (kT) of full-length sequences, from params/ and summary.json only."""
    info = json.loads((directory / "summary.json").read_text())
    matrix = pd.read_csv(directory / "params" / f"{name}_kT.csv", index_col="position")
    energy = np.full(len(codes), info["params"][f"{name}.offset"])
    for position, row in matrix.iterrows():
        energy += row[[letters[c] for c in codes[:, position]]].to_numpy()
    pairs_file = directory / "params" / f"{name}_pairs_kT.csv"
    if pairs_file.exists():
        pairs = pd.read_csv(pairs_file).set_index(
            ["position_i", "position_j", "letter_i", "letter_j"]
        )["energy"]
        for i, j in pairs.index.droplevel([2, 3]).unique():
            pair = zip(codes[:, i], codes[:, j], strict=True)
            keys = [(i, j, letters[a], letters[b]) for a, b in pair]
            energy += pairs.loc[keys].to_numpy()
    return energy


def random_codes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, (n, 40))


@pytest.mark.parametrize("gauge", ["zero-mean", "wild_type"])
def test_csvs_read_as_labelled_give_the_modules_energies(fitted, tmp_path, gauge):
    out = write_report(fitted, tmp_path / "fit", plots=False, gauge=gauge)
    codes = random_codes(300, 2)
    with torch.no_grad():
        direct = fitted.module.energies(torch.from_numpy(codes))
    for name in SITES:
        got = read_back(out, name, codes)
        assert np.abs(got - direct[name].numpy()).max() < 1e-5, name


def test_a_revcomp_table_is_the_stored_one_reversed_and_complemented(fitted, tmp_path):
    """Row 29 of G_rev (top strand) is the module's row 0 (bottom strand, 5' end of the
    site there); the top-strand letter A pairs with the stored T."""
    out = write_report(fitted, tmp_path / "fit", plots=False)
    table = pd.read_csv(out / "params" / "G_rev_kT.csv", index_col="position")
    assert list(table.index) == list(range(20, 30)) and list(table.columns) == list("ACGT")
    stored = fitted.module.get_params()["G_rev"].numpy()
    stored = stored - stored.mean(1, keepdims=True)
    assert np.allclose(table.loc[29].to_numpy(), stored[0][::-1], atol=1e-7)  # ACGT -> TGCA
    assert list(complement(fitted.module)) == [3, 2, 1, 0]


def test_the_summary_names_one_gauge_for_every_offset(fitted, tmp_path):
    out = write_report(fitted, tmp_path / "zm", plots=False)
    info = json.loads((out / "summary.json").read_text())
    assert info["gauge"] == "zero-mean"
    sites = pd.read_csv(out / "params" / "sites.csv", index_col="energy")
    assert set(sites["gauge"]) == {"zero-mean"}
    for name in SITES:
        offset = info["params"][f"{name}.offset"]
        assert info["sites"][name]["offset"] == pytest.approx(offset)
        assert sites.loc[name, "offset_kT"] == pytest.approx(offset)
        frame = pd.read_csv(out / "params" / f"{name}_kT.csv", index_col="position")
        assert np.allclose(frame.mean(axis=1), 0, atol=1e-7)
    assert info["sites"]["G_rev"]["strand"] == "bottom"
    assert info["sites"]["G_fwd"]["strand"] == "top"
    pairs = pd.read_csv(out / "params" / "G_pair_pairs_kT.csv")
    assert list(pairs.columns) == ["position_i", "position_j", "letter_i", "letter_j", "energy"]
    assert len(pairs) == 15 * 16 and (pairs["position_i"] < pairs["position_j"]).all()
    assert np.allclose(pairs.groupby(["position_i", "position_j", "letter_i"]).energy.mean(), 0)
    neighbors = pd.read_csv(out / "params" / "G_nn_pairs_kT.csv")
    assert len(neighbors) == 9 * 16
    assert (neighbors["position_j"] == neighbors["position_i"] + 1).all()


def test_the_wild_type_gauge_zeroes_the_wild_type(fitted, tmp_path):
    """Each wild-type letter is 0, the offset is the wild type's energy (reported per site);
    the default wild type is the library's consensus."""
    out = write_report(fitted, tmp_path / "wt", plots=False, gauge="wild-type")
    info = json.loads((out / "summary.json").read_text())
    assert info["gauge"] == "wild-type"
    assert info["wild_type"]["sequence"] == WILD_TYPE
    assert info["wild_type"]["source"] == "library consensus"
    wt = fitted.module.encode([WILD_TYPE])
    with torch.no_grad():
        energies = fitted.module.energies(wt)
    kT = info["kT_kcal_per_mol"]
    for name in SITES:
        expected = float(energies[name][0])
        assert info["params"][f"{name}.offset"] == pytest.approx(expected, abs=1e-6)
        assert info["wild_type"]["energies"][name] == pytest.approx(expected, abs=1e-6)
        assert info["sites"][name]["wild_type_energy_kcal_per_mol"] == pytest.approx(expected * kT)
        frame = pd.read_csv(out / "params" / f"{name}_kT.csv", index_col="position")
        assert all(frame.loc[p, WILD_TYPE[p]] == 0 for p in frame.index)
    pairs = pd.read_csv(out / "params" / "G_pair_pairs_kT.csv")
    on_wt = [WILD_TYPE[i] == a for i, a in zip(pairs.position_i, pairs.letter_i, strict=True)]
    assert (pairs.loc[on_wt, "energy"] == 0).all()


def test_a_given_wild_type_and_the_gauge_names(fitted, tmp_path):
    other = "T" * 40
    tables = report_tables(fitted, "wild_type", wild_type=other)
    assert tables.wild_type_source == "given" and tables.gauge == "wild-type"
    assert gauge_name("zero_mean") == "zero-mean"
    with pytest.raises(BpmError, match="unknown gauge"):
        gauge_name("median")
    with pytest.raises(BpmError, match="wild-type sequence"):
        report_tables(fitted, "wild-type", wild_type="ACGT")


def test_plots_are_written_in_the_gauge(fitted, tmp_path):
    out = write_report(fitted, tmp_path / "fit", gauge="wild-type")
    for name in [*(f"logo_{s}" for s in SITES), "pairs_G_nn", "pairs_G_pair", "pairs_G_nnr"]:
        assert (out / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert not (out / "plots" / "pairs_G_fwd.png").exists()


def test_standard_errors_follow_the_tables(fitted, tmp_path):
    """With an uncertainty analysis, the standard-error CSVs have the tables' layout, in
    the report's gauge: a wild-type letter's entry is exactly known (0 ± 0)."""
    from bpm.runtime.uncertainty import analyze

    found = analyze(fitted.module, fitted.measurement, fitted.dataset.subset("training"))
    fitted.uncertainty = found
    try:
        out = write_report(fitted, tmp_path / "wt", plots=True, gauge="wild-type")
        zero = write_report(fitted, tmp_path / "zm", plots=False)
    finally:
        fitted.uncertainty = None
    table = pd.read_csv(out / "params" / "G_rev_se_kT.csv", index_col="position")
    assert list(table.index) == list(range(20, 30))
    assert all(table.loc[p, WILD_TYPE[p]] == 0 for p in table.index)
    pairs = pd.read_csv(out / "params" / "G_pair_pairs_se_kT.csv")
    assert len(pairs) == 15 * 16
    forward = pd.read_csv(zero / "params" / "G_fwd_se_kT.csv", index_col="position")
    assert np.allclose(forward.to_numpy(), found.standard_errors["G_fwd"], equal_nan=True)
    assert (out / "plots" / "errors_G_rev.png").exists()


@pytest.mark.parametrize("gauge", ["zero-mean", "wild-type"])
def test_the_tables_load_back_into_a_module(fitted, tmp_path, gauge):
    """read_tables puts params/ back in the module's own layout: a fresh module given the
    tables and summary.json's offsets computes the same energies."""
    out = write_report(fitted, tmp_path / "fit", plots=False, gauge=gauge)
    info = json.loads((out / "summary.json").read_text())
    fresh = type(fitted.module)()
    values = read_tables(out / "params", fresh)
    assert {"G_nn.neighbor", "G_pair.pairwise", "G_nnr.neighbor"} <= set(values)
    values.update({f"{n}.offset": info["params"][f"{n}.offset"] for n in SITES})
    fresh.set_params({k: torch.as_tensor(v, dtype=torch.float32) for k, v in values.items()})
    codes = torch.from_numpy(random_codes(200, 3))
    with torch.no_grad():
        want, got = fitted.module.energies(codes), fresh.energies(codes)
    for name in SITES:
        assert torch.allclose(got[name], want[name], atol=1e-5), name


@pytest.mark.parametrize("gauge", ["zero-mean", "wild-type"])
def test_a_fit_directory_is_read_back_as_parameters(fitted, tmp_path, gauge):
    """`bpm simulate --params FITDIR` reads params/ on the top strand, pair terms included:
    a fresh module given what it reads computes the fitted module's energies."""
    from bpm.runtime.truth import read_params

    directory = tmp_path / gauge
    write_report(fitted, directory, plots=False, gauge=gauge, wild_type=WILD_TYPE)
    fresh = type(fitted.module)()
    values = read_params(directory, fresh)
    fresh.set_params({k: torch.as_tensor(v, dtype=torch.float32) for k, v in values.items()})
    x = fresh.encode(library(300, 5)["x"].tolist())
    with torch.no_grad():
        want, got = fitted.module.energies(x), fresh.energies(x)
    for name in SITES:
        np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), atol=1e-4)
