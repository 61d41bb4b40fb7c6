"""The figures of a fit directory: letter colours by alphabet, error heatmaps with the
logos' sign, PDFs beside the PNGs on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from bpm.cli import main
from bpm.compiler.errors import BpmError
from bpm.runtime.plots import pyplot
from bpm.runtime.plots_errors import MISSING_COLOR, error_heatmaps
from bpm.runtime.plots_logo import CHEMISTRY, alphabet_kind, draw_logo, letter_colors
from bpm.runtime.plots_measured import parse_formats

PROTEIN = "ACDEFGHIKLMNPQRSTVWY"
PROTEIN_MODEL = """
model binder
sequence x: protein[8]
energy G = matrix(x[1:7])
param t_max > 0
thermodynamic {
    free  : 0
    bound : G
}
output t = t_max * P(bound)
"""
#: The nucleotide colours logos had before protein colours came (they must not change).
DNA_BEFORE = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839"}


def logo_colors(letters: str) -> dict[str, str]:
    """Draw a logo with one letter per position (each its own height) and read back the
    colour each letter's glyph was filled with."""
    plt = pyplot()
    frame = pd.DataFrame(np.diag(np.arange(1.0, len(letters) + 1)), columns=list(letters))
    fig, ax = plt.subplots()
    try:
        draw_logo(ax, frame)
        drawn = [to_hex(p.get_facecolor()) for p in ax.patches]
    finally:
        plt.close(fig)
    assert len(drawn) == len(letters)  # row k has only letter k: patches in letter order
    return dict(zip(letters, drawn, strict=True))


def test_dna_and_rna_logos_keep_the_nucleotide_colours():
    assert logo_colors("ACGT") == {k: v.lower() for k, v in DNA_BEFORE.items()}
    rna = logo_colors("ACGU")
    assert rna["U"] == DNA_BEFORE["T"].lower() and rna["A"] == DNA_BEFORE["A"].lower()
    assert alphabet_kind("acgt") == "nucleotide"


def test_protein_logos_colour_residues_by_chemistry():
    """Residues of one class share a colour, classes differ, none is grey or a DNA colour
    given for its letter's sake (C, G and T are polar, A hydrophobic)."""
    drawn = logo_colors(PROTEIN)
    classes = {group: {drawn[r] for r in group} for group, _, _ in CHEMISTRY}
    assert all(len(colors) == 1 for colors in classes.values()), classes
    assert len({c for colors in classes.values() for c in colors}) == len(CHEMISTRY)
    assert drawn["A"] != drawn["C"] == drawn["G"] == drawn["T"]
    assert drawn["D"] != drawn["K"]  # acidic against basic
    assert "#666666" not in drawn.values()  # matplotlib's "0.4", the old fallback grey
    assert sorted(r for group, _, _ in CHEMISTRY for r in group) == list(PROTEIN)


def test_other_alphabets_get_one_colour_per_letter():
    colors = letter_colors("xyz")
    assert alphabet_kind("xyz") == "other" and len(set(colors.values())) == 3


def test_error_heatmaps_use_the_logos_sign_and_grey_the_missing():
    """The values panel draws -ΔG (a letter up in the logo is positive here); the
    standard-error panel greys cells without one."""
    plt = pyplot()
    values = pd.DataFrame([[1.0, -2.0, 0.5, 0.5], [0.0, 0.0, 3.0, -3.0]], index=[10, 11],
                          columns=list("ACGT"))  # fmt: skip
    se = np.array([[0.1, 0.2, np.inf, 0.3], [0.4, np.nan, 0.5, 0.6]])
    fig, (top, bottom) = error_heatmaps(plt, -values, se, "G")
    try:
        drawn = top.collections[0].get_array().reshape(4, 2)  # [letters, positions]
        assert np.array_equal(drawn, -values.to_numpy().T)
        assert "−ΔG" in top.get_title() and "blue (positive) lowers the energy" in top.get_title()
        grey, spread = bottom.collections[:2]
        assert to_hex(grey.get_cmap()(0.0)) == MISSING_COLOR
        assert np.ma.count(grey.get_array()) == 2  # the inf and the nan cells
        assert np.ma.count(spread.get_array()) == 6
        assert [t.get_text() for t in top.get_yticklabels()] == list("ACGT")
    finally:
        plt.close(fig)


def test_figure_formats_are_checked():
    assert parse_formats("png") == ("png",)
    assert parse_formats("pdf,png") == ("png", "pdf")
    with pytest.raises(BpmError, match="unknown figure format 'svg'"):
        parse_formats("png,svg")


@pytest.fixture(scope="module")
def protein_fit(tmp_path_factory) -> Path:
    """bpm fit of a protein model to simulated reads, every figure also as a PDF."""
    folder = tmp_path_factory.mktemp("protein")
    model = folder / "binder.bpm"
    model.write_text(PROTEIN_MODEL)
    data = folder / "reads.csv"
    assert main(["simulate", str(model), "-o", str(data), "--n", "300", "--bins", "4"]) == 0
    out = folder / "fit"
    flags = ["--quiet", "--steps", "3", "--polish", "0", "--uncertainty"]
    assert main(["fit", str(model), str(data), "-o", str(out), *flags,
                 "--figure-format", "png,pdf"]) == 0  # fmt: skip
    return out


def test_every_figure_has_a_pdf_beside_it(protein_fit):
    plots = protein_fit / "plots"
    pngs = sorted(plots.rglob("*.png"))
    assert {"logo_G.png", "errors_G.png", "history.png"} <= {p.name for p in pngs}
    for png in pngs:
        pdf = png.with_suffix(".pdf")
        assert pdf.read_bytes()[:5] == b"%PDF-", pdf
    assert sorted(p.with_suffix(".png") for p in plots.rglob("*.pdf")) == pngs
    assert "logo_G.pdf" not in (protein_fit / "report.html").read_text()  # PNGs embedded


def test_png_only_by_default_and_a_bad_format_names_the_flag(protein_fit, tmp_path, capsys):
    out = tmp_path / "fit"
    model = protein_fit.parent / "binder.bpm"
    data = protein_fit.parent / "reads.csv"
    flags = ["--quiet", "--steps", "2", "--polish", "0"]
    assert main(["fit", str(model), str(data), "-o", str(out), *flags]) == 0
    assert (out / "plots" / "logo_G.png").exists()
    assert not list((out / "plots").rglob("*.pdf"))
    capsys.readouterr()
    assert main(["fit", str(model), str(data), "-o", str(out), *flags,
                 "--figure-format", "svg"]) == 1  # fmt: skip
    assert "--figure-format" in capsys.readouterr().err
