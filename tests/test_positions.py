"""Positions as the model file numbers them (``positions -20 to +20 relative to TSS``)
wherever a fit shows positions to a person: the matrix tables' ``numbered_position``
columns, sites.csv, summary.json, the figures' axes and report.html. The numbers are
metadata: the same fit without them gives the same energies, to the last bit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bpm.compiler.errors import BpmError
from bpm.compiler.ir import Numbering
from bpm.runtime import contract, fit
from bpm.runtime.plots import pyplot
from bpm.runtime.positions import numbered, set_ticks, ticks
from bpm.runtime.tables import read_tables

MODEL = """
model numbered
sequence x: dna[40] positions -20 to +20 relative to TSS
energy G_fwd  = matrix(x[0:10])
energy G_rev  = matrix(revcomp(x[14:26]))
energy G_nn   = neighbor(x[26:34])
energy G_pair = pairwise(x[34:40])
param r > 0
thermodynamic {
    empty : 0
    fwd   : G_fwd
    rev   : G_rev
    nn    : G_nn
    pair  : G_pair
}
output t = r * (P(fwd) + P(rev) + P(nn) + P(pair))
"""
PLAIN = MODEL.replace(" positions -20 to +20 relative to TSS", "")
TSS = Numbering(-20, 20, "TSS")


def library(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(1.0, (n, 4))
    counts[counts.sum(1) == 0, 0] = 1
    frame = pd.DataFrame(counts, columns=[f"ct_{k}" for k in range(4)])
    frame["x"] = ["".join(s) for s in rng.choice(list("ACGT"), (n, 40))]
    frame["set"] = rng.choice(["training", "validation", "test"], n, p=[0.6, 0.2, 0.2])
    return frame


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """The numbered model and the same model without positions, fitted alike and saved
    (the numbered one with standard errors and figures)."""
    data = library(300, 0)
    out = {}
    for name, text in (("numbered", MODEL), ("plain", PLAIN)):
        source = tmp_path_factory.mktemp("models") / f"{name}.bpm"
        source.write_text(text)  # from a file, so the fit directory keeps model.bpm
        result = fit(str(source), data, steps=5, polish=0, seed=0, quiet=True)
        if name == "numbered":
            result.analyze_uncertainty()
        directory = tmp_path_factory.mktemp(name)
        result.save(directory, plots=name == "numbered")
        out[name] = (result, directory)
    return out


def test_the_numbers_change_no_number_of_the_fit(fits):
    (numbered_fit, numbered_dir), (plain_fit, plain_dir) = fits["numbered"], fits["plain"]
    assert contract.numbering(numbered_fit.module) == TSS
    assert contract.numbering(plain_fit.module) is None
    for name, value in plain_fit.module.get_params().items():
        assert torch.equal(numbered_fit.module.get_params()[name], value), name
    for path in sorted(plain_dir.glob("params/*.csv")):
        plain = pd.read_csv(path)
        again = pd.read_csv(numbered_dir / "params" / path.name)
        assert not any(c.startswith("numbered") for c in plain.columns)  # unnumbered: as before
        assert again[list(plain.columns)].equals(plain), path.name
    # read back into a module, the numbered tables give the same parameters
    tables = read_tables(numbered_dir / "params", numbered_fit.module)
    for name, value in read_tables(plain_dir / "params", plain_fit.module).items():
        assert np.array_equal(tables[name], value)


def test_every_table_numbers_its_positions(fits):
    _, directory = fits["numbered"]
    wide = sorted(p for p in directory.glob("params/*.csv") if "pairs" not in p.name)
    wide = [p for p in wide if p.name != "sites.csv"]
    assert len(wide) == 4 * 4  # kcal/mol and kT, values and standard errors, 4 sites
    for path in wide:
        frame = pd.read_csv(path)
        assert list(frame.columns)[-1] == "numbered_position"  # last: letters stay in place
        assert list(frame["numbered_position"]) == [TSS.number(p) for p in frame["position"]]
    fwd = pd.read_csv(directory / "params" / "G_fwd_kT.csv")
    assert list(fwd["numbered_position"]) == list(range(-20, -10))
    rev = pd.read_csv(directory / "params" / "G_rev_kT.csv")  # top strand, -6..-1, +1..+6
    assert list(rev["numbered_position"]) == [*range(-6, 0), *range(1, 7)]
    for name in ("G_nn", "G_pair"):
        pairs = pd.read_csv(directory / "params" / f"{name}_pairs_kT.csv")
        for side in ("i", "j"):
            numbers = [TSS.number(p) for p in pairs[f"position_{side}"]]
            assert list(pairs[f"numbered_position_{side}"]) == numbers
    sites = pd.read_csv(directory / "params" / "sites.csv", index_col="energy")
    assert sites.loc["G_rev", ["numbered_first", "numbered_last"]].tolist() == [-6, 6]
    info = json.loads((directory / "summary.json").read_text())
    assert info["numbering"] == {"first": -20, "last": 20, "reference": "TSS"}
    pair = info["sites"]["G_pair"]
    assert (pair["numbered_first"], pair["numbered_last"]) == (15, 20)
    page = (directory / "report.html").read_text()
    assert "-6 to +6 relative to TSS (x[14:26])" in page
    shown = "sequence x: dna &#x27;ACGT&#x27;, length 40, positions -20 to +20 relative to TSS"
    assert shown in page  # bpm show's line, in the closed-form section


def test_the_figures_label_positions_as_numbered(fits, monkeypatch):
    from bpm.runtime import plots_errors, plots_logo, plots_pairwise
    from bpm.runtime.plots import plot_all

    result, directory = fits["numbered"]
    seen = {}

    def record(module):
        def save(fig, axes, path, *args, **kwargs):
            ax = fig.axes[1] if Path(path).name.startswith("errors_G") else fig.axes[0]
            labels = [t.get_text() for t in ax.get_xticklabels()]
            seen[Path(path).name] = (ax.get_xlabel(), labels)
            return Path(path)

        monkeypatch.setattr(module, "save_figure", save)

    for module in (plots_logo, plots_errors, plots_pairwise):
        record(module)
    plot_all(result, directory / "again")
    rev = [*(str(n) for n in range(-6, 0)), *(f"+{n}" for n in range(1, 7))]
    assert seen["logo_G_rev.png"] == ("position relative to TSS", rev)
    assert seen["logo_G_fwd.png"][1] == [str(n) for n in range(-20, -10)]
    assert seen["errors_G_fwd.png"] == ("position relative to TSS", seen["logo_G_fwd.png"][1])
    label, pairs = seen["pairs_G_nn.png"]
    assert label == "adjacent positions relative to TSS" and pairs[0] == "+7/+8"
    label, blocks = seen["pairs_G_pair.png"]
    assert label.startswith("position j relative to TSS") and blocks[0] == "+15"


def test_ticks_and_tables_without_a_numbering_stay_0_based():
    assert ticks(range(30, 40), None) == (list(range(30, 40)), [str(p) for p in range(30, 40)])
    frame = pd.DataFrame({"A": [1.0]}, index=pd.Index([3], name="position"))
    assert numbered(frame, None) is frame
    plt = pyplot()
    fig, ax = plt.subplots()
    try:
        set_ticks(ax, range(0, 9), Numbering(-3, 6, "5' splice site"))
        assert ax.get_xlabel() == "position relative to 5' splice site"
        assert [t.get_text() for t in ax.get_xticklabels()][2:4] == ["-1", "+1"]
    finally:
        plt.close(fig)


def test_a_module_with_a_broken_numbering_is_refused():
    class Module:
        sequence_length = 4
        numbering = {"first": -2, "last": 3, "reference": None}  # 5 letters

    with pytest.raises(BpmError, match="does not number its 4 letters"):
        contract.numbering(Module())
    Module.numbering = {"first": 0, "last": 3}
    with pytest.raises(BpmError, match="not a numbering"):
        contract.numbering(Module())
    Module.numbering = None
    assert contract.numbering(Module()) is None


def test_a_simulations_truth_tables_number_their_positions_as_a_fit_does(tmp_path):
    from bpm.runtime.simulate import simulate
    from bpm.runtime.truth import read_params

    saved = {}
    for name, text in (("numbered", MODEL), ("plain", PLAIN)):
        _, truth = simulate(text, n=200, seed=4)
        saved[name], folder = truth.save(tmp_path / name / "sim.csv")
    folder = tmp_path / "numbered" / "sim.truth"
    fwd = pd.read_csv(folder / "G_fwd_kT.csv")
    assert list(fwd.columns)[-1] == "numbered_position"
    assert list(fwd["numbered_position"]) == list(range(-20, -10))
    rev = pd.read_csv(folder / "G_rev_kT.csv")  # top strand, as the fit's params/
    assert list(rev["numbered_position"]) == [*range(-6, 0), *range(1, 7)]
    doc = json.loads(saved["numbered"].read_text())
    assert doc["numbering"] == {"first": -20, "last": 20, "reference": "TSS"}
    assert "numbering" not in json.loads(saved["plain"].read_text())
    # the numbers are labels only: the same draw reads back to the same parameters
    module = contract.resolve_model(MODEL)[0]()
    back = {k: read_params(v, module) for k, v in saved.items()}
    assert back["numbered"].keys() == back["plain"].keys()
    for key, value in back["plain"].items():
        assert np.array_equal(back["numbered"][key], value), key
