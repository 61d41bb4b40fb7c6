"""The models of real published data, models/gb1.bpm and models/mpsa.bpm, compile to the
modules their papers describe (the three-state GB1 formula checked against numpy), and
the shipped tables data/gb1_olson2014.csv.gz and data/mpsa_wong2018.csv.gz have the
rows, splits and columns that data/README.md documents."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bpm.compiler import load
from bpm.runtime.data import read_table
from bpm.runtime.letters import OUTSIDE, encode

ROOT = Path(__file__).parent.parent
GB1 = ROOT / "models" / "gb1.bpm"
MPSA = ROOT / "models" / "mpsa.bpm"
GB1_DATA = ROOT / "data" / "gb1_olson2014.csv.gz"
MPSA_DATA = ROOT / "data" / "mpsa_wong2018.csv.gz"
GB1_WT = "QYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"  # residues 2-56
PROTEIN = "ACDEFGHIKLMNPQRSTVWY"


def random_sequences(rng: np.random.Generator, alphabet: str, n: int, length: int) -> list[str]:
    return ["".join(rng.choice(list(alphabet), length)) for _ in range(n)]


def test_gb1_has_two_additive_energies_over_55_residues():
    cls = load(GB1)
    assert cls.kind == "thermodynamic"
    assert cls.alphabet == PROTEIN and cls.sequence_length == 55
    assert cls.state_names == ("unfolded", "folded", "bound")
    assert cls.output_names == ("t",)
    params = cls().get_params()
    assert set(params) == {"G_F", "G_F.offset", "G_B", "G_B.offset"}
    assert params["G_F"].shape == params["G_B"].shape == (55, 20)
    for name in ("G_F", "G_B"):
        assert cls.site_energies[name] == {
            "kind": "matrix", "start": 0, "stop": 55, "revcomp": False}  # fmt: skip


def test_gb1_output_is_the_three_state_bound_fraction():
    """t = exp(-G_F - G_B) / (1 + exp(-G_F) + exp(-G_F - G_B)), computed here in numpy."""
    rng = np.random.default_rng(7)
    module = load(GB1)().double()
    F = rng.normal(0, 0.1, (55, 20))  # about 0.7 kT spread per sequence: all states matter
    B = rng.normal(0, 0.1, (55, 20))
    f0, b0 = -0.3, 0.15
    module.set_params({
        "G_F": torch.tensor(F), "G_F.offset": f0,
        "G_B": torch.tensor(B), "G_B.offset": b0,
    })  # fmt: skip
    seqs = [GB1_WT] + random_sequences(rng, PROTEIN, 7, 55)
    codes = np.array([[PROTEIN.index(c) for c in s] for s in seqs])
    rows = np.arange(55)
    g_f = np.array([f0 + F[rows, c].sum() for c in codes])
    g_b = np.array([b0 + B[rows, c].sum() for c in codes])
    expected = np.exp(-g_f - g_b) / (1 + np.exp(-g_f) + np.exp(-g_f - g_b))
    x = module.encode(seqs)
    t = module(x).detach().numpy()
    assert np.allclose(t, expected, rtol=1e-10, atol=0)
    assert np.all((t > 0) & (t < 1))
    energies = module.energies(x)
    assert np.allclose(energies["G_F"].detach().numpy(), g_f)
    assert np.allclose(energies["G_B"].detach().numpy(), g_b)
    P = module.P(x).detach().numpy()
    assert np.allclose(P.sum(1), 1)
    assert np.allclose(P[:, 1], np.exp(-g_f) / (1 + np.exp(-g_f) + np.exp(-g_f - g_b)))


def test_gb1_stays_in_the_open_interval_at_large_energies_in_float32():
    module = load(GB1)()
    module.set_params({"G_F.offset": torch.tensor(-60.0), "G_B.offset": torch.tensor(40.0)})
    t = module(module.encode([GB1_WT])).detach()
    assert torch.isfinite(t).all() and 0 < float(t) < 1


def test_mpsa_is_one_pairwise_energy_on_rna():
    cls = load(MPSA)
    assert cls.alphabet == "ACGU" and cls.sequence_length == 9
    assert cls.state_names == ("free", "u1") and cls.output_names == ("t",)
    params = cls().get_params()
    assert set(params) == {"G", "G.offset", "G.pairwise"}
    assert params["G"].shape == (9, 4)
    assert params["G.pairwise"].shape == (9, 9, 4, 4)


def test_mpsa_output_is_the_logistic_of_the_pairwise_energy():
    """G = offset + sum_i h[i, x_i] + sum_{i<j} J[i, j, x_i, x_j]; t = 1 / (1 + exp(G))."""
    rng = np.random.default_rng(3)
    module = load(MPSA)().double()
    h = rng.normal(0, 0.5, (9, 4))
    J = rng.normal(0, 0.3, (9, 9, 4, 4))
    module.set_params({"G": torch.tensor(h), "G.offset": 0.7,
                       "G.pairwise": torch.tensor(J)})  # fmt: skip
    seqs = ["CAGGUAAGU"] + random_sequences(rng, "ACGU", 9, 9)
    codes = np.array([["ACGU".index(c) for c in s] for s in seqs])
    G = np.array([
        0.7 + sum(h[i, c[i]] for i in range(9))
        + sum(J[i, j, c[i], c[j]] for i in range(9) for j in range(i + 1, 9))
        for c in codes
    ])  # fmt: skip
    t = module(module.encode(seqs)).detach().numpy()
    assert np.allclose(t, 1 / (1 + np.exp(G)), rtol=1e-10, atol=0)
    assert np.all((t > 0) & (t < 1))


@pytest.fixture(scope="module")
def gb1_table():
    return read_table(GB1_DATA, ("x", "set"))


@pytest.fixture(scope="module")
def mpsa_table():
    return read_table(MPSA_DATA, ("x", "set"))


def test_gb1_table_is_as_documented(gb1_table):
    df = gb1_table
    assert list(df.columns) == ["set", "dist", "input_ct", "selected_ct", "y", "x"]
    assert len(df) == 530_737 and df["x"].is_unique
    assert df["set"].value_counts().to_dict() == {
        "training": 477_854, "validation": 26_519, "test": 26_364}  # fmt: skip
    assert (df["dist"] == 2).all()
    assert df["input_ct"].min() == 10 and df["selected_ct"].min() == 0
    # y: log2 enrichment relative to wild type (input 1,759,616, selected 3,041,819 reads)
    wt = np.log2((3_041_819 + 1) / (1_759_616 + 1))
    y = np.log2((df["selected_ct"] + 1) / (df["input_ct"] + 1)) - wt
    assert np.allclose(df["y"], y, rtol=0, atol=1e-12)
    codes = encode(df["x"].to_numpy(), PROTEIN)
    assert codes.shape == (530_737, 55) and not (codes == OUTSIDE).any()
    wild = np.array([PROTEIN.index(c) for c in GB1_WT])
    assert ((codes != wild).sum(1) == 2).all()  # double mutants of the wild type


def test_mpsa_table_is_as_documented(mpsa_table):
    df = mpsa_table
    assert list(df.columns) == ["set", "tot_ct", "ex_ct", "y", "x"]
    assert len(df) == 30_483 and df["x"].is_unique
    assert df["set"].value_counts().to_dict() == {
        "training": 18_469, "test": 6_078, "validation": 5_936}  # fmt: skip
    assert df["tot_ct"].min() == 10
    assert (df["ex_ct"] > df["tot_ct"]).sum() == 1_480  # not a subset of tot_ct
    # y: log10 PSI in percent, relative to the consensus CAG/GUAAGU at 100
    consensus = df.loc[df["x"] == "CAGGUAAGU"].iloc[0]
    assert (consensus["ex_ct"], consensus["tot_ct"], consensus["y"]) == (2871, 292, 2.0)
    ratio = (df["ex_ct"] + 1) / (df["tot_ct"] + 1)
    y = 2 + np.log10(ratio) - np.log10((2871 + 1) / (292 + 1))
    assert np.allclose(df["y"], y, rtol=0, atol=1e-12)
    assert set("".join(df["x"])) == set("ACGU")
    assert set(df["x"].str[3]) == {"G"} and set(df["x"].str[4]) == {"C", "U"}  # G at +1, C/U +2
    module = load(MPSA)()
    assert module.encode(df["x"].tolist()).shape == (30_483, 9)


@pytest.mark.parametrize("name", ["gb1", "mpsa"])
def test_the_page_shows_the_model_file_as_it_is(name):
    page = (ROOT / "docs" / f"{name}.md").read_text()
    text = (ROOT / "models" / f"{name}.bpm").read_text()
    assert f"```bpm\n{text.rstrip()}\n```" in page
