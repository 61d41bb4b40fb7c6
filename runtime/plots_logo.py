"""Sequence logos of the site energies (``logo_<energy>.png``) and the letter colours
every figure of a site shares.

Colours follow the model's alphabet: DNA and RNA letters take the usual nucleotide
colours (A green, C blue, G yellow, T/U red); protein residues are coloured by their
side chain's chemistry, the classes of WebLogo's and logomaker's ``chemistry`` scheme
(:data:`CHEMISTRY`); any other alphabet takes one colour per letter from a qualitative
palette. Letter height is ``-ΔG`` (kcal/mol): up lowers the energy (binds, or folds, more
strongly), the sign the error heatmaps use too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .plots_measured import save_figure
from .positions import set_ticks
from .site_tables import ReportTables
from .tables import matrix_frame

#: Nucleotide colours (DNA and RNA; U as T).
NUCLEOTIDE_COLORS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839", "U": "#D62839"}

#: Amino-acid classes by side-chain chemistry, each with its colour and name (the
#: classes of WebLogo's and logomaker's ``chemistry`` scheme).
CHEMISTRY = (
    ("GSTYC", "#109648", "polar"),
    ("NQ", "#8E44AD", "amide"),
    ("KRH", "#255C99", "basic"),
    ("DE", "#D62839", "acidic"),
    ("AVLIPWFM", "#222222", "hydrophobic"),
)
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: One colour per letter of any other alphabet, in code order (matplotlib's tab10).
OTHER_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip


def alphabet_kind(letters: str) -> str:
    """``"nucleotide"`` for ACGT or ACGU, ``"protein"`` for amino-acid letters, else
    ``"other"`` (the alphabet as the module's ``alphabet`` spells it, in code order).

    >>> alphabet_kind("ACGT"), alphabet_kind("ACDEFGHIKLMNPQRSTVWY"), alphabet_kind("xy")
    ('nucleotide', 'protein', 'other')
    """
    upper = letters.upper()
    if upper in ("ACGT", "ACGU"):
        return "nucleotide"
    if len(set(upper)) == len(letters) and set(upper) <= set(AMINO_ACIDS):
        return "protein"
    return "other"


def letter_colors(letters: str) -> dict[str, str]:
    """The colour of each letter of the alphabet ``letters`` (keys as spelled there).

    >>> letter_colors("ACGT")["G"], letter_colors(AMINO_ACIDS)["K"]
    ('#F7B32B', '#255C99')
    """
    kind = alphabet_kind(letters)
    if kind == "nucleotide":
        return {c: NUCLEOTIDE_COLORS[c.upper()] for c in letters}
    if kind == "protein":
        by_residue = {r: color for group, color, _ in CHEMISTRY for r in group}
        return {c: by_residue[c.upper()] for c in letters}
    return {c: OTHER_COLORS[k % len(OTHER_COLORS)] for k, c in enumerate(letters)}


_GLYPHS: dict = {}


def glyph(letter: str):
    """The outline of ``letter`` (bold sans) and its extents, made once per letter."""
    if letter not in _GLYPHS:
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import TextPath

        font = FontProperties(family="sans-serif", weight="bold")
        path = TextPath((0, 0), letter, size=1, prop=font)
        _GLYPHS[letter] = (path, path.get_extents())
    return _GLYPHS[letter]


def draw_logo(ax, frame, colors: dict[str, str] | None = None) -> None:
    """A sequence logo of ``frame`` (rows: positions, columns: letters) on ``ax``.

    Each letter is a glyph stretched to its value's height, positive values stacked up
    from zero and negative ones down, largest magnitude outermost (logomaker's layout
    with ``flip_below=False``, drawn from cached glyph outlines: a few milliseconds
    instead of about a second per logo). ``colors``: by letter, default
    :func:`letter_colors` of the frame's columns.
    """
    from matplotlib.patches import PathPatch
    from matplotlib.transforms import Affine2D

    values = frame.to_numpy(dtype=float)
    letters = [str(c) for c in frame.columns]
    colors = colors or letter_colors("".join(letters))
    top = bottom = 0.0
    for x, row in zip(frame.index, values, strict=True):
        up = down = 0.0
        for k in np.argsort(np.abs(row)):
            height = abs(row[k])
            if height <= 0:
                continue
            path, ext = glyph(letters[k])
            base = up if row[k] > 0 else down - height
            shape = (
                Affine2D()
                .translate(-ext.x0, -ext.y0)
                .scale(0.9 / max(ext.width, 1e-9), height / max(ext.height, 1e-9))
                .translate(x - 0.45, base)
            )
            color = colors.get(letters[k], "0.4")
            ax.add_patch(PathPatch(shape.transform_path(path), facecolor=color, lw=0))
            if row[k] > 0:
                up += height
            else:
                down -= height
        top, bottom = max(top, up), min(bottom, down)
    pad = 0.05 * max(top - bottom, 1e-9)
    ax.set_xlim(frame.index[0] - 0.6, frame.index[-1] + 0.6)
    ax.set_ylim(bottom - pad, top + pad)


def chemistry_legend(ax) -> None:
    """Name the residue classes of a protein logo in a legend above its axes."""
    from matplotlib.patches import Patch

    handles = [Patch(color=color, label=f"{name} ({group})") for group, color, name in CHEMISTRY]
    ax.legend(handles=handles, ncol=len(handles), fontsize=7, frameon=False,
              loc="lower left", bbox_to_anchor=(0.0, 1.0), handlelength=1.0)  # fmt: skip


def plot_logos(result, tables: ReportTables, directory: Path, plt) -> list[Path]:
    """One sequence logo per site energy (its additive part, read on the top strand):
    letter height = -ΔG (kcal/mol), up = a lower energy (binds or folds more strongly)."""
    kT = result.kT_kcal_per_mol
    paths = []
    for name, terms in tables.terms.items():
        frame = matrix_frame(terms)
        width = len(frame)
        protein = alphabet_kind(terms.letters) == "protein"
        height = 3.3 if protein else 2.9
        fig, ax = plt.subplots(figsize=(max(6.5, 0.28 * width + 1.5), height))
        draw_logo(ax, -frame * kT, letter_colors(terms.letters))
        ax.axhline(0, color="0.3", lw=0.6)
        ax.set_ylabel("−ΔG (kcal/mol)")
        set_ticks(ax, frame.index, tables.numbering)
        strand = "bottom-strand site, read on the top strand; " if terms.revcomp else ""
        words = f"{name}: {tables.gauge_words(name, kT)}\n{strand}letters up lower {name}"
        ax.set_title(words, fontsize=9, pad=16 if protein else 6)
        if protein:
            chemistry_legend(ax)
        paths.append(save_figure(fig, (ax,), directory / f"logo_{name}.png"))
    return paths
