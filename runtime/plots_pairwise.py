"""Heatmaps of the pair terms of ``neighbor`` and ``pairwise`` sites (``pairs_<energy>.png``).

The same numbers as ``params/<energy>_pairs.csv``: top-strand positions and letters, in
the report's gauge, kcal/mol; red raises the energy (binds less), blue lowers it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .plots_measured import save_figure
from .positions import axis_label, label, ticks
from .site_tables import ReportTables


def plot_pairs(result, tables: ReportTables, directory: Path, plt) -> list[Path]:
    """One heatmap per site with pair terms; returns the paths written."""
    kT = result.kT_kcal_per_mol
    paths = []
    for name, terms in tables.terms.items():
        if terms.pairs is None:
            continue
        if terms.kind == "neighbor":
            fig, ax, mesh = _neighbor(terms, kT, plt, tables.numbering)
        else:
            fig, ax, mesh = _pairwise(terms, kT, plt, tables.numbering)
        fig.colorbar(mesh, ax=ax, label="pair energy (kcal/mol)")
        strand = "\nbottom-strand site, read on the top strand" if terms.revcomp else ""
        ax.set_title(f"{name} pair terms: {tables.gauge_words(name, kT)}{strand}", fontsize=9)
        paths.append(save_figure(fig, (), directory / f"pairs_{name}.png"))
    return paths


def _limits(values: np.ndarray) -> dict:
    """A colour scale symmetric about zero."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return {"cmap": "RdBu_r", "vmin": -top, "vmax": top}


def _neighbor(terms, kT: float, plt, numbering=None):
    """Rows: the letter pair (letter at p, letter at p+1); columns: the pair of positions."""
    width, size = terms.matrix.shape
    k = np.arange(width - 1)
    values = terms.pairs[k, k + 1].reshape(width - 1, size * size).T * kT  # [A*A, w-1]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * (width - 1) + 2.5), 0.22 * size * size + 1.6))
    mesh = ax.pcolormesh(values, **_limits(values))
    letters = terms.letters
    ax.set_yticks(np.arange(size * size) + 0.5, [a + b for a in letters for b in letters])
    ax.invert_yaxis()
    shown, _ = ticks(terms.start + k, numbering, 5 if width > 25 else 1)
    pairs = [f"{label(numbering, p)}/{label(numbering, p + 1)}" for p in shown]
    ax.set_xticks(np.array(shown) - terms.start + 0.5, pairs)
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel(axis_label(numbering, "adjacent positions"))
    ax.set_ylabel("letters at (p, p+1)")
    return fig, ax, mesh


def _pairwise(terms, kT: float, plt, numbering=None):
    """A block matrix: block (i, j) holds the letters at i (rows) against those at j
    (columns), filled above the diagonal (i < j)."""
    width, size = terms.matrix.shape
    values = terms.pairs.transpose(0, 2, 1, 3).reshape(width * size, width * size) * kT
    upper = np.triu(np.ones((width, width), dtype=bool), 1)
    values = np.where(np.kron(upper, np.ones((size, size), dtype=bool)), values, np.nan)
    side = min(12.0, 0.3 * width * size / 4 + 3.0)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    mesh = ax.pcolormesh(np.ma.masked_invalid(values), **_limits(values))
    ax.invert_yaxis()
    shown, labels = ticks(range(terms.start, terms.start + width), numbering,
                          5 if width > 25 else 1)  # fmt: skip
    centers = (np.array(shown, dtype=float) - terms.start) * size + size / 2
    ax.set_xticks(centers, labels)
    ax.set_yticks(centers, labels)
    for edge in range(1, width):
        ax.axhline(edge * size, color="0.85", lw=0.4)
        ax.axvline(edge * size, color="0.85", lw=0.4)
    ax.tick_params(labelsize=7)
    within = f"(letters {terms.letters} within each block)"
    ax.set_xlabel(f"{axis_label(numbering, 'position j')} {within}")
    ax.set_ylabel(f"{axis_label(numbering, 'position i')} {within}")
    ax.set_aspect("equal")
    return fig, ax, mesh
